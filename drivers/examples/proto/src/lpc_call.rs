//! The LPC example's protocol (`drivers/examples/lpc-call`): a client's
//! `ASK` IOCTL makes the driver call a user-mode LPC server with
//! [`INCREMENT`] and return the server's answer.

use ntcomm_proto::{Access, DeviceType, FromBytes, Immutable, IntoBytes, Ioctl, KnownLayout, Message, Method};

/// A number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "ntcomm_proto::zerocopy")]
#[repr(C)]
pub struct Value {
    /// The number.
    pub v: u64,
}

/// The device type of the example's IOCTLs (customer range).
pub const DEVICE_TYPE: DeviceType = DeviceType(0x8e72);
/// `ASK`: the driver sends the value to the LPC server ([`INCREMENT`]) and
/// returns its answer. Fails with the LPC error's status, e.g.
/// `STATUS_OBJECT_NAME_NOT_FOUND` with no server, `STATUS_SERVER_SID_MISMATCH`
/// when the server runs as another user than the caller.
pub const ASK: Ioctl<Value, Value> = Ioctl::fixed("ASK", DEVICE_TYPE, 0, Method::Buffered, Access::ANY);
/// The LPC message the driver sends; the server answers `v + 1`.
pub const INCREMENT: Message<Value, Value> = Message::fixed("INCREMENT");
/// Asks in flight at once, at most (more are refused with
/// `STATUS_INSUFFICIENT_RESOURCES`).
pub const MAX_ASKS: usize = 16;

/// The server's connection port.
pub const PORT_NAME: &str = r"\RPC Control\NtCommExampleLpc";
/// The device object.
pub const DEVICE_NAME: &str = r"\Device\NtCommExampleLpc";
/// Its symbolic link.
pub const DOS_NAME: &str = r"\DosDevices\NtCommExampleLpc";
/// The path a client opens.
pub const USER_PATH: &str = r"\\.\NtCommExampleLpc";
