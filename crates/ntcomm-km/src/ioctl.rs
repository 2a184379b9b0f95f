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
//! `METHOD_IN_DIRECT`'s second buffer is locked by the I/O manager for read
//! access only, and may be a page the caller shares with other processes (a
//! DLL's code): handlers get it read-only ([`IoctlRequest::direct_input`],
//! [`Buffers::InDirect`]), mapped with `MdlMappingNoWrite`, and no writable
//! output.
//!
//! `METHOD_NEITHER` requests are refused unless the entry opts in with
//! [`IoctlHandler::neither_captured`]. Then, and only then, the input is
//! captured once into pool memory and the output is produced into pool
//! memory and copied out once at completion, so the handler never sees a
//! user address. Both copies go through [`user_copy`](crate::user_copy),
//! whose exception handler turns a fault (an unmapped or read-only page, or
//! memory another thread freed meanwhile) into `STATUS_ACCESS_VIOLATION`
//! instead of a bug check. Captured requests cannot be pended: the copy-out
//! must run in the requesting thread, whose address space holds the buffer.

use alloc::vec::Vec;
use core::ffi::c_void;

use ntcomm_proto::{ioctl::Ioctl, ControlCode, Len, LenError, Method, NtStatus};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::irp::{FileId, Handled, Request};
use crate::sys;
use crate::user_copy::{self, UserCopyError};

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
    /// `METHOD_IN_DIRECT`: the input from the system buffer and the second
    /// buffer through its MDL, both read-only. Nothing is copied back.
    InDirect {
        /// The input bytes.
        input: &'a [u8],
        /// The second buffer, locked by the I/O manager for reading only.
        direct: &'a [u8],
    },
    /// `METHOD_OUT_DIRECT` and captured `METHOD_NEITHER`: separate input and
    /// output.
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
    /// The writable output; empty for `METHOD_IN_DIRECT`.
    output: (*mut u8, usize),
    /// `METHOD_IN_DIRECT`'s read-only second buffer.
    direct: (*const u8, usize),
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

    /// Writable output length in bytes (0 for `METHOD_IN_DIRECT`, whose
    /// second buffer is [`direct_input`](Self::direct_input)).
    pub fn output_len(&self) -> usize {
        self.output.1
    }

    /// `METHOD_IN_DIRECT`'s second buffer, read-only; empty for other
    /// methods.
    pub fn direct_input(&self) -> &[u8] {
        if self.direct.1 == 0 {
            return &[];
        }
        // SAFETY: validated non-null and `direct.1` long when built; the
        // mapping is read-only and so is the slice.
        unsafe { core::slice::from_raw_parts(self.direct.0, self.direct.1) }
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
    /// the input: read the input first. Empty for `METHOD_IN_DIRECT`.
    pub fn output(&mut self) -> &mut [u8] {
        if self.output.1 == 0 {
            return &mut [];
        }
        // SAFETY: validated non-null and `output.1` long when built.
        unsafe { core::slice::from_raw_parts_mut(self.output.0, self.output.1) }
    }

    /// Both buffers at once, in the shape the method gives them.
    pub fn buffers(&mut self) -> Buffers<'_> {
        if self.code.method() == Method::InDirect {
            let this: &Self = self;
            return Buffers::InDirect { input: this.input(), direct: this.direct_input() };
        }
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

    /// Completes, first copying captured output back for `METHOD_NEITHER`
    /// (a fault while copying completes with `STATUS_ACCESS_VIOLATION`).
    pub fn complete(self, status: NtStatus, information: usize) -> Handled {
        // The caller's output length: the writable output, or IN_DIRECT's.
        let information = information.min(self.output.1.max(self.direct.1));
        if let Captured::Neither { output, user_output, .. } = &self.captured {
            if status.is_success() && information > 0 {
                // Still in the requesting thread (captured requests cannot be
                // pended), so `user_output` is in the current address space.
                let copied = output.get(..information).map(|out| user_copy::copy_to_user(*user_output as usize, out));
                if !matches!(copied, Some(Ok(()))) {
                    return self.req.fail(NtStatus::STATUS_ACCESS_VIOLATION);
                }
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

/// A typed handler: gets the declared input (copied out of the request, so
/// alignment does not matter) and returns the declared output or a status.
pub type TypedFn<D, I, O> = fn(&D, I) -> Result<O, NtStatus>;

/// A typed handler that also gets the open the request came through (for
/// per-handle state).
pub type TypedFileFn<D, I, O> = fn(&D, FileId, I) -> Result<O, NtStatus>;

/// How an entry runs its handler.
enum Call<D: 'static> {
    /// The byte-level path: the handler gets the request.
    Raw(HandlerFn<D>),
    /// The typed path: `f` is a [`TypedFn`] or [`TypedFileFn`] with its
    /// types erased, and `thunk` the instance of [`typed_thunk`] or
    /// [`typed_file_thunk`] for exactly those types.
    Typed { f: *const (), thunk: fn(*const (), &D, IoctlRequest) -> Handled },
}

/// One entry of an IOCTL table.
pub struct IoctlHandler<D: 'static> {
    code: ControlCode,
    name: &'static str,
    input: Len,
    output: Len,
    neither_opt_in: bool,
    call: Call<D>,
}

// SAFETY: the only raw pointer is a function pointer (immutable code).
unsafe impl<D> Send for IoctlHandler<D> {}
// SAFETY: as above.
unsafe impl<D> Sync for IoctlHandler<D> {}

impl<D> IoctlHandler<D> {
    /// The entry every constructor makes: the declaration's code, name and
    /// size rules, and how the handler is called.
    const fn entry<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, neither_opt_in: bool, call: Call<D>) -> Self {
        Self { code: ioctl.code, name: ioctl.name, input: ioctl.input, output: ioctl.output, neither_opt_in, call }
    }

    /// Serves `ioctl` with `handler`, which gets the request and its buffers
    /// (the path for `[u8]` payloads, pended requests and direct I/O). A
    /// `METHOD_NEITHER` declaration served this way is refused at run time
    /// with `STATUS_NOT_SUPPORTED`.
    pub const fn new<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, handler: HandlerFn<D>) -> Self {
        Self::entry(ioctl, false, Call::Raw(handler))
    }

    /// Serves a `METHOD_NEITHER` IOCTL through the capture-once path
    /// described in the module documentation.
    pub const fn neither_captured<I: ?Sized, O: ?Sized>(ioctl: &Ioctl<I, O>, handler: HandlerFn<D>) -> Self {
        Self::entry(ioctl, true, Call::Raw(handler))
    }

    /// Serves a fixed-size `ioctl` with a typed handler: it gets the
    /// declared input `I` and returns the declared output `O`, which
    /// completes the request with `O`'s bytes (an `Err` completes it with
    /// that status). The handler's types must be the declaration's, so
    /// changing one side without the other does not compile:
    ///
    /// ```ignore
    /// const GET_STATS: Ioctl<(), Stats> = Ioctl::fixed("GET_STATS", DEV, 1, Method::Buffered, Access::READ);
    /// fn stats(d: &MyDriver, (): ()) -> Result<Stats, NtStatus> { Ok(d.stats()) }
    /// const TABLE: &[IoctlHandler<MyDriver>] = &[IoctlHandler::typed(&GET_STATS, stats)];
    /// ```
    ///
    /// The table checks the declared size rules first as for every entry;
    /// a declaration whose rules cannot carry the types (see
    /// [`Ioctl::carries_types`], always true for [`Ioctl::fixed`]) fails
    /// each call with `STATUS_INVALID_PARAMETER` (input) or
    /// `STATUS_BUFFER_TOO_SMALL` (output) instead of running the handler
    /// on a short buffer. Served `METHOD_NEITHER` declarations go through
    /// the capture-once path.
    pub const fn typed<I, O>(ioctl: &Ioctl<I, O>, handler: TypedFn<D, I, O>) -> Self
    where
        I: FromBytes,
        O: IntoBytes + Immutable,
    {
        Self::entry(ioctl, true, Call::Typed { f: handler as *const (), thunk: typed_thunk::<D, I, O> })
    }

    /// [`typed`](Self::typed) for a handler that also gets the request's
    /// [`FileId`].
    pub const fn typed_with_file<I, O>(ioctl: &Ioctl<I, O>, handler: TypedFileFn<D, I, O>) -> Self
    where
        I: FromBytes,
        O: IntoBytes + Immutable,
    {
        Self::entry(ioctl, true, Call::Typed { f: handler as *const (), thunk: typed_file_thunk::<D, I, O> })
    }

    /// The declaration's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// Reads the declared input: exactly `I`'s bytes.
fn typed_input<I: FromBytes>(req: &IoctlRequest) -> Result<I, NtStatus> {
    I::read_from_bytes(req.input()).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER)
}

