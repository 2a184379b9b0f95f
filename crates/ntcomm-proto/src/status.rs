//! NTSTATUS values that cross the boundary, with their names.

/// An NTSTATUS code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct NtStatus(pub i32);

macro_rules! statuses {
    ($($name:ident = $val:expr,)*) => {
        impl NtStatus {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: NtStatus = NtStatus($val as u32 as i32);
            )*

            /// The symbolic name, if this is a status ntcomm knows.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 as u32 {
                    $(x if x == $val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000u32,
    STATUS_PENDING = 0x0000_0103u32,
    STATUS_BUFFER_OVERFLOW = 0x8000_0005u32,
    STATUS_UNSUCCESSFUL = 0xC000_0001u32,
    STATUS_NOT_IMPLEMENTED = 0xC000_0002u32,
    STATUS_INVALID_PARAMETER = 0xC000_000Du32,
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010u32,
    STATUS_ACCESS_DENIED = 0xC000_0022u32,
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023u32,
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035u32,
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009Au32,
    STATUS_QUOTA_EXCEEDED = 0xC000_0044u32,
    STATUS_DEVICE_NOT_READY = 0xC000_00A3u32,
    STATUS_DEVICE_BUSY = 0x8000_0011u32,
    STATUS_INTERNAL_ERROR = 0xC000_00E5u32,
    STATUS_CANCELLED = 0xC000_0120u32,
    STATUS_NOT_FOUND = 0xC000_0225u32,
    STATUS_DELETE_PENDING = 0xC000_0056u32,
    STATUS_INVALID_BUFFER_SIZE = 0xC000_0206u32,
    STATUS_NOT_SUPPORTED = 0xC000_00BBu32,
    STATUS_TIMEOUT = 0x0000_0102u32,
    STATUS_DATA_ERROR = 0xC000_003Eu32,
    STATUS_ACCESS_VIOLATION = 0xC000_0005u32,
    STATUS_PORT_DISCONNECTED = 0xC000_0037u32,
    STATUS_CONNECTION_COUNT_LIMIT = 0xC000_0246u32,
    STATUS_FLT_NO_WAITER_FOR_REPLY = 0xC01C_0020u32,
    STATUS_INVALID_HANDLE = 0xC000_0008u32,
    STATUS_INVALID_VIEW_SIZE = 0xC000_001Fu32,
    STATUS_PORT_MESSAGE_TOO_LONG = 0xC000_002Fu32,
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034u32,
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003Au32,
    STATUS_PORT_CONNECTION_REFUSED = 0xC000_0041u32,
    STATUS_INVALID_PORT_HANDLE = 0xC000_0042u32,
    STATUS_IO_TIMEOUT = 0xC000_00B5u32,
    STATUS_SERVER_SID_MISMATCH = 0xC000_02A0u32,
    STATUS_REPLY_MESSAGE_MISMATCH = 0xC000_021Fu32,
    STATUS_LPC_REPLY_LOST = 0xC000_0253u32,
}

impl NtStatus {
    /// `NT_SUCCESS`: success and informational codes.
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }
}

impl core::fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for NtStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({:#010x})", n, self.0 as u32),
            None => write!(f, "NTSTATUS {:#010x}", self.0 as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_success() {
        assert!(NtStatus::STATUS_PENDING.is_success());
        assert!(!NtStatus::STATUS_CANCELLED.is_success());
        assert!(!NtStatus::STATUS_DEVICE_BUSY.is_success());
        assert_eq!(NtStatus(0xC000_0120u32 as i32).name(), Some("STATUS_CANCELLED"));
        extern crate std;
        use std::string::ToString;
        assert_eq!(NtStatus::STATUS_CANCELLED.to_string(), "STATUS_CANCELLED (0xc0000120)");
        assert_eq!(NtStatus(0x1234).to_string(), "NTSTATUS 0x00001234");
    }
}
