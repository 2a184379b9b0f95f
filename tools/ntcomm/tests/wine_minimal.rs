//! The minimal driver (drivers/ntcomm-minimal: ntcomm-km without features)
//! loaded through the rig: one typed IOCTL and one write/read, then stopped
//! and deleted. Its service is its own (`NtCommMinimal`), in the rig's load
//! order group so it shares the Wine helper's winedevice.
//!
//! Needs `NTCOMM_MINIMAL_DRIVER` (the built ntcomm_minimal.sys; `cargo xtask
//! test` sets it) and the helper `ntcomm_lpc.sys` in the prefix (`cargo
//! xtask setup`).
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test reports by panicking

use std::path::PathBuf;

use ntcomm::rig;
use ntcomm_minimal_proto::{self as proto, Add, Total};
use ntcomm_um::service::{self, ServiceState};
use ntcomm_um::Device;

const SERVICE: &str = "NtCommMinimal";

#[test]
fn minimal_driver_ioctl_and_read_write() {
    let image = std::env::var_os("NTCOMM_MINIMAL_DRIVER")
        .map(PathBuf::from)
        .expect("NTCOMM_MINIMAL_DRIVER is not set: run through `cargo xtask test`");
    rig::DriverService::new(SERVICE, &image).ensure_running().unwrap_or_else(|e| panic!("starting {SERVICE}: {e}"));

    {
        let dev = Device::open(proto::USER_PATH).unwrap_or_else(|e| panic!("opening {}: {e}", proto::USER_PATH));
        let mut total = Total::default();
        let n = dev.ioctl(&proto::ADD, &Add { value: 40 }, &mut total).unwrap();
        assert_eq!(n, size_of::<Total>());
        dev.ioctl(&proto::ADD, &Add { value: 2 }, &mut total).unwrap();
        assert_eq!(total, Total { total: 42, calls: 2 });

        let message = b"hello from user mode";
        assert_eq!(dev.write(message).unwrap(), message.len());
        let mut buf = [0u8; proto::MAX_MESSAGE];
        let n = dev.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], message);
        // The mailbox is empty once read.
        assert_eq!(dev.read(&mut buf).unwrap(), 0);
    }

    service::stop(SERVICE).unwrap();
    assert_eq!(service::status(SERVICE).unwrap(), ServiceState::Stopped);
    service::uninstall(SERVICE).unwrap();
    assert_eq!(service::status(SERVICE).unwrap(), ServiceState::NotInstalled);
}
