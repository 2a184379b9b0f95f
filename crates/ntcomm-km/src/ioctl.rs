//! `IRP_MJ_DEVICE_CONTROL`: a dispatch table driven by the typed IOCTL
//! declarations of `ntcomm-proto`, and a request type that hands each
//! handler the buffers its method defines.
//!
//! The table validates, before any handler runs: the code is known
//! (`STATUS_INVALID_DEVICE_REQUEST`), the input length is within the
//! declaration (`STATUS_INVALID_PARAMETER`), the output buffer is at least
//! the declared minimum (`STATUS_BUFFER_TOO_SMALL`), and the buffers the
//! method promises are present.
//!
//! `METHOD_NEITHER` requests are refused unless the entry opts in with
//! [`IoctlHandler::neither_captured`]. Then, and only then, the input is
//! captured once into pool memory and the output is produced into pool
//! memory and copied out once at completion, so the handler never sees a
//! user address. The capture checks that both ranges lie in user space;
//! on real Windows a user address that is unmapped at copy time would still
//! fault (Rust has no `__try`), which is why this path is opt-in.
//! Captured requests cannot be pended: the copy-out must run in the
//! requesting thread.

use alloc::vec::Vec;
use core::ffi::c_void;

use ntcomm_proto::{ioctl::Ioctl, ControlCode, Len, LenError, Method, NtStatus};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::irp::{FileId, Handled, Request};
use crate::sys;

/// The buffers of a device-control request.
pub enum Buffers<'a> {
    /// `METHOD_BUFFERED`: one system buffer holds the input on entry and
    /// receives the output; `input_len` bytes of it are input.
    Shared {
        /// The whole buffer, `max(input, output)` long.
        buf: &'a mut [u8],
        /// How much of it is input.
        input_len: usize,
        /// How much of it the caller will accept back.
        output_len: usize,
    },
    /// Every other method: separate input and output.
    Split {
        /// The input bytes.
        input: &'a [u8],
        /// The output buffer.
        output: &'a mut [u8],
    },
}

enum Captured {
    None,
    Neither {
        /// Owns the captured input the request points into.
        _input: Vec<u8>,
        output: Vec<u8>,
        user_output: *mut u8,
    },
}

/// A validated `IRP_MJ_DEVICE_CONTROL` request.
pub struct IoctlRequest {
    req: Request,
    code: ControlCode,
    input: (*mut u8, usize),
    output: (*mut u8, usize),
    captured: Captured,
}

// SAFETY: the raw buffer pointers are system-space (or owned vectors) valid
// until completion, like `Request`'s.
unsafe impl Send for IoctlRequest {}

impl IoctlRequest {
    /// The control code.
    pub fn code(&self) -> ControlCode {
        self.code
    }

    /// The open the request came through.
    pub fn file(&self) -> FileId {
        self.req.file()
    }

    /// Input length in bytes.
    pub fn input_len(&self) -> usize {
        self.input.1
    }

    /// Output buffer length in bytes.
    pub fn output_len(&self) -> usize {
        self.output.1
    }

    /// The input bytes.
    pub fn input(&self) -> &[u8] {
        if self.input.1 == 0 {
            return &[];
        }
        // SAFETY: validated non-null and `input.1` long when built.
        unsafe { core::slice::from_raw_parts(self.input.0, self.input.1) }
    }

