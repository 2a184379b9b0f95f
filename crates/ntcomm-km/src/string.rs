//! Counted UTF-16 strings (`UNICODE_STRING`) built from Rust strings.

use alloc::vec::Vec;

use crate::sys::UNICODE_STRING;
use crate::Error;
use ntcomm_proto::NtStatus;

/// An owned UTF-16 string that can lend itself as a `UNICODE_STRING`.
pub struct UnicodeString {
    buf: Vec<u16>,
}

impl UnicodeString {
    /// Encodes `s`; fails if it is longer than a `UNICODE_STRING` can count.
    pub fn new(s: &str) -> Result<Self, Error> {
        let buf: Vec<u16> = s.encode_utf16().collect();
        if buf.len() * 2 > u16::MAX as usize - 2 {
            return Err(Error::new(NtStatus::STATUS_INVALID_PARAMETER, "name longer than a UNICODE_STRING"));
        }
        Ok(Self { buf })
    }

    /// The raw view. The pointer is valid while `self` is alive and unmoved
    /// in memory (the buffer is on the heap, so moving `self` is fine).
    pub fn as_raw(&mut self) -> UNICODE_STRING {
        let bytes = (self.buf.len() * 2) as u16;
        UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: self.buf.as_mut_ptr() }
    }
}
