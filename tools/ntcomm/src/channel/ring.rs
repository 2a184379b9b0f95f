//! Shared-memory ring channels (`RING_OPEN`): a section with a ring each
//! way, mapped into the client and the driver. In sink mode the driver
//! validates what the client sends and its synthetic source (`RING_SOURCE`)
//! feeds the client; in echo mode it sends every record back.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto as proto;
use ntcomm_um::{RingChannel, RingOptions};

use super::Channel;
use crate::bench::{new_hist, outcome, timed_loop, BenchCase, Load, Measured, Options, Outcome, STALL};
use crate::demo::{err, Row, Step, STEP_TIMEOUT};
use crate::fault_child::{ChildError, ChildResult, Ready};
use crate::faults::{Probe, HANG};
use crate::fmt::{micros, nanos};
use crate::payload::check_echo;
use crate::rng::Rng;

/// A sink channel: records sent are validated by the driver, the source feeds the receiver.
fn open_sink(d2u_capacity: u32, u2d_capacity: u32) -> ntcomm_um::Result<RingChannel> {
    RingChannel::open(proto::USER_PATH, &proto::RINGS, d2u_capacity, u2d_capacity)
}

/// An echo channel of `capacity` bytes each way: the driver sends every record back.
fn open_echo(capacity: u32) -> ntcomm_um::Result<RingChannel> {
    RingChannel::open_with(proto::USER_PATH, &proto::RINGS, &RingOptions::new(capacity, capacity).with_mode(proto::RING_MODE_ECHO))
}

// ---------------------------------------------------------------------------
// Demo

/// The source read to the end, records validated by the driver, an echo
/// after the driver's thread went to sleep.
pub fn demo() -> Vec<Row> {
    vec![
        Row::of("shared memory ring", "driver->user: RING_SOURCE 10,000 x 64 B", demo_d2u()),
        Row::of("shared memory ring", "user->driver: 10,000 x 64 B, RING_STATUS", demo_u2d()),
        Row::of("shared memory ring", "echo mode: round trip after 20 ms idle", demo_echo()),
    ]
}

const RING_RECORDS: u64 = 10_000;
const RING_RECORD: usize = 64;
/// Data bytes of each direction of the demo's ring channels.
const RING_CAPACITY: u32 = 1 << 20;

/// A ring channel's state must be RUNNING (not failed) after a step.
fn ring_running(st: &proto::RingStatus) -> Result<(), String> {
    if st.state != proto::RING_STATE_RUNNING || st.failed_reason != 0 {
        return Err(format!("channel state {} (failed reason {}), expected RUNNING", st.state, st.failed_reason));
    }
    Ok(())
}

fn demo_d2u() -> Step {
    let ch = open_sink(RING_CAPACITY, RING_CAPACITY).map_err(err)?;
    let t = Instant::now();
    ch.control(&proto::RING_SOURCE, &proto::RingSource::new(RING_RECORDS, 0, RING_RECORD as u32)).map_err(err)?;
    let (_tx, mut rx) = ch.split();
    let mut buf = vec![0u8; rx.max_record()];
    for want in 0..RING_RECORDS {
        let n = rx
            .recv(&mut buf, Some(STEP_TIMEOUT))
            .map_err(err)?
            .ok_or_else(|| format!("record {want} did not arrive within {STEP_TIMEOUT:?}"))?;
        if n != RING_RECORD {
            return Err(format!("record {want} has {n} bytes, expected {RING_RECORD}"));
        }
        in_sequence(&buf[..n], want)?;
    }
    let took = t.elapsed();
    if let Some(n) = rx.try_recv(&mut buf).map_err(err)? {
        return Err(format!("an extra {n}-byte record beyond the {RING_RECORDS} asked for"));
    }
    let st = rx.status().map_err(err)?;
    ring_running(&st)?;
    if st.produced != RING_RECORDS || st.backlog != 0 {
        return Err(format!("driver reports produced {} / remaining {}, expected {RING_RECORDS} / 0", st.produced, st.backlog));
    }
    let mb = (RING_RECORDS as usize * RING_RECORD) as f64 / 1e6;
    Ok(format!(
        "{RING_RECORDS} records, {mb:.2} MB, all in sequence, checksums verified; {} ({:.0} MB/s); driver woke us {} times",
        micros(took),
        mb / took.as_secs_f64(),
        st.wakeups_sent
    ))
}

