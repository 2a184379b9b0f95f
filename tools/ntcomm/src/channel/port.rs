//! The Filter Manager communication port `\\NtCommPort`: clients connect
//! with the demo's context, send messages the driver's callback echoes
//! (`FilterSendMessage`), and answer the questions the driver sends them
//! (`PORT_ASK`: `FltSendMessage`, a [`proto::PORT_QUESTION`] whose reply is a
//! [`PortVerdict`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ntcomm_demo_proto::{self as proto, PortAsk, PortTally, PortVerdict};
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::{CompletionPort, Device, ErrorKind, Message, PortClient};
use serde_json::{json, Value};

use super::Channel;
use crate::bench::{driver_hist, outcome, timed, BenchCase, Load, Measured, Options, Outcome, STALL};
use crate::demo::{err, Row, Step, STEP_TIMEOUT};
use crate::driver_state::stats;
use crate::fault_child::{announce, ChildError, ChildResult, Ready};
use crate::faults::{median, Kid, Probe, Suite, HANG};
use crate::fmt::{micros, nanos};
use crate::payload::{check_echo, pattern};
use crate::rng::Rng;

/// The fault child role of a port client the driver asks.
const PEER_ROLE: &str = "port-peer";

/// A client of the driver's port, with the demo's connection context.
fn connect() -> ntcomm_um::Result<PortClient> {
    PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT)
}

/// Answers question `id`, whose record carried `seq`, with the demo
/// service's verdict on it.
fn answer(client: &PortClient, id: u64, seq: u64) -> ntcomm_um::Result<()> {
    client.answer(&proto::PORT_QUESTION, id, &PortVerdict::of(seq))
}

/// One `PORT_ASK` on a handle of its own, in a thread, given at most `limit`
/// (a stuck exchange cannot hang the caller); the tally and the IOCTL's
/// duration.
fn ask(ask: PortAsk, limit: Duration) -> Result<(PortTally, Duration), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = (|| -> Result<(PortTally, Duration), String> {
            let d = Device::open(proto::USER_PATH).map_err(err)?;
            let mut tally = PortTally::default();
            let t = Instant::now();
            d.ioctl(&proto::PORT_ASK, &ask, &mut tally).map_err(|e| format!("PORT_ASK: {e}"))?;
            Ok((tally, t.elapsed()))
        })();
        let _ = tx.send(r);
    });
    rx.recv_timeout(limit).map_err(|_| format!("PORT_ASK of {} questions did not complete within {limit:?}", ask.questions))?
}

/// Every one of `q` questions was sent and answered, with the demo
/// service's verdicts ([`PortVerdict::of`]).
fn all_answered(q: u64, t: &PortTally) -> Result<(), String> {
    if (t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed) != (q, q, 0, 0, 0, 0) {
        return Err(format!("PORT_ASK of {q}: tally {t:?}"));
    }
    let denied = q.div_ceil(3);
    if (t.allowed, t.denied) != (q - denied, denied) {
        return Err(format!("PORT_ASK of {q}: {} allowed / {} denied, expected {} / {denied}", t.allowed, t.denied, q - denied));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Demo

/// Connect (and refused), a message echoed, questions from the driver answered.
pub fn demo(dev: &Device) -> Vec<Row> {
    vec![
        Row::of("Filter Manager port", "connect \\NtCommPort with the context", port_connect(dev)),
        Row::of("Filter Manager port", "connect with a wrong context (refused)", port_refused(dev)),
        Row::of("Filter Manager port", "user->driver: FilterSendMessage echo", demo_send()),
        Row::of("Filter Manager port", "driver->user: PORT_ASK 100 questions, replies", port_ask()),
    ]
}

fn port_connect(dev: &Device) -> Step {
    let before = stats(dev)?;
    if before.port_available != 1 {
        return Err(format!("the driver reports its port unavailable (port_available {})", before.port_available));
    }
    let t = Instant::now();
    let client = connect().map_err(err)?;
    let lat = t.elapsed();
    let during = stats(dev)?;
    drop(client);
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut after = stats(dev)?;
    while after.port_disconnects < before.port_disconnects + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        after = stats(dev)?;
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
        micros(lat)
    ))
}

