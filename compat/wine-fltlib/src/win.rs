//! The exports. Every one validates its arguments, never panics (checked
//! arithmetic, no indexing that can fail; the workspace builds with
//! `panic = "abort"`, so nothing could unwind across the boundary anyway),
//! and returns an HRESULT as Windows does.
// multiple_unsafe_ops_per_block: Win32 calls on buffers this module owns, with pointer projections of those buffers, share one SAFETY argument per block.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;
use core::ptr::{null, null_mut};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use windows_sys::core::BOOL;

use windows_sys::Wdk::Storage::FileSystem::NtReadFile;
use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, RtlNtStatusToDosError, ERROR_IO_PENDING, ERROR_MORE_DATA, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::Cryptography::{BCryptGenRandom, BCRYPT_USE_SYSTEM_PREFERRED_RNG};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE,
    OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PeekNamedPipe, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_MESSAGE, PIPE_WAIT,
};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, OpenSCManagerW, OpenServiceW, StartServiceW, SC_MANAGER_CONNECT, SERVICE_CONTROL_STOP,
    SERVICE_START, SERVICE_STATUS, SERVICE_STOP,
};
use windows_sys::Win32::System::Threading::{CreateEventW, GetCurrentProcessId, WaitForSingleObject, INFINITE};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, IO_STATUS_BLOCK, OVERLAPPED};
use wine_fltport::{MessageHeader, ReplyHeader, IOCTL_CONNECT, MAX_BODY, USER_DEVICE};

#[path = "completion.rs"]
mod completion;

use crate::frame;
use crate::hresult::{self, err, E_INVALIDARG, E_NOTIMPL, S_OK};
use crate::names;

/// `FLT_PORT_FLAG_SYNC_HANDLE`.
pub const FLT_PORT_FLAG_SYNC_HANDLE: u32 = 1;

/// Pipe buffer sizes (a hint; message-mode writes larger than this still work).
const PIPE_BUFFER: u32 = 64 * 1024;

fn last_error() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetLastError() }
}

fn nt_to_win32(status: i32) -> u32 {
    // SAFETY: no preconditions.
    hresult::nt_to_win32(status, |s| unsafe { RtlNtStatusToDosError(s) })
}

fn hr_from_nt(status: i32) -> i32 {
    if status >= 0 {
        S_OK
    } else {
        hresult::from_win32(nt_to_win32(status))
    }
}

fn bad_handle(h: HANDLE) -> bool {
    h.is_null() || h == INVALID_HANDLE_VALUE
}

/// An owned kernel handle.
struct Owned(HANDLE);

// SAFETY: kernel handles may be used and closed from any thread.
unsafe impl Send for Owned {}
// SAFETY: as above; all I/O on a shared handle is serialized by a Mutex.
unsafe impl Sync for Owned {}

impl Owned {
    fn new(h: HANDLE) -> Option<Self> {
        (!bad_handle(h)).then_some(Self(h))
    }

    /// Gives the handle up without closing it.
    fn into_raw(self) -> HANDLE {
        let h = self.0;
        core::mem::forget(self);
        h
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own the handle.
        unsafe { CloseHandle(self.0) };
    }
}

/// A manual-reset event for one private overlapped operation.
fn new_event() -> Result<Owned, u32> {
    // SAFETY: plain call; a null name.
    let h = unsafe { CreateEventW(null(), 1, 0, null()) };
    Owned::new(h).ok_or_else(last_error)
}

// ---------------------------------------------------------------------------
// Connections: the control and reply pipes of each port handle.

struct Conn {
    ctl: Mutex<Owned>,
    rpl: Mutex<Owned>,
}

static CONNS: Mutex<BTreeMap<usize, Arc<Conn>>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remembers a new connection; an entry left for a handle value that was
/// closed and reused is replaced (its pipes close when no call uses them).
fn register(port: HANDLE, conn: Conn) {
    let old = lock(&CONNS).insert(port as usize, Arc::new(conn));
    drop(old);
}

fn lookup(port: HANDLE) -> Option<Arc<Conn>> {
    lock(&CONNS).get(&(port as usize)).cloned()
}

