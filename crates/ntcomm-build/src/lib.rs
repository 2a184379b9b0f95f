//! Builds a Windows kernel driver from a Rust `cdylib`: one call in the
//! driver crate's `build.rs`.
//!
//! ```no_run
//! # #![allow(clippy::needless_doctest_main)]
//! // build.rs of a driver crate (crate-type = ["cdylib"], panic = "abort")
//! fn main() {
//!     ntcomm_build::driver();
//! }
//! ```
//!
//! For a build for `x86_64-pc-windows-gnu` (mingw-w64's linker), the call:
//! - refuses a build for another target than `x86_64-pc-windows-gnu`, with
//!   what to install;
//! - links the image as a driver: native subsystem, entry point
//!   `DriverEntry` (which `ntcomm_km::driver_entry!` defines), no C runtime,
//!   kernel import libraries;
//! - after the linker ran, checks the image (native subsystem, an entry
//!   point, and imports only from kernel modules, each function exported by
//!   its module's import library) and writes `<crate>.sys` next to the
//!   `.dll` cargo produces (`target/x86_64-pc-windows-gnu/<profile>/`).
//!   A failed check fails the link with the reason and the likely cause.
//! - tells `ntcomm_km::driver_entry!` that it ran: a driver crate without
//!   it does not compile, instead of building an ordinary DLL that Windows
//!   refuses to start as a service (Win32 error 731). The macro also refuses
//!   a profile without `panic = "abort"` (a kernel image has no unwinder),
//!   which a build script cannot see.
//!
//! For any other target (a host `cargo check` or `clippy` of the workspace)
//! it only does the last.
//!
//! How the check runs after the link: the linker is `gcc`; the call gives it
//! a specs file (`-specs=`) whose `linker` entry is this build script's own
//! executable, which runs the real `ld` and then the checks ([`link`]).
//! The build script must therefore call [`driver`] (or [`Driver::build`])
//! before anything else it prints.

mod image;
mod link;
mod script;

/// What `ntcomm_km::driver_entry!` looks for: set (to `1`) in the driver
/// crate's compile environment by [`driver`]. Spelled out in ntcomm-km too,
/// which does not depend on this crate.
pub const BUILD_MARKER_ENV: &str = "NTCOMM_BUILD_DRIVER";

/// The kernel modules a driver may import from without
/// [`Driver::allow_module`]: the kernel, the HAL and the Filter Manager.
pub const KERNEL_MODULES: [&str; 3] = ["ntoskrnl.exe", "hal.dll", "fltmgr.sys"];

/// Builds the driver with the defaults: see the [crate] documentation.
pub fn driver() {
    Driver::new().build();
}

/// The driver build, with options.
#[derive(Debug, Clone)]
pub struct Driver {
    modules: Vec<String>,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// Imports allowed from [`KERNEL_MODULES`] only.
    pub fn new() -> Self {
        Self { modules: KERNEL_MODULES.iter().map(|m| (*m).to_owned()).collect() }
    }

    /// Allows imports from another kernel-mode module (e.g. `ksecdd.sys`,
    /// `cng.sys`). The driver must link its import library itself
    /// (`cargo:rustc-link-lib=...`).
    #[must_use]
    pub fn allow_module(mut self, file: &str) -> Self {
        self.modules.push(file.to_ascii_lowercase());
        self
    }

    /// Runs the build step: in the build script, prints the link settings
    /// (or exits with a message saying what to change); when the linker
    /// runs this executable, links, checks and writes the `.sys`, and exits.
    pub fn build(self) {
        if let Some(args) = link::invocation() {
            std::process::exit(link::run(args));
        }
        if let Err(message) = script::configure(&self.modules) {
            eprintln!("error: ntcomm-build: {message}");
            std::process::exit(1);
        }
    }
}