fn port_refused(dev: &Device) -> Step {
    let before = stats(dev)?;
    let e = match PortClient::connect(proto::PORT_NAME, b"wrong context") {
        Ok(_) => return Err("a wrong context was accepted".to_owned()),
        Err(e) => e,
    };
    if e.kind() != ErrorKind::AccessDenied {
        return Err(format!("refused with {e}, expected access denied"));
    }
    let after = stats(dev)?;
    if after.port_refused != before.port_refused + 1 || after.port_clients != before.port_clients {
        return Err(format!(
            "port_refused {} -> {}, port_clients {} -> {} (expected +1, unchanged)",
            before.port_refused, after.port_refused, before.port_clients, after.port_clients
        ));
    }
    Ok(format!("expected error: {e}; port_refused +1"))
}

fn demo_send() -> Step {
    const LEN: usize = 1000;
    let client = connect().map_err(err)?;
    let payload = pattern(LEN, 0x4c);
    let mut out = vec![0xEE; LEN + 16];
    let t = Instant::now();
    let n = client.send(&payload, &mut out).map_err(err)?;
    let lat = t.elapsed();
    if n != LEN {
        return Err(format!("reply of {n} B to a {LEN} B message"));
    }
    check_echo(&payload, n, &out)?;
    Ok(format!("{LEN} B sent, the message callback's {n} B reply verified byte for byte, {}", micros(lat)))
}

fn port_ask() -> Step {
    const QUESTIONS: u32 = 100;
    let client = Arc::new(connect().map_err(err)?);
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
                    answer(&client, m.id, seq).map_err(|e| format!("receiver: {e}"))?;
                    answered += 1;
                }
                Ok(answered)
            })();
            let _ = rtx.send(r);
        });
    }
    // The IOCTL runs in its own thread so a stuck exchange cannot hang the demo.
    let asked = ask(
        PortAsk { questions: QUESTIONS, threads: 4, timeout_ms: 2000, want_reply: 1, question_len: 64, reserved: 0 },
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Release);
    let _ = client.cancel_receives();
    let answered = rrx.recv_timeout(STEP_TIMEOUT);
    let (t, took) = asked?;
    let answered = match answered {
        Ok(r) => r?,
        Err(_) => return Err("the receiver thread did not finish".to_owned()),
    };
    let q = u64::from(QUESTIONS);
    all_answered(q, &t)?;
    if answered != q {
        return Err(format!("the receiver answered {answered} of {q} questions (tally {t:?})"));
    }
    Ok(format!(
        "{} questions (64 B records, 4 driver threads) answered by a receiver thread; tally: replied {}, allowed {}, denied {}, bad {}, timeouts {}; {}",
        t.sent,
        t.replied,
        t.allowed,
        t.denied,
        t.bad_replies,
        t.timeouts,
        micros(took)
    ))
}

// ---------------------------------------------------------------------------
// Bench

/// The port's benchmark cases.
pub const BENCH: [BenchCase; 5] = [
    BenchCase {
        name: "port-send",
        channel: Channel::Port,
        round_trip: "FilterSendMessage of SIZE bytes -> driver's message callback echoes them (Filter Manager port, user->driver)",
        load: Load::RoundTrips,
        max_payload: proto::MAX_PORT_MESSAGE,
        min_payload: 0,
        in_c_baseline: false,
        run: |opts, bar, _| bench_send(opts, bar),
    },
    BenchCase {
        name: "port-ask",
        channel: Channel::Port,
        round_trip: "PORT_ASK: 16 driver threads FltSendMessage SIZE-byte questions; 8 receiver threads x 16 outstanding FilterGetMessage (IOCP) reply; ops = questions, throughput from the IOCTL's duration; latency = send -> reply timed by the driver",
        load: Load::Questions,
        max_payload: proto::MAX_PORT_MESSAGE,
        // Questions are demo records (sequence and checksum).
        min_payload: proto::RECORD_MIN,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, PortShape { senders: 16, receivers: 8, outstanding: 16 }),
    },
    BenchCase {
        name: "port-ask-threads",
        channel: Channel::Port,
        round_trip: "PORT_ASK as port-ask, answered by 16 receiver threads each calling the blocking FilterGetMessage then replying (thread per request)",
        load: Load::Questions,
        max_payload: proto::MAX_PORT_MESSAGE,
        // Questions are demo records (sequence and checksum).
        min_payload: proto::RECORD_MIN,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, PortShape { senders: 16, receivers: 16, outstanding: 0 }),
    },
    BenchCase {
        name: "port-ask-1",
        channel: Channel::Port,
        round_trip: "PORT_ASK with 1 driver thread, 1 receiver thread with 1 receive outstanding; latency = send -> reply timed by the driver; duration / questions in the notes",
        load: Load::Questions,
        max_payload: proto::MAX_PORT_MESSAGE,
        // Questions are demo records (sequence and checksum).
        min_payload: proto::RECORD_MIN,
        in_c_baseline: false,
        run: |opts, bar, _| bench_ask(opts, bar, PortShape { senders: 1, receivers: 1, outstanding: 1 }),
    },
    BenchCase {
        name: "async-port-ask",
        channel: Channel::Port,
        round_trip: "PORT_ASK as port-ask, answered by one tokio task reading AsyncPort's message stream (128 receives in flight)",
        load: Load::Questions,
        max_payload: proto::MAX_PORT_MESSAGE,
        // Questions are demo records (sequence and checksum).
        min_payload: proto::RECORD_MIN,
        in_c_baseline: false,
        run: |opts, bar, _| crate::bench::aio::port_ask(opts, bar),
    },
];

