//! One error type for every operation: what was being done, the Win32 error
//! code, and the NTSTATUS behind it when the system reported one.
//!
//! The type and its kind mapping are platform-independent (and tested on the
//! host); only capturing the thread's last error and fetching message text
//! need Windows.

use std::borrow::Cow;
use std::fmt;

use ntcomm_proto::NtStatus;

/// Win32 error codes this crate names.
pub mod code {
    #![allow(missing_docs)]
    pub const ERROR_INVALID_FUNCTION: u32 = 1;
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_PATH_NOT_FOUND: u32 = 3;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    pub const ERROR_INVALID_DATA: u32 = 13;
    pub const ERROR_OUTOFMEMORY: u32 = 14;
    pub const ERROR_NOT_READY: u32 = 21;
    pub const ERROR_CRC: u32 = 23;
    pub const ERROR_GEN_FAILURE: u32 = 31;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_BUFFER_OVERFLOW: u32 = 111;
    pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    pub const ERROR_BROKEN_PIPE: u32 = 109;
    pub const ERROR_BUSY: u32 = 170;
    pub const ERROR_ALREADY_EXISTS: u32 = 183;
    pub const ERROR_MORE_DATA: u32 = 234;
    pub const WAIT_TIMEOUT: u32 = 258;
    pub const ERROR_MR_MID_NOT_FOUND: u32 = 317;
    pub const ERROR_PIPE_CONNECTED: u32 = 535;
    pub const ERROR_OPERATION_ABORTED: u32 = 995;
    pub const ERROR_IO_PENDING: u32 = 997;
    pub const ERROR_SERVICE_DATABASE_LOCKED: u32 = 1055;
    pub const ERROR_SERVICE_ALREADY_RUNNING: u32 = 1056;
    pub const ERROR_SERVICE_DOES_NOT_EXIST: u32 = 1060;
    pub const ERROR_SERVICE_CANNOT_ACCEPT_CTRL: u32 = 1061;
    pub const ERROR_SERVICE_NOT_ACTIVE: u32 = 1062;
    pub const ERROR_SERVICE_EXISTS: u32 = 1073;
    pub const ERROR_NOT_FOUND: u32 = 1168;
    pub const ERROR_INTERNAL_ERROR: u32 = 1359;
    pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
    pub const ERROR_TIMEOUT: u32 = 1460;
    pub const ERROR_INVALID_USER_BUFFER: u32 = 1784;
    pub const ERROR_NOT_ENOUGH_QUOTA: u32 = 1816;
}

use code::*;

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// The broad class of an [`Error`], for callers that branch on failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such file, path or device (2, 3).
    NotFound,
    /// The handle lacks the access, or the caller the privilege (5).
    AccessDenied,
    /// A bad argument, including a buffer size the IOCTL refuses (87).
    InvalidParameter,
    /// The output buffer is too small, or more data is available (122, 234, 111).
    BufferTooSmall,
    /// The device is busy, e.g. a full queue (170).
    Busy,
    /// The operation was cancelled (995).
    Cancelled,
    /// The requested item does not exist, e.g. no waiter for an event (1168).
    NotFoundItem,
    /// The device does not support the request (1, 50).
    InvalidFunction,
    /// A wait or an operation timed out (1460, 258).
    Timeout,
    /// The service is installed already (1073).
    ServiceExists,
    /// The service is not installed (1060).
    ServiceNotFound,
    /// The service is not running (1062).
    ServiceNotActive,
    /// A reply was shorter or otherwise not what its type needs (13).
    InvalidData,
    /// The system or the driver ran out of memory or resources (8, 14, 1450).
    OutOfResources,
    /// A limit on what the caller may hold at once was reached (1816,
    /// `STATUS_QUOTA_EXCEEDED`): the driver's bound per handle or over the
    /// driver. Freeing what is held (closing a channel, waiting for running
    /// requests) makes room again; see [`Error::likely_cause`].
    QuotaExceeded,
    /// Anything else; look at [`Error::win32`].
    Other,
}

