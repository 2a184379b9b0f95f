//! Loom model check of the ring's index and sleep/wake protocol.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p ntcomm-proto --release --test loom_ring`
//!
//! Under `--cfg loom` the ring's atomics are loom's and its data area is one
//! `loom::cell::UnsafeCell` per byte, so loom reports any data byte read by the
//! consumer that was not published to it (a missing acquire/release), any lost
//! wake-up (the consumer blocks forever on the modelled event: a deadlock), and
//! any wrong record content.
#![cfg(loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use ntcomm_proto::ring::{loom_pair, loom_pair_fixed, Consumer, Producer, SleepDecision};

/// An auto-reset event.
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
    fn wait(&self) {
        let mut g = self.set.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        *g = false;
    }
}

fn rec(i: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| i.wrapping_mul(17).wrapping_add(j as u8)).collect()
}

/// Producer pushes `lens`, spinning (yield) on a full ring and signalling the
/// event when `publish` says so.
fn produce(mut p: Producer, ev: Arc<Event>, lens: &[usize], batch: bool) {
    for (i, &len) in lens.iter().enumerate() {
        let r = rec(i as u8, len);
        loop {
            if p.write(&r).unwrap() {
                break;
            }
            if p.publish().unwrap().0 {
                ev.signal();
            }
            thread::yield_now();
        }
        if (!batch || i + 1 == lens.len()) && p.publish().unwrap().0 {
            ev.signal();
        }
    }
}

/// Producer shows every record with `make_visible` (plain store of head, no
/// wake-up check) and calls `publish` only once, after the last.
fn produce_visible(mut p: Producer, ev: Arc<Event>, lens: &[usize]) {
    for (i, &len) in lens.iter().enumerate() {
        let r = rec(i as u8, len);
        while !p.write(&r).unwrap() {
            p.make_visible().unwrap();
            thread::yield_now();
        }
        p.make_visible().unwrap();
    }
    if p.publish().unwrap().0 {
        ev.signal();
    }
}

/// Consumer pops `lens.len()` records, sleeping on the event when empty.
fn consume(mut c: Consumer, ev: Arc<Event>, lens: &[usize], sleep: bool) {
    let mut buf = [0u8; 16];
    let mut i = 0;
    while i < lens.len() {
        match c.try_pop(&mut buf).unwrap() {
            Some(n) => {
                assert_eq!(n, lens[i]);
                assert_eq!(&buf[..n], &rec(i as u8, n)[..]);
                i += 1;
            }
            None if sleep => match c.prepare_sleep().unwrap() {
                SleepDecision::DataReady => {}
                SleepDecision::MustWait => ev.wait(),
            },
            None => thread::yield_now(),
        }
    }
}

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b.check(f);
}

/// Sleep/wake: the consumer sleeps whenever the ring is empty; a lost wake-up
/// would deadlock the model.
#[test]
fn sleep_wake_no_lost_wakeup() {
    model(3, || {
        let (p, c, _r) = loom_pair(32).unwrap();
        let ev = Arc::new(Event::default());
        let ev2 = ev.clone();
        let t = thread::spawn(move || produce(p, ev2, &[3, 5], false));
        consume(c, ev, &[3, 5], true);
        t.join().unwrap();
    });
}

/// Same with both records published at once.
#[test]
fn sleep_wake_batched_publish() {
    model(3, || {
        let (p, c, _r) = loom_pair(32).unwrap();
        let ev = Arc::new(Event::default());
        let ev2 = ev.clone();
        let t = thread::spawn(move || produce(p, ev2, &[1, 8], true));
        consume(c, ev, &[1, 8], true);
        t.join().unwrap();
    });
}

/// A full ring and wrap-around (32-byte ring, 16-byte footprints, a record that
/// splits at the end): data visibility through the indices in both directions.
#[test]
fn full_ring_and_wrap() {
    model(2, || {
        let (p, c, _r) = loom_pair(32).unwrap();
        let ev = Arc::new(Event::default());
        let ev2 = ev.clone();
        // footprints: 16, 16, 24 (wraps: starts at 32 % 32 = 0 after two)... then 16
        let lens = [8, 4, 12];
        let t = thread::spawn(move || produce(p, ev2, &lens, false));
        consume(c, ev, &lens, false);
        t.join().unwrap();
    });
}

/// `make_visible` per record, one `publish` at the end, consumer sleeping when
/// empty: the records' bytes are published by the plain release store, and
/// the final `publish` still wakes a consumer that announced sleep (a lost
/// wake-up would deadlock the model).
#[test]
fn make_visible_then_publish_wakes() {
    model(3, || {
        let (p, c, _r) = loom_pair(32).unwrap();
        let ev = Arc::new(Event::default());
        let ev2 = ev.clone();
        let t = thread::spawn(move || produce_visible(p, ev2, &[3, 5]));
        consume(c, ev, &[3, 5], true);
        t.join().unwrap();
    });
}

/// Fixed-size records in bulk: 8-byte records in a 32-byte ring (4 records),
/// `write_records` of 3 then 2 (the second waits for space and wraps),
/// `pop_records` into a 2-record buffer, the consumer sleeping when empty:
/// data visibility through the indices with no record headers, and no lost
/// wake-up.
#[test]
fn fixed_records_in_bulk() {
    model(2, || {
        let (mut p, mut c, _r) = loom_pair_fixed(32, 8).unwrap();
        let ev = Arc::new(Event::default());
        let ev2 = ev.clone();
        let all: Vec<u8> = (0..5u8).flat_map(|i| rec(i, 8)).collect();
        let expect = all.clone();
        let t = thread::spawn(move || {
            for batch in [&all[..24], &all[24..]] {
                let mut done = 0;
                while done < batch.len() {
                    done += p.write_records(&batch[done..]).unwrap() * 8;
                    if p.publish().unwrap().0 {
                        ev2.signal();
                    }
                    if done < batch.len() {
                        thread::yield_now();
                    }
                }
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < expect.len() {
            let n = c.pop_records(&mut buf).unwrap();
            if n > 0 {
                got.extend_from_slice(&buf[..n * 8]);
                continue;
            }
            match c.prepare_sleep().unwrap() {
                SleepDecision::DataReady => {}
                SleepDecision::MustWait => ev.wait(),
            }
        }
        assert_eq!(got, expect);
        t.join().unwrap();
    });
}
