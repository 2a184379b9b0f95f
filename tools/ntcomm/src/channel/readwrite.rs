//! The read/write queue: `WriteFile` queues a message in the driver,
//! `ReadFile` takes the oldest, or pends until one is written; a pended read
//! can be cancelled.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto::{self as proto, Stats};
use ntcomm_proto::NtStatus;
use ntcomm_um::{CompletionPort, Device, ErrorKind, OpId};

use super::Channel;
use crate::bench::{outcome, timed, BenchCase, Load, Options, Outcome};
use crate::demo::{err, wait_one, Row, Step, STEP_TIMEOUT};
use crate::driver_state::{drain_messages, stats, wait_pended};
use crate::fault_child::{ChildResult, Ready};
use crate::faults::{pended_then_served, Probe};
use crate::fmt::micros;
use crate::payload::{check_echo, pattern};
use crate::rng::Rng;

// ---------------------------------------------------------------------------
// Demo

/// A read pended on a new overlapped handle, the queue drained first.
struct PendedRead {
    /// The driver's counters before the read.
    before: Stats,
    /// Declared before the port: the handle closes first, cancelling what is
    /// still in flight.
    reader: Device,
    /// Where the read completes.
    port: CompletionPort,
    /// The read.
    op: OpId,
}

fn pend_read(dev: &Device) -> Result<PendedRead, String> {
    drain_messages(dev)?;
    let before = stats(dev)?;
    let port = CompletionPort::new().map_err(err)?;
    let reader = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&reader, 2).map_err(err)?;
    let op = reader.start_read(vec![0xEE; 4096], 11).map_err(err)?;
    wait_pended(dev, before.irps_in_flight + 1, STEP_TIMEOUT)?;
    Ok(PendedRead { before, reader, port, op })
}

/// A write read back, a read that pends until a write, a pended read cancelled.
pub fn demo(dev: &Device) -> Vec<Row> {
    vec![
        Row::of("read/write queue", "WriteFile then ReadFile", write_then_read(dev)),
        Row::of("read/write queue", "ReadFile pends, WriteFile from 2nd handle", pended_read(dev)),
        Row::of("cancellation", "pended ReadFile, CancelIoEx", cancel_read(dev)),
    ]
}

fn write_then_read(dev: &Device) -> Step {
    let drained = drain_messages(dev)?;
    let payload = pattern(300, 0x33);
    let t = Instant::now();
    let n = dev.write(&payload).map_err(err)?;
    if n != payload.len() {
        return Err(format!("WriteFile took {n} of {} bytes", payload.len()));
    }
    let queued = stats(dev)?;
    let mut buf = vec![0xEE; proto::MAX_MESSAGE];
    let t2 = Instant::now();
    let n = dev.read(&mut buf).map_err(err)?;
    let lat_read = t2.elapsed();
    let lat = t.elapsed();
    if queued.messages_queued != 1 || queued.message_bytes_queued != payload.len() as u64 {
        return Err(format!(
            "after the write the driver holds {} messages / {} B (expected 1 / {})",
            queued.messages_queued,
            queued.message_bytes_queued,
            payload.len()
        ));
    }
    if n != payload.len() {
        return Err(format!("ReadFile returned {n} bytes, wrote {}", payload.len()));
    }
    check_echo(&payload, n, &buf)?;
    let note = if drained > 0 { format!(" ({drained} leftover messages drained first)") } else { String::new() };
    Ok(format!("{n} B queued (1 msg), read back verified; write+stats+read {}, read {}{note}", micros(lat), micros(lat_read)))
}

