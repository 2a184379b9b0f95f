//! The rig's verifier mode (compat/wine-verifier) against a C driver that breaks
//! one rule per IOCTL (compat/wine-verifier/tests/vftest.c): each case must add
//! exactly one finding with the bug check code and parameter 1 Windows uses and the
//! driver's name; the correct twins (a clean dispatch that makes and undoes every
//! kind of object, and a clean unload) must add none. The unload cases arm a
//! defect, stop the driver and look for the finding its unload gives.
//!
//! Needs `NTCOMM_VERIFIER_TEST_DRIVER` (the built vftest.sys; `cargo xtask test`
//! sets it) and the helper `ntcomm_lpc.sys` in the prefix (`cargo xtask setup`).
#![cfg(windows)]

mod common;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{corpus_ioctl as ioctl, field};
use ntcomm::rig;
use ntcomm_um::{service, Device};

const SERVICE: &str = "NtCommVfTest";
const USER_PATH: &str = r"\\.\NtCommVfTest";
const DRIVER: &str = "vftest.sys";

// Cases, as in vftest.h.
const CLEAN: u32 = 0;
const COMPLETE_TWICE: u32 = 1;
const CANCEL_ROUTINE_SET: u32 = 2;
const COMPLETE_PENDING: u32 = 3;
const PENDING_NOT_MARKED: u32 = 4;
const MARKED_NOT_PENDING: u32 = 5;
const STATUS_MISMATCH: u32 = 6;
const NOT_COMPLETED: u32 = 7;
const INFORMATION_OVERRUN: u32 = 8;
const FREE_IRP: u32 = 9;
const PEND_NO_CANCEL: u32 = 10;
const RELEASE: u32 = 11;
const WRITE_AFTER_COMPLETE: u32 = 12;
const DOUBLE_FREE: u32 = 13;
const WRONG_TAG: u32 = 14;
const DELETE_TWICE: u32 = 15;
const CLOSE_INVALID: u32 = 16;
const LEAK_POOL: u32 = 17;
const LEAVE_DEVICE: u32 = 18;
const LEAVE_LINK: u32 = 19;
const LEAVE_THREAD: u32 = 20;
const LEAVE_TIMER: u32 = 21;
const LEAVE_WORK_ITEM: u32 = 22;
const LEAVE_LOOKASIDE: u32 = 23;
const LEAVE_HANDLE: u32 = 24;
const LEAVE_DPCS: u32 = 25;
const CLEAN_UNLOAD: u32 = 26;
const FORWARD_AND_WAIT: u32 = 27;

/// The cases share one driver and one findings file: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// This driver's findings so far.
fn findings() -> Vec<String> {
    common::findings_of(DRIVER)
}

fn image() -> PathBuf {
    std::env::var_os("NTCOMM_VERIFIER_TEST_DRIVER")
        .map(PathBuf::from)
        .expect("NTCOMM_VERIFIER_TEST_DRIVER is not set: run through `cargo xtask test`")
}

/// The test driver running in the rig's group (so it shares the helper's
/// winedevice), and a handle to it. Each test first checks that verifier mode is
/// on: the clean case must give no finding, and a double free must give one.
fn device() -> (MutexGuard<'static, ()>, Device) {
    let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rig::DriverService::new(SERVICE, &image()).ensure_running().unwrap_or_else(|e| panic!("starting {SERVICE}: {e}"));
    let dev = Device::open(USER_PATH).unwrap_or_else(|e| panic!("opening {USER_PATH}: {e}"));
    (turn, dev)
}

/// Runs case `n` and returns the findings it added (waiting up to `wait` for the
/// first, for checks made after the request ends).
fn poke(dev: &Device, n: u32, out: &mut [u8], wait: Duration) -> Vec<String> {
    let before = findings().len();
    let _ = dev.ioctl_raw(ioctl(n), &[], out);
    let deadline = Instant::now() + wait;
    while findings().len() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    findings().split_off(before)
}

/// One finding with `rule`, `code` and, unless empty (parameter 1 is then an
/// address: the IRP, a routine), parameter 1 `p1`.
fn check_one(new: &[String], what: &str, rule: &str, code: &str, p1: &str) {
    assert_eq!(new.len(), 1, "{what}: expected exactly one finding ({rule}), got {new:#?}");
    let f = &new[0];
    assert_eq!(field(f, "rule"), rule, "{f}");
    assert_eq!(field(f, "code"), code, "{f}");
    if !p1.is_empty() {
        assert_eq!(field(f, "p1"), p1, "{f}");
    }
    assert_eq!(field(f, "driver"), DRIVER, "{f}");
}

