//! Asynchronous pipe I/O from kernel threads: owned handles, unnamed
//! events, deadlines, and one outstanding read or write that can be waited
//! for together with a stop event and cancelled.
//!
//! Pipe handles are opened without `FILE_SYNCHRONOUS_IO_*`, so a read can
//! stay pending on the message pipe (to see the client close it) while
//! other threads write to the same handle, and so a write (which Wine
//! completes only when the client's pipe buffer has room) can be abandoned
//! at a deadline. Every operation is started, waited for, cancelled
//! (`ZwCancelIoFile` cancels the calling thread's I/O) and reaped by the
//! same thread.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::ffi::c_void;

use ntcomm_km::proto::NtStatus;
use ntcomm_km::sys::{self, HANDLE, IO_STATUS_BLOCK, OBJECT_ATTRIBUTES, UNICODE_STRING};

use crate::ffi;

/// How long a cancelled operation may take to report back before we give
/// up on it (and leak its status block rather than free it under the I/O).
const REAP_LIMIT_100NS: i64 = 50_000_000;

/// Time since boot in 100 ns units: `KUSER_SHARED_DATA.InterruptTime`, read
/// with one plain `mov` in inline assembly. Wine does not map the kernel
/// address; its ntoskrnl emulates the faulting instruction, but only a few
/// forms (mov, or, xor, movzx). A `read_volatile` lets the optimiser fold the
/// read into e.g. `sub r9, [rax]`, which Wine cannot emulate, and winedevice
/// dies (seen in release builds with `ntcomm_km::time::interrupt_time`).
pub fn interrupt_time() -> u64 {
    let value: u64;
    // SAFETY: KUSER_SHARED_DATA is readable at this fixed address in every
    // x64 context (emulated by Wine); a 64-bit load of InterruptTime is what
    // the DDK's KeQueryInterruptTime macro does. No memory is written.
    unsafe {
        core::arch::asm!(
            "mov {value}, qword ptr [{addr}]",
            addr = in(reg) 0xFFFF_F780_0000_0008u64,
            value = lateout(reg) value,
            options(nostack, readonly, preserves_flags),
        );
    }
    value
}

/// Whether `status` is an error (severity 3), not a success, information
/// or warning (e.g. `STATUS_BUFFER_OVERFLOW`) status.
pub fn is_error(status: i32) -> bool {
    (status as u32) >> 30 == 3
}

/// A kernel handle closed on drop.
pub struct Handle(HANDLE);

// SAFETY: kernel handles (OBJ_KERNEL_HANDLE) may be used and closed from any
// thread of the process.
unsafe impl Send for Handle {}
// SAFETY: as above; `&Handle` only lends the value.
unsafe impl Sync for Handle {}

impl Handle {
    pub fn raw(&self) -> HANDLE {
        self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: our handle, closed exactly once.
        unsafe { sys::ZwClose(self.0) };
    }
}

fn attributes(name: *mut UNICODE_STRING) -> OBJECT_ATTRIBUTES {
    OBJECT_ATTRIBUTES {
        Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: core::ptr::null_mut(),
        ObjectName: name,
        Attributes: sys::OBJ_KERNEL_HANDLE | sys::OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: core::ptr::null_mut(),
        SecurityQualityOfService: core::ptr::null_mut(),
    }
}

/// An unnamed event (`NotificationEvent` when `manual`, else
/// `SynchronizationEvent`), not signalled.
pub fn event(manual: bool) -> Result<Handle, i32> {
    let mut attrs = attributes(core::ptr::null_mut());
    let mut h: HANDLE = core::ptr::null_mut();
    let kind = if manual { sys::NOTIFICATION_EVENT } else { sys::SYNCHRONIZATION_EVENT };
    // SAFETY: valid out-pointer and attributes.
    let status = unsafe { sys::ZwCreateEvent(&mut h, sys::EVENT_ALL_ACCESS, &mut attrs, kind, 0) };
    if status < 0 {
        return Err(status);
    }
    if h.is_null() {
        return Err(NtStatus::STATUS_UNSUCCESSFUL.0);
    }
    Ok(Handle(h))
}

