//! Filter Manager communication ports, the minifilter side: registration,
//! a port server with typed per-connection state, sending to a client with
//! a timeout, and orderly teardown.
//!
//! mingw ships no `fltKernel.h`: the few structures and functions used are
//! declared here after Microsoft's documentation, their layouts asserted
//! below, and the import library is built from `fltmgr.def`.
//!
//! Buffers a client passes to `FilterSendMessage` arrive as user addresses
//! on Windows. The message callback copies the input once into pool memory
//! with [`user_copy`](crate::user_copy) (fault-tolerant), hands the handler
//! only that copy, and copies the handler's output back the same way.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_proto::message::Message;
use ntcomm_proto::NtStatus;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::device::DriverObject;
use crate::string::UnicodeString;
use crate::sync::SpinLock;
use crate::user_copy::{copy_from_user, copy_to_user, UserCopyError};
use crate::{sys, Error};

/// Raw declarations (fltKernel.h).
#[allow(non_snake_case, non_camel_case_types, missing_docs)]
pub mod ffi {
    use core::ffi::c_void;

    use crate::sys::{DRIVER_OBJECT, NTSTATUS, OBJECT_ATTRIBUTES};

    pub type PFLT_FILTER = *mut c_void;
    pub type PFLT_PORT = *mut c_void;

    pub type PFLT_FILTER_UNLOAD_CALLBACK = Option<unsafe extern "system" fn(flags: u32) -> NTSTATUS>;
    pub type PFLT_CONNECT_NOTIFY = Option<
        unsafe extern "system" fn(
            client_port: PFLT_PORT,
            server_cookie: *mut c_void,
            context: *mut c_void,
            context_size: u32,
            connection_cookie: *mut *mut c_void,
        ) -> NTSTATUS,
    >;
    pub type PFLT_DISCONNECT_NOTIFY = Option<unsafe extern "system" fn(connection_cookie: *mut c_void)>;
    pub type PFLT_MESSAGE_NOTIFY = Option<
        unsafe extern "system" fn(
            connection_cookie: *mut c_void,
            input: *mut c_void,
            input_len: u32,
            output: *mut c_void,
            output_len: u32,
            returned: *mut u32,
        ) -> NTSTATUS,
    >;

    /// `FLT_REGISTRATION` (version 0x0203, Windows 8 and later).
    #[repr(C)]
    pub struct FLT_REGISTRATION {
        pub Size: u16,
        pub Version: u16,
        pub Flags: u32,
        pub ContextRegistration: *const c_void,
        pub OperationRegistration: *const c_void,
        pub FilterUnloadCallback: PFLT_FILTER_UNLOAD_CALLBACK,
        pub InstanceSetupCallback: *const c_void,
        pub InstanceQueryTeardownCallback: *const c_void,
        pub InstanceTeardownStartCallback: *const c_void,
        pub InstanceTeardownCompleteCallback: *const c_void,
        pub GenerateFileNameCallback: *const c_void,
        pub NormalizeNameComponentCallback: *const c_void,
        pub NormalizeContextCleanupCallback: *const c_void,
        pub TransactionNotificationCallback: *const c_void,
        pub NormalizeNameComponentExCallback: *const c_void,
        pub SectionNotificationCallback: *const c_void,
    }

    pub const FLT_REGISTRATION_VERSION: u16 = 0x0203;
    /// `FLT_PORT_ALL_ACCESS`.
    pub const FLT_PORT_ALL_ACCESS: u32 = 0x001F_0001;

    // Documented layout (x64): 2+2+4 bytes, then 13 pointers.
    const _: () = assert!(core::mem::size_of::<FLT_REGISTRATION>() == 0x70);
    const _: () = assert!(core::mem::offset_of!(FLT_REGISTRATION, Flags) == 4);
    const _: () = assert!(core::mem::offset_of!(FLT_REGISTRATION, OperationRegistration) == 0x10);
    const _: () = assert!(core::mem::offset_of!(FLT_REGISTRATION, FilterUnloadCallback) == 0x18);
    const _: () = assert!(core::mem::offset_of!(FLT_REGISTRATION, SectionNotificationCallback) == 0x68);

