//! The awaitable API (cargo feature `async`): every operation that can pend
//! is a future, usable from tokio's multi-threaded runtime, from
//! `futures::executor::block_on` or any other executor, and cancelled when
//! dropped.
//!
//! ```text
//! AsyncDevice::open(path) / open_with(path, DeviceAccess)     (Clone: one handle)
//!     .read(capacity) -> IoFuture<Vec<u8>>      .write(Vec<u8>) -> IoFuture<usize>
//!     .ioctl(&Ioctl<I,O>, &I, output_capacity) -> IoFuture<Vec<u8>>   (sizes checked; any method;
//!                                                                     inverted-call waits too)
//!     .ioctl_into(&Ioctl<I,O>, &I, Vec<u8>) -> IoFuture<Vec<u8>>     (caller's second buffer: IN_DIRECT data)
//!     .call(&Ioctl<I,O>, &I) -> IoFuture<O>     .ioctl_raw(code, Vec<u8>, output_capacity)
//!     .sync() -> &Device   .close()   .is_closed()
//! AsyncPort::connect(name, ctx)
//!     .messages(capacity, depth) -> MessageStream: Stream<Item = Result<PortRequest>>
//!          PortRequest .message() .body() .request_as(&decl) .reply(self, status, body) .answer(self, &decl, &O)
//!     .send(Vec<u8>, reply_capacity) -> Blocking<Result<Vec<u8>>>   .call(&decl, &I) -> Future<Result<O>>
//!     .close()
//! AsyncRingReceiver::new(RingReceiver) .recv(&mut [u8]) -> RingRecv: Future<Result<usize>>
//! AsyncRingSender::new(RingSender)?    .send(&[u8]) -> RingSend: Future<Result<()>>
//! AsyncPipeServer::create(name) .accept() -> IoFuture<()>
//!     .read_message() -> Future<Result<Option<Vec<u8>>>>  (None: the client left)  .disconnect()
//! AsyncLpcServer::new(LpcServer) .receive(Option<Reply>) -> Blocking<lpc::Result<LpcEvent>>
//!     .accept(ConnectionRequest, Vec<u8>, context) .refuse(ConnectionRequest)
//! blocks_alive() -> usize     request blocks not yet freed (0 once all is over: leak checks)
//! packets_dequeued_by_pollers() -> u64   completions the polling threads dequeued themselves
//! ```
//!
//! # How it runs: ntcomm's own completion-port thread
//!
//! One completion port and one thread per process (the reactor, started on
//! first use). Each handle of this API is bound to that port; a future
//! issues its overlapped request on first poll with its waker already
//! registered, and the reactor thread, dequeuing the packet with
//! `GetQueuedCompletionStatusEx` (up to 128 at a time), records the outcome
//! and wakes the task. Executors only ever see wakers: nothing here depends
//! on tokio, and no executor thread blocks.
//!
//! Two shortcuts skip the reactor thread. A request the system completes at
//! once (`DeviceIoControl` returning `TRUE`: under Wine 8, every IOCTL a
//! driver completes in its dispatch routine) is ready on its first poll;
//! device handles are set to queue no packet for such requests
//! (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`), other handles' packets only
//! free the block. And when a future's request pends while others are in
//! flight, the polling thread dequeues what is already queued, with a zero
//! timeout, and completes those requests itself: their tasks are woken
//! from an executor thread, without the hop through the reactor thread.
//! The port's message stream does not (see [`MessageStream`]'s code).
//!
//! A loop of requests that all complete at once would never give its
//! executor thread back, so one in 128 such requests in a row on a thread
//! returns `Pending` once (waking itself) before it is handed out: the size
//! of tokio's own budget of operations per task turn. Yielding more often
//! cost a wake-up of another worker each time and put the wait for the
//! other tasks' turns into the p99 of many requests (docs/BENCHMARKS.md).
//!
//! The message stream issues the receives of the slots whose messages it
//! handed out when no message is ready (before its task would wait), or
//! once they are half its depth: a consumer answering a burst of messages
//! sends its replies back to back, with no system call between them.
//!
//! The alternative was a completion-based runtime crate such as compio,
//! which drives IOCP itself. It was not chosen: it is a runtime of its own
//! (its futures run on its executor, not inside tokio's), its buffer traits
//! would leak into this API, and it sets `SetFileCompletionNotificationModes`
//! on every handle, whose Wine 8 behaviour differs for ports (Wine queues no
//! packet for a skipped completion that fltlib reports as pending; see
//! `compat/wine-fltlib`). A plain IOCP thread keeps the ownership rules in
//! this crate, where they are documented and tested; it sets that mode on
//! device handles only, where Windows and Wine agree (no packet exactly
//! when the call did not pend).
//!
//! Calls that have no overlapped form (`FilterSendMessage`, the LPC
//! receive loop) run on a small pool of ntcomm threads (at most 16) and
//! resolve through a waker the same way. The ring channel is shared memory:
//! its receive sleeps on the channel's event through a thread-pool wait
//! (`RegisterWaitForSingleObject`, no thread per channel), and its send
//! retries a full ring on a 1 ms thread-pool timer.
//!
//! # The cancellation guarantee
//!
//! Every future owns its buffers (inputs are copied in; outputs are handed
//! out on completion). Dropping a future whose request is in flight, e.g.
//! on a `tokio::time::timeout`, a `select!` that took another branch or a
//! task abort:
//!
//! - cancels that request only (`CancelIoEx` with its `OVERLAPPED`); the
//!   driver sees an ordinary cancellation;
//! - never frees or reuses a buffer or `OVERLAPPED` the kernel may still
//!   write: they live in a reference-counted block one reference of which
//!   belongs to the kernel until the request's completion packet is
//!   dequeued; only then is the block freed, by the reactor;
//! - does not wait: `drop` returns at once.
//!
//! A request that completed before the drop simply has its result dropped
//! (for an inverted-call wait, the event it carried is lost with it, as it
//! would be with the synchronous API). Closing a handle
//! ([`AsyncDevice::close`], or dropping its last owner) cancels everything
//! in flight on it; futures first polled afterwards fail with
//! `ERROR_INVALID_HANDLE`. The system handle itself stays open until the
//! last future lets go of it, so a future never touches a handle value the
//! system may have reused.
//!
//! The port's `FilterSendMessage` cannot be cancelled by the system; its
//! future's drop only discards the reply, and the call, which owns its
//! buffers, finishes on its pool thread.
#![cfg(windows)]

mod blocking;
mod device;
mod future;
mod handle;
mod lpc;
mod op;
mod pipe;
mod port;
mod reactor;
mod ring;
mod wait;

pub use blocking::Blocking;
pub use device::AsyncDevice;
pub use future::IoFuture;
pub use lpc::AsyncLpcServer;
pub use op::blocks_alive;
pub use pipe::{AsyncPipeServer, MAX_PIPE_MESSAGE};
pub use port::{AsyncPort, MessageStream, PortRequest};
pub use reactor::packets_dequeued_by_pollers;
pub use ring::{AsyncRingReceiver, AsyncRingSender, RingRecv, RingSend};