// ---------------------------------------------------------------------------
// Pipe I/O.

/// Reads one message from a synchronous or overlapped handle, blocking:
/// an overlapped read with a private event whose low bit is set, so a
/// completion port associated with the handle gets no packet for it.
/// Returns the bytes read and the Win32 error (0 or `ERROR_MORE_DATA`).
fn read_blocking(h: HANDLE, buf: *mut u8, len: u32) -> Result<(u32, u32), u32> {
    let ev = new_event()?;
    // SAFETY: OVERLAPPED is plain data.
    let mut ov: OVERLAPPED = unsafe { core::mem::zeroed() };
    ov.hEvent = (ev.0 as usize | 1) as HANDLE;
    let mut n = 0u32;
    // SAFETY: buf is valid for len bytes (callers); ov and ev outlive the I/O
    // because we wait for it below on every path that leaves it pending.
    let ok = unsafe { ReadFile(h, buf, len, &mut n, &mut ov) };
    let e = if ok != 0 { 0 } else { last_error() };
    let e = if e == ERROR_IO_PENDING {
        // SAFETY: ov is the OVERLAPPED of the pending read.
        let ok = unsafe { GetOverlappedResult(h, &ov, &mut n, 1) };
        if ok != 0 {
            0
        } else {
            last_error()
        }
    } else if ok != 0 {
        // A synchronous success on an overlapped handle: the count is in ov too.
        // SAFETY: the read completed; this only fetches the count.
        unsafe { GetOverlappedResult(h, &ov, &mut n, 0) };
        0
    } else {
        e
    };
    match e {
        0 | ERROR_MORE_DATA => Ok((n, e)),
        e => Err(e),
    }
}

/// Throws away the rest of a message whose first part was read.
fn drain_message(h: HANDLE) {
    let mut scratch = vec![0u8; 4096];
    loop {
        match read_blocking(h, scratch.as_mut_ptr(), scratch.len() as u32) {
            Ok((_, ERROR_MORE_DATA)) => continue,
            _ => return,
        }
    }
}

/// Writes one message (a synchronous handle).
fn write_message(h: HANDLE, msg: &[u8]) -> Result<(), u32> {
    let len = u32::try_from(msg.len()).map_err(|_| err::ERROR_INVALID_PARAMETER)?;
    let mut n = 0u32;
    // SAFETY: msg is valid for len bytes.
    let ok = unsafe { WriteFile(h, msg.as_ptr(), len, &mut n, null_mut()) };
    if ok == 0 {
        return Err(last_error());
    }
    if n != len {
        return Err(err::ERROR_INVALID_DATA);
    }
    Ok(())
}

/// One request/response exchange on a control or reply pipe: writes
/// `req`, reads one response with at most `capacity` bytes of body.
fn exchange(pipe: &Mutex<Owned>, req: &[u8], capacity: usize) -> Result<(i32, Vec<u8>), u32> {
    let guard = lock(pipe);
    let h = guard.0;
    write_message(h, req).map_err(hresult::port_io_error)?;
    let total = capacity.checked_add(size_of::<wine_fltport::CtlResponse>()).ok_or(err::ERROR_INVALID_PARAMETER)?;
    let mut buf = vec![0u8; total];
    let (n, e) = read_blocking(h, buf.as_mut_ptr(), total as u32).map_err(hresult::port_io_error)?;
    if e == ERROR_MORE_DATA {
        drain_message(h);
        return Err(err::ERROR_INVALID_DATA);
    }
    drop(guard);
    let msg = buf.get(..n as usize).ok_or(err::ERROR_INVALID_DATA)?;
    let (status, body) = frame::parse_response(msg, capacity).map_err(|_| err::ERROR_INVALID_DATA)?;
    Ok((status, body.to_vec()))
}

// ---------------------------------------------------------------------------
// Connect.

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn random16() -> Result<[u8; 16], u32> {
    let mut r = [0u8; 16];
    // SAFETY: r is 16 writable bytes.
    let st = unsafe { BCryptGenRandom(null_mut(), r.as_mut_ptr(), 16, BCRYPT_USE_SYSTEM_PREFERRED_RNG) };
    if st < 0 {
        return Err(nt_to_win32(st));
    }
    Ok(r)
}

