//! The ring channel's blocking receive and send, awaitable: the receive
//! sleeps on the channel's data event through a thread-pool wait
//! ([`HandleWait`]), the send retries while the driver-bound ring is full.
//!
//! The rings are shared memory, not kernel I/O: records are copied by this
//! process, so the futures borrow the caller's buffers and a drop needs no
//! cancellation beyond withdrawing the announced sleep.
#![cfg(windows)]

use core::future::Future;
use core::pin::Pin;
use core::ptr;
use core::task::{Context, Poll};
use core::time::Duration;

use ntcomm_proto::ring::SleepDecision;
use windows_sys::Win32::Foundation::{CloseHandle, FALSE, HANDLE, TRUE};
use windows_sys::Win32::System::Threading::CreateEventW;

use super::wait::HandleWait;
use crate::error::{Error, Result};
use crate::ring::{RingReceiver, RingSender};

/// How long a send waits before retrying a full ring (the driver does not
/// signal freed space).
const FULL_RETRY: Duration = Duration::from_millis(1);

/// A [`RingReceiver`] whose receive is awaited.
pub struct AsyncRingReceiver {
    rx: RingReceiver,
}

impl AsyncRingReceiver {
    /// Wraps the receiving end of a channel.
    pub fn new(rx: RingReceiver) -> Self {
        AsyncRingReceiver { rx }
    }

    /// The synchronous end, e.g. for `try_recv` or `status`.
    pub fn get_mut(&mut self) -> &mut RingReceiver {
        &mut self.rx
    }

    /// Gives the synchronous end back.
    pub fn into_inner(self) -> RingReceiver {
        self.rx
    }

    /// Receives the next record into `buf`; resolves to its length. While
    /// the ring is empty the task sleeps until the driver signals the
    /// channel's event (no thread is blocked). Dropping the future withdraws
    /// the announced sleep.
    ///
    /// # Errors
    /// A record longer than `buf` ([`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall)),
    /// a corrupt ring ([`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData)),
    /// or `RegisterWaitForSingleObject`'s error.
    pub fn recv<'a>(&'a mut self, buf: &'a mut [u8]) -> RingRecv<'a> {
        RingRecv { rx: &mut self.rx, buf, wait: None }
    }
}

/// The future of [`AsyncRingReceiver::recv`].
#[must_use = "futures do nothing unless polled"]
pub struct RingRecv<'a> {
    rx: &'a mut RingReceiver,
    buf: &'a mut [u8],
    /// The registered wait while the consumer announced its sleep.
    wait: Option<HandleWait>,
}

impl Future for RingRecv<'_> {
    type Output = Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<usize>> {
        let this = self.get_mut();
        if let Some(wait) = &this.wait {
            if !wait.has_fired() {
                wait.set_waker(cx.waker());
                return Poll::Pending;
            }
            this.wait = None;
            this.rx.cancel_sleep();
        }
        loop {
            if let Some(n) = this.rx.try_recv(this.buf)? {
                return Poll::Ready(Ok(n));
            }
            match this.rx.prepare_sleep()? {
                SleepDecision::DataReady => continue,
                SleepDecision::MustWait => match HandleWait::register(this.rx.data_event(), None, cx.waker()) {
                    Ok(w) => {
                        this.wait = Some(w);
                        return Poll::Pending;
                    }
                    Err(e) => {
                        this.rx.cancel_sleep();
                        return Poll::Ready(Err(e));
                    }
                },
            }
        }
    }
}

impl Drop for RingRecv<'_> {
    fn drop(&mut self) {
        if self.wait.take().is_some() {
            self.rx.cancel_sleep();
        }
    }
}

/// A [`RingSender`] whose send is awaited.
pub struct AsyncRingSender {
    tx: RingSender,
    /// Never signalled: waits on it with a timeout are the retry timer.
    timer: OwnedEvent,
}

struct OwnedEvent(HANDLE);

// SAFETY: an event handle may be used from any thread.
unsafe impl Send for OwnedEvent {}
// SAFETY: as above.
unsafe impl Sync for OwnedEvent {}

impl Drop for OwnedEvent {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once; no wait is registered on it any
        // more (each `Send` unregisters before its sender can be dropped).
        unsafe { CloseHandle(self.0) };
    }
}

impl AsyncRingSender {
    /// Wraps the sending end of a channel.
    ///
    /// # Errors
    /// `CreateEventW`'s (the retry timer's event).
    pub fn new(tx: RingSender) -> Result<Self> {
        // SAFETY: an anonymous manual-reset event, never signalled.
        let h = unsafe { CreateEventW(ptr::null(), TRUE, FALSE, ptr::null()) };
        if h.is_null() {
            return Err(Error::last("CreateEventW"));
        }
        Ok(AsyncRingSender { tx, timer: OwnedEvent(h) })
    }

    /// The synchronous end, e.g. for `write` + `flush` batches.
    pub fn get_mut(&mut self) -> &mut RingSender {
        &mut self.tx
    }

    /// Gives the synchronous end back.
    pub fn into_inner(self) -> RingSender {
        self.tx
    }

    /// Sends one record, waking the driver if it sleeps. While the ring is
    /// full the task retries every millisecond (a thread-pool timer; no
    /// thread is blocked).
    ///
    /// # Errors
    /// A record larger than the ring accepts (`ERROR_INVALID_PARAMETER`), a
    /// corrupt ring, or `SetEvent`'s error.
    pub fn send<'a>(&'a mut self, record: &'a [u8]) -> RingSend<'a> {
        RingSend { tx: &mut self.tx, timer: self.timer.0, record, wait: None }
    }
}

/// The future of [`AsyncRingSender::send`].
#[must_use = "futures do nothing unless polled"]
pub struct RingSend<'a> {
    tx: &'a mut RingSender,
    timer: HANDLE,
    record: &'a [u8],
    wait: Option<HandleWait>,
}

// SAFETY: `timer` is an event handle, usable from any thread; the rest is `Send`.
unsafe impl core::marker::Send for RingSend<'_> {}

impl Future for RingSend<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if let Some(wait) = &this.wait {
            if !wait.has_fired() {
                wait.set_waker(cx.waker());
                return Poll::Pending;
            }
            this.wait = None;
        }
        if this.tx.try_send(this.record)? {
            return Poll::Ready(Ok(()));
        }
        match HandleWait::register(this.timer, Some(FULL_RETRY), cx.waker()) {
            Ok(w) => {
                this.wait = Some(w);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
