//! `ntcomm demo`: exercises every channel the reference driver has today,
//! once each, and prints one table row per channel and operation.
//!
//! Every row is a real exchange with the driver whose result is checked
//! (payloads byte for byte, counters before and after). Channels that do
//! not exist yet are listed as "not yet", never simulated. The ring rows
//! check every record (sequence and checksum) on the client or through the
//! driver's counters; the pipe row runs a real pipe server in a thread.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use ntcomm_demo_proto::{self as proto, Delay, PortAsk, PortTally, Stats};
use ntcomm_proto::{Ioctl, NtStatus};
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::{Completion, CompletionPort, Device, ErrorKind, PipeServer, PortClient, RingChannel};

use crate::{lpc_server, rig};

/// How long a step waits for a completion (or a request to be pended)
/// before it is declared failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The exchange happened and every check passed.
    Ok,
    /// The exchange failed or a check did not hold.
    Fail,
    /// The channel is not implemented yet.
    NotYet,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Fail => "FAIL",
            Outcome::NotYet => "not yet",
        }
    }
}

/// One line of the demo table.
#[derive(Clone, Debug)]
pub struct Row {
    /// The channel, e.g. "IOCTL".
    pub channel: &'static str,
    /// What was done on it.
    pub operation: &'static str,
    /// How it went.
    pub outcome: Outcome,
    /// Bytes, latency, counters; or why it failed.
    pub detail: String,
}

/// A step's result: the detail text either way.
type Step = Result<String, String>;

/// An echo IOCTL, its row label and the payload length used.
type EchoCase = (&'static Ioctl<[u8], [u8]>, &'static str, usize);

/// Runs the demo against the driver image `image` and prints the table.
/// Exit code 1 if any row failed (or the driver could not be reached).
pub fn run(image: &Path) -> ExitCode {
    println!("ntcomm demo: driver {}", image.display());
    if let Err(e) = rig::ensure_demo_running(image) {
        eprintln!("ntcomm demo: cannot start the driver: {e}");
        return ExitCode::FAILURE;
    }
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ntcomm demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = rows(&dev);
    print!("{}", render(&rows));
    let failed = rows.iter().filter(|r| r.outcome == Outcome::Fail).count();
    let ok = rows.iter().filter(|r| r.outcome == Outcome::Ok).count();
    let not_yet = rows.iter().filter(|r| r.outcome == Outcome::NotYet).count();
    println!("\n{ok} OK, {failed} FAIL, {not_yet} not yet");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every row, in order, using `dev` (a synchronous handle) as the main
/// handle and opening others where a second handle is the point.
pub fn rows(dev: &Device) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |channel, operation, step: Step| {
        let (outcome, detail) = match step {
            Ok(d) => (Outcome::Ok, d),
            Err(d) => (Outcome::Fail, d),
        };
        rows.push(Row { channel, operation, outcome, detail });
    };
    let start = stats(dev);

    let echoes: [EchoCase; 4] = [
        (&proto::ECHO_BUFFERED, "ECHO METHOD_BUFFERED", 1500),
        (&proto::COMPARE_IN_DIRECT, "COMPARE METHOD_IN_DIRECT", 4096),
        (&proto::ECHO_OUT_DIRECT, "ECHO METHOD_OUT_DIRECT", 4097),
        (&proto::ECHO_NEITHER, "ECHO METHOD_NEITHER", 777),
    ];
    for (i, (ioctl, op, len)) in echoes.into_iter().enumerate() {
        row("IOCTL", op, echo(dev, ioctl, len, i as u8));
    }
    row("IOCTL", "GET_STATS", get_stats(dev));
    row("inverted call", "WAIT_EVENT pended, POST_EVENT from 2nd handle", inverted_call(dev));
    row("read/write queue", "WriteFile then ReadFile", write_then_read(dev));
    row("read/write queue", "ReadFile pends, WriteFile from 2nd handle", pended_read(dev));
    row("pended IOCTL", "DELAYED_COMPLETE 50 ms, synchronous", delayed_sync(dev));
    row("pended IOCTL", "DELAYED_COMPLETE 50 ms, through IOCP", delayed_iocp());
    row("cancellation", "pended ReadFile, CancelIoEx", cancel_read(dev));
    row("shared memory ring", "driver->user: RING_SOURCE 10,000 x 64 B", ring_d2u());
    row("shared memory ring", "user->driver: 10,000 x 64 B, RING_STATUS", ring_u2d());
    row("shared memory ring", "echo mode: round trip after 20 ms idle", ring_echo());
    row("named pipe", "PIPE_SEND x5 -> user pipe server (thread)", pipe(dev));
    row("Filter Manager port", "connect \\NtCommPort with the context", port_connect(dev));
    row("Filter Manager port", "connect with a wrong context (refused)", port_refused(dev));
    row("Filter Manager port", "user->driver: FilterSendMessage echo", port_send());
    row("Filter Manager port", "driver->user: PORT_ASK 100 questions, replies", port_ask());
    let lpc = lpc_server::BackgroundServer::start(DEMO_LPC_INSTANCE, lpc_server::ServerOptions::default());
    match &lpc {
        Ok(srv) => {
            row("LPC port", "user server; driver LPC_CONNECT (accepted)", lpc_connect(dev, srv));
            row("LPC port", "driver LPC_CONNECT, wrong information (refused)", lpc_refused(dev, srv));
            row("LPC port", "driver->user: LPC_ASK 4 workers x 100 requests", lpc_ask(dev, srv));
            row("LPC port", "driver->user: 1 MiB through the port's view", lpc_view(dev, srv));
            row("LPC port", "driver->user: 100 datagrams", lpc_datagrams(dev, srv));
        }
        Err(e) => row("LPC port", "create the server port", Err(format!("{e}"))),
    }
    row("driver state", "GET_STATS after all of the above", end_state(dev, start));
    rows
}

