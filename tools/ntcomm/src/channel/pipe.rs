//! The named pipe: `PIPE_SEND` queues a message that the driver's system
//! thread writes to the pipe server of the registered user-mode process
//! (connecting, and reconnecting, by itself).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto as proto;
use ntcomm_proto::NtStatus;
use ntcomm_um::{Device, ErrorKind, PipeServer};
use serde_json::{json, Value};

use super::Channel;
use crate::bench::{new_hist, ns, timed_loop, BenchCase, Latency, Load, Measured, Options, Outcome, STALL};
use crate::demo::{err, Row, Step};
use crate::driver_state::stats;
use crate::fault_child::{ChildResult, Ready};
use crate::faults::{median, Kid, Probe, Suite, SETTLE};
use crate::fmt::micros;
use crate::rng::Rng;

/// The fault child role of the pipe's server.
const PEER_ROLE: &str = "pipe-server";

/// Sends `msg` with `PIPE_SEND`, retrying while the driver's queue is full
/// (a server that stopped reading), until `deadline`.
fn send_when_room(dev: &Device, msg: &[u8], deadline: Instant) -> ntcomm_um::Result<()> {
    loop {
        match dev.ioctl(&proto::PIPE_SEND, msg, &mut ()) {
            Ok(_) => return Ok(()),
            Err(e) if e.ntstatus() == Some(NtStatus::STATUS_DEVICE_BUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------
// Demo

/// Five messages to a pipe server on a thread of this process.
pub fn demo(dev: &Device) -> Vec<Row> {
    vec![Row::of("named pipe", "PIPE_SEND x5 -> user pipe server (thread)", pipe(dev))]
}

fn pipe(dev: &Device) -> Step {
    const MESSAGES: usize = 5;
    /// The driver reconnects every 100 ms; allow for a slow Wine.
    const PIPE_TIMEOUT: Duration = Duration::from_secs(10);
    let before = stats(dev)?;
    // Messages carry this run's id, so leftovers of an earlier run (the
    // driver keeps undelivered messages) are recognised and skipped.
    let run = format!("ntcomm demo {:08x}", std::process::id() ^ (before.irps_completed as u32));
    let want: Vec<String> = (0..MESSAGES).map(|i| format!("{run} message {i} {}", "x".repeat(i * 100))).collect();
    crate::peer::register().map_err(|e| format!("registering as the pipe server: {e}"))?;
    let server = PipeServer::create(proto::PIPE_NAME).map_err(|e| format!("{e} (is another pipe server running?)"))?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let prefix = format!("{run} ");
        std::thread::spawn(move || {
            let got = (|| -> Result<(Vec<String>, usize), String> {
                server.accept().map_err(err)?;
                let (mut got, mut foreign, mut buf) = (Vec::new(), 0usize, Vec::new());
                while got.len() < MESSAGES {
                    if !server.read_message(&mut buf).map_err(err)? {
                        return Err(format!("the driver hung up after {} messages", got.len()));
                    }
                    match String::from_utf8(buf.clone()) {
                        Ok(m) if m.starts_with(&prefix) => got.push(m),
                        _ => foreign += 1,
                    }
                }
                Ok((got, foreign))
            })();
            let _ = done_tx.send(got);
            // The server closes here; the driver reconnects to the next one.
        });
    }
    let t = Instant::now();
    for m in &want {
        dev.ioctl(&proto::PIPE_SEND, m.as_bytes(), &mut ()).map_err(err)?;
    }
    let (got, foreign) = match done_rx.recv_timeout(PIPE_TIMEOUT) {
        Ok(r) => r?,
        Err(_) => return Err(format!("the pipe server received nothing complete within {PIPE_TIMEOUT:?} (driver never connected?)")),
    };
    let took = t.elapsed();
    if let Some(i) = (0..MESSAGES).find(|&i| got[i] != want[i]) {
        return Err(format!("message {i} is {:?}, expected {:?} (lost, torn or reordered)", got[i], want[i]));
    }
    let after = stats(dev)?;
    let sent = after.pipe_messages_sent - before.pipe_messages_sent;
    if sent < MESSAGES as u64 {
        return Err(format!("pipe_messages_sent grew by {sent}, expected at least {MESSAGES}"));
    }
    let note = if foreign > 0 { format!(" ({foreign} leftover messages of an earlier run skipped)") } else { String::new() };
    let bytes: usize = want.iter().map(String::len).sum();
    Ok(format!(
        "{MESSAGES} messages ({bytes} B) received whole and in order; send->last receipt {} (driver connects within 100 ms){note}",
        micros(took)
    ))
}

// ---------------------------------------------------------------------------
// Bench

/// The pipe's benchmark case.
pub const BENCH: [BenchCase; 1] = [BenchCase {
    name: "pipe",
    channel: Channel::Pipe,
    round_trip: "PIPE_SEND of SIZE bytes -> driver pipe thread -> pipe server thread's ReadFile; 1 in flight; latency = send -> receipt",
    load: Load::RoundTrips,
    max_payload: proto::MAX_PIPE_MESSAGE,
    // A demo record: the receiving server checks sequence and checksum.
    min_payload: proto::RECORD_MIN,
    in_c_baseline: false,
    run: |opts, bar, _| bench(opts, bar),
}];

/// What the pipe server thread reports per message of this run.
type Receipt = Result<(u64, Instant), String>;

fn bench(opts: &Options, bar: &ProgressBar) -> Outcome {
    let size = opts.size;
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    crate::peer::register_or_warn("pipe bench");
    let server = match PipeServer::create(proto::PIPE_NAME) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("{e} (another pipe server on {} running?)", proto::PIPE_NAME)),
    };
    // Sequence numbers carry this run's id in the high half: leftovers of an
    // earlier run (the driver keeps undelivered messages) are skipped.
    let run_id = u64::from(std::process::id()) << 40 | (u64::from(Instant::now().elapsed().subsec_nanos()) & 0xff) << 32;
    let stop_seq = run_id | 0xffff_ffff;
    let (tx, rx) = mpsc::channel::<Receipt>();
    let thread = std::thread::spawn(move || -> (PipeServer, u64) {
        let mut foreign = 0u64;
        if let Err(e) = server.accept() {
            let _ = tx.send(Err(format!("ConnectNamedPipe: {e}")));
            return (server, foreign);
        }
        let mut buf = Vec::new();
        loop {
            match server.read_message(&mut buf) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tx.send(Err("the driver hung up".into()));
                    break;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    break;
                }
            }
            let now = Instant::now();
            match proto::check_record(&buf) {
                Some(seq) if seq == stop_seq => break,
                Some(seq) if seq & !0xffff_ffff == run_id => {
                    if tx.send(Ok((seq, now))).is_err() {
                        break;
                    }
                }
                _ => foreign += 1,
            }
        }
        (server, foreign)
    });
    let mut msg = vec![0u8; size];
    let busy = std::cell::Cell::new(0u64);
    let mut send = |seq: u64| -> Result<(Instant, Duration), String> {
        proto::fill_record(seq, &mut msg);
        loop {
            let t = Instant::now();
            match dev.ioctl(&proto::PIPE_SEND, &msg[..], &mut ()) {
                Ok(_) => return Ok((t, t.elapsed())),
                Err(e) if e.kind() == ErrorKind::Busy => {
                    busy.set(busy.get() + 1);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("PIPE_SEND: {e}")),
            }
        }
    };
    let receipt = |want: u64, wait: Duration| -> Result<Instant, String> {
        match rx.recv_timeout(wait) {
            Ok(Ok((seq, at))) if seq == want => Ok(at),
            Ok(Ok((seq, _))) => Err(format!("received message {:#x}, expected {want:#x} (lost or reordered)", seq & 0xffff_ffff)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("message {} not received within {wait:?}", want & 0xffff_ffff)),
        }
    };
    let mut next = 0u64;
    let measured = (|| -> Result<Measured, String> {
        // The first message also waits for the driver to connect (it tries
        // every 100 ms).
        for i in 0..opts.warmup.max(1) {
            send(run_id | next)?;
            receipt(run_id | next, if i == 0 { Duration::from_secs(10) } else { STALL })?;
            next += 1;
        }
        let mut call = new_hist();
        let mut m = timed_loop(&Options { warmup: 0, ..opts.clone() }, bar, |_| {
            let (t, took) = send(run_id | next)?;
            let at = receipt(run_id | next, STALL)?;
            next += 1;
            call.saturating_record(ns(took));
            Ok(at.saturating_duration_since(t))
        })?;
        if let Some(l) = Latency::of(&call) {
            m.notes.push(format!(
                "the PIPE_SEND call itself (queues the message, returns before delivery): p50 {:.1} us, p99 {:.1} us",
                l.p50, l.p99
            ));
        }
        // Burst: as many messages as the driver takes, back to back.
        let burst = opts.iterations.min(proto::PIPE_QUEUE_CAPACITY as u64 * 4);
        let first = next;
        let t = Instant::now();
        for _ in 0..burst {
            send(run_id | next)?;
            next += 1;
        }
        let mut last = t;
        for seq in first..next {
            last = receipt(run_id | seq, STALL)?;
        }
        let secs = last.saturating_duration_since(t).as_secs_f64();
        m.notes.push(format!(
            "burst of {burst} messages sent back to back: all received in order in {:.1} ms = {:.0} messages/s ({:.3} MB/s); PIPE_SEND refused (queue full) {} times",
            secs * 1e3,
            burst as f64 / secs.max(1e-9),
            burst as f64 * size as f64 / secs.max(1e-9) / 1e6,
            busy.get()
        ));
        Ok(m)
    })();
    // Stop the server thread through the pipe itself; if that fails the
    // thread stays blocked in ReadFile and is left behind.
    let stopped = send(stop_seq).is_ok() && {
        let until = Instant::now() + STALL;
        while !thread.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        thread.is_finished()
    };
    let foreign = if stopped { thread.join().map(|(_server, f)| f).ok() } else { None };
    match measured {
        Ok(mut m) => {
            match foreign {
                Some(0) => {}
                Some(f) => m.notes.push(format!("{f} leftover messages of an earlier run skipped")),
                None => m.notes.push("the pipe server thread did not stop (left behind)".into()),
            }
            Outcome::Done(m)
        }
        Err(e) => Outcome::Failed(e),
    }
}

