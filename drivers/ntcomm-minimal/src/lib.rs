//! `ntcomm-minimal`: the smallest useful ntcomm driver, and the seed of an
//! example. It serves `\\.\NtCommMinimal` with
//! - one typed IOCTL, [`ADD`](ntcomm_minimal_proto::ADD): adds to a running
//!   total and returns it,
//! - write/read as a one-message mailbox: a write keeps its message (up to
//!   [`MAX_MESSAGE`](ntcomm_minimal_proto::MAX_MESSAGE) bytes), a read takes
//!   it (zero bytes when there is none).
//!
//! It enables no ntcomm-km feature, so its image imports a handful of
//! ntoskrnl functions and nothing from fltmgr.sys; `cargo xtask build`
//! checks both. No `unsafe` of its own.
#![no_std]
#![forbid(unsafe_code)]

use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::ioctl::{self, IoctlHandler};
use ntcomm_km::irp::{Handled, Request};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::sync::SpinLock;
use ntcomm_km::{Error, NtStatus};
use ntcomm_minimal_proto::{self as proto, Total, MAX_MESSAGE};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(proto::POOL_TAG.to_le_bytes());

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);

ntcomm_km::driver_entry!(Minimal, CONFIG, Minimal::new);

/// The last message written: its bytes and length.
struct Mailbox {
    bytes: [u8; MAX_MESSAGE],
    len: usize,
}

struct Minimal {
    total: SpinLock<Total>,
    mailbox: SpinLock<Mailbox>,
}

// Typed: `add` must take `ADD`'s input type and return its output type, or
// this line does not compile.
const TABLE: &[IoctlHandler<Minimal>] = &[IoctlHandler::typed(&proto::ADD, Minimal::add)];

impl Minimal {
    fn new(_device: Device) -> Result<Self, Error> {
        Ok(Self { total: SpinLock::new(Total::default()), mailbox: SpinLock::new(Mailbox { bytes: [0; MAX_MESSAGE], len: 0 }) })
    }

    /// `ADD`: the table has checked the sizes and copied the input out.
    fn add(&self, add: proto::Add) -> Result<Total, NtStatus> {
        Ok(self.total.with(|t| {
            t.total = t.total.wrapping_add(add.value);
            t.calls = t.calls.wrapping_add(1);
            *t
        }))
    }
}

impl DeviceOperations for Minimal {
    fn read(&self, mut req: Request) -> Handled {
        let Some(buf) = req.read_buffer() else {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        };
        let copied = self.mailbox.with(|m| {
            let message = m.bytes.get(..m.len)?;
            let out = buf.get_mut(..message.len())?;
            out.copy_from_slice(message);
            let n = m.len;
            m.len = 0;
            Some(n)
        });
        match copied {
            Some(n) => req.complete_ok(n),
            None => req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL),
        }
    }

    fn write(&self, req: Request) -> Handled {
        let Some(data) = req.write_data() else {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        };
        let n = data.len();
        let stored = self.mailbox.with(|m| {
            let slot = m.bytes.get_mut(..n)?;
            slot.copy_from_slice(data);
            m.len = n;
            Some(())
        });
        match stored {
            Some(()) => req.complete_ok(n),
            None => req.fail(NtStatus::STATUS_INVALID_BUFFER_SIZE),
        }
    }

    fn ioctl(&self, req: Request) -> Handled {
        ioctl::dispatch(TABLE, self, req)
    }
}
