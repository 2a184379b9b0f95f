//! The contract between an ntcomm driver and its user-mode clients.
//!
//! Everything both sides must agree on is declared here once: control codes
//! (`CTL_CODE`), typed IOCTL descriptors with their size rules, status codes,
//! the shared-memory ring and the ring channel's requests. The crate is
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
pub mod ioctl;
pub mod lpc;
pub mod message;
pub mod ring;
pub mod ring_channel;
pub mod sddl;
pub mod status;

pub use ctl::{Access, ControlCode, DeviceType, Method};
pub use ioctl::{Ioctl, Len, LenError};
pub use message::Message;
pub use status::NtStatus;

/// The zerocopy this crate is built with, for protocol crates: derive and
/// read message layouts through it instead of depending on zerocopy
/// themselves, so a driver, its client and ntcomm never disagree on its
/// version. The derives name their crate `::zerocopy` unless told
/// otherwise:
///
/// ```
/// use ntcomm_proto::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
/// #[zerocopy(crate = "ntcomm_proto::zerocopy")]
/// #[repr(C)]
/// pub struct Request {
///     pub id: u32,
///     pub len: u32,
/// }
/// # let r = Request::read_from_bytes(&[1, 0, 0, 0, 2, 0, 0, 0][..]).map_err(|_| ()).unwrap_or(Request { id: 0, len: 0 });
/// # assert_eq!((r.id, r.len), (1, 2));
/// ```
pub use zerocopy;
/// zerocopy's traits, each with its derive of the same name.
pub use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, TryFromBytes, Unaligned};
