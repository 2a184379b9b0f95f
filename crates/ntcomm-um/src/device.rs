//! An open device handle and its synchronous I/O: `ReadFile`, `WriteFile`,
//! `DeviceIoControl` (typed and raw).
//!
//! Synchronous calls work on both kinds of handle. On an overlapped handle
//! they issue the request with a per-thread event and wait for it, so one
//! handle can serve blocking calls and completion-port operations at once.
#![cfg(windows)]

use core::ptr;
use std::cell::RefCell;
use std::os::windows::io::{AsRawHandle, RawHandle};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ntcomm_proto::Ioctl;
use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, FALSE, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, TRUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::code::{ERROR_INVALID_DATA, ERROR_INVALID_PARAMETER, ERROR_IO_PENDING};
use crate::error::{Error, Result};
use crate::util::{len_u32, to_wide_nul};

/// The access a [`Device`] handle is opened with. IOCTL codes carry the
/// access they need ([`ntcomm_proto::Access`]); the I/O manager refuses a code
/// whose access the handle lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceAccess {
    /// `GENERIC_READ | GENERIC_WRITE`, what [`Device::open`] uses.
    ReadWrite,
    /// `GENERIC_READ` only.
    Read,
    /// `GENERIC_WRITE` only.
    Write,
    /// No data access: enough for `FILE_ANY_ACCESS` codes only.
    None,
}

impl DeviceAccess {
    fn mask(self) -> u32 {
        match self {
            DeviceAccess::ReadWrite => GENERIC_READ | GENERIC_WRITE,
            DeviceAccess::Read => GENERIC_READ,
            DeviceAccess::Write => GENERIC_WRITE,
            DeviceAccess::None => 0,
        }
    }
}

/// An open handle to a device (or any file), closed on drop.
///
/// Dropping a device cancels its in-flight completion-port operations
/// (`CancelIoEx(handle, NULL)`; closing a handle alone does not cancel on
/// Windows) and then closes the handle. Those operations still complete
/// through their [`CompletionPort`](crate::iocp::CompletionPort), which is
/// what frees their buffers: they outlive the device.
#[derive(Debug)]
pub struct Device {
    pub(crate) handle: HANDLE,
    pub(crate) overlapped: bool,
    /// Set once the handle is bound to a completion port: only then can
    /// `start_*` operations be reclaimed.
    pub(crate) associated: AtomicBool,
    /// The path it was opened with, for error contexts (shared with ops).
    pub(crate) path: Arc<str>,
}

// SAFETY: a file handle is a process-wide kernel object reference; every
// operation here may be issued from any thread, concurrently (the I/O manager
// serialises what it must).
unsafe impl Send for Device {}
// SAFETY: as above; `&Device` only gives access to thread-safe system calls.
unsafe impl Sync for Device {}

impl Device {
    /// Opens `path` (e.g. `\\.\MyDevice`) for synchronous I/O with read and
    /// write access.
    pub fn open(path: &str) -> Result<Device> {
        Device::open_with(path, DeviceAccess::ReadWrite, false)
    }

    /// Opens `path` with `FILE_FLAG_OVERLAPPED`, for completion-port
    /// operations (see [`crate::iocp`]); synchronous calls still work.
    pub fn open_overlapped(path: &str) -> Result<Device> {
        Device::open_with(path, DeviceAccess::ReadWrite, true)
    }

    /// Opens `path` with the given access, overlapped or not.
    pub fn open_with(path: &str, access: DeviceAccess, overlapped: bool) -> Result<Device> {
        let what = || format!("CreateFileW {path}");
        let wide = to_wide_nul(path).ok_or_else(|| Error::new(format!("{}: path holds a NUL", what()), ERROR_INVALID_PARAMETER))?;
        let flags = if overlapped { FILE_FLAG_OVERLAPPED } else { 0 };
        // SAFETY: `wide` is NUL-terminated and outlives the call; no security
        // attributes and no template handle.
        let handle = unsafe {
            CreateFileW(
                wide.as_ptr(),
                access.mask(),
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                ptr::null(),
                OPEN_EXISTING,
                flags,
                ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(Error::last_with(what));
        }
        Ok(Device { handle, overlapped, associated: AtomicBool::new(false), path: path.into() })
    }

    /// Wraps a handle another API opened (e.g. a Filter Manager port), so it
    /// gets the same synchronous and completion-port machinery.
    pub(crate) fn from_handle(handle: HANDLE, path: &str, overlapped: bool) -> Device {
        Device { handle, overlapped, associated: AtomicBool::new(false), path: path.into() }
    }

    /// The path this device was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the handle was opened with `FILE_FLAG_OVERLAPPED`.
    pub fn is_overlapped(&self) -> bool {
        self.overlapped
    }

    /// `ReadFile`: reads up to `buf.len()` bytes (at most `u32::MAX`) and
    /// returns how many arrived.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let p = buf.as_mut_ptr();
        self.sync_io(
            || format!("ReadFile on {}", self.path),
            // SAFETY: `p` is writable for `len` bytes for the whole call,
            // which `sync_io` does not return from before the I/O completes.
            |ov, n| unsafe { ReadFile(self.handle, p, len, n, ov) },
        )
    }

