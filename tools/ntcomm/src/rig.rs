//! Installing, starting and stopping driver services: any driver by name,
//! image, load-order group and (for minifilters) altitude, and the
//! reference driver through the same calls.
//!
//! The same calls serve `ntcomm driver ...`, `ntcomm demo`, `ntcomm bench`
//! and the tests: install the service if missing, start it if stopped.
//! Under Wine, starting a driver first starts ntcomm's helper driver in the
//! driver's group (see [`wine_layers_for`]), so every driver the rig starts
//! runs with ntcomm's Wine layers.

use std::path::{Path, PathBuf};

use ntcomm_demo_proto as demo;
use ntcomm_um::service::{self, InstallOptions, ServiceState};
use ntcomm_um::{minifilter, Device, ErrorKind, Result};

/// The load-order group the rig gives a driver when none is asked for.
/// Windows uses groups only for boot ordering; under Wine, drivers of one
/// group share a winedevice process, which is how ntcomm's Wine layers
/// reach a driver (see [`wine_layers_for`]).
pub const DRIVER_GROUP: &str = "NtComm";

/// A kernel-driver service as the rig installs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverService {
    /// The service name (`ntcomm driver start NAME`).
    pub name: String,
    /// The driver image (`.sys`).
    pub image: PathBuf,
    /// The load-order group ([`DRIVER_GROUP`] unless set).
    pub group: String,
    /// For a minifilter: the altitude of its default instance, written to
    /// the service's `Instances` key (`FltRegisterFilter` needs it on Windows).
    pub altitude: Option<String>,
}

impl DriverService {
    /// The service `name` for `image`, in [`DRIVER_GROUP`], not a minifilter.
    pub fn new(name: &str, image: &Path) -> Self {
        Self { name: name.to_owned(), image: image.to_path_buf(), group: DRIVER_GROUP.to_owned(), altitude: None }
    }

    /// The reference driver's service for `image`.
    pub fn demo(image: &Path) -> Self {
        Self::new(demo::SERVICE_NAME, image).minifilter(demo::MINIFILTER_ALTITUDE)
    }

    /// In load-order group `group` instead of [`DRIVER_GROUP`].
    #[must_use]
    pub fn group(mut self, group: &str) -> Self {
        group.clone_into(&mut self.group);
        self
    }

    /// A minifilter whose default instance attaches at `altitude`.
    #[must_use]
    pub fn minifilter(mut self, altitude: &str) -> Self {
        self.altitude = Some(altitude.to_owned());
        self
    }

    /// Creates the service (demand start), and its minifilter keys.
    ///
    /// # Errors
    /// [`ErrorKind::ServiceExists`] if a service of that name exists; the
    /// service manager's or the registry's errors.
    pub fn install(&self) -> Result<()> {
        // Refused before anything is created.
        self.altitude.as_deref().map_or(Ok(()), minifilter::check_altitude)?;
        let options = InstallOptions { load_order_group: Some(self.group.clone()) };
        service::install_with(&self.name, &self.name, &self.image, &options)?;
        self.register_minifilter()
    }

    /// Installs the service if needed and starts it. An existing service
    /// configured with another image or group is stopped and reconfigured
    /// first, so the driver that runs is the one asked for.
    ///
    /// Calls from several threads of one process (parallel tests) are taken
    /// one at a time: one thread's stop-and-reconfigure must not run between
    /// another thread's install and start.
    ///
    /// # Errors
    /// The service manager's errors, with the service's exit code when the
    /// driver failed to start.
    pub fn ensure_running(&self) -> Result<()> {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        // A panic while holding it leaves nothing half-done that matters here.
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match self.install() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::ServiceExists => {
                let want = service::windows_image_path(&self.image)?;
                if !service::image_path(&self.name)?.eq_ignore_ascii_case(&want) {
                    service::stop(&self.name)?;
                    service::set_image_path(&self.name, &self.image)?;
                }
                if !service::load_order_group(&self.name)?.eq_ignore_ascii_case(&self.group) {
                    service::stop(&self.name)?;
                    service::set_load_order_group(&self.name, &self.group)?;
                }
                self.register_minifilter()?;
            }
            Err(e) => return Err(e),
        }
        start(&self.name)
    }

    fn register_minifilter(&self) -> Result<()> {
        self.altitude.as_deref().map_or(Ok(()), |altitude| minifilter::register_instance(&self.name, altitude))
    }
}

/// Starts the service `name` and waits until it runs; under Wine, after
/// ntcomm's helper driver for its group ([`wine_layers_for`]).
///
/// # Errors
/// The service manager's errors, with the service's exit code when the
/// driver failed to start.
pub fn start(name: &str) -> Result<()> {
    wine_layers_for(name)?;
    service::start(name)
}

