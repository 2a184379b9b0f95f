//! The driver as a named-pipe client (`\??\pipe\NAME`), writing messages to
//! a server a user-mode process created.
//!
//! A pipe name is first come, first served: any process may create
//! `\\.\pipe\NAME` before the legitimate server does. So the client
//! - opens the pipe with a security quality of service of
//!   `SecurityIdentification`, static tracking, effective only: the server
//!   may learn who the driver is (SYSTEM) but can never impersonate it;
//! - asks the pipe for its server's process id
//!   (`FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE` `"ServerProcessId"`, what
//!   `GetNamedPipeServerProcessId` uses) and refuses the connection unless
//!   the caller's check accepts that process ([`PipeError::UntrustedServer`]),
//!   before a single byte is written;
//! - bounds every write: the handle is asynchronous, the write waits for its
//!   completion at most `timeout` and stops early when asked to; a write
//!   that does not complete is cancelled (`ZwCancelIoFile`) so that a server
//!   that stops reading can never hold the writer, and so unload, forever.
//!
//! Opening and writing are system calls at PASSIVE_LEVEL that may wait:
//! call them from a system thread, never from a dispatch routine.

use core::time::Duration;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use ntcomm_proto::NtStatus;

use crate::handle::{attributes, create_named, KernelHandle};
use crate::string::UnicodeString;
use crate::{sys, Error};

/// How long a write waits between checks of its stop condition.
const POLL: Duration = Duration::from_millis(50);
/// How long a cancelled write may take to complete. The IO_STATUS_BLOCK and
/// buffer belong to the I/O until then; past this, they are leaked rather
/// than freed under a write that may still complete.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Why a pipe operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeError {
    /// The pipe's server process is not one the caller trusts: the handle
    /// was closed and nothing was written. Carries the server's id.
    UntrustedServer {
        /// The process id the pipe reported for its server.
        server_pid: usize,
    },
    /// A write did not complete within its bound and was cancelled
    /// (`STATUS_IO_TIMEOUT`): the server stopped reading.
    TimedOut,
    /// The caller asked to stop while a write waited; it was cancelled
    /// (`STATUS_CANCELLED`).
    Stopped,
    /// A system call failed (no server yet, every instance busy, the
    /// server went away, ...).
    Io(Error),
}

impl PipeError {
    /// The status, e.g. to complete a request with or to count.
    pub fn status(&self) -> NtStatus {
        match self {
            Self::UntrustedServer { .. } => NtStatus::STATUS_ACCESS_DENIED,
            Self::TimedOut => NtStatus::STATUS_IO_TIMEOUT,
            Self::Stopped => NtStatus::STATUS_CANCELLED,
            Self::Io(e) => e.status,
        }
    }
}

impl From<Error> for PipeError {
    fn from(e: Error) -> Self {
        Self::Io(e)
    }
}

impl core::fmt::Display for PipeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UntrustedServer { server_pid } => write!(f, "pipe server process {server_pid} is not the registered server"),
            Self::TimedOut => write!(f, "pipe write timed out (server not reading)"),
            Self::Stopped => write!(f, "pipe write cancelled (stopping)"),
            Self::Io(e) => write!(f, "pipe call failed ({e})"),
        }
    }
}

/// A connected pipe client whose server passed the caller's check.
pub struct PipeClient {
    handle: KernelHandle,
    /// Notification event the I/O calls signal on completion.
    event: KernelHandle,
    server_pid: usize,
}

/// One asynchronous I/O's memory: owned by the I/O until it completes.
struct InFlight {
    iosb: sys::IO_STATUS_BLOCK,
    data: Vec<u8>,
}

