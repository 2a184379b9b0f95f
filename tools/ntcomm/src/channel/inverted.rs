//! The inverted call: a client keeps `WAIT_EVENT` pended in the driver
//! until someone posts an event with `POST_EVENT`, whose payload completes
//! the oldest waiter.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto as proto;
use ntcomm_proto::NtStatus;
use ntcomm_um::{CompletionPort, Device, ErrorKind, OpKind};

use super::Channel;
use crate::bench::{new_hist, ns, timed_loop, BenchCase, Latency, Load, Options, Outcome, STALL};
use crate::demo::{err, wait_one, Row, Step, STEP_TIMEOUT};
use crate::driver_state::{stats, wait_pended};
use crate::fault_child::{ChildResult, Ready};
use crate::faults::{pended_then_served, Probe};
use crate::fmt::micros;
use crate::payload::{check_echo, pattern};
use crate::rng::Rng;

// ---------------------------------------------------------------------------
// Demo

/// A waiter pended, completed by a post from another handle.
pub fn demo(dev: &Device) -> Vec<Row> {
    vec![Row::of("inverted call", "WAIT_EVENT pended, POST_EVENT from 2nd handle", inverted_call(dev))]
}

fn inverted_call(dev: &Device) -> Step {
    let before = stats(dev)?;
    // Port first: the device drops first, cancelling what is still in flight.
    let port = CompletionPort::new().map_err(err)?;
    let waiter = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&waiter, 1).map_err(err)?;
    waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, 7).map_err(err)?;
    wait_pended(dev, before.irps_in_flight + 1, STEP_TIMEOUT)?;
    if let Some(c) = port.wait(Some(Duration::ZERO)).map_err(err)? {
        return Err(format!("WAIT_EVENT completed before any post: {:?}", c.result));
    }
    let payload = pattern(300, 0x5a);
    let t = Instant::now();
    dev.ioctl(&proto::POST_EVENT, &payload[..], &mut ()).map_err(err)?;
    let c = wait_one(&port)?;
    let lat = t.elapsed();
    let n = c.result.map_err(err)?;
    if c.tag != 7 {
        return Err(format!("completion tag {} (expected 7)", c.tag));
    }
    if n != payload.len() {
        return Err(format!("waiter got {n} bytes, posted {}", payload.len()));
    }
    check_echo(&payload, n, &c.buffer)?;
    let after = stats(dev)?;
    let delivered = after.events_delivered - before.events_delivered;
    if delivered != 1 {
        return Err(format!("events_delivered grew by {delivered}, expected 1"));
    }
    Ok(format!("waiter got the {n} B payload, verified; post->completion {}; events_delivered +1", micros(lat)))
}

// ---------------------------------------------------------------------------
// Bench

/// The inverted call's benchmark case.
pub const BENCH: [BenchCase; 1] = [BenchCase {
    name: "inverted-call",
    channel: Channel::Inverted,
    round_trip: "POST_EVENT of SIZE bytes -> pended WAIT_EVENT completion dequeued by the waiter thread (IOCP)",
    load: Load::RoundTrips,
    max_payload: proto::MAX_EVENT,
    min_payload: 0,
    in_c_baseline: false,
    run: |opts, bar, _| bench(opts, bar),
}];

/// What the waiter thread reports for each completed `WAIT_EVENT`.
type WaiterReport = Result<Instant, String>;

/// Tag of the packet that tells the waiter thread to stop.
const STOP: u64 = u64::MAX;