    #[link(name = "fltmgr")]
    extern "system" {
        pub fn FltRegisterFilter(driver: *mut DRIVER_OBJECT, registration: *const FLT_REGISTRATION, filter: *mut PFLT_FILTER) -> NTSTATUS;
        pub fn FltStartFiltering(filter: PFLT_FILTER) -> NTSTATUS;
        pub fn FltUnregisterFilter(filter: PFLT_FILTER);
        pub fn FltCreateCommunicationPort(
            filter: PFLT_FILTER,
            server_port: *mut PFLT_PORT,
            attributes: *mut OBJECT_ATTRIBUTES,
            server_cookie: *mut c_void,
            connect: PFLT_CONNECT_NOTIFY,
            disconnect: PFLT_DISCONNECT_NOTIFY,
            message: PFLT_MESSAGE_NOTIFY,
            max_connections: i32,
        ) -> NTSTATUS;
        pub fn FltCloseCommunicationPort(server_port: PFLT_PORT);
        pub fn FltSendMessage(
            filter: PFLT_FILTER,
            client_port: *mut PFLT_PORT,
            sender_buffer: *mut c_void,
            sender_length: u32,
            reply_buffer: *mut c_void,
            reply_length: *mut u32,
            timeout: *mut i64,
        ) -> NTSTATUS;
        pub fn FltCloseClientPort(filter: PFLT_FILTER, client_port: *mut PFLT_PORT);
        pub fn FltBuildDefaultSecurityDescriptor(sd: *mut *mut c_void, access: u32) -> NTSTATUS;
        pub fn FltFreeSecurityDescriptor(sd: *mut c_void);
    }
}

/// The minifilter's registration with the Filter Manager. Unregisters on
/// drop (after every port of it is gone).
pub struct Filter {
    raw: ffi::PFLT_FILTER,
    /// Kept alive for the registration's lifetime.
    _registration: Box<ffi::FLT_REGISTRATION>,
}

// SAFETY: a PFLT_FILTER may be used from any thread.
unsafe impl Send for Filter {}
// SAFETY: as above.
unsafe impl Sync for Filter {}

impl Filter {
    /// Registers the driver as a minifilter without I/O callbacks (ports
    /// only) and starts filtering.
    ///
    /// `unload` is the FilterUnloadCallback. FltRegisterFilter makes the
    /// Filter Manager's own routine the driver's `DriverUnload`, so a service
    /// stop (a mandatory unload), like `fltmc unload`, reaches the driver only
    /// through this callback, and a minifilter without one cannot be stopped.
    /// `None` uses the toolkit's: it tears down the driver made by
    /// [`driver_entry!`](crate::driver_entry) (its `unload`, then the device;
    /// dropping this `Filter` on the way calls FltUnregisterFilter, as the
    /// callback must). A driver with a DriverEntry of its own passes its own.
    pub fn register(driver: DriverObject, unload: ffi::PFLT_FILTER_UNLOAD_CALLBACK) -> Result<Self, Error> {
        let unload = unload.or(Some(toolkit_filter_unload));
        let registration = Box::new(ffi::FLT_REGISTRATION {
            Size: core::mem::size_of::<ffi::FLT_REGISTRATION>() as u16,
            Version: ffi::FLT_REGISTRATION_VERSION,
            Flags: 0,
            ContextRegistration: core::ptr::null(),
            OperationRegistration: core::ptr::null(),
            FilterUnloadCallback: unload,
            InstanceSetupCallback: core::ptr::null(),
            InstanceQueryTeardownCallback: core::ptr::null(),
            InstanceTeardownStartCallback: core::ptr::null(),
            InstanceTeardownCompleteCallback: core::ptr::null(),
            GenerateFileNameCallback: core::ptr::null(),
            NormalizeNameComponentCallback: core::ptr::null(),
            NormalizeContextCleanupCallback: core::ptr::null(),
            TransactionNotificationCallback: core::ptr::null(),
            NormalizeNameComponentExCallback: core::ptr::null(),
            SectionNotificationCallback: core::ptr::null(),
        });
        let mut raw = core::ptr::null_mut();
        // SAFETY: the driver object from DriverEntry, a registration that
        // outlives the filter (boxed in `Filter`), a valid out-pointer.
        Error::check(unsafe { ffi::FltRegisterFilter(driver.raw(), &*registration, &mut raw) }, "FltRegisterFilter")?;
        let filter = Filter { raw, _registration: registration };
        // SAFETY: a filter we registered.
        Error::check(unsafe { ffi::FltStartFiltering(filter.raw) }, "FltStartFiltering")?;
        Ok(filter)
    }
}

