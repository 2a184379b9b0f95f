//! `ntcomm faults`: the fault suite. It proves, against the real demo
//! driver, that faults lose nothing:
//!
//! 1. **random IOCTLs**: codes (entirely random, near misses of the demo's,
//!    the demo's own), methods, sizes and contents from a seeded PRNG, some
//!    of them well-formed enough to reach deep paths (pending, rings, LPC,
//!    port questions). Every request must end with a status from a defined
//!    set; pended ones are cancelled after a short wait and must then end.
//! 2. **clients killed** at random moments on every channel: a child
//!    process (`ntcomm-fault-child CHANNEL`) uses the channel in a loop and
//!    is killed (`TerminateProcess`) after a random delay.
//! 3. **the driver stopped under load** on every channel: the stop must not
//!    hang, the loaded client must get an error (not hang), and the driver
//!    must start again.
//! 4. **the peer killed mid-message** on the pipe (the pipe server while
//!    the driver writes), the port (the client while the driver waits for
//!    its reply to `PORT_ASK`) and LPC (the server while the driver waits
//!    for its reply to `LPC_ASK`).
//!
//! After each fault: a new client is served on that channel, nothing is in
//! flight, every channel object is gone (ring channels, port clients, the
//! LPC connection, queued pipe and read/write messages) and the driver's
//! pool returns exactly to its value before the fault, in bytes and blocks.
//!
//! This module is the phases' control flow; phase 1's engine is
//! `crate::fuzz`, and what is particular to a channel (a child's workload,
//! the new-client check, the peer-kill phase) is in its module of
//! [`crate::channel`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ntcomm_demo_proto::{self as proto, Stats};
use ntcomm_um::{service, CompletionPort, Device, OpId};
use serde_json::{json, Value};

use crate::channel::pipe::PipeDrain;
use crate::channel::Channel;
use crate::driver_state::{drain_messages, stats, wait_pended};
use crate::fuzz::Fuzz;
use crate::lpc_server::{BackgroundServer, ServerOptions};
use crate::rig;
use crate::rng::Rng;

/// A phase of the suite (`--phases`), in run order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// 1: random IOCTLs.
    Ioctls,
    /// 2: clients killed, per channel.
    Kills,
    /// 3: the driver stopped under load, per channel.
    Stops,
    /// 4: peers killed mid-message, per channel with a peer.
    Peers,
}

/// The LPC server instance of the suite's own server (the tests and the
/// demo use others).
pub(crate) const LPC_PARENT: u32 = 600;
/// How long the driver may take to settle after a fault.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);
/// How long a cancelled request may take to complete before it counts as hung.
pub(crate) const HANG: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Random IOCTLs of phase 1.
    pub ioctls: u64,
    /// Kills per channel (phase 2).
    pub kills: u32,
    /// Driver stops per channel (phase 3).
    pub stops: u32,
    /// Peer kills per peer channel (phase 4).
    pub peer_kills: u32,
    /// PRNG seed (printed; the same seed gives the same requests).
    pub seed: u64,
    /// Print one JSON document at the end.
    pub json: bool,
    /// Only these phases (empty: all).
    pub phases: Vec<Phase>,
    /// Only these channels in phases 2-4 (empty: all).
    pub channels: Vec<Channel>,
    /// Longest random delay before a kill or a stop, in ms.
    pub max_delay_ms: u64,
    /// Requests in flight at once in phase 1.
    pub depth: usize,
    /// How long phase 1 lets a request pend before cancelling it, in ms.
    pub pend_ms: u64,
    /// Phase 1 sends only these demo IOCTLs (by name), to narrow down a
    /// failure; empty: everything.
    pub only: Vec<String>,
}

// ---------------------------------------------------------------------------
// Entry points