    /// `WriteFile`: writes up to `data.len()` bytes (at most `u32::MAX`) and
    /// returns how many the device took.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        let len = data.len().min(u32::MAX as usize) as u32;
        let p = data.as_ptr();
        self.sync_io(
            || format!("WriteFile on {}", self.path),
            // SAFETY: `p` is readable for `len` bytes until the I/O completes.
            |ov, n| unsafe { WriteFile(self.handle, p, len, n, ov) },
        )
    }

    /// A typed IOCTL: sends `input`, receives into `output`, returns the
    /// number of output bytes the driver produced.
    ///
    /// Before any system call, the input length is checked against
    /// `ioctl.input` and the output buffer against `ioctl.output.min` (a
    /// larger output buffer is fine); a violation fails with
    /// [`ErrorKind::InvalidParameter`](crate::ErrorKind::InvalidParameter).
    /// Use [`Device::ioctl_raw`] to send what the descriptor forbids.
    pub fn ioctl<I, O>(&self, ioctl: &Ioctl<I, O>, input: &I, output: &mut O) -> Result<usize>
    where
        I: IntoBytes + Immutable + ?Sized,
        O: FromBytes + IntoBytes + ?Sized,
    {
        let input = input.as_bytes();
        let output = output.as_mut_bytes();
        check_lengths(ioctl, input.len(), output.len(), &self.path)?;
        self.device_io_control(ioctl.code.0, input, output, || ioctl_context(ioctl.name, ioctl.code.0, &self.path))
    }

    /// A typed IOCTL that takes no input and returns one `O`; fails with
    /// [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) if the driver
    /// returned fewer than `size_of::<O>()` bytes.
    pub fn ioctl_get<O>(&self, ioctl: &Ioctl<(), O>) -> Result<O>
    where
        O: FromBytes + IntoBytes + Immutable,
    {
        let mut out = O::new_zeroed();
        let n = self.ioctl(ioctl, &(), &mut out)?;
        let want = core::mem::size_of::<O>();
        if n < want {
            return Err(Error::new(
                format!("{}: driver returned {n} of {want} bytes", ioctl_context(ioctl.name, ioctl.code.0, &self.path)),
                ERROR_INVALID_DATA,
            ));
        }
        Ok(out)
    }

    /// `DeviceIoControl` with any code and buffers, unchecked. Returns the
    /// number of output bytes.
    pub fn ioctl_raw(&self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        self.device_io_control(code, input, output, || ioctl_context("", code, &self.path))
    }

    /// `CancelIoEx(handle, NULL)`: asks the driver to cancel every request
    /// this process has in flight on the handle, from any thread. Outcomes
    /// arrive as usual (typically [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)).
    /// Windows fails with [`ErrorKind::NotFoundItem`](crate::ErrorKind::NotFoundItem)
    /// if nothing was in flight; Wine 8 returns success then.
    pub fn cancel_all(&self) -> Result<()> {
        // SAFETY: a null OVERLAPPED means "all requests on this handle".
        if unsafe { CancelIoEx(self.handle, ptr::null()) } == FALSE {
            return Err(Error::last_with(|| format!("CancelIoEx on {}", self.path)));
        }
        Ok(())
    }

    fn device_io_control(&self, code: u32, input: &[u8], output: &mut [u8], what: impl Fn() -> String) -> Result<usize> {
        let (Some(in_len), Some(out_len)) = (len_u32(input.len()), len_u32(output.len())) else {
            return Err(Error::new(format!("{}: buffer longer than 4 GiB", what()), ERROR_INVALID_PARAMETER));
        };
        // Empty slices have dangling pointers: pass null as the API expects.
        let in_p = if input.is_empty() { ptr::null() } else { input.as_ptr().cast() };
        let out_p = if output.is_empty() { ptr::null_mut() } else { output.as_mut_ptr().cast() };
        self.sync_io(
            what,
            // SAFETY: the buffers are valid for their lengths until the I/O
            // completes, which `sync_io` waits for.
            |ov, n| unsafe { DeviceIoControl(self.handle, code, in_p, in_len, out_p, out_len, n, ov) },
        )
    }

    /// Runs one synchronous request. `call(overlapped, bytes)` issues it; on
    /// an overlapped handle this waits for its completion.
    pub(crate) fn sync_io(&self, what: impl Fn() -> String, call: impl FnOnce(*mut OVERLAPPED, *mut u32) -> i32) -> Result<usize> {
        let mut n = 0u32;
        if !self.overlapped {
            return if call(ptr::null_mut(), &mut n) != FALSE { Ok(n as usize) } else { Err(Error::last_with(what)) };
        }
        with_thread_event(|event| {
            let event = event.map_err(|e| e.prefixed(what()))?;
            // SAFETY: OVERLAPPED is plain data; all-zero is its initial state.
            let mut ov: OVERLAPPED = unsafe { core::mem::zeroed() };
            // The low bit keeps the completion off any port the handle is
            // bound to: this request is reaped here, not by a port's waiter.
            ov.hEvent = (event as usize | 1) as HANDLE;
            if call(&mut ov, &mut n) == FALSE {
                // SAFETY: no preconditions.
                if unsafe { GetLastError() } != ERROR_IO_PENDING {
                    return Err(Error::last_with(what));
                }
            }
            // SAFETY: `ov` is the OVERLAPPED of the request just issued on
            // this handle; waiting (TRUE) returns only once it has completed,
            // so `ov` and the caller's buffers are no longer used afterwards.
            if unsafe { GetOverlappedResult(self.handle, &ov, &mut n, TRUE) } == FALSE {
                // The kernel left the request's NTSTATUS in `Internal`.
                return Err(Error::last_with(what).with_status_from(ov.Internal as u32 as i32));
            }
            Ok(n as usize)
        })
    }
}

