//! System threads and work items, with orderly shutdown.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::device::Device;
use crate::sync::{Event, EventKind, SpinLock};
use crate::{sys, Error};
use ntcomm_proto::NtStatus;

/// A kernel thread in the system process running a Rust closure. It is
/// joined on drop, so a driver cannot unload while its thread still runs.
///
/// Joining waits: drop a `SystemThread` only at `PASSIVE_LEVEL`, never under
/// a [`SpinLock`]. Keep threads in a [`ThreadSet`], which joins them
/// outside its lock.
pub struct SystemThread {
    handle: sys::HANDLE,
    /// Set by the thread once its closure has returned, so that
    /// [`is_finished`](Self::is_finished) needs no wait and no `Zw*` call.
    finished: Arc<AtomicBool>,
}

// SAFETY: a thread handle may be waited on and closed from any thread.
unsafe impl Send for SystemThread {}
// SAFETY: `&SystemThread` offers nothing but the handle value and a flag.
unsafe impl Sync for SystemThread {}

struct ThreadCtx<F> {
    f: F,
    finished: Arc<AtomicBool>,
}

unsafe extern "system" fn thread_start<F: FnOnce() + Send + 'static>(ctx: *mut c_void) {
    // SAFETY: `spawn` leaked exactly this box for us.
    unsafe { run_thread::<F>(ctx) };
    // Nothing may be alive here: PsTerminateSystemThread does not return,
    // so a local still in scope would never be dropped (its pool leaks).
    // SAFETY: ending the current system thread, as the routine must.
    unsafe { sys::PsTerminateSystemThread(0) };
}

/// # Safety
/// `ctx` is the box `spawn` leaked for this thread.
unsafe fn run_thread<F: FnOnce() + Send + 'static>(ctx: *mut c_void) {
    // SAFETY: per the contract; the box is freed when this function returns.
    let ctx = unsafe { Box::from_raw(ctx as *mut ThreadCtx<F>) };
    let ThreadCtx { f, finished } = *ctx;
    f();
    finished.store(true, Ordering::Release);
}

impl SystemThread {
    /// Starts `f` on a new system thread. `PASSIVE_LEVEL`.
    pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<Self, Error> {
        let finished = Arc::new(AtomicBool::new(false));
        let ctx = Box::into_raw(Box::new(ThreadCtx { f, finished: finished.clone() }));
        let mut attrs = sys::OBJECT_ATTRIBUTES {
            Length: core::mem::size_of::<sys::OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: core::ptr::null_mut(),
            ObjectName: core::ptr::null_mut(),
            Attributes: sys::OBJ_KERNEL_HANDLE,
            SecurityDescriptor: core::ptr::null_mut(),
            SecurityQualityOfService: core::ptr::null_mut(),
        };
        let mut handle = core::ptr::null_mut();
        // SAFETY: valid out-pointer and attributes; the start routine takes
        // ownership of `ctx` once the thread runs.
        let status = unsafe {
            sys::PsCreateSystemThread(
                &mut handle,
                sys::THREAD_ALL_ACCESS,
                &mut attrs,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                Some(thread_start::<F>),
                ctx.cast(),
            )
        };
        if let Err(e) = Error::check(status, "PsCreateSystemThread") {
            // SAFETY: the thread was not created, so the box is still ours.
            drop(unsafe { Box::from_raw(ctx) });
            return Err(e);
        }
        Ok(Self { handle, finished })
    }

    /// Whether the thread's closure has returned, so that joining it waits
    /// only for its last instructions. Reads a flag: callable at any IRQL up
    /// to `DISPATCH_LEVEL`, under a lock.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Waits for the thread to end and closes its handle. `PASSIVE_LEVEL`.
    pub fn join(self) {
        drop(self);
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        // SAFETY: our own handle, waited on once here...
        unsafe { sys::ZwWaitForSingleObject(self.handle, 0, core::ptr::null_mut()) };
        // SAFETY: ...and closed once, after the wait.
        unsafe { sys::ZwClose(self.handle) };
    }
}

/// The system threads a driver keeps until they finish.
///
/// Its lock is a [`SpinLock`]; finished threads are moved out and the lock
/// released before any of them is joined, so no join through a `ThreadSet`
/// can run at `DISPATCH_LEVEL`.
pub struct ThreadSet {
    threads: SpinLock<Vec<SystemThread>>,
}

