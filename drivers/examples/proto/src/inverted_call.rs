//! The inverted-call example's protocol (`drivers/examples/inverted-call`).

use ntcomm_proto::{Access, DeviceType, FromBytes, Immutable, IntoBytes, Ioctl, KnownLayout, Method};

/// A value delivered to a waiting client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Event {
    /// The value the signalling client sent.
    pub value: u64,
}

/// The device type of the example's IOCTLs (customer range).
pub const DEVICE_TYPE: DeviceType = DeviceType(0x8e71);
/// `WAIT`: pends until a `SIGNAL` completes it with its [`Event`].
pub const WAIT: Ioctl<(), Event> = Ioctl::fixed("WAIT", DEVICE_TYPE, 0, Method::Buffered, Access::ANY);
/// `SIGNAL`: completes the oldest pended `WAIT` with the event;
/// `STATUS_NOT_FOUND` when nobody waits.
pub const SIGNAL: Ioctl<Event, ()> = Ioctl::fixed("SIGNAL", DEVICE_TYPE, 1, Method::Buffered, Access::ANY);
/// Waits held at once, at most (more are refused with
/// `STATUS_INSUFFICIENT_RESOURCES`).
pub const MAX_WAITERS: usize = 64;

/// The device object.
pub const DEVICE_NAME: &str = r"\Device\NtCommExampleInverted";
/// Its symbolic link.
pub const DOS_NAME: &str = r"\DosDevices\NtCommExampleInverted";
/// The path a client opens.
pub const USER_PATH: &str = r"\\.\NtCommExampleInverted";
