//! The protocol of the reference driver `ntcomm-demo`.
//!
//! Names, limits, IOCTLs and message layouts, declared once for the driver,
//! the `ntcomm` CLI and the tests. The shared-memory channel is the toolkit's
//! (`ntcomm_proto::ring_channel`, re-exported here); the demo adds its modes,
//! its record source and its record format.
#![no_std]
#![deny(unsafe_code)]
// This crate runs inside the driver too: no reachable panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]
#![warn(missing_docs)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use ntcomm_proto::ctl::{Access, DeviceType, Method};
use ntcomm_proto::ioctl::{Ioctl, Len};
use ntcomm_proto::message::Message;
pub use ntcomm_proto::ring_channel::{
    RingInfo, RingIoctls, RingOpen, RingStatus, RING_STATE_FAILED, RING_STATE_NONE, RING_STATE_OPENING, RING_STATE_RUNNING,
};

/// Kernel name of the device object.
pub const DEVICE_NAME: &str = r"\Device\NtComm";
/// Symbolic link created for user mode.
pub const DOS_NAME: &str = r"\DosDevices\NtComm";
/// The path a client opens.
pub const USER_PATH: &str = r"\\.\NtComm";
/// Service name used by `ntcomm driver install`.
pub const SERVICE_NAME: &str = "NtCommDemo";
/// Altitude of the demo's minifilter instance (`ntcomm driver install
/// --minifilter` writes it): a test value in the "FSFilter Activity
/// Monitor" range (360000-389999); a shipped minifilter gets its altitude
/// from Microsoft.
pub const MINIFILTER_ALTITUDE: &str = "385100";
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
/// Compare through `METHOD_IN_DIRECT`: the input arrives in the system buffer
/// and the second buffer through an MDL locked for read access only, which
/// the driver reads and never writes. It completes with the length of the
/// longest common prefix of the two (`STATUS_BUFFER_TOO_SMALL` if the second
/// buffer is shorter than the input). See [`second_buffer`].
pub const COMPARE_IN_DIRECT: Ioctl<[u8], [u8]> =
    Ioctl::new("COMPARE_IN_DIRECT", DEVICE_TYPE, 1, Method::InDirect, Access::READ, Len::up_to(MAX_ECHO), Len::up_to(MAX_ECHO));
/// Prepares the second buffer of one of the four byte-moving IOCTLs
/// ([`ECHO_BUFFERED`], [`COMPARE_IN_DIRECT`], [`ECHO_OUT_DIRECT`],
/// [`ECHO_NEITHER`]) so that one check serves all four: after a successful
/// call, the byte count is `payload.len()` and `buf` starts with `payload`.
/// An echo's output is written by the driver, so it is poisoned with
/// `poison`; the `METHOD_IN_DIRECT` buffer is read by the driver, so it gets
/// the payload (and must come back unchanged).
pub fn second_buffer(ioctl: &Ioctl<[u8], [u8]>, payload: &[u8], buf: &mut [u8], poison: u8) {
    buf.fill(poison);
    if ioctl.code.method() == Method::InDirect {
        let n = payload.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), payload.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}

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
/// Pends, and the driver's worker thread completes it after the delay (a
/// work item, for a zero delay), replying with the request's token.
pub const DELAYED_COMPLETE: Ioctl<Delay, u32> =
    Ioctl::new("DELAYED_COMPLETE", DEVICE_TYPE, 7, Method::Buffered, Access::READ, Len::of::<Delay>(), Len::of::<u32>());

/// Queues one message for the driver's named-pipe writer. It is delivered
/// when a server listens on [`PIPE_NAME`]; the driver connects (and
/// reconnects) by itself from a system thread. Refused with
/// `STATUS_DEVICE_BUSY` when [`PIPE_QUEUE_CAPACITY`] messages wait.
pub const PIPE_SEND: Ioctl<[u8], ()> =
    Ioctl::new("PIPE_SEND", DEVICE_TYPE, 8, Method::Buffered, Access::WRITE, Len::up_to(MAX_PIPE_MESSAGE), Len::NONE);

