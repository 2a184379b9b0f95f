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

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ntcomm_demo_proto::{
    self as proto, Delay, LpcAsk, LpcConnect, LpcConnected, LpcTally, PortAsk, PortTally, RingOpen, RingSource, Stats,
};
use ntcomm_proto::{ControlCode, NtStatus};
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::{service, CompletionPort, Device, OpId, PipeServer, PortClient, RingChannel};
use serde_json::{json, Value};
use zerocopy::IntoBytes;

use crate::lpc_server::{self, BackgroundServer, ServerOptions, ServerStats};
use crate::rig;

/// The channels of the demo driver, as the kill and stop phases name them.
pub const CHANNELS: [&str; 8] = ["ioctl", "readwrite", "inverted", "delayed", "ring", "pipe", "port", "lpc"];
/// The channels with a user-mode peer the driver talks to.
pub const PEER_CHANNELS: [&str; 3] = ["pipe", "port", "lpc"];
/// Phases, in order.
pub const PHASES: [&str; 4] = ["ioctls", "kills", "stops", "peers"];

/// LPC server instances of the suite (the tests and the demo use others).
const LPC_PARENT: u32 = 600;
/// The instance a peer-kill child serves (one per round: a killed server's
/// name may linger a moment).
const LPC_PEER_BASE: u32 = 700;
/// How long the driver may take to settle after a fault.
const SETTLE: Duration = Duration::from_secs(30);
/// How long a cancelled request may take to complete before it counts as hung.
const HANG: Duration = Duration::from_secs(10);

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
    /// Only these phases.
    pub phases: Vec<String>,
    /// Only these channels (phases 2-4).
    pub channels: Vec<String>,
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
// A small PRNG (xoshiro256**, seeded through splitmix64): reproducible from
// the printed seed, no dependency.

