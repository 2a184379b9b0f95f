//! LPC against the real driver under Wine (through ntcomm's Wine LPC,
//! `compat/wine-lpc`): a user-mode server (ntcomm_um::lpc) that the demo
//! driver connects to and calls from its workers (ntcomm_km::lpc).
//! Connect accepted and refused with connection information both ways,
//! requests at sizes 0, small, the maximum and too large, 1 MiB through a
//! section view, datagrams, a server killed mid-request, a request that
//! times out or is cancelled while the server hangs, the driver stopped
//! while connected, and 4 workers x 10,000 requests.
#![cfg(windows)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{eventually, is_child, stats, ChildTest};
use ntcomm::lpc_server::{self, BackgroundServer, ServerOptions, ServerStats};
use ntcomm::rig;
use ntcomm_demo_proto::{self as demo, LpcAsk, LpcConnect, LpcConnected, LpcTally};
use ntcomm_proto::NtStatus;
use ntcomm_um::{Device, Error};

/// The driver holds one LPC connection: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn connect_to(dev: &Device, instance: u32, info: &[u8], view_size: u32) -> Result<LpcConnected, Error> {
    let mut c = LpcConnect::new(info, view_size);
    c.instance = instance;
    let mut out = LpcConnected { max_message: 0, info_len: 0, view_size: 0, info: [0; 128] };
    dev.ioctl(&demo::LPC_CONNECT, &c, &mut out).map(|_| out)
}

fn connect(dev: &Device, instance: u32) -> LpcConnected {
    connect_to(dev, instance, demo::LPC_CONNECT_INFO, 0).unwrap()
}

fn ask(dev: &Device, a: LpcAsk) -> Result<LpcTally, Error> {
    let mut t = LpcTally::default();
    dev.ioctl(&demo::LPC_ASK, &a, &mut t).map(|_| t)
}

fn requests(workers: u32, count: u32, body_len: u32) -> LpcAsk {
    LpcAsk { kind: demo::LPC_KIND_REQUEST, workers, count, body_len, timeout_ms: 0, view_len: 0 }
}

fn status_of(e: &Error) -> NtStatus {
    e.ntstatus().unwrap_or_else(|| panic!("no NTSTATUS in {e}"))
}

fn server(instance: u32) -> BackgroundServer {
    BackgroundServer::start(instance, ServerOptions::default()).expect("LPC server port (is ntcomm's Wine LPC installed?)")
}

#[test]
fn connect_is_accepted_or_refused_with_connection_information_both_ways() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(1);
    let before = stats(&dev);

    let ok = connect(&dev, 1);
    assert_eq!(&ok.info[..ok.info_len as usize], demo::LPC_SERVER_INFO, "the server's information reached the driver");
    assert_eq!(ok.max_message, 512);
    assert_eq!(srv.stats.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(srv.stats.last_info_len.load(Ordering::Relaxed), demo::LPC_CONNECT_INFO.len() as u64);
    let s = stats(&dev);
    assert_eq!(s.lpc_connected, 1);
    assert_eq!(s.lpc_connects, before.lpc_connects + 1);

    let refused = connect_to(&dev, 1, b"somebody else", 0).unwrap_err();
    assert_eq!(status_of(&refused), NtStatus::STATUS_PORT_CONNECTION_REFUSED, "{refused}");
    assert_eq!(srv.stats.refused.load(Ordering::Relaxed), 1);
    assert_eq!(srv.stats.last_info_len.load(Ordering::Relaxed), 13);

    let absent = connect_to(&dev, 999, demo::LPC_CONNECT_INFO, 0).unwrap_err();
    assert_eq!(status_of(&absent), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, "{absent}");

    // A refused or failed connect leaves the driver serving; disconnecting
    // closes the port the server accepted.
    dev.ioctl(&demo::LPC_DISCONNECT, &(), &mut ()).unwrap();
    eventually("the server sees the port closed", || srv.stats.port_closed.load(Ordering::Relaxed) == 1);
    assert_eq!(stats(&dev).lpc_connected, 0);
    let err = ask(&dev, requests(1, 1, 8)).unwrap_err();
    assert_eq!(status_of(&err), NtStatus::STATUS_PORT_DISCONNECTED, "{err}");
}

#[test]
fn requests_of_every_size_get_their_own_reply_and_too_long_is_a_clear_error() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(2);
    connect(&dev, 2);
    for len in [0u32, 1, 11, 12, 64, 472] {
        let t = ask(&dev, requests(1, 50, len)).unwrap();
        assert_eq!((t.sent, t.replied, t.mismatched, t.failed), (50, 50, 0, 0), "body of {len} bytes: {t:?}");
    }
    let t = ask(&dev, requests(1, 3, 473)).unwrap();
    assert_eq!((t.sent, t.replied, t.failed), (0, 0, 3), "{t:?}");
    assert_eq!(NtStatus(t.first_error), NtStatus::STATUS_PORT_MESSAGE_TOO_LONG);
    let t = ask(&dev, requests(1, 1, 472)).unwrap();
    assert_eq!(t.replied, 1, "the connection still works after a refused message");
    assert_eq!(srv.stats.requests.load(Ordering::Relaxed), 6 * 50 + 1);
}

