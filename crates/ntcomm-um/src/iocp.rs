//! Overlapped operations reaped through an I/O completion port, with
//! ownership of their buffers handed to the kernel and back.
//!
//! Each operation is a heap block whose first field is its `OVERLAPPED`. The
//! block (and the buffers it owns) is leaked while the request is in flight,
//! since the kernel may write into it at any time, and is reclaimed exactly once:
//! by the [`CompletionPort`] waiter that dequeues its completion packet, or by
//! `start_*` itself when the request fails before any packet could be queued.
//!
//! The system queues a packet for every request that was issued, even one
//! that completes at once, and one that fails at once with a warning status
//! (e.g. `STATUS_BUFFER_OVERFLOW`, `STATUS_DEVICE_BUSY`); only an immediate
//! error status (`NT_ERROR`) queues nothing. `start_*` follows that rule to
//! decide who frees the block. `SetFileCompletionNotificationModes` is never
//! used, so "completed at once" always means "a packet is coming".
//!
//! If a port is dropped while operations are still in flight, their packets
//! are never dequeued and their blocks leak: memory is lost, never reused
//! under the kernel's feet.
#![cfg(windows)]
// multiple_unsafe_ops_per_block: each block issues one overlapped call on fields of one live `Op`; the field projections and the call share the liveness argument in the SAFETY comment.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ptr;
use core::time::Duration;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ntcomm_proto::{ControlCode, Ioctl, NtStatus};
use windows_sys::Win32::Foundation::{CloseHandle, FALSE, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::IO::{
    CancelIoEx, CreateIoCompletionPort, DeviceIoControl, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus, OVERLAPPED,
    OVERLAPPED_ENTRY,
};

use crate::device::{check_lengths, ioctl_context, Device};
use crate::error::code::{ERROR_INVALID_PARAMETER, ERROR_IO_PENDING, ERROR_MORE_DATA, WAIT_TIMEOUT};
use crate::error::{Error, Result};
use crate::util::{len_u32, timeout_ms};

/// What an operation was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Device::start_read`].
    Read,
    /// [`Device::start_write`].
    Write,
    /// [`Device::start_ioctl`] or [`Device::start_ioctl_raw`].
    Ioctl(ControlCode),
    /// [`CompletionPort::post`].
    Posted,
    /// [`PortClient::start_get_message`](crate::port::PortClient::start_get_message).
    PortMessage,
}

/// Identifies an in-flight operation, for [`Device::cancel`]. It is the
/// address of the operation's `OVERLAPPED`, which is reused once the
/// operation has been reclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId(usize);

/// One finished operation, as dequeued from a [`CompletionPort`].
#[derive(Debug)]
pub struct Completion {
    /// The caller's tag given to `start_*` or [`CompletionPort::post`].
    pub tag: u64,
    /// The completion key of the device (from [`CompletionPort::associate`]),
    /// or the key given to [`CompletionPort::post`].
    pub key: usize,
    /// What the operation was.
    pub kind: OpKind,
    /// Bytes transferred, or the failure: its NTSTATUS (from the request's
    /// `OVERLAPPED.Internal`) and the Win32 code the system maps it to.
    pub result: Result<usize>,
    /// The operation's buffer, handed back: for reads and IOCTLs, the output
    /// truncated to the bytes transferred (kept on failure too, e.g. the
    /// partial data of `STATUS_BUFFER_OVERFLOW`); for writes, the data sent;
    /// empty for posted packets.
    pub buffer: Vec<u8>,
}

/// An operation in flight. `#[repr(C)]` with the OVERLAPPED first, so the
/// pointer the port hands back is the pointer to the whole block.
#[repr(C)]
struct Op {
    overlapped: OVERLAPPED,
    tag: u64,
    kind: OpKind,
    /// IOCTL name for error contexts ("" when raw).
    name: &'static str,
    /// Device path for error contexts (empty for posted packets).
    path: Option<Arc<str>>,
    /// Read/IOCTL output, or write data.
    buffer: Vec<u8>,
    /// IOCTL input: kept alive until completion because direct and NEITHER
    /// methods may still refer to the caller's memory.
    input: Vec<u8>,
}

impl Op {
    fn new(kind: OpKind, tag: u64, name: &'static str, path: Option<Arc<str>>, buffer: Vec<u8>, input: Vec<u8>) -> Box<Op> {
        Box::new(Op {
            // SAFETY: OVERLAPPED is plain data; all-zero is its initial state.
            overlapped: unsafe { core::mem::zeroed() },
            tag,
            kind,
            name,
            path,
            buffer,
            input,
        })
    }

