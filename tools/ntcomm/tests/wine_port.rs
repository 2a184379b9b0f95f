//! Filter Manager communication ports against the real driver under Wine
//! (through ntcomm's Wine fltmgr.sys and fltlib.dll): connection callbacks,
//! refusals, MaxConnections, both directions, timeouts, a dying service, an
//! unloading driver, a 100,000-question load, and a plain C client.
#![cfg(windows)]

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, stats, ChildTest};
use ntcomm::rig;
use ntcomm_demo_proto::{self as demo, PortAsk, PortTally, PortVerdict};
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::{service, CompletionPort, Device, ErrorKind, Message, PortClient};

/// The port and its counters are shared: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn connect() -> PortClient {
    PortClient::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap()
}

/// The service's answer to question `seq`: echo the number, allow unless it
/// is a multiple of 3.
fn verdict(seq: u64) -> PortVerdict {
    PortVerdict { seq: seq.into(), allow: u8::from(!seq.is_multiple_of(3)) }
}

fn answer(client: &PortClient, m: &Message<'_>) {
    let seq = demo::check_record(m.body).expect("question is a valid record");
    client.answer(&demo::PORT_QUESTION, m.id, &verdict(seq)).unwrap();
}

fn ask(dev: &Device, a: PortAsk) -> PortTally {
    let mut t = PortTally::default();
    dev.ioctl(&demo::PORT_ASK, &a, &mut t).unwrap();
    t
}

fn asking(questions: u32, threads: u32, timeout_ms: u32, want_reply: bool) -> PortAsk {
    PortAsk { questions, threads, timeout_ms, want_reply: want_reply as u32, question_len: 64, reserved: 0 }
}

#[test]
fn connect_and_disconnect_run_the_callbacks_with_the_context() {
    let _s = serial();
    let dev = rig::test_device();
    assert_eq!(stats(&dev).port_available, 1, "the driver's port is open");
    let before = stats(&dev);
    let client = connect();
    assert_eq!(stats(&dev).port_clients, before.port_clients + 1);
    drop(client);
    eventually("the disconnect callback", || stats(&dev).port_disconnects == before.port_disconnects + 1);
    assert_eq!(stats(&dev).port_clients, before.port_clients);
}

#[test]
fn a_refused_connection_is_an_error_for_the_client() {
    let _s = serial();
    let dev = rig::test_device();
    let before = stats(&dev);
    let err = PortClient::connect(demo::PORT_NAME, b"wrong context").err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    let err = PortClient::connect(r"\NoSuchPort", demo::PORT_CONTEXT).err().expect("no such port");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(stats(&dev).port_refused, before.port_refused + 1);
    assert_eq!(stats(&dev).port_clients, before.port_clients);
}

#[test]
fn max_connections_is_enforced() {
    let _s = serial();
    let dev = rig::test_device();
    let mut clients: Vec<PortClient> = (0..demo::PORT_MAX_CONNECTIONS).map(|_| connect()).collect();
    let err = PortClient::connect(demo::PORT_NAME, demo::PORT_CONTEXT).err().expect("one too many");
    assert_eq!(err.win32(), 1238, "ERROR_CONNECTION_COUNT_LIMIT: {err}");
    clients.pop();
    eventually("a slot freed", || stats(&dev).port_clients == u64::from(demo::PORT_MAX_CONNECTIONS) - 1);
    clients.push(connect());
}

