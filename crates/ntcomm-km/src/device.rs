//! A driver's device: creation with a name, a `\DosDevices` link, a DACL and
//! `FILE_DEVICE_SECURE_OPEN`; dispatch to a [`DeviceOperations`]
//! implementation; orderly teardown.
//!
//! DriverEntry creates, in order: the device object, its DACL, the driver's
//! state, the symbolic link, then opens for business. Any failure undoes
//! what was done, in reverse. Unload does the same in reverse: new requests
//! are refused, dispatch routines already running are waited for, the
//! driver's `unload` completes what it pended and stops its threads, work
//! items are waited for, then state, link and device go.
//!
//! Unload may run concurrently with dispatch (Wine calls it from its
//! service thread, not the dispatch thread), hence the rundown counter.
// multiple_unsafe_ops_per_block: dispatch and entry blocks read the I/O manager's driver/device/IRP structures through raw pointers under the one contract (called by the I/O manager with live objects) their SAFETY comments state.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use alloc::boxed::Box;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_proto::{sddl, NtStatus};

use crate::irp::{FileId, Handled, Request};
use crate::security::SecurityDescriptor;
use crate::string::UnicodeString;
use crate::{sys, Error};

/// How read and write requests pass their buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoMode {
    /// Through a system buffer (`DO_BUFFERED_IO`): best for small messages.
    Buffered,
    /// Through an MDL (`DO_DIRECT_IO`): no copy on Windows, for bulk data.
    Direct,
}

/// What device to create.
#[derive(Clone, Copy, Debug)]
pub struct DeviceConfig {
    /// Kernel name, e.g. `\Device\MyDevice`.
    pub name: &'static str,
    /// Symbolic link for user mode, e.g. `\DosDevices\MyDevice`.
    pub dos_name: Option<&'static str>,
    /// The device's DACL in SDDL (see `ntcomm_proto::sddl` for the subset).
    pub sddl: &'static str,
    /// `FILE_DEVICE_*` type.
    pub device_type: u32,
    /// Read/write buffer passing.
    pub io: IoMode,
}

impl DeviceConfig {
    /// A software device (`FILE_DEVICE_UNKNOWN`) with buffered I/O, open to
    /// SYSTEM and Administrators only.
    pub const fn new(name: &'static str, dos_name: &'static str) -> Self {
        Self { name, dos_name: Some(dos_name), sddl: sddl::DEFAULT_DEVICE_SDDL, device_type: 0x22, io: IoMode::Buffered }
    }
}

/// The driver's half of the conversation: one method per request kind.
/// Each request method must complete or pend the request it is given; the
/// types make any other outcome impossible.
pub trait DeviceOperations: Send + Sync + Sized + 'static {
    /// A client opened the device.
    fn create(&self, _file: FileId) -> Result<(), NtStatus> {
        Ok(())
    }
    /// The client's last handle is gone (`IRP_MJ_CLEANUP`, and again on
    /// `IRP_MJ_CLOSE` for systems that send no cleanup): complete whatever is
    /// pended for `file`. Must be idempotent.
    fn cleanup(&self, _file: FileId) {}
    /// The open is destroyed.
    fn close(&self, _file: FileId) {}
    /// `ReadFile`.
    fn read(&self, req: Request) -> Handled {
        req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST)
    }
    /// `WriteFile`.
    fn write(&self, req: Request) -> Handled {
        req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST)
    }
    /// `DeviceIoControl`; usually `ntcomm_km::ioctl::dispatch(TABLE, self, req)`.
    fn ioctl(&self, req: Request) -> Handled {
        req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST)
    }
    /// The driver is unloading and no dispatch routine runs: complete every
    /// pended request and stop every thread.
    fn unload(&self) {}
}

/// A handle to the driver's device object, for work items.
#[derive(Clone, Copy)]
pub struct Device {
    raw: *mut sys::DEVICE_OBJECT,
}

// SAFETY: a device object pointer may be used from any thread while the
// device exists; the driver state holding it is dropped before deletion.
unsafe impl Send for Device {}
// SAFETY: as above.
unsafe impl Sync for Device {}

impl Device {
    pub(crate) fn raw(&self) -> *mut sys::DEVICE_OBJECT {
        self.raw
    }