/// The demo's LPC server instance (the benchmarks and tests use others).
const DEMO_LPC_INSTANCE: u32 = 100;

fn lpc_connect_to(dev: &Device, info: &[u8], view_size: u32) -> Result<proto::LpcConnected, ntcomm_um::Error> {
    let mut c = proto::LpcConnect::new(info, view_size);
    c.instance = DEMO_LPC_INSTANCE;
    let mut out = proto::LpcConnected { max_message: 0, info_len: 0, view_size: 0, info: [0; 128] };
    dev.ioctl(&proto::LPC_CONNECT, &c, &mut out).map(|_| out)
}

fn lpc_connect(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    let t = Instant::now();
    let c = lpc_connect_to(dev, proto::LPC_CONNECT_INFO, 0).map_err(err)?;
    let info = c.info.get(..c.info_len as usize).unwrap_or(&[]);
    if info != proto::LPC_SERVER_INFO || srv.stats.accepted.load(Ordering::Relaxed) != 1 || stats(dev).is_none_or(|s| s.lpc_connected != 1)
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
        fmt_dur(t.elapsed()),
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

fn lpc_ask(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
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
    Ok(format!("400 replies, each matched to its request, in {}", fmt_dur(t.elapsed())))
}

fn lpc_view(dev: &Device, srv: &lpc_server::BackgroundServer) -> Step {
    lpc_connect_to(dev, proto::LPC_CONNECT_INFO, 1 << 20).map_err(err)?;
    let t = Instant::now();
    let ask = proto::LpcAsk { kind: proto::LPC_KIND_VIEW, workers: 1, count: 4, body_len: 0, timeout_ms: 30_000, view_len: 1 << 20 };
    let tally = lpc_tally(dev, ask)?;
    if tally.replied != 4 || srv.stats.view_ok.load(Ordering::Relaxed) != 4 {
        return Err(format!("replied {}, server checksums ok {}", tally.replied, srv.stats.view_ok.load(Ordering::Relaxed)));
    }
    Ok(format!("4 x 1 MiB written by the driver, checksummed by the server, in {}", fmt_dur(t.elapsed())))
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

/// The table as text.
pub fn render(rows: &[Row]) -> String {
    let head = ["CHANNEL", "OPERATION", "RESULT", "DETAIL"];
    let w0 = rows.iter().map(|r| r.channel.len()).chain([head[0].len()]).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.operation.len()).chain([head[1].len()]).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.outcome.label().len()).chain([head[2].len()]).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{:w0$}  {:w1$}  {:w2$}  {}", head[0], head[1], head[2], head[3]);
    let _ = writeln!(out, "{:-<w0$}  {:-<w1$}  {:-<w2$}  {:-<6}", "", "", "", "");
    for r in rows {
        let _ = writeln!(out, "{:w0$}  {:w1$}  {:w2$}  {}", r.channel, r.operation, r.outcome.label(), r.detail);
    }
    out
}

