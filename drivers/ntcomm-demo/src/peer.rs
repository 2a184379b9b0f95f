//! The registered peer servers: `SERVER_REGISTER` records the calling
//! process (id, a handle pinning the id, its token's user SID); the pipe
//! writer and the LPC client trust only servers run by a live registered
//! process. The device admits only SYSTEM and Administrators, so only they
//! can register.
//!
//! Nothing here waits or closes a handle under the spin lock: the list is
//! cloned out (clones only bump counts), checked outside, and entries that
//! leave the list are dropped (their process handles closed) after the
//! guard is gone.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use ntcomm_demo_proto as proto;
use ntcomm_km::ioctl::IoctlRequest;
use ntcomm_km::irp::Handled;
use ntcomm_km::peer::{ServerProcess, Sid};
use ntcomm_km::sync::SpinLock;
use ntcomm_km::NtStatus;

pub struct Servers {
    list: SpinLock<Vec<Arc<ServerProcess>>>,
    /// Pipe connections dropped because their server was not registered.
    pub pipe_refused: AtomicU64,
    /// LPC connects or replies refused for the same reason.
    pub lpc_refused: AtomicU64,
}

impl Servers {
    pub fn new() -> Self {
        // Room for every registration from the start: registering never
        // allocates the list under its lock, and the pool figures do not
        // depend on how many processes registered before.
        let mut list = Vec::new();
        let _ = list.try_reserve_exact(proto::MAX_REGISTERED_SERVERS);
        Self { list: SpinLock::new(list), pipe_refused: AtomicU64::new(0), lpc_refused: AtomicU64::new(0) }
    }

    /// The registered processes still alive, oldest first; forgets the
    /// ones that exited.
    pub fn live(&self) -> Vec<Arc<ServerProcess>> {
        let all: Vec<Arc<ServerProcess>> = self.list.with(|l| {
            let mut v = Vec::new();
            if v.try_reserve_exact(l.len()).is_ok() {
                v.extend(l.iter().cloned());
            }
            v
        });
        let (alive, dead): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| !s.has_exited());
        if !dead.is_empty() {
            let removed: Vec<Arc<ServerProcess>> = self.list.with(|l| {
                let mut removed = Vec::new();
                let _ = removed.try_reserve_exact(l.len());
                l.retain(|s| {
                    let gone = dead.iter().any(|d| Arc::ptr_eq(d, s));
                    if gone {
                        removed.push(s.clone());
                    }
                    !gone
                });
                removed
            });
            drop(removed); // after the guard: may close process handles
        }
        drop(dead);
        alive
    }

    /// Whether `pid` is a live registered server.
    pub fn is_trusted(&self, pid: usize) -> bool {
        self.live().iter().any(|s| s.id() == pid)
    }

    /// The SID LPC connects require of the server: the newest live
    /// registration's token user.
    pub fn required_sid(&self) -> Option<Sid> {
        self.live().last().map(|s| *s.user_sid())
    }

    /// Live registrations, for the stats.
    pub fn count(&self) -> u64 {
        self.live().len() as u64
    }

    /// `SERVER_REGISTER`: runs in dispatch at PASSIVE_LEVEL, in the
    /// caller's context.
    pub fn register(&self, req: IoctlRequest) -> Handled {
        let me = match ServerProcess::requestor() {
            Ok(p) => Arc::new(p),
            Err(e) => return req.fail(e.status),
        };
        let live = self.live();
        if live.iter().any(|s| s.id() == me.id()) {
            drop(me);
            return req.complete(NtStatus::STATUS_SUCCESS, 0);
        }
        if live.len() >= proto::MAX_REGISTERED_SERVERS {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        drop(live);
        let pushed = self.list.with(|l| {
            if l.len() < proto::MAX_REGISTERED_SERVERS && l.try_reserve(1).is_ok() {
                l.push(me.clone());
                true
            } else {
                false
            }
        });
        drop(me);
        if !pushed {
            return req.fail(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let n = self.count();
        ntcomm_km::kprintln!("peer: server process registered ({} live)", n);
        req.complete(NtStatus::STATUS_SUCCESS, 0)
    }

    pub fn note_pipe_refused(&self, pid: usize) {
        self.pipe_refused.fetch_add(1, Ordering::Relaxed);
        ntcomm_km::kprintln!("pipe: server process {} is not a registered server: connection dropped", pid);
    }

    /// Unload: close every process handle (outside the lock).
    pub fn clear(&self) {
        drop(self.list.take());
    }
}