impl AsRawHandle for Device {
    /// The handle, for calls this crate does not wrap. Issuing overlapped I/O
    /// through it on a handle bound to a completion port is not allowed: the
    /// port's waiter takes every packet for a `crate::iocp` operation.
    fn as_raw_handle(&self) -> RawHandle {
        self.handle
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // Only overlapped requests can still be in flight here: a synchronous
        // call borrows the device until it returns.
        if self.overlapped {
            // SAFETY: our own handle; the result (often "nothing to cancel")
            // does not matter.
            unsafe { CancelIoEx(self.handle, ptr::null()) };
        }
        // SAFETY: we own the handle and nothing uses it after this.
        unsafe { CloseHandle(self.handle) };
    }
}

/// `DeviceIoControl NAME on PATH`, or the hex code when there is no name.
pub(crate) fn ioctl_context(name: &str, code: u32, path: &str) -> String {
    if name.is_empty() {
        format!("DeviceIoControl {code:#010x} on {path}")
    } else {
        format!("DeviceIoControl {name} on {path}")
    }
}

/// The size rules of a typed IOCTL, checked on the client before sending.
pub(crate) fn check_lengths<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, input: usize, output: usize, path: &str) -> Result<()> {
    let fail =
        |what: String| Err(Error::new(format!("{}: {what}", ioctl_context(ioctl.name, ioctl.code.0, path)), ERROR_INVALID_PARAMETER));
    let in_len = u32::try_from(input).unwrap_or(u32::MAX);
    if input > u32::MAX as usize || ioctl.input.check(in_len).is_err() {
        return fail(format!("input is {input} bytes, accepted {}..={}", ioctl.input.min, ioctl.input.max));
    }
    if output < ioctl.output.min as usize {
        return fail(format!("output buffer is {output} bytes, needs at least {}", ioctl.output.min));
    }
    Ok(())
}

/// An event handle owned by a thread, closed when the thread exits.
struct ThreadEvent(HANDLE);

impl Drop for ThreadEvent {
    fn drop(&mut self) {
        // SAFETY: the event was created by this thread's slot and is not in
        // use: synchronous calls finish before the thread can exit.
        unsafe { CloseHandle(self.0) };
    }
}

thread_local! {
    static EVENT: RefCell<Option<ThreadEvent>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's manual-reset event for synchronous requests
/// on overlapped handles (created on first use; one per thread avoids two
/// system calls per request). A synchronous request blocks its thread, so the
/// event is never shared by two requests.
fn with_thread_event<R>(f: impl FnOnce(Result<HANDLE>) -> R) -> R {
    let event = EVENT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(e) = slot.as_ref() {
            return Ok(e.0);
        }
        // SAFETY: an anonymous manual-reset event, initially non-signalled.
        let h = unsafe { CreateEventW(ptr::null(), TRUE, FALSE, ptr::null()) };
        if h.is_null() {
            return Err(Error::last_with(|| "CreateEventW"));
        }
        *slot = Some(ThreadEvent(h));
        Ok(h)
    });
    f(event)
}