// ---------------------------------------------------------------------------
// Steps

fn echo(dev: &Device, ioctl: &Ioctl<[u8], [u8]>, len: usize, seed: u8) -> Step {
    let payload = pattern(len, seed);
    // Poisoned output: bytes the driver did not write show up as 0xEE.
    let mut out = vec![0xEE; len];
    proto::second_buffer(ioctl, &payload, &mut out, 0xEE);
    let t = Instant::now();
    let n = dev.ioctl(ioctl, &payload[..], &mut out[..]).map_err(err)?;
    let lat = t.elapsed();
    if n != len {
        return Err(format!("returned {n} bytes, sent {len}"));
    }
    verify(&payload, &out)?;
    Ok(format!("{len} B echoed, verified byte for byte, {}", fmt_dur(lat)))
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
        fmt_dur(lat),
        s.open_handles,
        s.irps_completed,
        s.irps_in_flight,
        s.irps_cancelled,
        s.pool_bytes_outstanding,
        s.pool_allocations_outstanding
    ))
}

fn inverted_call(dev: &Device) -> Step {
    let before = stats_checked(dev)?;
    // Port first: the device drops first, cancelling what is still in flight.
    let port = CompletionPort::new().map_err(err)?;
    let waiter = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&waiter, 1).map_err(err)?;
    waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, 7).map_err(err)?;
    wait_pended(dev, before.irps_in_flight + 1)?;
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
    verify(&payload, &c.buffer)?;
    let after = stats_checked(dev)?;
    let delivered = after.events_delivered - before.events_delivered;
    if delivered != 1 {
        return Err(format!("events_delivered grew by {delivered}, expected 1"));
    }
    Ok(format!("waiter got the {n} B payload, verified; post->completion {}; events_delivered +1", fmt_dur(lat)))
}

fn write_then_read(dev: &Device) -> Step {
    let drained = drain_messages(dev)?;
    let payload = pattern(300, 0x33);
    let t = Instant::now();
    let n = dev.write(&payload).map_err(err)?;
    if n != payload.len() {
        return Err(format!("WriteFile took {n} of {} bytes", payload.len()));
    }
    let queued = stats_checked(dev)?;
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
    verify(&payload, &buf[..n])?;
    let note = if drained > 0 { format!(" ({drained} leftover messages drained first)") } else { String::new() };
    Ok(format!("{n} B queued (1 msg), read back verified; write+stats+read {}, read {}{note}", fmt_dur(lat), fmt_dur(lat_read)))
}

