//! The echo IOCTLs, one per transfer method (`ECHO_BUFFERED`,
//! `COMPARE_IN_DIRECT`, `ECHO_OUT_DIRECT`, `ECHO_NEITHER`) and `GET_STATS`:
//! synchronous calls, and (bench `overlapped-ioctl`) many in flight through
//! one completion port, or (bench `threads-ioctl`) from a thread each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto::{self as proto, Stats};
use ntcomm_proto::Ioctl;
use ntcomm_um::{CompletionPort, Device};

use super::Channel;
use crate::bench::{new_hist, ns, outcome, timed, BenchCase, Load, Measured, Options, Outcome, STALL};
use crate::demo::{err, Row, Step};
use crate::fault_child::{ChildError, ChildResult, Ready};
use crate::faults::Probe;
use crate::fmt::micros;
use crate::payload::{check_echo, pattern};
use crate::rng::Rng;

/// An IOCTL with byte-slice input and output: the four echoes.
type Echo = Ioctl<[u8], [u8]>;

/// The echoes, one per transfer method.
const ECHOES: [&Echo; 4] = [&proto::ECHO_BUFFERED, &proto::COMPARE_IN_DIRECT, &proto::ECHO_OUT_DIRECT, &proto::ECHO_NEITHER];

/// One echo of `payload` through `ioctl` into `out` (as long as the
/// payload), checked byte for byte.
fn echo_once(dev: &Device, ioctl: &Echo, payload: &[u8], out: &mut [u8], poison: u8) -> Result<(), String> {
    proto::second_buffer(ioctl, payload, out, poison);
    let n = dev.ioctl(ioctl, payload, out).map_err(|e| format!("{}: {e}", ioctl.name))?;
    check_echo(payload, n, out).map_err(|e| format!("{}: {e}", ioctl.name))
}

// ---------------------------------------------------------------------------
// Demo

/// Each echo at a length that matters to its method, then `GET_STATS`.
pub fn demo(dev: &Device) -> Vec<Row> {
    let lengths = [
        ("ECHO METHOD_BUFFERED", 1500),
        ("COMPARE METHOD_IN_DIRECT", 4096),
        ("ECHO METHOD_OUT_DIRECT", 4097),
        ("ECHO METHOD_NEITHER", 777),
    ];
    let mut rows: Vec<Row> = ECHOES
        .iter()
        .zip(lengths)
        .enumerate()
        .map(|(i, (ioctl, (op, len)))| Row::of("IOCTL", op, echo(dev, ioctl, len, i as u8)))
        .collect();
    rows.push(Row::of("IOCTL", "GET_STATS", get_stats(dev)));
    rows
}

fn echo(dev: &Device, ioctl: &Echo, len: usize, seed: u8) -> Step {
    let payload = pattern(len, seed);
    // Poisoned output: bytes the driver did not write show up as 0xEE.
    let mut out = vec![0xEE; len];
    let t = Instant::now();
    echo_once(dev, ioctl, &payload, &mut out, 0xEE)?;
    Ok(format!("{len} B echoed, verified byte for byte, {}", micros(t.elapsed())))
}

fn get_stats(dev: &Device) -> Step {
    let t = Instant::now();
    let s = dev.ioctl_get(&proto::GET_STATS).map_err(err)?;
    let lat = t.elapsed();
    if s.open_handles < 1 {
        return Err(format!("open_handles is {} with this handle open", s.open_handles));
    }
    Ok(format!(
        "{} B, {}: {} handles open, {} IRPs completed, {} in flight, {} cancelled, pool {} B in {} blocks",
        core::mem::size_of::<Stats>(),
        micros(lat),
        s.open_handles,
        s.irps_completed,
        s.irps_in_flight,
        s.irps_cancelled,
        s.pool_bytes_outstanding,
        s.pool_allocations_outstanding
    ))
}

// ---------------------------------------------------------------------------
// Bench

