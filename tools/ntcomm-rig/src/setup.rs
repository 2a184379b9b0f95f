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

/// Turns verifier mode on or off (docs/VERIFIER.md): the registry value
/// `HKLM\\Software\\ntcomm\\rig\\Verifier`, which a driver host reads when ntcomm's
/// helper loads into it.
///
/// # Errors
/// When the prefix is not ready or `reg add` fails.
pub fn set_verifier(prefix: &Prefix, on: bool) -> Result<(), String> {
    prefix.check_ready()?;
    let value = if on { "1" } else { "0" };
    let mut c = prefix.command("wine");
    c.args(["reg", "add", r"HKLM\Software\ntcomm\rig", "/v", "Verifier", "/t", "REG_DWORD", "/d", value, "/f"]);
    match exit_code(&mut c)? {
        0 => Ok(()),
        code => Err(format!("`wine reg add` of the verifier switch failed (exit code {code})")),
    }
}
