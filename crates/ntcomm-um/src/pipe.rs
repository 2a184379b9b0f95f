//! A message-mode named-pipe server, the user-mode end a driver connects to
//! as a client (see `ntcomm_km::pipe`).
#![cfg(windows)]

use core::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_PIPE_CONNECTED, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, PIPE_ACCESS_INBOUND};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE,
    PIPE_WAIT,
};

use crate::error::code::{ERROR_BROKEN_PIPE, ERROR_INVALID_PARAMETER, ERROR_MORE_DATA};
use crate::error::{Error, Result};
use crate::util::to_wide_nul;

/// One instance of an inbound, message-mode pipe `\\.\pipe\NAME`.
pub struct PipeServer {
    handle: HANDLE,
    name: String,
}

// SAFETY: a pipe handle may be used from any thread.
unsafe impl Send for PipeServer {}

impl PipeServer {
    /// Creates the pipe (one instance, local clients only).
    pub fn create(name: &str) -> Result<PipeServer> {
        let path = format!(r"\\.\pipe\{name}");
        let wide = to_wide_nul(&path).ok_or_else(|| Error::new(format!("pipe name {path:?}"), ERROR_INVALID_PARAMETER))?;
        // SAFETY: NUL-terminated name; default security.
        let handle = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_INBOUND,
                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                1,
                0,
                64 * 1024,
                0,
                ptr::null(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(Error::last(format!("CreateNamedPipeW {path}")));
        }
        Ok(PipeServer { handle, name: path })
    }

    /// Waits for a client to connect (returns at once if one already has).
    pub fn accept(&self) -> Result<()> {
        // SAFETY: our pipe handle, synchronous.
        if unsafe { ConnectNamedPipe(self.handle, ptr::null_mut()) } == 0 {
            // SAFETY: reading the thread's last error.
            let e = unsafe { GetLastError() };
            if e != ERROR_PIPE_CONNECTED {
                return Err(Error::new(format!("ConnectNamedPipe {}", self.name), e));
            }
        }
        Ok(())
    }

    /// Reads the next whole message into `out` (replacing its contents).
    /// `Ok(false)` when the client has gone (the pipe is broken): call
    /// [`disconnect`](Self::disconnect) and [`accept`](Self::accept) again.
    pub fn read_message(&self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let mut n = 0u32;
            // SAFETY: our handle; `chunk` is writable for its length.
            let ok = unsafe { ReadFile(self.handle, chunk.as_mut_ptr(), chunk.len() as u32, &mut n, ptr::null_mut()) };
            out.extend_from_slice(chunk.get(..n as usize).unwrap_or(&[]));
            if ok != 0 {
                return Ok(true);
            }
            // SAFETY: reading the thread's last error.
            match unsafe { GetLastError() } {
                ERROR_MORE_DATA => continue,
                ERROR_BROKEN_PIPE => return Ok(false),
                e => return Err(Error::new(format!("ReadFile {}", self.name), e)),
            }
        }
    }

    /// Drops the current client so another can connect.
    pub fn disconnect(&self) {
        // SAFETY: our pipe handle.
        unsafe { DisconnectNamedPipe(self.handle) };
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { CloseHandle(self.handle) };
    }
}
