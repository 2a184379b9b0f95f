//! The kernel heap: a `GlobalAlloc` over tagged non-paged pool.
//!
//! `ExAllocatePool2` would zero and is the modern call, but Wine 8 lacks it
//! and Windows before 10 2004 too; `ExAllocatePoolWithTag` with
//! `NonPagedPoolNx` is exported everywhere. Pool blocks are 16-byte aligned
//! on x64; larger alignments are served by over-allocating and keeping the
//! original pointer just below the aligned block.
//!
//! The allocator counts live bytes and blocks, which a driver can report
//! in its stats and the tests use to catch leaks.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

const POOL_ALIGN: usize = 16;

/// A global allocator on tagged non-paged pool.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: ntcomm_km::pool::PoolAllocator = ntcomm_km::pool::PoolAllocator::new(*b"MyDv");
/// ```
pub struct PoolAllocator {
    tag: u32,
    bytes: AtomicU64,
    blocks: AtomicU64,
}

/// Live allocations of a [`PoolAllocator`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Bytes requested and not yet freed.
    pub bytes: u64,
    /// Blocks allocated and not yet freed.
    pub blocks: u64,
}

impl PoolAllocator {
    /// An allocator whose blocks carry `tag` (four ASCII characters, shown
    /// by pool tools in the order written).
    pub const fn new(tag: [u8; 4]) -> Self {
        Self { tag: u32::from_le_bytes(tag), bytes: AtomicU64::new(0), blocks: AtomicU64::new(0) }
    }

    /// What is allocated now.
    pub fn usage(&self) -> PoolUsage {
        PoolUsage { bytes: self.bytes.load(Ordering::Relaxed), blocks: self.blocks.load(Ordering::Relaxed) }
    }

    fn raw_alloc(&self, bytes: usize) -> *mut u8 {
        // SAFETY: plain pool allocation; a NULL result is passed on to the
        // caller, which reports allocation failure.
        unsafe { sys::ExAllocatePoolWithTag(sys::NON_PAGED_POOL_NX, bytes, self.tag) as *mut u8 }
    }
}

// SAFETY: blocks come from the pool with at least the layout's size and
// alignment, and are returned to it exactly once with the same tag.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size().max(1);
        let p = if layout.align() <= POOL_ALIGN {
            self.raw_alloc(size)
        } else {
            // Room for the alignment slack plus the original pointer.
            let Some(total) = size.checked_add(layout.align() + core::mem::size_of::<usize>()) else {
                return core::ptr::null_mut();
            };
            let raw = self.raw_alloc(total);
            if raw.is_null() {
                return raw;
            }
            let start = raw as usize + core::mem::size_of::<usize>();
            let aligned = (start + layout.align() - 1) & !(layout.align() - 1);
            // SAFETY: `aligned - 8 >= raw` and lies inside the block.
            unsafe { *((aligned - core::mem::size_of::<usize>()) as *mut usize) = raw as usize };
            aligned as *mut u8
        };
        if !p.is_null() {
            self.bytes.fetch_add(layout.size() as u64, Ordering::Relaxed);
            self.blocks.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let raw = if layout.align() <= POOL_ALIGN {
            ptr
        } else {
            // SAFETY: `alloc` stored the pool pointer just below the block.
            unsafe { *((ptr as usize - core::mem::size_of::<usize>()) as *const usize) as *mut u8 }
        };
        // SAFETY: `raw` came from ExAllocatePoolWithTag with this tag.
        unsafe { sys::ExFreePoolWithTag(raw as *mut c_void, self.tag) };
        self.bytes.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        self.blocks.fetch_sub(1, Ordering::Relaxed);
    }
}
