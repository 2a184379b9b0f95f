//! The loom stand-in for `region.rs`: the same interface over loom atomics and
//! one `loom::cell::UnsafeCell` per data byte, so loom checks that every data
//! byte read by the consumer was written by the producer *before* (in
//! happens-before order) the index that published it.
#![allow(unsafe_code)]

extern crate std;

use std::sync::Arc;
use std::vec::Vec;

use loom::cell::UnsafeCell;

use super::sync::{AtomicU32, AtomicU64};

struct Shared {
    magic: AtomicU32,
    version: AtomicU32,
    capacity: AtomicU32,
    max_record: AtomicU32,
    failed: AtomicU32,
    record_size: AtomicU32,
    sleeping: AtomicU32,
    head: AtomicU64,
    tail: AtomicU64,
    data: Vec<UnsafeCell<u8>>,
}

// SAFETY: the data cells are only touched through loom's `with`/`with_mut`,
// which check every concurrent access and fail the model on a race; this is
// the shared memory of the real ring, which both sides access at once.
unsafe impl Sync for Shared {}
// SAFETY: as above; nothing in `Shared` is tied to a thread.
unsafe impl Send for Shared {}

/// A loom-modelled ring region; clone it to hand it to the other side.
#[derive(Clone)]
pub struct Region {
    shared: Arc<Shared>,
    cap: usize,
    mask: usize,
}

impl Region {
    /// A zeroed region of `cap` data bytes (a power of two).
    pub fn new_zeroed(cap: usize) -> Self {
        let shared = Shared {
            magic: AtomicU32::new(0),
            version: AtomicU32::new(0),
            capacity: AtomicU32::new(0),
            max_record: AtomicU32::new(0),
            failed: AtomicU32::new(0),
            record_size: AtomicU32::new(0),
            sleeping: AtomicU32::new(0),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            data: (0..cap).map(|_| UnsafeCell::new(0u8)).collect(),
        };
        Region { shared: Arc::new(shared), cap, mask: cap.wrapping_sub(1) }
    }

    pub(crate) fn magic(&self) -> &AtomicU32 {
        &self.shared.magic
    }
    pub(crate) fn version(&self) -> &AtomicU32 {
        &self.shared.version
    }
    pub(crate) fn capacity(&self) -> &AtomicU32 {
        &self.shared.capacity
    }
    pub(crate) fn max_record(&self) -> &AtomicU32 {
        &self.shared.max_record
    }
    pub(crate) fn failed(&self) -> &AtomicU32 {
        &self.shared.failed
    }
    pub(crate) fn record_size(&self) -> &AtomicU32 {
        &self.shared.record_size
    }
    pub(crate) fn sleeping(&self) -> &AtomicU32 {
        &self.shared.sleeping
    }
    pub(crate) fn head(&self) -> &AtomicU64 {
        &self.shared.head
    }
    pub(crate) fn tail(&self) -> &AtomicU64 {
        &self.shared.tail
    }

    pub(crate) fn read_word(&self, pos: u64) -> u64 {
        let mut b = [0u8; 8];
        self.copy_out(pos, &mut b);
        u64::from_le_bytes(b)
    }

    pub(crate) fn write_word(&self, pos: u64, v: u64) {
        self.copy_in(pos, &v.to_le_bytes());
    }

    pub(crate) fn copy_in(&self, pos: u64, src: &[u8]) {
        if src.len() > self.cap {
            return;
        }
        for (i, b) in src.iter().enumerate() {
            let idx = (pos as usize).wrapping_add(i) & self.mask;
            if let Some(cell) = self.shared.data.get(idx) {
                // SAFETY: loom tracks this access and reports any race.
                cell.with_mut(|p| unsafe { *p = *b });
            }
        }
    }

    pub(crate) fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        if dst.len() > self.cap {
            return;
        }
        for (i, b) in dst.iter_mut().enumerate() {
            let idx = (pos as usize).wrapping_add(i) & self.mask;
            if let Some(cell) = self.shared.data.get(idx) {
                // SAFETY: loom tracks this access and reports any race.
                *b = cell.with(|p| unsafe { *p });
            }
        }
    }
}
