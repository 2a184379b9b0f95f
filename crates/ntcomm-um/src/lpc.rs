//! A user-mode LPC server: the port a driver (or another process) connects
//! to with `ZwConnectPort` and calls with `ZwRequestWaitReplyPort`.
//!
//! LPC is undocumented. The entry points are ntdll's `Nt*Port` functions,
//! resolved at run time: a missing export is [`LpcError::Missing`], a status
//! from the system [`LpcError::Status`]. Message layouts and size rules are
//! in [`ntcomm_proto::lpc`].
//!
//! Written against the layouts and signatures of the public references
//! (ReactOS, Process Hacker/System Informer). Verified under Wine with
//! ntcomm's compat LPC (`compat/wine-lpc`), which does not export
//! `NtReplyPort`/`NtRequestPort` to user mode ([`LpcServer::reply`] and
//! [`Connection::datagram`] are [`LpcError::Missing`] there). Not run on
//! Windows.
//!
//! ```text
//! LpcServer::create(name, max_connection_info, max_message) / create_with_sd(.., sd)
//!   .receive(Option<Reply>) -> LpcEvent   (NtReplyWaitReceivePort: reply, then wait)
//!   .accept(ConnectionRequest, reply_info, context) -> Connection   .refuse(ConnectionRequest)
//!   .reply(Reply)              (NtReplyPort; absent in Wine 8)
//! Connection::datagram(body)   (NtRequestPort; absent in Wine 8)
//! Request::reply(body) -> Reply
//! ```
#![cfg(windows)]
// multiple_unsafe_ops_per_block: ntdll's LPC exports are resolved and transmuted to their published signatures in one block whose SAFETY comment covers every transmute.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;
use core::ptr;
use std::sync::OnceLock;

use ntcomm_proto::lpc::{self as wire, LpcType, MessageBuffer, PortMessage};
use ntcomm_proto::message::Message;
use ntcomm_proto::NtStatus;
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::Error;

type Handle = *mut c_void;

type NtCreatePortFn = unsafe extern "system" fn(*mut Handle, *mut ObjectAttributes, u32, u32, u32) -> i32;
type NtListenPortFn = unsafe extern "system" fn(Handle, *mut PortMessage) -> i32;
type NtReplyWaitReceivePortFn = unsafe extern "system" fn(Handle, *mut *mut c_void, *mut PortMessage, *mut PortMessage) -> i32;
type NtAcceptConnectPortFn =
    unsafe extern "system" fn(*mut Handle, *mut c_void, *mut PortMessage, u8, *mut wire::PortView, *mut wire::RemotePortView) -> i32;
type NtCompleteConnectPortFn = unsafe extern "system" fn(Handle) -> i32;
type NtReplyPortFn = unsafe extern "system" fn(Handle, *mut PortMessage) -> i32;
type NtRequestPortFn = unsafe extern "system" fn(Handle, *mut PortMessage) -> i32;
type NtCloseFn = unsafe extern "system" fn(Handle) -> i32;

/// Why an LPC call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LpcError {
    /// ntdll does not export this entry point (e.g. `NtReplyPort` in Wine 8).
    Missing(&'static str),
    /// The entry point returned a failure status. Under an unpatched Wine
    /// every LPC entry point returns `STATUS_NOT_IMPLEMENTED`
    /// (see [`LpcError::is_not_implemented`]).
    Status {
        /// The ntdll function.
        call: &'static str,
        /// What it returned.
        status: NtStatus,
    },
    /// A message or limit the toolkit refused before calling the system
    /// (e.g. a body longer than the port's maximum).
    Message(wire::LpcError),
    /// The port name holds a NUL or is longer than a `UNICODE_STRING` allows.
    BadName,
    /// A body did not match its typed declaration
    /// ([`Message`](ntcomm_proto::message::Message)): its length is outside
    /// the declared size rules.
    Mismatch {
        /// The declaration's name.
        message: &'static str,
        /// The body's length.
        len: usize,
    },
}

impl LpcError {
    /// True when the system has no LPC at all (Wine without ntcomm's compat layer).
    pub fn is_not_implemented(&self) -> bool {
        matches!(self, LpcError::Status { status, .. } if *status == NtStatus::STATUS_NOT_IMPLEMENTED)
    }

