//! Kernel-driver services through the service control manager: install,
//! start, stop, uninstall, status.
//!
//! Every function opens its own SCM connection, so they may be called from
//! any thread. Starting and stopping wait for the driver to get there.
#![cfg(windows)]
// multiple_unsafe_ops_per_block: the SCM's config buffer is read as one structure whose string pointers point into it; one SAFETY comment covers the cast and the reads.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ptr;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Services::{
    ChangeServiceConfigW, CloseServiceHandle, ControlService, CreateServiceW, DeleteService, OpenSCManagerW, OpenServiceW,
    QueryServiceConfigW, QueryServiceStatus, StartServiceW, QUERY_SERVICE_CONFIGW, SC_HANDLE, SC_MANAGER_CONNECT,
    SC_MANAGER_CREATE_SERVICE, SERVICE_CHANGE_CONFIG, SERVICE_CONTROL_STOP, SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL,
    SERVICE_KERNEL_DRIVER, SERVICE_NO_CHANGE, SERVICE_QUERY_CONFIG, SERVICE_QUERY_STATUS, SERVICE_START, SERVICE_STATUS, SERVICE_STOP,
};

use crate::error::code::{
    ERROR_FILE_NOT_FOUND, ERROR_INVALID_PARAMETER, ERROR_SERVICE_ALREADY_RUNNING, ERROR_SERVICE_CANNOT_ACCEPT_CTRL,
    ERROR_SERVICE_DATABASE_LOCKED, ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_NOT_ACTIVE, ERROR_TIMEOUT,
};
use crate::error::{Error, Result};
use crate::util::{strip_verbatim, to_wide_nul};

/// How long [`start`] and [`stop`] wait for the driver to reach the state.
pub const TRANSITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Poll interval while waiting for a state change (the SCM has no event for it).
const POLL: Duration = Duration::from_millis(10);

/// `DELETE` standard access right.
const DELETE: u32 = 0x0001_0000;

/// The state of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceState {
    /// No service of that name.
    NotInstalled,
    /// `SERVICE_STOPPED`.
    Stopped,
    /// `SERVICE_START_PENDING`.
    StartPending,
    /// `SERVICE_STOP_PENDING`.
    StopPending,
    /// `SERVICE_RUNNING`.
    Running,
    /// Any other `dwCurrentState` (pause states; drivers do not use them).
    Other(u32),
}

impl ServiceState {
    /// The state for a `SERVICE_STATUS.dwCurrentState` value.
    pub const fn from_raw(state: u32) -> Self {
        match state {
            1 => ServiceState::Stopped,
            2 => ServiceState::StartPending,
            3 => ServiceState::StopPending,
            4 => ServiceState::Running,
            n => ServiceState::Other(n),
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceState::NotInstalled => f.write_str("not installed"),
            ServiceState::Stopped => f.write_str("stopped"),
            ServiceState::StartPending => f.write_str("start pending"),
            ServiceState::StopPending => f.write_str("stop pending"),
            ServiceState::Running => f.write_str("running"),
            ServiceState::Other(n) => write!(f, "state {n}"),
        }
    }
}

/// Options of [`install_with`] beyond the required ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// `lpLoadOrderGroup`. Under Wine, drivers of one group share one
    /// `winedevice.exe` process (and may import each other's exports).
    pub load_order_group: Option<String>,
}

/// Installs a demand-start kernel driver service (`SERVICE_KERNEL_DRIVER`,
/// `SERVICE_DEMAND_START`, `SERVICE_ERROR_NORMAL`). `image_path` must exist;
/// it is made absolute. Fails with
/// [`ErrorKind::ServiceExists`](crate::ErrorKind::ServiceExists) if a service
/// of that name is installed already.
pub fn install(name: &str, display: &str, image_path: &Path) -> Result<()> {
    install_with(name, display, image_path, &InstallOptions::default())
}

