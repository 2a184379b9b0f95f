//! The demo driver's state as the tools read it (`GET_STATS`): the counters
//! themselves, leftover read/write messages drained, and waiting until a
//! request started asynchronously has reached the driver and pended there.

use std::time::{Duration, Instant};

use ntcomm_demo_proto::{self as proto, Stats};
use ntcomm_um::Device;

/// The driver's counters.
pub fn stats(dev: &Device) -> Result<Stats, String> {
    dev.ioctl_get(&proto::GET_STATS).map_err(|e| e.to_string())
}

/// Reads away the messages the read/write queue holds (left by an earlier
/// client), so that reads see what the caller writes. Returns how many.
pub fn drain_messages(dev: &Device) -> Result<u64, String> {
    let queued = stats(dev)?.messages_queued;
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    for _ in 0..queued {
        dev.read(&mut buf).map_err(|e| format!("draining {queued} leftover messages: {e}"))?;
    }
    Ok(queued)
}

/// Polls the counters until the driver holds at least `in_flight` pended
/// IRPs (proof that a request started asynchronously has pended there), for
/// at most `within`.
pub fn wait_pended(dev: &Device, in_flight: u64, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let s = stats(dev)?;
        if s.irps_in_flight >= in_flight {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("request never pended in the driver ({} in flight after {within:?})", s.irps_in_flight));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
