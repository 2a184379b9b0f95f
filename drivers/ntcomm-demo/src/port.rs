//! The Filter Manager communication port `\NtCommPort`: clients send
//! commands (answered in the message callback: an echo), and the driver
//! asks clients questions with `FltSendMessage` (`PORT_ASK`), the shape of
//! an endpoint-protection driver asking its service for verdicts.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use ntcomm_demo_proto::{self as proto, PortAsk, PortTally};
use ntcomm_km::device::Device;
use ntcomm_km::flt::{Filter, Port, PortHandler, SendError};
use ntcomm_km::ioctl::IoctlRequest;
use ntcomm_km::irp::{FileId, Handled};
use ntcomm_km::queue::IrpQueue;
use ntcomm_km::quota::{Charge, Quota};
use ntcomm_km::sync::SpinLock;
use ntcomm_km::thread::{SystemThread, ThreadSet};
use ntcomm_km::{time, NtStatus};

/// Counters of the port.
#[derive(Default)]
pub struct PortCounters {
    pub clients: AtomicU64,
    pub refused: AtomicU64,
    pub disconnects: AtomicU64,
    pub messages: AtomicU64,
}

/// The port's behaviour.
pub struct Handler {
    counters: Arc<PortCounters>,
}

/// Per-client state: its number, for diagnostics.
pub struct Connection;

impl PortHandler for Handler {
    type Connection = Connection;
    // The port refuses longer messages before allocating (the echo's reply
    // is as long as the message).
    const MAX_MESSAGE: usize = proto::MAX_PORT_MESSAGE;
    const MAX_REPLY: usize = proto::MAX_PORT_MESSAGE;

    fn connect(&self, context: &[u8]) -> Result<Connection, NtStatus> {
        if context != proto::PORT_CONTEXT {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        self.counters.clients.fetch_add(1, Ordering::Relaxed);
        Ok(Connection)
    }

    fn disconnect(&self, _c: &Connection) {
        self.counters.clients.fetch_sub(1, Ordering::Relaxed);
        self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    fn message(&self, _c: &Connection, input: &[u8], output: &mut [u8]) -> Result<usize, NtStatus> {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        if input.len() > proto::MAX_PORT_MESSAGE {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let out = output.get_mut(..input.len()).ok_or(NtStatus::STATUS_BUFFER_TOO_SMALL)?;
        out.copy_from_slice(input);
        Ok(input.len())
    }
}

/// The port and its filter registration (absent when the Filter Manager
/// refused the registration, e.g. a minifilter installed without its
/// instance configuration on Windows).
pub struct Ports {
    port: SpinLock<Option<Arc<Port<Handler>>>>,
    filter: SpinLock<Option<Filter>>,
    pub counters: Arc<PortCounters>,
    stopping: Arc<AtomicBool>,
    askers: ThreadSet,
    /// Pended `PORT_ASK`s, each tagged with its ask number: cancellable
    /// (`CancelIoEx`, the client's exit, its handle's close) while their
    /// questions are asked. An ask whose request is gone stops asking.
    asking: Arc<IrpQueue>,
    next_ask: AtomicU64,
    /// Threads of asks running, per handle and in all.
    threads: Arc<AskThreads>,
}

/// `PORT_ASK` threads per handle and over the driver.
type AskThreads = Quota<FileId, { proto::PORT_ASK_MAX_THREADS as usize }>;
type AskCharge = Charge<FileId, { proto::PORT_ASK_MAX_THREADS as usize }>;

impl Ports {
    pub fn new(device: &Device) -> Self {
        let counters = Arc::new(PortCounters::default());
        let opened = Filter::register(device.driver(), None).and_then(|filter| {
            let port = Port::create(&filter, proto::PORT_NAME, proto::PORT_MAX_CONNECTIONS, Handler { counters: counters.clone() })?;
            Ok((filter, port))
        });
        let (filter, port) = match opened {
            Ok((f, p)) => (Some(f), Some(Arc::new(p))),
            Err(e) => {
                ntcomm_km::kprintln!("no Filter Manager port: {}", e);
                (None, None)
            }
        };
        Self {
            port: SpinLock::new(port),
            filter: SpinLock::new(filter),
            counters,
            stopping: Arc::new(AtomicBool::new(false)),
            askers: ThreadSet::new(),
            asking: Arc::new(IrpQueue::new()),
            next_ask: AtomicU64::new(1),
            threads: Arc::new(AskThreads::new("PORT_ASK threads", proto::PORT_ASK_MAX_THREADS_PER_HANDLE, proto::PORT_ASK_MAX_THREADS)),
        }
    }

    /// Ask threads running (or about to) now.
    pub fn threads(&self) -> u64 {
        self.threads.used()
    }

    pub fn available(&self) -> bool {
        self.port.with(|p| p.is_some())
    }

    /// Joins the ask threads that finished (joining them does not wait).
    pub fn reap(&self) {
        self.askers.reap();
    }

    /// `PORT_ASK`: pends; a system thread runs the senders and completes it.
    pub fn ask(&self, req: IoctlRequest) -> Handled {
        self.reap();
        let ask: PortAsk = match req.input_as() {
            Ok(a) => a,
            Err(s) => return req.fail(s),
        };
        let Some(port) = self.port.with(|p| p.clone()) else {
            return req.fail(NtStatus::STATUS_NOT_SUPPORTED);
        };
        let len = ask.question_len as usize;
        if !(1..=16).contains(&ask.threads) || !(proto::RECORD_MIN..=proto::MAX_PORT_MESSAGE).contains(&len) || ask.reserved != 0 {
            return req.fail(NtStatus::STATUS_INVALID_PARAMETER);
        }
        // The ask's thread and its senders, taken before any starts.
        let charge = match self.threads.charge(req.file(), u64::from(ask.threads) + 1) {
            Ok(c) => c,
            Err(e) => {
                ntcomm_km::kprintln!("PORT_ASK refused: {}", e);
                return req.fail(e.status());
            }
        };
        let mut request = match req.into_request() {
            Ok(r) => r,
            Err(req) => return req.fail(NtStatus::STATUS_INVALID_DEVICE_REQUEST),
        };
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed) as usize;
        request.set_tag((id, 0));
        let handled = self.asking.pend(request);
        let (stopping, asking) = (self.stopping.clone(), self.asking.clone());
        match SystemThread::spawn(move || run_ask(port, ask, id, &asking, &stopping, charge)) {
            Ok(t) => self.askers.push(t),
            Err(e) => {
                ntcomm_km::kprintln!("PORT_ASK thread: {}", e);
                let _ = self.asking.pop_if(|r| r.tag().0 == id).map(|r| r.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES));
            }
        }
        handled
    }

    /// The handle closed (or its process died): its asks end.
    pub fn cleanup(&self, file: FileId) {
        self.asking.drain_file(file, NtStatus::STATUS_CANCELLED);
    }

    /// Unload: stop askers, disconnect clients, close the port, unregister.
    /// Every wait happens outside the spin locks.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        let port = self.port.take();
        if let Some(p) = port.as_ref() {
            for c in p.clients() {
                c.disconnect();
            }
        }
        self.askers.join_all();
        self.asking.close(NtStatus::STATUS_CANCELLED);
        drop(port);
        drop(self.filter.take());
    }
}

