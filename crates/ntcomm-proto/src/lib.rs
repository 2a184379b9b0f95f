//! The contract between an ntcomm driver and its user-mode clients.
//!
//! Everything both sides must agree on is declared here once: control codes
//! (`CTL_CODE`), typed IOCTL descriptors with their size rules, status codes,
//! and the wire layouts of the reference driver's messages. The crate is
//! `no_std`, allocation-free and host-testable: the kernel library and the
//! user-mode library both depend on it, so a mismatch is a compile error
//! rather than a corrupted buffer.
#![no_std]
#![deny(unsafe_code)]
// This crate runs inside drivers too: no reachable panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod budget;
pub mod ctl;
pub mod demo;
pub mod ioctl;
pub mod lpc;
pub mod message;
pub mod ring;
pub mod sddl;
pub mod status;

pub use ctl::{Access, ControlCode, DeviceType, Method};
pub use ioctl::{Ioctl, Len, LenError};
pub use message::Message;
pub use status::NtStatus;