/// The demo's ring channel IOCTLs (the toolkit's `ring_channel`), at
/// function offsets 9 (open) and 11 (status).
pub const RINGS: RingIoctls = RingIoctls::new(DEVICE_TYPE, 9, 11);
/// Opens this handle's shared-memory channel ([`RingIoctls::open`]); its
/// `mode` is [`RING_MODE_SINK`] or [`RING_MODE_ECHO`].
pub const RING_OPEN: Ioctl<RingOpen, RingInfo> = RINGS.open;
/// Starts (or replaces) the driver's synthetic record source on this
/// handle's channel: `count` records of `record_len` bytes at `rate` per
/// second (0: as fast as the ring takes them).
pub const RING_SOURCE: Ioctl<RingSource, ()> =
    Ioctl::new("RING_SOURCE", DEVICE_TYPE, 10, Method::Buffered, Access::WRITE, Len::of::<RingSource>(), Len::NONE);
/// Counters and state of this handle's channel ([`RingIoctls::status`]);
/// `backlog` is what the source still has to produce, `bad_records` the
/// records that failed validation (sequence or checksum).
pub const RING_STATUS: Ioctl<(), RingStatus> = RINGS.status;

/// The Filter Manager communication port the driver serves.
pub const PORT_NAME: &str = r"\NtCommPort";
/// The connection context a client must present; others are refused with
/// `STATUS_ACCESS_DENIED`.
pub const PORT_CONTEXT: &[u8] = b"ntcomm-demo/1";
/// Clients the port accepts at once.
pub const PORT_MAX_CONNECTIONS: u32 = 4;
/// Largest message a client may send to the port (its reply echoes it).
pub const MAX_PORT_MESSAGE: usize = 16 * 1024;
/// Length of the driver's questions' replies: sequence number and verdict.
pub const PORT_REPLY_LEN: usize = 9;
/// The driver's question to a port client (a demo record of
/// `RECORD_MIN..=MAX_PORT_MESSAGE` bytes) and the client's [`PortVerdict`].
pub const PORT_QUESTION: Message<[u8], PortVerdict> =
    Message::new("PORT_QUESTION", Len::range(RECORD_MIN, MAX_PORT_MESSAGE), Len::of::<PortVerdict>());
/// The same question sent without waiting for a reply.
pub const PORT_NOTICE: Message<[u8], ()> = Message::new("PORT_NOTICE", Len::range(RECORD_MIN, MAX_PORT_MESSAGE), Len::NONE);

/// A port client's reply to a [`PORT_QUESTION`] ([`PORT_REPLY_LEN`] bytes,
/// unaligned: the layout a C client writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PortVerdict {
    /// The question's sequence number (little-endian).
    pub seq: zerocopy::little_endian::U64,
    /// 1 allow, 0 deny.
    pub allow: u8,
}

impl PortVerdict {
    /// The demo service's verdict on question `seq`: allow unless a
    /// multiple of 3.
    pub fn of(seq: u64) -> Self {
        PortVerdict { seq: seq.into(), allow: u8::from(!seq.is_multiple_of(3)) }
    }
}
const _: () = assert!(core::mem::size_of::<PortVerdict>() == PORT_REPLY_LEN);

/// Asks the driver to send questions to the port's clients (round robin)
/// from several threads with `FltSendMessage`; completes when all were
/// asked, with the tally.
pub const PORT_ASK: Ioctl<PortAsk, PortTally> =
    Ioctl::new("PORT_ASK", DEVICE_TYPE, 12, Method::Buffered, Access::WRITE, Len::of::<PortAsk>(), Len::of::<PortTally>());
