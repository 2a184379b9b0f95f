//! The async rows of `ntcomm bench`: the same round trips as their
//! synchronous and thread-pool neighbours, awaited through
//! `ntcomm_um::aio` on a tokio multi-threaded runtime (2 workers), the timed
//! loops running in tokio tasks.
//!
//! - `async-ioctl`: one `ECHO_BUFFERED` of SIZE awaited at a time (compare
//!   `ioctl-buffered`): under Wine 8 the echo completes at once, so the
//!   future is ready on its first poll (a request that pends is woken
//!   through the reactor thread);
//! - `async-overlapped`: DEPTH tasks each awaiting `ECHO_BUFFERED`s in
//!   a loop (compare `overlapped-ioctl`); latency = issue -> the task resumed
//!   (one in 128 requests completed at once in a row yields to the executor
//!   first, so the tail holds the wait for the other tasks' turns);
//! - `async-port-ask`: `PORT_ASK` as `port-ask`, answered by one task
//!   reading the port's message stream with 128 receives in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::ProgressBar;
use ntcomm_demo_proto as proto;
use ntcomm_um::aio::{AsyncDevice, AsyncPort};
use ntcomm_um::port::MESSAGE_HEADER_LEN;

use crate::bench::{driver_hist, new_hist, ns, outcome, Measured, Options, Outcome, STALL};
use crate::channel::port::ask_questions;
use crate::fmt::nanos;
use crate::payload::{check_echo, pattern};

/// Receives the async port's stream keeps in flight.
const PORT_DEPTH: usize = 128;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().map_err(|e| format!("tokio runtime: {e}"))
}

fn open() -> Result<AsyncDevice, String> {
    AsyncDevice::open(proto::USER_PATH).map_err(|e| e.to_string())
}

/// One awaited echo, its reply checked. Not bounded by a timeout: the
/// synchronous rows it is compared with have none either (a timer per
/// request is work they do not do).
async fn echo_once(dev: &AsyncDevice, payload: &[u8]) -> Result<(), String> {
    let out = dev.ioctl(&proto::ECHO_BUFFERED, payload, payload.len()).await.map_err(|e| e.to_string())?;
    check_echo(payload, out.len(), &out)
}

/// `async-ioctl`.
pub(crate) fn ioctl(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_ECHO {
        return Outcome::Skipped(format!("SIZE {} exceeds the echo limit {}", opts.size, proto::MAX_ECHO));
    }
    let (opts, bar) = (opts.clone(), bar.clone());
    let run = || -> Result<Measured, String> {
        let rt = runtime()?;
        let task = rt.spawn(async move {
            let dev = open()?;
            let payload = pattern(opts.size, 0x35);
            for i in 0..opts.warmup {
                echo_once(&dev, &payload).await.map_err(|e| format!("warm-up round trip {i}: {e}"))?;
            }
            let mut hist = new_hist();
            let cap = Duration::from_secs_f64(opts.max_seconds);
            let start = Instant::now();
            let (mut done, mut capped) = (0, false);
            while done < opts.iterations {
                let t = Instant::now();
                echo_once(&dev, &payload).await.map_err(|e| format!("round trip {done}: {e}"))?;
                let end = Instant::now();
                hist.saturating_record(ns(end - t));
                done += 1;
                bar.inc(1);
                if end - start >= cap && done < opts.iterations {
                    capped = true;
                    break;
                }
            }
            Ok(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
        });
        rt.block_on(task).map_err(|e| format!("the timed task: {e}"))?
    };
    outcome(run())
}

/// `async-overlapped`.
pub(crate) fn overlapped(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_ECHO {
        return Outcome::Skipped(format!("SIZE {} exceeds the echo limit {}", opts.size, proto::MAX_ECHO));
    }
    let (opts, bar) = (opts.clone(), bar.clone());
    let run = || -> Result<Measured, String> {
        let rt = runtime()?;
        rt.block_on(async move {
            let dev = open()?;
            let payload = Arc::new(pattern(opts.size, 0x5a));
            for i in 0..opts.warmup.min(opts.depth as u64 * 4) {
                echo_once(&dev, &payload).await.map_err(|e| format!("warm-up round trip {i}: {e}"))?;
            }
            let next = Arc::new(AtomicU64::new(0));
            let cap = Duration::from_secs_f64(opts.max_seconds);
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..opts.depth {
                let (dev, payload, next, bar, total) = (dev.clone(), payload.clone(), next.clone(), bar.clone(), opts.iterations);
                tasks.spawn(async move {
                    let mut hist = new_hist();
                    let mut capped = false;
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        let t = Instant::now();
                        echo_once(&dev, &payload).await?;
                        let end = Instant::now();
                        hist.saturating_record(ns(end - t));
                        bar.inc(1);
                        if end - start >= cap {
                            capped = true;
                            break;
                        }
                    }
                    Ok::<_, String>((hist, capped))
                });
            }
            let mut hist = new_hist();
            let mut capped = false;
            while let Some(joined) = tasks.join_next().await {
                let (h, c) = joined.map_err(|e| format!("a task: {e}"))??;
                hist.add(h).map_err(|e| format!("histogram: {e}"))?;
                capped |= c;
            }
            let notes = vec![format!("{} tasks on 2 tokio workers, each awaiting one echo at a time", opts.depth)];
            Ok(Measured { iterations: hist.len(), hist, elapsed: start.elapsed(), capped, notes })
        })
    };
    outcome(run())
}