    /// The NTSTATUS this error stands for.
    pub fn status(&self) -> NtStatus {
        match self {
            LpcError::Missing(_) => NtStatus::STATUS_NOT_IMPLEMENTED,
            LpcError::Status { status, .. } => *status,
            LpcError::Message(e) => e.status(),
            LpcError::BadName | LpcError::Mismatch { .. } => NtStatus::STATUS_INVALID_PARAMETER,
        }
    }
}

impl core::fmt::Display for LpcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LpcError::Missing(name) => write!(f, "ntdll does not export {name} (no LPC on this system)"),
            LpcError::Status { call, status } if *status == NtStatus::STATUS_NOT_IMPLEMENTED => {
                write!(f, "{call}: LPC is not implemented on this system ({status})")
            }
            LpcError::Status { call, status } => write!(f, "{call}: {status}"),
            LpcError::Message(e) => write!(f, "LPC message: {e}"),
            LpcError::BadName => f.write_str("LPC port name holds a NUL or is too long"),
            LpcError::Mismatch { message, len } => write!(f, "LPC message {message}: a body of {len} bytes does not match its declaration"),
        }
    }
}

impl std::error::Error for LpcError {}

impl From<wire::LpcError> for LpcError {
    fn from(e: wire::LpcError) -> Self {
        LpcError::Message(e)
    }
}

impl From<LpcError> for Error {
    fn from(e: LpcError) -> Self {
        let context = e.to_string();
        Error::from_ntstatus(context, e.status())
    }
}

/// The LPC module's result.
pub type Result<T> = core::result::Result<T, LpcError>;

fn check(call: &'static str, status: i32) -> Result<()> {
    if status >= 0 {
        Ok(())
    } else {
        Err(LpcError::Status { call, status: NtStatus(status) })
    }
}

// ----- entry points -------------------------------------------------------------------

struct Fns {
    create_port: Option<NtCreatePortFn>,
    listen_port: Option<NtListenPortFn>,
    reply_wait_receive_port: Option<NtReplyWaitReceivePortFn>,
    accept_connect_port: Option<NtAcceptConnectPortFn>,
    complete_connect_port: Option<NtCompleteConnectPortFn>,
    reply_port: Option<NtReplyPortFn>,
    request_port: Option<NtRequestPortFn>,
    close: Option<NtCloseFn>,
}

/// The entry points this module uses, in the order [`available`] reports them.
pub const ENTRY_POINTS: [&str; 8] = [
    "NtCreatePort",
    "NtListenPort",
    "NtReplyWaitReceivePort",
    "NtAcceptConnectPort",
    "NtCompleteConnectPort",
    "NtReplyPort",
    "NtRequestPort",
    "NtClose",
];

fn proc(ntdll: *mut c_void, name: &std::ffi::CStr) -> Option<unsafe extern "system" fn() -> isize> {
    if ntdll.is_null() {
        return None;
    }
    // SAFETY: a module handle of ntdll (never unloaded) and a NUL-terminated name.
    unsafe { GetProcAddress(ntdll, name.as_ptr().cast()) }
}

fn fns() -> &'static Fns {
    static FNS: OnceLock<Fns> = OnceLock::new();
    FNS.get_or_init(|| {
        let name: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
        // SAFETY: NUL-terminated name; ntdll is mapped into every process.
        let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
        // SAFETY: (every transmute) each export is given the signature the
        // public references (ReactOS `ndk/lpcfuncs.h`, phnt `ntlpcapi.h`)
        // declare for it, all `NTAPI` (= `system`).
        unsafe {
            Fns {
                create_port: proc(ntdll, c"NtCreatePort").map(|f| core::mem::transmute::<_, NtCreatePortFn>(f)),
                listen_port: proc(ntdll, c"NtListenPort").map(|f| core::mem::transmute::<_, NtListenPortFn>(f)),
                reply_wait_receive_port: proc(ntdll, c"NtReplyWaitReceivePort")
                    .map(|f| core::mem::transmute::<_, NtReplyWaitReceivePortFn>(f)),
                accept_connect_port: proc(ntdll, c"NtAcceptConnectPort").map(|f| core::mem::transmute::<_, NtAcceptConnectPortFn>(f)),
                complete_connect_port: proc(ntdll, c"NtCompleteConnectPort").map(|f| core::mem::transmute::<_, NtCompleteConnectPortFn>(f)),
                reply_port: proc(ntdll, c"NtReplyPort").map(|f| core::mem::transmute::<_, NtReplyPortFn>(f)),
                request_port: proc(ntdll, c"NtRequestPort").map(|f| core::mem::transmute::<_, NtRequestPortFn>(f)),
                close: proc(ntdll, c"NtClose").map(|f| core::mem::transmute::<_, NtCloseFn>(f)),
            }
        }
    })
}

