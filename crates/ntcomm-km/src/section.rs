//! Shared memory: a pagefile-backed section, mapped into the driver and
//! into a client process.
//!
//! Where a view lives matters on Windows: `ZwMapViewOfSection` with the
//! current process maps into whatever process the thread runs in. A driver
//! maps its own view from one of its system threads (the System process),
//! and touches it only from system threads. The client's view is mapped
//! through a handle to the client process, from any thread.
//!
//! Memory reachable by a client is hostile: read it through raw pointers
//! only, copy once, validate the copy (see `ntcomm_proto::ring`).

use core::ptr::NonNull;

use ntcomm_proto::ring::{self, RingError};
use ntcomm_proto::NtStatus;

use crate::handle::{create_named, KernelHandle};
use crate::process::Process;
use crate::security::SecurityDescriptor;
use crate::{sys, Error};

/// A section object of a fixed size.
pub struct Section {
    handle: KernelHandle,
    size: usize,
}

impl Section {
    /// Creates a section of `size` bytes. A `name` (e.g.
    /// `\BaseNamedObjects\X`, opened from user mode as `Global\X`) must not
    /// exist yet: an existing object of that name fails with
    /// `STATUS_OBJECT_NAME_COLLISION` rather than being opened, so nobody
    /// can plant one first.
    pub fn create(name: Option<&str>, size: usize, sd: &SecurityDescriptor) -> Result<Self, Error> {
        let mut max = size as i64;
        let handle = create_named(name, Some(sd), "ZwCreateSection", |h, attrs| {
            // SAFETY: valid out-pointer and attributes; pagefile-backed.
            unsafe {
                sys::ZwCreateSection(
                    h,
                    sys::SECTION_ALL_ACCESS,
                    attrs,
                    &mut max,
                    sys::PAGE_READWRITE,
                    sys::SEC_COMMIT,
                    core::ptr::null_mut(),
                )
            }
        })?;
        Ok(Self { handle, size })
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The handle, for a system call that takes the section (e.g. LPC's
    /// `PORT_VIEW`).
    #[cfg_attr(not(feature = "lpc"), allow(dead_code))]
    pub(crate) fn raw_handle(&self) -> sys::HANDLE {
        self.handle.raw()
    }

    fn map(&self, process: sys::HANDLE) -> Result<(NonNull<u8>, usize), Error> {
        let mut base = core::ptr::null_mut();
        let mut view = 0usize;
        let mut offset = 0i64;
        // SAFETY: our section handle and a process handle; out-pointers live.
        let status = unsafe {
            sys::ZwMapViewOfSection(
                self.handle.raw(),
                process,
                &mut base,
                0,
                0,
                &mut offset,
                &mut view,
                sys::VIEW_UNMAP,
                0,
                sys::PAGE_READWRITE,
            )
        };
        Error::check(status, "ZwMapViewOfSection")?;
        let base = NonNull::new(base as *mut u8).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwMapViewOfSection"))?;
        if view < self.size {
            // SAFETY: unmapping what we just mapped.
            unsafe { sys::ZwUnmapViewOfSection(process, base.as_ptr().cast()) };
            return Err(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwMapViewOfSection: view smaller than section"));
        }
        Ok((base, self.size))
    }

    /// Maps the whole section into the current process: call it from a
    /// system thread of the driver, which then owns the view.
    pub fn map_here(&self) -> Result<LocalView, Error> {
        let (base, len) = self.map(sys::NT_CURRENT_PROCESS)?;
        Ok(LocalView { base, len })
    }

    /// Maps the whole section into `process` (a client), read-write.
    pub fn map_into<'p>(&self, process: &'p Process) -> Result<ClientView<'p>, Error> {
        let (base, len) = self.map(process.raw())?;
        Ok(ClientView { process, base: base.as_ptr() as usize, len })
    }
}

/// The driver's view of a section, unmapped on drop. Use it from the system
/// thread that mapped it (see the module docs).
pub struct LocalView {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: moving the view between system threads is fine (they share the
// System process); it is unmapped once.
unsafe impl Send for LocalView {}

impl LocalView {
    /// The first byte. Shared with a client: access through raw pointers.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the view is empty (never, for a mapped section).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for LocalView {
    fn drop(&mut self) {
        // SAFETY: mapped by `map_here` into this process, unmapped once.
        unsafe { sys::ZwUnmapViewOfSection(sys::NT_CURRENT_PROCESS, self.base.as_ptr().cast()) };
    }
}

/// A view mapped into a client process, unmapped on drop (harmless if the
/// client has exited).
pub struct ClientView<'p> {
    process: &'p Process,
    base: usize,
    len: usize,
}

impl ClientView<'_> {
    /// The view's address in the client, to tell the client.
    pub fn client_address(&self) -> usize {
        self.base
    }
    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the view is empty (never, for a mapped section).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for ClientView<'_> {
    fn drop(&mut self) {
        // SAFETY: mapped by `map_into` into this process, unmapped once.
        unsafe { sys::ZwUnmapViewOfSection(self.process.raw(), self.base as *mut _) };
    }
}

/// A ring endpoint borrowing the view its memory lives in, so it cannot
/// outlive the mapping.
pub struct InView<'v, T> {
    inner: T,
    _view: core::marker::PhantomData<&'v LocalView>,
}

impl<T> core::ops::Deref for InView<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> core::ops::DerefMut for InView<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl LocalView {
    /// The sub-range `offset..offset + len`, if it lies inside the view.
    fn range(&self, offset: usize, len: usize) -> Result<*mut u8, RingError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.base.as_ptr().wrapping_add(offset)),
            _ => Err(RingError::Layout(ring::LayoutError::TooShort { needed: offset.saturating_add(len), len: self.len })),
        }
    }

    /// Writes a fresh ring header for `capacity` data bytes at
    /// `offset..offset + len` (the creator's side): variable-length records if
    /// `record_size` is 0, else fixed-size records of that many bytes.
    pub fn init_ring(&self, offset: usize, len: usize, capacity: u32, record_size: u32) -> Result<(), RingError> {
        let p = self.range(offset, len)?;
        // SAFETY: `p..p+len` is inside this mapped view, alive for the call.
        unsafe { ring::init_records(p, len, capacity, record_size) }
    }

    /// The producing end of the ring at `offset..offset + len`.
    pub fn ring_producer(&self, offset: usize, len: usize) -> Result<InView<'_, ring::Producer>, RingError> {
        let p = self.range(offset, len)?;
        // SAFETY: the range is inside the view, which the returned value
        // borrows; the ring tolerates concurrent writes by the client.
        let inner = unsafe { ring::Producer::attach(p, len) }?;
        Ok(InView { inner, _view: core::marker::PhantomData })
    }

    /// The consuming end of the ring at `offset..offset + len`.
    pub fn ring_consumer(&self, offset: usize, len: usize) -> Result<InView<'_, ring::Consumer>, RingError> {
        let p = self.range(offset, len)?;
        // SAFETY: as for `ring_producer`.
        let inner = unsafe { ring::Consumer::attach(p, len) }?;
        Ok(InView { inner, _view: core::marker::PhantomData })
    }
}