/// The toolkit's FilterUnloadCallback (see [`Filter::register`]). Mandatory
/// or not, the driver is torn down; with nothing to tear down (a driver not
/// made by `driver_entry!`, or already torn down) it refuses a non-mandatory
/// unload with `STATUS_FLT_DO_NOT_DETACH`.
unsafe extern "system" fn toolkit_filter_unload(flags: u32) -> sys::NTSTATUS {
    if crate::device::teardown_once() || flags & FLTFL_FILTER_UNLOAD_MANDATORY != 0 {
        0
    } else {
        STATUS_FLT_DO_NOT_DETACH
    }
}

/// `FLTFL_FILTER_UNLOAD_MANDATORY`.
const FLTFL_FILTER_UNLOAD_MANDATORY: u32 = 1;
/// `STATUS_FLT_DO_NOT_DETACH`.
const STATUS_FLT_DO_NOT_DETACH: sys::NTSTATUS = 0xC01C_0010_u32 as i32;

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: registered by us, unregistered once, after our ports.
        unsafe { ffi::FltUnregisterFilter(self.raw) };
    }
}

/// Default [`PortHandler::MAX_MESSAGE`].
pub const DEFAULT_MAX_MESSAGE: usize = 4096;
/// Default [`PortHandler::MAX_REPLY`].
pub const DEFAULT_MAX_REPLY: usize = 4096;
/// Default [`PortHandler::MAX_CONTEXT`].
pub const DEFAULT_MAX_CONTEXT: usize = 1024;
/// Default [`PortHandler::MAX_MESSAGES_IN_FLIGHT`].
pub const DEFAULT_MAX_MESSAGES_IN_FLIGHT: usize = 64;

/// What a port does with its clients.
///
/// The constants bound what a client can make the driver allocate; each is
/// checked before any allocation. A client's lengths are its own choice (up
/// to 4 GiB): the port never sizes a buffer from them beyond these.
pub trait PortHandler: Send + Sync + Sized + 'static {
    /// Longest message (`FilterSendMessage` input) the handler accepts; a
    /// longer one is refused with `STATUS_INVALID_PARAMETER` before any
    /// buffer is allocated.
    const MAX_MESSAGE: usize = DEFAULT_MAX_MESSAGE;
    /// Longest reply the handler writes: `output` is at most this long
    /// whatever the client's buffer (a longer client buffer is fine).
    const MAX_REPLY: usize = DEFAULT_MAX_REPLY;
    /// Longest connection context; a longer one refuses the connection with
    /// `STATUS_INVALID_PARAMETER`.
    const MAX_CONTEXT: usize = DEFAULT_MAX_CONTEXT;
    /// Message callbacks of this port running at once (each holds up to
    /// `MAX_MESSAGE + MAX_REPLY` bytes of pool); more are refused with
    /// `STATUS_QUOTA_EXCEEDED` until one ends.
    const MAX_MESSAGES_IN_FLIGHT: usize = DEFAULT_MAX_MESSAGES_IN_FLIGHT;
    /// Per-connection state, created by [`connect`](Self::connect).
    type Connection: Send + Sync + 'static;
    /// A client connects with its connection context. `Err` refuses it; the
    /// client sees the status as its error.
    fn connect(&self, context: &[u8]) -> Result<Self::Connection, NtStatus>;
    /// The client is gone (closed its handle, died, or was disconnected).
    fn disconnect(&self, _connection: &Self::Connection) {}
    /// A message from the client (`FilterSendMessage`): `input` is a kernel
    /// copy; write the reply into `output` and return its length.
    ///
    /// For a fixed-size message declared with
    /// [`Message`](ntcomm_proto::message::Message), let the declaration read
    /// the request and write the reply:
    /// `SCAN.serve(input, output, |scan| self.scan(connection, scan))`
    /// (see [`serve`]).
    fn message(&self, connection: &Self::Connection, input: &[u8], output: &mut [u8]) -> Result<usize, NtStatus>;
}