/// Which of [`ENTRY_POINTS`] this process's ntdll exports (resolved once;
/// a compat layer must patch or add exports before the first LPC call).
pub fn available() -> [(&'static str, bool); 8] {
    let f = fns();
    let present = [
        f.create_port.is_some(),
        f.listen_port.is_some(),
        f.reply_wait_receive_port.is_some(),
        f.accept_connect_port.is_some(),
        f.complete_connect_port.is_some(),
        f.reply_port.is_some(),
        f.request_port.is_some(),
        f.close.is_some(),
    ];
    let mut out = [("", false); 8];
    for ((slot, name), p) in out.iter_mut().zip(ENTRY_POINTS).zip(present) {
        *slot = (name, p);
    }
    out
}

fn need<T>(f: Option<T>, name: &'static str) -> Result<T> {
    f.ok_or(LpcError::Missing(name))
}

// ----- object attributes --------------------------------------------------------------

#[repr(C)]
struct UnicodeString {
    length: u16,
    maximum_length: u16,
    buffer: *mut u16,
}

#[repr(C)]
struct ObjectAttributes {
    length: u32,
    root_directory: Handle,
    object_name: *mut UnicodeString,
    attributes: u32,
    security_descriptor: *mut c_void,
    security_quality_of_service: *mut c_void,
}

const _: () = assert!(core::mem::size_of::<ObjectAttributes>() == 48);
const OBJ_CASE_INSENSITIVE: u32 = 0x40;

// ----- handles --------------------------------------------------------------------------

/// An owned port handle, closed with `NtClose` on drop.
struct PortHandle(Handle);

// SAFETY: a kernel handle value, usable from any thread.
unsafe impl Send for PortHandle {}
// SAFETY: as above; every call through it is a system call.
unsafe impl Sync for PortHandle {}

impl Drop for PortHandle {
    fn drop(&mut self) {
        if let Some(close) = fns().close {
            // SAFETY: we own the handle and close it once.
            unsafe { close(self.0) };
        }
    }
}

// ----- events ----------------------------------------------------------------------------

/// A client thread: `CLIENT_ID` (process id, thread id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// `UniqueProcess`.
    pub process: u64,
    /// `UniqueThread`.
    pub thread: u64,
}

impl ClientId {
    fn of(h: &PortMessage) -> Self {
        ClientId { process: h.client_process, thread: h.client_thread }
    }
}

/// A client asking to connect: accept it with [`LpcServer::accept`] or
/// refuse it with [`LpcServer::refuse`] (each consumes it).
#[derive(Debug)]
pub struct ConnectionRequest {
    /// The connecting thread.
    pub client: ClientId,
    /// The connection information the client sent.
    pub info: Vec<u8>,
    /// `ClientViewSize`: the size of the section view the client offered (0: none).
    pub client_view_size: u64,
    header: PortMessage,
}

/// A request waiting for its reply ([`Request::reply`]).
#[derive(Debug)]
pub struct Request {
    /// The requesting thread.
    pub client: ClientId,
    /// The message id the reply must carry.
    pub message_id: u32,
    /// The context given to [`LpcServer::accept`] for this connection.
    pub context: usize,
    /// The request body.
    pub body: Vec<u8>,
    /// Whether the kernel marked it as sent from kernel mode (a driver).
    pub from_kernel: bool,
    header: PortMessage,
    max_message: usize,
}

/// A reply, built by [`Request::reply`] (its length already checked).
#[derive(Clone, Debug)]
pub struct Reply {
    buf: MessageBuffer,
}

impl Request {
    /// The reply to this request with `body`; a body longer than the port
    /// allows is [`LpcError::Message`] (`BodyTooLong`).
    pub fn reply(&self, body: &[u8]) -> Result<Reply> {
        let mut buf = MessageBuffer::default();
        wire::encode_reply(&self.header, body, self.max_message, &mut buf.0)?;
        Ok(Reply { buf })
    }
}

