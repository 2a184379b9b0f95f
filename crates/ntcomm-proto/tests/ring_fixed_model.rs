//! Property test of fixed-size-record rings against a model: record sizes that
//! do and do not divide the capacity (so records wrap), per-record and bulk
//! calls mixed, wrong sizes refused without effect, exact free-space accounting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::VecDeque;

use common::{pattern, Mem};
use ntcomm_proto::ring::{layout, RingError, WakeNeeded};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// `write` of a record of the ring's size (or, if `wrong`, another size).
    Write {
        wrong: bool,
    },
    /// `write_records` of `n` records (plus `extra` stray bytes when nonzero).
    WriteRecords {
        n: u8,
        extra: u8,
    },
    /// `try_pop` with a buffer of the record size, or one byte short.
    Pop {
        short: bool,
    },
    /// `pop_records` with a buffer of `n` records (plus `extra` bytes).
    PopRecords {
        n: u8,
        extra: u8,
    },
    Publish,
    MakeVisible,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>()).prop_map(|w| Op::Write { wrong: w < 16 }),
        3 => (0u8..80, any::<u8>()).prop_map(|(n, e)| Op::WriteRecords { n, extra: if e < 32 { e % 7 + 1 } else { 0 } }),
        4 => any::<u8>().prop_map(|s| Op::Pop { short: s < 16 }),
        3 => (0u8..80, any::<u8>()).prop_map(|(n, e)| Op::PopRecords { n, extra: e % 9 }),
        2 => Just(Op::Publish),
        2 => Just(Op::MakeVisible),
    ]
}

struct Model {
    cap: usize,
    size: usize,
    published: VecDeque<Vec<u8>>,
    staged: Vec<Vec<u8>>,
    next: u64,
    /// Byte counters, as in `ring_model.rs`.
    write: usize,
    tail: usize,
    seen_head: usize,
    head: usize,
    released: usize,
}

impl Model {
    /// Records that fit now (the producer reloads `tail` when its cached value
    /// says they do not, so the last released value decides).
    fn free(&self) -> usize {
        (self.cap - (self.write - self.released)) / self.size
    }
    fn stage(&mut self) -> Vec<u8> {
        let rec = pattern(self.next, self.size);
        self.next += 1;
        self.write += self.size;
        self.staged.push(rec.clone());
        rec
    }
    fn consumed(&mut self, n: usize) {
        self.tail += n * self.size;
        if self.tail == self.seen_head || self.tail - self.released >= self.cap / 8 {
            self.released = self.tail;
        }
    }
    fn make_visible(&mut self) {
        self.head = self.write;
        self.published.extend(self.staged.drain(..));
    }
}