fn create_pipe(base: &str, suffix: &str, overlapped: bool, sa: *const SECURITY_ATTRIBUTES) -> Result<Owned, u32> {
    let path = names::pipe_path(base, suffix);
    let mut open = PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE;
    if overlapped {
        open |= FILE_FLAG_OVERLAPPED;
    }
    // SAFETY: path is NUL-terminated; sa is null or the caller's valid struct.
    let h = unsafe {
        CreateNamedPipeW(
            path.as_ptr(),
            open,
            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            PIPE_BUFFER,
            PIPE_BUFFER,
            0,
            sa,
        )
    };
    Owned::new(h).ok_or_else(last_error)
}

/// Checks that the driver opened the pipe (without ever blocking): a
/// server end with no client fails `PeekNamedPipe`; a connected one then
/// answers `ConnectNamedPipe` with `ERROR_PIPE_CONNECTED` at once.
fn ensure_connected(h: HANDLE) -> Result<(), u32> {
    // SAFETY: only counts are requested.
    if unsafe { PeekNamedPipe(h, null_mut(), 0, null_mut(), null_mut(), null_mut()) } == 0 {
        return Err(match last_error() {
            0 => err::ERROR_PIPE_NOT_CONNECTED,
            e => e,
        });
    }
    let ev = new_event()?;
    // SAFETY: OVERLAPPED is plain data.
    let mut ov: OVERLAPPED = unsafe { core::mem::zeroed() };
    ov.hEvent = (ev.0 as usize | 1) as HANDLE;
    // SAFETY: ov lives until the operation is known not to be pending.
    let ok = unsafe { ConnectNamedPipe(h, &mut ov) };
    if ok != 0 {
        return Ok(());
    }
    match last_error() {
        ERROR_PIPE_CONNECTED => Ok(()),
        ERROR_IO_PENDING => {
            // Not connected after all (cannot happen after a successful peek).
            let mut n = 0;
            // SAFETY: cancel and reap our own pending operation.
            unsafe {
                CancelIoEx(h, &ov);
                GetOverlappedResult(h, &ov, &mut n, 1);
            }
            Err(err::ERROR_PIPE_NOT_CONNECTED)
        }
        e => Err(e),
    }
}

/// Sends `IOCTL_CONNECT` to the handshake device and returns its NTSTATUS,
/// or the Win32 error of opening the device.
fn device_handshake(device: &[u16], input: &[u8]) -> Result<i32, u32> {
    // SAFETY: device is NUL-terminated.
    let h = unsafe {
        CreateFileW(device.as_ptr(), GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, null(), OPEN_EXISTING, 0, null_mut())
    };
    let dev = Owned::new(h).ok_or_else(last_error)?;
    let ev = new_event()?;
    // SAFETY: IO_STATUS_BLOCK is plain data.
    let mut iosb: IO_STATUS_BLOCK = unsafe { core::mem::zeroed() };
    let len = u32::try_from(input.len()).map_err(|_| err::ERROR_INVALID_PARAMETER)?;
    // SAFETY: input is valid for len bytes; iosb and ev outlive the request
    // (we wait for it when it pends).
    let mut st =
        unsafe { NtDeviceIoControlFile(dev.0, ev.0, None, null(), &mut iosb, IOCTL_CONNECT, input.as_ptr().cast(), len, null_mut(), 0) };
    if st == STATUS_PENDING {
        // SAFETY: waiting on our own event.
        if unsafe { WaitForSingleObject(ev.0, INFINITE) } != WAIT_OBJECT_0 {
            return Err(last_error());
        }
        // SAFETY: the request completed; the union's status member is set.
        st = unsafe { iosb.Anonymous.Status };
    }
    Ok(st)
}

