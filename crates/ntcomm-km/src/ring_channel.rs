//! Shared-memory ring channels as a service: per handle that asks, a section
//! holding a driver-to-user ring and a user-to-driver ring
//! (`ntcomm_proto::ring`), mapped into the requesting process and into the
//! driver, two named events for wake-ups, and a system thread per channel
//! that owns the driver's view and runs the driver's [`RingHandler`].
//!
//! The driver chooses the IOCTLs (`ntcomm_proto::ring_channel::RingIoctls`
//! with its own device type and function numbers) and routes them to
//! [`RingChannels::open`] and [`RingChannels::status`]; the client opens the
//! channel with `ntcomm_um::RingChannel::open(path, &RINGS, ..)`. Everything
//! else is here:
//!
//! - **Bounds**, checked before anything is created: one channel per handle
//!   (reserved and checked under one lock: a second open is
//!   `STATUS_OBJECT_NAME_COLLISION`), at most `N` channels
//!   (`STATUS_QUOTA_EXCEEDED`), a per-ring capacity cap
//!   (`STATUS_INVALID_PARAMETER`) and a driver-wide budget of section bytes
//!   ([`Quota`], `STATUS_QUOTA_EXCEEDED`), given back when the channel's
//!   thread has closed its section.
//! - **A hostile client**: every index and length it can write is checked by
//!   the ring; on corruption the channel stops touching the memory and
//!   reports `RING_STATE_FAILED` with the reason in its status (the client
//!   sees it through the status IOCTL; the driver counts it in
//!   [`RingTotals::failed`]); the driver serves every other channel as before.
//! - **Teardown**: on the handle's cleanup ([`RingChannels::close`]), when
//!   the client process dies (checked while idle), and at unload
//!   ([`RingChannels::shutdown`], which joins every thread). Threads are kept
//!   in a [`ThreadSet`]; nothing waits, calls `Zw*` or drops a handle under
//!   a spin lock.
//!
//! # A channel in a few lines
//!
//! ```ignore
//! use ntcomm_km::ring_channel::{Next, RingChannels, RingConfig, RingHandler, RingIo};
//! use ntcomm_proto::ring_channel::RingIoctls;
//!
//! // In the driver's protocol crate: its own device type and function offsets.
//! pub const RINGS: RingIoctls = RingIoctls::new(DeviceType(0x8123), 0x20, 0x21);
//!
//! /// Sends every record back.
//! struct Echo(Vec<u8>);
//! impl RingHandler for Echo {
//!     type Control = ();
//!     fn serve(&mut self, _: &(), io: &mut RingIo<'_, '_>) -> Next {
//!         self.0.resize(io.max_recv(), 0);
//!         match io.recv(&mut self.0) {
//!             Ok(Some(n)) => { io.accept(n); let _ = io.send(self.0.get(..n).unwrap_or_default()); Next::Again }
//!             _ => Next::Sleep(None),
//!         }
//!     }
//! }
//!
//! struct MyDriver { rings: RingChannels<Echo, 4> }
//! const TABLE: &[IoctlHandler<MyDriver>] = &[
//!     IoctlHandler::new(&RINGS.open, |d: &MyDriver, r| d.rings.open(r, |_open| Ok((Echo(Vec::new()), ())))),
//!     IoctlHandler::typed_with_file(&RINGS.status, |d: &MyDriver, file, ()| d.rings.status(file)),
//! ];
//! // new: RingChannels::new(RingConfig::new("MyDriver", 1 << 20, 8 << 20))
//! // cleanup(file): d.rings.close(file)      unload: d.rings.shutdown()
//! ```
//!
//! The handler runs on the channel's own thread at `PASSIVE_LEVEL`; it may
//! wait. What dispatch routines need to tell it (commands, new settings) goes
//! through its [`RingHandler::Control`], reached with
//! [`RingChannels::control`], which wakes the thread afterwards.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use ntcomm_proto::ring::{self, Consumer, Producer, RingError, SleepDecision};
use ntcomm_proto::ring_channel::{
    region_len, RingInfo, RingOpen, RingStatus, RING_STATE_FAILED, RING_STATE_NONE, RING_STATE_OPENING, RING_STATE_RUNNING,
};

