//! `ntcomm`: control the reference driver's service, demonstrate every
//! communication channel, and benchmark them.
//!
//! ```text
//! ntcomm driver install NAME PATH [--group G] [--minifilter ALTITUDE]
//! ntcomm driver start | stop | restart | uninstall | status NAME
//! ntcomm demo  [--driver PATH]
//! ntcomm bench [--driver PATH] [--json] [--iterations N] [--size BYTES] [--warmup N]
//!              [--channels A,B] [--ring-sizes 64,65536] [--ring-records N] [--port-questions N]
//!              [--c-baseline ntcomm_c_client.exe [--c-driver SYS] [--c-rounds N]] [--verifier-cost ROUNDS] [--async-rounds ROUNDS] ...
//! ```
//!
//! Windows only (it runs under Wine: `cargo xtask demo`, `cargo xtask bench`).
// A user-mode CLI and test rig, not kernel code: a panic here is a reported
// failure, not a bug check, so the workspace's no-panic lints are relaxed
// (Cargo cannot override an inherited [workspace.lints] table per package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "ntcomm runs on Windows, or under Wine from this workspace: `cargo xtask demo`, \
         `cargo xtask bench [--json]`, `cargo xtask wine -- <ntcomm.exe> ...`"
    );
    std::process::ExitCode::from(2)
}

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(windows)]
mod cli {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use ntcomm::bench::BenchCase;
    use ntcomm::channel::Channel;
    use ntcomm::{bench, demo, faults, rig};
    use ntcomm_demo_proto as proto;
    use ntcomm_um::service;

    #[derive(Parser, Debug)]
    #[command(name = "ntcomm", version, about = "Driver <-> user-mode communication: service control, demo, benchmarks")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand, Debug)]
    enum Command {
        /// Install, start, stop or remove a driver's service (any driver).
        Driver {
            #[command(subcommand)]
            action: DriverAction,
        },
        /// Exercise every channel once and print a table of the results.
        Demo {
            /// Driver image (default: $NTCOMM_DRIVER, else ntcomm_demo.sys beside ntcomm.exe).
            #[arg(long)]
            driver: Option<PathBuf>,
        },
        /// Round-trip latency and throughput of each channel.
        Bench(Box<BenchCmd>),
        /// The fault suite: random IOCTLs, clients killed, the driver stopped
        /// under load and peers killed mid-message, on every channel; after
        /// each fault nothing may be in flight and the pool must be back to
        /// its value before. Defaults are the CI size; --full is the size of
        /// docs/RELIABILITY.md.
        Faults(FaultsCmd),
        /// Serve the demo's LPC port (the driver connects with LPC_CONNECT)
        /// until killed.
        LpcServer {
            /// Server instance: 0 is \RPC Control\NtCommDemo, n is ...NtCommDemo-n.
            #[arg(long, default_value_t = 0)]
            instance: u32,
            /// Never answer requests (to test a server that hangs).
            #[arg(long)]
            stall: bool,
        },
    }

    /// Service control for any kernel driver: under Wine, starting a driver
    /// starts ntcomm's Wine layers in its group first (`rig::wine_layers_for`).
    #[derive(Subcommand, Debug)]
    enum DriverAction {
        /// Create the service (demand start) for a driver image; with
        /// --minifilter, also the minifilter's `Instances` registry keys.
        Install {
            /// Service name (the reference driver's is NtCommDemo).
            name: String,
            /// Driver image (.sys).
            path: PathBuf,
            /// Load-order group.
            #[arg(long, default_value = rig::DRIVER_GROUP)]
            group: String,
            /// A minifilter: the altitude of its default instance (e.g. 385100).
            #[arg(long, value_name = "ALTITUDE")]
            minifilter: Option<String>,
        },
        /// Start the service and wait until it runs.
        Start { name: String },
        /// Stop the service and wait until it stopped.
        Stop { name: String },
        /// Stop the service (if running) and start it again.
        Restart { name: String },
        /// Stop (if running) and delete the service.
        Uninstall { name: String },
        /// Print the service state.
        Status { name: String },
    }

