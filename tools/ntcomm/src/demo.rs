//! `ntcomm demo`: exercises every channel the reference driver has today,
//! once each, and prints one table row per channel and operation.
//!
//! Every row is a real exchange with the driver whose result is checked
//! (payloads byte for byte, counters before and after). Channels that do
//! not exist yet are listed as "not yet", never simulated. The ring rows
//! check every record (sequence and checksum) on the client or through the
//! driver's counters; the pipe row runs a real pipe server in a thread.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ntcomm_demo_proto::{self as proto, Stats};
use ntcomm_um::{Completion, CompletionPort, Device};

use crate::channel::Channel;
use crate::driver_state::stats;
use crate::rig;

/// How long a step waits for a completion (or a request to be pended)
/// before it is declared failed.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The exchange happened and every check passed.
    Ok,
    /// The exchange failed or a check did not hold.
    Fail,
    /// The channel is not implemented yet.
    NotYet,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Fail => "FAIL",
            Outcome::NotYet => "not yet",
        }
    }
}

/// One line of the demo table.
#[derive(Clone, Debug)]
pub struct Row {
    /// The channel, e.g. "IOCTL".
    pub channel: &'static str,
    /// What was done on it.
    pub operation: &'static str,
    /// How it went.
    pub outcome: Outcome,
    /// Bytes, latency, counters; or why it failed.
    pub detail: String,
}

/// A step's result: the detail text either way.
pub(crate) type Step = Result<String, String>;

impl Row {
    /// The row of `step` on `channel`.
    pub fn of(channel: &'static str, operation: &'static str, step: Step) -> Row {
        let (outcome, detail) = match step {
            Ok(d) => (Outcome::Ok, d),
            Err(d) => (Outcome::Fail, d),
        };
        Row { channel, operation, outcome, detail }
    }
}

/// Runs the demo against the driver image `image` and prints the table.
/// Exit code 1 if any row failed (or the driver could not be reached).
pub fn run(image: &Path) -> ExitCode {
    println!("ntcomm demo: driver {}", image.display());
    if let Err(e) = rig::ensure_demo_running(image) {
        eprintln!("ntcomm demo: cannot start the driver: {e}");
        return ExitCode::FAILURE;
    }
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ntcomm demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = rows(&dev);
    print!("{}", render(&rows));
    let failed = rows.iter().filter(|r| r.outcome == Outcome::Fail).count();
    let ok = rows.iter().filter(|r| r.outcome == Outcome::Ok).count();
    let not_yet = rows.iter().filter(|r| r.outcome == Outcome::NotYet).count();
    println!("\n{ok} OK, {failed} FAIL, {not_yet} not yet");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every row, in order: each channel's ([`Channel::demo`]), then the
/// driver's state compared with its state before. `dev` is a synchronous
/// handle; steps open others where a second handle is the point.
pub fn rows(dev: &Device) -> Vec<Row> {
    let start = stats(dev);
    let mut rows: Vec<Row> = Channel::ALL.into_iter().flat_map(|c| c.demo(dev)).collect();
    rows.push(Row::of("driver state", "GET_STATS after all of the above", end_state(dev, start)));
    rows
}

/// The table as text.
pub fn render(rows: &[Row]) -> String {
    let head = ["CHANNEL", "OPERATION", "RESULT", "DETAIL"];
    let w0 = rows.iter().map(|r| r.channel.len()).chain([head[0].len()]).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.operation.len()).chain([head[1].len()]).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.outcome.label().len()).chain([head[2].len()]).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{:w0$}  {:w1$}  {:w2$}  {}", head[0], head[1], head[2], head[3]);
    let _ = writeln!(out, "{:-<w0$}  {:-<w1$}  {:-<w2$}  {:-<6}", "", "", "", "");
    for r in rows {
        let _ = writeln!(out, "{:w0$}  {:w1$}  {:w2$}  {}", r.channel, r.operation, r.outcome.label(), r.detail);
    }
    out
}

fn end_state(dev: &Device, start: Result<Stats, String>) -> Step {
    let start = start.map_err(|e| format!("GET_STATS failed at the start: {e}"))?;
    // Ring channels are torn down by their thread after the handle closes.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut end = stats(dev)?;
    while end.ring_channels_open > start.ring_channels_open && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        end = stats(dev)?;
    }
    if end.irps_in_flight != start.irps_in_flight || end.messages_queued != 0 {
        return Err(format!("in flight {} -> {}, {} messages still queued", start.irps_in_flight, end.irps_in_flight, end.messages_queued));
    }
    if end.ring_channels_open != start.ring_channels_open {
        return Err(format!("ring channels open {} -> {}: not torn down after close", start.ring_channels_open, end.ring_channels_open));
    }
    Ok(format!(
        "nothing left pended ({} in flight) or queued, {} ring channels open; {} IRPs completed during the demo, {} handles open, pool {} B in {} blocks",
        end.irps_in_flight,
        end.ring_channels_open,
        end.irps_completed - start.irps_completed,
        end.open_handles,
        end.pool_bytes_outstanding,
        end.pool_allocations_outstanding
    ))
}

// ---------------------------------------------------------------------------
// Helpers of the channels' steps

/// An error as a step's detail.
pub(crate) fn err(e: ntcomm_um::Error) -> String {
    e.to_string()
}

/// The next completion on `port`, within [`STEP_TIMEOUT`].
pub(crate) fn wait_one(port: &CompletionPort) -> Result<Completion, String> {
    port.wait(Some(STEP_TIMEOUT)).map_err(err)?.ok_or_else(|| format!("no completion within {:?}", STEP_TIMEOUT))
}
