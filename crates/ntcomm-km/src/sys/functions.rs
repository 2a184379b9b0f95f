//! ntoskrnl and hal exports ntcomm calls. Every one of them is exported by
//! Windows' ntoskrnl.exe/hal.dll and implemented by Wine 8 (checked against
//! its export list and spec file, see docs/WINE.md).
#![allow(non_snake_case, missing_docs)]

use core::ffi::c_void;

use super::types::*;

#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ExAllocatePoolWithTag(pool_type: u32, bytes: usize, tag: u32) -> *mut c_void;
    pub fn ExFreePoolWithTag(p: *mut c_void, tag: u32);

    pub fn IoCreateDevice(
        driver: *mut DRIVER_OBJECT,
        extension_size: u32,
        name: *mut UNICODE_STRING,
        device_type: u32,
        characteristics: u32,
        exclusive: BOOLEAN,
        device: *mut *mut DEVICE_OBJECT,
    ) -> NTSTATUS;
    pub fn IoDeleteDevice(device: *mut DEVICE_OBJECT);
    pub fn IoCreateSymbolicLink(link: *mut UNICODE_STRING, target: *mut UNICODE_STRING) -> NTSTATUS;
    pub fn IoDeleteSymbolicLink(link: *mut UNICODE_STRING) -> NTSTATUS;

    pub fn IofCompleteRequest(irp: *mut IRP, priority_boost: i8);
    pub fn IoAcquireCancelSpinLock(irql: *mut KIRQL);
    pub fn IoReleaseCancelSpinLock(irql: KIRQL);

    pub fn IoAllocateWorkItem(device: *mut DEVICE_OBJECT) -> *mut c_void;
    pub fn IoQueueWorkItem(item: *mut c_void, routine: PIO_WORKITEM_ROUTINE, queue: u32, context: *mut c_void);
    pub fn IoFreeWorkItem(item: *mut c_void);

    pub fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSPIN_LOCK) -> KIRQL;
    pub fn KeReleaseSpinLock(lock: *mut KSPIN_LOCK, irql: KIRQL);

    pub fn KeInitializeEvent(event: *mut KEVENT, event_type: u32, state: BOOLEAN);
    pub fn KeSetEvent(event: *mut KEVENT, increment: i32, wait: BOOLEAN) -> i32;
    pub fn KeClearEvent(event: *mut KEVENT);
    pub fn KeWaitForSingleObject(
        object: *mut c_void,
        reason: u32,
        mode: KPROCESSOR_MODE,
        alertable: BOOLEAN,
        timeout: *mut i64,
    ) -> NTSTATUS;
    pub fn KeDelayExecutionThread(mode: KPROCESSOR_MODE, alertable: BOOLEAN, interval: *mut i64) -> NTSTATUS;
    pub fn KeQueryInterruptTime() -> u64;

    pub fn PsCreateSystemThread(
        handle: *mut HANDLE,
        access: ACCESS_MASK,
        attributes: *mut OBJECT_ATTRIBUTES,
        process: HANDLE,
        client_id: *mut c_void,
        start: PKSTART_ROUTINE,
        context: *mut c_void,
    ) -> NTSTATUS;
    pub fn PsTerminateSystemThread(status: NTSTATUS) -> NTSTATUS;
    pub fn ZwWaitForSingleObject(handle: HANDLE, alertable: BOOLEAN, timeout: *mut i64) -> NTSTATUS;
    pub fn ZwClose(handle: HANDLE) -> NTSTATUS;

    pub fn DbgPrint(format: *const u8, ...) -> u32;
}

#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ObOpenObjectByPointer(
        object: *mut c_void,
        attributes: u32,
        access_state: *mut c_void,
        desired_access: ACCESS_MASK,
        object_type: *mut c_void,
        mode: KPROCESSOR_MODE,
        handle: *mut HANDLE,
    ) -> NTSTATUS;
    pub fn ZwSetSecurityObject(handle: HANDLE, info: u32, sd: *mut c_void) -> NTSTATUS;
    pub fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
}

// The declarations below are compiled only with the features that use them
// (see Cargo.toml), so a driver without those channels cannot import them.

// Sections (`section`).
#[cfg(feature = "section")]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwCreateSection(
        handle: *mut HANDLE,
        access: ACCESS_MASK,
        attributes: *mut OBJECT_ATTRIBUTES,
        maximum_size: *mut i64,
        page_protection: u32,
        allocation_attributes: u32,
        file: HANDLE,
    ) -> NTSTATUS;
    pub fn ZwMapViewOfSection(
        section: HANDLE,
        process: HANDLE,
        base: *mut *mut c_void,
        zero_bits: usize,
        commit_size: usize,
        offset: *mut i64,
        view_size: *mut usize,
        inherit: u32,
        allocation_type: u32,
        protect: u32,
    ) -> NTSTATUS;
    pub fn ZwUnmapViewOfSection(process: HANDLE, base: *mut c_void) -> NTSTATUS;
}

// Client processes (`process`, `peer`).
#[cfg(feature = "process")]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwOpenProcess(handle: *mut HANDLE, access: ACCESS_MASK, attributes: *mut OBJECT_ATTRIBUTES, client: *mut CLIENT_ID) -> NTSTATUS;
    pub fn PsGetCurrentProcessId() -> HANDLE;
}

// Named and private events (`event`; `pipe` waits on one).
#[cfg(any(feature = "event", feature = "pipe"))]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwCreateEvent(
        handle: *mut HANDLE,
        access: ACCESS_MASK,
        attributes: *mut OBJECT_ATTRIBUTES,
        event_type: u32,
        initial_state: BOOLEAN,
    ) -> NTSTATUS;
}

// Setting a named event (`event`).
#[cfg(feature = "event")]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwSetEvent(handle: HANDLE, previous: *mut i32) -> NTSTATUS;
}

// The named-pipe client (`pipe`).
#[cfg(feature = "pipe")]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwCreateFile(
        handle: *mut HANDLE,
        access: ACCESS_MASK,
        attributes: *mut OBJECT_ATTRIBUTES,
        iosb: *mut IO_STATUS_BLOCK,
        allocation_size: *mut i64,
        file_attributes: u32,
        share_access: u32,
        disposition: u32,
        options: u32,
        ea: *mut c_void,
        ea_length: u32,
    ) -> NTSTATUS;
    pub fn ZwFsControlFile(
        handle: HANDLE,
        event: HANDLE,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IO_STATUS_BLOCK,
        code: u32,
        input: *const c_void,
        input_length: u32,
        output: *mut c_void,
        output_length: u32,
    ) -> NTSTATUS;
    pub fn ZwCancelIoFile(handle: HANDLE, iosb: *mut IO_STATUS_BLOCK) -> NTSTATUS;
    pub fn ZwWriteFile(
        handle: HANDLE,
        event: HANDLE,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IO_STATUS_BLOCK,
        buffer: *const c_void,
        length: u32,
        offset: *mut i64,
        key: *mut u32,
    ) -> NTSTATUS;
}

// Server processes' tokens (`peer`).
#[cfg(feature = "peer")]
#[link(name = "ntoskrnl")]
extern "system" {
    pub fn ZwOpenProcessTokenEx(process: HANDLE, access: ACCESS_MASK, attributes: u32, token: *mut HANDLE) -> NTSTATUS;
    pub fn ZwQueryInformationToken(token: HANDLE, class: u32, info: *mut c_void, length: u32, returned: *mut u32) -> NTSTATUS;
}
