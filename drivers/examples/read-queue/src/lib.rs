//! Read/write with a cancel-safe queue: a `ReadFile` pends in the driver
//! until a `WriteFile` arrives, which completes the oldest read with its
//! bytes (a write with no reader waiting fails with `STATUS_NOT_FOUND`, so
//! nothing is kept). Cancelling a read, closing its handle or unloading the
//! driver completes it cancelled.
//!
//! Protocol: `ntcomm_examples::read_queue`. No `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

use ntcomm_examples_proto::read_queue as proto;
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::irp::{FileId, Handled, Request};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::{Error, NtStatus};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(*b"ExRq");

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);
ntcomm_km::driver_entry!(ReadQueue, CONFIG, ReadQueue::new);

struct ReadQueue {
    /// The pended reads, oldest first.
    readers: IrpQueue,
}

impl ReadQueue {
    fn new(_device: Device) -> Result<Self, Error> {
        Ok(Self { readers: IrpQueue::new() })
    }
}

impl DeviceOperations for ReadQueue {
    fn read(&self, req: Request) -> Handled {
        if self.readers.len() >= proto::MAX_READERS {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        self.readers.pend(req)
    }

    fn write(&self, req: Request) -> Handled {
        let Some(data) = req.write_data() else {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        };
        if data.len() > proto::MAX_MESSAGE {
            return req.fail(NtStatus::STATUS_INVALID_BUFFER_SIZE);
        }
        let Some(mut reader) = self.readers.pop() else {
            return req.fail(NtStatus::STATUS_NOT_FOUND);
        };
        let n = data.len();
        let copied = match reader.read_buffer() {
            Some(buf) => buf.get_mut(..n).map(|out| out.copy_from_slice(data)).is_some(),
            None => false,
        };
        if copied {
            let _ = reader.complete_ok(n);
            req.complete_ok(n)
        } else {
            let _ = reader.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
            req.fail(NtStatus::STATUS_INVALID_BUFFER_SIZE)
        }
    }

    /// The handle's last close: its reads end cancelled.
    fn cleanup(&self, file: FileId) {
        self.readers.drain_file(file, NtStatus::STATUS_CANCELLED);
    }

    fn unload(&self) {
        self.readers.close(NtStatus::STATUS_CANCELLED);
    }
}
