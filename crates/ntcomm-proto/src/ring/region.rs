//! Raw access to the shared region: the only `unsafe` code of the ring.
//!
//! The region is memory another party (another process, or the kernel's view
//! of a user mapping) may change at any moment. Nothing here ever creates a
//! `&`/`&mut` over plain shared bytes: header words are reached as atomics
//! (`&AtomicU32`/`&AtomicU64` over shared memory is sound: atomics are
//! `UnsafeCell`s), and the data area is only copied to or from private
//! buffers with `ptr::copy_nonoverlapping`. Every offset is computed from the
//! private geometry fixed at construction and masked, so no value read from
//! the region can steer an access outside it.
#![allow(unsafe_code)]
// Each block here is one pointer computation and the access it bounds (or,
// in `copy_small`, one bounded copy done as a few fixed-size moves), argued
// once in the SAFETY comment above it; split, the bound would sit apart from
// its use. The lint is for modules where unrelated operations share a block.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ptr::NonNull;

use super::layout;
use super::sync::{AtomicU32, AtomicU64, Ordering};

/// A view of one ring region: header plus `cap` data bytes.
pub(crate) struct Region {
    base: NonNull<u8>,
    cap: usize,
    mask: usize,
}

// SAFETY: a `Region` is a pointer to memory shared with another party anyway;
// moving the handle to another thread changes nothing about who may touch the
// memory. All accesses are atomics or copies (see the module comment).
unsafe impl Send for Region {}

impl Region {
    /// # Safety
    /// `base` must be 8-aligned and valid for reads and writes of
    /// `layout::HEADER_LEN + cap` bytes for as long as the `Region` lives,
    /// and `cap` must be a power of two. The bytes may be changed concurrently
    /// by others (through atomics or plain writes): that is tolerated.
    pub(crate) unsafe fn new(base: NonNull<u8>, cap: usize) -> Self {
        Region { base, cap, mask: cap.wrapping_sub(1) }
    }

    #[inline]
    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off & 3 == 0 && off + 4 <= layout::HEADER_LEN);
        // SAFETY: `off` is one of the fixed header offsets below, inside the
        // header (which `new`'s contract makes valid) and 4-aligned (base is
        // 8-aligned). An `AtomicU32` has the size and alignment of a `u32`, and
        // a shared reference to an atomic tolerates concurrent mutation.
        unsafe { &*(self.base.as_ptr().add(off) as *const AtomicU32) }
    }

    #[inline]
    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off & 7 == 0 && off + 8 <= layout::HEADER_LEN);
        // SAFETY: as in `u32_at`, with an 8-aligned offset inside the header.
        unsafe { &*(self.base.as_ptr().add(off) as *const AtomicU64) }
    }

    #[inline]
    pub(crate) fn magic(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_MAGIC)
    }
    #[inline]
    pub(crate) fn version(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_VERSION)
    }
    #[inline]
    pub(crate) fn capacity(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_CAPACITY)
    }
    #[inline]
    pub(crate) fn max_record(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_MAX_RECORD)
    }
    #[inline]
    pub(crate) fn failed(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_FAILED)
    }
    #[inline]
    pub(crate) fn record_size(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_RECORD_SIZE)
    }
    #[inline]
    pub(crate) fn sleeping(&self) -> &AtomicU32 {
        self.u32_at(layout::OFF_SLEEPING)
    }
    #[inline]
    pub(crate) fn head(&self) -> &AtomicU64 {
        self.u64_at(layout::OFF_HEAD)
    }
    #[inline]
    pub(crate) fn tail(&self) -> &AtomicU64 {
        self.u64_at(layout::OFF_TAIL)
    }

    /// The 8-byte word at stream position `pos` (rounded down to 8) of the data area.
    #[inline]
    fn word_at(&self, pos: u64) -> &AtomicU64 {
        let off = (pos as usize) & self.mask & !7;
        // SAFETY: `off` is masked below `cap` and rounded down to a multiple of 8;
        // `cap` is a power of two >= 8 (or 0, giving off = 0 with an empty mask,
        // which `new`'s callers never use for data), so `off + 8 <= cap` and the
        // word lies inside the data area, 8-aligned because base and HEADER_LEN are.
        unsafe { &*(self.base.as_ptr().add(layout::HEADER_LEN + off) as *const AtomicU64) }
    }

    /// Reads the 8-byte little-endian record header at `pos` (a multiple of 8).
    #[inline]
    pub(crate) fn read_word(&self, pos: u64) -> u64 {
        if self.cap < 8 {
            return 0;
        }
        u64::from_le(self.word_at(pos).load(Ordering::Relaxed))
    }

    /// Writes the 8-byte little-endian record header at `pos` (a multiple of 8).
    #[inline]
    pub(crate) fn write_word(&self, pos: u64, v: u64) {
        if self.cap < 8 {
            return;
        }
        self.word_at(pos).store(v.to_le(), Ordering::Relaxed)
    }

    /// Copies `src` into the data area starting at stream position `pos`,
    /// wrapping at the end. Copies nothing if `src` is longer than the area.
    #[inline]
    pub(crate) fn copy_in(&self, pos: u64, src: &[u8]) {
        let len = src.len();
        if len > self.cap {
            return;
        }
        let off = (pos as usize) & self.mask;
        let first = core::cmp::min(len, self.cap - off);
        // SAFETY: `off < cap` (masked), `first <= cap - off`, and
        // `len - first <= cap - first <= off < cap`: both destination ranges lie
        // inside the data area, which `new`'s contract makes valid for writes.
        // `src` is private memory and cannot overlap the shared region unless
        // the caller aliased it there, which the safe API cannot express.
        unsafe {
            let data = self.base.as_ptr().add(layout::HEADER_LEN);
            if len <= SMALL && first == len {
                copy_small(src.as_ptr(), data.add(off), len);
                return;
            }
            core::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            if first < len {
                core::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, len - first);
            }
        }
    }

    /// Copies from the data area at stream position `pos` into `dst`,
    /// wrapping at the end. Copies nothing if `dst` is longer than the area.
    #[inline]
    pub(crate) fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        let len = dst.len();
        if len > self.cap {
            return;
        }
        let off = (pos as usize) & self.mask;
        let first = core::cmp::min(len, self.cap - off);
        // SAFETY: the same bounds argument as `copy_in`, with the data area as
        // the source. The source bytes may be changed concurrently by the peer;
        // the copy then holds garbage, which callers validate after copying.
        // No reference to the shared bytes is ever formed.
        unsafe {
            let data = self.base.as_ptr().add(layout::HEADER_LEN);
            if len <= SMALL && first == len {
                copy_small(data.add(off), dst.as_mut_ptr(), len);
                return;
            }
            core::ptr::copy_nonoverlapping(data.add(off), dst.as_mut_ptr(), first);
            if first < len {
                core::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), len - first);
            }
        }
    }
}

