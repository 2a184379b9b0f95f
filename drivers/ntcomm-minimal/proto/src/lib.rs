//! The protocol of `ntcomm-minimal`, declared once for the driver and its
//! clients: names, one typed IOCTL and the read/write message bound.
//!
//! It depends on `ntcomm-proto` alone; the message layouts derive through
//! its zerocopy re-export.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ntcomm_proto::{Access, DeviceType, FromBytes, Immutable, IntoBytes, Ioctl, KnownLayout, Method};

/// The device object's name.
pub const DEVICE_NAME: &str = r"\Device\NtCommMinimal";
/// The symbolic link user mode opens.
pub const DOS_NAME: &str = r"\DosDevices\NtCommMinimal";
/// The Win32 path of the device.
pub const USER_PATH: &str = r"\\.\NtCommMinimal";
/// The driver's pool tag ("NtMn").
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"NtMn");
/// The device type of the IOCTLs (customer range).
pub const DEVICE_TYPE: DeviceType = DeviceType(0x8e7d);
/// The largest message a write may carry; a read returns the last one.
pub const MAX_MESSAGE: usize = 256;

/// Input of [`ADD`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Add {
    /// Added to the driver's total (wrapping).
    pub value: u64,
}

/// Output of [`ADD`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Total {
    /// The total after this call.
    pub total: u64,
    /// How many `ADD`s the driver has served, this one included.
    pub calls: u64,
}

/// Adds to the driver's running total and returns it.
/// Its sizes come from the types (`Ioctl::fixed`), so the declaration cannot
/// disagree with them.
pub const ADD: Ioctl<Add, Total> = Ioctl::fixed("ADD", DEVICE_TYPE, 0, Method::Buffered, Access::ANY);