/// Everything `FilterConnectCommunicationPort` does after validating its
/// arguments, with the handshake as a parameter so tests can play
/// `fltmgr.sys` in user mode: `handshake` gets the `IOCTL_CONNECT` input
/// and returns the request's NTSTATUS (or a Win32 error for "could not
/// even ask"). Returns the port handle or an HRESULT.
pub fn connect_with(
    port_name: &[u16],
    options: u32,
    context: &[u8],
    inherit: bool,
    handshake: impl FnOnce(&[u8]) -> Result<i32, u32>,
) -> Result<HANDLE, i32> {
    // Before the first port exists: no packet of a port read is dequeued unhooked.
    completion::install();
    // SAFETY: no preconditions.
    let pid = unsafe { GetCurrentProcessId() };
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = random16().map_err(hresult::from_win32)?;
    let base = names::pipe_base(pid, counter, &random);
    let base_field = names::base_field(&base).ok_or(E_INVALIDARG)?;
    let input = frame::connect_request(options, port_name, context, pid, base_field).ok_or(E_INVALIDARG)?;

    let sa = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: null_mut(),
        bInheritHandle: inherit as BOOL,
    };
    let overlapped = options & FLT_PORT_FLAG_SYNC_HANDLE == 0;
    let w = hresult::from_win32;
    let msg = create_pipe(&base, names::MSG, overlapped, &sa).map_err(w)?;
    let ctl = create_pipe(&base, names::CTL, false, null()).map_err(w)?;
    let rpl = create_pipe(&base, names::RPL, false, null()).map_err(w)?;

    let status = match handshake(&input) {
        Ok(st) => st,
        Err(e) if e == err::ERROR_FILE_NOT_FOUND || e == err::ERROR_PATH_NOT_FOUND => {
            // No fltmgr.sys replacement loaded: no such port, as on Windows.
            return Err(w(err::ERROR_FILE_NOT_FOUND));
        }
        Err(e) => return Err(w(e)),
    };
    if status < 0 {
        return Err(hr_from_nt(status));
    }
    for p in [&msg, &ctl, &rpl] {
        ensure_connected(p.0).map_err(w)?;
    }
    let port = msg.into_raw();
    register(port, Conn { ctl: Mutex::new(ctl), rpl: Mutex::new(rpl) });
    Ok(port)
}

/// Reads a NUL-terminated UTF-16 string, at most `max` units.
///
/// # Safety
/// `p` must point to a NUL-terminated string (or at least `max` + 1 units).
unsafe fn wide_str<'a>(p: *const u16, max: usize) -> Option<&'a [u16]> {
    let mut n = 0usize;
    // SAFETY: per the contract, every unit up to the NUL is readable.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
        if n > max {
            return None;
        }
    }
    // SAFETY: the n units before the NUL were just read.
    Some(unsafe { core::slice::from_raw_parts(p, n) })
}

/// `FilterConnectCommunicationPort`.
///
/// # Safety
/// The pointers must be valid as documented by Microsoft.
#[no_mangle]
pub unsafe extern "system" fn FilterConnectCommunicationPort(
    lp_port_name: *const u16,
    dw_options: u32,
    lp_context: *const c_void,
    w_size_of_context: u16,
    lp_security_attributes: *const SECURITY_ATTRIBUTES,
    h_port: *mut HANDLE,
) -> i32 {
    if h_port.is_null() {
        return E_INVALIDARG;
    }
    // SAFETY: h_port is a valid out pointer (caller contract).
    unsafe { *h_port = INVALID_HANDLE_VALUE };
    if lp_port_name.is_null() || (lp_context.is_null() && w_size_of_context != 0) {
        return E_INVALIDARG;
    }
    // SAFETY: caller contract: a NUL-terminated string.
    let Some(name) = (unsafe { wide_str(lp_port_name, u16::MAX as usize / 2) }) else {
        return E_INVALIDARG;
    };
    let context: &[u8] = if lp_context.is_null() {
        &[]
    } else {
        // SAFETY: caller contract: lp_context points to w_size_of_context bytes.
        unsafe { core::slice::from_raw_parts(lp_context.cast(), w_size_of_context as usize) }
    };
    let inherit = !lp_security_attributes.is_null()
        // SAFETY: non-null: the caller's SECURITY_ATTRIBUTES.
        && unsafe { (*lp_security_attributes).bInheritHandle } != 0;
    let device: Vec<u16> = USER_DEVICE.encode_utf16().chain([0]).collect();
    match connect_with(name, dw_options, context, inherit, |input| device_handshake(&device, input)) {
        Ok(port) => {
            // SAFETY: as above.
            unsafe { *h_port = port };
            S_OK
        }
        Err(hr) => hr,
    }
}

