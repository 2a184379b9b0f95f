//! Typed IOCTL descriptors: one declaration read by the driver's dispatch
//! table and by the client's `ioctl` call.
//!
//! `I` and `O` name the request and reply types: a fixed `#[repr(C)]` type
//! (checked with zerocopy's traits where it is used), `()` for none, or `[u8]`
//! for a variable-length byte payload. The size rules ([`Len`]) are what the
//! driver enforces before any handler runs.
//!
//! ```
//! use ntcomm_proto::{Access, DeviceType, FromBytes, Immutable, IntoBytes, Ioctl, KnownLayout, Method};
//!
//! #[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
//! #[zerocopy(crate = "ntcomm_proto::zerocopy")]
//! #[repr(C)]
//! struct Add { value: u64 }
//!
//! const ADD: Ioctl<Add, Add> = Ioctl::fixed("ADD", DeviceType(0x8e7d), 0, Method::Buffered, Access::ANY);
//!
//! // CTL_CODE(0x8e7d, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS): customer function numbers start at 0x800.
//! assert_eq!(ADD.code.0, (0x8e7d << 16) | (0x800 << 2));
//! assert_eq!((ADD.code.device(), ADD.code.function(), ADD.code.method()), (DeviceType(0x8e7d), 0x800, Method::Buffered));
//! // The size rules follow from the types: exactly 8 bytes in, a buffer of at least 8 out.
//! assert!(ADD.input.check(8).is_ok() && ADD.input.check(7).is_err() && ADD.input.check(9).is_err());
//! assert!(ADD.output.check(8).is_ok() && ADD.output.check(4).is_err());
//! assert!(ADD.carries_types());
//! ```

use core::marker::PhantomData;

use crate::ctl::{Access, ControlCode, DeviceType, Method};

/// An inclusive size range for a buffer, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Len {
    /// Smallest accepted length.
    pub min: u32,
    /// Largest accepted length.
    pub max: u32,
}

/// Why a buffer length was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenError {
    /// Shorter than [`Len::min`].
    TooSmall {
        /// What was given.
        got: u32,
        /// What is needed at least.
        min: u32,
    },
    /// Longer than [`Len::max`].
    TooLarge {
        /// What was given.
        got: u32,
        /// The most that is accepted.
        max: u32,
    },
}

impl Len {
    /// No buffer (length 0 only).
    pub const NONE: Len = Len { min: 0, max: 0 };

    /// Exactly `n` bytes.
    pub const fn exact(n: usize) -> Len {
        Len { min: n as u32, max: n as u32 }
    }
    /// Exactly the size of `T`.
    pub const fn of<T>() -> Len {
        Len::exact(core::mem::size_of::<T>())
    }
    /// From 0 to `max` bytes.
    pub const fn up_to(max: usize) -> Len {
        Len { min: 0, max: max as u32 }
    }
    /// From `min` to `max` bytes.
    pub const fn range(min: usize, max: usize) -> Len {
        assert!(min <= max);
        Len { min: min as u32, max: max as u32 }
    }

    /// Checks a length against the range.
    pub const fn check(self, got: u32) -> Result<(), LenError> {
        if got < self.min {
            Err(LenError::TooSmall { got, min: self.min })
        } else if got > self.max {
            Err(LenError::TooLarge { got, max: self.max })
        } else {
            Ok(())
        }
    }
}

/// Ties the request and reply types to a descriptor without owning them.
type Types<I, O> = (fn(&I), fn(&O));

/// One IOCTL: its code, a name for diagnostics, and the size rules of its
/// input buffer and of the output buffer the caller must supply.
///
/// The output rule bounds the *buffer the caller provides*; a longer output
/// buffer than `output.max` is accepted and only `output.max` bytes of it are
/// offered to the handler, so a client may pass a generous buffer.
pub struct Ioctl<I: ?Sized, O: ?Sized> {
    /// The packed control code.
    pub code: ControlCode,
    /// A short name, used in errors and logs.
    pub name: &'static str,
    /// Accepted input lengths.
    pub input: Len,
    /// Accepted output buffer lengths (see the type's docs for `max`).
    pub output: Len,
    _types: PhantomData<Types<I, O>>,
}

impl<I: ?Sized, O: ?Sized> Clone for Ioctl<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I: ?Sized, O: ?Sized> Copy for Ioctl<I, O> {}

impl<I: ?Sized, O: ?Sized> core::fmt::Debug for Ioctl<I, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ioctl")
            .field("name", &self.name)
            .field("code", &self.code)
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl<I: ?Sized, O: ?Sized> Ioctl<I, O> {
    /// Declares an IOCTL in the customer range of `device`.
    pub const fn new(
        name: &'static str,
        device: DeviceType,
        function_offset: u16,
        method: Method,
        access: Access,
        input: Len,
        output: Len,
    ) -> Self {
        Ioctl { code: ControlCode::custom(device, function_offset, method, access), name, input, output, _types: PhantomData }
    }

    /// The buffer method encoded in the code.
    pub const fn method(&self) -> Method {
        self.code.method()
    }

    /// The same descriptor with its types erased, for dispatch tables.
    pub const fn erase(&self) -> Ioctl<[u8], [u8]> {
        Ioctl { code: self.code, name: self.name, input: self.input, output: self.output, _types: PhantomData }
    }
}

impl<I, O> Ioctl<I, O> {
    /// Declares an IOCTL whose input and output are exactly `I` and `O`
    /// (`()`: no buffer): the size rules follow from the types, the shape
    /// `ntcomm_km::ioctl::IoctlHandler::typed` serves.
    pub const fn fixed(name: &'static str, device: DeviceType, function_offset: u16, method: Method, access: Access) -> Self {
        Ioctl::new(name, device, function_offset, method, access, Len::of::<I>(), Len::of::<O>())
    }

    /// Whether the size rules can carry `I` and `O`: the input is exactly
    /// `I` and the output buffer is at least `O`.
    pub const fn carries_types(&self) -> bool {
        let (i, o) = (core::mem::size_of::<I>(), core::mem::size_of::<O>());
        self.input.min as usize == i && self.input.max as usize == i && self.output.min as usize >= o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn len_rules() {
        assert_eq!(Len::NONE.check(0), Ok(()));
        assert_eq!(Len::NONE.check(1), Err(LenError::TooLarge { got: 1, max: 0 }));
        assert_eq!(Len::of::<u64>().check(7), Err(LenError::TooSmall { got: 7, min: 8 }));
        assert_eq!(Len::range(4, 10).check(10), Ok(()));
    }

    #[test]
    fn fixed_declarations_carry_their_types() {
        const D: DeviceType = DeviceType(0x8000);
        let fixed: Ioctl<u64, u32> = Ioctl::fixed("F", D, 1, Method::Buffered, Access::ANY);
        assert_eq!((fixed.input, fixed.output), (Len::exact(8), Len::exact(4)));
        assert!(fixed.carries_types());
        let none: Ioctl<(), ()> = Ioctl::fixed("N", D, 2, Method::Buffered, Access::ANY);
        assert!(none.carries_types());
        let loose: Ioctl<u64, u32> = Ioctl::new("L", D, 3, Method::Buffered, Access::ANY, Len::up_to(8), Len::of::<u32>());
        assert!(!loose.carries_types());
    }

    proptest! {
        #[test]
        fn check_agrees_with_bounds(min in 0u32..1000, span in 0u32..1000, got: u32) {
            let l = Len { min, max: min + span };
            prop_assert_eq!(l.check(got).is_ok(), got >= min && got <= min + span);
        }
    }
}
