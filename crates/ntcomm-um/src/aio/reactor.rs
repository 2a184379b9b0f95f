//! The reactor: one completion port for the process and one thread that
//! dequeues its packets and completes the operations they name, waking
//! whichever task awaits them.
//!
//! Every handle the async API opens is bound to this port once, for its
//! whole life (a handle can be bound to one port only). Packets carry
//! [`OP_KEY`] and an [`OpBlock`](super::op::OpBlock) reference that was
//! handed to the kernel when the request was issued; the thread takes that
//! reference back, so a block is freed only once its request is over.
//!
//! # Dequeuing on the polling thread
//!
//! A task whose request pends ([`IoFuture`](super::IoFuture)) while other
//! requests are in flight dequeues what is already queued ([`Reactor::poll_ready`]:
//! `GetQueuedCompletionStatusEx` with a zero timeout, never blocking) and
//! completes those blocks itself. Their tasks are then woken from an
//! executor thread (tokio queues them on that worker, with no hop through
//! the reactor thread); the reactor thread stays for the packets nobody
//! polls for. Each packet is dequeued by exactly one thread, whichever it
//! is, so the kernel's reference is still taken back exactly once.
#![cfg(windows)]

use core::mem::MaybeUninit;
use core::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use windows_sys::Win32::Foundation::{FALSE, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::IO::{CreateIoCompletionPort, GetQueuedCompletionStatusEx, OVERLAPPED_ENTRY};

use super::op::OpBlock;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::util::INFINITE;

/// The completion key of every handle bound to the reactor's port.
pub(crate) const OP_KEY: usize = 0x4e54_494f; // "NTIO"

/// Packets dequeued per `GetQueuedCompletionStatusEx`.
const BATCH: usize = 128;

/// Packets dequeued per zero-timeout dequeue on a polling thread.
const POLL_BATCH: usize = 32;

/// The port's concurrency value: far above the threads that ever dequeue
/// (the reactor and the executor threads that poll), so a polling thread
/// that stays associated with the port never holds a packet back from the
/// reactor thread.
const CONCURRENCY: u32 = 1024;

/// Requests issued whose packet has not been dequeued yet (every one of
/// them, whoever issued it).
static PACKETS_DUE: AtomicUsize = AtomicUsize::new(0);

/// Counts a request whose packet is due (called before issuing it).
pub(crate) fn packet_due() {
    PACKETS_DUE.fetch_add(1, Ordering::AcqRel);
}

/// Uncounts a request issued without a packet to come (it failed at once).
pub(crate) fn packet_not_due() {
    PACKETS_DUE.fetch_sub(1, Ordering::AcqRel);
}

/// Requests whose packet has not been dequeued yet.
pub(crate) fn packets_due() -> usize {
    PACKETS_DUE.load(Ordering::Acquire)
}

/// Packets dequeued by polling threads (not the reactor's) so far.
static BY_POLLERS: AtomicU64 = AtomicU64::new(0);

/// How many completion packets were dequeued by the threads polling the
/// futures rather than by the reactor thread, since the process started (a
/// diagnostic).
pub fn packets_dequeued_by_pollers() -> u64 {
    BY_POLLERS.load(Ordering::Relaxed)
}

/// The process's reactor.
pub(crate) struct Reactor {
    port: usize,
}

impl Reactor {
    /// The reactor, started on first use (its port and thread live as long
    /// as the process). Fails if the port or the thread cannot be created;
    /// every later call reports the same error.
    pub(crate) fn global() -> Result<&'static Reactor> {
        static REACTOR: OnceLock<Result<Reactor>> = OnceLock::new();
        REACTOR.get_or_init(Reactor::start).as_ref().map_err(Error::clone)
    }

    fn start() -> Result<Reactor> {
        // SAFETY: creating a new port: no file handle, no existing port.
        let port = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, ptr::null_mut(), 0, CONCURRENCY) };
        if port.is_null() {
            return Err(Error::last("CreateIoCompletionPort (ntcomm reactor)"));
        }
        let port = port as usize;
        std::thread::Builder::new()
            .name("ntcomm-reactor".into())
            .spawn(move || run(port as HANDLE))
            .map_err(|e| Error::new(format!("spawning the ntcomm reactor thread: {e}"), crate::error::code::ERROR_NOT_ENOUGH_MEMORY))?;
        Ok(Reactor { port })
    }

    /// Binds `device` (opened overlapped) to the reactor's port. Its
    /// completion-port operations of [`crate::iocp`] stay refused (the device
    /// is not marked associated), so every packet of this handle is ours.
    pub(crate) fn register(&self, device: &Device) -> Result<()> {
        // SAFETY: both handles are open; the device's is owned by `device`.
        let port = unsafe { CreateIoCompletionPort(device.handle, self.port as HANDLE, OP_KEY, 0) };
        if port.is_null() {
            return Err(Error::last_with(|| format!("CreateIoCompletionPort {} (ntcomm reactor)", device.path)));
        }
        Ok(())
    }

    /// Dequeues the packets already queued, without waiting, and completes
    /// their blocks on this thread (waking their tasks from here). Does
    /// nothing unless at least `more_than` requests are due, so a lone
    /// request does not pay a system call that cannot find anything.
    pub(crate) fn poll_ready(&self, more_than: usize) {
        if packets_due() <= more_than {
            return;
        }
        let mut entries = [MaybeUninit::<OVERLAPPED_ENTRY>::uninit(); POLL_BATCH];
        let mut removed = 0u32;
        // SAFETY: `entries` has room for POLL_BATCH entries; the call fills
        // the first `removed`. Zero timeout: it never blocks.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(self.port as HANDLE, entries.as_mut_ptr().cast(), POLL_BATCH as u32, &mut removed, 0, FALSE)
        };
        if ok == FALSE {
            return; // WAIT_TIMEOUT: nothing queued
        }
        let n = (removed as usize).min(POLL_BATCH);
        // SAFETY: the system initialised the first `n` entries.
        let got = unsafe { core::slice::from_raw_parts(entries.as_ptr().cast::<OVERLAPPED_ENTRY>(), n) };
        BY_POLLERS.fetch_add(n as u64, Ordering::Relaxed);
        dispatch(got);
    }
}

