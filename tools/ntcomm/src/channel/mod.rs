//! The demo driver's channels, one module each. A module holds all the
//! tools do with its channel: the demo's steps, the benchmark cases, and the
//! fault suite's pieces (a child's workload, the probe that a new client is
//! still served after a fault, and for channels with a user-mode peer, the
//! peer's workload and the phase that kills it). `ntcomm demo`, `bench` and
//! `faults` iterate over [`Channel::ALL`].

use ntcomm_um::Device;
use serde_json::Value;

use crate::bench::BenchCase;
use crate::demo::Row;
use crate::fault_child::ChildResult;
use crate::faults::{Probe, Suite};
use crate::rng::Rng;

pub mod delayed;
pub mod inverted;
pub mod ioctl;
pub mod lpc;
pub mod pipe;
pub mod port;
pub mod readwrite;
pub mod ring;

/// A channel of the demo driver. Its name on the command line (`--channels`
/// of `ntcomm faults`) and as a fault child's role is [`Channel::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Channel {
    /// Echo IOCTLs of the four transfer methods (and `GET_STATS`).
    Ioctl,
    /// `WriteFile`/`ReadFile` through the driver's message queue, reads pended.
    #[value(name = "readwrite")]
    ReadWrite,
    /// Inverted call: `WAIT_EVENT` pended until `POST_EVENT`.
    Inverted,
    /// `DELAYED_COMPLETE`: an IOCTL the driver's worker completes later.
    Delayed,
    /// Shared-memory ring channels.
    Ring,
    /// The driver's named-pipe writer and a user-mode pipe server.
    Pipe,
    /// The Filter Manager communication port, both directions.
    Port,
    /// The driver as an LPC client of a user-mode LPC server.
    Lpc,
}

impl Channel {
    /// Every channel, in the order the tools run them.
    pub const ALL: [Channel; 8] = [
        Channel::Ioctl,
        Channel::ReadWrite,
        Channel::Inverted,
        Channel::Delayed,
        Channel::Ring,
        Channel::Pipe,
        Channel::Port,
        Channel::Lpc,
    ];

