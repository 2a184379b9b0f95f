//! Pure helpers with no system calls, kept platform-independent so the host
//! test suite exercises them.
#![cfg_attr(not(windows), allow(dead_code))]

use core::time::Duration;

/// `INFINITE` for the wait functions.
pub(crate) const INFINITE: u32 = u32::MAX;

/// A NUL-terminated UTF-16 copy of `s` for the `W` functions, or `None` if `s`
/// holds a NUL (the system would silently cut the string there).
pub(crate) fn to_wide_nul(s: &str) -> Option<Vec<u16>> {
    if s.contains('\0') {
        return None;
    }
    Some(s.encode_utf16().chain(Some(0)).collect())
}

/// Turns what `std::fs::canonicalize` returns on Windows (a verbatim
/// `\\?\C:\x` or `\\?\UNC\srv\share\x` path) into the plain form the service
/// control manager and drivers expect. Other paths are returned unchanged.
pub(crate) fn strip_verbatim(path: &str) -> String {
    if let Some(rest) = path.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else if let Some(rest) = path.strip_prefix(r"\\?\") {
        // Only drive paths lose the prefix: `\\?\GLOBALROOT\...` and friends
        // mean nothing without it.
        let b = rest.as_bytes();
        if matches!(b, [drive, b':', ..] if drive.is_ascii_alphabetic()) {
            rest.to_owned()
        } else {
            path.to_owned()
        }
    } else {
        path.to_owned()
    }
}

/// Milliseconds for a Win32 wait: `None` waits forever; a non-zero duration
/// rounds up so a short timeout never becomes a poll, and it saturates below
/// `INFINITE` so a long timeout never becomes infinite.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// A buffer length as the `u32` the I/O functions take, or `None` if it does
/// not fit.
pub(crate) fn len_u32(len: usize) -> Option<u32> {
    u32::try_from(len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_strings() {
        assert_eq!(to_wide_nul(r"\\.\X"), Some(vec![b'\\' as u16, b'\\' as u16, b'.' as u16, b'\\' as u16, b'X' as u16, 0]));
        assert_eq!(to_wide_nul(""), Some(vec![0]));
        assert_eq!(to_wide_nul("a\0b"), None);
        assert_eq!(to_wide_nul("é"), Some(vec![0xe9, 0]));
    }

    #[test]
    fn verbatim_prefix() {
        assert_eq!(strip_verbatim(r"\\?\Z:\tmp\my_driver.sys"), r"Z:\tmp\my_driver.sys");
        assert_eq!(strip_verbatim(r"\\?\UNC\srv\share\d.sys"), r"\\srv\share\d.sys");
        assert_eq!(strip_verbatim(r"\\?\GLOBALROOT\Device\X"), r"\\?\GLOBALROOT\Device\X");
        assert_eq!(strip_verbatim(r"C:\d.sys"), r"C:\d.sys");
        assert_eq!(strip_verbatim(r"\\?\"), r"\\?\");
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_ms(None), INFINITE);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), INFINITE - 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(u32::MAX as u64))), INFINITE - 1);
    }

    #[test]
    fn lengths() {
        assert_eq!(len_u32(5), Some(5));
        assert_eq!(len_u32(u32::MAX as usize), Some(u32::MAX));
        #[cfg(target_pointer_width = "64")]
        assert_eq!(len_u32(u32::MAX as usize + 1), None);
    }
}
