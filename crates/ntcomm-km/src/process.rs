//! A handle to a client process, for mapping memory into it.

use crate::handle::{attributes, KernelHandle};
use crate::{sys, Error};

/// An open process (`ZwOpenProcess`), kept while the driver has something
/// mapped into it. A process that exits stays valid as an object until the
/// handle closes, so unmapping from a dead client is harmless.
pub struct Process {
    handle: KernelHandle,
    pid: usize,
}

impl Process {
    /// The id of the process whose request is being dispatched. Only
    /// meaningful in a dispatch routine for a user-mode request.
    pub fn requestor_id() -> usize {
        // SAFETY: no arguments; returns the current process id.
        unsafe { sys::PsGetCurrentProcessId() as usize }
    }

    /// Opens process `pid` for memory operations.
    pub fn open(pid: usize) -> Result<Self, Error> {
        let mut attrs = attributes(None, None);
        let mut client = sys::CLIENT_ID { UniqueProcess: pid as sys::HANDLE, UniqueThread: core::ptr::null_mut() };
        let mut h = core::ptr::null_mut();
        // SAFETY: valid out-pointer, attributes and client id.
        let status = unsafe {
            sys::ZwOpenProcess(
                &mut h,
                sys::PROCESS_VM_OPERATION | sys::PROCESS_QUERY_LIMITED_INFORMATION | sys::SYNCHRONIZE,
                &mut attrs,
                &mut client,
            )
        };
        Error::check(status, "ZwOpenProcess")?;
        let handle = KernelHandle::from_raw(h).ok_or(Error::new(ntcomm_proto::NtStatus::STATUS_UNSUCCESSFUL, "ZwOpenProcess"))?;
        Ok(Self { handle, pid })
    }

    /// The process id.
    pub fn id(&self) -> usize {
        self.pid
    }

    /// Whether the process has exited.
    pub fn has_exited(&self) -> bool {
        matches!(self.handle.wait(Some(core::time::Duration::ZERO)), Ok(true))
    }

    #[cfg_attr(not(feature = "section"), allow(dead_code))]
    pub(crate) fn raw(&self) -> sys::HANDLE {
        self.handle.raw()
    }
}
