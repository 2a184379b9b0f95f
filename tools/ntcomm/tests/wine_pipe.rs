//! The driver as a named-pipe client of a user-mode server, under Wine:
//! the server may start after the driver, go away and come back; messages
//! wait in the driver and none is lost or torn. Only a registered server
//! process gets them: a pipe another process created first is refused, and
//! a server that stops reading cannot hold the driver's writer or its stop.
#![cfg(windows)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{eventually, is_child, stats, ChildTest};
use ntcomm::rig;
use ntcomm_demo_proto as demo;
use ntcomm_um::{Device, ErrorKind, PipeServer};

/// One pipe name, one server at a time.
static PIPE: Mutex<()> = Mutex::new(());

fn send(dev: &Device, text: &str) {
    dev.ioctl(&demo::PIPE_SEND, text.as_bytes(), &mut ()).unwrap();
}

fn receive(server: &PipeServer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while out.len() < n {
        assert!(server.read_message(&mut buf).unwrap(), "the driver hung up after {} messages", out.len());
        out.push(String::from_utf8(buf.clone()).unwrap());
    }
    out
}

/// A server that waits for the driver in a thread, so the test can time out
/// instead of hanging if the driver never connects. This process registers
/// as the driver's server first.
fn serve(n: usize) -> std::thread::JoinHandle<(PipeServer, Vec<String>)> {
    ntcomm::peer::register().unwrap();
    let server = PipeServer::create(demo::PIPE_NAME).unwrap();
    std::thread::spawn(move || {
        server.accept().unwrap();
        let got = receive(&server, n);
        (server, got)
    })
}

fn join<T>(h: std::thread::JoinHandle<T>) -> T {
    let start = Instant::now();
    while !h.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(15), "pipe server thread did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().unwrap()
}

#[test]
fn messages_wait_for_a_server_that_starts_after_the_driver() {
    let _serial = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    eventually("no messages left from earlier tests", || stats(&dev).pipe_messages_queued == 0);
    let before = stats(&dev);
    let started = Instant::now();
    for i in 0..20 {
        send(&dev, &format!("early {i}"));
    }
    // Queued without blocking dispatch while nobody listens.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stats(&dev).pipe_messages_queued, 20);
    let (_server, got) = join(serve(20));
    let want: Vec<String> = (0..20).map(|i| format!("early {i}")).collect();
    assert_eq!(got, want);
    eventually("all counted as sent", || stats(&dev).pipe_messages_sent == before.pipe_messages_sent + 20);
    assert!(stats(&dev).pipe_connects > before.pipe_connects);
}

#[test]
fn a_server_restart_mid_stream_loses_nothing_the_driver_held() {
    let _serial = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let before = stats(&dev);
    let first = serve(10);
    for i in 0..10 {
        send(&dev, &format!("seq {i:04} {}", "x".repeat(i * 37)));
    }
    let (server, got) = join(first);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &format!("seq {i:04} {}", "x".repeat(i * 37)), "whole, in order");
    }
    eventually("first half delivered", || stats(&dev).pipe_messages_sent == before.pipe_messages_sent + 10);
    // The server goes away mid-stream; the driver keeps accepting messages.
    drop(server);
    for i in 10..30 {
        send(&dev, &format!("seq {i:04}"));
    }
    eventually("the driver noticed the broken pipe", || stats(&dev).pipe_write_failures > before.pipe_write_failures);
    let s = stats(&dev);
    assert!(s.pipe_messages_queued >= 1, "{s:?}");
    // A new server gets everything the driver held, in order.
    let (_server, got) = join(serve(20));
    let want: Vec<String> = (10..30).map(|i| format!("seq {i:04}")).collect();
    assert_eq!(got, want);
    let after = stats(&dev);
    assert!(after.pipe_connects >= before.pipe_connects + 2, "{before:?} -> {after:?}");
}

