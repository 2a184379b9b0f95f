//! Calls the system offers only as blocking ones (`FilterSendMessage`, the
//! LPC receive), run on a small pool of ntcomm threads so no executor
//! thread ever blocks; [`Blocking`] is the future of one such call.
//!
//! The call owns everything it uses (it is a `'static` closure), so
//! dropping its future only drops the result when it comes: no buffer can
//! be freed under a running call.
#![cfg(windows)]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Most pool threads at once; more calls queue.
const MAX_THREADS: usize = 16;
/// A pool thread with nothing to do for this long exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<PoolState>,
    more: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool { state: Mutex::new(PoolState::default()), more: Condvar::new() })
}

impl Pool {
    fn submit(&'static self, job: Job) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.jobs.push_back(job);
        if st.idle == 0 && st.threads < MAX_THREADS {
            st.threads += 1;
            let spawned = std::thread::Builder::new().name("ntcomm-blocking".into()).spawn(move || self.work());
            if let Err(e) = spawned {
                st.threads -= 1;
                if st.threads == 0 {
                    st.jobs.pop_back();
                    return Err(e);
                }
            }
        } else {
            self.more.notify_one();
        }
        Ok(())
    }

    fn work(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self.more.wait_timeout(st, IDLE_EXIT).unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The future of a blocking call run on the pool.
#[must_use = "futures do nothing unless polled"]
pub struct Blocking<T> {
    slot: Arc<Mutex<Slot<T>>>,
    /// Set when the pool could not take the call.
    failed: Option<T>,
}

/// Runs `call` on the pool; `on_spawn_failure` is the output if no pool
/// thread can be started. The call starts at once, not on first poll (it
/// must own its inputs anyway).
pub(crate) fn run<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
    on_spawn_failure: impl FnOnce(std::io::Error) -> T,
) -> Blocking<T> {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let theirs = slot.clone();
    let job: Job = Box::new(move || {
        let value = call();
        let waker = {
            let mut s = theirs.lock().unwrap_or_else(PoisonError::into_inner);
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    match pool().submit(job) {
        Ok(()) => Blocking { slot, failed: None },
        Err(e) => Blocking { slot, failed: Some(on_spawn_failure(e)) },
    }
}

impl<T> Future for Blocking<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        if let Some(v) = this.failed.take() {
            return Poll::Ready(v);
        }
        let mut s = this.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = s.value.take() {
            return Poll::Ready(v);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Unpin for Blocking<T> {}