#[test]
fn user_to_driver_messages_at_every_size() {
    let _s = serial();
    rig::test_device();
    let client = connect();
    for len in [0usize, 1, 100, demo::MAX_PORT_MESSAGE] {
        let input: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut out = vec![0u8; len + 8];
        let n = client.send(&input, &mut out).unwrap_or_else(|e| panic!("len {len}: {e}"));
        assert_eq!(&out[..n], &input[..], "len {len}");
    }
    let err = client.send(&vec![1u8; demo::MAX_PORT_MESSAGE + 1], &mut vec![0u8; demo::MAX_PORT_MESSAGE + 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    let err = client.send(&[1u8; 10], &mut [0u8; 9]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall, "{err}");
}

#[test]
fn typed_calls_to_the_driver_check_the_declaration() {
    let _s = serial();
    rig::test_device();
    let client = connect();
    // The demo's message callback echoes: a declaration of 8 bytes each way.
    const ECHO_U64: ntcomm_proto::Message<u64, u64> = ntcomm_proto::Message::fixed("ECHO_U64");
    assert_eq!(client.call(&ECHO_U64, &0x0123_4567_89ab_cdef).unwrap(), 0x0123_4567_89ab_cdef);
    // A reply shorter than declared is refused on the client side.
    const SHORT: ntcomm_proto::Message<[u8], u64> =
        ntcomm_proto::Message::new("SHORT", ntcomm_proto::Len::up_to(8), ntcomm_proto::Len::of::<u64>());
    let err = client.call(&SHORT, &[1u8, 2, 3][..]).unwrap_err();
    assert_eq!(err.win32(), 13, "ERROR_INVALID_DATA: {err}");
    // A request outside the declared rules is refused before it is sent.
    let err = client.call(&SHORT, &[0u8; 9][..]).unwrap_err();
    assert_eq!(err.win32(), 87, "ERROR_INVALID_PARAMETER: {err}");
}

#[test]
fn driver_questions_with_and_without_replies() {
    let _s = serial();
    let dev = rig::test_device();
    let client = Arc::new(connect());
    let stop = Arc::new(AtomicBool::new(false));
    let service = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; MESSAGE_HEADER_LEN + demo::MAX_PORT_MESSAGE];
            let mut no_reply = 0u32;
            while !stop.load(Ordering::Acquire) {
                let Ok(m) = client.get_message(&mut buf) else { break };
                if m.wants_reply() {
                    assert!(m.max_reply_body() >= demo::PORT_REPLY_LEN, "{m:?}");
                    answer(&client, &m);
                } else {
                    no_reply += 1;
                }
            }
            no_reply
        })
    };
    let t = ask(&dev, asking(300, 3, 0, true));
    assert_eq!((t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed), (300, 300, 0, 0, 0, 0), "{t:?}");
    assert_eq!(t.allowed, 200);
    assert_eq!(t.denied, 100);
    assert_eq!(t.rtt_hist.iter().sum::<u64>(), 300, "every replied question timed by the driver");
    let t = ask(&dev, asking(50, 1, 0, false));
    assert_eq!((t.sent, t.replied), (50, 0), "{t:?}");
    // Let the service see them all, then end it by disconnecting.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let _ = ask(&dev, asking(1, 1, 0, false)); // wakes the blocked get
    assert!(service.join().unwrap() >= 50);
}

#[test]
fn a_send_whose_reply_never_comes_times_out() {
    let _s = serial();
    let dev = rig::test_device();
    let _silent = connect();
    let started = Instant::now();
    let t = ask(&dev, asking(3, 1, 200, true));
    assert_eq!((t.sent, t.timeouts, t.replied), (3, 3, 0), "{t:?}");
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
}

