//! The client end of a driver's shared-memory channel: a driver-to-user
//! ring this process consumes and a user-to-driver ring it produces, in a
//! section the driver mapped into this process, with named events for
//! wake-ups (see `ntcomm_proto::ring` for the protocol).
//!
//! [`RingChannel::open`] asks the driver through the open IOCTL it declared
//! (`ntcomm_proto::ring_channel::RingIoctls`: its own device type and
//! function numbers), then splits into a
//! [`RingSender`] and a [`RingReceiver`] that may live on different threads.
//! The mapping belongs to the device handle: it stays valid while any of the
//! three is alive, and the driver unmaps it when the handle closes.
#![cfg(windows)]

use core::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ntcomm_proto::ring::{Consumer, Producer, RingError, SleepDecision};
use ntcomm_proto::ring_channel::{RingInfo, RingIoctls, RingOpen, RingStatus};
use ntcomm_proto::Ioctl;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::Cryptography::{BCryptGenRandom, BCRYPT_USE_SYSTEM_PREFERRED_RNG};
use windows_sys::Win32::System::Threading::{OpenEventW, SetEvent, WaitForSingleObject, EVENT_MODIFY_STATE, SYNCHRONIZATION_SYNCHRONIZE};
use zerocopy::{Immutable, IntoBytes};

use crate::device::Device;
use crate::error::code::{ERROR_INVALID_DATA, ERROR_INVALID_PARAMETER, ERROR_TIMEOUT};
use crate::error::{Error, Result};
use crate::util::{timeout_ms, to_wide_nul};

/// An event handle opened by name, closed on drop.
struct EventHandle(HANDLE);

// SAFETY: event handles may be used from any thread.
unsafe impl Send for EventHandle {}
// SAFETY: as above.
unsafe impl Sync for EventHandle {}

impl EventHandle {
    fn open(name: &str) -> Result<Self> {
        let wide = to_wide_nul(name).ok_or_else(|| Error::new(format!("event name {name:?}"), ERROR_INVALID_PARAMETER))?;
        // SAFETY: NUL-terminated name.
        let h = unsafe { OpenEventW(SYNCHRONIZATION_SYNCHRONIZE | EVENT_MODIFY_STATE, 0, wide.as_ptr()) };
        if h.is_null() {
            return Err(Error::last(format!("OpenEventW {name}")));
        }
        Ok(Self(h))
    }

    fn set(&self) -> Result<()> {
        // SAFETY: our event handle.
        if unsafe { SetEvent(self.0) } == 0 {
            return Err(Error::last("SetEvent"));
        }
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        // SAFETY: our event handle.
        match unsafe { WaitForSingleObject(self.0, timeout_ms(timeout)) } {
            WAIT_OBJECT_0 => Ok(true),
            258 => Ok(false),
            _ => Err(Error::last("WaitForSingleObject")),
        }
    }
}

impl Drop for EventHandle {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// What keeps the mapping alive: the device handle and the events.
struct Shared {
    device: Device,
    ioctls: RingIoctls,
    info: RingInfo,
    name: String,
    d2u_event: EventHandle,
    u2d_event: EventHandle,
}

impl Shared {
    fn status(&self) -> Result<RingStatus> {
        self.device.ioctl_get(&self.ioctls.status)
    }
}

fn ring_error(e: RingError, what: &str) -> Error {
    let code = match e {
        RingError::BufferTooSmall { .. } => crate::error::code::ERROR_INSUFFICIENT_BUFFER,
        RingError::TooLarge { .. } | RingError::WrongSize { .. } | RingError::NotFixedSize => ERROR_INVALID_PARAMETER,
        RingError::Layout(_) | RingError::Corrupt(_) => ERROR_INVALID_DATA,
    };
    Error::new(format!("{what}: {e}"), code)
}

/// What [`RingChannel::open_with`] asks the driver for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Data bytes of the driver-to-user ring (a power of two, 4 KiB to the driver's limit).
    pub d2u_capacity: u32,
    /// Data bytes of the user-to-driver ring.
    pub u2d_capacity: u32,
    /// Driver-defined (`RingOpen::mode`), handed to the driver's channel
    /// handler as it is; 0 by default.
    pub mode: u32,
    /// `Some(n)`: every record on both rings has exactly `n` bytes (a multiple
    /// of 8, at most half the smaller capacity). Fixed-size rings carry no
    /// per-record header and move records in bulk
    /// ([`RingSender::send_records`], [`RingReceiver::recv_records`]).
    /// `None`: variable-length records.
    pub record_size: Option<u32>,
}