/// One connected client.
pub struct Client<H: PortHandler> {
    /// `PFLT_PORT` of the client, in a stable cell: FltSendMessage and
    /// FltCloseClientPort take its address and the latter clears it.
    port: UnsafeCell<ffi::PFLT_PORT>,
    closed: AtomicBool,
    /// Message callbacks running for this client: the disconnect callback
    /// waits for them before giving up the cookie.
    in_message: AtomicUsize,
    /// The reference handed to the Filter Manager as the connection cookie
    /// is still to be released: by the disconnect callback, or by
    /// [`Port`]'s teardown for a client it closed itself (the Filter Manager
    /// owes no disconnect callback after `FltCloseClientPort`).
    cookie_owed: AtomicBool,
    connection: H::Connection,
    server: *const PortState<H>,
}

// SAFETY: the raw port cell is only handed to FltSendMessage and
// FltCloseClientPort, which the Filter Manager synchronises; the server
// pointer outlives every client (see `Port::drop`).
unsafe impl<H: PortHandler> Send for Client<H> {}
// SAFETY: as above.
unsafe impl<H: PortHandler> Sync for Client<H> {}

/// Why [`Client::send`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No reply within the timeout.
    Timeout,
    /// The client went away (or was never connected).
    Disconnected,
    /// The client's reply was longer than the reply buffer: the buffer holds
    /// its first `.0` bytes (`STATUS_BUFFER_OVERFLOW`).
    ReplyTruncated(usize),
    /// Another failure of `FltSendMessage` (`STATUS_INVALID_PARAMETER`
    /// also for a typed request outside its declared size rules; nothing
    /// was sent then).
    Failed(NtStatus),
    /// A typed call's reply did not match its declaration: the client
    /// replied with this many bytes.
    BadReply(usize),
}

impl<H: PortHandler> Client<H> {
    /// The state `connect` created.
    pub fn connection(&self) -> &H::Connection {
        &self.connection
    }