/// Run by `a_service_killed_mid_question_fails_the_send`.
#[test]
#[ignore = "child process of a_service_killed_mid_question_fails_the_send"]
fn child_takes_a_question_and_never_answers() {
    if !common::is_child() {
        return;
    }
    let client = connect();
    println!("CONNECTED");
    let mut buf = vec![0u8; 4096];
    let _m = client.get_message(&mut buf).unwrap();
    println!("GOT");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_service_killed_mid_question_fails_the_send() {
    let _s = serial();
    let dev = rig::test_device();
    let before = stats(&dev);
    let mut child = ChildTest::spawn("child_takes_a_question_and_never_answers");
    child.wait_for("CONNECTED");
    let asker = std::thread::spawn(move || ask(&Device::open(demo::USER_PATH).unwrap(), asking(1, 1, 0, true)));
    child.wait_for("GOT");
    child.kill();
    let t = asker.join().unwrap();
    assert_eq!((t.disconnected, t.replied), (1, 0), "{t:?}");
    eventually("the disconnect callback", || stats(&dev).port_disconnects > before.port_disconnects);
}

#[test]
fn eight_threads_sixteen_receives_each_answer_100000_questions_exactly_once() {
    let _s = serial();
    let dev = rig::test_device();
    const THREADS: usize = 8;
    const OUTSTANDING: usize = 16;
    const QUESTIONS: u32 = 100_000;
    let client = Arc::new(connect());
    let port = Arc::new(CompletionPort::new().unwrap());
    client.associate(&port, 7).unwrap();
    let cap = MESSAGE_HEADER_LEN + 256;
    for tag in 0..(THREADS * OUTSTANDING) as u64 {
        client.start_get_message(cap, tag).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (client, port, done) = (client.clone(), port.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let Some(c) = port.wait(Some(Duration::from_millis(100))).unwrap() else {
                        if done.load(Ordering::Acquire) {
                            return seen;
                        }
                        continue;
                    };
                    let Ok(_) = c.result else { return seen }; // cancelled at shutdown
                    let m = Message::parse(&c.buffer).unwrap();
                    let seq = demo::check_record(m.body).expect("valid question");
                    client.answer(&demo::PORT_QUESTION, m.id, &verdict(seq)).unwrap();
                    seen.push(seq);
                    client.start_get_message(cap, c.tag).unwrap();
                }
            })
        })
        .collect();
    let t = ask(&dev, PortAsk { questions: QUESTIONS, threads: 16, timeout_ms: 0, want_reply: 1, question_len: 64, reserved: 0 });
    done.store(true, Ordering::Release);
    client.cancel_receives().unwrap();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    assert_eq!((t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed), (100_000, 100_000, 0, 0, 0, 0), "{t:?}");
    assert_eq!(all.len(), QUESTIONS as usize, "each question answered once");
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), QUESTIONS as usize, "no question twice");
    assert!(unique.iter().all(|&s| s < u64::from(QUESTIONS)));
}

#[test]
fn unloading_the_driver_with_a_client_connected() {
    let _s = serial();
    rig::test_device();
    let client = connect();
    service::stop(demo::SERVICE_NAME).unwrap();
    let mut buf = vec![0u8; 256];
    assert!(client.get_message(&mut buf).is_err(), "the port is gone");
    service::start(demo::SERVICE_NAME).unwrap();
    let dev = Device::open(demo::USER_PATH).unwrap();
    let fresh = connect();
    let mut out = [0u8; 4];
    assert_eq!(fresh.send(b"back", &mut out).unwrap(), 4);
    assert_eq!(stats(&dev).port_clients, 1);
}

#[test]
fn the_user_copy_routine_survives_bad_addresses() {
    let dev = rig::test_device();
    let probe = |addr: u64| {
        let mut r = u32::MAX;
        dev.ioctl(&demo::USER_COPY_PROBE, &addr, &mut r).unwrap();
        r
    };
    // The first 64 KiB of every process are never mapped (Windows and Wine).
    assert_eq!(probe(0x10), demo::PROBE_FAULT, "an unmapped user address faults and is recovered");
    assert_eq!(probe(0x8000), demo::PROBE_FAULT);
    assert_eq!(probe(0xFFFF_8000_0000_0000), demo::PROBE_NOT_USER);
    assert_eq!(probe(0x7FFF_FFFF_FFF8), demo::PROBE_NOT_USER, "a range running past user space");
    // The driver is still there.
    let mut out = [0u8; 2];
    assert_eq!(dev.ioctl(&demo::ECHO_BUFFERED, &b"ok"[..], &mut out[..]).unwrap(), 2);
}

#[test]
fn an_unmodified_c_client_built_against_fltuser_h_works() {
    let _s = serial();
    rig::test_device();
    let exe =
        std::env::var("NTCOMM_FLT_C_CLIENT").expect("NTCOMM_FLT_C_CLIENT names the mingw-built C client (cargo xtask test builds it)");
    let mut child = Command::new(&exe).arg("200").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A hung client fails the test instead of hanging it.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "C client failed ({:?}):\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("200"), "{text}");
}
