//! The demo's LPC server (`ntcomm lpc-server`, and in-process for the
//! demo, the benchmarks and the tests): the port the demo driver connects
//! to with `LPC_CONNECT` and calls with `LPC_ASK`.
//!
//! It accepts clients presenting [`proto::LPC_CONNECT_INFO`] (answering
//! [`proto::LPC_SERVER_INFO`]) and refuses others; answers each request
//! with [`proto::lpc_answer`], or, on a connection that shared a section
//! view, reads the payload an [`LpcViewRequest`] points at and answers its
//! checksum; counts datagrams and closed ports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ntcomm_demo_proto::{self as proto, LpcViewReply};
use ntcomm_proto::lpc::PORT_MAXIMUM_MESSAGE_LENGTH;
use ntcomm_um::lpc::{Connection, LpcError, LpcEvent, LpcServer, Reply, Request};

/// What the server saw, shared with whoever started it.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused (wrong connection information).
    pub refused: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// View requests whose payload checksum matched.
    pub view_ok: AtomicU64,
    /// View requests whose payload did not match (or pointed out of the view).
    pub view_bad: AtomicU64,
    /// Datagrams received whose body was a valid demo request body.
    pub datagrams: AtomicU64,
    /// `LPC_PORT_CLOSED` notifications (a client closed its port or died).
    pub port_closed: AtomicU64,
    /// Requests received while stalling (never answered).
    pub stalled: AtomicU64,
    /// Bytes of connection information in the last request (a refused one
    /// included), to check what arrived.
    pub last_info_len: AtomicU64,
}

/// How the server behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerOptions {
    /// Never answer requests (to test a server that hangs, then dies).
    pub stall: bool,
}

/// The port name of demo server `instance` ([`proto::lpc_port_name`]).
pub fn port_name(instance: u32) -> String {
    let mut b = [0u8; proto::LPC_PORT_NAME_MAX];
    let n = proto::lpc_port_name(instance, &mut b);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// Creates the port of demo server `instance`, registering this process
/// with the driver as its server first (the driver connects only to ports
/// whose creator runs as the registered server's user).
pub fn create(instance: u32) -> Result<LpcServer, LpcError> {
    crate::peer::register_or_warn("lpc server");
    LpcServer::create(&port_name(instance), ntcomm_proto::lpc::LPC_MAX_CONNECTION_INFO_SIZE, PORT_MAXIMUM_MESSAGE_LENGTH)
}

/// Serves `server` until `stop` is set (checked between messages) or the
/// port fails. Returns the error that ended it, if any.
pub fn serve(mut server: LpcServer, options: ServerOptions, stats: &ServerStats, stop: &AtomicBool) -> Result<(), LpcError> {
    let mut connections: HashMap<usize, Connection> = HashMap::new();
    let mut next_context = 1usize;
    let mut reply: Option<Reply> = None;
    let mut held = Vec::new(); // stalled requests: kept, never answered
    let mut answer = [0u8; PORT_MAXIMUM_MESSAGE_LENGTH];
    while !stop.load(Ordering::Acquire) {
        let event = server.receive(reply.take())?;
        match event {
            LpcEvent::ConnectionRequest(req) => {
                stats.last_info_len.store(req.info.len() as u64, Ordering::Relaxed);
                // Counted before the client hears the answer, so a client that
                // sees its connect return also sees the count.
                if req.info == proto::LPC_CONNECT_INFO {
                    let context = next_context;
                    next_context += 1;
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let conn = server.accept(req, proto::LPC_SERVER_INFO, context)?;
                    connections.insert(context, conn);
                } else {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    server.refuse(req)?;
                }
            }
            LpcEvent::Request(req) => {
                if options.stall {
                    stats.stalled.fetch_add(1, Ordering::Relaxed);
                    held.push(req);
                    continue;
                }
                let viewed = connections.get(&req.context).filter(|c| c.view_len() > 0);
                let out = match viewed {
                    Some(conn) => req.answer(&proto::LPC_VIEW, &view_answer(conn, &req, stats)),
                    None => {
                        let n = proto::lpc_answer(&req.body, &mut answer).unwrap_or(0);
                        req.reply(&answer[..n])
                    }
                };
                stats.requests.fetch_add(1, Ordering::Relaxed); // before the reply leaves
                reply = Some(out?);
            }
            LpcEvent::Datagram { body, .. } => {
                if body.len() < proto::RECORD_MIN || proto::check_record(&body).is_some() {
                    stats.datagrams.fetch_add(1, Ordering::Relaxed);
                }
            }
            LpcEvent::PortClosed { context, .. } | LpcEvent::ClientDied { context, .. } => {
                connections.remove(&context);
                stats.port_closed.fetch_add(1, Ordering::Relaxed);
            }
            LpcEvent::LostReply { .. } | LpcEvent::Other { .. } => {}
        }
    }
    Ok(())
}

/// Reads the payload a view request points at and answers its checksum.
fn view_answer(conn: &Connection, req: &Request, stats: &ServerStats) -> LpcViewReply {
    let mut out = LpcViewReply::default();
    let Ok(vr) = req.request_as(&proto::LPC_VIEW) else {
        stats.view_bad.fetch_add(1, Ordering::Relaxed);
        return out;
    };
    let (Ok(offset), Ok(len)) = (usize::try_from(vr.offset), usize::try_from(vr.len)) else {
        stats.view_bad.fetch_add(1, Ordering::Relaxed);
        return out;
    };
    let mut payload = vec![0u8; len.min(conn.view_len())];
    if payload.len() != len || conn.read_view(offset, &mut payload).is_err() {
        stats.view_bad.fetch_add(1, Ordering::Relaxed);
        return out;
    }
    out.checksum = proto::checksum(&payload);
    out.matched = u32::from(out.checksum == vr.checksum);
    if out.matched == 1 {
        stats.view_ok.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.view_bad.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// A server on its own thread, for the demo, the benchmarks and the tests.
/// The thread runs until the process exits (closing a port does not wake a
/// thread blocked receiving on it on every system).
pub struct BackgroundServer {
    /// What it saw.
    pub stats: Arc<ServerStats>,
    stop: Arc<AtomicBool>,
}

impl BackgroundServer {
    /// Creates the port of demo server `instance` and serves it on a new thread.
    pub fn start(instance: u32, options: ServerOptions) -> Result<Self, LpcError> {
        let server = create(instance)?;
        let stats = Arc::new(ServerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (stats.clone(), stop.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(server, options, &s, &st) {
                eprintln!("lpc server: {e}");
            }
        });
        Ok(Self { stats, stop })
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
