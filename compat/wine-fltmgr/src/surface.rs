//! The rest of the documented Filter Manager surface (fltKernel.h, as ReactOS's
//! `sdk/include/ddk/fltkernel.h` lists it through Windows 7, and every name Wine 8's
//! own fltmgr.sys exports), so that real minifilters load. What Wine can support is
//! implemented here; the rest answers a defined value and logs one line per routine
//! (`wine fltmgr: <name> is not supported under Wine`), never crashing: NTSTATUS
//! routines `STATUS_NOT_SUPPORTED`, BOOLEAN ones FALSE, pointer ones NULL, the I/O
//! priority hints `IoPriorityNormal`, the oplock/file-lock pre-operation helpers
//! `FLT_PREOP_SUCCESS_NO_CALLBACK`, `FltGetRequestorProcessId` and
//! `FltCompareInstanceAltitudes` 0, VOID ones nothing. They all take callback data,
//! instances, volumes or file objects, which never exist under Wine (no file system
//! I/O reaches a filter), so no caller can have valid arguments for them. README.md
//! lists every routine.
//!
//! The stubs take no parameters: on x64 the caller passes arguments in registers and
//! its own stack space, so a callee that ignores them is called correctly whatever
//! the documented prototype.
// multiple_unsafe_ops_per_block: none here; each unsafe operation has its own block.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_km::proto::NtStatus;
use ntcomm_km::sync::sleep;
use ntcomm_km::sys::{self, NTSTATUS, UNICODE_STRING};

use crate::{ffi, find_filter, Filter, STATE};

const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC000_00BB_u32 as i32;
/// `STATUS_FLT_FILTER_NOT_FOUND`.
const STATUS_FLT_FILTER_NOT_FOUND: NTSTATUS = 0xC01C_0013_u32 as i32;
/// `STATUS_FLT_DELETING_OBJECT`.
const STATUS_FLT_DELETING_OBJECT: NTSTATUS = 0xC01C_000B_u32 as i32;
/// `IoPriorityNormal` of `IO_PRIORITY_HINT`.
const IO_PRIORITY_NORMAL: i32 = 2;
/// `FLT_PREOP_SUCCESS_NO_CALLBACK` of `FLT_PREOP_CALLBACK_STATUS`.
const FLT_PREOP_SUCCESS_NO_CALLBACK: i32 = 1;

/// One line the first time a routine that Wine cannot support is called.
fn not_supported(once: &AtomicBool, name: &str) {
    if !once.swap(true, Ordering::Relaxed) {
        ntcomm_km::kprintln!("wine fltmgr: {} is not supported under Wine", name);
    }
}

macro_rules! unsupported {
    ($ret:ty = $value:expr; $($name:ident,)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: not supported under Wine (module docs).")]
        #[no_mangle]
        pub extern "system" fn $name() -> $ret {
            static ONCE: AtomicBool = AtomicBool::new(false);
            not_supported(&ONCE, stringify!($name));
            $value
        }
    )*};
}

// ----- filter objects ---------------------------------------------------------------

/// `FltObjectReference`: a rundown reference on a registered filter (the only
/// filter object that exists here); `FltUnregisterFilter` waits until every
/// reference is gone. `STATUS_FLT_DELETING_OBJECT` once it is unregistering;
/// `STATUS_INVALID_PARAMETER` for anything that is not a filter of ours.
#[no_mangle]
pub extern "system" fn FltObjectReference(object: *mut c_void) -> NTSTATUS {
    let Some(f) = find_filter(object) else {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    };
    reference(&f)
}

fn reference(f: &Filter) -> NTSTATUS {
    f.refs.fetch_add(1, Ordering::SeqCst);
    if f.unregistering.load(Ordering::SeqCst) {
        f.refs.fetch_sub(1, Ordering::SeqCst);
        return STATUS_FLT_DELETING_OBJECT;
    }
    0
}

