//! [`AsyncPort`]: a Filter Manager communication port client whose
//! receives are a stream of the driver's messages, each with its reply
//! handle, and whose sends are awaitable.
#![cfg(windows)]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use futures_core::Stream;
use ntcomm_proto::{message as proto, NtStatus};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::blocking::{self, Blocking};
use super::future::{describe, outcome_of};
use super::handle::{CloseOnDrop, IoHandle};
use super::op::{self, Call, OpBlock, ReadyQueue};
use crate::error::code::{ERROR_INVALID_DATA, ERROR_NOT_ENOUGH_MEMORY};
use crate::error::{Error, Result};
use crate::port::{mismatch, reply_on, send_on, Message, PortClient, MESSAGE_HEADER_LEN};

/// A connection to a minifilter's communication port, for async code.
///
/// Cloning gives another reference to the same connection; dropping the
/// last one (or [`close`](Self::close)) cancels the receives in flight and
/// disconnects once the futures let go.
#[derive(Clone)]
pub struct AsyncPort {
    handle: Arc<IoHandle>,
    _owner: Arc<CloseOnDrop>,
}

impl AsyncPort {
    /// Connects to port `name` (e.g. `\MyDriverPort`) with a connection
    /// context, like [`PortClient::connect`], and binds it to the reactor.
    ///
    /// # Errors
    /// `FilterConnectCommunicationPort`'s (e.g. [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied)
    /// when the driver refuses the context, [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
    /// when there is no such port), or the reactor's.
    pub fn connect(name: &str, context: &[u8]) -> Result<AsyncPort> {
        let handle = Arc::new(IoHandle::new(PortClient::connect(name, context)?.into_device())?);
        Ok(AsyncPort { _owner: Arc::new(CloseOnDrop(handle.clone())), handle })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        self.handle.path()
    }

    /// Cancels the receives in flight and refuses new requests.
    pub fn close(&self) {
        self.handle.close();
    }

    /// The driver's messages as a stream, keeping `depth` (at least 1)
    /// `FilterGetMessage`s of `capacity` bytes (header included: size it as
    /// [`MESSAGE_HEADER_LEN`] + the largest body) in flight. Each item is a
    /// [`PortRequest`] to answer. The stream ends after its receives failed
    /// (e.g. the port was closed or the driver disconnected), each failure
    /// being yielded once first.
    ///
    /// Dropping the stream cancels its receives. A message a receive had
    /// already taken from the port when the stream was dropped is lost: its
    /// sender sees its timeout (or waits, without one).
    pub fn messages(&self, capacity: usize, depth: usize) -> MessageStream {
        MessageStream {
            handle: self.handle.clone(),
            queue: Arc::new(ReadyQueue::default()),
            slots: Vec::new(),
            depth: depth.max(1),
            capacity: capacity.max(MESSAGE_HEADER_LEN),
            started: false,
            rearm: Vec::new(),
        }
    }

    /// `FilterSendMessage` of `input` to the driver's message callback;
    /// resolves to its reply (at most `reply_capacity` bytes).
    ///
    /// `FilterSendMessage` is synchronous on Windows (and serialised per
    /// port under Wine), so it runs on ntcomm's blocking pool, and starts
    /// when `send` is called, not on the first poll. Dropping the future
    /// does not cancel the send (the system cannot); the call keeps its
    /// buffers until it returns.
    ///
    /// # Errors
    /// `FilterSendMessage`'s, or `ERROR_INVALID_HANDLE` after [`close`](Self::close).
    pub fn send(&self, input: Vec<u8>, reply_capacity: usize) -> Blocking<Result<Vec<u8>>> {
        let handle = self.handle.clone();
        blocking::run(
            move || {
                let what = || format!("FilterSendMessage {}", handle.path());
                handle.with_open(what, |_| Ok(()))?;
                let mut out = vec![0; reply_capacity];
                let n = send_on(handle.device(), handle.path(), &input, &mut out)?;
                out.truncate(n);
                Ok(out)
            },
            |e| Err(Error::new(format!("FilterSendMessage: no blocking thread: {e}"), ERROR_NOT_ENOUGH_MEMORY)),
        )
    }

    /// Sends the typed `request` declared by `message` and resolves to the
    /// reply, read as the declared `O` (see [`PortClient::call`]).
    ///
    /// # Errors
    /// A request or reply outside the declaration (`ERROR_INVALID_PARAMETER`,
    /// `ERROR_INVALID_DATA`), or as [`send`](Self::send).
    pub fn call<I, O>(&self, message: &proto::Message<I, O>, request: &I) -> impl Future<Output = Result<O>> + Send + 'static
    where
        I: ?Sized + IntoBytes + Immutable,
        O: FromBytes + IntoBytes + Send + 'static,
    {
        let input = request.as_bytes();
        let rules = message.erase();
        let checked = message.check_request(input.len()).map_err(|_| mismatch(message.name, input.len()));
        let sent = checked.map(|()| self.send(input.to_vec(), core::mem::size_of::<O>()));
        async move {
            let reply = sent?.await?;
            match O::read_from_bytes(&reply) {
                Ok(o) if rules.check_reply(reply.len()).is_ok() => Ok(o),
                _ => Err(Error::new(
                    format!("port message {}: the driver replied {} bytes, not its declaration", rules.name, reply.len()),
                    ERROR_INVALID_DATA,
                )),
            }
        }
    }
}

