//! The private protocol between ntcomm's Wine-only `fltmgr.sys` and
//! `fltlib.dll` replacements, which together implement Filter Manager
//! communication ports where Wine has none. Neither the toolkit nor any
//! minifilter or client sees this: they call the documented `Flt*` and
//! `Filter*` functions.
//!
//! # Why pipes
//!
//! Wine dispatches every IRP of a winedevice process on one thread, and
//! minifilters call `FltSendMessage` from their dispatch routines. If the
//! client's `FilterGetMessage`/`FilterReplyMessage` were IRPs, a sender
//! blocked on that thread would wait for a reply that can never be
//! dispatched. So only the connection handshake is an IRP; after it, all
//! traffic flows through two named pipes that `fltlib.dll` creates in the
//! client and `fltmgr.sys` opens as a client, read and written by
//! `fltmgr.sys` threads that never need the dispatch thread:
//!
//! - **message pipe** (`\\.\pipe\<base>-msg`, message mode, server end is
//!   the port handle the application gets): driver to client only. Each
//!   pipe message is exactly what `FilterGetMessage` returns: a
//!   [`MessageHeader`] (`FILTER_MESSAGE_HEADER`) and the body. Overlapped
//!   `FilterGetMessage` is an overlapped read on it, so completion ports
//!   work natively (`fltlib.dll` turns the broken pipe of a disconnect into
//!   `STATUS_PORT_DISCONNECTED` in the completion). `fltmgr.sys` also keeps a read pending
//!   on its end to learn when the client's handle closes.
//! - **control pipe** (`\\.\pipe\<base>-ctl`, message mode, server end kept
//!   by `fltlib.dll` keyed by the port handle): `FilterSendMessage`
//!   requests, each a [`CtlRequest`] of kind [`kind::SEND`] + body, each
//!   answered by one [`CtlResponse`] + body on the same pipe (the driver's
//!   MessageNotify runs on a `fltmgr.sys` thread). `fltlib.dll` serializes
//!   the request/response pairs of one connection.
//! - **reply pipe** (`\\.\pipe\<base>-rpl`, message mode, server end kept
//!   by `fltlib.dll` beside the control pipe): `FilterReplyMessage`
//!   requests ([`kind::REPLY`]), answered the same way. It is separate so a
//!   reply never waits behind a `FilterSendMessage` whose MessageNotify is
//!   itself blocked (e.g. on I/O whose pre-operation callback calls
//!   `FltSendMessage` to this client and waits for the reply); `fltmgr.sys`
//!   must serve it on a thread that never runs MessageNotify.
//!
//! # Handshake
//!
//! `FilterConnectCommunicationPort` creates the three pipes, then sends
//! [`IOCTL_CONNECT`] to [`USER_DEVICE`] with a [`ConnectRequest`], the port
//! name (UTF-16, no NUL) and the connection context. `fltmgr.sys` finds the
//! port, enforces MaxConnections, calls ConnectNotify, opens the pipes,
//! and completes the IOCTL with the outcome as its status (e.g.
//! `STATUS_OBJECT_NAME_NOT_FOUND`, `STATUS_CONNECTION_COUNT_LIMIT`, or
//! ConnectNotify's refusal). The device handle is closed right after.
//!
//! # Disconnect
//!
//! `fltmgr.sys` ends a connection (FltCloseClientPort, server port closed,
//! unload) by closing its ends of the pipes: pending and later
//! `FilterGetMessage`/`FilterSendMessage`/`FilterReplyMessage` calls fail
//! (`fltlib.dll` reports a broken pipe as Windows reports a disconnected
//! port, `STATUS_PORT_DISCONNECTED` -> `HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)`,
//! also in the completion of an overlapped `FilterGetMessage`). The client ends a
//! connection by closing the port handle (the message pipe's server end),
//! which `fltmgr.sys` sees through its pending read.
#![no_std]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Kernel name of the handshake device `fltmgr.sys` creates.
pub const DEVICE_NAME: &str = r"\Device\NtCommWineFltMgr";
/// Its symbolic link.
pub const DOS_NAME: &str = r"\DosDevices\NtCommWineFltMgr";
/// The path `fltlib.dll` opens.
pub const USER_DEVICE: &str = r"\\.\NtCommWineFltMgr";
/// The driver object name for `IoCreateDriver`.
pub const DRIVER_NAME: &str = r"\Driver\NtCommWineFltMgr";

/// `CTL_CODE(0x8e7e, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)`.
pub const IOCTL_CONNECT: u32 = (0x8e7e << 16) | (0x800 << 2);

/// Protocol version in [`ConnectRequest::version`] (2: separate reply pipe).
/// `fltmgr.sys` refuses other versions (e.g. `STATUS_REVISION_MISMATCH`).
pub const VERSION: u32 = 2;

/// Longest pipe base name, in UTF-16 units.
pub const PIPE_BASE_CHARS: usize = 64;

