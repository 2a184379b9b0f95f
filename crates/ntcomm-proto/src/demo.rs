//! The protocol of the reference driver `ntcomm-demo`.
//!
//! Names, limits, IOCTLs and message layouts, declared once for the driver,
//! the `ntcomm` CLI and the tests.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ctl::{Access, DeviceType, Method};
use crate::ioctl::{Ioctl, Len};

/// Kernel name of the device object.
pub const DEVICE_NAME: &str = r"\Device\NtComm";
/// Symbolic link created for user mode.
pub const DOS_NAME: &str = r"\DosDevices\NtComm";
/// The path a client opens.
pub const USER_PATH: &str = r"\\.\NtComm";
/// Service name used by `ntcomm driver install`.
pub const SERVICE_NAME: &str = "NtCommDemo";
/// File name of the driver image.
pub const DRIVER_FILE: &str = "ntcomm_demo.sys";
/// Pool tag of every allocation the demo driver makes ("NtCm" in a pool dump).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"NtCm");

/// Largest echo payload, in every method.
pub const MAX_ECHO: usize = 64 * 1024;
/// Largest message accepted by `WriteFile`.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Messages the read/write queue holds before writes are refused.
pub const QUEUE_CAPACITY: usize = 256;
/// Largest inverted-call event payload. A waiter supplies a buffer this big,
/// so a posted event always fits the waiter it completes.
pub const MAX_EVENT: usize = 4096;
/// Most inverted-call waiters pended at once; more are refused.
pub const MAX_WAITERS: usize = 1024;
/// Longest delay `DELAYED_COMPLETE` accepts.
pub const MAX_DELAY_MS: u32 = 60_000;

/// The pipe a user-mode server creates (`\\.\pipe\ntcomm-demo-log`) and the
/// driver writes its messages to.
pub const PIPE_NAME: &str = "ntcomm-demo-log";
/// Largest message `PIPE_SEND` accepts.
pub const MAX_PIPE_MESSAGE: usize = 4096;
/// Messages the driver holds for the pipe while no server listens; further
/// sends are refused with `STATUS_DEVICE_BUSY`.
pub const PIPE_QUEUE_CAPACITY: usize = 1024;

/// The device type of the demo's IOCTLs (customer range).
pub const DEVICE_TYPE: DeviceType = DeviceType(0x8e7c);

/// Echo: the output is the input, through `METHOD_BUFFERED`. The output
/// buffer must be at least as long as the input.
pub const ECHO_BUFFERED: Ioctl<[u8], [u8]> =
    Ioctl::new("ECHO_BUFFERED", DEVICE_TYPE, 0, Method::Buffered, Access::READ, Len::up_to(MAX_ECHO), Len::up_to(MAX_ECHO));
/// Echo through `METHOD_IN_DIRECT`: the input arrives in the system buffer and
/// the reply is written through the MDL that describes the second buffer.
pub const ECHO_IN_DIRECT: Ioctl<[u8], [u8]> =
    Ioctl::new("ECHO_IN_DIRECT", DEVICE_TYPE, 1, Method::InDirect, Access::READ, Len::up_to(MAX_ECHO), Len::up_to(MAX_ECHO));
/// Echo through `METHOD_OUT_DIRECT`.
pub const ECHO_OUT_DIRECT: Ioctl<[u8], [u8]> =
    Ioctl::new("ECHO_OUT_DIRECT", DEVICE_TYPE, 2, Method::OutDirect, Access::READ, Len::up_to(MAX_ECHO), Len::up_to(MAX_ECHO));
/// Echo through `METHOD_NEITHER` (the driver opts in and captures once).
pub const ECHO_NEITHER: Ioctl<[u8], [u8]> =
    Ioctl::new("ECHO_NEITHER", DEVICE_TYPE, 3, Method::Neither, Access::READ, Len::up_to(MAX_ECHO), Len::up_to(MAX_ECHO));
/// Counters of the driver.
pub const GET_STATS: Ioctl<(), Stats> =
    Ioctl::new("GET_STATS", DEVICE_TYPE, 4, Method::Buffered, Access::ANY, Len::NONE, Len::of::<Stats>());
