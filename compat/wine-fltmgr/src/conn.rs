//! Connections (the `PFLT_PORT` client ports): the handshake, the two
//! threads that serve a connection's pipes, `FltSendMessage`'s delivery and
//! reply wait, and the end of a connection.
//!
//! Threads per connection:
//! - **control**: reads `FilterSendMessage` requests from the control pipe,
//!   runs MessageNotify, writes the answer. The only thread that runs
//!   MessageNotify for this connection.
//! - **reply**: reads `FilterReplyMessage` requests from the reply pipe and
//!   hands each reply to the `FltSendMessage` waiting for it; keeps a read
//!   pending on the message pipe, which completes when the client closes
//!   the port handle (or dies). It never calls the driver.
//!
//! When either ends the connection, the other follows; the last one out
//! calls DisconnectNotify (unless the driver closed the client port first)
//! and releases the port's connection slot.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::time::Duration;

use ntcomm_km::proto::NtStatus;
use ntcomm_km::sync::{sleep, SpinLock};
use ntcomm_km::thread::SystemThread;
use wine_fltport::{ConnectRequest, CtlRequest, CtlResponse, MessageHeader};
use zerocopy::{FromBytes, IntoBytes};

use crate::io::{self, Deadline, Handle, Op, Outcome};
use crate::{Filter, ServerPort, STATE};

const STATUS_REVISION_MISMATCH: i32 = 0xC000_0059u32 as i32;
const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;
const STATUS_OBJECT_NAME_INVALID: i32 = 0xC000_0033u32 as i32;
/// Longest port name accepted, in UTF-16 units.
pub const MAX_NAME_CHARS: usize = 1024;
/// Longest connection context (Windows carries it in an EA: 16-bit length).
pub const MAX_CONTEXT: usize = 0xFFFF;
const CTL_HEADER: usize = core::mem::size_of::<CtlRequest>();
const READ_LIMIT: usize = CTL_HEADER + wine_fltport::MAX_BODY;

static NEXT_MESSAGE_ID: AtomicU64 = AtomicU64::new(1);

/// A sender waiting for the reply to message `id`.
struct Waiter {
    id: u64,
    /// The driver's reply buffer; written only by whoever removed this
    /// waiter from the connection's list, while the sender still waits.
    buf: *mut u8,
    cap: usize,
    result: SpinLock<(i32, u32)>,
    done: Handle,
}

// SAFETY: `buf` is written by exactly one thread (the one that removed the
// waiter from the list) while the sender is blocked on `done`; everything
// else is synchronised (spin lock, kernel event).
unsafe impl Send for Waiter {}
// SAFETY: as above.
unsafe impl Sync for Waiter {}

impl Waiter {
    fn complete(&self, status: i32, len: u32) {
        self.result.replace((status, len));
        io::set(&self.done);
    }
}

/// [`Connection::notify`] states.
const CONNECTING: u8 = 0;
const DUE: u8 = 1;
const NOT_OWED: u8 = 2;

/// The calling thread's id.
fn current_thread() -> usize {
    // SAFETY: no arguments; the id of the calling thread.
    unsafe { crate::ffi::PsGetCurrentThreadId() as usize }
}

/// One connection: the object behind a `PFLT_PORT` client port.
pub struct Connection {
    pub(crate) port: Arc<ServerPort>,
    cookie: AtomicUsize,
    msg: Handle,
    ctl: Handle,
    rpl: Handle,
    /// Signalled once when the connection ends, for any reason.
    dead_ev: Handle,
    dead: AtomicBool,
    /// Whether DisconnectNotify is owed: [`CONNECTING`] until ConnectNotify
    /// has accepted, then [`DUE`], and [`NOT_OWED`] once the driver closed the
    /// client port (also during ConnectNotify) or the notification was made.
    notify: AtomicU8,
    /// The thread making the DisconnectNotify call (0: none): FltCloseClientPort
    /// from another thread waits for it to return, so that a driver that closed
    /// its client port may free what the callback uses.
    notifying: AtomicUsize,
    threads_live: AtomicU32,
    slot_held: AtomicBool,
    waiters: SpinLock<Vec<Arc<Waiter>>>,
}

