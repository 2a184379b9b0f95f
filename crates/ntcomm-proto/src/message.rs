//! Typed message descriptors for the message channels (Filter Manager
//! communication ports and LPC), the counterpart of [`Ioctl`](crate::Ioctl)
//! for IOCTLs: one declaration names the request type, the reply type and
//! the size rules, and both sides use it.
//!
//! `I` is the request, `O` the reply: a fixed `#[repr(C)]` type (checked
//! with zerocopy's traits where it is used), `()` for none (a message
//! declared with reply `()` is sent without waiting for a reply), or `[u8]`
//! for a variable-length byte payload. Fixed types are copied out of the
//! wire bytes, so their alignment never matters.
//!
//! ```
//! use ntcomm_proto::message::Message;
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
//! #[repr(C)]
//! struct Scan { pid: u32, flags: u32 }
//! #[derive(Clone, Copy, Debug, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
//! #[repr(C)]
//! struct Verdict { allow: u32 }
//!
//! const SCAN: Message<Scan, Verdict> = Message::fixed("SCAN");
//!
//! // The receiving side (a port's message callback, an LPC server):
//! let mut out = [0u8; 16];
//! let request = Scan { pid: 4, flags: 0 };
//! let n = SCAN.serve(request.as_bytes(), &mut out, |s| Ok(Verdict { allow: u32::from(s.pid != 4) })).unwrap();
//! // The sending side reads the reply back with the same declaration:
//! assert_eq!(SCAN.reply_from(&out[..n]), Ok(Verdict { allow: 0 }));
//! ```

use core::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::ioctl::Len;
use crate::lpc::MAX_BODY;
use crate::NtStatus;

/// Ties the request and reply types to a descriptor without owning them.
type Types<I, O> = (fn(&I), fn(&O));

/// One kind of message on a port or LPC connection: a name for
/// diagnostics and the size rules of its request and reply bodies.
pub struct Message<I: ?Sized, O: ?Sized> {
    /// A short name, used in errors and logs.
    pub name: &'static str,
    /// Accepted request body lengths.
    pub request: Len,
    /// Accepted reply body lengths.
    pub reply: Len,
    _types: PhantomData<Types<I, O>>,
}

impl<I: ?Sized, O: ?Sized> Clone for Message<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I: ?Sized, O: ?Sized> Copy for Message<I, O> {}

impl<I: ?Sized, O: ?Sized> core::fmt::Debug for Message<I, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message").field("name", &self.name).field("request", &self.request).field("reply", &self.reply).finish()
    }
}

impl<I: ?Sized, O: ?Sized> Message<I, O> {
    /// Declares a message with explicit size rules (for `[u8]` payloads).
    pub const fn new(name: &'static str, request: Len, reply: Len) -> Self {
        Message { name, request, reply, _types: PhantomData }
    }

    /// Whether both bodies fit in one LPC message ([`MAX_BODY`] bytes each).
    pub const fn fits_lpc(&self) -> bool {
        self.request.max as usize <= MAX_BODY && self.reply.max as usize <= MAX_BODY
    }

    /// The same descriptor with its types erased.
    pub const fn erase(&self) -> Message<[u8], [u8]> {
        Message { name: self.name, request: self.request, reply: self.reply, _types: PhantomData }
    }

    /// Checks a request body's length (`STATUS_INVALID_PARAMETER` outside
    /// the rules).
    pub const fn check_request(&self, len: usize) -> Result<(), NtStatus> {
        check(self.request, len)
    }

    /// Checks a reply body's length (`STATUS_INVALID_PARAMETER` outside the
    /// rules).
    pub const fn check_reply(&self, len: usize) -> Result<(), NtStatus> {
        check(self.reply, len)
    }
}

const fn check(rule: Len, len: usize) -> Result<(), NtStatus> {
    if len > u32::MAX as usize || rule.check(len as u32).is_err() {
        Err(NtStatus::STATUS_INVALID_PARAMETER)
    } else {
        Ok(())
    }
}

impl<I, O> Message<I, O> {
    /// Declares a message whose request and reply are exactly `I` and `O`
    /// (`()`: no body).
    pub const fn fixed(name: &'static str) -> Self {
        Message::new(name, Len::of::<I>(), Len::of::<O>())
    }
}

impl<I: ?Sized + IntoBytes + Immutable, O: ?Sized> Message<I, O> {
    /// The wire bytes of `request`, checked against the request rules.
    pub fn request_bytes<'a>(&self, request: &'a I) -> Result<&'a [u8], NtStatus> {
        let bytes = request.as_bytes();
        self.check_request(bytes.len())?;
        Ok(bytes)
    }
}