    fn context(&self) -> String {
        let path = self.path.as_deref().unwrap_or("");
        let what = match self.kind {
            OpKind::Read => format!("ReadFile on {path}"),
            OpKind::Write => format!("WriteFile on {path}"),
            OpKind::Ioctl(code) => ioctl_context(self.name, code.0, path),
            OpKind::Posted => "posted packet".to_owned(),
            OpKind::PortMessage => format!("FilterGetMessage on {path}"),
        };
        format!("{what} (tag {})", self.tag)
    }

    /// Turns a dequeued op into its completion.
    fn finish(mut self, key: usize, bytes: u32) -> Completion {
        let status = self.overlapped.Internal as u32 as i32;
        // The request's IOSB (`InternalHigh`) is authoritative; the packet's
        // count is the same on Windows, but Wine 8 queues 0 for requests its
        // server answers itself (e.g. FSCTL_PIPE_PEEK). Posted packets have
        // only the packet's count.
        let bytes = match self.overlapped.InternalHigh {
            0 => bytes as usize,
            n => n,
        };
        let result = if status >= 0 { Ok(bytes) } else { Err(Error::from_ntstatus(self.context(), NtStatus(status))) };
        if matches!(self.kind, OpKind::Read | OpKind::Ioctl(_) | OpKind::PortMessage) {
            self.buffer.truncate(bytes);
        }
        Completion { tag: self.tag, key, kind: self.kind, result, buffer: core::mem::take(&mut self.buffer) }
    }
}

/// An I/O completion port: operations started on associated devices finish
/// here, and [`CompletionPort::wait`] hands their buffers back.
///
/// Several threads may wait on one port at once; each completion goes to
/// exactly one of them.
#[derive(Debug)]
pub struct CompletionPort {
    handle: HANDLE,
}

// SAFETY: a completion port handle may be used from any thread concurrently;
// each packet is dequeued by exactly one waiter, so each op is reclaimed once.
unsafe impl Send for CompletionPort {}
// SAFETY: as above.
unsafe impl Sync for CompletionPort {}

impl CompletionPort {
    /// Creates a port that lets as many threads run as there are processors.
    pub fn new() -> Result<CompletionPort> {
        // SAFETY: creating a new port: no file handle, no existing port.
        let handle = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, ptr::null_mut(), 0, 0) };
        if handle.is_null() {
            return Err(Error::last("CreateIoCompletionPort"));
        }
        Ok(CompletionPort { handle })
    }

    /// Binds an overlapped device to this port: completions of its `start_*`
    /// operations arrive here carrying `key`. A handle can be bound to one
    /// port only, once, for its whole life.
    pub fn associate(&self, device: &Device, key: usize) -> Result<()> {
        if !device.overlapped {
            return Err(Error::new(
                format!("CreateIoCompletionPort {}: device not opened overlapped", device.path),
                ERROR_INVALID_PARAMETER,
            ));
        }
        // SAFETY: both handles are open and owned by their wrappers.
        let port = unsafe { CreateIoCompletionPort(device.handle, self.handle, key, 0) };
        if port.is_null() {
            return Err(Error::last_with(|| format!("CreateIoCompletionPort {}", device.path)));
        }
        device.associated.store(true, Ordering::Release);
        Ok(())
    }

    /// Queues a packet of our own (e.g. to wake a waiter for shutdown); it
    /// arrives as a [`Completion`] of kind [`OpKind::Posted`] with `Ok(0)`.
    pub fn post(&self, key: usize, tag: u64) -> Result<()> {
        let op = Box::into_raw(Op::new(OpKind::Posted, tag, "", None, Vec::new(), Vec::new()));
        // SAFETY: `op` is a live heap block with the OVERLAPPED first; on
        // success the waiter that dequeues it frees it.
        if unsafe { PostQueuedCompletionStatus(self.handle, 0, key, op.cast()) } == FALSE {
            let err = Error::last("PostQueuedCompletionStatus");
            // SAFETY: the post failed, so no packet refers to `op`.
            drop(unsafe { Box::from_raw(op) });
            return Err(err);
        }
        Ok(())
    }

    /// Waits for one completion. `None` timeout waits forever; on timeout
    /// returns `Ok(None)`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<Completion>> {
        let mut out = Vec::with_capacity(1);
        self.wait_many(&mut out, 1, timeout)?;
        Ok(out.pop())
    }

    /// Waits for at least one completion and dequeues up to `max` of those
    /// available (`GetQueuedCompletionStatusEx`), appending them to `out`.
    /// Returns how many were appended: 0 on timeout.
    pub fn wait_many(&self, out: &mut Vec<Completion>, max: usize, timeout: Option<Duration>) -> Result<usize> {
        let max = max.clamp(1, u32::MAX as usize);
        let mut entries: Vec<OVERLAPPED_ENTRY> = Vec::with_capacity(max);
        let mut removed = 0u32;
        // SAFETY: `entries` has room for `max` entries; the call fills the
        // first `removed` of them. Not alertable.
        let ok =
            unsafe { GetQueuedCompletionStatusEx(self.handle, entries.as_mut_ptr(), max as u32, &mut removed, timeout_ms(timeout), FALSE) };
        if ok == FALSE {
            let err = Error::last("GetQueuedCompletionStatusEx");
            return if err.win32() == WAIT_TIMEOUT { Ok(0) } else { Err(err) };
        }
        let removed = (removed as usize).min(max);
        // SAFETY: the system initialised the first `removed` entries.
        unsafe { entries.set_len(removed) };
        let before = out.len();
        for e in entries {
            if e.lpOverlapped.is_null() {
                // Not ours: only this crate can post to the port, and it
                // always posts an op. Nothing to reclaim.
                continue;
            }
            // SAFETY: every packet on this port carries an `Op` leaked by
            // `start_*` or `post` (the port is private and devices bound to
            // it are only driven through this crate); the packet was
            // dequeued, so the request is over and this is the only owner.
            let op = unsafe { Box::from_raw(e.lpOverlapped.cast::<Op>()) };
            out.push((*op).finish(e.lpCompletionKey, e.dwNumberOfBytesTransferred));
        }
        Ok(out.len() - before)
    }
}