#[test]
fn a_one_mebibyte_payload_travels_through_the_section_view() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(3);
    let c = connect_to(&dev, 3, demo::LPC_CONNECT_INFO, 1 << 20).unwrap();
    assert_eq!(c.view_size, 1 << 20);
    let a = LpcAsk { kind: demo::LPC_KIND_VIEW, workers: 1, count: 8, body_len: 0, timeout_ms: 0, view_len: 1 << 20 };
    let t = ask(&dev, a).unwrap();
    assert_eq!((t.sent, t.replied, t.mismatched, t.failed), (8, 8, 0, 0), "{t:?}");
    assert_eq!(srv.stats.view_ok.load(Ordering::Relaxed), 8);
    assert_eq!(srv.stats.view_bad.load(Ordering::Relaxed), 0);
    // A payload larger than the view is refused before anything is sent.
    let a = LpcAsk { view_len: (1 << 20) + 1, ..a };
    assert_eq!(status_of(&ask(&dev, a).unwrap_err()), NtStatus::STATUS_INVALID_PARAMETER);
}

#[test]
fn datagrams_arrive_without_replies() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(4);
    connect(&dev, 4);
    let before = stats(&dev).lpc_datagrams;
    let a = LpcAsk { kind: demo::LPC_KIND_DATAGRAM, workers: 2, count: 500, body_len: 64, timeout_ms: 0, view_len: 0 };
    let t = ask(&dev, a).unwrap();
    assert_eq!((t.sent, t.failed), (1000, 0), "{t:?}");
    eventually("the server received every datagram", || srv.stats.datagrams.load(Ordering::Relaxed) == 1000);
    assert_eq!(stats(&dev).lpc_datagrams, before + 1000);
}

#[test]
fn four_workers_times_ten_thousand_requests_each_get_their_own_reply() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(5);
    connect(&dev, 5);
    let t = ask(&dev, requests(4, 10_000, 64)).unwrap();
    assert_eq!((t.sent, t.replied, t.mismatched, t.failed), (40_000, 40_000, 0, 0), "{t:?}");
    assert_eq!(t.rtt_hist.iter().sum::<u64>(), 40_000, "every round trip was timed");
    assert_eq!(srv.stats.requests.load(Ordering::Relaxed), 40_000);
}

/// Child process: a server on instance `NTCOMM_LPC_INSTANCE` that never
/// answers; the parent kills it.
#[test]
#[ignore = "run by the parent test as a child process"]
fn child_stalling_server() {
    if !is_child() {
        return;
    }
    let instance: u32 = std::env::var("NTCOMM_LPC_INSTANCE").unwrap().parse().unwrap();
    let port = lpc_server::create(instance).unwrap();
    println!("serving");
    let (stats, stop) = (ServerStats::default(), AtomicBool::new(false));
    let _ = lpc_server::serve(port, ServerOptions { stall: true }, &stats, &stop);
}

fn stalling_child(instance: u32) -> ChildTest {
    std::env::set_var("NTCOMM_LPC_INSTANCE", instance.to_string());
    let mut child = ChildTest::spawn("child_stalling_server");
    child.wait_for("serving");
    child
}

#[test]
fn a_server_killed_mid_request_fails_the_request_and_the_driver_serves_the_next() {
    let _s = serial();
    let dev = rig::test_device();
    let child = stalling_child(6);
    connect(&dev, 6);
    let asking = std::thread::spawn(|| ask(&rig::test_device(), requests(1, 5, 32)));
    std::thread::sleep(Duration::from_millis(300)); // the first request is with the server
    assert!(!asking.is_finished(), "the stalling server answered");
    child.kill();
    let t = asking.join().unwrap().unwrap();
    assert_eq!((t.replied, t.failed), (0, 5), "{t:?}");
    assert_eq!(NtStatus(t.first_error), NtStatus::STATUS_PORT_DISCONNECTED);

    let _srv = server(7);
    connect(&dev, 7);
    let t = ask(&dev, requests(1, 10, 32)).unwrap();
    assert_eq!(t.replied, 10, "{t:?}");
}

