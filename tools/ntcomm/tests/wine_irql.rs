//! The rig's IRQL tracker (compat/wine-irql) against a C driver that breaks one
//! IRQL rule per IOCTL (compat/wine-irql/tests/irqltest.c): each case must add
//! exactly one finding to the findings file, with the bug check code and
//! parameter 1 Windows uses and the driver's name; the clean case must add none
//! and must see DISPATCH_LEVEL under a spin lock and in a cancel routine. Every
//! case fails when the tracker is off (no findings, IRQL always 0).
//!
//! Needs `NTCOMM_IRQL_TEST_DRIVER` (the built irqltest.sys; `cargo xtask test`
//! sets it) and the helper `ntcomm_lpc.sys` in the prefix (`cargo xtask setup`).
#![cfg(windows)]

mod common;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use common::{corpus_ioctl as ioctl, field};
use ntcomm::rig;
use ntcomm_um::Device;

const SERVICE: &str = "NtCommIrqlTest";
const USER_PATH: &str = r"\\.\NtCommIrqlTest";
const DRIVER: &str = "irqltest.sys";

// Cases, as in irqltest.h.
const CLEAN: u32 = 0;
const RAISED_RETURN: u32 = 1;
const LOCK_HELD_RETURN: u32 = 2;
const WAIT_UNDER_LOCK: u32 = 3;
const ZW_AT_DISPATCH: u32 = 4;
const PAGED_AT_DISPATCH: u32 = 5;
const RELEASE_WRONG_IRQL: u32 = 6;
const CANCEL_KEEPS_LOCK: u32 = 7;
const CANCEL_RAISED: u32 = 8;
const WORK_ITEM_RAISED: u32 = 9;

/// The cases share one driver and one findings file: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// This driver's findings so far.
fn findings() -> Vec<String> {
    common::findings_of(DRIVER)
}

/// The test driver installed in the rig's group (so it shares the helper's
/// winedevice) and running, and a handle to it.
fn device() -> (MutexGuard<'static, ()>, Device) {
    let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = std::env::var_os("NTCOMM_IRQL_TEST_DRIVER")
        .map(PathBuf::from)
        .expect("NTCOMM_IRQL_TEST_DRIVER is not set: run through `cargo xtask test`");
    rig::DriverService::new(SERVICE, &image).ensure_running().unwrap_or_else(|e| panic!("starting {SERVICE}: {e}"));
    let dev = Device::open(USER_PATH).unwrap_or_else(|e| panic!("opening {USER_PATH}: {e}"));
    // Without the tracker the broken cases would not only give no finding: the one
    // that keeps the cancel lock would leave Wine's held, and later cancels spin. So
    // each test first checks that the IRQL is tracked (2 under a spin lock).
    let mut seen = [0u8; 4];
    dev.ioctl_raw(ioctl(CLEAN), &[], &mut seen).expect("clean case");
    assert_eq!(seen[0], 2, "IRQL is not tracked in the driver host (is ntcomm_lpc.sys with compat/wine-irql installed?)");
    (turn, dev)
}

/// Runs case `n` and returns the findings it added. A work item's finding is
/// written after it has signalled the dispatch routine: wait a little for it.
fn poke(dev: &Device, n: u32, out: &mut [u8]) -> Vec<String> {
    let before = findings().len();
    dev.ioctl_raw(ioctl(n), &[], out).unwrap_or_else(|e| panic!("case {n}: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while n == WORK_ITEM_RAISED && findings().len() == before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    findings().split_off(before)
}

fn expect_one(n: u32, rule: &str, code: &str, p1: Option<&str>) {
    let (_turn, dev) = device();
    let new = poke(&dev, n, &mut []);
    assert_eq!(new.len(), 1, "case {n}: expected exactly one finding ({rule}), got {new:#?}");
    let f = &new[0];
    assert_eq!(field(f, "rule"), rule, "{f}");
    assert_eq!(field(f, "code"), code, "{f}");
    if let Some(p1) = p1 {
        assert_eq!(field(f, "p1"), p1, "{f}");
    }
    assert_eq!(field(f, "driver"), DRIVER, "{f}");
}

#[test]
fn clean_driver_has_no_findings_and_sees_tracked_irql() {
    let (_turn, dev) = device();
    let mut out = [0u8; 4];
    let new = poke(&dev, CLEAN, &mut out);
    assert!(new.is_empty(), "the clean case gave findings: {new:#?}");
    assert_eq!(out, [2, 0, 2, 0], "KeGetCurrentIrql under a spin lock / after lowering / in a cancel routine / after it");
}

#[test]
fn dispatch_returns_raised() {
    // Bug check 0xC9, parameter 1 0x05: the IRQL changed during the dispatch routine.
    expect_one(RAISED_RETURN, "dispatch-irql", "0xC9", Some("0x5"));
}

#[test]
fn dispatch_returns_holding_a_spin_lock() {
    expect_one(LOCK_HELD_RETURN, "lock-held-at-return", "0xC9", Some("0x5"));
}

#[test]
fn wait_under_a_spin_lock() {
    expect_one(WAIT_UNDER_LOCK, "wait-at-dispatch", "0xA", None);
}

#[test]
fn zw_call_at_dispatch() {
    // IrqlZwPassive: 0xC4 / 0x2001F.
    expect_one(ZW_AT_DISPATCH, "zw-not-passive", "0xC4", Some("0x2001F"));
}

#[test]
fn paged_pool_at_dispatch() {
    // 0xC4 / 0x01: paged pool allocated above APC_LEVEL.
    expect_one(PAGED_AT_DISPATCH, "paged-alloc-above-apc", "0xC4", Some("0x1"));
}

#[test]
fn spin_lock_released_with_the_wrong_irql() {
    // IrqlKeReleaseSpinLock: 0xC4 / 0x20015.
    expect_one(RELEASE_WRONG_IRQL, "release-wrong-irql", "0xC4", Some("0x20015"));
}

#[test]
fn cancel_routine_keeps_the_cancel_lock() {
    expect_one(CANCEL_KEEPS_LOCK, "cancel-lock-held", "0x4A", None);
}

#[test]
fn cancel_routine_returns_raised() {
    expect_one(CANCEL_RAISED, "cancel-irql", "0x4A", None);
}

#[test]
fn work_item_returns_raised() {
    // 0xE1 WORKER_THREAD_RETURNED_AT_BAD_IRQL, parameter 1 the worker routine.
    expect_one(WORK_ITEM_RAISED, "worker-irql", "0xE1", None);
}