    /// Whether the client is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn server(&self) -> &PortState<H> {
        // SAFETY: the port state outlives its clients (Port::drop waits).
        unsafe { &*self.server }
    }

    /// Sends `message` to the client (`FltSendMessage`). With `reply`, waits
    /// for the client's `FilterReplyMessage` and returns the reply's length
    /// in `reply`; without, returns once the message is queued. `timeout`
    /// `None` waits forever. Never call it from a thread the client needs to
    /// make progress (e.g. for I/O the client itself is doing).
    pub fn send(&self, message: &[u8], reply: Option<&mut [u8]>, timeout: Option<Duration>) -> Result<usize, SendError> {
        if self.is_closed() {
            return Err(SendError::Disconnected);
        }
        let len = u32::try_from(message.len()).map_err(|_| SendError::Failed(NtStatus::STATUS_INVALID_PARAMETER))?;
        let mut relative: i64 = timeout.map_or(0, |d| -((d.as_nanos() / 100).clamp(1, i64::MAX as u128) as i64));
        let timeout_ptr = if timeout.is_some() { &mut relative as *mut i64 } else { core::ptr::null_mut() };
        let (reply_ptr, mut reply_len) = match reply {
            Some(r) => (r.as_mut_ptr() as *mut c_void, u32::try_from(r.len()).unwrap_or(u32::MAX)),
            None => (core::ptr::null_mut(), 0),
        };
        // SAFETY: our registered filter, the client's port cell, buffers
        // valid for the call's duration.
        let status = unsafe {
            ffi::FltSendMessage(
                self.server().filter,
                self.port.get(),
                message.as_ptr() as *mut c_void,
                len,
                reply_ptr,
                if reply_ptr.is_null() { core::ptr::null_mut() } else { &mut reply_len },
                timeout_ptr,
            )
        };
        match NtStatus(status) {
            NtStatus::STATUS_SUCCESS => Ok(reply_len as usize),
            NtStatus::STATUS_TIMEOUT => Err(SendError::Timeout),
            NtStatus::STATUS_BUFFER_OVERFLOW => Err(SendError::ReplyTruncated(reply_len as usize)),
            NtStatus::STATUS_PORT_DISCONNECTED => Err(SendError::Disconnected),
            s => Err(SendError::Failed(s)),
        }
    }

    /// Sends the typed `request` declared by `message` and waits for the
    /// client's reply, read as the declared `O` (a reply that does not
    /// match the declared size rules is [`SendError::BadReply`]). `timeout`
    /// as in [`send`](Self::send). The byte-level [`send`](Self::send)
    /// stays for variable-length replies.
    pub fn call<I, O>(&self, message: &Message<I, O>, request: &I, timeout: Option<Duration>) -> Result<O, SendError>
    where
        I: ?Sized + IntoBytes + Immutable,
        O: FromBytes + IntoBytes,
    {
        let bytes = message.request_bytes(request).map_err(SendError::Failed)?;
        let mut reply = O::new_zeroed();
        let n = self.send(bytes, Some(reply.as_mut_bytes()), timeout)?;
        message.check_reply(n).map_err(|_| SendError::BadReply(n))?;
        // Shorter than `O` (a declaration with a variable reply): the rest
        // is not the client's.
        if n < core::mem::size_of::<O>() {
            return Err(SendError::BadReply(n));
        }
        Ok(reply)
    }

    /// Sends the typed `request` declared by `message` (whose reply type is
    /// `()`) without waiting for a reply: returns once it is queued.
    pub fn post<I>(&self, message: &Message<I, ()>, request: &I, timeout: Option<Duration>) -> Result<(), SendError>
    where
        I: ?Sized + IntoBytes + Immutable,
    {
        let bytes = message.request_bytes(request).map_err(SendError::Failed)?;
        self.send(bytes, None, timeout).map(|_| ())
    }

    /// Disconnects the client (`FltCloseClientPort`); its pending receives
    /// fail. The handler's `disconnect` runs once, here or when the client
    /// goes away by itself, whichever is first. The client's record is freed
    /// when the port closes: a disconnect callback the Filter Manager began
    /// before `FltCloseClientPort` may still be on its way in until then.
    pub fn disconnect(&self) {
        let state = self.server();
        if let Some(removed) = state.close_client(self) {
            state.closed_by_driver.with(|closed| closed.push(removed));
        }
    }
}

/// Serves one typed message in [`PortHandler::message`]: reads the declared
/// request from `input` (a request outside the declared size rules is
/// `STATUS_INVALID_PARAMETER` and `handler` does not run), runs `handler`
/// and writes its reply to `output`, returning the length to return.
pub fn serve<I, O>(
    message: &Message<I, O>,
    input: &[u8],
    output: &mut [u8],
    handler: impl FnOnce(I) -> Result<O, NtStatus>,
) -> Result<usize, NtStatus>
where
    I: FromBytes,
    O: IntoBytes + Immutable,
{
    message.serve(input, output, handler)
}

