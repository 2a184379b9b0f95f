//! Property test of the ring against a model: a queue of published records and a
//! list of staged ones, with exact free-space accounting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::VecDeque;

use common::{pattern, Mem};
use ntcomm_proto::ring::{layout, RingError, RingLayout, SleepDecision, WakeNeeded};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Stage a record; the size selector is mapped onto 0..=max_record+8.
    Write(SizeSel),
    Publish,
    /// `make_visible`: staged records become poppable; no wake-up check.
    MakeVisible,
    Push(SizeSel),
    /// Pop with a buffer of the selected size (may be too small).
    Pop(SizeSel),
    PopVec,
    Peek,
    Sleep,
    Cancel,
}

#[derive(Debug, Clone, Copy)]
enum SizeSel {
    Zero,
    Small(u16),
    Max,
    NearMax(u8),
    OverMax,
    Any(u32),
}

impl SizeSel {
    fn len(self, max: usize) -> usize {
        match self {
            SizeSel::Zero => 0,
            // Up to 130: every length of the inline-copy path (<= 128) and past it.
            SizeSel::Small(n) => n as usize % 131,
            SizeSel::Max => max,
            SizeSel::NearMax(d) => max - (d as usize % 16),
            SizeSel::OverMax => max + 1,
            SizeSel::Any(n) => n as usize % (max + 1),
        }
    }
}

fn size_sel() -> impl Strategy<Value = SizeSel> {
    prop_oneof![
        1 => Just(SizeSel::Zero),
        4 => any::<u16>().prop_map(SizeSel::Small),
        1 => Just(SizeSel::Max),
        1 => any::<u8>().prop_map(SizeSel::NearMax),
        1 => Just(SizeSel::OverMax),
        3 => any::<u32>().prop_map(SizeSel::Any),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => size_sel().prop_map(Op::Write),
        3 => Just(Op::Publish),
        2 => Just(Op::MakeVisible),
        4 => size_sel().prop_map(Op::Push),
        8 => size_sel().prop_map(Op::Pop),
        1 => Just(Op::PopVec),
        1 => Just(Op::Peek),
        2 => Just(Op::Sleep),
        1 => Just(Op::Cancel),
    ]
}

struct Model {
    cap: usize,
    max: usize,
    published: VecDeque<Vec<u8>>,
    staged: Vec<Vec<u8>>,
    /// Staged end covered by the last `publish` (its wake-up check).
    checked: usize,
    sleeping: bool,
    next: u64,
    /// Byte counters: staged end, published head, consumer tail, the head the
    /// consumer last loaded, and the tail it last handed back to the producer.
    write: usize,
    head: usize,
    tail: usize,
    seen_head: usize,
    released: usize,
}

impl Model {
    fn fits(&self, len: usize) -> bool {
        self.write - self.released + RingLayout::footprint(len) <= self.cap
    }
    /// The consumer reloads `head` only when it has consumed all it knew of.
    fn observe(&mut self) {
        if self.tail == self.seen_head {
            self.seen_head = self.head;
        }
    }
    fn consumed(&mut self, len: usize) {
        self.tail += RingLayout::footprint(len);
        if self.tail == self.seen_head || self.tail - self.released >= self.cap / 8 {
            self.released = self.tail;
        }
    }
    fn make_visible(&mut self) {
        self.head = self.write;
        self.published.extend(self.staged.drain(..));
    }
    fn publish(&mut self) {
        self.make_visible();
        self.checked = self.write;
    }
}