/// `FltObjectDereference`.
#[no_mangle]
pub extern "system" fn FltObjectDereference(object: *mut c_void) {
    let found = STATE
        .with(|state| state.filters.iter().chain(state.unregistering.iter()).find(|f| Arc::as_ptr(f) as *mut c_void == object).cloned());
    if let Some(f) = found {
        // Never below zero: a dereference without a reference is the driver's bug.
        let _ = f.refs.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}

/// The service name of a driver: its `DriverName` after the last `\`.
///
/// # Safety
/// `driver` is a live driver object.
unsafe fn service_name(driver: usize) -> Vec<u16> {
    let driver = driver as *const sys::DRIVER_OBJECT;
    // SAFETY: per the contract.
    let name = unsafe { &(*driver).DriverName };
    if name.Buffer.is_null() {
        return Vec::new();
    }
    // SAFETY: a UNICODE_STRING's buffer holds Length bytes.
    let units = unsafe { core::slice::from_raw_parts(name.Buffer, usize::from(name.Length) / 2) };
    let start = units.iter().rposition(|&c| c == u16::from(b'\\')).map_or(0, |i| i + 1);
    units.get(start..).unwrap_or(&[]).to_vec()
}

/// `FltGetFilterFromName`: the registered filter whose driver's service name is
/// `FilterName` (ASCII case-insensitive), referenced as `FltObjectReference` does;
/// `STATUS_FLT_FILTER_NOT_FOUND` if there is none.
#[no_mangle]
pub unsafe extern "system" fn FltGetFilterFromName(name: *const UNICODE_STRING, ret: *mut *mut c_void) -> NTSTATUS {
    if name.is_null() || ret.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    // SAFETY: the caller's counted string.
    let counted = unsafe { name.read() };
    let (len, buf) = (counted.Length, counted.Buffer);
    let wanted: &[u16] = if buf.is_null() {
        &[]
    } else {
        // SAFETY: as above, Length bytes at Buffer.
        unsafe { core::slice::from_raw_parts(buf, usize::from(len) / 2) }
    };
    let filters: Vec<Arc<Filter>> = STATE.with(|state| state.filters.clone());
    for f in filters {
        // SAFETY: a registered filter's driver object lives while it is registered.
        let svc = unsafe { service_name(f.driver) };
        if crate::conn::same_name(&svc, wanted) {
            let st = reference(&f);
            if st == 0 {
                // SAFETY: checked non-NULL; the caller's out-parameter.
                unsafe { ret.write(Arc::as_ptr(&f) as *mut c_void) };
            }
            return st;
        }
    }
    STATUS_FLT_FILTER_NOT_FOUND
}

/// `FltEnumerateFilters`: every registered filter, each referenced; with too small a
/// list `STATUS_BUFFER_TOO_SMALL` and the number needed.
#[no_mangle]
pub unsafe extern "system" fn FltEnumerateFilters(list: *mut *mut c_void, size: u32, returned: *mut u32) -> NTSTATUS {
    if returned.is_null() {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    }
    let filters: Vec<Arc<Filter>> = STATE.with(|state| state.filters.clone());
    let count = u32::try_from(filters.len()).unwrap_or(u32::MAX);
    // SAFETY: checked non-NULL; the caller's out-parameter.
    unsafe { returned.write(count) };
    if list.is_null() || size < count {
        return NtStatus::STATUS_BUFFER_TOO_SMALL.0;
    }
    let mut written = 0u32;
    for (i, f) in filters.iter().enumerate() {
        if reference(f) != 0 {
            continue;
        }
        // SAFETY: `list` has `size` >= `count` > i slots.
        let slot = unsafe { list.add(i) };
        // SAFETY: as above.
        unsafe { slot.write(Arc::as_ptr(f) as *mut c_void) };
        written += 1;
    }
    // SAFETY: as above.
    unsafe { returned.write(written) };
    0
}

// ----- memory -------------------------------------------------------------------------

/// `FltAllocatePoolAlignedWithTag`: pool memory (Wine's pool is its heap, 16-byte
/// aligned; no device alignment applies since there are no volumes).
#[no_mangle]
pub extern "system" fn FltAllocatePoolAlignedWithTag(_instance: *mut c_void, pool: u32, size: usize, tag: u32) -> *mut c_void {
    // SAFETY: a plain pool allocation.
    unsafe { sys::ExAllocatePoolWithTag(pool, size, tag) }
}

/// `FltFreePoolAlignedWithTag`.
#[no_mangle]
pub unsafe extern "system" fn FltFreePoolAlignedWithTag(_instance: *mut c_void, buffer: *mut c_void, tag: u32) {
    if !buffer.is_null() {
        // SAFETY: the caller's block from FltAllocatePoolAlignedWithTag.
        unsafe { sys::ExFreePoolWithTag(buffer, tag) };
    }
}

// ----- locks ----------------------------------------------------------------------------

/// A push lock (`EX_PUSH_LOCK`, one pointer) as a reader/writer lock: bit 0 the
/// writer, the rest twice the readers. Waiters yield; there is no IRQL or APC to
/// block under Wine.
///
/// # Safety
/// `lock` points to an initialised, pointer-aligned `EX_PUSH_LOCK`.
unsafe fn push_lock<'a>(lock: *mut usize) -> &'a AtomicUsize {
    // SAFETY: per the contract; AtomicUsize has usize's layout.
    unsafe { &*(lock as *const AtomicUsize) }
}

/// `FltInitializePushLock`.
#[no_mangle]
pub unsafe extern "system" fn FltInitializePushLock(lock: *mut usize) {
    // SAFETY: the caller's lock, aligned as a pointer.
    unsafe { push_lock(lock) }.store(0, Ordering::Release);
}

/// `FltDeletePushLock`: nothing to free.
#[no_mangle]
pub extern "system" fn FltDeletePushLock(_lock: *mut usize) {}

/// `FltAcquirePushLockExclusive`.
#[no_mangle]
pub unsafe extern "system" fn FltAcquirePushLockExclusive(lock: *mut usize) {
    // SAFETY: the caller's initialised lock.
    let l = unsafe { push_lock(lock) };
    while l.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        sleep(Duration::ZERO);
    }
}

