//! The example driver (drivers/ntcomm-example: a typed IOCTL, a ring
//! channel and a Filter Manager port, through the toolkit alone) loaded
//! through the rig as its own service (`NtCommExample`, in the rig's load
//! order group so it shares the Wine helper's winedevice): the typed IOCTL,
//! a ring round trip of many records, typed port calls and their refusals,
//! then stopped and deleted.
//!
//! Needs `NTCOMM_EXAMPLE_DRIVER` (the built ntcomm_example.sys; `cargo
//! xtask test` sets it) and the helper `ntcomm_lpc.sys` and the Wine
//! fltmgr.sys in the prefix (`cargo xtask setup`).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test reports by panicking

use std::path::PathBuf;
use std::time::Duration;

use ntcomm::rig;
use ntcomm_example_proto::{self as proto, Division, Quotient, Sums, Words};
use ntcomm_proto::ring_channel::RING_STATE_RUNNING;
use ntcomm_um::service::{self, ServiceState};
use ntcomm_um::{Device, ErrorKind, PortClient, RingChannel};

const SERVICE: &str = "NtCommExample";
const WAIT: Option<Duration> = Some(Duration::from_secs(30));
/// Records sent through the ring: enough to wrap both rings many times and
/// fill the way back (the rings are small).
const RECORDS: u64 = 50_000;

/// Record `i`: its number and a run of lower-case letters and digits.
fn record(i: u64) -> Vec<u8> {
    let mut r = format!("rec {i}: ").into_bytes();
    r.extend((0..i % 300).map(|k| if k % 7 == 6 { b'0' + (k % 10) as u8 } else { b'a' + (k % 26) as u8 }));
    r
}

#[test]
fn example_driver_ioctl_ring_and_port() {
    let image = std::env::var_os("NTCOMM_EXAMPLE_DRIVER")
        .map(PathBuf::from)
        .expect("NTCOMM_EXAMPLE_DRIVER is not set: run through `cargo xtask test`");
    rig::DriverService::new(SERVICE, &image)
        .minifilter(proto::MINIFILTER_ALTITUDE)
        .ensure_running()
        .unwrap_or_else(|e| panic!("starting {SERVICE}: {e}"));

    typed_ioctl();
    ring_round_trip();
    port_calls();

    service::stop(SERVICE).unwrap();
    assert_eq!(service::status(SERVICE).unwrap(), ServiceState::Stopped);
    assert!(Device::open(proto::USER_PATH).is_err(), "the device is gone with the driver");
    assert!(PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).is_err(), "the port is gone with the driver");
    service::uninstall(SERVICE).unwrap();
    assert_eq!(service::status(SERVICE).unwrap(), ServiceState::NotInstalled);
}

/// `CHECKSUM` through `IoctlHandler::typed`; a short input is refused by the table.
fn typed_ioctl() {
    let dev = Device::open(proto::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", proto::USER_PATH));
    let mut sums = Sums::default();
    let n = dev.ioctl(&proto::CHECKSUM, &Words { words: [3, 5, 9, 0xffff_fff0] }, &mut sums).unwrap();
    assert_eq!(n, size_of::<Sums>());
    // The sum passes 32 bits; 3 ^ 5 ^ 9 = 15.
    assert_eq!(sums, Sums { sum: 0x1_0000_0001, xor: 0xffff_ffff, calls: 1 });
    dev.ioctl(&proto::CHECKSUM, &Words { words: [u32::MAX; 4] }, &mut sums).unwrap();
    assert_eq!(sums, Sums { sum: 4 * u64::from(u32::MAX), xor: 0, calls: 2 });

    // The same code with an input of the wrong size: refused before the handler runs.
    let mut out = [0u8; size_of::<Sums>()];
    let err = dev.ioctl_raw(proto::CHECKSUM.code.0, &[0u8; 8], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    // ... and a counted call only for calls the handler ran.
    dev.ioctl(&proto::CHECKSUM, &Words::default(), &mut sums).unwrap();
    assert_eq!(sums, Sums { sum: 0, xor: 0, calls: 3 });
}

/// Many records each way through small rings: every one comes back
/// upper-cased, in order, none lost or duplicated.
fn ring_round_trip() {
    let ch = RingChannel::open(proto::USER_PATH, &proto::RINGS, 16 * 1024, 16 * 1024).unwrap();
    assert_eq!(ch.status().unwrap().state, RING_STATE_RUNNING);
    // A second handle gets a channel of its own.
    let other = RingChannel::open(proto::USER_PATH, &proto::RINGS, 4096, 4096).unwrap();
    let (mut tx, mut rx) = ch.split();
    let sender = std::thread::spawn(move || {
        for i in 0..RECORDS {
            tx.send(&record(i), WAIT).unwrap();
        }
        tx
    });
    let mut buf = vec![0u8; rx.max_record()];
    for i in 0..RECORDS {
        let n = rx.recv(&mut buf, WAIT).unwrap().unwrap_or_else(|| panic!("record {i} never came back"));
        let want = record(i).to_ascii_uppercase();
        assert_eq!(&buf[..n], &want[..], "record {i}");
    }
    assert_eq!(rx.recv(&mut buf, Some(Duration::from_millis(200))).unwrap(), None, "nothing beyond the count");
    let tx = sender.join().unwrap();
    let status = tx.status().unwrap();
    assert_eq!(status.state, RING_STATE_RUNNING, "{status:?}");
    assert_eq!(status.consumed, RECORDS, "{status:?}");
    assert_eq!(status.produced, RECORDS, "{status:?}");
    assert_eq!(status.bad_records, 0, "{status:?}");
    assert_eq!(other.status().unwrap().consumed, 0, "the other channel saw nothing");
}

/// The typed port message, answered by the driver with `flt::serve`.
fn port_calls() {
    let err = PortClient::connect(proto::PORT_NAME, b"wrong context").err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");

    let client = PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).unwrap();
    for (dividend, divisor) in [(1_000_003u64, 7u64), (u64::MAX, 3), (5, 9), (0, 1)] {
        let q = client.call(&proto::DIVIDE, &Division { dividend, divisor }).unwrap();
        assert_eq!(q, Quotient { quotient: dividend / divisor, remainder: dividend % divisor });
    }
    // The handler's refusal.
    let err = client.call(&proto::DIVIDE, &Division { dividend: 1, divisor: 0 }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    // A request of the wrong size (sent as raw bytes: `call` would not send
    // it): refused by the declaration before the handler runs.
    let mut out = [0u8; size_of::<Quotient>()];
    let err = client.send(&[1u8; 8], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    let err = client.send(&[1u8; size_of::<Division>() + 8], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    // The connection still works after refusals.
    let q = client.call(&proto::DIVIDE, &Division { dividend: 100, divisor: 10 }).unwrap();
    assert_eq!(q, Quotient { quotient: 10, remainder: 0 });
}
