//! LPC: the driver is the client of a user-mode LPC server (this crate's
//! [`lpc_server`]): `LPC_CONNECT` connects it (optionally with a shared
//! section view), `LPC_ASK` has its workers send requests or datagrams,
//! `LPC_DISCONNECT` closes the connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto::{self as proto, LpcAsk, LpcConnect, LpcConnected, LpcTally};
use ntcomm_proto::NtStatus;
use ntcomm_um::Device;
use serde_json::{json, Value};

use super::Channel;
use crate::bench::{driver_hist, outcome, BenchCase, Load, Measured, Options, Outcome};
use crate::demo::{err, Row, Step, STEP_TIMEOUT};
use crate::driver_state::stats;
use crate::fault_child::{announce, ChildError, ChildResult, Ready};
use crate::faults::{median, Kid, Probe, Suite, LPC_PARENT};
use crate::fmt::{micros, nanos};
use crate::lpc_server::{self, ServerOptions, ServerStats};
use crate::rng::Rng;

/// The fault child role of an LPC server.
const PEER_ROLE: &str = "lpc-peer";
/// The instances a peer-kill child serves (one per round: a killed
/// server's name may linger a moment).
const LPC_PEER_BASE: u32 = 700;

/// Connects the driver (`LPC_CONNECT`) to demo server `instance`,
/// presenting `info`, with a section view of `view_size` bytes (0: none).
fn connect(dev: &Device, instance: u32, info: &[u8], view_size: u32) -> ntcomm_um::Result<LpcConnected> {
    let mut c = LpcConnect::new(info, view_size);
    c.instance = instance;
    let mut out = LpcConnected { max_message: 0, info_len: 0, view_size: 0, info: [0; 128] };
    dev.ioctl(&proto::LPC_CONNECT, &c, &mut out).map(|_| out)
}

/// [`connect`] with the demo's information and no view, after registering
/// this process as the driver's server (the driver may have been restarted
/// since it last did).
fn connect_registered(dev: &Device, instance: u32) -> Result<LpcConnected, String> {
    crate::peer::register().map_err(|e| format!("register: {e}"))?;
    connect(dev, instance, proto::LPC_CONNECT_INFO, 0).map_err(err)
}

// ---------------------------------------------------------------------------
// Demo

/// A server on a thread of this process: the driver connects (and is
/// refused with the wrong information), asks, writes through the view and
/// sends datagrams.
pub fn demo(dev: &Device) -> Vec<Row> {
    match lpc_server::BackgroundServer::start(DEMO_LPC_INSTANCE, ServerOptions::default()) {
        Ok(srv) => vec![
            Row::of("LPC port", "user server; driver LPC_CONNECT (accepted)", lpc_connect(dev, &srv)),
            Row::of("LPC port", "driver LPC_CONNECT, wrong information (refused)", lpc_refused(dev, &srv)),
            Row::of("LPC port", "driver->user: LPC_ASK 4 workers x 100 requests", demo_ask(dev, &srv)),
            Row::of("LPC port", "driver->user: 1 MiB through the port's view", lpc_view(dev, &srv)),
            Row::of("LPC port", "driver->user: 100 datagrams", lpc_datagrams(dev, &srv)),
        ],
        Err(e) => vec![Row::of("LPC port", "create the server port", Err(e.to_string()))],
    }
}

const DEMO_LPC_INSTANCE: u32 = 100;

fn lpc_connect_to(dev: &Device, info: &[u8], view_size: u32) -> ntcomm_um::Result<LpcConnected> {
    connect(dev, DEMO_LPC_INSTANCE, info, view_size)
}

