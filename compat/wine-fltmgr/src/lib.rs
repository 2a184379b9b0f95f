//! `fltmgr.sys` for Wine: Filter Manager registration and communication
//! ports, for minifilters loaded by winedevice, talking to clients that use
//! ntcomm's `fltlib.dll` replacement. The protocol between the two is
//! `wine_fltport` (read it first). Wine only: Windows has the real thing.
//!
//! Exports (x64 ABI, as in fltKernel.h): the port routines FltRegisterFilter,
//! FltStartFiltering, FltUnregisterFilter, FltCreateCommunicationPort,
//! FltCloseCommunicationPort, FltSendMessage, FltCloseClientPort,
//! FltBuildDefaultSecurityDescriptor, FltFreeSecurityDescriptor; and the rest
//! of the documented surface (`surface`), mostly as defined "not supported" answers.
//!
//! Wine never calls this DLL's entry point (it imports only ntoskrnl), so
//! everything is created on first use: the handshake device with the first
//! FltRegisterFilter, deleted with the last FltUnregisterFilter (which also
//! joins every thread of ours, so the DLL can be unloaded after it).
//! See README.md for the semantics chosen where Microsoft's documentation
//! is silent, and for the differences from Windows.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

extern crate alloc;

mod conn;
mod device;
mod ffi;
mod io;
mod surface;

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::proto::{sddl, NtStatus};
use ntcomm_km::sync::{sleep, SpinLock};
use ntcomm_km::sys::{self, DRIVER_OBJECT, NTSTATUS, OBJECT_ATTRIBUTES};
use ntcomm_km::thread::SystemThread;

use conn::Connection;

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(*b"NtFm");

/// Pool tag of security descriptors from FltBuildDefaultSecurityDescriptor.
const SD_TAG: u32 = u32::from_le_bytes(*b"NtFs");

/// A registered minifilter (`PFLT_FILTER`).
pub struct Filter {
    driver: usize,
    registration: usize,
    /// `FLT_REGISTRATION.FilterUnloadCallback`.
    unload_callback: ffi::FilterUnloadCallback,
    /// The driver's `DriverUnload` before FltRegisterFilter replaced it.
    old_unload: ffi::DriverUnload,
    unregistering: AtomicBool,
    /// Rundown references (FltObjectReference, FltGetFilterFromName,
    /// FltEnumerateFilters): FltUnregisterFilter waits for them to go.
    refs: AtomicUsize,
    /// CONNECT requests for this filter's ports in progress.
    connecting: AtomicUsize,
    /// Connection threads, joined by FltUnregisterFilter.
    threads: SpinLock<Vec<SystemThread>>,
}

/// A server port (`PFLT_PORT` from FltCreateCommunicationPort). Stays alive
/// while connections made through it do, after it is closed.
pub struct ServerPort {
    filter: Arc<Filter>,
    name: Vec<u16>,
    cookie: usize,
    connect: ffi::ConnectNotify,
    disconnect: ffi::DisconnectNotify,
    message: ffi::MessageNotify,
    max: u32,
    /// Connections holding a slot (counted against `max`).
    live: AtomicU32,
}

/// Every live object, so the opaque pointers drivers pass in are checked
/// against it before use.
pub(crate) struct State {
    filters: Vec<Arc<Filter>>,
    /// Filters in FltUnregisterFilter, still dereferenceable while it waits.
    unregistering: Vec<Arc<Filter>>,
    /// Open server ports (closed ones accept no connections).
    ports: Vec<Arc<ServerPort>>,
    /// Client ports the driver has not closed.
    conns: Vec<Arc<Connection>>,
}

pub(crate) static STATE: SpinLock<State> =
    SpinLock::new(State { filters: Vec::new(), unregistering: Vec::new(), ports: Vec::new(), conns: Vec::new() });

