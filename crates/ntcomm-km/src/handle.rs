//! Owned kernel handles and the object attributes that name objects.

use ntcomm_proto::NtStatus;

use crate::security::SecurityDescriptor;
use crate::string::UnicodeString;
use crate::{sys, Error};

/// A kernel handle (`OBJ_KERNEL_HANDLE`: valid in every process context),
/// closed on drop.
pub struct KernelHandle(sys::HANDLE);

// SAFETY: kernel handles may be used and closed from any thread.
unsafe impl Send for KernelHandle {}
// SAFETY: as above; `&KernelHandle` only lends the value.
unsafe impl Sync for KernelHandle {}

impl KernelHandle {
    /// Takes ownership of a handle a Zw call returned.
    #[allow(dead_code)] // unused when no channel feature is on
    pub(crate) fn from_raw(h: sys::HANDLE) -> Option<Self> {
        (!h.is_null()).then_some(Self(h))
    }

    /// The raw handle, for a system call.
    pub fn raw(&self) -> sys::HANDLE {
        self.0
    }

    /// Waits for the object to be signalled, or `timeout`; `true` if
    /// signalled.
    pub fn wait(&self, timeout: Option<core::time::Duration>) -> Result<bool, Error> {
        let mut relative: i64 = timeout.map_or(0, |d| -((d.as_nanos() / 100).min(i64::MAX as u128) as i64));
        let ptr = if timeout.is_some() { &mut relative as *mut i64 } else { core::ptr::null_mut() };
        // SAFETY: our handle; `ptr` is NULL or points to a live local.
        let status = unsafe { sys::ZwWaitForSingleObject(self.0, 0, ptr) };
        match NtStatus(status) {
            NtStatus::STATUS_SUCCESS => Ok(true),
            NtStatus::STATUS_TIMEOUT => Ok(false),
            s => Err(Error::new(s, "ZwWaitForSingleObject")),
        }
    }
}

impl Drop for KernelHandle {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { sys::ZwClose(self.0) };
    }
}

/// `OBJECT_ATTRIBUTES` for a kernel handle, optionally named and secured.
/// Borrows the name and descriptor, so they outlive the call using it.
#[allow(dead_code)] // unused when no channel feature is on
pub(crate) fn attributes(name: Option<&mut sys::UNICODE_STRING>, sd: Option<&SecurityDescriptor>) -> sys::OBJECT_ATTRIBUTES {
    sys::OBJECT_ATTRIBUTES {
        Length: core::mem::size_of::<sys::OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: core::ptr::null_mut(),
        ObjectName: name.map_or(core::ptr::null_mut(), |n| n as *mut _),
        Attributes: sys::OBJ_KERNEL_HANDLE | sys::OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: sd.map_or(core::ptr::null_mut(), |s| s.as_ptr()),
        SecurityQualityOfService: core::ptr::null_mut(),
    }
}

/// Creates a named or unnamed object through `create`, which receives the
/// attributes to pass on.
#[cfg_attr(not(any(feature = "event", feature = "section", feature = "pipe")), allow(dead_code))]
pub(crate) fn create_named(
    name: Option<&str>,
    sd: Option<&SecurityDescriptor>,
    what: &'static str,
    create: impl FnOnce(*mut sys::HANDLE, *mut sys::OBJECT_ATTRIBUTES) -> i32,
) -> Result<KernelHandle, Error> {
    let mut owned = name.map(UnicodeString::new).transpose()?;
    let mut raw = owned.as_mut().map(|n| n.as_raw());
    let mut attrs = attributes(raw.as_mut(), sd);
    let mut h = core::ptr::null_mut();
    Error::check(create(&mut h, &mut attrs), what)?;
    KernelHandle::from_raw(h).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, what))
}
