//! `ntcomm-rig driver ...`: `ntcomm driver ...` (installed in the prefix by
//! setup) inside the session, so the drivers it starts stay loaded and
//! every one of them gets ntcomm's Wine layers in its group.

use std::ffi::OsString;

use crate::prefix::Prefix;
use crate::session::{exit_code, Session};

/// Runs `ntcomm driver <args>` in `prefix`'s session (started if none runs).
///
/// # Errors
/// When the prefix is not ready or Wine cannot be run.
pub fn driver(prefix: &Prefix, args: &[OsString]) -> Result<i32, String> {
    prefix.check_ready()?;
    Session::new(prefix).ensure()?;
    exit_code(prefix.command("wine").args(["ntcomm", "driver"]).args(args))
}
