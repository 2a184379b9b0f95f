//! Finding, installing and (re)starting the reference driver.
//!
//! The same calls serve `ntcomm driver ...`, `ntcomm demo`, `ntcomm bench`
//! and the tests: install the service if missing, start it if stopped.

use std::path::{Path, PathBuf};

use ntcomm_demo_proto as demo;
use ntcomm_um::service::{self, InstallOptions, ServiceState};
use ntcomm_um::{Device, ErrorKind, Result};

/// The demo driver's service group (`lpLoadOrderGroup`). Windows uses it only
/// for boot ordering; under Wine, drivers of one group share a winedevice
/// process, which is how ntcomm's Wine LPC reaches the driver (see
/// [`wine_lpc_helper`]).
pub const DRIVER_GROUP: &str = "NtComm";

/// Installs the demo driver's service for `image`, in [`DRIVER_GROUP`].
pub fn install(image: &Path) -> Result<()> {
    let options = InstallOptions { load_order_group: Some(DRIVER_GROUP.into()) };
    service::install_with(demo::SERVICE_NAME, "ntcomm reference driver", image, &options)
}

/// Starts the demo driver (after the Wine LPC helper, under Wine).
pub fn start() -> Result<()> {
    wine_lpc_helper()?;
    service::start(demo::SERVICE_NAME)
}

/// The driver image to use: `explicit`, else `$NTCOMM_DRIVER`, else
/// `ntcomm_demo.sys` beside the running executable (or its parent, for test
/// binaries in `deps/`).
pub fn driver_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("NTCOMM_DRIVER") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(demo::DRIVER_FILE), dir.parent()?.join(demo::DRIVER_FILE)].into_iter().find(|p| p.exists())
}

/// Installs the demo driver's service if needed and starts it. An existing
/// service configured with another image (e.g. a debug build when a
/// release build is asked for) is stopped and pointed at `image` first, so
/// the driver that runs is the one asked for.
///
/// Calls from several threads of one process (parallel tests) are taken one
/// at a time: one thread's stop-and-reconfigure must not run between another
/// thread's install and start.
pub fn ensure_running(image: &Path) -> Result<()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic while holding it leaves nothing half-done that matters here.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match install(image) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ServiceExists => {
            let want = service::windows_image_path(image)?;
            let have = service::image_path(demo::SERVICE_NAME)?;
            if !have.eq_ignore_ascii_case(&want) {
                service::stop(demo::SERVICE_NAME)?;
                service::set_image_path(demo::SERVICE_NAME, image)?;
            }
            if !service::load_order_group(demo::SERVICE_NAME)?.eq_ignore_ascii_case(DRIVER_GROUP) {
                service::stop(demo::SERVICE_NAME)?;
                service::set_load_order_group(demo::SERVICE_NAME, DRIVER_GROUP)?;
            }
        }
        Err(e) => return Err(e),
    }
    start()
}

/// Stops the driver (completing whatever it has pended) and starts it again.
pub fn restart() -> Result<()> {
    service::stop(demo::SERVICE_NAME)?;
    start()
}

// ----- Wine only: the one place where the CLI knows about Wine --------------------------

/// The service of ntcomm's Wine LPC helper driver (`compat/wine-lpc`).
pub const WINE_LPC_SERVICE: &str = "NtCommWineLpc";

/// Under Wine, with ntcomm's compat LPC installed in the prefix
/// (`system32\drivers\ntcomm_lpc.sys`, put there by `cargo xtask setup`):
/// installs its helper driver in [`DRIVER_GROUP`] and starts it before the
/// demo driver, so that it patches LPC into the winedevice process the
/// demo driver then loads into. If the demo driver already runs without
/// it, the demo driver is stopped first (it restarts in the helper's
/// process). Elsewhere (Windows, or Wine without the compat layer) it does
/// nothing.
pub fn wine_lpc_helper() -> Result<()> {
    if !is_wine() {
        return Ok(());
    }
    let Some(root) = std::env::var_os("SystemRoot").or_else(|| std::env::var_os("windir")) else { return Ok(()) };
    let helper = Path::new(&root).join(r"system32\drivers\ntcomm_lpc.sys");
    if !helper.is_file() {
        return Ok(());
    }
    let options = InstallOptions { load_order_group: Some(DRIVER_GROUP.into()) };
    match service::install_with(WINE_LPC_SERVICE, "ntcomm LPC for Wine", &helper, &options) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ServiceExists => {}
        Err(e) => return Err(e),
    }
    if service::status(WINE_LPC_SERVICE)? == ServiceState::Running {
        return Ok(());
    }
    if service::status(demo::SERVICE_NAME)? == ServiceState::Running {
        service::stop(demo::SERVICE_NAME)?;
    }
    service::start(WINE_LPC_SERVICE)
}

#[cfg(windows)]
fn is_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let name: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated name; ntdll is mapped in every process.
    let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
    // SAFETY: a module handle and a NUL-terminated name.
    !ntdll.is_null() && unsafe { GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()) }.is_some()
}

/// For test suites: the driver found by [`driver_path`], running, and a
/// handle to it. Panics with a clear message when it cannot be had, since a
/// test cannot proceed without it.
pub fn test_device() -> Device {
    let image = driver_path(None).expect("no driver image: set NTCOMM_DRIVER or build ntcomm_demo.sys (cargo xtask build)");
    ensure_running(&image).unwrap_or_else(|e| panic!("starting the driver from {}: {e}", image.display()));
    Device::open(demo::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", demo::USER_PATH))
}