/// Has the driver copy from a user address through its fault-tolerant copy
/// routine (structured exception handling) and report the outcome.
pub const USER_COPY_PROBE: Ioctl<u64, u32> =
    Ioctl::new("USER_COPY_PROBE", DEVICE_TYPE, 13, Method::Buffered, Access::READ, Len::of::<u64>(), Len::of::<u32>());

/// The LPC port a user-mode server creates (`ntcomm lpc-server`) and the
/// driver connects to.
pub const LPC_PORT_NAME: &str = r"\RPC Control\NtCommDemo";
/// Longest port name [`lpc_port_name`] writes, in UTF-16 units.
pub const LPC_PORT_NAME_MAX: usize = 48;

/// The name of demo LPC server `instance` (see [`LpcConnect::instance`])
/// into `out`; returns its length.
pub fn lpc_port_name(instance: u32, out: &mut [u8; LPC_PORT_NAME_MAX]) -> usize {
    let mut digits = [0u8; 11];
    let mut d = digits.len();
    if instance != 0 {
        let mut v = instance;
        for slot in digits.iter_mut().rev() {
            if v == 0 {
                break;
            }
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
            d -= 1;
        }
        d -= 1;
        if let Some(dash) = digits.get_mut(d) {
            *dash = b'-';
        }
    }
    let suffix = digits.get(d..).unwrap_or(&[]);
    let mut n = 0;
    for (o, b) in out.iter_mut().zip(LPC_PORT_NAME.as_bytes().iter().chain(suffix)) {
        *o = *b;
        n += 1;
    }
    n
}

/// The connection information of a demo client; the demo server refuses
/// any other.
pub const LPC_CONNECT_INFO: &[u8] = b"ntcomm-demo/lpc/1";
/// The connection information the demo server answers with. LPC carries
/// connection information both ways in one buffer of the length the client
/// sent, so an answer is cut to that length: this one is shorter than
/// [`LPC_CONNECT_INFO`].
pub const LPC_SERVER_INFO: &[u8] = b"ntcomm-lpc-srv/1";
/// Largest section view a connection asks for.
pub const LPC_MAX_VIEW: usize = 4 << 20;
/// Most worker threads of one `LPC_ASK`.
pub const LPC_MAX_WORKERS: u32 = 16;

/// The driver connects to an LPC server (replacing its current connection)
/// from a system thread; pends until the server accepted or refused (the
/// caller may cancel it). Fails with the connect status:
/// `STATUS_OBJECT_NAME_NOT_FOUND` (no server), `STATUS_PORT_CONNECTION_REFUSED`,
/// `STATUS_SERVER_SID_MISMATCH` (the port's creator is not the user of the
/// newest [`SERVER_REGISTER`]ed process), `STATUS_DEVICE_NOT_READY` (no
/// server registered).
pub const LPC_CONNECT: Ioctl<LpcConnect, LpcConnected> =
    Ioctl::new("LPC_CONNECT", DEVICE_TYPE, 14, Method::Buffered, Access::WRITE, Len::of::<LpcConnect>(), Len::of::<LpcConnected>());
/// The driver calls the connected server from worker threads and completes
/// with the tally; cancellable, and bounded by its timeout (both close the
/// connection, so the workers end).
pub const LPC_ASK: Ioctl<LpcAsk, LpcTally> =
    Ioctl::new("LPC_ASK", DEVICE_TYPE, 15, Method::Buffered, Access::WRITE, Len::of::<LpcAsk>(), Len::of::<LpcTally>());
/// The driver closes its connection (the server sees the port closed).
pub const LPC_DISCONNECT: Ioctl<(), ()> =
    Ioctl::new("LPC_DISCONNECT", DEVICE_TYPE, 16, Method::Buffered, Access::WRITE, Len::NONE, Len::NONE);