impl Drop for CompletionPort {
    fn drop(&mut self) {
        // SAFETY: we own the handle. Ops still in flight leak (module docs).
        unsafe { CloseHandle(self.handle) };
    }
}

impl Device {
    /// Starts a `ReadFile` of up to `buf.len()` bytes into `buf`. The buffer
    /// comes back in the [`Completion`], truncated to the bytes read.
    ///
    /// The device must be overlapped and bound to a port
    /// ([`CompletionPort::associate`]).
    pub fn start_read(&self, buf: Vec<u8>, tag: u64) -> Result<OpId> {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let op = Op::new(OpKind::Read, tag, "", Some(self.path.clone()), buf, Vec::new());
        self.start(op, |h, op| {
            // SAFETY: (caller) `op` is live and stays so until reclaimed.
            unsafe { ReadFile(h, (*op).buffer.as_mut_ptr(), len, ptr::null_mut(), &mut (*op).overlapped) }
        })
    }

    /// Starts a `WriteFile` of `data` (up to `u32::MAX` bytes); the data comes
    /// back in the [`Completion`].
    pub fn start_write(&self, data: Vec<u8>, tag: u64) -> Result<OpId> {
        let len = data.len().min(u32::MAX as usize) as u32;
        let op = Op::new(OpKind::Write, tag, "", Some(self.path.clone()), data, Vec::new());
        self.start(op, |h, op| {
            // SAFETY: (caller) `op` is live and stays so until reclaimed.
            unsafe { WriteFile(h, (*op).buffer.as_ptr(), len, ptr::null_mut(), &mut (*op).overlapped) }
        })
    }

    /// Starts a typed IOCTL with an output buffer of `output_capacity` bytes,
    /// checking the sizes first like [`Device::ioctl`].
    pub fn start_ioctl<I: ?Sized, O: ?Sized>(&self, ioctl: &Ioctl<I, O>, input: Vec<u8>, output_capacity: usize, tag: u64) -> Result<OpId> {
        check_lengths(ioctl, input.len(), output_capacity, &self.path)?;
        self.start_ioctl_inner(ioctl.code, ioctl.name, input, output_capacity, tag)
    }

    /// Starts any IOCTL, unchecked. The output (`output_capacity` bytes,
    /// truncated to what the driver returned) comes back in the
    /// [`Completion`].
    pub fn start_ioctl_raw(&self, code: u32, input: Vec<u8>, output_capacity: usize, tag: u64) -> Result<OpId> {
        self.start_ioctl_inner(ControlCode(code), "", input, output_capacity, tag)
    }

