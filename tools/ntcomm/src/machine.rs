//! The machine a benchmark ran on, as `ntcomm bench` reports it.

use serde::Serialize;

/// The machine the bench ran on.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub logical_cores: usize,
    /// Windows version as reported by `RtlGetVersion`.
    pub windows_version: Option<String>,
    /// Wine version (`wine_get_version`) when running under Wine.
    pub wine_version: Option<String>,
    /// Host system under Wine (`wine_get_host_version`), e.g. "Linux 6.1.0".
    pub wine_host: Option<String>,
    /// Target architecture.
    pub arch: &'static str,
    /// Whether the tool was built with optimisations.
    pub release_build: bool,
}

/// One line: cores, architecture, Windows and Wine versions, build.
pub fn describe(m: &Machine) -> String {
    let mut s = format!("{} logical cores, {}", m.logical_cores, m.arch);
    if let Some(v) = &m.windows_version {
        s += &format!(", Windows {v}");
    }
    if let Some(w) = &m.wine_version {
        s += &format!(", Wine {w}");
        if let Some(h) = &m.wine_host {
            s += &format!(" on {h}");
        }
    }
    s += if m.release_build { ", release build" } else { ", debug build" };
    s
}

/// The facts of this machine.
pub fn machine() -> Machine {
    let (windows_version, wine_version, wine_host) = os::versions();
    Machine {
        logical_cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        windows_version,
        wine_version,
        wine_host,
        arch: std::env::consts::ARCH,
        release_build: !cfg!(debug_assertions),
    }
}

/// Version facts from ntdll, looked up by name so nothing is linked that
/// Windows lacks (the `wine_*` exports exist only under Wine).
mod os {
    use core::ffi::{c_char, CStr};

    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};

    /// `RTL_OSVERSIONINFOW`.
    #[repr(C)]
    struct OsVersionInfo {
        size: u32,
        major: u32,
        minor: u32,
        build: u32,
        platform: u32,
        csd: [u16; 128],
    }

    type RtlGetVersion = unsafe extern "system" fn(*mut OsVersionInfo) -> i32;
    type WineGetVersion = unsafe extern "C" fn() -> *const c_char;
    type WineGetHostVersion = unsafe extern "C" fn(*mut *const c_char, *mut *const c_char);

    /// (Windows version, Wine version, Wine host).
    pub fn versions() -> (Option<String>, Option<String>, Option<String>) {
        // SAFETY: ntdll is always loaded; the name is NUL-terminated.
        let ntdll = unsafe { GetModuleHandleA(c"ntdll.dll".as_ptr().cast()) };
        if ntdll.is_null() {
            return (None, None, None);
        }
        // SAFETY: a loaded module and NUL-terminated names.
        let find = |name: &CStr| unsafe { GetProcAddress(ntdll, name.as_ptr().cast()) };
        let windows = find(c"RtlGetVersion").and_then(|f| {
            // SAFETY: RtlGetVersion has this signature; the struct is sized.
            let f: RtlGetVersion = unsafe { core::mem::transmute(f) };
            // SAFETY: plain data, all-zero is fine.
            let mut info: OsVersionInfo = unsafe { core::mem::zeroed() };
            info.size = core::mem::size_of::<OsVersionInfo>() as u32;
            // SAFETY: `info` is a valid, sized RTL_OSVERSIONINFOW.
            (unsafe { f(&mut info) } >= 0).then(|| format!("{}.{}.{}", info.major, info.minor, info.build))
        });
        let wine = find(c"wine_get_version").and_then(|f| {
            // SAFETY: Wine's export: returns a static NUL-terminated string.
            let f: WineGetVersion = unsafe { core::mem::transmute(f) };
            // SAFETY: as above.
            let version = unsafe { f() };
            // SAFETY: a static NUL-terminated string (or null).
            unsafe { cstr(version) }
        });
        let host = find(c"wine_get_host_version").and_then(|f| {
            // SAFETY: Wine's export: fills two pointers to static strings.
            let f: WineGetHostVersion = unsafe { core::mem::transmute(f) };
            let (mut sys, mut rel) = (core::ptr::null(), core::ptr::null());
            // SAFETY: both out-pointers are valid.
            unsafe { f(&mut sys, &mut rel) };
            // SAFETY: null or static NUL-terminated strings.
            let sys = unsafe { cstr(sys) };
            // SAFETY: as above.
            let rel = unsafe { cstr(rel) };
            Some(format!("{} {}", sys?, rel.unwrap_or_default()).trim().to_owned())
        });
        (windows, wine, host)
    }

    /// # Safety
    /// `p` is null or a NUL-terminated string that lives long enough.
    unsafe fn cstr(p: *const c_char) -> Option<String> {
        // SAFETY: by the caller.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}
