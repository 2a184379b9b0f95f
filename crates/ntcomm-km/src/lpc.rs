//! The driver as an LPC client of a port a user-mode process created
//! (`ntcomm_um::lpc::LpcServer`): connect by name with connection
//! information, request/reply, datagrams, a section view for large payloads,
//! and [`supervise`], which runs blocking LPC work for a pended request so
//! that the request can be cancelled or time out while the work is stuck.
//!
//! LPC is undocumented; layouts and size rules are in [`ntcomm_proto::lpc`].
//! Exports used (the Windows column from the public references, not checked
//! against a Windows ntoskrnl here):
//!
//! | export | Windows ntoskrnl | Wine 8 ntoskrnl |
//! |---|---|---|
//! | `ZwConnectPort` | exported | forwards to ntdll's stub (`STATUS_NOT_IMPLEMENTED`) unless ntcomm's compat LPC is loaded |
//! | `ZwRequestWaitReplyPort` | exported | same |
//! | `NtRequestPort` (datagram) | exported | **fatal stub** unless ntcomm's compat LPC is loaded: calling it kills winedevice |
//!
//! Every call blocks (an LPC request waits for its reply without a timeout):
//! call them from a system thread, never from a dispatch routine (Wine runs
//! all dispatch of a winedevice on one thread). The port handle and the
//! view live in the process the connect ran in: connect from a system
//! thread, so that they land in the System process, and use the client from
//! system threads.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_proto::lpc::{self as wire, MessageBuffer, PortMessage};
use ntcomm_proto::message::Message;
use ntcomm_proto::NtStatus;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::handle::KernelHandle;
use crate::irp::{Handled, Request};
use crate::peer::Sid;
use crate::queue::IrpQueue;
use crate::section::Section;
use crate::security::SecurityDescriptor;
use crate::string::UnicodeString;
use crate::sync::{Event, EventKind, SpinLock};
use crate::thread::SystemThread;
use crate::{sys, Error};

/// `SECURITY_QUALITY_OF_SERVICE` (x64: 12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SecurityQos {
    /// `Length`: 12.
    pub length: u32,
    /// `ImpersonationLevel` (`SecurityIdentification` = 1,
    /// `SecurityImpersonation` = 2).
    pub impersonation_level: u32,
    /// `ContextTrackingMode` (`SECURITY_STATIC_TRACKING` = 0,
    /// `SECURITY_DYNAMIC_TRACKING` = 1).
    pub context_tracking_mode: u8,
    /// `EffectiveOnly`.
    pub effective_only: u8,
}

const _: () = assert!(core::mem::size_of::<SecurityQos>() == core::mem::size_of::<sys::SECURITY_QUALITY_OF_SERVICE>());
const _: () = assert!(
    core::mem::offset_of!(SecurityQos, context_tracking_mode)
        == core::mem::offset_of!(sys::SECURITY_QUALITY_OF_SERVICE, ContextTrackingMode)
);
const _: () =
    assert!(core::mem::offset_of!(SecurityQos, effective_only) == core::mem::offset_of!(sys::SECURITY_QUALITY_OF_SERVICE, EffectiveOnly));

impl Default for SecurityQos {
    /// Identification level, static tracking, effective only: the server
    /// may learn who the driver is (SYSTEM) but can never impersonate it.
    /// A driver has no reason to let a user-mode server act as SYSTEM.
    fn default() -> Self {
        Self {
            length: 12,
            impersonation_level: sys::SECURITY_IDENTIFICATION,
            context_tracking_mode: sys::SECURITY_STATIC_TRACKING,
            effective_only: 1,
        }
    }
}

#[allow(non_snake_case)]
#[link(name = "ntoskrnl")]
extern "system" {
    fn ZwConnectPort(
        port: *mut sys::HANDLE,
        name: *mut sys::UNICODE_STRING,
        qos: *mut SecurityQos,
        client_view: *mut wire::PortView,
        server_view: *mut wire::RemotePortView,
        max_message_length: *mut u32,
        connection_info: *mut c_void,
        connection_info_length: *mut u32,
    ) -> sys::NTSTATUS;
    fn ZwSecureConnectPort(
        port: *mut sys::HANDLE,
        name: *mut sys::UNICODE_STRING,
        qos: *mut SecurityQos,
        client_view: *mut wire::PortView,
        required_server_sid: *mut c_void,
        server_view: *mut wire::RemotePortView,
        max_message_length: *mut u32,
        connection_info: *mut c_void,
        connection_info_length: *mut u32,
    ) -> sys::NTSTATUS;
    fn ZwRequestWaitReplyPort(port: sys::HANDLE, request: *mut PortMessage, reply: *mut PortMessage) -> sys::NTSTATUS;
    fn NtRequestPort(port: sys::HANDLE, request: *mut PortMessage) -> sys::NTSTATUS;
}