fn bench(opts: &Options, bar: &ProgressBar) -> Outcome {
    let setup = || -> ntcomm_um::Result<(Device, Arc<CompletionPort>, Arc<Device>)> {
        let poster = Device::open(proto::USER_PATH)?;
        let port = Arc::new(CompletionPort::new()?);
        let waiter = Arc::new(Device::open_overlapped(proto::USER_PATH)?);
        port.associate(&waiter, 1)?;
        Ok((poster, port, waiter))
    };
    let (poster, port, waiter) = match setup() {
        Ok(x) => x,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x63);
    let (tx, rx) = mpsc::channel::<WaiterReport>();
    let thread = {
        let (port, waiter, payload) = (port.clone(), waiter.clone(), payload.clone());
        std::thread::spawn(move || waiter_thread(&port, &waiter, &payload, &tx))
    };

    let mut retries = 0u64;
    let mut post_hist = new_hist();
    let mut one = |record: bool| -> Result<Duration, String> {
        // The waiter re-arms before reporting, but its WAIT_EVENT could in
        // principle reach the driver after our post: STATUS_NOT_FOUND then
        // means "nobody waits yet", and the post is retried (counted).
        let (t0, post_took) = loop {
            let t0 = Instant::now();
            match poster.ioctl(&proto::POST_EVENT, &payload[..], &mut ()) {
                Ok(_) => break (t0, t0.elapsed()),
                Err(e) if e.kind() == ErrorKind::NotFoundItem => {
                    retries += 1;
                    if retries > 10_000 {
                        return Err("POST_EVENT found no waiter 10000 times".into());
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        if record {
            post_hist.saturating_record(ns(post_took));
        }
        match rx.recv_timeout(STALL) {
            Ok(Ok(t1)) => Ok(t1.saturating_duration_since(t0)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("the waiter saw no completion within {STALL:?} of the post")),
        }
    };
    let measured = timed_loop(opts, bar, &mut one);

    // Stop the waiter: it cancels its outstanding WAIT_EVENT and reaps it.
    let stop = port.post(0, STOP).map_err(|e| e.to_string());
    let joined = match stop {
        Ok(()) => thread.join().map_err(|_| "waiter thread panicked".to_string()),
        Err(e) => Err(format!("stopping the waiter thread: {e}")),
    };
    let mut measured = match (measured, joined) {
        (Err(e), _) => return Outcome::Failed(e),
        (Ok(_), Err(e)) => return Outcome::Failed(e),
        (Ok(m), Ok(())) => m,
    };
    if let Some(l) = Latency::of(&post_hist) {
        measured.notes.push(format!(
            "POST_EVENT call itself (synchronous, returns after the waiter is completed): p50 {:.1} us, p99 {:.1} us",
            l.p50, l.p99
        ));
    }
    measured.notes.push(format!("POST_EVENT retried {retries} times because no WAIT_EVENT was pended yet"));
    Outcome::Done(measured)
}

/// Keeps one `WAIT_EVENT` pended on `waiter`; for each completion, re-arms
/// first, then reports the instant it dequeued it (or what was wrong).
/// On the `STOP` packet, cancels the outstanding request and reaps it.
fn waiter_thread(port: &CompletionPort, waiter: &Device, payload: &[u8], tx: &mpsc::Sender<WaiterReport>) {
    let arm = |tag| waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, tag);
    let mut tag = 0u64;
    if let Err(e) = arm(tag) {
        let _ = tx.send(Err(format!("arming WAIT_EVENT: {e}")));
        return;
    }
    let mut stopping = false;
    loop {
        let c = match port.wait(if stopping { Some(STALL) } else { None }) {
            Ok(Some(c)) => c,
            Ok(None) => return, // stopping and the cancelled request never came back: leak it
            Err(e) => {
                let _ = tx.send(Err(format!("waiting on the port: {e}")));
                return;
            }
        };
        let now = Instant::now();
        if c.kind == OpKind::Posted && c.tag == STOP {
            stopping = true;
            let _ = waiter.cancel_all();
            continue;
        }
        if stopping {
            // The outstanding WAIT_EVENT, cancelled (or completed just before).
            return;
        }
        let report = match c.result {
            Ok(n) => check_echo(payload, n, &c.buffer).map(|()| now),
            Err(e) => Err(format!("WAIT_EVENT (tag {}) failed: {e}", c.tag)),
        };
        let failed = report.is_err();
        tag += 1;
        let rearmed = if failed { Ok(()) } else { arm(tag).map(|_| ()) };
        let _ = tx.send(report);
        if let Err(e) = rearmed {
            let _ = tx.send(Err(format!("re-arming WAIT_EVENT: {e}")));
            return;
        }
        if failed {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Fault suite

/// A waiter pended on a new handle is completed by the next post.
pub(crate) fn new_client_works(probe: &Probe) -> Result<(), String> {
    const EVENT: &[u8] = b"fault-suite event";
    pended_then_served(
        probe,
        |d| d.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, 1),
        |dev| dev.ioctl(&proto::POST_EVENT, EVENT, &mut ()),
        EVENT,
    )
}

/// Eight waiters kept pended; events of random lengths posted back to back.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let waiter = Device::open_overlapped(proto::USER_PATH)?;
    let poster = Device::open(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&waiter, 0)?;
    for tag in 0..8 {
        waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, tag)?;
    }
    let mut ready = Ready::default();
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
        ready.now();
    }
}
