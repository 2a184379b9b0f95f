//! The ring against a hostile peer: arbitrary header and data bytes, and a peer
//! that corrupts the region between operations. The region sits between guard
//! pages, so an out-of-bounds access faults the test; a panic fails it; every
//! call must return (the loops below are bounded by the op count only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{pattern, Mem};
use ntcomm_proto::ring::{layout, reason, LayoutError, RingError, RingLayout, SleepDecision, MAGIC, VERSION};
use proptest::prelude::*;

/// Arbitrary region bytes, optionally with a plausible header so that attach
/// succeeds and the record-validation paths are reached.
fn region_bytes() -> impl Strategy<Value = (u32, bool, u64, u64, Vec<u8>)> {
    (12u32..=13, any::<bool>(), any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..=8192 + 192))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Consumer and producer over arbitrary bytes: no panic, no fault, and an
    /// error, once `Corrupt`, stays.
    #[test]
    fn arbitrary_region(
        (cap_log, plausible, head, tail, bytes) in region_bytes(),
        buf_len in 0usize..5000,
        fixed in prop_oneof![Just(0u32), Just(24), (1u32..=64).prop_map(|k| k * 8)],
    ) {
        let cap = 1u32 << cap_log;
        let len = RingLayout::bytes_for(cap).unwrap();
        let mem = Mem::new(len);
        mem.poke(0, &bytes);
        if plausible {
            mem.poke_u32(layout::OFF_MAGIC, MAGIC);
            mem.poke_u32(layout::OFF_VERSION, VERSION);
            mem.poke_u32(layout::OFF_CAPACITY, cap);
            mem.poke_u32(layout::OFF_MAX_RECORD, cap / 2);
            mem.poke_u32(layout::OFF_FAILED, 0);
            mem.poke_u32(layout::OFF_RECORD_SIZE, fixed);
            // Small, mostly consistent indices so records get parsed (in a
            // fixed-size ring, head is often off the record grid).
            let t = (tail % (4 * u64::from(cap))) & !7;
            let t = if fixed != 0 && head & 1 == 0 { t - t % u64::from(fixed) } else { t };
            mem.poke_u64(layout::OFF_TAIL, t);
            mem.poke_u64(layout::OFF_HEAD, t + (head % (u64::from(cap) + 16)));
        }
        let mut buf = vec![0u8; buf_len];
        if let Ok(mut c) = mem.consumer() {
            let mut corrupt = None;
            for i in 0..64 {
                let r = if i % 2 == 1 && c.record_size().is_some() {
                    // Bulk pops: a count of whole records that fit the buffer.
                    match c.pop_records(&mut buf) {
                        Ok(0) => Ok(None),
                        Ok(n) => {
                            prop_assert!(n * c.max_record() <= buf.len());
                            Ok(Some(c.max_record()))
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    c.try_pop(&mut buf)
                };
                if let Some(code) = corrupt {
                    prop_assert_eq!(r, Err(RingError::Corrupt(code)));
                }
                match r {
                    Ok(Some(n)) => prop_assert!(n <= buf.len() && n <= c.max_record()),
                    Ok(None) => { let _ = c.prepare_sleep(); }
                    Err(RingError::Corrupt(code)) => {
                        corrupt = Some(code);
                        prop_assert_ne!(mem.peek_u32(layout::OFF_FAILED), 0);
                    }
                    Err(RingError::BufferTooSmall { needed }) => {
                        prop_assert!(needed > buf.len());
                        buf.resize(needed, 0);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }
        }
        if let Ok(mut p) = mem.producer() {
            for i in 0..64u64 {
                let len = p.record_size().unwrap_or((i as usize * 97) % 3000);
                let rec = pattern(i, len);
                match p.write(&rec) {
                    Ok(_) => { let _ = p.publish(); }
                    Err(_) => break,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Act {
    Push(u16),
    Publish,
    /// `make_visible` (plain store of head, no wake-up check).
    Visible,
    Pop(u16),
    Sleep,
    /// The peer writes bytes at an offset in the region.
    Poke(u16, Vec<u8>),
    /// The peer rewrites one index word with a value near the current one.
    Nudge(bool, i32),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => any::<u16>().prop_map(Act::Push),
        2 => Just(Act::Publish),
        1 => Just(Act::Visible),
        6 => any::<u16>().prop_map(Act::Pop),
        1 => Just(Act::Sleep),
        1 => (any::<u16>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(o, b)| Act::Poke(o, b)),
        1 => (any::<bool>(), -64i32..64).prop_map(|(h, d)| Act::Nudge(h, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// A working producer and consumer while a third party corrupts the region.
    #[test]
    fn corrupting_peer(acts in proptest::collection::vec(act(), 1..200)) {
        let cap = 4096u32;
        let mem = Mem::ring(cap);
        let mut p = mem.producer().unwrap();
        let mut c = mem.consumer().unwrap();
        let mut buf = vec![0u8; 4096];
        let (mut p_err, mut c_err) = (None, None);
        let mut n = 0u64;
        for a in acts {
            match a {
                Act::Push(l) => {
                    let rec = pattern(n, l as usize % 2100);
                    n += 1;
                    let r = p.write(&rec).map(|_| ());
                    if let Some(e) = p_err { prop_assert_eq!(r, Err(e)); }
                    if let Err(e @ RingError::Corrupt(_)) = r { p_err = Some(e); }
                }
                Act::Visible => {
                    let r = p.make_visible();
                    if let Some(e) = p_err { prop_assert_eq!(r, Err(e)); }
                    if let Err(e @ RingError::Corrupt(_)) = r { p_err = Some(e); }
                }
                Act::Publish => {
                    let r = p.publish().map(|_| ());
                    if let Some(e) = p_err { prop_assert_eq!(r, Err(e)); }
                    if let Err(e @ RingError::Corrupt(_)) = r { p_err = Some(e); }
                }
                Act::Pop(l) => {
                    let r = c.try_pop(&mut buf[..l as usize % 4097]);
                    if let Some(e) = c_err { prop_assert_eq!(r, Err(e)); }
                    match r {
                        Ok(Some(n)) => prop_assert!(n <= 2048),
                        Err(e @ RingError::Corrupt(_)) => c_err = Some(e),
                        _ => {}
                    }
                }
                Act::Sleep => {
                    if let Ok(SleepDecision::MustWait) = c.prepare_sleep() { c.cancel_sleep(); }
                }
                Act::Poke(off, bytes) => mem.poke(off as usize % mem.len, &bytes),
                Act::Nudge(head, d) => {
                    let off = if head { layout::OFF_HEAD } else { layout::OFF_TAIL };
                    let mut b = [0u8; 8];
                    for (i, x) in b.iter_mut().enumerate() {
                        // SAFETY: header offsets inside the region.
                        *x = unsafe { mem.ptr.add(off + i).read_volatile() };
                    }
                    mem.poke_u64(off, u64::from_le_bytes(b).wrapping_add(d as i64 as u64));
                }
            }
        }
    }
}

fn two_records() -> (Mem, ntcomm_proto::ring::Producer, ntcomm_proto::ring::Consumer) {
    let mem = Mem::ring(4096);
    let mut p = mem.producer().unwrap();
    let c = mem.consumer().unwrap();
    assert!(p.write(b"hello").unwrap());
    assert!(p.write(b"world!!!").unwrap());
    let _ = p.publish().unwrap();
    (mem, p, c)
}

fn expect_corrupt(c: &mut ntcomm_proto::ring::Consumer, mem: &Mem, code: u32) {
    let mut buf = [0u8; 64];
    assert_eq!(c.try_pop(&mut buf), Err(RingError::Corrupt(code)), "{}", reason::name(code));
    assert_eq!(c.try_pop(&mut buf), Err(RingError::Corrupt(code)));
    assert_eq!(mem.peek_u32(layout::OFF_FAILED), code);
}

#[test]
fn consumer_detects_each_violation() {
    // head backwards (after the consumer saw 32)
    let (mem, _p, mut c) = two_records();
    let mut buf = [0u8; 64];
    assert_eq!(c.try_pop(&mut buf).unwrap(), Some(5));
    assert_eq!(c.try_pop(&mut buf).unwrap(), Some(8));
    mem.poke_u64(layout::OFF_HEAD, 16);
    expect_corrupt(&mut c, &mem, reason::HEAD_BACKWARDS);

    let (mem, _p, mut c) = two_records();
    mem.poke_u64(layout::OFF_HEAD, 4096 + 8);
    expect_corrupt(&mut c, &mem, reason::HEAD_OVERRUN);

    let (mem, _p, mut c) = two_records();
    mem.poke_u64(layout::OFF_HEAD, 33);
    expect_corrupt(&mut c, &mem, reason::MISALIGNED_INDEX);

    let (mem, _p, mut c) = two_records();
    mem.poke_u32(layout::HEADER_LEN, 2049);
    expect_corrupt(&mut c, &mem, reason::RECORD_TOO_LONG);

    let (mem, _p, mut c) = two_records();
    mem.poke_u32(layout::HEADER_LEN, 40);
    expect_corrupt(&mut c, &mem, reason::RECORD_TRUNCATED);

    let (mem, _p, mut c) = two_records();
    mem.poke_u32(layout::HEADER_LEN + 4, 1);
    expect_corrupt(&mut c, &mem, reason::RECORD_HEADER);
}

#[test]
fn producer_detects_tail_violations_and_failure_propagates() {
    // tail ahead of head; the producer sees it when it needs space.
    let mem = Mem::ring(4096);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    let big = vec![7u8; 2000];
    assert!(p.write(&big).unwrap());
    let _ = p.publish().unwrap();
    mem.poke_u64(layout::OFF_TAIL, 1 << 20);
    assert!(p.write(&big).unwrap()); // still fits by the cached tail
    assert_eq!(p.write(&big), Err(RingError::Corrupt(reason::TAIL_AHEAD)));
    assert_eq!(p.publish(), Err(RingError::Corrupt(reason::TAIL_AHEAD)));
    // The consumer learns it from the shared word on its next head reload and
    // stops there (fail-fast: it does not drain what was published before).
    let mut buf = vec![0u8; 4096];
    assert_eq!(c.try_pop(&mut buf), Err(RingError::Corrupt(reason::TAIL_AHEAD)));

    // tail backwards
    let mem = Mem::ring(4096);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    assert!(p.write(&big).unwrap());
    assert!(p.write(&big).unwrap());
    let _ = p.publish().unwrap();
    assert_eq!(c.try_pop(&mut buf).unwrap(), Some(2000));
    assert!(p.write(&big).unwrap()); // reloads tail = 2008
    let _ = p.publish().unwrap();
    mem.poke_u64(layout::OFF_TAIL, 0);
    assert_eq!(p.write(&big), Err(RingError::Corrupt(reason::TAIL_BACKWARDS)));
    assert_eq!(mem.peek_u32(layout::OFF_FAILED), reason::TAIL_BACKWARDS);
}

#[test]
fn consumer_failure_reaches_producer_and_fail_api() {
    let (mem, mut p, mut c) = two_records();
    c.fail(0);
    assert_eq!(mem.peek_u32(layout::OFF_FAILED), reason::ABORTED);
    assert!(p.write(b"x").unwrap());
    assert_eq!(p.publish(), Err(RingError::Corrupt(reason::ABORTED)));
    assert_eq!(p.status(), Err(RingError::Corrupt(reason::ABORTED)));
    // A new side cannot attach to a failed ring.
    assert_eq!(mem.consumer().err(), Some(RingError::Corrupt(reason::ABORTED)));
}

#[test]
fn attach_validates_header() {
    let mem = Mem::ring(4096);
    // SAFETY: null and misaligned pointers are rejected before any access.
    unsafe {
        assert_eq!(ntcomm_proto::ring::Consumer::attach(std::ptr::null_mut(), 100).err(), Some(LayoutError::Null.into()));
        assert_eq!(ntcomm_proto::ring::Consumer::attach(mem.ptr.add(1), 100).err(), Some(LayoutError::Misaligned.into()));
        assert_eq!(
            ntcomm_proto::ring::Consumer::attach(mem.ptr, mem.len - 8).err(),
            Some(LayoutError::TooShort { needed: mem.len, len: mem.len - 8 }.into())
        );
    }
    let cases: [(usize, u32, RingError); 4] = [
        (layout::OFF_MAGIC, 1, LayoutError::BadMagic(1).into()),
        (layout::OFF_VERSION, 1, LayoutError::BadVersion(1).into()),
        (layout::OFF_CAPACITY, 4097, LayoutError::BadCapacity(4097).into()),
        (layout::OFF_MAX_RECORD, 4096, LayoutError::BadMaxRecord(4096).into()),
    ];
    for (off, v, e) in cases {
        let mem = Mem::ring(4096);
        mem.poke_u32(off, v);
        assert_eq!(mem.producer().err(), Some(e));
        assert_eq!(mem.consumer().err(), Some(e));
    }
    // A hostile capacity bigger than the mapping is refused, not trusted.
    let mem = Mem::ring(4096);
    mem.poke_u32(layout::OFF_CAPACITY, 1 << 20);
    mem.poke_u32(layout::OFF_MAX_RECORD, 1 << 19);
    assert!(matches!(mem.consumer().err(), Some(RingError::Layout(LayoutError::TooShort { .. }))));
    // Inconsistent indices.
    let mem = Mem::ring(4096);
    mem.poke_u64(layout::OFF_TAIL, 8);
    assert_eq!(mem.consumer().err(), Some(RingError::Corrupt(reason::BAD_INDICES)));
}

#[test]
fn geometry_is_private_after_attach() {
    let (mem, _p, mut c) = two_records();
    // The peer shrinks the advertised capacity and max_record: the consumer does
    // not re-read them.
    mem.poke_u32(layout::OFF_CAPACITY, 8);
    mem.poke_u32(layout::OFF_MAX_RECORD, 1);
    let mut buf = [0u8; 64];
    assert_eq!(c.try_pop(&mut buf).unwrap(), Some(5));
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn fixed_size_ring_checks_the_record_grid() {
    // 24-byte records: indices must be multiples of 24, not only of 8.
    let mem = Mem::ring_fixed(4096, 24);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    assert!(p.write(&[7u8; 24]).unwrap());
    assert!(p.write(&[8u8; 24]).unwrap());
    let _ = p.publish().unwrap();
    mem.poke_u64(layout::OFF_HEAD, 40);
    let mut buf = [0u8; 64];
    assert_eq!(c.pop_records(&mut buf), Err(RingError::Corrupt(reason::MISALIGNED_INDEX)));
    assert_eq!(c.try_pop(&mut buf), Err(RingError::Corrupt(reason::MISALIGNED_INDEX)));
    assert_eq!(p.status(), Err(RingError::Corrupt(reason::MISALIGNED_INDEX)));

    // The producer checks a tail off the grid when it next needs space.
    let mem = Mem::ring_fixed(4096, 24);
    let mut p = mem.producer().unwrap();
    let mut c = mem.consumer().unwrap();
    let recs = vec![1u8; 24 * 170];
    assert_eq!(p.write_records(&recs).unwrap(), 170);
    let _ = p.publish().unwrap();
    assert_eq!(c.pop_records(&mut [0u8; 48]).unwrap(), 2);
    mem.poke_u64(layout::OFF_TAIL, 16);
    assert_eq!(p.write_records(&recs[..48]), Err(RingError::Corrupt(reason::MISALIGNED_INDEX)));

    // Attach refuses indices off the grid.
    let mem = Mem::ring_fixed(4096, 24);
    mem.poke_u64(layout::OFF_HEAD, 32);
    mem.poke_u64(layout::OFF_TAIL, 32);
    assert_eq!(mem.consumer().err(), Some(RingError::Corrupt(reason::BAD_INDICES)));
}