/// The IOCTL channel's benchmark cases.
pub const BENCH: [BenchCase; 8] = [
    BenchCase {
        name: "ioctl-buffered",
        channel: Channel::Ioctl,
        round_trip: "synchronous ECHO_BUFFERED (METHOD_BUFFERED) of SIZE bytes",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: true,
        run: |opts, bar, _| bench_echo(opts, bar, &proto::ECHO_BUFFERED),
    },
    BenchCase {
        name: "ioctl-in-direct",
        channel: Channel::Ioctl,
        round_trip: "synchronous COMPARE_IN_DIRECT (METHOD_IN_DIRECT) of SIZE bytes",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: true,
        run: |opts, bar, _| bench_echo(opts, bar, &proto::COMPARE_IN_DIRECT),
    },
    BenchCase {
        name: "ioctl-direct",
        channel: Channel::Ioctl,
        round_trip: "synchronous ECHO_OUT_DIRECT (METHOD_OUT_DIRECT) of SIZE bytes",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: true,
        run: |opts, bar, _| bench_echo(opts, bar, &proto::ECHO_OUT_DIRECT),
    },
    BenchCase {
        name: "ioctl-neither",
        channel: Channel::Ioctl,
        round_trip: "synchronous ECHO_NEITHER (METHOD_NEITHER, captured by the driver) of SIZE bytes",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: true,
        run: |opts, bar, _| bench_echo(opts, bar, &proto::ECHO_NEITHER),
    },
    BenchCase {
        name: "overlapped-ioctl",
        channel: Channel::Ioctl,
        round_trip: "ECHO_BUFFERED of SIZE bytes, DEPTH in flight through one IOCP; latency = issue -> dequeue",
        load: Load::InFlight,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| overlapped(opts, bar),
    },
    BenchCase {
        name: "threads-ioctl",
        channel: Channel::Ioctl,
        round_trip:
            "ECHO_BUFFERED of SIZE bytes, DEPTH threads each with its own synchronous handle, one echo at a time (thread per request)",
        load: Load::InFlight,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| threads(opts, bar),
    },
    BenchCase {
        name: "async-ioctl",
        channel: Channel::Ioctl,
        round_trip: "ECHO_BUFFERED of SIZE bytes awaited (ntcomm_um::aio) in a tokio task, one at a time",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| crate::bench::aio::ioctl(opts, bar),
    },
    BenchCase {
        name: "async-overlapped",
        channel: Channel::Ioctl,
        round_trip: "ECHO_BUFFERED of SIZE bytes, DEPTH tokio tasks each awaiting one at a time; latency = issue -> task resumed",
        load: Load::InFlight,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| crate::bench::aio::overlapped(opts, bar),
    },
];

fn bench_echo(opts: &Options, bar: &ProgressBar, ioctl: &Echo) -> Outcome {
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x21);
    let mut out = vec![0u8; opts.size];
    outcome(timed(opts, bar, || echo_once(&dev, ioctl, &payload, &mut out, 0xEE)))
}

fn overlapped(opts: &Options, bar: &ProgressBar) -> Outcome {
    let setup = || -> ntcomm_um::Result<(CompletionPort, Device)> {
        let port = CompletionPort::new()?;
        let dev = Device::open_overlapped(proto::USER_PATH)?;
        port.associate(&dev, 1)?;
        Ok((port, dev))
    };
    // Port declared first: the device drops first and cancels stragglers.
    let (port, dev) = match setup() {
        Ok(x) => x,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x7e);
    let hidden = ProgressBar::hidden();
    if let Err(e) = pipeline(&port, &dev, &payload, opts.depth, opts.warmup, f64::INFINITY, &hidden) {
        return Outcome::Failed(format!("warm-up: {e}"));
    }
    outcome(pipeline(&port, &dev, &payload, opts.depth, opts.iterations, opts.max_seconds, bar))
}

/// `threads-ioctl`: the thread-per-request shape. Each of DEPTH threads
/// opens its own synchronous handle (on Windows the I/O manager serialises
/// the requests of one synchronous handle) and echoes one at a time until
/// the threads together have done `--iterations`.
fn threads(opts: &Options, bar: &ProgressBar) -> Outcome {
    let depth = opts.depth.max(1);
    let devices: Result<Vec<Device>, String> = (0..depth).map(|_| Device::open(proto::USER_PATH).map_err(|e| e.to_string())).collect();
    let devices = match devices {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e),
    };
    let payload = pattern(opts.size, 0x6b);
    let warm = opts.warmup.min(depth as u64 * 4);
    let next = AtomicU64::new(0);
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let run = |dev: &Device, start: Instant, total: u64, timed: bool| -> Result<(hdrhistogram::Histogram<u64>, bool), String> {
        let mut out = vec![0u8; payload.len()];
        let mut hist = new_hist();
        while next.fetch_add(1, Ordering::Relaxed) < total {
            let t = Instant::now();
            echo_once(dev, &proto::ECHO_BUFFERED, &payload, &mut out, 0xEE)?;
            let end = Instant::now();
            if timed {
                hist.saturating_record(ns(end - t));
                bar.inc(1);
                if end - start >= cap {
                    return Ok((hist, true));
                }
            }
        }
        Ok((hist, false))
    };
    let side = |total: u64, timed: bool| -> Result<Measured, String> {
        next.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let results: Vec<Result<(hdrhistogram::Histogram<u64>, bool), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = devices.iter().map(|dev| s.spawn(move || run(dev, start, total, timed))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("an echo thread panicked".to_owned()))).collect()
        });
        let elapsed = start.elapsed();
        let mut hist = new_hist();
        let mut capped = false;
        for r in results {
            let (h, c) = r?;
            hist.add(h).map_err(|e| format!("histogram: {e}"))?;
            capped |= c;
        }
        let notes = vec![format!("{depth} threads, each with its own synchronous handle")];
        Ok(Measured { iterations: hist.len(), hist, elapsed, capped, notes })
    };
    if let Err(e) = side(warm, false) {
        return Outcome::Failed(format!("warm-up: {e}"));
    }
    outcome(side(opts.iterations, true))
}