fn bench_send(opts: &Options, bar: &ProgressBar) -> Outcome {
    let client = match connect() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x43);
    let mut out = vec![0u8; opts.size];
    outcome(timed(opts, bar, || {
        out.fill(0xEE);
        let n = client.send(&payload, &mut out).map_err(|e| e.to_string())?;
        check_echo(&payload, n, &out)
    }))
}

/// Who asks and who answers in a `port-ask*` run.
#[derive(Clone, Copy)]
struct PortShape {
    /// Driver threads sending questions (`PortAsk::threads`).
    senders: u32,
    /// Receiver threads in this process.
    receivers: usize,
    /// Overlapped `FilterGetMessage` outstanding per receiver thread (the
    /// threads share one completion port); 0: each thread calls the
    /// blocking `FilterGetMessage` and answers (thread per request).
    outstanding: usize,
}

/// Receiver threads answering the driver's questions through one
/// completion port (the shape of Microsoft's scanner sample).
struct Answerers {
    client: Arc<PortClient>,
    done: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    workers: Vec<std::thread::JoinHandle<Result<(), String>>>,
}

impl Answerers {
    fn start(shape: PortShape, question_len: usize) -> Result<Answerers, String> {
        if shape.outstanding == 0 {
            return Answerers::blocking(shape.receivers, question_len);
        }
        let client = Arc::new(connect().map_err(|e| e.to_string())?);
        let port = Arc::new(CompletionPort::new().map_err(|e| e.to_string())?);
        client.associate(&port, 1).map_err(|e| e.to_string())?;
        let cap = MESSAGE_HEADER_LEN + question_len;
        for tag in 0..(shape.receivers * shape.outstanding) as u64 {
            client.start_get_message(cap, tag).map_err(|e| e.to_string())?;
        }
        let done = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let workers = (0..shape.receivers)
            .map(|_| {
                let (client, port, done, answered) = (client.clone(), port.clone(), done.clone(), answered.clone());
                std::thread::spawn(move || loop {
                    let Some(c) = port.wait(Some(Duration::from_millis(50))).map_err(|e| e.to_string())? else {
                        if done.load(Ordering::Acquire) {
                            return Ok(());
                        }
                        continue;
                    };
                    if c.result.is_err() {
                        // Cancelled at shutdown, or the port went away.
                        if done.load(Ordering::Acquire) {
                            continue;
                        }
                        return Err(format!("receive failed: {:?}", c.result.err()));
                    }
                    let m = Message::parse(&c.buffer).map_err(|e| e.to_string())?;
                    let seq = proto::check_record(m.body).ok_or("a question failed its checksum")?;
                    answer(&client, m.id, seq).map_err(|e| e.to_string())?;
                    answered.fetch_add(1, Ordering::Relaxed);
                    if !done.load(Ordering::Acquire) {
                        client.start_get_message(cap, c.tag).map_err(|e| e.to_string())?;
                    }
                })
            })
            .collect();
        Ok(Answerers { client, done, answered, workers })
    }

