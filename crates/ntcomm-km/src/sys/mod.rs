//! Raw kernel declarations: structures (`types`), exported functions
//! (`functions`), the DDK's inline helpers and macros rewritten as Rust
//! functions (this module), and the layout proof (`layout`).
//!
//! Everything here is `unsafe` to use and stays behind the safe wrappers of
//! the other modules.
#![allow(non_snake_case)]
// multiple_unsafe_ops_per_block: the DDK's inline helpers rewritten here read and write fields of one caller-owned IRP/MDL through raw pointers; each block's operations share the one contract its SAFETY comment states.
#![allow(clippy::multiple_unsafe_ops_per_block)]

pub mod functions;
mod layout;
pub mod types;

pub use functions::*;
pub use types::*;

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` must be a live IRP owned by the caller's driver.
#[inline]
pub unsafe fn IoGetCurrentIrpStackLocation(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees `irp` is live; the Overlay arm of the
    // tail union is the one the I/O manager uses while a driver owns the IRP.
    unsafe { (*irp).Tail.Overlay.CurrentStackLocation }
}

/// `IoMarkIrpPending`.
///
/// # Safety
/// `irp` must be a live IRP owned by the caller, which will return
/// `STATUS_PENDING` from its dispatch routine.
#[inline]
pub unsafe fn IoMarkIrpPending(irp: *mut IRP) {
    // SAFETY: as above, the current stack location belongs to this driver.
    unsafe { (*IoGetCurrentIrpStackLocation(irp)).Control |= SL_PENDING_RETURNED };
}

/// `IoSetCancelRoutine`: an atomic exchange of `Irp->CancelRoutine`.
///
/// # Safety
/// `irp` must be a live IRP owned by the caller.
#[inline]
pub unsafe fn IoSetCancelRoutine(irp: *mut IRP, routine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    // SAFETY: `CancelRoutine` is a pointer-sized, pointer-aligned field that
    // the I/O manager also accesses atomically; `Option<fn>` has the layout
    // of a nullable pointer.
    unsafe {
        let slot = &*(core::ptr::addr_of_mut!((*irp).CancelRoutine) as *const AtomicPtr<c_void>);
        let new = core::mem::transmute::<PDRIVER_CANCEL, *mut c_void>(routine);
        let old = slot.swap(new, Ordering::AcqRel);
        core::mem::transmute::<*mut c_void, PDRIVER_CANCEL>(old)
    }
}

/// `MmGetSystemAddressForMdlSafe`, with the mapping never executable and,
/// when `writable` is false, read-only (`MdlMappingNoWrite`): the mapping of
/// an MDL the I/O manager locked for read access only (the buffer of a
/// write, the second buffer of `METHOD_IN_DIRECT`), which may be a page the
/// caller shares with other processes, must never be written.
///
/// # Safety
/// `mdl` must describe locked pages (as the I/O manager's MDLs for direct
/// I/O do) and stay valid while the returned address is used.
#[inline]
pub unsafe fn MmGetSystemAddressForMdlSafe(mdl: *mut MDL, writable: bool) -> *mut c_void {
    let priority = NORMAL_PAGE_PRIORITY | MDL_MAPPING_NO_EXECUTE | if writable { 0 } else { MDL_MAPPING_NO_WRITE };
    // SAFETY: the caller guarantees a valid MDL.
    unsafe {
        if (*mdl).MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
            (*mdl).MappedSystemVa
        } else {
            MmMapLockedPagesSpecifyCache(mdl, KERNEL_MODE, MM_CACHED, core::ptr::null_mut(), 0, priority)
        }
    }
}

#[link(name = "ntoskrnl")]
extern "system" {
    fn MmMapLockedPagesSpecifyCache(
        mdl: *mut MDL,
        mode: KPROCESSOR_MODE,
        cache: u32,
        base: *mut c_void,
        bugcheck: u32,
        priority: u32,
    ) -> *mut c_void;
}

/// `NT_SUCCESS`.
#[inline]
pub const fn NT_SUCCESS(status: NTSTATUS) -> bool {
    status >= 0
}