/// Registers the calling process as the demo's trusted peer server: the
/// process whose pipe (`PIPE_NAME`) the driver writes to and whose LPC
/// ports it connects to. The driver records the process (its id, a handle
/// that keeps the id from being reused, and its token's user SID) and
/// refuses a pipe or an LPC port served by any other process. The device
/// admits only SYSTEM and Administrators, so only they can register. A
/// registration lasts until the process exits; at most
/// [`MAX_REGISTERED_SERVERS`] live processes are registered at once
/// (`STATUS_INSUFFICIENT_RESOURCES` beyond). The newest registration's SID
/// is the `RequiredServerSid` of LPC connects.
pub const SERVER_REGISTER: Ioctl<(), ()> =
    Ioctl::new("SERVER_REGISTER", DEVICE_TYPE, 32, Method::Buffered, Access::WRITE, Len::NONE, Len::NONE);
/// Most live processes registered with [`SERVER_REGISTER`] at once.
pub const MAX_REGISTERED_SERVERS: usize = 8;

/// Input of [`LPC_CONNECT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcConnect {
    /// Bytes of `info` to send (at most 128).
    pub info_len: u32,
    /// Size of a section view to share with the server (0: none; at most
    /// [`LPC_MAX_VIEW`]).
    pub view_size: u32,
    /// Which server: 0 for [`LPC_PORT_NAME`], n for `LPC_PORT_NAME-n`
    /// (tests run several servers side by side).
    pub instance: u32,
    /// Zero.
    pub reserved: u32,
    /// Connection information.
    pub info: [u8; 128],
}

impl LpcConnect {
    /// A request to connect with `info` (cut to 128 bytes).
    pub fn new(info: &[u8], view_size: u32) -> Self {
        let mut c = Self { info_len: 0, view_size, instance: 0, reserved: 0, info: [0; 128] };
        let n = info.len().min(128);
        if let (Some(d), Some(s)) = (c.info.get_mut(..n), info.get(..n)) {
            d.copy_from_slice(s);
        }
        c.info_len = n as u32;
        c
    }
}

/// Output of [`LPC_CONNECT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcConnected {
    /// The port's maximum message length, header included.
    pub max_message: u32,
    /// Bytes of `info` the server answered.
    pub info_len: u32,
    /// The view's size (0: none).
    pub view_size: u64,
    /// The server's connection information.
    pub info: [u8; 128],
}

/// [`LpcAsk::kind`]: requests that wait for a reply.
pub const LPC_KIND_REQUEST: u32 = 0;
/// [`LpcAsk::kind`]: datagrams (no reply).
pub const LPC_KIND_DATAGRAM: u32 = 1;
/// [`LpcAsk::kind`]: requests whose payload (`view_len` bytes) travels in
/// the connection's view; the message carries an [`LpcViewRequest`].
pub const LPC_KIND_VIEW: u32 = 2;

/// Input of [`LPC_ASK`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcAsk {
    /// [`LPC_KIND_REQUEST`], [`LPC_KIND_DATAGRAM`] or [`LPC_KIND_VIEW`].
    pub kind: u32,
    /// Worker threads (1..=[`LPC_MAX_WORKERS`]), each with its own requests.
    pub workers: u32,
    /// Requests per worker.
    pub count: u32,
    /// Body bytes of each message (0..=472; more is refused by the port,
    /// which the tally reports).
    pub body_len: u32,
    /// Milliseconds before the whole ask is abandoned (0: none).
    pub timeout_ms: u32,
    /// [`LPC_KIND_VIEW`]: payload bytes per request, at most the view.
    pub view_len: u32,
}

/// Output of [`LPC_ASK`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcTally {
    /// Messages sent.
    pub sent: u64,
    /// Replies that matched their request ([`lpc_answer`]).
    pub replied: u64,
    /// Replies that did not.
    pub mismatched: u64,
    /// Calls that failed.
    pub failed: u64,
    /// The first failure's NTSTATUS (0: none).
    pub first_error: i32,
    /// Zero.
    pub reserved: u32,
    /// Round trips measured in the driver, as [`PortTally::rtt_hist`].
    pub rtt_hist: [u64; RTT_BUCKETS],
}

