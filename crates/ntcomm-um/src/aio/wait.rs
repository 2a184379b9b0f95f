//! [`HandleWait`]: wakes a task when a kernel object (the ring channel's
//! event) is signalled or a timeout passes, through the system thread
//! pool's waits (`RegisterWaitForSingleObject`): no thread per channel.
#![cfg(windows)]

use core::ffi::c_void;
use core::task::Waker;
use core::time::Duration;
use std::sync::{Arc, Mutex, PoisonError};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEINWAITTHREAD, WT_EXECUTEONLYONCE};

use crate::error::{Error, Result};
use crate::util::timeout_ms;

/// What the callback shares with the waiting task.
struct Shared {
    waker: Mutex<Option<Waker>>,
}

/// One registered, one-shot wait. Dropping it unregisters the wait, waiting
/// for a callback that is running right now (it only wakes a task).
pub(crate) struct HandleWait {
    wait: HANDLE,
    shared: *const Shared,
}

// SAFETY: the wait handle may be unregistered from any thread; `shared` is
// an `Arc` whose contents are `Sync`.
unsafe impl Send for HandleWait {}
// SAFETY: as above; `&HandleWait` gives no access at all.
unsafe impl Sync for HandleWait {}

/// The thread pool's callback: wakes the task. `context` is the `Shared`
/// the registration leaked; the registration's owner frees it after
/// unregistering, which waits for this callback to return.
unsafe extern "system" fn fired(context: *mut c_void, _timed_out: bool) {
    // SAFETY: `context` is the registration's `Shared`, alive until the
    // owner unregisters the wait (which waits for this callback).
    let shared = unsafe { &*context.cast::<Shared>() };
    let waker = shared.waker.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(w) = waker {
        w.wake();
    }
}

impl HandleWait {
    /// Registers a one-shot wait on `object` (which must stay open while the
    /// wait exists) that wakes `waker` when the object is signalled or
    /// `timeout` passes (`None`: no timeout).
    ///
    /// # Errors
    /// `RegisterWaitForSingleObject`'s.
    pub(crate) fn register(object: HANDLE, timeout: Option<Duration>, waker: &Waker) -> Result<HandleWait> {
        let shared = Arc::into_raw(Arc::new(Shared { waker: Mutex::new(Some(waker.clone())) }));
        let mut wait: HANDLE = core::ptr::null_mut();
        // SAFETY: a valid out-pointer and object handle; the callback's
        // context lives until `Drop` unregisters the wait; the callback only
        // wakes a task, so it may run in the pool's wait thread.
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &mut wait,
                object,
                Some(fired),
                shared.cast_mut().cast(),
                timeout_ms(timeout),
                WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD,
            )
        };
        if ok == 0 {
            let err = Error::last("RegisterWaitForSingleObject");
            // SAFETY: the registration failed: no callback holds `shared`.
            drop(unsafe { Arc::from_raw(shared) });
            return Err(err);
        }
        Ok(HandleWait { wait, shared })
    }

    /// Whether the wait fired (the object was signalled or the timeout
    /// passed) and woke its task.
    pub(crate) fn has_fired(&self) -> bool {
        // SAFETY: `shared` is alive while `self` is.
        let shared = unsafe { &*self.shared };
        shared.waker.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// Points the wake-up at `waker` (the task may have moved).
    pub(crate) fn set_waker(&self, waker: &Waker) {
        // SAFETY: `shared` is alive while `self` is.
        let shared = unsafe { &*self.shared };
        let mut w = shared.waker.lock().unwrap_or_else(PoisonError::into_inner);
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            // Taken: the wait fired already; the poll that follows sees why.
            None => {}
            _ => *w = Some(waker.clone()),
        }
    }
}

impl Drop for HandleWait {
    fn drop(&mut self) {
        // SAFETY: our registration; INVALID_HANDLE_VALUE makes the call wait
        // for a running callback, so none uses `shared` afterwards.
        unsafe { UnregisterWaitEx(self.wait, INVALID_HANDLE_VALUE) };
        // SAFETY: the reference leaked by `register`, taken back once.
        drop(unsafe { Arc::from_raw(self.shared) });
    }
}
