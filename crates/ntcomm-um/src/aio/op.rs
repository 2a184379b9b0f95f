//! One overlapped request shared by its future, the kernel and the reactor:
//! the `OVERLAPPED`, the buffers the kernel reads and writes, and the
//! outcome with whoever waits for it.
//!
//! # Ownership
//!
//! A block is an `Arc`. Issuing a request leaks one reference to the kernel
//! (`Arc::into_raw`; the `OVERLAPPED` is the first field, so the pointer the
//! completion packet carries is the block's). The reactor takes that
//! reference back when it dequeues the packet: only then may the block, and
//! the buffers in it, be freed. A future that is dropped early merely asks
//! for cancellation (`CancelIoEx` on this request) and drops its own
//! reference; the buffers stay alive, untouched, until the packet arrives.
//!
//! A request whose call returns success at once has its outcome recorded by
//! its issuer from the `OVERLAPPED` (the system wrote it, and the output,
//! before returning): the future hands the output out on its first poll. The
//! packet of that request is still queued, and frees the block, unless the
//! handle has `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` (devices do): then no
//! packet comes and [`issue`] takes the kernel's reference back at once. A
//! warning status at once on such a handle is taken at once too, but its
//! reference stays with the block (a packet, if one comes, frees it).
//!
//! Who frees the kernel's reference when the request fails at once follows
//! the rule of [`crate::iocp`]: a packet is queued for every request issued
//! except one that failed with an error status (`NT_ERROR`), and only then
//! does [`issue`] take the reference back itself.
#![cfg(windows)]

use core::cell::UnsafeCell;
use core::ptr;
use core::task::Waker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ntcomm_proto::NtStatus;
use windows_sys::Win32::Foundation::{FALSE, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::Storage::InstallableFileSystems::FilterGetMessage;
use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
use windows_sys::Win32::System::IO::{DeviceIoControl, OVERLAPPED};

use super::handle::IoHandle;
use super::reactor::{packet_due, packet_not_due};
use crate::error::code::{ERROR_INVALID_PARAMETER, ERROR_IO_PENDING, ERROR_PIPE_CONNECTED};
use crate::error::{Error, Result};
use crate::iocp::packet_queued_after_failure;
use crate::util::len_u32;

/// The system call a block is issued with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// `ReadFile` into the buffer.
    Read,
    /// `WriteFile` of the buffer.
    Write,
    /// `DeviceIoControl` with this code: the input, the buffer as output.
    Ioctl(u32),
    /// `FilterGetMessage` into the buffer.
    FilterGetMessage,
    /// `ConnectNamedPipe` (no buffer).
    ConnectPipe,
}

/// How a finished request ended: its NTSTATUS and the bytes transferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) status: NtStatus,
    pub(crate) bytes: usize,
}

/// Whom to tell when the request is over.
enum Notify {
    /// The task awaiting this one request (none yet, or woken already).
    Task(Option<Waker>),
    /// A queue several requests report to (a stream's receives), with this
    /// request's slot.
    Queue(Arc<ReadyQueue>, usize),
}

struct State {
    outcome: Option<Outcome>,
    notify: Notify,
}

/// A request in flight. `#[repr(C)]` with the `OVERLAPPED` first.
#[repr(C)]
pub(crate) struct OpBlock {
    overlapped: UnsafeCell<OVERLAPPED>,
    /// The output (read, IOCTL, message) or the data (write). The kernel
    /// may write into its heap memory while the request is in flight.
    buffer: UnsafeCell<Vec<u8>>,
    /// The IOCTL input: kept until completion because the direct and
    /// NEITHER methods may still read the caller's memory.
    input: UnsafeCell<Vec<u8>>,
    state: Mutex<State>,
}

// SAFETY: the kernel-shared fields (`overlapped`, `buffer`, `input`) are
// touched by Rust code only before the request is issued (by its one
// issuer) and after its outcome is recorded (by whoever takes the buffers,
// once, under `state`'s lock); everything else is behind the mutex.
unsafe impl Send for OpBlock {}
// SAFETY: as above.
unsafe impl Sync for OpBlock {}

