//! Driver crates outside this workspace, built for x86_64-pc-windows-gnu
//! with cargo as a user would: a correct one gets a checked `.sys`; one
//! that forgets the build script, `panic = "abort"`, or imports from a
//! user-mode DLL fails to build with a message that says what to change.
//!
//! Needs the Windows target and mingw-w64 (`cargo xtask setup`). The crates
//! are generated under `target/ntcomm-build-fixtures` and share one target
//! directory there, so ntcomm-km is compiled once for all of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test reports by panicking

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const DRIVER_SRC: &str = r#"#![no_std]
#![forbid(unsafe_code)]
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::Error;

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(*b"NtFx");
const CONFIG: DeviceConfig = DeviceConfig::new(r"\Device\NtCommFixture", r"\DosDevices\NtCommFixture");
ntcomm_km::driver_entry!(Fixture, CONFIG, Fixture::new);

struct Fixture;
impl Fixture {
    fn new(_device: Device) -> Result<Self, Error> {
        Ok(Fixture)
    }
}
impl DeviceOperations for Fixture {}
"#;

/// A driver that also calls a user-mode DLL (which no driver can load).
const USER_IMPORT_SRC: &str = r#"
#[link(name = "kernel32")]
extern "system" {
    fn GetTickCount() -> u32;
}
#[no_mangle]
pub extern "system" fn fixture_ticks() -> u32 {
    // SAFETY: a fixture that must not link; never called.
    unsafe { GetTickCount() }
}
"#;

struct Fixture {
    name: &'static str,
    build_rs: bool,
    abort: bool,
    extra_src: &'static str,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Writes the crate and builds it; returns (success, stderr, profile dir).
fn build(f: &Fixture) -> (bool, String, PathBuf) {
    let root = root();
    let base = root.join("target/ntcomm-build-fixtures");
    let dir = base.join(f.name);
    fs::create_dir_all(dir.join("src")).unwrap();
    let km = root.join("crates/ntcomm-km");
    let build = root.join("crates/ntcomm-build");
    let profile = if f.abort { "[profile.dev]\npanic = \"abort\"\n\n[profile.release]\npanic = \"abort\"\n" } else { "" };
    let build_dep = if f.build_rs {
        format!("[build-dependencies]\nntcomm-build = {{ path = {:?} }}\n", build.display().to_string())
    } else {
        String::new()
    };
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fixture-{}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nntcomm-km = {{ path = {:?} }}\n\n{build_dep}\n{profile}\n[workspace]\n",
            f.name,
            km.display().to_string()
        ),
    )
    .unwrap();
    // The user-mode import needs `unsafe`, which the plain fixture forbids.
    let src = if f.extra_src.is_empty() { DRIVER_SRC.to_owned() } else { DRIVER_SRC.replace("#![forbid(unsafe_code)]\n", "") };
    fs::write(dir.join("src/lib.rs"), format!("{src}{}", f.extra_src)).unwrap();
    if f.build_rs {
        fs::write(dir.join("build.rs"), "fn main() {\n    ntcomm_build::driver();\n}\n").unwrap();
    } else {
        let _ = fs::remove_file(dir.join("build.rs"));
    }
    let target_dir = base.join("target");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--target", "x86_64-pc-windows-gnu"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        // The workspace's own runner/linker config applies (this is under it).
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), target_dir.join("x86_64-pc-windows-gnu/debug"))
}

#[test]
fn a_driver_with_the_build_helper_gets_a_checked_sys() {
    let (ok, stderr, out) = build(&Fixture { name: "good", build_rs: true, abort: true, extra_src: "" });
    assert!(ok, "{stderr}");
    let sys = fs::read(out.join("fixture_good.sys")).expect("the .sys beside the .dll");
    // PE32+ optional header: Subsystem at offset 68 from its start (after the
    // 4-byte signature and the 20-byte file header).
    let pe = u32::from_le_bytes(sys[0x3c..0x40].try_into().unwrap()) as usize;
    let subsystem = u16::from_le_bytes(sys[pe + 24 + 68..pe + 24 + 70].try_into().unwrap());
    assert_eq!(subsystem, 1, "IMAGE_SUBSYSTEM_NATIVE");
}

#[test]
fn a_driver_without_the_build_helper_does_not_compile() {
    let (ok, stderr, _) = build(&Fixture { name: "no-build-rs", build_rs: false, abort: true, extra_src: "" });
    assert!(!ok);
    assert!(stderr.contains("not built by ntcomm-build") && stderr.contains("ntcomm_build::driver()"), "{stderr}");
}

#[test]
fn a_driver_that_unwinds_does_not_compile() {
    let (ok, stderr, _) = build(&Fixture { name: "unwind", build_rs: true, abort: false, extra_src: "" });
    assert!(!ok);
    assert!(stderr.contains("panic = \"abort\""), "{stderr}");
}

#[test]
fn a_driver_importing_a_user_mode_dll_fails_to_link_with_the_reason() {
    let (ok, stderr, out) = build(&Fixture { name: "user-import", build_rs: true, abort: true, extra_src: USER_IMPORT_SRC });
    assert!(!ok);
    assert!(stderr.contains("GetTickCount from kernel32.dll, which is not a kernel module"), "{stderr}");
    assert!(!out.join("fixture_user_import.sys").exists(), "no .sys for an image that failed its check");
}
