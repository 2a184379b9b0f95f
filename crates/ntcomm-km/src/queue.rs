//! A cancel-safe queue of pended requests, written without `IoCsq*`.
//!
//! The protocol (Microsoft's classic one, which Wine's fatal `IoCsq*` stubs
//! rule out borrowing):
//! - `pend` marks the IRP pending *before* it becomes visible to any other
//!   thread, then, under the queue lock, sets the cancel routine and checks
//!   `Irp->Cancel`. If a cancel already happened and the routine was taken
//!   back, the request is completed with `STATUS_CANCELLED` at once.
//! - Removal (`pop`, `pop_if`, `drain_file`, `close`) takes the cancel
//!   routine back with an atomic exchange under the queue lock. If it is
//!   already gone, the cancel routine owns the IRP: the entry is unlinked
//!   and left self-linked for it, and counted in `orphans` so the queue is
//!   not freed under a cancel routine still on its way to the lock.
//! - The cancel routine releases the cancel spin lock first, then takes the
//!   queue lock, unlinks the entry (unless a remover already did) and
//!   completes with `STATUS_CANCELLED`, so that it returns at the IRQL
//!   `IoCancelIrp` was called at (see `cancel_routine`).
//!
//! Completions always happen after the queue lock is released. Requests are
//! linked through `Tail.Overlay.ListEntry`, so queueing never allocates.
// multiple_unsafe_ops_per_block: every block touches fields of IRPs the queue owns (cancel routine, list links, stack location) under one ownership/locking argument stated in its SAFETY comment.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};

use ntcomm_proto::NtStatus;

use crate::irp::{self, FileId, Handled, Request};
use crate::sync::{Event, SpinLock};
use crate::sys::{self, IRP, LIST_ENTRY};

/// A FIFO of pended requests that handles cancellation.
pub struct IrpQueue {
    inner: Box<Inner>,
}

struct Inner {
    list: SpinLock<List>,
    /// Set after a cancel routine completed one of our requests.
    on_cancel: Option<Arc<Event>>,
    /// Requests unlinked by us whose cancel routine has yet to run.
    orphans: AtomicUsize,
}

struct List {
    head: LIST_ENTRY,
    len: usize,
    closed: Option<NtStatus>,
}

// SAFETY: the raw IRP links are only touched under the spin lock.
unsafe impl Send for List {}

fn entry_of(irp: *mut IRP) -> *mut LIST_ENTRY {
    // SAFETY: computing a field address of an IRP we own or that is linked.
    unsafe { core::ptr::addr_of_mut!((*irp).Tail.Overlay.ListEntry) }
}

fn irp_of(entry: *mut LIST_ENTRY) -> *mut IRP {
    let offset = core::mem::offset_of!(IRP, Tail) + core::mem::offset_of!(sys::IRP_OVERLAY_TAIL, ListEntry);
    (entry as usize - offset) as *mut IRP
}

/// # Safety
/// `e` is a linked entry of a list whose lock is held.
unsafe fn unlink(e: *mut LIST_ENTRY) {
    // SAFETY: per the contract, neighbours are valid.
    unsafe {
        let (f, b) = ((*e).Flink, (*e).Blink);
        (*b).Flink = f;
        (*f).Blink = b;
        (*e).Flink = e;
        (*e).Blink = e;
    }
}

impl IrpQueue {
    /// An empty, open queue.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// An empty, open queue that sets `event` each time the caller cancels
    /// one of its requests (after completing it), so that a thread waiting
    /// for the request's work learns of it without polling.
    pub fn with_cancel_event(event: Arc<Event>) -> Self {
        Self::build(Some(event))
    }

    fn build(on_cancel: Option<Arc<Event>>) -> Self {
        let inner = Box::new(Inner {
            on_cancel,
            list: SpinLock::new(List {
                head: LIST_ENTRY { Flink: core::ptr::null_mut(), Blink: core::ptr::null_mut() },
                len: 0,
                closed: None,
            }),
            orphans: AtomicUsize::new(0),
        });
        {
            let mut l = inner.list.lock();
            let head = core::ptr::addr_of_mut!(l.head);
            l.head = LIST_ENTRY { Flink: head, Blink: head };
        }
        Self { inner }
    }

    fn inner_ptr(&self) -> *const Inner {
        &*self.inner
    }

    /// Pends `req` at the tail. Returns the [`Handled`] to give back from
    /// dispatch: `STATUS_PENDING`, or the status it was completed with if it
    /// was already cancelled or the queue is closed.
    pub fn pend(&self, req: Request) -> Handled {
        let irp = req.into_raw();
        // SAFETY: we own `irp`; marking pending before anyone else can see it.
        unsafe {
            sys::IoMarkIrpPending(irp);
            (*irp).Tail.Overlay.DriverContext[0] = self.inner_ptr() as *mut c_void;
        }
        irp::note_pended();
        let mut l = self.inner.list.lock();
        if let Some(status) = l.closed {
            drop(l);
            // SAFETY: still ours: never linked, no cancel routine set.
            unsafe { irp::complete_raw(irp, status, 0) };
            return Handled::pending();
        }
        // SAFETY: we own `irp`; the cancel routine is ours.
        unsafe {
            sys::IoSetCancelRoutine(irp, Some(cancel_routine));
            if (*irp).Cancel != 0 && sys::IoSetCancelRoutine(irp, None).is_some() {
                // Cancelled before we armed it, and we took the routine back:
                // nobody else will complete it.
                drop(l);
                irp::complete_raw(irp, NtStatus::STATUS_CANCELLED, 0);
                return Handled::pending();
            }
            // Either not cancelled, or the cancel routine is running and will
            // find it in the list once it gets the lock.
            let head = core::ptr::addr_of_mut!(l.head);
            let e = entry_of(irp);
            (*e).Flink = head;
            (*e).Blink = (*head).Blink;
            (*(*head).Blink).Flink = e;
            (*head).Blink = e;
        }
        l.len += 1;
        Handled::pending()
    }