use crate::event::NamedEvent;
use crate::ioctl::IoctlRequest;
use crate::irp::{FileId, Handled, Request};
use crate::process::Process;
use crate::quota::{Charge, Quota};
use crate::section::{InView, Section};
use crate::security::SecurityDescriptor;
use crate::sync::SpinLock;
use crate::thread::{SystemThread, ThreadSet};
use crate::{random, time, Error, NtStatus};

/// How often an idle channel checks that its client is alive.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often a producer facing a full ring retries (the client does not
/// signal freed space).
const FULL_POLL: Duration = Duration::from_millis(1);

/// The per-channel logic a driver supplies.
pub trait RingHandler: Send + Sized + 'static {
    /// What dispatch routines share with the channel's thread (commands,
    /// settings), reached with [`RingChannels::control`]. `()` if nothing.
    type Control: Send + Sync + 'static;

    /// One round of work on the channel's thread (`PASSIVE_LEVEL`): move
    /// records with `io` and say what the thread should do next. Records
    /// sent are published (and the client woken if it sleeps) after each
    /// round. Once `io` reports the channel failed, nothing more reaches the
    /// shared memory.
    fn serve(&mut self, control: &Self::Control, io: &mut RingIo<'_, '_>) -> Next;
}

/// What the channel's thread does after a [`RingHandler::serve`] round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Work was done: serve again at once (after a short poll if the
    /// driver-to-user ring was full).
    Again,
    /// Nothing to do now: sleep until the client publishes, dispatch calls
    /// [`RingChannels::control`], or the timeout (`None`: only the periodic
    /// liveness check of the client, 100 ms).
    Sleep(Option<Duration>),
    /// The handler is done: the channel stops (the client sees the
    /// driver-to-user ring aborted) and waits to be closed.
    Stop,
}

/// The two rings as the handler sees them during a round. Every error the
/// client's memory can cause is recorded: after one, the channel fails and
/// every call here returns nothing.
pub struct RingIo<'a, 'v> {
    producer: &'a mut InView<'v, Producer>,
    consumer: &'a mut InView<'v, Consumer>,
    mode: u32,
    sent: u64,
    accepted: u64,
    accepted_bytes: u64,
    rejected: u64,
    backlog: Option<u64>,
    full: bool,
    corrupt: Option<u32>,
}

impl RingIo<'_, '_> {
    /// The client's [`RingOpen::mode`].
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The fixed record size of both rings, `None` for variable-length records.
    pub fn record_size(&self) -> Option<usize> {
        self.consumer.record_size()
    }

    /// The longest record the client may send: the buffer [`recv`](Self::recv) needs.
    pub fn max_recv(&self) -> usize {
        self.consumer.max_record()
    }

    /// The longest record [`send`](Self::send) accepts.
    pub fn max_send(&self) -> usize {
        self.producer.max_record()
    }

    /// Takes the client's next record into `buf` (of [`max_recv`](Self::max_recv)
    /// bytes); `Ok(None)` if there is none. A corrupt ring, or a record longer
    /// than `buf`, fails the channel.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RingError> {
        if self.corrupt.is_some() {
            return Ok(None);
        }
        match self.consumer.try_pop(buf) {
            Ok(got) => Ok(got),
            Err(e) => {
                self.corrupt = Some(match e {
                    RingError::Corrupt(r) => r,
                    _ => ring::reason::RECORD_TOO_LONG,
                });
                Err(e)
            }
        }
    }

    /// Stages `record` for the client (published after the round);
    /// `Ok(false)` if the ring is full now. A corrupt ring fails the channel;
    /// a record that does not suit the ring (too long, wrong fixed size) is
    /// refused with its error and nothing else happens.
    pub fn send(&mut self, record: &[u8]) -> Result<bool, RingError> {
        if self.corrupt.is_some() {
            return Ok(false);
        }
        match self.producer.write(record) {
            Ok(true) => {
                self.sent += 1;
                Ok(true)
            }
            Ok(false) => {
                self.full = true;
                Ok(false)
            }
            Err(e) => {
                if let RingError::Corrupt(r) = e {
                    self.corrupt = Some(r);
                }
                Err(e)
            }
        }
    }

    /// Counts a received record of `bytes` bytes as accepted (status `consumed`).
    pub fn accept(&mut self, bytes: usize) {
        self.accepted += 1;
        self.accepted_bytes += bytes as u64;
    }

    /// Counts a received record as refused (status `bad_records`).
    pub fn reject(&mut self) {
        self.rejected += 1;
    }

    /// Reports how many records the handler still has to send (status `backlog`).
    pub fn set_backlog(&mut self, records: u64) {
        self.backlog = Some(records);
    }

    /// True once the client's memory failed a check: the round should end.
    pub fn failed(&self) -> bool {
        self.corrupt.is_some()
    }
}

