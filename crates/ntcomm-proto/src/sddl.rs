//! A security descriptor from SDDL, built without any system call.
//!
//! Kernel code has no `ConvertStringSecurityDescriptorToSecurityDescriptor`
//! and `IoCreateDeviceSecure` lives in a static library that mingw lacks,
//! so ntcomm encodes the self-relative descriptor itself. The subset is
//! what device DACLs use: `D:` with optional `P` (protected), and ACEs
//! `(A|D;flags;rights;;;sid)` where rights are `GA GR GW GX FA FR FW FX`
//! (or `0x` hex) and sid is `SY BA BU WD AU LS NS RC IU` or `S-1-...`.
//! Generic rights are mapped to file rights (devices use the file generic
//! mapping), so the descriptor needs no later mapping.

/// Why an SDDL string was refused, with the byte offset of the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SddlError {
    /// Offset into the SDDL string.
    pub at: usize,
    /// What is wrong there.
    pub what: &'static str,
}

/// The default device DACL: SYSTEM and Administrators, full access.
pub const DEFAULT_DEVICE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";

const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
const FILE_GENERIC_READ: u32 = 0x0012_0089;
const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_PROTECTED: u16 = 0x1000;
const SE_SELF_RELATIVE: u16 = 0x8000;

struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SddlError> {
        let end = self.len.checked_add(bytes.len()).ok_or(SddlError { at: 0, what: "output buffer too small" })?;
        let dst = self.buf.get_mut(self.len..end).ok_or(SddlError { at: 0, what: "output buffer too small" })?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.buf.get_mut(at..at.saturating_add(2)) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }
}

fn well_known_sid(name: &str) -> Option<(u64, &'static [u32])> {
    Some(match name {
        "WD" => (1, &[0]),
        "SY" => (5, &[18]),
        "LS" => (5, &[19]),
        "NS" => (5, &[20]),
        "AU" => (5, &[11]),
        "IU" => (5, &[4]),
        "RC" => (5, &[12]),
        "BA" => (5, &[32, 544]),
        "BU" => (5, &[32, 545]),
        _ => return None,
    })
}

fn put_sid(out: &mut Out<'_>, text: &str, at: usize) -> Result<(), SddlError> {
    let bad = SddlError { at, what: "unknown SID" };
    let mut subs = [0u32; 15];
    let (authority, count) = if let Some((auth, s)) = well_known_sid(text) {
        for (d, v) in subs.iter_mut().zip(s) {
            *d = *v;
        }
        (auth, s.len())
    } else {
        let rest = text.strip_prefix("S-1-").ok_or(bad)?;
        let mut parts = rest.split('-');
        let auth: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or(bad)?;
        let mut n = 0;
        for p in parts {
            let slot = subs.get_mut(n).ok_or(SddlError { at, what: "more than 15 sub-authorities" })?;
            *slot = p.parse().map_err(|_| bad)?;
            n += 1;
        }
        if auth >= 1 << 48 {
            return Err(bad);
        }
        (auth, n)
    };
    out.put(&[1, count as u8])?;
    let [_, _, a0, a1, a2, a3, a4, a5] = authority.to_be_bytes();
    out.put(&[a0, a1, a2, a3, a4, a5])?;
    for s in subs.iter().take(count) {
        out.put(&s.to_le_bytes())?;
    }
    Ok(())
}

fn rights(text: &str, at: usize) -> Result<u32, SddlError> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).map_err(|_| SddlError { at, what: "bad hex rights" });
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return Err(SddlError { at, what: "bad rights" });
    }
    let mut mask = 0;
    for pair in bytes.chunks(2) {
        mask |= match pair {
            b"GA" | b"FA" => FILE_ALL_ACCESS,
            b"GR" | b"FR" => FILE_GENERIC_READ,
            b"GW" | b"FW" => FILE_GENERIC_WRITE,
            b"GX" | b"FX" => FILE_GENERIC_EXECUTE,
            _ => return Err(SddlError { at, what: "unknown right" }),
        };
    }
    Ok(mask)
}

