//! An I/O request the driver owns, and the proof that it was handled.
//!
//! A [`Request`] is the driver's ownership of one IRP. Completing it consumes
//! it, so safe code cannot touch an IRP after `IoCompleteRequest`; the only
//! other way out is to pend it into an [`IrpQueue`](crate::queue::IrpQueue),
//! which marks it pending first. Either way the dispatch routine gets a
//! [`Handled`] to return, and only those two paths can make one.
// multiple_unsafe_ops_per_block: a `Request` owns its IRP: every block is a few field accesses of that one IRP (and its current stack location), all resting on the ownership argument its SAFETY comment states.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use ntcomm_proto::NtStatus;

use crate::sys;

/// The identity of one open of the device (its `FILE_OBJECT`), stable from
/// create to close. Used to find a client's requests when it closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(pub usize);

/// What a dispatch routine returns: proof the request was completed or
/// pended, carrying the status to return to the I/O manager.
#[must_use = "return it from the dispatch routine"]
#[derive(Debug)]
pub struct Handled(NtStatus);

impl Handled {
    pub(crate) const fn pending() -> Self {
        Handled(NtStatus::STATUS_PENDING)
    }
    /// The status the dispatch routine returns.
    pub fn status(&self) -> NtStatus {
        self.0
    }
}

/// Counters the library keeps for every IRP it completes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Requests pended and not yet completed.
    pub in_flight: u64,
    /// Requests completed, any status.
    pub completed: u64,
    /// Requests completed with `STATUS_CANCELLED`.
    pub cancelled: u64,
}

static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static COMPLETED: AtomicU64 = AtomicU64::new(0);
static CANCELLED: AtomicU64 = AtomicU64::new(0);

/// The library's request counters for this driver.
pub fn counters() -> IoCounters {
    IoCounters {
        in_flight: IN_FLIGHT.load(Ordering::Relaxed),
        completed: COMPLETED.load(Ordering::Relaxed),
        cancelled: CANCELLED.load(Ordering::Relaxed),
    }
}

pub(crate) fn note_pended() {
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
}

/// Ownership of one IRP.
///
/// Dropping a `Request` without completing it completes it with
/// `STATUS_INTERNAL_ERROR` (and logs), so a forgotten path cannot leak the
/// client's request or hang it.
pub struct Request {
    irp: NonNull<sys::IRP>,
}

// SAFETY: an IRP may be completed from any thread; a Request is its unique
// owner. Buffers reached through it are system-space (buffered I/O or a
// mapped MDL), valid in any thread context until completion.
unsafe impl Send for Request {}

impl Request {
    /// Takes ownership of an IRP handed to a dispatch routine.
    ///
    /// # Safety
    /// `irp` must be a live IRP whose current stack location belongs to this
    /// driver, and nothing else may complete it.
    pub(crate) unsafe fn from_raw(irp: *mut sys::IRP) -> Option<Self> {
        NonNull::new(irp).map(|irp| Self { irp })
    }

    /// Gives up ownership without completing.
    pub(crate) fn into_raw(self) -> *mut sys::IRP {
        let irp = self.irp.as_ptr();
        core::mem::forget(self);
        irp
    }

    pub(crate) fn raw(&self) -> *mut sys::IRP {
        self.irp.as_ptr()
    }

    pub(crate) fn stack(&self) -> &sys::IO_STACK_LOCATION {
        // SAFETY: we own a live IRP; its current stack location is ours.
        unsafe { &*sys::IoGetCurrentIrpStackLocation(self.irp.as_ptr()) }
    }

    /// The open this request came through.
    pub fn file(&self) -> FileId {
        FileId(self.stack().FileObject as usize)
    }

    /// The `IRP_MJ_*` code.
    pub fn major_function(&self) -> u8 {
        self.stack().MajorFunction
    }

    /// Two driver-defined words carried with the request while it is pended
    /// (for example a deadline and a cookie), kept in the IRP's
    /// `DriverContext` so pending never allocates.
    pub fn tag(&self) -> (usize, usize) {
        // SAFETY: DriverContext[1..3] are the driver's while it owns the IRP.
        unsafe {
            let ctx = (*self.irp.as_ptr()).Tail.Overlay.DriverContext;
            (ctx[1] as usize, ctx[2] as usize)
        }
    }

    /// Sets [`tag`](Self::tag).
    pub fn set_tag(&mut self, tag: (usize, usize)) {
        // SAFETY: as above; we hold the only reference.
        unsafe {
            let ctx = &mut (*self.irp.as_ptr()).Tail.Overlay.DriverContext;
            ctx[1] = tag.0 as *mut c_void;
            ctx[2] = tag.1 as *mut c_void;
        }
    }

