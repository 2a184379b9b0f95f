//! Bounded resources a caller can make the driver allocate: a
//! [`Quota`] per kind of resource, with a share per holder (usually a
//! handle, keyed by [`FileId`](crate::irp::FileId)) and a driver-wide
//! total, checked and taken under one lock before anything is allocated.
//!
//! A successful [`Quota::charge`] returns a [`Charge`] that gives the units
//! back when dropped: move it into whatever owns the resource (the thread's
//! closure, the channel's state) and the accounting ends exactly when the
//! resource does. A refusal is a [`QuotaExceeded`] whose
//! [`status`](QuotaExceeded::status) is `STATUS_QUOTA_EXCEEDED` for a full
//! share or pool, and `STATUS_INVALID_PARAMETER` for a request larger than
//! one holder may ever hold. The accounting itself is
//! [`ntcomm_proto::budget::Ledger`], tested on the host.

use alloc::sync::Arc;

use ntcomm_proto::budget::{Ledger, Refused};
use ntcomm_proto::NtStatus;

use crate::sync::SpinLock;

/// A refused [`Quota::charge`]: nothing was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// What the quota bounds (its name).
    pub what: &'static str,
    /// Which bound.
    pub refused: Refused,
}

impl QuotaExceeded {
    /// The status to complete the request with.
    pub const fn status(&self) -> NtStatus {
        match self.refused {
            Refused::TooLarge => NtStatus::STATUS_INVALID_PARAMETER,
            _ => NtStatus::STATUS_QUOTA_EXCEEDED,
        }
    }
}

impl core::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.refused {
            Refused::TooLarge => write!(f, "{}: larger than one holder may hold", self.what),
            Refused::PerKey { used, limit } => write!(f, "{}: per-handle limit ({used} of {limit} in use)", self.what),
            Refused::Total { used, limit } => write!(f, "{}: driver-wide limit ({used} of {limit} in use)", self.what),
            Refused::Holders => write!(f, "{}: too many holders", self.what),
        }
    }
}

/// One bounded resource: at most `per_key` units per holder, `total` over
/// all, `N` holders at once.
pub struct Quota<K: Copy + Eq + Send + 'static, const N: usize> {
    what: &'static str,
    ledger: SpinLock<Ledger<K, N>>,
}

impl<K: Copy + Eq + Send + 'static, const N: usize> Quota<K, N> {
    /// A quota named `what` (for messages).
    pub const fn new(what: &'static str, per_key: u64, total: u64) -> Self {
        Self { what, ledger: SpinLock::new(Ledger::new(per_key, total)) }
    }

    /// Takes `n` units for `key`, all or nothing, before the caller
    /// allocates anything. The [`Charge`] gives them back when dropped.
    pub fn charge(self: &Arc<Self>, key: K, n: u64) -> Result<Charge<K, N>, QuotaExceeded> {
        let taken = self.ledger.lock().charge(key, n);
        match taken {
            Ok(()) => Ok(Charge { quota: self.clone(), key, n }),
            Err(refused) => Err(QuotaExceeded { what: self.what, refused }),
        }
    }

    /// Units held now over all holders.
    pub fn used(&self) -> u64 {
        let used = self.ledger.lock().used();
        used
    }

    /// Units `key` holds now.
    pub fn held_by(&self, key: K) -> u64 {
        let held = self.ledger.lock().held_by(key);
        held
    }

    /// The driver-wide limit.
    pub fn limit(&self) -> u64 {
        let limit = self.ledger.lock().total_limit();
        limit
    }
}

/// Units taken from a [`Quota`], given back on drop.
#[must_use = "dropping the charge gives the units back at once"]
pub struct Charge<K: Copy + Eq + Send + 'static, const N: usize> {
    quota: Arc<Quota<K, N>>,
    key: K,
    n: u64,
}

impl<K: Copy + Eq + Send + 'static, const N: usize> Charge<K, N> {
    /// Units held by this charge.
    pub fn units(&self) -> u64 {
        self.n
    }
}

impl<K: Copy + Eq + Send + 'static, const N: usize> Drop for Charge<K, N> {
    fn drop(&mut self) {
        let _ = self.quota.ledger.lock().release(self.key, self.n);
    }
}