    #[derive(clap::Args, Debug)]
    struct FaultsCmd {
        /// Driver image (default: $NTCOMM_DRIVER, else ntcomm_demo.sys beside ntcomm.exe).
        #[arg(long)]
        driver: Option<PathBuf>,
        /// The full size: 1,000,000 random IOCTLs, 100 kills per channel, 10
        /// stops per channel, 100 peer kills per peer channel (the explicit
        /// options below still win).
        #[arg(long)]
        full: bool,
        /// Random IOCTLs (phase 1) [CI: 100000; --full: 1000000].
        #[arg(long)]
        ioctls: Option<u64>,
        /// Client kills per channel (phase 2) [CI: 5; --full: 100].
        #[arg(long)]
        kills: Option<u32>,
        /// Driver stops under load per channel (phase 3) [CI: 1; --full: 10].
        #[arg(long)]
        stops: Option<u32>,
        /// Peer kills per peer channel: pipe, port, LPC (phase 4) [CI: 5; --full: 100].
        #[arg(long)]
        peer_kills: Option<u32>,
        /// PRNG seed (default: from the clock; printed, so a run can be repeated).
        #[arg(long)]
        seed: Option<u64>,
        /// Print one JSON document with every figure at the end.
        #[arg(long)]
        json: bool,
        /// Only these phases (comma-separated).
        #[arg(long, value_delimiter = ',')]
        phases: Vec<faults::Phase>,
        /// Only these channels in the kills, stops and peers phases (comma-separated).
        #[arg(long, value_delimiter = ',')]
        channels: Vec<Channel>,
        /// Longest random delay before a kill or stop, in milliseconds.
        #[arg(long, default_value_t = 300)]
        max_delay_ms: u64,
        /// Random IOCTLs in flight at once.
        #[arg(long, default_value_t = 8)]
        depth: usize,
        /// How long a random IOCTL may pend before it is cancelled, in ms.
        #[arg(long, default_value_t = 5)]
        pend_ms: u64,
        /// Phase 1 sends only these demo IOCTLs, by name (comma-separated,
        /// e.g. PORT_ASK,LPC_ASK), random and well-formed: to narrow down a
        /// failure of that phase.
        #[arg(long, value_delimiter = ',', value_name = "IOCTLS")]
        only: Vec<String>,
    }

    #[derive(clap::Args, Debug)]
    struct BenchCmd {
        /// Driver image (default: $NTCOMM_DRIVER, else ntcomm_demo.sys beside ntcomm.exe).
        #[arg(long)]
        driver: Option<PathBuf>,
        /// Print one JSON document with every result instead of tables.
        #[arg(long)]
        json: bool,
        /// Timed round trips per channel.
        #[arg(long, default_value_t = 20_000)]
        iterations: u64,
        /// Payload bytes per round trip.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Untimed round trips per channel before measuring.
        #[arg(long, default_value_t = 500)]
        warmup: u64,
        /// Requests in flight for the `overlapped-ioctl` channel.
        #[arg(long, default_value_t = 32)]
        depth: usize,
        /// Stop a channel's timed loop after this many seconds even if fewer
        /// than --iterations were done (keeps a run bounded under slow Wine).
        #[arg(long, default_value_t = 8.0)]
        max_seconds: f64,
        /// Only these cases (comma-separated), e.g. `ioctl-buffered,readwrite`.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<BenchCase>,
        /// Record sizes of `ring-d2u` and `ring-u2d` (comma-separated; one result each).
        #[arg(long, value_delimiter = ',', default_value = "64,65536")]
        ring_sizes: Vec<usize>,
        /// Records per `ring-d2u`/`ring-u2d` run, at most.
        #[arg(long, default_value_t = 1_000_000)]
        ring_records: u64,
        /// Megabytes (10^6 B) of records per `ring-d2u`/`ring-u2d` run, at most.
        #[arg(long, default_value_t = 1000)]
        ring_megabytes: u64,
        /// Data bytes of each ring of `ring-d2u`/`ring-u2d` (power of two, 4 KiB..4 MiB, the driver's `MAX_RING_CAPACITY`).
        #[arg(long, default_value_t = 4 << 20)]
        ring_capacity: u32,
        /// Questions per `port-ask*` run, at most (fewer if the
        /// warm-up rate says they would not fit --max-seconds).
        #[arg(long, default_value_t = 100_000)]
        port_questions: u32,
        /// The C baseline's client (ntcomm_c_client.exe, built by `cargo xtask
        /// bench`): run the channels it shares with ntcomm (the echo IOCTLs,
        /// readwrite) on both sides in interleaved rounds and print the ratios.
        #[arg(long)]
        c_baseline: Option<PathBuf>,
        /// The C baseline's driver (default: ntcomm_c.sys beside the client).
        #[arg(long, requires = "c_baseline")]
        c_driver: Option<PathBuf>,
        /// Rounds of the C comparison; --iterations is split over them.
        #[arg(long, default_value_t = 10)]
        c_rounds: u32,
        /// Only measure what the rig's verifier mode costs (docs/VERIFIER.md): the
        /// IOCTL and read/write rows with it on and off, in this many interleaved
        /// rounds (the driver is reloaded for each side; under Wine only).
        #[arg(long, default_value_t = 0, value_name = "ROUNDS")]
        verifier_cost: u32,
        /// Only compare the async rows with the synchronous shapes of the same
        /// work (one request at a time; DEPTH in flight; the driver's port
        /// questions), in this many rounds whose order rotates; prints the
        /// median of async / best synchronous shape per round.
        #[arg(long, default_value_t = 0, value_name = "ROUNDS")]
        async_rounds: u32,
        /// Every channel at 64 B, 4 KiB and 64 KiB (the rings too), in one run;
        /// with --chart, the chart of it.
        #[arg(long)]
        all: bool,
        /// Payload sizes to run every channel at (comma-separated); overrides --size.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Write a chart (SVG) of the results to this file.
        #[arg(long)]
        chart: Option<PathBuf>,
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        match cli.command {
            Command::Driver { action } => driver(action),
            Command::Demo { driver } => with_driver(driver.as_deref(), demo::run),
            Command::LpcServer { instance, stall } => lpc_server(instance, stall),
            Command::Faults(f) => {
                let pick = |v: Option<u64>, ci: u64, full: u64| v.unwrap_or(if f.full { full } else { ci });
                let seed = f.seed.unwrap_or_else(|| {
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
                });
                let opts = faults::Options {
                    ioctls: pick(f.ioctls, 100_000, 1_000_000),
                    kills: pick(f.kills.map(u64::from), 5, 100) as u32,
                    stops: pick(f.stops.map(u64::from), 1, 10) as u32,
                    peer_kills: pick(f.peer_kills.map(u64::from), 5, 100) as u32,
                    seed,
                    json: f.json,
                    phases: f.phases,
                    channels: f.channels,
                    max_delay_ms: f.max_delay_ms,
                    depth: f.depth,
                    pend_ms: f.pend_ms,
                    only: f.only,
                };
                with_driver(f.driver.as_deref(), |image| faults::run(image, &opts))
            }
            Command::Bench(b) => {
                let sizes = if b.all && b.sizes.is_empty() { bench::ALL_SIZES.to_vec() } else { b.sizes };
                let ring_sizes = if b.all { sizes.clone() } else { b.ring_sizes };
                let opts = bench::Options {
                    json: b.json,
                    iterations: b.iterations,
                    size: b.size,
                    sizes,
                    chart: b.chart,
                    warmup: b.warmup,
                    depth: b.depth,
                    max_seconds: b.max_seconds,
                    channels: b.channels,
                    ring_sizes,
                    ring_records: b.ring_records,
                    ring_megabytes: b.ring_megabytes,
                    ring_capacity: b.ring_capacity,
                    port_questions: b.port_questions,
                    c_baseline: b.c_baseline,
                    c_driver: b.c_driver,
                    c_rounds: b.c_rounds,
                    verifier_rounds: b.verifier_cost,
                    async_rounds: b.async_rounds,
                };
                with_driver(b.driver.as_deref(), |image| bench::run(image, &opts))
            }
        }
    }

