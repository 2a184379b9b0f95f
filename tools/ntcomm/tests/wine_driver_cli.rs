//! `ntcomm driver ...` on a driver that is not the reference driver, in a
//! load-order group of its own, and on one installed without a group: the
//! commands a user runs, through the built `ntcomm.exe`.
//!
//! Under Wine, starting a driver starts ntcomm's Wine layers (the helper
//! driver) in the driver's group first; a group-less driver is moved into
//! the rig's group, since Wine would run it alone where no layer reaches.
//!
//! Needs `NTCOMM_MINIMAL_DRIVER` (`cargo xtask test` sets it).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test reports by panicking

use std::path::PathBuf;
use std::process::{Command, Output};

use ntcomm::rig;
use ntcomm_minimal_proto::{self as proto, Add, Total};
use ntcomm_um::service::{self, ServiceState};
use ntcomm_um::Device;

const GROUP: &str = "NtCommCliTest";

/// The tests load the same image (one device name): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn image() -> PathBuf {
    std::env::var_os("NTCOMM_MINIMAL_DRIVER").map(PathBuf::from).expect("NTCOMM_MINIMAL_DRIVER is not set: run through `cargo xtask test`")
}

/// Runs `ntcomm driver <args>`; fails the test unless it exits 0.
fn driver(args: &[&str]) -> String {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_ntcomm")).arg("driver").args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ntcomm driver {args:?}: {text}");
    text
}

/// The driver answers its typed IOCTL.
fn adds_up() {
    let dev = Device::open(proto::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", proto::USER_PATH));
    let mut total = Total::default();
    dev.ioctl(&proto::ADD, &Add { value: 7 }, &mut total).unwrap();
    assert_eq!(total, Total { total: 7, calls: 1 });
}

#[test]
fn any_driver_in_any_group_through_the_cli() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = "NtCommCliMinimal";
    let image = image();
    let _ = service::uninstall(name);
    let path = image.to_str().unwrap();
    let said = driver(&["install", name, path, "--group", GROUP]);
    assert!(said.contains(GROUP), "{said}");
    assert_eq!(service::load_order_group(name).unwrap(), GROUP);
    assert!(driver(&["start", name]).contains("running"));
    // Under Wine the group got its own helper, started before the driver.
    assert_eq!(service::status(&rig::helper_service(GROUP)).unwrap(), ServiceState::Running);
    adds_up();
    assert!(driver(&["status", name]).contains("running"));
    // A restart is a new driver instance: the total starts again.
    driver(&["restart", name]);
    adds_up();
    driver(&["stop", name]);
    assert!(driver(&["status", name]).contains("stopped"));
    assert!(Device::open(proto::USER_PATH).is_err(), "the device is gone with the driver");
    driver(&["uninstall", name]);
    assert!(driver(&["status", name]).contains("not installed"));
}

#[test]
fn a_driver_without_a_group_joins_the_rigs_group_under_wine() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = "NtCommCliNoGroup";
    let _ = service::uninstall(name);
    service::install(name, name, &image()).unwrap();
    assert_eq!(service::load_order_group(name).unwrap(), "");
    let said = driver(&["start", name]);
    assert!(said.contains(rig::DRIVER_GROUP), "{said}");
    assert_eq!(service::load_order_group(name).unwrap(), rig::DRIVER_GROUP);
    adds_up();
    driver(&["stop", name]);
    driver(&["uninstall", name]);
}

#[test]
fn a_bad_altitude_is_refused_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_ntcomm"))
        .args(["driver", "install", "NtCommCliBadAltitude", image().to_str().unwrap(), "--minifilter", "high"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("altitude \"high\" is not a decimal number"), "{text}");
    assert_eq!(service::status("NtCommCliBadAltitude").unwrap(), ServiceState::NotInstalled, "refused before anything is created");
}
