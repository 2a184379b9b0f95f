//! [`AsyncPipeServer`]: the message-mode named-pipe server a driver
//! connects to, with an awaitable accept and read.
#![cfg(windows)]

use core::future::Future;
use core::ptr;
use std::sync::Arc;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::Storage::FileSystem::{FILE_FLAG_OVERLAPPED, PIPE_ACCESS_INBOUND};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, DisconnectNamedPipe, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE, PIPE_WAIT,
};

use super::future::IoFuture;
use super::handle::{CloseOnDrop, IoHandle};
use super::op::Call;
use crate::device::Device;
use crate::error::code::{ERROR_BROKEN_PIPE, ERROR_INVALID_PARAMETER};
use crate::error::{Error, Result};
use crate::util::to_wide_nul;

/// Largest message [`AsyncPipeServer::read_message`] takes (the pipe's
/// buffer size).
pub const MAX_PIPE_MESSAGE: usize = 64 * 1024;

/// One instance of an inbound, message-mode pipe `\\.\pipe\NAME`, local
/// clients only, like [`PipeServer`](crate::PipeServer), opened overlapped.
pub struct AsyncPipeServer {
    handle: Arc<IoHandle>,
    _owner: CloseOnDrop,
}

impl AsyncPipeServer {
    /// Creates the pipe and binds it to the reactor.
    ///
    /// # Errors
    /// `CreateNamedPipeW`'s (e.g. [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied)
    /// when another process holds the name), or the reactor's.
    pub fn create(name: &str) -> Result<AsyncPipeServer> {
        let path = format!(r"\\.\pipe\{name}");
        let wide = to_wide_nul(&path).ok_or_else(|| Error::new(format!("pipe name {path:?}"), ERROR_INVALID_PARAMETER))?;
        // SAFETY: NUL-terminated name; default security.
        let h = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED,
                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                1,
                0,
                MAX_PIPE_MESSAGE as u32,
                0,
                ptr::null(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(Error::last(format!("CreateNamedPipeW {path}")));
        }
        let handle = Arc::new(IoHandle::new(Device::from_handle(h, &path, true))?);
        Ok(AsyncPipeServer { _owner: CloseOnDrop(handle.clone()), handle })
    }

    /// Waits for a client to connect (`ConnectNamedPipe`); resolves at once
    /// if one already has. Dropping the future cancels the wait.
    ///
    /// # Errors
    /// `ConnectNamedPipe`'s (e.g. `ERROR_NO_DATA` for a client that came and
    /// went: [`disconnect`](Self::disconnect) and accept again).
    pub fn accept(&self) -> IoFuture<()> {
        IoFuture::new(self.handle.clone(), Call::ConnectPipe, "", Vec::new(), Vec::new(), |_, _, _| Ok(()))
    }

    /// Reads the next whole message (up to [`MAX_PIPE_MESSAGE`] bytes);
    /// resolves to `None` once the client has gone (the pipe is broken: call
    /// [`disconnect`](Self::disconnect) and [`accept`](Self::accept) again).
    /// Dropping the future cancels the read.
    ///
    /// # Errors
    /// `ReadFile`'s; [`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall)
    /// for a longer message.
    pub fn read_message(&self) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send + 'static {
        let read = IoFuture::new(self.handle.clone(), Call::Read, "", vec![0; MAX_PIPE_MESSAGE], Vec::new(), |buf, _, _| Ok(buf));
        async move {
            match read.await {
                Ok(message) => Ok(Some(message)),
                Err(e) if e.win32() == ERROR_BROKEN_PIPE => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    /// Drops the current client so another can connect.
    pub fn disconnect(&self) {
        let _ = self.handle.with_open(
            || format!("DisconnectNamedPipe {}", self.handle.path()),
            |h| {
                // SAFETY: our pipe handle, open while the guard is held.
                unsafe { DisconnectNamedPipe(h) };
                Ok(())
            },
        );
    }
}
