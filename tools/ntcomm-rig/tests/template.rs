//! The template: `ntcomm-rig new` makes a project outside this workspace,
//! and the two commands of its README (`ntcomm-rig setup`, here the test
//! prefix already made, and `ntcomm-rig test`) build it and pass its tests
//! with the driver loaded under Wine. So the template cannot rot.
//!
//! Needs `NTCOMM_RIG_TEST_PREFIX` (a prefix made by setup; `cargo xtask
//! test` sets it). The project's build shares `target/ntcomm-rig-template`
//! between runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test reports by panicking

use std::path::{Path, PathBuf};
use std::process::Command;

fn rig() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ntcomm-rig"))
}

#[test]
fn a_new_project_builds_and_passes_its_tests_under_wine() {
    let prefix = std::env::var_os("NTCOMM_RIG_TEST_PREFIX")
        .map(PathBuf::from)
        .expect("NTCOMM_RIG_TEST_PREFIX is not set: run through `cargo xtask test`");
    // Outside the workspace, as a user's project is.
    let base = std::env::temp_dir().join(format!("ntcomm-rig-template-{}", std::process::id()));
    let dir = base.join("rig-template-check");
    let _ = std::fs::remove_dir_all(&base);

    let out = rig().arg("new").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("ntcomm-rig setup") && readme.contains("ntcomm-rig test"), "{readme}");

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ntcomm-rig-template");
    let out = rig().arg("--prefix").arg(&prefix).arg("test").current_dir(&dir).env("CARGO_TARGET_DIR", &target).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ntcomm-rig test failed ({}):\n{said}", out.status);
    assert!(said.contains("test the_driver_doubles ... ok"), "{said}");
    assert!(said.contains("test a_short_input_is_refused_before_the_driver_sees_it ... ok"), "{said}");
    assert!(said.contains("[DbgPrint] ntcomm: rig-template-check: DOUBLE 21"), "the driver's DbgPrint line: {said}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn new_refuses_a_directory_that_is_not_empty_and_a_bad_name() {
    let base = std::env::temp_dir().join(format!("ntcomm-rig-template-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("keep.txt"), "mine").unwrap();
    let out = rig().arg("new").arg(&base).arg("--name").arg("fine").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(std::fs::read_to_string(base.join("keep.txt")).unwrap(), "mine", "nothing overwritten");
    let out = rig().arg("new").arg(base.join("x")).arg("--name").arg("Bad_Name").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lower-case letters"));
    let _ = std::fs::remove_dir_all(&base);
}