/// [`install`] with [`InstallOptions`].
pub fn install_with(name: &str, display: &str, image_path: &Path, options: &InstallOptions) -> Result<()> {
    let image = absolute_windows_path(image_path)?;
    let w_name = wide(name, "service name")?;
    let w_display = wide(display, "display name")?;
    let w_image = wide(&image, "image path")?;
    let w_group = options.load_order_group.as_deref().map(|g| wide(g, "load order group")).transpose()?;
    let scm = Sc::open_manager(SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE)?;
    // SAFETY: all strings are NUL-terminated and outlive the call; the
    // optional ones are null (no tag, dependencies, account or password).
    let h = unsafe {
        CreateServiceW(
            scm.0,
            w_name.as_ptr(),
            w_display.as_ptr(),
            SERVICE_QUERY_STATUS,
            SERVICE_KERNEL_DRIVER,
            SERVICE_DEMAND_START,
            SERVICE_ERROR_NORMAL,
            w_image.as_ptr(),
            w_group.as_ref().map_or(ptr::null(), |g| g.as_ptr()),
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
        )
    };
    if h.is_null() {
        return Err(Error::last_with(|| format!("CreateServiceW {name} ({image})")));
    }
    drop(Sc(h));
    Ok(())
}

/// Starts the service and waits until it runs. Already running is success.
/// If the driver stops instead (e.g. `DriverEntry` failed late), the error
/// carries the service's exit code.
pub fn start(name: &str) -> Result<()> {
    let svc = Sc::open_service(name, SERVICE_START | SERVICE_QUERY_STATUS)?;
    let since = Instant::now();
    loop {
        // SAFETY: an open service handle with SERVICE_START; no arguments.
        if unsafe { StartServiceW(svc.0, 0, ptr::null()) } != 0 {
            break;
        }
        let err = Error::last_with(|| format!("StartServiceW {name}"));
        match err.win32() {
            ERROR_SERVICE_ALREADY_RUNNING => break,
            // The SCM holds its database while it starts the boot and
            // auto-start services (right after boot); the start is retried.
            ERROR_SERVICE_DATABASE_LOCKED if since.elapsed() < TRANSITION_TIMEOUT => std::thread::sleep(POLL),
            _ => return Err(err),
        }
    }
    let st = svc.wait_until(name, |s| s != ServiceState::StartPending)?;
    match ServiceState::from_raw(st.dwCurrentState) {
        ServiceState::Running => Ok(()),
        other => {
            let code = if st.dwWin32ExitCode != 0 { st.dwWin32ExitCode } else { ERROR_SERVICE_NOT_ACTIVE };
            Err(Error::new(format!("starting service {name}: it is {other}"), code))
        }
    }
}

/// Stops the service (`SERVICE_CONTROL_STOP`) and waits up to
/// [`TRANSITION_TIMEOUT`] for `SERVICE_STOPPED`
/// ([`ErrorKind::Timeout`](crate::ErrorKind::Timeout) after that). Already
/// stopped is success. A driver without `DriverUnload` cannot stop: the SCM
/// refuses the control and that error is returned.
pub fn stop(name: &str) -> Result<()> {
    let svc = Sc::open_service(name, SERVICE_STOP | SERVICE_QUERY_STATUS)?;
    svc.stop(name)
}

/// Stops the service if it runs, then deletes it. Fails with
/// [`ErrorKind::ServiceNotFound`](crate::ErrorKind::ServiceNotFound) if it is
/// not installed.
pub fn uninstall(name: &str) -> Result<()> {
    let svc = Sc::open_service(name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE)?;
    svc.stop(name)?;
    // SAFETY: an open service handle with DELETE access.
    if unsafe { DeleteService(svc.0) } == 0 {
        return Err(Error::last_with(|| format!("DeleteService {name}")));
    }
    Ok(())
}

/// The current state of the service; [`ServiceState::NotInstalled`] when
/// there is none of that name.
pub fn status(name: &str) -> Result<ServiceState> {
    let svc = match Sc::open_service(name, SERVICE_QUERY_STATUS) {
        Ok(svc) => svc,
        Err(e) if e.win32() == ERROR_SERVICE_DOES_NOT_EXIST => return Ok(ServiceState::NotInstalled),
        Err(e) => return Err(e),
    };
    Ok(ServiceState::from_raw(svc.query(name)?.dwCurrentState))
}

