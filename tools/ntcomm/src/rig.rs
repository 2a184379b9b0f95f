//! Finding, installing and (re)starting the reference driver.
//!
//! The same calls serve `ntcomm driver ...`, `ntcomm demo`, `ntcomm bench`
//! and the tests: install the service if missing, start it if stopped.

use std::path::{Path, PathBuf};

use ntcomm_proto::demo;
use ntcomm_um::{service, Device, ErrorKind, Result};

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
pub fn ensure_running(image: &Path) -> Result<()> {
    match service::install(demo::SERVICE_NAME, "ntcomm reference driver", image) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ServiceExists => {
            let want = service::windows_image_path(image)?;
            let have = service::image_path(demo::SERVICE_NAME)?;
            if !have.eq_ignore_ascii_case(&want) {
                service::stop(demo::SERVICE_NAME)?;
                service::set_image_path(demo::SERVICE_NAME, image)?;
            }
        }
        Err(e) => return Err(e),
    }
    service::start(demo::SERVICE_NAME)
}

/// Stops the driver (completing whatever it has pended) and starts it again.
pub fn restart() -> Result<()> {
    service::stop(demo::SERVICE_NAME)?;
    service::start(demo::SERVICE_NAME)
}

/// For test suites: the driver found by [`driver_path`], running, and a
/// handle to it. Panics with a clear message when it cannot be had, since a
/// test cannot proceed without it.
pub fn test_device() -> Device {
    let image = driver_path(None).expect("no driver image: set NTCOMM_DRIVER or build ntcomm_demo.sys (cargo xtask build)");
    ensure_running(&image).unwrap_or_else(|e| panic!("starting the driver from {}: {e}", image.display()));
    Device::open(demo::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", demo::USER_PATH))
}
