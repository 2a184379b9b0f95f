//! The driver as an LPC client of a user-mode server (`ntcomm lpc-server`):
//! `LPC_CONNECT` connects from a system thread, `LPC_ASK` calls the server
//! from worker threads under [`ntcomm_km::lpc::supervise`] (so the request
//! can be cancelled or time out while a call is stuck), `LPC_DISCONNECT`
//! closes. Dispatch never waits on LPC.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use ntcomm_demo_proto::{self as proto, LpcAsk, LpcConnect, LpcConnected, LpcTally, LpcViewRequest};
use ntcomm_km::ioctl::IoctlRequest;
use ntcomm_km::irp::Handled;
use ntcomm_km::lpc::{self, ConnectOptions, Ending, LpcClient, LpcError};
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::quota::Quota;
use ntcomm_km::sync::SpinLock;
use ntcomm_km::thread::{SystemThread, ThreadSet};
use ntcomm_km::{time, NtStatus};
use ntcomm_proto::lpc::MAX_BODY;

/// Largest body an ask may ask for: above the port's maximum on purpose
/// (the port refuses it, which the tally reports), bounded for allocation.
const MAX_ASK_BODY: usize = 1024;

/// Counters for `GET_STATS`.
#[derive(Default)]
pub struct LpcCounters {
    pub connects: AtomicU64,
    pub replies: AtomicU64,
    pub datagrams: AtomicU64,
    pub failures: AtomicU64,
}

pub struct Lpc {
    current: Arc<SpinLock<Option<Arc<LpcClient>>>>,
    /// Connecting requests, cancellable while the connect runs.
    connecting: Arc<IrpQueue>,
    threads: ThreadSet,
    pub counters: Arc<LpcCounters>,
    stopping: Arc<AtomicBool>,
    /// Threads of connects and asks running, per handle and in all.
    lpc_threads: Arc<LpcThreads>,
    /// Who may be the server: connects require the newest registered
    /// server's user SID (`ZwSecureConnectPort`).
    servers: Arc<crate::peer::Servers>,
}

/// LPC threads per handle and over the driver.
type LpcThreads = Quota<ntcomm_km::irp::FileId, { proto::LPC_MAX_THREADS as usize }>;

impl Lpc {
    pub fn new(servers: Arc<crate::peer::Servers>) -> Self {
        Self {
            servers,
            current: Arc::new(SpinLock::new(None)),
            connecting: Arc::new(IrpQueue::new()),
            threads: ThreadSet::new(),
            counters: Arc::new(LpcCounters::default()),
            stopping: Arc::new(AtomicBool::new(false)),
            lpc_threads: Arc::new(LpcThreads::new("LPC threads", proto::LPC_MAX_THREADS_PER_HANDLE, proto::LPC_MAX_THREADS)),
        }
    }

    /// LPC threads running (or about to) now.
    pub fn threads(&self) -> u64 {
        self.lpc_threads.used()
    }

    pub fn connected(&self) -> bool {
        self.current.with(|c| c.as_ref().is_some_and(|c| !c.is_closed()))
    }

    fn keep(&self, t: SystemThread) {
        self.threads.push(t);
    }

    /// Joins the threads that finished (joining them does not wait).
    pub fn reap(&self) {
        self.threads.reap();
    }

    /// `LPC_CONNECT`.
    pub fn connect(&self, req: IoctlRequest) -> Handled {
        let c: LpcConnect = match req.input_as() {
            Ok(c) => c,
            Err(s) => return req.fail(s),
        };
        let info_len = c.info_len as usize;
        if info_len > c.info.len() || c.view_size as usize > proto::LPC_MAX_VIEW || c.reserved != 0 {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.stopping.load(Ordering::Acquire) {
            return req.fail(NtStatus::STATUS_DELETE_PENDING);
        }
        // The server must run as the user of the newest registered server
        // process; with none registered the driver connects to nobody.
        let Some(sid) = self.servers.required_sid() else {
            return req.fail(NtStatus::STATUS_DEVICE_NOT_READY);
        };
        // The connecting thread, taken before it starts; given back when it ends.
        let charge = match self.lpc_threads.charge(req.file(), 1) {
            Ok(c) => c,
            Err(e) => return req.fail(e.status()),
        };
        let request = match req.into_request() {
            Ok(r) => r,
            Err(req) => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        };
        let file = request.file();
        let handled = self.connecting.pend(request);
        let (queue, current, counters) = (self.connecting.clone(), self.current.clone(), self.counters.clone());
        let servers = self.servers.clone();
        let run = move || {
            let _thread = charge;
            let mut reply = [0u8; 128];
            let info = c.info.get(..info_len).unwrap_or(&[]);
            let options = ConnectOptions { view_size: c.view_size as usize, required_server_sid: Some(sid), ..ConnectOptions::default() };
            let mut name = [0u8; proto::LPC_PORT_NAME_MAX];
            let n = proto::lpc_port_name(c.instance, &mut name);
            let name = core::str::from_utf8(name.get(..n).unwrap_or(&[])).unwrap_or(proto::LPC_PORT_NAME);
            let outcome = LpcClient::connect(name, info, &mut reply, options);
            if let Err(LpcError::WrongServer(_)) = outcome {
                servers.lpc_refused.fetch_add(1, Ordering::Relaxed);
                ntcomm_km::kprintln!("lpc: {} is served by another user than the registered server: refused", name);
            }
            // The request of this connect (by file; one connect per handle at a time
            // is the protocol), unless the caller cancelled it meanwhile.
            let Some(request) = queue.pop_if(|r| r.file() == file) else {
                return; // cancelled: a connected client is dropped, which closes it
            };
            let Ok(req) = IoctlRequest::from_request(request) else { return };
            match outcome {
                Ok((client, n)) => {
                    let out = LpcConnected {
                        max_message: client.max_message() as u32,
                        info_len: n.min(reply.len()) as u32,
                        view_size: client.view().map_or(0, |v| v.len() as u64),
                        info: reply,
                    };
                    counters.connects.fetch_add(1, Ordering::Relaxed);
                    let old = current.replace(Some(Arc::new(client)));
                    drop(old); // closes the previous connection, if any
                    let _ = req.reply(&out);
                }
                Err(e) => {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    let _ = req.fail(e.status());
                }
            }
        };
        match SystemThread::spawn(run) {
            Ok(t) => self.keep(t),
            Err(_) => {
                let _ = self.connecting.pop_if(|r| r.file() == file).map(|r| r.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES));
            }
        }
        handled
    }