/// An SCM or service handle, closed on drop.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: we own the handle.
        unsafe { CloseServiceHandle(self.0) };
    }
}

impl Sc {
    fn open_manager(access: u32) -> Result<Sc> {
        // SAFETY: local machine, default database.
        let h = unsafe { OpenSCManagerW(ptr::null(), ptr::null(), access) };
        if h.is_null() {
            return Err(Error::last("OpenSCManagerW"));
        }
        Ok(Sc(h))
    }

    fn open_service(name: &str, access: u32) -> Result<Sc> {
        let w_name = wide(name, "service name")?;
        let scm = Sc::open_manager(SC_MANAGER_CONNECT)?;
        // SAFETY: an open SCM handle and a NUL-terminated name.
        let h = unsafe { OpenServiceW(scm.0, w_name.as_ptr(), access) };
        if h.is_null() {
            return Err(Error::last_with(|| format!("OpenServiceW {name}")));
        }
        // The service handle stays valid after the SCM handle closes.
        Ok(Sc(h))
    }

    fn query(&self, name: &str) -> Result<SERVICE_STATUS> {
        // SAFETY: SERVICE_STATUS is plain data.
        let mut st: SERVICE_STATUS = unsafe { core::mem::zeroed() };
        // SAFETY: an open service handle with SERVICE_QUERY_STATUS.
        if unsafe { QueryServiceStatus(self.0, &mut st) } == 0 {
            return Err(Error::last_with(|| format!("QueryServiceStatus {name}")));
        }
        Ok(st)
    }

    /// Polls until `done(state)`, for at most [`TRANSITION_TIMEOUT`].
    fn wait_until(&self, name: &str, done: impl Fn(ServiceState) -> bool) -> Result<SERVICE_STATUS> {
        let deadline = Instant::now() + TRANSITION_TIMEOUT;
        loop {
            let st = self.query(name)?;
            let state = ServiceState::from_raw(st.dwCurrentState);
            if done(state) {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!("service {name} still {state} after {} s", TRANSITION_TIMEOUT.as_secs()), ERROR_TIMEOUT));
            }
            std::thread::sleep(POLL);
        }
    }

    fn stop(&self, name: &str) -> Result<()> {
        // SAFETY: SERVICE_STATUS is plain data.
        let mut st: SERVICE_STATUS = unsafe { core::mem::zeroed() };
        // SAFETY: an open service handle with SERVICE_STOP access.
        if unsafe { ControlService(self.0, SERVICE_CONTROL_STOP, &mut st) } == 0 {
            let err = Error::last_with(|| format!("ControlService STOP {name}"));
            match err.win32() {
                ERROR_SERVICE_NOT_ACTIVE => return Ok(()),
                // Already stopping (or starting): wait below, as for a stop.
                ERROR_SERVICE_CANNOT_ACCEPT_CTRL => {}
                _ => return Err(err),
            }
        }
        self.wait_until(name, |s| s == ServiceState::Stopped)?;
        Ok(())
    }
}

/// `s` as a NUL-terminated wide string, or an InvalidParameter error naming
/// `what` if it holds a NUL.
/// The image path the service is configured with.
pub fn image_path(name: &str) -> Result<String> {
    config(name).map(|c| c.image_path)
}

/// The load order group the service is configured with ("" for none).
pub fn load_order_group(name: &str) -> Result<String> {
    config(name).map(|c| c.load_order_group)
}

struct Config {
    image_path: String,
    load_order_group: String,
}