/// Totals over every channel, for the driver's statistics.
#[derive(Default)]
pub struct RingTotals {
    /// Channels serving now.
    pub open: AtomicU64,
    /// Channels that failed (hostile or broken client) since load.
    pub failed: AtomicU64,
    /// Records published to clients.
    pub produced: AtomicU64,
    /// Records accepted from clients.
    pub consumed: AtomicU64,
    /// Records refused by handlers.
    pub bad: AtomicU64,
}

/// The limits and names of a driver's channels.
#[derive(Clone, Copy, Debug)]
pub struct RingConfig {
    /// Prefix of the channel objects' names (`\BaseNamedObjects\PREFIX-<random>`).
    pub name_prefix: &'static str,
    /// Largest capacity of each ring a client may ask for (bigger:
    /// `STATUS_INVALID_PARAMETER`).
    pub max_capacity: u32,
    /// Section bytes held over all channels (both rings and headers,
    /// rounded as [`region_len`]); one that would pass it is refused with
    /// `STATUS_QUOTA_EXCEEDED`.
    pub section_budget: u64,
}

impl RingConfig {
    /// Channels named `name_prefix-...`, rings up to `max_capacity` bytes,
    /// `section_budget` bytes of sections in all.
    pub const fn new(name_prefix: &'static str, max_capacity: u32, section_budget: u64) -> Self {
        RingConfig { name_prefix, max_capacity, section_budget }
    }
}

/// What dispatch and the channel thread share.
struct Channel<C> {
    file: FileId,
    open: RingOpen,
    stop: AtomicBool,
    /// Stopping for unload, not close: the client still holds its handle.
    unloading: AtomicBool,
    /// Set by the client when the driver's consumer sleeps; set by dispatch
    /// to wake the thread for a stop or a command.
    u2d_event: NamedEvent,
    d2u_event: NamedEvent,
    status: SpinLock<RingStatus>,
    control: C,
}

impl<C> Channel<C> {
    fn wake(&self) {
        let _ = self.u2d_event.set();
    }
}

struct Entry<C> {
    channel: Arc<Channel<C>>,
    thread: SystemThread,
}

/// A handle's channel, from the moment the open checked it may have one
/// (`entry` still `None` while the objects are made) until the handle's
/// cleanup removes it. Reserving and checking happen under one lock, so a
/// handle never has two, and cleanup (which comes before the `FILE_OBJECT`
/// can be freed, and after every request on it) always finds it: a channel
/// is never keyed by a freed `FILE_OBJECT`.
struct Slot<C> {
    file: FileId,
    entry: Option<Entry<C>>,
}

/// Every ring channel of a driver: at most `N` at once, each served by a
/// handler `H`.
pub struct RingChannels<H: RingHandler, const N: usize> {
    config: RingConfig,
    live: SpinLock<Vec<Slot<H::Control>>>,
    /// Section bytes of every channel open or opening.
    bytes: Arc<Quota<FileId, N>>,
    /// Threads of closed channels, joined once finished (never in dispatch
    /// while they still run).
    ending: ThreadSet,
    totals: Arc<RingTotals>,
}

