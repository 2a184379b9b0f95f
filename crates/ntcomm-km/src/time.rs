//! A monotonic clock for deadlines.

use core::time::Duration;

/// `KI_USER_SHARED_DATA` on x64, and the offset of `InterruptTime` in it.
const INTERRUPT_TIME: usize = 0xFFFF_F780_0000_0000 + 0x8;

/// Time since boot, in 100 ns units, from `KUSER_SHARED_DATA.InterruptTime`
/// (exactly what the DDK's x64 `KeQueryInterruptTime` macro reads).
///
/// The load is a plain `mov` in inline assembly: Wine emulates only a few
/// instruction forms at that address, and an optimised `read_volatile` can
/// be folded into an arithmetic instruction with a memory operand (seen in
/// release builds: `sub r9, [rax]`), which crashed winedevice.
pub fn interrupt_time() -> u64 {
    let value: u64;
    // SAFETY: KUSER_SHARED_DATA is mapped read-only at this fixed address in
    // every x64 context; one 64-bit load, nothing written.
    unsafe {
        core::arch::asm!(
            "mov {value}, qword ptr [{addr}]",
            addr = in(reg) INTERRUPT_TIME as u64,
            value = lateout(reg) value,
            options(nostack, readonly, preserves_flags),
        );
    }
    value
}

/// A deadline `d` from now, in [`interrupt_time`] units.
pub fn deadline_after(d: Duration) -> u64 {
    interrupt_time().saturating_add((d.as_nanos() / 100).min(u64::MAX as u128) as u64)
}

/// How long until `deadline` (zero if passed).
pub fn until(deadline: u64) -> Duration {
    Duration::from_nanos(deadline.saturating_sub(interrupt_time()).saturating_mul(100))
}