impl Default for LpcTally {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

/// The message of an [`LPC_KIND_VIEW`] request: where the payload is in the
/// view and its checksum. The reply is an [`LpcViewReply`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcViewRequest {
    /// Offset in the view.
    pub offset: u64,
    /// Payload bytes.
    pub len: u64,
    /// [`checksum`] of the payload as the driver wrote it.
    pub checksum: u32,
    /// Zero.
    pub reserved: u32,
}

/// An [`LPC_KIND_VIEW`] request and its reply.
pub const LPC_VIEW: Message<LpcViewRequest, LpcViewReply> = Message::fixed("LPC_VIEW");
const _: () = assert!(LPC_VIEW.fits_lpc());

/// The reply to an [`LpcViewRequest`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct LpcViewReply {
    /// [`checksum`] of the payload as the server read it.
    pub checksum: u32,
    /// 1 if it equals the request's.
    pub matched: u32,
}

/// Fills an LPC request body for request `seq`: a demo record when long
/// enough, else bytes derived from `seq`; either way distinct per `seq`.
pub fn lpc_fill_request(seq: u64, body: &mut [u8]) {
    if !fill_record(seq, body) {
        for (i, b) in body.iter_mut().enumerate() {
            *b = (seq as u8).wrapping_add(i as u8).wrapping_mul(31);
        }
    }
}

/// The demo server's answer to a request body: the bytes reversed, each
/// XOR 0x5A, written to `out`; returns its length, `None` if `out` is
/// shorter.
pub fn lpc_answer(request: &[u8], out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..request.len())?;
    for (o, r) in out.iter_mut().zip(request.iter().rev()) {
        *o = r ^ 0x5A;
    }
    Some(request.len())
}

/// [`USER_COPY_PROBE`]: the copy worked.
pub const PROBE_OK: u32 = 0;
/// [`USER_COPY_PROBE`]: refused, not a user-mode address range.
pub const PROBE_NOT_USER: u32 = 1;
/// [`USER_COPY_PROBE`]: the access faulted and was recovered.
pub const PROBE_FAULT: u32 = 2;

/// Input of [`PORT_ASK`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PortAsk {
    /// Questions to send in all.
    pub questions: u32,
    /// Sending threads (1..=16).
    pub threads: u32,
    /// Timeout of each send in milliseconds; 0 waits forever.
    pub timeout_ms: u32,
    /// 1: wait for a reply ([`PORT_REPLY_LEN`] bytes: the question's
    /// sequence number and a verdict byte, 1 allow, 0 deny); 0: no reply.
    pub want_reply: u32,
    /// Bytes of each question (`RECORD_MIN`..=`MAX_PORT_MESSAGE`): a demo
    /// record whose sequence number is the question's.
    pub question_len: u32,
    /// Zero.
    pub reserved: u32,
}

/// Output of [`PORT_ASK`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PortTally {
    /// Questions handed to a client.
    pub sent: u64,
    /// Replies received (with `want_reply`).
    pub replied: u64,
    /// Replies with verdict allow.
    pub allowed: u64,
    /// Replies with verdict deny.
    pub denied: u64,
    /// Replies that did not echo the question's sequence number.
    pub bad_replies: u64,
    /// Sends that timed out.
    pub timeouts: u64,
    /// Sends that failed because the client went away (or none was
    /// connected).
    pub disconnected: u64,
    /// Sends that failed otherwise.
    pub failed: u64,
    /// Round trips (send to reply, measured in the driver) of the replied
    /// questions by [`rtt_bucket`]: 4 buckets per power of two of
    /// microseconds, so percentiles read from it are within 25 %.
    pub rtt_hist: [u64; RTT_BUCKETS],
}