/// Serialises registration and unregistration (device creation and
/// deletion happen under it). A sleeping lock: it is held across calls that
/// wait.
static LIFECYCLE: AtomicBool = AtomicBool::new(false);

struct LifecycleGuard;
fn lifecycle() -> LifecycleGuard {
    while LIFECYCLE.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        sleep(Duration::from_millis(1));
    }
    LifecycleGuard
}
impl Drop for LifecycleGuard {
    fn drop(&mut self) {
        LIFECYCLE.store(false, Ordering::Release);
    }
}

/// The image's entry point. Wine does not call it for a DLL that imports
/// only ntoskrnl; it exists so that no loader jumps to the start of .text.
#[no_mangle]
pub extern "system" fn FltMgrDllEntry(_image: *mut c_void, _reason: u32, _reserved: *mut c_void) -> i32 {
    1
}

/// `FltRegisterFilter`.
#[no_mangle]
pub unsafe extern "system" fn FltRegisterFilter(
    driver: *mut DRIVER_OBJECT,
    registration: *const ffi::FLT_REGISTRATION_HEAD,
    ret_filter: *mut *mut c_void,
) -> NTSTATUS {
    if driver.is_null() || registration.is_null() || ret_filter.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    // SAFETY: checked non-NULL; the caller's registration, whose every version
    // (0x0200 and later) is longer than the head read here.
    let head = unsafe { core::ptr::read(registration) };
    let (size, flags, unload_callback) = (head.Size, head.Flags, head.FilterUnloadCallback);
    if usize::from(size) < core::mem::size_of::<ffi::FLT_REGISTRATION_HEAD>() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    let _life = lifecycle();
    if !device::exists() {
        let status = device::create();
        if status < 0 {
            ntcomm_km::kprintln!("wine fltmgr: cannot create {}: {:#x}", wine_fltport::DEVICE_NAME, status);
            return status;
        }
    }
    // SAFETY: the driver object Wine passed to DriverEntry, checked non-NULL.
    let old_unload: ffi::DriverUnload = unsafe { (*driver).DriverUnload };
    let filter = Arc::new(Filter {
        driver: driver as usize,
        registration: registration as usize,
        unload_callback,
        old_unload,
        unregistering: AtomicBool::new(false),
        refs: AtomicUsize::new(0),
        connecting: AtomicUsize::new(0),
        threads: SpinLock::new(Vec::new()),
    });
    let raw = Arc::as_ptr(&filter) as *mut c_void;
    STATE.with(|state| state.filters.push(filter));
    // As Windows' Filter Manager does (ReactOS fltmgr Filter.c, FltRegisterFilter):
    // a service stop unloads the minifilter through its FilterUnloadCallback, and
    // a minifilter without one (or that opts out of service stop) cannot be stopped.
    let stop: ffi::DriverUnload = if unload_callback.is_some() && flags & ffi::FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP == 0 {
        Some(filter_driver_unload)
    } else {
        None
    };
    // SAFETY: as above; DriverEntry runs before any unload can.
    unsafe { (*driver).DriverUnload = stop };
    // SAFETY: checked non-NULL; the caller's out-parameter.
    unsafe { ret_filter.write(raw) };
    0
}