    /// The channel's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Ioctl => "ioctl",
            Channel::ReadWrite => "readwrite",
            Channel::Inverted => "inverted",
            Channel::Delayed => "delayed",
            Channel::Ring => "ring",
            Channel::Pipe => "pipe",
            Channel::Port => "port",
            Channel::Lpc => "lpc",
        }
    }

    /// The fault child role of the channel's user-mode peer, for channels
    /// whose other end in user mode is a server (pipe, LPC) or a client the
    /// driver asks (port).
    pub fn peer_role(self) -> Option<&'static str> {
        match self {
            Channel::Pipe => Some("pipe-server"),
            Channel::Port => Some("port-peer"),
            Channel::Lpc => Some("lpc-peer"),
            _ => None,
        }
    }

    /// Whether the channel has a user-mode peer (phase 4 of the fault suite).
    pub fn is_peer(self) -> bool {
        self.peer_role().is_some()
    }

    /// The demo's rows of this channel, each a checked exchange; `dev` is a
    /// synchronous handle.
    pub fn demo(self, dev: &Device) -> Vec<Row> {
        match self {
            Channel::Ioctl => ioctl::demo(dev),
            Channel::ReadWrite => readwrite::demo(dev),
            Channel::Inverted => inverted::demo(dev),
            Channel::Delayed => delayed::demo(dev),
            Channel::Ring => ring::demo(),
            Channel::Pipe => pipe::demo(dev),
            Channel::Port => port::demo(dev),
            Channel::Lpc => lpc::demo(dev),
        }
    }

    /// The benchmark cases of this channel, in run order.
    pub fn bench_cases(self) -> &'static [BenchCase] {
        match self {
            Channel::Ioctl => &ioctl::BENCH,
            Channel::ReadWrite => &readwrite::BENCH,
            Channel::Inverted => &inverted::BENCH,
            Channel::Delayed => &[],
            Channel::Ring => &ring::BENCH,
            Channel::Pipe => &pipe::BENCH,
            Channel::Port => &port::BENCH,
            Channel::Lpc => &lpc::BENCH,
        }
    }

    /// A new client is served on this channel: one real exchange, checked.
    pub(crate) fn new_client_works(self, probe: &Probe) -> Result<(), String> {
        match self {
            Channel::Ioctl => ioctl::new_client_works(probe),
            Channel::ReadWrite => readwrite::new_client_works(probe),
            Channel::Inverted => inverted::new_client_works(probe),
            Channel::Delayed => delayed::new_client_works(probe),
            Channel::Ring => ring::new_client_works(probe),
            Channel::Pipe => pipe::new_client_works(probe),
            Channel::Port => port::new_client_works(probe),
            Channel::Lpc => lpc::new_client_works(probe),
        }
    }

    /// A fault child's workload as a client of this channel: loops until
    /// killed, or until the driver fails it.
    pub(crate) fn client_workload(self, rng: &mut Rng) -> ChildResult {
        match self {
            Channel::Ioctl => ioctl::client_workload(rng),
            Channel::ReadWrite => readwrite::client_workload(rng),
            Channel::Inverted => inverted::client_workload(rng),
            Channel::Delayed => delayed::client_workload(rng),
            Channel::Ring => ring::client_workload(rng),
            Channel::Pipe => pipe::client_workload(rng),
            Channel::Port => port::client_workload(rng),
            Channel::Lpc => lpc::client_workload(rng),
        }
    }

    /// A fault child's workload as this channel's peer ([`Channel::peer_role`]):
    /// `stall` makes it take one message and never answer; `instance` is the
    /// LPC server's.
    pub(crate) fn peer_workload(self, rng: &mut Rng, instance: u32, stall: bool) -> ChildResult {
        match self {
            Channel::Pipe => pipe::peer_workload(rng),
            Channel::Port => port::peer_workload(stall),
            Channel::Lpc => lpc::peer_workload(instance, stall),
            other => Err(crate::fault_child::ChildError::Wrong(format!("{} has no user-mode peer", other.name()))),
        }
    }

    /// Phase 4 of the fault suite on this channel: its peer killed mid-message.
    pub(crate) fn peer_kills(self, suite: &mut Suite) -> Result<Value, String> {
        match self {
            Channel::Pipe => pipe::peer_kills(suite),
            Channel::Port => port::peer_kills(suite),
            Channel::Lpc => lpc::peer_kills(suite),
            other => Err(format!("{} has no user-mode peer", other.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::Channel;
    use crate::baseline;
    use crate::bench::{BenchCase, Load};

    #[test]
    fn channel_names_parse_back_and_bad_ones_do_not() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_str(c.name(), false), Ok(c), "{}", c.name());
        }
        assert_eq!(Channel::value_variants().len(), Channel::ALL.len());
        assert!(Channel::from_str("read-write", false).is_err());
    }

    #[test]
    fn peers_are_pipe_port_and_lpc_with_distinct_roles() {
        let peers: Vec<Channel> = Channel::ALL.into_iter().filter(|c| c.is_peer()).collect();
        assert_eq!(peers, [Channel::Pipe, Channel::Port, Channel::Lpc]);
        let roles: Vec<&str> = peers.iter().filter_map(|c| c.peer_role()).collect();
        assert!(roles.iter().all(|r| !Channel::ALL.iter().any(|c| c.name() == *r)), "{roles:?}");
    }

    /// The names of docs/BENCHMARKS.md and the C baseline stay as they were.
    #[test]
    fn bench_case_names_are_unique_and_the_documented_ones() {
        let names: Vec<&str> = BenchCase::all().iter().map(|c| c.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for doc in [
            "ioctl-buffered",
            "ioctl-in-direct",
            "ioctl-direct",
            "ioctl-neither",
            "readwrite",
            "inverted-call",
            "overlapped-ioctl",
            "ring-d2u",
            "ring-u2d",
            "ring-echo",
            "ring-echo-spin",
            "pipe",
            "port-send",
            "port-ask",
            "port-ask-threads",
            "port-ask-1",
            "lpc-ask-1",
            "lpc-ask",
            "lpc-view",
            "threads-ioctl",
            "async-ioctl",
            "async-overlapped",
            "async-port-ask",
        ] {
            let case = BenchCase::from_str(doc, false).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(case.name, doc);
            assert!(Channel::ALL.contains(&case.channel));
        }
        assert_eq!(names.len(), 23);
        assert!(BenchCase::from_str("ioctl", false).is_err());
        let shared: Vec<&str> = baseline::shared().iter().map(|c| c.name).collect();
        assert_eq!(shared, ["ioctl-buffered", "ioctl-in-direct", "ioctl-direct", "ioctl-neither", "readwrite"]);
    }

    #[test]
    fn each_case_is_listed_under_its_own_channel() {
        for c in Channel::ALL {
            for case in c.bench_cases() {
                assert_eq!(case.channel, c, "{}", case.name);
                assert!(case.load == Load::RingRecords || case.min_payload <= case.max_payload, "{}", case.name);
            }
        }
    }
}
