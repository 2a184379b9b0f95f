//! The read-queue example's protocol (`drivers/examples/read-queue`): no IOCTL,
//! only `ReadFile` and `WriteFile`.

/// The largest write the driver takes; a read gets at most this much.
pub const MAX_MESSAGE: usize = 256;
/// Reads pended at once, at most.
pub const MAX_READERS: usize = 64;

/// The device object.
pub const DEVICE_NAME: &str = r"\Device\NtCommExampleQueue";
/// Its symbolic link.
pub const DOS_NAME: &str = r"\DosDevices\NtCommExampleQueue";
/// The path a client opens.
pub const USER_PATH: &str = r"\\.\NtCommExampleQueue";