    fn lpc_server(instance: u32, stall: bool) -> ExitCode {
        use ntcomm::lpc_server::{self as server, ServerOptions, ServerStats};
        let name = server::port_name(instance);
        let port = match server::create(instance) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("ntcomm: LPC port {name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("serving LPC port {name}");
        let stats = ServerStats::default();
        let stop = std::sync::atomic::AtomicBool::new(false);
        match server::serve(port, ServerOptions { stall }, &stats, &stop) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ntcomm: LPC port {name}: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Resolves the driver image and hands it to `f`, which returns the exit code.
    fn with_driver(explicit: Option<&Path>, f: impl FnOnce(&Path) -> ExitCode) -> ExitCode {
        match rig::driver_path(explicit) {
            Some(image) => f(&image),
            None => {
                eprintln!(
                    "ntcomm: no driver image: pass --driver PATH, set NTCOMM_DRIVER, or put {} beside ntcomm.exe",
                    proto::DRIVER_FILE
                );
                ExitCode::from(2)
            }
        }
    }

    fn driver(action: DriverAction) -> ExitCode {
        let result = match action {
            DriverAction::Install { name, path, group, minifilter } => {
                let mut svc = rig::DriverService::new(&name, &path).group(&group);
                if let Some(altitude) = &minifilter {
                    svc = svc.minifilter(altitude);
                }
                svc.install().map(|()| format!("installed service {name} for {} in group {group}", path.display()))
            }
            DriverAction::Start { name } => rig::start(&name).map(|()| format!("service {name} running")),
            DriverAction::Stop { name } => service::stop(&name).map(|()| format!("service {name} stopped")),
            DriverAction::Restart { name } => rig::restart(&name).map(|()| format!("service {name} running")),
            DriverAction::Uninstall { name } => service::uninstall(&name).map(|()| format!("service {name} uninstalled")),
            DriverAction::Status { name } => service::status(&name).map(|s| format!("{name}: {s}")),
        };
        match result {
            Ok(msg) => report(Ok(()), &msg),
            Err(e) => report(Err(e), ""),
        }
    }

    fn report(result: ntcomm_um::Result<()>, ok: &str) -> ExitCode {
        match result {
            Ok(()) => {
                println!("{ok}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ntcomm: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