impl RingOptions {
    /// Variable-length records, mode 0, the given capacities.
    pub fn new(d2u_capacity: u32, u2d_capacity: u32) -> Self {
        RingOptions { d2u_capacity, u2d_capacity, mode: 0, record_size: None }
    }

    /// These options with the driver-defined `mode`.
    pub fn with_mode(self, mode: u32) -> Self {
        RingOptions { mode, ..self }
    }
}

/// A shared-memory channel with the driver.
pub struct RingChannel {
    shared: Arc<Shared>,
    sender: RingSender,
    receiver: RingReceiver,
}

/// Produces records for the driver (user-to-driver ring).
pub struct RingSender {
    shared: Arc<Shared>,
    producer: Producer,
}

/// Consumes the driver's records (driver-to-user ring).
pub struct RingReceiver {
    shared: Arc<Shared>,
    consumer: Consumer,
}

// SAFETY: each endpoint is the only user of its ring role; the memory they
// point into stays mapped while `shared` (the device handle) lives.
unsafe impl Send for RingSender {}
// SAFETY: as above.
unsafe impl Send for RingReceiver {}

fn nonce() -> Result<[u8; 16]> {
    let mut n = [0u8; 16];
    // SAFETY: a writable 16-byte buffer; the system RNG needs no handle.
    let status = unsafe { BCryptGenRandom(ptr::null_mut(), n.as_mut_ptr(), 16, BCRYPT_USE_SYSTEM_PREFERRED_RNG) };
    if status != 0 {
        return Err(Error::from_ntstatus("BCryptGenRandom", ntcomm_proto::NtStatus(status)));
    }
    Ok(n)
}

impl RingChannel {
    /// Opens a channel on a new handle to `path` through the driver's ring
    /// IOCTLs `ioctls`, with rings of the given data capacities (powers of
    /// two, 4 KiB to the driver's limit).
    pub fn open(path: &str, ioctls: &RingIoctls, d2u_capacity: u32, u2d_capacity: u32) -> Result<RingChannel> {
        Self::open_with(path, ioctls, &RingOptions::new(d2u_capacity, u2d_capacity))
    }

    /// Opens a channel on a new handle to `path` as `options` say.
    pub fn open_with(path: &str, ioctls: &RingIoctls, options: &RingOptions) -> Result<RingChannel> {
        let device = Device::open(path)?;
        let request = RingOpen {
            d2u_capacity: options.d2u_capacity,
            u2d_capacity: options.u2d_capacity,
            mode: options.mode,
            record_size: options.record_size.unwrap_or(0),
            nonce: nonce()?,
        };
        let mut info = RingInfo::default();
        device.ioctl(&ioctls.open, &request, &mut info)?;
        let end = info.name.iter().position(|&c| c == 0).unwrap_or(info.name.len());
        let name = String::from_utf16_lossy(info.name.get(..end).unwrap_or(&[]));
        let d2u_event = EventHandle::open(&format!(r"Global\{name}-d2u"))?;
        let u2d_event = EventHandle::open(&format!(r"Global\{name}-u2d"))?;
        let base = info.base as usize as *mut u8;
        let (d2u_len, u2d_len) = (info.u2d_offset as usize, (info.size - info.u2d_offset) as usize);
        if info.d2u_offset != 0 || info.u2d_offset > info.size || base.is_null() {
            return Err(Error::new(format!("{} on {path}: inconsistent reply {info:?}", ioctls.open.name), ERROR_INVALID_DATA));
        }
        #[allow(clippy::multiple_unsafe_ops_per_block)] // two attaches and an offset of one mapping
        // SAFETY: the driver mapped `size` bytes at `base` into this process
        // and keeps them mapped until `device` closes; `Shared` owns `device`
        // and every endpoint holds `Shared`. The driver may write the memory
        // at any time: the ring tolerates that.
        let (consumer, producer) = unsafe {
            let c = Consumer::attach(base, d2u_len).map_err(|e| ring_error(e, "attach driver-to-user ring"))?;
            let p =
                Producer::attach(base.add(info.u2d_offset as usize), u2d_len).map_err(|e| ring_error(e, "attach user-to-driver ring"))?;
            (c, p)
        };
        let asked = options.record_size.map(|n| n as usize);
        if consumer.record_size() != asked || producer.record_size() != asked {
            return Err(Error::new(
                format!("{} on {path}: asked for record size {asked:?}, the rings have {:?}", ioctls.open.name, consumer.record_size()),
                ERROR_INVALID_DATA,
            ));
        }
        let shared = Arc::new(Shared { device, ioctls: *ioctls, info, name, d2u_event, u2d_event });
        Ok(RingChannel {
            sender: RingSender { shared: shared.clone(), producer },
            receiver: RingReceiver { shared: shared.clone(), consumer },
            shared,
        })
    }