/// What went wrong with an LPC call, by cause. Each carries the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpcError {
    /// No server port of that name (`STATUS_OBJECT_NAME_NOT_FOUND`): the
    /// server is not running.
    NotRunning(Error),
    /// The server refused the connection (`STATUS_PORT_CONNECTION_REFUSED`).
    Refused(Error),
    /// The port's server is not who the client required
    /// (`STATUS_SERVER_SID_MISMATCH`): nothing was sent to it.
    WrongServer(Error),
    /// The server went away (`STATUS_PORT_DISCONNECTED`), or this client
    /// was closed ([`LpcClient::close`]) while or before the call ran.
    Disconnected(Error),
    /// The message is longer than the port allows
    /// (`STATUS_PORT_MESSAGE_TOO_LONG`); nothing was sent.
    TooLong(Error),
    /// The system has no LPC (`STATUS_NOT_IMPLEMENTED`: a Wine without
    /// ntcomm's compat layer).
    NotImplemented(Error),
    /// A typed call's reply does not match its declaration (its length is
    /// outside the declared size rules); the reply was consumed.
    BadReply(Error),
    /// Anything else.
    Other(Error),
}

impl LpcError {
    /// Classifies a failed call.
    pub fn from_error(e: Error) -> Self {
        match e.status {
            NtStatus::STATUS_OBJECT_NAME_NOT_FOUND | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND => Self::NotRunning(e),
            s if s == wire::STATUS_PORT_CONNECTION_REFUSED => Self::Refused(e),
            NtStatus::STATUS_SERVER_SID_MISMATCH => Self::WrongServer(e),
            s if s == wire::STATUS_PORT_DISCONNECTED || s == wire::STATUS_INVALID_PORT_HANDLE => Self::Disconnected(e),
            NtStatus::STATUS_INVALID_HANDLE => Self::Disconnected(e),
            s if s == wire::STATUS_PORT_MESSAGE_TOO_LONG => Self::TooLong(e),
            NtStatus::STATUS_NOT_IMPLEMENTED => Self::NotImplemented(e),
            _ => Self::Other(e),
        }
    }

    /// The underlying error (status and context).
    pub fn error(&self) -> Error {
        match *self {
            Self::NotRunning(e)
            | Self::Refused(e)
            | Self::WrongServer(e)
            | Self::Disconnected(e)
            | Self::TooLong(e)
            | Self::NotImplemented(e)
            | Self::BadReply(e)
            | Self::Other(e) => e,
        }
    }

    /// The status, e.g. to complete a request with.
    pub fn status(&self) -> NtStatus {
        self.error().status
    }

    fn check(status: i32, context: &'static str) -> Result<(), Self> {
        Error::check(status, context).map_err(Self::from_error)
    }
}

impl core::fmt::Display for LpcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self {
            Self::NotRunning(_) => "LPC server not running",
            Self::Refused(_) => "LPC connection refused",
            Self::WrongServer(_) => "LPC server is not the required one",
            Self::Disconnected(_) => "LPC port disconnected",
            Self::TooLong(_) => "LPC message too long",
            Self::NotImplemented(_) => "no LPC on this system",
            Self::BadReply(_) => "LPC reply does not match its declaration",
            Self::Other(_) => "LPC call failed",
        };
        write!(f, "{what} ({})", self.error())
    }
}

/// How to connect: security quality of service, and an optional section
/// view shared with the server for payloads larger than a message.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectOptions {
    /// Passed to the connect call. The default is identification only.
    pub qos: SecurityQos,
    /// The user SID the server port's creator must have: connect with
    /// `ZwSecureConnectPort`, which fails with `STATUS_SERVER_SID_MISMATCH`
    /// ([`LpcError::WrongServer`]) before the server sees anything. `None`:
    /// `ZwConnectPort`, any server.
    pub required_server_sid: Option<Sid>,
    /// Size of a section created for this connection and mapped on both
    /// sides (`PORT_VIEW`); 0 for none.
    pub view_size: usize,
}