fn pended_read(dev: &Device) -> Step {
    drain_messages(dev)?;
    let before = stats_checked(dev)?;
    let port = CompletionPort::new().map_err(err)?;
    let reader = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&reader, 2).map_err(err)?;
    reader.start_read(vec![0xEE; 4096], 11).map_err(err)?;
    wait_pended(dev, before.irps_in_flight + 1)?;
    if let Some(c) = port.wait(Some(Duration::ZERO)).map_err(err)? {
        return Err(format!("ReadFile completed with the queue empty: {:?}", c.result));
    }
    let payload = pattern(1000, 0x77);
    let t = Instant::now();
    let w = dev.write(&payload).map_err(err)?;
    let c = wait_one(&port)?;
    let lat = t.elapsed();
    let n = c.result.map_err(err)?;
    if w != payload.len() || n != payload.len() {
        return Err(format!("wrote {w} B, pended read got {n} B (expected {})", payload.len()));
    }
    verify(&payload, &c.buffer)?;
    let after = stats_checked(dev)?;
    if after.messages_queued != 0 {
        return Err(format!("{} messages queued after a write handed to a waiting read", after.messages_queued));
    }
    Ok(format!("read pended (in flight +1); {n} B write completed it, verified; write->read completion {}", fmt_dur(lat)))
}

const DELAY: Delay = Delay { millis: 50, token: 4242 };

fn delayed_sync(dev: &Device) -> Step {
    let t = Instant::now();
    let mut token = 0u32;
    dev.ioctl(&proto::DELAYED_COMPLETE, &DELAY, &mut token).map_err(err)?;
    delayed_verdict(token, t.elapsed(), "synchronous DeviceIoControl")
}

fn delayed_iocp() -> Step {
    let port = CompletionPort::new().map_err(err)?;
    let d = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&d, 3).map_err(err)?;
    let t = Instant::now();
    d.start_ioctl(&proto::DELAYED_COMPLETE, zerocopy::IntoBytes::as_bytes(&DELAY).to_vec(), 4, 13).map_err(err)?;
    let c = wait_one(&port)?;
    let lat = t.elapsed();
    c.result.map_err(err)?;
    let token = c.buffer.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).unwrap_or(0);
    delayed_verdict(token, lat, "completion through the port")
}

/// OK when the request took at least the delay and came back with the
/// token as its 4-byte reply.
fn delayed_verdict(token: u32, took: Duration, what: &str) -> Step {
    let delay = Duration::from_millis(DELAY.millis.into());
    if took < delay {
        return Err(format!("completed after {}, before the {} ms delay", fmt_dur(took), DELAY.millis));
    }
    if token != DELAY.token {
        return Err(format!("{what} replied {token}, expected the token {} ({})", DELAY.token, fmt_dur(took)));
    }
    Ok(format!("{what} completed after {}, replied the token {token}", fmt_dur(took)))
}

fn cancel_read(dev: &Device) -> Step {
    drain_messages(dev)?;
    let before = stats_checked(dev)?;
    let port = CompletionPort::new().map_err(err)?;
    let reader = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&reader, 4).map_err(err)?;
    let op = reader.start_read(vec![0; 4096], 17).map_err(err)?;
    wait_pended(dev, before.irps_in_flight + 1)?;
    let t = Instant::now();
    reader.cancel(op).map_err(err)?;
    let c = wait_one(&port)?;
    let lat = t.elapsed();
    match c.result {
        Err(e) if e.kind() == ErrorKind::Cancelled => {}
        Err(e) => return Err(format!("completed with {e}, expected Cancelled")),
        Ok(n) => return Err(format!("completed with success ({n} B), expected Cancelled")),
    }
    let after = stats_checked(dev)?;
    let cancelled = after.irps_cancelled - before.irps_cancelled;
    if cancelled != 1 || after.irps_in_flight != before.irps_in_flight {
        return Err(format!("irps_cancelled +{cancelled} (expected +1), in flight {} -> {}", before.irps_in_flight, after.irps_in_flight));
    }
    Ok(format!("Cancelled (error 995) after {}; irps_cancelled {} -> {}", fmt_dur(lat), before.irps_cancelled, after.irps_cancelled))
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