// ---------------------------------------------------------------------------
// Messages.

/// `FilterGetMessage`.
///
/// Each pipe message is one whole `FILTER_MESSAGE_HEADER` + body, so this is
/// one read. With `lp_overlapped` it is the caller's overlapped `ReadFile`
/// and always answers `HRESULT_FROM_WIN32(ERROR_IO_PENDING)` unless the read
/// failed outright (Windows always pends it; the result arrives through the
/// event, `GetOverlappedResult` or the completion port, also when Wine
/// completed the read at once).
///
/// A message larger than the buffer: the first `dw_message_buffer_size`
/// bytes are stored and the result is `HRESULT_FROM_WIN32(ERROR_MORE_DATA)`
/// (`STATUS_BUFFER_OVERFLOW`); without `lp_overlapped` the rest of that
/// message is discarded (the message is consumed); with `lp_overlapped`
/// the completion carries `ERROR_MORE_DATA` and the rest stays in the pipe,
/// where the next read gets it (size buffers for the largest message).
///
/// # Safety
/// The pointers must be valid as documented by Microsoft.
#[no_mangle]
pub unsafe extern "system" fn FilterGetMessage(
    h_port: HANDLE,
    lp_message_buffer: *mut MessageHeader,
    dw_message_buffer_size: u32,
    lp_overlapped: *mut OVERLAPPED,
) -> i32 {
    if bad_handle(h_port) {
        return hresult::from_win32(err::ERROR_INVALID_HANDLE);
    }
    if lp_message_buffer.is_null() || (dw_message_buffer_size as usize) < size_of::<MessageHeader>() {
        return E_INVALIDARG;
    }
    let buf = lp_message_buffer.cast::<u8>();
    if !lp_overlapped.is_null() {
        // SAFETY: caller contract: buffer and OVERLAPPED stay valid until completion.
        return unsafe { get_message_overlapped(h_port, buf, dw_message_buffer_size, lp_overlapped) };
    }
    match read_blocking(h_port, buf, dw_message_buffer_size) {
        Ok((_, 0)) => S_OK,
        Ok((_, e)) => {
            drain_message(h_port);
            hresult::from_win32(e)
        }
        Err(e) => hresult::from_win32(hresult::port_io_error(e)),
    }
}

/// An overlapped `FilterGetMessage`: the read `ReadFile` would issue (the
/// caller's `OVERLAPPED` as status block, its address as the completion
/// packet's value unless the event's low bit is set), recorded so that it
/// completes with `STATUS_PORT_DISCONNECTED` where the pipe breaks; with a
/// caller's event the read gets a private event and status block, and the
/// `OVERLAPPED` and event are set once the status is final ([`completion`]).
///
/// # Safety
/// `buf` holds `len` bytes and `ov` is valid until the read completes.
unsafe fn get_message_overlapped(port: HANDLE, buf: *mut u8, len: u32, ov: *mut OVERLAPPED) -> i32 {
    // SAFETY: caller contract.
    let (event, offset) =
        unsafe { ((*ov).hEvent, (i64::from((*ov).Anonymous.Anonymous.OffsetHigh) << 32) | i64::from((*ov).Anonymous.Anonymous.Offset)) };
    let packet = event as usize & 1 == 0;
    let issue = match completion::record(ov, event) {
        Ok(i) => i,
        Err(e) => return hresult::from_win32(e),
    };
    let cvalue: *const c_void = if packet { ov.cast_const().cast() } else { null() };
    // SAFETY: caller contract: ov, buf and len stay valid until completion; the
    // status block is the OVERLAPPED's first two fields, as ReadFile passes
    // it, or the read's private one, alive until the read is delivered.
    let st = unsafe {
        (*ov).Internal = STATUS_PENDING as usize;
        NtReadFile(port, issue.event(), None, cvalue, issue.block(), buf.cast(), len, &offset, null())
    };
    if (st as u32) >= 0xC000_0000 {
        issue.failed();
        return hresult::from_win32(hresult::port_io_error(nt_to_win32(st)));
    }
    issue.issued();
    hresult::from_win32(err::ERROR_IO_PENDING)
}

