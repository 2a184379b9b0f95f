//! ReadFile/WriteFile as a bounded message queue, against the real driver
//! under Wine: pending reads, IOCP, cancellation, back-pressure, and many
//! threads at once.
#![cfg(windows)]

mod common;

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{eventually, stats};
use ntcomm::rig;
use ntcomm_demo_proto as demo;
use ntcomm_um::{CompletionPort, Device, ErrorKind};

/// The queue is one per driver: these tests take turns.
static QUEUE: Mutex<()> = Mutex::new(());

/// Exclusive use of an empty queue.
fn exclusive() -> (MutexGuard<'static, ()>, Device) {
    let guard = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let dev = rig::test_device();
    let mut buf = vec![0u8; demo::MAX_MESSAGE];
    let queued = dev.ioctl_get(&demo::GET_STATS).unwrap().messages_queued;
    for _ in 0..queued {
        dev.read(&mut buf).unwrap();
    }
    (guard, dev)
}

#[test]
fn write_then_read_returns_the_message() {
    let (_g, dev) = exclusive();
    for len in [0usize, 1, 64, demo::MAX_MESSAGE] {
        let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        assert_eq!(dev.write(&msg).unwrap(), len);
        let mut buf = vec![0u8; demo::MAX_MESSAGE];
        let n = dev.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..], "len {len}");
    }
    let err = dev.write(&vec![0u8; demo::MAX_MESSAGE + 1]).unwrap_err();
    assert_eq!(err.win32(), 1784, "ERROR_INVALID_USER_BUFFER expected for STATUS_INVALID_BUFFER_SIZE: {err}");
}

#[test]
fn a_read_too_small_for_the_message_fails_and_keeps_it() {
    let (_g, dev) = exclusive();
    dev.write(b"twelve bytes").unwrap();
    let mut small = [0u8; 4];
    let err = dev.read(&mut small).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall, "{err}");
    let mut buf = [0u8; 64];
    let n = dev.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"twelve bytes");
}

#[test]
fn a_pended_read_is_completed_by_a_write_from_another_handle() {
    let (_g, writer) = exclusive();
    let reader = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&reader, 1).unwrap();
    let before = stats(&writer);
    reader.start_read(vec![0; 256], 42).unwrap();
    eventually("the read to pend", || stats(&writer).irps_in_flight > before.irps_in_flight);
    assert!(port.wait(Some(Duration::from_millis(50))).unwrap().is_none(), "read must pend on an empty queue");
    writer.write(b"wake up").unwrap();
    let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("read completed");
    assert_eq!(done.tag, 42);
    assert_eq!(done.buffer, b"wake up");
    assert_eq!(stats(&writer).messages_queued, 0, "handed to the reader, not queued");
}

#[test]
fn sixty_four_overlapped_reads_through_one_completion_port() {
    let (_g, writer) = exclusive();
    let reader = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&reader, 3).unwrap();
    for tag in 0..64u64 {
        reader.start_read(vec![0; 128], tag).unwrap();
    }
    eventually("64 reads pended", || stats(&writer).irps_in_flight >= 64);
    for i in 0..64u32 {
        writer.write(format!("message {i:02}").as_bytes()).unwrap();
    }
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    while got.len() < 64 {
        let mut batch = Vec::new();
        let n = port.wait_many(&mut batch, 64, Some(Duration::from_secs(10))).unwrap();
        assert!(n > 0, "completions stopped after {}", got.len());
        for c in batch {
            let len = c.result.as_ref().copied().unwrap_or_else(|e| panic!("read {}: {e}", c.tag));
            assert_eq!(len, c.buffer.len());
            assert!(seen.insert(c.tag), "tag {} completed twice", c.tag);
            got.push((c.tag, String::from_utf8(c.buffer).unwrap()));
        }
    }
    // Reads were pended in tag order and served oldest first.
    got.sort();
    for (i, (tag, text)) in got.iter().enumerate() {
        assert_eq!(*tag, i as u64);
        assert_eq!(text, &format!("message {i:02}"));
    }
}