fn ring_d2u() -> Step {
    let ch = RingChannel::open(proto::USER_PATH, &proto::RINGS, RING_CAPACITY, RING_CAPACITY).map_err(err)?;
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
        match proto::check_record(&buf[..n]) {
            Some(seq) if seq == want => {}
            Some(seq) => return Err(format!("record {want} out of order: got sequence {seq}")),
            None => return Err(format!("record {want}: checksum mismatch")),
        }
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
        fmt_dur(took),
        mb / took.as_secs_f64(),
        st.wakeups_sent
    ))
}

fn ring_u2d() -> Step {
    let ch = RingChannel::open(proto::USER_PATH, &proto::RINGS, RING_CAPACITY, RING_CAPACITY).map_err(err)?;
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
        fmt_dur(sent),
        st.consumed_bytes,
        fmt_dur(took)
    ))
}

fn ring_echo() -> Step {
    const ROUNDS: u64 = 5;
    let ch = RingChannel::open_with(
        proto::USER_PATH,
        &proto::RINGS,
        &ntcomm_um::RingOptions::new(64 * 1024, 64 * 1024).with_mode(proto::RING_MODE_ECHO),
    )
    .map_err(err)?;
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
        fmt_dur(lats[lats.len() / 2]),
        fmt_dur(lats[lats.len() - 1]),
        st.wakeups_sent
    ))
}

fn pipe(dev: &Device) -> Step {
    const MESSAGES: usize = 5;
    /// The driver reconnects every 100 ms; allow for a slow Wine.
    const PIPE_TIMEOUT: Duration = Duration::from_secs(10);
    let before = stats_checked(dev)?;
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
    let after = stats_checked(dev)?;
    let sent = after.pipe_messages_sent - before.pipe_messages_sent;
    if sent < MESSAGES as u64 {
        return Err(format!("pipe_messages_sent grew by {sent}, expected at least {MESSAGES}"));
    }
    let note = if foreign > 0 { format!(" ({foreign} leftover messages of an earlier run skipped)") } else { String::new() };
    let bytes: usize = want.iter().map(String::len).sum();
    Ok(format!(
        "{MESSAGES} messages ({bytes} B) received whole and in order; send->last receipt {} (driver connects within 100 ms){note}",
        fmt_dur(took)
    ))
}

fn port_connect(dev: &Device) -> Step {
    let before = stats_checked(dev)?;
    if before.port_available != 1 {
        return Err(format!("the driver reports its port unavailable (port_available {})", before.port_available));
    }
    let t = Instant::now();
    let client = PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).map_err(err)?;
    let lat = t.elapsed();
    let during = stats_checked(dev)?;
    drop(client);
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut after = stats_checked(dev)?;
    while after.port_disconnects < before.port_disconnects + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        after = stats_checked(dev)?;
    }
    if during.port_clients != before.port_clients + 1 {
        return Err(format!("port_clients {} -> {} while connected (expected +1)", before.port_clients, during.port_clients));
    }
    if after.port_disconnects != before.port_disconnects + 1 || after.port_clients != before.port_clients {
        return Err(format!(
            "after closing: port_disconnects +{}, port_clients {} (expected +1, {})",
            after.port_disconnects - before.port_disconnects,
            after.port_clients,
            before.port_clients
        ));
    }
    Ok(format!(
        "context {:?} ({} B) accepted in {}; connect callback ran (port_clients +1), close ran the disconnect callback",
        String::from_utf8_lossy(proto::PORT_CONTEXT),
        proto::PORT_CONTEXT.len(),
        fmt_dur(lat)
    ))
}