    /// `LPC_DISCONNECT`.
    pub fn disconnect(&self) -> Result<(), NtStatus> {
        let old = self.current.take();
        match old {
            Some(c) => {
                c.close();
                Ok(())
            }
            None => Err(NtStatus::STATUS_PORT_DISCONNECTED),
        }
    }

    /// `LPC_ASK`.
    pub fn ask(&self, req: IoctlRequest) -> Handled {
        let ask: LpcAsk = match req.input_as() {
            Ok(a) => a,
            Err(s) => return req.fail(s),
        };
        let Some(client) = self.current.with(|c| c.clone()).filter(|c| !c.is_closed()) else {
            return req.fail(NtStatus::STATUS_PORT_DISCONNECTED);
        };
        let view_ok = match ask.kind {
            proto::LPC_KIND_VIEW => client.view().is_some_and(|v| {
                let need = (ask.view_len as usize).checked_mul(ask.workers as usize);
                ask.view_len as usize >= proto::RECORD_MIN && need.is_some_and(|n| n <= v.len())
            }),
            proto::LPC_KIND_REQUEST | proto::LPC_KIND_DATAGRAM => ask.view_len == 0,
            _ => false,
        };
        if !view_ok || !(1..=proto::LPC_MAX_WORKERS).contains(&ask.workers) || ask.body_len as usize > MAX_ASK_BODY {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        // The supervisor, its worker and the ask's workers, taken before any
        // starts; given back when the supervisor ends (after joining them).
        let charge = match self.lpc_threads.charge(req.file(), u64::from(ask.workers) + 2) {
            Ok(c) => c,
            Err(e) => return req.fail(e.status()),
        };
        let request = match req.into_request() {
            Ok(r) => r,
            Err(req) => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        };
        let timeout = (ask.timeout_ms != 0).then(|| Duration::from_millis(ask.timeout_ms.into()));
        let (counters, stopping) = (self.counters.clone(), self.stopping.clone());
        let (current, failed_client) = (self.current.clone(), client.clone());
        let (handled, supervisor) = lpc::supervise(
            client,
            request,
            timeout,
            move |client: &Arc<LpcClient>| run_ask(client, ask, &counters, &stopping),
            |request, tally: LpcTally| match IoctlRequest::from_request(request) {
                Ok(r) => r.reply(&tally),
                Err(r) => r.fail(NtStatus::STATUS_INVALID_PARAMETER),
            },
            move |ending| {
                drop(charge);
                if ending != Ending::Finished {
                    // Cancelled or timed out: that connection is closed; forget it.
                    // Taken out, so that the client (whose drop closes a
                    // handle) is dropped after the lock is released.
                    let forgotten = current.with(|cur| match cur {
                        Some(c) if Arc::ptr_eq(c, &failed_client) => cur.take(),
                        _ => None,
                    });
                    drop(forgotten);
                }
            },
        );
        if let Some(t) = supervisor {
            self.keep(t);
        }
        handled
    }

    /// The handle closed: its pending connect ends (the connection itself is
    /// the driver's, not the handle's, and stays).
    pub fn cleanup(&self, file: ntcomm_km::irp::FileId) {
        self.connecting.drain_file(file, NtStatus::STATUS_CANCELLED);
    }

    /// Unload: close the connection (the server sees the port closed), fail
    /// pending connects, join every thread.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(c) = self.current.take() {
            c.close();
        }
        self.connecting.close(NtStatus::STATUS_CANCELLED);
        self.threads.join_all();
    }
}

