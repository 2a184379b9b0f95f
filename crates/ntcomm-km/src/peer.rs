//! Who a connection's peer is: a user-mode server process recorded when it
//! registers with the driver, so that the driver's pipe and LPC clients can
//! refuse a server object some other process created first.
//!
//! A [`ServerProcess`] keeps a handle to the process. While a handle (or
//! any reference) to a process object exists, Windows does not reuse its
//! process id, so "the pipe's server process id equals the registered id"
//! identifies the registered process itself, not a later process that got
//! its number. It also records the user SID of the process's primary token,
//! for `ZwSecureConnectPort`'s `RequiredServerSid`.

use core::ffi::c_void;
use core::time::Duration;

use ntcomm_proto::NtStatus;

use crate::handle::{attributes, KernelHandle};
use crate::{sys, Error};

/// The longest SID: revision, count, authority and 15 sub-authorities
/// (`SECURITY_MAX_SID_SIZE`).
pub const MAX_SID: usize = 68;

/// A SID, copied and checked for shape (revision 1, at most 15
/// sub-authorities, length matching the count).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sid {
    bytes: [u8; MAX_SID],
    len: usize,
}

impl Sid {
    /// Copies a SID from the start of `b`; `None` if it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let (&revision, &count) = (b.first()?, b.get(1)?);
        let len = 8 + 4 * usize::from(count);
        if revision != 1 || count > 15 {
            return None;
        }
        let src = b.get(..len)?;
        let mut bytes = [0u8; MAX_SID];
        bytes.get_mut(..len)?.copy_from_slice(src);
        Some(Self { bytes, len })
    }

    /// The SID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// A pointer for a system call that takes a `PSID` it does not write.
    #[cfg_attr(not(feature = "lpc"), allow(dead_code))]
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.bytes.as_ptr().cast_mut().cast()
    }
}

impl core::fmt::Debug for Sid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // S-1-<authority>-<sub>...
        let b = self.as_bytes();
        let auth = b.get(2..8).map_or(0u64, |a| a.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)));
        write!(f, "S-1-{auth}")?;
        for sub in b.get(8..).unwrap_or(&[]).chunks_exact(4) {
            let mut w = [0u8; 4];
            w.copy_from_slice(sub);
            write!(f, "-{}", u32::from_le_bytes(w))?;
        }
        Ok(())
    }
}

/// A registered server process: its id, a handle that pins the id, and its
/// token's user SID.
pub struct ServerProcess {
    pid: usize,
    process: KernelHandle,
    sid: Sid,
}

impl ServerProcess {
    /// The process whose request is being dispatched. Call from a dispatch
    /// routine at PASSIVE_LEVEL (it opens the process and its token).
    pub fn requestor() -> Result<Self, Error> {
        // SAFETY: no arguments; the id of the process the request came from
        // (dispatch of a top-level device runs in the caller's context).
        let pid = unsafe { sys::PsGetCurrentProcessId() } as usize;
        Self::open(pid)
    }

    /// Opens process `pid` and reads its token's user SID.
    pub fn open(pid: usize) -> Result<Self, Error> {
        let mut attrs = attributes(None, None);
        let mut client = sys::CLIENT_ID { UniqueProcess: pid as sys::HANDLE, UniqueThread: core::ptr::null_mut() };
        let mut h = core::ptr::null_mut();
        // SAFETY: valid out-pointer, attributes and client id.
        let status =
            unsafe { sys::ZwOpenProcess(&mut h, sys::PROCESS_QUERY_LIMITED_INFORMATION | sys::SYNCHRONIZE, &mut attrs, &mut client) };
        Error::check(status, "ZwOpenProcess(server)")?;
        let process = KernelHandle::from_raw(h).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwOpenProcess(server)"))?;
        let sid = token_user(&process)?;
        Ok(Self { pid, process, sid })
    }

    /// The process id.
    pub fn id(&self) -> usize {
        self.pid
    }

    /// The user SID of the process's primary token when it registered.
    pub fn user_sid(&self) -> &Sid {
        &self.sid
    }

    /// Whether the process has exited (its registration is then void).
    pub fn has_exited(&self) -> bool {
        matches!(self.process.wait(Some(Duration::ZERO)), Ok(true))
    }
}

/// The user SID of `process`'s primary token.
fn token_user(process: &KernelHandle) -> Result<Sid, Error> {
    let mut t = core::ptr::null_mut();
    // SAFETY: our process handle; valid out-pointer.
    let status = unsafe { sys::ZwOpenProcessTokenEx(process.raw(), sys::TOKEN_QUERY, sys::OBJ_KERNEL_HANDLE, &mut t) };
    Error::check(status, "ZwOpenProcessTokenEx")?;
    let token = KernelHandle::from_raw(t).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwOpenProcessTokenEx"))?;
    // TOKEN_USER (16 bytes) followed by the SID; 8-aligned.
    let mut buf = [0u64; 16];
    let size = core::mem::size_of_val(&buf);
    let mut returned = 0u32;
    // SAFETY: our token handle; `buf` is writable for `size` bytes.
    let status =
        unsafe { sys::ZwQueryInformationToken(token.raw(), sys::TOKEN_USER_CLASS, buf.as_mut_ptr().cast(), size as u32, &mut returned) };
    Error::check(status, "ZwQueryInformationToken(TokenUser)")?;
    let base = buf.as_ptr() as usize;
    // SAFETY: the call filled a TOKEN_USER at the start of `buf` (aligned).
    let sid_ptr = unsafe { buf.as_ptr().cast::<sys::TOKEN_USER>().read() }.User.Sid as usize;
    let bytes: &[u8] = {
        // SAFETY: `buf` viewed as bytes, same length and lifetime.
        unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), size) }
    };
    let bad = Error::new(NtStatus::STATUS_INVALID_PARAMETER, "token user SID");
    let offset = sid_ptr.checked_sub(base).ok_or(bad)?;
    bytes.get(offset..).and_then(Sid::from_bytes).ok_or(bad)
}
