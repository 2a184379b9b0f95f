//! Shared helpers: a ring region between two inaccessible guard pages, so any
//! out-of-bounds access by the ring code faults instead of passing silently.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ntcomm_proto::ring::{self, Consumer, Producer, RingLayout};

const PAGE: usize = 4096;

/// `len` bytes whose last byte is followed by a PROT_NONE page, and whose
/// first page is preceded by one.
pub struct Mem {
    map: *mut u8,
    map_len: usize,
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the tests share it
// between threads on purpose (that is what the ring is for).
unsafe impl Send for Mem {}
unsafe impl Sync for Mem {}

impl Mem {
    /// A guarded region of `len` bytes (`len` rounded up to a multiple of 8).
    pub fn new(len: usize) -> Mem {
        let len = (len + 7) & !7;
        let pages = len.div_ceil(PAGE).max(1);
        let map_len = (pages + 2) * PAGE;
        // SAFETY: anonymous private mapping; checked for failure below.
        let map = unsafe {
            libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        assert_ne!(map, libc::MAP_FAILED);
        let map = map as *mut u8;
        // SAFETY: both guard pages lie inside the mapping made above.
        unsafe {
            assert_eq!(libc::mprotect(map as *mut _, PAGE, libc::PROT_NONE), 0);
            assert_eq!(libc::mprotect(map.add((pages + 1) * PAGE) as *mut _, PAGE, libc::PROT_NONE), 0);
        }
        // SAFETY: inside the mapping; the region ends exactly at the upper guard page.
        let ptr = unsafe { map.add(PAGE + pages * PAGE - len) };
        Mem { map, map_len, ptr, len }
    }

    /// `len` bytes starting on a page boundary, as a section view does (the
    /// upper guard page then follows the page-rounded end): for benchmarks,
    /// where the header's cache-line pairs must sit as they do in real use.
    pub fn page_aligned(len: usize) -> Mem {
        let mut m = Mem::new(len.div_ceil(PAGE) * PAGE);
        m.len = (len + 7) & !7;
        m
    }

    /// Initialises a ring of `cap` data bytes in `self` (fixed-size records
    /// of `size` bytes unless `size` is 0).
    fn with_ring(self, cap: u32, size: u32) -> Mem {
        // SAFETY: `self` is valid for `self.len` bytes and nobody is attached yet.
        unsafe { ring::init_records(self.ptr, self.len, cap, size).unwrap() };
        self
    }

    /// A page-aligned, initialised ring of `cap` data bytes, with fixed-size
    /// records of `size` bytes if `size` is not 0 (for benchmarks).
    pub fn ring_page_aligned(cap: u32, size: u32) -> Mem {
        Mem::page_aligned(RingLayout::bytes_for(cap).unwrap()).with_ring(cap, size)
    }

    /// A guarded, initialised ring of `cap` data bytes.
    pub fn ring(cap: u32) -> Mem {
        Mem::new(RingLayout::bytes_for(cap).unwrap()).with_ring(cap, 0)
    }

    /// A guarded, initialised ring of `cap` data bytes for fixed-size records of `size` bytes.
    pub fn ring_fixed(cap: u32, size: u32) -> Mem {
        Mem::new(RingLayout::bytes_for(cap).unwrap()).with_ring(cap, size)
    }

    pub fn producer(&self) -> Result<Producer, ring::RingError> {
        // SAFETY: `self` outlives the handles in every test that uses them.
        unsafe { Producer::attach(self.ptr, self.len) }
    }

    pub fn consumer(&self) -> Result<Consumer, ring::RingError> {
        // SAFETY: as in `producer`.
        unsafe { Consumer::attach(self.ptr, self.len) }
    }

    /// Writes bytes at `off` (clipped to the region), like a hostile peer would.
    pub fn poke(&self, off: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            if off + i < self.len {
                // SAFETY: in bounds; a volatile write models the other process.
                unsafe { self.ptr.add(off + i).write_volatile(*b) };
            }
        }
    }

    pub fn poke_u64(&self, off: usize, v: u64) {
        self.poke(off, &v.to_le_bytes());
    }

    pub fn poke_u32(&self, off: usize, v: u32) {
        self.poke(off, &v.to_le_bytes());
    }

    pub fn peek_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            // SAFETY: callers pass header offsets inside the region.
            *x = unsafe { self.ptr.add(off + i).read_volatile() };
        }
        u32::from_le_bytes(b)
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.map as *mut _, self.map_len) };
    }
}

/// Deterministic record content for record number `n` of length `len`.
pub fn pattern(n: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n as usize).wrapping_mul(31).wrapping_add(i * 7) as u8).collect()
}