/// Whether ask `id` still has its request (not cancelled).
fn wanted(asking: &IrpQueue, id: usize) -> bool {
    let mut found = false;
    asking.visit(|r| found |= r.tag().0 == id);
    found
}

fn run_ask(port: Arc<Port<Handler>>, ask: PortAsk, id: usize, asking: &Arc<IrpQueue>, stopping: &Arc<AtomicBool>, charge: AskCharge) {
    let tally = Arc::new(SpinLock::new(PortTally::default()));
    let mut senders = Vec::new();
    for t in 0..ask.threads {
        let (p, shared, stop, q) = (port.clone(), tally.clone(), stopping.clone(), asking.clone());
        match SystemThread::spawn(move || ask_some(&p, ask, t, &shared, &stop, &q, id)) {
            Ok(s) => senders.push(s),
            Err(_) => tally.with(|t| t.failed += u64::from(ask.questions.div_ceil(ask.threads))),
        }
    }
    drop(senders); // joins
                   // The senders are gone: their room is free before the caller hears.
    drop(charge);
    let result = tally.get();
    // Gone if it was cancelled meanwhile (completed by the cancel routine).
    let _ = asking.pop_if(|r| r.tag().0 == id).map(|request| match IoctlRequest::from_request(request) {
        Ok(r) => r.reply(&result),
        Err(r) => r.fail(NtStatus::STATUS_INVALID_PARAMETER),
    });
}

fn ask_some(
    port: &Port<Handler>,
    ask: PortAsk,
    thread: u32,
    tally: &SpinLock<PortTally>,
    stopping: &AtomicBool,
    asking: &IrpQueue,
    id: usize,
) {
    let mut question = Vec::new();
    if question.try_reserve_exact(ask.question_len as usize).is_err() {
        return;
    }
    question.resize(ask.question_len as usize, 0);
    let timeout = (ask.timeout_ms != 0).then(|| Duration::from_millis(ask.timeout_ms.into()));
    let mut seq = u64::from(thread);
    while seq < u64::from(ask.questions) && !stopping.load(Ordering::Acquire) && wanted(asking, id) {
        proto::fill_record(seq, &mut question);
        let clients = port.clients();
        let mut t = PortTally::default();
        match clients.get((seq as usize) % clients.len().max(1)) {
            None => t.disconnected = 1,
            Some(client) => {
                let started = time::interrupt_time();
                let outcome = if ask.want_reply != 0 {
                    client.call(&proto::PORT_QUESTION, &question[..], timeout).map(Some)
                } else {
                    client.post(&proto::PORT_NOTICE, &question[..], timeout).map(|()| None)
                };
                let rtt_us = time::interrupt_time().saturating_sub(started) / 10;
                match outcome {
                    Ok(verdict) => {
                        t.sent = 1;
                        if let Some(v) = verdict {
                            t.replied = 1;
                            if let Some(slot) = t.rtt_hist.get_mut(proto::rtt_bucket(rtt_us)) {
                                *slot = 1;
                            }
                            match v.allow {
                                1 if v.seq.get() == seq => t.allowed = 1,
                                0 if v.seq.get() == seq => t.denied = 1,
                                _ => t.bad_replies = 1,
                            }
                        }
                    }
                    Err(SendError::Timeout) => {
                        t.sent = 1;
                        t.timeouts = 1;
                    }
                    Err(SendError::Disconnected) => t.disconnected = 1,
                    Err(SendError::ReplyTruncated(_) | SendError::BadReply(_)) => {
                        t.sent = 1;
                        t.replied = 1;
                        t.bad_replies = 1;
                    }
                    Err(SendError::Failed(_)) => t.failed = 1,
                }
            }
        }
        tally.with(|all| {
            all.sent += t.sent;
            all.replied += t.replied;
            all.allowed += t.allowed;
            all.denied += t.denied;
            all.bad_replies += t.bad_replies;
            all.timeouts += t.timeouts;
            all.disconnected += t.disconnected;
            all.failed += t.failed;
            for (a, b) in all.rtt_hist.iter_mut().zip(t.rtt_hist.iter()) {
                *a += b;
            }
        });
        seq += u64::from(ask.threads);
    }
}