fn port_refused(dev: &Device) -> Step {
    let before = stats_checked(dev)?;
    let e = match PortClient::connect(proto::PORT_NAME, b"wrong context") {
        Ok(_) => return Err("a wrong context was accepted".to_owned()),
        Err(e) => e,
    };
    if e.kind() != ErrorKind::AccessDenied {
        return Err(format!("refused with {e}, expected access denied"));
    }
    let after = stats_checked(dev)?;
    if after.port_refused != before.port_refused + 1 || after.port_clients != before.port_clients {
        return Err(format!(
            "port_refused {} -> {}, port_clients {} -> {} (expected +1, unchanged)",
            before.port_refused, after.port_refused, before.port_clients, after.port_clients
        ));
    }
    Ok(format!("expected error: {e}; port_refused +1"))
}

fn port_send() -> Step {
    const LEN: usize = 1000;
    let client = PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).map_err(err)?;
    let payload = pattern(LEN, 0x4c);
    let mut out = vec![0xEE; LEN + 16];
    let t = Instant::now();
    let n = client.send(&payload, &mut out).map_err(err)?;
    let lat = t.elapsed();
    if n != LEN {
        return Err(format!("reply of {n} B to a {LEN} B message"));
    }
    verify(&payload, &out[..n])?;
    Ok(format!("{LEN} B sent, the message callback's {n} B reply verified byte for byte, {}", fmt_dur(lat)))
}

/// The demo service's verdict on question `seq`: allow unless a multiple
/// of 3; the reply is the sequence number (u64 LE) and the verdict byte.
pub(crate) fn port_verdict(seq: u64) -> [u8; proto::PORT_REPLY_LEN] {
    let mut r = [0u8; proto::PORT_REPLY_LEN];
    r[..8].copy_from_slice(&seq.to_le_bytes());
    r[8] = u8::from(!seq.is_multiple_of(3));
    r
}

fn port_ask() -> Step {
    const QUESTIONS: u32 = 100;
    let client = Arc::new(PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).map_err(err)?);
    let stop = Arc::new(AtomicBool::new(false));
    let (rtx, rrx) = mpsc::channel();
    {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let r = (|| -> Result<u64, String> {
                let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
                let mut answered = 0u64;
                while answered < u64::from(QUESTIONS) {
                    let m = match client.get_message(&mut buf) {
                        Ok(m) => m,
                        Err(_) if stop.load(Ordering::Acquire) => break,
                        Err(e) => return Err(format!("receiver: {e}")),
                    };
                    let seq = proto::check_record(m.body).ok_or("receiver: a question failed its checksum")?;
                    if m.max_reply_body() < proto::PORT_REPLY_LEN {
                        return Err(format!("receiver: question {seq} accepts a {} B reply", m.max_reply_body()));
                    }
                    client.answer(&proto::PORT_QUESTION, m.id, &proto::PortVerdict::of(seq)).map_err(|e| format!("receiver: {e}"))?;
                    answered += 1;
                }
                Ok(answered)
            })();
            let _ = rtx.send(r);
        });
    }
    // The IOCTL runs in its own thread so a stuck exchange cannot hang the demo.
    let (atx, arx) = mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let r = (|| -> Result<PortTally, String> {
            let d = Device::open(proto::USER_PATH).map_err(err)?;
            let ask = PortAsk { questions: QUESTIONS, threads: 4, timeout_ms: 2000, want_reply: 1, question_len: 64, reserved: 0 };
            let mut tally = PortTally::default();
            d.ioctl(&proto::PORT_ASK, &ask, &mut tally).map_err(err)?;
            Ok(tally)
        })();
        let _ = atx.send(r);
    });
    let asked = arx.recv_timeout(Duration::from_secs(30));
    let took = t.elapsed();
    stop.store(true, Ordering::Release);
    let _ = client.cancel_receives();
    let answered = rrx.recv_timeout(STEP_TIMEOUT);
    let tally = match asked {
        Ok(r) => r?,
        Err(_) => return Err("PORT_ASK did not complete within 30 s".to_owned()),
    };
    let answered = match answered {
        Ok(r) => r?,
        Err(_) => return Err("the receiver thread did not finish".to_owned()),
    };
    let q = u64::from(QUESTIONS);
    let denied = q.div_ceil(3);
    let t = tally;
    if (t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed) != (q, q, 0, 0, 0, 0)
        || (t.allowed, t.denied) != (q - denied, denied)
        || answered != q
    {
        return Err(format!(
            "tally {t:?}, receiver answered {answered} (expected {q} sent and replied, {} allowed, {denied} denied, 0 bad)",
            q - denied
        ));
    }
    Ok(format!(
        "{} questions (64 B records, 4 driver threads) answered by a receiver thread; tally: replied {}, allowed {}, denied {}, bad {}, timeouts {}; {}",
        t.sent,
        t.replied,
        t.allowed,
        t.denied,
        t.bad_replies,
        t.timeouts,
        fmt_dur(took)
    ))
}