fn expect_one(n: u32, rule: &str, code: &str, p1: &str) {
    let (_turn, dev) = device();
    let new = poke(&dev, n, &mut [0u8; 4], Duration::from_millis(500));
    check_one(&new, &format!("case {n}"), rule, code, p1);
}

/// Arms unload case `n`, stops the driver and returns the findings its unload
/// added; the next test starts it again.
fn unload_after(n: u32) -> Vec<String> {
    let (_turn, dev) = device();
    let before = findings().len();
    dev.ioctl_raw(ioctl(n), &[], &mut []).unwrap_or_else(|e| panic!("arming case {n}: {e}"));
    drop(dev);
    service::stop(SERVICE).unwrap_or_else(|e| panic!("stopping {SERVICE}: {e}"));
    findings().split_off(before)
}

#[test]
fn clean_dispatch_has_no_findings() {
    let (_turn, dev) = device();
    let mut out = [0u8; 2];
    let new = poke(&dev, CLEAN, &mut out, Duration::ZERO);
    assert!(new.is_empty(), "the clean case gave findings: {new:#?}");
    // Its DPC ran once, at DISPATCH_LEVEL, before KeFlushQueuedDpcs returned
    // (compat/wine-kapi runs DPCs; Wine 8 alone never does).
    assert_eq!(out, [2, 1], "the DPC's IRQL and runs");
}

#[test]
fn forward_and_wait_has_no_findings() {
    // Sent on to a second device, held back by a completion routine
    // (STATUS_MORE_PROCESSING_REQUIRED), completed again: all correct.
    let (_turn, dev) = device();
    let before = findings().len();
    dev.ioctl_raw(ioctl(FORWARD_AND_WAIT), &[], &mut []).expect("forward and wait");
    let new = findings().split_off(before);
    assert!(new.is_empty(), "forward-and-wait gave findings: {new:#?}");
}

#[test]
fn clean_unload_has_no_findings() {
    let new = unload_after(CLEAN_UNLOAD);
    assert!(new.is_empty(), "the clean unload gave findings: {new:#?}");
}

#[test]
fn irp_completed_twice() {
    // Parameter 1 is the IRP.
    expect_one(COMPLETE_TWICE, "irp-completed-twice", "0x44", "");
}

#[test]
fn irp_completed_with_its_cancel_routine_set() {
    expect_one(CANCEL_ROUTINE_SET, "irp-completed-cancel-routine-set", "0xC9", "0x7");
}

#[test]
fn irp_completed_with_status_pending() {
    expect_one(COMPLETE_PENDING, "irp-completed-pending", "0xC9", "0x6");
}

#[test]
fn pending_returned_without_marking() {
    expect_one(PENDING_NOT_MARKED, "irp-pending-not-marked", "0xC9", "0x23D");
}

#[test]
fn marked_pending_but_another_status_returned() {
    expect_one(MARKED_NOT_PENDING, "irp-marked-not-pending", "0xC9", "0x23E");
}

#[test]
fn returned_status_differs_from_the_completed_one() {
    expect_one(STATUS_MISMATCH, "irp-status-mismatch", "0xC9", "0x224");
}

#[test]
fn irp_neither_completed_nor_pended() {
    expect_one(NOT_COMPLETED, "irp-not-completed", "0xC9", "0x226");
}

#[test]
fn information_larger_than_the_output_buffer() {
    expect_one(INFORMATION_OVERRUN, "irp-information-overrun", "0xC9", "0x312");
}

#[test]
fn driver_frees_the_io_managers_irp() {
    expect_one(FREE_IRP, "irp-freed-by-driver", "0xC9", "0x2");
}

#[test]
fn pended_irp_without_cancel_routine_is_cancelled() {
    let (_turn, dev) = device();
    let before = findings().len();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| dev.ioctl_raw(ioctl(PEND_NO_CANCEL), &[], &mut []));
        // Let it pend, cancel it, and wait for the verifier's re-check (2 s).
        std::thread::sleep(Duration::from_millis(200));
        dev.cancel_all().expect("CancelIoEx");
        let deadline = Instant::now() + Duration::from_secs(5);
        while findings().len() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The driver completes it on request: the waiter ends either way.
        let other = Device::open(USER_PATH).expect("second handle");
        other.ioctl_raw(ioctl(RELEASE), &[], &mut []).expect("release");
        let _ = waiter.join();
    });
    let new = findings().split_off(before);
    check_one(&new, "pended, cancelled, no cancel routine", "irp-pended-not-cancellable", "0xC4", "0x135");
}