impl Default for PortTally {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

/// Buckets of [`PortTally::rtt_hist`].
pub const RTT_BUCKETS: usize = 64;

/// The bucket of a round trip of `us` microseconds: `4 * log2(us)` plus the
/// next two bits; below 4 us one bucket per microsecond; the last bucket
/// holds everything from 2^15 us (about 33 ms) up.
pub const fn rtt_bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize;
    let sub = ((us >> (e - 2)) & 3) as usize;
    let b = 4 * e + sub - 4;
    if b >= RTT_BUCKETS {
        RTT_BUCKETS - 1
    } else {
        b
    }
}

/// The smallest round trip, in microseconds, that falls into bucket `b`.
pub const fn rtt_bucket_floor_us(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let e = (b + 4) / 4;
    let sub = ((b + 4) % 4) as u64;
    (1u64 << e) | (sub << (e - 2))
}

/// Channels the driver serves at once (one per handle); one more is
/// refused with `STATUS_QUOTA_EXCEEDED`.
pub const MAX_RING_CHANNELS: usize = 16;
/// Largest ring capacity a client may ask for (each direction): 4 MiB, the
/// benchmark's default ring, which already runs 64 KiB records at memcpy
/// speed. Larger is refused with `STATUS_INVALID_PARAMETER`.
pub const MAX_RING_CAPACITY: u32 = 4 << 20;
/// Bytes of ring sections (both rings and their headers, rounded as
/// `ntcomm_proto::ring::RingLayout` lays them out) the driver holds
/// over all channels: 32 MiB, e.g. 16 channels of 1 MiB rings or three of
/// the largest. A channel that would pass it is refused with
/// `STATUS_QUOTA_EXCEEDED`; closing a channel gives its bytes back.
pub const RING_SECTION_BUDGET: u64 = 32 << 20;

/// Threads the driver runs for `PORT_ASK`s at once (an ask of `threads`
/// senders takes `threads + 1`): four asks of the largest size.
pub const PORT_ASK_MAX_THREADS: u64 = 4 * 17;
/// Of those, threads one handle's asks may hold at once: two largest asks.
pub const PORT_ASK_MAX_THREADS_PER_HANDLE: u64 = 2 * 17;
/// Threads the driver runs for LPC at once: `LPC_CONNECT` takes one while
/// it connects, `LPC_ASK` `workers + 2` (a supervisor and its worker, and
/// the workers) until it ends: four asks of the largest size.
pub const LPC_MAX_THREADS: u64 = 4 * (LPC_MAX_WORKERS as u64 + 2);
/// Of those, threads one handle may hold at once: two largest asks.
pub const LPC_MAX_THREADS_PER_HANDLE: u64 = 2 * (LPC_MAX_WORKERS as u64 + 2);

/// What the driver's bounded resources hold now and their limits.
pub const GET_BOUNDS: Ioctl<(), Bounds> =
    Ioctl::new("GET_BOUNDS", DEVICE_TYPE, 0x40, Method::Buffered, Access::ANY, Len::NONE, Len::of::<Bounds>());

/// Output of [`GET_BOUNDS`]: use and limit of each bounded resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Bounds {
    /// Bytes of ring sections held now over all channels.
    pub ring_bytes: u64,
    /// [`RING_SECTION_BUDGET`].
    pub ring_bytes_limit: u64,
    /// Channels open or opening now.
    pub ring_channels: u64,
    /// [`MAX_RING_CHANNELS`].
    pub ring_channels_limit: u64,
    /// Threads of `PORT_ASK`s now.
    pub port_ask_threads: u64,
    /// [`PORT_ASK_MAX_THREADS`].
    pub port_ask_threads_limit: u64,
    /// Threads of LPC connects and asks now.
    pub lpc_threads: u64,
    /// [`LPC_MAX_THREADS`].
    pub lpc_threads_limit: u64,
}