/// The client's view of the section shared with the server. The server can
/// write it at any time: it is hostile memory, reached only through copies.
///
/// Closing the port unmaps the view (ntcomm's compat LPC does, as Windows
/// does when a port is deleted), so [`LpcClient::close`] first retires the
/// view: copies already running finish, later ones fail with
/// `STATUS_PORT_DISCONNECTED`, and only then is the port closed.
pub struct PortView {
    base: *mut u8,
    len: usize,
    remote_base: u64,
    /// Copies running now.
    users: AtomicUsize,
    /// Set by `retire`: no copy may start.
    retired: AtomicBool,
    _section: Section,
}

// SAFETY: the view is mapped for the life of the connection and only
// reached through volatile copies.
unsafe impl Send for PortView {}
// SAFETY: as above.
unsafe impl Sync for PortView {}

impl PortView {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never, for a connected view).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the server mapped the same view (`ViewRemoteBase`), for
    /// messages that point into it.
    pub fn remote_base(&self) -> u64 {
        self.remote_base
    }

    /// Copies `data` into the view at `offset`; `STATUS_INVALID_PARAMETER`
    /// if it does not fit, `STATUS_PORT_DISCONNECTED` once the port closed.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), Error> {
        let end = offset.checked_add(data.len()).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Error::new(NtStatus::STATUS_INVALID_PARAMETER, "LPC view write out of range"));
        }
        self.using(|| {
            // SAFETY: in bounds (checked); mapped while not retired (`using`);
            // the peer may touch the same bytes, so no reference is formed.
            // (`wrapping_add` is `add` for an in-bounds offset, without a second unsafe op.)
            unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.base.wrapping_add(offset), data.len()) }
        })
    }

    /// Copies from the view at `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(out.len()).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(Error::new(NtStatus::STATUS_INVALID_PARAMETER, "LPC view read out of range"));
        }
        // SAFETY: as in `write`.
        self.using(|| unsafe { ptr::copy_nonoverlapping(self.base.wrapping_add(offset), out.as_mut_ptr(), out.len()) })
    }

    /// Runs a copy unless the view is retired; `retire` waits for it.
    fn using(&self, copy: impl FnOnce()) -> Result<(), Error> {
        // SeqCst on both sides (here: count then check; in `retire`: flag
        // then count): a copy either sees the flag or is seen by `retire`.
        self.users.fetch_add(1, Ordering::SeqCst);
        if self.retired.load(Ordering::SeqCst) {
            self.users.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::new(wire::STATUS_PORT_DISCONNECTED, "LPC port closed: view unmapped"));
        }
        copy();
        self.users.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    /// No copy starts from now on; returns when the running ones finished
    /// (each is one bounded memcpy).
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        while self.users.load(Ordering::SeqCst) != 0 {
            crate::sync::sleep(Duration::from_millis(1));
        }
    }
}

/// A connected LPC client port. Closing it (explicitly or on drop) makes the
/// server receive `LPC_PORT_CLOSED`.
pub struct LpcClient {
    handle: AtomicPtr<c_void>,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    max_message: usize,
    view: Option<PortView>,
}

