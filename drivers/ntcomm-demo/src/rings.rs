//! Shared-memory channels: per handle that asks, a section holding a
//! driver-to-user ring (fed by a synthetic source) and a user-to-driver ring
//! (drained and validated by the driver), two named events, and a system
//! thread that owns the driver's view and does all the work.
//!
//! The client is hostile: everything it can write is validated by the ring
//! (`ntcomm_proto::ring`); on corruption the channel stops touching the
//! memory, reports `RING_STATE_FAILED`, and the driver serves everyone else
//! as before. The channel is torn down (views unmapped, objects closed) when
//! its handle closes, when the client process dies, and on unload.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use ntcomm_km::event::NamedEvent;
use ntcomm_km::ioctl::IoctlRequest;
use ntcomm_km::irp::{FileId, Handled, Request};
use ntcomm_km::process::Process;
use ntcomm_km::quota::{Charge, Quota};
use ntcomm_km::section::{InView, Section};
use ntcomm_km::security::SecurityDescriptor;
use ntcomm_km::sync::SpinLock;
use ntcomm_km::thread::{SystemThread, ThreadSet};
use ntcomm_km::{random, time, Error, NtStatus};
use ntcomm_proto::demo::{self as proto, RingInfo, RingOpen, RingSource, RingStatus};
use ntcomm_proto::ring::{self, Consumer, Producer, RingError, RingLayout, SleepDecision};

/// Records handled per direction before the thread looks at the other one.
const BATCH: usize = 256;
/// How often an idle channel checks that its client is alive.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often a producer facing a full ring retries (the client does not
/// signal freed space).
const FULL_POLL: Duration = Duration::from_millis(1);

/// Totals over every channel, for the driver's stats.
#[derive(Default)]
pub struct RingTotals {
    pub open: AtomicU64,
    pub failed: AtomicU64,
    pub produced: AtomicU64,
    pub consumed: AtomicU64,
    pub bad: AtomicU64,
}

/// What dispatch and the channel thread share.
struct Channel {
    file: FileId,
    stop: AtomicBool,
    /// Stopping for unload, not close: the client still holds its handle.
    unloading: AtomicBool,
    /// Set by the client when the driver's consumer sleeps; set by dispatch
    /// to wake the thread for a stop or a new source.
    u2d_event: NamedEvent,
    d2u_event: NamedEvent,
    status: SpinLock<RingStatus>,
    new_source: SpinLock<Option<RingSource>>,
    /// The rings' fixed record size, 0 for variable-length records.
    record_size: u32,
}

impl Channel {
    fn wake(&self) {
        let _ = self.u2d_event.set();
    }
}

struct Entry {
    channel: Arc<Channel>,
    thread: SystemThread,
}

/// A handle's channel, from the moment `RING_OPEN` checked it may have one
/// (`entry` still `None` while the objects are made) until the handle's
/// cleanup removes it. Reserving and checking happen under one lock, so a
/// handle never has two, and cleanup (which comes before the `FILE_OBJECT`
/// can be freed, and after every request on it) always finds it: a channel
/// is never keyed by a freed `FILE_OBJECT`.
struct Slot {
    file: FileId,
    entry: Option<Entry>,
}

/// Ring section bytes held per handle and over the driver.
type RingBytes = Quota<FileId, { proto::MAX_RING_CHANNELS }>;

/// Every channel of the driver.
pub struct Rings {
    live: SpinLock<Vec<Slot>>,
    /// Section bytes of every channel open or opening.
    bytes: Arc<RingBytes>,
    /// Threads of closed channels, joined once finished (never in dispatch
    /// while they still run).
    ending: ThreadSet,
    pub totals: Arc<RingTotals>,
}

/// Everything a channel thread owns.
struct Setup {
    channel: Arc<Channel>,
    section: Section,
    process: Process,
    open: RingOpen,
    name: String,
    request: Request,
    totals: Arc<RingTotals>,
    /// The section's bytes, given back when the thread has dropped it.
    charge: Charge<FileId, { proto::MAX_RING_CHANNELS }>,
}

