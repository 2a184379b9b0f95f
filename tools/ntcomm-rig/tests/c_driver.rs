//! The rig on a driver that is not ntcomm's: a small C driver and its C
//! client (tests/c-driver, built here with mingw-w64), set up, installed,
//! started, tested, stopped and removed with `ntcomm-rig` commands only.
//! The driver's DbgPrint lines reach the run's output, and a crash in its
//! IOCTL handler fails the run, naming the module and the offset.
//!
//! Needs a prefix made by `ntcomm-rig setup` (or `cargo xtask setup`):
//! `NTCOMM_RIG_TEST_PREFIX`, which `cargo xtask test` sets. The test ends
//! whatever Wine runs in that prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test reports by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SERVICE: &str = "NtCommRigCTest";
const GROUP: &str = "NtCommRigCTest";

struct Rig {
    prefix: PathBuf,
}

impl Rig {
    fn new() -> Self {
        let prefix = std::env::var_os("NTCOMM_RIG_TEST_PREFIX")
            .map(PathBuf::from)
            .expect("NTCOMM_RIG_TEST_PREFIX is not set: run through `cargo xtask test` (or set it to a prefix made by `ntcomm-rig setup`)");
        Self { prefix }
    }

    /// `ntcomm-rig --prefix P <args>`: its output, whatever its exit code.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ntcomm-rig")).arg("--prefix").arg(&self.prefix).args(args).output().unwrap()
    }

    /// As `run`, and the command must succeed; returns stdout + stderr.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = text(&out);
        assert!(out.status.success(), "ntcomm-rig {args:?} failed ({}): {text}", out.status);
        text
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Builds the driver and the client into target/ntcomm-rig-test.
fn build() -> (PathBuf, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c-driver");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ntcomm-rig-test");
    std::fs::create_dir_all(&out).unwrap();
    let (sys, exe) = (out.join("rigdrv.sys"), out.join("rigcli.exe"));
    let gcc = |args: &[&str], output: &Path, source: &str, libs: &[&str]| {
        let status = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror"])
            .args(args)
            .arg("-o")
            .arg(output)
            .arg(src.join(source))
            .args(libs)
            .status()
            .unwrap();
        assert!(status.success(), "mingw-w64 failed on {source}");
    };
    let ddk = "-I/usr/share/mingw-w64/include/ddk";
    gcc(
        &["-shared", "-nostdlib", "-nostartfiles", "-Wl,--subsystem,native", "-Wl,--entry,DriverEntry", ddk],
        &sys,
        "rigdrv.c",
        &["-lntoskrnl"],
    );
    gcc(&[], &exe, "rigcli.c", &[]);
    (sys, exe)
}

#[test]
fn a_c_driver_and_client_through_the_documented_commands() {
    let rig = Rig::new();
    let (sys, exe) = build();
    let (sys, exe) = (sys.to_str().unwrap(), exe.to_str().unwrap());

    rig.ok(&["session", "start"]);
    assert!(rig.ok(&["session", "status"]).contains("session running"));
    let _ = rig.run(&["driver", "uninstall", SERVICE]);
    rig.ok(&["driver", "install", SERVICE, sys, "--group", GROUP]);
    rig.ok(&["driver", "start", SERVICE]);

    // The client works, and the driver's DbgPrint line is in the run's output.
    let out = rig.run(&["run", exe, "ping", "41"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("rigcli: pong 42"), "{said}");
    assert!(said.contains("[DbgPrint] rigdrv: ping 41"), "{said}");

    // The driver stays loaded between programs (the session), and restarts.
    assert!(rig.ok(&["driver", "status", SERVICE]).contains("running"));
    rig.ok(&["driver", "restart", SERVICE]);
    assert!(rig.ok(&["run", exe, "ping", "1"]).contains("pong 2"));

    // A crash in the IOCTL handler fails the run and names the module.
    let out = rig.run(&["run", exe, "crash"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(101), "{said}");
    let place = said.lines().find(|l| l.contains("a driver host crashed")).unwrap_or_else(|| panic!("no crash report in: {said}"));
    assert!(place.contains("page fault on write access to 0000000000000010"), "{place}");
    let offset = place.split("rigdrv.sys+0x").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("{place}"));
    let offset = u64::from_str_radix(offset, 16).unwrap();
    // Inside the image's code, past the headers.
    assert!((0x1000..0x2000).contains(&offset), "{place}");

    // The crashed host's services cannot be controlled any more (Wine's
    // service manager still counts them running): a fresh session, then the
    // driver is removed.
    assert!(said.contains("ntcomm-rig session start"), "the report says how to go on: {said}");
    rig.ok(&["session", "start"]);
    rig.ok(&["driver", "uninstall", SERVICE]);
    assert!(rig.ok(&["driver", "status", SERVICE]).contains("not installed"));
    rig.ok(&["session", "stop"]);
    assert!(rig.ok(&["session", "status"]).contains("not running"));
}
