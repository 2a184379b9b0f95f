//! The ntcomm rig: Windows drivers and their clients under Wine, for any
//! driver (Rust or C), from any directory.
//!
//! - [`setup`]: a Wine prefix anywhere with ntcomm's Wine layers (Filter
//!   Manager ports, LPC, the IRP quarantine, IRQL tracking) and `ntcomm.exe`.
//! - [`session`]: a persistent wineserver for a test session, so drivers
//!   stay loaded between programs, with a log of the driver hosts' output.
//! - [`driver`]: `ntcomm driver install|start|stop|...` for any driver by
//!   name, image, group and minifilter altitude.
//! - [`run`]: the cargo target runner; the run's `DbgPrint` lines go to
//!   stderr and a driver-host crash fails it, naming module and offset.
//! - [`new`]: a project to start from (protocol, driver, client, tests).
//! - [`test`]: a project's tests under Wine in one command.
//! - [`host_log`]: reading that log.
//! - [`findings`]: the verifier's findings (docs/VERIFIER.md in ntcomm's
//!   sources): read, matched against an allow list, printed; a run with one fails.

pub mod driver;
pub mod findings;
pub mod host_log;
pub mod new;
pub mod prefix;
pub mod run;
pub mod session;
pub mod setup;
pub mod test;