/// Signals an event handle.
pub fn set(ev: &Handle) {
    // SAFETY: an event handle we own; the previous state is not wanted.
    unsafe { sys::ZwSetEvent(ev.raw(), core::ptr::null_mut()) };
}

/// Opens `\??\pipe\<base><suffix>` as a client, asynchronous, read+write,
/// and switches our end to message read mode (so one read returns one
/// message, or `STATUS_BUFFER_OVERFLOW` and its first part).
pub fn open_pipe(base: &str, suffix: &str) -> Result<Handle, i32> {
    let path: Vec<u16> = format!(r"\??\pipe\{base}{suffix}").encode_utf16().collect();
    let bytes = u16::try_from(path.len() * 2).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER.0)?;
    let mut name = UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: path.as_ptr() as *mut u16 };
    let mut attrs = attributes(&mut name);
    let mut iosb = IO_STATUS_BLOCK { Status: 0, Information: 0 };
    let mut h: HANDLE = core::ptr::null_mut();
    // SAFETY: valid out-pointers; `path` outlives the call. Opening an
    // existing pipe instance never blocks.
    let status = unsafe {
        sys::ZwCreateFile(
            &mut h,
            ffi::FILE_READ_DATA | ffi::FILE_WRITE_DATA | ffi::FILE_READ_ATTRIBUTES | ffi::FILE_WRITE_ATTRIBUTES | sys::SYNCHRONIZE,
            &mut attrs,
            &mut iosb,
            core::ptr::null_mut(),
            0,
            sys::FILE_SHARE_READ | sys::FILE_SHARE_WRITE,
            sys::FILE_OPEN,
            sys::FILE_NON_DIRECTORY_FILE,
            core::ptr::null_mut(),
            0,
        )
    };
    if status < 0 {
        return Err(status);
    }
    if h.is_null() {
        return Err(NtStatus::STATUS_UNSUCCESSFUL.0);
    }
    let handle = Handle(h);
    let mut info = ffi::FILE_PIPE_INFORMATION { ReadMode: ffi::FILE_PIPE_MESSAGE_MODE, CompletionMode: ffi::FILE_PIPE_QUEUE_OPERATION };
    // SAFETY: our handle; `info` and `iosb` live for the (synchronous) call.
    let status = unsafe {
        ffi::ZwSetInformationFile(
            handle.raw(),
            &mut iosb,
            (&mut info as *mut ffi::FILE_PIPE_INFORMATION).cast(),
            core::mem::size_of::<ffi::FILE_PIPE_INFORMATION>() as u32,
            ffi::FILE_PIPE_INFORMATION_CLASS,
        )
    };
    if status < 0 {
        return Err(status);
    }
    Ok(handle)
}

/// When a wait gives up: never, at an absolute system time, or at a
/// point of the interrupt-time clock (for relative timeouts, so several
/// waits share one budget).
#[derive(Clone, Copy, Debug)]
pub enum Deadline {
    Never,
    Absolute(i64),
    Relative(u64),
}

impl Deadline {
    /// From an `FltSendMessage` timeout: NULL waits forever, positive is an
    /// absolute system time, zero or negative is relative (100 ns units).
    ///
    /// # Safety
    /// `timeout` is NULL or points to a readable `LARGE_INTEGER`.
    pub unsafe fn from_timeout(timeout: *const i64) -> Self {
        if timeout.is_null() {
            return Deadline::Never;
        }
        // SAFETY: the caller guarantees a readable value.
        let t = unsafe { core::ptr::read_unaligned(timeout) };
        if t > 0 {
            Deadline::Absolute(t)
        } else {
            Deadline::Relative(interrupt_time().saturating_add(t.unsigned_abs()))
        }
    }

