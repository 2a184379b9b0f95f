//! The driver as a named-pipe client of a user-mode server, under Wine:
//! the server may start after the driver, go away and come back; messages
//! wait in the driver and none is lost or torn.
#![cfg(windows)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{eventually, stats};
use ntcomm::rig;
use ntcomm_proto::demo;
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
/// instead of hanging if the driver never connects.
fn serve(n: usize) -> std::thread::JoinHandle<(PipeServer, Vec<String>)> {
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
