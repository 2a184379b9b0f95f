//! [`AsyncLpcServer`]: the LPC server's receive loop, awaitable.
//!
//! LPC has no overlapped form (`NtReplyWaitReceivePort` blocks its thread),
//! so each call runs on ntcomm's blocking pool with the server behind a
//! lock: one call at a time, and no executor thread ever blocks. A call
//! starts when it is made, not on the first poll of its future.
#![cfg(windows)]

use std::sync::{Arc, Mutex, PoisonError};

use ntcomm_proto::NtStatus;

use super::blocking::{self, Blocking};
use crate::lpc::{Connection, ConnectionRequest, LpcError, LpcEvent, LpcServer, Reply, Result};

/// An [`LpcServer`] whose receive, accept and refuse are awaited.
///
/// Cloning gives another reference to the same server. A receive whose
/// future is dropped still completes on its pool thread (the system cannot
/// cancel it); the event it received is dropped with it, as the reply it
/// carried was sent.
#[derive(Clone)]
pub struct AsyncLpcServer {
    server: Arc<Mutex<LpcServer>>,
}

impl AsyncLpcServer {
    /// Wraps a server created with [`LpcServer::create`].
    pub fn new(server: LpcServer) -> Self {
        AsyncLpcServer { server: Arc::new(Mutex::new(server)) }
    }

    /// Runs `call` on the pool with the server.
    fn run<T: Send + 'static>(&self, call: impl FnOnce(&mut LpcServer) -> Result<T> + Send + 'static) -> Blocking<Result<T>> {
        let server = self.server.clone();
        blocking::run(
            move || {
                let mut server = server.lock().unwrap_or_else(PoisonError::into_inner);
                call(&mut server)
            },
            // No pool thread could start: the system is out of resources.
            |_| Err(LpcError::Status { call: "ntcomm blocking pool", status: NtStatus::STATUS_INSUFFICIENT_RESOURCES }),
        )
    }

    /// Sends `reply` (if any) and resolves to the next message on the port
    /// or its connections ([`LpcServer::receive`]).
    ///
    /// # Errors
    /// As [`LpcServer::receive`].
    pub fn receive(&self, reply: Option<Reply>) -> Blocking<Result<LpcEvent>> {
        self.run(move |s| s.receive(reply))
    }

    /// Accepts a connection ([`LpcServer::accept`]).
    ///
    /// # Errors
    /// As [`LpcServer::accept`].
    pub fn accept(&self, request: ConnectionRequest, reply_info: Vec<u8>, context: usize) -> Blocking<Result<Connection>> {
        self.run(move |s| s.accept(request, &reply_info, context))
    }

    /// Refuses a connection ([`LpcServer::refuse`]).
    ///
    /// # Errors
    /// As [`LpcServer::refuse`].
    pub fn refuse(&self, request: ConnectionRequest) -> Blocking<Result<()>> {
        self.run(move |s| s.refuse(request))
    }
}
