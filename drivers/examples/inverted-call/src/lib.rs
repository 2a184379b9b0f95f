//! The inverted call: the driver holds a client's `WAIT` IOCTL pended in a
//! cancel-safe queue until it has something to say (here: another `SIGNAL`
//! IOCTL), then completes it. The client sees a `DeviceIoControl` that
//! returns when the event happens. Cancelling the wait (`CancelIoEx`, or
//! closing the handle) completes it with `STATUS_CANCELLED`; unloading the
//! driver completes every wait.
//!
//! Protocol: `ntcomm_examples::inverted_call`. No `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

use ntcomm_examples_proto::inverted_call::{self as proto, Event};
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::ioctl::{self, IoctlHandler, IoctlRequest};
use ntcomm_km::irp::{FileId, Handled, Request};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::{Error, NtStatus};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(*b"ExIv");

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);
ntcomm_km::driver_entry!(Inverted, CONFIG, Inverted::new);

struct Inverted {
    /// The pended `WAIT`s, oldest first.
    waiters: IrpQueue,
}

const TABLE: &[IoctlHandler<Inverted>] =
    &[IoctlHandler::new(&proto::WAIT, Inverted::wait), IoctlHandler::new(&proto::SIGNAL, Inverted::signal)];

impl Inverted {
    fn new(_device: Device) -> Result<Self, Error> {
        Ok(Self { waiters: IrpQueue::new() })
    }

    /// `WAIT`: pended (the queue marks it pending before it is visible to
    /// any other thread, and sets its cancel routine).
    fn wait(&self, req: IoctlRequest) -> Handled {
        if self.waiters.len() >= proto::MAX_WAITERS {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        match req.into_request() {
            Ok(r) => self.waiters.pend(r),
            Err(req) => req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        }
    }

    /// `SIGNAL`: completes the oldest wait with the event.
    fn signal(&self, req: IoctlRequest) -> Handled {
        let event: Event = match req.input_as() {
            Ok(e) => e,
            Err(status) => return req.fail(status),
        };
        // `pop` never returns a wait whose cancellation has begun.
        let Some(waiter) = self.waiters.pop() else {
            return req.fail(NtStatus::STATUS_NOT_FOUND);
        };
        match IoctlRequest::from_request(waiter) {
            // The table checked the wait's output holds an `Event`.
            Ok(waiter) => {
                let _ = waiter.reply(&event);
                req.complete(NtStatus::STATUS_SUCCESS, 0)
            }
            Err(waiter) => {
                let _ = waiter.fail(NtStatus::STATUS_INVALID_PARAMETER);
                req.fail(NtStatus::STATUS_NOT_FOUND)
            }
        }
    }
}

impl DeviceOperations for Inverted {
    fn ioctl(&self, req: Request) -> Handled {
        ioctl::dispatch(TABLE, self, req)
    }

    /// The handle's last close: its waits end cancelled.
    fn cleanup(&self, file: FileId) {
        self.waiters.drain_file(file, NtStatus::STATUS_CANCELLED);
    }

    fn unload(&self) {
        self.waiters.close(NtStatus::STATUS_CANCELLED);
    }
}
