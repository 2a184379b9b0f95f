//! The handshake device (`wine_fltport::DEVICE_NAME`) on a driver object
//! of our own (`IoCreateDriver`): `fltlib.dll` sends `IOCTL_CONNECT` to it.
//! One per winedevice process, created with the first filter and deleted
//! with the last.
// multiple_unsafe_ops_per_block: the dispatch blocks read a few fields of the
// one IRP (and its stack location) the I/O manager hands over, under the one
// contract their SAFETY comments state.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_km::proto::NtStatus;
use ntcomm_km::sync::sleep;
use ntcomm_km::sys::{self, DEVICE_OBJECT, DRIVER_OBJECT, IRP, NTSTATUS, UNICODE_STRING};

use crate::ffi;

static DRIVER: AtomicPtr<DRIVER_OBJECT> = AtomicPtr::new(core::ptr::null_mut());
static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(core::ptr::null_mut());
/// Dispatch routines of ours running now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Set while the device is being deleted: requests are refused.
static CLOSING: AtomicBool = AtomicBool::new(false);
/// What `init` reported, for `create`.
static INIT_STATUS: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn unicode(buf: &mut [u16]) -> UNICODE_STRING {
    let bytes = (buf.len() * 2) as u16;
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: buf.as_mut_ptr() }
}

/// Whether the device exists.
pub fn exists() -> bool {
    !DRIVER.load(Ordering::Acquire).is_null()
}

/// Creates the driver object, device and link.
pub fn create() -> NTSTATUS {
    if exists() {
        return 0;
    }
    let mut name = wide(wine_fltport::DRIVER_NAME);
    let mut raw = unicode(&mut name);
    INIT_STATUS.store(0, Ordering::Release);
    CLOSING.store(false, Ordering::Release);
    // SAFETY: a valid name; `init` matches PDRIVER_INITIALIZE.
    let status = unsafe { ffi::IoCreateDriver(&mut raw, Some(init)) };
    if status < 0 {
        return status;
    }
    let init_status = INIT_STATUS.load(Ordering::Acquire);
    if init_status < 0 {
        return init_status;
    }
    if exists() {
        0
    } else {
        NtStatus::STATUS_UNSUCCESSFUL.0
    }
}

unsafe extern "system" fn init(driver: *mut DRIVER_OBJECT, _path: *mut UNICODE_STRING) -> NTSTATUS {
    let status = init_inner(driver);
    INIT_STATUS.store(status, Ordering::Release);
    status
}

fn init_inner(driver: *mut DRIVER_OBJECT) -> NTSTATUS {
    let mut dev_name = wide(wine_fltport::DEVICE_NAME);
    let mut link_name = wide(wine_fltport::DOS_NAME);
    let mut dev_raw = unicode(&mut dev_name);
    let mut link_raw = unicode(&mut link_name);
    let mut dev: *mut DEVICE_OBJECT = core::ptr::null_mut();
    // SAFETY: `driver` is the object IoCreateDriver passes to its init
    // routine; names and out-pointer are live locals.
    let status =
        unsafe { sys::IoCreateDevice(driver, 0, &mut dev_raw, ffi::FILE_DEVICE_UNKNOWN, sys::FILE_DEVICE_SECURE_OPEN, 0, &mut dev) };
    if status < 0 || dev.is_null() {
        return if status < 0 { status } else { NtStatus::STATUS_UNSUCCESSFUL.0 };
    }
    // SAFETY: both names are live locals.
    let status = unsafe { sys::IoCreateSymbolicLink(&mut link_raw, &mut dev_raw) };
    if status < 0 {
        // SAFETY: the device we just created, not yet published.
        unsafe { sys::IoDeleteDevice(dev) };
        return status;
    }
    // SAFETY: the driver object is ours and not yet dispatched to; the
    // device was created above.
    unsafe {
        let majors = &mut (*driver).MajorFunction;
        for (i, slot) in majors.iter_mut().enumerate() {
            *slot = match i {
                sys::IRP_MJ_CREATE | sys::IRP_MJ_CLOSE | sys::IRP_MJ_CLEANUP => Some(dispatch_ok),
                sys::IRP_MJ_DEVICE_CONTROL => Some(dispatch_ioctl),
                _ => Some(dispatch_unsupported),
            };
        }
        (*dev).Flags |= sys::DO_BUFFERED_IO;
        (*dev).Flags &= !sys::DO_DEVICE_INITIALIZING;
    }
    DEVICE.store(dev, Ordering::Release);
    DRIVER.store(driver, Ordering::Release);
    0
}

/// Deletes link, device and driver object, after every dispatch routine of
/// ours has returned.
pub fn destroy() {
    let driver = DRIVER.load(Ordering::Acquire);
    if driver.is_null() {
        return;
    }
    CLOSING.store(true, Ordering::SeqCst);
    while ACTIVE.load(Ordering::SeqCst) != 0 {
        sleep(Duration::from_millis(1));
    }
    let mut link_name = wide(wine_fltport::DOS_NAME);
    let mut link_raw = unicode(&mut link_name);
    let dev = DEVICE.swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: the link, device and driver object `create` made, deleted
    // once (the pointers are swapped out first).
    unsafe {
        sys::IoDeleteSymbolicLink(&mut link_raw);
        if !dev.is_null() {
            sys::IoDeleteDevice(dev);
        }
        let driver = DRIVER.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !driver.is_null() {
            ffi::IoDeleteDriver(driver);
        }
    }
}

struct Active;
impl Active {
    fn enter() -> Self {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Active
    }
}
impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Completes `irp` with `status` and no output.
///
/// # Safety
/// `irp` is a live IRP this driver owns.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS) -> NTSTATUS {
    // SAFETY: per the contract; the IRP is ours until completed here.
    unsafe {
        (*irp).IoStatus.Status = status as u32 as usize;
        (*irp).IoStatus.Information = 0;
        sys::IofCompleteRequest(irp, 0);
    }
    status
}

unsafe extern "system" fn dispatch_ok(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let _active = Active::enter();
    // SAFETY: the I/O manager hands us a live IRP.
    unsafe { complete(irp, 0) }
}

unsafe extern "system" fn dispatch_unsupported(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let _active = Active::enter();
    // SAFETY: the I/O manager hands us a live IRP.
    unsafe { complete(irp, NtStatus::STATUS_INVALID_DEVICE_REQUEST.0) }
}

unsafe extern "system" fn dispatch_ioctl(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let _active = Active::enter();
    if CLOSING.load(Ordering::SeqCst) {
        // SAFETY: the I/O manager hands us a live IRP.
        return unsafe { complete(irp, NtStatus::STATUS_DEVICE_NOT_READY.0) };
    }
    // SAFETY: a live IRP; its current stack location is ours. For
    // METHOD_BUFFERED the input is SystemBuffer, InputBufferLength bytes.
    let status = unsafe {
        let stack = sys::IoGetCurrentIrpStackLocation(irp);
        let params = (*stack).Parameters.DeviceIoControl;
        let buf = (*irp).SystemBuffer as *const u8;
        if params.IoControlCode != wine_fltport::IOCTL_CONNECT {
            NtStatus::STATUS_INVALID_DEVICE_REQUEST.0
        } else if buf.is_null() || params.InputBufferLength == 0 {
            NtStatus::STATUS_INVALID_PARAMETER.0
        } else {
            let input = core::slice::from_raw_parts_mut(buf as *mut u8, params.InputBufferLength as usize);
            crate::conn::connect(input)
        }
    };
    // SAFETY: as above; completed exactly once.
    unsafe { complete(irp, status) }
}