    /// The input as a fixed type (copied out, so alignment does not matter).
    pub fn input_as<T: FromBytes>(&self) -> Result<T, NtStatus> {
        T::read_from_bytes(self.input()).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER)
    }

    /// The output buffer. For `METHOD_BUFFERED` this is the same memory as
    /// the input: read the input first.
    pub fn output(&mut self) -> &mut [u8] {
        if self.output.1 == 0 {
            return &mut [];
        }
        // SAFETY: validated non-null and `output.1` long when built.
        unsafe { core::slice::from_raw_parts_mut(self.output.0, self.output.1) }
    }

    /// Both buffers at once, in the shape the method gives them.
    pub fn buffers(&mut self) -> Buffers<'_> {
        if self.code.method() == Method::Buffered {
            let len = self.input.1.max(self.output.1);
            let buf: &mut [u8] = if len == 0 {
                &mut []
            } else {
                // SAFETY: the system buffer is max(in, out) long, validated.
                unsafe { core::slice::from_raw_parts_mut(self.input.0, len) }
            };
            Buffers::Shared { buf, input_len: self.input.1, output_len: self.output.1 }
        } else {
            let input: &[u8] = if self.input.1 == 0 {
                &[]
            } else {
                // SAFETY: separate validated buffers for the other methods.
                unsafe { core::slice::from_raw_parts(self.input.0, self.input.1) }
            };
            let output: &mut [u8] = if self.output.1 == 0 {
                &mut []
            } else {
                // SAFETY: as above; does not alias `input`.
                unsafe { core::slice::from_raw_parts_mut(self.output.0, self.output.1) }
            };
            Buffers::Split { input, output }
        }
    }

    /// Copies `value` to the start of the output and completes with its size.
    pub fn reply<T: IntoBytes + Immutable>(mut self, value: &T) -> Handled {
        let bytes = value.as_bytes();
        match self.output().get_mut(..bytes.len()) {
            Some(out) => {
                out.copy_from_slice(bytes);
                self.complete(NtStatus::STATUS_SUCCESS, bytes.len())
            }
            None => self.complete(NtStatus::STATUS_BUFFER_TOO_SMALL, 0),
        }
    }

    /// Completes, first copying captured output back for `METHOD_NEITHER`.
    pub fn complete(self, status: NtStatus, information: usize) -> Handled {
        let information = information.min(self.output.1);
        if let Captured::Neither { output, user_output, .. } = &self.captured {
            if status.is_success() && information > 0 && !user_output.is_null() {
                // SAFETY: `user_output` was checked to be a user-space range
                // of output_len bytes when captured; we are still in the
                // requesting thread (captured requests cannot be pended).
                unsafe { core::ptr::copy_nonoverlapping(output.as_ptr(), *user_output, information) };
            }
        }
        self.req.complete(status, information)
    }

    /// Completes with an error status.
    pub fn fail(self, status: NtStatus) -> Handled {
        self.complete(status, 0)
    }

    /// The plain request, to pend it in a queue. `Err` gives the request
    /// back for `METHOD_NEITHER`, whose copy-out must happen in the
    /// requesting thread.
    pub fn into_request(self) -> Result<Request, IoctlRequest> {
        if matches!(self.captured, Captured::Neither { .. }) {
            return Err(self);
        }
        Ok(self.req)
    }
}

/// A handler: gets the validated request, returns proof it was handled.
pub type HandlerFn<D> = fn(&D, IoctlRequest) -> Handled;

/// One entry of an IOCTL table.
pub struct IoctlHandler<D: 'static> {
    code: ControlCode,
    name: &'static str,
    input: Len,
    output: Len,
    neither_opt_in: bool,
    handler: HandlerFn<D>,
}

impl<D> IoctlHandler<D> {
    /// Serves `ioctl` with `handler`. A `METHOD_NEITHER` declaration served
    /// this way is refused at run time with `STATUS_NOT_SUPPORTED`.
    pub const fn new<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, handler: HandlerFn<D>) -> Self {
        Self { code: ioctl.code, name: ioctl.name, input: ioctl.input, output: ioctl.output, neither_opt_in: false, handler }
    }

    /// Serves a `METHOD_NEITHER` IOCTL through the capture-once path
    /// described in the module documentation.
    pub const fn neither_captured<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, handler: HandlerFn<D>) -> Self {
        Self { code: ioctl.code, name: ioctl.name, input: ioctl.input, output: ioctl.output, neither_opt_in: true, handler }
    }

    /// The declaration's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

fn len_status(e: LenError, is_input: bool) -> NtStatus {
    match (e, is_input) {
        (_, true) => NtStatus::STATUS_INVALID_PARAMETER,
        (LenError::TooSmall { .. }, false) => NtStatus::STATUS_BUFFER_TOO_SMALL,
        (LenError::TooLarge { .. }, false) => NtStatus::STATUS_INVALID_PARAMETER,
    }
}

fn in_user_space(p: *const c_void, len: usize) -> bool {
    len == 0 || (!p.is_null() && (p as usize).checked_add(len).is_some_and(|end| end <= sys::MM_USER_PROBE_ADDRESS))
}

