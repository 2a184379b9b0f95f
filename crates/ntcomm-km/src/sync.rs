//! Kernel synchronisation: a spin lock that owns its data, and events.
//!
//! Code under a [`SpinLock`] runs at `DISPATCH_LEVEL`, where nothing may wait
//! and no `Zw*` routine may be called; dropping a value whose `Drop` waits
//! (a [`SystemThread`](crate::thread::SystemThread) joins, a handle closes)
//! is such a call. A guard is a temporary that lives to the end of its
//! statement, so `drop(lock.lock().take())` drops the taken value *before*
//! the lock is released, and `f(x.lock().len(), y.wait())` waits under it.
//! So the guard is not public: the critical section is a closure
//! ([`SpinLock::with`]) or one move ([`SpinLock::take`],
//! [`SpinLock::replace`], [`SpinLock::get`]), and whatever leaves the lock is
//! handed over after the release, to be dropped at the caller's IRQL. Threads a driver keeps belong in a
//! [`ThreadSet`](crate::thread::ThreadSet), whose joins never run under
//! its lock.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

use crate::sys;

/// Data guarded by a `KSPIN_LOCK` (`KeAcquireSpinLockRaiseToDpc`).
///
/// Hold it briefly and never across a wait or a call that may block: code
/// under the lock runs at `DISPATCH_LEVEL` on Windows.
pub struct SpinLock<T> {
    lock: UnsafeCell<sys::KSPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the spin lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the data, which is Send.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new, released lock (`KeInitializeSpinLock` stores zero).
    pub const fn new(data: T) -> Self {
        Self { lock: UnsafeCell::new(0), data: UnsafeCell::new(data) }
    }

    /// Acquires the lock, raising IRQL to `DISPATCH_LEVEL`. Not public: a
    /// guard used inside a larger expression lives to the end of the
    /// statement, and everything else in that statement (a wait, a `Zw*`
    /// call, a drop that closes a handle) then runs under the lock. Outside
    /// this crate the critical section is always a closure
    /// ([`with`](Self::with)) or a single move ([`take`](Self::take),
    /// [`replace`](Self::replace), [`get`](Self::get)).
    #[must_use = "the lock is released when the guard is dropped"]
    pub(crate) fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock word lives as long as `self`.
        let irql = unsafe { sys::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        SpinLockGuard { owner: self, irql }
    }
}

impl<T> SpinLock<T> {
    /// Runs `f` on the data under the lock and returns its result once the
    /// lock is released, so a value `f` moves out is dropped by the caller,
    /// at the caller's IRQL. `f` runs at `DISPATCH_LEVEL`: it must not wait,
    /// call a `Zw*` routine or drop a value whose `Drop` does.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.lock();
        let r = f(&mut guard);
        drop(guard);
        r
    }

    /// Puts `value` in and returns the old value after releasing the lock.
    pub fn replace(&self, value: T) -> T {
        self.with(|data| core::mem::replace(data, value))
    }

    /// A copy of the data.
    pub fn get(&self) -> T
    where
        T: Copy,
    {
        self.with(|data| *data)
    }

    /// Takes the data out (leaving its default) and returns it after
    /// releasing the lock.
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.with(core::mem::take)
    }
}

/// Access to a [`SpinLock`]'s data; releases on drop.
pub(crate) struct SpinLockGuard<'a, T> {
    owner: &'a SpinLock<T>,
    irql: sys::KIRQL,
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.owner.data.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, and is borrowed mutably.
        unsafe { &mut *self.owner.data.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: acquired in `lock` with this IRQL.
        unsafe { sys::KeReleaseSpinLock(self.owner.lock.get(), self.irql) };
    }
}

/// How a [`Event`] resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Stays signalled until cleared; wakes every waiter.
    Notification,
    /// Wakes one waiter and resets itself.
    Synchronization,
}

/// A kernel event (`KEVENT`) in pool memory, so its address never changes.
pub struct Event {
    raw: alloc::boxed::Box<UnsafeCell<sys::KEVENT>>,
}

// SAFETY: KEVENTs are designed for use from any thread.
unsafe impl Send for Event {}
// SAFETY: as above; every operation goes through Ke* calls.
unsafe impl Sync for Event {}

impl Event {
    /// A new event, initially signalled or not.
    pub fn new(kind: EventKind, signalled: bool) -> Self {
        let raw = alloc::boxed::Box::new(UnsafeCell::new(sys::KEVENT { opaque: [0; 24] }));
        let ty = match kind {
            EventKind::Notification => sys::NOTIFICATION_EVENT,
            EventKind::Synchronization => sys::SYNCHRONIZATION_EVENT,
        };
        // SAFETY: initialising a KEVENT we own, before sharing it.
        unsafe { sys::KeInitializeEvent(raw.get(), ty, signalled as u8) };
        Self { raw }
    }

    /// Signals the event.
    pub fn set(&self) {
        // SAFETY: initialised in `new`.
        unsafe { sys::KeSetEvent(self.raw.get(), 0, 0) };
    }

    /// Resets the event.
    pub fn clear(&self) {
        // SAFETY: initialised in `new`.
        unsafe { sys::KeClearEvent(self.raw.get()) };
    }

    /// Waits until signalled or until `timeout` passes; `true` if signalled.
    /// Must be called at `PASSIVE_LEVEL` (never under a [`SpinLock`]).
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        // Negative means relative, in 100 ns units.
        let mut relative: i64 = match timeout {
            Some(d) => -((d.as_nanos() / 100).min(i64::MAX as u128) as i64),
            None => 0,
        };
        let timeout_ptr = if timeout.is_some() { &mut relative as *mut i64 } else { core::ptr::null_mut() };
        // SAFETY: initialised in `new`; `timeout_ptr` is NULL or points to a
        // live local.
        let status = unsafe { sys::KeWaitForSingleObject(self.raw.get().cast(), sys::EXECUTIVE, sys::KERNEL_MODE, 0, timeout_ptr) };
        status == 0
    }
}

/// Sleeps the current thread (`KeDelayExecutionThread`), at `PASSIVE_LEVEL`.
pub fn sleep(d: Duration) {
    let mut relative: i64 = -((d.as_nanos() / 100).min(i64::MAX as u128) as i64);
    // SAFETY: pointer to a live local.
    unsafe { sys::KeDelayExecutionThread(sys::KERNEL_MODE, 0, &mut relative) };
}
