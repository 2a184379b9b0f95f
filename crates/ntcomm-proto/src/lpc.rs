//! LPC (the legacy NT "Local Procedure Call" ports) on the wire, x64 only.
//!
//! LPC is undocumented. The layouts below are the x64 layouts described by
//! public references and checked against each other (not copied):
//! - ReactOS `sdk/include/ndk/lpctypes.h` (PORT_MESSAGE, PORT_VIEW,
//!   REMOTE_PORT_VIEW, LPC_* types, the `LPC_CONNECTION_REFUSED` value),
//! - Process Hacker / System Informer `phlib/include/ntlpcapi.h` (the same,
//!   plus `PORT_MAXIMUM_MESSAGE_LENGTH` = 512 on 64-bit, 256 on x86,
//!   `LPC_MAX_CONNECTION_INFO_SIZE` = 16 pointers, the flag bits
//!   `LPC_KERNELMODE_MESSAGE` / `LPC_NO_IMPERSONATE` of the type field),
//! - the PDB-derived layout of Windows 10 x64 `ntoskrnl.exe` published by
//!   the ntdiff project (`_PORT_MESSAGE`: size 0x28, DataLength 0x00,
//!   TotalLength 0x02, Type 0x04, DataInfoOffset 0x06, ClientId 0x08 (two
//!   pointers), MessageId 0x18, ClientViewSize/CallbackId 0x20).
//!
//! Length rules (ReactOS `ntoskrnl/lpc/send.c` and `reply.c` check them the
//! same way Windows' behaviour is described): `DataLength` is the body after
//! the 40-byte header, `TotalLength` is header + body; a message whose
//! `TotalLength` is smaller than `DataLength + 40` is invalid, and one whose
//! `TotalLength` exceeds the port's maximum message length fails with
//! `STATUS_PORT_MESSAGE_TOO_LONG`. A port's maximum message length (which
//! includes the header) is at most [`PORT_MAXIMUM_MESSAGE_LENGTH`].
//!
//! Every pointer-sized field is a `u64` here: this module describes the x64
//! layout whatever the host is, so it is host-testable.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::NtStatus;

/// `LPC_NEW_MESSAGE`: the type field before the kernel sets one.
pub const LPC_NEW_MESSAGE: u16 = 0;
/// `LPC_REQUEST`: a request that waits for a reply (`NtRequestWaitReplyPort`).
pub const LPC_REQUEST: u16 = 1;
/// `LPC_REPLY`: a reply (`NtReplyPort`, `NtReplyWaitReceivePort`).
pub const LPC_REPLY: u16 = 2;
/// `LPC_DATAGRAM`: a message without a reply (`NtRequestPort`).
pub const LPC_DATAGRAM: u16 = 3;
/// `LPC_LOST_REPLY`: the requester went away before the reply.
pub const LPC_LOST_REPLY: u16 = 4;
/// `LPC_PORT_CLOSED`: the other side closed its communication port.
pub const LPC_PORT_CLOSED: u16 = 5;
/// `LPC_CLIENT_DIED`: a client thread exited (body: its create time).
pub const LPC_CLIENT_DIED: u16 = 6;
/// `LPC_EXCEPTION`: exception port message.
pub const LPC_EXCEPTION: u16 = 7;
/// `LPC_DEBUG_EVENT`: debug port message.
pub const LPC_DEBUG_EVENT: u16 = 8;
/// `LPC_ERROR_EVENT`: hard-error message.
pub const LPC_ERROR_EVENT: u16 = 9;
/// `LPC_CONNECTION_REQUEST`: a client called `NtConnectPort` (body: the
/// connection information).
pub const LPC_CONNECTION_REQUEST: u16 = 10;
/// `LPC_CONNECTION_REFUSED` (ReactOS): the server refused a connection.
pub const LPC_CONNECTION_REFUSED: u16 = 11;