/// Input of [`IOCTL_CONNECT`], followed by `port_name_chars` UTF-16 units
/// of the port name and `context_bytes` of connection context.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ConnectRequest {
    /// [`VERSION`].
    pub version: u32,
    /// `dwOptions` of `FilterConnectCommunicationPort`.
    pub options: u32,
    /// Length of the port name that follows, in UTF-16 units.
    pub port_name_chars: u32,
    /// Length of the connection context after the name.
    pub context_bytes: u32,
    /// The client's process id (for diagnostics).
    pub client_pid: u32,
    /// Zero.
    pub reserved: u32,
    /// NUL-padded UTF-16 base of the pipe names (without
    /// `\\.\pipe\` and without the `-msg`/`-ctl`/`-rpl` suffixes).
    pub pipe_base: [u16; PIPE_BASE_CHARS],
}

/// `FILTER_MESSAGE_HEADER`: starts every message on the message pipe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MessageHeader {
    /// What Windows documents for `FILTER_MESSAGE_HEADER.ReplyLength`: the
    /// length of the expected reply *including* the `FILTER_REPLY_HEADER`,
    /// i.e. the sender's `*ReplyLength` + `size_of::<ReplyHeader>()` (16),
    /// or 0 when no reply is expected (`ReplyBuffer` NULL). `fltlib.dll`
    /// hands the pipe message to the application unchanged (an overlapped
    /// `FilterGetMessage` completes without `fltlib.dll` seeing it), so
    /// `fltmgr.sys` writes the final value.
    pub reply_length: u32,
    /// Padding of the C layout.
    pub reserved: u32,
    /// Identifies the message in `FilterReplyMessage`.
    pub message_id: u64,
}

/// `FILTER_REPLY_HEADER`: what a client passes to `FilterReplyMessage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ReplyHeader {
    /// The reply's NTSTATUS (informational for the driver).
    pub status: i32,
    /// Padding of the C layout.
    pub reserved: u32,
    /// The message being answered.
    pub message_id: u64,
}

/// Kind of a [`CtlRequest`].
pub mod kind {
    /// `FilterSendMessage`, on the control pipe: body is the input; `out_capacity` is the
    /// client's output buffer size. Answered with the status of
    /// MessageNotify and up to `out_capacity` bytes of output.
    pub const SEND: u32 = 1;
    /// `FilterReplyMessage`, on the reply pipe: body is the reply body (after the
    /// `FILTER_REPLY_HEADER`); `message_id` and `status` from that header.
    /// Answered with a status and no body.
    pub const REPLY: u32 = 2;
}

/// A request on the control pipe, followed by `body_len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CtlRequest {
    /// A [`kind`] constant.
    pub kind: u32,
    /// REPLY: the reply header's status.
    pub status: i32,
    /// REPLY: the message id being answered.
    pub message_id: u64,
    /// SEND: the client's output buffer size.
    pub out_capacity: u32,
    /// Bytes following this header.
    pub body_len: u32,
}

/// The answer to one [`CtlRequest`], followed by `body_len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CtlResponse {
    /// NTSTATUS: SEND: what MessageNotify returned (or why it was not
    /// called); REPLY: `STATUS_SUCCESS`, or `STATUS_FLT_NO_WAITER_FOR_REPLY`
    /// when no sender waits for that id (timed out, already answered,
    /// unknown), or `STATUS_BUFFER_OVERFLOW` when the reply was longer than
    /// the sender's buffer (the sender gets the first bytes).
    pub status: i32,
    /// SEND: bytes of output following (MessageNotify's
    /// ReturnOutputBufferLength, at most `out_capacity`).
    pub body_len: u32,
}

/// `STATUS_FLT_NO_WAITER_FOR_REPLY`.
pub const STATUS_FLT_NO_WAITER_FOR_REPLY: i32 = 0xC01C_0020u32 as i32;
/// `STATUS_CONNECTION_COUNT_LIMIT` (ntstatus.h; 0xC0000236 would be
/// `STATUS_CONNECTION_REFUSED`).
pub const STATUS_CONNECTION_COUNT_LIMIT: i32 = 0xC000_0246u32 as i32;
/// `STATUS_PORT_DISCONNECTED`.
pub const STATUS_PORT_DISCONNECTED: i32 = 0xC000_0037u32 as i32;

/// Largest message body either way (bounded so a pipe message always fits
/// one read).
pub const MAX_BODY: usize = 1 << 20;

const _: () = assert!(core::mem::size_of::<MessageHeader>() == 16);
const _: () = assert!(core::mem::size_of::<ReplyHeader>() == 16);
const _: () = assert!(core::mem::size_of::<CtlRequest>() == 24);
const _: () = assert!(core::mem::size_of::<CtlResponse>() == 8);
const _: () = assert!(core::mem::size_of::<ConnectRequest>() == 24 + 2 * PIPE_BASE_CHARS);