impl Request {
    /// The body as the typed request declared by `message` (its length
    /// checked against the declared size rules).
    pub fn request_as<I: FromBytes, O: ?Sized>(&self, message: &Message<I, O>) -> Result<I> {
        message.request_from(&self.body).map_err(|_| LpcError::Mismatch { message: message.name, len: self.body.len() })
    }

    /// The typed reply declared by `message` to this request (pass it to
    /// the next [`LpcServer::receive`]); the byte-level
    /// [`reply`](Self::reply) stays for variable-length bodies.
    pub fn answer<I: ?Sized, O: IntoBytes + Immutable>(&self, message: &Message<I, O>, reply: &O) -> Result<Reply> {
        let body = reply.as_bytes();
        message.check_reply(body.len()).map_err(|_| LpcError::Mismatch { message: message.name, len: body.len() })?;
        self.reply(body)
    }
}

impl Reply {
    fn header_ptr(&mut self) -> *mut PortMessage {
        self.buf.0.as_mut_ptr().cast()
    }
}

/// What [`LpcServer::receive`] returns.
#[derive(Debug)]
pub enum LpcEvent {
    /// `LPC_CONNECTION_REQUEST`.
    ConnectionRequest(ConnectionRequest),
    /// `LPC_REQUEST`: reply with [`Request::reply`] passed to the next receive.
    Request(Request),
    /// `LPC_DATAGRAM`: no reply.
    Datagram {
        /// The sending thread.
        client: ClientId,
        /// The connection's context.
        context: usize,
        /// The body.
        body: Vec<u8>,
    },
    /// `LPC_PORT_CLOSED`: the client closed its port (an event, not an error).
    PortClosed {
        /// The client.
        client: ClientId,
        /// The connection's context.
        context: usize,
    },
    /// `LPC_CLIENT_DIED`: a client thread exited.
    ClientDied {
        /// The client.
        client: ClientId,
        /// The connection's context.
        context: usize,
    },
    /// `LPC_LOST_REPLY`: the requester went away before our reply.
    LostReply {
        /// The client.
        client: ClientId,
        /// The request's message id.
        message_id: u32,
    },
    /// Any other type (exception, debug, error events).
    Other {
        /// The type (flags masked off).
        kind: LpcType,
        /// The header.
        header: PortMessage,
        /// The body.
        body: Vec<u8>,
    },
}

/// An accepted connection: its server communication port. Dropping it closes
/// the port (the client sees the port closed).
pub struct Connection {
    handle: PortHandle,
    client: ClientId,
    max_message: usize,
    /// The client's section view as mapped here (`REMOTE_PORT_VIEW`), valid
    /// while the connection is open.
    view: Option<(usize, usize)>,
}

// SAFETY: a port handle and the address of a view mapped for its lifetime.
unsafe impl Send for Connection {}
// SAFETY: as above; the view is only reached through copies.
unsafe impl Sync for Connection {}

impl Connection {
    /// The connected client.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// Size of the section view the client shared at connect (0: none).
    pub fn view_len(&self) -> usize {
        self.view.map_or(0, |(_, len)| len)
    }

