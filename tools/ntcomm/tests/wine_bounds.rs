//! The driver's resource bounds (docs/SECURITY.md, "Bounds") against the
//! real driver under Wine: each bound hit gives its clear error, nothing is
//! taken by a refusal, and freeing what is held gives the budget back
//! exactly.
#![cfg(windows)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::eventually;
use ntcomm::rig;
use ntcomm_demo_proto::{self as demo, Bounds, PortAsk, PortTally, RingInfo, RingOpen};
use ntcomm_proto::ring::RingLayout;
use ntcomm_proto::NtStatus;
use ntcomm_um::{CompletionPort, Device, ErrorKind, PortClient, RingChannel};
use zerocopy::IntoBytes;

/// The bounds are driver-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn bounds(dev: &Device) -> Bounds {
    dev.ioctl_get(&demo::GET_BOUNDS).unwrap()
}

/// Waits until nothing bounded is held (channels and asks of earlier
/// tests end asynchronously).
fn idle(dev: &Device) -> Bounds {
    eventually("every bounded resource free", || {
        let b = bounds(dev);
        b.ring_bytes == 0 && b.ring_channels == 0 && b.port_ask_threads == 0 && b.lpc_threads == 0
    });
    bounds(dev)
}

/// Section bytes of a channel with both rings of `capacity`, as the driver
/// counts them.
fn channel_bytes(capacity: u32) -> u64 {
    2 * ((RingLayout::bytes_for(capacity).unwrap() as u64 + 63) & !63)
}

#[test]
fn limits_are_reported() {
    let _s = serial();
    let dev = rig::test_device();
    let b = idle(&dev);
    assert_eq!(b.ring_bytes_limit, demo::RING_SECTION_BUDGET);
    assert_eq!(b.ring_channels_limit, demo::MAX_RING_CHANNELS as u64);
    assert_eq!(b.port_ask_threads_limit, demo::PORT_ASK_MAX_THREADS);
    assert_eq!(b.lpc_threads_limit, demo::LPC_MAX_THREADS);
}

#[test]
fn a_ring_above_the_per_channel_cap_is_an_invalid_parameter() {
    let _s = serial();
    let dev = rig::test_device();
    idle(&dev);
    let err = RingChannel::open(demo::USER_PATH, &demo::RINGS, demo::MAX_RING_CAPACITY * 2, 4096).err().expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    assert_eq!(err.ntstatus(), Some(NtStatus::STATUS_INVALID_PARAMETER), "{err}");
    let b = bounds(&dev);
    assert_eq!((b.ring_bytes, b.ring_channels), (0, 0), "a refusal holds nothing");
    // The cap itself is allowed.
    let ch = RingChannel::open(demo::USER_PATH, &demo::RINGS, demo::MAX_RING_CAPACITY, 4096).unwrap();
    drop(ch);
    idle(&dev);
}

#[test]
fn one_channel_per_handle() {
    let _s = serial();
    let dev = rig::test_device();
    idle(&dev);
    let own = Device::open(demo::USER_PATH).unwrap();
    let open = RingOpen { d2u_capacity: 4096, u2d_capacity: 4096, mode: demo::RING_MODE_SINK, record_size: 0, nonce: [7; 16] };
    let mut info = RingInfo::default_zeroed();
    own.ioctl(&demo::RING_OPEN, &open, &mut info).unwrap();
    let b = bounds(&dev);
    assert_eq!((b.ring_bytes, b.ring_channels), (channel_bytes(4096), 1));
    let err = own.ioctl(&demo::RING_OPEN, &open, &mut info).unwrap_err();
    assert_eq!(err.ntstatus(), Some(NtStatus::STATUS_OBJECT_NAME_COLLISION), "{err}");
    assert!(err.likely_cause().is_some_and(|c| c.contains("one per handle")), "{err}");
    assert!(err.to_string().contains("likely cause"), "{err}");
    assert_eq!(bounds(&dev), b, "the refused second channel took nothing");
    // Closing the handle ends the channel and gives its bytes back.
    drop(own);
    let b = idle(&dev);
    assert_eq!((b.ring_bytes, b.ring_channels), (0, 0));
}