impl ThreadSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self { threads: SpinLock::new(Vec::new()) }
    }

    /// Keeps `thread` until it is reaped or joined, after joining the
    /// finished ones. If no memory is left to keep it, `thread` is joined
    /// at once (this waits for it). `PASSIVE_LEVEL`.
    pub fn push(&self, thread: SystemThread) {
        self.reap();
        let refused = self.threads.with(|all| match all.try_reserve(1) {
            Ok(()) => {
                all.push(thread);
                None
            }
            Err(_) => Some(thread),
        });
        if let Some(t) = refused {
            t.join();
        }
    }

    /// Joins the threads that have finished and returns how many; those
    /// still running stay. `PASSIVE_LEVEL`.
    pub fn reap(&self) -> usize {
        let (done, emptied) = self.threads.with(|all| {
            let mut done = Vec::new();
            let mut i = 0;
            while let Some(t) = all.get(i) {
                if t.is_finished() && done.try_reserve(1).is_ok() {
                    done.push(all.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            // No pool kept while no thread is (drivers count their pool).
            (done, all.is_empty().then(|| core::mem::take(all)))
        });
        let n = done.len();
        drop(done);
        drop(emptied);
        n
    }

    /// Takes every thread out and joins each; the caller has asked them to
    /// stop. `PASSIVE_LEVEL`.
    pub fn join_all(&self) {
        drop(self.threads.take());
    }

    /// Threads kept now, finished or not.
    pub fn len(&self) -> usize {
        self.threads.with(|all| all.len())
    }

    /// Whether no thread is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ThreadSet {
    fn default() -> Self {
        Self::new()
    }
}

/// A stop request shared between a driver and its worker threads.
pub struct StopSignal {
    stopping: AtomicBool,
    wake: Event,
}

impl StopSignal {
    /// Not stopping yet.
    pub fn new() -> Self {
        Self { stopping: AtomicBool::new(false), wake: Event::new(EventKind::Synchronization, false) }
    }
    /// Asks workers to stop and wakes one waiting in [`wait`](Self::wait).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.set();
    }
    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
    /// Wakes a worker without stopping it (new work arrived).
    pub fn notify(&self) {
        self.wake.set();
    }
    /// Sleeps until notified, stopped, or `timeout`; returns
    /// `!is_stopping()`.
    pub fn wait(&self, timeout: Option<core::time::Duration>) -> bool {
        if !self.is_stopping() {
            self.wake.wait(timeout);
        }
        !self.is_stopping()
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

static WORK_ITEMS: AtomicUsize = AtomicUsize::new(0);

struct WorkCtx<F> {
    item: *mut c_void,
    f: F,
}

unsafe extern "system" fn work_routine<F: FnOnce() + Send + 'static>(_dev: *mut sys::DEVICE_OBJECT, ctx: *mut c_void) {
    // SAFETY: `queue_work_item` leaked exactly this box for us.
    let ctx = unsafe { Box::from_raw(ctx as *mut WorkCtx<F>) };
    let WorkCtx { item, f } = *ctx;
    f();
    // SAFETY: the item is ours and no longer queued.
    unsafe { sys::IoFreeWorkItem(item) };
    WORK_ITEMS.fetch_sub(1, Ordering::AcqRel);
}

/// Runs `f` once on a system worker thread (`IoQueueWorkItem`). The device
/// is kept referenced by the I/O manager until it has run; the driver's
/// unload waits for every queued item (see [`work_items_outstanding`]).
pub fn queue_work_item<F: FnOnce() + Send + 'static>(device: &Device, f: F) -> Result<(), Error> {
    // SAFETY: a live device object of this driver.
    let item = unsafe { sys::IoAllocateWorkItem(device.raw()) };
    if item.is_null() {
        return Err(Error::new(NtStatus::STATUS_INSUFFICIENT_RESOURCES, "IoAllocateWorkItem"));
    }
    WORK_ITEMS.fetch_add(1, Ordering::AcqRel);
    let ctx = Box::into_raw(Box::new(WorkCtx { item, f }));
    // SAFETY: the routine takes ownership of `ctx` and frees `item`.
    unsafe { sys::IoQueueWorkItem(item, Some(work_routine::<F>), sys::DELAYED_WORK_QUEUE, ctx.cast()) };
    Ok(())
}

/// Work items queued and not yet finished.
pub fn work_items_outstanding() -> usize {
    WORK_ITEMS.load(Ordering::Acquire)
}
