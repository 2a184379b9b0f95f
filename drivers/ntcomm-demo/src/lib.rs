//! `ntcomm-demo`: the reference driver. Serves `\\.\NtComm` with
//! - an echo IOCTL in each of the four buffer methods,
//! - a stats IOCTL,
//! - an inverted call: `WAIT_EVENT` pends, `POST_EVENT` completes the oldest
//!   waiter with its payload,
//! - `DELAYED_COMPLETE`, completed later by a system thread (or at once by a
//!   work item for a zero delay),
//! - read/write as a bounded message queue: a write enqueues one message (or
//!   hands it straight to a pended read), a read takes the next one or pends;
//!   a full queue refuses the write with `STATUS_DEVICE_BUSY`,
//! - a named-pipe writer: `PIPE_SEND` queues a message that a system thread
//!   writes to a user-mode pipe server, connecting when the server appears
//!   and reconnecting when it comes back; dispatch never waits on the pipe.
//!
//! - shared-memory channels (`RING_OPEN`): a section with a driver-to-user
//!   and a user-to-driver ring, named events for wake-ups, one system
//!   thread per channel (see `rings`).
//!
//! Everything the protocol says is declared in `ntcomm_demo_proto`. The
//! driver has no `unsafe` of its own.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod lpc;
mod peer;
mod port;
mod rings;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use ntcomm_demo_proto::{self as proto, Delay, Stats};
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::ioctl::{self, Buffers, IoctlHandler, IoctlRequest};
use ntcomm_km::irp::{self, FileId, Handled, Request};
use ntcomm_km::pipe::{PipeClient, PipeError, RECONNECT_INTERVAL, WRITE_TIMEOUT};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::sync::SpinLock;
use ntcomm_km::thread::{self, StopSignal, SystemThread};
use ntcomm_km::user_copy::{self, UserCopyError};
use ntcomm_km::{time, Error, NtStatus};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(proto::POOL_TAG.to_le_bytes());

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);

ntcomm_km::driver_entry!(Demo, CONFIG, Demo::new);

/// State shared with the delay worker thread.
struct Delayed {
    queue: IrpQueue,
    signal: StopSignal,
}

/// Messages for the pipe server and the counters of the pipe writer.
struct PipeLog {
    queue: SpinLock<VecDeque<Vec<u8>>>,
    signal: StopSignal,
    sent: AtomicU64,
    refused: AtomicU64,
    connects: AtomicU64,
    failures: AtomicU64,
    /// 1 while the writer holds a message it could not deliver yet.
    in_writer: AtomicU64,
    /// Writes that timed out or were cancelled by unload.
    timeouts: AtomicU64,
    /// Who may be the pipe's server.
    servers: Arc<peer::Servers>,
}

impl PipeLog {
    /// 1 while the writer holds a message out of the queue, else 0.
    fn held_by_writer(&self) -> usize {
        self.in_writer.load(Ordering::Relaxed) as usize
    }
}

struct Demo {
    device: Device,
    /// Pended `ReadFile`s, oldest first.
    reads: IrpQueue,
    /// Pended `WAIT_EVENT`s.
    waiters: IrpQueue,
    /// Messages written and not yet read. Lock order: `messages`, then a
    /// queue's own lock.
    messages: SpinLock<VecDeque<Vec<u8>>>,
    delayed: Arc<Delayed>,
    worker: SpinLock<Option<SystemThread>>,
    pipe: Arc<PipeLog>,
    rings: rings::Rings,
    ports: port::Ports,
    lpc: lpc::Lpc,
    servers: Arc<peer::Servers>,
    pipe_writer: SpinLock<Option<SystemThread>>,
    writes_refused: AtomicU64,
    events_delivered: AtomicU64,
    open_handles: AtomicU64,
}

// The typed entries' declarations carry their types (checked at build time).
const _: () = assert!(
    proto::GET_STATS.carries_types()
        && proto::RING_SOURCE.carries_types()
        && proto::RING_STATUS.carries_types()
        && proto::USER_COPY_PROBE.carries_types()
        && proto::LPC_DISCONNECT.carries_types()
        && proto::GET_BOUNDS.carries_types()
);