    /// Takes the oldest request that is not being cancelled.
    pub fn pop(&self) -> Option<Request> {
        self.pop_if(|_| true)
    }

    /// Takes the oldest request for which `pred` holds and that is not being
    /// cancelled. `pred` runs under the queue's spin lock: keep it short.
    pub fn pop_if(&self, mut pred: impl FnMut(&Request) -> bool) -> Option<Request> {
        let mut l = self.inner.list.lock();
        let head = core::ptr::addr_of_mut!(l.head);
        // SAFETY: walking and unlinking under the lock.
        unsafe {
            let mut e = (*head).Flink;
            while e != head {
                let next = (*e).Flink;
                let irp = irp_of(e);
                let candidate = core::mem::ManuallyDrop::new(Request::from_raw(irp));
                let wanted = match &*candidate {
                    Some(r) => pred(r),
                    None => false,
                };
                if wanted {
                    if let Some(req) = self.take_locked(&mut l, e) {
                        return Some(req);
                    }
                }
                e = next;
            }
        }
        None
    }

    /// Unlinks `e` and takes ownership unless its cancel routine runs.
    ///
    /// # Safety
    /// `e` is linked in this queue and `l` is its held lock.
    unsafe fn take_locked(&self, l: &mut List, e: *mut LIST_ENTRY) -> Option<Request> {
        let irp = irp_of(e);
        // SAFETY: per the contract.
        unsafe {
            unlink(e);
            l.len = l.len.saturating_sub(1);
            if sys::IoSetCancelRoutine(irp, None).is_none() {
                // The cancel routine has been called and will complete it.
                self.inner.orphans.fetch_add(1, Ordering::AcqRel);
                return None;
            }
            Request::from_raw(irp)
        }
    }

    /// Shows every queued request to `f`, oldest first, without taking any.
    /// `f` runs under the queue's spin lock: keep it short.
    pub fn visit(&self, mut f: impl FnMut(&Request)) {
        let _ = self.pop_if(|r| {
            f(r);
            false
        });
    }

    /// Completes every queued request of `file` with `status` (for close).
    /// Returns how many were completed.
    pub fn drain_file(&self, file: FileId, status: NtStatus) -> usize {
        let mut n = 0;
        while let Some(req) = self.pop_if(|r| r.file() == file) {
            let _ = req.fail(status);
            n += 1;
        }
        n
    }

    /// Refuses further requests (they complete with `status`) and completes
    /// every queued one with `status`. Used on unload.
    pub fn close(&self, status: NtStatus) -> usize {
        self.inner.list.lock().closed = Some(status);
        let mut n = 0;
        while let Some(req) = self.pop() {
            let _ = req.fail(status);
            n += 1;
        }
        n
    }

    /// Requests queued now.
    pub fn len(&self) -> usize {
        self.inner.list.lock().len
    }

    /// Whether no request is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for IrpQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrpQueue {
    fn drop(&mut self) {
        self.close(NtStatus::STATUS_CANCELLED);
        // Wait out cancel routines that still hold a pointer to `inner`.
        while self.inner.orphans.load(Ordering::Acquire) != 0 {
            crate::sync::sleep(core::time::Duration::from_millis(1));
        }
    }
}

/// Called by `IoCancelIrp` at `DISPATCH_LEVEL` with the cancel spin lock
/// held. The cancel spin lock is released first, back to the IRQL the I/O
/// manager saved in `CancelIrql`; only then is the queue lock taken, as an
/// ordinary lock that restores that same IRQL. So the routine returns at the
/// IRQL `IoCancelIrp` was called at, as Windows requires ("Cancel routines
/// must release the cancel spin lock", Microsoft Learn, *Canceling IRPs*).
/// Taking the queue lock while the cancel spin lock is held would record
/// `DISPATCH_LEVEL` as the level to restore, and return there.
///
/// Releasing first is safe: `IoCancelIrp` already took the cancel routine
/// back, so no remover can own the IRP any more (`take_locked` sees `None`
/// and leaves the entry self-linked for us), and `Drop` waits for us through
/// `orphans` or finds the entry still linked.
unsafe extern "system" fn cancel_routine(_device: *mut sys::DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager calls us with the cancel spin lock held for an
    // IRP we queued, whose DriverContext[0] points at the queue's `Inner`,
    // which outlives it (Drop waits for orphans); the IRP is ours to
    // complete since its cancel routine was taken by `IoCancelIrp`.
    unsafe {
        sys::IoReleaseCancelSpinLock((*irp).CancelIrql);
        let inner = &*((*irp).Tail.Overlay.DriverContext[0] as *const Inner);
        let e = entry_of(irp);
        // Taken under the lock: once it is released the queue may be dropped.
        let (orphaned, notify) = inner.list.with(|l| {
            let orphaned = (*e).Flink == e;
            if !orphaned {
                unlink(e);
                l.len = l.len.saturating_sub(1);
            }
            (orphaned, inner.on_cancel.clone())
        });
        if orphaned {
            // Last touch of `inner`.
            inner.orphans.fetch_sub(1, Ordering::AcqRel);
        }
        irp::complete_raw(irp, NtStatus::STATUS_CANCELLED, 0);
        if let Some(ev) = notify {
            ev.set();
        }
    }
}