/// Everything a channel thread owns.
struct Setup<H: RingHandler, const N: usize> {
    channel: Arc<Channel<H::Control>>,
    handler: H,
    section: Section,
    process: Process,
    name: String,
    request: Request,
    totals: Arc<RingTotals>,
    /// The section's bytes, given back when the thread has dropped it.
    charge: Charge<FileId, N>,
}

impl<H: RingHandler, const N: usize> RingChannels<H, N> {
    /// No channels yet.
    pub fn new(config: RingConfig) -> Self {
        Self {
            config,
            live: SpinLock::new(Vec::new()),
            bytes: Arc::new(Quota::new("ring sections", config.section_budget, config.section_budget)),
            ending: ThreadSet::new(),
            totals: Arc::new(RingTotals::default()),
        }
    }

    /// The limits.
    pub fn config(&self) -> &RingConfig {
        &self.config
    }

    /// Totals over every channel.
    pub fn totals(&self) -> &RingTotals {
        &self.totals
    }

    /// Section bytes held now, and channels open or opening.
    pub fn usage(&self) -> (u64, u64) {
        let channels = self.live.with(|l| l.len() as u64);
        (self.bytes.used(), channels)
    }

    /// Reserves `file`'s channel: refused if it has one (or one is opening)
    /// or the driver serves as many as it may. Check and insert under one lock.
    fn reserve(&self, file: FileId) -> Result<(), NtStatus> {
        self.live.with(|live| {
            if live.iter().any(|s| s.file == file) {
                return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
            }
            if live.len() >= N {
                return Err(NtStatus::STATUS_QUOTA_EXCEEDED);
            }
            live.try_reserve(1).map_err(|_| NtStatus::STATUS_INSUFFICIENT_RESOURCES)?;
            live.push(Slot { file, entry: None });
            Ok(())
        })
    }

    /// Gives up `file`'s reservation after a failed open.
    fn unreserve(&self, file: FileId) {
        // Only entry-less slots go: nothing with a thread is dropped here.
        self.live.with(|live| live.retain(|s| s.file != file || s.entry.is_some()));
    }

    /// Joins the channel threads that finished (joining them does not wait).
    pub fn reap(&self) {
        self.ending.reap();
    }

