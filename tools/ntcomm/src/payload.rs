//! Test payloads: bytes that differ from one position to the next, and the
//! check that a reply is exactly what was sent.

/// `len` bytes that differ from one position (and seed) to the next.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

/// The reply (`n` bytes reported, in `out`) must be exactly `sent`.
pub fn check_echo(sent: &[u8], n: usize, out: &[u8]) -> Result<(), String> {
    if n != sent.len() {
        return Err(format!("reply of {n} bytes, sent {}", sent.len()));
    }
    match out.get(..n) {
        Some(got) if got == sent => Ok(()),
        Some(got) => {
            let i = got.iter().zip(sent).position(|(a, b)| a != b).unwrap_or(0);
            Err(format!("reply differs at byte {i}: got {:#04x}, sent {:#04x}", got[i], sent[i]))
        }
        None => Err(format!("reply buffer holds {} bytes, {n} reported", out.len())),
    }
}
