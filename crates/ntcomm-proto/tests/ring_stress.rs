//! Two threads, 1,000,000 records with sequence numbers and checksums: none
//! lost, duplicated or reordered, with the consumer really sleeping on an event
//! (a Mutex+Condvar auto-reset event standing in for the OS event).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::Mem;
use ntcomm_proto::ring::SleepDecision;

#[derive(Default)]
struct Event {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    fn signal(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Waits until signalled (auto-reset) or the timeout; true if signalled.
    fn wait(&self, timeout: Duration) -> bool {
        let g = self.set.lock().unwrap();
        let (mut g, _) = self.cv.wait_timeout_while(g, timeout, |s| !*s).unwrap();
        std::mem::replace(&mut *g, false)
    }
}

fn checksum(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, x| (h ^ u32::from(*x)).wrapping_mul(0x0100_0193))
}

/// Record `seq`: [seq u64][checksum u32][len-derived payload].
fn make(seq: u64, out: &mut Vec<u8>) {
    let len = 12 + (seq.wrapping_mul(2654435761) % 200) as usize;
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend((12..len).map(|i| (seq as usize ^ i) as u8));
    let c = checksum(&out[12..]) ^ seq as u32;
    out[8..12].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn million_records_two_threads_with_sleeping_consumer() {
    const N: u64 = 1_000_000;
    let mem = Arc::new(Mem::ring(1 << 14));
    let event = Arc::new(Event::default());
    let wakes = Arc::new(AtomicU64::new(0));

    let consumer = {
        let (mem, event) = (mem.clone(), event.clone());
        std::thread::spawn(move || {
            let mut c = mem.consumer().unwrap();
            let mut buf = vec![0u8; 4096];
            let (mut next, mut sleeps, mut signalled) = (0u64, 0u64, 0u64);
            while next < N {
                match c.try_pop(&mut buf).unwrap() {
                    Some(n) => {
                        let rec = &buf[..n];
                        let seq = u64::from_le_bytes(rec[..8].try_into().unwrap());
                        assert_eq!(seq, next, "lost, duplicated or reordered");
                        let sum = u32::from_le_bytes(rec[8..12].try_into().unwrap());
                        assert_eq!(sum, checksum(&rec[12..]) ^ seq as u32, "checksum of {seq}");
                        next += 1;
                    }
                    None => match c.prepare_sleep().unwrap() {
                        SleepDecision::DataReady => {}
                        SleepDecision::MustWait => {
                            sleeps += 1;
                            // A generous timeout: a lost wake-up shows up as a timeout
                            // and fails the assertion below.
                            if event.wait(Duration::from_secs(5)) {
                                signalled += 1;
                            } else {
                                c.cancel_sleep();
                                panic!("lost wake-up: slept 5 s with record {next} pending");
                            }
                        }
                    },
                }
            }
            (sleeps, signalled)
        })
    };

    let mut p = mem.producer().unwrap();
    let mut rec = Vec::new();
    let mut full = 0u64;
    for seq in 0..N {
        make(seq, &mut rec);
        while !p.write(&rec).unwrap() {
            full += 1;
            if p.publish().unwrap().0 {
                wakes.fetch_add(1, Ordering::Relaxed);
                event.signal();
            }
            std::thread::yield_now();
        }
        // Publish in batches of varying size, and pause now and then so that the
        // consumer drains the ring and goes to sleep.
        if (seq % 7 == 0 || seq % 1013 < 3) && p.publish().unwrap().0 {
            wakes.fetch_add(1, Ordering::Relaxed);
            event.signal();
        }
        if seq % 20_000 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    if p.publish().unwrap().0 {
        wakes.fetch_add(1, Ordering::Relaxed);
        event.signal();
    }
    let (sleeps, signalled) = consumer.join().unwrap();
    let wakes = wakes.load(Ordering::Relaxed);
    eprintln!("sleeps {sleeps}, signalled {signalled}, producer wakes {wakes}, producer found full {full}");
    assert!(sleeps >= 10, "the consumer should really have slept");
    assert_eq!(sleeps, signalled);
    assert!(wakes >= signalled);
}