/// Runs the suite against the driver image `image`. Exit code 1 if any
/// check failed.
pub fn run(image: &Path, opts: &Options) -> ExitCode {
    let mut suite = Suite::new(opts.clone());
    say(opts, format!("ntcomm faults: seed {} (rerun with --seed {}), driver {}", opts.seed, opts.seed, image.display()));
    let started = Instant::now();
    if let Err(e) = rig::ensure_demo_running(image) {
        eprintln!("ntcomm faults: cannot start the driver: {e}");
        return ExitCode::FAILURE;
    }
    let want = |p: Phase| opts.phases.is_empty() || opts.phases.contains(&p);
    let channels: Vec<Channel> = Channel::ALL.into_iter().filter(|c| opts.channels.is_empty() || opts.channels.contains(c)).collect();
    // A freshly loaded driver: its pool is the suite's starting value.
    if let Err(e) = rig::restart_demo() {
        eprintln!("ntcomm faults: cannot restart the driver: {e}");
        return ExitCode::FAILURE;
    }
    // This process serves the pipe and LPC: registered from the start, so
    // the starting pool value includes its registration (it stays registered
    // to the end; the children's registrations go when they exit).
    crate::peer::register_or_warn("ntcomm faults");
    match Device::open(proto::USER_PATH).and_then(|d| d.ioctl_get(&proto::GET_STATS)) {
        Ok(s) => suite.fresh = Some(s),
        Err(e) => {
            eprintln!("ntcomm faults: {e}");
            return ExitCode::FAILURE;
        }
    }
    if want(Phase::Ioctls) {
        suite.phase("ioctls", |s| s.random_ioctls());
    }
    if want(Phase::Kills) {
        for &c in &channels {
            suite.phase(&format!("kills/{}", c.name()), |s| s.kills(c));
        }
    }
    if want(Phase::Stops) {
        for &c in &channels {
            suite.phase(&format!("stops/{}", c.name()), |s| s.stops(c));
        }
    }
    if want(Phase::Peers) {
        for &c in channels.iter().filter(|c| c.is_peer()) {
            suite.phase(&format!("peers/{}", c.name()), |s| c.peer_kills(s));
        }
    }
    // The end: a fresh handle, everything settled, compared with the
    // freshly loaded driver.
    let end = match Device::open(proto::USER_PATH) {
        Ok(d) => quiet(&d, &suite.fresh_baseline(), SETTLE).map_err(|e| format!("end of suite: {e}")),
        Err(e) => Err(format!("end of suite: {e}")),
    };
    let secs = started.elapsed().as_secs_f64();
    let failed = suite.failures.len() + usize::from(end.is_err());
    let fresh = suite.fresh.unwrap_or_default();
    let end_value = match &end {
        Ok(s) => {
            json!({"pool_bytes": s.pool_bytes_outstanding, "pool_blocks": s.pool_allocations_outstanding, "irps_in_flight": s.irps_in_flight})
        }
        Err(e) => json!({"error": e}),
    };
    if let Err(e) = &end {
        suite.failures.push(e.clone());
    }
    if opts.json {
        let doc = json!({
            "seed": opts.seed,
            "options": {
                "ioctls": opts.ioctls, "kills": opts.kills, "stops": opts.stops, "peer_kills": opts.peer_kills,
                "max_delay_ms": opts.max_delay_ms, "depth": opts.depth, "pend_ms": opts.pend_ms,
            },
            "fresh": {"pool_bytes": fresh.pool_bytes_outstanding, "pool_blocks": fresh.pool_allocations_outstanding},
            "end": end_value,
            "phases": suite.report,
            "failures": suite.failures,
            "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        match &end {
            Ok(s) => println!(
                "end: pool {} B in {} blocks (freshly loaded: {} B in {} blocks), {} in flight",
                s.pool_bytes_outstanding,
                s.pool_allocations_outstanding,
                fresh.pool_bytes_outstanding,
                fresh.pool_allocations_outstanding,
                s.irps_in_flight
            ),
            Err(e) => println!("end: FAILED: {e}"),
        }
        for f in &suite.failures {
            println!("FAILURE: {f}");
        }
        println!("ntcomm faults: {} phases, {failed} failure(s), {secs:.1} s (seed {})", suite.report.len(), opts.seed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn say(opts: &Options, line: String) {
    if opts.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------
// Driver state checks

/// What "back to normal" means for one check: the values before the fault.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Baseline {
    pub(crate) pool_bytes: u64,
    pub(crate) pool_blocks: u64,
    open_handles: u64,
}

impl Baseline {
    fn of(s: &Stats) -> Self {
        Self { pool_bytes: s.pool_bytes_outstanding, pool_blocks: s.pool_allocations_outstanding, open_handles: s.open_handles }
    }
}

/// Waits until the driver is quiet: nothing in flight, no channel objects
/// (ring channels, port clients, LPC connection, queued messages) and its
/// pool and handles exactly as in `base`.
fn quiet(dev: &Device, base: &Baseline, within: Duration) -> Result<Stats, String> {
    let deadline = Instant::now() + within;
    loop {
        let s = stats(dev)?;
        let mut wrong = Vec::new();
        let mut check = |name: &str, have: u64, want: u64| {
            if have != want {
                wrong.push(format!("{name} {have} (expected {want})"));
            }
        };
        check("irps_in_flight", s.irps_in_flight, 0);
        check("ring_channels_open", s.ring_channels_open, 0);
        check("port_clients", s.port_clients, 0);
        check("lpc_connected", s.lpc_connected, 0);
        check("messages_queued", s.messages_queued, 0);
        check("pipe_messages_queued", s.pipe_messages_queued, 0);
        check("open_handles", s.open_handles, base.open_handles);
        check("pool_bytes_outstanding", s.pool_bytes_outstanding, base.pool_bytes);
        check("pool_allocations_outstanding", s.pool_allocations_outstanding, base.pool_blocks);
        if wrong.is_empty() {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(format!("not settled after {within:?}: {}", wrong.join(", ")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// The fault suite's child executable, installed beside `ntcomm.exe`.
pub const CHILD_EXE: &str = "ntcomm-fault-child.exe";

/// `ntcomm-fault-child ...` (the [`CHILD_EXE`] beside this executable, or
/// beside its parent directory for test binaries in `deps/`), killed on drop.
pub(crate) struct Kid {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Kid {
    pub(crate) fn spawn(args: &[&str]) -> Result<Kid, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = me.parent().ok_or("no directory for the current executable")?;
        let exe = [Some(dir.join(CHILD_EXE)), dir.parent().map(|p| p.join(CHILD_EXE))]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{CHILD_EXE} not found beside {}: build the ntcomm package's binaries", me.display()))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {CHILD_EXE} {args:?}: {e}"))?;
        let out = child.stdout.take().ok_or("no child stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Kid { child, lines: rx, seen: Vec::new() })
    }

    /// [`Kid::spawn`], then waits (up to a minute) for the child's `ready`.
    pub(crate) fn spawn_ready(args: &[&str]) -> Result<Kid, String> {
        let mut kid = Kid::spawn(args)?;
        kid.wait_for("ready", Duration::from_secs(60))?;
        Ok(kid)
    }

    /// Waits for a line starting with `word`.
    pub(crate) fn wait_for(&mut self, word: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(word) => return Ok(l),
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("child did not print {word:?} within {within:?} ({:?})", self.seen))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("child exited before {word:?} ({:?})", self.seen)),
            }
        }
    }

    /// Waits for the child to exit by itself; its exit code.
    fn wait_exit(&mut self, within: Duration) -> Result<i32, String> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Ok(st.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) => return Err(format!("child still running after {within:?} ({:?})", self.seen)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// The suite

pub(crate) struct Suite {
    pub(crate) opts: Options,
    pub(crate) rng: Rng,
    fresh: Option<Stats>,
    report: Vec<Value>,
    failures: Vec<String>,
    /// The in-process LPC server the channel's clients talk to.
    lpc: Option<BackgroundServer>,
    /// A pipe server thread draining the driver's messages, when running.
    pub(crate) pipe: Option<PipeDrain>,
    /// The driver could not be restarted after a failure.
    dead: bool,
}

impl Suite {
    fn new(opts: Options) -> Self {
        let rng = Rng::new(opts.seed);
        Self { opts, rng, fresh: None, report: Vec::new(), failures: Vec::new(), lpc: None, pipe: None, dead: false }
    }

    fn fresh_baseline(&self) -> Baseline {
        let s = self.fresh.unwrap_or_default();
        Baseline { open_handles: 1, ..Baseline::of(&s) }
    }

    pub(crate) fn say(&self, line: String) {
        say(&self.opts, line);
    }

    /// Runs one phase, recording its report or its failure.
    fn phase(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<Value, String>) {
        if self.dead {
            self.report.push(json!({"phase": name, "skipped": "the driver could not be restarted"}));
            return;
        }
        self.say(format!("== {name}"));
        let t = Instant::now();
        let r = f(self);
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(mut v) => {
                v["phase"] = json!(name);
                v["seconds"] = json!(secs);
                self.say(format!("   {name}: ok in {secs:.1} s"));
                self.report.push(v);
            }
            Err(e) => {
                self.say(format!("   {name}: FAILED after {secs:.1} s: {e}"));
                self.failures.push(format!("{name}: {e}"));
                self.report.push(json!({"phase": name, "seconds": secs, "error": e}));
                // Whatever state the failure left, the next phase starts
                // from a freshly loaded driver.
                self.pipe_stop_any();
                if let Err(e) = rig::restart_demo() {
                    // A crashed winedevice cannot be restarted from here (it
                    // takes `wineserver -k`): the remaining phases would
                    // only fail the same way.
                    self.failures.push(format!("{name}: restart after failure: {e}; remaining phases skipped"));
                    self.dead = true;
                }
            }
        }
    }

    pub(crate) fn lpc_server(&mut self) -> Result<(), String> {
        if self.lpc.is_none() {
            self.lpc = Some(BackgroundServer::start(LPC_PARENT, ServerOptions::default()).map_err(|e| format!("LPC server: {e}"))?);
        }
        Ok(())
    }

    pub(crate) fn pipe_start(&mut self) -> Result<(), String> {
        if self.pipe.is_none() {
            self.pipe = Some(PipeDrain::start()?);
        }
        Ok(())
    }

    fn pipe_stop_any(&mut self) {
        if let Some(p) = self.pipe.take() {
            if let Ok(d) = Device::open(proto::USER_PATH) {
                p.stop(&d);
            }
        }
    }

    /// The steady state a channel's checks compare with: the channel used
    /// once by a client of this process (so that connections the driver
    /// keeps across clients, e.g. to the pipe server, exist), then settled.
    pub(crate) fn steady(&mut self, dev: &Device, channel: Channel) -> Result<Baseline, String> {
        let received = self.pipe_received();
        channel.new_client_works(&Probe { dev, pipe_received: received.as_deref() })?;
        // Settled means: the same values twice, 300 ms apart.
        let mut last = stats(dev)?;
        let deadline = Instant::now() + SETTLE;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let s = stats(dev)?;
            if s.irps_in_flight == 0
                && s.pool_bytes_outstanding == last.pool_bytes_outstanding
                && s.pool_allocations_outstanding == last.pool_allocations_outstanding
                && s.ring_channels_open == 0
                && s.port_clients == 0
                && s.lpc_connected == 0
                && s.pipe_messages_queued == 0
                && s.messages_queued == 0
            {
                return Ok(Baseline::of(&s));
            }
            if Instant::now() >= deadline {
                return Err(format!("{}: the driver never settled before the faults: {s:?}", channel.name()));
            }
            last = s;
        }
    }

    pub(crate) fn pipe_received(&self) -> Option<Arc<AtomicU64>> {
        self.pipe.as_ref().map(|p| p.received.clone())
    }

    /// Starts what a channel's clients need in this process: the LPC server
    /// for `lpc`, a pipe server for `pipe`.
    fn prepare(&mut self, channel: Channel) -> Result<(), String> {
        match channel {
            Channel::Lpc => self.lpc_server(),
            Channel::Pipe => self.pipe_start(),
            _ => Ok(()),
        }
    }

    /// After a fault: leftovers drained, a new client served, the driver quiet.
    pub(crate) fn recovered(&self, dev: &Device, channel: Channel, base: &Baseline) -> Result<Stats, String> {
        drain_messages(dev)?;
        let received = self.pipe_received();
        channel.new_client_works(&Probe { dev, pipe_received: received.as_deref() }).map_err(|e| format!("new client: {e}"))?;
        quiet(dev, base, SETTLE)
    }

    // ----- phase 1 --------------------------------------------------------------------

    fn random_ioctls(&mut self) -> Result<Value, String> {
        self.lpc_server()?;
        self.pipe_start()?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, Channel::Pipe)?;
        let before = stats(&dev)?;
        let mut fuzz = Fuzz::new(self.rng.next_u64(), self.opts.depth, Duration::from_millis(self.opts.pend_ms), &self.opts.only)?;
        let t = Instant::now();
        let mut last_report = Instant::now();
        let mut done = 0u64;
        while done < self.opts.ioctls {
            let n = (self.opts.ioctls - done).min(5_000);
            fuzz.run(n)?;
            done += n;
            // The driver still answers, on another handle.
            stats(&dev).map_err(|e| format!("GET_STATS after {done} random IOCTLs: {e}"))?;
            if last_report.elapsed() > Duration::from_secs(15) {
                self.say(format!("   {done} IOCTLs, {:.0}/s", done as f64 / t.elapsed().as_secs_f64()));
                last_report = Instant::now();
            }
        }
        fuzz.drain()?;
        let secs = t.elapsed().as_secs_f64();
        let summary = fuzz.summary();
        drop(fuzz);
        // Undo the one lasting effect a handle's close does not: the
        // driver's LPC connection (it is the driver's, not the handle's).
        let _ = dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ());
        let t_settle = Instant::now();
        let after = quiet(&dev, &base, SETTLE)?;
        let mid = stats(&dev)?;
        let mut v = summary;
        v["ioctls"] = json!(done);
        v["rate_per_s"] = json!(done as f64 / secs);
        v["settle_ms"] = json!(t_settle.elapsed().as_millis() as u64);
        v["pool_before"] = json!({"bytes": base.pool_bytes, "blocks": base.pool_blocks});
        v["pool_after"] = json!({"bytes": after.pool_bytes_outstanding, "blocks": after.pool_allocations_outstanding});
        v["driver_irps_completed"] = json!(mid.irps_completed - before.irps_completed);
        v["driver_irps_cancelled"] = json!(mid.irps_cancelled - before.irps_cancelled);
        v["pipe_messages_delivered"] = json!(mid.pipe_messages_sent - before.pipe_messages_sent);
        v["lpc_connects"] = json!(mid.lpc_connects - before.lpc_connects);
        self.say(format!(
            "   {done} random IOCTLs at {:.0}/s, {} statuses: {}",
            done as f64 / secs,
            v["statuses"].as_object().map_or(0, |o| o.len()),
            v["statuses"]
        ));
        self.say(format!(
            "   pool {} B / {} blocks before, {} B / {} blocks after (settled in {} ms)",
            base.pool_bytes, base.pool_blocks, after.pool_bytes_outstanding, after.pool_allocations_outstanding, v["settle_ms"]
        ));
        Ok(v)
    }

    // ----- phase 2 --------------------------------------------------------------------

    fn kills(&mut self, channel: Channel) -> Result<Value, String> {
        self.prepare(channel)?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, channel)?;
        let mut settles = Vec::new();
        let mut delays = Vec::new();
        let mut in_flight_at_kill = Vec::new();
        for i in 0..self.opts.kills {
            let seed = self.rng.next_u64().to_string();
            let mut kid = Kid::spawn_ready(&[channel.name(), "--seed", &seed]).map_err(|e| format!("kill {i}: {e}"))?;
            let delay = self.rng.below(self.opts.max_delay_ms + 1);
            std::thread::sleep(Duration::from_millis(delay));
            in_flight_at_kill.push(stats(&dev)?.irps_in_flight);
            kid.kill();
            let t = Instant::now();
            self.recovered(&dev, channel, &base).map_err(|e| format!("kill {i} (after {delay} ms): {e}"))?;
            settles.push(t.elapsed().as_millis() as u64);
            delays.push(delay);
        }
        let after = stats(&dev)?;
        self.say(format!(
            "   {} kills; in flight at the kill up to {}; recovered in {} ms median, {} ms max; pool {} B / {} blocks before and after",
            self.opts.kills,
            in_flight_at_kill.iter().max().unwrap_or(&0),
            median(&settles),
            settles.iter().max().unwrap_or(&0),
            after.pool_bytes_outstanding,
            after.pool_allocations_outstanding
        ));
        Ok(json!({
            "channel": channel.name(),
            "kills": self.opts.kills,
            "delay_ms": {"min": delays.iter().min(), "max": delays.iter().max()},
            "in_flight_at_kill_max": in_flight_at_kill.iter().max(),
            "recovered_ms": {"median": median(&settles), "max": settles.iter().max()},
            "pool_before": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
            "pool_after": {"bytes": after.pool_bytes_outstanding, "blocks": after.pool_allocations_outstanding},
        }))
    }

    // ----- phase 3 --------------------------------------------------------------------

    fn stops(&mut self, channel: Channel) -> Result<Value, String> {
        self.prepare(channel)?;
        rig::restart_demo().map_err(|e| format!("restart: {e}"))?;
        // A loaded driver trusts no server yet: this process serves the pipe.
        crate::peer::register().map_err(|e| format!("register after restart: {e}"))?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, channel)?;
        drop(dev);
        let (mut stop_ms, mut client_ms, mut start_ms) = (Vec::new(), Vec::new(), Vec::new());
        let mut client_errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut in_flight_at_stop = Vec::new();
        for i in 0..self.opts.stops {
            let seed = self.rng.next_u64().to_string();
            let mut kid = Kid::spawn_ready(&[channel.name(), "--seed", &seed]).map_err(|e| format!("stop {i}: {e}"))?;
            std::thread::sleep(Duration::from_millis(self.rng.below(self.opts.max_delay_ms + 1)));
            if let Ok(d) = Device::open(proto::USER_PATH) {
                in_flight_at_stop.push(stats(&d).map(|s| s.irps_in_flight).unwrap_or(0));
            }
            // The stop must end: a watchdog turns a hang into a failure.
            let t = Instant::now();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(service::stop(proto::SERVICE_NAME));
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("stop {i}: {e}")),
                Err(_) => return Err(format!("stop {i}: the driver did not stop within 60 s (unload hangs)")),
            }
            stop_ms.push(t.elapsed().as_millis() as u64);
            // The client gets an error, not a hang.
            match kid.wait_exit(Duration::from_secs(30)) {
                Ok(3) => {}
                Ok(code) => return Err(format!("stop {i}: the client exited with {code}, expected 3 (an error) ({:?})", kid.seen)),
                Err(e) => return Err(format!("stop {i}: the client hangs: {e}")),
            }
            client_ms.push(t.elapsed().as_millis() as u64);
            let why = kid.wait_for("error", Duration::from_secs(2)).unwrap_or_else(|_| "error: (not printed)".into());
            *client_errors.entry(error_class(&why)).or_default() += 1;
            let t = Instant::now();
            rig::start_demo().map_err(|e| format!("stop {i}: start again: {e}"))?;
            start_ms.push(t.elapsed().as_millis() as u64);
            crate::peer::register().map_err(|e| format!("stop {i}: register after restart: {e}"))?;
            let dev = Device::open(proto::USER_PATH).map_err(|e| format!("stop {i}: open after restart: {e}"))?;
            self.recovered(&dev, channel, &base).map_err(|e| format!("stop {i}: after restart: {e}"))?;
        }
        self.say(format!(
            "   {} stops under load (up to {} requests in flight at the stop): stop took {} ms max, the client saw its error within {} ms max ({:?}); restarted and served, pool {} B / {} blocks as after a fresh start",
            self.opts.stops,
            in_flight_at_stop.iter().max().unwrap_or(&0),
            stop_ms.iter().max().unwrap_or(&0),
            client_ms.iter().max().unwrap_or(&0),
            client_errors,
            base.pool_bytes,
            base.pool_blocks
        ));
        Ok(json!({
            "channel": channel.name(),
            "stops": self.opts.stops,
            "in_flight_at_stop_max": in_flight_at_stop.iter().max(),
            "stop_ms": {"median": median(&stop_ms), "max": stop_ms.iter().max()},
            "client_error_ms": {"median": median(&client_ms), "max": client_ms.iter().max()},
            "client_errors": client_errors,
            "start_ms": {"median": median(&start_ms), "max": start_ms.iter().max()},
            "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
        }))
    }

    // ----- phase 4 --------------------------------------------------------------------

    /// One peer-kill round of the port and LPC phases: `kid` (the peer) is
    /// ready; `ask` runs on its own thread and may only end once the peer is
    /// gone. Waits until a stalling peer holds a message, kills the peer after
    /// a random delay, and returns what `ask` returned and how many
    /// milliseconds after the kill it ended (an error past [`HANG`]).
    pub(crate) fn kill_mid_call<T: Send + 'static>(
        &mut self,
        round: u32,
        mut kid: Kid,
        stall: bool,
        call: &str,
        peer: &str,
        ask: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<(T, u64), String> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(ask());
        });
        if stall {
            kid.wait_for("holding", Duration::from_secs(30)).map_err(|e| format!("peer kill {round}: {e}"))?;
        }
        std::thread::sleep(Duration::from_millis(self.rng.below(self.opts.max_delay_ms + 1)));
        kid.kill();
        let t = Instant::now();
        match rx.recv_timeout(HANG) {
            Ok(r) => r.map(|v| (v, t.elapsed().as_millis() as u64)).map_err(|e| format!("peer kill {round}: {call}: {e}")),
            Err(_) => Err(format!("peer kill {round}: {call} still waiting {HANG:?} after its {peer} died")),
        }
    }
}