/// `FltAcquirePushLockShared`.
#[no_mangle]
pub unsafe extern "system" fn FltAcquirePushLockShared(lock: *mut usize) {
    // SAFETY: the caller's initialised lock.
    let l = unsafe { push_lock(lock) };
    loop {
        let v = l.load(Ordering::Relaxed);
        if v & 1 == 0 && l.compare_exchange_weak(v, v + 2, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        sleep(Duration::ZERO);
    }
}

/// `FltReleasePushLock`: releases the writer or one reader.
#[no_mangle]
pub unsafe extern "system" fn FltReleasePushLock(lock: *mut usize) {
    // SAFETY: the caller's lock, held by the caller.
    let l = unsafe { push_lock(lock) };
    if l.load(Ordering::Relaxed) & 1 != 0 {
        l.store(0, Ordering::Release);
    } else {
        l.fetch_sub(2, Ordering::Release);
    }
}

/// `FltAcquireResourceExclusive`: in a critical region, as documented.
#[no_mangle]
pub unsafe extern "system" fn FltAcquireResourceExclusive(resource: *mut c_void) {
    // SAFETY: no preconditions.
    unsafe { ffi::KeEnterCriticalRegion() };
    // SAFETY: the caller's initialised ERESOURCE.
    unsafe { ffi::ExAcquireResourceExclusiveLite(resource, 1) };
}

/// `FltAcquireResourceShared`.
#[no_mangle]
pub unsafe extern "system" fn FltAcquireResourceShared(resource: *mut c_void) {
    // SAFETY: no preconditions.
    unsafe { ffi::KeEnterCriticalRegion() };
    // SAFETY: the caller's initialised ERESOURCE.
    unsafe { ffi::ExAcquireResourceSharedLite(resource, 1) };
}

/// `FltReleaseResource`.
#[no_mangle]
pub unsafe extern "system" fn FltReleaseResource(resource: *mut c_void) {
    // SAFETY: the caller's ERESOURCE, held by the caller.
    unsafe { ffi::ExReleaseResourceLite(resource) };
    // SAFETY: pairs with the acquire's KeEnterCriticalRegion.
    unsafe { ffi::KeLeaveCriticalRegion() };
}

// ----- waits ------------------------------------------------------------------------------

/// `FltCancellableWaitForSingleObject`: a kernel-mode wait. Callback data (whose
/// cancellation would end the wait) never exist under Wine.
#[no_mangle]
pub unsafe extern "system" fn FltCancellableWaitForSingleObject(object: *mut c_void, timeout: *mut i64, _data: *mut c_void) -> NTSTATUS {
    // SAFETY: the caller's dispatcher object and optional timeout.
    unsafe { sys::KeWaitForSingleObject(object, 0, sys::KERNEL_MODE, 0, timeout) }
}

/// `FltCancellableWaitForMultipleObjects`: as above, for several objects.
#[no_mangle]
pub unsafe extern "system" fn FltCancellableWaitForMultipleObjects(
    count: u32,
    objects: *mut *mut c_void,
    wait_type: u32,
    timeout: *mut i64,
    wait_blocks: *mut c_void,
    _data: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the caller's objects, wait type, timeout and wait blocks, as KeWaitForMultipleObjects takes them.
    unsafe { ffi::KeWaitForMultipleObjects(count, objects, wait_type, 0, sys::KERNEL_MODE, 0, timeout, wait_blocks) }
}

// ----- contexts, processes, priorities -----------------------------------------------------

/// `FltGetContexts`: no contexts exist (there are no instances, volumes or files),
/// so every one of the six `FLT_RELATED_CONTEXTS` pointers is NULL.
#[no_mangle]
pub unsafe extern "system" fn FltGetContexts(_objects: *const c_void, _desired: u16, contexts: *mut [*mut c_void; 6]) {
    if !contexts.is_null() {
        // SAFETY: the caller's FLT_RELATED_CONTEXTS (six pointers).
        unsafe { contexts.write([core::ptr::null_mut(); 6]) };
    }
}

/// `FltReleaseContexts`: releases what FltGetContexts returned, which is nothing.
#[no_mangle]
pub extern "system" fn FltReleaseContexts(_contexts: *mut c_void) {}

/// `FltIs32bitProcess`: FALSE. Without callback data it asks about the current
/// process, the 64-bit driver host; callback data never exist under Wine.
#[no_mangle]
pub extern "system" fn FltIs32bitProcess(_data: *mut c_void) -> u8 {
    0
}

/// `FltGetIoPriorityHintFromThread`: `IoPriorityNormal` (Wine has no I/O priorities).
#[no_mangle]
pub extern "system" fn FltGetIoPriorityHintFromThread(_thread: *mut c_void) -> i32 {
    IO_PRIORITY_NORMAL
}

// ----- generic work items ----------------------------------------------------------------

/// A `PFLT_GENERIC_WORKITEM`: only its identity matters.
struct GenericWorkItem {
    _id: u8,
}

/// `PFLT_GENERIC_WORKITEM_ROUTINE`.
type GenericWorkRoutine = Option<unsafe extern "system" fn(item: *mut c_void, flt_object: *mut c_void, context: *mut c_void)>;

/// `FltAllocateGenericWorkItem`.
#[no_mangle]
pub extern "system" fn FltAllocateGenericWorkItem() -> *mut c_void {
    alloc::boxed::Box::into_raw(alloc::boxed::Box::new(GenericWorkItem { _id: 0 })).cast()
}

/// `FltFreeGenericWorkItem`.
#[no_mangle]
pub unsafe extern "system" fn FltFreeGenericWorkItem(item: *mut c_void) {
    if !item.is_null() {
        // SAFETY: an item from FltAllocateGenericWorkItem, freed once by its owner.
        drop(unsafe { alloc::boxed::Box::from_raw(item.cast::<GenericWorkItem>()) });
    }
}

/// `FltQueueGenericWorkItem`: the routine runs on a system thread at PASSIVE_LEVEL
/// with the filter referenced until it returns (so `FltUnregisterFilter` waits for
/// it). `FltObject` must be a registered filter (there are no instances);
/// `STATUS_FLT_DELETING_OBJECT` while it unregisters. The queue type is ignored.
#[no_mangle]
pub extern "system" fn FltQueueGenericWorkItem(
    item: *mut c_void,
    flt_object: *mut c_void,
    routine: GenericWorkRoutine,
    _queue: u32,
    context: *mut c_void,
) -> NTSTATUS {
    let (Some(routine), false) = (routine, item.is_null()) else {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    };
    let Some(f) = find_filter(flt_object) else {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    };
    let st = reference(&f);
    if st != 0 {
        return st;
    }
    let (item_v, object_v, context_v) = (item as usize, flt_object as usize, context as usize);
    let owner = f.clone();
    let spawned = ntcomm_km::thread::SystemThread::spawn(move || {
        // SAFETY: the driver's routine with the arguments it queued, as documented.
        unsafe { routine(item_v as *mut c_void, object_v as *mut c_void, context_v as *mut c_void) };
        owner.refs.fetch_sub(1, Ordering::SeqCst);
    });
    match spawned {
        Ok(thread) => {
            // Finished threads are joined outside the lock.
            let done: Vec<ntcomm_km::thread::SystemThread> = f.threads.with(|threads| {
                let (done, running): (Vec<_>, Vec<_>) = core::mem::take(threads).into_iter().partition(|t| t.is_finished());
                *threads = running;
                threads.push(thread);
                done
            });
            drop(done);
            0
        }
        Err(_) => {
            f.refs.fetch_sub(1, Ordering::SeqCst);
            NtStatus::STATUS_INSUFFICIENT_RESOURCES.0
        }
    }
}

// ----- names ---------------------------------------------------------------------------------

const IRP_NAMES: [&str; 28] = [
    "IRP_MJ_CREATE\0",
    "IRP_MJ_CREATE_NAMED_PIPE\0",
    "IRP_MJ_CLOSE\0",
    "IRP_MJ_READ\0",
    "IRP_MJ_WRITE\0",
    "IRP_MJ_QUERY_INFORMATION\0",
    "IRP_MJ_SET_INFORMATION\0",
    "IRP_MJ_QUERY_EA\0",
    "IRP_MJ_SET_EA\0",
    "IRP_MJ_FLUSH_BUFFERS\0",
    "IRP_MJ_QUERY_VOLUME_INFORMATION\0",
    "IRP_MJ_SET_VOLUME_INFORMATION\0",
    "IRP_MJ_DIRECTORY_CONTROL\0",
    "IRP_MJ_FILE_SYSTEM_CONTROL\0",
    "IRP_MJ_DEVICE_CONTROL\0",
    "IRP_MJ_INTERNAL_DEVICE_CONTROL\0",
    "IRP_MJ_SHUTDOWN\0",
    "IRP_MJ_LOCK_CONTROL\0",
    "IRP_MJ_CLEANUP\0",
    "IRP_MJ_CREATE_MAILSLOT\0",
    "IRP_MJ_QUERY_SECURITY\0",
    "IRP_MJ_SET_SECURITY\0",
    "IRP_MJ_POWER\0",
    "IRP_MJ_SYSTEM_CONTROL\0",
    "IRP_MJ_DEVICE_CHANGE\0",
    "IRP_MJ_QUERY_QUOTA\0",
    "IRP_MJ_SET_QUOTA\0",
    "IRP_MJ_PNP\0",
];

/// The Filter Manager's own operation codes (fltKernel.h, counted down from 0xFF).
const FLT_IRP_NAMES: [&str; 20] = [
    "IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION\0",
    "IRP_MJ_RELEASE_FOR_SECTION_SYNCHRONIZATION\0",
    "IRP_MJ_ACQUIRE_FOR_MOD_WRITE\0",
    "IRP_MJ_RELEASE_FOR_MOD_WRITE\0",
    "IRP_MJ_ACQUIRE_FOR_CC_FLUSH\0",
    "IRP_MJ_RELEASE_FOR_CC_FLUSH\0",
    "IRP_MJ_QUERY_OPEN\0",
    "Unknown\0",
    "Unknown\0",
    "Unknown\0",
    "Unknown\0",
    "Unknown\0",
    "IRP_MJ_FAST_IO_CHECK_IF_POSSIBLE\0",
    "IRP_MJ_NETWORK_QUERY_OPEN\0",
    "IRP_MJ_MDL_READ\0",
    "IRP_MJ_MDL_READ_COMPLETE\0",
    "IRP_MJ_PREPARE_MDL_WRITE\0",
    "IRP_MJ_MDL_WRITE_COMPLETE\0",
    "IRP_MJ_VOLUME_MOUNT\0",
    "IRP_MJ_VOLUME_DISMOUNT\0",
];

/// `FltGetIrpName`: the name of a major function code, "Unknown" for others.
#[no_mangle]
pub extern "system" fn FltGetIrpName(code: u8) -> *const u8 {
    let name = IRP_NAMES.get(usize::from(code)).or_else(|| FLT_IRP_NAMES.get(usize::from(0xFF - code))).copied().unwrap_or("Unknown\0");
    name.as_ptr()
}

extern "C" {
    /// This image's base (the linker's).
    static __ImageBase: u8;
}

/// Reads a little-endian value at `base + offset`.
///
/// # Safety
/// The bytes lie inside this mapped image.
unsafe fn at<T: Copy>(base: *const u8, offset: usize) -> T {
    // SAFETY: per the contract.
    let p = unsafe { base.add(offset) };
    // SAFETY: as above.
    unsafe { p.cast::<T>().read_unaligned() }
}

/// `FltGetRoutineAddress`: the address of a routine this fltmgr.sys exports (looked
/// up in its own export table), NULL for any other name.
#[no_mangle]
pub unsafe extern "system" fn FltGetRoutineAddress(name: *const u8) -> *mut c_void {
    if name.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: the caller's NUL-terminated name.
    let wanted = unsafe { core::ffi::CStr::from_ptr(name.cast()) }.to_bytes();
    // The linker's symbol for our own mapped image (its address only).
    let base = core::ptr::addr_of!(__ImageBase);
    // SAFETY: the DOS header's e_lfanew, then the PE32+ export directory entry
    // (optional header at +0x18, data directory 0 at +0x70 into it).
    let nt: u32 = unsafe { at(base, 0x3c) };
    // SAFETY: as above.
    let dir: u32 = unsafe { at(base, nt as usize + 0x18 + 0x70) };
    if dir == 0 {
        return core::ptr::null_mut();
    }
    let dir = dir as usize;
    // SAFETY: IMAGE_EXPORT_DIRECTORY.NumberOfNames of our own image.
    let count: u32 = unsafe { at(base, dir + 0x18) };
    // SAFETY: .AddressOfFunctions, likewise.
    let funcs: u32 = unsafe { at(base, dir + 0x1c) };
    // SAFETY: .AddressOfNames, likewise.
    let names: u32 = unsafe { at(base, dir + 0x20) };
    // SAFETY: .AddressOfNameOrdinals, likewise.
    let ords: u32 = unsafe { at(base, dir + 0x24) };
    for i in 0..count as usize {
        // SAFETY: the i-th name RVA, within the names array.
        let name_rva: u32 = unsafe { at(base, names as usize + 4 * i) };
        // SAFETY: an RVA inside our image.
        let p = unsafe { base.add(name_rva as usize) };
        // SAFETY: a NUL-terminated export name there.
        let candidate = unsafe { core::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
        if candidate == wanted {
            // SAFETY: the matching ordinal and function RVA, within their arrays.
            let ordinal: u16 = unsafe { at(base, ords as usize + 2 * i) };
            // SAFETY: as above.
            let rva: u32 = unsafe { at(base, funcs as usize + 4 * usize::from(ordinal)) };
            // SAFETY: an RVA inside our image.
            return unsafe { base.add(rva as usize) } as *mut c_void;
        }
    }
    core::ptr::null_mut()
}

// ----- the rest: not supported under Wine ---------------------------------------------------

unsupported! { () = ();
    FltSetCallbackDataDirty,
    FltClearCallbackDataDirty,
    FltCompletePendedPreOperation,
    FltCompletePendedPostOperation,
    FltReleaseFileNameInformation,
    FltReferenceFileNameInformation,
    FltFreeCallbackData,
    FltReuseCallbackData,
    FltPerformSynchronousIo,
    FltReissueSynchronousIo,
    FltCancelFileOpen,
    FltDeleteContext,
    FltReferenceContext,
    FltReleaseContext,
    FltFreeDeferredIoWorkItem,
    FltRetainSwappedBufferMdlAddress,
    FltCbdqEnable,
    FltCbdqDisable,
    FltInitializeOplock,
    FltUninitializeOplock,
    FltInitializeFileLock,
    FltUninitializeFileLock,
    FltFreeFileLock,
    FltNotifyFilterChangeDirectory,
    FltInitExtraCreateParameterLookasideList,
    FltDeleteExtraCreateParameterLookasideList,
    FltFreeExtraCreateParameterList,
    FltFreeExtraCreateParameter,
    FltAcknowledgeEcp,
}

unsupported! { u8 = 0;
    FltIsCallbackDataDirty,
    FltDoCompletionProcessingWhenSafe,
    FltSupportsFileContexts,
    FltSupportsStreamContexts,
    FltSupportsStreamHandleContexts,
    FltCancelIo,
    FltIsIoCanceled,
    FltOplockIsFastIoPossible,
    FltCurrentBatchOplock,
    FltCheckLockForReadAccess,
    FltCheckLockForWriteAccess,
    FltIsOperationSynchronous,
    FltSupportsFileContextsEx,
    FltIsFltMgrVolumeDeviceObject,
    FltIsEcpAcknowledged,
    FltIsEcpFromUserMode,
    FltCurrentOplock,
    FltCurrentOplockH,
    FltOplockIsSharedRequest,
    FltOplockKeysEqual,
}

unsupported! { *mut c_void = core::ptr::null_mut();
    FltAllocateDeferredIoWorkItem,
    FltGetSwappedBufferMdlAddress,
    FltCbdqRemoveIo,
    FltCbdqRemoveNextIo,
    FltAllocateFileLock,
    FltGetRequestorProcess,
    FltGetRequestorProcessIdEx,
    FltGetNewSystemBufferAddress,
}

unsupported! { u32 = 0;
    FltGetRequestorProcessId,
}

unsupported! { i32 = 0;
    FltCompareInstanceAltitudes,
}

unsupported! { i32 = IO_PRIORITY_NORMAL;
    FltGetIoPriorityHint,
    FltGetIoPriorityHintFromCallbackData,
    FltGetIoPriorityHintFromFileObject,
}

unsupported! { i32 = FLT_PREOP_SUCCESS_NO_CALLBACK;
    FltOplockFsctrl,
    FltCheckOplock,
    FltProcessFileLock,
    FltCheckOplockEx,
    FltOplockBreakH,
    FltOplockBreakToNone,
    FltOplockBreakToNoneEx,
    FltOplockFsctrlEx,
}

unsupported! { NTSTATUS = STATUS_NOT_SUPPORTED;
    FltCheckAndGrowNameControl,
    FltPurgeFileNameInformationCache,
    FltRequestOperationStatusCallback,
    FltGetFileNameInformation,
    FltGetFileNameInformationUnsafe,
    FltParseFileName,
    FltParseFileNameInformation,
    FltGetTunneledName,
    FltGetVolumeName,
    FltGetDestinationFileNameInformation,
    FltIsDirectory,
    FltLoadFilter,
    FltUnloadFilter,
    FltAttachVolume,
    FltAttachVolumeAtAltitude,
    FltDetachVolume,
    FltAllocateCallbackData,
    FltPerformAsynchronousIo,
    FltCreateFile,
    FltReadFile,
    FltTagFile,
    FltUntagFile,
    FltWriteFile,
    FltQueryInformationFile,
    FltSetInformationFile,
    FltQueryVolumeInformationFile,
    FltQuerySecurityObject,
    FltSetSecurityObject,
    FltFlushBuffers,
    FltFsControlFile,
    FltDeviceIoControlFile,
    FltClose,
    FltCreateSystemVolumeInformationFolder,
    FltAllocateContext,
    FltSetVolumeContext,
    FltSetInstanceContext,
    FltSetFileContext,
    FltSetStreamContext,
    FltSetStreamHandleContext,
    FltDeleteVolumeContext,
    FltDeleteInstanceContext,
    FltDeleteFileContext,
    FltDeleteStreamContext,
    FltDeleteStreamHandleContext,
    FltGetVolumeContext,
    FltGetInstanceContext,
    FltGetFileContext,
    FltGetStreamContext,
    FltGetStreamHandleContext,
    FltGetVolumeFromName,
    FltGetVolumeInstanceFromName,
    FltGetVolumeFromInstance,
    FltGetFilterFromInstance,
    FltGetVolumeFromFileObject,
    FltGetVolumeFromDeviceObject,
    FltGetDeviceObject,
    FltGetDiskDeviceObject,
    FltGetLowerInstance,
    FltGetUpperInstance,
    FltGetTopInstance,
    FltGetBottomInstance,
    FltGetFilterInformation,
    FltGetInstanceInformation,
    FltGetVolumeProperties,
    FltIsVolumeWritable,
    FltGetVolumeGuidName,
    FltQueryVolumeInformation,
    FltSetVolumeInformation,
    FltEnumerateVolumes,
    FltEnumerateInstances,
    FltEnumerateFilterInformation,
    FltEnumerateInstanceInformationByFilter,
    FltEnumerateInstanceInformationByVolume,
    FltEnumerateVolumeInformation,
    FltSetCancelCompletion,
    FltClearCancelCompletion,
    FltQueueDeferredIoWorkItem,
    FltLockUserBuffer,
    FltDecodeParameters,
    FltCbdqInitialize,
    FltCbdqInsertIo,
    FltCreateFileEx,
    FltOpenVolume,
    FltQueryEaFile,
    FltSetEaFile,
    FltCreateFileEx2,
    FltQueryDirectoryFile,
    FltSetTransactionContext,
    FltDeleteTransactionContext,
    FltGetTransactionContext,
    FltGetVolumeInformation,
    FltGetFileSystemType,
    FltIsVolumeSnapshot,
    FltEnlistInTransaction,
    FltRollbackEnlistment,
    FltPrePrepareComplete,
    FltPrepareComplete,
    FltCommitComplete,
    FltCommitFinalizeComplete,
    FltRollbackComplete,
    FltAllocateExtraCreateParameterList,
    FltAllocateExtraCreateParameter,
    FltAllocateExtraCreateParameterFromLookasideList,
    FltInsertExtraCreateParameter,
    FltFindExtraCreateParameter,
    FltRemoveExtraCreateParameter,
    FltGetEcpListFromCallbackData,
    FltSetEcpListIntoCallbackData,
    FltGetNextExtraCreateParameter,
    FltRetrieveIoPriorityInfo,
    FltApplyPriorityInfoThread,
    FltSetIoPriorityHintIntoCallbackData,
    FltSetIoPriorityHintIntoFileObject,
    FltSetIoPriorityHintIntoThread,
    FltAllocateCallbackDataEx,
    FltGetRequestorSessionId,
    FltAdjustDeviceStackSizeForIoRedirection,
    FltIsIoRedirectionAllowed,
    FltIsIoRedirectionAllowedForOperation,
}