    /// `receivers` threads each looping on the blocking `FilterGetMessage`
    /// and answering what it returned.
    fn blocking(receivers: usize, question_len: usize) -> Result<Answerers, String> {
        let client = Arc::new(connect().map_err(|e| e.to_string())?);
        let done = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let workers = (0..receivers)
            .map(|_| {
                let (client, done, answered) = (client.clone(), done.clone(), answered.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; MESSAGE_HEADER_LEN + question_len];
                    while !done.load(Ordering::Acquire) {
                        let m = match client.get_message(&mut buf) {
                            Ok(m) => m,
                            // Cancelled at shutdown.
                            Err(_) if done.load(Ordering::Acquire) => return Ok(()),
                            Err(e) => return Err(format!("receive failed: {e}")),
                        };
                        let seq = proto::check_record(m.body).ok_or("a question failed its checksum")?;
                        answer(&client, m.id, seq).map_err(|e| e.to_string())?;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        Ok(Answerers { client, done, answered, workers })
    }

    /// Stops the receivers (cancelling outstanding receives); the first
    /// receiver error, if any.
    fn stop(self) -> Result<u64, String> {
        self.done.store(true, Ordering::Release);
        // Again until every thread is out: a blocking receiver may issue its
        // receive just after a cancellation, which then misses it.
        while !self.workers.iter().all(std::thread::JoinHandle::is_finished) {
            let _ = self.client.cancel_receives();
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut first = Ok(());
        for w in self.workers {
            let r = w.join().unwrap_or_else(|_| Err("a receiver thread panicked".to_owned()));
            if first.is_ok() {
                first = r;
            }
        }
        first.map(|()| self.answered.load(Ordering::Relaxed))
    }
}

/// One `PORT_ASK` of `questions` of `size` bytes from `senders` driver
/// threads, given at most `limit`, every one answered.
pub(crate) fn ask_questions(questions: u32, senders: u32, size: usize, limit: Duration) -> Result<(PortTally, Duration), String> {
    let (tally, took) =
        ask(PortAsk { questions, threads: senders, timeout_ms: 5000, want_reply: 1, question_len: size as u32, reserved: 0 }, limit)?;
    all_answered(u64::from(questions), &tally)?;
    Ok((tally, took))
}

fn bench_ask(opts: &Options, bar: &ProgressBar, shape: PortShape) -> Outcome {
    let size = opts.size;
    let answerers = match Answerers::start(shape, size) {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(e),
    };
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let run = (|| -> Result<Measured, String> {
        // Warm-up, also the calibration that keeps the timed run near the cap.
        let warm = u32::try_from(opts.warmup.clamp(100, 100_000)).unwrap_or(100);
        let (_, took) = ask_questions(warm, shape.senders, size, cap + STALL * 4)?;
        let per_s = f64::from(warm) / took.as_secs_f64().max(1e-9);
        let fit = (per_s * opts.max_seconds).floor().max(1.0).min(f64::from(u32::MAX)) as u32;
        let n = opts.port_questions.min(fit).max(1);
        let capped = n < opts.port_questions;
        let (tally, took) = ask_questions(n, shape.senders, size, cap * 3 + STALL * 4)?;
        bar.inc(u64::from(n));
        let mut notes = vec![format!(
            "{warm} warm-up questions first ({per_s:.0}/s), then {n} timed{}: replied {}, allowed {}, denied {}, bad {}, timeouts {}",
            if capped {
                format!(" (fewer than --port-questions {}: sized to fit --max-seconds at the warm-up rate)", opts.port_questions)
            } else {
                String::new()
            },
            tally.replied,
            tally.allowed,
            tally.denied,
            tally.bad_replies,
            tally.timeouts
        )];
        let per_q = took / n;
        notes.push(if shape.outstanding == 1 && shape.receivers == 1 {
            format!("round trip per question (duration / questions, one at a time): {}", nanos(per_q))
        } else if shape.outstanding == 0 {
            format!(
                "{} driver threads, {} receiver threads each blocking in FilterGetMessage; {} per question on average (throughput, not latency)",
                shape.senders,
                shape.receivers,
                nanos(per_q)
            )
        } else {
            format!(
                "{} driver threads, {} receiver threads x {} outstanding; {} per question on average (throughput, not latency)",
                shape.senders,
                shape.receivers,
                shape.outstanding,
                nanos(per_q)
            )
        });
        // The driver timed every question from FltSendMessage to the reply.
        let hist = driver_hist(&tally.rtt_hist);
        notes.push("latency columns: send -> reply as timed by the driver per question, bucketed (lower bounds, within 25 %)".to_owned());
        Ok(Measured { hist, iterations: n.into(), elapsed: took, capped, notes })
    })();
    let stopped = answerers.stop();
    match (run, stopped) {
        (Err(e), _) => Outcome::Failed(e),
        (Ok(_), Err(e)) => Outcome::Failed(format!("receivers: {e}")),
        (Ok(m), Ok(_)) => Outcome::Done(m),
    }
}

// ---------------------------------------------------------------------------
// Fault suite

/// A new client's message is echoed, and the driver's question to it answered.
pub(crate) fn new_client_works(probe: &Probe) -> Result<(), String> {
    let client = Arc::new(connect().map_err(err)?);
    let mut out = vec![0u8; 600];
    let payload: Vec<u8> = (0..500).map(|k| (k * 3) as u8).collect();
    let n = client.send(&payload, &mut out).map_err(err)?;
    if out[..n] != payload[..] {
        return Err("port echo differs".into());
    }
    // And one question from the driver, answered.
    // The answer comes back over a channel: if the driver's question
    // never arrives, the wait below ends with an error instead of
    // blocking the suite forever (the receiving thread stays behind).
    let (answered_tx, answering) = mpsc::channel();
    {
        let client = client.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
            let r = (|| -> Result<(), String> {
                let m = client.get_message(&mut buf).map_err(|e| e.to_string())?;
                let seq = proto::check_record(m.body).ok_or("bad question")?;
                answer(&client, m.id, seq).map_err(|e| e.to_string())
            })();
            let _ = answered_tx.send(r);
        });
    }
    let ask = PortAsk { questions: 1, threads: 1, timeout_ms: 10_000, want_reply: 1, question_len: 64, reserved: 0 };
    // The killed client leaves the driver's list when the Filter Manager has
    // seen its handle close, which may be after this client connected: a
    // question that went to it ends `disconnected` and is asked again.
    let deadline = std::time::Instant::now() + HANG;
    let t = loop {
        let mut t = PortTally::default();
        probe.dev.ioctl(&proto::PORT_ASK, &ask, &mut t).map_err(err)?;
        if !(t.disconnected == 1 && t.sent == 0) || std::time::Instant::now() >= deadline {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let answered = answering
        .recv_timeout(HANG)
        .map_err(|_| format!("the driver's PORT_ASK question never reached the client within {HANG:?} (tally {t:?})"))?;
    if t.replied != 1 || t.allowed + t.denied != 1 {
        return Err(format!("PORT_ASK tally {t:?} ({answered:?})"));
    }
    answered
}

/// Random messages echoed; now and then questions from the driver, answered
/// by a thread.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let client = Arc::new(connect()?);
    {
        // Answers the driver's questions.
        let client = client.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
            while let Ok(m) = client.get_message(&mut buf) {
                let seq = proto::check_record(m.body).unwrap_or(u64::MAX);
                if m.wants_reply() && answer(&client, m.id, seq).is_err() {
                    break;
                }
            }
        });
    }
    let d = Device::open(proto::USER_PATH)?;
    let mut ready = Ready::default();
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
        ready.now();
    }
}