/// The minifilter's `DriverUnload` while it is registered with a
/// FilterUnloadCallback: a service stop is a mandatory unload. Calls the
/// FilterUnloadCallback with `FLTFL_FILTER_UNLOAD_MANDATORY` (its status cannot
/// stop the unload), unregisters the filter if the callback did not, then runs
/// the `DriverUnload` the driver had set before FltRegisterFilter, if any.
unsafe extern "system" fn filter_driver_unload(driver: *mut DRIVER_OBJECT) {
    let found = STATE.with(|state| {
        state.filters.iter().find(|f| f.driver == driver as usize).map(|f| (Arc::as_ptr(f) as *mut c_void, f.unload_callback, f.old_unload))
    });
    let Some((raw, callback, old)) = found else {
        return;
    };
    if let Some(callback) = callback {
        // SAFETY: the driver's own callback, registered with this filter, called
        // at PASSIVE_LEVEL from the unload path as Windows calls it.
        let status = unsafe { callback(ffi::FLTFL_FILTER_UNLOAD_MANDATORY) };
        if status < 0 {
            ntcomm_km::kprintln!("wine fltmgr: FilterUnloadCallback returned {:#x} for a mandatory unload: unloading anyway", status);
        }
    }
    if find_filter(raw).is_some() {
        ntcomm_km::kprintln!("wine fltmgr: FilterUnloadCallback did not call FltUnregisterFilter: unregistering the filter");
        // SAFETY: a filter of ours, still registered.
        unsafe { FltUnregisterFilter(raw) };
    }
    if let Some(old) = old {
        if !core::ptr::eq(old as *const (), filter_driver_unload as *const ()) {
            // SAFETY: the driver's own unload routine for its own driver object.
            unsafe { old(driver) };
        }
    }
}

/// `FltStartFiltering`: nothing to start, since Wine sends no file system
/// I/O through filters.
#[no_mangle]
pub unsafe extern "system" fn FltStartFiltering(filter: *mut c_void) -> NTSTATUS {
    if find_filter(filter).is_none() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    0
}

fn find_filter(filter: *mut c_void) -> Option<Arc<Filter>> {
    STATE.with(|state| state.filters.iter().find(|f| Arc::as_ptr(f) as *mut c_void == filter).cloned())
}

/// `FltUnregisterFilter`: closes the filter's server ports, ends every
/// connection (DisconnectNotify once for each the driver has not closed),
/// waits until no callback of the filter runs, and frees everything. The
/// last filter takes the handshake device with it.
#[no_mangle]
pub unsafe extern "system" fn FltUnregisterFilter(filter: *mut c_void) {
    let _life = lifecycle();
    let found = STATE.with(|state| {
        let i = state.filters.iter().position(|f| Arc::as_ptr(f) as *mut c_void == filter)?;
        let f = state.filters.swap_remove(i);
        f.unregistering.store(true, Ordering::SeqCst);
        state.unregistering.push(f.clone());
        let (closed, keep): (Vec<_>, Vec<_>) = core::mem::take(&mut state.ports).into_iter().partition(|p| Arc::ptr_eq(&p.filter, &f));
        state.ports = keep;
        Some((f, state.filters.is_empty(), closed))
    });
    let Some((f, last, closed)) = found else {
        return;
    };
    drop(closed);
    // Rundown: references the driver took (FltObjectReference and friends) go first.
    while f.refs.load(Ordering::SeqCst) != 0 {
        sleep(Duration::from_millis(1));
    }
    STATE.with(|state| state.unregistering.retain(|u| !Arc::ptr_eq(u, &f)));
    // Unregistered: a later stop goes to the driver's own DriverUnload again.
    let driver = f.driver as *mut DRIVER_OBJECT;
    // SAFETY: the driver object of a registered filter, alive while its driver is.
    let current = unsafe { (*driver).DriverUnload };
    if current.is_some_and(|u| core::ptr::eq(u as *const (), filter_driver_unload as *const ())) {
        // SAFETY: as above.
        unsafe { (*driver).DriverUnload = f.old_unload };
    }
    // CONNECTs that found a port before it closed finish first.
    while f.connecting.load(Ordering::SeqCst) != 0 {
        sleep(Duration::from_millis(1));
    }
    let conns: Vec<Arc<Connection>> = STATE.with(|state| {
        let (mine, rest): (Vec<_>, Vec<_>) = core::mem::take(&mut state.conns).into_iter().partition(|c| Arc::ptr_eq(&c.port.filter, &f));
        state.conns = rest;
        mine
    });
    // Each connection's last thread calls DisconnectNotify if still owed.
    for c in &conns {
        c.end();
    }
    drop(conns);
    let threads = f.threads.take();
    drop(threads); // joins
    if last {
        device::destroy();
    }
    let _ = f.registration;
}