/// Stops the service `name` (completing whatever its driver has pended) and
/// starts it again.
///
/// # Errors
/// As [`start`], and [`service::stop`]'s.
pub fn restart(name: &str) -> Result<()> {
    service::stop(name)?;
    start(name)
}

// ----- the reference driver ------------------------------------------------------------

/// The reference driver image to use: `explicit`, else `$NTCOMM_DRIVER`,
/// else `ntcomm_demo.sys` beside the running executable (or its parent, for
/// test binaries in `deps/`).
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

/// The reference driver from `image`, installed and running.
///
/// # Errors
/// As [`DriverService::ensure_running`].
pub fn ensure_demo_running(image: &Path) -> Result<()> {
    DriverService::demo(image).ensure_running()
}

/// Restarts the reference driver.
///
/// # Errors
/// As [`restart`].
pub fn restart_demo() -> Result<()> {
    restart(demo::SERVICE_NAME)
}

/// Starts the (installed) reference driver.
///
/// # Errors
/// As [`start`].
pub fn start_demo() -> Result<()> {
    start(demo::SERVICE_NAME)
}

/// For test suites: the reference driver found by [`driver_path`], running,
/// and a handle to it. Panics with a clear message when it cannot be had,
/// since a test cannot proceed without it.
pub fn test_device() -> Device {
    let image = driver_path(None).expect("no driver image: set NTCOMM_DRIVER or build ntcomm_demo.sys (cargo xtask build)");
    ensure_demo_running(&image).unwrap_or_else(|e| panic!("starting the driver from {}: {e}", image.display()));
    Device::open(demo::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", demo::USER_PATH))
}

// ----- Wine only: the one place where the CLI knows about Wine --------------------------

/// The service of ntcomm's Wine helper driver for [`DRIVER_GROUP`]; the
/// helper of another group `G` is `NtCommWineLpc-G` (see [`helper_service`]).
pub const WINE_LPC_SERVICE: &str = "NtCommWineLpc";

/// The helper service for load-order group `group`: one per group, since
/// each group is its own winedevice process under Wine.
pub fn helper_service(group: &str) -> String {
    if group.eq_ignore_ascii_case(DRIVER_GROUP) {
        return WINE_LPC_SERVICE.to_owned();
    }
    // Service names may not hold '/' or '\'; keep them plain.
    let plain: String = group.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{WINE_LPC_SERVICE}-{plain}")
}

/// Under Wine, with ntcomm's Wine layers installed in the prefix
/// (`system32\drivers\ntcomm_lpc.sys`, put there by `cargo xtask setup`):
/// starts ntcomm's helper driver in the load-order group of the service
/// `name` before that service, so that the helper patches its layers (LPC,
/// the IRP quarantine, IRQL tracking) into the winedevice process the
/// driver then loads into. A driver already running without them is
/// stopped first (it restarts in the helper's process).
///
/// Wine runs a driver without a group in a process of its own, which no
/// helper can reach: such a service is put in [`DRIVER_GROUP`] (under Wine
/// only; Windows ignores groups of demand-start drivers), with a line on
/// stderr saying so.
///
/// Elsewhere (Windows, or Wine without the layers) it does nothing.
///
/// # Errors
/// The service manager's errors.
pub fn wine_layers_for(name: &str) -> Result<()> {
    if !is_wine() {
        return Ok(());
    }
    let Some(root) = std::env::var_os("SystemRoot").or_else(|| std::env::var_os("windir")) else { return Ok(()) };
    let helper_image = Path::new(&root).join(r"system32\drivers\ntcomm_lpc.sys");
    if !helper_image.is_file() {
        return Ok(());
    }
    let mut group = service::load_order_group(name)?;
    if group.is_empty() {
        eprintln!("ntcomm: {name} has no load-order group; under Wine it joins group {DRIVER_GROUP} so that ntcomm's Wine layers reach it");
        service::stop(name)?;
        service::set_load_order_group(name, DRIVER_GROUP)?;
        DRIVER_GROUP.clone_into(&mut group);
    }
    let helper = helper_service(&group);
    let options = InstallOptions { load_order_group: Some(group.clone()) };
    // Display names are unique too: the service name serves as one.
    match service::install_with(&helper, &helper, &helper_image, &options) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ServiceExists => {}
        Err(e) => return Err(e),
    }
    if service::status(&helper)? == ServiceState::Running {
        return Ok(());
    }
    if service::status(name)? == ServiceState::Running {
        service::stop(name)?;
    }
    service::start(&helper)
}

/// Whether this process runs under Wine.
#[cfg(windows)]
pub fn is_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let name: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
    // SAFETY: a NUL-terminated name; ntdll is mapped in every process.
    let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
    // SAFETY: a module handle and a NUL-terminated name.
    !ntdll.is_null() && unsafe { GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()) }.is_some()
}