/// Blocks alive now (created and not yet freed).
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// How many request blocks are alive: created by a future or stream and not
/// yet freed (a block outlives its future while the kernel still holds it).
/// Once every future and stream is gone and the reactor has dequeued every
/// packet, this is 0: what the leak checks of the tests rely on.
pub fn blocks_alive() -> usize {
    ALIVE.load(Ordering::Acquire)
}

impl Drop for OpBlock {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OpBlock {
    fn new(buffer: Vec<u8>, input: Vec<u8>, notify: Notify) -> Arc<OpBlock> {
        ALIVE.fetch_add(1, Ordering::AcqRel);
        Arc::new(OpBlock {
            // SAFETY: OVERLAPPED is plain data; all-zero is its initial state.
            overlapped: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            buffer: UnsafeCell::new(buffer),
            input: UnsafeCell::new(input),
            state: Mutex::new(State { outcome: None, notify }),
        })
    }

    /// A block whose outcome wakes the task of `waker`.
    pub(crate) fn for_task(buffer: Vec<u8>, input: Vec<u8>, waker: &Waker) -> Arc<OpBlock> {
        OpBlock::new(buffer, input, Notify::Task(Some(waker.clone())))
    }

    /// A block whose outcome is pushed to `queue` as `slot`.
    pub(crate) fn for_queue(buffer: Vec<u8>, queue: &Arc<ReadyQueue>, slot: usize) -> Arc<OpBlock> {
        OpBlock::new(buffer, Vec::new(), Notify::Queue(queue.clone(), slot))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain
        // assignments), so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pointer that identifies this request to the system.
    pub(crate) fn overlapped(&self) -> *mut OVERLAPPED {
        self.overlapped.get()
    }

    /// Called once the packet was dequeued: records the outcome and tells
    /// the waiter, unless the request completed at once (its outcome is
    /// recorded and handed out already). `packet_bytes` is the packet's count.
    pub(crate) fn complete(&self, packet_bytes: u32) {
        if self.lock().outcome.is_some() {
            return;
        }
        // SAFETY: the packet was dequeued, so the kernel is done with the
        // OVERLAPPED; nobody writes it any more.
        let ov = unsafe { &*self.overlapped.get() };
        let (internal, internal_high) = (ov.Internal, ov.InternalHigh);
        // The request's IOSB is authoritative; Wine 8 queues 0 in the packet
        // for requests its server answers itself (see `crate::iocp`).
        let bytes = if internal_high == 0 { packet_bytes as usize } else { internal_high };
        self.complete_with(Outcome { status: NtStatus(internal as u32 as i32), bytes });
    }

    /// The request's call returned without pending (success, or a warning
    /// on a handle that skips the port): records the outcome from the
    /// `OVERLAPPED` (the system wrote it, and the output, before returning,
    /// and writes neither again), without waking a task (its issuer is
    /// polling it right now); a queue is told as usual.
    fn complete_at_once(&self) {
        // SAFETY: the request is over (its call returned without pending);
        // a queued packet, if any, only carries the OVERLAPPED's address.
        let ov = unsafe { &*self.overlapped.get() };
        let outcome = Outcome { status: NtStatus(ov.Internal as u32 as i32), bytes: ov.InternalHigh };
        let queued = {
            let mut st = self.lock();
            if st.outcome.is_some() {
                // Its packet was dequeued first (a handle that does not skip
                // the port): recorded and told already.
                return;
            }
            st.outcome = Some(outcome);
            match &mut st.notify {
                Notify::Task(w) => {
                    *w = None;
                    None
                }
                Notify::Queue(q, slot) => Some((q.clone(), *slot)),
            }
        };
        if let Some((q, slot)) = queued {
            q.push(slot);
        }
    }

    /// Records `outcome` and tells the waiter (outside the lock), unless an
    /// outcome is recorded already (the request completed at once and its
    /// packet came too): each waiter is told once.
    fn complete_with(&self, outcome: Outcome) {
        let (waker, queued) = {
            let mut st = self.lock();
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(outcome);
            match &mut st.notify {
                Notify::Task(w) => (w.take(), None),
                Notify::Queue(q, slot) => (None, Some((q.clone(), *slot))),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        if let Some((q, slot)) = queued {
            q.push(slot);
        }
    }

    /// The outcome, if the request is over; otherwise remembers `waker` to
    /// wake when it is (a task waiting alone).
    pub(crate) fn poll_outcome(&self, waker: &Waker) -> Option<Outcome> {
        let mut st = self.lock();
        if let Some(o) = st.outcome {
            return Some(o);
        }
        if let Notify::Task(slot) = &mut st.notify {
            match slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        None
    }

    /// The outcome, if the request is over.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        self.lock().outcome
    }

    /// Whether the outcome is recorded.
    pub(crate) fn is_done(&self) -> bool {
        self.outcome().is_some()
    }

    /// Takes the buffer out, once the request is over (`None` before).
    pub(crate) fn take_buffer(&self) -> Option<Vec<u8>> {
        let st = self.lock();
        st.outcome?;
        // SAFETY: the outcome is recorded, so the kernel is done with the
        // buffer; the lock keeps two takers apart.
        Some(core::mem::take(unsafe { &mut *self.buffer.get() }))
    }
}

/// Where a set of requests (a stream's receives) report their slots when
/// they finish, and the task to wake.
#[derive(Default)]
pub(crate) struct ReadyQueue {
    inner: Mutex<(VecDeque<usize>, Option<Waker>)>,
}

impl ReadyQueue {
    fn push(&self, slot: usize) {
        let waker = {
            let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            q.0.push_back(slot);
            q.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The next finished slot, if any (no waker remembered).
    pub(crate) fn try_pop(&self) -> Option<usize> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0.pop_front()
    }

    /// The next finished slot, or `None` after remembering `waker`.
    pub(crate) fn pop(&self, waker: &Waker) -> Option<usize> {
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = q.0.pop_front() {
            return Some(slot);
        }
        match &q.1 {
            Some(w) if w.will_wake(waker) => {}
            _ => q.1 = Some(waker.clone()),
        }
        None
    }
}

/// Issues `call` for `block` on `handle`, handing one reference of the
/// block to the kernel.
///
/// # Errors
/// The handle was closed ([`IoHandle::closed_error`], `ERROR_INVALID_HANDLE`),
/// a buffer is longer than 4 GiB (`ERROR_INVALID_PARAMETER`), or the system
/// refused the request at once with an error status (its Win32 code and
/// NTSTATUS; no packet will come). A request that pends, completes at once
/// or fails with a warning status is `Ok`: its outcome comes through the
/// reactor.
pub(crate) fn issue(handle: &IoHandle, block: &Arc<OpBlock>, call: Call, what: impl Fn() -> String) -> Result<()> {
    // SAFETY: not issued yet: this issuer is the only user of the buffers.
    let buf = unsafe { &mut *block.buffer.get() };
    // SAFETY: as above.
    let input = unsafe { &*block.input.get() };
    let (out_p, out_len, in_p, in_len) = {
        let (Some(out_len), Some(in_len)) = (len_u32(buf.len()), len_u32(input.len())) else {
            return Err(Error::new(format!("{}: buffer longer than 4 GiB", what()), ERROR_INVALID_PARAMETER));
        };
        let out_p = if buf.is_empty() { ptr::null_mut() } else { buf.as_mut_ptr() };
        let in_p = if input.is_empty() { ptr::null() } else { input.as_ptr() };
        (out_p, out_len, in_p, in_len)
    };
    handle.with_open(&what, |h| {
        packet_due();
        let raw = Arc::into_raw(block.clone());
        let ov = block.overlapped();
        // SAFETY: `ov` and the buffers live in the block, which the leaked
        // reference keeps alive until the reactor dequeues the packet (or
        // until below, if no packet will come); the handle is open (held by
        // `with_open`) and bound to the reactor.
        let ok = unsafe { issue_call(h, call, ov, out_p, out_len, in_p, in_len) };
        if ok != FALSE {
            // Completed at once (Wine 8 answers the IOCTLs a driver
            // completes in its dispatch routine so): the outcome is the
            // caller's now. Unless the handle skips the port, the packet is
            // still queued and holds the kernel's reference: the block is
            // freed when it is dequeued.
            block.complete_at_once();
            if handle.skips_on_success() {
                packet_not_due();
                // SAFETY: the request did not pend on a handle that skips
                // the port then: no packet refers to the block; take the
                // kernel's reference back.
                drop(unsafe { Arc::from_raw(raw) });
            }
            return Ok(());
        }
        let err = Error::last_with(&what);
        if call == Call::ConnectPipe && err.win32() == ERROR_PIPE_CONNECTED {
            // A client connected before the call: a success, and no packet
            // comes (STATUS_PIPE_CONNECTED is an error status).
            packet_not_due();
            // SAFETY: no packet refers to the block: take the kernel's reference back.
            drop(unsafe { Arc::from_raw(raw) });
            block.complete_with(Outcome { status: NtStatus::STATUS_SUCCESS, bytes: 0 });
            return Ok(());
        }
        if err.win32() == ERROR_IO_PENDING {
            // The outcome comes through the port.
            return Ok(());
        }
        if packet_queued_after_failure(&err) {
            if handle.skips_on_success() {
                // A warning at once on a handle that skips the port for
                // requests that do not pend: Wine 8 queues no packet then,
                // so the outcome is taken now. The kernel's reference stays
                // with the block: should a packet come after all, it frees
                // the block; if none comes, the block is lost, never freed
                // under a packet.
                block.complete_at_once();
            }
            // Otherwise the outcome comes through the port.
            return Ok(());
        }
        packet_not_due();
        // SAFETY: an error status at once: the system queued no packet and
        // holds no reference to the block.
        drop(unsafe { Arc::from_raw(raw) });
        Err(err)
    })
}

/// The system call itself; returns its BOOL and leaves the last error.
///
/// # Safety
/// `h` is open; `ov` and the buffers stay valid until the request is over.
unsafe fn issue_call(h: HANDLE, call: Call, ov: *mut OVERLAPPED, out_p: *mut u8, out_len: u32, in_p: *const u8, in_len: u32) -> i32 {
    match call {
        // SAFETY: (caller) valid handle, buffer and OVERLAPPED.
        Call::Read => unsafe { ReadFile(h, out_p, out_len, ptr::null_mut(), ov) },
        // SAFETY: as above.
        Call::Write => unsafe { WriteFile(h, out_p, out_len, ptr::null_mut(), ov) },
        // SAFETY: as above, for both buffers.
        Call::Ioctl(code) => unsafe { DeviceIoControl(h, code, in_p.cast(), in_len, out_p.cast(), out_len, ptr::null_mut(), ov) },
        Call::FilterGetMessage => {
            // SAFETY: as above; fltlib reports an HRESULT instead of a BOOL.
            let hr = unsafe { FilterGetMessage(h, out_p.cast(), out_len, ov) };
            crate::port::bool_from_hresult(hr)
        }
        // SAFETY: as above (no buffer).
        Call::ConnectPipe => unsafe { ConnectNamedPipe(h, ov) },
    }
}

/// `CancelIoEx` for this block's request, if the handle is still open (a
/// closed handle had all its requests cancelled already). Failure means the
/// request is over or about to be: its packet frees the block either way.
pub(crate) fn cancel(handle: &IoHandle, block: &OpBlock) {
    handle.cancel(block.overlapped());
}
