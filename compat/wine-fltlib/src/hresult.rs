//! HRESULTs as Windows' fltlib returns them: `HRESULT_FROM_WIN32` of the
//! Win32 error that `RtlNtStatusToDosError` gives for the NTSTATUS.

/// `S_OK`.
pub const S_OK: i32 = 0;
/// `E_NOTIMPL`.
pub const E_NOTIMPL: i32 = 0x8000_4001u32 as i32;
/// `E_INVALIDARG`, which is also `HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER)`.
pub const E_INVALIDARG: i32 = 0x8007_0057u32 as i32;

/// Win32 errors used here.
pub mod err {
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_PATH_NOT_FOUND: u32 = 3;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    pub const ERROR_INVALID_DATA: u32 = 13;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_BROKEN_PIPE: u32 = 109;
    pub const ERROR_NO_DATA: u32 = 232;
    pub const ERROR_PIPE_NOT_CONNECTED: u32 = 233;
    pub const ERROR_MORE_DATA: u32 = 234;
    pub const ERROR_IO_PENDING: u32 = 997;
    pub const ERROR_CONNECTION_REFUSED: u32 = 1225;
    pub const ERROR_CONNECTION_COUNT_LIMIT: u32 = 1238;
    pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
    pub const ERROR_REVISION_MISMATCH: u32 = 1306;
    pub const ERROR_MR_MID_NOT_FOUND: u32 = 317;
    /// `ERROR_FLT_NO_WAITER_FOR_REPLY` (fltwinerror.h), already HRESULT-shaped.
    pub const ERROR_FLT_NO_WAITER_FOR_REPLY: u32 = 0x801F_0020;
}

/// `HRESULT_FROM_WIN32`: values that are already HRESULT-shaped (zero or
/// with the top bit set) pass through.
pub const fn from_win32(e: u32) -> i32 {
    if e as i32 <= 0 {
        e as i32
    } else {
        ((e & 0xFFFF) | 0x8007_0000) as i32
    }
}

/// `RtlNtStatusToDosError` for the statuses this DLL meets, with `other`
/// (ntdll's own on Windows) for the rest. Filter Manager statuses
/// (facility 0x1C) become the HRESULT-shaped `ERROR_FLT_*` values of
/// fltwinerror.h (facility 0x1F), as on Windows; Wine 8's table has none.
pub fn nt_to_win32(status: i32, other: impl FnOnce(i32) -> u32) -> u32 {
    let s = status as u32;
    if s == 0 {
        return 0;
    }
    if s & 0xC000_0000 == 0xC000_0000 && (s >> 16) & 0x0FFF == 0x01C {
        return 0x801F_0000 | (s & 0xFFFF);
    }
    match s {
        0x8000_0005 => err::ERROR_MORE_DATA,              // STATUS_BUFFER_OVERFLOW
        0xC000_0008 => err::ERROR_INVALID_HANDLE,         // STATUS_INVALID_HANDLE
        0xC000_000D => err::ERROR_INVALID_PARAMETER,      // STATUS_INVALID_PARAMETER
        0xC000_0022 => err::ERROR_ACCESS_DENIED,          // STATUS_ACCESS_DENIED
        0xC000_0034 => err::ERROR_FILE_NOT_FOUND,         // STATUS_OBJECT_NAME_NOT_FOUND
        0xC000_003A => err::ERROR_PATH_NOT_FOUND,         // STATUS_OBJECT_PATH_NOT_FOUND
        0xC000_0037 => err::ERROR_INVALID_HANDLE,         // STATUS_PORT_DISCONNECTED
        0xC000_0059 => err::ERROR_REVISION_MISMATCH,      // STATUS_REVISION_MISMATCH
        0xC000_009A => err::ERROR_NO_SYSTEM_RESOURCES,    // STATUS_INSUFFICIENT_RESOURCES
        0xC000_00B0 => err::ERROR_PIPE_NOT_CONNECTED,     // STATUS_PIPE_DISCONNECTED
        0xC000_014B => err::ERROR_BROKEN_PIPE,            // STATUS_PIPE_BROKEN
        0xC000_0236 => err::ERROR_CONNECTION_REFUSED,     // STATUS_CONNECTION_REFUSED
        0xC000_0246 => err::ERROR_CONNECTION_COUNT_LIMIT, // STATUS_CONNECTION_COUNT_LIMIT
        _ => other(status),
    }
}