fn run(cap_log: u32, size: u32, start: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cap = 1u32 << cap_log;
    let size_b = size as usize;
    let mem = Mem::ring_fixed(cap, size);
    // Start both indices at an arbitrary record boundary to hit every wrap offset.
    let start = start - start % u64::from(size);
    mem.poke_u64(layout::OFF_HEAD, start);
    mem.poke_u64(layout::OFF_TAIL, start);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    prop_assert_eq!(p.record_size(), Some(size_b));
    prop_assert_eq!(c.max_record(), size_b);
    let mut m = Model {
        cap: cap as usize,
        size: size_b,
        published: VecDeque::new(),
        staged: Vec::new(),
        next: 0,
        write: 0,
        tail: 0,
        seen_head: 0,
        head: 0,
        released: 0,
    };
    let mut buf = vec![0u8; 80 * size_b + 16];
    for op in ops {
        match op {
            Op::Write { wrong } => {
                if wrong {
                    let len = size_b + 8;
                    prop_assert_eq!(p.write(&vec![1u8; len]), Err(RingError::WrongSize { len, size: size_b }));
                    prop_assert_eq!(p.write(&[]), Err(RingError::WrongSize { len: 0, size: size_b }));
                    continue;
                }
                let fits = m.free() >= 1;
                let rec = pattern(m.next, size_b);
                prop_assert_eq!(p.write(&rec).unwrap(), fits);
                if fits {
                    m.stage();
                }
            }
            Op::WriteRecords { n, extra } => {
                let mut recs = Vec::new();
                for k in 0..u64::from(n) {
                    recs.extend(pattern(m.next + k, size_b));
                }
                if extra != 0 {
                    recs.extend(std::iter::repeat_n(9u8, usize::from(extra)));
                    let len = recs.len();
                    prop_assert_eq!(p.write_records(&recs), Err(RingError::WrongSize { len, size: size_b }));
                    continue;
                }
                let expect = usize::from(n).min(m.free());
                prop_assert_eq!(p.write_records(&recs).unwrap(), expect);
                for _ in 0..expect {
                    m.stage();
                }
            }
            Op::Pop { short } => {
                let want = if short { size_b - 1 } else { size_b };
                let r = c.try_pop(&mut buf[..want]);
                if m.tail == m.seen_head {
                    m.seen_head = m.head;
                }
                match m.published.front() {
                    None => prop_assert_eq!(r, Ok(None)),
                    Some(_) if short => prop_assert_eq!(r, Err(RingError::BufferTooSmall { needed: size_b })),
                    Some(_) => {
                        let rec = m.published.pop_front().unwrap();
                        prop_assert_eq!(r, Ok(Some(size_b)));
                        prop_assert_eq!(&buf[..size_b], &rec[..]);
                        m.consumed(1);
                    }
                }
            }
            Op::PopRecords { n, extra } => {
                let len = usize::from(n) * size_b + usize::from(extra);
                let room = len / size_b;
                let r = c.pop_records(&mut buf[..len]);
                if room == 0 {
                    prop_assert_eq!(r, Err(RingError::BufferTooSmall { needed: size_b }));
                    continue;
                }
                if (m.seen_head - m.tail) / size_b < room {
                    m.seen_head = m.head;
                }
                let got = room.min((m.seen_head - m.tail) / size_b);
                prop_assert_eq!(r, Ok(got));
                for k in 0..got {
                    let rec = m.published.pop_front().unwrap();
                    prop_assert_eq!(&buf[k * size_b..(k + 1) * size_b], &rec[..]);
                }
                m.consumed(got);
            }
            Op::Publish => {
                let _ = p.publish().unwrap();
                m.make_visible();
                prop_assert_eq!(p.unpublished(), 0);
            }
            Op::MakeVisible => {
                p.make_visible().unwrap();
                m.make_visible();
            }
        }
    }
    // Drain: everything staged comes out in order, through both pop calls.
    let _ = p.publish().unwrap();
    m.make_visible();
    let mut bulk = true;
    while !m.published.is_empty() {
        if bulk {
            let got = c.pop_records(&mut buf[..3 * size_b]).unwrap();
            prop_assert!((1..=3).contains(&got));
            for k in 0..got {
                let rec = m.published.pop_front().unwrap();
                prop_assert_eq!(&buf[k * size_b..(k + 1) * size_b], &rec[..]);
            }
        } else {
            let rec = m.published.pop_front().unwrap();
            prop_assert_eq!(c.try_pop(&mut buf).unwrap(), Some(size_b));
            prop_assert_eq!(&buf[..size_b], &rec[..]);
        }
        bulk = !bulk;
    }
    prop_assert_eq!(c.try_pop(&mut buf).unwrap(), None);
    prop_assert_eq!(c.pop_records(&mut buf).unwrap(), 0);
    prop_assert_eq!(mem.peek_u32(layout::OFF_FAILED), 0);
    Ok(())
}

fn record_size() -> impl Strategy<Value = u32> {
    // Powers of two (they divide the capacity) and sizes that do not (records
    // then straddle the end of the data area).
    prop_oneof![Just(8u32), Just(24), Just(64), Just(72), Just(200), Just(512), (1u32..=64).prop_map(|k| k * 8)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fixed_ring_matches_model(
        cap_log in 12u32..=14,
        size in record_size(),
        start in any::<u32>(),
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        run(cap_log, size, u64::from(start), ops)?;
    }
}

#[test]
fn fixed_size_is_checked_at_init_and_attach() {
    use ntcomm_proto::ring::{self, LayoutError, RingLayout};
    let len = RingLayout::bytes_for(4096).unwrap();
    let mem = Mem::new(len);
    for bad in [0u32, 4, 12, 2056, 4096] {
        // SAFETY: `mem` is valid for `len` bytes and nobody is attached.
        let r = unsafe { ring::init_fixed(mem.ptr, len, 4096, bad) };
        assert_eq!(r, Err(RingError::Layout(LayoutError::BadRecordSize(bad))), "{bad}");
    }
    // SAFETY: as above.
    unsafe { ring::init_fixed(mem.ptr, len, 4096, 2048).unwrap() };
    assert_eq!(mem.producer().unwrap().record_size(), Some(2048));
    // A peer rewriting the size to something invalid is refused at attach.
    for bad in [12u32, 4096] {
        mem.poke_u32(layout::OFF_RECORD_SIZE, bad);
        assert_eq!(mem.consumer().err(), Some(RingError::Layout(LayoutError::BadRecordSize(bad))));
    }
}

#[test]
fn bulk_calls_need_a_fixed_size_ring() {
    let mem = Mem::ring(4096);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    assert_eq!(p.record_size(), None);
    assert_eq!(p.write_records(&[0u8; 64]), Err(RingError::NotFixedSize));
    assert_eq!(c.pop_records(&mut [0u8; 64]), Err(RingError::NotFixedSize));
    assert!(p.write(&[1u8; 64]).unwrap());
    assert_eq!(p.publish().unwrap(), WakeNeeded(false));
    assert_eq!(c.try_pop(&mut [0u8; 64]).unwrap(), Some(64));
}