struct PortState<H: PortHandler> {
    handler: H,
    filter: ffi::PFLT_FILTER,
    clients: SpinLock<Vec<Arc<Client<H>>>>,
    /// Callbacks in progress, so teardown can wait for them.
    active: AtomicUsize,
    /// Set by teardown before it closes the port: a connect callback that sees
    /// it refuses (one already past the check is waited for, then closed).
    closing: AtomicBool,
    /// Clients the driver closed (`FltCloseClientPort`): no disconnect
    /// callback is owed for them, so teardown releases their cookies, once no
    /// callback can be running.
    closed_by_driver: SpinLock<Vec<Arc<Client<H>>>>,
    /// Message callbacks holding buffers, at most `H::MAX_MESSAGES_IN_FLIGHT`.
    messages: AtomicUsize,
}

impl<H: PortHandler> PortState<H> {
    /// Closes `client` (once) and returns the list's reference to it.
    fn close_client(&self, client: &Client<H>) -> Option<Arc<Client<H>>> {
        if client.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the cell holds the client port the Filter Manager gave us;
        // FltCloseClientPort clears it, and concurrent senders see that.
        unsafe { ffi::FltCloseClientPort(self.filter, client.port.get()) };
        self.handler.disconnect(&client.connection);
        self.clients.with(|list| {
            let removed = list.iter().position(|c| core::ptr::eq(&**c, client)).map(|i| list.swap_remove(i));
            if list.is_empty() {
                // No pool kept while nobody is connected.
                list.shrink_to_fit();
            }
            removed
        })
    }
}

/// A communication port server. Closing (drop) closes the server port,
/// disconnects every client and waits until no callback runs.
pub struct Port<H: PortHandler> {
    raw: ffi::PFLT_PORT,
    state: Box<PortState<H>>,
}

// SAFETY: the port handle and state are usable from any thread.
unsafe impl<H: PortHandler> Send for Port<H> {}
// SAFETY: as above.
unsafe impl<H: PortHandler> Sync for Port<H> {}

struct Active<'a>(&'a AtomicUsize);
impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
fn enter(counter: &AtomicUsize) -> Active<'_> {
    counter.fetch_add(1, Ordering::AcqRel);
    Active(counter)
}
/// Enters `counter` unless it is at `limit` already.
fn enter_bounded(counter: &AtomicUsize, limit: usize) -> Option<Active<'_>> {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok().map(|_| Active(counter))
}