/// `async-port-ask`.
pub(crate) fn port_ask(opts: &Options, bar: &ProgressBar) -> Outcome {
    let size = opts.size;
    if !(proto::RECORD_MIN..=proto::MAX_PORT_MESSAGE).contains(&size) {
        return Outcome::Skipped(format!(
            "questions are demo records of {}..={} B, SIZE is {size}",
            proto::RECORD_MIN,
            proto::MAX_PORT_MESSAGE
        ));
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Failed(e),
    };
    let port = match AsyncPort::connect(proto::PORT_NAME, proto::PORT_CONTEXT) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut stream = port.messages(MESSAGE_HEADER_LEN + size, PORT_DEPTH);
    let answering = rt.spawn(async move {
        let mut answered = 0u64;
        while let Some(item) = stream.next().await {
            // The receives end cancelled when the port is closed.
            let Ok(request) = item else { continue };
            let seq = proto::check_record(request.body()).ok_or("a question failed its checksum")?;
            request.answer(&proto::PORT_QUESTION, &proto::PortVerdict::of(seq)).map_err(|e| e.to_string())?;
            answered += 1;
        }
        Ok::<u64, String>(answered)
    });
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let run = (|| -> Result<Measured, String> {
        let warm = u32::try_from(opts.warmup.clamp(100, 100_000)).unwrap_or(100);
        let (_, took) = ask_questions(warm, 16, size, cap + STALL * 4)?;
        let per_s = f64::from(warm) / took.as_secs_f64().max(1e-9);
        let fit = (per_s * opts.max_seconds).floor().max(1.0).min(f64::from(u32::MAX)) as u32;
        let n = opts.port_questions.min(fit).max(1);
        let (tally, took) = ask_questions(n, 16, size, cap * 3 + STALL * 4)?;
        bar.inc(u64::from(n));
        let hist = driver_hist(&tally.rtt_hist);
        let notes = vec![
            format!(
                "{warm} warm-up questions first ({per_s:.0}/s), then {n} timed; 16 driver threads, one tokio task reading the stream \
                 ({PORT_DEPTH} receives in flight); {} per question on average (throughput, not latency)",
                nanos(took / n)
            ),
            "latency columns: send -> reply as timed by the driver per question, bucketed (lower bounds, within 25 %)".to_owned(),
        ];
        Ok(Measured { hist, iterations: n.into(), elapsed: took, capped: n < opts.port_questions, notes })
    })();
    port.close();
    let answered = rt.block_on(answering);
    match (run, answered) {
        (Err(e), _) => Outcome::Failed(e),
        (Ok(_), Err(e)) => Outcome::Failed(format!("the answering task: {e}")),
        (Ok(_), Ok(Err(e))) => Outcome::Failed(format!("the answering task: {e}")),
        (Ok(m), Ok(Ok(_))) => Outcome::Done(m),
    }
}