impl Connection {
    /// Ends the connection: no more traffic, every waiting sender gets
    /// `STATUS_PORT_DISCONNECTED`, the threads wake and leave. Idempotent.
    pub fn end(&self) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        io::set(&self.dead_ev);
        let waiters = self.waiters.take();
        for w in waiters {
            w.complete(NtStatus::STATUS_PORT_DISCONNECTED.0, 0);
        }
    }

    /// The driver closed the client port: DisconnectNotify is no longer owed,
    /// and one already under way on another thread has returned when this does.
    pub fn closed_by_driver(&self) {
        self.notify.store(NOT_OWED, Ordering::SeqCst);
        self.end();
        let me = current_thread();
        loop {
            let n = self.notifying.load(Ordering::SeqCst);
            if n == 0 || n == me {
                break;
            }
            sleep(Duration::from_millis(1));
        }
    }

    fn release_slot(&self) {
        if self.slot_held.swap(false, Ordering::SeqCst) {
            self.port.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn thread_exit(&self) {
        self.end();
        if self.threads_live.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Announced before it is claimed: a FltCloseClientPort that still
            // sees no notifier has already made the claim below fail.
            self.notifying.store(current_thread(), Ordering::SeqCst);
            if self.notify.compare_exchange(DUE, NOT_OWED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                if let Some(f) = self.port.disconnect {
                    // SAFETY: the driver's callback with the cookie its
                    // ConnectNotify returned; called once (the claim above).
                    unsafe { f(self.cookie.load(Ordering::SeqCst) as *mut c_void) };
                }
            }
            self.notifying.store(0, Ordering::SeqCst);
            self.release_slot();
        }
    }

    /// `FltSendMessage` on this connection. `reply`: the driver's buffer and
    /// its size. Returns the status and the reply bytes copied.
    pub fn send(&self, body: &[u8], reply: Option<(*mut u8, u32)>, deadline: Deadline) -> (i32, u32) {
        if self.dead.load(Ordering::SeqCst) {
            return (NtStatus::STATUS_PORT_DISCONNECTED.0, 0);
        }
        let id = NEXT_MESSAGE_ID.fetch_add(1, Ordering::Relaxed);
        let header = MessageHeader {
            reply_length: reply.map_or(0, |(_, cap)| cap.saturating_add(core::mem::size_of::<wine_fltport::ReplyHeader>() as u32)),
            reserved: 0,
            message_id: id,
        };
        let mut msg = Vec::new();
        if msg.try_reserve_exact(body.len().saturating_add(16)).is_err() {
            return (NtStatus::STATUS_INSUFFICIENT_RESOURCES.0, 0);
        }
        msg.extend_from_slice(header.as_bytes());
        msg.extend_from_slice(body);

        let waiter = match reply {
            Some((buf, cap)) => {
                let Ok(done) = io::event(true) else {
                    return (NtStatus::STATUS_INSUFFICIENT_RESOURCES.0, 0);
                };
                let w = Arc::new(Waiter { id, buf, cap: cap as usize, result: SpinLock::new((0, 0)), done });
                let added = self.waiters.with(|list| {
                    if self.dead.load(Ordering::SeqCst) {
                        return false;
                    }
                    list.push(w.clone());
                    true
                });
                if !added {
                    return (NtStatus::STATUS_PORT_DISCONNECTED.0, 0);
                }
                Some(w)
            }
            None => None,
        };
        let Ok(mut op) = Op::new() else {
            return self.give_up(waiter, NtStatus::STATUS_INSUFFICIENT_RESOURCES.0);
        };
        // SAFETY: `msg` outlives the operation: `complete` returns only once
        // it is done or cancelled and reaped.
        let started = unsafe { op.start_write(&self.msg, &msg) };
        match op.complete(started, &self.msg, Some(&self.dead_ev), deadline) {
            Outcome::Done(s, _) if !io::is_error(s) => {}
            Outcome::Done(..) | Outcome::Stopped => return self.give_up(waiter, NtStatus::STATUS_PORT_DISCONNECTED.0),
            Outcome::TimedOut => return self.give_up(waiter, NtStatus::STATUS_TIMEOUT.0),
        }
        let Some(w) = waiter else {
            return (0, 0);
        };
        if io::wait_any(&[w.done.raw()], deadline).is_none() {
            return self.give_up(Some(w), NtStatus::STATUS_TIMEOUT.0);
        }
        w.result.get()
    }

    /// Withdraws a waiter and returns `status`; if a reply (or the end of
    /// the connection) took it first, waits for that and returns its result.
    fn give_up(&self, waiter: Option<Arc<Waiter>>, status: i32) -> (i32, u32) {
        let Some(w) = waiter else {
            return (status, 0);
        };
        let removed = self.waiters.with(|list| list.iter().position(|x| Arc::ptr_eq(x, &w)).map(|i| list.swap_remove(i)));
        if removed.is_some() {
            return (status, 0);
        }
        io::wait_any(&[w.done.raw()], Deadline::Never);
        w.result.get()
    }

    /// Hands a reply to the sender waiting for `id`.
    fn deliver_reply(&self, id: u64, body: &[u8]) -> i32 {
        let w = self.waiters.with(|list| list.iter().position(|x| x.id == id).map(|i| list.swap_remove(i)));
        let Some(w) = w else {
            return wine_fltport::STATUS_FLT_NO_WAITER_FOR_REPLY;
        };
        let n = body.len().min(w.cap);
        if n > 0 {
            // SAFETY: we removed the waiter, so we alone write its buffer,
            // and its sender is blocked until `complete` below: the driver's
            // reply buffer is valid for `cap` bytes.
            unsafe { core::ptr::copy_nonoverlapping(body.as_ptr(), w.buf, n) };
        }
        let status = if body.len() > w.cap { NtStatus::STATUS_BUFFER_OVERFLOW.0 } else { 0 };
        w.complete(status, n as u32);
        status
    }

    /// Runs MessageNotify for one control-pipe request; the answer to write.
    fn handle_send(&self, msg: &mut [u8]) -> Vec<u8> {
        let (status, out) = self.message_notify(msg);
        let mut resp = Vec::with_capacity(8 + out.len());
        resp.extend_from_slice(CtlResponse { status, body_len: out.len() as u32 }.as_bytes());
        resp.extend_from_slice(&out);
        resp
    }

    fn message_notify(&self, msg: &mut [u8]) -> (i32, Vec<u8>) {
        let invalid = (NtStatus::STATUS_INVALID_PARAMETER.0, Vec::new());
        let Ok((req, _)) = CtlRequest::read_from_prefix(msg) else {
            return invalid;
        };
        let Some(input) = msg.get_mut(CTL_HEADER..) else {
            return invalid;
        };
        if req.kind != wine_fltport::kind::SEND
            || input.len() != req.body_len as usize
            || req.out_capacity as usize > wine_fltport::MAX_BODY
        {
            return invalid;
        }
        let Some(notify) = self.port.message else {
            return (NtStatus::STATUS_NOT_SUPPORTED.0, Vec::new());
        };
        let cap = req.out_capacity as usize;
        let mut out = Vec::new();
        if out.try_reserve_exact(cap).is_err() {
            return (NtStatus::STATUS_INSUFFICIENT_RESOURCES.0, Vec::new());
        }
        out.resize(cap, 0);
        let mut returned: u32 = 0;
        let in_ptr = if input.is_empty() { core::ptr::null_mut() } else { input.as_mut_ptr().cast::<c_void>() };
        let out_ptr = if cap == 0 { core::ptr::null_mut() } else { out.as_mut_ptr().cast::<c_void>() };
        // SAFETY: the driver's callback with its connection cookie; input
        // and output are pool buffers of the stated sizes, alive for the
        // call; `returned` is a live local.
        let status = unsafe {
            notify(self.cookie.load(Ordering::SeqCst) as *mut c_void, in_ptr, input.len() as u32, out_ptr, cap as u32, &mut returned)
        };
        out.truncate((returned as usize).min(cap));
        (status, out)
    }
}