unsafe extern "system" fn on_connect<H: PortHandler>(
    client_port: ffi::PFLT_PORT,
    server_cookie: *mut c_void,
    context: *mut c_void,
    context_size: u32,
    connection_cookie: *mut *mut c_void,
) -> i32 {
    // SAFETY: the server cookie is our PortState, alive while the port is.
    let state = unsafe { &*(server_cookie as *const PortState<H>) };
    let _active = enter(&state.active);
    if state.closing.load(Ordering::Acquire) {
        return NtStatus::STATUS_PORT_DISCONNECTED.0;
    }
    if context_size as usize > H::MAX_CONTEXT {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    let mut ctx = Vec::new();
    if ctx.try_reserve_exact(context_size as usize).is_err() {
        return NtStatus::STATUS_INSUFFICIENT_RESOURCES.0;
    }
    ctx.resize(context_size as usize, 0);
    if context_size > 0 {
        if context.is_null() {
            return NtStatus::STATUS_INVALID_PARAMETER.0;
        }
        match copy_from_user(&mut ctx, context as usize) {
            Ok(()) => {}
            // The Filter Manager's own kernel copy of the context.
            Err(UserCopyError::NotUserRange) => {
                // SAFETY: a non-null kernel buffer of `context_size` bytes
                // owned by the Filter Manager for the callback's duration.
                ctx.copy_from_slice(unsafe { core::slice::from_raw_parts(context as *const u8, context_size as usize) });
            }
            Err(UserCopyError::Fault) => return NtStatus::STATUS_ACCESS_VIOLATION.0,
        }
    }
    let connection = match state.handler.connect(&ctx) {
        Ok(c) => c,
        Err(s) => return s.0,
    };
    let client = Arc::new(Client {
        port: UnsafeCell::new(client_port),
        closed: AtomicBool::new(false),
        in_message: AtomicUsize::new(0),
        cookie_owed: AtomicBool::new(true),
        connection,
        server: state,
    });
    let cookie = Arc::into_raw(client.clone()) as *mut c_void;
    state.clients.lock().push(client);
    // SAFETY: out-pointer from the Filter Manager.
    unsafe { *connection_cookie = cookie };
    0
}

unsafe extern "system" fn on_disconnect<H: PortHandler>(connection_cookie: *mut c_void) {
    if connection_cookie.is_null() {
        return;
    }
    let cookie = connection_cookie as *const Client<H>;
    // SAFETY: the cookie is the reference on_connect leaked: it stays until
    // released below (or by Port's teardown, which waits for this callback
    // through `active` before releasing it).
    let client = unsafe { &*cookie };
    let state = client.server();
    let _active = enter(&state.active);
    drop(state.close_client(client));
    // A Filter Manager may still be finishing a message callback of this
    // connection: the cookie must outlive it.
    while client.in_message.load(Ordering::Acquire) != 0 {
        crate::sync::sleep(Duration::from_millis(1));
    }
    if client.cookie_owed.swap(false, Ordering::AcqRel) {
        // SAFETY: the reference on_connect leaked, released once (the flag);
        // `client` is not used after this.
        drop(unsafe { Arc::from_raw(cookie) });
    }
}

unsafe extern "system" fn on_message<H: PortHandler>(
    connection_cookie: *mut c_void,
    input: *mut c_void,
    input_len: u32,
    output: *mut c_void,
    output_len: u32,
    returned: *mut u32,
) -> i32 {
    if connection_cookie.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    // SAFETY: our cookie, alive until on_disconnect has returned, which waits
    // for message callbacks already running (`in_message`); the Filter
    // Manager calls none after it.
    let client = unsafe { &*(connection_cookie as *const Client<H>) };
    let _in_message = enter(&client.in_message);
    let state = client.server();
    let _active = enter(&state.active);
    // Bounded before anything is allocated: the lengths are the client's.
    let input_len = input_len as usize;
    if input_len > H::MAX_MESSAGE {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    let output_len = (output_len as usize).min(H::MAX_REPLY);
    let Some(_buffers) = enter_bounded(&state.messages, H::MAX_MESSAGES_IN_FLIGHT) else {
        return NtStatus::STATUS_QUOTA_EXCEEDED.0;
    };
    let (mut inbuf, mut outbuf) = (Vec::new(), Vec::new());
    if inbuf.try_reserve_exact(input_len).is_err() || outbuf.try_reserve_exact(output_len).is_err() {
        return NtStatus::STATUS_INSUFFICIENT_RESOURCES.0;
    }
    inbuf.resize(input_len, 0);
    outbuf.resize(output_len, 0);
    // Capture once, through the fault-tolerant copy.
    if input_len > 0 && copy_from_user(&mut inbuf, input as usize).is_err() {
        return NtStatus::STATUS_ACCESS_VIOLATION.0;
    }
    let n = match state.handler.message(&client.connection, &inbuf, &mut outbuf) {
        Ok(n) => n.min(outbuf.len()),
        Err(s) => return s.0,
    };
    if n > 0 && copy_to_user(output as usize, outbuf.get(..n).unwrap_or_default()).is_err() {
        return NtStatus::STATUS_ACCESS_VIOLATION.0;
    }
    if !returned.is_null() {
        // SAFETY: out-pointer from the Filter Manager.
        unsafe { *returned = n as u32 };
    }
    0
}

impl<H: PortHandler> Port<H> {
    /// Creates the server port `name` (e.g. `\MyDriverPort`) with the Filter
    /// Manager's default descriptor (SYSTEM and Administrators only) and at
    /// most `max_connections` clients.
    pub fn create(filter: &Filter, name: &str, max_connections: u32, handler: H) -> Result<Self, Error> {
        let state = Box::new(PortState {
            handler,
            filter: filter.raw,
            clients: SpinLock::new(Vec::new()),
            active: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            closed_by_driver: SpinLock::new(Vec::new()),
            messages: AtomicUsize::new(0),
        });
        let mut sd = core::ptr::null_mut();
        // SAFETY: out-pointer; freed below.
        let built = unsafe { ffi::FltBuildDefaultSecurityDescriptor(&mut sd, ffi::FLT_PORT_ALL_ACCESS) };
        Error::check(built, "FltBuildDefaultSecurityDescriptor")?;
        let mut uname = UnicodeString::new(name)?;
        let mut raw_name = uname.as_raw();
        let mut attrs = sys::OBJECT_ATTRIBUTES {
            Length: core::mem::size_of::<sys::OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: core::ptr::null_mut(),
            ObjectName: &mut raw_name,
            Attributes: sys::OBJ_KERNEL_HANDLE | sys::OBJ_CASE_INSENSITIVE,
            SecurityDescriptor: sd,
            SecurityQualityOfService: core::ptr::null_mut(),
        };
        let mut raw = core::ptr::null_mut();
        let max = i32::try_from(max_connections).unwrap_or(i32::MAX);
        // SAFETY: valid filter, out-pointer, attributes and name; the cookie
        // is the boxed state, which outlives the port (closed in drop first).
        let status = unsafe {
            ffi::FltCreateCommunicationPort(
                filter.raw,
                &mut raw,
                &mut attrs,
                &*state as *const PortState<H> as *mut c_void,
                Some(on_connect::<H>),
                Some(on_disconnect::<H>),
                Some(on_message::<H>),
                max,
            )
        };
        // SAFETY: built above; the port keeps its own copy.
        unsafe { ffi::FltFreeSecurityDescriptor(sd) };
        Error::check(status, "FltCreateCommunicationPort")?;
        Ok(Self { raw, state })
    }

    /// The clients connected now.
    pub fn clients(&self) -> Vec<Arc<Client<H>>> {
        self.state.clients.lock().clone()
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.state.handler
    }
}

impl<H: PortHandler> Drop for Port<H> {
    fn drop(&mut self) {
        self.state.closing.store(true, Ordering::Release);
        // SAFETY: our server port, closed once: no new connections.
        unsafe { ffi::FltCloseCommunicationPort(self.raw) };
        // A connect callback that began before `closing` was set may add its
        // client after a sweep: sweep until no callback runs and none is left.
        loop {
            for c in self.clients() {
                c.disconnect();
            }
            while self.state.active.load(Ordering::Acquire) != 0 {
                crate::sync::sleep(Duration::from_millis(1));
            }
            if self.state.clients.with(|list| list.is_empty()) {
                break;
            }
        }
        // The server port and every client are closed and no callback runs: the
        // cookies of the clients the driver closed are ours to release (the
        // fault suite's verifier mode found them leaked, 48 bytes each).
        for c in self.state.closed_by_driver.take() {
            if c.cookie_owed.swap(false, Ordering::AcqRel) {
                // SAFETY: the reference on_connect leaked for this client,
                // released once (the flag); `c` holds another.
                unsafe { Arc::decrement_strong_count(Arc::as_ptr(&c)) };
            }
        }
    }
}
