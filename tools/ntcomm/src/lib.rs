//! The `ntcomm` CLI as a library: the driver rig shared by the CLI and the
//! Wine test suites, the demo, the benchmarks and the fault suite: one
//! module per channel of the demo driver ([`channel`]), engines that
//! iterate over them ([`demo`], [`bench`], [`faults`]), and the helpers they
//! share.
#![warn(missing_docs)]
// A user-mode CLI and test rig, not kernel code: a panic here is a reported
// failure, not a bug check, so the workspace's no-panic lints are relaxed
// (Cargo cannot override an inherited [workspace.lints] table per package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod chart;
#[cfg(windows)]
pub mod rig;

#[cfg(windows)]
pub mod async_rounds;
#[cfg(windows)]
pub mod baseline;
#[cfg(windows)]
pub mod bench;
#[cfg(windows)]
pub mod channel;
#[cfg(windows)]
pub mod demo;
#[cfg(windows)]
pub mod driver_state;
#[cfg(windows)]
pub mod fault_child;
#[cfg(windows)]
pub mod faults;
#[cfg(windows)]
pub mod fmt;
#[cfg(windows)]
mod fuzz;
#[cfg(windows)]
pub mod lpc_server;
#[cfg(windows)]
pub mod machine;
#[cfg(windows)]
pub mod payload;
#[cfg(windows)]
pub mod peer;
#[cfg(windows)]
pub mod rng;
#[cfg(windows)]
pub mod verifier_cost;