/// Reads a `UNICODE_STRING` name from object attributes.
///
/// # Safety
/// `attrs` is NULL or valid object attributes whose name (if any) is valid.
unsafe fn attr_name(attrs: *const OBJECT_ATTRIBUTES) -> Option<Vec<u16>> {
    if attrs.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    let name = unsafe { (*attrs).ObjectName };
    if name.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    let len = unsafe { (*name).Length as usize };
    // SAFETY: as above.
    let buf = unsafe { (*name).Buffer };
    if len == 0 || len % 2 != 0 || buf.is_null() {
        return None;
    }
    // SAFETY: a UNICODE_STRING's buffer holds Length bytes.
    let units = unsafe { core::slice::from_raw_parts(buf, len / 2) };
    Some(units.to_vec())
}

/// `FltCreateCommunicationPort`.
#[no_mangle]
pub unsafe extern "system" fn FltCreateCommunicationPort(
    filter: *mut c_void,
    server_port: *mut *mut c_void,
    attributes: *const OBJECT_ATTRIBUTES,
    server_port_cookie: *mut c_void,
    connect: ffi::ConnectNotify,
    disconnect: ffi::DisconnectNotify,
    message: ffi::MessageNotify,
    max_connections: i32,
) -> NTSTATUS {
    let invalid = NtStatus::STATUS_INVALID_PARAMETER.0;
    if server_port.is_null() || connect.is_none() || disconnect.is_none() || max_connections <= 0 {
        return invalid;
    }
    let Some(f) = find_filter(filter) else {
        return invalid;
    };
    if f.unregistering.load(Ordering::SeqCst) {
        return invalid;
    }
    // SAFETY: the caller passes valid object attributes (or NULL).
    let Some(name) = (unsafe { attr_name(attributes) }) else {
        return invalid;
    };
    if name.len() > conn::MAX_NAME_CHARS {
        return invalid;
    }
    let port = Arc::new(ServerPort {
        filter: f,
        name,
        cookie: server_port_cookie as usize,
        connect,
        disconnect,
        message,
        max: max_connections as u32,
        live: AtomicU32::new(0),
    });
    let raw = Arc::as_ptr(&port) as *mut c_void;
    let added = STATE.with(|state| {
        if state.ports.iter().any(|p| conn::same_name(&p.name, &port.name)) {
            return Err(port);
        }
        state.ports.push(port);
        Ok(())
    });
    if added.is_err() {
        return NtStatus::STATUS_OBJECT_NAME_COLLISION.0;
    }
    // SAFETY: checked non-NULL; the caller's out-parameter.
    unsafe { server_port.write(raw) };
    0
}

/// `FltCloseCommunicationPort`: no new connections; existing ones live on.
#[no_mangle]
pub unsafe extern "system" fn FltCloseCommunicationPort(server_port: *mut c_void) {
    let closed: Vec<Arc<ServerPort>> = STATE.with(|state| {
        let (gone, keep): (Vec<_>, Vec<_>) =
            core::mem::take(&mut state.ports).into_iter().partition(|p| Arc::as_ptr(p) as *mut c_void == server_port);
        state.ports = keep;
        gone
    });
    drop(closed);
}

fn find_conn(client: *mut c_void) -> Option<Arc<Connection>> {
    STATE.with(|state| state.conns.iter().find(|c| Arc::as_ptr(c) as *mut c_void == client).cloned())
}

