//! `DELAYED_COMPLETE`: an IOCTL the driver pends and its worker completes
//! after the requested delay, replying with the request's token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ntcomm_demo_proto::{self as proto, Delay};
use ntcomm_um::{CompletionPort, Device, OpId};
use zerocopy::{FromBytes, IntoBytes};

use crate::demo::{err, wait_one, Row, Step};
use crate::fault_child::{ChildError, ChildResult, Ready};
use crate::faults::Probe;
use crate::fmt::micros;
use crate::rng::Rng;

/// Starts `delay` on the overlapped handle `dev`; its completion's buffer
/// is the token ([`token_of`]).
fn start(dev: &Device, delay: &Delay, tag: u64) -> ntcomm_um::Result<OpId> {
    dev.start_ioctl(&proto::DELAYED_COMPLETE, delay.as_bytes().to_vec(), core::mem::size_of::<u32>(), tag)
}

/// The token a completed `DELAYED_COMPLETE` replied with.
fn token_of(reply: &[u8]) -> Option<u32> {
    u32::read_from_bytes(reply).ok()
}

// ---------------------------------------------------------------------------
// Demo

/// The delayed completion waited for synchronously, then through a port.
pub fn demo(dev: &Device) -> Vec<Row> {
    vec![
        Row::of("pended IOCTL", "DELAYED_COMPLETE 50 ms, synchronous", delayed_sync(dev)),
        Row::of("pended IOCTL", "DELAYED_COMPLETE 50 ms, through IOCP", delayed_iocp()),
    ]
}

const DELAY: Delay = Delay { millis: 50, token: 4242 };

fn delayed_sync(dev: &Device) -> Step {
    let t = Instant::now();
    let mut token = 0u32;
    dev.ioctl(&proto::DELAYED_COMPLETE, &DELAY, &mut token).map_err(err)?;
    delayed_verdict(token, t.elapsed(), "synchronous DeviceIoControl")
}

fn delayed_iocp() -> Step {
    let port = CompletionPort::new().map_err(err)?;
    let d = Device::open_overlapped(proto::USER_PATH).map_err(err)?;
    port.associate(&d, 3).map_err(err)?;
    let t = Instant::now();
    start(&d, &DELAY, 13).map_err(err)?;
    let c = wait_one(&port)?;
    let lat = t.elapsed();
    c.result.map_err(err)?;
    let token = token_of(&c.buffer).unwrap_or(0);
    delayed_verdict(token, lat, "completion through the port")
}

/// OK when the request took at least the delay and came back with the
/// token as its 4-byte reply.
fn delayed_verdict(token: u32, took: Duration, what: &str) -> Step {
    let delay = Duration::from_millis(DELAY.millis.into());
    if took < delay {
        return Err(format!("completed after {}, before the {} ms delay", micros(took), DELAY.millis));
    }
    if token != DELAY.token {
        return Err(format!("{what} replied {token}, expected the token {} ({})", DELAY.token, micros(took)));
    }
    Ok(format!("{what} completed after {}, replied the token {token}", micros(took)))
}

// ---------------------------------------------------------------------------
// Fault suite

/// A new handle's delayed requests come back with their tokens.
pub(crate) fn new_client_works(_: &Probe) -> Result<(), String> {
    let d = Device::open(proto::USER_PATH).map_err(err)?;
    for millis in [0, 5] {
        let mut token = 0u32;
        d.ioctl(&proto::DELAYED_COMPLETE, &Delay { millis, token: 4242 + millis }, &mut token).map_err(err)?;
        if token != 4242 + millis {
            return Err(format!("DELAYED_COMPLETE answered token {token}"));
        }
    }
    Ok(())
}

/// Eight delayed requests of random delays kept in flight, tokens checked.
pub(crate) fn client_workload(rng: &mut Rng) -> ChildResult {
    let d = Device::open_overlapped(proto::USER_PATH)?;
    let port = CompletionPort::new()?;
    port.associate(&d, 0)?;
    let mut tokens = HashMap::new();
    let mut ready = Ready::default();
    let mut tag = 0u64;
    loop {
        while tokens.len() < 8 {
            let delay = Delay { millis: if rng.chance(30) { 0 } else { rng.below(50) as u32 }, token: rng.u32() };
            start(&d, &delay, tag)?;
            tokens.insert(tag, delay.token);
            tag += 1;
        }
        if let Some(c) = port.wait(Some(Duration::from_secs(5)))? {
            c.result?;
            let want = tokens.remove(&c.tag).unwrap_or(0);
            if token_of(&c.buffer) != Some(want) {
                return Err(ChildError::Wrong(format!("DELAYED_COMPLETE token {:?}, expected {want}", c.buffer)));
            }
            ready.now();
        }
    }
}