    fn start_ioctl_inner(&self, code: ControlCode, name: &'static str, input: Vec<u8>, cap: usize, tag: u64) -> Result<OpId> {
        let (Some(in_len), Some(out_len)) = (len_u32(input.len()), len_u32(cap)) else {
            return Err(Error::new(
                format!("{}: buffer longer than 4 GiB", ioctl_context(name, code.0, &self.path)),
                ERROR_INVALID_PARAMETER,
            ));
        };
        let op = Op::new(OpKind::Ioctl(code), tag, name, Some(self.path.clone()), vec![0; cap], input);
        self.start(op, |h, op| {
            // SAFETY: (caller) `op` is live and stays so until reclaimed.
            unsafe {
                let in_p = if in_len == 0 { ptr::null() } else { (*op).input.as_ptr().cast() };
                let out_p = if out_len == 0 { ptr::null_mut() } else { (*op).buffer.as_mut_ptr().cast() };
                DeviceIoControl(h, code.0, in_p, in_len, out_p, out_len, ptr::null_mut(), &mut (*op).overlapped)
            }
        })
    }

    /// Starts an operation of another API on this handle (e.g.
    /// `FilterGetMessage`): `issue(handle, overlapped, buffer, len)` returns
    /// a BOOL and sets the last error like `ReadFile`.
    pub(crate) fn start_custom(
        &self,
        kind: OpKind,
        buffer: Vec<u8>,
        tag: u64,
        issue: impl FnOnce(HANDLE, *mut OVERLAPPED, *mut u8, u32) -> i32,
    ) -> Result<OpId> {
        let Some(len) = len_u32(buffer.len()) else {
            return Err(Error::new(format!("{kind:?} on {}: buffer longer than 4 GiB", self.path), ERROR_INVALID_PARAMETER));
        };
        let op = Op::new(kind, tag, "", Some(self.path.clone()), buffer, Vec::new());
        self.start(op, |h, op| {
            // SAFETY: (caller) `op` is live and stays so until reclaimed.
            unsafe { issue(h, &mut (*op).overlapped, (*op).buffer.as_mut_ptr(), len) }
        })
    }

    /// Hands `op` to the kernel through `issue(handle, op)` and decides who
    /// reclaims it.
    fn start(&self, op: Box<Op>, issue: impl FnOnce(HANDLE, *mut Op) -> i32) -> Result<OpId> {
        if !self.overlapped || !self.associated.load(Ordering::Acquire) {
            return Err(Error::new(
                format!("{}: device not overlapped and bound to a completion port", op.context()),
                ERROR_INVALID_PARAMETER,
            ));
        }
        let op = Box::into_raw(op);
        if issue(self.handle, op) != FALSE {
            // Completed at once: the packet is queued all the same.
            return Ok(OpId(op as usize));
        }
        // Read the codes before anything else; `op` must not be touched
        // until we know no packet refers to it (another thread's waiter may
        // already have dequeued and freed it).
        let err = Error::last("");
        if err.win32() == ERROR_IO_PENDING || packet_queued_after_failure(&err) {
            // Pending, or a warning status: the outcome arrives at the port,
            // whose waiter reclaims the op and reports it there.
            return Ok(OpId(op as usize));
        }
        // SAFETY: the request failed with an error status, so the system
        // queued no packet and holds no reference to `op`.
        let op = unsafe { Box::from_raw(op) };
        Err(err.with_context(op.context()))
    }

    /// `CancelIoEx` for one operation started on this device. Only meaningful
    /// while it is in flight: the caller learns the outcome from its
    /// completion (often [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled),
    /// or success if it finished first). Fails with
    /// [`ErrorKind::NotFoundItem`](crate::ErrorKind::NotFoundItem) when no such
    /// request is in flight. After the op has been reclaimed its id may name
    /// a newer operation.
    pub fn cancel(&self, op: OpId) -> Result<()> {
        // SAFETY: CancelIoEx only compares the pointer with those of pending
        // requests; it never dereferences it.
        if unsafe { CancelIoEx(self.handle, op.0 as *const OVERLAPPED) } == FALSE {
            return Err(Error::last_with(|| format!("CancelIoEx on {}", self.path)));
        }
        Ok(())
    }
}

/// Whether a request that failed at once still queued a completion packet:
/// true for warning statuses (not `NT_ERROR`), as the I/O manager and Wine's
/// server both do. Judged from the NTSTATUS when the system gave one, else
/// from the Win32 code of the usual warning (`STATUS_BUFFER_OVERFLOW`).
pub(crate) fn packet_queued_after_failure(err: &Error) -> bool {
    match err.ntstatus() {
        Some(s) => !is_nt_error(s.0),
        None => err.win32() == ERROR_MORE_DATA,
    }
}

/// `NT_ERROR`: severity bits 11.
fn is_nt_error(status: i32) -> bool {
    (status as u32) >> 30 == 3
}