fn lpc_connect(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    let t = Instant::now();
    let c = lpc_connect_to(dev, proto::LPC_CONNECT_INFO, 0).map_err(err)?;
    let info = c.info.get(..c.info_len as usize).unwrap_or(&[]);
    if info != proto::LPC_SERVER_INFO || srv.stats.accepted.load(Ordering::Relaxed) != 1 || !stats(dev).is_ok_and(|s| s.lpc_connected == 1)
    {
        return Err(format!(
            "server answered {:?}, accepted {}",
            String::from_utf8_lossy(info),
            srv.stats.accepted.load(Ordering::Relaxed)
        ));
    }
    Ok(format!(
        "{} accepted in {}; the driver got {:?}, max message {} B",
        lpc_server::port_name(DEMO_LPC_INSTANCE),
        micros(t.elapsed()),
        String::from_utf8_lossy(info),
        c.max_message
    ))
}

fn lpc_refused(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    match lpc_connect_to(dev, b"not the demo", 0) {
        Ok(_) => Err("the server accepted a wrong connection information".to_owned()),
        Err(e) if e.ntstatus() == Some(NtStatus::STATUS_PORT_CONNECTION_REFUSED) && srv.stats.refused.load(Ordering::Relaxed) == 1 => {
            Ok(format!("expected error: {e}"))
        }
        Err(e) => Err(format!("unexpected: {e}")),
    }
}

fn lpc_tally(dev: &Device, ask: proto::LpcAsk) -> Result<proto::LpcTally, String> {
    let mut t = proto::LpcTally::default();
    dev.ioctl(&proto::LPC_ASK, &ask, &mut t).map_err(err)?;
    Ok(t)
}

fn demo_ask(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    let before = srv.stats.requests.load(Ordering::Relaxed);
    let t = Instant::now();
    let ask = proto::LpcAsk { kind: proto::LPC_KIND_REQUEST, workers: 4, count: 100, body_len: 64, timeout_ms: 30_000, view_len: 0 };
    let tally = lpc_tally(dev, ask)?;
    let served = srv.stats.requests.load(Ordering::Relaxed) - before;
    if tally.replied != 400 || tally.mismatched != 0 || tally.failed != 0 || served != 400 {
        return Err(format!(
            "replied {} mismatched {} failed {} (first error {}), server answered {served}",
            tally.replied,
            tally.mismatched,
            tally.failed,
            NtStatus(tally.first_error)
        ));
    }
    Ok(format!("400 replies, each matched to its request, in {}", micros(t.elapsed())))
}

fn lpc_view(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    lpc_connect_to(dev, proto::LPC_CONNECT_INFO, 1 << 20).map_err(err)?;
    let t = Instant::now();
    let ask = proto::LpcAsk { kind: proto::LPC_KIND_VIEW, workers: 1, count: 4, body_len: 0, timeout_ms: 30_000, view_len: 1 << 20 };
    let tally = lpc_tally(dev, ask)?;
    if tally.replied != 4 || srv.stats.view_ok.load(Ordering::Relaxed) != 4 {
        return Err(format!("replied {}, server checksums ok {}", tally.replied, srv.stats.view_ok.load(Ordering::Relaxed)));
    }
    Ok(format!("4 x 1 MiB written by the driver, checksummed by the server, in {}", micros(t.elapsed())))
}

fn lpc_datagrams(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    let before = srv.stats.datagrams.load(Ordering::Relaxed);
    let ask = proto::LpcAsk { kind: proto::LPC_KIND_DATAGRAM, workers: 1, count: 100, body_len: 64, timeout_ms: 30_000, view_len: 0 };
    let tally = lpc_tally(dev, ask)?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    while srv.stats.datagrams.load(Ordering::Relaxed) < before + 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = srv.stats.datagrams.load(Ordering::Relaxed) - before;
    let _ = dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ());
    if tally.sent != 100 || got != 100 {
        return Err(format!("sent {}, server received {got}", tally.sent));
    }
    Ok("100 sent, 100 received and validated; then LPC_DISCONNECT".to_owned())
}

// ---------------------------------------------------------------------------
// Bench