    /// Copies `out.len()` bytes at `offset` of the client's view. The
    /// client may write the view at any time: this is a copy of what was
    /// there, to validate afterwards. Out of range (or no view) is
    /// [`LpcError::Message`] (`BadLengths`).
    pub fn read_view(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        let (base, len) = self.view.ok_or(LpcError::Message(wire::LpcError::BadLengths))?;
        if offset.checked_add(out.len()).is_none_or(|end| end > len) {
            return Err(LpcError::Message(wire::LpcError::BadLengths));
        }
        // SAFETY: in range of a view mapped while this connection lives;
        // no reference to the shared bytes is formed.
        unsafe { ptr::copy_nonoverlapping((base + offset) as *const u8, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Sends the typed datagram declared by `message` (reply type `()`) to
    /// the client; see [`datagram`](Self::datagram).
    pub fn post<I: ?Sized + IntoBytes + Immutable>(&self, message: &Message<I, ()>, request: &I) -> Result<()> {
        let body =
            message.request_bytes(request).map_err(|_| LpcError::Mismatch { message: message.name, len: request.as_bytes().len() })?;
        self.datagram(body)
    }

    /// Sends a datagram to the client (`NtRequestPort`; not exported by Wine 8).
    pub fn datagram(&self, body: &[u8]) -> Result<()> {
        let f = need(fns().request_port, "NtRequestPort")?;
        let mut buf = MessageBuffer::default();
        let h = PortMessage { msg_type: wire::LPC_NEW_MESSAGE, ..PortMessage::default() };
        wire::encode(&h, body, self.max_message, &mut buf.0)?;
        // SAFETY: our port handle; an aligned message buffer holding a checked message.
        check("NtRequestPort", unsafe { f(self.handle.0, buf.0.as_mut_ptr().cast()) })
    }
}

/// A named LPC connection port and its accept/receive loop.
pub struct LpcServer {
    port: PortHandle,
    max_message: usize,
    max_connection_info: usize,
    buf: MessageBuffer,
}

impl LpcServer {
    /// Creates the connection port `name` (an object-manager path such as
    /// `\RPC Control\MyServer`) with the default security.
    /// `max_connection_info` is at most [`wire::LPC_MAX_CONNECTION_INFO_SIZE`],
    /// `max_message` (header included) at most [`wire::PORT_MAXIMUM_MESSAGE_LENGTH`].
    pub fn create(name: &str, max_connection_info: usize, max_message: usize) -> Result<Self> {
        Self::create_with_sd(name, None, max_connection_info, max_message)
    }

    /// [`LpcServer::create`] with a self-relative security descriptor
    /// (e.g. from [`ntcomm_proto::sddl::to_self_relative`]).
    pub fn create_with_sd(name: &str, sd: Option<&[u8]>, max_connection_info: usize, max_message: usize) -> Result<Self> {
        wire::check_port_limits(max_connection_info, max_message)?;
        let f = need(fns().create_port, "NtCreatePort")?;
        need(fns().close, "NtClose")?;
        let mut wide: Vec<u16> = name.encode_utf16().collect();
        if wide.contains(&0) {
            return Err(LpcError::BadName);
        }
        let bytes = u16::try_from(wide.len() * 2).map_err(|_| LpcError::BadName)?;
        let mut us = UnicodeString { length: bytes, maximum_length: bytes, buffer: wide.as_mut_ptr() };
        // The descriptor is only read by the call; a copy keeps it aligned.
        let mut sd_copy: Vec<u64> = sd.map(|s| vec![0u64; s.len().div_ceil(8)]).unwrap_or_default();
        if let Some(s) = sd {
            sd_copy.as_mut_bytes().get_mut(..s.len()).ok_or(LpcError::BadName)?.copy_from_slice(s);
        }
        let mut oa = ObjectAttributes {
            length: core::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: ptr::null_mut(),
            object_name: &mut us,
            attributes: OBJ_CASE_INSENSITIVE,
            security_descriptor: if sd.is_some() { sd_copy.as_mut_ptr().cast() } else { ptr::null_mut() },
            security_quality_of_service: ptr::null_mut(),
        };
        let mut h: Handle = ptr::null_mut();
        // SAFETY: valid out-pointer and attributes (name, descriptor) living
        // for the call; limits checked above (both fit in u32).
        let status = unsafe { f(&mut h, &mut oa, max_connection_info as u32, max_message as u32, 0) };
        check("NtCreatePort", status)?;
        Ok(LpcServer { port: PortHandle(h), max_message, max_connection_info, buf: MessageBuffer::default() })
    }

    /// The port's maximum message length (header included).
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The port's maximum connection-information length.
    pub fn max_connection_info(&self) -> usize {
        self.max_connection_info
    }

    /// Sends `reply` (if any) and waits for the next message on this port or
    /// any of its accepted connections (`NtReplyWaitReceivePort`).
    pub fn receive(&mut self, reply: Option<Reply>) -> Result<LpcEvent> {
        let f = need(fns().reply_wait_receive_port, "NtReplyWaitReceivePort")?;
        let mut reply = reply;
        let reply_ptr = reply.as_mut().map_or(ptr::null_mut(), Reply::header_ptr);
        let mut context: *mut c_void = ptr::null_mut();
        self.buf = MessageBuffer::default();
        // SAFETY: our port handle; the reply (if any) is a checked message
        // that lives for the call; the receive buffer holds
        // PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH bytes, the most the kernel writes.
        let status = unsafe { f(self.port.0, &mut context, reply_ptr, self.buf.0.as_mut_ptr().cast()) };
        check("NtReplyWaitReceivePort", status)?;
        self.event(context as usize)
    }

    /// Waits for a connection request only (`NtListenPort`).
    pub fn listen(&mut self) -> Result<ConnectionRequest> {
        let f = need(fns().listen_port, "NtListenPort")?;
        self.buf = MessageBuffer::default();
        // SAFETY: our port handle and a buffer of the maximum message size.
        check("NtListenPort", unsafe { f(self.port.0, self.buf.0.as_mut_ptr().cast()) })?;
        match self.event(0)? {
            LpcEvent::ConnectionRequest(c) => Ok(c),
            _ => Err(LpcError::Message(wire::LpcError::BadLengths)),
        }
    }

    fn event(&self, context: usize) -> Result<LpcEvent> {
        let m = wire::parse(&self.buf.0)?;
        let header = m.header;
        let client = ClientId::of(&header);
        let body = m.body.to_vec();
        Ok(match header.kind() {
            LpcType::ConnectionRequest => {
                LpcEvent::ConnectionRequest(ConnectionRequest { client, info: body, client_view_size: header.client_view_size, header })
            }
            LpcType::Request => LpcEvent::Request(Request {
                client,
                message_id: header.message_id,
                context,
                body,
                from_kernel: header.from_kernel(),
                header,
                max_message: self.max_message,
            }),
            LpcType::Datagram => LpcEvent::Datagram { client, context, body },
            LpcType::PortClosed => LpcEvent::PortClosed { client, context },
            LpcType::ClientDied => LpcEvent::ClientDied { client, context },
            LpcType::LostReply => LpcEvent::LostReply { client, message_id: header.message_id },
            kind => LpcEvent::Other { kind, header, body },
        })
    }

    /// Accepts a connection (`NtAcceptConnectPort` + `NtCompleteConnectPort`),
    /// returning `reply_info` to the client as its connection information.
    /// Messages of this connection arrive through [`LpcServer::receive`]
    /// with `context`.
    pub fn accept(&self, req: ConnectionRequest, reply_info: &[u8], context: usize) -> Result<Connection> {
        let accept = need(fns().accept_connect_port, "NtAcceptConnectPort")?;
        let complete = need(fns().complete_connect_port, "NtCompleteConnectPort")?;
        let mut buf = MessageBuffer::default();
        let max = wire::PORT_MESSAGE_LEN + self.max_connection_info;
        wire::encode(&req.header, reply_info, max, &mut buf.0)?;
        let mut h: Handle = ptr::null_mut();
        let mut client_view = wire::RemotePortView::new();
        // SAFETY: out-pointer, the connection request header (with our reply
        // info) in an aligned buffer, a REMOTE_PORT_VIEW for the client's
        // view (filled when it offered one); no server view.
        let status = unsafe { accept(&mut h, context as *mut c_void, buf.0.as_mut_ptr().cast(), 1, ptr::null_mut(), &mut client_view) };
        check("NtAcceptConnectPort", status)?;
        let handle = PortHandle(h);
        // SAFETY: the communication port just accepted.
        check("NtCompleteConnectPort", unsafe { complete(handle.0) })?;
        let view = (req.client_view_size != 0 && client_view.view_base != 0)
            .then_some((client_view.view_base as usize, client_view.view_size as usize));
        Ok(Connection { handle, client: req.client, max_message: self.max_message, view })
    }

    /// Refuses a connection: the client's connect fails
    /// (`STATUS_PORT_CONNECTION_REFUSED`).
    pub fn refuse(&self, req: ConnectionRequest) -> Result<()> {
        let accept = need(fns().accept_connect_port, "NtAcceptConnectPort")?;
        let mut header = req.header;
        header.data_length = 0;
        header.total_length = wire::PORT_MESSAGE_LEN as u16;
        let mut h: Handle = ptr::null_mut();
        // SAFETY: out-pointer and the request's header; refusing creates no port.
        let status = unsafe { accept(&mut h, ptr::null_mut(), &mut header, 0, ptr::null_mut(), ptr::null_mut()) };
        check("NtAcceptConnectPort", status)?;
        if !h.is_null() {
            drop(PortHandle(h));
        }
        Ok(())
    }

    /// Sends a reply without waiting (`NtReplyPort`; not exported by Wine 8:
    /// pass the reply to [`LpcServer::receive`] instead).
    pub fn reply(&self, mut reply: Reply) -> Result<()> {
        let f = need(fns().reply_port, "NtReplyPort")?;
        // SAFETY: our port handle and a checked reply message.
        check("NtReplyPort", unsafe { f(self.port.0, reply.header_ptr()) })
    }
}
