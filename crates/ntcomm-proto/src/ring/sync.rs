//! The atomics the ring uses, swappable for `loom`'s under `--cfg loom`.
//!
//! Every atomic operation of the ring protocol goes through these names, so the
//! loom model check (`tests/loom_ring.rs`) explores exactly the code that ships.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;