/// The control thread: FilterSendMessage requests.
fn control_thread(conn: Arc<Connection>) {
    serve_control(&conn);
    conn.thread_exit();
}

fn serve_control(conn: &Connection) {
    let Ok(mut op) = Op::new() else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let len = buf.len() as u32;
        // SAFETY: `buf` is untouched until `complete` returns.
        let started = unsafe { op.start_read(&conn.ctl, buf.as_mut_ptr(), len) };
        let Outcome::Done(status, n) = op.complete(started, &conn.ctl, Some(&conn.dead_ev), Deadline::Never) else {
            return;
        };
        let Ok(total) = io::rest_of_message(&mut op, &conn.ctl, &mut buf, status, n, READ_LIMIT, &conn.dead_ev) else {
            return;
        };
        let Some(msg) = buf.get_mut(..total) else {
            return;
        };
        let resp = conn.handle_send(msg);
        // SAFETY: `resp` outlives the operation.
        let started = unsafe { op.start_write(&conn.ctl, &resp) };
        match op.complete(started, &conn.ctl, Some(&conn.dead_ev), Deadline::Never) {
            Outcome::Done(s, _) if !io::is_error(s) => {}
            _ => return,
        }
        if buf.len() > 64 * 1024 {
            // Do not keep a large buffer for the connection's lifetime.
            buf = vec![0u8; 4096];
        }
    }
}