    /// Serves the driver's open IOCTL (`RingIoctls::open`) at
    /// `PASSIVE_LEVEL`: validates the request, lets `make` check the
    /// driver-defined part ([`RingOpen::mode`], record sizes it needs) and
    /// build the handler and its control (an `Err` status refuses the open
    /// before anything is created), reserves the handle's channel and the
    /// section bytes, creates the section and events, and starts the
    /// channel's thread, which maps the section and completes the request
    /// with the [`RingInfo`].
    pub fn open(&self, req: IoctlRequest, make: impl FnOnce(&RingOpen) -> Result<(H, H::Control), NtStatus>) -> Handled {
        self.reap();
        let open: RingOpen = match req.input_as() {
            Ok(o) => o,
            Err(s) => return req.fail(s),
        };
        let file = req.file();
        if !open.record_size_ok() {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let max = self.config.max_capacity;
        let sizes = [open.d2u_capacity, open.u2d_capacity].map(|c| region_len(c).filter(|_| c <= max));
        let [Some(d2u_len), Some(u2d_len)] = sizes else {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        };
        let (handler, control) = match make(&open) {
            Ok(hc) => hc,
            Err(s) => return req.fail(s),
        };
        // Bounded before anything is created: one channel per handle, the
        // channel count, then the section bytes.
        if let Err(s) = self.reserve(file) {
            return req.fail(s);
        }
        let size = d2u_len + u2d_len;
        let charge = match self.bytes.charge(file, size as u64) {
            Ok(c) => c,
            Err(e) => {
                self.unreserve(file);
                crate::kprintln!("ring channel open refused: {}", e);
                return req.fail(e.status());
            }
        };
        let (section, u2d_event, d2u_event, name) = match create_objects(self.config.name_prefix, &open, size) {
            Ok(objects) => objects,
            Err(e) => {
                self.unreserve(file);
                return req.fail(e.status);
            }
        };
        let process = match Process::open(Process::requestor_id()) {
            Ok(p) => p,
            Err(e) => {
                self.unreserve(file);
                return req.fail(e.status);
            }
        };
        let channel = Arc::new(Channel {
            file,
            open,
            stop: AtomicBool::new(false),
            unloading: AtomicBool::new(false),
            u2d_event,
            d2u_event,
            status: SpinLock::new(RingStatus { state: RING_STATE_OPENING, ..RingStatus::default() }),
            control,
        });
        let request = match req.into_request() {
            Ok(r) => r,
            Err(req) => {
                self.unreserve(file);
                return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST);
            }
        };
        // Pending before the request reaches the channel thread.
        let (request, handled) = request.into_pending();
        let totals = self.totals.clone();
        let setup: Setup<H, N> = Setup { channel: channel.clone(), handler, section, process, name, request, totals, charge };
        // The closure owns the setup (and the request in it). If the thread
        // cannot start, dropping it completes the request with
        // STATUS_INTERNAL_ERROR: pended, so still a valid outcome.
        match SystemThread::spawn(move || channel_main(setup)) {
            Ok(thread) => {
                let mut entry = Some(Entry { channel, thread });
                self.live.with(|live| {
                    if let Some(slot) = live.iter_mut().find(|s| s.file == file && s.entry.is_none()) {
                        slot.entry = entry.take();
                    }
                });
                // The handle was cleaned up while this open ran (its
                // reservation is gone): the channel stops at once.
                if let Some(e) = entry {
                    e.channel.stop.store(true, Ordering::Release);
                    e.channel.wake();
                    self.ending.push(e.thread);
                }
            }
            Err(e) => {
                self.unreserve(file);
                crate::kprintln!("ring channel thread: {}", e);
            }
        }
        handled
    }

    fn find(&self, file: FileId) -> Option<Arc<Channel<H::Control>>> {
        self.live.with(|l| l.iter().filter_map(|s| s.entry.as_ref()).find(|e| e.channel.file == file).map(|e| e.channel.clone()))
    }

    /// Runs `f` on the control of `file`'s channel (with the client's open
    /// request), outside any lock, then wakes the channel's thread; `None` if
    /// the handle has no channel.
    pub fn control<R>(&self, file: FileId, f: impl FnOnce(&H::Control, &RingOpen) -> R) -> Option<R> {
        let ch = self.find(file)?;
        let r = f(&ch.control, &ch.open);
        ch.wake();
        Some(r)
    }

    /// The reply to the driver's status IOCTL (`RingIoctls::status`) on
    /// `file`'s handle: a typed handler
    /// (`IoctlHandler::typed_with_file(&RINGS.status, |d, file, ()| d.rings.status(file))`).
    pub fn status(&self, file: FileId) -> Result<RingStatus, NtStatus> {
        Ok(match self.find(file) {
            Some(ch) => ch.status.get(),
            None => RingStatus { state: RING_STATE_NONE, ..RingStatus::default() },
        })
    }

    /// The handle closed (or its process died): stop its channel. Call from
    /// the driver's cleanup.
    pub fn close(&self, file: FileId) {
        let (entry, emptied) = self.live.with(|live| {
            let i = live.iter().position(|s| s.file == file);
            // An open still running finds its reservation gone and stops.
            let e = i.and_then(|i| live.swap_remove(i).entry);
            // No capacity kept while no channel is open.
            (e, live.is_empty().then(|| core::mem::take(live)))
        });
        drop(emptied);
        if let Some(e) = entry {
            e.channel.stop.store(true, Ordering::Release);
            e.channel.wake();
            self.ending.push(e.thread);
        }
    }

    /// Unload: stop and join every channel thread.
    pub fn shutdown(&self) {
        let live: Vec<Slot<H::Control>> = self.live.take();
        for e in live.iter().filter_map(|s| s.entry.as_ref()) {
            e.channel.unloading.store(true, Ordering::Release);
            e.channel.stop.store(true, Ordering::Release);
            e.channel.wake();
        }
        drop(live);
        self.ending.join_all();
    }
}