const TABLE: &[IoctlHandler<Demo>] = &[
    IoctlHandler::new(&proto::ECHO_BUFFERED, Demo::echo),
    IoctlHandler::new(&proto::COMPARE_IN_DIRECT, Demo::compare),
    IoctlHandler::new(&proto::ECHO_OUT_DIRECT, Demo::echo),
    IoctlHandler::neither_captured(&proto::ECHO_NEITHER, Demo::echo),
    IoctlHandler::typed(&proto::GET_STATS, Demo::stats),
    IoctlHandler::new(&proto::WAIT_EVENT, Demo::wait_event),
    IoctlHandler::new(&proto::POST_EVENT, Demo::post_event),
    IoctlHandler::new(&proto::DELAYED_COMPLETE, Demo::delayed_complete),
    IoctlHandler::new(&proto::PIPE_SEND, Demo::pipe_send),
    IoctlHandler::new(&proto::RING_OPEN, |d: &Demo, r| d.rings.open(r)),
    IoctlHandler::typed_with_file(&proto::RING_SOURCE, |d: &Demo, file, source| d.rings.source(file, source)),
    IoctlHandler::typed_with_file(&proto::RING_STATUS, |d: &Demo, file, ()| d.rings.status(file)),
    IoctlHandler::new(&proto::PORT_ASK, |d: &Demo, r| d.ports.ask(r)),
    IoctlHandler::typed(&proto::USER_COPY_PROBE, Demo::user_copy_probe),
    IoctlHandler::new(&proto::LPC_CONNECT, |d: &Demo, r| d.lpc.connect(r)),
    IoctlHandler::new(&proto::LPC_ASK, |d: &Demo, r| d.lpc.ask(r)),
    IoctlHandler::typed(&proto::LPC_DISCONNECT, |d: &Demo, ()| d.lpc.disconnect()),
    IoctlHandler::typed(&proto::GET_BOUNDS, Demo::bounds),
    IoctlHandler::new(&proto::SERVER_REGISTER, |d: &Demo, r| d.servers.register(r)),
];

impl Demo {
    fn new(device: Device) -> Result<Self, Error> {
        let mut messages = VecDeque::new();
        messages
            .try_reserve_exact(proto::QUEUE_CAPACITY)
            .map_err(|_| Error::new(NtStatus::STATUS_INSUFFICIENT_RESOURCES, "message queue"))?;
        let delayed = Arc::new(Delayed { queue: IrpQueue::new(), signal: StopSignal::new() });
        let worker_state = delayed.clone();
        let worker = SystemThread::spawn(move || delay_worker(&worker_state))?;
        let mut pipe_queue = VecDeque::new();
        pipe_queue
            .try_reserve_exact(proto::PIPE_QUEUE_CAPACITY)
            .map_err(|_| Error::new(NtStatus::STATUS_INSUFFICIENT_RESOURCES, "pipe queue"))?;
        let servers = Arc::new(peer::Servers::new());
        let pipe = Arc::new(PipeLog {
            queue: SpinLock::new(pipe_queue),
            signal: StopSignal::new(),
            sent: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            in_writer: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            servers: servers.clone(),
        });
        let pipe_state = pipe.clone();
        let pipe_writer = match SystemThread::spawn(move || pipe_writer(&pipe_state)) {
            Ok(t) => t,
            Err(e) => {
                delayed.signal.stop();
                drop(worker);
                return Err(e);
            }
        };
        Ok(Self {
            device,
            reads: IrpQueue::new(),
            waiters: IrpQueue::new(),
            messages: SpinLock::new(messages),
            delayed,
            worker: SpinLock::new(Some(worker)),
            pipe,
            rings: rings::Rings::new(),
            ports: port::Ports::new(&device),
            lpc: lpc::Lpc::new(servers.clone()),
            servers,
            pipe_writer: SpinLock::new(Some(pipe_writer)),
            writes_refused: AtomicU64::new(0),
            events_delivered: AtomicU64::new(0),
            open_handles: AtomicU64::new(0),
        })
    }

