//! Security descriptors from SDDL, for devices and named objects.

use alloc::boxed::Box;
use core::ffi::c_void;

use ntcomm_proto::{sddl, NtStatus};

use crate::Error;

/// A self-relative security descriptor in pool memory (8-aligned, as the
/// kernel wants).
pub struct SecurityDescriptor {
    buf: Box<[u64; 64]>,
}

impl SecurityDescriptor {
    /// Encodes `text` (see `ntcomm_proto::sddl` for the accepted subset).
    pub fn from_sddl(text: &str) -> Result<Self, Error> {
        let mut buf = Box::new([0u64; 64]);
        let bytes = zerocopy::IntoBytes::as_mut_bytes(&mut buf[..]);
        sddl::to_self_relative(text, bytes).map_err(|_| Error::new(NtStatus::STATUS_INVALID_PARAMETER, "SDDL"))?;
        Ok(Self { buf })
    }

    /// The default for everything ntcomm creates: SYSTEM and Administrators.
    pub fn system_and_admins() -> Result<Self, Error> {
        Self::from_sddl(sddl::DEFAULT_DEVICE_SDDL)
    }

    /// The descriptor's address, for a system call.
    pub fn as_ptr(&self) -> *mut c_void {
        self.buf.as_ptr() as *mut c_void
    }
}