/// `FltSendMessage`.
#[no_mangle]
pub unsafe extern "system" fn FltSendMessage(
    filter: *mut c_void,
    client_port: *mut *mut c_void,
    sender_buffer: *mut c_void,
    sender_buffer_length: u32,
    reply_buffer: *mut c_void,
    reply_length: *mut u32,
    timeout: *const i64,
) -> NTSTATUS {
    if filter.is_null() || client_port.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    if (!reply_buffer.is_null() && reply_length.is_null()) || (sender_buffer.is_null() && sender_buffer_length != 0) {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    if sender_buffer_length as usize > wine_fltport::MAX_BODY {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    // SAFETY: checked non-NULL; the driver's variable holding the port.
    let port = unsafe { core::ptr::read_volatile(client_port) };
    let Some(conn) = find_conn(port) else {
        return NtStatus::STATUS_PORT_DISCONNECTED.0;
    };
    let body: &[u8] = if sender_buffer_length == 0 {
        &[]
    } else {
        // SAFETY: the driver's buffer of that many bytes, alive for the call.
        unsafe { core::slice::from_raw_parts(sender_buffer as *const u8, sender_buffer_length as usize) }
    };
    let reply = if reply_buffer.is_null() {
        None
    } else {
        // SAFETY: checked non-NULL above.
        Some((reply_buffer as *mut u8, unsafe { reply_length.read() }))
    };
    // SAFETY: the driver passes NULL or a readable LARGE_INTEGER.
    let deadline = unsafe { io::Deadline::from_timeout(timeout) };
    let (status, copied) = conn.send(body, reply, deadline);
    if reply.is_some() && (status == 0 || status == NtStatus::STATUS_BUFFER_OVERFLOW.0) {
        // SAFETY: checked non-NULL above.
        unsafe { reply_length.write(copied) };
    }
    status
}

/// `FltCloseClientPort`: ends the connection (the client's pending
/// FilterGetMessage fails), does not call DisconnectNotify, and sets
/// `*ClientPort` to NULL.
#[no_mangle]
pub unsafe extern "system" fn FltCloseClientPort(_filter: *mut c_void, client_port: *mut *mut c_void) {
    if client_port.is_null() {
        return;
    }
    // SAFETY: the driver's variable holding the port.
    let port = unsafe { core::ptr::read_volatile(client_port) };
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(client_port, core::ptr::null_mut()) };
    if port.is_null() {
        return;
    }
    let conn =
        STATE.with(|state| state.conns.iter().position(|c| Arc::as_ptr(c) as *mut c_void == port).map(|i| state.conns.swap_remove(i)));
    if let Some(c) = conn {
        c.closed_by_driver();
    }
}

/// `FltBuildDefaultSecurityDescriptor`: SYSTEM and Administrators get
/// `desired_access`; pool memory freed by FltFreeSecurityDescriptor.
#[no_mangle]
pub unsafe extern "system" fn FltBuildDefaultSecurityDescriptor(sd: *mut *mut c_void, desired_access: u32) -> NTSTATUS {
    if sd.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    let text = format!("D:P(A;;{desired_access:#x};;;SY)(A;;{desired_access:#x};;;BA)");
    let mut buf = [0u8; 256];
    let Ok(len) = sddl::to_self_relative(&text, &mut buf) else {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    };
    // SAFETY: plain pool allocation.
    let p = unsafe { sys::ExAllocatePoolWithTag(sys::NON_PAGED_POOL_NX, len, SD_TAG) } as *mut u8;
    if p.is_null() {
        return NtStatus::STATUS_INSUFFICIENT_RESOURCES.0;
    }
    let src = buf.get(..len).unwrap_or(&[]);
    // SAFETY: `p` has `len` bytes; `src` is `len` bytes (or empty).
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
    // SAFETY: checked non-NULL; the caller's out-parameter.
    unsafe { sd.write(p.cast()) };
    0
}

/// `FltFreeSecurityDescriptor`.
#[no_mangle]
pub unsafe extern "system" fn FltFreeSecurityDescriptor(sd: *mut c_void) {
    if !sd.is_null() {
        // SAFETY: allocated by FltBuildDefaultSecurityDescriptor with SD_TAG.
        unsafe { sys::ExFreePoolWithTag(sd, SD_TAG) };
    }
}