/// `FilterReplyMessage`: `dw_reply_buffer_size` covers the
/// `FILTER_REPLY_HEADER` and the reply body after it.
///
/// # Safety
/// The pointers must be valid as documented by Microsoft.
#[no_mangle]
pub unsafe extern "system" fn FilterReplyMessage(h_port: HANDLE, lp_reply_buffer: *const ReplyHeader, dw_reply_buffer_size: u32) -> i32 {
    if bad_handle(h_port) {
        return hresult::from_win32(err::ERROR_INVALID_HANDLE);
    }
    let size = dw_reply_buffer_size as usize;
    if lp_reply_buffer.is_null() || size < size_of::<ReplyHeader>() || size - size_of::<ReplyHeader>() > MAX_BODY {
        return E_INVALIDARG;
    }
    let Some(conn) = lookup(h_port) else {
        return hresult::from_win32(err::ERROR_INVALID_HANDLE);
    };
    // SAFETY: caller contract: size readable bytes, the first 16 a header.
    let (hdr, body) = unsafe {
        (
            core::ptr::read_unaligned(lp_reply_buffer),
            core::slice::from_raw_parts(lp_reply_buffer.cast::<u8>().add(size_of::<ReplyHeader>()), size - size_of::<ReplyHeader>()),
        )
    };
    let Some(req) = frame::reply_request(hdr.status, hdr.message_id, body) else {
        return E_INVALIDARG;
    };
    match exchange(&conn.rpl, &req, 0) {
        Ok((status, _)) => hr_from_nt(status),
        Err(e) => hresult::from_win32(e),
    }
}

/// `FilterSendMessage`.
///
/// # Safety
/// The pointers must be valid as documented by Microsoft.
#[no_mangle]
pub unsafe extern "system" fn FilterSendMessage(
    h_port: HANDLE,
    lp_in_buffer: *const c_void,
    dw_in_buffer_size: u32,
    lp_out_buffer: *mut c_void,
    dw_out_buffer_size: u32,
    lp_bytes_returned: *mut u32,
) -> i32 {
    if bad_handle(h_port) {
        return hresult::from_win32(err::ERROR_INVALID_HANDLE);
    }
    if lp_bytes_returned.is_null() || (lp_in_buffer.is_null() && dw_in_buffer_size != 0) || dw_in_buffer_size as usize > MAX_BODY {
        return E_INVALIDARG;
    }
    // SAFETY: checked non-null; caller contract.
    unsafe { *lp_bytes_returned = 0 };
    let Some(conn) = lookup(h_port) else {
        return hresult::from_win32(err::ERROR_INVALID_HANDLE);
    };
    let input: &[u8] = if lp_in_buffer.is_null() {
        &[]
    } else {
        // SAFETY: caller contract: dw_in_buffer_size readable bytes.
        unsafe { core::slice::from_raw_parts(lp_in_buffer.cast(), dw_in_buffer_size as usize) }
    };
    let capacity = if lp_out_buffer.is_null() { 0 } else { (dw_out_buffer_size as usize).min(MAX_BODY) };
    let Some(req) = frame::send_request(input, capacity as u32) else {
        return E_INVALIDARG;
    };
    match exchange(&conn.ctl, &req, capacity) {
        Ok((status, out)) => {
            if !out.is_empty() {
                // SAFETY: out.len() <= capacity <= dw_out_buffer_size writable bytes.
                unsafe { core::ptr::copy_nonoverlapping(out.as_ptr(), lp_out_buffer.cast::<u8>(), out.len()) };
            }
            // SAFETY: as above.
            unsafe { *lp_bytes_returned = out.len() as u32 };
            hr_from_nt(status)
        }
        Err(e) => hresult::from_win32(e),
    }
}