fn end_state(dev: &Device, start: Option<Stats>) -> Step {
    let start = start.ok_or("GET_STATS failed at the start")?;
    // Ring channels are torn down by their thread after the handle closes.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut end = stats_checked(dev)?;
    while end.ring_channels_open > start.ring_channels_open && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        end = stats_checked(dev)?;
    }
    if end.irps_in_flight != start.irps_in_flight || end.messages_queued != 0 {
        return Err(format!("in flight {} -> {}, {} messages still queued", start.irps_in_flight, end.irps_in_flight, end.messages_queued));
    }
    if end.ring_channels_open != start.ring_channels_open {
        return Err(format!("ring channels open {} -> {}: not torn down after close", start.ring_channels_open, end.ring_channels_open));
    }
    Ok(format!(
        "nothing left pended ({} in flight) or queued, {} ring channels open; {} IRPs completed during the demo, {} handles open, pool {} B in {} blocks",
        end.irps_in_flight,
        end.ring_channels_open,
        end.irps_completed - start.irps_completed,
        end.open_handles,
        end.pool_bytes_outstanding,
        end.pool_allocations_outstanding
    ))
}

// ---------------------------------------------------------------------------
// Helpers

fn err(e: ntcomm_um::Error) -> String {
    e.to_string()
}

fn stats(dev: &Device) -> Option<Stats> {
    dev.ioctl_get(&proto::GET_STATS).ok()
}

fn stats_checked(dev: &Device) -> Result<Stats, String> {
    dev.ioctl_get(&proto::GET_STATS).map_err(err)
}

/// Polls GET_STATS until the driver holds at least `in_flight` pended IRPs:
/// proof that a request started asynchronously has reached the driver and
/// pended there.
fn wait_pended(dev: &Device, in_flight: u64) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let s = stats_checked(dev)?;
        if s.irps_in_flight >= in_flight {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("request never pended in the driver ({} in flight after {:?})", s.irps_in_flight, STEP_TIMEOUT));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_one(port: &CompletionPort) -> Result<Completion, String> {
    port.wait(Some(STEP_TIMEOUT)).map_err(err)?.ok_or_else(|| format!("no completion within {:?}", STEP_TIMEOUT))
}

/// Reads away messages left in the driver's queue (e.g. by an earlier run)
/// so reads see what this demo writes. Returns how many.
fn drain_messages(dev: &Device) -> Result<u64, String> {
    let queued = stats_checked(dev)?.messages_queued;
    let mut buf = vec![0; proto::MAX_MESSAGE];
    for _ in 0..queued {
        dev.read(&mut buf).map_err(err)?;
    }
    Ok(queued)
}

/// `len` bytes that differ from one position (and seed) to the next.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

fn verify(want: &[u8], got: &[u8]) -> Result<(), String> {
    if got.len() < want.len() {
        return Err(format!("got {} bytes, expected {}", got.len(), want.len()));
    }
    match want.iter().zip(got).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!("byte {i} differs: got {:#04x}, expected {:#04x}", got[i], want[i])),
    }
}

/// `123 us` or `50.3 ms`.
pub(crate) fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0} us")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}