    /// The timeout to pass to a wait call now (`None`: wait forever).
    pub fn value(&self) -> Option<i64> {
        match *self {
            Deadline::Never => None,
            Deadline::Absolute(t) => Some(t),
            Deadline::Relative(end) => {
                let left = end.saturating_sub(interrupt_time());
                Some(-(i64::try_from(left).unwrap_or(i64::MAX)))
            }
        }
    }
}

/// Waits for any of `handles`; `Some(index)` of the signalled one, `None`
/// on timeout (or a failed wait, reported as a timeout of a zero wait).
pub fn wait_any(handles: &[HANDLE], deadline: Deadline) -> Option<usize> {
    let mut t = deadline.value().unwrap_or(0);
    let tp = if matches!(deadline, Deadline::Never) { core::ptr::null_mut() } else { &mut t as *mut i64 };
    // SAFETY: `handles` are live handles of ours; `tp` is NULL or a live local.
    let status = unsafe { ffi::ZwWaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), ffi::WAIT_ANY, 0, tp) };
    if (0..handles.len() as i32).contains(&status) {
        return Some(status as usize);
    }
    None
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Completed with this status and byte count.
    Done(i32, usize),
    /// The stop event was signalled first (the operation was cancelled).
    Stopped,
    /// The deadline passed first (the operation was cancelled).
    TimedOut,
}

/// One read or write at a time on some handle, with its own event and a
/// status block at a stable address.
pub struct Op {
    iosb: Box<IO_STATUS_BLOCK>,
    ev: Handle,
    /// Started and not yet known to be complete.
    pending: bool,
}

impl Op {
    pub fn new() -> Result<Self, i32> {
        Ok(Self { iosb: Box::new(IO_STATUS_BLOCK { Status: 0, Information: 0 }), ev: event(true)?, pending: false })
    }

    /// The event that is signalled when the operation completes.
    pub fn event(&self) -> HANDLE {
        self.ev.raw()
    }

