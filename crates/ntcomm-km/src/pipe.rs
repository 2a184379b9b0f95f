//! The driver as a named-pipe client (`\??\pipe\NAME`), writing messages to
//! a server a user-mode process created.
//!
//! Opening and writing are synchronous system calls that may block: call
//! them from a system thread, never from a dispatch routine.

use core::time::Duration;

use alloc::format;
use ntcomm_proto::NtStatus;

use crate::handle::{attributes, KernelHandle};
use crate::string::UnicodeString;
use crate::{sys, Error};

/// A connected pipe client.
pub struct PipeClient {
    handle: KernelHandle,
}

impl PipeClient {
    /// Connects to the server's pipe `name` (without the `\\.\pipe\`
    /// prefix). `STATUS_OBJECT_NAME_NOT_FOUND` means no server yet;
    /// `STATUS_PIPE_NOT_AVAILABLE`/`STATUS_PIPE_BUSY` that every instance
    /// is taken: retry later.
    pub fn connect(name: &str) -> Result<Self, Error> {
        let mut path = UnicodeString::new(&format!(r"\??\pipe\{name}"))?;
        let mut raw = path.as_raw();
        let mut attrs = attributes(Some(&mut raw), None);
        let mut iosb = sys::IO_STATUS_BLOCK { Status: 0, Information: 0 };
        let mut h = core::ptr::null_mut();
        // SAFETY: valid out-pointers, attributes and name for the call.
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
                sys::FILE_NON_DIRECTORY_FILE | sys::FILE_SYNCHRONOUS_IO_NONALERT,
                core::ptr::null_mut(),
                0,
            )
        };
        Error::check(status, "ZwCreateFile(pipe)")?;
        let handle = KernelHandle::from_raw(h).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwCreateFile(pipe)"))?;
        Ok(Self { handle })
    }

    /// Writes one message; `Ok(n)` is the bytes the server accepted. An
    /// error (e.g. `STATUS_PIPE_BROKEN`, `STATUS_PIPE_CLOSING`) means the
    /// server went away: drop this client and connect again later.
    pub fn write(&self, data: &[u8]) -> Result<usize, Error> {
        let len = u32::try_from(data.len()).map_err(|_| Error::new(NtStatus::STATUS_INVALID_PARAMETER, "pipe write"))?;
        let mut iosb = sys::IO_STATUS_BLOCK { Status: 0, Information: 0 };
        // SAFETY: our synchronous handle; `data` lives for the call.
        let status = unsafe {
            sys::ZwWriteFile(
                self.handle.raw(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                &mut iosb,
                data.as_ptr().cast(),
                len,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        Error::check(status, "ZwWriteFile(pipe)")?;
        Ok(iosb.Information)
    }
}

/// How long a pipe writer waits before trying to connect again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(100);