/// Flag in the type field: the message was sent from kernel mode.
pub const LPC_KERNELMODE_MESSAGE: u16 = 0x8000;
/// Flag in the type field: the receiver must not impersonate the sender.
pub const LPC_NO_IMPERSONATE: u16 = 0x4000;
/// The bits of the type field that hold the message type.
pub const LPC_TYPE_MASK: u16 = 0x00FF;

/// `sizeof(PORT_MESSAGE)` on x64.
pub const PORT_MESSAGE_LEN: usize = 0x28;
/// `PORT_MAXIMUM_MESSAGE_LENGTH` on x64: the largest maximum message length
/// a port can have, header included.
pub const PORT_MAXIMUM_MESSAGE_LENGTH: usize = 512;
/// The largest body of one message on x64 (512 - 40).
pub const MAX_BODY: usize = PORT_MAXIMUM_MESSAGE_LENGTH - PORT_MESSAGE_LEN;
/// `LPC_MAX_CONNECTION_INFO_SIZE` on x64 (16 pointers).
pub const LPC_MAX_CONNECTION_INFO_SIZE: usize = 16 * 8;
/// `PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH` on x64: a receive buffer of this size
/// holds any message, connection requests included (688).
pub const PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH: usize =
    (PORT_MAXIMUM_MESSAGE_LENGTH + PORT_MESSAGE_LEN + LPC_MAX_CONNECTION_INFO_SIZE + 0xF) & !0xF;

/// `PORT_CONNECT`, the access right a client needs on a connection port.
pub const PORT_CONNECT: u32 = 0x0001;
/// `PORT_ALL_ACCESS` (`STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 1`).
pub const PORT_ALL_ACCESS: u32 = 0x000F_0000 | 0x0010_0000 | 0x1;

/// `STATUS_PORT_MESSAGE_TOO_LONG`.
pub const STATUS_PORT_MESSAGE_TOO_LONG: NtStatus = NtStatus::STATUS_PORT_MESSAGE_TOO_LONG;
/// `STATUS_PORT_CONNECTION_REFUSED`: the server refused the connection.
pub const STATUS_PORT_CONNECTION_REFUSED: NtStatus = NtStatus::STATUS_PORT_CONNECTION_REFUSED;
/// `STATUS_INVALID_PORT_HANDLE`.
pub const STATUS_INVALID_PORT_HANDLE: NtStatus = NtStatus::STATUS_INVALID_PORT_HANDLE;
/// `STATUS_REPLY_MESSAGE_MISMATCH`: a reply for no waiting request.
pub const STATUS_REPLY_MESSAGE_MISMATCH: NtStatus = NtStatus::STATUS_REPLY_MESSAGE_MISMATCH;
/// `STATUS_LPC_REPLY_LOST`: the server's port closed before it replied.
pub const STATUS_LPC_REPLY_LOST: NtStatus = NtStatus::STATUS_LPC_REPLY_LOST;
/// `STATUS_PORT_DISCONNECTED` (also in [`crate::status`]).
pub const STATUS_PORT_DISCONNECTED: NtStatus = NtStatus::STATUS_PORT_DISCONNECTED;

/// `PORT_MESSAGE`, x64. The C unions appear as their plain members:
/// `u1.s1` as `data_length`/`total_length`, `u2.s2` as
/// `msg_type`/`data_info_offset`, `ClientId` as two `u64`s, and the last union
/// as `client_view_size` (its low 32 bits are `CallbackId`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PortMessage {
    /// `u1.s1.DataLength`: bytes of body after the header.
    pub data_length: u16,
    /// `u1.s1.TotalLength`: header + body.
    pub total_length: u16,
    /// `u2.s2.Type`: an `LPC_*` type, possibly with the flag bits.
    pub msg_type: u16,
    /// `u2.s2.DataInfoOffset`: offset of a `PORT_DATA_INFORMATION`, 0 if none.
    pub data_info_offset: u16,
    /// `ClientId.UniqueProcess`.
    pub client_process: u64,
    /// `ClientId.UniqueThread`.
    pub client_thread: u64,
    /// `MessageId`: set by the kernel; a reply carries its request's.
    pub message_id: u32,
    /// Alignment padding before the last union (always 0 on the wire).
    pub _pad: u32,
    /// `ClientViewSize` (connection requests) / `CallbackId` (low 32 bits,
    /// requests).
    pub client_view_size: u64,
}