impl LpcClient {
    /// Connects to the server port `name` (e.g. `\RPC Control\MyServer`)
    /// sending `connection_info` (at most
    /// [`wire::LPC_MAX_CONNECTION_INFO_SIZE`] bytes). The server's
    /// connection information is copied into `reply_info` (cut to its
    /// length); its length is the second value. LPC passes connection
    /// information both ways in one buffer whose length is what the client
    /// sent: a longer answer is cut to `connection_info.len()`.
    pub fn connect(name: &str, connection_info: &[u8], reply_info: &mut [u8], options: ConnectOptions) -> Result<(Self, usize), LpcError> {
        let mut info = [0u8; wire::LPC_MAX_CONNECTION_INFO_SIZE];
        info.get_mut(..connection_info.len())
            .ok_or(LpcError::Other(Error::new(NtStatus::STATUS_INVALID_PARAMETER, "LPC connection information too long")))?
            .copy_from_slice(connection_info);
        // Fits: at most 128.
        let mut info_len = connection_info.len() as u32;
        let mut path = UnicodeString::new(name).map_err(LpcError::Other)?;
        let mut raw = path.as_raw();
        let mut qos = options.qos;
        let mut max_message: u32 = 0;
        let mut h: sys::HANDLE = ptr::null_mut();
        let section = match options.view_size {
            0 => None,
            n => Some(
                Section::create(None, n, &SecurityDescriptor::system_and_admins().map_err(LpcError::Other)?).map_err(LpcError::Other)?,
            ),
        };
        let mut view = section.as_ref().map(|s| wire::PortView::new(s.raw_handle() as u64, 0, s.size() as u64));
        let view_ptr = view.as_mut().map_or(ptr::null_mut(), |v| v as *mut wire::PortView);
        // SAFETY: valid out-pointers; the name, QoS, the view description and
        // the connection information buffer (128 bytes, the most LPC passes
        // either way, with its in/out length) live for the call.
        let status = match options.required_server_sid.as_ref() {
            // SAFETY: as above; the SID is a checked copy that lives for the
            // call (the system only reads it).
            Some(sid) => unsafe {
                ZwSecureConnectPort(
                    &mut h,
                    &mut raw,
                    &mut qos,
                    view_ptr,
                    sid.as_ptr(),
                    ptr::null_mut(),
                    &mut max_message,
                    info.as_mut_ptr().cast(),
                    &mut info_len,
                )
            },
            // SAFETY: as above.
            None => unsafe {
                ZwConnectPort(
                    &mut h,
                    &mut raw,
                    &mut qos,
                    view_ptr,
                    ptr::null_mut(),
                    &mut max_message,
                    info.as_mut_ptr().cast(),
                    &mut info_len,
                )
            },
        };
        LpcError::check(status, "ZwSecureConnectPort")?;
        let handle = KernelHandle::from_raw(h)
            .ok_or(LpcError::Other(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwConnectPort returned no handle")))?;
        let got = (info_len as usize).min(info.len());
        let n = got.min(reply_info.len());
        if let (Some(dst), Some(src)) = (reply_info.get_mut(..n), info.get(..n)) {
            dst.copy_from_slice(src);
        }
        let view = match (section, view) {
            (Some(section), Some(v)) => {
                if v.view_base == 0 || v.view_size < section.size() as u64 {
                    return Err(LpcError::Other(Error::new(NtStatus::STATUS_INVALID_VIEW_SIZE, "ZwConnectPort mapped no view")));
                }
                Some(PortView {
                    base: v.view_base as *mut u8,
                    len: section.size(),
                    remote_base: v.view_remote_base,
                    users: AtomicUsize::new(0),
                    retired: AtomicBool::new(false),
                    _section: section,
                })
            }
            _ => None,
        };
        let max_message = match max_message as usize {
            0 => wire::PORT_MAXIMUM_MESSAGE_LENGTH,
            m => m.min(wire::PORT_MAXIMUM_MESSAGE_LENGTH),
        };
        let client = Self {
            handle: AtomicPtr::new(handle.raw()),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            max_message,
            view,
        };
        core::mem::forget(handle); // owned by `client` from here (closed in `close`)
        Ok((client, got))
    }

    /// The port's maximum message length (header included) as the server set it.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The largest request, reply or datagram body.
    pub fn max_body(&self) -> usize {
        self.max_message.saturating_sub(wire::PORT_MESSAGE_LEN)
    }

    /// The section view shared with the server, if one was asked for.
    pub fn view(&self) -> Option<&PortView> {
        self.view.as_ref()
    }

    /// Whether [`LpcClient::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the port now: the server receives `LPC_PORT_CLOSED`, later
    /// calls fail with [`LpcError::Disconnected`]. Under ntcomm's compat
    /// LPC a request blocked in another thread returns at once; on Windows
    /// (not verified here) it may stay blocked until the server replies or
    /// goes away. Closing the port unmaps the view: view copies running in
    /// other threads finish first, later ones fail.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(v) = &self.view {
            v.retire();
        }
        let h = self.handle.swap(ptr::null_mut(), Ordering::AcqRel);
        if !h.is_null() {
            // A call that read the handle just before the swap may reach
            // the system after this close; the port call then fails on a
            // stale handle (a type-checked error), never touches memory.
            drop(KernelHandle::from_raw(h));
        }
    }