impl ErrorKind {
    /// The kind of a Win32 error code.
    pub const fn from_win32(code: u32) -> Self {
        match code {
            ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => ErrorKind::NotFound,
            ERROR_ACCESS_DENIED => ErrorKind::AccessDenied,
            ERROR_INVALID_PARAMETER => ErrorKind::InvalidParameter,
            ERROR_INSUFFICIENT_BUFFER | ERROR_MORE_DATA | ERROR_BUFFER_OVERFLOW => ErrorKind::BufferTooSmall,
            ERROR_BUSY => ErrorKind::Busy,
            ERROR_OPERATION_ABORTED => ErrorKind::Cancelled,
            ERROR_NOT_FOUND => ErrorKind::NotFoundItem,
            ERROR_INVALID_FUNCTION | ERROR_NOT_SUPPORTED => ErrorKind::InvalidFunction,
            ERROR_TIMEOUT | WAIT_TIMEOUT => ErrorKind::Timeout,
            ERROR_SERVICE_EXISTS => ErrorKind::ServiceExists,
            ERROR_SERVICE_DOES_NOT_EXIST => ErrorKind::ServiceNotFound,
            ERROR_SERVICE_NOT_ACTIVE => ErrorKind::ServiceNotActive,
            ERROR_INVALID_DATA => ErrorKind::InvalidData,
            ERROR_NOT_ENOUGH_MEMORY | ERROR_OUTOFMEMORY | ERROR_NO_SYSTEM_RESOURCES => ErrorKind::OutOfResources,
            ERROR_NOT_ENOUGH_QUOTA => ErrorKind::QuotaExceeded,
            _ => ErrorKind::Other,
        }
    }
}

/// A failed operation.
///
/// Displays as `context: message (Win32 error N[, NTSTATUS 0x... NAME])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    context: Cow<'static, str>,
    win32: u32,
    ntstatus: Option<NtStatus>,
}

impl Error {
    /// An error with a Win32 code and no NTSTATUS.
    pub fn new(context: impl Into<Cow<'static, str>>, win32: u32) -> Self {
        Error { context: context.into(), win32, ntstatus: None }
    }

    /// An error with both codes, as reported by the system.
    pub fn with_ntstatus(context: impl Into<Cow<'static, str>>, win32: u32, ntstatus: NtStatus) -> Self {
        Error { context: context.into(), win32, ntstatus: Some(ntstatus) }
    }

    /// An error from an NTSTATUS alone (e.g. a completed IRP's status): the
    /// Win32 code is the system's mapping of it.
    pub fn from_ntstatus(context: impl Into<Cow<'static, str>>, ntstatus: NtStatus) -> Self {
        Error::with_ntstatus(context, status_to_win32(ntstatus), ntstatus)
    }

    /// Captures the calling thread's last error (`GetLastError`) and, when it
    /// goes with it, the last NTSTATUS (`RtlGetLastNtStatus`).
    ///
    /// Call it right after the failing call, before anything else that may
    /// set the last error. The NTSTATUS is kept only if the system maps it to
    /// the same Win32 code: errors set with a plain `SetLastError` leave a
    /// stale status behind, which must not be reported as the cause.
    #[cfg(windows)]
    pub fn last(context: impl Into<Cow<'static, str>>) -> Self {
        Error::last_with(|| context)
    }