/// `PORT_VIEW`, x64: the client's section view passed to `NtConnectPort`
/// (or the server's to `NtAcceptConnectPort`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PortView {
    /// `Length`: `size_of::<PortView>()` (48).
    pub length: u32,
    /// Padding before `SectionHandle`.
    pub _pad0: u32,
    /// `SectionHandle`.
    pub section_handle: u64,
    /// `SectionOffset`.
    pub section_offset: u32,
    /// Padding before `ViewSize`.
    pub _pad1: u32,
    /// `ViewSize`.
    pub view_size: u64,
    /// `ViewBase`: the view in the caller's process (output).
    pub view_base: u64,
    /// `ViewRemoteBase`: the same view in the peer's process (output).
    pub view_remote_base: u64,
}

/// `REMOTE_PORT_VIEW`, x64: the peer's view as mapped into the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RemotePortView {
    /// `Length`: `size_of::<RemotePortView>()` (24).
    pub length: u32,
    /// Padding before `ViewSize`.
    pub _pad: u32,
    /// `ViewSize`.
    pub view_size: u64,
    /// `ViewBase`.
    pub view_base: u64,
}

// Sizes and offsets: ntdiff's Windows 10 x64 `_PORT_MESSAGE` (0x28; offsets
// 0, 2, 4, 6, 8, 0x18, 0x20) and phnt's PORT_VIEW (6 members: 0x30) /
// REMOTE_PORT_VIEW (3 members: 0x18) laid out with x64 alignment.
const _: () = {
    assert!(core::mem::size_of::<PortMessage>() == PORT_MESSAGE_LEN);
    assert!(core::mem::offset_of!(PortMessage, data_length) == 0x00);
    assert!(core::mem::offset_of!(PortMessage, total_length) == 0x02);
    assert!(core::mem::offset_of!(PortMessage, msg_type) == 0x04);
    assert!(core::mem::offset_of!(PortMessage, data_info_offset) == 0x06);
    assert!(core::mem::offset_of!(PortMessage, client_process) == 0x08);
    assert!(core::mem::offset_of!(PortMessage, client_thread) == 0x10);
    assert!(core::mem::offset_of!(PortMessage, message_id) == 0x18);
    assert!(core::mem::offset_of!(PortMessage, client_view_size) == 0x20);
    assert!(core::mem::size_of::<PortView>() == 0x30);
    assert!(core::mem::offset_of!(PortView, section_handle) == 0x08);
    assert!(core::mem::offset_of!(PortView, section_offset) == 0x10);
    assert!(core::mem::offset_of!(PortView, view_size) == 0x18);
    assert!(core::mem::offset_of!(PortView, view_base) == 0x20);
    assert!(core::mem::offset_of!(PortView, view_remote_base) == 0x28);
    assert!(core::mem::size_of::<RemotePortView>() == 0x18);
    assert!(core::mem::offset_of!(RemotePortView, view_size) == 0x08);
    assert!(core::mem::offset_of!(RemotePortView, view_base) == 0x10);
    assert!(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH == 688);
    assert!(MAX_BODY == 472);
};

impl PortView {
    /// A view description of `view_size` bytes of `section_handle` from
    /// `section_offset`, `length` filled in.
    pub const fn new(section_handle: u64, section_offset: u32, view_size: u64) -> Self {
        Self {
            length: core::mem::size_of::<Self>() as u32,
            _pad0: 0,
            section_handle,
            section_offset,
            _pad1: 0,
            view_size,
            view_base: 0,
            view_remote_base: 0,
        }
    }
}