fn run(cap_log: u32, start: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cap = 1u32 << cap_log;
    let mem = Mem::ring(cap);
    // Start both indices at an arbitrary 8-aligned position to hit every wrap offset.
    let start = start & !7;
    mem.poke_u64(layout::OFF_HEAD, start);
    mem.poke_u64(layout::OFF_TAIL, start);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    let max = p.max_record();
    prop_assert_eq!(max, cap as usize / 2);
    let mut m = Model {
        cap: cap as usize,
        max,
        published: VecDeque::new(),
        staged: Vec::new(),
        checked: 0,
        sleeping: false,
        next: 0,
        write: 0,
        head: 0,
        tail: 0,
        seen_head: 0,
        released: 0,
    };
    let mut buf = vec![0u8; max + 16];
    for op in ops {
        match op {
            Op::Write(s) | Op::Push(s) => {
                let len = s.len(m.max);
                let rec = pattern(m.next, len);
                let push = matches!(op, Op::Push(_));
                if len > m.max {
                    let r = if push { p.try_push(&rec).map(|_| ()) } else { p.write(&rec).map(|_| ()) };
                    prop_assert_eq!(r, Err(RingError::TooLarge { len, max }));
                    continue;
                }
                let fits = m.fits(len);
                if push {
                    let r = p.try_push(&rec).unwrap();
                    if fits {
                        m.write += RingLayout::footprint(len);
                        m.staged.push(rec);
                        m.next += 1;
                        let wake = m.sleeping;
                        m.sleeping = false;
                        m.publish();
                        prop_assert_eq!(r, Some(WakeNeeded(wake)));
                    } else {
                        prop_assert_eq!(r, None);
                    }
                } else {
                    prop_assert_eq!(p.write(&rec).unwrap(), fits);
                    if fits {
                        m.write += RingLayout::footprint(len);
                        m.staged.push(rec);
                        m.next += 1;
                    }
                }
            }
            Op::Publish => {
                let r = p.publish().unwrap();
                // Records shown by make_visible but not yet checked count too.
                let pending = m.write != m.checked;
                let wake = pending && m.sleeping;
                if pending {
                    m.sleeping = false;
                }
                m.publish();
                prop_assert_eq!(r, WakeNeeded(wake));
                prop_assert_eq!(p.unpublished(), 0);
            }
            Op::MakeVisible => {
                p.make_visible().unwrap();
                m.make_visible();
                prop_assert_eq!(p.unpublished(), m.write - m.checked);
            }
            Op::Pop(s) => {
                let want = s.len(m.max + 8);
                let r = c.try_pop(&mut buf[..want]);
                m.observe();
                match m.published.front() {
                    None => prop_assert_eq!(r, Ok(None)),
                    Some(rec) if rec.len() > want => {
                        prop_assert_eq!(r, Err(RingError::BufferTooSmall { needed: rec.len() }))
                    }
                    Some(_) => {
                        let rec = m.published.pop_front().unwrap();
                        prop_assert_eq!(r, Ok(Some(rec.len())));
                        prop_assert_eq!(&buf[..rec.len()], &rec[..]);
                        m.consumed(rec.len());
                    }
                }
            }
            Op::PopVec => {
                let r = c.try_pop_vec().unwrap();
                m.observe();
                let e = m.published.pop_front();
                if let Some(rec) = &e {
                    m.consumed(rec.len());
                }
                prop_assert_eq!(r, e);
            }
            Op::Peek => {
                prop_assert_eq!(c.peek_len().unwrap(), m.published.front().map(|r| r.len()));
                m.observe();
            }
            Op::Sleep => {
                let d = c.prepare_sleep().unwrap();
                if m.tail != m.seen_head {
                    // Data already known: answered without touching the flag.
                    prop_assert_eq!(d, SleepDecision::DataReady);
                } else {
                    // Flag set, head re-read; the flag is cleared again if data
                    // arrived (possible with make_visible while a sleep was announced).
                    m.seen_head = m.head;
                    if m.published.is_empty() {
                        prop_assert_eq!(d, SleepDecision::MustWait);
                        m.sleeping = true;
                    } else {
                        prop_assert_eq!(d, SleepDecision::DataReady);
                        m.sleeping = false;
                    }
                }
            }
            Op::Cancel => {
                c.cancel_sleep();
                m.sleeping = false;
            }
        }
        prop_assert_eq!(mem.peek_u32(layout::OFF_SLEEPING) != 0, m.sleeping);
    }
    // Drain: everything published comes out in order.
    let _ = p.publish().unwrap();
    m.publish();
    while let Some(rec) = m.published.pop_front() {
        prop_assert_eq!(c.try_pop(&mut buf).unwrap(), Some(rec.len()));
        prop_assert_eq!(&buf[..rec.len()], &rec[..]);
    }
    prop_assert_eq!(c.try_pop(&mut buf).unwrap(), None);
    prop_assert_eq!(mem.peek_u32(layout::OFF_FAILED), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_model(
        cap_log in 12u32..=14,
        start in any::<u32>(),
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        run(cap_log, u64::from(start), ops)?;
    }
}

#[test]
fn layout_sizes() {
    assert_eq!(RingLayout::bytes_for(4096), Some(4096 + 192));
    assert_eq!(RingLayout::bytes_for(4095), None);
    assert_eq!(RingLayout::bytes_for(2048), None);
    assert_eq!(RingLayout::footprint(0), 8);
    assert_eq!(RingLayout::footprint(1), 16);
    assert_eq!(RingLayout::footprint(8), 16);
}

#[test]
fn write_parts_concatenates() {
    let mem = Mem::ring(4096);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    assert!(p.write_parts(&[b"abc", b"", b"defgh"]).unwrap());
    assert_eq!(p.publish().unwrap(), WakeNeeded(false));
    let mut buf = [0u8; 16];
    assert_eq!(c.try_pop(&mut buf).unwrap(), Some(8));
    assert_eq!(&buf[..8], b"abcdefgh");
}
