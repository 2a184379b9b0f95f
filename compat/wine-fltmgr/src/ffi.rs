//! ntoskrnl exports this crate calls beyond what `ntcomm_km::sys` declares,
//! and the Filter Manager callback types (fltKernel.h, after Microsoft's
//! documentation). Every function here is exported by Wine 8's ntoskrnl.exe
//! and has a stub in mingw's libntoskrnl.a.
#![allow(non_snake_case, non_camel_case_types, missing_docs)]

use core::ffi::c_void;

use ntcomm_km::sys::{DRIVER_OBJECT, HANDLE, IO_STATUS_BLOCK, NTSTATUS, UNICODE_STRING};

pub type PDRIVER_INITIALIZE = Option<unsafe extern "system" fn(*mut DRIVER_OBJECT, *mut UNICODE_STRING) -> NTSTATUS>;

#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwReadFile(
        handle: HANDLE,
        event: HANDLE,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IO_STATUS_BLOCK,
        buffer: *mut c_void,
        length: u32,
        offset: *mut i64,
        key: *mut u32,
    ) -> NTSTATUS;
    pub fn ZwCancelIoFile(handle: HANDLE, iosb: *mut IO_STATUS_BLOCK) -> NTSTATUS;
    pub fn ZwWaitForMultipleObjects(count: u32, handles: *const HANDLE, wait_type: u32, alertable: u8, timeout: *mut i64) -> NTSTATUS;
    pub fn ZwSetInformationFile(handle: HANDLE, iosb: *mut IO_STATUS_BLOCK, info: *mut c_void, length: u32, class: u32) -> NTSTATUS;
    pub fn IoCreateDriver(name: *mut UNICODE_STRING, init: PDRIVER_INITIALIZE) -> NTSTATUS;
    pub fn IoDeleteDriver(driver: *mut DRIVER_OBJECT);
    pub fn PsGetCurrentThreadId() -> HANDLE;
    pub fn KeEnterCriticalRegion();
    pub fn KeLeaveCriticalRegion();
    pub fn ExAcquireResourceExclusiveLite(resource: *mut c_void, wait: u8) -> u8;
    pub fn ExAcquireResourceSharedLite(resource: *mut c_void, wait: u8) -> u8;
    pub fn ExReleaseResourceLite(resource: *mut c_void);
    pub fn KeWaitForMultipleObjects(
        count: u32,
        objects: *mut *mut c_void,
        wait_type: u32,
        reason: u32,
        mode: i8,
        alertable: u8,
        timeout: *mut i64,
        wait_blocks: *mut c_void,
    ) -> NTSTATUS;
}

/// `WaitAny` of `WAIT_TYPE`.
pub const WAIT_ANY: u32 = 1;
/// `FilePipeInformation` of `FILE_INFORMATION_CLASS`.
pub const FILE_PIPE_INFORMATION_CLASS: u32 = 23;
/// `FILE_PIPE_MESSAGE_MODE`.
pub const FILE_PIPE_MESSAGE_MODE: u32 = 1;
/// `FILE_PIPE_QUEUE_OPERATION` (blocking).
pub const FILE_PIPE_QUEUE_OPERATION: u32 = 0;

/// `FILE_PIPE_INFORMATION`.
#[repr(C)]
pub struct FILE_PIPE_INFORMATION {
    pub ReadMode: u32,
    pub CompletionMode: u32,
}

pub const FILE_READ_DATA: u32 = 0x0001;
pub const FILE_WRITE_DATA: u32 = 0x0002;
pub const FILE_READ_ATTRIBUTES: u32 = 0x0080;
pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;

/// `PFLT_CONNECT_NOTIFY`.
pub type ConnectNotify = Option<
    unsafe extern "system" fn(
        client_port: *mut c_void,
        server_port_cookie: *mut c_void,
        connection_context: *mut c_void,
        size_of_context: u32,
        connection_port_cookie: *mut *mut c_void,
    ) -> NTSTATUS,
>;
/// `PFLT_DISCONNECT_NOTIFY`.
pub type DisconnectNotify = Option<unsafe extern "system" fn(connection_cookie: *mut c_void)>;
/// `PFLT_MESSAGE_NOTIFY`.
pub type MessageNotify = Option<
    unsafe extern "system" fn(
        port_cookie: *mut c_void,
        input: *mut c_void,
        input_length: u32,
        output: *mut c_void,
        output_length: u32,
        return_output_length: *mut u32,
    ) -> NTSTATUS,
>;

/// `PFLT_FILTER_UNLOAD_CALLBACK`.
pub type FilterUnloadCallback = Option<unsafe extern "system" fn(flags: u32) -> NTSTATUS>;
/// `PDRIVER_UNLOAD`.
pub type DriverUnload = Option<unsafe extern "system" fn(driver: *mut DRIVER_OBJECT)>;

/// `FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP` (`FLT_REGISTRATION.Flags`).
pub const FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP: u32 = 1;
/// `FLTFL_FILTER_UNLOAD_MANDATORY` (the FilterUnloadCallback's `Flags`).
pub const FLTFL_FILTER_UNLOAD_MANDATORY: u32 = 1;

/// The first fields of `FLT_REGISTRATION` (all this implementation reads).
#[repr(C)]
pub struct FLT_REGISTRATION_HEAD {
    pub Size: u16,
    pub Version: u16,
    pub Flags: u32,
    pub ContextRegistration: *const c_void,
    pub OperationRegistration: *const c_void,
    pub FilterUnloadCallback: FilterUnloadCallback,
}

// x64 layout of fltKernel.h: FilterUnloadCallback at 0x18.
const _: () = assert!(core::mem::offset_of!(FLT_REGISTRATION_HEAD, FilterUnloadCallback) == 0x18);
const _: () = assert!(core::mem::size_of::<FLT_REGISTRATION_HEAD>() == 0x20);
