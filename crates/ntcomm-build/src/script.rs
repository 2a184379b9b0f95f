//! The build-script side: checks the target and profile, prints the link
//! arguments, and writes the specs file that runs [`crate::link`] as the
//! linker.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{link, BUILD_MARKER_ENV};

/// The arguments that make mingw's `gcc` link a kernel driver.
const DRIVER_LINK_ARGS: [&str; 11] = [
    "-nostartfiles",
    "-nostdlib",
    "-Wl,--subsystem,native",
    "-Wl,--entry,DriverEntry",
    "-Wl,--image-base,0x140000000",
    "-Wl,--dynamicbase",
    "-Wl,--nxcompat",
    "-Wl,--exclude-all-symbols",
    "-lntoskrnl",
    "-lhal",
    // ___chkstk_ms for large stack frames; it only touches the stack.
    "-lgcc",
];

pub(crate) fn configure(modules: &[String]) -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rustc-env={BUILD_MARKER_ENV}=1");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        // A host build (cargo check, clippy, doc): nothing to link.
        return Ok(());
    }
    let target = env::var("TARGET").unwrap_or_default();
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu") || env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        return Err(format!(
            "target {target}: drivers are linked with mingw-w64 for x86_64-pc-windows-gnu \
             (`rustup target add x86_64-pc-windows-gnu`, Debian: `apt-get install mingw-w64`)"
        ));
    }
    // The panic strategy is not visible here (CARGO_CFG_PANIC is the
    // target's default, not the profile's): `ntcomm_km::driver_entry!`
    // checks `cfg(panic = "abort")` where it is known.
    for arg in DRIVER_LINK_ARGS {
        println!("cargo:rustc-cdylib-link-arg={arg}");
    }
    let specs = write_specs(modules)?;
    println!("cargo:rustc-cdylib-link-arg=-specs={}", specs.display());
    Ok(())
}

/// Writes `$OUT_DIR/ntcomm-driver.specs`, whose `linker` entry runs this
/// build script's executable in link mode with the real `ld`.
fn write_specs(modules: &[String]) -> Result<PathBuf, String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set: call ntcomm_build::driver() from build.rs")?);
    let me = env::current_exe().map_err(|e| format!("cannot find the build script's executable: {e}"))?;
    let ld = real_ld()?;
    for path in [&me, &ld, &out] {
        // A spec string splits on white space and gives `%` a meaning.
        if path.to_string_lossy().contains(|c: char| c.is_whitespace() || c == '%') {
            return Err(format!(
                "{} contains white space or '%', which gcc's specs cannot carry: build from a path without them",
                path.display()
            ));
        }
    }
    let command = link::spec_command(&me, &ld, modules);
    let specs = out.join("ntcomm-driver.specs");
    fs::write(&specs, format!("*linker:\n{command}\n\n")).map_err(|e| format!("write {}: {e}", specs.display()))?;
    Ok(specs)
}

/// The `ld` that the target's `gcc` runs.
fn real_ld() -> Result<PathBuf, String> {
    let gcc = env::var("RUSTC_LINKER").unwrap_or_else(|_| "x86_64-w64-mingw32-gcc".into());
    let out = Command::new(&gcc).arg("-print-prog-name=ld").output().map_err(|e| {
        format!(
            "cannot run the linker {gcc}: {e}; install mingw-w64 (Debian: `apt-get install mingw-w64`) and set \
             `[target.x86_64-pc-windows-gnu] linker = \"x86_64-w64-mingw32-gcc\"` in .cargo/config.toml"
        )
    })?;
    let ld = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || ld.is_empty() {
        return Err(format!("{gcc} -print-prog-name=ld failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let ld = PathBuf::from(ld);
    // gcc prints a bare name when ld is found through PATH at run time.
    if ld.is_absolute() {
        Ok(ld)
    } else {
        which(&ld).ok_or_else(|| format!("{gcc} runs `{}`, which is not on PATH", ld.display()))
    }
}

fn which(program: &Path) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}