    /// Starts a read into `buf`. `Some` if it completed at once.
    ///
    /// # Safety
    /// `buf` must stay valid and unused until the operation is complete
    /// ([`finish`](Self::finish) returned, or [`reap`](Self::reap) ran).
    pub unsafe fn start_read(&mut self, file: &Handle, buf: *mut u8, len: u32) -> Option<Outcome> {
        *self.iosb = IO_STATUS_BLOCK { Status: 0, Information: 0 };
        // SAFETY: our handle and event; `iosb` is boxed and outlives the
        // operation (reap leaks it if the operation never reports back);
        // the caller keeps `buf` valid.
        let status = unsafe {
            ffi::ZwReadFile(
                file.raw(),
                self.ev.raw(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                &mut *self.iosb,
                buf.cast::<c_void>(),
                len,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        self.started(status)
    }

    /// Starts a write of `data`. `Some` if it completed at once.
    ///
    /// # Safety
    /// As [`start_read`](Self::start_read), for `data`.
    pub unsafe fn start_write(&mut self, file: &Handle, data: &[u8]) -> Option<Outcome> {
        let Ok(len) = u32::try_from(data.len()) else {
            return Some(Outcome::Done(NtStatus::STATUS_INVALID_PARAMETER.0, 0));
        };
        *self.iosb = IO_STATUS_BLOCK { Status: 0, Information: 0 };
        // SAFETY: as in start_read.
        let status = unsafe {
            sys::ZwWriteFile(
                file.raw(),
                self.ev.raw(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                &mut *self.iosb,
                data.as_ptr().cast(),
                len,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        self.started(status)
    }

    fn started(&mut self, status: i32) -> Option<Outcome> {
        if status == NtStatus::STATUS_PENDING.0 {
            self.pending = true;
            return None;
        }
        let info = if is_error(status) { 0 } else { self.iosb.Information };
        Some(Outcome::Done(status, info))
    }

    /// The result of an operation whose event was seen signalled.
    pub fn finish(&mut self) -> Outcome {
        self.pending = false;
        let status = self.iosb.Status as u32 as i32;
        Outcome::Done(status, if is_error(status) { 0 } else { self.iosb.Information })
    }

    /// Cancels a pending operation of this thread on `file` and waits until
    /// it reports back. `Some(result)` if it had completed after all.
    pub fn reap(&mut self, file: &Handle) -> Option<Outcome> {
        if !self.pending {
            return None;
        }
        let mut cancel = IO_STATUS_BLOCK { Status: 0, Information: 0 };
        // SAFETY: our handle; `cancel` is a live local.
        unsafe { ffi::ZwCancelIoFile(file.raw(), &mut cancel) };
        let mut t = -REAP_LIMIT_100NS;
        // SAFETY: our event; `t` is a live local.
        let status = unsafe { sys::ZwWaitForSingleObject(self.ev.raw(), 0, &mut t) };
        if status != 0 {
            // The operation never reported back: leave its status block to
            // it rather than free memory it may still write.
            let leaked = core::mem::replace(&mut self.iosb, Box::new(IO_STATUS_BLOCK { Status: 0, Information: 0 }));
            Box::leak(leaked);
            self.pending = false;
            return None;
        }
        match self.finish() {
            Outcome::Done(s, _) if s == NtStatus::STATUS_CANCELLED.0 => None,
            done => Some(done),
        }
    }

    /// Runs a started operation to its end: waits for it, the `stop` event,
    /// or the deadline; cancels it in the latter two cases.
    pub fn complete(&mut self, started: Option<Outcome>, file: &Handle, stop: Option<&Handle>, deadline: Deadline) -> Outcome {
        if let Some(done) = started {
            return done;
        }
        let mut handles = [self.ev.raw(), core::ptr::null_mut()];
        let n = match stop {
            Some(s) => {
                if let Some(slot) = handles.get_mut(1) {
                    *slot = s.raw();
                }
                2
            }
            None => 1,
        };
        let which = wait_any(handles.get(..n).unwrap_or(&[]), deadline);
        match which {
            Some(0) => self.finish(),
            Some(_) => self.reap(file).unwrap_or(Outcome::Stopped),
            None => self.reap(file).unwrap_or(Outcome::TimedOut),
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if self.pending {
            // Dropped with an operation outstanding on a handle we no longer
            // know: the status block must outlive it.
            let leaked = core::mem::replace(&mut self.iosb, Box::new(IO_STATUS_BLOCK { Status: 0, Information: 0 }));
            Box::leak(leaked);
        }
    }
}

/// After a read into `buf[..first]` ended with `status`: if it was the first
/// part of a longer message (`STATUS_BUFFER_OVERFLOW`), grows `buf` (up to
/// `limit` bytes) and reads the rest. `Ok(length of the whole message)`;
/// `Err(status)` if the pipe failed, `stop` was signalled, or the message
/// is longer than `limit`.
pub fn rest_of_message(
    op: &mut Op,
    file: &Handle,
    buf: &mut Vec<u8>,
    status: i32,
    first: usize,
    limit: usize,
    stop: &Handle,
) -> Result<usize, i32> {
    let (mut status, mut filled) = (status, first);
    loop {
        if status == NtStatus::STATUS_BUFFER_OVERFLOW.0 {
            if buf.len() >= limit {
                return Err(NtStatus::STATUS_INVALID_BUFFER_SIZE.0);
            }
            let grown = buf.len().saturating_mul(2).clamp(4096, limit);
            buf.resize(grown, 0);
            let Some(rest) = buf.get_mut(filled..) else {
                return Err(NtStatus::STATUS_INTERNAL_ERROR.0);
            };
            let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            // SAFETY: `rest` is not touched until `complete` returns.
            let started = unsafe { op.start_read(file, rest.as_mut_ptr(), len) };
            match op.complete(started, file, Some(stop), Deadline::Never) {
                Outcome::Done(s, n) => {
                    status = s;
                    filled = filled.saturating_add(n);
                }
                Outcome::Stopped | Outcome::TimedOut => return Err(NtStatus::STATUS_CANCELLED.0),
            }
        } else if is_error(status) {
            return Err(status);
        } else {
            return Ok(filled.min(buf.len()));
        }
    }
}