    /// Marks the request pending so it may be completed from another thread
    /// (a work item, a system thread). Returns the request, now completable
    /// anywhere, and the `STATUS_PENDING` to return from dispatch. It is
    /// marked *before* it can reach the other thread: the order the seed's
    /// example gets wrong. Requests pended this way cannot be cancelled;
    /// use [`IrpQueue`](crate::queue::IrpQueue) for long waits.
    pub fn into_pending(self) -> (Request, Handled) {
        // SAFETY: we own the IRP and it has not been shared yet.
        unsafe { sys::IoMarkIrpPending(self.irp.as_ptr()) };
        note_pended();
        (self, Handled::pending())
    }

    /// The length asked for by a read, or offered by a write.
    pub fn transfer_len(&self) -> usize {
        // SAFETY: Read and Write parameters share one layout.
        unsafe { self.stack().Parameters.Read.Length as usize }
    }

    /// The system-space buffer of a read or write: the MDL's mapping for
    /// direct I/O (read-only unless `writable`: a write's MDL is locked for
    /// read access only), the system buffer for buffered I/O.
    fn io_buffer(&self, writable: bool) -> Option<NonNull<u8>> {
        let irp = self.irp.as_ptr();
        // SAFETY: we own the IRP; an MDL set by the I/O manager is valid.
        unsafe {
            if !(*irp).MdlAddress.is_null() {
                NonNull::new(sys::MmGetSystemAddressForMdlSafe((*irp).MdlAddress, writable).cast())
            } else {
                NonNull::new((*irp).SystemBuffer.cast())
            }
        }
    }

    /// The data of a write request. Empty for a zero-length write; `None` if
    /// the buffer cannot be reached (an MDL that failed to map).
    pub fn write_data(&self) -> Option<&[u8]> {
        let len = self.transfer_len();
        if len == 0 {
            return Some(&[]);
        }
        let p = self.io_buffer(false)?;
        // SAFETY: the I/O manager describes `len` bytes at this address,
        // valid until completion, and we borrow `self` for the slice.
        Some(unsafe { core::slice::from_raw_parts(p.as_ptr(), len) })
    }

    /// The buffer a read request fills.
    pub fn read_buffer(&mut self) -> Option<&mut [u8]> {
        let len = self.transfer_len();
        if len == 0 {
            return Some(&mut []);
        }
        let p = self.io_buffer(true)?;
        // SAFETY: as for `write_data`, borrowed mutably through `self`.
        Some(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// Whether the I/O manager asked to cancel this request.
    pub fn is_cancel_requested(&self) -> bool {
        // SAFETY: reading a byte of an IRP we own.
        unsafe { core::ptr::read_volatile(&(*self.irp.as_ptr()).Cancel) != 0 }
    }

    /// Completes the request. `information` is the byte count of a transfer:
    /// it is capped at the caller's buffer for reads, writes and IOCTLs (the
    /// I/O manager copies that many bytes back) and forced to 0 on an error
    /// status, where nothing is copied back.
    pub fn complete(self, status: NtStatus, information: usize) -> Handled {
        let irp = self.into_raw();
        // SAFETY: we owned the IRP and give it up here, exactly once.
        unsafe { complete_raw(irp, status, information) };
        Handled(status)
    }

    /// Completes with `STATUS_SUCCESS`.
    pub fn complete_ok(self, information: usize) -> Handled {
        self.complete(NtStatus::STATUS_SUCCESS, information)
    }

    /// Completes with an error status and no data.
    pub fn fail(self, status: NtStatus) -> Handled {
        self.complete(status, 0)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        crate::kprintln!("request dropped without completion; completing with STATUS_INTERNAL_ERROR");
        // SAFETY: drop runs only for a Request still owning its IRP
        // (`into_raw` forgets), so this is the single completion.
        unsafe { complete_raw(self.irp.as_ptr(), NtStatus::STATUS_INTERNAL_ERROR, 0) };
    }
}

/// Completes an IRP and updates the counters.
///
/// # Safety
/// The caller owns `irp` and never touches it again.
pub(crate) unsafe fn complete_raw(irp: *mut sys::IRP, status: NtStatus, information: usize) {
    // SAFETY: the caller owns the IRP until IofCompleteRequest returns.
    unsafe {
        let stack = &*sys::IoGetCurrentIrpStackLocation(irp);
        let was_pended = stack.Control & sys::SL_PENDING_RETURNED != 0;
        // The I/O manager copies `Information` bytes back to the caller for
        // buffered transfers: never let it exceed the caller's buffer.
        let limit = match stack.MajorFunction as usize {
            sys::IRP_MJ_READ | sys::IRP_MJ_WRITE => stack.Parameters.Read.Length as usize,
            sys::IRP_MJ_DEVICE_CONTROL => stack.Parameters.DeviceIoControl.OutputBufferLength as usize,
            _ => usize::MAX,
        };
        (*irp).IoStatus.Status = status.0 as u32 as usize;
        (*irp).IoStatus.Information = if status.0 < 0 { 0 } else { information.min(limit) };
        if was_pended {
            IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
        COMPLETED.fetch_add(1, Ordering::Relaxed);
        if status == NtStatus::STATUS_CANCELLED {
            CANCELLED.fetch_add(1, Ordering::Relaxed);
        }
        sys::IofCompleteRequest(irp, 0);
    }
}
