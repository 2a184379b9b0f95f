//! The `ntcomm` CLI as a library: the driver rig shared by the CLI and the
//! Wine test suites, the demo and the benchmarks.
#![warn(missing_docs)]

pub mod chart;
#[cfg(windows)]
pub mod rig;

#[cfg(windows)]
pub mod baseline;
#[cfg(windows)]
pub mod bench;
#[cfg(windows)]
pub mod demo;
#[cfg(windows)]
pub mod faults;
#[cfg(windows)]
pub mod lpc_server;
#[cfg(windows)]
pub mod peer;