impl RemotePortView {
    /// An empty view description with `length` filled in, for the kernel to fill.
    pub const fn new() -> Self {
        Self { length: core::mem::size_of::<Self>() as u32, _pad: 0, view_size: 0, view_base: 0 }
    }
}

/// A message type without its flag bits, named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpcType {
    /// [`LPC_NEW_MESSAGE`].
    New,
    /// [`LPC_REQUEST`].
    Request,
    /// [`LPC_REPLY`].
    Reply,
    /// [`LPC_DATAGRAM`].
    Datagram,
    /// [`LPC_LOST_REPLY`].
    LostReply,
    /// [`LPC_PORT_CLOSED`].
    PortClosed,
    /// [`LPC_CLIENT_DIED`].
    ClientDied,
    /// [`LPC_EXCEPTION`].
    Exception,
    /// [`LPC_DEBUG_EVENT`].
    DebugEvent,
    /// [`LPC_ERROR_EVENT`].
    ErrorEvent,
    /// [`LPC_CONNECTION_REQUEST`].
    ConnectionRequest,
    /// [`LPC_CONNECTION_REFUSED`].
    ConnectionRefused,
    /// Anything else (the masked value).
    Other(u16),
}

impl LpcType {
    /// The type of a raw type field (flag bits ignored).
    pub const fn from_raw(raw: u16) -> Self {
        match raw & LPC_TYPE_MASK {
            LPC_NEW_MESSAGE => Self::New,
            LPC_REQUEST => Self::Request,
            LPC_REPLY => Self::Reply,
            LPC_DATAGRAM => Self::Datagram,
            LPC_LOST_REPLY => Self::LostReply,
            LPC_PORT_CLOSED => Self::PortClosed,
            LPC_CLIENT_DIED => Self::ClientDied,
            LPC_EXCEPTION => Self::Exception,
            LPC_DEBUG_EVENT => Self::DebugEvent,
            LPC_ERROR_EVENT => Self::ErrorEvent,
            LPC_CONNECTION_REQUEST => Self::ConnectionRequest,
            LPC_CONNECTION_REFUSED => Self::ConnectionRefused,
            other => Self::Other(other),
        }
    }

    /// The raw value (no flag bits).
    pub const fn raw(self) -> u16 {
        match self {
            Self::New => LPC_NEW_MESSAGE,
            Self::Request => LPC_REQUEST,
            Self::Reply => LPC_REPLY,
            Self::Datagram => LPC_DATAGRAM,
            Self::LostReply => LPC_LOST_REPLY,
            Self::PortClosed => LPC_PORT_CLOSED,
            Self::ClientDied => LPC_CLIENT_DIED,
            Self::Exception => LPC_EXCEPTION,
            Self::DebugEvent => LPC_DEBUG_EVENT,
            Self::ErrorEvent => LPC_ERROR_EVENT,
            Self::ConnectionRequest => LPC_CONNECTION_REQUEST,
            Self::ConnectionRefused => LPC_CONNECTION_REFUSED,
            Self::Other(v) => v,
        }
    }
}

/// Why a message could not be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpcError {
    /// The body is longer than the limit (the port's maximum message length
    /// minus the header, at most [`MAX_BODY`]).
    BodyTooLong {
        /// Body length asked for.
        len: usize,
        /// The largest body allowed.
        max: usize,
    },
    /// The output buffer cannot hold header + body.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Fewer bytes than a header, or `TotalLength` beyond the bytes received.
    Truncated,
    /// `TotalLength` smaller than header + `DataLength`, or than the header.
    BadLengths,
    /// A port's maximum message length outside `PORT_MESSAGE_LEN..=PORT_MAXIMUM_MESSAGE_LENGTH`,
    /// or a connection-information length above [`LPC_MAX_CONNECTION_INFO_SIZE`].
    BadLimit,
}

impl LpcError {
    /// The NTSTATUS Windows reports for the same condition.
    pub const fn status(self) -> NtStatus {
        match self {
            Self::BodyTooLong { .. } => STATUS_PORT_MESSAGE_TOO_LONG,
            Self::BufferTooSmall { .. } => NtStatus::STATUS_BUFFER_TOO_SMALL,
            Self::Truncated | Self::BadLengths | Self::BadLimit => NtStatus::STATUS_INVALID_PARAMETER,
        }
    }
}