    /// [`Error::last`] with the context built only after the codes are read,
    /// so formatting it cannot disturb them.
    #[cfg(windows)]
    pub(crate) fn last_with<C: Into<Cow<'static, str>>>(context: impl FnOnce() -> C) -> Self {
        // SAFETY: reads the thread's last-error value; no preconditions.
        let win32 = unsafe { windows_sys::Win32::Foundation::GetLastError() };
        let ntstatus = crate::ntdll::last_nt_status().filter(|&s| s != 0 && crate::ntdll::status_to_win32(s) == Some(win32)).map(NtStatus);
        Error { context: context().into(), win32, ntstatus }
    }

    /// Records `status` (an IRP's final status, e.g. from
    /// `OVERLAPPED.Internal`) as the NTSTATUS, unless it is a success or
    /// informational code, which would mean the failure came from elsewhere.
    #[cfg(windows)]
    pub(crate) fn with_status_from(mut self, status: i32) -> Error {
        if status < 0 {
            self.ntstatus = Some(NtStatus(status));
        }
        self
    }

    /// The same error with `prefix: ` put before its context.
    pub fn prefixed(mut self, prefix: impl fmt::Display) -> Self {
        self.context = format!("{prefix}: {}", self.context).into();
        self
    }

    /// The same codes with another context.
    #[cfg(windows)]
    pub(crate) fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = context.into();
        self
    }

    /// What was being done, e.g. `DeviceIoControl ECHO_BUFFERED on \\.\MyDevice`.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The Win32 error code.
    pub fn win32(&self) -> u32 {
        self.win32
    }

    /// The NTSTATUS, when the failure came with one.
    pub fn ntstatus(&self) -> Option<NtStatus> {
        self.ntstatus
    }

    /// The class of the error, from the Win32 code.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_win32(self.win32)
    }

    /// The likely cause, for failures whose code alone does not say it:
    /// a driver's resource bound (`STATUS_QUOTA_EXCEEDED`), a second object
    /// where one per handle is allowed (`STATUS_OBJECT_NAME_COLLISION`).
    pub fn likely_cause(&self) -> Option<&'static str> {
        match (self.kind(), self.ntstatus) {
            (ErrorKind::QuotaExceeded, _) => Some(
                "a driver bound on resources held at once was reached (per handle or driver-wide, e.g. ring \
                 section bytes, channels, request threads): close channels or let running requests end, then retry",
            ),
            (_, Some(NtStatus::STATUS_OBJECT_NAME_COLLISION)) | (_, None) if self.win32 == ERROR_ALREADY_EXISTS => {
                Some("the handle already holds one of these (one per handle): use another handle or close the first")
            }
            // Device::open's context: `CreateFileW \\.\Name`.
            (ErrorKind::NotFound, _) if self.context.contains(r"CreateFileW \\.\") => Some(
                "no device by that name: the driver's service is most likely not running (check with `ntcomm driver status \
                 NAME`, or `ntcomm-rig driver status NAME` under Wine), or the driver names its device link differently",
            ),
            _ => None,
        }
    }

    /// The system's text for the Win32 code (`FormatMessageW`), or a short
    /// built-in description where the system has none.
    pub fn message(&self) -> String {
        #[cfg(windows)]
        if let Some(m) = system_message(self.win32) {
            return m;
        }
        fallback_message(self.win32).to_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.message())?;
        if let Some(cause) = self.likely_cause() {
            write!(f, "; likely cause: {cause}")?;
        }
        write!(f, " (Win32 error {}", self.win32)?;
        if let Some(s) = self.ntstatus {
            write!(f, ", NTSTATUS {:#010x}", s.0 as u32)?;
            if let Some(name) = s.name() {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            ErrorKind::NotFound | ErrorKind::NotFoundItem | ErrorKind::ServiceNotFound => Io::NotFound,
            ErrorKind::AccessDenied => Io::PermissionDenied,
            ErrorKind::InvalidParameter => Io::InvalidInput,
            ErrorKind::Timeout => Io::TimedOut,
            ErrorKind::ServiceExists => Io::AlreadyExists,
            ErrorKind::InvalidData => Io::InvalidData,
            ErrorKind::Cancelled => Io::Interrupted,
            ErrorKind::InvalidFunction => Io::Unsupported,
            ErrorKind::OutOfResources => Io::OutOfMemory,
            ErrorKind::QuotaExceeded => Io::QuotaExceeded,
            _ => Io::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// The Win32 code for an NTSTATUS: the system's own mapping on Windows,
/// else (or if ntdll lacks it) a table covering the statuses ntcomm uses.
pub fn status_to_win32(status: NtStatus) -> u32 {
    #[cfg(windows)]
    if let Some(w) = crate::ntdll::status_to_win32(status.0) {
        return w;
    }
    fallback_status_to_win32(status)
}

/// The mapping `RtlNtStatusToDosError` applies to the statuses of
/// `ntcomm_proto::NtStatus`; anything else gets `ERROR_MR_MID_NOT_FOUND`, as
/// Windows does for a status it has no entry for.
pub(crate) fn fallback_status_to_win32(status: NtStatus) -> u32 {
    match status {
        NtStatus::STATUS_SUCCESS => 0,
        NtStatus::STATUS_PENDING => ERROR_IO_PENDING,
        NtStatus::STATUS_BUFFER_OVERFLOW => ERROR_MORE_DATA,
        NtStatus::STATUS_UNSUCCESSFUL => ERROR_GEN_FAILURE,
        NtStatus::STATUS_NOT_IMPLEMENTED => ERROR_INVALID_FUNCTION,
        NtStatus::STATUS_INVALID_PARAMETER => ERROR_INVALID_PARAMETER,
        NtStatus::STATUS_INVALID_DEVICE_REQUEST => ERROR_INVALID_FUNCTION,
        NtStatus::STATUS_ACCESS_DENIED => ERROR_ACCESS_DENIED,
        NtStatus::STATUS_BUFFER_TOO_SMALL => ERROR_INSUFFICIENT_BUFFER,
        NtStatus::STATUS_OBJECT_NAME_COLLISION => ERROR_ALREADY_EXISTS,
        NtStatus::STATUS_INSUFFICIENT_RESOURCES => ERROR_NO_SYSTEM_RESOURCES,
        NtStatus::STATUS_QUOTA_EXCEEDED => ERROR_NOT_ENOUGH_QUOTA,
        NtStatus::STATUS_DEVICE_NOT_READY => ERROR_NOT_READY,
        NtStatus::STATUS_DEVICE_BUSY => ERROR_BUSY,
        NtStatus::STATUS_INTERNAL_ERROR => ERROR_INTERNAL_ERROR,
        NtStatus::STATUS_CANCELLED => ERROR_OPERATION_ABORTED,
        NtStatus::STATUS_NOT_FOUND => ERROR_NOT_FOUND,
        // Windows reports a file being deleted as plain access denied.
        NtStatus::STATUS_DELETE_PENDING => ERROR_ACCESS_DENIED,
        NtStatus::STATUS_INVALID_BUFFER_SIZE => ERROR_INVALID_USER_BUFFER,
        NtStatus::STATUS_NOT_SUPPORTED => ERROR_NOT_SUPPORTED,
        NtStatus::STATUS_TIMEOUT => ERROR_TIMEOUT,
        NtStatus::STATUS_DATA_ERROR => ERROR_CRC,
        _ => ERROR_MR_MID_NOT_FOUND,
    }
}

/// Text for the codes this crate produces itself, where `FormatMessageW`
/// is unavailable (non-Windows hosts, or a system without the message).
fn fallback_message(win32: u32) -> &'static str {
    match ErrorKind::from_win32(win32) {
        ErrorKind::NotFound => "not found",
        ErrorKind::AccessDenied => "access denied",
        ErrorKind::InvalidParameter => "invalid parameter",
        ErrorKind::BufferTooSmall => "buffer too small",
        ErrorKind::Busy => "device busy",
        ErrorKind::Cancelled => "operation cancelled",
        ErrorKind::NotFoundItem => "element not found",
        ErrorKind::InvalidFunction => "request not supported",
        ErrorKind::Timeout => "timed out",
        ErrorKind::ServiceExists => "service exists already",
        ErrorKind::ServiceNotFound => "service not installed",
        ErrorKind::ServiceNotActive => "service not running",
        ErrorKind::InvalidData => "invalid data",
        ErrorKind::OutOfResources => "out of resources",
        ErrorKind::QuotaExceeded => "quota exceeded",
        ErrorKind::Other => "error",
    }
}

/// `FormatMessageW(FROM_SYSTEM)`, trimmed of the trailing period and newline.
#[cfg(windows)]
fn system_message(win32: u32) -> Option<String> {
    use windows_sys::Win32::System::Diagnostics::Debug::{FormatMessageW, FORMAT_MESSAGE_FROM_SYSTEM, FORMAT_MESSAGE_IGNORE_INSERTS};
    let mut buf = [0u16; 512];
    // SAFETY: `buf` is writable for `buf.len()` UTF-16 units; no inserts are
    // expanded, so `arguments` may be null.
    let n = unsafe {
        FormatMessageW(
            FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
            core::ptr::null(),
            win32,
            0,
            buf.as_mut_ptr(),
            buf.len() as u32,
            core::ptr::null(),
        )
    };
    let n = (n as usize).min(buf.len());
    let text = String::from_utf16_lossy(buf.get(..n).unwrap_or(&[]));
    let text = text.trim_end().trim_end_matches('.');
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let cases = [
            (2, ErrorKind::NotFound),
            (3, ErrorKind::NotFound),
            (5, ErrorKind::AccessDenied),
            (87, ErrorKind::InvalidParameter),
            (122, ErrorKind::BufferTooSmall),
            (234, ErrorKind::BufferTooSmall),
            (111, ErrorKind::BufferTooSmall),
            (170, ErrorKind::Busy),
            (995, ErrorKind::Cancelled),
            (1168, ErrorKind::NotFoundItem),
            (1, ErrorKind::InvalidFunction),
            (1460, ErrorKind::Timeout),
            (258, ErrorKind::Timeout),
            (1073, ErrorKind::ServiceExists),
            (1060, ErrorKind::ServiceNotFound),
            (1062, ErrorKind::ServiceNotActive),
            (13, ErrorKind::InvalidData),
            (1450, ErrorKind::OutOfResources),
            (1816, ErrorKind::QuotaExceeded),
            (6, ErrorKind::Other),
            (0, ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(ErrorKind::from_win32(code), kind, "code {code}");
            assert_eq!(Error::new("x", code).kind(), kind);
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (NtStatus::STATUS_CANCELLED, ErrorKind::Cancelled),
            (NtStatus::STATUS_NOT_FOUND, ErrorKind::NotFoundItem),
            (NtStatus::STATUS_DEVICE_BUSY, ErrorKind::Busy),
            (NtStatus::STATUS_BUFFER_TOO_SMALL, ErrorKind::BufferTooSmall),
            (NtStatus::STATUS_BUFFER_OVERFLOW, ErrorKind::BufferTooSmall),
            (NtStatus::STATUS_INVALID_DEVICE_REQUEST, ErrorKind::InvalidFunction),
            (NtStatus::STATUS_INVALID_PARAMETER, ErrorKind::InvalidParameter),
            (NtStatus::STATUS_ACCESS_DENIED, ErrorKind::AccessDenied),
            (NtStatus::STATUS_INSUFFICIENT_RESOURCES, ErrorKind::OutOfResources),
            (NtStatus::STATUS_QUOTA_EXCEEDED, ErrorKind::QuotaExceeded),
        ];
        for (status, kind) in cases {
            assert_eq!(ErrorKind::from_win32(fallback_status_to_win32(status)), kind, "{status}");
            let e = Error::from_ntstatus("op", status);
            assert_eq!(e.kind(), kind, "{status}");
            assert_eq!(e.ntstatus(), Some(status));
        }
        assert_eq!(fallback_status_to_win32(NtStatus(0xC0DE_0001u32 as i32)), ERROR_MR_MID_NOT_FOUND);
    }

    /// The host table must agree with the system's own mapping.
    #[cfg(windows)]
    #[test]
    fn fallback_table_matches_ntdll() {
        let all = [
            NtStatus::STATUS_SUCCESS,
            NtStatus::STATUS_PENDING,
            NtStatus::STATUS_BUFFER_OVERFLOW,
            NtStatus::STATUS_UNSUCCESSFUL,
            NtStatus::STATUS_NOT_IMPLEMENTED,
            NtStatus::STATUS_INVALID_PARAMETER,
            NtStatus::STATUS_INVALID_DEVICE_REQUEST,
            NtStatus::STATUS_ACCESS_DENIED,
            NtStatus::STATUS_BUFFER_TOO_SMALL,
            NtStatus::STATUS_OBJECT_NAME_COLLISION,
            NtStatus::STATUS_INSUFFICIENT_RESOURCES,
            NtStatus::STATUS_DEVICE_NOT_READY,
            NtStatus::STATUS_DEVICE_BUSY,
            NtStatus::STATUS_INTERNAL_ERROR,
            NtStatus::STATUS_CANCELLED,
            NtStatus::STATUS_NOT_FOUND,
            NtStatus::STATUS_DELETE_PENDING,
            NtStatus::STATUS_INVALID_BUFFER_SIZE,
            NtStatus::STATUS_NOT_SUPPORTED,
            NtStatus::STATUS_TIMEOUT,
            NtStatus::STATUS_DATA_ERROR,
            NtStatus::STATUS_QUOTA_EXCEEDED,
        ];
        for s in all {
            assert_eq!(crate::ntdll::status_to_win32(s.0), Some(fallback_status_to_win32(s)), "{s}");
        }
        assert!(Error::new("x", 5).message().len() > 3);
    }

    #[test]
    fn display_names_everything() {
        let e = Error::with_ntstatus(r"ReadFile on \\.\MyDevice", 995, NtStatus::STATUS_CANCELLED);
        let s = e.to_string();
        assert!(s.starts_with(r"ReadFile on \\.\MyDevice: "), "{s}");
        assert!(s.ends_with("(Win32 error 995, NTSTATUS 0xc0000120 STATUS_CANCELLED)"), "{s}");

        let s = Error::new("open", 2).to_string();
        assert!(s.starts_with("open: ") && s.ends_with("(Win32 error 2)"), "{s}");

        let s = Error::with_ntstatus("x", 317, NtStatus(0x1234_5678)).to_string();
        assert!(s.ends_with("(Win32 error 317, NTSTATUS 0x12345678)"), "{s}");
    }

    #[test]
    fn bounds_hit_say_why() {
        let e = Error::from_ntstatus(r"DeviceIoControl RING_OPEN on \\.\MyDevice", NtStatus::STATUS_QUOTA_EXCEEDED);
        assert_eq!((e.kind(), e.win32()), (ErrorKind::QuotaExceeded, 1816));
        let s = e.to_string();
        assert!(s.contains("likely cause: a driver bound"), "{s}");
        assert!(s.ends_with("(Win32 error 1816, NTSTATUS 0xc0000044 STATUS_QUOTA_EXCEEDED)"), "{s}");
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::QuotaExceeded);
        let e = Error::from_ntstatus("RING_OPEN", NtStatus::STATUS_OBJECT_NAME_COLLISION);
        assert!(e.likely_cause().is_some_and(|c| c.contains("one per handle")), "{e}");
        assert_eq!(Error::from_ntstatus("x", NtStatus::STATUS_CANCELLED).likely_cause(), None);
    }

    #[test]
    fn a_missing_device_points_at_the_service() {
        let e = Error::new(r"CreateFileW \\.\MyDriver", ERROR_FILE_NOT_FOUND);
        assert!(e.to_string().contains("likely cause: no device by that name: the driver's service is most likely not running"), "{e}");
        assert_eq!(Error::new(r"CreateFileW C:\\x.txt", ERROR_FILE_NOT_FOUND).likely_cause(), None);
    }

    #[test]
    fn prefix_and_io_conversion() {
        let e = Error::new("StartServiceW", 1060).prefixed("service MyDriver");
        assert_eq!(e.context(), "service MyDriver: StartServiceW");
        let io: std::io::Error = e.clone().into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(io.into_inner().unwrap().downcast::<Error>().unwrap().win32(), 1060);
    }
}
