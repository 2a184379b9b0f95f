//! The reactor: one completion port for the process and one thread that
//! dequeues its packets and completes the operations they name, waking
//! whichever task awaits them.
//!
//! Every handle the async API opens is bound to this port once, for its
//! whole life (a handle can be bound to one port only). Packets carry
//! [`OP_KEY`] and an [`OpBlock`](super::op::OpBlock) reference that was
//! handed to the kernel when the request was issued; the thread takes that
//! reference back, so a block is freed only once its request is over.
#![cfg(windows)]

use core::ptr;
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
        // SAFETY: creating a new port: no file handle, no existing port; one
        // concurrent thread, the reactor's.
        let port = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, ptr::null_mut(), 0, 1) };
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
        for e in &entries {
            if e.lpCompletionKey != OP_KEY || e.lpOverlapped.is_null() {
                continue;
            }
            // SAFETY: every packet with OP_KEY carries the OVERLAPPED of an
            // `OpBlock` whose reference `op::issue` leaked to the kernel
            // (`Arc::into_raw`, the OVERLAPPED is the block's first field);
            // the packet was dequeued, so the request is over and this takes
            // that reference back exactly once.
            let block = unsafe { Arc::from_raw(e.lpOverlapped.cast::<OpBlock>().cast_const()) };
            block.complete(e.dwNumberOfBytesTransferred);
        }
    }
}