    fn enter(&self) -> Result<Guard<'_>, LpcError> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let g = Guard(self);
        let h = self.handle.load(Ordering::Acquire);
        if h.is_null() {
            return Err(LpcError::Disconnected(Error::new(wire::STATUS_PORT_DISCONNECTED, "LPC client closed")));
        }
        Ok(g)
    }

    /// Sends `body` and waits (without a timeout: LPC has none) for the
    /// reply, whose body is copied into `reply`; returns its length.
    /// A body over [`LpcClient::max_body`] is [`LpcError::TooLong`] before
    /// anything is sent; a reply longer than `reply` is
    /// `STATUS_BUFFER_OVERFLOW` (the reply is consumed).
    pub fn request(&self, body: &[u8], reply: &mut [u8]) -> Result<usize, LpcError> {
        let mut req = Box::new(MessageBuffer::default());
        let mut rep = Box::new(MessageBuffer::default());
        let h = PortMessage::default();
        wire::encode(&h, body, self.max_message, &mut req.0).map_err(|e| LpcError::TooLong(Error::new(e.status(), "LPC request")))?;
        let _g = self.enter()?;
        let handle = self.handle.load(Ordering::Acquire);
        // SAFETY: our port handle (or, after a racing close, a stale value
        // the call rejects); both buffers are 8-aligned and hold
        // PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH bytes; the request is checked.
        let status = unsafe { ZwRequestWaitReplyPort(handle, req.0.as_mut_ptr().cast(), rep.0.as_mut_ptr().cast()) };
        LpcError::check(status, "ZwRequestWaitReplyPort")?;
        let m = wire::parse(&rep.0).map_err(|e| LpcError::Other(Error::new(e.status(), "LPC reply")))?;
        let dst = reply
            .get_mut(..m.body.len())
            .ok_or(LpcError::Other(Error::new(NtStatus::STATUS_BUFFER_OVERFLOW, "LPC reply longer than the buffer")))?;
        dst.copy_from_slice(m.body);
        Ok(m.body.len())
    }

    /// Sends `body` as a datagram (no reply) with `NtRequestPort`.
    ///
    /// Under a Wine without ntcomm's compat LPC, `NtRequestPort` is a fatal
    /// stub: this call kills the winedevice process.
    pub fn datagram(&self, body: &[u8]) -> Result<(), LpcError> {
        let mut req = Box::new(MessageBuffer::default());
        let h = PortMessage::default();
        wire::encode(&h, body, self.max_message, &mut req.0).map_err(|e| LpcError::TooLong(Error::new(e.status(), "LPC datagram")))?;
        let _g = self.enter()?;
        let handle = self.handle.load(Ordering::Acquire);
        // SAFETY: as in `request`; a checked message in an aligned buffer.
        let status = unsafe { NtRequestPort(handle, req.0.as_mut_ptr().cast()) };
        LpcError::check(status, "NtRequestPort")
    }
}

impl LpcClient {
    /// Sends the typed `request` declared by `message` and waits for the
    /// reply, read as the declared `O`. A request outside the declared
    /// size rules is [`LpcError::TooLong`] (nothing is sent); a reply that
    /// does not match them is [`LpcError::BadReply`]. The byte-level
    /// [`request`](Self::request) stays for variable-length bodies.
    pub fn call<I, O>(&self, message: &Message<I, O>, request: &I) -> Result<O, LpcError>
    where
        I: ?Sized + IntoBytes + Immutable,
        O: FromBytes + IntoBytes,
    {
        let body = message.request_bytes(request).map_err(|s| LpcError::TooLong(Error::new(s, "LPC typed request")))?;
        let mut reply = O::new_zeroed();
        let bad = |status| LpcError::BadReply(Error::new(status, "LPC reply does not match its declaration"));
        let n = match self.request(body, reply.as_mut_bytes()) {
            Ok(n) => n,
            Err(LpcError::Other(e)) if e.status == NtStatus::STATUS_BUFFER_OVERFLOW => return Err(bad(e.status)),
            Err(e) => return Err(e),
        };
        if message.check_reply(n).is_err() || n < core::mem::size_of::<O>() {
            return Err(bad(NtStatus::STATUS_INVALID_PARAMETER));
        }
        Ok(reply)
    }

