//! The driver's life under stress, under Wine: a client killed with requests
//! pended, and the driver stopped with requests pended, then started again.
#![cfg(windows)]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{eventually, stats, ChildTest};
use ntcomm::rig;
use ntcomm_demo_proto as demo;
use ntcomm_um::{service, CompletionPort, Device, ErrorKind, ServiceState};

/// These tests change the driver's global state: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn echo_works(dev: &Device) {
    let mut out = [0u8; 4];
    assert_eq!(dev.ioctl(&demo::ECHO_BUFFERED, &b"ping"[..], &mut out[..]).unwrap(), 4);
    assert_eq!(&out, b"ping");
}

/// Run by `a_killed_client_leaves_nothing_in_flight` in a child process.
#[test]
#[ignore = "child process of a_killed_client_leaves_nothing_in_flight"]
fn child_holds_pending_io() {
    if !common::is_child() {
        return;
    }
    let dev = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 0).unwrap();
    for tag in 0..8 {
        dev.start_read(vec![0; 64], tag).unwrap();
    }
    for tag in 8..12 {
        dev.start_ioctl(&demo::WAIT_EVENT, Vec::new(), demo::MAX_EVENT, tag).unwrap();
    }
    println!("READY");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_client_leaves_nothing_in_flight() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let before = stats(&dev);
    let mut child = ChildTest::spawn("child_holds_pending_io");
    child.wait_for("READY");
    eventually("the child's 12 requests pended", || stats(&dev).irps_in_flight >= before.irps_in_flight + 12);
    child.kill();
    eventually("the driver to have nothing in flight", || stats(&dev).irps_in_flight == before.irps_in_flight);
    let after = stats(&dev);
    assert!(after.irps_cancelled >= before.irps_cancelled + 12, "{before:?} -> {after:?}");
    // The next client is served normally, including a read that pends.
    let next = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&next, 0).unwrap();
    next.start_read(vec![0; 64], 1).unwrap();
    dev.write(b"for the next client").unwrap();
    let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("read served");
    assert_eq!(done.buffer, b"for the next client");
    echo_works(&next);
}

#[test]
fn stopping_the_driver_completes_pended_requests_and_it_starts_again() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let client = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&client, 0).unwrap();
    for tag in 0..4 {
        client.start_read(vec![0; 64], tag).unwrap();
    }
    client.start_ioctl(&demo::WAIT_EVENT, Vec::new(), demo::MAX_EVENT, 4).unwrap();
    let delay = demo::Delay { millis: 30_000, token: 5 };
    client.start_ioctl(&demo::DELAYED_COMPLETE, zerocopy::IntoBytes::as_bytes(&delay).to_vec(), 4, 5).unwrap();
    eventually("6 requests pended", || stats(&dev).irps_in_flight >= 6);
    drop(dev);

    let stopping = Instant::now();
    service::stop(demo::SERVICE_NAME).unwrap();
    assert_eq!(service::status(demo::SERVICE_NAME).unwrap(), ServiceState::Stopped);
    let mut tags = Vec::new();
    for _ in 0..6 {
        let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("pended request completed by the stop");
        let err = done.result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled, "tag {}: {err}", done.tag);
        tags.push(done.tag);
    }
    tags.sort();
    assert_eq!(tags, vec![0, 1, 2, 3, 4, 5]);
    assert!(stopping.elapsed() < Duration::from_secs(10), "stop waited for the 30 s delay: {:?}", stopping.elapsed());
    // The old handle is dead; the device is gone.
    assert!(client.ioctl_get(&demo::GET_STATS).is_err());
    assert_eq!(Device::open(demo::USER_PATH).unwrap_err().kind(), ErrorKind::NotFound);

    service::start(demo::SERVICE_NAME).unwrap();
    let dev = Device::open(demo::USER_PATH).unwrap();
    echo_works(&dev);
    let s = stats(&dev);
    assert_eq!(s.irps_in_flight, 0, "{s:?}");
    assert_eq!(s.messages_queued, 0);
}
