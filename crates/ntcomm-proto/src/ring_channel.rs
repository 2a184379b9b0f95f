//! The contract of a shared-memory ring channel (`ntcomm_km::ring_channel`
//! in the driver, `ntcomm_um::RingChannel` in the client): the open request
//! and its reply, the channel's status, and the two IOCTLs a driver declares
//! for them with its own device type and function numbers.
//!
//! ```
//! use ntcomm_proto::ring_channel::RingIoctls;
//! use ntcomm_proto::DeviceType;
//!
//! /// My driver's ring IOCTLs: function offsets 0x20 (open) and 0x21 (status).
//! pub const RINGS: RingIoctls = RingIoctls::new(DeviceType(0x8123), 0x20, 0x21);
//! assert_eq!(RINGS.open.name, "RING_OPEN");
//! ```

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ctl::{Access, DeviceType, Method};
use crate::ioctl::{Ioctl, Len};
use crate::ring::RingLayout;

/// The two IOCTLs of a driver's ring channels, declared by the driver.
#[derive(Clone, Copy, Debug)]
pub struct RingIoctls {
    /// Opens the handle's channel: a section with two rings (driver-to-user
    /// and user-to-driver) mapped into the caller and the driver, and two
    /// named events. Pends until the channel's worker has set it up; one
    /// channel per handle.
    pub open: Ioctl<RingOpen, RingInfo>,
    /// Counters and state of the handle's channel.
    pub status: Ioctl<(), RingStatus>,
}

impl RingIoctls {
    /// The ring IOCTLs of a driver with IOCTLs of `device`, at customer
    /// function offsets (as [`Ioctl::new`]) `open_offset` (`METHOD_BUFFERED`,
    /// read and write access) and `status_offset` (`METHOD_BUFFERED`, any access).
    pub const fn new(device: DeviceType, open_offset: u16, status_offset: u16) -> Self {
        RingIoctls {
            open: Ioctl::new(
                "RING_OPEN",
                device,
                open_offset,
                Method::Buffered,
                Access::READ_WRITE,
                Len::of::<RingOpen>(),
                Len::of::<RingInfo>(),
            ),
            status: Ioctl::new("RING_STATUS", device, status_offset, Method::Buffered, Access::ANY, Len::NONE, Len::of::<RingStatus>()),
        }
    }
}

/// Input of [`RingIoctls::open`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RingOpen {
    /// Data bytes of the driver-to-user ring (power of two, 4 KiB up to the
    /// driver's limit).
    pub d2u_capacity: u32,
    /// Data bytes of the user-to-driver ring.
    pub u2d_capacity: u32,
    /// Driver-defined: handed to the driver's channel handler as it is (e.g.
    /// what the driver does with the records it receives).
    pub mode: u32,
    /// 0: both rings carry variable-length records. Otherwise every record on
    /// both rings has exactly this many bytes (a multiple of 8, at most half
    /// the smaller capacity): the rings are then fixed-size rings
    /// (`ntcomm_proto::ring::init_fixed`).
    pub record_size: u32,
    /// 16 random bytes from the client, mixed into the channel's object
    /// names so that no other process can predict them.
    pub nonce: [u8; 16],
}

impl RingOpen {
    /// True if the record size suits both rings (see [`RingOpen::record_size`]).
    pub fn record_size_ok(&self) -> bool {
        let smaller = self.d2u_capacity.min(self.u2d_capacity);
        self.record_size == 0 || RingLayout::record_size_ok(self.record_size, smaller)
    }
}

/// Output of [`RingIoctls::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RingInfo {
    /// Where the driver mapped the section in the caller's address space.
    pub base: u64,
    /// Size of that view.
    pub size: u64,
    /// Offset of the driver-to-user ring region in the view.
    pub d2u_offset: u64,
    /// Offset of the user-to-driver ring region in the view.
    pub u2d_offset: u64,
    /// NUL-padded UTF-16 name of the channel, e.g. `PREFIX-0123...`: the
    /// section is `Global\NAME`, the events `Global\NAME-d2u` (the driver
    /// sets it to wake a sleeping client consumer) and `Global\NAME-u2d` (the
    /// client sets it to wake the driver's consumer).
    pub name: [u16; 48],
}

impl Default for RingInfo {
    fn default() -> Self {
        Self { base: 0, size: 0, d2u_offset: 0, u2d_offset: 0, name: [0; 48] }
    }
}

/// Output of [`RingIoctls::status`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RingStatus {
    /// See the `RING_STATE_*` constants.
    pub state: u32,
    /// Why the channel failed (`ntcomm_proto::ring::reason`), 0 if it did not.
    pub failed_reason: u32,
    /// Records the driver published to the driver-to-user ring.
    pub produced: u64,
    /// Records the driver's handler says it still has to send.
    pub backlog: u64,
    /// Records from the user-to-driver ring the handler accepted.
    pub consumed: u64,
    /// Records the handler refused (e.g. failed its validation).
    pub bad_records: u64,
    /// Bytes of the accepted records.
    pub consumed_bytes: u64,
    /// Times the driver signalled the client's event.
    pub wakeups_sent: u64,
}

/// The channel is being set up.
pub const RING_STATE_OPENING: u32 = 0;
/// The channel is serving.
pub const RING_STATE_RUNNING: u32 = 1;
/// The channel detected corruption and stopped using the shared memory.
pub const RING_STATE_FAILED: u32 = 2;
/// The handle has no channel.
pub const RING_STATE_NONE: u32 = 3;

/// Bytes of the section region holding a ring of `capacity` data bytes
/// (header included, rounded up to 64), `None` if the capacity is not valid.
pub const fn region_len(capacity: u32) -> Option<usize> {
    match RingLayout::bytes_for(capacity) {
        Some(n) => Some((n + 63) & !63),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctls_take_the_drivers_numbers() {
        const R: RingIoctls = RingIoctls::new(DeviceType(0x8123), 0x20, 0x21);
        assert_eq!(R.open.code.function(), 0x820);
        assert_eq!(R.status.code.function(), 0x821);
        assert_eq!(R.open.code.device().0, 0x8123);
    }

    #[test]
    fn record_size_and_regions() {
        let mut o = RingOpen { d2u_capacity: 4096, u2d_capacity: 8192, ..RingOpen::default() };
        assert!(o.record_size_ok());
        o.record_size = 24;
        assert!(o.record_size_ok());
        o.record_size = 25;
        assert!(!o.record_size_ok());
        assert_eq!(region_len(4096).map(|n| n % 64), Some(0));
        assert_eq!(region_len(4095), None);
    }
}