fn demo_u2d() -> Step {
    let ch = open_sink(RING_CAPACITY, RING_CAPACITY).map_err(err)?;
    let (mut tx, _rx) = ch.split();
    let mut rec = [0u8; RING_RECORD];
    let t = Instant::now();
    for seq in 0..RING_RECORDS {
        proto::fill_record(seq, &mut rec);
        tx.send(&rec, Some(STEP_TIMEOUT)).map_err(err)?;
    }
    let sent = t.elapsed();
    let deadline = Instant::now() + STEP_TIMEOUT;
    let st = loop {
        let st = tx.status().map_err(err)?;
        if st.consumed + st.bad_records >= RING_RECORDS || st.state != proto::RING_STATE_RUNNING || Instant::now() >= deadline {
            break st;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = t.elapsed();
    ring_running(&st)?;
    if st.consumed != RING_RECORDS || st.bad_records != 0 || st.consumed_bytes != RING_RECORDS * RING_RECORD as u64 {
        return Err(format!(
            "driver consumed {} records ({} B), {} bad, expected {RING_RECORDS} ({} B), 0 bad",
            st.consumed,
            st.consumed_bytes,
            st.bad_records,
            RING_RECORDS * RING_RECORD as u64
        ));
    }
    let mb = (RING_RECORDS as usize * RING_RECORD) as f64 / 1e6;
    Ok(format!(
        "{RING_RECORDS} records, {mb:.2} MB sent in {}; driver consumed all, 0 bad, {} B, after {} (polled RING_STATUS)",
        micros(sent),
        st.consumed_bytes,
        micros(took)
    ))
}

fn demo_echo() -> Step {
    const ROUNDS: u64 = 5;
    let ch = open_echo(64 * 1024).map_err(err)?;
    let (mut tx, mut rx) = ch.split();
    let mut rec = [0u8; RING_RECORD];
    let mut buf = vec![0u8; rx.max_record()];
    let mut lats = Vec::new();
    for seq in 0..ROUNDS {
        // Long enough for the driver's channel thread to go to sleep.
        std::thread::sleep(Duration::from_millis(20));
        proto::fill_record(seq, &mut rec);
        let t = Instant::now();
        tx.send(&rec, Some(STEP_TIMEOUT)).map_err(err)?;
        let n = rx
            .recv(&mut buf, Some(STEP_TIMEOUT))
            .map_err(err)?
            .ok_or_else(|| format!("record {seq} not echoed within {STEP_TIMEOUT:?}"))?;
        lats.push(t.elapsed());
        if n != RING_RECORD || buf[..n] != rec[..] {
            return Err(format!("round {seq}: echoed {n} bytes that differ from the {RING_RECORD} sent"));
        }
    }
    let st = tx.status().map_err(err)?;
    ring_running(&st)?;
    if st.consumed != ROUNDS || st.bad_records != 0 || st.produced != ROUNDS {
        return Err(format!(
            "driver consumed {} / produced {} / {} bad, expected {ROUNDS} / {ROUNDS} / 0",
            st.consumed, st.produced, st.bad_records
        ));
    }
    lats.sort();
    Ok(format!(
        "{ROUNDS} x {RING_RECORD} B echoed intact, 20 ms idle before each (driver thread asleep); round trip median {}, max {}; driver woke us {} times (0: the reply was there before we slept)",
        micros(lats[lats.len() / 2]),
        micros(lats[lats.len() - 1]),
        st.wakeups_sent
    ))
}

// ---------------------------------------------------------------------------
// Bench

/// The ring channels' benchmark cases.
pub const BENCH: [BenchCase; 4] = [
    BenchCase {
        name: "ring-d2u",
        channel: Channel::Ring,
        round_trip: "driver source (rate 0) -> client recv, every record's sequence and checksum checked; throughput, no per-record latency",
        load: Load::RingRecords,
        // Records too large for the ring are skipped by the run itself.
        max_payload: usize::MAX,
        min_payload: 0,
        in_c_baseline: false,
        run: bench_d2u,
    },
    BenchCase {
        name: "ring-u2d",
        channel: Channel::Ring,
        round_trip: "client fill_record + send (published in batches of 64) -> driver validates; until RING_STATUS.consumed == all; throughput",
        load: Load::RingRecords,
        // Records too large for the ring are skipped by the run itself.
        max_payload: usize::MAX,
        min_payload: 0,
        in_c_baseline: false,
        run: bench_u2d,
    },
    BenchCase {
        name: "ring-echo",
        channel: Channel::Ring,
        round_trip: "echo channel, 1 record of SIZE in flight, client idles 1 ms between round trips: the driver thread is asleep (1 wake-up), the client sleeps in recv unless the reply beat it",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| bench_echo(opts, bar, true),
    },
    BenchCase {
        name: "ring-echo-spin",
        channel: Channel::Ring,
        round_trip: "echo channel, 1 record of SIZE in flight, client busy-polls (no sleep); the driver still sleeps between records",
        load: Load::RoundTrips,
        max_payload: proto::MAX_ECHO,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| bench_echo(opts, bar, false),
    },
];

/// A received demo record must be record `want`, its checksum intact.
fn in_sequence(record: &[u8], want: u64) -> Result<(), String> {
    match proto::check_record(record) {
        Some(seq) if seq == want => Ok(()),
        Some(seq) => Err(format!("record {want} out of order: got sequence {seq}")),
        None => Err(format!("record {want}: checksum mismatch")),
    }
}

/// Advances `bar` every 1024 records of a run of `n`; true when the run
/// started at `t0` is past its time cap with records still to go.
fn past_cap(bar: &ProgressBar, done: u64, n: u64, t0: Instant, cap: Duration) -> bool {
    if !done.is_multiple_of(1024) {
        return false;
    }
    bar.inc(1024);
    t0.elapsed() >= cap && done < n
}

/// Refuses record sizes the demo's record format or the ring cannot carry.
fn ring_size_ok(size: usize, max_record: usize) -> Result<(), String> {
    if size < proto::RECORD_MIN {
        return Err(format!("records of {size} B are below the demo's minimum {} (sequence + checksum)", proto::RECORD_MIN));
    }
    if size > max_record {
        return Err(format!("records of {size} B exceed the ring's largest record {max_record} B (raise --ring-capacity)"));
    }
    Ok(())
}

/// What the demo record format costs this machine per record of `size`
/// bytes (fill, check), measured on ~8 MB of records: the driver does the
/// same work on its side, so it bounds what a ring run can show.
fn record_costs(size: usize) -> (Duration, Duration) {
    let rounds = (8_000_000 / size.max(1)).clamp(16, 100_000) as u32;
    let mut rec = vec![0u8; size];
    let t = Instant::now();
    for seq in 0..u64::from(rounds) {
        proto::fill_record(seq, &mut rec);
    }
    let fill = t.elapsed() / rounds;
    let t = Instant::now();
    let mut ok = 0u64;
    for _ in 0..rounds {
        ok += u64::from(proto::check_record(std::hint::black_box(&rec)).is_some());
    }
    std::hint::black_box(ok);
    (fill, t.elapsed() / rounds)
}

fn cost_note(size: usize, per_record: Duration, client_side: &str) -> String {
    let (fill, check) = record_costs(size);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / per_record.as_secs_f64().max(1e-12);
    format!(
        "demo record format on this machine: fill_record {} ({:.0} MB/s), check_record {} ({:.0} MB/s) per record; \
         measured {} per record; the client's {client_side} alone is {:.0}% of that",
        nanos(fill),
        size as f64 / fill.as_secs_f64().max(1e-12) / 1e6,
        nanos(check),
        size as f64 / check.as_secs_f64().max(1e-12) / 1e6,
        nanos(per_record),
        pct(if client_side.starts_with("fill") { fill } else { check })
    )
}

fn bench_d2u(opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
    let ch = match open_sink(opts.ring_capacity, opts.ring_capacity) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let n = opts.ring_records(size);
    // The first records are the warm-up: timing starts when they are in.
    let warm = opts.warmup.min(n);
    let start_at = Instant::now();
    if let Err(e) = ch.control(&proto::RING_SOURCE, &proto::RingSource::new(warm + n, 0, size as u32)) {
        return Outcome::Failed(format!("RING_SOURCE: {e}"));
    }
    // The receiver keeps the channel's handle (and so the source) alive.
    let (_tx, mut rx) = ch.split();
    if let Err(e) = ring_size_ok(size, rx.max_record()) {
        return Outcome::Skipped(e);
    }
    let mut buf = vec![0u8; rx.max_record()];
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let mut t0 = start_at;
    let (mut got, mut capped) = (0u64, false);
    for want in 0..warm + n {
        if want == warm {
            t0 = Instant::now();
        }
        let len = match rx.recv(&mut buf, Some(STALL)) {
            Ok(Some(len)) => len,
            Ok(None) => return Outcome::Failed(format!("record {want} did not arrive within {STALL:?}")),
            Err(e) => return Outcome::Failed(format!("record {want}: {e}")),
        };
        if len != size {
            return Outcome::Failed(format!("record {want} has {len} B, expected {size}"));
        }
        if let Err(e) = in_sequence(&buf[..len], want) {
            return Outcome::Failed(e);
        }
        if want >= warm {
            got += 1;
            if past_cap(bar, got, n, t0, cap) {
                capped = true;
                break;
            }
        }
    }
    let elapsed = t0.elapsed();
    let mut notes = Vec::new();
    match rx.status() {
        Ok(st) if st.state != proto::RING_STATE_RUNNING => {
            return Outcome::Failed(format!("channel state {} (reason {}) after the run", st.state, st.failed_reason))
        }
        Ok(st) => notes.push(format!(
            "{warm} warm-up records first; driver produced {} in all, signalled the client's event {} times ({:.3} per timed record)",
            st.produced,
            st.wakeups_sent,
            st.wakeups_sent as f64 / got.max(1) as f64
        )),
        Err(e) => return Outcome::Failed(format!("RING_STATUS: {e}")),
    }
    if got > 0 {
        notes.push(cost_note(size, elapsed / u32::try_from(got).unwrap_or(u32::MAX), "check_record"));
    }
    Outcome::Done(Measured { hist: new_hist(), iterations: got, elapsed, capped, notes })
}

/// Records staged before one publish in `ring-u2d`.
const PUBLISH_BATCH: u64 = 64;

fn bench_u2d(opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
    let ch = match open_sink(opts.ring_capacity, opts.ring_capacity) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let (mut tx, _rx) = ch.split();
    if let Err(e) = ring_size_ok(size, tx.max_record()) {
        return Outcome::Skipped(e);
    }
    let n = opts.ring_records(size);
    let warm = opts.warmup.min(n);
    let mut rec = vec![0u8; size];
    let mut send = |seq: u64, tx: &mut ntcomm_um::RingSender| -> Result<(), String> {
        proto::fill_record(seq, &mut rec);
        if !tx.write(&rec).map_err(|e| e.to_string())? {
            // Full (counting what is staged): publish, then wait for room.
            tx.flush().map_err(|e| e.to_string())?;
            tx.send(&rec, Some(STALL)).map_err(|e| format!("record {seq}: {e}"))?;
        } else if seq % PUBLISH_BATCH == PUBLISH_BATCH - 1 {
            tx.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    // Polls RING_STATUS until the driver consumed `total` records.
    let consumed = |tx: &ntcomm_um::RingSender, total: u64| -> Result<(Instant, u64), String> {
        let deadline = Instant::now() + STALL;
        let mut polls = 0u64;
        loop {
            let st = tx.status().map_err(|e| format!("RING_STATUS: {e}"))?;
            polls += 1;
            if st.bad_records != 0 || st.state != proto::RING_STATE_RUNNING {
                return Err(format!("driver reports {} bad records, state {} (reason {})", st.bad_records, st.state, st.failed_reason));
            }
            if st.consumed >= total {
                if st.consumed != total || st.consumed_bytes != total * size as u64 {
                    return Err(format!(
                        "driver consumed {} records / {} B, sent {total} / {} B",
                        st.consumed,
                        st.consumed_bytes,
                        total * size as u64
                    ));
                }
                return Ok((Instant::now(), polls));
            }
            if Instant::now() >= deadline {
                return Err(format!("driver consumed {} of {total} records, then nothing for {STALL:?}", st.consumed));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    let mut run = || -> Result<Measured, String> {
        for seq in 0..warm {
            send(seq, &mut tx)?;
        }
        tx.flush().map_err(|e| e.to_string())?;
        consumed(&tx, warm)?;
        let cap = Duration::from_secs_f64(opts.max_seconds);
        let t0 = Instant::now();
        let (mut sent, mut capped) = (0u64, false);
        while sent < n {
            send(warm + sent, &mut tx)?;
            sent += 1;
            if past_cap(bar, sent, n, t0, cap) {
                capped = true;
                break;
            }
        }
        tx.flush().map_err(|e| e.to_string())?;
        let sending = t0.elapsed();
        let (done, polls) = consumed(&tx, warm + sent)?;
        let elapsed = done - t0;
        let per = elapsed / u32::try_from(sent.max(1)).unwrap_or(u32::MAX);
        let notes = vec![
            format!(
                "{warm} warm-up records first; sending took {:.1} ms of {:.1} ms; end seen by polling RING_STATUS every ~100 us ({polls} polls after the last send), \
                 the driver validated every record (0 bad)",
                sending.as_secs_f64() * 1e3,
                elapsed.as_secs_f64() * 1e3
            ),
            cost_note(size, per, "fill_record"),
        ];
        Ok(Measured { hist: new_hist(), iterations: sent, elapsed, capped, notes })
    };
    outcome(run())
}

fn bench_echo(opts: &Options, bar: &ProgressBar, sleeping: bool) -> Outcome {
    let size = opts.size;
    let ch = match open_echo(64 * 1024) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let (mut tx, mut rx) = ch.split();
    if let Err(e) = ring_size_ok(size, tx.max_record().min(rx.max_record())) {
        return Outcome::Skipped(e);
    }
    let (mut rec, mut buf) = (vec![0u8; size], vec![0u8; rx.max_record()]);
    let gap = Duration::from_millis(1);
    let mut seq = 0u64;
    let mut one = |tx: &mut ntcomm_um::RingSender| -> Result<Duration, String> {
        proto::fill_record(seq, &mut rec);
        seq += 1;
        let t = Instant::now();
        tx.send(&rec, Some(STALL)).map_err(|e| e.to_string())?;
        let n = if sleeping {
            rx.recv(&mut buf, Some(STALL)).map_err(|e| e.to_string())?
        } else {
            let mut spins = 0u32;
            loop {
                if let Some(n) = rx.try_recv(&mut buf).map_err(|e| e.to_string())? {
                    break Some(n);
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) && t.elapsed() >= STALL {
                    break None;
                }
                std::hint::spin_loop();
            }
        };
        let lat = t.elapsed();
        match n {
            None => Err(format!("record {} not echoed within {STALL:?}", seq - 1)),
            Some(n) => check_echo(&rec, n, &buf).map(|()| lat),
        }
    };
    let mut run = || -> Result<Measured, String> {
        for i in 0..opts.warmup {
            one(&mut tx).map_err(|e| format!("warm-up round trip {i}: {e}"))?;
        }
        let before = tx.status().map_err(|e| e.to_string())?;
        let mut busy = Duration::ZERO;
        let mut m = timed_loop(&Options { warmup: 0, ..opts.clone() }, bar, |_| {
            if sleeping {
                std::thread::sleep(gap);
            }
            let lat = one(&mut tx)?;
            busy += lat;
            Ok(lat)
        })?;
        // ops/s from the round trips alone, not the idle gaps.
        m.elapsed = busy;
        let done = m.iterations;
        let after = tx.status().map_err(|e| e.to_string())?;
        if after.bad_records != 0 || after.state != proto::RING_STATE_RUNNING {
            return Err(format!("driver reports {} bad records, state {}", after.bad_records, after.state));
        }
        let wakeups = after.wakeups_sent - before.wakeups_sent;
        let mut notes = vec![format!(
            "driver signalled the client's event in {wakeups} of {done} round trips; ops/s = 1 / mean round trip{}",
            if sleeping { " (the 1 ms idle gaps are not counted)" } else { "" }
        )];
        if sleeping {
            notes.push("this is wake-up latency: the record finds the driver's thread asleep on its event; the reply also had to wake the client in the round trips counted above".into());
        } else {
            notes.push("client never sleeps (spins on try_recv); each record still has to wake the driver's thread unless it has not gone to sleep yet".into());
        }
        m.notes = notes;
        Ok(m)
    };
    outcome(run())
}

// ---------------------------------------------------------------------------
// Fault suite

/// A new echo channel echoes ten records.
pub(crate) fn new_client_works(_: &Probe) -> Result<(), String> {
    let ch = open_echo(16 << 10).map_err(err)?;
    let (mut tx, mut rx) = ch.split();
    let mut rec = vec![0u8; 100];
    let mut buf = vec![0u8; 1024];
    for seq in 0..10 {
        proto::fill_record(seq, &mut rec);
        tx.send(&rec, Some(HANG)).map_err(err)?;
        let n = rx.recv(&mut buf, Some(HANG)).map_err(err)?.ok_or("no echo")?;
        if buf[..n] != rec[..] {
            return Err(format!("ring echo of record {seq} differs"));
        }
    }
    Ok(())
}

/// Records of random lengths echoed one at a time while the source feeds a second channel.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let echo = open_echo(64 << 10)?;
    let source = open_sink(64 << 10, 4 << 10)?;
    source.control(&proto::RING_SOURCE, &proto::RingSource::new(u64::MAX, 0, 64 + rng.below(1000) as u32))?;
    let (mut tx, mut rx) = echo.split();
    let (_stx, mut srx) = source.split();
    let mut rec = vec![0u8; 4096];
    let mut buf = vec![0u8; 64 << 10];
    let mut ready = Ready::default();
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
        ready.now();
    }
}