impl PipeClient {
    /// Connects to the server's pipe `name` (without the `\\.\pipe\`
    /// prefix) and keeps the connection only if `trusted(server_pid)`.
    /// `STATUS_OBJECT_NAME_NOT_FOUND` means no server yet;
    /// `STATUS_PIPE_NOT_AVAILABLE`/`STATUS_PIPE_BUSY` that every instance
    /// is taken: retry later.
    pub fn connect(name: &str, trusted: impl FnOnce(usize) -> bool) -> Result<Self, PipeError> {
        let event = create_named(None, None, "ZwCreateEvent(pipe)", |h, attrs| {
            // SAFETY: valid out-pointer and attributes.
            unsafe { sys::ZwCreateEvent(h, sys::EVENT_ALL_ACCESS, attrs, sys::NOTIFICATION_EVENT, 0) }
        })?;
        let mut path = UnicodeString::new(&format!(r"\??\pipe\{name}"))?;
        let mut raw = path.as_raw();
        // Identification only, static, effective only: the server may ask
        // who we are but can never act as SYSTEM with our token.
        let mut qos = sys::SECURITY_QUALITY_OF_SERVICE {
            Length: core::mem::size_of::<sys::SECURITY_QUALITY_OF_SERVICE>() as u32,
            ImpersonationLevel: sys::SECURITY_IDENTIFICATION,
            ContextTrackingMode: sys::SECURITY_STATIC_TRACKING,
            EffectiveOnly: 1,
        };
        let mut attrs = attributes(Some(&mut raw), None);
        attrs.SecurityQualityOfService = (&mut qos as *mut sys::SECURITY_QUALITY_OF_SERVICE).cast();
        let mut iosb = sys::IO_STATUS_BLOCK { Status: 0, Information: 0 };
        let mut h = core::ptr::null_mut();
        // SAFETY: valid out-pointers; attributes, name and QoS live for the
        // call. No FILE_SYNCHRONOUS_IO_* option: the handle is asynchronous,
        // so every I/O on it can be waited for with a bound and cancelled.
        let status = unsafe {
            sys::ZwCreateFile(
                &mut h,
                sys::FILE_WRITE_DATA | sys::SYNCHRONIZE,
                &mut attrs,
                &mut iosb,
                core::ptr::null_mut(),
                sys::FILE_ATTRIBUTE_NORMAL,
                sys::FILE_SHARE_READ | sys::FILE_SHARE_WRITE,
                sys::FILE_OPEN,
                sys::FILE_NON_DIRECTORY_FILE,
                core::ptr::null_mut(),
                0,
            )
        };
        Error::check(status, "ZwCreateFile(pipe)")?;
        let handle = KernelHandle::from_raw(h).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwCreateFile(pipe)"))?;
        let mut client = Self { handle, event, server_pid: 0 };
        client.server_pid = client.query_server_pid()?;
        if !trusted(client.server_pid) {
            return Err(PipeError::UntrustedServer { server_pid: client.server_pid });
        }
        Ok(client)
    }

    /// The id of the process that created the pipe instance we are
    /// connected to.
    pub fn server_pid(&self) -> usize {
        self.server_pid
    }