    /// The driver object the device belongs to.
    pub fn driver(&self) -> DriverObject {
        // SAFETY: a live device object of this driver.
        DriverObject(unsafe { (*self.raw).DriverObject })
    }
}

/// The driver's `DRIVER_OBJECT`, as given to DriverEntry (for APIs such as
/// `FltRegisterFilter` that take it).
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "flt"), allow(dead_code))] // read only by `flt`
pub struct DriverObject(*mut sys::DRIVER_OBJECT);

// SAFETY: the driver object lives as long as the driver.
unsafe impl Send for DriverObject {}
// SAFETY: as above.
unsafe impl Sync for DriverObject {}

impl DriverObject {
    #[cfg_attr(not(feature = "flt"), allow(dead_code))]
    pub(crate) fn raw(self) -> *mut sys::DRIVER_OBJECT {
        self.0
    }
}

/// Counts dispatch routines in progress; the high bit refuses new ones.
struct Rundown(AtomicUsize);

const STOPPING: usize = 1 << (usize::BITS - 1);

impl Rundown {
    fn enter(&self) -> bool {
        if self.0.fetch_add(1, Ordering::AcqRel) & STOPPING != 0 {
            self.exit();
            return false;
        }
        true
    }
    fn exit(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
    fn stop_and_wait(&self) {
        self.0.fetch_or(STOPPING, Ordering::AcqRel);
        while self.0.load(Ordering::Acquire) != STOPPING {
            crate::sync::sleep(Duration::from_millis(1));
        }
    }
}

struct DeviceState<D> {
    ops: D,
    rundown: Rundown,
    link: Option<UnicodeString>,
}

fn state<'a, D>(device: *mut sys::DEVICE_OBJECT) -> Option<&'a DeviceState<D>> {
    // SAFETY: the extension holds a pointer to our state, set in `entry`
    // before any dispatch and cleared only at unload after the rundown.
    unsafe {
        let slot = (*device).DeviceExtension as *const *const DeviceState<D>;
        if slot.is_null() {
            return None;
        }
        (*slot).as_ref()
    }
}

unsafe extern "system" fn dispatch<D: DeviceOperations>(device: *mut sys::DEVICE_OBJECT, irp: *mut sys::IRP) -> i32 {
    // SAFETY: the I/O manager hands us a live IRP for our device.
    let Some(req) = (unsafe { Request::from_raw(irp) }) else {
        return NtStatus::STATUS_INVALID_PARAMETER.0;
    };
    let Some(state) = state::<D>(device) else {
        return req.fail(NtStatus::STATUS_DEVICE_NOT_READY).status().0;
    };
    if !state.rundown.enter() {
        return req.fail(NtStatus::STATUS_DELETE_PENDING).status().0;
    }
    let file = req.file();
    let handled = match req.major_function() as usize {
        sys::IRP_MJ_CREATE => match state.ops.create(file) {
            Ok(()) => req.complete_ok(0),
            Err(status) => req.fail(status),
        },
        sys::IRP_MJ_CLEANUP => {
            state.ops.cleanup(file);
            req.complete_ok(0)
        }
        sys::IRP_MJ_CLOSE => {
            state.ops.cleanup(file);
            state.ops.close(file);
            req.complete_ok(0)
        }
        sys::IRP_MJ_READ => state.ops.read(req),
        sys::IRP_MJ_WRITE => state.ops.write(req),
        sys::IRP_MJ_DEVICE_CONTROL => state.ops.ioctl(req),
        _ => req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
    };
    state.rundown.exit();
    handled.status().0
}

/// The driver object and its teardown while a device made by [`entry`] lives.
/// The Filter Manager's FilterUnloadCallback (feature `flt`) takes no driver
/// argument and finds them here. Whoever takes them first tears down: the
/// driver's `DriverUnload`, or the FilterUnloadCallback that the Filter
/// Manager calls in its place once a minifilter is registered.
type Teardown = unsafe extern "system" fn(*mut sys::DRIVER_OBJECT);
static TEARDOWN: crate::sync::SpinLock<Option<(usize, Teardown)>> = crate::sync::SpinLock::new(None);

/// Tears the driver down if nobody has yet (see [`TEARDOWN`]); returns
/// whether this call did it. Called at PASSIVE_LEVEL from an unload path.
pub(crate) fn teardown_once() -> bool {
    let Some((driver, teardown)) = TEARDOWN.with(|t| t.take()) else {
        return false;
    };
    // SAFETY: the driver object `entry` stored with its own teardown, which
    // runs once (taken out of the slot above).
    unsafe { teardown(driver as *mut sys::DRIVER_OBJECT) };
    true
}

unsafe extern "system" fn unload(_driver: *mut sys::DRIVER_OBJECT) {
    teardown_once();
}

unsafe extern "system" fn teardown<D: DeviceOperations>(driver: *mut sys::DRIVER_OBJECT) {
    // SAFETY: the I/O manager passes our driver object; its device list holds
    // the one device `entry` created.
    let device = unsafe { (*driver).DeviceObject };
    if device.is_null() {
        return;
    }
    if let Some(state) = state::<D>(device) {
        state.rundown.stop_and_wait();
        state.ops.unload();
        while crate::thread::work_items_outstanding() != 0 {
            crate::sync::sleep(Duration::from_millis(1));
        }
    }
    // SAFETY: no dispatch runs any more; we take back the state box and
    // clear the slot before deleting the device.
    unsafe {
        let slot = (*device).DeviceExtension as *mut *mut DeviceState<D>;
        let raw = *slot;
        *slot = core::ptr::null_mut();
        if !raw.is_null() {
            let mut state = Box::from_raw(raw);
            if let Some(link) = state.link.as_mut() {
                let mut l = link.as_raw();
                sys::IoDeleteSymbolicLink(&mut l);
            }
            drop(state);
        }
        sys::IoDeleteDevice(device);
    }
}

fn apply_dacl(device: *mut sys::DEVICE_OBJECT, sddl_text: &str) -> Result<(), Error> {
    let sd = SecurityDescriptor::from_sddl(sddl_text)?;
    let mut handle = core::ptr::null_mut();
    // SAFETY: a device object we just created; kernel handle, no type check.
    let status = unsafe {
        sys::ObOpenObjectByPointer(
            device.cast(),
            sys::OBJ_KERNEL_HANDLE,
            core::ptr::null_mut(),
            sys::WRITE_DAC,
            core::ptr::null_mut(),
            sys::KERNEL_MODE,
            &mut handle,
        )
    };
    Error::check(status, "ObOpenObjectByPointer(device, WRITE_DAC)")?;
    // SAFETY: a valid handle and a self-relative descriptor in `sd`.
    let status = unsafe { sys::ZwSetSecurityObject(handle, sys::DACL_SECURITY_INFORMATION, sd.as_ptr()) };
    // SAFETY: our handle, closed once.
    unsafe { sys::ZwClose(handle) };
    Error::check(status, "ZwSetSecurityObject(device DACL)")
}

/// The body of `DriverEntry` (use [`driver_entry!`](crate::driver_entry)).
///
/// # Safety
/// Called once, by the I/O manager, with its driver object.
pub unsafe fn entry<D: DeviceOperations>(
    driver: *mut sys::DRIVER_OBJECT,
    config: DeviceConfig,
    init: impl FnOnce(Device) -> Result<D, Error>,
) -> i32 {
    // Before `init`: a minifilter registered there has FltRegisterFilter keep
    // this as the driver's own unload routine and put the Filter Manager's in
    // its place (see crate::flt).
    TEARDOWN.with(|t| *t = Some((driver as usize, teardown::<D> as Teardown)));
    // SAFETY: the I/O manager's driver object, during DriverEntry.
    unsafe { (*driver).DriverUnload = Some(unload) };
    match create::<D>(driver, config, init) {
        Ok(()) => 0,
        Err(e) => {
            TEARDOWN.with(|t| *t = None);
            crate::kprintln!("DriverEntry failed: {}", e);
            e.status.0
        }
    }
}

fn create<D: DeviceOperations>(
    driver: *mut sys::DRIVER_OBJECT,
    config: DeviceConfig,
    init: impl FnOnce(Device) -> Result<D, Error>,
) -> Result<(), Error> {
    let mut name = UnicodeString::new(config.name)?;
    let mut raw_name = name.as_raw();
    let mut device = core::ptr::null_mut();
    // SAFETY: valid driver object, name and out-pointer.
    let status = unsafe {
        sys::IoCreateDevice(
            driver,
            core::mem::size_of::<*mut c_void>() as u32,
            &mut raw_name,
            config.device_type,
            sys::FILE_DEVICE_SECURE_OPEN,
            0,
            &mut device,
        )
    };
    Error::check(status, "IoCreateDevice")?;
    let delete_device = |device: *mut sys::DEVICE_OBJECT| {
        // SAFETY: the device we created and nobody else references yet.
        unsafe { sys::IoDeleteDevice(device) };
    };
    if let Err(e) = apply_dacl(device, config.sddl) {
        delete_device(device);
        return Err(e);
    }
    let ops = match init(Device { raw: device }) {
        Ok(ops) => ops,
        Err(e) => {
            delete_device(device);
            return Err(e);
        }
    };
    let mut state = Box::new(DeviceState { ops, rundown: Rundown(AtomicUsize::new(0)), link: None });
    if let Some(dos) = config.dos_name {
        let made = UnicodeString::new(dos).and_then(|mut link| {
            let mut l = link.as_raw();
            // SAFETY: valid counted strings for the call's duration.
            Error::check(unsafe { sys::IoCreateSymbolicLink(&mut l, &mut raw_name) }, "IoCreateSymbolicLink")?;
            Ok(link)
        });
        match made {
            Ok(link) => state.link = Some(link),
            Err(e) => {
                state.ops.unload();
                drop(state);
                delete_device(device);
                return Err(e);
            }
        }
    }
    // SAFETY: initialising our device and driver object before the device is
    // opened for I/O (DO_DEVICE_INITIALIZING is cleared last).
    unsafe {
        *((*device).DeviceExtension as *mut *mut DeviceState<D>) = Box::into_raw(state);
        (*device).Flags |= match config.io {
            IoMode::Buffered => sys::DO_BUFFERED_IO,
            IoMode::Direct => sys::DO_DIRECT_IO,
        };
        for major in
            [sys::IRP_MJ_CREATE, sys::IRP_MJ_CLEANUP, sys::IRP_MJ_CLOSE, sys::IRP_MJ_READ, sys::IRP_MJ_WRITE, sys::IRP_MJ_DEVICE_CONTROL]
        {
            if let Some(slot) = (*driver).MajorFunction.get_mut(major) {
                *slot = Some(dispatch::<D>);
            }
        }
        (*device).Flags &= !sys::DO_DEVICE_INITIALIZING;
    }
    Ok(())
}

/// Defines `DriverEntry` for a [`DeviceOperations`] type:
/// `driver_entry!(MyDriver, CONFIG, |device| MyDriver::new(device));`
///
/// The crate must be built by `ntcomm_build::driver()` from its `build.rs`
/// and with `panic = "abort"`: otherwise this does not compile, and says
/// what to add (without them the crate would link as an ordinary DLL that
/// Windows refuses to start as a driver).
#[macro_export]
macro_rules! driver_entry {
    ($ty:ty, $config:expr, $init:expr) => {
        // `NTCOMM_BUILD_DRIVER` is set by ntcomm_build::driver() (its
        // BUILD_MARKER_ENV) in this crate's compile environment.
        const _: () = ::core::assert!(
            ::core::option_env!("NTCOMM_BUILD_DRIVER").is_some(),
            "this driver crate is not built by ntcomm-build: add `ntcomm-build` to [build-dependencies] and a build.rs \
             with `fn main() {{ ntcomm_build::driver(); }}` (it links the image as a driver and writes the .sys)"
        );
        #[cfg(not(panic = "abort"))]
        ::core::compile_error!(
            "a driver must not unwind: add `panic = \"abort\"` to [profile.dev] and [profile.release] of the workspace's Cargo.toml"
        );

        /// The driver's entry point, called by the I/O manager.
        ///
        /// # Safety
        /// Called once by the I/O manager with its driver object.
        #[no_mangle]
        pub unsafe extern "system" fn DriverEntry(
            driver: *mut $crate::sys::DRIVER_OBJECT,
            _registry_path: *mut $crate::sys::UNICODE_STRING,
        ) -> i32 {
            // SAFETY: forwarded unchanged from the I/O manager.
            unsafe { $crate::device::entry::<$ty>(driver, $config, $init) }
        }
    };
}