impl core::fmt::Display for LpcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BodyTooLong { len, max } => write!(f, "LPC message body of {len} bytes exceeds {max}"),
            Self::BufferTooSmall { need, have } => write!(f, "LPC buffer of {have} bytes, {need} needed"),
            Self::Truncated => f.write_str("LPC message truncated"),
            Self::BadLengths => f.write_str("LPC message lengths inconsistent"),
            Self::BadLimit => f.write_str("LPC port limit out of range"),
        }
    }
}

/// Checks the limits passed to `NtCreatePort`: the maximum message length
/// (header included) and the maximum connection-information length.
pub const fn check_port_limits(max_connection_info: usize, max_message: usize) -> Result<(), LpcError> {
    if max_message < PORT_MESSAGE_LEN || max_message > PORT_MAXIMUM_MESSAGE_LENGTH || max_connection_info > LPC_MAX_CONNECTION_INFO_SIZE {
        Err(LpcError::BadLimit)
    } else {
        Ok(())
    }
}

impl PortMessage {
    /// A header for `body_len` bytes of body of type `msg_type`, everything
    /// else zero (what a sender passes; the kernel fills ids).
    pub fn for_body(msg_type: u16, body_len: usize, max_message: usize) -> Result<Self, LpcError> {
        let max = max_message.min(PORT_MAXIMUM_MESSAGE_LENGTH).saturating_sub(PORT_MESSAGE_LEN);
        if body_len > max {
            return Err(LpcError::BodyTooLong { len: body_len, max });
        }
        // Both fit in u16: body_len <= 472.
        let data_length = u16::try_from(body_len).map_err(|_| LpcError::BodyTooLong { len: body_len, max })?;
        let total_length = u16::try_from(body_len + PORT_MESSAGE_LEN).map_err(|_| LpcError::BodyTooLong { len: body_len, max })?;
        Ok(Self { data_length, total_length, msg_type, ..Self::default() })
    }

    /// The message type, flag bits ignored.
    pub const fn kind(&self) -> LpcType {
        LpcType::from_raw(self.msg_type)
    }

    /// `CallbackId` (the low half of the last union).
    pub const fn callback_id(&self) -> u32 {
        self.client_view_size as u32
    }

    /// Whether the kernel marked the message as sent from kernel mode.
    pub const fn from_kernel(&self) -> bool {
        self.msg_type & LPC_KERNELMODE_MESSAGE != 0
    }
}

/// Writes a message (header + body) into `out`; returns its total length.
/// `max_message` is the port's maximum message length, header included.
pub fn encode(header: &PortMessage, body: &[u8], max_message: usize, out: &mut [u8]) -> Result<usize, LpcError> {
    let mut h = PortMessage::for_body(header.msg_type, body.len(), max_message)?;
    h.data_info_offset = header.data_info_offset;
    h.client_process = header.client_process;
    h.client_thread = header.client_thread;
    h.message_id = header.message_id;
    h.client_view_size = header.client_view_size;
    let total = PORT_MESSAGE_LEN + body.len();
    let have = out.len();
    let dst = out.get_mut(..total).ok_or(LpcError::BufferTooSmall { need: total, have })?;
    let (head, tail) = dst.split_at_mut(PORT_MESSAGE_LEN);
    head.copy_from_slice(h.as_bytes());
    tail.copy_from_slice(body);
    Ok(total)
}

/// Writes the reply to `request` (its client id and message id, type
/// [`LPC_REPLY`]) with `body` into `out`; returns its total length.
pub fn encode_reply(request: &PortMessage, body: &[u8], max_message: usize, out: &mut [u8]) -> Result<usize, LpcError> {
    let h = PortMessage {
        msg_type: LPC_REPLY,
        client_process: request.client_process,
        client_thread: request.client_thread,
        message_id: request.message_id,
        client_view_size: u64::from(request.callback_id()),
        ..PortMessage::default()
    };
    encode(&h, body, max_message, out)
}

