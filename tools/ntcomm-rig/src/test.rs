//! `ntcomm-rig test`: a driver project's tests under Wine in one command:
//! build, a fresh session, every driver of the workspace installed and
//! started, `cargo test` through the rig, then the drivers stopped and
//! removed and the session ended.
//!
//! A driver is a workspace package with `[package.metadata.ntcomm-rig]
//! service = "Name"` and a `cdylib` target (built by `ntcomm_build`, which
//! writes `<target>.sys`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::driver::driver;
use crate::prefix::Prefix;
use crate::session::{exit_code, Session};

const TARGET: &str = "x86_64-pc-windows-gnu";

/// A driver of the workspace: its service name and image.
#[derive(Debug)]
struct Driver {
    service: String,
    image: PathBuf,
}

/// Runs the project's tests (`cargo_args` go to `cargo test`); returns the
/// exit code of `cargo test`, or of the first step that failed.
///
/// # Errors
/// When the prefix is not ready, or cargo or Wine cannot be run.
pub fn test(prefix: &Prefix, cargo_args: &[OsString]) -> Result<i32, String> {
    prefix.check_ready()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let code = exit_code(Command::new(&cargo).args(["build", "--workspace", "--target", TARGET]))?;
    if code != 0 {
        return Ok(code);
    }
    let drivers = drivers(&cargo)?;
    if drivers.is_empty() {
        eprintln!(
            "ntcomm-rig test: no driver in the workspace ([package.metadata.ntcomm-rig] service = \"...\"); running the tests anyway"
        );
    }
    let session = Session::new(prefix);
    session.start()?;
    let mut code = 0;
    for d in &drivers {
        let image = d.image.as_os_str().to_owned();
        for args in [vec!["install".into(), d.service.clone().into(), image], vec!["start".into(), d.service.clone().into()]] {
            if code == 0 {
                code = driver(prefix, &args)?;
            }
        }
    }
    if code == 0 {
        // The runner is this binary in this prefix, whatever the project's config says.
        let me = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
        let mut c = Command::new(&cargo);
        c.args(["test", "--workspace", "--target", TARGET])
            .args(cargo_args)
            .env("WINEPREFIX", prefix.path())
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", format!("{} run", me.display()));
        code = exit_code(&mut c)?;
    }
    for d in &drivers {
        let _ = driver(prefix, &["stop".into(), d.service.clone().into()]);
        let _ = driver(prefix, &["uninstall".into(), d.service.clone().into()]);
    }
    session.stop();
    Ok(code)
}

/// The workspace's drivers, from `cargo metadata`.
fn drivers(cargo: &OsString) -> Result<Vec<Driver>, String> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata's output: {e}"))?;
    let target_dir = PathBuf::from(meta.get("target_directory").and_then(|v| v.as_str()).ok_or("cargo metadata: no target_directory")?);
    let mut drivers = Vec::new();
    for package in meta.get("packages").and_then(|v| v.as_array()).into_iter().flatten() {
        let package_name = package.get("name").and_then(|v| v.as_str()).unwrap_or("?");
        let Some(service) = package.pointer("/metadata/ntcomm-rig/service").and_then(|v| v.as_str()) else { continue };
        let cdylib = package
            .get("targets")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .find(|t| t.get("crate_types").and_then(|v| v.as_array()).is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib")));
        let Some(name) = cdylib.and_then(|t| t.get("name")).and_then(|v| v.as_str()) else {
            return Err(format!("package {package_name} names service {service} but has no cdylib target"));
        };
        let image = target_dir.join(TARGET).join("debug").join(format!("{}.sys", name.replace('-', "_")));
        if !image.is_file() {
            return Err(format!("{} is missing: does {package_name}'s build.rs call ntcomm_build::driver()?", image.display()));
        }
        drivers.push(Driver { service: service.to_owned(), image });
    }
    Ok(drivers)
}
