//! Unguessable object names without a kernel CSPRNG.
//!
//! Windows' kernel random sources (`BCryptGenRandom` through ksecdd,
//! `ExGenRandom`) are not ntoskrnl exports, so names are built from 16 bytes
//! the client drew from its own CSPRNG, mixed with what the driver observes
//! (time since boot, a per-driver counter, addresses). Another process sees
//! none of the client's bytes, so it cannot predict the name; and names are
//! created with create-new semantics, so it cannot plant one either.

use core::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// 128 bits for a name, from the client's `nonce` and local observations.
/// Each call gives a different value even for the same nonce.
pub fn name_bits(nonce: &[u8; 16]) -> u128 {
    let lo = u64::from_le_bytes([nonce[0], nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7]]);
    let hi = u64::from_le_bytes([nonce[8], nonce[9], nonce[10], nonce[11], nonce[12], nonce[13], nonce[14], nonce[15]]);
    let local =
        crate::time::interrupt_time() ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32) ^ (nonce.as_ptr() as u64).rotate_left(17);
    let a = splitmix(lo ^ local);
    let b = splitmix(hi ^ a ^ local.rotate_left(29));
    (u128::from(b) << 64) | u128::from(a)
}
