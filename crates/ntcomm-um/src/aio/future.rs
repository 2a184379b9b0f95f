//! [`IoFuture`]: one overlapped request as a future, issued on its first
//! poll, cancelled when dropped before it finished.
#![cfg(windows)]

use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use super::handle::IoHandle;
use super::op::{self, Call, OpBlock};
use super::reactor::Reactor;
use crate::device::ioctl_context;
use crate::error::code::ERROR_INVALID_PARAMETER;
use crate::error::{Error, Result};

/// Turns the buffer of a successful request (truncated to the bytes
/// transferred, except for writes) into the future's output.
pub(crate) type Finish<T> = fn(Vec<u8>, usize, &dyn Fn() -> String) -> Result<T>;

enum Stage {
    /// Not issued yet: the buffers wait for the first poll.
    Start { buffer: Vec<u8>, input: Vec<u8> },
    /// Refused before any system call (e.g. a size rule).
    Refused(Error),
    /// Issued: the block is shared with the kernel and the reactor.
    InFlight(Arc<OpBlock>),
    /// The output was handed out.
    Done,
}

/// An overlapped request on a device, port or pipe of [`crate::aio`].
///
/// Nothing is sent before the first poll. A request the system completes at
/// once (Wine 8 answers a quick driver's IOCTL so) is ready on that first
/// poll, without any wake-up; one in 128 such in a row on a thread yields to
/// the executor first, so a loop of them does not keep the thread. Dropping
/// the future before it completes cancels the request (`CancelIoEx` for this request only); the
/// buffers stay with the request until the kernel has finished with them,
/// and are freed then by the reactor. A timeout around the future (e.g.
/// `tokio::time::timeout`) is such a drop.
#[must_use = "futures do nothing unless polled"]
pub struct IoFuture<T> {
    handle: Arc<IoHandle>,
    call: Call,
    name: &'static str,
    stage: Stage,
    finish: Finish<T>,
}

impl<T> IoFuture<T> {
    pub(crate) fn new(handle: Arc<IoHandle>, call: Call, name: &'static str, buffer: Vec<u8>, input: Vec<u8>, finish: Finish<T>) -> Self {
        IoFuture { handle, call, name, stage: Stage::Start { buffer, input }, finish }
    }

    /// A future that fails with `error` when polled, without a system call.
    pub(crate) fn refused(handle: Arc<IoHandle>, call: Call, error: Error, finish: Finish<T>) -> Self {
        IoFuture { handle, call, name: "", stage: Stage::Refused(error), finish }
    }

    fn context(&self) -> String {
        describe(self.call, self.name, self.handle.path())
    }

    /// The output of a finished block.
    fn finish_block(&self, block: &OpBlock) -> Result<T> {
        let truncate = self.call != Call::Write;
        let what = || self.context();
        outcome_of(block, truncate, &what).and_then(|(buf, n)| (self.finish)(buf, n, &what))
    }
}

/// Requests completed at once in a row on one thread before one of them
/// yields to the executor instead (as a request that pends would): tokio's
/// own budget of operations per task turn. Yielding wakes another worker of
/// a multi-threaded runtime (tokio notifies one for the yielded task); at 8
/// the async-overlapped bench row's p99 was the wait for the other tasks'
/// turns (33-41 ms), at 128 it is 0.4-0.5 ms, for the same throughput
/// (docs/BENCHMARKS.md).
const AT_ONCE_BEFORE_YIELD: u32 = 128;

/// Whether this request, completed at once, yields first: every
/// [`AT_ONCE_BEFORE_YIELD`]th on this thread.
fn yield_due() -> bool {
    thread_local! {
        static AT_ONCE: Cell<u32> = const { Cell::new(0) };
    }
    AT_ONCE.with(|n| {
        let next = n.get().wrapping_add(1);
        n.set(next);
        next.is_multiple_of(AT_ONCE_BEFORE_YIELD)
    })
}

/// What a request is, for error contexts.
pub(crate) fn describe(call: Call, name: &str, path: &str) -> String {
    match call {
        Call::Read => format!("ReadFile on {path}"),
        Call::Write => format!("WriteFile on {path}"),
        Call::Ioctl(code) => ioctl_context(name, code, path),
        Call::FilterGetMessage => format!("FilterGetMessage {path}"),
        Call::ConnectPipe => format!("ConnectNamedPipe {path}"),
    }
}

/// The outcome of a finished block as the bytes transferred (with the buffer
/// truncated to them when `truncate`), or the error its status maps to.
pub(crate) fn outcome_of(block: &OpBlock, truncate: bool, what: &dyn Fn() -> String) -> Result<(Vec<u8>, usize)> {
    let (Some(outcome), Some(mut buffer)) = (block.outcome(), block.take_buffer()) else {
        return Err(Error::new(format!("{}: taken twice", what()), ERROR_INVALID_PARAMETER));
    };
    if outcome.status.0 < 0 {
        return Err(Error::from_ntstatus(what(), outcome.status));
    }
    if truncate {
        buffer.truncate(outcome.bytes);
    }
    Ok((buffer, outcome.bytes))
}

impl<T> Future for IoFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        match core::mem::replace(&mut this.stage, Stage::Done) {
            Stage::Start { buffer, input } => {
                let block = OpBlock::for_task(buffer, input, cx.waker());
                let (handle, call, name) = (this.handle.clone(), this.call, this.name);
                if let Err(e) = op::issue(&handle, &block, call, || describe(call, name, handle.path())) {
                    return Poll::Ready(Err(e));
                }
                if block.is_done() {
                    if yield_due() {
                        // Let the executor run its other tasks now and then:
                        // a loop of requests that all complete at once would
                        // otherwise never give the thread back.
                        cx.waker().wake_by_ref();
                        this.stage = Stage::InFlight(block);
                        return Poll::Pending;
                    }
                    // Completed at once: no wake-up, no hop through another
                    // thread (the block waits for its packet on its own).
                    return Poll::Ready(this.finish_block(&block));
                }
                // The waker is registered already: a completion racing this
                // poll wakes the task.
                this.stage = Stage::InFlight(block);
                // Other requests in flight may be over: complete them from
                // this thread rather than through the reactor's.
                if let Ok(reactor) = Reactor::global() {
                    reactor.poll_ready(1);
                }
                Poll::Pending
            }
            Stage::Refused(e) => Poll::Ready(Err(e)),
            Stage::InFlight(block) => {
                if block.poll_outcome(cx.waker()).is_none() {
                    this.stage = Stage::InFlight(block);
                    return Poll::Pending;
                }
                Poll::Ready(this.finish_block(&block))
            }
            Stage::Done => Poll::Ready(Err(Error::new(format!("{}: polled after it completed", this.context()), ERROR_INVALID_PARAMETER))),
        }
    }
}

impl<T> Drop for IoFuture<T> {
    fn drop(&mut self) {
        if let Stage::InFlight(block) = &self.stage {
            if !block.is_done() {
                // The block (and its buffers) lives on in the kernel's
                // reference until the cancelled request's packet arrives.
                op::cancel(&self.handle, block);
            }
        }
    }
}