#[test]
fn a_full_pipe_queue_refuses_sends_and_keeps_the_rest() {
    let _serial = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    eventually("no messages left from earlier tests", || stats(&dev).pipe_messages_queued == 0);
    let refused = stats(&dev).pipe_sends_refused;
    for i in 0..demo::PIPE_QUEUE_CAPACITY {
        send(&dev, &format!("{i}"));
    }
    let err = dev.ioctl(&demo::PIPE_SEND, &b"one too many"[..], &mut ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert_eq!(stats(&dev).pipe_sends_refused, refused + 1);
    let (_server, got) = join(serve(demo::PIPE_QUEUE_CAPACITY));
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &i.to_string());
    }
    let too_big = vec![b'x'; demo::MAX_PIPE_MESSAGE + 1];
    assert_eq!(dev.ioctl(&demo::PIPE_SEND, &too_big[..], &mut ()).unwrap_err().kind(), ErrorKind::InvalidParameter);
}

/// Child process: creates the driver's pipe without registering (a squatter
/// that got the name first) and reads whatever arrives, reporting it.
#[test]
#[ignore = "run by the parent test as a child process"]
fn child_squatting_pipe_server() {
    if !is_child() {
        return;
    }
    let server = PipeServer::create(demo::PIPE_NAME).unwrap();
    println!("squatting");
    let mut buf = Vec::new();
    loop {
        server.accept().unwrap();
        while server.read_message(&mut buf).unwrap() {
            println!("leaked {}", String::from_utf8_lossy(&buf));
        }
        server.disconnect();
    }
}

#[test]
fn a_pipe_created_first_by_an_unregistered_process_is_refused_and_gets_nothing() {
    let _serial = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    ntcomm::peer::register().unwrap(); // the legitimate server, not serving yet
    eventually("no messages left from earlier tests", || stats(&dev).pipe_messages_queued == 0);
    let before = stats(&dev);
    assert!(before.servers_registered >= 1, "{before:?}");
    let squatter = {
        let mut c = ChildTest::spawn("child_squatting_pipe_server");
        c.wait_for("squatting");
        c
    };
    send(&dev, "for the registered server only");
    // The driver opens the squatter's pipe, sees its server is not a
    // registered process, and drops it before writing (and says so).
    eventually("the driver refused the squatter", || stats(&dev).pipe_servers_refused >= before.pipe_servers_refused + 2);
    let s = stats(&dev);
    assert_eq!(s.pipe_messages_sent, before.pipe_messages_sent, "written to the squatter: {s:?}");
    assert_eq!(s.pipe_connects, before.pipe_connects, "{s:?}");
    assert_eq!(s.pipe_messages_queued, 1, "{s:?}");
    squatter.kill();
    // The registered server gets the message.
    let (_server, got) = join(serve(1));
    assert_eq!(got, ["for the registered server only"]);
    eventually("sent", || stats(&dev).pipe_messages_sent == before.pipe_messages_sent + 1);
}

#[test]
fn a_server_that_stops_reading_costs_a_bounded_wait_and_the_driver_still_stops() {
    let _serial = PIPE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    eventually("no messages left from earlier tests", || stats(&dev).pipe_messages_queued == 0);
    ntcomm::peer::register().unwrap();
    let before = stats(&dev);
    // Accepts, never reads: the pipe's buffer (64 KiB) fills and the
    // driver's next write cannot complete.
    let server = PipeServer::create(demo::PIPE_NAME).unwrap();
    let accepting = std::thread::spawn(move || {
        server.accept().unwrap();
        server
    });
    let big = "y".repeat(demo::MAX_PIPE_MESSAGE);
    for _ in 0..64 {
        send(&dev, &big);
    }
    let server = join(accepting);
    eventually("a write timed out", || stats(&dev).pipe_write_timeouts > before.pipe_write_timeouts);
    let s = stats(&dev);
    assert!(s.pipe_messages_queued > 0, "{s:?}");
    // Stopping the driver while its writer waits on the stalled server is
    // bounded: the wait is cancelled, not sat out.
    let started = Instant::now();
    rig::restart_demo().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "stop took {:?}", started.elapsed());
    drop(server);
    let dev = rig::test_device();
    assert_eq!(stats(&dev).pipe_messages_queued, 0);
}