/// Encodes `sddl` as a self-relative security descriptor into `buf`,
/// returning its length. 256 bytes hold any descriptor of a few ACEs.
pub fn to_self_relative(sddl: &str, buf: &mut [u8]) -> Result<usize, SddlError> {
    let body = sddl.strip_prefix("D:").ok_or(SddlError { at: 0, what: "expected D:" })?;
    let (protected, aces) = match body.strip_prefix('P') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let mut out = Out { buf, len: 0 };
    let control = SE_SELF_RELATIVE | SE_DACL_PRESENT | if protected { SE_DACL_PROTECTED } else { 0 };
    // Header: revision, sbz1, control, owner, group, sacl, dacl offsets.
    out.put(&[1, 0])?;
    out.put(&control.to_le_bytes())?;
    out.put(&[0; 12])?;
    out.put(&20u32.to_le_bytes())?;
    let acl_start = out.len;
    out.put(&[2, 0, 0, 0, 0, 0, 0, 0])?;
    let mut count: u16 = 0;
    let mut rest = aces;
    let mut at = sddl.len() - aces.len();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('(').ok_or(SddlError { at, what: "expected (" })?;
        let close = inner.find(')').ok_or(SddlError { at, what: "unclosed ACE" })?;
        let ace = inner.get(..close).unwrap_or_default();
        let mut fields = ace.split(';');
        let (Some(ty), Some(flags), Some(r), Some(_), Some(_), Some(sid), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(SddlError { at, what: "an ACE has six fields" });
        };
        let ace_type: u8 = match ty {
            "A" => 0,
            "D" => 1,
            _ => return Err(SddlError { at, what: "ACE type must be A or D" }),
        };
        if !flags.is_empty() {
            return Err(SddlError { at, what: "ACE flags are not supported on devices" });
        }
        let mask = rights(r, at)?;
        let ace_start = out.len;
        out.put(&[ace_type, 0, 0, 0])?;
        out.put(&mask.to_le_bytes())?;
        put_sid(&mut out, sid, at)?;
        let ace_size = (out.len - ace_start) as u16;
        out.patch_u16(ace_start + 2, ace_size);
        count += 1;
        at += close + 2;
        rest = inner.get(close + 1..).unwrap_or_default();
    }
    let acl_size = (out.len - acl_start) as u16;
    out.patch_u16(acl_start + 2, acl_size);
    out.patch_u16(acl_start + 4, count);
    Ok(out.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_descriptor_bytes() {
        let mut buf = [0u8; 256];
        let n = to_self_relative(DEFAULT_DEVICE_SDDL, &mut buf).unwrap();
        // header 20 + ACL header 8 + ACE(SY) 8+12 + ACE(BA) 8+16
        assert_eq!(n, 20 + 8 + 20 + 24);
        assert_eq!(&buf[..4], &[1, 0, 0x04, 0x90]); // self-relative | protected | dacl present
        assert_eq!(u32::from_le_bytes(buf[16..20].try_into().unwrap()), 20);
        assert_eq!(&buf[20..28], &[2, 0, 52, 0, 2, 0, 0, 0]);
        // First ACE: allow, size 20, FILE_ALL_ACCESS, S-1-5-18.
        assert_eq!(&buf[28..32], &[0, 0, 20, 0]);
        assert_eq!(u32::from_le_bytes(buf[32..36].try_into().unwrap()), FILE_ALL_ACCESS);
        assert_eq!(&buf[36..48], &[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
        // Second: S-1-5-32-544.
        assert_eq!(&buf[56..72], &[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0]);
    }

    #[test]
    fn literal_sids_and_hex_rights() {
        let mut a = [0u8; 256];
        let mut b = [0u8; 256];
        let na = to_self_relative("D:(A;;0x1f01ff;;;S-1-5-32-544)", &mut a).unwrap();
        let nb = to_self_relative("D:(A;;FA;;;BA)", &mut b).unwrap();
        assert_eq!(a[..na], b[..nb]);
        assert_eq!(&a[2..4], &[0x04, 0x80]);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let mut buf = [0u8; 256];
        assert_eq!(to_self_relative("O:BA", &mut buf).unwrap_err().what, "expected D:");
        assert_eq!(to_self_relative("D:(A;;GA;;;XX)", &mut buf).unwrap_err().what, "unknown SID");
        assert_eq!(to_self_relative("D:(A;;QQ;;;SY)", &mut buf).unwrap_err().what, "unknown right");
        assert_eq!(to_self_relative("D:(A;;GA;;SY)", &mut buf).unwrap_err().what, "an ACE has six fields");
        assert_eq!(to_self_relative("D:(A;;GA;;;SY", &mut buf).unwrap_err().what, "unclosed ACE");
        let mut tiny = [0u8; 30];
        assert_eq!(to_self_relative(DEFAULT_DEVICE_SDDL, &mut tiny).unwrap_err().what, "output buffer too small");
    }
}
