//! The small example drivers (drivers/examples), each loaded as its own
//! service through the rig: the inverted call and the read queue, with
//! their cancellation paths (`CancelIoEx`, the driver stopped with requests
//! pended), and the LPC call to a user-mode server run by the test.
//!
//! Needs `NTCOMM_EXAMPLES_DIR` (the directory of the built example_*.sys;
//! `cargo xtask test` sets it).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test reports by panicking

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ntcomm::rig::DriverService;
use ntcomm_examples_proto::{inverted_call, lpc_call, read_queue};
use ntcomm_um::lpc::{LpcEvent, LpcServer};
use ntcomm_um::service::{self, ServiceState};
use ntcomm_um::{Device, ErrorKind};

/// One example service at a time (stops and restarts would cross).
static SERIAL: Mutex<()> = Mutex::new(());

fn start(service: &str, image: &str) {
    let dir =
        std::env::var_os("NTCOMM_EXAMPLES_DIR").map(PathBuf::from).expect("NTCOMM_EXAMPLES_DIR is not set: run through `cargo xtask test`");
    DriverService::new(service, &dir.join(image)).ensure_running().unwrap_or_else(|e| panic!("starting {service}: {e}"));
}

fn stop_and_remove(service: &str) {
    service::stop(service).unwrap();
    assert_eq!(service::status(service).unwrap(), ServiceState::Stopped);
    service::uninstall(service).unwrap();
}