#[test]
fn a_hung_request_times_out_or_is_cancelled_and_the_port_is_closed_under_the_worker() {
    let _s = serial();
    let dev = rig::test_device();
    let _child = stalling_child(8);

    connect(&dev, 8);
    let err = ask(&dev, LpcAsk { timeout_ms: 300, ..requests(1, 1, 16) }).unwrap_err();
    assert_eq!(status_of(&err), NtStatus::STATUS_IO_TIMEOUT, "{err}");
    eventually("the timed-out connection is dropped", || stats(&dev).lpc_connected == 0);

    connect(&dev, 8);
    let waiting = std::sync::Arc::new(rig::test_device());
    let w = waiting.clone();
    let asking = std::thread::spawn(move || ask(&w, requests(1, 1, 16)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!asking.is_finished());
    waiting.cancel_all().unwrap();
    let err = asking.join().unwrap().unwrap_err();
    assert_eq!(status_of(&err), NtStatus::STATUS_CANCELLED, "{err}");
    eventually("the cancelled connection is dropped", || stats(&dev).lpc_connected == 0);
    eventually("nothing left in flight", || stats(&dev).irps_in_flight == 0);
}

#[test]
fn stopping_the_driver_closes_its_port_for_the_server() {
    let _s = serial();
    let dev = rig::test_device();
    let srv = server(9);
    connect(&dev, 9);
    drop(dev);
    rig::restart_demo().unwrap();
    eventually("the server sees the port closed", || srv.stats.port_closed.load(Ordering::Relaxed) == 1);
    let dev = rig::test_device();
    assert_eq!(stats(&dev).lpc_connected, 0);
    // A restarted driver trusts no one yet: the server registers again.
    assert_eq!(
        connect_to(&dev, 9, demo::LPC_CONNECT_INFO, 0).map(|_| ()).map_err(|e| status_of(&e)),
        Err(NtStatus::STATUS_DEVICE_NOT_READY)
    );
    ntcomm::peer::register().unwrap();
    connect(&dev, 9);
    assert_eq!(ask(&dev, requests(1, 3, 8)).unwrap().replied, 3, "a restarted driver connects again");
}

/// The LPC thread caps (docs/SECURITY.md, "Bounds"): asks whose requests
/// stall at the server hold their threads; past a handle's share and past
/// the driver's total an ask is refused with `STATUS_QUOTA_EXCEEDED` and
/// takes nothing; once the server is gone every ask ends and the count
/// returns to exactly 0.
#[test]
fn lpc_threads_are_capped_per_handle_and_per_driver() {
    use ntcomm_um::{CompletionPort, ErrorKind};
    use zerocopy::IntoBytes;
    let _s = serial();
    let dev = rig::test_device();
    let threads = |d: &Device| d.ioctl_get(&demo::GET_BOUNDS).unwrap().lpc_threads;
    eventually("no LPC thread running", || threads(&dev) == 0);
    let child = stalling_child(11);
    connect(&dev, 11);
    eventually("the connect thread ended", || threads(&dev) == 0);
    let port = CompletionPort::new().unwrap();
    let handles: Vec<Device> = (0..3).map(|_| Device::open_overlapped(demo::USER_PATH).unwrap()).collect();
    for (i, h) in handles.iter().enumerate() {
        port.associate(h, i).unwrap();
    }
    let big = requests(demo::LPC_MAX_WORKERS, 1, 16);
    let each = u64::from(demo::LPC_MAX_WORKERS) + 2;
    let tally = std::mem::size_of::<LpcTally>();
    let refused = |started: ntcomm_um::Result<ntcomm_um::OpId>| match started {
        Err(e) => e,
        Ok(_) => port.wait(Some(Duration::from_secs(30))).unwrap().expect("refused at once").result.unwrap_err(),
    };
    let per_handle = demo::LPC_MAX_THREADS_PER_HANDLE / each;
    let mut started = 0u64;
    for t in 0..per_handle {
        handles[0].start_ioctl(&demo::LPC_ASK, big.as_bytes().to_vec(), tally, t).unwrap();
        started += 1;
    }
    eventually("handle 0's asks running", || threads(&dev) == per_handle * each);
    let err = refused(handles[0].start_ioctl(&demo::LPC_ASK, requests(1, 1, 16).as_bytes().to_vec(), tally, 100));
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "per handle: {err}");
    assert_eq!(err.ntstatus(), Some(NtStatus::STATUS_QUOTA_EXCEEDED), "{err}");
    while (started + 1) * each <= demo::LPC_MAX_THREADS {
        handles[1].start_ioctl(&demo::LPC_ASK, big.as_bytes().to_vec(), tally, 200 + started).unwrap();
        started += 1;
    }
    eventually("the driver's asks running", || threads(&dev) == started * each);
    let err = refused(handles[2].start_ioctl(&demo::LPC_ASK, requests(1, 1, 16).as_bytes().to_vec(), tally, 300));
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "driver-wide: {err}");
    assert_eq!(threads(&dev), started * each, "refusals took nothing");
    child.kill();
    for _ in 0..started {
        let c = port.wait(Some(Duration::from_secs(60))).unwrap().expect("asks end once the server is gone");
        assert!(c.result.is_ok(), "{:?}", c.result);
    }
    eventually("every LPC thread given back", || threads(&dev) == 0);
    let _srv = server(12);
    connect(&dev, 12);
    assert_eq!(ask(&dev, requests(demo::LPC_MAX_WORKERS, 2, 8)).unwrap().replied, 2 * u64::from(demo::LPC_MAX_WORKERS));
    eventually("and back again", || threads(&dev) == 0);
}