/// A received message: its header and the body it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header as received.
    pub header: PortMessage,
    /// `DataLength` bytes after the header.
    pub body: &'a [u8],
}

/// Parses a received message, checking the length rules.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, LpcError> {
    let (header, rest) = PortMessage::read_from_prefix(buf).map_err(|_| LpcError::Truncated)?;
    let total = usize::from(header.total_length);
    let data = usize::from(header.data_length);
    if total < PORT_MESSAGE_LEN || data > total - PORT_MESSAGE_LEN {
        return Err(LpcError::BadLengths);
    }
    if total > buf.len() {
        return Err(LpcError::Truncated);
    }
    let body = rest.get(..data).ok_or(LpcError::Truncated)?;
    Ok(Message { header, body })
}

/// A buffer that holds any message, 8-byte aligned as the kernel expects.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct MessageBuffer(pub [u8; PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH]);

impl Default for MessageBuffer {
    fn default() -> Self {
        Self([0; PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH, 688);
        assert!(check_port_limits(0, PORT_MESSAGE_LEN).is_ok());
        assert!(check_port_limits(LPC_MAX_CONNECTION_INFO_SIZE, PORT_MAXIMUM_MESSAGE_LENGTH).is_ok());
        assert_eq!(check_port_limits(0, PORT_MAXIMUM_MESSAGE_LENGTH + 1), Err(LpcError::BadLimit));
        assert_eq!(check_port_limits(0, PORT_MESSAGE_LEN - 1), Err(LpcError::BadLimit));
        assert_eq!(check_port_limits(LPC_MAX_CONNECTION_INFO_SIZE + 1, 100), Err(LpcError::BadLimit));
    }

    #[test]
    fn header_bytes() {
        let h = PortMessage {
            data_length: 3,
            total_length: 43,
            msg_type: LPC_REQUEST | LPC_KERNELMODE_MESSAGE,
            data_info_offset: 0,
            client_process: 0x1122,
            client_thread: 0x3344,
            message_id: 7,
            _pad: 0,
            client_view_size: 0xAABB_CCDD_0000_0009,
        };
        let b = h.as_bytes();
        assert_eq!(&b[0..8], &[3, 0, 43, 0, 1, 0x80, 0, 0]);
        assert_eq!(&b[8..10], &[0x22, 0x11]);
        assert_eq!(&b[16..18], &[0x44, 0x33]);
        assert_eq!(&b[24..28], &[7, 0, 0, 0]);
        assert_eq!(h.callback_id(), 9);
        assert!(h.from_kernel());
        assert_eq!(h.kind(), LpcType::Request);
    }

    #[test]
    fn round_trip_sizes() {
        for len in [0usize, 1, 13, MAX_BODY] {
            let body: [u8; MAX_BODY] = core::array::from_fn(|i| i as u8);
            let mut out = MessageBuffer::default();
            let h = PortMessage { msg_type: LPC_DATAGRAM, message_id: 5, ..PortMessage::default() };
            let n = encode(&h, &body[..len], PORT_MAXIMUM_MESSAGE_LENGTH, &mut out.0).unwrap();
            assert_eq!(n, PORT_MESSAGE_LEN + len);
            let m = parse(&out.0[..n]).unwrap();
            assert_eq!(m.body, &body[..len]);
            assert_eq!(m.header.kind(), LpcType::Datagram);
            assert_eq!(usize::from(m.header.total_length), n);
            assert_eq!(m.header.message_id, 5);
        }
    }

    #[test]
    fn too_long() {
        let body = [0u8; MAX_BODY + 1];
        let mut out = MessageBuffer::default();
        let h = PortMessage::default();
        assert_eq!(
            encode(&h, &body, PORT_MAXIMUM_MESSAGE_LENGTH, &mut out.0),
            Err(LpcError::BodyTooLong { len: MAX_BODY + 1, max: MAX_BODY })
        );
        // The port's own limit applies first.
        assert_eq!(encode(&h, &body[..61], 100, &mut out.0), Err(LpcError::BodyTooLong { len: 61, max: 60 }));
        assert_eq!(encode(&h, &body[..60], 100, &mut out.0), Ok(100));
        // A limit above the system maximum is clamped.
        assert!(matches!(encode(&h, &body, 100_000, &mut out.0), Err(LpcError::BodyTooLong { max: MAX_BODY, .. })));
        assert_eq!(LpcError::BodyTooLong { len: 0, max: 0 }.status(), STATUS_PORT_MESSAGE_TOO_LONG);
    }

    #[test]
    fn small_buffer() {
        let mut out = [0u8; 45];
        let h = PortMessage::default();
        assert_eq!(encode(&h, &[1; 6], PORT_MAXIMUM_MESSAGE_LENGTH, &mut out), Err(LpcError::BufferTooSmall { need: 46, have: 45 }));
        assert_eq!(encode(&h, &[1; 5], PORT_MAXIMUM_MESSAGE_LENGTH, &mut out), Ok(45));
    }

    #[test]
    fn reply_pairs_with_request() {
        let req = PortMessage {
            msg_type: LPC_REQUEST,
            client_process: 10,
            client_thread: 11,
            message_id: 99,
            client_view_size: 4,
            ..PortMessage::for_body(LPC_REQUEST, 2, 512).unwrap()
        };
        let mut out = MessageBuffer::default();
        let n = encode_reply(&req, b"ok", 512, &mut out.0).unwrap();
        let m = parse(&out.0[..n]).unwrap();
        assert_eq!(m.header.kind(), LpcType::Reply);
        assert_eq!((m.header.client_process, m.header.client_thread, m.header.message_id), (10, 11, 99));
        assert_eq!(m.header.callback_id(), 4);
        assert_eq!(m.body, b"ok");
    }

    #[test]
    fn parse_rejects_bad_lengths() {
        assert_eq!(parse(&[0u8; PORT_MESSAGE_LEN - 1]), Err(LpcError::Truncated));
        let mut h = PortMessage { data_length: 10, total_length: 45, ..PortMessage::default() };
        let mut buf = [0u8; 64];
        buf[..PORT_MESSAGE_LEN].copy_from_slice(h.as_bytes());
        assert_eq!(parse(&buf), Err(LpcError::BadLengths));
        h.total_length = 20;
        h.data_length = 0;
        buf[..PORT_MESSAGE_LEN].copy_from_slice(h.as_bytes());
        assert_eq!(parse(&buf), Err(LpcError::BadLengths));
        h.total_length = 70;
        h.data_length = 30;
        buf[..PORT_MESSAGE_LEN].copy_from_slice(h.as_bytes());
        assert_eq!(parse(&buf), Err(LpcError::Truncated));
        // TotalLength may exceed header + DataLength (e.g. a data-info area).
        h.total_length = 64;
        h.data_length = 4;
        buf[..PORT_MESSAGE_LEN].copy_from_slice(h.as_bytes());
        assert_eq!(parse(&buf).unwrap().body.len(), 4);
    }

    #[test]
    fn types() {
        for raw in 0..=11u16 {
            assert_eq!(LpcType::from_raw(raw).raw(), raw);
            assert_eq!(LpcType::from_raw(raw | LPC_NO_IMPERSONATE | LPC_KERNELMODE_MESSAGE).raw(), raw);
        }
        assert_eq!(LpcType::from_raw(12), LpcType::Other(12));
        assert_eq!(LpcType::from_raw(LPC_CONNECTION_REQUEST), LpcType::ConnectionRequest);
    }

    #[test]
    fn views() {
        let v = PortView::new(0x40, 0, 1 << 20);
        assert_eq!(v.length, 48);
        assert_eq!(RemotePortView::new().length, 24);
    }
}