/// The reply thread: FilterReplyMessage requests, and the watch on the
/// message pipe.
fn reply_thread(conn: Arc<Connection>) {
    serve_replies(&conn);
    conn.thread_exit();
}

fn serve_replies(conn: &Connection) {
    let (Ok(mut watch), Ok(mut op)) = (Op::new(), Op::new()) else {
        return;
    };
    let mut watch_buf: Box<[u8; 64]> = Box::new([0; 64]);
    let mut buf = vec![0u8; 4096];
    // SAFETY: the buffers stay untouched while their reads are pending and
    // outlive them (both are reaped before returning).
    let mut w = unsafe { watch.start_read(&conn.msg, watch_buf.as_mut_ptr(), 64) };
    // SAFETY: as above.
    let mut r = unsafe { op.start_read(&conn.rpl, buf.as_mut_ptr(), buf.len() as u32) };
    loop {
        if let Some(Outcome::Done(status, _)) = w.take() {
            if io::is_error(status) {
                break; // the client closed the port handle, or died
            }
            // The client never writes to the message pipe; ignore and watch on.
            // SAFETY: as above.
            w = unsafe { watch.start_read(&conn.msg, watch_buf.as_mut_ptr(), 64) };
            continue;
        }
        if let Some(Outcome::Done(status, n)) = r.take() {
            if !serve_one_reply(conn, &mut op, &mut buf, status, n) {
                break;
            }
            if buf.len() > 64 * 1024 {
                buf = vec![0u8; 4096];
            }
            // SAFETY: as above.
            r = unsafe { op.start_read(&conn.rpl, buf.as_mut_ptr(), buf.len() as u32) };
            continue;
        }
        match io::wait_any(&[conn.dead_ev.raw(), watch.event(), op.event()], Deadline::Never) {
            Some(1) => w = Some(watch.finish()),
            Some(2) => r = Some(op.finish()),
            _ => break,
        }
    }
    watch.reap(&conn.msg);
    op.reap(&conn.rpl);
}