#[test]
fn cancel_io_ex_on_a_pended_read_is_operation_aborted_and_counted() {
    let (_g, dev) = exclusive();
    let reader = Device::open_overlapped(demo::USER_PATH).unwrap();
    let port = CompletionPort::new().unwrap();
    port.associate(&reader, 0).unwrap();
    let before = stats(&dev);
    let op = reader.start_read(vec![0; 64], 1).unwrap();
    eventually("the read to pend", || stats(&dev).irps_in_flight > before.irps_in_flight);
    reader.cancel(op).unwrap();
    let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("cancelled read");
    let err = done.result.unwrap_err();
    assert_eq!(err.win32(), 995, "ERROR_OPERATION_ABORTED: {err}");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    let after = stats(&dev);
    assert_eq!(after.irps_cancelled, before.irps_cancelled + 1, "{before:?} -> {after:?}");
    assert_eq!(after.irps_in_flight, before.irps_in_flight);
    // The queue still works.
    dev.write(b"after cancel").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(dev.read(&mut buf).unwrap(), 12);
}

#[test]
fn closing_a_handle_completes_its_pended_reads() {
    let (_g, dev) = exclusive();
    let before = stats(&dev);
    let port = CompletionPort::new().unwrap();
    {
        let reader = Device::open_overlapped(demo::USER_PATH).unwrap();
        port.associate(&reader, 0).unwrap();
        for tag in 0..4 {
            reader.start_read(vec![0; 64], tag).unwrap();
        }
        eventually("4 reads pended", || stats(&dev).irps_in_flight >= before.irps_in_flight + 4);
    } // Drop: cancel + close.
    for _ in 0..4 {
        let done = port.wait(Some(Duration::from_secs(10))).unwrap().expect("read completed at close");
        assert_eq!(done.result.unwrap_err().kind(), ErrorKind::Cancelled);
    }
    eventually("nothing left in flight", || stats(&dev).irps_in_flight == before.irps_in_flight);
}

#[test]
fn a_full_queue_refuses_writes_and_loses_nothing() {
    let (_g, dev) = exclusive();
    let refused_before = stats(&dev).writes_refused;
    for i in 0..demo::QUEUE_CAPACITY {
        dev.write(&(i as u32).to_le_bytes()).unwrap();
    }
    let err = dev.write(b"one too many").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    let s = stats(&dev);
    assert_eq!(s.messages_queued, demo::QUEUE_CAPACITY as u64);
    assert_eq!(s.message_bytes_queued, 4 * demo::QUEUE_CAPACITY as u64);
    assert_eq!(s.writes_refused, refused_before + 1);
    let mut buf = [0u8; 16];
    for i in 0..demo::QUEUE_CAPACITY {
        let n = dev.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &(i as u32).to_le_bytes());
    }
}

#[test]
fn four_threads_ten_thousand_messages_none_lost_none_duplicated() {
    let (_g, dev) = exclusive();
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 10_000;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let dev = Device::open(demo::USER_PATH).unwrap();
                let mut busy = 0u64;
                for i in 0..PER_THREAD {
                    let msg = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    loop {
                        match dev.write(&msg) {
                            Ok(8) => break,
                            Ok(n) => panic!("short write {n}"),
                            Err(e) if e.kind() == ErrorKind::Busy => {
                                busy += 1;
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("write: {e}"),
                        }
                    }
                }
                busy
            })
        })
        .collect();
    let readers: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                let dev = Device::open(demo::USER_PATH).unwrap();
                let mut got = Vec::with_capacity(PER_THREAD as usize);
                let mut buf = [0u8; 16];
                for _ in 0..PER_THREAD {
                    let n = dev.read(&mut buf).unwrap();
                    assert_eq!(n, 8);
                    let t = u32::from_le_bytes(buf[..4].try_into().unwrap());
                    let i = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                    got.push((t, i));
                }
                got
            })
        })
        .collect();
    let busy: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
    let mut all = Vec::new();
    for r in readers {
        let got = r.join().unwrap();
        // Each reader sees each writer's messages in the order written.
        for t in 0..THREADS {
            let seq: Vec<u32> = got.iter().filter(|m| m.0 == t).map(|m| m.1).collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]), "writer {t} out of order for a reader");
        }
        all.extend(got);
    }
    assert_eq!(all.len(), (THREADS * PER_THREAD) as usize);
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "duplicates");
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            assert!(unique.contains(&(t, i)), "lost message {t}/{i}");
        }
    }
    let s = stats(&dev);
    assert_eq!(s.messages_queued, 0);
    eprintln!("4x10000: {busy} writes met a full queue and were retried");
}