    /// The channel's name (its objects are `Global\NAME`, `...-d2u`, `...-u2d`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the driver mapped the channel, and how big it is.
    pub fn mapping(&self) -> (usize, usize) {
        (self.shared.info.base as usize, self.shared.info.size as usize)
    }

    /// Sends the driver one of its own IOCTLs about this channel (on the
    /// channel's handle), e.g. a command for its handler.
    pub fn control<I: IntoBytes + Immutable>(&self, ioctl: &Ioctl<I, ()>, input: &I) -> Result<()> {
        self.shared.device.ioctl(ioctl, input, &mut ())?;
        Ok(())
    }

    /// The driver's view of the channel.
    pub fn status(&self) -> Result<RingStatus> {
        self.shared.status()
    }

    /// The device handle the channel lives on.
    pub fn device(&self) -> &Device {
        &self.shared.device
    }

    /// Separates the two directions, e.g. for two threads.
    pub fn split(self) -> (RingSender, RingReceiver) {
        (self.sender, self.receiver)
    }
}

impl RingSender {
    /// Sends one record, waiting up to `timeout` for room while the ring is
    /// full (the driver does not signal freed space: this polls with
    /// back-off). Wakes the driver only if it announced it sleeps.
    pub fn send(&mut self, record: &[u8], timeout: Option<Duration>) -> Result<()> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            match self.producer.try_push(record).map_err(|e| ring_error(e, "send"))? {
                Some(wake) => {
                    if wake.0 {
                        self.shared.u2d_event.set()?;
                    }
                    return Ok(());
                }
                None => {
                    if timeout.is_some_and(|t| start.elapsed() >= t) {
                        return Err(Error::new("send: the driver-bound ring stayed full", ERROR_TIMEOUT));
                    }
                    backoff(&mut spins);
                }
            }
        }
    }

    /// Sends one record if it fits now, waking the driver if it announced it
    /// sleeps; `Ok(false)` if the ring is full.
    pub fn try_send(&mut self, record: &[u8]) -> Result<bool> {
        match self.producer.try_push(record).map_err(|e| ring_error(e, "send"))? {
            Some(wake) => {
                if wake.0 {
                    self.shared.u2d_event.set()?;
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stages a record without publishing it; `Ok(false)` if it does not fit
    /// now. Publish with [`flush`](Self::flush): one wake-up check per batch.
    pub fn write(&mut self, record: &[u8]) -> Result<bool> {
        self.producer.write(record).map_err(|e| ring_error(e, "write"))
    }

    /// Publishes staged records, waking the driver if it sleeps.
    pub fn flush(&mut self) -> Result<()> {
        if self.producer.publish().map_err(|e| ring_error(e, "publish"))?.0 {
            self.shared.u2d_event.set()?;
        }
        Ok(())
    }

    /// The largest record the ring accepts (the record size of a fixed-size ring).
    pub fn max_record(&self) -> usize {
        self.producer.max_record()
    }

    /// The fixed record size, or `None` for variable-length records.
    pub fn record_size(&self) -> Option<usize> {
        self.producer.record_size()
    }

    /// Stages as many whole records of `records` (fixed-size records back to
    /// back) as fit now, with one copy; returns how many. Publish with
    /// [`flush`](Self::flush).
    pub fn write_records(&mut self, records: &[u8]) -> Result<usize> {
        self.producer.write_records(records).map_err(|e| ring_error(e, "write_records"))
    }

    /// Sends all of `records` (fixed-size records back to back), publishing
    /// as it goes and waiting up to `timeout` in all for room while the ring
    /// is full. On a timeout, the records sent so far stay sent and the error
    /// says how many.
    pub fn send_records(&mut self, records: &[u8], timeout: Option<Duration>) -> Result<()> {
        let size = self.record_size().ok_or_else(|| ring_error(RingError::NotFixedSize, "send_records"))?;
        let start = Instant::now();
        let mut spins = 0u32;
        let mut done = 0;
        while let Some(rest) = records.get(done..).filter(|r| !r.is_empty()) {
            let n = self.write_records(rest)?;
            if n > 0 {
                done += n * size;
                self.flush()?;
                spins = 0;
                continue;
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                let sent = done / size;
                return Err(Error::new(format!("send_records: the driver-bound ring stayed full after {sent} records"), ERROR_TIMEOUT));
            }
            backoff(&mut spins);
        }
        Ok(())
    }

    /// The driver's view of the channel.
    pub fn status(&self) -> Result<RingStatus> {
        self.shared.status()
    }

    /// Declares the channel failed (both sides then report it).
    pub fn fail(&mut self, reason: u32) {
        self.producer.fail(reason);
    }
}

impl RingReceiver {
    /// Receives the next record into `buf`, sleeping on the channel's event
    /// while the ring is empty; `Ok(None)` if `timeout` passes first.
    pub fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        self.wait_for(timeout, |c| c.try_pop(buf).map_err(|e| ring_error(e, "recv")))
    }

    /// Receives as many whole fixed-size records as are there and fit `buf`
    /// (at least one), back to back, sleeping while the ring is empty; returns
    /// how many, 0 if `timeout` passes first.
    pub fn recv_records(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        let got = self.wait_for(timeout, |c| match c.pop_records(buf) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(e) => Err(ring_error(e, "recv_records")),
        })?;
        Ok(got.unwrap_or(0))
    }

    /// Takes as many whole fixed-size records as are there and fit `buf`,
    /// without waiting; returns how many.
    pub fn try_recv_records(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.consumer.pop_records(buf).map_err(|e| ring_error(e, "recv_records"))
    }

    /// The fixed record size, or `None` for variable-length records.
    pub fn record_size(&self) -> Option<usize> {
        self.consumer.record_size()
    }

    /// Runs `attempt` until it yields, sleeping on the channel's event while
    /// the ring is empty; `Ok(None)` if `timeout` passes first.
    fn wait_for<T>(&mut self, timeout: Option<Duration>, mut attempt: impl FnMut(&mut Consumer) -> Result<Option<T>>) -> Result<Option<T>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(v) = attempt(&mut self.consumer)? {
                return Ok(Some(v));
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
                None => None,
            };
            match self.consumer.prepare_sleep().map_err(|e| ring_error(e, "recv"))? {
                SleepDecision::DataReady => continue,
                SleepDecision::MustWait => {
                    let woken = self.shared.d2u_event.wait(left);
                    self.consumer.cancel_sleep();
                    woken?;
                }
            }
        }
    }

    /// Announces that this consumer is about to sleep on the data event
    /// (the driver then signals it); `DataReady` if a record arrived first.
    #[cfg(feature = "async")]
    pub(crate) fn prepare_sleep(&mut self) -> Result<SleepDecision> {
        self.consumer.prepare_sleep().map_err(|e| ring_error(e, "recv"))
    }

    /// Withdraws the announcement of [`prepare_sleep`](Self::prepare_sleep).
    #[cfg(feature = "async")]
    pub(crate) fn cancel_sleep(&mut self) {
        self.consumer.cancel_sleep();
    }

    /// The driver-to-user data event, to wait on after `prepare_sleep`.
    #[cfg(feature = "async")]
    pub(crate) fn data_event(&self) -> HANDLE {
        self.shared.d2u_event.0
    }

    /// Takes the next record if there is one, without waiting.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        self.consumer.try_pop(buf).map_err(|e| ring_error(e, "recv"))
    }

    /// The largest record the driver may send.
    pub fn max_record(&self) -> usize {
        self.consumer.max_record()
    }

    /// The driver's view of the channel.
    pub fn status(&self) -> Result<RingStatus> {
        self.shared.status()
    }
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else if *spins < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(200));
    }
}

impl RingChannel {
    /// The address of a ring's header in this process, for tests that play a
    /// hostile client.
    ///
    /// # Safety
    /// Writing through the pointer can break the channel (which is what such
    /// tests want); it is valid while the channel is alive.
    pub unsafe fn header_ptr_for_fault_injection(&self, user_to_driver: bool) -> *mut u8 {
        let off = if user_to_driver { self.shared.info.u2d_offset } else { 0 };
        (self.shared.info.base + off) as usize as *mut u8
    }
}