/// Copies of at most this many bytes that do not wrap are done inline by
/// [`copy_small`] instead of calling `memcpy`.
const SMALL: usize = 128;

/// Copies `len <= SMALL` bytes inline with at most four pairs of overlapping
/// fixed-size unaligned moves (the `memcpy` strategy for short lengths, without
/// the call and its size dispatch, which dominate for records of tens of bytes).
/// Overlapping moves write some bytes twice, with the same value read from
/// `src`; when `src` is the shared region and the peer changes it meanwhile, the
/// copy holds garbage, as with `memcpy`, and the caller validates the copy.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, and
/// `len <= SMALL`. The ranges must not overlap.
#[inline(always)]
unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    use core::ptr::{read_unaligned as rd, write_unaligned as wr};
    debug_assert!(len <= SMALL);
    // SAFETY: each move covers `[at, at + N)` with `at + N <= len`, inside
    // both ranges by the caller's contract.
    unsafe {
        if len > 64 {
            let a = rd(src as *const [u8; 32]);
            let b = rd(src.add(32) as *const [u8; 32]);
            let c = rd(src.add(len - 64) as *const [u8; 32]);
            let d = rd(src.add(len - 32) as *const [u8; 32]);
            wr(dst as *mut [u8; 32], a);
            wr(dst.add(32) as *mut [u8; 32], b);
            wr(dst.add(len - 64) as *mut [u8; 32], c);
            wr(dst.add(len - 32) as *mut [u8; 32], d);
        } else if len >= 32 {
            let a = rd(src as *const [u8; 32]);
            let b = rd(src.add(len - 32) as *const [u8; 32]);
            wr(dst as *mut [u8; 32], a);
            wr(dst.add(len - 32) as *mut [u8; 32], b);
        } else if len >= 16 {
            let a = rd(src as *const [u8; 16]);
            let b = rd(src.add(len - 16) as *const [u8; 16]);
            wr(dst as *mut [u8; 16], a);
            wr(dst.add(len - 16) as *mut [u8; 16], b);
        } else if len >= 8 {
            let a = rd(src as *const u64);
            let b = rd(src.add(len - 8) as *const u64);
            wr(dst as *mut u64, a);
            wr(dst.add(len - 8) as *mut u64, b);
        } else if len >= 4 {
            let a = rd(src as *const u32);
            let b = rd(src.add(len - 4) as *const u32);
            wr(dst as *mut u32, a);
            wr(dst.add(len - 4) as *mut u32, b);
        } else if len > 0 {
            let a = *src;
            let b = *src.add(len / 2);
            let c = *src.add(len - 1);
            *dst = a;
            *dst.add(len / 2) = b;
            *dst.add(len - 1) = c;
        }
    }
}
