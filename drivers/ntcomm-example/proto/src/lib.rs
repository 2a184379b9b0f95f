//! The protocol of `ntcomm-example`, declared once for the driver and its
//! clients: names, one typed IOCTL, the ring channel's IOCTLs and one typed
//! Filter Manager port message.
//!
//! It depends on `ntcomm-proto` alone; the message layouts derive through
//! its zerocopy re-export.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ntcomm_proto::ring_channel::RingIoctls;
use ntcomm_proto::{Access, DeviceType, FromBytes, Immutable, IntoBytes, Ioctl, KnownLayout, Message, Method};

/// The device object's name.
pub const DEVICE_NAME: &str = r"\Device\NtCommExample";
/// The symbolic link user mode opens.
pub const DOS_NAME: &str = r"\DosDevices\NtCommExample";
/// The Win32 path of the device.
pub const USER_PATH: &str = r"\\.\NtCommExample";
/// Altitude of the example's minifilter instance (a test value in the
/// "FSFilter Activity Monitor" range; a shipped minifilter gets its own from
/// Microsoft).
pub const MINIFILTER_ALTITUDE: &str = "385110";
/// The driver's pool tag ("NtEx").
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"NtEx");
/// The device type of the IOCTLs (customer range, not the demo's or the
/// minimal driver's).
pub const DEVICE_TYPE: DeviceType = DeviceType(0x8e7e);

/// Input of [`CHECKSUM`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Words {
    /// The words to sum.
    pub words: [u32; 4],
}

/// Output of [`CHECKSUM`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Sums {
    /// The sum of the words (no wrap: 64 bits).
    pub sum: u64,
    /// The XOR of the words.
    pub xor: u32,
    /// How many `CHECKSUM`s the driver has served, this one included.
    pub calls: u32,
}

/// Sums and XORs four words; counts the calls.
pub const CHECKSUM: Ioctl<Words, Sums> = Ioctl::fixed("CHECKSUM", DEVICE_TYPE, 0, Method::Buffered, Access::ANY);

/// The ring channel's IOCTLs (open and status), on the example's own
/// device type and function numbers. Every record the client sends on the
/// user-to-driver ring comes back on the driver-to-user ring with its ASCII
/// letters upper-cased.
pub const RINGS: RingIoctls = RingIoctls::new(DEVICE_TYPE, 0x10, 0x11);
/// The largest capacity of each ring a client may ask for.
pub const MAX_RING_CAPACITY: u32 = 1 << 20;
/// Ring channels open at once, over every client.
pub const MAX_RING_CHANNELS: usize = 4;
/// Section bytes over every channel.
pub const RING_SECTION_BUDGET: u64 = 8 << 20;
/// Prefix of the ring channels' object names.
pub const RING_NAME_PREFIX: &str = "NtCommExample";

/// The Filter Manager communication port.
pub const PORT_NAME: &str = r"\NtCommExamplePort";
/// The connection context a client must present.
pub const PORT_CONTEXT: &[u8] = b"ntcomm-example";
/// Connections at once.
pub const PORT_MAX_CONNECTIONS: u32 = 4;

/// Request of [`DIVIDE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Division {
    /// The dividend.
    pub dividend: u64,
    /// The divisor; zero is refused with `STATUS_INVALID_PARAMETER`.
    pub divisor: u64,
}

/// Reply of [`DIVIDE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Quotient {
    /// `dividend / divisor`.
    pub quotient: u64,
    /// `dividend % divisor`.
    pub remainder: u64,
}

/// The port's one message: a client sends a [`Division`], the driver
/// replies with the [`Quotient`]. A request of another size is refused
/// with `STATUS_INVALID_PARAMETER`.
pub const DIVIDE: Message<Division, Quotient> = Message::fixed("DIVIDE");

/// What the ring handler does to a record: ASCII letters upper-cased,
/// everything else as it was (the client's check).
pub fn upper(record: &mut [u8]) {
    record.make_ascii_uppercase();
}
