//! DeviceIoControl against the real driver under Wine: every buffer method,
//! the size rules of the dispatch table, and the inverted call.
#![cfg(windows)]

use std::time::Duration;

use ntcomm::rig;
use ntcomm_demo_proto::{self as demo, Delay};
use ntcomm_proto::{Ioctl, Method};
use ntcomm_um::{CompletionPort, Device, ErrorKind};

const ECHOES: [Ioctl<[u8], [u8]>; 4] = [demo::ECHO_BUFFERED, demo::COMPARE_IN_DIRECT, demo::ECHO_OUT_DIRECT, demo::ECHO_NEITHER];

/// Waiters are shared by every handle: tests that pend or post events run
/// one at a time so one cannot take another's event.
static EVENTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn echo_round_trips_in_every_method_at_every_size() {
    let dev = rig::test_device();
    for ioctl in &ECHOES {
        for len in [0usize, 1, 2, 63, 64, 4096, demo::MAX_ECHO] {
            let input = pattern(len, ioctl.code.function() as u8);
            // Exactly as large as needed.
            let mut out = vec![0xAAu8; len];
            demo::second_buffer(ioctl, &input, &mut out, 0xAA);
            let n = dev.ioctl(ioctl, &input[..], &mut out[..]).unwrap_or_else(|e| panic!("{} len {len}: {e}", ioctl.name));
            assert_eq!(n, len, "{} len {len}", ioctl.name);
            assert_eq!(out, input, "{} len {len}", ioctl.name);
            // A larger output buffer is accepted; only `len` bytes are reported.
            let mut big = vec![0u8; len + 100];
            demo::second_buffer(ioctl, &input, &mut big, 0);
            let n = dev.ioctl(ioctl, &input[..], &mut big[..]).unwrap();
            assert_eq!(n, len);
            assert_eq!(&big[..len], &input[..]);
        }
    }
}

/// The `METHOD_IN_DIRECT` buffer is locked for read access only: the driver
/// reads it and must never write it (under Wine the buffer is copied back
/// whole, so a write would show). A difference at byte `k` reports `k`.
#[test]
fn in_direct_buffer_is_read_and_never_written() {
    let dev = rig::test_device();
    for len in [1usize, 64, 4096, demo::MAX_ECHO] {
        for k in [0, len / 2, len - 1] {
            let input = pattern(len, 3);
            let mut direct = input.clone();
            direct[k] ^= 0x5A;
            direct.extend_from_slice(&[0x77; 16]);
            let before = direct.clone();
            let n = dev.ioctl(&demo::COMPARE_IN_DIRECT, &input[..], &mut direct[..]).unwrap();
            assert_eq!(n, k, "len {len}: first difference at {k}");
            assert_eq!(direct, before, "len {len}: the driver wrote the read-only IN_DIRECT buffer");
        }
    }
}

#[test]
fn echo_with_output_too_small_is_buffer_too_small_not_a_crash() {
    let dev = rig::test_device();
    for ioctl in &ECHOES {
        for (in_len, out_len) in [(1usize, 0usize), (64, 63), (demo::MAX_ECHO, 1)] {
            let input = pattern(in_len, 7);
            let mut out = vec![0u8; out_len];
            let err = dev.ioctl(ioctl, &input[..], &mut out[..]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BufferTooSmall, "{} {in_len}->{out_len}: {err}", ioctl.name);
            assert_eq!(err.win32(), 122, "{err}");
        }
    }
    // Still serving.
    let mut out = [0u8; 3];
    assert_eq!(dev.ioctl(&demo::ECHO_BUFFERED, &b"abc"[..], &mut out[..]).unwrap(), 3);
}