    fn echo(&self, mut req: IoctlRequest) -> Handled {
        let n = req.input_len();
        if req.output_len() < n {
            return req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
        }
        match req.buffers() {
            // The input already sits where the output goes.
            Buffers::Shared { .. } => {}
            Buffers::Split { input, output } => match output.get_mut(..n) {
                Some(out) => out.copy_from_slice(input),
                None => return req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL),
            },
            // Not declared for the echoes: no writable output.
            Buffers::InDirect { .. } => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        }
        req.complete(NtStatus::STATUS_SUCCESS, n)
    }

    /// `COMPARE_IN_DIRECT`: reads both buffers, writes neither.
    fn compare(&self, mut req: IoctlRequest) -> Handled {
        let Buffers::InDirect { input, direct } = req.buffers() else {
            return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST);
        };
        if direct.len() < input.len() {
            return req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
        }
        let same = input.iter().zip(direct).take_while(|(a, b)| a == b).count();
        req.complete(NtStatus::STATUS_SUCCESS, same)
    }

    fn stats(&self, (): ()) -> Result<Stats, NtStatus> {
        // Threads that finished are otherwise joined at the next request of
        // their kind: join them now, so that the pool figures count only
        // what is live (the fault suite compares them exactly).
        self.rings.reap();
        self.ports.reap();
        self.lpc.reap();
        let io = irp::counters();
        let pool = POOL.usage();
        let ports = &self.ports;
        let (queued, bytes) = self.messages.with(|m| (m.len() as u64, m.iter().map(|v| v.len() as u64).sum()));
        let pipe_queued = self.pipe.queue.with(|q| q.len()) + self.pipe.held_by_writer();
        Ok(Stats {
            irps_in_flight: io.in_flight,
            irps_completed: io.completed,
            irps_cancelled: io.cancelled,
            messages_queued: queued,
            message_bytes_queued: bytes,
            writes_refused: self.writes_refused.load(Ordering::Relaxed),
            events_delivered: self.events_delivered.load(Ordering::Relaxed),
            pool_bytes_outstanding: pool.bytes,
            pool_allocations_outstanding: pool.blocks,
            open_handles: self.open_handles.load(Ordering::Relaxed),
            pipe_messages_sent: self.pipe.sent.load(Ordering::Relaxed),
            pipe_messages_queued: pipe_queued as u64,
            pipe_sends_refused: self.pipe.refused.load(Ordering::Relaxed),
            pipe_connects: self.pipe.connects.load(Ordering::Relaxed),
            pipe_write_failures: self.pipe.failures.load(Ordering::Relaxed),
            ring_channels_open: self.rings.totals().open.load(Ordering::Relaxed),
            ring_channels_failed: self.rings.totals().failed.load(Ordering::Relaxed),
            ring_records_produced: self.rings.totals().produced.load(Ordering::Relaxed),
            ring_records_consumed: self.rings.totals().consumed.load(Ordering::Relaxed),
            ring_bad_records: self.rings.totals().bad.load(Ordering::Relaxed),
            port_available: ports.available() as u64,
            port_clients: ports.counters.clients.load(Ordering::Relaxed),
            port_refused: ports.counters.refused.load(Ordering::Relaxed),
            port_disconnects: ports.counters.disconnects.load(Ordering::Relaxed),
            port_messages: ports.counters.messages.load(Ordering::Relaxed),
            lpc_connected: self.lpc.connected() as u64,
            lpc_connects: self.lpc.counters.connects.load(Ordering::Relaxed),
            lpc_replies: self.lpc.counters.replies.load(Ordering::Relaxed),
            lpc_datagrams: self.lpc.counters.datagrams.load(Ordering::Relaxed),
            lpc_failures: self.lpc.counters.failures.load(Ordering::Relaxed),
            servers_registered: self.servers.count(),
            pipe_servers_refused: self.servers.pipe_refused.load(Ordering::Relaxed),
            pipe_write_timeouts: self.pipe.timeouts.load(Ordering::Relaxed),
            lpc_servers_refused: self.servers.lpc_refused.load(Ordering::Relaxed),
        })
    }

    /// Use and limit of every bounded resource (see docs/SECURITY.md).
    fn bounds(&self, (): ()) -> Result<proto::Bounds, NtStatus> {
        let (ring_bytes, ring_channels) = self.rings.usage();
        Ok(proto::Bounds {
            ring_bytes,
            ring_bytes_limit: proto::RING_SECTION_BUDGET,
            ring_channels,
            ring_channels_limit: proto::MAX_RING_CHANNELS as u64,
            port_ask_threads: self.ports.threads(),
            port_ask_threads_limit: proto::PORT_ASK_MAX_THREADS,
            lpc_threads: self.lpc.threads(),
            lpc_threads_limit: proto::LPC_MAX_THREADS,
        })
    }

    fn user_copy_probe(&self, addr: u64) -> Result<u32, NtStatus> {
        let mut sink = [0u8; 16];
        let outcome = match user_copy::copy_from_user(&mut sink, addr as usize) {
            Ok(()) => proto::PROBE_OK,
            Err(UserCopyError::NotUserRange) => proto::PROBE_NOT_USER,
            Err(UserCopyError::Fault) => proto::PROBE_FAULT,
        };
        Ok(outcome)
    }

    fn wait_event(&self, req: IoctlRequest) -> Handled {
        if self.waiters.len() >= proto::MAX_WAITERS {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        match req.into_request() {
            Ok(r) => self.waiters.pend(r),
            Err(req) => req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        }
    }

    fn post_event(&self, req: IoctlRequest) -> Handled {
        let Some(waiter) = self.waiters.pop() else {
            return req.fail(NtStatus::STATUS_NOT_FOUND);
        };
        let mut waiter = match IoctlRequest::from_request(waiter) {
            Ok(w) => w,
            Err(w) => {
                let _ = w.fail(NtStatus::STATUS_INVALID_PARAMETER);
                return req.fail(NtStatus::STATUS_NOT_FOUND);
            }
        };
        let payload = req.input();
        let n = payload.len();
        // Waiters declare an output of MAX_EVENT and posts at most MAX_EVENT.
        match waiter.output().get_mut(..n) {
            Some(out) => {
                out.copy_from_slice(payload);
                let _ = waiter.complete(NtStatus::STATUS_SUCCESS, n);
                self.events_delivered.fetch_add(1, Ordering::Relaxed);
                req.complete(NtStatus::STATUS_SUCCESS, 0)
            }
            None => {
                let _ = waiter.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
                req.fail(NtStatus::STATUS_INVALID_BUFFER_SIZE)
            }
        }
    }

    fn delayed_complete(&self, req: IoctlRequest) -> Handled {
        let delay: Delay = match req.input_as() {
            Ok(d) => d,
            Err(status) => return req.fail(status),
        };
        if delay.millis > proto::MAX_DELAY_MS {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let mut r = match req.into_request() {
            Ok(r) => r,
            Err(req) => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        };
        if delay.millis == 0 {
            // Completed by a system worker thread, pended first.
            let (r, handled) = r.into_pending();
            let token = delay.token as usize;
            let mut slot = Some(r);
            let queued = thread::queue_work_item(&self.device, move || {
                if let Some(r) = slot.take() {
                    complete_delayed(r, token as u32);
                }
            });
            return match queued {
                Ok(()) => handled,
                // The closure (and the request in it) was dropped: the
                // request completed with STATUS_INTERNAL_ERROR; still pending.
                Err(_) => handled,
            };
        }
        let deadline = time::deadline_after(Duration::from_millis(delay.millis.into()));
        r.set_tag((deadline as usize, delay.token as usize));
        let handled = self.delayed.queue.pend(r);
        self.delayed.signal.notify();
        handled
    }

    fn pipe_send(&self, req: IoctlRequest) -> Handled {
        let mut copy = Vec::new();
        if copy.try_reserve_exact(req.input_len()).is_err() {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        copy.extend_from_slice(req.input());
        // The bound covers the message the writer holds: whether a stale
        // connection made it take one out already must not change how many
        // messages the driver accepts. A refused copy is freed after the lock.
        let refused = self.pipe.queue.with(|q| {
            if q.len() + self.pipe.held_by_writer() >= proto::PIPE_QUEUE_CAPACITY {
                return Some(copy);
            }
            q.push_back(copy);
            None
        });
        if refused.is_some() {
            self.pipe.refused.fetch_add(1, Ordering::Relaxed);
            return req.fail(NtStatus::STATUS_DEVICE_BUSY);
        }
        self.pipe.signal.notify();
        req.complete(NtStatus::STATUS_SUCCESS, 0)
    }

    /// Hands `data` to the oldest pended read that can hold it. Reads too
    /// small for it are failed with `STATUS_BUFFER_TOO_SMALL` on the way.
    /// Returns `data` back if no read was waiting.
    fn deliver_to_reader<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        while let Some(mut r) = self.reads.pop() {
            match r.read_buffer().and_then(|b| b.get_mut(..data.len())) {
                Some(buf) => {
                    buf.copy_from_slice(data);
                    let _ = r.complete_ok(data.len());
                    return None;
                }
                None => {
                    let _ = r.fail(NtStatus::STATUS_BUFFER_TOO_SMALL);
                }
            }
        }
        Some(data)
    }
}

/// Completes a pended `DELAYED_COMPLETE` with its token as the reply.
fn complete_delayed(r: Request, token: u32) {
    let _ = match IoctlRequest::from_request(r) {
        Ok(r) => r.reply(&token),
        Err(r) => r.fail(NtStatus::STATUS_INVALID_PARAMETER),
    };
}

fn delay_worker(d: &Delayed) {
    loop {
        let now = time::interrupt_time();
        while let Some(r) = d.queue.pop_if(|r| r.tag().0 as u64 <= now) {
            let token = r.tag().1 as u32;
            complete_delayed(r, token);
        }
        let mut next: Option<u64> = None;
        d.queue.visit(|r| {
            let due = r.tag().0 as u64;
            next = Some(next.map_or(due, |n| n.min(due)));
        });
        if !d.signal.wait(next.map(time::until)) {
            return;
        }
    }
}

/// The pipe writer: connects when a server exists, writes queued messages
/// in order, and on a failed write keeps the message and reconnects. All
/// blocking pipe calls happen here, never in dispatch.
fn pipe_writer(p: &PipeLog) {
    let mut client: Option<PipeClient> = None;
    // The message being delivered: out of the queue, not yet accepted by a
    // server. It is retried after a reconnection, never dropped.
    let mut pending: Option<Vec<u8>> = None;
    while !p.signal.is_stopping() {
        let Some(pipe) = client.as_ref() else {
            // Only a registered server's pipe is written to; with none
            // registered the pipe is not even opened.
            if p.servers.count() == 0 {
                p.signal.wait(Some(RECONNECT_INTERVAL));
                continue;
            }
            match PipeClient::connect(proto::PIPE_NAME, |pid| p.servers.is_trusted(pid)) {
                Ok(c) => {
                    p.connects.fetch_add(1, Ordering::Relaxed);
                    client = Some(c);
                }
                Err(e) => {
                    if let PipeError::UntrustedServer { server_pid } = e {
                        p.servers.note_pipe_refused(server_pid);
                    }
                    p.signal.wait(Some(RECONNECT_INTERVAL));
                }
            }
            continue;
        };
        if pending.is_none() {
            pending = p.queue.with(|q| {
                let m = q.pop_front();
                // Counted as held under the queue lock, so `pipe_send` never
                // sees the message in neither place.
                if m.is_some() {
                    p.in_writer.store(1, Ordering::Relaxed);
                }
                m
            });
        }
        let Some(msg) = pending.as_ref() else {
            p.signal.wait(Some(Duration::from_secs(1)));
            continue;
        };
        // Bounded: a server that stops reading costs WRITE_TIMEOUT, and
        // unload stops the wait within 50 ms.
        match pipe.write(msg, WRITE_TIMEOUT, &|| p.signal.is_stopping()) {
            Ok(_) => {
                pending = None;
                p.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if matches!(e, PipeError::TimedOut | PipeError::Stopped) {
                    p.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                p.failures.fetch_add(1, Ordering::Relaxed);
                client = None;
            }
        }
        p.in_writer.store(pending.is_some() as u64, Ordering::Relaxed);
    }
}

impl DeviceOperations for Demo {
    fn create(&self, _file: FileId) -> Result<(), NtStatus> {
        self.open_handles.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn cleanup(&self, file: FileId) {
        self.reads.drain_file(file, NtStatus::STATUS_CANCELLED);
        self.waiters.drain_file(file, NtStatus::STATUS_CANCELLED);
        self.delayed.queue.drain_file(file, NtStatus::STATUS_CANCELLED);
        self.rings.close(file);
        self.ports.cleanup(file);
        self.lpc.cleanup(file);
    }

    fn close(&self, _file: FileId) {
        self.open_handles.fetch_sub(1, Ordering::Relaxed);
    }

    fn read(&self, req: Request) -> Handled {
        let taken = self.messages.with(|messages| {
            let Some(front) = messages.front() else {
                // Pend under the messages lock: a write cannot slip in
                // between "empty" and "pended" and leave this read waiting.
                return Err(self.reads.pend(req));
            };
            let mut req = req;
            let n = front.len();
            match req.read_buffer().and_then(|b| b.get_mut(..n)) {
                Some(buf) => {
                    buf.copy_from_slice(front);
                    Ok((req, messages.pop_front(), n))
                }
                // The message stays queued for a read that can hold it.
                None => Ok((req, None, 0)),
            }
        });
        // Completed after the lock is released; the message is freed here.
        match taken {
            Err(pended) => pended,
            Ok((req, Some(_message), n)) => req.complete_ok(n),
            Ok((req, None, _)) => req.fail(NtStatus::STATUS_BUFFER_TOO_SMALL),
        }
    }

    fn write(&self, req: Request) -> Handled {
        let Some(data) = req.write_data() else {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        };
        let n = data.len();
        if n > proto::MAX_MESSAGE {
            return req.fail(NtStatus::STATUS_INVALID_BUFFER_SIZE);
        }
        // Under the messages lock: a read cannot pend between "no reader
        // took it" and "queued" and miss this message.
        let status = self.messages.with(|messages| {
            let Some(data) = (if messages.is_empty() { self.deliver_to_reader(data) } else { Some(data) }) else {
                return NtStatus::STATUS_SUCCESS;
            };
            if messages.len() >= proto::QUEUE_CAPACITY {
                return NtStatus::STATUS_DEVICE_BUSY;
            }
            let mut copy = Vec::new();
            if copy.try_reserve_exact(n).is_err() {
                return NtStatus::STATUS_INSUFFICIENT_RESOURCES;
            }
            copy.extend_from_slice(data);
            messages.push_back(copy);
            NtStatus::STATUS_SUCCESS
        });
        if status == NtStatus::STATUS_DEVICE_BUSY {
            self.writes_refused.fetch_add(1, Ordering::Relaxed);
        }
        if status.is_success() {
            req.complete_ok(n)
        } else {
            req.fail(status)
        }
    }

    fn ioctl(&self, req: Request) -> Handled {
        ioctl::dispatch(TABLE, self, req)
    }

    fn unload(&self) {
        self.delayed.signal.stop();
        drop(self.worker.take());
        self.pipe.signal.stop();
        drop(self.pipe_writer.take());
        self.rings.shutdown();
        self.ports.shutdown();
        self.lpc.shutdown();
        self.servers.clear();
        let cancelled = self.reads.close(NtStatus::STATUS_CANCELLED)
            + self.waiters.close(NtStatus::STATUS_CANCELLED)
            + self.delayed.queue.close(NtStatus::STATUS_CANCELLED);
        let discarded = self.messages.take();
        let dropped = discarded.len();
        drop(discarded);
        ntcomm_km::kprintln!("unload: {} pended requests cancelled, {} unread messages discarded", cancelled, dropped);
    }
}