fn config(name: &str) -> Result<Config> {
    let svc = Sc::open_service(name, SERVICE_QUERY_CONFIG)?;
    let mut needed = 0u32;
    // SAFETY: sizing call with no buffer.
    unsafe { QueryServiceConfigW(svc.0, ptr::null_mut(), 0, &mut needed) };
    // u64 storage keeps QUERY_SERVICE_CONFIGW's pointers aligned.
    let mut buf = vec![0u64; (needed as usize).div_ceil(8).max(1)];
    let size = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
    // SAFETY: a buffer of `size` bytes, aligned for the structure.
    if unsafe { QueryServiceConfigW(svc.0, buf.as_mut_ptr().cast(), size, &mut needed) } == 0 {
        return Err(Error::last_with(|| format!("QueryServiceConfigW {name}")));
    }
    /// # Safety
    /// `p` is null or a NUL-terminated wide string.
    unsafe fn text(p: *const u16) -> String {
        if p.is_null() {
            return String::new();
        }
        let mut n = 0;
        // SAFETY: per the contract, readable up to its NUL.
        unsafe {
            while *p.add(n) != 0 {
                n += 1;
            }
            String::from_utf16_lossy(core::slice::from_raw_parts(p, n))
        }
    }
    // SAFETY: the call filled a QUERY_SERVICE_CONFIGW at the start of `buf`,
    // whose string pointers are null or point into `buf` (NUL-terminated).
    let cfg = unsafe {
        let cfg = &*(buf.as_ptr() as *const QUERY_SERVICE_CONFIGW);
        Config { image_path: text(cfg.lpBinaryPathName), load_order_group: text(cfg.lpLoadOrderGroup) }
    };
    Ok(cfg)
}

/// Sets the service's load order group (the service must be stopped for it
/// to take effect).
pub fn set_load_order_group(name: &str, group: &str) -> Result<()> {
    let w_group = wide(group, "load order group")?;
    change_config(name, None, Some(&w_group)).map_err(|e| e.prefixed(format_args!("group {group}")))
}

/// Points an installed service at another image (the service must be
/// stopped for it to take effect).
pub fn set_image_path(name: &str, image_path: &Path) -> Result<()> {
    let image = absolute_windows_path(image_path)?;
    let w_image = wide(&image, "image path")?;
    change_config(name, Some(&w_image), None).map_err(|e| e.prefixed(format_args!("image {image}")))
}

/// `ChangeServiceConfigW` of the image path and/or the load order group
/// (NUL-terminated); everything else unchanged.
fn change_config(name: &str, image: Option<&[u16]>, group: Option<&[u16]>) -> Result<()> {
    let svc = Sc::open_service(name, SERVICE_CHANGE_CONFIG)?;
    // SAFETY: an open service handle; each string is NUL-terminated (made by
    // `wide`) or null (unchanged) and outlives the call.
    let ok = unsafe {
        ChangeServiceConfigW(
            svc.0,
            SERVICE_NO_CHANGE,
            SERVICE_NO_CHANGE,
            SERVICE_NO_CHANGE,
            image.map_or(ptr::null(), <[u16]>::as_ptr),
            group.map_or(ptr::null(), <[u16]>::as_ptr),
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
        )
    };
    if ok == 0 {
        return Err(Error::last_with(|| format!("ChangeServiceConfigW {name}")));
    }
    Ok(())
}

/// The absolute Windows form of `path`, as [`install`] records it.
pub fn windows_image_path(path: &Path) -> Result<String> {
    absolute_windows_path(path)
}

fn wide(s: &str, what: &str) -> Result<Vec<u16>> {
    to_wide_nul(s).ok_or_else(|| Error::new(format!("{what} {s:?} holds a NUL"), ERROR_INVALID_PARAMETER))
}

/// The absolute, plain (non-verbatim) Windows form of an existing file's path.
fn absolute_windows_path(path: &Path) -> Result<String> {
    let ctx = || format!("resolving driver image {}", path.display());
    let abs = std::fs::canonicalize(path).map_err(|e| Error::new(ctx(), e.raw_os_error().map_or(ERROR_FILE_NOT_FOUND, |c| c as u32)))?;
    let s = abs.to_str().ok_or_else(|| Error::new(format!("{}: path is not Unicode", ctx()), ERROR_INVALID_PARAMETER))?;
    Ok(strip_verbatim(s))
}
