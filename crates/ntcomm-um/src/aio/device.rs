//! [`AsyncDevice`]: a driver's device with awaitable reads, writes and
//! IOCTLs (typed, raw, inverted-call waits: any that may pend).
#![cfg(windows)]

use std::sync::Arc;

use ntcomm_proto::Ioctl;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::future::IoFuture;
use super::handle::{CloseOnDrop, IoHandle};
use super::op::Call;
use crate::device::{check_lengths, Device, DeviceAccess};
use crate::error::code::ERROR_INVALID_DATA;
use crate::error::{Error, Result};

/// A device handle whose I/O is awaited instead of blocked on.
///
/// Cloning gives another reference to the same handle. Dropping the last
/// `AsyncDevice` (or calling [`close`](Self::close)) cancels every request
/// still in flight on the handle; their futures then complete with
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled), and futures polled
/// for the first time afterwards fail with `ERROR_INVALID_HANDLE`.
#[derive(Clone)]
pub struct AsyncDevice {
    handle: Arc<IoHandle>,
    /// Closes the handle when the last `AsyncDevice` goes, even while
    /// futures still hold the handle itself.
    _owner: Arc<CloseOnDrop>,
}

impl AsyncDevice {
    /// Opens `path` (e.g. `\\.\MyDevice`) overlapped with read and write
    /// access and binds it to the reactor.
    ///
    /// # Errors
    /// `CreateFileW`'s error (e.g. [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
    /// when the driver is not loaded), or the reactor's.
    pub fn open(path: &str) -> Result<AsyncDevice> {
        AsyncDevice::open_with(path, DeviceAccess::ReadWrite)
    }

    /// Opens `path` overlapped with the given access.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: &str, access: DeviceAccess) -> Result<AsyncDevice> {
        AsyncDevice::from_device(Device::open_with(path, access, true)?)
    }

    pub(crate) fn from_device(device: Device) -> Result<AsyncDevice> {
        let handle = Arc::new(IoHandle::new_skipping(device)?);
        Ok(AsyncDevice { _owner: Arc::new(CloseOnDrop(handle.clone())), handle })
    }

    /// The path the device was opened with.
    pub fn path(&self) -> &str {
        self.handle.path()
    }

    /// The device for synchronous calls (they do not go through the
    /// reactor), e.g. a quick `GET_STATS`.
    pub fn sync(&self) -> &Device {
        self.handle.device()
    }

    /// Cancels every request in flight on the handle and refuses new ones;
    /// the system handle is closed once the last future lets go of it.
    pub fn close(&self) {
        self.handle.close();
    }

    /// Whether [`close`](Self::close) ran (or every `AsyncDevice` was dropped).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// `ReadFile` of up to `capacity` bytes; resolves to the bytes read.
    ///
    /// # Errors
    /// The driver's status for the read (e.g. [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)
    /// when cancelled), or `ERROR_INVALID_HANDLE` after [`close`](Self::close).
    pub fn read(&self, capacity: usize) -> IoFuture<Vec<u8>> {
        IoFuture::new(self.handle.clone(), Call::Read, "", vec![0; capacity], Vec::new(), |buf, _, _| Ok(buf))
    }

    /// `WriteFile` of `data`; resolves to the bytes the device took.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn write(&self, data: Vec<u8>) -> IoFuture<usize> {
        IoFuture::new(self.handle.clone(), Call::Write, "", data, Vec::new(), |_, n, _| Ok(n))
    }

    /// A typed IOCTL of any method with an output buffer of
    /// `output_capacity` bytes; resolves to the output the driver produced.
    /// The sizes are checked first, as [`Device::ioctl`] does. Inverted-call
    /// waits are such IOCTLs: they resolve when the driver completes them.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`](crate::ErrorKind::InvalidParameter) for
    /// sizes the declaration refuses (when polled, before any system call);
    /// otherwise as [`read`](Self::read).
    pub fn ioctl<I, O>(&self, ioctl: &Ioctl<I, O>, input: &I, output_capacity: usize) -> IoFuture<Vec<u8>>
    where
        I: IntoBytes + Immutable + ?Sized,
        O: ?Sized,
    {
        let input = input.as_bytes();
        let call = Call::Ioctl(ioctl.code.0);
        if let Err(e) = check_lengths(ioctl, input.len(), output_capacity, self.path()) {
            return IoFuture::refused(self.handle.clone(), call, e, |buf, _, _| Ok(buf));
        }
        IoFuture::new(self.handle.clone(), call, ioctl.name, vec![0; output_capacity], input.to_vec(), |buf, _, _| Ok(buf))
    }

    /// A typed IOCTL with the caller's second buffer, handed to the driver
    /// as it is: for `METHOD_IN_DIRECT` that buffer is data the driver
    /// reads; for the other methods it is where the output lands (a reused
    /// allocation). Resolves to the buffer, truncated to the byte count the
    /// driver completed with. Sizes are checked as [`ioctl`](Self::ioctl)
    /// does.
    ///
    /// # Errors
    /// As [`ioctl`](Self::ioctl).
    pub fn ioctl_into<I, O>(&self, ioctl: &Ioctl<I, O>, input: &I, buffer: Vec<u8>) -> IoFuture<Vec<u8>>
    where
        I: IntoBytes + Immutable + ?Sized,
        O: ?Sized,
    {
        let input = input.as_bytes();
        let call = Call::Ioctl(ioctl.code.0);
        if let Err(e) = check_lengths(ioctl, input.len(), buffer.len(), self.path()) {
            return IoFuture::refused(self.handle.clone(), call, e, |buf, _, _| Ok(buf));
        }
        IoFuture::new(self.handle.clone(), call, ioctl.name, buffer, input.to_vec(), |buf, _, _| Ok(buf))
    }

    /// A typed IOCTL whose output is one `O`; resolves to it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) if the driver
    /// returned fewer than `size_of::<O>()` bytes; otherwise as
    /// [`ioctl`](Self::ioctl).
    pub fn call<I, O>(&self, ioctl: &Ioctl<I, O>, input: &I) -> IoFuture<O>
    where
        I: IntoBytes + Immutable + ?Sized,
        O: FromBytes,
    {
        let input = input.as_bytes();
        let size = core::mem::size_of::<O>();
        let call = Call::Ioctl(ioctl.code.0);
        if let Err(e) = check_lengths(ioctl, input.len(), size, self.path()) {
            return IoFuture::refused(self.handle.clone(), call, e, read_output::<O>);
        }
        IoFuture::new(self.handle.clone(), call, ioctl.name, vec![0; size], input.to_vec(), read_output::<O>)
    }

    /// Any IOCTL, unchecked; resolves to the output.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn ioctl_raw(&self, code: u32, input: Vec<u8>, output_capacity: usize) -> IoFuture<Vec<u8>> {
        IoFuture::new(self.handle.clone(), Call::Ioctl(code), "", vec![0; output_capacity], input, |buf, _, _| Ok(buf))
    }
}

/// The output of [`AsyncDevice::call`] as its type.
fn read_output<O: FromBytes>(buf: Vec<u8>, n: usize, what: &dyn Fn() -> String) -> Result<O> {
    let want = core::mem::size_of::<O>();
    match O::read_from_prefix(&buf) {
        Ok((o, _)) if n >= want => Ok(o),
        _ => Err(Error::new(format!("{}: driver returned {n} of {want} bytes", what()), ERROR_INVALID_DATA)),
    }
}