#[test]
fn the_ring_section_budget_is_driver_wide_and_comes_back_exactly() {
    let _s = serial();
    let dev = rig::test_device();
    idle(&dev);
    let cap = demo::MAX_RING_CAPACITY;
    let each = channel_bytes(cap);
    let fit = (demo::RING_SECTION_BUDGET / each) as usize;
    assert!(fit >= 1 && fit < demo::MAX_RING_CHANNELS, "the budget binds before the channel count");
    let mut held: Vec<RingChannel> = (0..fit).map(|_| RingChannel::open(demo::USER_PATH, &demo::RINGS, cap, cap).unwrap()).collect();
    assert_eq!(bounds(&dev).ring_bytes, fit as u64 * each);
    let err = RingChannel::open(demo::USER_PATH, &demo::RINGS, cap, cap).err().expect("over the budget");
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(err.ntstatus(), Some(NtStatus::STATUS_QUOTA_EXCEEDED), "{err}");
    assert!(err.to_string().contains("likely cause"), "{err}");
    let b = bounds(&dev);
    assert_eq!((b.ring_bytes, b.ring_channels), (fit as u64 * each, fit as u64), "the refusal took nothing");
    // A smaller channel still fits in what is left.
    let left = demo::RING_SECTION_BUDGET - fit as u64 * each;
    if left >= channel_bytes(4096) {
        let small = RingChannel::open(demo::USER_PATH, &demo::RINGS, 4096, 4096).unwrap();
        assert_eq!(bounds(&dev).ring_bytes, fit as u64 * each + channel_bytes(4096));
        drop(small);
        eventually("the small channel's bytes back", || bounds(&dev).ring_bytes == fit as u64 * each);
    }
    // Freeing one makes room for one.
    held.pop();
    eventually("one channel's bytes back", || bounds(&dev).ring_bytes == (fit as u64 - 1) * each);
    held.push(RingChannel::open(demo::USER_PATH, &demo::RINGS, cap, cap).unwrap());
    drop(held);
    let b = idle(&dev);
    assert_eq!((b.ring_bytes, b.ring_channels), (0, 0), "the budget returns exactly");
}

#[test]
fn the_channel_count_is_bounded() {
    let _s = serial();
    let dev = rig::test_device();
    idle(&dev);
    let mut held: Vec<RingChannel> =
        (0..demo::MAX_RING_CHANNELS).map(|_| RingChannel::open(demo::USER_PATH, &demo::RINGS, 4096, 4096).unwrap()).collect();
    let err = RingChannel::open(demo::USER_PATH, &demo::RINGS, 4096, 4096).err().expect("one too many");
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(bounds(&dev).ring_channels, demo::MAX_RING_CHANNELS as u64);
    held.pop();
    eventually("a channel slot free", || bounds(&dev).ring_channels == demo::MAX_RING_CHANNELS as u64 - 1);
    held.push(RingChannel::open(demo::USER_PATH, &demo::RINGS, 4096, 4096).unwrap());
    drop(held);
    idle(&dev);
}

#[test]
fn port_messages_are_bounded_before_allocation() {
    let _s = serial();
    let dev = rig::test_device();
    if dev.ioctl_get(&demo::GET_STATS).unwrap().port_available == 0 {
        return;
    }
    let client = PortClient::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap();
    // A reply buffer far above the handler's maximum is fine: the driver
    // allocates only what the handler may write.
    let mut big = vec![0u8; 64 << 20];
    assert_eq!(client.send(b"bounded", &mut big).unwrap(), 7);
    assert_eq!(&big[..7], b"bounded");
    // A message above the maximum is refused before anything is allocated.
    let err = client.send(&vec![1u8; demo::MAX_PORT_MESSAGE + 1], &mut big).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
}

