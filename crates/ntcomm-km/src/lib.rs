#![doc = include_str!("../GUIDE.md")]
//!
//! `ntcomm-km`: safe building blocks for a Windows kernel driver that talks
//! to user mode.
//!
//! - [`device`]: device creation (name, link, DACL, secure open), dispatch
//!   through the [`DeviceOperations`](device::DeviceOperations) trait, and
//!   orderly unload; [`driver_entry!`] defines `DriverEntry`.
//! - [`irp`]: [`Request`](irp::Request), an owned IRP that completing
//!   consumes, and [`Handled`](irp::Handled), the proof a dispatch routine
//!   returns.
//! - [`ioctl`]: a table of handlers keyed by `ntcomm-proto` declarations,
//!   validated before any handler runs; buffers per method.
//! - [`queue`]: a cancel-safe queue of pended requests (no `IoCsq*`).
//! - [`ring_channel`]: shared-memory ring channels as a service, with the
//!   driver's per-channel handler.
//! - [`thread`]: system threads, work items, a stop signal.
//! - [`sync`]: spin lock and events; [`pool`]: the pool allocator.
//! - [`sys`]: the raw declarations, layouts asserted against the C compiler.
//!
//! Channels beyond IOCTL and read/write are Cargo features, so a driver
//! imports only the kernel functions of the channels it uses: `flt` (Filter
//! Manager ports, the only import from fltmgr.sys), `lpc`, `ring`
//! (`section` + `event`), `section`, `event`, `pipe`, `peer`, `process`;
//! `full` turns them all on. None is on by default.
//!
//! Everything here works the same on Windows and under Wine; nothing asks
//! which one it runs on.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;

pub mod debug;
pub mod device;
mod error;
#[cfg(feature = "event")]
pub mod event;
#[cfg(feature = "flt")]
pub mod flt;
pub mod handle;
pub mod ioctl;
pub mod irp;
#[cfg(feature = "lpc")]
pub mod lpc;
#[cfg(feature = "peer")]
pub mod peer;
#[cfg(feature = "pipe")]
pub mod pipe;
pub mod pool;
#[cfg(feature = "process")]
pub mod process;
pub mod queue;
pub mod quota;
pub mod random;
#[cfg(feature = "ring")]
pub mod ring_channel;
#[cfg(feature = "section")]
pub mod section;
pub mod security;
pub mod string;
pub mod sync;
pub mod sys;
pub mod thread;
pub mod time;
pub mod user_copy;

pub use error::Error;
pub use ntcomm_proto as proto;
pub use ntcomm_proto::NtStatus;

/// Kernel code has nowhere to unwind to: a panic is a bug check with a code
/// that names ntcomm ("NTC!"). Kernel crates deny the lints that make panics
/// reachable; this is the last line.
#[cfg(all(not(test), target_os = "windows"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Some(loc) = info.location() {
        kprintln!("panic at {}:{}", loc.file(), loc.line());
    }
    // SAFETY: KeBugCheckEx never returns.
    unsafe { sys::KeBugCheckEx(u32::from_be_bytes(*b"NTC!"), 0, 0, 0, 0) }
}

/// The precompiled `alloc` crate names an unwinding personality in its
/// unwind tables. With `panic = "abort"` nothing ever unwinds, so it is
/// never called; it exists only to satisfy the linker.
#[cfg(all(not(test), target_os = "windows"))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Landing pads in the precompiled `core`/`alloc` call this to continue
/// unwinding. Under `panic = "abort"` no unwind ever starts, so it cannot be
/// reached; defining it keeps libgcc's unwinder (and its user-mode imports
/// from kernel32/msvcrt) out of the driver image.
#[cfg(all(not(test), target_os = "windows"))]
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    // SAFETY: KeBugCheckEx never returns.
    unsafe { sys::KeBugCheckEx(u32::from_be_bytes(*b"NTC!"), 1, 0, 0, 0) }
}
