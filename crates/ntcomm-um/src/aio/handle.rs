//! A handle shared by an async object and its futures, bound to the
//! reactor, that can be closed while futures still refer to it.
//!
//! Closing marks the handle closed and cancels every request on it; the
//! system handle itself is closed when the last reference goes (the object
//! and each future hold one), so a future never issues or cancels through a
//! handle value the system may have reused. A request issued after the close
//! fails with `ERROR_INVALID_HANDLE`, what Windows reports for a closed
//! handle.
#![cfg(windows)]

use core::ptr;
use std::sync::{PoisonError, RwLock};

use windows_sys::Win32::Foundation::{FALSE, HANDLE};
use windows_sys::Win32::Storage::FileSystem::SetFileCompletionNotificationModes;
use windows_sys::Win32::System::IO::{CancelIoEx, OVERLAPPED};

use super::reactor::Reactor;
use crate::device::Device;
use crate::error::code::{ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER};
use crate::error::{Error, Result};

/// An overlapped handle bound to the reactor.
pub(crate) struct IoHandle {
    device: Device,
    /// Held shared while a request is issued or cancelled, exclusively
    /// while closing: a request is either issued before the close (and
    /// cancelled by it) or sees the handle closed.
    closed: RwLock<bool>,
    /// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` is set: a request that does
    /// not pend queues no packet.
    skips_on_success: bool,
}

/// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`.
const SKIP_COMPLETION_PORT_ON_SUCCESS: u8 = 1;

impl IoHandle {
    /// Binds `device` (opened overlapped, not bound to any port) to the
    /// reactor.
    ///
    /// # Errors
    /// The device is not overlapped (`ERROR_INVALID_PARAMETER`), the
    /// reactor could not start, or the handle is bound to another port
    /// already (`CreateIoCompletionPort`'s error).
    pub(crate) fn new(device: Device) -> Result<IoHandle> {
        if !device.overlapped {
            return Err(Error::new(format!("{}: not opened overlapped", device.path), ERROR_INVALID_PARAMETER));
        }
        Reactor::global()?.register(&device)?;
        Ok(IoHandle { device, closed: RwLock::new(false), skips_on_success: false })
    }

    /// As [`new`](Self::new), then asks the system to queue no packet for
    /// requests that complete at once (a device's: the system and Wine 8
    /// agree there; not for ports and pipes, whose Wine emulation reports
    /// some such requests as pending). Without the mode, packets keep
    /// coming for them.
    pub(crate) fn new_skipping(device: Device) -> Result<IoHandle> {
        let mut handle = IoHandle::new(device)?;
        // SAFETY: the handle is open (owned by `handle.device`).
        handle.skips_on_success =
            unsafe { SetFileCompletionNotificationModes(handle.device.handle, SKIP_COMPLETION_PORT_ON_SUCCESS) } != FALSE;
        Ok(handle)
    }

    /// Whether a request that does not pend queues no packet.
    pub(crate) fn skips_on_success(&self) -> bool {
        self.skips_on_success
    }

    /// The path (or port name) the handle was opened with.
    pub(crate) fn path(&self) -> &str {
        &self.device.path
    }

    /// The synchronous device behind the handle (synchronous calls on it
    /// are reaped by their own event, never by the reactor).
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// The error of a request made after [`close`](Self::close).
    pub(crate) fn closed_error(what: &str) -> Error {
        Error::new(format!("{what}: the handle was closed"), ERROR_INVALID_HANDLE)
    }

    /// Runs `f` with the raw handle while it is open.
    ///
    /// # Errors
    /// [`closed_error`](Self::closed_error) once the handle is closed, or
    /// what `f` returns.
    pub(crate) fn with_open<T>(&self, what: impl Fn() -> String, f: impl FnOnce(HANDLE) -> Result<T>) -> Result<T> {
        let closed = self.closed.read().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return Err(IoHandle::closed_error(&what()));
        }
        f(self.device.handle)
    }

    /// Whether [`close`](Self::close) ran.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// `CancelIoEx` for one request, unless the handle is closed (which
    /// cancelled everything). The result does not matter: a request that is
    /// already over has its packet coming.
    pub(crate) fn cancel(&self, ov: *mut OVERLAPPED) {
        let closed = self.closed.read().unwrap_or_else(PoisonError::into_inner);
        if !*closed {
            // SAFETY: the handle is open (the guard keeps `close` out);
            // CancelIoEx only compares `ov` with the pending requests'.
            unsafe { CancelIoEx(self.device.handle, ov) };
        }
    }

    /// Marks the handle closed and cancels every request on it; idempotent.
    pub(crate) fn close(&self) {
        let mut closed = self.closed.write().unwrap_or_else(PoisonError::into_inner);
        if !*closed {
            *closed = true;
            // SAFETY: the handle is still open (closed on drop of the
            // device); a null OVERLAPPED cancels all of this process's
            // requests on it.
            unsafe { CancelIoEx(self.device.handle, ptr::null()) };
        }
    }
}

/// Closes the handle when dropped: held by the objects (not the futures), so
/// the last object closes the handle even while futures still hold it.
pub(crate) struct CloseOnDrop(pub(crate) std::sync::Arc<IoHandle>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}