fn region_len(capacity: u32) -> Option<usize> {
    RingLayout::bytes_for(capacity).map(|n| (n + 63) & !63)
}

impl Rings {
    pub fn new() -> Self {
        Self {
            live: SpinLock::new(Vec::new()),
            bytes: Arc::new(RingBytes::new("ring sections", proto::RING_SECTION_BUDGET, proto::RING_SECTION_BUDGET)),
            ending: ThreadSet::new(),
            totals: Arc::new(RingTotals::default()),
        }
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
            if live.len() >= proto::MAX_RING_CHANNELS {
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

    pub fn open(&self, req: IoctlRequest) -> Handled {
        self.reap();
        let open: RingOpen = match req.input_as() {
            Ok(o) => o,
            Err(s) => return req.fail(s),
        };
        let file = req.file();
        if open.mode > proto::RING_MODE_ECHO || !record_size_ok(&open) {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let sizes = [open.d2u_capacity, open.u2d_capacity].map(|c| region_len(c).filter(|_| c <= proto::MAX_RING_CAPACITY));
        let [Some(d2u_len), Some(u2d_len)] = sizes else {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
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
                ntcomm_km::kprintln!("RING_OPEN refused: {}", e);
                return req.fail(e.status());
            }
        };
        match create_objects(&open, size) {
            Ok((section, u2d_event, d2u_event, name)) => {
                let process = match Process::open(Process::requestor_id()) {
                    Ok(p) => p,
                    Err(e) => {
                        self.unreserve(file);
                        return req.fail(e.status);
                    }
                };
                let channel = Arc::new(Channel {
                    file,
                    stop: AtomicBool::new(false),
                    unloading: AtomicBool::new(false),
                    u2d_event,
                    d2u_event,
                    status: SpinLock::new(RingStatus { state: proto::RING_STATE_OPENING, ..RingStatus::default() }),
                    new_source: SpinLock::new(None),
                    record_size: open.record_size,
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
                let setup = Setup { channel: channel.clone(), section, process, open, name, request, totals, charge };
                // The closure owns the setup (and the request in it). If the
                // thread cannot start, dropping it completes the request with
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
                        ntcomm_km::kprintln!("ring channel thread: {}", e);
                    }
                }
                handled
            }
            Err(e) => {
                self.unreserve(file);
                req.fail(e.status)
            }
        }
    }

    fn find(&self, file: FileId) -> Option<Arc<Channel>> {
        self.live.with(|l| l.iter().filter_map(|s| s.entry.as_ref()).find(|e| e.channel.file == file).map(|e| e.channel.clone()))
    }

    pub fn source(&self, req: IoctlRequest) -> Handled {
        let src: RingSource = match req.input_as() {
            Ok(s) => s,
            Err(s) => return req.fail(s),
        };
        let Some(ch) = self.find(req.file()) else {
            return req.fail(NtStatus::STATUS_NOT_FOUND);
        };
        if (src.record_len as usize) < proto::RECORD_MIN || (ch.record_size != 0 && src.record_len != ch.record_size) {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        ch.new_source.replace(Some(src));
        ch.wake();
        req.complete(NtStatus::STATUS_SUCCESS, 0)
    }

    pub fn status(&self, req: IoctlRequest) -> Handled {
        let status = match self.find(req.file()) {
            Some(ch) => ch.status.get(),
            None => RingStatus { state: proto::RING_STATE_NONE, ..RingStatus::default() },
        };
        req.reply(&status)
    }

    /// The handle closed (or its process died): stop its channel.
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
        let live: Vec<Slot> = self.live.take();
        for e in live.iter().filter_map(|s| s.entry.as_ref()) {
            e.channel.unloading.store(true, Ordering::Release);
            e.channel.stop.store(true, Ordering::Release);
            e.channel.wake();
        }
        drop(live);
        self.ending.join_all();
    }
}

/// A fixed record size must suit both rings and hold the demo's sequence
/// number and checksum.
fn record_size_ok(open: &RingOpen) -> bool {
    let size = open.record_size;
    let smaller = open.d2u_capacity.min(open.u2d_capacity);
    size == 0 || (size as usize >= proto::RECORD_MIN && RingLayout::record_size_ok(size, smaller))
}

fn create_objects(open: &RingOpen, size: usize) -> Result<(Section, NamedEvent, NamedEvent, String), Error> {
    let sd = SecurityDescriptor::system_and_admins()?;
    let mut last = Error::new(NtStatus::STATUS_OBJECT_NAME_COLLISION, "ring names");
    // A collision means someone holds that name already: draw another.
    for _ in 0..4 {
        let name = format!("NtComm-{:032x}", random::name_bits(&open.nonce));
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

fn channel_main(s: Setup) {
    let Setup { channel, section, process, open, name, request, totals, charge } = s;
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
    channel.status.with(|s| s.state = proto::RING_STATE_RUNNING);
    totals.open.fetch_add(1, Ordering::Relaxed);
    match IoctlRequest::from_request(request) {
        Ok(r) => {
            let _ = r.reply(&info);
        }
        Err(r) => {
            let _ = r.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
    }
    serve(&channel, &process, producer, consumer, &totals, open.mode);
    totals.open.fetch_sub(1, Ordering::Relaxed);
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

fn fail_open(channel: &Channel, request: Request, e: Error) {
    ntcomm_km::kprintln!("ring channel setup: {}", e);
    channel.status.with(|s| s.state = proto::RING_STATE_NONE);
    let _ = request.fail(e.status);
}

/// The synthetic driver-to-user source.
struct Source {
    remaining: u64,
    next_seq: u64,
    rate: u32,
    len: usize,
    started: u64,
    sent: u64,
}

impl Source {
    /// Records allowed now by the rate, and the wait until the next one.
    fn due(&self) -> (u64, Option<Duration>) {
        if self.rate == 0 {
            return (self.remaining, None);
        }
        let elapsed = time::interrupt_time().saturating_sub(self.started);
        let allowed = (u128::from(elapsed) * u128::from(self.rate) / 10_000_000) as u64;
        let due = allowed.saturating_sub(self.sent).min(self.remaining);
        let next = Duration::from_nanos(1_000_000_000 / u64::from(self.rate));
        (due, Some(next))
    }
}

fn serve(
    channel: &Channel,
    process: &Process,
    mut producer: InView<'_, Producer>,
    mut consumer: InView<'_, Consumer>,
    totals: &RingTotals,
    mode: u32,
) {
    let mut inbox: Vec<u8> = Vec::new();
    let mut outbox: Vec<u8> = Vec::new();
    if inbox.try_reserve_exact(consumer.max_record()).is_err() {
        return;
    }
    inbox.resize(consumer.max_record(), 0);
    let mut source: Option<Source> = None;
    let mut expect_seq = 0u64;
    let mut failed = false;
    let echo = mode == proto::RING_MODE_ECHO;
    // Length of a record in `inbox` still to be echoed.
    let mut held: Option<usize> = None;
    while !channel.stop.load(Ordering::Acquire) {
        if failed {
            // Never touch the shared memory again; wait to be closed.
            let _ = channel.u2d_event.wait(Some(IDLE_POLL));
            if process.has_exited() {
                break;
            }
            continue;
        }
        let mut worked = false;
        let mut corrupt: Option<u32> = None;
        let (mut produced, mut wakeups) = (0u64, 0u64);
        let mut full = false;

        // User to driver: validate and count (and in echo mode send back,
        // holding a record while the way back is full: nothing is dropped).
        let (mut ok, mut bad, mut bytes) = (0u64, 0u64, 0u64);
        for _ in 0..BATCH {
            if let Some(n) = held {
                match producer.write(inbox.get(..n).unwrap_or_default()) {
                    Ok(true) => {
                        held = None;
                        produced += 1;
                    }
                    Ok(false) => {
                        full = true;
                        break;
                    }
                    Err(RingError::Corrupt(r)) => {
                        corrupt = Some(r);
                        break;
                    }
                    Err(_) => held = None,
                }
            }
            match consumer.try_pop(&mut inbox) {
                Ok(Some(n)) => {
                    match inbox.get(..n).and_then(proto::check_record) {
                        Some(seq) if seq == expect_seq => {
                            ok += 1;
                            bytes += n as u64;
                        }
                        _ => bad += 1,
                    }
                    expect_seq += 1;
                    if echo {
                        held = Some(n);
                    }
                }
                Ok(None) => break,
                Err(RingError::Corrupt(r)) => {
                    corrupt = Some(r);
                    break;
                }
                Err(_) => {
                    corrupt = Some(ring::reason::RECORD_TOO_LONG);
                    break;
                }
            }
        }
        worked |= ok + bad > 0;

        // Driver to user: the source.
        let new_source = channel.new_source.take();
        if let Some(src) = new_source {
            source = Some(Source {
                remaining: src.count,
                next_seq: 0,
                rate: src.rate,
                len: (src.record_len as usize).min(producer.max_record()),
                started: time::interrupt_time(),
                sent: 0,
            });
        }
        let mut pace: Option<Duration> = None;
        if let Some(src) = source.as_mut().filter(|s| s.remaining > 0) {
            let (due, next) = src.due();
            pace = next;
            if outbox.len() != src.len {
                outbox.clear();
                if outbox.try_reserve_exact(src.len).is_err() {
                    break;
                }
                outbox.resize(src.len, 0);
            }
            for _ in 0..due.min(BATCH as u64) {
                proto::fill_record(src.next_seq, &mut outbox);
                match producer.write(&outbox) {
                    Ok(true) => {
                        src.next_seq += 1;
                        src.remaining -= 1;
                        src.sent += 1;
                        produced += 1;
                    }
                    Ok(false) => {
                        full = true;
                        break;
                    }
                    Err(RingError::Corrupt(r)) => {
                        corrupt = Some(r);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        if produced > 0 {
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
        worked |= produced > 0;

        channel.status.with(|st| {
            st.consumed += ok;
            st.consumed_bytes += bytes;
            st.bad_records += bad;
            st.produced += produced;
            st.wakeups_sent += wakeups;
            st.source_remaining = source.as_ref().map_or(0, |s| s.remaining);
            if let Some(r) = corrupt {
                st.state = proto::RING_STATE_FAILED;
                st.failed_reason = r;
            }
        });
        totals.consumed.fetch_add(ok, Ordering::Relaxed);
        totals.bad.fetch_add(bad, Ordering::Relaxed);
        totals.produced.fetch_add(produced, Ordering::Relaxed);
        if let Some(r) = corrupt {
            ntcomm_km::kprintln!("ring channel failed: {}", ring::reason::name(r));
            totals.failed.fetch_add(1, Ordering::Relaxed);
            failed = true;
            continue;
        }
        if worked && !full {
            continue;
        }
        // Idle, or waiting for the client to make room: sleep until the
        // client publishes, dispatch wakes us, or a timeout.
        let timeout = if full {
            FULL_POLL
        } else if source.as_ref().is_some_and(|s| s.remaining > 0) {
            pace.unwrap_or(FULL_POLL)
        } else {
            IDLE_POLL
        };
        match consumer.prepare_sleep() {
            Ok(SleepDecision::DataReady) => continue,
            Ok(SleepDecision::MustWait) => {
                let signalled = channel.u2d_event.wait(Some(timeout)).unwrap_or(false);
                consumer.cancel_sleep();
                if !signalled && timeout == IDLE_POLL && process.has_exited() {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    if !failed {
        // Tell a client still looking that the channel is gone, and wake it
        // if it sleeps on the ring (else it would learn only at its timeout,
        // or never without one).
        producer.fail(ring::reason::ABORTED);
        let _ = channel.d2u_event.set();
    }
}