/// Every IOCTL the demo driver serves.
pub const ALL_IOCTLS: [Ioctl<[u8], [u8]>; 14] = [
    ECHO_BUFFERED.erase(),
    COMPARE_IN_DIRECT.erase(),
    ECHO_OUT_DIRECT.erase(),
    ECHO_NEITHER.erase(),
    GET_STATS.erase(),
    WAIT_EVENT.erase(),
    POST_EVENT.erase(),
    DELAYED_COMPLETE.erase(),
    PIPE_SEND.erase(),
    RING_OPEN.erase(),
    RING_SOURCE.erase(),
    RING_STATUS.erase(),
    PORT_ASK.erase(),
    USER_COPY_PROBE.erase(),
];

/// Input of [`RING_SOURCE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RingSource {
    /// Records to produce.
    pub count: u64,
    /// Records per second; 0 means as fast as the ring takes them.
    pub rate: u32,
    /// Payload bytes of each record ([`RECORD_MIN`] at least).
    pub record_len: u32,
}

/// [`RingOpen::mode`]: the driver validates and counts what the client sends.
pub const RING_MODE_SINK: u32 = 0;
/// [`RingOpen::mode`]: the driver validates, counts, and sends every record back on the
/// driver-to-user ring (for round-trip and wake-up latency).
pub const RING_MODE_ECHO: u32 = 1;

/// Smallest record of the demo's streams: sequence number and checksum.
pub const RECORD_MIN: usize = 12;

/// The demo streams' record checksum: FNV-1a style over 8-byte words (and
/// the trailing bytes one by one), folded to 32 bits. Every step is a
/// bijection of the 64-bit state, so a changed byte always changes the state
/// and escapes the 32-bit fold with probability 2^-32. Word-wise it costs
/// about a cycle per byte, so it does not dominate the throughput figures
/// of the channels it checks.
pub fn checksum(bytes: &[u8]) -> u32 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    (h ^ (h >> 32)) as u32
}

/// Fills `record` (at least [`RECORD_MIN`] bytes) as the demo's record
/// number `seq`: `seq` (u64 LE), a payload derived from `seq`, and the
/// checksum of everything before it in the last 4 bytes.
pub fn fill_record(seq: u64, record: &mut [u8]) -> bool {
    let Some(split) = record.len().checked_sub(4).filter(|&s| s >= 8) else { return false };
    let (body, sum) = record.split_at_mut(split);
    let (head, payload) = body.split_at_mut(8);
    head.copy_from_slice(&seq.to_le_bytes());
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunks = payload.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    for b in chunks.into_remainder() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    sum.copy_from_slice(&checksum(body).to_le_bytes());
    true
}

/// Checks a demo record and returns its sequence number.
pub fn check_record(record: &[u8]) -> Option<u64> {
    let split = record.len().checked_sub(4).filter(|&s| s >= 8)?;
    let (body, sum) = record.split_at(split);
    let want = u32::from_le_bytes(sum.try_into().ok()?);
    if checksum(body) != want {
        return None;
    }
    Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
}