#[test]
fn irp_written_after_its_completion() {
    let (_turn, dev) = device();
    let before = findings().len();
    let _ = dev.ioctl_raw(ioctl(WRITE_AFTER_COMPLETE), &[], &mut []);
    // Seen when the IRP quarantine (4,096 IRPs) lets it go: push it through
    // with cheap requests the driver refuses.
    for _ in 0..4200 {
        let _ = dev.ioctl_raw(ioctl(999), &[], &mut []);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while findings().len() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let new = findings().split_off(before);
    check_one(&new, "IRP written after completion", "irp-written-after-completion", "0xD5", "");
}

#[test]
fn pool_freed_twice() {
    expect_one(DOUBLE_FREE, "pool-double-free", "0xC2", "0x7");
}

#[test]
fn pool_freed_with_another_tag() {
    expect_one(WRONG_TAG, "pool-wrong-tag", "0xC2", "0xA");
}

#[test]
fn device_deleted_twice() {
    expect_one(DELETE_TWICE, "device-deleted-twice", "0xC9", "0x240");
}

#[test]
fn invalid_handle_closed() {
    expect_one(CLOSE_INVALID, "handle-close-invalid", "0x93", "0x7FF0");
}

#[test]
fn pool_leaked_at_unload() {
    let new = unload_after(LEAK_POOL);
    check_one(&new, "pool left at unload", "pool-leak-at-unload", "0xC4", "0x62");
    assert_eq!(field(&new[0], "p4"), "0x3", "three blocks: {}", new[0]);
    assert!(new[0].contains("'Leak' 100 bytes"), "tag and size listed: {}", new[0]);
}

#[test]
fn device_left_at_unload() {
    let new = unload_after(LEAVE_DEVICE);
    check_one(&new, "device left at unload", "device-left-at-unload", "0xC9", "0x21E");
}

#[test]
fn symbolic_link_left_at_unload() {
    let new = unload_after(LEAVE_LINK);
    check_one(&new, "link left at unload", "symlink-left-at-unload", "0xC9", "0x21E");
    assert!(new[0].contains(r"\\DosDevices\\NtCommVfTestLeft"), "names the link: {}", new[0]);
}

#[test]
fn thread_alive_at_unload() {
    let new = unload_after(LEAVE_THREAD);
    check_one(&new, "thread alive at unload", "thread-alive-at-unload", "0xCE", "");
}

#[test]
fn timer_set_at_unload() {
    let new = unload_after(LEAVE_TIMER);
    check_one(&new, "timer set at unload", "timer-set-at-unload", "0xC7", "0x0");
}

#[test]
fn work_item_running_at_unload() {
    let new = unload_after(LEAVE_WORK_ITEM);
    check_one(&new, "work item at unload", "work-item-queued-at-unload", "0xCE", "");
}

#[test]
fn lookaside_list_left_at_unload() {
    let new = unload_after(LEAVE_LOOKASIDE);
    check_one(&new, "lookaside list at unload", "lookaside-left-at-unload", "0xCE", "");
}

#[test]
fn handle_left_open_at_unload() {
    // Windows has no bug check for it (code 0x0): see docs/VERIFIER.md.
    let new = unload_after(LEAVE_HANDLE);
    check_one(&new, "handle open at unload", "handle-left-at-unload", "0x0", "");
    assert!(new[0].contains("ZwCreateEvent"), "names the routine: {}", new[0]);
}

#[test]
fn dpcs_queued_or_running_at_unload() {
    // One DPC still running (it spins for about a second), one queued behind it:
    // both reported, then taken off the queue or waited for, so nothing runs in the
    // unmapped image.
    let new = unload_after(LEAVE_DPCS);
    assert_eq!(new.len(), 2, "expected two findings: {new:#?}");
    for f in &new {
        assert_eq!(field(f, "rule"), "dpc-queued-at-unload", "{f}");
        assert_eq!(field(f, "code"), "0xC7", "{f}");
        assert_eq!(field(f, "p1"), "0x2", "{f}");
    }
}