/// The LPC benchmark cases.
pub const BENCH: [BenchCase; 3] = [
    BenchCase {
        name: "lpc-ask-1",
        channel: Channel::Lpc,
        round_trip: "LPC_ASK: 1 driver worker ZwRequestWaitReplyPort SIZE-byte requests to an ntcomm_um LPC server thread, reply checked by the driver; latency = request -> reply timed by the driver",
        load: Load::Questions,
        max_payload: ntcomm_proto::lpc::MAX_BODY,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, 1, false),
    },
    BenchCase {
        name: "lpc-ask",
        channel: Channel::Lpc,
        round_trip: "LPC_ASK with 4 driver workers on one connection (the server answers one at a time); ops = requests, throughput from the IOCTL's duration; latency timed by the driver",
        load: Load::Questions,
        max_payload: ntcomm_proto::lpc::MAX_BODY,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, 4, false),
    },
    BenchCase {
        name: "lpc-view",
        channel: Channel::Lpc,
        round_trip: "LPC_ASK through the connection's section view: the driver writes SIZE bytes into the view and requests; the server checksums its mapping of the view and replies; latency timed by the driver",
        load: Load::Questions,
        max_payload: proto::LPC_MAX_VIEW,
        // The view holds a demo record, checksummed by the server.
        min_payload: proto::RECORD_MIN,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, 1, true),
    },
];

/// The LPC server instance the benchmarks use (the demo and tests use others).
const BENCH_LPC_INSTANCE: u32 = 200;

fn bench_ask(opts: &Options, bar: &ProgressBar, workers: u32, through_view: bool) -> Outcome {
    let size = opts.size;
    static SERVER: std::sync::OnceLock<Result<lpc_server::BackgroundServer, String>> = std::sync::OnceLock::new();
    let server = SERVER.get_or_init(|| {
        lpc_server::BackgroundServer::start(BENCH_LPC_INSTANCE, lpc_server::ServerOptions::default()).map_err(|e| e.to_string())
    });
    if let Err(e) = server {
        return Outcome::Failed(format!("LPC server port: {e}"));
    }
    let run = || -> Result<Measured, String> {
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let view_size = if through_view { size.max(4096) as u32 } else { 0 };
        connect(&dev, BENCH_LPC_INSTANCE, proto::LPC_CONNECT_INFO, view_size).map_err(|e| format!("LPC_CONNECT: {e}"))?;
        let ask = |count: u32| -> Result<(proto::LpcTally, Duration), String> {
            let a = if through_view {
                proto::LpcAsk { kind: proto::LPC_KIND_VIEW, workers, count, body_len: 0, timeout_ms: 0, view_len: size as u32 }
            } else {
                proto::LpcAsk { kind: proto::LPC_KIND_REQUEST, workers, count, body_len: size as u32, timeout_ms: 0, view_len: 0 }
            };
            let mut t = proto::LpcTally::default();
            let started = Instant::now();
            dev.ioctl(&proto::LPC_ASK, &a, &mut t).map_err(|e| format!("LPC_ASK: {e}"))?;
            let took = started.elapsed();
            let n = u64::from(count) * u64::from(workers);
            if (t.sent, t.replied, t.mismatched, t.failed) != (n, n, 0, 0) {
                return Err(format!(
                    "LPC_ASK of {n}: tally sent {} replied {} mismatched {} failed {} (first error {})",
                    t.sent,
                    t.replied,
                    t.mismatched,
                    t.failed,
                    NtStatus(t.first_error)
                ));
            }
            Ok((t, took))
        };
        let warm = u32::try_from(opts.warmup.clamp(50, 10_000)).unwrap_or(50);
        let (_, took) = ask(warm)?;
        let per_s = f64::from(warm * workers) / took.as_secs_f64().max(1e-9);
        let fit = (per_s * opts.max_seconds / f64::from(workers)).floor().max(1.0).min(f64::from(u32::MAX)) as u32;
        let want = (opts.port_questions / workers).max(1);
        let count = want.min(fit);
        let (tally, took) = ask(count)?;
        let n = u64::from(count) * u64::from(workers);
        bar.inc(n);
        let _ = dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ());
        let hist = driver_hist(&tally.rtt_hist);
        let notes = vec![
            format!(
                "{} warm-up requests first ({per_s:.0}/s), then {n} timed, every reply matched to its request by the driver",
                warm * workers
            ),
            format!(
                "{workers} driver worker(s) on one connection; {} per request on average (duration / requests)",
                nanos(took / u32::try_from(n).unwrap_or(u32::MAX).max(1))
            ),
            "latency columns: request -> reply as timed by the driver per request, bucketed (lower bounds, within 25 %)".to_owned(),
        ];
        Ok(Measured { hist, iterations: n, elapsed: took, capped: count < want, notes })
    };
    outcome(run())
}