    fn query_server_pid(&self) -> Result<usize, PipeError> {
        const ATTRIBUTE: &[u8] = b"ServerProcessId\0";
        let mut io = Box::new(InFlight { iosb: sys::IO_STATUS_BLOCK { Status: 0, Information: 0 }, data: Vec::new() });
        io.data.try_reserve_exact(8).map_err(|_| Error::new(NtStatus::STATUS_INSUFFICIENT_RESOURCES, "pipe attribute"))?;
        io.data.resize(8, 0);
        let out = io.data.as_mut_ptr();
        // Raw from here: the system writes through these pointers until the
        // I/O completes, so no Box or reference may claim the memory meanwhile.
        let io = Box::into_raw(io);
        // SAFETY: `io` is live (just made); no reference is formed.
        let iosb = unsafe { core::ptr::addr_of_mut!((*io).iosb) };
        // SAFETY: our handle and event; the attribute name is static; the
        // IO_STATUS_BLOCK and the output buffer are in `io`, which `finish`
        // keeps alive until the I/O completed (or leaks).
        let status = unsafe {
            sys::ZwFsControlFile(
                self.handle.raw(),
                self.event.raw(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                iosb,
                sys::FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE,
                ATTRIBUTE.as_ptr().cast(),
                ATTRIBUTE.len() as u32,
                out.cast(),
                4,
            )
        };
        let io = self.finish(io, status, Duration::from_secs(5), &|| false, "FSCTL_PIPE_GET_CONNECTION_ATTRIBUTE")?;
        let mut pid = [0u8; 4];
        if let Some(src) = io.data.get(..4) {
            pid.copy_from_slice(src);
        }
        Ok(u32::from_le_bytes(pid) as usize)
    }

    /// Writes one message; `Ok(n)` is the bytes the server accepted. Waits
    /// at most `timeout` for the server to take it, and returns early with
    /// [`PipeError::Stopped`] once `stop()` is true (checked every 50 ms);
    /// either way the write is cancelled first. Any error means this
    /// connection is done: drop it and connect again later.
    pub fn write(&self, data: &[u8], timeout: Duration, stop: &dyn Fn() -> bool) -> Result<usize, PipeError> {
        let len = u32::try_from(data.len()).map_err(|_| Error::new(NtStatus::STATUS_INVALID_PARAMETER, "pipe write"))?;
        let mut io = Box::new(InFlight { iosb: sys::IO_STATUS_BLOCK { Status: 0, Information: 0 }, data: Vec::new() });
        io.data.try_reserve_exact(data.len()).map_err(|_| Error::new(NtStatus::STATUS_INSUFFICIENT_RESOURCES, "pipe write"))?;
        io.data.extend_from_slice(data);
        let buf = io.data.as_ptr();
        // Raw from here, as in `query_server_pid`.
        let io = Box::into_raw(io);
        // SAFETY: `io` is live (just made); no reference is formed.
        let iosb = unsafe { core::ptr::addr_of_mut!((*io).iosb) };
        // SAFETY: our handle and event; the IO_STATUS_BLOCK and the buffer
        // are in `io`, which `finish` keeps until the write completed (or
        // leaks, if a cancelled write never completes).
        let status = unsafe {
            sys::ZwWriteFile(
                self.handle.raw(),
                self.event.raw(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                iosb,
                buf.cast(),
                len,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        let io = self.finish(io, status, timeout, stop, "ZwWriteFile(pipe)")?;
        Ok(io.iosb.Information)
    }

    /// Waits for the I/O that returned `status` to complete, within
    /// `timeout` or until `stop()`; cancels it otherwise. Returns `io` once
    /// the I/O no longer uses it.
    fn finish(
        &self,
        io: *mut InFlight,
        status: i32,
        timeout: Duration,
        stop: &dyn Fn() -> bool,
        what: &'static str,
    ) -> Result<Box<InFlight>, PipeError> {
        if NtStatus(status) != NtStatus::STATUS_PENDING {
            // Completed (or failed) synchronously: the I/O is over.
            // SAFETY: from `Box::into_raw`, no longer used by the system.
            let io = unsafe { Box::from_raw(io) };
            Error::check(status, what)?;
            return Ok(io);
        }
        let deadline = crate::time::deadline_after(timeout);
        let ending = loop {
            match self.event.wait(Some(POLL)) {
                Ok(true) => {
                    // SAFETY: the I/O completed (the I/O manager wrote the
                    // status block before signalling the event), so the
                    // memory is ours again; from `Box::into_raw`.
                    let io = unsafe { Box::from_raw(io) };
                    Error::check(io.iosb.Status as u32 as i32, what)?;
                    return Ok(io);
                }
                Ok(false) => {}
                Err(e) => break PipeError::Io(e),
            }
            if stop() {
                break PipeError::Stopped;
            }
            if crate::time::interrupt_time() >= deadline {
                break PipeError::TimedOut;
            }
        };
        let mut cancel_iosb = sys::IO_STATUS_BLOCK { Status: 0, Information: 0 };
        // SAFETY: our handle; cancels the I/O this thread issued on it.
        unsafe { sys::ZwCancelIoFile(self.handle.raw(), &mut cancel_iosb) };
        if matches!(self.event.wait(Some(CANCEL_GRACE)), Ok(true)) {
            // SAFETY: the cancelled I/O completed; from `Box::into_raw`.
            let io = unsafe { Box::from_raw(io) };
            if (io.iosb.Status as u32 as i32) >= 0 {
                // It completed before the cancel took: it is done, not lost.
                return Ok(io);
            }
        } else {
            // Still owned by an I/O that may complete later: leaked, never
            // freed under it.
            crate::kprintln!("pipe: a cancelled {} did not complete; its buffer is leaked", what);
        }
        Err(ending)
    }
}

/// How long a pipe writer waits before trying to connect again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);

/// How long a pipe writer lets one message wait for the server to take
/// it before dropping the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