fn pended_read(dev: &Device) -> Step {
    let read = pend_read(dev)?;
    if let Some(c) = read.port.wait(Some(Duration::ZERO)).map_err(err)? {
        return Err(format!("ReadFile completed with the queue empty: {:?}", c.result));
    }
    let payload = pattern(1000, 0x77);
    let t = Instant::now();
    let w = dev.write(&payload).map_err(err)?;
    let c = wait_one(&read.port)?;
    let lat = t.elapsed();
    let n = c.result.map_err(err)?;
    if w != payload.len() || n != payload.len() {
        return Err(format!("wrote {w} B, pended read got {n} B (expected {})", payload.len()));
    }
    check_echo(&payload, n, &c.buffer)?;
    let after = stats(dev)?;
    if after.messages_queued != 0 {
        return Err(format!("{} messages queued after a write handed to a waiting read", after.messages_queued));
    }
    Ok(format!("read pended (in flight +1); {n} B write completed it, verified; write->read completion {}", micros(lat)))
}

fn cancel_read(dev: &Device) -> Step {
    let read = pend_read(dev)?;
    let t = Instant::now();
    read.reader.cancel(read.op).map_err(err)?;
    let c = wait_one(&read.port)?;
    let lat = t.elapsed();
    match c.result {
        Err(e) if e.kind() == ErrorKind::Cancelled => {}
        Err(e) => return Err(format!("completed with {e}, expected Cancelled")),
        Ok(n) => return Err(format!("completed with success ({n} B), expected Cancelled")),
    }
    let after = stats(dev)?;
    let cancelled = after.irps_cancelled - read.before.irps_cancelled;
    if cancelled != 1 || after.irps_in_flight != read.before.irps_in_flight {
        return Err(format!(
            "irps_cancelled +{cancelled} (expected +1), in flight {} -> {}",
            read.before.irps_in_flight, after.irps_in_flight
        ));
    }
    Ok(format!("Cancelled (error 995) after {}; irps_cancelled {} -> {}", micros(lat), read.before.irps_cancelled, after.irps_cancelled))
}

// ---------------------------------------------------------------------------
// Bench

/// The read/write channel's benchmark case.
pub const BENCH: [BenchCase; 1] = [BenchCase {
    name: "readwrite",
    channel: Channel::ReadWrite,
    round_trip: "WriteFile SIZE bytes then ReadFile them back, same handle",
    load: Load::RoundTrips,
    max_payload: proto::MAX_MESSAGE,
    min_payload: 0,
    in_c_baseline: true,
    run: |opts, bar, _| bench(opts, bar),
}];

fn bench(opts: &Options, bar: &ProgressBar) -> Outcome {
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // Messages left by someone else would be read instead of ours.
    let queued = match drain_messages(&dev) {
        Ok(n) => n,
        Err(e) => return Outcome::Failed(e),
    };
    let payload = pattern(opts.size, 0x42);
    let mut buf = vec![0u8; opts.size];
    let mut m = timed(opts, bar, || {
        let w = dev.write(&payload).map_err(|e| e.to_string())?;
        if w != payload.len() {
            return Err(format!("WriteFile took {w} of {} bytes", payload.len()));
        }
        buf.fill(0xEE);
        let n = dev.read(&mut buf).map_err(|e| e.to_string())?;
        check_echo(&payload, n, &buf)
    });
    if let (Ok(m), true) = (&mut m, queued > 0) {
        m.notes.push(format!("{queued} leftover messages drained before the run"));
    }
    outcome(m)
}

// ---------------------------------------------------------------------------
// Fault suite

/// A read pended on a new handle is served by the next write.
pub(crate) fn new_client_works(probe: &Probe) -> Result<(), String> {
    const MESSAGE: &[u8] = b"fault-suite: for the next client";
    pended_then_served(probe, |d| d.start_read(vec![0; 256], 1), |dev| dev.write(MESSAGE), MESSAGE)
}

/// Bursts of writes of random lengths, read back by four pended reads.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let reader = Device::open_overlapped(proto::USER_PATH)?;
    let writer = Device::open(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&reader, 0)?;
    for tag in 0..4 {
        reader.start_read(vec![0; proto::MAX_MESSAGE], tag)?;
    }
    let mut ready = Ready::default();
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
        ready.now();
    }
}