// ---------------------------------------------------------------------------
// Fault suite

/// The driver connects to the suite's server and asks it 20 requests.
pub(crate) fn new_client_works(probe: &Probe) -> Result<(), String> {
    connect_registered(probe.dev, LPC_PARENT)?;
    let ask = LpcAsk { kind: proto::LPC_KIND_REQUEST, workers: 2, count: 10, body_len: 100, timeout_ms: 30_000, view_len: 0 };
    let mut t = LpcTally::default();
    probe.dev.ioctl(&proto::LPC_ASK, &ask, &mut t).map_err(err)?;
    if t.replied != 20 || t.failed != 0 {
        return Err(format!("LPC_ASK tally {t:?}"));
    }
    probe.dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ()).map_err(err)?;
    Ok(())
}

/// Connect, a few random `LPC_ASK`s, again.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let mut ready = Ready::default();
    loop {
        connect_registered(&d, LPC_PARENT).map_err(ChildError::Failed)?;
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
            ready.now();
        }
    }
}

/// An LPC server (instance `instance`) that answers, or (`stall`) never
/// answers.
pub(crate) fn peer_workload(instance: u32, stall: bool) -> ChildResult {
    let server = lpc_server::create(instance).map_err(|e| ChildError::Failed(e.to_string()))?;
    announce("ready");
    let stats = Arc::new(ServerStats::default());
    if stall {
        let s = stats.clone();
        std::thread::spawn(move || loop {
            if s.stalled.load(Ordering::Relaxed) > 0 {
                announce("holding");
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        });
    }
    let stop = AtomicBool::new(false);
    lpc_server::serve(server, ServerOptions { stall }, &stats, &stop).map_err(|e| ChildError::Failed(e.to_string()))
}

/// The LPC server killed while the driver waits for its reply.
pub(crate) fn peer_kills(suite: &mut Suite) -> Result<Value, String> {
    suite.lpc_server()?;
    let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
    let base = suite.steady(&dev, Channel::Lpc)?;
    let mut asks_ms = Vec::new();
    let mut totals = LpcTally::default();
    for i in 0..suite.opts.peer_kills {
        let stall = i % 3 != 2;
        let instance = (LPC_PEER_BASE + i).to_string();
        let mut args = vec![PEER_ROLE, "--instance", instance.as_str()];
        if stall {
            args.push("--stall");
        }
        let kid = Kid::spawn_ready(&args).map_err(|e| format!("peer kill {i}: {e}"))?;
        connect_registered(&dev, LPC_PEER_BASE + i).map_err(|e| format!("peer kill {i}: LPC_CONNECT: {e}"))?;
        let (tally, ms) = suite.kill_mid_call(i, kid, stall, "LPC_ASK", "server", || {
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
        suite.recovered(&dev, Channel::Lpc, &base).map_err(|e| format!("peer kill {i}: {e}"))?;
    }
    suite.say(format!(
        "   {} LPC servers killed mid-request: LPC_ASK ended {} ms median / {} ms max after the kill with STATUS_PORT_DISCONNECTED; {} requests sent, {} replied",
        suite.opts.peer_kills,
        median(&asks_ms),
        asks_ms.iter().max().unwrap_or(&0),
        totals.sent,
        totals.replied
    ));
    Ok(json!({
        "channel": "lpc",
        "peer_kills": suite.opts.peer_kills,
        "ask_ended_after_kill_ms": {"median": median(&asks_ms), "max": asks_ms.iter().max()},
        "requests_sent": totals.sent,
        "requests_replied": totals.replied,
        "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
    }))
}
