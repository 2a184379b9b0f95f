//! The protocols of the example drivers in `drivers/examples/`, one module each,
//! shared by the driver and its clients (tools/ntcomm/tests/wine_examples.rs).
//!
//! - [`inverted_call`]: the inverted call: a client pends `WAIT` requests,
//!   another (or the same) client's `SIGNAL` completes the oldest one with a
//!   value. Cancelling a wait or closing its handle completes it cancelled.
//! - [`read_queue`]: read/write with a cancel-safe queue: a read pends until
//!   a write arrives and takes its bytes.
//! - [`lpc_call`]: the driver calls a user-mode LPC server on a client's
//!   behalf.
#![no_std]

pub mod inverted_call;
pub mod lpc_call;
pub mod read_queue;