/// The error of a request refused in dispatch: at once (no completion
/// packet), or, should the system queue one, through the port.
fn refused(port: &CompletionPort, started: ntcomm_um::Result<ntcomm_um::OpId>) -> ntcomm_um::Error {
    match started {
        Err(e) => e,
        Ok(_) => port.wait(Some(Duration::from_secs(30))).unwrap().expect("refused at once").result.unwrap_err(),
    }
}

fn ask(questions: u32, threads: u32) -> Vec<u8> {
    PortAsk { questions, threads, timeout_ms: 0, want_reply: 1, question_len: 64, reserved: 0 }.as_bytes().to_vec()
}

#[test]
fn port_ask_threads_are_capped_per_handle_and_per_driver() {
    let _s = serial();
    let dev = rig::test_device();
    if dev.ioctl_get(&demo::GET_STATS).unwrap().port_available == 0 {
        return;
    }
    idle(&dev);
    // A client that never answers: every sender waits for its reply.
    let silent = PortClient::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap();
    let port = CompletionPort::new().unwrap();
    let handles: Vec<Device> = (0..3).map(|_| Device::open_overlapped(demo::USER_PATH).unwrap()).collect();
    for (i, h) in handles.iter().enumerate() {
        port.associate(h, i).unwrap();
    }
    let tally = std::mem::size_of::<PortTally>();
    let full = demo::PORT_ASK_MAX_THREADS_PER_HANDLE / 17;
    // Handle 0 up to its share.
    for t in 0..full {
        handles[0].start_ioctl(&demo::PORT_ASK, ask(16, 16), tally, t).unwrap();
    }
    eventually("handle 0's asks running", || bounds(&dev).port_ask_threads == full * 17);
    let err = refused(&port, handles[0].start_ioctl(&demo::PORT_ASK, ask(1, 1), tally, 100));
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "per handle: {err}");
    assert_eq!(err.ntstatus(), Some(NtStatus::STATUS_QUOTA_EXCEEDED), "{err}");
    // Another handle up to the driver's total.
    let mut started = full * 17;
    let mut tag = 200;
    while started + 17 <= demo::PORT_ASK_MAX_THREADS {
        let h = &handles[1 + ((tag - 200) as usize / full as usize).min(1)];
        h.start_ioctl(&demo::PORT_ASK, ask(16, 16), tally, tag).unwrap();
        started += 17;
        tag += 1;
    }
    eventually("the driver's asks running", || bounds(&dev).port_ask_threads == started);
    let room = demo::PORT_ASK_MAX_THREADS - started;
    let err = refused(&port, handles[2].start_ioctl(&demo::PORT_ASK, ask(1, room.max(1) as u32), tally, 300));
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "driver-wide: {err}");
    assert_eq!(bounds(&dev).port_ask_threads, started, "refusals took nothing");
    // The client goes: every sender ends, every ask completes, the threads
    // are given back exactly.
    drop(silent);
    let mut done = 0;
    while done < tag - 200 + full {
        let c = port.wait(Some(Duration::from_secs(60))).unwrap().expect("asks complete once the client is gone");
        assert!(c.result.is_ok(), "{:?}", c.result);
        done += 1;
    }
    let b = idle(&dev);
    assert_eq!(b.port_ask_threads, 0);
    // And the room is there again.
    let mut t = PortTally::default_zeroed();
    Device::open(demo::USER_PATH)
        .unwrap()
        .ioctl(&demo::PORT_ASK, &PortAsk { questions: 1, threads: 16, timeout_ms: 0, want_reply: 0, question_len: 64, reserved: 0 }, &mut t)
        .unwrap();
}

trait Zeroed: zerocopy::FromZeros + Sized {
    fn default_zeroed() -> Self {
        Self::new_zeroed()
    }
}
impl Zeroed for RingInfo {}
impl Zeroed for PortTally {}