fn create_objects(prefix: &str, open: &RingOpen, size: usize) -> Result<(Section, NamedEvent, NamedEvent, String), Error> {
    let sd = SecurityDescriptor::system_and_admins()?;
    let mut last = Error::new(NtStatus::STATUS_OBJECT_NAME_COLLISION, "ring names");
    // A collision means someone holds that name already: draw another.
    for _ in 0..4 {
        let name = format!("{prefix}-{:032x}", random::name_bits(&open.nonce));
        let made = Section::create(Some(&format!(r"\BaseNamedObjects\{name}")), size, &sd).and_then(|section| {
            let u2d = NamedEvent::create(&format!(r"\BaseNamedObjects\{name}-u2d"), &sd)?;
            let d2u = NamedEvent::create(&format!(r"\BaseNamedObjects\{name}-d2u"), &sd)?;
            Ok((section, u2d, d2u))
        });
        match made {
            Ok((s, u, d)) => return Ok((s, u, d, name)),
            Err(e) if e.status == NtStatus::STATUS_OBJECT_NAME_COLLISION => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn channel_main<H: RingHandler, const N: usize>(s: Setup<H, N>) {
    let Setup { channel, mut handler, section, process, name, request, totals, charge } = s;
    let open = channel.open;
    // Map into the client first, then here (this system thread), then lay
    // out both rings before the client learns the address.
    let client = match section.map_into(&process) {
        Ok(v) => v,
        Err(e) => return fail_open(&channel, request, e),
    };
    let local = match section.map_here() {
        Ok(v) => v,
        Err(e) => return fail_open(&channel, request, e),
    };
    let (d2u_len, u2d_len) = match (region_len(open.d2u_capacity), region_len(open.u2d_capacity)) {
        (Some(a), Some(b)) => (a, b),
        _ => return fail_open(&channel, request, Error::new(NtStatus::STATUS_INVALID_PARAMETER, "ring capacity")),
    };
    let rings = local
        .init_ring(0, d2u_len, open.d2u_capacity, open.record_size)
        .and_then(|()| local.init_ring(d2u_len, u2d_len, open.u2d_capacity, open.record_size))
        .and_then(|()| Ok((local.ring_producer(0, d2u_len)?, local.ring_consumer(d2u_len, u2d_len)?)));
    let (producer, consumer) = match rings {
        Ok(pc) => pc,
        Err(_) => return fail_open(&channel, request, Error::new(NtStatus::STATUS_INTERNAL_ERROR, "ring init")),
    };
    let mut info = RingInfo {
        base: client.client_address() as u64,
        size: client.len() as u64,
        d2u_offset: 0,
        u2d_offset: d2u_len as u64,
        ..RingInfo::default()
    };
    for (slot, c) in info.name.iter_mut().zip(name.encode_utf16()) {
        *slot = c;
    }
    channel.status.with(|s| s.state = RING_STATE_RUNNING);
    totals.open.fetch_add(1, Ordering::Relaxed);
    match IoctlRequest::from_request(request) {
        Ok(r) => {
            let _ = r.reply(&info);
        }
        Err(r) => {
            let _ = r.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
    }
    serve(&channel, &mut handler, &process, producer, consumer, &totals);
    totals.open.fetch_sub(1, Ordering::Relaxed);
    drop(handler);
    drop(local);
    if channel.unloading.load(Ordering::Acquire) {
        // The client still holds its handle and may be reading: leave its
        // view mapped (it goes when the client exits) rather than pull the
        // memory from under it. The ring says ABORTED.
        core::mem::forget(client);
    } else {
        // Closed or dead: unmap, harmless if the process is gone.
        drop(client);
    }
    drop(section);
    // The section is gone (or, at unload, left to the client's view): its
    // bytes are free for another channel.
    drop(charge);
}

fn fail_open<C>(channel: &Channel<C>, request: Request, e: Error) {
    crate::kprintln!("ring channel setup: {}", e);
    channel.status.with(|s| s.state = RING_STATE_NONE);
    let _ = request.fail(e.status);
}

fn serve<'v, H: RingHandler>(
    channel: &Channel<H::Control>,
    handler: &mut H,
    process: &Process,
    mut producer: InView<'v, Producer>,
    mut consumer: InView<'v, Consumer>,
    totals: &RingTotals,
) {
    let mut failed = false;
    let mut stopped = false;
    let mut last_check = time::interrupt_time();
    while !channel.stop.load(Ordering::Acquire) {
        if failed || stopped {
            // Never touch the shared memory again; wait to be closed.
            let _ = channel.u2d_event.wait(Some(IDLE_POLL));
            if process.has_exited() {
                break;
            }
            continue;
        }
        let mut io = RingIo {
            producer: &mut producer,
            consumer: &mut consumer,
            mode: channel.open.mode,
            sent: 0,
            accepted: 0,
            accepted_bytes: 0,
            rejected: 0,
            backlog: None,
            full: false,
            corrupt: None,
        };
        let next = handler.serve(&channel.control, &mut io);
        let RingIo { sent, accepted, accepted_bytes, rejected, backlog, full, mut corrupt, .. } = io;
        // Counted before the records are published: a client that has seen
        // a record and then asks for the status finds it counted.
        channel.status.with(|st| {
            st.consumed += accepted;
            st.consumed_bytes += accepted_bytes;
            st.bad_records += rejected;
            st.produced += sent;
            if let Some(b) = backlog {
                st.backlog = b;
            }
        });
        let mut wakeups = 0u64;
        if sent > 0 && corrupt.is_none() {
            match producer.publish() {
                Ok(w) if w.0 => {
                    let _ = channel.d2u_event.set();
                    wakeups += 1;
                }
                Ok(_) => {}
                Err(RingError::Corrupt(r)) => corrupt = Some(r),
                Err(_) => {}
            }
        }
        if wakeups > 0 || corrupt.is_some() {
            channel.status.with(|st| {
                st.wakeups_sent += wakeups;
                if let Some(r) = corrupt {
                    st.state = RING_STATE_FAILED;
                    st.failed_reason = r;
                }
            });
        }
        totals.consumed.fetch_add(accepted, Ordering::Relaxed);
        totals.bad.fetch_add(rejected, Ordering::Relaxed);
        totals.produced.fetch_add(sent, Ordering::Relaxed);
        if let Some(r) = corrupt {
            crate::kprintln!("ring channel failed: {}", ring::reason::name(r));
            totals.failed.fetch_add(1, Ordering::Relaxed);
            failed = true;
            continue;
        }
        let timeout = match next {
            Next::Stop => {
                stopped = true;
                producer.fail(ring::reason::ABORTED);
                let _ = channel.d2u_event.set();
                continue;
            }
            Next::Again if !full => continue,
            Next::Again => FULL_POLL,
            Next::Sleep(_) if full => FULL_POLL,
            Next::Sleep(t) => t.map_or(IDLE_POLL, |t| t.min(IDLE_POLL)),
        };
        // Idle, or waiting for the client to make room: sleep until the
        // client publishes, dispatch wakes us, or a timeout.
        match consumer.prepare_sleep() {
            Ok(SleepDecision::DataReady) => continue,
            Ok(SleepDecision::MustWait) => {
                let signalled = channel.u2d_event.wait(Some(timeout)).unwrap_or(false);
                consumer.cancel_sleep();
                let now = time::interrupt_time();
                // Liveness of the client at most every IDLE_POLL.
                if !signalled && now.saturating_sub(last_check) >= IDLE_POLL.as_nanos() as u64 / 100 {
                    last_check = now;
                    if process.has_exited() {
                        break;
                    }
                }
            }
            Err(_) => {}
        }
    }
    if !failed && !stopped {
        // Tell a client still looking that the channel is gone, and wake it
        // if it sleeps on the ring (else it would learn only at its timeout,
        // or never without one).
        producer.fail(ring::reason::ABORTED);
        let _ = channel.d2u_event.set();
    }
}