/// Validates `req` against `table` and runs the matching handler.
pub fn dispatch<D>(table: &[IoctlHandler<D>], device: &D, req: Request) -> Handled {
    // SAFETY: the current stack location of a DEVICE_CONTROL IRP carries the
    // DeviceIoControl parameters.
    let p = unsafe { req.stack().Parameters.DeviceIoControl };
    let code = ControlCode(p.IoControlCode);
    let Some(entry) = table.iter().find(|e| e.code == code) else {
        return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST);
    };
    let out_len = p.OutputBufferLength as usize;
    if let Err(e) = entry.input.check(p.InputBufferLength) {
        return req.fail(len_status(e, true));
    }
    if p.OutputBufferLength < entry.output.min {
        return req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
    }
    // A longer output buffer is fine; the handler sees the declared maximum.
    match view(req, out_len.min(entry.output.max as usize), entry.neither_opt_in) {
        Ok(r) => (entry.handler)(device, r),
        Err((req, status)) => req.fail(status),
    }
}

/// Builds the buffer view of a device-control request.
fn view(req: Request, out_len: usize, neither_opt_in: bool) -> Result<IoctlRequest, (Request, NtStatus)> {
    // SAFETY: the current stack location of a DEVICE_CONTROL IRP carries the
    // DeviceIoControl parameters.
    let p = unsafe { req.stack().Parameters.DeviceIoControl };
    let code = ControlCode(p.IoControlCode);
    let in_len = p.InputBufferLength as usize;
    let out_len = out_len.min(p.OutputBufferLength as usize);
    let irp = req.raw();
    // SAFETY: reading fields of the IRP we own.
    let (system, mdl, user) = unsafe { ((*irp).SystemBuffer as *mut u8, (*irp).MdlAddress, (*irp).UserBuffer as *mut u8) };
    let mut captured = Captured::None;
    let (input, output) = match code.method() {
        Method::Buffered => ((system, in_len), (system, out_len)),
        Method::InDirect | Method::OutDirect => {
            let out = if out_len == 0 || mdl.is_null() {
                core::ptr::null_mut()
            } else {
                // SAFETY: an MDL built by the I/O manager for this request.
                unsafe { sys::MmGetSystemAddressForMdlSafe(mdl) as *mut u8 }
            };
            ((system, in_len), (out, out_len))
        }
        Method::Neither => {
            if !neither_opt_in {
                return Err((req, NtStatus::STATUS_NOT_SUPPORTED));
            }
            let type3 = p.Type3InputBuffer as *const u8;
            if !in_user_space(type3.cast(), in_len) || !in_user_space(user as *const c_void, out_len) {
                return Err((req, NtStatus::STATUS_ACCESS_DENIED));
            }
            let mut cap_in = Vec::new();
            let mut cap_out = Vec::new();
            if cap_in.try_reserve_exact(in_len).is_err() || cap_out.try_reserve_exact(out_len).is_err() {
                return Err((req, NtStatus::STATUS_INSUFFICIENT_RESOURCES));
            }
            if in_len > 0 {
                // SAFETY: range checked to be user space above; the one read
                // of the caller's input (see the module docs on faults).
                cap_in.extend_from_slice(unsafe { core::slice::from_raw_parts(type3, in_len) });
            }
            cap_out.resize(out_len, 0);
            let (ip, op) = (cap_in.as_mut_ptr(), cap_out.as_mut_ptr());
            captured = Captured::Neither { _input: cap_in, output: cap_out, user_output: user };
            ((ip, in_len), (op, out_len))
        }
    };
    if (input.1 > 0 && input.0.is_null()) || (output.1 > 0 && output.0.is_null()) {
        return Err((req, NtStatus::STATUS_INVALID_PARAMETER));
    }
    Ok(IoctlRequest { req, code, input, output, captured })
}

impl IoctlRequest {
    /// The device-control view of a request taken back from a queue (it
    /// was validated when it was dispatched). `Err` returns requests whose
    /// buffers cannot be reached.
    pub fn from_request(req: Request) -> Result<IoctlRequest, Request> {
        view(req, usize::MAX, false).map_err(|(req, _)| req)
    }
}