/// One message from the driver, owning its buffer, with the handle to
/// answer it. Replying consumes it, so each message is answered at most
/// once; one dropped unanswered leaves its sender to its timeout.
pub struct PortRequest {
    handle: Arc<IoHandle>,
    buffer: Vec<u8>,
}

impl PortRequest {
    /// The message as [`PortClient::get_message`] returns it (id, reply
    /// length, body).
    pub fn message(&self) -> Message<'_> {
        // The stream checked the length when the message arrived.
        Message::parse(&self.buffer).unwrap_or(Message { id: 0, reply_length: 0, body: &[] })
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.message().body
    }

    /// Whether the driver waits for a reply.
    pub fn wants_reply(&self) -> bool {
        self.message().wants_reply()
    }

    /// The body as the typed request `message` declares.
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER` if the length does not match the declaration.
    pub fn request_as<I: FromBytes, O: ?Sized>(&self, message: &proto::Message<I, O>) -> Result<I> {
        self.message().request_as(message)
    }

    /// Replies with `status` and `body` (`FilterReplyMessage`; it does not
    /// block: the driver's sender is waiting).
    ///
    /// # Errors
    /// `FilterReplyMessage`'s (e.g. the sender timed out: no waiter for the
    /// reply), or `ERROR_INVALID_HANDLE` after the port was closed.
    pub fn reply(self, status: NtStatus, body: &[u8]) -> Result<()> {
        let id = self.message().id;
        let what = || format!("FilterReplyMessage {} (message {id})", self.handle.path());
        self.handle.with_open(what, |_| reply_on(self.handle.device(), self.handle.path(), id, status, body))
    }

    /// Replies with the typed `reply` and `STATUS_SUCCESS`.
    ///
    /// # Errors
    /// A reply outside the declaration (`ERROR_INVALID_PARAMETER`), or as
    /// [`reply`](Self::reply).
    pub fn answer<I: ?Sized, O: IntoBytes + Immutable>(self, message: &proto::Message<I, O>, reply: &O) -> Result<()> {
        let body = reply.as_bytes();
        message.check_reply(body.len()).map_err(|_| mismatch(message.name, body.len()))?;
        self.reply(NtStatus::STATUS_SUCCESS, body)
    }
}

/// The stream of [`AsyncPort::messages`].
pub struct MessageStream {
    handle: Arc<IoHandle>,
    queue: Arc<ReadyQueue>,
    /// The receive in flight per slot (`None`: the slot ended).
    slots: Vec<Option<Arc<OpBlock>>>,
    depth: usize,
    capacity: usize,
    started: bool,
    /// Slots whose message was handed out, their receive not yet issued
    /// again. They are re-armed when no message is ready (before the task
    /// would wait) or once they are half the depth, so that a consumer
    /// answering a burst of messages sends its replies back to back, without
    /// a system call between them.
    rearm: Vec<usize>,
}

impl MessageStream {
    /// Issues a receive into `slot`; on failure the slot ends and the error
    /// is returned.
    fn arm(&mut self, slot: usize) -> Result<()> {
        let block = OpBlock::for_queue(vec![0; self.capacity], &self.queue, slot);
        let handle = self.handle.clone();
        let issued = op::issue(&handle, &block, Call::FilterGetMessage, || describe(Call::FilterGetMessage, "", handle.path()));
        if let Some(s) = self.slots.get_mut(slot) {
            *s = issued.is_ok().then_some(block);
        }
        issued
    }

    /// Issues the receives owed; a failure ends its slot and is returned
    /// (the other slots are re-armed still).
    fn rearm_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        for slot in core::mem::take(&mut self.rearm) {
            if let Err(e) = self.arm(slot) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

impl Stream for MessageStream {
    type Item = Result<PortRequest>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<PortRequest>>> {
        let this = self.get_mut();
        if !this.started {
            this.started = true;
            this.slots = (0..this.depth).map(|_| None).collect();
            for slot in 0..this.depth {
                if let Err(e) = this.arm(slot) {
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        if this.rearm.len() * 2 >= this.depth {
            if let Err(e) = this.rearm_all() {
                return Poll::Ready(Some(Err(e)));
            }
        }
        loop {
            if this.rearm.is_empty() && this.slots.iter().all(Option::is_none) {
                return Poll::Ready(None);
            }
            // No dequeue from this thread here (as `IoFuture` does): the
            // port's path is bound by Wine's server, and one more call to it
            // per empty poll cost more than the hop it saved.
            let slot = match this.queue.try_pop() {
                Some(slot) => slot,
                None if !this.rearm.is_empty() => {
                    // Nothing ready: the time to issue the receives owed.
                    if let Err(e) = this.rearm_all() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    continue;
                }
                None => match this.queue.pop(cx.waker()) {
                    Some(slot) => slot,
                    None => return Poll::Pending,
                },
            };
            let Some(block) = this.slots.get_mut(slot).and_then(Option::take) else { continue };
            let what = || describe(Call::FilterGetMessage, "", this.handle.path());
            let got = outcome_of(&block, true, &what).and_then(|(buffer, _)| {
                Message::parse(&buffer)?;
                Ok(PortRequest { handle: this.handle.clone(), buffer })
            });
            if got.is_ok() {
                // Keep the slot receiving (see `rearm`).
                this.rearm.push(slot);
            }
            return Poll::Ready(Some(got));
        }
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        for block in self.slots.iter().flatten() {
            if !block.is_done() {
                op::cancel(&self.handle, block);
            }
        }
    }
}