impl<I: FromBytes, O: ?Sized> Message<I, O> {
    /// The request carried by `body` (its length checked against the rules).
    pub fn request_from(&self, body: &[u8]) -> Result<I, NtStatus> {
        self.check_request(body.len())?;
        I::read_from_prefix(body).map(|(i, _)| i).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER)
    }
}

impl<I: ?Sized, O: FromBytes> Message<I, O> {
    /// The reply carried by `body` (its length checked against the rules).
    pub fn reply_from(&self, body: &[u8]) -> Result<O, NtStatus> {
        self.check_reply(body.len())?;
        O::read_from_prefix(body).map(|(o, _)| o).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER)
    }
}

impl<I: ?Sized, O: IntoBytes + Immutable> Message<I, O> {
    /// Writes `reply` to the start of `out`, returning its length;
    /// `STATUS_BUFFER_TOO_SMALL` if `out` is shorter.
    pub fn write_reply(&self, reply: &O, out: &mut [u8]) -> Result<usize, NtStatus> {
        let bytes = reply.as_bytes();
        self.check_reply(bytes.len())?;
        let dst = out.get_mut(..bytes.len()).ok_or(NtStatus::STATUS_BUFFER_TOO_SMALL)?;
        dst.copy_from_slice(bytes);
        Ok(bytes.len())
    }
}

impl<I: FromBytes, O: IntoBytes + Immutable> Message<I, O> {
    /// Serves one message on the receiving side: reads the request from
    /// `input`, runs `handler`, writes its reply to `output` and returns the
    /// reply's length: the shape of a port's message callback
    /// (`ntcomm_km::flt::PortHandler::message`) and of an LPC server's
    /// request handling.
    pub fn serve(&self, input: &[u8], output: &mut [u8], handler: impl FnOnce(I) -> Result<O, NtStatus>) -> Result<usize, NtStatus> {
        let request = self.request_from(input)?;
        let reply = handler(request)?;
        self.write_reply(&reply, output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASK: Message<u64, u32> = Message::fixed("ASK");
    const BYTES: Message<[u8], u32> = Message::new("BYTES", Len::range(1, 8), Len::of::<u32>());
    const NOTE: Message<u32, ()> = Message::fixed("NOTE");

    #[test]
    fn fixed_rules_are_the_types() {
        assert_eq!(ASK.request, Len::exact(8));
        assert_eq!(ASK.reply, Len::exact(4));
        assert_eq!(NOTE.reply, Len::NONE);
        assert!(ASK.fits_lpc());
        assert!(!Message::<[u8], ()>::new("BIG", Len::up_to(MAX_BODY + 1), Len::NONE).fits_lpc());
    }

    #[test]
    fn serve_round_trip() {
        let mut out = [0u8; 8];
        let n = ASK.serve(&7u64.to_le_bytes(), &mut out, |x| Ok(x as u32 * 2)).unwrap();
        assert_eq!(n, 4);
        assert_eq!(ASK.reply_from(&out[..n]), Ok(14));
        // Request of the wrong size: refused before the handler runs.
        assert_eq!(ASK.serve(&[0; 7], &mut out, |_| panic!("ran")), Err(NtStatus::STATUS_INVALID_PARAMETER));
        // A reply buffer too small for the declared reply.
        assert_eq!(ASK.serve(&[0; 8], &mut out[..3], |_| Ok(1)), Err(NtStatus::STATUS_BUFFER_TOO_SMALL));
        // A handler's error is the result.
        assert_eq!(ASK.serve(&[0; 8], &mut out, |_| Err(NtStatus::STATUS_ACCESS_DENIED)), Err(NtStatus::STATUS_ACCESS_DENIED));
    }

    #[test]
    fn byte_requests_and_reply_rules() {
        assert_eq!(BYTES.request_bytes(&[1, 2, 3][..]), Ok(&[1u8, 2, 3][..]));
        assert_eq!(BYTES.request_bytes(&[][..]), Err(NtStatus::STATUS_INVALID_PARAMETER));
        assert_eq!(BYTES.request_bytes(&[0; 9][..]), Err(NtStatus::STATUS_INVALID_PARAMETER));
        assert_eq!(BYTES.reply_from(&[1, 0, 0]), Err(NtStatus::STATUS_INVALID_PARAMETER));
        assert_eq!(BYTES.reply_from(&[1, 0, 0, 0, 0]), Err(NtStatus::STATUS_INVALID_PARAMETER));
        assert_eq!(BYTES.reply_from(&[1, 0, 0, 0]), Ok(1));
        assert_eq!(NOTE.request_from(&5u32.to_le_bytes()), Ok(5));
    }
}
