//! The client of a minifilter's communication port, over the documented
//! `fltlib` functions: connect with a context, send commands
//! (`FilterSendMessage`), receive the driver's messages (`FilterGetMessage`,
//! blocking or overlapped through a completion port) and reply
//! (`FilterReplyMessage`). `FILTER_MESSAGE_HEADER`/`FILTER_REPLY_HEADER` and
//! message ids stay inside this module.
#![cfg(windows)]

use core::ptr;

use ntcomm_proto::message as proto;
use ntcomm_proto::NtStatus;
use windows_sys::Win32::Foundation::{SetLastError, HANDLE};
use windows_sys::Win32::Storage::InstallableFileSystems::{
    FilterConnectCommunicationPort, FilterGetMessage, FilterReplyMessage, FilterSendMessage,
};

use crate::device::Device;
use crate::error::code::{ERROR_INVALID_DATA, ERROR_INVALID_PARAMETER};
use crate::error::{Error, Result};
use crate::iocp::{CompletionPort, OpId, OpKind};
use crate::util::to_wide_nul;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `FILTER_MESSAGE_HEADER` size: ReplyLength, padding, MessageId.
pub const MESSAGE_HEADER_LEN: usize = 16;
/// `FILTER_REPLY_HEADER` size: Status, padding, MessageId.
pub const REPLY_HEADER_LEN: usize = 16;

/// An HRESULT from fltlib as an [`Error`]: Win32 codes are unpacked from
/// `HRESULT_FROM_WIN32` (facility 7); anything else keeps the HRESULT.
fn hresult_error(context: String, hr: i32) -> Error {
    let code = hr as u32;
    let win32 = if code & 0xFFFF_0000 == 0x8007_0000 { code & 0xFFFF } else { code };
    Error::new(context, win32)
}

fn check(hr: i32, context: impl FnOnce() -> String) -> Result<()> {
    if hr >= 0 {
        Ok(())
    } else {
        Err(hresult_error(context(), hr))
    }
}

/// An HRESULT as a `ReadFile`-style BOOL, leaving the Win32 code (or the
/// HRESULT) as the thread's last error.
pub(crate) fn bool_from_hresult(hr: i32) -> i32 {
    if hr >= 0 {
        return 1;
    }
    let code = hr as u32;
    // SAFETY: setting the thread's last error for the caller to read.
    unsafe { SetLastError(if code & 0xFFFF_0000 == 0x8007_0000 { code & 0xFFFF } else { code }) };
    0
}

pub(crate) fn mismatch(name: &str, len: usize) -> Error {
    Error::new(format!("port message {name}: {len} bytes do not match its declaration"), ERROR_INVALID_PARAMETER)
}

/// One message from the driver, borrowed from the buffer it arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Identifies the message for [`PortClient::reply`].
    pub id: u64,
    /// `FILTER_MESSAGE_HEADER.ReplyLength`: the reply the driver accepts,
    /// *including* the 16-byte reply header (0: it expects no reply). See
    /// [`max_reply_body`](Self::max_reply_body).
    pub reply_length: u32,
    /// The body.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// Whether the driver waits for a reply.
    pub fn wants_reply(&self) -> bool {
        self.reply_length != 0
    }

    /// The longest reply body the driver accepts.
    pub fn max_reply_body(&self) -> usize {
        (self.reply_length as usize).saturating_sub(REPLY_HEADER_LEN)
    }

    /// The body as the typed request declared by `message` (its length
    /// checked against the declared size rules).
    pub fn request_as<I: FromBytes, O: ?Sized>(&self, message: &proto::Message<I, O>) -> Result<I> {
        message.request_from(self.body).map_err(|_| mismatch(message.name, self.body.len()))
    }

    /// Parses what `FilterGetMessage` wrote (header and body).
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>> {
        if bytes.len() < MESSAGE_HEADER_LEN {
            return Err(Error::new(format!("port message of {} bytes: shorter than its header", bytes.len()), ERROR_INVALID_PARAMETER));
        }
        let reply_length = u32::from_le_bytes(bytes.get(0..4).and_then(|b| b.try_into().ok()).unwrap_or_default());
        let id = u64::from_le_bytes(bytes.get(8..16).and_then(|b| b.try_into().ok()).unwrap_or_default());
        Ok(Message { id, reply_length, body: bytes.get(MESSAGE_HEADER_LEN..).unwrap_or(&[]) })
    }
}

/// A connection to a communication port.
pub struct PortClient {
    device: Device,
    name: String,
}