// ---------------------------------------------------------------------------
// Fault suite

/// The suite's pipe server (its [`PipeDrain`]) receives a new message.
pub(crate) fn new_client_works(probe: &Probe) -> Result<(), String> {
    let received = probe.pipe_received.ok_or("no pipe server")?;
    let before = received.load(Ordering::Relaxed);
    let deadline = Instant::now() + SETTLE;
    // A full queue (a peer that stopped reading) refuses sends until the
    // server has drained it.
    send_when_room(probe.dev, b"fault-suite: for the server", deadline).map_err(err)?;
    while received.load(Ordering::Relaxed) == before {
        if Instant::now() > deadline {
            return Err("the pipe server received nothing".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Messages of random lengths, back to back (waiting while the queue is full).
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let mut ready = Ready::default();
    loop {
        let msg = {
            let n = rng.below(proto::MAX_PIPE_MESSAGE as u64 + 1) as usize;
            rng.bytes(n)
        };
        // The driver refuses while its queue is full; the server drains it.
        send_when_room(&d, &msg, Instant::now() + Duration::from_secs(3600))?;
        ready.now();
    }
}

/// The pipe server the driver writes to, reading slowly so that the
/// driver's writes block (the kill comes mid-write).
pub(crate) fn peer_workload(rng: &mut Rng) -> ChildResult {
    crate::peer::register_or_warn("pipe child");
    let server = PipeServer::create(proto::PIPE_NAME)?;
    server.accept()?;
    let mut buf = Vec::new();
    let mut ready = Ready::default();
    loop {
        if !server.read_message(&mut buf)? {
            server.disconnect();
            server.accept()?;
            continue;
        }
        ready.now();
        if rng.chance(50) {
            std::thread::sleep(Duration::from_millis(rng.below(5)));
        }
    }
}

/// A pipe server in a thread that reads (and counts) every message.
pub(crate) struct PipeDrain {
    stop: Arc<AtomicBool>,
    pub(crate) received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PipeDrain {
    pub(crate) fn start() -> Result<PipeDrain, String> {
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
    pub(crate) fn stop(self, dev: &Device) {
        self.stop_counting(dev);
    }
}

impl PipeDrain {
    /// [`stop`](Self::stop), returning how many wake-up messages the
    /// driver accepted on the way.
    pub(crate) fn stop_counting(self, dev: &Device) -> u64 {
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

/// The pipe server killed while the driver writes to it.
pub(crate) fn peer_kills(suite: &mut Suite) -> Result<Value, String> {
    suite.pipe_start()?;
    let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
    let base = suite.steady(&dev, Channel::Pipe)?;
    let start = stats(&dev)?;
    let accepted = Arc::new(AtomicU64::new(0));
    let mut mid_write = 0u32;
    let mut settles = Vec::new();
    for i in 0..suite.opts.peer_kills {
        // The child is the server now.
        if let Some(p) = suite.pipe.take() {
            accepted.fetch_add(p.stop_counting(&dev), Ordering::Relaxed);
        }
        let mut kid = Kid::spawn(&[PEER_ROLE])?;
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
        std::thread::sleep(Duration::from_millis(suite.rng.below(suite.opts.max_delay_ms + 1)));
        kid.kill();
        stop.store(true, Ordering::Release);
        let sent = sender.join().map_err(|_| "sender panicked".to_string())?;
        ready.map_err(|e| format!("peer kill {i}: {e}"))?;
        sent.map_err(|e| format!("peer kill {i}: sender: {e}"))?;
        // A new server: the driver reconnects and delivers what it held.
        let t = Instant::now();
        suite.pipe_start()?;
        let after = suite.recovered(&dev, Channel::Pipe, &base).map_err(|e| format!("peer kill {i}: {e}"))?;
        settles.push(t.elapsed().as_millis() as u64);
        if after.pipe_write_failures > before.pipe_write_failures {
            mid_write += 1;
        }
    }
    let end = stats(&dev)?;
    // Every message the driver accepted was written to a server (the
    // new client checks of `recovered` count as accepted too).
    let accepted = accepted.load(Ordering::Relaxed) + u64::from(suite.opts.peer_kills);
    let delivered = end.pipe_messages_sent - start.pipe_messages_sent;
    let received = suite.pipe_received().map_or(0, |r| r.load(Ordering::Relaxed));
    suite.say(format!(
        "   {} pipe servers killed ({} while the driver's write failed), {} write failures, {} messages accepted, {} written by the driver; recovered in {} ms median",
        suite.opts.peer_kills,
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
        "peer_kills": suite.opts.peer_kills,
        "kills_with_failed_write": mid_write,
        "driver_write_failures": end.pipe_write_failures - start.pipe_write_failures,
        "messages_accepted": accepted,
        "messages_written": delivered,
        "received_by_last_server": received,
        "recovered_ms": {"median": median(&settles), "max": settles.iter().max()},
        "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
    }))
}