/// One FilterReplyMessage request whose first read ended with `status`,
/// `n`; `false` if the connection is over.
fn serve_one_reply(conn: &Connection, op: &mut Op, buf: &mut Vec<u8>, status: i32, n: usize) -> bool {
    let Ok(total) = io::rest_of_message(op, &conn.rpl, buf, status, n, READ_LIMIT, &conn.dead_ev) else {
        return false;
    };
    let msg = buf.get(..total).unwrap_or(&[]);
    let status = match CtlRequest::read_from_prefix(msg) {
        Ok((req, body)) if req.kind == wine_fltport::kind::REPLY && body.len() == req.body_len as usize => {
            conn.deliver_reply(req.message_id, body)
        }
        _ => NtStatus::STATUS_INVALID_PARAMETER.0,
    };
    let resp = CtlResponse { status, body_len: 0 };
    // SAFETY: `resp` outlives the operation.
    let started = unsafe { op.start_write(&conn.rpl, resp.as_bytes()) };
    matches!(op.complete(started, &conn.rpl, Some(&conn.dead_ev), Deadline::Never), Outcome::Done(s, _) if !io::is_error(s))
}

fn fold(c: u16) -> u16 {
    if (b'a' as u16..=b'z' as u16).contains(&c) {
        c - 32
    } else {
        c
    }
}

/// Port names compare case-insensitively (ASCII letters only).
pub fn same_name(a: &[u16], b: &[u16]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold(*x) == fold(*y))
}

/// The pipe base from the request: up to the first NUL, non-empty, only
/// `[A-Za-z0-9._-]`.
fn pipe_base(req: &ConnectRequest) -> Option<String> {
    let len = req.pipe_base.iter().position(|&c| c == 0).unwrap_or(req.pipe_base.len());
    let units = req.pipe_base.get(..len)?;
    if units.is_empty() {
        return None;
    }
    let mut s = String::with_capacity(len);
    for &u in units {
        let c = char::from_u32(u as u32)?;
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return None;
        }
        s.push(c);
    }
    Some(s)
}

