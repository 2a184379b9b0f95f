//! The registry keys a minifilter's `FltRegisterFilter` reads: the service's
//! `Instances` key with a default instance and its altitude, as a
//! minifilter's INF writes them (Microsoft, "Creating an INF file for a
//! minifilter driver": `Instances\DefaultInstance`, `Instances\<name>\
//! Altitude` and `Flags`). Without them `FltRegisterFilter` fails on
//! Windows.
#![cfg(windows)]

use core::ptr;

use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE, REG_DWORD, REG_OPTION_NON_VOLATILE, REG_SZ,
};

use crate::error::code::ERROR_INVALID_PARAMETER;
use crate::error::{Error, Result};
use crate::util::to_wide_nul;

/// Writes `Services\<service>\Instances` with one instance,
/// `"<service> Instance"`, at `altitude` (a decimal string, e.g.
/// `"370030"`), flags 0 (attach automatically). Overwrites what is there.
///
/// # Errors
/// The registry's error (e.g. `ERROR_ACCESS_DENIED` without administrator
/// rights), or `ERROR_INVALID_PARAMETER` for an altitude that is not a
/// decimal number.
pub fn register_instance(service: &str, altitude: &str) -> Result<()> {
    check_altitude(altitude)?;
    let instance = format!("{service} Instance");
    let base = format!(r"SYSTEM\CurrentControlSet\Services\{service}\Instances");
    let instances = Key::create(&base)?;
    instances.set_string("DefaultInstance", &instance)?;
    let one = Key::create(&format!(r"{base}\{instance}"))?;
    one.set_string("Altitude", altitude)?;
    one.set_dword("Flags", 0)
}

/// Refuses an altitude that is not a decimal number (digits, optionally
/// with a fractional part, as Microsoft allocates them).
///
/// # Errors
/// `ERROR_INVALID_PARAMETER`, naming the altitude.
pub fn check_altitude(altitude: &str) -> Result<()> {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let decimal = match altitude.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(altitude),
    };
    if decimal {
        Ok(())
    } else {
        Err(Error::new(format!("minifilter altitude {altitude:?} is not a decimal number"), ERROR_INVALID_PARAMETER))
    }
}

/// An open registry key under HKLM, closed on drop.
struct Key {
    handle: HKEY,
    path: String,
}

impl Key {
    fn create(path: &str) -> Result<Self> {
        let w_path = wide(path)?;
        let mut handle: HKEY = ptr::null_mut();
        // SAFETY: a NUL-terminated path and an out-pointer for the key; no
        // class, default security, no disposition wanted.
        let rc = unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                w_path.as_ptr(),
                0,
                ptr::null(),
                REG_OPTION_NON_VOLATILE,
                KEY_SET_VALUE,
                ptr::null(),
                &mut handle,
                ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(Error::new(format!(r"RegCreateKeyExW HKLM\{path}"), rc));
        }
        Ok(Self { handle, path: path.to_owned() })
    }

    fn set_string(&self, name: &str, value: &str) -> Result<()> {
        let data = wide(value)?;
        let bytes: Vec<u8> = data.iter().flat_map(|u| u.to_le_bytes()).collect();
        self.set(name, REG_SZ, &bytes)
    }

    fn set_dword(&self, name: &str, value: u32) -> Result<()> {
        self.set(name, REG_DWORD, &value.to_le_bytes())
    }

    fn set(&self, name: &str, kind: u32, bytes: &[u8]) -> Result<()> {
        let w_name = wide(name)?;
        let len =
            u32::try_from(bytes.len()).map_err(|_| Error::new(format!("registry value {name} too large"), ERROR_INVALID_PARAMETER))?;
        // SAFETY: an open key with KEY_SET_VALUE, a NUL-terminated name and
        // `len` readable bytes.
        let rc = unsafe { RegSetValueExW(self.handle, w_name.as_ptr(), 0, kind, bytes.as_ptr(), len) };
        if rc != 0 {
            return Err(Error::new(format!(r"RegSetValueExW HKLM\{}\{name}", self.path), rc));
        }
        Ok(())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key this value opened and nothing else closes.
        unsafe { RegCloseKey(self.handle) };
    }
}

fn wide(s: &str) -> Result<Vec<u16>> {
    to_wide_nul(s).ok_or_else(|| Error::new(format!("{s:?} holds a NUL"), ERROR_INVALID_PARAMETER))
}