#[test]
fn input_over_the_declared_size_is_refused_by_the_driver() {
    let dev = rig::test_device();
    let input = vec![1u8; demo::MAX_ECHO + 1];
    // The typed call refuses before any system call...
    let mut out = vec![0u8; demo::MAX_ECHO + 1];
    let err = dev.ioctl(&demo::ECHO_BUFFERED, &input[..], &mut out[..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    assert!(err.ntstatus().is_none(), "no system call was made: {err}");
    // ...and the driver's table refuses the raw call.
    for ioctl in &ECHOES {
        let err = dev.ioctl_raw(ioctl.code.0, &input, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{}: {err}", ioctl.name);
    }
    // Fixed-size input: DELAYED_COMPLETE takes exactly 8 bytes.
    for len in [0usize, 7, 9] {
        let err = dev.ioctl_raw(demo::DELAYED_COMPLETE.code.0, &vec![0; len], &mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter, "len {len}: {err}");
    }
    // Input where none is declared.
    let mut stats = [0u8; core::mem::size_of::<demo::Stats>()];
    let err = dev.ioctl_raw(demo::GET_STATS.code.0, &[1], &mut stats).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
}

#[test]
fn unknown_ioctls_are_invalid_device_requests() {
    let dev = rig::test_device();
    let unknown = Ioctl::<[u8], [u8]>::new(
        "UNKNOWN",
        demo::DEVICE_TYPE,
        0x7ff,
        Method::Buffered,
        ntcomm_proto::Access::ANY,
        ntcomm_proto::Len::up_to(16),
        ntcomm_proto::Len::up_to(16),
    );
    for code in [unknown.code.0, 0, 0x0022_0000, 0xFFFF_FFFF] {
        let err = dev.ioctl_raw(code, b"x", &mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFunction, "code {code:#x}: {err}");
        assert_eq!(err.win32(), 1, "{err}");
    }
}

#[test]
fn stats_need_a_full_output_buffer() {
    let dev = rig::test_device();
    let stats = dev.ioctl_get(&demo::GET_STATS).unwrap();
    assert!(stats.open_handles >= 1);
    assert!(stats.pool_allocations_outstanding >= 1, "the driver's queues live in pool: {stats:?}");
    let mut short = [0u8; core::mem::size_of::<demo::Stats>() - 1];
    let err = dev.ioctl_raw(demo::GET_STATS.code.0, &[], &mut short).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall, "{err}");
}

#[test]
fn inverted_call_delivers_each_event_to_the_oldest_waiter() {
    let _serial = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let waiter = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&waiter, 9).unwrap();
    // Three waiters in order; three events; each waiter gets its own.
    for tag in 0..3u64 {
        waiter.start_ioctl(&demo::WAIT_EVENT, Vec::new(), demo::MAX_EVENT, tag).unwrap();
    }
    // Nothing arrives before an event is posted.
    assert!(port.wait(Some(Duration::from_millis(100))).unwrap().is_none());
    for i in 0..3u8 {
        let payload = pattern(100 + i as usize, i);
        dev.ioctl(&demo::POST_EVENT, &payload[..], &mut ()).unwrap();
        let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("waiter completed");
        assert_eq!(done.tag, i as u64, "FIFO order");
        assert_eq!(done.key, 9);
        assert_eq!(done.result.as_ref().copied().unwrap(), payload.len());
        assert_eq!(done.buffer, payload);
    }
    // No waiter left: the event is refused, not dropped.
    let err = dev.ioctl(&demo::POST_EVENT, &b"lost?"[..], &mut ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFoundItem, "{err}");
    // A full-size event fits every waiter.
    waiter.start_ioctl(&demo::WAIT_EVENT, Vec::new(), demo::MAX_EVENT, 77).unwrap();
    let big = pattern(demo::MAX_EVENT, 3);
    dev.ioctl(&demo::POST_EVENT, &big[..], &mut ()).unwrap();
    let done = port.wait(Some(Duration::from_secs(10))).unwrap().unwrap();
    assert_eq!(done.buffer, big);
}

#[test]
fn a_waiter_must_offer_room_for_any_event() {
    let dev = rig::test_device();
    let mut small = vec![0u8; demo::MAX_EVENT - 1];
    let err = dev.ioctl_raw(demo::WAIT_EVENT.code.0, &[], &mut small).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall, "{err}");
}

#[test]
fn delayed_completion_from_the_worker_thread_and_a_work_item() {
    let dev = Device::open_overlapped(demo::USER_PATH).unwrap_or_else(|_| {
        rig::test_device();
        Device::open_overlapped(demo::USER_PATH).unwrap()
    });
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 1).unwrap();
    // Started longest first; they must finish shortest first.
    for (tag, millis) in [(0u64, 400u32), (1, 200), (2, 0), (3, 50)] {
        let input = Delay { millis, token: 1000 + tag as u32 };
        dev.start_ioctl(&demo::DELAYED_COMPLETE, zerocopy::IntoBytes::as_bytes(&input).to_vec(), 4, tag).unwrap();
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("delayed completion");
        assert_eq!(done.result.as_ref().copied().unwrap(), 4);
        assert_eq!(done.buffer, (1000 + done.tag as u32).to_le_bytes(), "the token comes back as the reply");
        order.push(done.tag);
    }
    assert_eq!(order, vec![2, 3, 1, 0]);
    let err = dev.ioctl(&demo::DELAYED_COMPLETE, &Delay { millis: demo::MAX_DELAY_MS + 1, token: 0 }, &mut 0u32).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
}

#[test]
fn cancelling_a_waiter_counts_in_stats() {
    let _serial = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let before = dev.ioctl_get(&demo::GET_STATS).unwrap();
    let waiter = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&waiter, 0).unwrap();
    let op = waiter.start_ioctl(&demo::WAIT_EVENT, Vec::new(), demo::MAX_EVENT, 5).unwrap();
    waiter.cancel(op).unwrap();
    let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("cancelled waiter");
    let err = done.result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert_eq!(err.win32(), 995);
    let after = dev.ioctl_get(&demo::GET_STATS).unwrap();
    assert!(after.irps_cancelled > before.irps_cancelled, "{before:?} -> {after:?}");
}