fn typed_reply<O: IntoBytes + Immutable>(req: IoctlRequest, result: Result<O, NtStatus>) -> Handled {
    match result {
        Ok(o) => req.reply(&o),
        Err(s) => req.fail(s),
    }
}

fn typed_thunk<D, I: FromBytes, O: IntoBytes + Immutable>(f: *const (), device: &D, req: IoctlRequest) -> Handled {
    // SAFETY: `f` was cast from a `TypedFn<D, I, O>` by `IoctlHandler::typed`,
    // the only place that pairs it with this instance of the thunk.
    let f = unsafe { core::mem::transmute::<*const (), TypedFn<D, I, O>>(f) };
    match typed_input::<I>(&req) {
        Ok(input) => typed_reply(req, f(device, input)),
        Err(s) => req.fail(s),
    }
}

fn typed_file_thunk<D, I: FromBytes, O: IntoBytes + Immutable>(f: *const (), device: &D, req: IoctlRequest) -> Handled {
    // SAFETY: `f` was cast from a `TypedFileFn<D, I, O>` by
    // `IoctlHandler::typed_with_file`, the only place that pairs it with
    // this instance of the thunk.
    let f = unsafe { core::mem::transmute::<*const (), TypedFileFn<D, I, O>>(f) };
    match typed_input::<I>(&req) {
        Ok(input) => {
            let file = req.file();
            typed_reply(req, f(device, file, input))
        }
        Err(s) => req.fail(s),
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

fn copy_status(e: UserCopyError) -> NtStatus {
    match e {
        UserCopyError::NotUserRange => NtStatus::STATUS_ACCESS_DENIED,
        UserCopyError::Fault => NtStatus::STATUS_ACCESS_VIOLATION,
    }
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
        Ok(r) => match entry.call {
            Call::Raw(handler) => handler(device, r),
            Call::Typed { f, thunk } => thunk(f, device, r),
        },
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
    #[allow(clippy::multiple_unsafe_ops_per_block)] // three reads of one owned IRP
    // SAFETY: reading fields of the IRP we own.
    let (system, mdl, user) = unsafe { ((*irp).SystemBuffer as *mut u8, (*irp).MdlAddress, (*irp).UserBuffer as *mut u8) };
    let mut captured = Captured::None;
    let mut direct: (*const u8, usize) = (core::ptr::null(), 0);
    let (input, output) = match code.method() {
        Method::Buffered => ((system, in_len), (system, out_len)),
        Method::InDirect | Method::OutDirect => {
            let writable = code.method() == Method::OutDirect;
            let mapped = if out_len == 0 {
                core::ptr::null_mut()
            } else if mdl.is_null() {
                return Err((req, NtStatus::STATUS_INVALID_PARAMETER));
            } else {
                // SAFETY: an MDL built by the I/O manager for this request;
                // IN_DIRECT's is locked for read access and mapped read-only.
                unsafe { sys::MmGetSystemAddressForMdlSafe(mdl, writable) as *mut u8 }
            };
            if out_len > 0 && mapped.is_null() {
                return Err((req, NtStatus::STATUS_INSUFFICIENT_RESOURCES));
            }
            if writable {
                ((system, in_len), (mapped, out_len))
            } else {
                direct = (mapped.cast_const(), out_len);
                ((system, in_len), (core::ptr::null_mut(), 0))
            }
        }
        Method::Neither => {
            if !neither_opt_in {
                return Err((req, NtStatus::STATUS_NOT_SUPPORTED));
            }
            let type3 = p.Type3InputBuffer as usize;
            if !in_user_space(type3 as *const c_void, in_len) || !in_user_space(user as *const c_void, out_len) {
                return Err((req, NtStatus::STATUS_ACCESS_DENIED));
            }
            let mut cap_in = Vec::new();
            let mut cap_out = Vec::new();
            if cap_in.try_reserve_exact(in_len).is_err() || cap_out.try_reserve_exact(out_len).is_err() {
                return Err((req, NtStatus::STATUS_INSUFFICIENT_RESOURCES));
            }
            cap_in.resize(in_len, 0);
            // The one read of the caller's input; a fault is an error, not a
            // bug check.
            if let Err(e) = user_copy::copy_from_user(&mut cap_in, type3) {
                return Err((req, copy_status(e)));
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
    Ok(IoctlRequest { req, code, input, output, direct, captured })
}

impl IoctlRequest {
    /// The device-control view of a request taken back from a queue (it
    /// was validated when it was dispatched). `Err` returns requests whose
    /// buffers cannot be reached.
    pub fn from_request(req: Request) -> Result<IoctlRequest, Request> {
        view(req, usize::MAX, false).map_err(|(req, _)| req)
    }
}