/// Input of [`DELAYED_COMPLETE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Delay {
    /// Milliseconds to wait before completing, at most [`MAX_DELAY_MS`].
    pub millis: u32,
    /// Returned as the reply, to tell completions apart.
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
    /// Shared-memory channels open now.
    pub ring_channels_open: u64,
    /// Channels that detected corruption since load.
    pub ring_channels_failed: u64,
    /// Records the driver published to driver-to-user rings.
    pub ring_records_produced: u64,
    /// Valid records the driver consumed from user-to-driver rings.
    pub ring_records_consumed: u64,
    /// Consumed records that failed validation.
    pub ring_bad_records: u64,
    /// 1 if the Filter Manager port is open (registration worked).
    pub port_available: u64,
    /// Clients connected to the port now.
    pub port_clients: u64,
    /// Connections refused (bad context).
    pub port_refused: u64,
    /// Client disconnections seen by the driver.
    pub port_disconnects: u64,
    /// Messages clients sent to the port.
    pub port_messages: u64,
    /// 1 while the driver holds an LPC connection.
    pub lpc_connected: u64,
    /// LPC connects that succeeded since load.
    pub lpc_connects: u64,
    /// LPC replies received that matched their request.
    pub lpc_replies: u64,
    /// LPC datagrams sent.
    pub lpc_datagrams: u64,
    /// LPC calls that failed.
    pub lpc_failures: u64,
    /// Live processes registered with [`SERVER_REGISTER`].
    pub servers_registered: u64,
    /// Pipe connections the driver dropped because the pipe's server
    /// process was not a registered server (nothing was written to them).
    pub pipe_servers_refused: u64,
    /// Pipe writes that did not complete within the driver's bound (or
    /// were cancelled by unload): the connection is dropped, the message
    /// kept.
    pub pipe_write_timeouts: u64,
    /// LPC connects or replies refused because the server was not a
    /// registered server (`STATUS_SERVER_SID_MISMATCH`, or a reply from
    /// another process).
    pub lpc_servers_refused: u64,
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    #[test]
    fn lpc_port_names() {
        let mut b = [0u8; LPC_PORT_NAME_MAX];
        let n = lpc_port_name(0, &mut b);
        assert_eq!(&b[..n], LPC_PORT_NAME.as_bytes());
        let n = lpc_port_name(4_294_967_295, &mut b);
        assert_eq!(core::str::from_utf8(&b[..n]).unwrap(), "\\RPC Control\\NtCommDemo-4294967295");
        let n = lpc_port_name(7, &mut b);
        assert_eq!(core::str::from_utf8(&b[..n]).unwrap(), "\\RPC Control\\NtCommDemo-7");
    }

    #[test]
    fn lpc_answers_differ_per_request_and_size() {
        for len in [0usize, 1, 11, 12, 100, 472] {
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            lpc_fill_request(7, &mut a);
            lpc_fill_request(8, &mut b);
            if len > 0 {
                assert_ne!(a, b, "len {len}");
            }
            let mut out = vec![0u8; len];
            assert_eq!(lpc_answer(&a, &mut out), Some(len));
            let mut back = vec![0u8; len];
            assert_eq!(lpc_answer(&out, &mut back), Some(len));
            assert_eq!(back, a);
        }
        assert_eq!(lpc_answer(&[1, 2], &mut [0u8; 1]), None);
    }

    proptest! {
        #[test]
        fn records_round_trip_and_detect_any_flipped_bit(seq: u64, len in RECORD_MIN..2000usize, flip: usize) {
            let mut r = vec![0u8; len];
            prop_assert!(fill_record(seq, &mut r));
            prop_assert_eq!(check_record(&r), Some(seq));
            let bit = flip % (len * 8);
            r[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(check_record(&r), None);
        }
    }

    #[test]
    fn rtt_buckets_are_monotonic_and_invert() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = rtt_bucket(us);
            assert!(b >= last, "{us}");
            last = b;
            if b < RTT_BUCKETS - 1 {
                assert!(rtt_bucket_floor_us(b) <= us && us < rtt_bucket_floor_us(b + 1), "{us} in {b}");
            }
        }
        assert_eq!(rtt_bucket(u64::MAX), RTT_BUCKETS - 1);
        assert_eq!(rtt_bucket_floor_us(rtt_bucket(1000)), 896);
    }

    #[test]
    fn too_short_records_are_refused() {
        assert!(!fill_record(1, &mut [0u8; RECORD_MIN - 1]));
        assert_eq!(check_record(&[0u8; RECORD_MIN - 1]), None);
    }
}

impl RingSource {
    /// `count` records of `record_len` bytes at `rate` per second (0: as fast
    /// as the ring takes them).
    pub const fn new(count: u64, rate: u32, record_len: u32) -> Self {
        RingSource { count, rate, record_len }
    }
}
