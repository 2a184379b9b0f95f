//! `CTL_CODE`: how Windows packs an I/O control code.
//!
//! ```text
//!  31    16 15   14 13      2 1    0
//! [ device ][access][function][method]
//! ```
//! Device types below 0x8000 and functions below 0x800 are Microsoft's;
//! [`ControlCode::custom`] only builds codes in the customer ranges.

/// The device-type field of a control code (`FILE_DEVICE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceType(pub u16);

impl DeviceType {
    /// `FILE_DEVICE_UNKNOWN`, the usual type of a software-only device.
    pub const UNKNOWN: Self = Self(0x22);
    /// First device type reserved for customers.
    pub const CUSTOM_BASE: Self = Self(0x8000);
}

/// How the I/O manager passes a request's buffers to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Method {
    /// Both buffers are copied through one system buffer.
    Buffered = 0,
    /// Input copied; output described by an MDL the driver reads from (`METHOD_IN_DIRECT`).
    InDirect = 1,
    /// Input copied; output described by an MDL the driver writes to (`METHOD_OUT_DIRECT`).
    OutDirect = 2,
    /// Raw user addresses: the driver must capture them itself (`METHOD_NEITHER`).
    Neither = 3,
}

impl Method {
    /// The method encoded in the two low bits.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Method::Buffered,
            1 => Method::InDirect,
            2 => Method::OutDirect,
            _ => Method::Neither,
        }
    }
}

/// The access a handle needs for the I/O manager to let a code through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access(pub u8);

impl Access {
    /// `FILE_ANY_ACCESS`: any open handle may send it. Use only for queries.
    pub const ANY: Self = Self(0);
    /// `FILE_READ_ACCESS`.
    pub const READ: Self = Self(1);
    /// `FILE_WRITE_ACCESS`.
    pub const WRITE: Self = Self(2);
    /// `FILE_READ_ACCESS | FILE_WRITE_ACCESS`.
    pub const READ_WRITE: Self = Self(3);
}

/// A packed I/O control code, as passed to `DeviceIoControl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlCode(pub u32);

impl ControlCode {
    /// `CTL_CODE(device, function, method, access)` with no range checks.
    pub const fn new(device: DeviceType, function: u16, method: Method, access: Access) -> Self {
        Self(((device.0 as u32) << 16) | (((access.0 & 3) as u32) << 14) | (((function & 0xfff) as u32) << 2) | method as u32)
    }

    /// A code in the customer ranges: `function` is an offset from 0x800 and
    /// must stay below 0x800, so the code can never collide with a system one.
    /// Evaluated in a `const`, an out-of-range offset fails the build.
    pub const fn custom(device: DeviceType, function_offset: u16, method: Method, access: Access) -> Self {
        assert!(function_offset < 0x800, "custom IOCTL function offset must be < 0x800");
        Self::new(device, 0x800 + function_offset, method, access)
    }

    /// The device-type field.
    pub const fn device(self) -> DeviceType {
        DeviceType((self.0 >> 16) as u16)
    }
    /// The function field (12 bits).
    pub const fn function(self) -> u16 {
        ((self.0 >> 2) & 0xfff) as u16
    }
    /// The buffer method.
    pub const fn method(self) -> Method {
        Method::from_bits(self.0)
    }
    /// The required access.
    pub const fn access(self) -> Access {
        Access(((self.0 >> 14) & 3) as u8)
    }
}

impl core::fmt::Display for ControlCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:#010x} (device {:#x}, function {:#x}, {:?}, access {})",
            self.0,
            self.device().0,
            self.function(),
            self.method(),
            self.access().0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_known_windows_codes() {
        // IOCTL_DISK_GET_DRIVE_GEOMETRY = CTL_CODE(IOCTL_DISK_BASE=7, 0, BUFFERED, ANY)
        assert_eq!(ControlCode::new(DeviceType(7), 0, Method::Buffered, Access::ANY).0, 0x0007_0000);
        // FSCTL_GET_REPARSE_POINT = CTL_CODE(FILE_DEVICE_FILE_SYSTEM=9, 42, BUFFERED, ANY)
        assert_eq!(ControlCode::new(DeviceType(9), 42, Method::Buffered, Access::ANY).0, 0x0009_00a8);
        // IOCTL_STORAGE_QUERY_PROPERTY = CTL_CODE(0x2d, 0x500, BUFFERED, ANY)
        assert_eq!(ControlCode::new(DeviceType(0x2d), 0x500, Method::Buffered, Access::ANY).0, 0x002d_1400);
        // The seed's IOCTL_HELLOWORLD_TEST = CTL_CODE(0x8000, 0x01, BUFFERED, ANY)
        assert_eq!(ControlCode::new(DeviceType(0x8000), 1, Method::Buffered, Access::ANY).0, 0x8000_0004);
        // FSCTL_SET_SPARSE = CTL_CODE(9, 49, BUFFERED, FILE_SPECIAL_ACCESS(=ANY))
        assert_eq!(ControlCode::new(DeviceType(9), 49, Method::Buffered, Access::ANY).0, 0x0009_00c4);
        // IOCTL_SCSI_PASS_THROUGH = CTL_CODE(4, 0x401, BUFFERED, READ|WRITE)
        assert_eq!(ControlCode::new(DeviceType(4), 0x401, Method::Buffered, Access::READ_WRITE).0, 0x0004_d004);
    }

    #[test]
    fn custom_codes_live_in_customer_range() {
        let c = ControlCode::custom(DeviceType::CUSTOM_BASE, 5, Method::OutDirect, Access::WRITE);
        assert_eq!(c.function(), 0x805);
        assert_eq!(c.method(), Method::OutDirect);
        assert_eq!(c.access(), Access::WRITE);
        assert_eq!(c.device(), DeviceType::CUSTOM_BASE);
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trips(dev: u16, func in 0u16..0x1000, m in 0u32..4, acc in 0u8..4) {
            let c = ControlCode::new(DeviceType(dev), func, Method::from_bits(m), Access(acc));
            prop_assert_eq!(c.device(), DeviceType(dev));
            prop_assert_eq!(c.function(), func);
            prop_assert_eq!(c.method() as u32, m);
            prop_assert_eq!(c.access(), Access(acc));
            prop_assert_eq!(ControlCode::new(c.device(), c.function(), c.method(), c.access()), c);
        }
    }
}