/// A port client that answers questions, or (`stall`) takes one and
/// never answers.
pub(crate) fn peer_workload(stall: bool) -> ChildResult {
    let client = connect()?;
    announce("ready");
    let mut buf = vec![0u8; MESSAGE_HEADER_LEN + proto::MAX_PORT_MESSAGE];
    loop {
        let m = client.get_message(&mut buf)?;
        if stall {
            announce("holding");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        let seq = proto::check_record(m.body).unwrap_or(u64::MAX);
        answer(&client, m.id, seq)?;
    }
}

/// The port client killed while the driver waits for its reply.
pub(crate) fn peer_kills(suite: &mut Suite) -> Result<Value, String> {
    let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
    let base = suite.steady(&dev, Channel::Port)?;
    let mut asks_ms = Vec::new();
    let mut totals = PortTally::default();
    for i in 0..suite.opts.peer_kills {
        // Two kinds of peer: one that holds a question unanswered, one
        // that answers as fast as it can.
        let stall = i % 3 != 2;
        let kid = Kid::spawn_ready(&[PEER_ROLE, if stall { "--stall" } else { "--answer" }]).map_err(|e| format!("peer kill {i}: {e}"))?;
        let (tally, ms) = suite.kill_mid_call(i, kid, stall, "PORT_ASK", "client", || {
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
        suite.recovered(&dev, Channel::Port, &base).map_err(|e| format!("peer kill {i}: {e}"))?;
    }
    suite.say(format!(
        "   {} port clients killed mid-question: PORT_ASK ended {} ms median / {} ms max after the kill; {} questions sent, {} replied, {} ended by the disconnect",
        suite.opts.peer_kills,
        median(&asks_ms),
        asks_ms.iter().max().unwrap_or(&0),
        totals.sent,
        totals.replied,
        totals.disconnected
    ));
    Ok(json!({
        "channel": "port",
        "peer_kills": suite.opts.peer_kills,
        "ask_ended_after_kill_ms": {"median": median(&asks_ms), "max": asks_ms.iter().max()},
        "questions_sent": totals.sent,
        "questions_replied": totals.replied,
        "questions_disconnected": totals.disconnected,
        "pool": {"bytes": base.pool_bytes, "blocks": base.pool_blocks},
    }))
}
