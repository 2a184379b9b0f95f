//! Durations as the tools print them.

use std::time::Duration;

/// `123 us` or `50.3 ms`.
pub fn micros(d: Duration) -> String {
    scaled(d.as_secs_f64() * 1e6, "us", "ms")
}

/// `850 ns` or `12.5 us`.
pub fn nanos(d: Duration) -> String {
    scaled(d.as_secs_f64() * 1e9, "ns", "us")
}

/// `v` in `unit` below 10,000, else in thousands of it (`thousand`).
fn scaled(v: f64, unit: &str, thousand: &str) -> String {
    if v < 10_000.0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{:.1} {thousand}", v / 1000.0)
    }
}