/// Keeps up to `depth` echoes in flight until `total` have completed (or
/// the time cap stops new issues), checking each reply.
fn pipeline(
    port: &CompletionPort,
    dev: &Device,
    payload: &[u8],
    depth: usize,
    total: u64,
    max_seconds: f64,
    bar: &ProgressBar,
) -> Result<Measured, String> {
    let mut hist = new_hist();
    let issue =
        |slot: usize| dev.start_ioctl(&proto::ECHO_BUFFERED, payload.to_vec(), payload.len(), slot as u64).map_err(|e| e.to_string());
    let start = Instant::now();
    let deadline = start + Duration::try_from_secs_f64(max_seconds).unwrap_or(Duration::MAX / 4);
    let mut issued_at = vec![start; depth];
    let (mut issued, mut done, mut in_flight, mut capped) = (0u64, 0u64, 0usize, false);
    while in_flight < depth && issued < total {
        issued_at[in_flight] = Instant::now();
        issue(in_flight)?;
        issued += 1;
        in_flight += 1;
    }
    let mut batch = Vec::with_capacity(depth);
    while in_flight > 0 {
        batch.clear();
        let got = port.wait_many(&mut batch, depth, Some(STALL)).map_err(|e| e.to_string())?;
        if got == 0 {
            return Err(format!("{in_flight} requests in flight, none completed within {STALL:?}"));
        }
        let now = Instant::now();
        for c in batch.drain(..) {
            let slot = c.tag as usize;
            if slot >= depth {
                return Err(format!("completion with unknown tag {}", c.tag));
            }
            let n = c.result.map_err(|e| e.to_string())?;
            check_echo(payload, n, &c.buffer)?;
            hist.saturating_record(ns(now - issued_at[slot]));
            done += 1;
            in_flight -= 1;
            bar.inc(1);
            if issued < total {
                if now >= deadline {
                    capped = true;
                    continue;
                }
                issued_at[slot] = Instant::now();
                issue(slot)?;
                issued += 1;
                in_flight += 1;
            }
        }
    }
    Ok(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
}

// ---------------------------------------------------------------------------
// Fault suite

/// Each echo once on a new handle.
pub(crate) fn new_client_works(_: &Probe) -> Result<(), String> {
    let d = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
    for (i, ioctl) in ECHOES.into_iter().enumerate() {
        let payload: Vec<u8> = (0..1000 + i * 333).map(|k| (k * 7 + i) as u8).collect();
        echo_once(&d, ioctl, &payload, &mut vec![0u8; payload.len()], 0)?;
    }
    Ok(())
}

/// Random echoes of random lengths, back to back.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let d = Device::open(proto::USER_PATH)?;
    let mut ready = Ready::default();
    loop {
        let ioctl = ECHOES[rng.below(ECHOES.len() as u64) as usize];
        let payload = {
            let n = rng.below(proto::MAX_ECHO as u64 + 1) as usize;
            rng.bytes(n)
        };
        let mut out = vec![0u8; payload.len()];
        proto::second_buffer(ioctl, &payload, &mut out, 0);
        let n = d.ioctl(ioctl, &payload[..], &mut out[..])?;
        check_echo(&payload, n, &out).map_err(|e| ChildError::Wrong(format!("{}: {e}", ioctl.name)))?;
        ready.now();
    }
}
