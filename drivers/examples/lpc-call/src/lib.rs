//! An LPC call: on a client's `ASK` IOCTL the driver connects to a
//! user-mode LPC server, sends it a typed message and completes the IOCTL
//! with the answer.
//!
//! - The call runs on a system thread, with the IOCTL pended in a
//!   cancel-safe queue meanwhile: a dispatch routine must not wait on
//!   another process (and under Wine the server's calls are served by the
//!   same driver host).
//! - The server must run as the user who asks: the connect requires the
//!   caller's user SID of the server port (`ZwSecureConnectPort`), so no
//!   other user's process can answer in its place.
//! - A cancelled ask is completed cancelled at once; its thread finds the
//!   request gone and drops the answer. Unload cancels the asks and joins
//!   the threads.
//!
//! Protocol: `ntcomm_examples_proto::lpc_call`. No `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use ntcomm_examples_proto::lpc_call::{self as proto, Value};
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::ioctl::{self, IoctlHandler, IoctlRequest};
use ntcomm_km::irp::{FileId, Handled, Request};
use ntcomm_km::lpc::{ConnectOptions, LpcClient};
use ntcomm_km::peer::ServerProcess;
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::thread::{SystemThread, ThreadSet};
use ntcomm_km::{Error, NtStatus};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(*b"ExLp");

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);
ntcomm_km::driver_entry!(LpcCall, CONFIG, LpcCall::new);

struct LpcCall {
    /// The pended asks, each tagged with its id.
    asks: Arc<IrpQueue>,
    next_id: AtomicUsize,
    threads: ThreadSet,
}

const TABLE: &[IoctlHandler<LpcCall>] = &[IoctlHandler::new(&proto::ASK, LpcCall::ask)];

impl LpcCall {
    fn new(_device: Device) -> Result<Self, Error> {
        Ok(Self { asks: Arc::new(IrpQueue::new()), next_id: AtomicUsize::new(1), threads: ThreadSet::new() })
    }

    /// `ASK`: PASSIVE_LEVEL, in the caller's process.
    fn ask(&self, req: IoctlRequest) -> Handled {
        let value: Value = match req.input_as() {
            Ok(v) => v,
            Err(status) => return req.fail(status),
        };
        self.threads.reap();
        if self.asks.len() >= proto::MAX_ASKS {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        // The server must be the caller's user (read now, in the caller's context).
        let sid = match ServerProcess::requestor() {
            Ok(caller) => *caller.user_sid(),
            Err(e) => return req.fail(e.status),
        };
        let mut request = match req.into_request() {
            Ok(r) => r,
            Err(req) => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        request.set_tag((id, 0));
        let handled = self.asks.pend(request);
        let asks = self.asks.clone();
        let call = move || {
            let options = ConnectOptions { required_server_sid: Some(sid), ..ConnectOptions::default() };
            let answer =
                LpcClient::connect(proto::PORT_NAME, &[], &mut [], options).and_then(|(client, _)| client.call(&proto::INCREMENT, &value));
            // Gone if it was cancelled meanwhile: the answer is dropped.
            let Some(request) = asks.pop_if(|r| r.tag().0 == id) else { return };
            let Ok(req) = IoctlRequest::from_request(request) else { return };
            let _ = match answer {
                Ok(reply) => req.reply(&reply),
                Err(e) => req.fail(e.status()),
            };
        };
        match SystemThread::spawn(call) {
            Ok(thread) => self.threads.push(thread),
            Err(e) => {
                if let Some(request) = self.asks.pop_if(|r| r.tag().0 == id) {
                    let _ = request.fail(e.status);
                }
            }
        }
        handled
    }
}

impl DeviceOperations for LpcCall {
    fn ioctl(&self, req: Request) -> Handled {
        ioctl::dispatch(TABLE, self, req)
    }

    /// The handle's last close: its asks end cancelled.
    fn cleanup(&self, file: FileId) {
        self.asks.drain_file(file, NtStatus::STATUS_CANCELLED);
    }

    /// The asks end cancelled; the threads finish their calls (each bounded
    /// by the server) and are joined.
    fn unload(&self) {
        self.asks.close(NtStatus::STATUS_CANCELLED);
        self.threads.join_all();
    }
}