    /// Sends the typed `request` declared by `message` (reply type `()`)
    /// as a datagram; see [`datagram`](Self::datagram).
    pub fn post<I>(&self, message: &Message<I, ()>, request: &I) -> Result<(), LpcError>
    where
        I: ?Sized + IntoBytes + Immutable,
    {
        let body = message.request_bytes(request).map_err(|s| LpcError::TooLong(Error::new(s, "LPC typed datagram")))?;
        self.datagram(body)
    }
}

struct Guard<'a>(&'a LpcClient);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for LpcClient {
    fn drop(&mut self) {
        self.close();
    }
}

/// How a supervised request ended, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The work finished and completed the request.
    Finished,
    /// The caller cancelled the request; the client was closed.
    Cancelled,
    /// The timeout passed; the request was completed with
    /// `STATUS_IO_TIMEOUT` and the client closed.
    TimedOut,
}

/// Runs `work` (blocking LPC calls on `client`) on a system thread for the
/// pended `req`, so that no dispatch routine ever waits on LPC:
/// - when `work` returns first, `complete` completes the request with its
///   result;
/// - when the caller cancels the request first, it is completed with
///   `STATUS_CANCELLED` at once and `client` is closed, so the work ends;
/// - when `timeout` passes first, it is completed with `STATUS_IO_TIMEOUT`
///   and `client` is closed.
///
/// `done` is called last, on the supervising thread, with how it ended.
/// Returns the [`Handled`] for dispatch and the supervising thread (join it,
/// by dropping, before unload).
pub fn supervise<R, W, C, D>(
    client: Arc<LpcClient>,
    req: Request,
    timeout: Option<Duration>,
    work: W,
    complete: C,
    done: D,
) -> (Handled, Option<SystemThread>)
where
    R: Send + 'static,
    W: FnOnce(&Arc<LpcClient>) -> R + Send + 'static,
    C: FnOnce(Request, R) -> Handled + Send + 'static,
    D: FnOnce(Ending) + Send + 'static,
{
    let wake = Arc::new(Event::new(EventKind::Synchronization, false));
    let queue = Arc::new(IrpQueue::with_cancel_event(wake.clone()));
    let handled = queue.pend(req);
    // If this thread cannot start, dropping the closure drops the queue,
    // which completes the request with STATUS_CANCELLED; nothing else ran.
    let supervisor = SystemThread::spawn(move || {
        let result: Arc<SpinLock<Option<R>>> = Arc::new(SpinLock::new(None));
        let finished = Arc::new(AtomicBool::new(false));
        let (c2, r2, f2, w2) = (client.clone(), result.clone(), finished.clone(), wake.clone());
        let worker = SystemThread::spawn(move || {
            let r = work(&c2);
            let _none = r2.replace(Some(r));
            f2.store(true, Ordering::Release);
            w2.set();
        });
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                crate::kprintln!("lpc::supervise: no worker thread: {}", e);
                queue.close(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
                done(Ending::Finished);
                return;
            }
        };
        let deadline = timeout.map(|t| crate::time::interrupt_time().saturating_add(duration_100ns(t)));
        let ending = loop {
            if finished.load(Ordering::Acquire) {
                break Ending::Finished;
            }
            if queue.is_empty() {
                break Ending::Cancelled;
            }
            let left = deadline.map(|d| d.saturating_sub(crate::time::interrupt_time()));
            if left == Some(0) {
                break Ending::TimedOut;
            }
            wake.wait(left.map(|l| Duration::from_nanos(l.saturating_mul(100))));
        };
        match ending {
            Ending::Finished => {
                let r = result.take();
                match (queue.pop(), r) {
                    (Some(req), Some(r)) => {
                        let _ = complete(req, r);
                    }
                    (Some(req), None) => {
                        let _ = req.complete(NtStatus::STATUS_INTERNAL_ERROR, 0);
                    }
                    _ => {} // cancelled just as the work ended
                }
            }
            Ending::TimedOut => {
                queue.close(NtStatus::STATUS_IO_TIMEOUT);
                client.close();
            }
            Ending::Cancelled => client.close(),
        }
        drop(worker); // joins: the work ends once the client is closed
        done(ending);
    });
    match supervisor {
        Ok(s) => (handled, Some(s)),
        Err(e) => {
            crate::kprintln!("lpc::supervise: no supervisor thread: {}", e);
            (handled, None)
        }
    }
}

fn duration_100ns(d: Duration) -> u64 {
    (d.as_nanos() / 100).min(u64::MAX as u128) as u64
}
