//! Arbitrary bytes as a ring region (header + data), then a script of consumer
//! and producer operations interleaved with writes by a corrupting peer. The
//! region is an exact-size heap allocation, so AddressSanitizer (cargo fuzz's
//! default) reports any out-of-bounds access; a panic is a crash.
//!
//! `cargo +nightly fuzz run ring_hostile -- -max_total_time=120` from
//! `crates/ntcomm-proto`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntcomm_proto::ring::{layout, Consumer, Producer, RingLayout, MAGIC, VERSION};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, rest) = data.split_at(4);
    let cap = 4096u32 << (ctl[0] % 2);
    let len = RingLayout::bytes_for(cap).unwrap();
    let mut words = vec![0u64; len / 8];
    let mem = words.as_mut_ptr() as *mut u8;
    let n = rest.len().min(len);
    // SAFETY: `n <= len` bytes inside the allocation.
    unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), mem, n) };
    let poke = |off: usize, b: &[u8]| {
        for (i, x) in b.iter().enumerate() {
            if off + i < len {
                // SAFETY: in bounds of the allocation.
                unsafe { mem.add(off + i).write_volatile(*x) };
            }
        }
    };
    if ctl[1] & 1 == 1 {
        // A plausible header, so that record parsing is reached.
        poke(layout::OFF_MAGIC, &MAGIC.to_le_bytes());
        poke(layout::OFF_VERSION, &VERSION.to_le_bytes());
        poke(layout::OFF_CAPACITY, &cap.to_le_bytes());
        poke(layout::OFF_MAX_RECORD, &(cap / 2).to_le_bytes());
        poke(layout::OFF_FAILED, &0u32.to_le_bytes());
        if ctl[1] & 2 == 2 {
            poke(layout::OFF_HEAD, &0u64.to_le_bytes());
            poke(layout::OFF_TAIL, &0u64.to_le_bytes());
        }
    }
    // SAFETY: `mem` is valid for `len` bytes and outlives both handles.
    let mut c = unsafe { Consumer::attach(mem, len) }.ok();
    // SAFETY: as above.
    let mut p = unsafe { Producer::attach(mem, len) }.ok();
    let mut buf = vec![0u8; usize::from(ctl[2]) * 16];
    // The script: the data bytes again, read as op codes.
    for (i, op) in rest.iter().enumerate().take(512) {
        match op % 8 {
            0 | 1 => {
                if let Some(c) = c.as_mut() {
                    let _ = c.try_pop(&mut buf);
                }
            }
            2 => {
                if let Some(c) = c.as_mut() {
                    let _ = c.try_pop_vec();
                    let _ = c.prepare_sleep();
                }
            }
            3 | 4 => {
                if let Some(p) = p.as_mut() {
                    let l = (usize::from(*op) * 37 + i) % (p.max_record() + 2);
                    let _ = p.write(&vec![*op; l]);
                }
            }
            5 => {
                if let Some(p) = p.as_mut() {
                    let _ = p.publish();
                }
            }
            _ => {
                // The peer writes 8 bytes somewhere, indices included.
                let off = (usize::from(*op) * 131 + i * 8) % len;
                poke(off & !7, &(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            }
        }
    }
});
