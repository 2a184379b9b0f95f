//! Pipe names: an unguessable base (pid, a per-process counter and 128
//! random bits) and the three pipe paths derived from it.

use wine_fltport::PIPE_BASE_CHARS;

/// Suffix of the message pipe (the port handle).
pub const MSG: &str = "-msg";
/// Suffix of the control pipe (`FilterSendMessage`).
pub const CTL: &str = "-ctl";
/// Suffix of the reply pipe (`FilterReplyMessage`).
pub const RPL: &str = "-rpl";

/// `fltport-<pid>-<counter>-<32 hex digits>`, at most 58 characters.
pub fn pipe_base(pid: u32, counter: u32, random: &[u8; 16]) -> String {
    let mut s = format!("fltport-{pid:x}-{counter:x}-");
    for b in random {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The base as [`wine_fltport::ConnectRequest::pipe_base`] wants it;
/// `None` if it does not fit.
pub fn base_field(base: &str) -> Option<[u16; PIPE_BASE_CHARS]> {
    let mut out = [0u16; PIPE_BASE_CHARS];
    for (n, u) in base.encode_utf16().enumerate() {
        *out.get_mut(n)? = u;
    }
    Some(out)
}

/// `\\.\pipe\<base><suffix>`, NUL-terminated UTF-16.
pub fn pipe_path(base: &str, suffix: &str) -> Vec<u16> {
    format!(r"\\.\pipe\{base}{suffix}").encode_utf16().chain([0]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_fits_and_differs() {
        let a = pipe_base(u32::MAX, u32::MAX, &[0xff; 16]);
        assert!(a.len() <= 58, "{a}");
        assert!(base_field(&a).is_some());
        let b = pipe_base(u32::MAX, u32::MAX, &[0xfe; 16]);
        assert_ne!(a, b);
        assert_eq!(pipe_base(0x1a, 2, &[0; 16]), format!("fltport-1a-2-{}", "0".repeat(32)));
    }

    #[test]
    fn field_is_nul_padded_and_bounded() {
        let f = base_field("ab").unwrap();
        assert_eq!(&f[..3], &[b'a' as u16, b'b' as u16, 0]);
        assert!(base_field(&"x".repeat(PIPE_BASE_CHARS)).is_some());
        assert!(base_field(&"x".repeat(PIPE_BASE_CHARS + 1)).is_none());
    }

    #[test]
    fn paths() {
        let p = pipe_path("b", MSG);
        assert_eq!(String::from_utf16(&p[..p.len() - 1]).unwrap(), r"\\.\pipe\b-msg");
        assert_eq!(p.last(), Some(&0));
    }
}