/// The work of one ask: `workers` threads, each sending `count` messages.
fn run_ask(client: &Arc<LpcClient>, ask: LpcAsk, counters: &Arc<LpcCounters>, stopping: &Arc<AtomicBool>) -> LpcTally {
    let total = Arc::new(SpinLock::new(LpcTally::default()));
    let mut workers = Vec::new();
    for w in 0..ask.workers {
        let (t, cl, c, s) = (total.clone(), client.clone(), counters.clone(), stopping.clone());
        match SystemThread::spawn(move || {
            let mine = ask_some(&cl, ask, w, &c, &s);
            t.with(|t| merge(t, &mine));
        }) {
            Ok(h) => workers.push(h),
            Err(e) => total.with(|t| {
                t.failed += u64::from(ask.count);
                if t.first_error == 0 {
                    t.first_error = e.status.0;
                }
            }),
        }
    }
    drop(workers); // joins
    total.get()
}

fn merge(into: &mut LpcTally, from: &LpcTally) {
    into.sent += from.sent;
    into.replied += from.replied;
    into.mismatched += from.mismatched;
    into.failed += from.failed;
    if into.first_error == 0 {
        into.first_error = from.first_error;
    }
    for (a, b) in into.rtt_hist.iter_mut().zip(from.rtt_hist.iter()) {
        *a += b;
    }
}

fn fail(t: &mut LpcTally, counters: &LpcCounters, e: &LpcError) {
    t.failed += 1;
    counters.failures.fetch_add(1, Ordering::Relaxed);
    if t.first_error == 0 {
        t.first_error = e.status().0;
    }
}

/// One worker: `count` messages of request numbers `worker << 32 | i`.
fn ask_some(client: &LpcClient, ask: LpcAsk, worker: u32, counters: &LpcCounters, stopping: &AtomicBool) -> LpcTally {
    let mut t = LpcTally::default();
    let body_len = ask.body_len as usize;
    let mut body = Vec::new();
    let mut payload = Vec::new();
    let view_len = ask.view_len as usize;
    if body.try_reserve_exact(body_len).is_err() || payload.try_reserve_exact(view_len).is_err() {
        t.failed = u64::from(ask.count);
        t.first_error = NtStatus::STATUS_INSUFFICIENT_RESOURCES.0;
        return t;
    }
    body.resize(body_len, 0);
    payload.resize(view_len, 0);
    let mut reply = [0u8; MAX_BODY];
    let mut expect = [0u8; MAX_ASK_BODY];
    let view_offset = view_len * worker as usize;
    for i in 0..ask.count {
        // Closed: the ask was cancelled or timed out (or a newer connect
        // replaced this one): every further call would fail.
        if stopping.load(Ordering::Acquire) || client.is_closed() {
            break;
        }
        let seq = (u64::from(worker) << 32) | u64::from(i);
        let started = time::interrupt_time();
        let outcome = match ask.kind {
            proto::LPC_KIND_DATAGRAM => {
                proto::lpc_fill_request(seq, &mut body);
                client.datagram(&body).map(|()| {
                    counters.datagrams.fetch_add(1, Ordering::Relaxed);
                    true
                })
            }
            proto::LPC_KIND_VIEW => {
                proto::lpc_fill_request(seq, &mut payload);
                let Some(view) = client.view() else { break };
                if view.write(view_offset, &payload).is_err() {
                    break;
                }
                let vr =
                    LpcViewRequest { offset: view_offset as u64, len: view_len as u64, checksum: proto::checksum(&payload), reserved: 0 };
                match client.call(&proto::LPC_VIEW, &vr) {
                    Ok(r) => Ok(r.checksum == vr.checksum && r.matched == 1),
                    // Answered, but not as declared.
                    Err(LpcError::BadReply(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            _ => {
                proto::lpc_fill_request(seq, &mut body);
                let want = proto::lpc_answer(&body, &mut expect);
                client.request(&body, &mut reply).map(|n| match (want, expect.get(..n), reply.get(..n)) {
                    (Some(w), Some(e), Some(r)) => w == n && e == r,
                    _ => false,
                })
            }
        };
        match outcome {
            Ok(matched) => {
                t.sent += 1;
                if ask.kind == proto::LPC_KIND_DATAGRAM {
                    continue;
                }
                if matched {
                    t.replied += 1;
                    counters.replies.fetch_add(1, Ordering::Relaxed);
                    let us = time::interrupt_time().saturating_sub(started) / 10;
                    if let Some(b) = t.rtt_hist.get_mut(proto::rtt_bucket(us)) {
                        *b += 1;
                    }
                } else {
                    t.mismatched += 1;
                }
            }
            Err(e) => {
                // The server (or our end) is gone, or the port refuses this
                // size: the rest would fail the same way, and a loop of
                // failing calls that never reach the port would not even
                // notice a close (it ran on after cancel until unload).
                let gone = matches!(e, LpcError::Disconnected(_) | LpcError::TooLong(_));
                fail(&mut t, counters, &e);
                if gone {
                    let left = u64::from(ask.count - i - 1);
                    t.failed += left;
                    break;
                }
            }
        }
    }
    t
}