/// Retries `f` while it fails with `ErrorKind::NotFoundItem` (the driver's
/// `STATUS_NOT_FOUND`: the other thread's request is not pended yet).
fn until_pended<T>(mut f: impl FnMut() -> ntcomm_um::Result<T>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if e.kind() == ErrorKind::NotFoundItem && start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Cancels `dev`'s requests (`CancelIoEx`) until the thread blocked in one
/// of them returns (it may not have pended yet at the first cancel); its error.
fn cancel_until_done(dev: &Device, blocked: std::thread::ScopedJoinHandle<'_, ntcomm_um::Error>) -> ntcomm_um::Error {
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    while !blocked.is_finished() && start.elapsed() < Duration::from_secs(30) {
        dev.cancel_all().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    blocked.join().unwrap()
}

#[test]
fn inverted_call_delivers_and_cancels() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SERVICE: &str = "NtCommExampleInverted";
    start(SERVICE, "example_inverted_call.sys");
    // Synchronous handles serialize their requests: waiter and signaller each have one.
    let (waiter, signaller) = (Device::open(inverted_call::USER_PATH).unwrap(), Device::open(inverted_call::USER_PATH).unwrap());

    // Nobody waits: a signal is refused, not kept.
    let err = signaller.ioctl(&inverted_call::SIGNAL, &inverted_call::Event { value: 1 }, &mut ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFoundItem, "{err}");

    std::thread::scope(|s| {
        // Three waits in a row get three signals, in order.
        let got = s.spawn(|| (0..3).map(|_| waiter.ioctl_get(&inverted_call::WAIT).unwrap().value).collect::<Vec<_>>());
        for value in [7, 8, 9] {
            until_pended(|| signaller.ioctl(&inverted_call::SIGNAL, &inverted_call::Event { value }, &mut ()));
        }
        assert_eq!(got.join().unwrap(), [7, 8, 9]);

        // A pended wait cancelled from another thread ends cancelled, and is gone.
        let cancelled = s.spawn(|| waiter.ioctl_get(&inverted_call::WAIT).unwrap_err());
        assert_eq!(cancel_until_done(&waiter, cancelled).kind(), ErrorKind::Cancelled);
        let err = signaller.ioctl(&inverted_call::SIGNAL, &inverted_call::Event { value: 2 }, &mut ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFoundItem, "the cancelled wait left the queue: {err}");

        // The driver stopped with a wait pended: the wait ends, the driver unloads.
        let pended = s.spawn(|| waiter.ioctl_get(&inverted_call::WAIT).unwrap_err());
        std::thread::sleep(Duration::from_millis(50));
        drop(signaller);
        service::stop(SERVICE).unwrap();
        assert_eq!(pended.join().unwrap().kind(), ErrorKind::Cancelled);
    });
    drop(waiter);
    stop_and_remove(SERVICE);
}

#[test]
fn read_queue_pends_reads_until_a_write() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SERVICE: &str = "NtCommExampleQueue";
    start(SERVICE, "example_read_queue.sys");
    let (reader, writer) = (Device::open(read_queue::USER_PATH).unwrap(), Device::open(read_queue::USER_PATH).unwrap());

    // No reader: the write is refused, nothing is kept.
    assert_eq!(writer.write(b"lost").unwrap_err().kind(), ErrorKind::NotFoundItem);
    // Too long for the driver: STATUS_INVALID_BUFFER_SIZE, ERROR_INVALID_USER_BUFFER (1784).
    assert_eq!(writer.write(&[0u8; read_queue::MAX_MESSAGE + 1]).unwrap_err().win32(), 1784);

    std::thread::scope(|s| {
        let got = s.spawn(|| {
            let mut buf = [0u8; read_queue::MAX_MESSAGE];
            let n = reader.read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        assert_eq!(until_pended(|| writer.write(b"hello, queue")), 12);
        assert_eq!(got.join().unwrap(), b"hello, queue");

        let cancelled = s.spawn(|| reader.read(&mut [0u8; 16]).unwrap_err());
        assert_eq!(cancel_until_done(&reader, cancelled).kind(), ErrorKind::Cancelled);
        assert_eq!(writer.write(b"after").unwrap_err().kind(), ErrorKind::NotFoundItem, "the cancelled read left the queue");
    });
    drop((reader, writer));
    stop_and_remove(SERVICE);
}

/// Serves `requests` INCREMENT requests on the example's port (accepting
/// every connection), the last reply sent without waiting.
fn serve_increments(mut server: LpcServer, requests: usize) -> usize {
    let (mut answered, mut reply) = (0, None);
    // An accepted connection lives as long as its value (dropping it closes
    // the server's end).
    let mut connections = Vec::new();
    while answered < requests {
        match server.receive(reply.take()).unwrap() {
            LpcEvent::ConnectionRequest(req) => {
                connections.push(server.accept(req, &[], connections.len() + 1).unwrap());
            }
            LpcEvent::Request(req) => {
                let value = req.request_as(&lpc_call::INCREMENT).unwrap();
                let answer = req.answer(&lpc_call::INCREMENT, &lpc_call::Value { v: value.v + 1 }).unwrap();
                answered += 1;
                if answered == requests {
                    server.reply(answer).unwrap();
                } else {
                    reply = Some(answer);
                }
            }
            _ => {}
        }
    }
    answered
}

#[test]
fn lpc_call_reaches_a_user_mode_server() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SERVICE: &str = "NtCommExampleLpc";
    start(SERVICE, "example_lpc_call.sys");
    let dev = Device::open(lpc_call::USER_PATH).unwrap();
    let ask = |v| {
        let mut out = lpc_call::Value::default();
        dev.ioctl(&lpc_call::ASK, &lpc_call::Value { v }, &mut out).map(|_| out.v)
    };

    // No server yet: the ask fails with the connect's status.
    let err = ask(1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let server = LpcServer::create(lpc_call::PORT_NAME, 0, 0x100).unwrap();
    // Not scoped: a failed ask must fail the test, not wait for a server
    // that waits for a request.
    let served = std::thread::spawn(move || serve_increments(server, 2));
    assert_eq!(ask(41).unwrap(), 42);
    assert_eq!(ask(u64::MAX - 1).unwrap(), u64::MAX);
    assert_eq!(served.join().unwrap(), 2);
    drop(dev);
    stop_and_remove(SERVICE);
}