// ---------------------------------------------------------------------------
// Filter loading through the service control manager.

fn service_call(name: *const u16, access: u32, f: impl FnOnce(HANDLE) -> BOOL) -> i32 {
    if name.is_null() {
        return E_INVALIDARG;
    }
    // SAFETY: null machine and database: the local SCM.
    let scm = unsafe { OpenSCManagerW(null(), null(), SC_MANAGER_CONNECT) };
    if scm.is_null() {
        return hresult::from_win32(last_error());
    }
    // SAFETY: name is the caller's NUL-terminated string.
    let svc = unsafe { OpenServiceW(scm, name, access) };
    let hr = if svc.is_null() {
        hresult::from_win32(last_error())
    } else {
        let hr = if f(svc) != 0 { S_OK } else { hresult::from_win32(last_error()) };
        // SAFETY: our handle.
        unsafe { CloseServiceHandle(svc) };
        hr
    };
    // SAFETY: our handle.
    unsafe { CloseServiceHandle(scm) };
    hr
}

/// `FilterLoad`: starts the (driver) service of that name.
///
/// # Safety
/// `lp_filter_name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn FilterLoad(lp_filter_name: *const u16) -> i32 {
    // SAFETY: svc is an open service handle.
    service_call(lp_filter_name, SERVICE_START, |svc| unsafe { StartServiceW(svc, 0, null()) })
}

/// `FilterUnload`: stops the (driver) service of that name.
///
/// # Safety
/// `lp_filter_name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn FilterUnload(lp_filter_name: *const u16) -> i32 {
    service_call(lp_filter_name, SERVICE_STOP, |svc| {
        // SAFETY: SERVICE_STATUS is plain data.
        let mut st: SERVICE_STATUS = unsafe { core::mem::zeroed() };
        // SAFETY: svc is an open service handle.
        unsafe { ControlService(svc, SERVICE_CONTROL_STOP, &mut st) }
    })
}

// ---------------------------------------------------------------------------
// The rest of fltlib: present so programs importing them load.

macro_rules! not_implemented {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: `E_NOTIMPL` (not provided under Wine).")]
        #[no_mangle]
        pub extern "system" fn $name($($arg: $ty),*) -> i32 {
            $(let _ = $arg;)*
            E_NOTIMPL
        }
    )*};
}

not_implemented! {
    FilterAttach(a: *const u16, b: *const u16, c: *const u16, d: u32, e: *mut u16);
    FilterAttachAtAltitude(a: *const u16, b: *const u16, c: *const u16, d: *const u16, e: u32, f: *mut u16);
    FilterClose(a: HANDLE);
    FilterCreate(a: *const u16, b: *mut HANDLE);
    FilterDetach(a: *const u16, b: *const u16, c: *const u16);
    FilterFindClose(a: HANDLE);
    FilterFindFirst(a: u32, b: *mut c_void, c: u32, d: *mut u32, e: *mut HANDLE);
    FilterFindNext(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
    FilterGetDosName(a: *const u16, b: *mut u16, c: u32);
    FilterGetInformation(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
    FilterInstanceClose(a: HANDLE);
    FilterInstanceCreate(a: *const u16, b: *const u16, c: *const u16, d: *mut HANDLE);
    FilterInstanceFindClose(a: HANDLE);
    FilterInstanceFindFirst(a: *const u16, b: u32, c: *mut c_void, d: u32, e: *mut u32, f: *mut HANDLE);
    FilterInstanceFindNext(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
    FilterInstanceGetInformation(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
    FilterVolumeClose(a: HANDLE);
    FilterVolumeFindClose(a: HANDLE);
    FilterVolumeFindFirst(a: u32, b: *mut c_void, c: u32, d: *mut u32, e: *mut HANDLE);
    FilterVolumeFindNext(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
    FilterVolumeInstanceFindClose(a: HANDLE);
    FilterVolumeInstanceFindFirst(a: *const u16, b: u32, c: *mut c_void, d: u32, e: *mut u32, f: *mut HANDLE);
    FilterVolumeInstanceFindNext(a: HANDLE, b: u32, c: *mut c_void, d: u32, e: *mut u32);
}