/// Completes the blocks of dequeued packets.
fn dispatch(entries: &[OVERLAPPED_ENTRY]) {
    for e in entries {
        if e.lpCompletionKey != OP_KEY || e.lpOverlapped.is_null() {
            continue;
        }
        PACKETS_DUE.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: every packet with OP_KEY carries the OVERLAPPED of an
        // `OpBlock` whose reference `op::issue` leaked to the kernel
        // (`Arc::into_raw`, the OVERLAPPED is the block's first field);
        // the packet was dequeued (by this thread only), so the request is
        // over and this takes that reference back exactly once.
        let block = unsafe { Arc::from_raw(e.lpOverlapped.cast::<OpBlock>().cast_const()) };
        block.complete(e.dwNumberOfBytesTransferred);
    }
}

/// The reactor thread: dequeue, complete, repeat, for the life of the
/// process.
fn run(port: HANDLE) {
    let mut entries: Vec<OVERLAPPED_ENTRY> = Vec::with_capacity(BATCH);
    loop {
        entries.clear();
        let mut removed = 0u32;
        // SAFETY: `entries` has room for BATCH entries; the call fills the
        // first `removed`. Waits forever, not alertable.
        let ok = unsafe { GetQueuedCompletionStatusEx(port, entries.as_mut_ptr(), BATCH as u32, &mut removed, INFINITE, FALSE) };
        if ok == FALSE {
            // Only a closed port fails an infinite wait, and ours is never
            // closed; back off rather than spin if the system says otherwise.
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        // SAFETY: the system initialised the first `removed` entries.
        unsafe { entries.set_len((removed as usize).min(BATCH)) };
        dispatch(&entries);
    }
}