/// The median of `v` (0 when empty).
pub(crate) fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0)
}

/// The kind of error a client printed (`error: ...`), without the details
/// that vary (tags, sizes).
fn error_class(line: &str) -> String {
    let l = line.trim_start_matches("error:").trim();
    match l.find(": ") {
        Some(i) => l[i + 2..].to_owned(),
        None => l.to_owned(),
    }
}

/// What a channel's "a new client still works" check needs of the suite.
pub(crate) struct Probe<'a> {
    /// A synchronous handle of the suite.
    pub(crate) dev: &'a Device,
    /// Messages the suite's pipe server received, when it runs.
    pub(crate) pipe_received: Option<&'a AtomicU64>,
}

/// The probe of the channels whose requests pend (read/write, inverted
/// call): a request `start`ed on a new overlapped handle pends in the driver,
/// and `complete` (on the suite's handle) completes it with `want`.
pub(crate) fn pended_then_served(
    probe: &Probe,
    start: impl FnOnce(&Device) -> ntcomm_um::Result<OpId>,
    complete: impl FnOnce(&Device) -> ntcomm_um::Result<usize>,
    want: &[u8],
) -> Result<(), String> {
    let e = |e: ntcomm_um::Error| e.to_string();
    let d = Device::open_overlapped(proto::USER_PATH).map_err(e)?;
    let port = CompletionPort::new().map_err(e)?;
    port.associate(&d, 0).map_err(e)?;
    start(&d).map_err(e)?;
    wait_pended(probe.dev, 1, HANG)?;
    complete(probe.dev).map_err(e)?;
    let c = port.wait(Some(HANG)).map_err(e)?.ok_or("the pended request was not completed")?;
    if c.result.is_err() || c.buffer != want {
        return Err(format!("the pended request completed with {:?}, {} B", c.result, c.buffer.len()));
    }
    Ok(())
}