/// The HRESULT for a completed request's NTSTATUS: `S_OK` for every
/// success status (as `DeviceIoControl` succeeds for them), else
/// `HRESULT_FROM_WIN32(RtlNtStatusToDosError(status))`.
pub fn from_nt(status: i32, other: impl FnOnce(i32) -> u32) -> i32 {
    if status >= 0 {
        S_OK
    } else {
        from_win32(nt_to_win32(status, other))
    }
}

/// A Win32 error from I/O on a port's pipes, as a port would report it: a
/// pipe the driver closed (client port closed, driver unloaded) is a
/// disconnected port, `STATUS_PORT_DISCONNECTED` -> `ERROR_INVALID_HANDLE`,
/// which is what Microsoft's scanner sample checks for.
pub const fn port_io_error(e: u32) -> u32 {
    match e {
        err::ERROR_BROKEN_PIPE | err::ERROR_NO_DATA | err::ERROR_PIPE_NOT_CONNECTED => err::ERROR_INVALID_HANDLE,
        e => e,
    }
}

/// `STATUS_PIPE_BROKEN`: how Wine completes a read of a pipe whose other end closed.
pub const STATUS_PIPE_BROKEN: i32 = 0xC000_014Bu32 as i32;

/// The final status of an overlapped `FilterGetMessage` (a read of the message
/// pipe): the pipe breaking is the port disconnecting, which Windows reports
/// as `STATUS_PORT_DISCONNECTED` (-> `ERROR_INVALID_HANDLE`); every other
/// status is the read's own.
pub const fn port_status(status: i32) -> i32 {
    if status == STATUS_PIPE_BROKEN {
        wine_fltport::STATUS_PORT_DISCONNECTED
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: i32) -> u32 {
        err::ERROR_MR_MID_NOT_FOUND
    }

    #[test]
    fn win32_to_hresult() {
        assert_eq!(from_win32(0), S_OK);
        assert_eq!(from_win32(2) as u32, 0x8007_0002);
        assert_eq!(from_win32(err::ERROR_INVALID_PARAMETER), E_INVALIDARG);
        assert_eq!(from_win32(err::ERROR_IO_PENDING) as u32, 0x8007_03E5);
        assert_eq!(from_win32(err::ERROR_MORE_DATA) as u32, 0x8007_00EA);
        assert_eq!(from_win32(err::ERROR_FLT_NO_WAITER_FOR_REPLY) as u32, 0x801F_0020);
    }

    #[test]
    fn nt_statuses() {
        use wine_fltport::*;
        assert_eq!(from_nt(0, none), S_OK);
        assert_eq!(from_nt(0x102, none), S_OK); // STATUS_TIMEOUT is a success
        assert_eq!(from_nt(STATUS_FLT_NO_WAITER_FOR_REPLY, none) as u32, 0x801F_0020);
        assert_eq!(from_nt(0xC000_0034u32 as i32, none) as u32, 0x8007_0002);
        assert_eq!(from_nt(STATUS_PORT_DISCONNECTED, none) as u32, 0x8007_0006);
        assert_eq!(from_nt(STATUS_CONNECTION_COUNT_LIMIT, none) as u32, 0x8007_04D6);
        assert_eq!(from_nt(0x8000_0005u32 as i32, none) as u32, 0x8007_00EA);
        assert_eq!(from_nt(0xC000_0022u32 as i32, none) as u32, 0x8007_0005);
        assert_eq!(from_nt(0xC000_00BBu32 as i32, |_| 50) as u32, 0x8007_0032);
    }

    #[test]
    fn broken_pipes_are_disconnected_ports() {
        for e in [err::ERROR_BROKEN_PIPE, err::ERROR_NO_DATA, err::ERROR_PIPE_NOT_CONNECTED] {
            assert_eq!(from_win32(port_io_error(e)) as u32, 0x8007_0006);
        }
        assert_eq!(port_io_error(err::ERROR_MORE_DATA), err::ERROR_MORE_DATA);
    }

    #[test]
    fn only_broken_pipes_become_disconnected_ports() {
        assert_eq!(port_status(STATUS_PIPE_BROKEN), wine_fltport::STATUS_PORT_DISCONNECTED);
        assert_eq!(from_nt(port_status(STATUS_PIPE_BROKEN), none) as u32, 0x8007_0006);
        assert_eq!(port_status(0), 0);
        assert_eq!(port_status(0x8000_0005u32 as i32), 0x8000_0005u32 as i32); // STATUS_BUFFER_OVERFLOW
        assert_eq!(port_status(0xC000_0120u32 as i32), 0xC000_0120u32 as i32); // STATUS_CANCELLED
        assert_eq!(port_status(0xC000_00B0u32 as i32), 0xC000_00B0u32 as i32); // STATUS_PIPE_DISCONNECTED
    }
}