/// Counts a CONNECT in progress for a filter, so unregistering can wait
/// for it.
struct Connecting(Arc<Filter>);
impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `IOCTL_CONNECT` (on winedevice's dispatch thread): returns the status to
/// complete the request with. Never waits for the client.
pub fn connect(input: &mut [u8]) -> i32 {
    let invalid = NtStatus::STATUS_INVALID_PARAMETER.0;
    let Ok((req, _)) = ConnectRequest::read_from_prefix(input) else {
        return invalid;
    };
    if req.version != wine_fltport::VERSION {
        return STATUS_REVISION_MISMATCH;
    }
    let name_chars = req.port_name_chars as usize;
    let ctx_len = req.context_bytes as usize;
    if name_chars == 0 || name_chars > MAX_NAME_CHARS || ctx_len > MAX_CONTEXT {
        return invalid;
    }
    let head = core::mem::size_of::<ConnectRequest>();
    let name_end = head + name_chars * 2;
    if input.len() != name_end + ctx_len {
        return invalid;
    }
    let Some(base) = pipe_base(&req) else {
        return STATUS_OBJECT_NAME_INVALID;
    };
    let name: Vec<u16> = input
        .get(head..name_end)
        .unwrap_or(&[])
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p.first().copied().unwrap_or(0), p.get(1).copied().unwrap_or(0)]))
        .collect();

    // Find the port and take a connection slot.
    let found = STATE.with(|state| {
        let Some(port) = state.ports.iter().find(|p| same_name(&p.name, &name) && !p.filter.unregistering.load(Ordering::SeqCst)) else {
            return Err(STATUS_OBJECT_NAME_NOT_FOUND);
        };
        if port.live.load(Ordering::SeqCst) >= port.max {
            return Err(wine_fltport::STATUS_CONNECTION_COUNT_LIMIT);
        }
        port.live.fetch_add(1, Ordering::SeqCst);
        port.filter.connecting.fetch_add(1, Ordering::SeqCst);
        Ok((port.clone(), Connecting(port.filter.clone())))
    });
    let (port, _connecting) = match found {
        Ok(found) => found,
        Err(status) => return status,
    };
    let release = |port: &ServerPort| {
        port.live.fetch_sub(1, Ordering::SeqCst);
    };

    // Open the client's pipes (they exist: fltlib created them before
    // asking; opening an existing instance does not block).
    let opened = (|| -> Result<(Handle, Handle, Handle, Handle), i32> {
        Ok((io::open_pipe(&base, "-msg")?, io::open_pipe(&base, "-ctl")?, io::open_pipe(&base, "-rpl")?, io::event(true)?))
    })();
    let (msg, ctl, rpl, dead_ev) = match opened {
        Ok(h) => h,
        Err(status) => {
            release(&port);
            return status;
        }
    };
    let conn = Arc::new(Connection {
        port: port.clone(),
        cookie: AtomicUsize::new(0),
        msg,
        ctl,
        rpl,
        dead_ev,
        dead: AtomicBool::new(false),
        notify: AtomicU8::new(CONNECTING),
        notifying: AtomicUsize::new(0),
        threads_live: AtomicU32::new(0),
        slot_held: AtomicBool::new(true),
        waiters: SpinLock::new(Vec::new()),
    });
    let client_port = Arc::as_ptr(&conn) as *mut c_void;
    STATE.with(|state| state.conns.push(conn.clone()));

    let mut cookie: *mut c_void = core::ptr::null_mut();
    let status = match port.connect {
        Some(f) => {
            let ctx = if ctx_len == 0 {
                core::ptr::null_mut()
            } else {
                input.get_mut(name_end..).map_or(core::ptr::null_mut(), |c| c.as_mut_ptr().cast::<c_void>())
            };
            // SAFETY: the driver's callback: our client port object, its
            // server port cookie, the context (in the request's system
            // buffer, alive for the call) and a live out-pointer.
            unsafe { f(client_port, port.cookie as *mut c_void, ctx, ctx_len as u32, &mut cookie) }
        }
        None => invalid,
    };
    if status < 0 {
        forget(&conn);
        conn.end();
        conn.release_slot();
        return status;
    }
    conn.cookie.store(cookie as usize, Ordering::SeqCst);
    // Not if the driver closed the client port meanwhile (even from ConnectNotify).
    let _ = conn.notify.compare_exchange(CONNECTING, DUE, Ordering::SeqCst, Ordering::SeqCst);
    conn.threads_live.store(2, Ordering::SeqCst);

    reap_finished(&port.filter);
    let mut ok = true;
    for which in 0..2 {
        let c = conn.clone();
        let spawned =
            if which == 0 { SystemThread::spawn(move || control_thread(c)) } else { SystemThread::spawn(move || reply_thread(c)) };
        match spawned {
            Ok(t) => port.filter.threads.with(|threads| threads.push(t)),
            Err(_) => {
                ok = false;
                conn.thread_exit();
            }
        }
    }
    if ok {
        0
    } else {
        NtStatus::STATUS_INSUFFICIENT_RESOURCES.0
    }
}

/// Removes `conn` from the registry of live client ports.
fn forget(conn: &Arc<Connection>) {
    let removed: Vec<Arc<Connection>> = STATE.with(|state| {
        let (gone, keep): (Vec<_>, Vec<_>) = core::mem::take(&mut state.conns).into_iter().partition(|c| Arc::ptr_eq(c, conn));
        state.conns = keep;
        gone
    });
    drop(removed);
}

/// Joins the filter's connection threads that have finished.
fn reap_finished(filter: &Filter) {
    let finished: Vec<SystemThread> = filter.threads.with(|threads| {
        let mut done = Vec::new();
        let mut i = 0;
        while i < threads.len() {
            if threads.get(i).is_some_and(|t| t.is_finished()) {
                done.push(threads.swap_remove(i));
            } else {
                i += 1;
            }
        }
        done
    });
    drop(finished);
}