/// Inverted call, user side: pends until an event is posted, then returns its
/// payload. The output buffer must hold [`MAX_EVENT`] bytes.
pub const WAIT_EVENT: Ioctl<(), [u8]> =
    Ioctl::new("WAIT_EVENT", DEVICE_TYPE, 5, Method::Buffered, Access::READ, Len::NONE, Len::range(MAX_EVENT, MAX_EVENT));
/// Inverted call, producer side: completes the oldest waiter with the input.
/// Fails with `STATUS_NOT_FOUND` when nobody waits: the event is never dropped
/// silently.
pub const POST_EVENT: Ioctl<[u8], ()> =
    Ioctl::new("POST_EVENT", DEVICE_TYPE, 6, Method::Buffered, Access::WRITE, Len::up_to(MAX_EVENT), Len::NONE);
/// Pends, and the driver's worker thread completes it after the delay.
pub const DELAYED_COMPLETE: Ioctl<Delay, ()> =
    Ioctl::new("DELAYED_COMPLETE", DEVICE_TYPE, 7, Method::Buffered, Access::READ, Len::of::<Delay>(), Len::NONE);

/// Queues one message for the driver's named-pipe writer. It is delivered
/// when a server listens on [`PIPE_NAME`]; the driver connects (and
/// reconnects) by itself from a system thread. Refused with
/// `STATUS_DEVICE_BUSY` when [`PIPE_QUEUE_CAPACITY`] messages wait.
pub const PIPE_SEND: Ioctl<[u8], ()> =
    Ioctl::new("PIPE_SEND", DEVICE_TYPE, 8, Method::Buffered, Access::WRITE, Len::up_to(MAX_PIPE_MESSAGE), Len::NONE);

/// Every IOCTL the demo driver serves.
pub const ALL_IOCTLS: [Ioctl<[u8], [u8]>; 9] = [
    ECHO_BUFFERED.erase(),
    ECHO_IN_DIRECT.erase(),
    ECHO_OUT_DIRECT.erase(),
    ECHO_NEITHER.erase(),
    GET_STATS.erase(),
    WAIT_EVENT.erase(),
    POST_EVENT.erase(),
    DELAYED_COMPLETE.erase(),
    PIPE_SEND.erase(),
];

/// Input of [`DELAYED_COMPLETE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Delay {
    /// Milliseconds to wait before completing, at most [`MAX_DELAY_MS`].
    pub millis: u32,
    /// Returned in `IoStatus.Information` on completion.
    pub token: u32,
}

/// Counters of the demo driver, as returned by [`GET_STATS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Stats {
    /// IRPs currently pended by the driver (reads, waiters, delayed).
    pub irps_in_flight: u64,
    /// IRPs completed since load (any status).
    pub irps_completed: u64,
    /// Pended IRPs completed with `STATUS_CANCELLED` (cancel, close, unload).
    pub irps_cancelled: u64,
    /// Messages waiting in the read/write queue.
    pub messages_queued: u64,
    /// Bytes of those messages.
    pub message_bytes_queued: u64,
    /// Writes refused because the queue was full.
    pub writes_refused: u64,
    /// Inverted-call events delivered to a waiter.
    pub events_delivered: u64,
    /// Bytes currently allocated from pool by the driver.
    pub pool_bytes_outstanding: u64,
    /// Pool allocations currently live.
    pub pool_allocations_outstanding: u64,
    /// Handles currently open on the device.
    pub open_handles: u64,
    /// Pipe messages written to a server.
    pub pipe_messages_sent: u64,
    /// Pipe messages waiting for a server.
    pub pipe_messages_queued: u64,
    /// `PIPE_SEND`s refused because the pipe queue was full.
    pub pipe_sends_refused: u64,
    /// Successful connections to the pipe server (1 + reconnections).
    pub pipe_connects: u64,
    /// Pipe writes that failed because the server went away (the message
    /// stays queued and is sent after reconnecting).
    pub pipe_write_failures: u64,
}
