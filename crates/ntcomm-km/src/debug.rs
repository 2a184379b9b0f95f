//! `kprintln!`: formatted output to the kernel debugger (`DbgPrint`).
//!
//! Formats into a fixed stack buffer (no allocation, usable anywhere) and
//! truncates at 255 bytes; `%` is never interpreted because the text is
//! passed as an argument to a constant `"%s"` format.

use core::fmt::{self, Write};

struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // Keep one byte for the terminating NUL.
            if let Some(slot) = self.buf.get_mut(self.len).filter(|_| self.len < 254) {
                *slot = if b == 0 { b'?' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn print(args: fmt::Arguments<'_>) {
    let mut line = Line { buf: [0; 256], len: 0 };
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    if let Some(end) = line.buf.get_mut(line.len) {
        *end = 0;
    }
    // SAFETY: constant NUL-terminated format and a NUL-terminated argument.
    unsafe { crate::sys::DbgPrint(c"ntcomm: %s".as_ptr().cast(), line.buf.as_ptr()) };
}

/// Prints a line to the kernel debugger, prefixed with `ntcomm: `.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::debug::print(format_args!($($arg)*)) };
}
