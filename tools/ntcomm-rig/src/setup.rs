//! `ntcomm-rig setup`: a Wine prefix with ntcomm's Wine layers and CLI,
//! made or brought up to date (idempotent) by the setup of the ntcomm
//! sources this rig was built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::prefix::Prefix;
use crate::session::exit_code;

/// The ntcomm checkout this binary was built from (for `cargo install
/// --git`, cargo's own checkout of the repository, which it keeps).
pub fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs what the prefix needs (Wine and mingw-w64 through apt-get when
/// missing, the Rust Windows target), creates the prefix if needed, and
/// builds and installs the Wine layers and `ntcomm.exe` into it.
///
/// # Errors
/// When the sources are gone or their setup fails.
pub fn setup(prefix: &Prefix) -> Result<(), String> {
    let root = source_root();
    let manifest = root.join("xtask/Cargo.toml");
    if !manifest.is_file() {
        return Err(format!(
            "ntcomm-rig was built from {}, which no longer holds ntcomm's sources: install it again \
             (`cargo install --git <ntcomm repository> ntcomm-rig`, or `cargo install --path tools/ntcomm-rig` in a checkout)",
            root.display()
        ));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["run", "--quiet", "--manifest-path"]).arg(root.join("Cargo.toml"));
    c.args(["-p", "xtask", "--", "setup", "--prefix"]).arg(prefix.path());
    match exit_code(&mut c)? {
        0 => Ok(()),
        code => Err(format!("the setup of {} failed (exit code {code})", root.display())),
    }
}
