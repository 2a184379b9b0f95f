//! Registering this process as the demo driver's trusted peer server
//! (`SERVER_REGISTER`): the driver writes only to a pipe, and connects only
//! to an LPC port, served by a registered process. Call it in the process
//! that creates the pipe or the port, before or after creating it. The
//! registration lasts until this process exits.

use ntcomm_demo_proto as demo;
use ntcomm_um::{Device, Result};

/// Registers the calling process with the driver at `\\.\NtComm`.
pub fn register() -> Result<()> {
    let dev = Device::open(demo::USER_PATH)?;
    dev.ioctl(&demo::SERVER_REGISTER, &(), &mut ())?;
    Ok(())
}

/// [`register`], reporting a failure on stderr instead (for servers that
/// may start before the driver: it then refuses them until they restart).
pub fn register_or_warn(what: &str) {
    if let Err(e) = register() {
        eprintln!("{what}: not registered with the driver as its server ({e}); the driver will refuse this server");
    }
}