impl PortClient {
    /// Connects to port `name` (e.g. `\MyDriverPort`) with a connection
    /// context (at most 65535 bytes) the driver's connect callback sees.
    pub fn connect(name: &str, context: &[u8]) -> Result<PortClient> {
        let wide = to_wide_nul(name).ok_or_else(|| Error::new(format!("port name {name:?}"), ERROR_INVALID_PARAMETER))?;
        let ctx_len = u16::try_from(context.len())
            .map_err(|_| Error::new(format!("FilterConnectCommunicationPort {name}: context over 64 KiB"), ERROR_INVALID_PARAMETER))?;
        let mut handle: HANDLE = ptr::null_mut();
        // SAFETY: NUL-terminated name, context valid for its length, a valid
        // out-pointer; default security attributes.
        let hr = unsafe {
            FilterConnectCommunicationPort(
                wide.as_ptr(),
                0,
                if context.is_empty() { ptr::null() } else { context.as_ptr().cast() },
                ctx_len,
                ptr::null(),
                &mut handle,
            )
        };
        check(hr, || format!("FilterConnectCommunicationPort {name}"))?;
        Ok(PortClient { device: Device::from_handle(handle, name, true), name: name.to_owned() })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `input` to the driver's message callback; its reply lands in
    /// `output`. Returns the reply's length.
    pub fn send(&self, input: &[u8], output: &mut [u8]) -> Result<usize> {
        send_on(&self.device, &self.name, input, output)
    }

    /// Sends the typed `request` declared by `message` to the driver's
    /// message callback and returns its reply, read as the declared `O` (a
    /// reply outside the declared size rules is `ERROR_INVALID_DATA`).
    pub fn call<I, O>(&self, message: &proto::Message<I, O>, request: &I) -> Result<O>
    where
        I: ?Sized + IntoBytes + Immutable,
        O: FromBytes + IntoBytes,
    {
        let input = request.as_bytes();
        message.check_request(input.len()).map_err(|_| mismatch(message.name, input.len()))?;
        let mut reply = O::new_zeroed();
        let n = self.send(input, reply.as_mut_bytes())?;
        if message.check_reply(n).is_err() || n < core::mem::size_of::<O>() {
            return Err(Error::new(
                format!("port message {}: the driver replied {n} bytes, not its declaration", message.name),
                ERROR_INVALID_DATA,
            ));
        }
        Ok(reply)
    }

    /// Replies to the driver's message `id` (received as declared by
    /// `message`) with the typed `reply` and `STATUS_SUCCESS`; the
    /// byte-level [`reply`](Self::reply) stays for other statuses and
    /// variable-length bodies.
    pub fn answer<I: ?Sized, O: IntoBytes + Immutable>(&self, message: &proto::Message<I, O>, id: u64, reply: &O) -> Result<()> {
        let body = reply.as_bytes();
        message.check_reply(body.len()).map_err(|_| mismatch(message.name, body.len()))?;
        self.reply(id, NtStatus::STATUS_SUCCESS, body)
    }

    /// Waits for the driver's next message; `buf` receives header and body
    /// (size it as `MESSAGE_HEADER_LEN` + the largest body expected).
    ///
    /// The call is issued overlapped and waited for, so the message's length
    /// is known (a plain blocking `FilterGetMessage` does not report it).
    pub fn get_message<'b>(&self, buf: &'b mut [u8]) -> Result<Message<'b>> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let p = buf.as_mut_ptr();
        let n = self.device.sync_io(
            || format!("FilterGetMessage {}", self.name),
            |ov, _| {
                // SAFETY: our port handle; `buf` is writable for `len` bytes
                // and outlives the wait `sync_io` does.
                let hr = unsafe { FilterGetMessage(self.device.handle, p.cast(), len, ov) };
                bool_from_hresult(hr)
            },
        )?;
        let len = n.min(buf.len());
        Message::parse(buf.get(..len).unwrap_or_default())
    }

    /// Replies to message `id` with `status` and `body` (at most the
    /// message's `reply_length`).
    pub fn reply(&self, id: u64, status: NtStatus, body: &[u8]) -> Result<()> {
        reply_on(&self.device, &self.name, id, status, body)
    }

    /// The port's handle as a device (for the async API, which binds it to
    /// its own completion port).
    #[cfg(feature = "async")]
    pub(crate) fn into_device(self) -> Device {
        self.device
    }

    /// Binds the port to `port` so [`start_get_message`](Self::start_get_message)
    /// completions arrive there with `key`.
    pub fn associate(&self, port: &CompletionPort, key: usize) -> Result<()> {
        port.associate(&self.device, key)
    }

    /// Starts an overlapped `FilterGetMessage` into a buffer of `capacity`
    /// bytes; the [`Completion`](crate::iocp::Completion)'s buffer holds the
    /// message ([`Message::parse`]). Many may be outstanding at once.
    pub fn start_get_message(&self, capacity: usize, tag: u64) -> Result<OpId> {
        self.device.start_custom(OpKind::PortMessage, vec![0; capacity], tag, |h, ov, buf, len| {
            // SAFETY: the handle is ours; buffer and OVERLAPPED live in the op
            // until its completion is reclaimed from the port.
            let hr = unsafe { FilterGetMessage(h, buf.cast(), len, ov) };
            bool_from_hresult(hr)
        })
    }

    /// Cancels every outstanding overlapped receive (for shutdown); each
    /// completes at the port as cancelled.
    pub fn cancel_receives(&self) -> Result<()> {
        self.device.cancel_all()
    }
}

/// `FilterSendMessage` on the port handle of `device` (named `name`).
pub(crate) fn send_on(device: &Device, name: &str, input: &[u8], output: &mut [u8]) -> Result<usize> {
    let (Ok(in_len), Ok(out_len)) = (u32::try_from(input.len()), u32::try_from(output.len())) else {
        return Err(Error::new(format!("FilterSendMessage {name}: buffer over 4 GiB"), ERROR_INVALID_PARAMETER));
    };
    let mut returned = 0u32;
    // SAFETY: an open port handle; buffers valid for their lengths.
    let hr = unsafe {
        FilterSendMessage(
            device.handle,
            if input.is_empty() { ptr::null() } else { input.as_ptr().cast() },
            in_len,
            if output.is_empty() { ptr::null_mut() } else { output.as_mut_ptr().cast() },
            out_len,
            &mut returned,
        )
    };
    check(hr, || format!("FilterSendMessage {name}"))?;
    Ok(returned as usize)
}

/// `FilterReplyMessage` to message `id` with `status` and `body` on the port
/// handle of `device` (named `name`).
pub(crate) fn reply_on(device: &Device, name: &str, id: u64, status: NtStatus, body: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(REPLY_HEADER_LEN + body.len());
    buf.extend_from_slice(&status.0.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(body);
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: an open port handle; the reply buffer is valid for `len`.
    let hr = unsafe { FilterReplyMessage(device.handle, buf.as_mut_ptr().cast(), len) };
    check(hr, || format!("FilterReplyMessage {name} (message {id})"))
}