/// The suite's random numbers.
#[derive(Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// A buffer size: mostly small, sometimes up to 70 KiB, sometimes an
    /// edge of the demo's limits.
    fn size(&mut self) -> usize {
        const EDGES: [usize; 14] = [0, 1, 7, 8, 12, 16, 192, 4095, 4096, 4097, 16384, 65535, 65536, 65537];
        match self.below(10) {
            0..=3 => self.below(65) as usize,
            4..=6 => self.below(4097) as usize,
            7..=8 => self.below(70 * 1024 + 1) as usize,
            _ => EDGES[self.below(EDGES.len() as u64) as usize],
        }
    }
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
    let want = |p: &str| opts.phases.is_empty() || opts.phases.iter().any(|x| x == p);
    let channels: Vec<&'static str> =
        CHANNELS.iter().copied().filter(|c| opts.channels.is_empty() || opts.channels.iter().any(|x| x == c)).collect();
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
    if want("ioctls") {
        suite.phase("ioctls", |s| s.random_ioctls());
    }
    if want("kills") {
        for &c in &channels {
            suite.phase(&format!("kills/{c}"), |s| s.kills(c));
        }
    }
    if want("stops") {
        for &c in &channels {
            suite.phase(&format!("stops/{c}"), |s| s.stops(c));
        }
    }
    if want("peers") {
        for &c in channels.iter().filter(|c| PEER_CHANNELS.contains(c)) {
            suite.phase(&format!("peers/{c}"), |s| s.peer_kills(c));
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
struct Baseline {
    pool_bytes: u64,
    pool_blocks: u64,
    open_handles: u64,
}

impl Baseline {
    fn of(s: &Stats) -> Self {
        Self { pool_bytes: s.pool_bytes_outstanding, pool_blocks: s.pool_allocations_outstanding, open_handles: s.open_handles }
    }
}

fn stats(dev: &Device) -> Result<Stats, String> {
    dev.ioctl_get(&proto::GET_STATS).map_err(|e| e.to_string())
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

/// Reads away what the read/write queue holds.
fn drain_messages(dev: &Device) -> Result<(), String> {
    let n = stats(dev)?.messages_queued;
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    for _ in 0..n {
        dev.read(&mut buf).map_err(|e| e.to_string())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Child processes

/// The fault suite's child executable, installed beside `ntcomm.exe`.
pub const CHILD_EXE: &str = "ntcomm-fault-child.exe";

/// `ntcomm-fault-child ...` (the [`CHILD_EXE`] beside this executable, or
/// beside its parent directory for test binaries in `deps/`), killed on drop.
struct Kid {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Kid {
    fn spawn(args: &[&str]) -> Result<Kid, String> {
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

    /// Waits for a line starting with `word`.
    fn wait_for(&mut self, word: &str, within: Duration) -> Result<String, String> {
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

    fn kill(&mut self) {
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

struct Suite {
    opts: Options,
    rng: Rng,
    fresh: Option<Stats>,
    report: Vec<Value>,
    failures: Vec<String>,
    /// The in-process LPC server the channel's clients talk to.
    lpc: Option<BackgroundServer>,
    /// A pipe server thread draining the driver's messages, when running.
    pipe: Option<PipeDrain>,
    /// The driver could not be restarted after a failure.
    dead: bool,
}

/// A pipe server in a thread that reads (and counts) every message.
struct PipeDrain {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PipeDrain {
    fn start() -> Result<PipeDrain, String> {
        crate::peer::register().map_err(|e| format!("registering as the pipe server: {e}"))?;
        let server = PipeServer::create(proto::PIPE_NAME).map_err(|e| format!("{e} (another pipe server running?)"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (st, rc) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            while !st.load(Ordering::Acquire) {
                if server.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                while !st.load(Ordering::Acquire) {
                    match server.read_message(&mut buf) {
                        Ok(true) => {
                            if buf != b"fault-suite: wake" {
                                rc.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => break,
                    }
                }
                server.disconnect();
            }
        });
        Ok(PipeDrain { stop, received, thread: Some(thread) })
    }

    /// Stops the thread: it leaves its read when the driver writes once
    /// more, which `dev` makes it do.
    fn stop(self, dev: &Device) {
        self.stop_counting(dev);
    }
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

    fn say(&self, line: String) {
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

    fn lpc_server(&mut self) -> Result<(), String> {
        if self.lpc.is_none() {
            self.lpc = Some(BackgroundServer::start(LPC_PARENT, ServerOptions::default()).map_err(|e| format!("LPC server: {e}"))?);
        }
        Ok(())
    }

    fn pipe_start(&mut self) -> Result<(), String> {
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
    fn steady(&mut self, dev: &Device, channel: &str) -> Result<Baseline, String> {
        new_client_works(dev, channel, self.pipe_received().as_deref())?;
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
                return Err(format!("{channel}: the driver never settled before the faults: {s:?}"));
            }
            last = s;
        }
    }

    fn pipe_received(&self) -> Option<Arc<AtomicU64>> {
        self.pipe.as_ref().map(|p| p.received.clone())
    }

    /// Starts what a channel's clients need in this process: the LPC server
    /// for `lpc`, a pipe server for `pipe`.
    fn prepare(&mut self, channel: &str) -> Result<(), String> {
        match channel {
            "lpc" => self.lpc_server(),
            "pipe" => self.pipe_start(),
            _ => Ok(()),
        }
    }

    /// After a fault: leftovers drained, a new client served, the driver quiet.
    fn recovered(&self, dev: &Device, channel: &str, base: &Baseline) -> Result<Stats, String> {
        drain_messages(dev)?;
        new_client_works(dev, channel, self.pipe_received().as_deref()).map_err(|e| format!("new client: {e}"))?;
        quiet(dev, base, SETTLE)
    }

    // ----- phase 1 --------------------------------------------------------------------

    fn random_ioctls(&mut self) -> Result<Value, String> {
        self.lpc_server()?;
        self.pipe_start()?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, "pipe")?;
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

    fn kills(&mut self, channel: &'static str) -> Result<Value, String> {
        self.prepare(channel)?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, channel)?;
        let mut settles = Vec::new();
        let mut delays = Vec::new();
        let mut in_flight_at_kill = Vec::new();
        for i in 0..self.opts.kills {
            let seed = self.rng.next_u64().to_string();
            let mut kid = Kid::spawn(&[channel, "--seed", &seed])?;
            kid.wait_for("ready", Duration::from_secs(60)).map_err(|e| format!("kill {i}: {e}"))?;
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
            "channel": channel,
            "kills": self.opts.kills,
            "delay_ms": {"min": delays.iter().min(), "max": delays.iter().max()},
            "in_flight_at_kill_max": in_flight_at_kill.iter().max(),
            "recovered_ms": {"median": median(&settles), "max": settles.iter().max()},
            "pool_before": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
            "pool_after": {"bytes": after.pool_bytes_outstanding, "blocks": after.pool_allocations_outstanding},
        }))
    }

    // ----- phase 3 --------------------------------------------------------------------

    fn stops(&mut self, channel: &'static str) -> Result<Value, String> {
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
            let mut kid = Kid::spawn(&[channel, "--seed", &seed])?;
            kid.wait_for("ready", Duration::from_secs(60)).map_err(|e| format!("stop {i}: {e}"))?;
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
            "channel": channel,
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

    fn peer_kills(&mut self, channel: &'static str) -> Result<Value, String> {
        match channel {
            "pipe" => self.peer_pipe(),
            "port" => self.peer_port(),
            "lpc" => self.peer_lpc(),
            _ => Err(format!("{channel} has no user-mode peer")),
        }
    }

    /// The pipe server killed while the driver writes to it.
    fn peer_pipe(&mut self) -> Result<Value, String> {
        self.pipe_start()?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, "pipe")?;
        let start = stats(&dev)?;
        let accepted = Arc::new(AtomicU64::new(0));
        let mut mid_write = 0u32;
        let mut settles = Vec::new();
        for i in 0..self.opts.peer_kills {
            // The child is the server now.
            if let Some(p) = self.pipe.take() {
                accepted.fetch_add(p.stop_counting(&dev), Ordering::Relaxed);
            }
            let mut kid = Kid::spawn(&["pipe-server"])?;
            // A sender keeps the driver writing 4 KiB messages.
            let stop = Arc::new(AtomicBool::new(false));
            let sender = {
                let (stop, accepted) = (stop.clone(), accepted.clone());
                std::thread::spawn(move || -> Result<(), String> {
                    let d = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
                    let msg = vec![0x5Au8; proto::MAX_PIPE_MESSAGE];
                    while !stop.load(Ordering::Acquire) {
                        match d.ioctl(&proto::PIPE_SEND, &msg[..], &mut ()) {
                            Ok(_) => {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) if e.ntstatus() == Some(NtStatus::STATUS_DEVICE_BUSY) => std::thread::sleep(Duration::from_millis(2)),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Ok(())
                })
            };
            let ready = kid.wait_for("ready", Duration::from_secs(60));
            let before = stats(&dev)?;
            std::thread::sleep(Duration::from_millis(self.rng.below(self.opts.max_delay_ms + 1)));
            kid.kill();
            stop.store(true, Ordering::Release);
            let sent = sender.join().map_err(|_| "sender panicked".to_string())?;
            ready.map_err(|e| format!("peer kill {i}: {e}"))?;
            sent.map_err(|e| format!("peer kill {i}: sender: {e}"))?;
            // A new server: the driver reconnects and delivers what it held.
            let t = Instant::now();
            self.pipe_start()?;
            let after = self.recovered(&dev, "pipe", &base).map_err(|e| format!("peer kill {i}: {e}"))?;
            settles.push(t.elapsed().as_millis() as u64);
            if after.pipe_write_failures > before.pipe_write_failures {
                mid_write += 1;
            }
        }
        let end = stats(&dev)?;
        // Every message the driver accepted was written to a server (the
        // new client checks of `recovered` count as accepted too).
        let accepted = accepted.load(Ordering::Relaxed) + u64::from(self.opts.peer_kills);
        let delivered = end.pipe_messages_sent - start.pipe_messages_sent;
        let received = self.pipe_received().map_or(0, |r| r.load(Ordering::Relaxed));
        self.say(format!(
            "   {} pipe servers killed ({} while the driver's write failed), {} write failures, {} messages accepted, {} written by the driver; recovered in {} ms median",
            self.opts.peer_kills,
            mid_write,
            end.pipe_write_failures - start.pipe_write_failures,
            accepted,
            delivered,
            median(&settles)
        ));
        if delivered < accepted {
            return Err(format!("the driver accepted {accepted} messages but wrote {delivered}"));
        }
        Ok(json!({
            "channel": "pipe",
            "peer_kills": self.opts.peer_kills,
            "kills_with_failed_write": mid_write,
            "driver_write_failures": end.pipe_write_failures - start.pipe_write_failures,
            "messages_accepted": accepted,
            "messages_written": delivered,
            "received_by_last_server": received,
            "recovered_ms": {"median": median(&settles), "max": settles.iter().max()},
            "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
        }))
    }

    /// One peer-kill round of the port and LPC phases: `kid` (the peer) is
    /// ready; `ask` runs on its own thread and may only end once the peer is
    /// gone. Waits until a stalling peer holds a message, kills the peer after
    /// a random delay, and returns what `ask` returned and how many
    /// milliseconds after the kill it ended (an error past [`HANG`]).
    fn kill_mid_call<T: Send + 'static>(
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

    /// The port client killed while the driver waits for its reply.
    fn peer_port(&mut self) -> Result<Value, String> {
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, "port")?;
        let mut asks_ms = Vec::new();
        let mut totals = PortTally::default();
        for i in 0..self.opts.peer_kills {
            // Two kinds of peer: one that holds a question unanswered, one
            // that answers as fast as it can.
            let stall = i % 3 != 2;
            let mut kid = Kid::spawn(&["port-peer", if stall { "--stall" } else { "--answer" }])?;
            kid.wait_for("ready", Duration::from_secs(60)).map_err(|e| format!("peer kill {i}: {e}"))?;
            let (tally, ms) = self.kill_mid_call(i, kid, stall, "PORT_ASK", "client", || {
                let d = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
                // Wait forever for each reply: only the client's death ends it.
                let ask = PortAsk { questions: 10_000, threads: 4, timeout_ms: 0, want_reply: 1, question_len: 256, reserved: 0 };
                let mut t = PortTally::default();
                d.ioctl(&proto::PORT_ASK, &ask, &mut t).map_err(|e| e.to_string())?;
                Ok(t)
            })?;
            asks_ms.push(ms);
            if tally.bad_replies != 0 || tally.failed != 0 {
                return Err(format!("peer kill {i}: {tally:?}"));
            }
            totals.sent += tally.sent;
            totals.replied += tally.replied;
            totals.disconnected += tally.disconnected;
            totals.timeouts += tally.timeouts;
            self.recovered(&dev, "port", &base).map_err(|e| format!("peer kill {i}: {e}"))?;
        }
        self.say(format!(
            "   {} port clients killed mid-question: PORT_ASK ended {} ms median / {} ms max after the kill; {} questions sent, {} replied, {} ended by the disconnect",
            self.opts.peer_kills,
            median(&asks_ms),
            asks_ms.iter().max().unwrap_or(&0),
            totals.sent,
            totals.replied,
            totals.disconnected
        ));
        Ok(json!({
            "channel": "port",
            "peer_kills": self.opts.peer_kills,
            "ask_ended_after_kill_ms": {"median": median(&asks_ms), "max": asks_ms.iter().max()},
            "questions_sent": totals.sent,
            "questions_replied": totals.replied,
            "questions_disconnected": totals.disconnected,
            "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
        }))
    }

    /// The LPC server killed while the driver waits for its reply.
    fn peer_lpc(&mut self) -> Result<Value, String> {
        self.lpc_server()?;
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let base = self.steady(&dev, "lpc")?;
        let mut asks_ms = Vec::new();
        let mut totals = LpcTally::default();
        for i in 0..self.opts.peer_kills {
            let stall = i % 3 != 2;
            let instance = (LPC_PEER_BASE + i).to_string();
            let mut args = vec!["lpc-peer", "--instance", instance.as_str()];
            if stall {
                args.push("--stall");
            }
            let mut kid = Kid::spawn(&args)?;
            kid.wait_for("ready", Duration::from_secs(60)).map_err(|e| format!("peer kill {i}: {e}"))?;
            lpc_connect(&dev, LPC_PEER_BASE + i).map_err(|e| format!("peer kill {i}: LPC_CONNECT: {e}"))?;
            let (tally, ms) = self.kill_mid_call(i, kid, stall, "LPC_ASK", "server", || {
                let d = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
                let ask = LpcAsk { kind: proto::LPC_KIND_REQUEST, workers: 4, count: 1_000_000, body_len: 128, timeout_ms: 0, view_len: 0 };
                let mut t = LpcTally::default();
                d.ioctl(&proto::LPC_ASK, &ask, &mut t).map_err(|e| e.to_string())?;
                Ok(t)
            })?;
            asks_ms.push(ms);
            if tally.mismatched != 0 || tally.failed == 0 || NtStatus(tally.first_error) != NtStatus::STATUS_PORT_DISCONNECTED {
                return Err(format!(
                    "peer kill {i}: expected failures with STATUS_PORT_DISCONNECTED, got {tally:?} (first error {})",
                    NtStatus(tally.first_error)
                ));
            }
            totals.sent += tally.sent;
            totals.replied += tally.replied;
            totals.failed += tally.failed;
            // The dead server's connection is closed by the driver's next client.
            self.recovered(&dev, "lpc", &base).map_err(|e| format!("peer kill {i}: {e}"))?;
        }
        self.say(format!(
            "   {} LPC servers killed mid-request: LPC_ASK ended {} ms median / {} ms max after the kill with STATUS_PORT_DISCONNECTED; {} requests sent, {} replied",
            self.opts.peer_kills,
            median(&asks_ms),
            asks_ms.iter().max().unwrap_or(&0),
            totals.sent,
            totals.replied
        ));
        Ok(json!({
            "channel": "lpc",
            "peer_kills": self.opts.peer_kills,
            "ask_ended_after_kill_ms": {"median": median(&asks_ms), "max": asks_ms.iter().max()},
            "requests_sent": totals.sent,
            "requests_replied": totals.replied,
            "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
        }))
    }
}

impl PipeDrain {
    /// [`stop`](Self::stop), returning how many wake-up messages the
    /// driver accepted on the way.
    fn stop_counting(self, dev: &Device) -> u64 {
        let n = Arc::new(AtomicU64::new(0));
        let mut me = self;
        me.stop.store(true, Ordering::Release);
        if let Some(t) = me.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !t.is_finished() && Instant::now() < deadline {
                if dev.ioctl(&proto::PIPE_SEND, &b"fault-suite: wake"[..], &mut ()).is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        n.load(Ordering::Relaxed)
    }
}

fn median(v: &[u64]) -> u64 {
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

fn lpc_connect(dev: &Device, instance: u32) -> Result<LpcConnected, String> {
    // The driver may have been restarted since this process registered.
    crate::peer::register().map_err(|e| format!("register: {e}"))?;
    let mut c = LpcConnect::new(proto::LPC_CONNECT_INFO, 0);
    c.instance = instance;
    let mut out = LpcConnected { max_message: 0, info_len: 0, view_size: 0, info: [0; 128] };
    dev.ioctl(&proto::LPC_CONNECT, &c, &mut out).map(|_| out).map_err(|e| e.to_string())
}

fn echo_check(dev: &Device, code: &proto_ioctl::Erased, payload: &[u8]) -> Result<(), String> {
    let mut out = vec![0u8; payload.len()];
    proto::second_buffer(code, payload, &mut out, 0);
    let n = dev.ioctl(code, payload, &mut out[..]).map_err(|e| e.to_string())?;
    if n != payload.len() || out != payload {
        return Err(format!("{}: echo of {} B came back as {n} B, different", code.name, payload.len()));
    }
    Ok(())
}

mod proto_ioctl {
    /// An IOCTL declaration with byte-slice input and output.
    pub type Erased = ntcomm_proto::Ioctl<[u8], [u8]>;
}

/// A new client is served on `channel`: one real exchange, checked.
fn new_client_works(dev: &Device, channel: &str, pipe_received: Option<&AtomicU64>) -> Result<(), String> {
    let e = |e: ntcomm_um::Error| e.to_string();
    match channel {
        "ioctl" => {
            let d = Device::open(proto::USER_PATH).map_err(e)?;
            for (i, code) in
                [&proto::ECHO_BUFFERED, &proto::COMPARE_IN_DIRECT, &proto::ECHO_OUT_DIRECT, &proto::ECHO_NEITHER].into_iter().enumerate()
            {
                let payload: Vec<u8> = (0..1000 + i * 333).map(|k| (k * 7 + i) as u8).collect();
                echo_check(&d, code, &payload)?;
            }
            Ok(())
        }
        "readwrite" => {
            let d = Device::open_overlapped(proto::USER_PATH).map_err(e)?;
            let port = CompletionPort::new().map_err(e)?;
            port.associate(&d, 0).map_err(e)?;
            d.start_read(vec![0; 256], 1).map_err(e)?;
            wait_in_flight(dev, 1)?;
            dev.write(b"fault-suite: for the next client").map_err(e)?;
            let c = port.wait(Some(HANG)).map_err(e)?.ok_or("the pended read was not served")?;
            if c.result.is_err() || c.buffer != b"fault-suite: for the next client" {
                return Err(format!("read served {:?}", c.result));
            }
            Ok(())
        }
        "inverted" => {
            let d = Device::open_overlapped(proto::USER_PATH).map_err(e)?;
            let port = CompletionPort::new().map_err(e)?;
            port.associate(&d, 0).map_err(e)?;
            d.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, 1).map_err(e)?;
            wait_in_flight(dev, 1)?;
            dev.ioctl(&proto::POST_EVENT, &b"fault-suite event"[..], &mut ()).map_err(e)?;
            let c = port.wait(Some(HANG)).map_err(e)?.ok_or("the waiter was not completed")?;
            if c.result.is_err() || c.buffer != b"fault-suite event" {
                return Err(format!("waiter completed with {:?}", c.result));
            }
            Ok(())
        }
        "delayed" => {
            let d = Device::open(proto::USER_PATH).map_err(e)?;
            for millis in [0, 5] {
                let mut token = 0u32;
                d.ioctl(&proto::DELAYED_COMPLETE, &Delay { millis, token: 4242 + millis }, &mut token).map_err(e)?;
                if token != 4242 + millis {
                    return Err(format!("DELAYED_COMPLETE answered token {token}"));
                }
            }
            Ok(())
        }
        "ring" => {
            let ch = RingChannel::open_with(
                proto::USER_PATH,
                &proto::RINGS,
                &ntcomm_um::RingOptions::new(16 << 10, 16 << 10).with_mode(proto::RING_MODE_ECHO),
            )
            .map_err(e)?;
            let (mut tx, mut rx) = ch.split();
            let mut rec = vec![0u8; 100];
            let mut buf = vec![0u8; 1024];
            for seq in 0..10 {
                proto::fill_record(seq, &mut rec);
                tx.send(&rec, Some(HANG)).map_err(e)?;
                let n = rx.recv(&mut buf, Some(HANG)).map_err(e)?.ok_or("no echo")?;
                if buf[..n] != rec[..] {
                    return Err(format!("ring echo of record {seq} differs"));
                }
            }
            Ok(())
        }
        "pipe" => {
            let received = pipe_received.ok_or("no pipe server")?;
            let before = received.load(Ordering::Relaxed);
            let deadline = Instant::now() + SETTLE;
            // A full queue (a peer that stopped reading) refuses sends until
            // the server has drained it.
            loop {
                match dev.ioctl(&proto::PIPE_SEND, &b"fault-suite: for the server"[..], &mut ()) {
                    Ok(_) => break,
                    Err(x) if x.ntstatus() == Some(NtStatus::STATUS_DEVICE_BUSY) && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(x) => return Err(e(x)),
                }
            }
            while received.load(Ordering::Relaxed) == before {
                if Instant::now() > deadline {
                    return Err("the pipe server received nothing".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        }
        "port" => {
            let client = Arc::new(PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).map_err(e)?);
            let mut out = vec![0u8; 600];
            let payload: Vec<u8> = (0..500).map(|k| (k * 3) as u8).collect();
            let n = client.send(&payload, &mut out).map_err(e)?;
            if out[..n] != payload[..] {
                return Err("port echo differs".into());
            }
            // And one question from the driver, answered.
            // The answer comes back over a channel: if the driver's question
            // never arrives, the wait below ends with an error instead of
            // blocking the suite forever (the receiving thread stays behind).
            let (answered_tx, answering) = std::sync::mpsc::channel();
            {
                let client = client.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
                    let r = (|| -> Result<(), String> {
                        let m = client.get_message(&mut buf).map_err(|e| e.to_string())?;
                        let seq = proto::check_record(m.body).ok_or("bad question")?;
                        client.reply(m.id, NtStatus::STATUS_SUCCESS, &verdict(seq)).map_err(|e| e.to_string())
                    })();
                    let _ = answered_tx.send(r);
                });
            }
            let ask = PortAsk { questions: 1, threads: 1, timeout_ms: 10_000, want_reply: 1, question_len: 64, reserved: 0 };
            let mut t = PortTally::default();
            dev.ioctl(&proto::PORT_ASK, &ask, &mut t).map_err(e)?;
            let answered = answering
                .recv_timeout(HANG)
                .map_err(|_| format!("the driver's PORT_ASK question never reached the client within {HANG:?} (tally {t:?})"))?;
            if t.replied != 1 || t.allowed + t.denied != 1 {
                return Err(format!("PORT_ASK tally {t:?} ({answered:?})"));
            }
            answered
        }
        "lpc" => {
            lpc_connect(dev, LPC_PARENT)?;
            let ask = LpcAsk { kind: proto::LPC_KIND_REQUEST, workers: 2, count: 10, body_len: 100, timeout_ms: 30_000, view_len: 0 };
            let mut t = LpcTally::default();
            dev.ioctl(&proto::LPC_ASK, &ask, &mut t).map_err(e)?;
            if t.replied != 20 || t.failed != 0 {
                return Err(format!("LPC_ASK tally {t:?}"));
            }
            dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ()).map_err(e)?;
            Ok(())
        }
        other => Err(format!("unknown channel {other}")),
    }
}

fn verdict(seq: u64) -> [u8; proto::PORT_REPLY_LEN] {
    let mut r = [0u8; proto::PORT_REPLY_LEN];
    r[..8].copy_from_slice(&seq.to_le_bytes());
    r[8] = u8::from(!seq.is_multiple_of(3));
    r
}

fn wait_in_flight(dev: &Device, n: u64) -> Result<(), String> {
    let deadline = Instant::now() + HANG;
    while stats(dev)?.irps_in_flight < n {
        if Instant::now() > deadline {
            return Err("the request never pended".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Phase 1: the random requests

/// The statuses a request may end with; anything else is a failure. Each
/// is a status the demo driver (or its IOCTL table) returns for a reason
/// stated in docs/RELIABILITY.md.
const DEFINED: [NtStatus; 19] = [
    NtStatus::STATUS_SUCCESS,
    NtStatus::STATUS_INVALID_DEVICE_REQUEST,
    NtStatus::STATUS_INVALID_PARAMETER,
    NtStatus::STATUS_BUFFER_TOO_SMALL,
    NtStatus::STATUS_NOT_SUPPORTED,
    NtStatus::STATUS_ACCESS_DENIED,
    NtStatus::STATUS_CANCELLED,
    NtStatus::STATUS_NOT_FOUND,
    NtStatus::STATUS_DEVICE_BUSY,
    NtStatus::STATUS_INSUFFICIENT_RESOURCES,
    NtStatus::STATUS_QUOTA_EXCEEDED,
    NtStatus::STATUS_OBJECT_NAME_COLLISION,
    NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    NtStatus::STATUS_PORT_CONNECTION_REFUSED,
    NtStatus::STATUS_PORT_DISCONNECTED,
    NtStatus::STATUS_INVALID_BUFFER_SIZE,
    NtStatus::STATUS_IO_TIMEOUT,
    NtStatus::STATUS_DELETE_PENDING,
    NtStatus::STATUS_INVALID_VIEW_SIZE,
];

/// Every code the demo driver serves.
const DEMO_CODES: [&proto_ioctl::Erased; 17] = [
    &proto::ALL_IOCTLS[0],
    &proto::ALL_IOCTLS[1],
    &proto::ALL_IOCTLS[2],
    &proto::ALL_IOCTLS[3],
    &proto::ALL_IOCTLS[4],
    &proto::ALL_IOCTLS[5],
    &proto::ALL_IOCTLS[6],
    &proto::ALL_IOCTLS[7],
    &proto::ALL_IOCTLS[8],
    &proto::ALL_IOCTLS[9],
    &proto::ALL_IOCTLS[10],
    &proto::ALL_IOCTLS[11],
    &proto::ALL_IOCTLS[12],
    &proto::ALL_IOCTLS[13],
    &LPC_CONNECT_ERASED,
    &LPC_ASK_ERASED,
    &LPC_DISCONNECT_ERASED,
];
const LPC_CONNECT_ERASED: proto_ioctl::Erased = proto::LPC_CONNECT.erase();
const LPC_ASK_ERASED: proto_ioctl::Erased = proto::LPC_ASK.erase();
const LPC_DISCONNECT_ERASED: proto_ioctl::Erased = proto::LPC_DISCONNECT.erase();

/// How a request was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Any 32-bit code.
    RandomCode,
    /// The demo's device type, a random function, method and access.
    DemoDeviceType,
    /// A demo code with another method or access.
    NearMiss,
    /// A demo code with random sizes and contents.
    DemoRandom,
    /// A demo code with a well-formed input.
    DemoValid,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::RandomCode => "random code",
            Kind::DemoDeviceType => "demo device type, random function",
            Kind::NearMiss => "demo code, other method/access",
            Kind::DemoRandom => "demo code, random sizes and contents",
            Kind::DemoValid => "demo code, well-formed input",
        }
    }
}

struct Req {
    code: u32,
    input: Vec<u8>,
    out: usize,
    kind: Kind,
}

struct InFlight {
    id: OpId,
    code: u32,
    kind: Kind,
    started: Instant,
    cancelled: Option<Instant>,
    /// The input of an echo, to check the answer.
    echo: Option<Vec<u8>>,
}

/// The random-request engine: one overlapped handle, `depth` requests in
/// flight, each cancelled after `pend` if still pending; the handle is
/// closed and reopened every few thousand requests (closing ends the
/// channels a handle owns).
struct Fuzz {
    rng: Rng,
    dev: Option<(Device, CompletionPort)>,
    depth: usize,
    pend: Duration,
    inflight: HashMap<u64, InFlight>,
    next_tag: u64,
    issued: u64,
    since_reopen: u64,
    statuses: BTreeMap<String, u64>,
    kinds: BTreeMap<Kind, u64>,
    methods: [u64; 4],
    cancels: u64,
    cancelled_then_done: u64,
    echo_checked: u64,
    slowest_after_cancel: Duration,
    handles_opened: u64,
    /// Indexes into DEMO_CODES to use only (empty: all, and random codes).
    only: Vec<usize>,
}

const REOPEN_EVERY: u64 = 2_000;

impl Fuzz {
    fn new(seed: u64, depth: usize, pend: Duration, only: &[String]) -> Result<Self, String> {
        let mut picked = Vec::new();
        for name in only {
            let i = DEMO_CODES.iter().position(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| format!("no demo IOCTL {name}"))?;
            picked.push(i);
        }
        let mut f = Fuzz {
            rng: Rng::new(seed),
            dev: None,
            depth: depth.max(1),
            pend,
            inflight: HashMap::new(),
            next_tag: 0,
            issued: 0,
            since_reopen: 0,
            statuses: BTreeMap::new(),
            kinds: BTreeMap::new(),
            methods: [0; 4],
            cancels: 0,
            cancelled_then_done: 0,
            echo_checked: 0,
            slowest_after_cancel: Duration::ZERO,
            handles_opened: 0,
            only: picked,
        };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.drain()?;
        self.dev = None;
        let d = Device::open_overlapped(proto::USER_PATH).map_err(|e| e.to_string())?;
        let p = CompletionPort::new().map_err(|e| e.to_string())?;
        p.associate(&d, 0).map_err(|e| e.to_string())?;
        self.dev = Some((d, p));
        self.since_reopen = 0;
        self.handles_opened += 1;
        Ok(())
    }

    /// Issues `n` more requests.
    fn run(&mut self, n: u64) -> Result<(), String> {
        let mut left = n;
        while left > 0 || !self.inflight.is_empty() {
            if self.since_reopen >= REOPEN_EVERY {
                self.reopen()?;
            }
            while left > 0 && self.inflight.len() < self.depth && self.since_reopen < REOPEN_EVERY {
                let r = self.generate();
                self.issue(r)?;
                left -= 1;
            }
            if left == 0 && self.inflight.is_empty() {
                break;
            }
            self.reap(if left == 0 { Duration::from_millis(1) } else { Duration::ZERO })?;
            if left == 0 {
                // Let the tail finish before the next batch.
                continue;
            }
        }
        Ok(())
    }

    /// Cancels whatever is left and collects it.
    fn drain(&mut self) -> Result<(), String> {
        if let Some((d, _)) = &self.dev {
            let _ = d.cancel_all();
        }
        let deadline = Instant::now() + HANG;
        while !self.inflight.is_empty() {
            if Instant::now() > deadline {
                let stuck: Vec<String> = self.inflight.values().map(|f| format!("{:#010x}", f.code)).collect();
                return Err(format!("requests still pending {HANG:?} after CancelIoEx: {stuck:?}"));
            }
            self.reap(Duration::from_millis(10))?;
        }
        Ok(())
    }

    fn issue(&mut self, r: Req) -> Result<(), String> {
        let (dev, _) = self.dev.as_ref().ok_or("no handle")?;
        let tag = self.next_tag;
        self.next_tag += 1;
        self.issued += 1;
        self.since_reopen += 1;
        *self.kinds.entry(r.kind).or_default() += 1;
        self.methods[(r.code & 3) as usize] += 1;
        let is_echo = DEMO_CODES[..4].iter().any(|c| c.code.0 == r.code);
        let echo = is_echo.then(|| r.input.clone());
        match dev.start_ioctl_raw(r.code, r.input, r.out, tag) {
            Ok(id) => {
                self.inflight.insert(tag, InFlight { id, code: r.code, kind: r.kind, started: Instant::now(), cancelled: None, echo });
                Ok(())
            }
            // Failed at once: no packet comes; this is its status.
            Err(e) => self.record(r.code, r.kind, Err(e), &[], None),
        }
    }

    /// Collects completions (waiting up to `wait` for the first, or until
    /// the oldest request's pend time is up), and cancels requests that
    /// pended too long.
    fn reap(&mut self, wait: Duration) -> Result<(), String> {
        let now = Instant::now();
        let next_cancel = self.inflight.values().filter(|f| f.cancelled.is_none()).map(|f| f.started + self.pend).min();
        let until_cancel = next_cancel.map_or(Duration::from_millis(50), |t| t.saturating_duration_since(now));
        let timeout = if self.inflight.len() >= self.depth || wait > Duration::ZERO {
            until_cancel.max(wait).min(Duration::from_millis(50))
        } else {
            Duration::ZERO
        };
        let mut done = Vec::new();
        {
            let (_, port) = self.dev.as_ref().ok_or("no handle")?;
            port.wait_many(&mut done, 64, Some(timeout)).map_err(|e| e.to_string())?;
        }
        for c in done {
            let Some(f) = self.inflight.remove(&c.tag) else {
                return Err(format!("a completion for unknown tag {}", c.tag));
            };
            if let Some(at) = f.cancelled {
                self.cancelled_then_done += 1;
                self.slowest_after_cancel = self.slowest_after_cancel.max(at.elapsed());
            }
            self.record(f.code, f.kind, c.result, &c.buffer, f.echo.as_deref())?;
        }
        let now = Instant::now();
        let (dev, _) = self.dev.as_ref().ok_or("no handle")?;
        for f in self.inflight.values_mut() {
            match f.cancelled {
                None if now.duration_since(f.started) >= self.pend => {
                    let _ = dev.cancel(f.id);
                    f.cancelled = Some(now);
                    self.cancels += 1;
                }
                Some(at) if now.duration_since(at) > HANG => {
                    return Err(format!(
                        "request {:#010x} ({}) still pending {HANG:?} after CancelIoEx: not cancellable",
                        f.code,
                        f.kind.name()
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn record(&mut self, code: u32, kind: Kind, result: ntcomm_um::Result<usize>, out: &[u8], echo: Option<&[u8]>) -> Result<(), String> {
        let status = match &result {
            Ok(_) => NtStatus::STATUS_SUCCESS,
            Err(e) => match e.ntstatus() {
                Some(s) => s,
                None => return Err(format!("request {code:#010x} ({}) failed without an NTSTATUS: {e}", kind.name())),
            },
        };
        if !DEFINED.contains(&status) {
            return Err(format!("request {code:#010x} ({}) ended with an undefined status {status}", kind.name()));
        }
        let name = status.name().map_or_else(|| format!("{status}"), str::to_owned);
        *self.statuses.entry(name).or_default() += 1;
        if let (Ok(n), Some(input)) = (&result, echo) {
            if code & 3 == ntcomm_proto::Method::InDirect as u32 {
                // COMPARE_IN_DIRECT against the zeroed buffer ntcomm-um passes:
                // the common prefix is the input's leading zeros, and the
                // read-only buffer must come back untouched.
                let zeros = input.iter().take_while(|b| **b == 0).count();
                if *n != zeros || out.iter().any(|b| *b != 0) {
                    return Err(format!(
                        "compare {code:#010x}: {} B in, {n} B reported ({zeros} expected), or the read-only buffer was written",
                        input.len()
                    ));
                }
            } else if *n != input.len() || out.get(..*n) != Some(input) {
                return Err(format!("echo {code:#010x}: {} B in, {n} B back, contents differ", input.len()));
            }
            self.echo_checked += 1;
        }
        Ok(())
    }

    fn summary(&self) -> Value {
        let kinds: BTreeMap<&str, u64> = self.kinds.iter().map(|(k, v)| (k.name(), *v)).collect();
        json!({
            "statuses": self.statuses,
            "kinds": kinds,
            "methods": {"buffered": self.methods[0], "in_direct": self.methods[1], "out_direct": self.methods[2], "neither": self.methods[3]},
            "cancelled_after_pending": self.cancels,
            "slowest_completion_after_cancel_ms": self.slowest_after_cancel.as_millis() as u64,
            "echo_replies_checked": self.echo_checked,
            "handles_opened": self.handles_opened,
        })
    }

    fn generate(&mut self) -> Req {
        if !self.only.is_empty() {
            let which = self.only[self.rng.below(self.only.len() as u64) as usize];
            if self.rng.chance(50) {
                return self.well_formed_of(which);
            }
            let (n_in, n_out) = (self.rng.size(), self.rng.size());
            return Req { code: DEMO_CODES[which].code.0, input: self.rng.bytes(n_in), out: n_out, kind: Kind::DemoRandom };
        }
        let rng = &mut self.rng;
        let r = rng.below(100);
        let (code, kind) = match r {
            0..=19 => (rng.u32(), Kind::RandomCode),
            20..=34 => {
                let c = ControlCode::new(
                    proto::DEVICE_TYPE,
                    rng.below(4096) as u16,
                    method_of(rng.below(4)),
                    ntcomm_proto::Access(rng.below(4) as u8),
                );
                (c.0, Kind::DemoDeviceType)
            }
            35..=44 => {
                let base = DEMO_CODES[rng.below(DEMO_CODES.len() as u64) as usize].code.0;
                let flipped = base ^ (1 + rng.below(3) as u32) ^ ((rng.below(4) as u32) << 14);
                (if flipped == base { base ^ 1 } else { flipped }, Kind::NearMiss)
            }
            45..=69 => (DEMO_CODES[rng.below(DEMO_CODES.len() as u64) as usize].code.0, Kind::DemoRandom),
            _ => return self.well_formed(),
        };
        let (n_in, n_out) = (rng.size(), rng.size());
        Req { code, input: rng.bytes(n_in), out: n_out, kind }
    }

    /// A demo request whose input is well-formed (random within its rules,
    /// sometimes at or past their edges), to reach the handlers' depths.
    fn well_formed(&mut self) -> Req {
        let which = self.rng.below(DEMO_CODES.len() as u64) as usize;
        self.well_formed_of(which)
    }

    fn well_formed_of(&mut self, which: usize) -> Req {
        let rng = &mut self.rng;
        let ioctl = DEMO_CODES[which];
        let code = ioctl.code.0;
        let small = |rng: &mut Rng, n: u64| rng.below(n + 1) as u32;
        let (input, out): (Vec<u8>, usize) = match which {
            0..=3 => {
                let n = rng.below(proto::MAX_ECHO as u64 + 1) as usize;
                let out = if rng.chance(90) { n + rng.below(64) as usize } else { rng.below(n as u64 + 1) as usize };
                (rng.bytes(n), out)
            }
            4 => (Vec::new(), core::mem::size_of::<Stats>()),
            5 => (Vec::new(), proto::MAX_EVENT),
            6 => {
                let n = rng.below(proto::MAX_EVENT as u64 + 1) as usize;
                (rng.bytes(n), 0)
            }
            7 => {
                let millis = match rng.below(4) {
                    0 => 0,
                    1 => small(rng, 20),
                    2 => small(rng, proto::MAX_DELAY_MS as u64),
                    _ => proto::MAX_DELAY_MS + small(rng, 10),
                };
                (Delay { millis, token: rng.u32() }.as_bytes().to_vec(), 4)
            }
            8 => {
                let n = rng.below(proto::MAX_PIPE_MESSAGE as u64 + 1) as usize;
                (rng.bytes(n), 0)
            }
            9 => {
                let cap = |rng: &mut Rng| if rng.chance(90) { 4096u32 << rng.below(5) } else { rng.u32() };
                let mut nonce = [0u8; 16];
                rng.fill(&mut nonce);
                let o = RingOpen {
                    d2u_capacity: cap(rng),
                    u2d_capacity: cap(rng),
                    mode: small(rng, 2),
                    record_size: match rng.below(8) {
                        0 => rng.u32(),
                        1 => 8 * small(rng, 64),
                        _ => 0,
                    },
                    nonce,
                };
                (o.as_bytes().to_vec(), core::mem::size_of::<proto::RingInfo>())
            }
            10 => {
                let count = if rng.chance(10) { u64::MAX } else { rng.below(10_000) };
                let s = RingSource { count, rate: if rng.chance(50) { 0 } else { rng.u32() }, record_len: small(rng, 300) };
                (s.as_bytes().to_vec(), 0)
            }
            11 => (Vec::new(), core::mem::size_of::<proto::RingStatus>()),
            12 => {
                let a = PortAsk {
                    questions: if rng.chance(10) { u32::MAX } else { small(rng, 64) },
                    threads: small(rng, 17),
                    timeout_ms: small(rng, 100),
                    want_reply: small(rng, 1),
                    question_len: if rng.chance(90) { proto::RECORD_MIN as u32 + small(rng, 4096) } else { rng.u32() },
                    reserved: 0,
                };
                (a.as_bytes().to_vec(), core::mem::size_of::<PortTally>())
            }
            13 => {
                let addr = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1 << 47),
                    2 => u64::MAX - rng.below(4096),
                    _ => rng.next_u64(),
                };
                (addr.to_le_bytes().to_vec(), 4)
            }
            14 => {
                let info: &[u8] = if rng.chance(80) { proto::LPC_CONNECT_INFO } else { b"not the demo" };
                let mut c = LpcConnect::new(info, if rng.chance(70) { 0 } else { 4096 << rng.below(10) });
                c.instance = if rng.chance(70) { LPC_PARENT } else { rng.u32() };
                if rng.chance(5) {
                    c.info_len = rng.u32();
                }
                (c.as_bytes().to_vec(), core::mem::size_of::<LpcConnected>())
            }
            15 => {
                let a = LpcAsk {
                    kind: small(rng, 3),
                    workers: small(rng, 17),
                    count: if rng.chance(10) { u32::MAX } else { small(rng, 50) },
                    body_len: small(rng, 600),
                    timeout_ms: small(rng, 100),
                    view_len: if rng.chance(70) { 0 } else { small(rng, 1 << 16) },
                };
                (a.as_bytes().to_vec(), core::mem::size_of::<LpcTally>())
            }
            _ => (Vec::new(), 0),
        };
        Req { code, input, out, kind: Kind::DemoValid }
    }
}

fn method_of(n: u64) -> ntcomm_proto::Method {
    match n {
        0 => ntcomm_proto::Method::Buffered,
        1 => ntcomm_proto::Method::InDirect,
        2 => ntcomm_proto::Method::OutDirect,
        _ => ntcomm_proto::Method::Neither,
    }
}

// ---------------------------------------------------------------------------
// The child processes (`ntcomm-fault-child ...`)

/// Runs child `role` (a channel's client, or a peer); prints `ready` once
/// it works, then loops until killed. Exits 3 after printing `error: ...`
/// when the driver fails it (e.g. because the driver stopped), 4 when an
/// answer is wrong.
pub fn child(role: &str, seed: u64, instance: u32, stall: bool) -> ExitCode {
    let mut rng = Rng::new(seed);
    let r = match role {
        "ioctl" => child_ioctl(&mut rng),
        "readwrite" => child_readwrite(&mut rng),
        "inverted" => child_inverted(&mut rng),
        "delayed" => child_delayed(&mut rng),
        "ring" => child_ring(&mut rng),
        "pipe" => child_pipe(&mut rng),
        "port" => child_port(&mut rng),
        "lpc" => child_lpc(&mut rng),
        "pipe-server" => child_pipe_server(&mut rng),
        "port-peer" => child_port_peer(stall),
        "lpc-peer" => child_lpc_peer(instance, stall),
        other => Err(ChildError::Wrong(format!("unknown role {other}"))),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(ChildError::Failed(e)) => {
            println!("error: {e}");
            ExitCode::from(3)
        }
        Err(ChildError::Wrong(e)) => {
            println!("wrong: {e}");
            ExitCode::from(4)
        }
    }
}

enum ChildError {
    /// The driver refused or went away.
    Failed(String),
    /// An answer was wrong.
    Wrong(String),
}

impl From<ntcomm_um::Error> for ChildError {
    fn from(e: ntcomm_um::Error) -> Self {
        ChildError::Failed(e.to_string())
    }
}

type ChildResult = Result<(), ChildError>;

fn ready(first: &mut bool) {
    if *first {
        println!("ready");
        let _ = std::io::stdout().flush();
        *first = false;
    }
}

fn child_ioctl(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let codes = [&proto::ECHO_BUFFERED, &proto::COMPARE_IN_DIRECT, &proto::ECHO_OUT_DIRECT, &proto::ECHO_NEITHER];
    let mut first = true;
    loop {
        let code = codes[rng.below(4) as usize];
        let payload = {
            let n = rng.below(proto::MAX_ECHO as u64 + 1) as usize;
            rng.bytes(n)
        };
        let mut out = vec![0u8; payload.len()];
        proto::second_buffer(code, &payload, &mut out, 0);
        let n = d.ioctl(code, &payload[..], &mut out[..])?;
        if n != payload.len() || out != payload {
            return Err(ChildError::Wrong(format!("{} echo differs", code.name)));
        }
        ready(&mut first);
    }
}

fn child_readwrite(rng: &mut Rng) -> ChildResult {
    let reader = Device::open_overlapped(proto::USER_PATH)?;
    let writer = Device::open(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&reader, 0)?;
    for tag in 0..4 {
        reader.start_read(vec![0; proto::MAX_MESSAGE], tag)?;
    }
    let mut first = true;
    let mut tag = 4;
    loop {
        // Sometimes a burst of writes queues messages in the driver.
        let burst = 1 + rng.below(8);
        for _ in 0..burst {
            let msg = {
                let n = 1 + rng.below(8192) as usize;
                rng.bytes(n)
            };
            match writer.write(&msg) {
                Ok(_) => {}
                Err(e) if e.ntstatus() == Some(NtStatus::STATUS_DEVICE_BUSY) => break,
                Err(e) => return Err(e.into()),
            }
        }
        for _ in 0..burst {
            let Some(c) = port.wait(Some(Duration::from_millis(200)))? else { break };
            c.result?;
            reader.start_read(vec![0; proto::MAX_MESSAGE], tag)?;
            tag += 1;
        }
        ready(&mut first);
    }
}

fn child_inverted(rng: &mut Rng) -> ChildResult {
    let waiter = Device::open_overlapped(proto::USER_PATH)?;
    let poster = Device::open(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&waiter, 0)?;
    for tag in 0..8 {
        waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, tag)?;
    }
    let mut first = true;
    let mut tag = 8;
    loop {
        let ev = {
            let n = rng.below(proto::MAX_EVENT as u64 + 1) as usize;
            rng.bytes(n)
        };
        match poster.ioctl(&proto::POST_EVENT, &ev[..], &mut ()) {
            Ok(_) => {}
            // Another client's waiters may have been taken: not ours to judge.
            Err(e) if e.ntstatus() == Some(NtStatus::STATUS_NOT_FOUND) => {}
            Err(e) => return Err(e.into()),
        }
        while let Some(c) = port.wait(Some(Duration::from_millis(1)))? {
            c.result?;
            waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, tag)?;
            tag += 1;
        }
        ready(&mut first);
    }
}

fn child_delayed(rng: &mut Rng) -> ChildResult {
    let d = Device::open_overlapped(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&d, 0)?;
    let mut tokens = HashMap::new();
    let mut first = true;
    let mut tag = 0u64;
    loop {
        while tokens.len() < 8 {
            let delay = Delay { millis: if rng.chance(30) { 0 } else { rng.below(50) as u32 }, token: rng.u32() };
            d.start_ioctl(&proto::DELAYED_COMPLETE, delay.as_bytes().to_vec(), 4, tag)?;
            tokens.insert(tag, delay.token);
            tag += 1;
        }
        if let Some(c) = port.wait(Some(Duration::from_secs(5)))? {
            c.result?;
            let want = tokens.remove(&c.tag).unwrap_or(0);
            if c.buffer != want.to_le_bytes() {
                return Err(ChildError::Wrong(format!("DELAYED_COMPLETE token {:?}, expected {want}", c.buffer)));
            }
            ready(&mut first);
        }
    }
}

fn child_ring(rng: &mut Rng) -> ChildResult {
    let echo = RingChannel::open_with(
        proto::USER_PATH,
        &proto::RINGS,
        &ntcomm_um::RingOptions::new(64 << 10, 64 << 10).with_mode(proto::RING_MODE_ECHO),
    )?;
    let source = RingChannel::open(proto::USER_PATH, &proto::RINGS, 64 << 10, 4 << 10)?;
    source.control(&proto::RING_SOURCE, &proto::RingSource::new(u64::MAX, 0, 64 + rng.below(1000) as u32))?;
    let (mut tx, mut rx) = echo.split();
    let (_stx, mut srx) = source.split();
    let mut rec = vec![0u8; 4096];
    let mut buf = vec![0u8; 64 << 10];
    let mut first = true;
    let mut seq = 0u64;
    let mut want_source = 0u64;
    loop {
        let len = proto::RECORD_MIN + rng.below(2000) as usize;
        proto::fill_record(seq, &mut rec[..len]);
        tx.send(&rec[..len], Some(Duration::from_secs(10)))?;
        let n = rx.recv(&mut buf, Some(Duration::from_secs(10)))?.ok_or_else(|| ChildError::Failed("no echo".into()))?;
        if buf[..n] != rec[..len] {
            return Err(ChildError::Wrong(format!("echo of record {seq} differs")));
        }
        seq += 1;
        for _ in 0..16 {
            match srx.try_recv(&mut buf)? {
                Some(n) => {
                    if proto::check_record(&buf[..n]) != Some(want_source) {
                        return Err(ChildError::Wrong(format!("source record {want_source} bad")));
                    }
                    want_source += 1;
                }
                None => break,
            }
        }
        ready(&mut first);
    }
}

fn child_pipe(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let mut first = true;
    loop {
        let msg = {
            let n = rng.below(proto::MAX_PIPE_MESSAGE as u64 + 1) as usize;
            rng.bytes(n)
        };
        match d.ioctl(&proto::PIPE_SEND, &msg[..], &mut ()) {
            Ok(_) => {}
            Err(e) if e.ntstatus() == Some(NtStatus::STATUS_DEVICE_BUSY) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e.into()),
        }
        ready(&mut first);
    }
}

fn child_port(rng: &mut Rng) -> ChildResult {
    let client = Arc::new(PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT)?);
    {
        // Answers the driver's questions.
        let client = client.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
            while let Ok(m) = client.get_message(&mut buf) {
                let seq = proto::check_record(m.body).unwrap_or(u64::MAX);
                if m.wants_reply() && client.reply(m.id, NtStatus::STATUS_SUCCESS, &verdict(seq)).is_err() {
                    break;
                }
            }
        });
    }
    let d = Device::open(proto::USER_PATH)?;
    let mut first = true;
    let mut out = vec![0u8; proto::MAX_PORT_MESSAGE];
    loop {
        let payload = {
            let n = rng.below(proto::MAX_PORT_MESSAGE as u64 + 1) as usize;
            rng.bytes(n)
        };
        let n = client.send(&payload, &mut out)?;
        if out[..n] != payload[..] {
            return Err(ChildError::Wrong("port echo differs".into()));
        }
        if rng.chance(20) {
            // Questions from the driver to this client, waited for forever.
            let ask =
                PortAsk { questions: 1 + rng.below(20) as u32, threads: 2, timeout_ms: 0, want_reply: 1, question_len: 64, reserved: 0 };
            let mut t = PortTally::default();
            d.ioctl(&proto::PORT_ASK, &ask, &mut t)?;
            if t.bad_replies != 0 {
                return Err(ChildError::Wrong(format!("{t:?}")));
            }
        }
        ready(&mut first);
    }
}

fn child_lpc(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let mut first = true;
    loop {
        lpc_connect(&d, LPC_PARENT).map_err(ChildError::Failed)?;
        for _ in 0..1 + rng.below(5) {
            let ask = LpcAsk {
                kind: proto::LPC_KIND_REQUEST,
                workers: 1 + rng.below(4) as u32,
                count: 1 + rng.below(50) as u32,
                body_len: rng.below(473) as u32,
                timeout_ms: 0,
                view_len: 0,
            };
            let mut t = LpcTally::default();
            d.ioctl(&proto::LPC_ASK, &ask, &mut t)?;
            if t.mismatched != 0 {
                return Err(ChildError::Wrong(format!("{t:?}")));
            }
            if t.failed != 0 {
                return Err(ChildError::Failed(format!("LPC_ASK failed: {}", NtStatus(t.first_error))));
            }
            ready(&mut first);
        }
    }
}

/// The pipe server the driver writes to, reading slowly so that the
/// driver's writes block (the kill comes mid-write).
fn child_pipe_server(rng: &mut Rng) -> ChildResult {
    crate::peer::register_or_warn("pipe child");
    let server = PipeServer::create(proto::PIPE_NAME)?;
    server.accept()?;
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        if !server.read_message(&mut buf)? {
            server.disconnect();
            server.accept()?;
            continue;
        }
        ready(&mut first);
        if rng.chance(50) {
            std::thread::sleep(Duration::from_millis(rng.below(5)));
        }
    }
}

/// A port client that answers questions, or (`stall`) takes one and
/// never answers.
fn child_port_peer(stall: bool) -> ChildResult {
    let client = PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT)?;
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
    loop {
        let m = client.get_message(&mut buf)?;
        if stall {
            println!("holding");
            let _ = std::io::stdout().flush();
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        let seq = proto::check_record(m.body).unwrap_or(u64::MAX);
        client.reply(m.id, NtStatus::STATUS_SUCCESS, &verdict(seq))?;
    }
}

/// An LPC server (instance `instance`) that answers, or (`stall`) never
/// answers.
fn child_lpc_peer(instance: u32, stall: bool) -> ChildResult {
    let server = lpc_server::create(instance).map_err(|e| ChildError::Failed(e.to_string()))?;
    println!("ready");
    let _ = std::io::stdout().flush();
    let stats = Arc::new(ServerStats::default());
    if stall {
        let s = stats.clone();
        std::thread::spawn(move || loop {
            if s.stalled.load(Ordering::Relaxed) > 0 {
                println!("holding");
                let _ = std::io::stdout().flush();
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        });
    }
    let stop = AtomicBool::new(false);
    lpc_server::serve(server, ServerOptions { stall }, &stats, &stop).map_err(|e| ChildError::Failed(e.to_string()))
}
