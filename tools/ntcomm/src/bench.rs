//! `ntcomm bench`: round-trip latency and throughput of each channel of the
//! reference driver.
//!
//! Channels (one timed round trip each):
//! - `ioctl-buffered`: synchronous `ECHO_BUFFERED` of SIZE bytes;
//! - `ioctl-in-direct`: synchronous `COMPARE_IN_DIRECT` of SIZE bytes;
//! - `ioctl-direct`: synchronous `ECHO_OUT_DIRECT` of SIZE bytes;
//! - `ioctl-neither`: synchronous `ECHO_NEITHER` of SIZE bytes;
//! - `readwrite`: `WriteFile` of SIZE bytes then `ReadFile` of it, same handle;
//! - `inverted-call`: a thread keeps one overlapped `WAIT_EVENT` pended
//!   through a completion port; the timed loop posts SIZE bytes with
//!   `POST_EVENT` from another handle and measures until the waiter thread
//!   has dequeued the completion (post -> completion latency);
//! - `overlapped-ioctl`: DEPTH `ECHO_BUFFERED` requests kept in flight through
//!   one completion port (throughput; latency is issue -> dequeue, queueing
//!   included);
//! - `ring-d2u` (per `--ring-sizes` record size): a shared-memory channel;
//!   the driver's synthetic source produces records as fast as the ring
//!   takes them and the client receives them, checking each record's
//!   sequence number and checksum (throughput only);
//! - `ring-u2d` (per record size): the client sends records (published in
//!   batches) and the driver validates them; timed until `RING_STATUS`
//!   reports them all consumed (throughput only);
//! - `ring-echo`: an echo-mode channel with one SIZE record in flight; the
//!   client idles 1 ms between round trips, so the driver's thread is asleep
//!   when a record is sent (one event wake-up), and the client sleeps in
//!   `recv` unless the reply beats it (counted in the notes);
//! - `ring-echo-spin`: the same with the client busy-polling its ring
//!   instead of sleeping (the driver still sleeps between records);
//! - `pipe`: `PIPE_SEND` of SIZE bytes, which the driver's system thread
//!   writes to a pipe server running in a thread of this process; one
//!   message in flight, latency = send -> the server's `ReadFile` returned;
//! - `port-send`: `FilterSendMessage` of SIZE bytes to the driver's
//!   communication port, whose message callback echoes them (round trip);
//! - `port-ask`: one `PORT_ASK` IOCTL has 16 driver threads send up to
//!   `--port-questions` questions of SIZE bytes with `FltSendMessage`,
//!   answered by 8 receiver threads x 16 outstanding overlapped
//!   `FilterGetMessage` through one completion port; questions/s from the
//!   IOCTL's duration (throughput only: a question carries no timestamp);
//! - `port-ask-1`: the same with one driver thread and one receiver thread
//!   with one receive outstanding: duration / questions is the round-trip
//!   time per question (a latency proxy, not a distribution).
//! - `lpc-ask-1` / `lpc-ask`: the driver connects to an LPC server running
//!   in a thread of this process (`ntcomm::lpc_server`) and one `LPC_ASK`
//!   has 1 (or 4) driver workers send SIZE-byte requests with
//!   `ZwRequestWaitReplyPort`; every reply is checked by the driver; the
//!   latency columns are the driver's own timing of each request.
//! - `async-ioctl`, `async-overlapped`, `async-port-ask`: the same
//!   round trips awaited through `ntcomm_um::aio` under tokio (see [`aio`]).
//!
//! With `--c-baseline CLIENT`, the channels the C baseline also has
//! (`baseline/c`: the four echo IOCTLs and read/write) are measured in
//! rounds that alternate ntcomm and the C client (see [`crate::baseline`]),
//! and a table of ratios follows the usual one.
//!
//! Every reply is checked (byte count and content); a wrong reply fails the
//! channel. Latencies are recorded in nanoseconds in an HdrHistogram (3
//! significant digits) and printed in microseconds. MB/s counts the payload
//! once per round trip (10^6 bytes).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ntcomm_demo_proto as proto;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ntcomm_demo_proto::{PortAsk, PortTally};
use ntcomm_proto::NtStatus;
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::{CompletionPort, Device, ErrorKind, Message, OpKind, PipeServer, PortClient, RingChannel};
use serde::Serialize;

use crate::demo::{pattern, port_verdict};
use crate::rig;
use crate::{baseline, chart};

mod aio;

/// Every channel, in run order, with what one round trip is.
pub const CHANNELS: [(&str, &str); 21] = [
    ("ioctl-buffered", "synchronous ECHO_BUFFERED (METHOD_BUFFERED) of SIZE bytes"),
    ("ioctl-in-direct", "synchronous COMPARE_IN_DIRECT (METHOD_IN_DIRECT) of SIZE bytes"),
    ("ioctl-direct", "synchronous ECHO_OUT_DIRECT (METHOD_OUT_DIRECT) of SIZE bytes"),
    ("ioctl-neither", "synchronous ECHO_NEITHER (METHOD_NEITHER, captured by the driver) of SIZE bytes"),
    ("readwrite", "WriteFile SIZE bytes then ReadFile them back, same handle"),
    ("inverted-call", "POST_EVENT of SIZE bytes -> pended WAIT_EVENT completion dequeued by the waiter thread (IOCP)"),
    ("overlapped-ioctl", "ECHO_BUFFERED of SIZE bytes, DEPTH in flight through one IOCP; latency = issue -> dequeue"),
    ("ring-d2u", "driver source (rate 0) -> client recv, every record's sequence and checksum checked; throughput, no per-record latency"),
    ("ring-u2d", "client fill_record + send (published in batches of 64) -> driver validates; until RING_STATUS.consumed == all; throughput"),
    ("ring-echo", "echo channel, 1 record of SIZE in flight, client idles 1 ms between round trips: the driver thread is asleep (1 wake-up), the client sleeps in recv unless the reply beat it"),
    ("ring-echo-spin", "echo channel, 1 record of SIZE in flight, client busy-polls (no sleep); the driver still sleeps between records"),
    ("pipe", "PIPE_SEND of SIZE bytes -> driver pipe thread -> pipe server thread's ReadFile; 1 in flight; latency = send -> receipt"),
    ("port-send", "FilterSendMessage of SIZE bytes -> driver's message callback echoes them (Filter Manager port, user->driver)"),
    ("port-ask", "PORT_ASK: 16 driver threads FltSendMessage SIZE-byte questions; 8 receiver threads x 16 outstanding FilterGetMessage (IOCP) reply; ops = questions, throughput from the IOCTL's duration; latency = send -> reply timed by the driver"),
    ("port-ask-1", "PORT_ASK with 1 driver thread, 1 receiver thread with 1 receive outstanding; latency = send -> reply timed by the driver; duration / questions in the notes"),
    ("lpc-ask-1", "LPC_ASK: 1 driver worker ZwRequestWaitReplyPort SIZE-byte requests to an ntcomm_um LPC server thread, reply checked by the driver; latency = request -> reply timed by the driver"),
    ("lpc-ask", "LPC_ASK with 4 driver workers on one connection (the server answers one at a time); ops = requests, throughput from the IOCTL's duration; latency timed by the driver"),
    ("lpc-view", "LPC_ASK through the connection's section view: the driver writes SIZE bytes into the view and requests; the server checksums its mapping of the view and replies; latency timed by the driver"),
    ("async-ioctl", "ECHO_BUFFERED of SIZE bytes awaited (ntcomm_um::aio) in a tokio task, one at a time"),
    ("async-overlapped", "ECHO_BUFFERED of SIZE bytes, DEPTH tokio tasks each awaiting one at a time; latency = issue -> task resumed"),
    ("async-port-ask", "PORT_ASK as port-ask, answered by one tokio task reading AsyncPort's message stream (128 receives in flight)"),
];

/// The sizes of `--all`: a small record, a page, a large buffer.
pub const ALL_SIZES: [usize; 3] = [64, 4096, 65536];

/// The largest payload a channel carries in one round trip (its protocol's
/// limit), for `--sizes`: larger sizes are skipped with the reason.
fn max_payload(name: &str) -> usize {
    match name {
        "inverted-call" => proto::MAX_EVENT,
        "pipe" => proto::MAX_PIPE_MESSAGE,
        "port-send" | "port-ask" | "port-ask-1" | "async-port-ask" => proto::MAX_PORT_MESSAGE,
        "lpc-ask" | "lpc-ask-1" => ntcomm_proto::lpc::MAX_BODY,
        "lpc-view" => proto::LPC_MAX_VIEW,
        _ => proto::MAX_ECHO,
    }
}

/// Channels run once per `--ring-sizes` entry.
const PER_RING_SIZE: [&str; 2] = ["ring-d2u", "ring-u2d"];

/// How long any single wait may take before the channel is declared failed.
const STALL: Duration = Duration::from_secs(5);

/// Options of `ntcomm bench`.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// One JSON document instead of tables.
    #[serde(skip)]
    pub json: bool,
    /// Timed round trips per channel.
    pub iterations: u64,
    /// Payload bytes per round trip.
    pub size: usize,
    /// Every channel at each of these payload sizes (and the rings at
    /// these record sizes) instead of `size` alone; empty: `size` only.
    pub sizes: Vec<usize>,
    /// Write the chart (SVG) here.
    #[serde(skip)]
    pub chart: Option<std::path::PathBuf>,
    /// Untimed round trips per channel first.
    pub warmup: u64,
    /// Requests in flight for `overlapped-ioctl`.
    pub depth: usize,
    /// Cap on each channel's timed loop, in seconds.
    pub max_seconds: f64,
    /// Only these channels (empty: all).
    pub channels: Vec<String>,
    /// Record sizes of `ring-d2u` and `ring-u2d` (one result each).
    pub ring_sizes: Vec<usize>,
    /// Records per `ring-d2u` / `ring-u2d` run, at most.
    pub ring_records: u64,
    /// And at most this many megabytes (10^6 B) of records per run.
    pub ring_megabytes: u64,
    /// Data bytes of each ring of those channels (power of two).
    pub ring_capacity: u32,
    /// Questions per `port-ask` / `port-ask-1` run, at most.
    pub port_questions: u32,
    /// The C baseline's client (`ntcomm_c_client.exe`): compare the shared
    /// channels with it, in interleaved rounds.
    pub c_baseline: Option<std::path::PathBuf>,
    /// The C baseline's driver (default: `ntcomm_c.sys` beside the client).
    pub c_driver: Option<std::path::PathBuf>,
    /// Rounds of the comparison; `iterations` is split over them.
    pub c_rounds: u32,
}

/// The whole run, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command line, as received.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The options in effect.
    pub options: Options,
    /// One entry per channel run.
    pub channels: Vec<ChannelResult>,
    /// The comparison with the C baseline, with `--c-baseline`.
    pub c_baseline: Option<baseline::Comparison>,
    /// No channel failed (and the comparison, if any, worked).
    pub ok: bool,
}

/// The machine the bench ran on.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub logical_cores: usize,
    /// Windows version as reported by `RtlGetVersion`.
    pub windows_version: Option<String>,
    /// Wine version (`wine_get_version`) when running under Wine.
    pub wine_version: Option<String>,
    /// Host system under Wine (`wine_get_host_version`), e.g. "Linux 6.1.0".
    pub wine_host: Option<String>,
    /// Target architecture.
    pub arch: &'static str,
    /// Whether the tool was built with optimisations.
    pub release_build: bool,
}

/// Results of one channel.
#[derive(Debug, Serialize)]
pub struct ChannelResult {
    /// Channel name, e.g. `ioctl-buffered`.
    pub name: &'static str,
    /// What one round trip is.
    pub round_trip: &'static str,
    /// `ok`, `failed` or `skipped`.
    pub status: &'static str,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Payload bytes per round trip.
    pub payload_bytes: usize,
    /// Requests in flight (1 except `overlapped-ioctl`).
    pub depth: usize,
    /// Timed round trips completed.
    pub iterations: u64,
    /// Whether the loop stopped at `max_seconds` before `iterations`.
    pub stopped_at_time_cap: bool,
    /// Wall time of the timed loop.
    pub elapsed_s: f64,
    /// Round trips per second.
    pub ops_per_s: f64,
    /// Payload megabytes (10^6 B) per second, counted once per round trip.
    pub mb_per_s: f64,
    /// Latency of a round trip.
    pub latency_us: Option<Latency>,
    /// Channel-specific observations.
    pub notes: Vec<String>,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.5)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// What a timed loop measured.
pub(crate) struct Measured {
    pub(crate) hist: Histogram<u64>,
    pub(crate) iterations: u64,
    pub(crate) elapsed: Duration,
    pub(crate) capped: bool,
    pub(crate) notes: Vec<String>,
}

/// Runs the benchmarks against the driver image `image` and prints them.
pub fn run(image: &Path, opts: &Options) -> ExitCode {
    for c in &opts.channels {
        if !CHANNELS.iter().any(|(n, _)| n == c) {
            let names: Vec<&str> = CHANNELS.iter().map(|(n, _)| *n).collect();
            eprintln!("ntcomm bench: unknown channel {c:?}; channels: {}", names.join(", "));
            return ExitCode::from(2);
        }
    }
    if opts.iterations == 0 || opts.depth == 0 || opts.port_questions == 0 || opts.max_seconds.is_nan() || opts.max_seconds <= 0.0 {
        eprintln!("ntcomm bench: --iterations, --depth, --port-questions and --max-seconds must be positive");
        return ExitCode::from(2);
    }
    if opts.c_baseline.is_some() && opts.c_rounds == 0 {
        eprintln!("ntcomm bench: --c-rounds must be positive");
        return ExitCode::from(2);
    }
    if opts.ring_sizes.is_empty() || opts.ring_records == 0 || opts.ring_megabytes == 0 || !opts.ring_capacity.is_power_of_two() {
        eprintln!(
            "ntcomm bench: --ring-sizes, --ring-records and --ring-megabytes must be non-empty/positive, --ring-capacity a power of two"
        );
        return ExitCode::from(2);
    }
    if let Err(e) = rig::ensure_running(image) {
        eprintln!("ntcomm bench: cannot start the driver {}: {e}", image.display());
        return ExitCode::FAILURE;
    }
    let command = command_line();
    let machine = machine();
    if !opts.json {
        println!("ntcomm bench");
        println!("command: {command}");
        println!("machine: {}", describe(&machine));
        println!(
            "options: {} iterations/channel (each loop capped at {} s), {} B payload, {} warmup, overlapped depth {}",
            opts.iterations, opts.max_seconds, opts.size, opts.warmup, opts.depth
        );
        println!(
            "rings: record sizes {:?} B, up to {} records or {} MB per run, {} KiB per ring",
            opts.ring_sizes,
            opts.ring_records,
            opts.ring_megabytes,
            opts.ring_capacity / 1024
        );
        println!("latency in microseconds (HdrHistogram, ns resolution); MB/s = payload bytes once per round trip (or record) / 10^6\n");
    }
    let progress = !opts.json && std::io::stderr().is_terminal();
    let selected = |name: &str| opts.channels.is_empty() || opts.channels.iter().any(|c| c == name);
    // The shared channels first, interleaved with the C baseline; their
    // ntcomm rounds, merged, are the channels' rows of the usual table.
    let (comparison, mut compared) = match &opts.c_baseline {
        Some(client) => {
            let shared: Vec<&'static str> = baseline::SHARED.iter().copied().filter(|n| selected(n)).collect();
            if shared.is_empty() {
                (None, Vec::new())
            } else {
                let (c, outcomes) = baseline::compare(opts, client, &shared, progress, run_channel);
                (Some(c), outcomes)
            }
        }
        None => (None, Vec::new()),
    };
    let mut results = Vec::new();
    let base_size = opts.size;
    for (name, round_trip) in CHANNELS {
        if !selected(name) {
            continue;
        }
        let sizes = if PER_RING_SIZE.contains(&name) {
            opts.ring_sizes.clone()
        } else if opts.sizes.is_empty() {
            vec![opts.size]
        } else {
            opts.sizes.clone()
        };
        for size in sizes {
            let at_size = Options { size, ..opts.clone() };
            let opts = &at_size;
            let outcome = match compared.iter().position(|(n, _)| *n == name && size == base_size) {
                Some(i) => compared.swap_remove(i).1,
                None if !PER_RING_SIZE.contains(&name) && size > max_payload(name) => {
                    Outcome::Skipped(format!("the channel carries at most {} B per round trip", max_payload(name)))
                }
                None => {
                    let len = if PER_RING_SIZE.contains(&name) {
                        ring_records(opts, size)
                    } else if name.starts_with("port-ask") || name.starts_with("lpc-ask") || name == "async-port-ask" {
                        u64::from(opts.port_questions)
                    } else {
                        opts.iterations
                    };
                    let bar = progress_bar(progress, name, len);
                    let outcome = run_channel(name, opts, &bar, size);
                    bar.finish_and_clear();
                    outcome
                }
            };
            let depth = if name == "overlapped-ioctl" || name == "async-overlapped" { opts.depth } else { 1 };
            let mut r = result(name, round_trip, size, depth, outcome);
            if r.status == "ok" && size >= 128 && !name.starts_with("ring-") {
                // Batching: a round trip of SIZE bytes can carry SIZE/64 records of 64 B.
                let per = size / 64;
                r.notes.push(format!("batched as {per} records of 64 B per round trip: {:.0} records/s", r.ops_per_s * per as f64));
            }
            results.push(r);
        }
    }
    let ok = results.iter().all(|r| r.status != "failed") && comparison.as_ref().is_none_or(|c| c.ok);
    if let Some(path) = &opts.chart {
        let points: Vec<chart::Point> = results
            .iter()
            .filter(|r| r.status == "ok")
            .map(|r| chart::Point {
                channel: r.name.to_owned(),
                size: r.payload_bytes,
                p50_us: r.latency_us.map(|l| l.p50),
                p99_us: r.latency_us.map(|l| l.p99),
                mb_per_s: r.mb_per_s,
            })
            .collect();
        let title = format!("ntcomm bench: {}", describe(&machine));
        if let Err(e) = std::fs::write(path, chart::svg(&title, &points)) {
            eprintln!("ntcomm bench: writing the chart {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        if !opts.json {
            println!("chart: {}", path.display());
        }
    }
    let report = Report { command, machine, options: opts.clone(), channels: results, c_baseline: comparison, ok };
    if opts.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("ntcomm bench: JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", render(&report));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one channel (`size`: the record size of the per-ring-size channels).
pub(crate) fn run_channel(name: &str, opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
    match name {
        "ioctl-buffered" => echo(opts, bar, &proto::ECHO_BUFFERED),
        "ioctl-in-direct" => echo(opts, bar, &proto::COMPARE_IN_DIRECT),
        "ioctl-direct" => echo(opts, bar, &proto::ECHO_OUT_DIRECT),
        "ioctl-neither" => echo(opts, bar, &proto::ECHO_NEITHER),
        "readwrite" => readwrite(opts, bar),
        "inverted-call" => inverted_call(opts, bar),
        "overlapped-ioctl" => overlapped(opts, bar),
        "ring-d2u" => ring_d2u(opts, bar, size),
        "ring-u2d" => ring_u2d(opts, bar, size),
        "ring-echo" => ring_echo(opts, bar, true),
        "ring-echo-spin" => ring_echo(opts, bar, false),
        "pipe" => pipe(opts, bar),
        "port-send" => port_send(opts, bar),
        "port-ask" => port_ask(opts, bar, PortShape { senders: 16, receivers: 8, outstanding: 16 }),
        "port-ask-1" => port_ask(opts, bar, PortShape { senders: 1, receivers: 1, outstanding: 1 }),
        "lpc-ask-1" => lpc_ask(opts, bar, 1, false),
        "lpc-ask" => lpc_ask(opts, bar, 4, false),
        "lpc-view" => lpc_ask(opts, bar, 1, true),
        "async-ioctl" => aio::ioctl(opts, bar),
        "async-overlapped" => aio::overlapped(opts, bar),
        "async-port-ask" => aio::port_ask(opts, bar),
        _ => unreachable!("channel list"),
    }
}

/// A channel's outcome: measured, skipped (reason), or failed (reason).
pub(crate) enum Outcome {
    Done(Measured),
    Skipped(String),
    Failed(String),
}

fn result(name: &'static str, round_trip: &'static str, size: usize, depth: usize, outcome: Outcome) -> ChannelResult {
    let mut r = ChannelResult {
        name,
        round_trip,
        status: "ok",
        error: None,
        payload_bytes: size,
        depth,
        iterations: 0,
        stopped_at_time_cap: false,
        elapsed_s: 0.0,
        ops_per_s: 0.0,
        mb_per_s: 0.0,
        latency_us: None,
        notes: Vec::new(),
    };
    match outcome {
        Outcome::Done(m) => {
            let secs = m.elapsed.as_secs_f64();
            r.iterations = m.iterations;
            r.stopped_at_time_cap = m.capped;
            r.elapsed_s = secs;
            if secs > 0.0 {
                r.ops_per_s = m.iterations as f64 / secs;
                r.mb_per_s = r.ops_per_s * size as f64 / 1e6;
            }
            r.latency_us = Latency::of(&m.hist);
            r.notes = m.notes;
        }
        Outcome::Skipped(why) => {
            r.status = "skipped";
            r.error = Some(why);
        }
        Outcome::Failed(why) => {
            r.status = "failed";
            r.error = Some(why);
        }
    }
    r
}

fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<15} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>10} {:>9}",
        "CHANNEL", "SIZE", "OPS", "p50", "p99", "p99.9", "max", "mean", "ops/s", "MB/s"
    );
    for r in &report.channels {
        if r.status != "ok" {
            let _ = writeln!(
                s,
                "{:<15} {:>6} {}: {}",
                r.name,
                r.payload_bytes,
                r.status.to_uppercase(),
                r.error.as_deref().unwrap_or("no samples")
            );
            continue;
        }
        let lat = match &r.latency_us {
            Some(l) => format!("{:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1}", l.p50, l.p99, l.p99_9, l.max, l.mean),
            None => format!("{:>8} {:>8} {:>8} {:>9} {:>9}", "-", "-", "-", "-", "-"),
        };
        let _ = writeln!(
            s,
            "{:<15} {:>6} {:>8} {lat} {:>10.0} {:>9}{}",
            r.name,
            r.payload_bytes,
            r.iterations,
            r.ops_per_s,
            fmt_mb(r.mb_per_s),
            if r.stopped_at_time_cap { "  (time cap)" } else { "" }
        );
    }
    let _ = writeln!(s);
    let mut described: Vec<&str> = Vec::new();
    for r in &report.channels {
        if !described.contains(&r.name) {
            described.push(r.name);
            let _ = writeln!(s, "{:<15} {}", r.name, r.round_trip);
        }
        for n in &r.notes {
            let _ = writeln!(s, "{:<15}   [{} B] {n}", "", r.payload_bytes);
        }
    }
    if let Some(c) = &report.c_baseline {
        s.push('\n');
        s.push_str(&baseline::render(c));
    }
    if !report.ok {
        let _ = writeln!(s, "\nFAILED: at least one channel returned wrong data or an error");
    }
    s
}

fn fmt_mb(mb: f64) -> String {
    if mb >= 100.0 {
        format!("{mb:.0}")
    } else {
        format!("{mb:.3}")
    }
}

// ---------------------------------------------------------------------------
// Channels

/// Runs `op` `warmup` times, then times it up to `iterations` times (or
/// until the time cap). `op` checks its own reply.
fn timed(opts: &Options, bar: &ProgressBar, mut op: impl FnMut() -> Result<(), String>) -> Result<Measured, String> {
    for i in 0..opts.warmup {
        op().map_err(|e| format!("warm-up round trip {i}: {e}"))?;
    }
    let mut hist = new_hist();
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let start = Instant::now();
    let mut done = 0;
    let mut capped = false;
    while done < opts.iterations {
        let t = Instant::now();
        op().map_err(|e| format!("round trip {done}: {e}"))?;
        let end = Instant::now();
        hist.saturating_record(ns(end - t));
        done += 1;
        bar.inc(1);
        if end - start >= cap && done < opts.iterations {
            capped = true;
            break;
        }
    }
    Ok(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
}

fn echo(opts: &Options, bar: &ProgressBar, ioctl: &ntcomm_proto::Ioctl<[u8], [u8]>) -> Outcome {
    if opts.size > proto::MAX_ECHO {
        return Outcome::Skipped(format!("SIZE {} exceeds the echo limit {}", opts.size, proto::MAX_ECHO));
    }
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x21);
    let mut out = vec![0u8; opts.size];
    outcome(timed(opts, bar, || {
        proto::second_buffer(ioctl, &payload, &mut out, 0xEE);
        let n = dev.ioctl(ioctl, &payload[..], &mut out[..]).map_err(|e| e.to_string())?;
        check_reply(&payload, n, &out)
    }))
}

fn readwrite(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_MESSAGE {
        return Outcome::Skipped(format!("SIZE {} exceeds the message limit {}", opts.size, proto::MAX_MESSAGE));
    }
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // Messages left by someone else would be read instead of ours.
    let queued = match dev.ioctl_get(&proto::GET_STATS) {
        Ok(s) => s.messages_queued,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    for _ in 0..queued {
        if let Err(e) = dev.read(&mut buf) {
            return Outcome::Failed(format!("draining {queued} leftover messages: {e}"));
        }
    }
    let payload = pattern(opts.size, 0x42);
    let mut buf = vec![0u8; opts.size];
    let mut m = timed(opts, bar, || {
        let w = dev.write(&payload).map_err(|e| e.to_string())?;
        if w != payload.len() {
            return Err(format!("WriteFile took {w} of {} bytes", payload.len()));
        }
        buf.fill(0xEE);
        let n = dev.read(&mut buf).map_err(|e| e.to_string())?;
        check_reply(&payload, n, &buf)
    });
    if let (Ok(m), true) = (&mut m, queued > 0) {
        m.notes.push(format!("{queued} leftover messages drained before the run"));
    }
    outcome(m)
}

/// What the waiter thread reports for each completed `WAIT_EVENT`.
type WaiterReport = Result<Instant, String>;

/// Tag of the packet that tells the waiter thread to stop.
const STOP: u64 = u64::MAX;

fn inverted_call(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_EVENT {
        return Outcome::Skipped(format!("SIZE {} exceeds the event limit {}", opts.size, proto::MAX_EVENT));
    }
    let setup = || -> ntcomm_um::Result<(Device, Arc<CompletionPort>, Arc<Device>)> {
        let poster = Device::open(proto::USER_PATH)?;
        let port = Arc::new(CompletionPort::new()?);
        let waiter = Arc::new(Device::open_overlapped(proto::USER_PATH)?);
        port.associate(&waiter, 1)?;
        Ok((poster, port, waiter))
    };
    let (poster, port, waiter) = match setup() {
        Ok(x) => x,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x63);
    let (tx, rx) = mpsc::channel::<WaiterReport>();
    let thread = {
        let (port, waiter, payload) = (port.clone(), waiter.clone(), payload.clone());
        std::thread::spawn(move || waiter_thread(&port, &waiter, &payload, &tx))
    };

    let mut retries = 0u64;
    let mut post_hist = new_hist();
    let mut one = |record: bool| -> Result<Duration, String> {
        // The waiter re-arms before reporting, but its WAIT_EVENT could in
        // principle reach the driver after our post: STATUS_NOT_FOUND then
        // means "nobody waits yet", and the post is retried (counted).
        let (t0, post_took) = loop {
            let t0 = Instant::now();
            match poster.ioctl(&proto::POST_EVENT, &payload[..], &mut ()) {
                Ok(_) => break (t0, t0.elapsed()),
                Err(e) if e.kind() == ErrorKind::NotFoundItem => {
                    retries += 1;
                    if retries > 10_000 {
                        return Err("POST_EVENT found no waiter 10000 times".into());
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        if record {
            post_hist.saturating_record(ns(post_took));
        }
        match rx.recv_timeout(STALL) {
            Ok(Ok(t1)) => Ok(t1.saturating_duration_since(t0)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("the waiter saw no completion within {STALL:?} of the post")),
        }
    };
    let measured = (|| {
        for i in 0..opts.warmup {
            one(false).map_err(|e| format!("warm-up round trip {i}: {e}"))?;
        }
        let mut hist = new_hist();
        let cap = Duration::from_secs_f64(opts.max_seconds);
        let start = Instant::now();
        let (mut done, mut capped) = (0, false);
        while done < opts.iterations {
            let lat = one(true).map_err(|e| format!("round trip {done}: {e}"))?;
            hist.saturating_record(ns(lat));
            done += 1;
            bar.inc(1);
            if start.elapsed() >= cap && done < opts.iterations {
                capped = true;
                break;
            }
        }
        Ok::<_, String>(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
    })();

    // Stop the waiter: it cancels its outstanding WAIT_EVENT and reaps it.
    let stop = port.post(0, STOP).map_err(|e| e.to_string());
    let joined = match stop {
        Ok(()) => thread.join().map_err(|_| "waiter thread panicked".to_string()),
        Err(e) => Err(format!("stopping the waiter thread: {e}")),
    };
    let mut measured = match (measured, joined) {
        (Err(e), _) => return Outcome::Failed(e),
        (Ok(_), Err(e)) => return Outcome::Failed(e),
        (Ok(m), Ok(())) => m,
    };
    if let Some(l) = Latency::of(&post_hist) {
        measured.notes.push(format!(
            "POST_EVENT call itself (synchronous, returns after the waiter is completed): p50 {:.1} us, p99 {:.1} us",
            l.p50, l.p99
        ));
    }
    measured.notes.push(format!("POST_EVENT retried {retries} times because no WAIT_EVENT was pended yet"));
    Outcome::Done(measured)
}

/// Keeps one `WAIT_EVENT` pended on `waiter`; for each completion, re-arms
/// first, then reports the instant it dequeued it (or what was wrong).
/// On the `STOP` packet, cancels the outstanding request and reaps it.
fn waiter_thread(port: &CompletionPort, waiter: &Device, payload: &[u8], tx: &mpsc::Sender<WaiterReport>) {
    let arm = |tag| waiter.start_ioctl(&proto::WAIT_EVENT, Vec::new(), proto::MAX_EVENT, tag);
    let mut tag = 0u64;
    if let Err(e) = arm(tag) {
        let _ = tx.send(Err(format!("arming WAIT_EVENT: {e}")));
        return;
    }
    let mut stopping = false;
    loop {
        let c = match port.wait(if stopping { Some(STALL) } else { None }) {
            Ok(Some(c)) => c,
            Ok(None) => return, // stopping and the cancelled request never came back: leak it
            Err(e) => {
                let _ = tx.send(Err(format!("waiting on the port: {e}")));
                return;
            }
        };
        let now = Instant::now();
        if c.kind == OpKind::Posted && c.tag == STOP {
            stopping = true;
            let _ = waiter.cancel_all();
            continue;
        }
        if stopping {
            // The outstanding WAIT_EVENT, cancelled (or completed just before).
            return;
        }
        let report = match c.result {
            Ok(n) => check_reply(payload, n, &c.buffer).map(|()| now),
            Err(e) => Err(format!("WAIT_EVENT (tag {}) failed: {e}", c.tag)),
        };
        let failed = report.is_err();
        tag += 1;
        let rearmed = if failed { Ok(()) } else { arm(tag).map(|_| ()) };
        let _ = tx.send(report);
        if let Err(e) = rearmed {
            let _ = tx.send(Err(format!("re-arming WAIT_EVENT: {e}")));
            return;
        }
        if failed {
            return;
        }
    }
}

fn overlapped(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_ECHO {
        return Outcome::Skipped(format!("SIZE {} exceeds the echo limit {}", opts.size, proto::MAX_ECHO));
    }
    let setup = || -> ntcomm_um::Result<(CompletionPort, Device)> {
        let port = CompletionPort::new()?;
        let dev = Device::open_overlapped(proto::USER_PATH)?;
        port.associate(&dev, 1)?;
        Ok((port, dev))
    };
    // Port declared first: the device drops first and cancels stragglers.
    let (port, dev) = match setup() {
        Ok(x) => x,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x7e);
    let hidden = ProgressBar::hidden();
    if let Err(e) = pipeline(&port, &dev, &payload, opts.depth, opts.warmup, f64::INFINITY, &hidden) {
        return Outcome::Failed(format!("warm-up: {e}"));
    }
    outcome(pipeline(&port, &dev, &payload, opts.depth, opts.iterations, opts.max_seconds, bar))
}

/// Keeps up to `depth` echoes in flight until `total` have completed (or
/// the time cap stops new issues), checking each reply.
fn pipeline(
    port: &CompletionPort,
    dev: &Device,
    payload: &[u8],
    depth: usize,
    total: u64,
    max_seconds: f64,
    bar: &ProgressBar,
) -> Result<Measured, String> {
    let mut hist = new_hist();
    let issue =
        |slot: usize| dev.start_ioctl(&proto::ECHO_BUFFERED, payload.to_vec(), payload.len(), slot as u64).map_err(|e| e.to_string());
    let start = Instant::now();
    let deadline = start + Duration::try_from_secs_f64(max_seconds).unwrap_or(Duration::MAX / 4);
    let mut issued_at = vec![start; depth];
    let (mut issued, mut done, mut in_flight, mut capped) = (0u64, 0u64, 0usize, false);
    while in_flight < depth && issued < total {
        issued_at[in_flight] = Instant::now();
        issue(in_flight)?;
        issued += 1;
        in_flight += 1;
    }
    let mut batch = Vec::with_capacity(depth);
    while in_flight > 0 {
        batch.clear();
        let got = port.wait_many(&mut batch, depth, Some(STALL)).map_err(|e| e.to_string())?;
        if got == 0 {
            return Err(format!("{in_flight} requests in flight, none completed within {STALL:?}"));
        }
        let now = Instant::now();
        for c in batch.drain(..) {
            let slot = c.tag as usize;
            if slot >= depth {
                return Err(format!("completion with unknown tag {}", c.tag));
            }
            let n = c.result.map_err(|e| e.to_string())?;
            check_reply(payload, n, &c.buffer)?;
            hist.saturating_record(ns(now - issued_at[slot]));
            done += 1;
            in_flight -= 1;
            bar.inc(1);
            if issued < total {
                if now >= deadline {
                    capped = true;
                    continue;
                }
                issued_at[slot] = Instant::now();
                issue(slot)?;
                issued += 1;
                in_flight += 1;
            }
        }
    }
    Ok(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
}

// ---------------------------------------------------------------------------
// Shared-memory rings and the named pipe

/// Records one `ring-d2u` / `ring-u2d` run moves for `size`-byte records.
fn ring_records(opts: &Options, size: usize) -> u64 {
    let by_bytes = (opts.ring_megabytes as u128 * 1_000_000 / size.max(1) as u128).max(1);
    opts.ring_records.min(u64::try_from(by_bytes).unwrap_or(u64::MAX))
}

/// Refuses record sizes the demo's record format or the ring cannot carry.
fn ring_size_ok(size: usize, max_record: usize) -> Result<(), String> {
    if size < proto::RECORD_MIN {
        return Err(format!("records of {size} B are below the demo's minimum {} (sequence + checksum)", proto::RECORD_MIN));
    }
    if size > max_record {
        return Err(format!("records of {size} B exceed the ring's largest record {max_record} B (raise --ring-capacity)"));
    }
    Ok(())
}

/// What the demo record format costs this machine per record of `size`
/// bytes (fill, check), measured on ~8 MB of records: the driver does the
/// same work on its side, so it bounds what a ring run can show.
fn record_costs(size: usize) -> (Duration, Duration) {
    let rounds = (8_000_000 / size.max(1)).clamp(16, 100_000) as u32;
    let mut rec = vec![0u8; size];
    let t = Instant::now();
    for seq in 0..u64::from(rounds) {
        proto::fill_record(seq, &mut rec);
    }
    let fill = t.elapsed() / rounds;
    let t = Instant::now();
    let mut ok = 0u64;
    for _ in 0..rounds {
        ok += u64::from(proto::check_record(std::hint::black_box(&rec)).is_some());
    }
    std::hint::black_box(ok);
    (fill, t.elapsed() / rounds)
}

fn cost_note(size: usize, per_record: Duration, client_side: &str) -> String {
    let (fill, check) = record_costs(size);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / per_record.as_secs_f64().max(1e-12);
    format!(
        "demo record format on this machine: fill_record {} ({:.0} MB/s), check_record {} ({:.0} MB/s) per record; \
         measured {} per record; the client's {client_side} alone is {:.0}% of that",
        fmt_ns(fill),
        size as f64 / fill.as_secs_f64().max(1e-12) / 1e6,
        fmt_ns(check),
        size as f64 / check.as_secs_f64().max(1e-12) / 1e6,
        fmt_ns(per_record),
        pct(if client_side.starts_with("fill") { fill } else { check })
    )
}

fn fmt_ns(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} us", ns / 1000.0)
    }
}

fn ring_d2u(opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
    let ch = match RingChannel::open(proto::USER_PATH, &proto::RINGS, opts.ring_capacity, opts.ring_capacity) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let n = ring_records(opts, size);
    // The first records are the warm-up: timing starts when they are in.
    let warm = opts.warmup.min(n);
    let start_at = Instant::now();
    if let Err(e) = ch.control(&proto::RING_SOURCE, &proto::RingSource::new(warm + n, 0, size as u32)) {
        return Outcome::Failed(format!("RING_SOURCE: {e}"));
    }
    // The receiver keeps the channel's handle (and so the source) alive.
    let (_tx, mut rx) = ch.split();
    if let Err(e) = ring_size_ok(size, rx.max_record()) {
        return Outcome::Skipped(e);
    }
    let mut buf = vec![0u8; rx.max_record()];
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let mut t0 = start_at;
    let (mut got, mut capped) = (0u64, false);
    for want in 0..warm + n {
        if want == warm {
            t0 = Instant::now();
        }
        let len = match rx.recv(&mut buf, Some(STALL)) {
            Ok(Some(len)) => len,
            Ok(None) => return Outcome::Failed(format!("record {want} did not arrive within {STALL:?}")),
            Err(e) => return Outcome::Failed(format!("record {want}: {e}")),
        };
        if len != size {
            return Outcome::Failed(format!("record {want} has {len} B, expected {size}"));
        }
        match proto::check_record(&buf[..len]) {
            Some(seq) if seq == want => {}
            Some(seq) => return Outcome::Failed(format!("record {want} out of order: sequence {seq}")),
            None => return Outcome::Failed(format!("record {want}: checksum mismatch")),
        }
        if want >= warm {
            got += 1;
            if got.is_multiple_of(1024) {
                bar.inc(1024);
                if t0.elapsed() >= cap && got < n {
                    capped = true;
                    break;
                }
            }
        }
    }
    let elapsed = t0.elapsed();
    let mut notes = Vec::new();
    match rx.status() {
        Ok(st) if st.state != proto::RING_STATE_RUNNING => {
            return Outcome::Failed(format!("channel state {} (reason {}) after the run", st.state, st.failed_reason))
        }
        Ok(st) => notes.push(format!(
            "{warm} warm-up records first; driver produced {} in all, signalled the client's event {} times ({:.3} per timed record)",
            st.produced,
            st.wakeups_sent,
            st.wakeups_sent as f64 / got.max(1) as f64
        )),
        Err(e) => return Outcome::Failed(format!("RING_STATUS: {e}")),
    }
    if got > 0 {
        notes.push(cost_note(size, elapsed / u32::try_from(got).unwrap_or(u32::MAX), "check_record"));
    }
    Outcome::Done(Measured { hist: new_hist(), iterations: got, elapsed, capped, notes })
}

/// Records staged before one publish in `ring-u2d`.
const PUBLISH_BATCH: u64 = 64;

fn ring_u2d(opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
    let ch = match RingChannel::open(proto::USER_PATH, &proto::RINGS, opts.ring_capacity, opts.ring_capacity) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let (mut tx, _rx) = ch.split();
    if let Err(e) = ring_size_ok(size, tx.max_record()) {
        return Outcome::Skipped(e);
    }
    let n = ring_records(opts, size);
    let warm = opts.warmup.min(n);
    let mut rec = vec![0u8; size];
    let mut send = |seq: u64, tx: &mut ntcomm_um::RingSender| -> Result<(), String> {
        proto::fill_record(seq, &mut rec);
        if !tx.write(&rec).map_err(|e| e.to_string())? {
            // Full (counting what is staged): publish, then wait for room.
            tx.flush().map_err(|e| e.to_string())?;
            tx.send(&rec, Some(STALL)).map_err(|e| format!("record {seq}: {e}"))?;
        } else if seq % PUBLISH_BATCH == PUBLISH_BATCH - 1 {
            tx.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    // Polls RING_STATUS until the driver consumed `total` records.
    let consumed = |tx: &ntcomm_um::RingSender, total: u64| -> Result<(Instant, u64), String> {
        let deadline = Instant::now() + STALL;
        let mut polls = 0u64;
        loop {
            let st = tx.status().map_err(|e| format!("RING_STATUS: {e}"))?;
            polls += 1;
            if st.bad_records != 0 || st.state != proto::RING_STATE_RUNNING {
                return Err(format!("driver reports {} bad records, state {} (reason {})", st.bad_records, st.state, st.failed_reason));
            }
            if st.consumed >= total {
                if st.consumed != total || st.consumed_bytes != total * size as u64 {
                    return Err(format!(
                        "driver consumed {} records / {} B, sent {total} / {} B",
                        st.consumed,
                        st.consumed_bytes,
                        total * size as u64
                    ));
                }
                return Ok((Instant::now(), polls));
            }
            if Instant::now() >= deadline {
                return Err(format!("driver consumed {} of {total} records, then nothing for {STALL:?}", st.consumed));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    let mut run = || -> Result<Measured, String> {
        for seq in 0..warm {
            send(seq, &mut tx)?;
        }
        tx.flush().map_err(|e| e.to_string())?;
        consumed(&tx, warm)?;
        let cap = Duration::from_secs_f64(opts.max_seconds);
        let t0 = Instant::now();
        let (mut sent, mut capped) = (0u64, false);
        while sent < n {
            send(warm + sent, &mut tx)?;
            sent += 1;
            if sent.is_multiple_of(1024) {
                bar.inc(1024);
                if t0.elapsed() >= cap && sent < n {
                    capped = true;
                    break;
                }
            }
        }
        tx.flush().map_err(|e| e.to_string())?;
        let sending = t0.elapsed();
        let (done, polls) = consumed(&tx, warm + sent)?;
        let elapsed = done - t0;
        let per = elapsed / u32::try_from(sent.max(1)).unwrap_or(u32::MAX);
        let notes = vec![
            format!(
                "{warm} warm-up records first; sending took {:.1} ms of {:.1} ms; end seen by polling RING_STATUS every ~100 us ({polls} polls after the last send), \
                 the driver validated every record (0 bad)",
                sending.as_secs_f64() * 1e3,
                elapsed.as_secs_f64() * 1e3
            ),
            cost_note(size, per, "fill_record"),
        ];
        Ok(Measured { hist: new_hist(), iterations: sent, elapsed, capped, notes })
    };
    outcome(run())
}

fn ring_echo(opts: &Options, bar: &ProgressBar, sleeping: bool) -> Outcome {
    let size = opts.size;
    let ch = match RingChannel::open_with(
        proto::USER_PATH,
        &proto::RINGS,
        &ntcomm_um::RingOptions::new(64 * 1024, 64 * 1024).with_mode(proto::RING_MODE_ECHO),
    ) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let (mut tx, mut rx) = ch.split();
    if let Err(e) = ring_size_ok(size, tx.max_record().min(rx.max_record())) {
        return Outcome::Skipped(e);
    }
    let (mut rec, mut buf) = (vec![0u8; size], vec![0u8; rx.max_record()]);
    let gap = Duration::from_millis(1);
    let mut seq = 0u64;
    let mut one = |tx: &mut ntcomm_um::RingSender| -> Result<Duration, String> {
        proto::fill_record(seq, &mut rec);
        seq += 1;
        let t = Instant::now();
        tx.send(&rec, Some(STALL)).map_err(|e| e.to_string())?;
        let n = if sleeping {
            rx.recv(&mut buf, Some(STALL)).map_err(|e| e.to_string())?
        } else {
            let mut spins = 0u32;
            loop {
                if let Some(n) = rx.try_recv(&mut buf).map_err(|e| e.to_string())? {
                    break Some(n);
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) && t.elapsed() >= STALL {
                    break None;
                }
                std::hint::spin_loop();
            }
        };
        let lat = t.elapsed();
        match n {
            None => Err(format!("record {} not echoed within {STALL:?}", seq - 1)),
            Some(n) => check_reply(&rec, n, &buf).map(|()| lat),
        }
    };
    let mut run = || -> Result<Measured, String> {
        for i in 0..opts.warmup {
            one(&mut tx).map_err(|e| format!("warm-up round trip {i}: {e}"))?;
        }
        let before = tx.status().map_err(|e| e.to_string())?;
        let mut hist = new_hist();
        let cap = Duration::from_secs_f64(opts.max_seconds);
        let start = Instant::now();
        let (mut done, mut capped, mut busy) = (0u64, false, Duration::ZERO);
        while done < opts.iterations {
            if sleeping {
                std::thread::sleep(gap);
            }
            let lat = one(&mut tx).map_err(|e| format!("round trip {done}: {e}"))?;
            busy += lat;
            hist.saturating_record(ns(lat));
            done += 1;
            bar.inc(1);
            if start.elapsed() >= cap && done < opts.iterations {
                capped = true;
                break;
            }
        }
        let after = tx.status().map_err(|e| e.to_string())?;
        if after.bad_records != 0 || after.state != proto::RING_STATE_RUNNING {
            return Err(format!("driver reports {} bad records, state {}", after.bad_records, after.state));
        }
        let wakeups = after.wakeups_sent - before.wakeups_sent;
        let mut notes = vec![format!(
            "driver signalled the client's event in {wakeups} of {done} round trips; ops/s = 1 / mean round trip{}",
            if sleeping { " (the 1 ms idle gaps are not counted)" } else { "" }
        )];
        if sleeping {
            notes.push("this is wake-up latency: the record finds the driver's thread asleep on its event; the reply also had to wake the client in the round trips counted above".into());
        } else {
            notes.push("client never sleeps (spins on try_recv); each record still has to wake the driver's thread unless it has not gone to sleep yet".into());
        }
        Ok(Measured { hist, iterations: done, elapsed: busy, capped, notes })
    };
    outcome(run())
}

/// What the pipe server thread reports per message of this run.
type Receipt = Result<(u64, Instant), String>;

fn pipe(opts: &Options, bar: &ProgressBar) -> Outcome {
    let size = opts.size;
    if !(proto::RECORD_MIN..=proto::MAX_PIPE_MESSAGE).contains(&size) {
        return Outcome::Skipped(format!(
            "SIZE {size} outside {}..={} (demo record in a pipe message)",
            proto::RECORD_MIN,
            proto::MAX_PIPE_MESSAGE
        ));
    }
    let dev = match Device::open(proto::USER_PATH) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    crate::peer::register_or_warn("pipe bench");
    let server = match PipeServer::create(proto::PIPE_NAME) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("{e} (another pipe server on {} running?)", proto::PIPE_NAME)),
    };
    // Sequence numbers carry this run's id in the high half: leftovers of an
    // earlier run (the driver keeps undelivered messages) are skipped.
    let run_id = u64::from(std::process::id()) << 40 | (u64::from(Instant::now().elapsed().subsec_nanos()) & 0xff) << 32;
    let stop_seq = run_id | 0xffff_ffff;
    let (tx, rx) = mpsc::channel::<Receipt>();
    let thread = std::thread::spawn(move || -> (PipeServer, u64) {
        let mut foreign = 0u64;
        if let Err(e) = server.accept() {
            let _ = tx.send(Err(format!("ConnectNamedPipe: {e}")));
            return (server, foreign);
        }
        let mut buf = Vec::new();
        loop {
            match server.read_message(&mut buf) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tx.send(Err("the driver hung up".into()));
                    break;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    break;
                }
            }
            let now = Instant::now();
            match proto::check_record(&buf) {
                Some(seq) if seq == stop_seq => break,
                Some(seq) if seq & !0xffff_ffff == run_id => {
                    if tx.send(Ok((seq, now))).is_err() {
                        break;
                    }
                }
                _ => foreign += 1,
            }
        }
        (server, foreign)
    });
    let mut msg = vec![0u8; size];
    let busy = std::cell::Cell::new(0u64);
    let mut send = |seq: u64| -> Result<(Instant, Duration), String> {
        proto::fill_record(seq, &mut msg);
        loop {
            let t = Instant::now();
            match dev.ioctl(&proto::PIPE_SEND, &msg[..], &mut ()) {
                Ok(_) => return Ok((t, t.elapsed())),
                Err(e) if e.kind() == ErrorKind::Busy => {
                    busy.set(busy.get() + 1);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("PIPE_SEND: {e}")),
            }
        }
    };
    let receipt = |want: u64, wait: Duration| -> Result<Instant, String> {
        match rx.recv_timeout(wait) {
            Ok(Ok((seq, at))) if seq == want => Ok(at),
            Ok(Ok((seq, _))) => Err(format!("received message {:#x}, expected {want:#x} (lost or reordered)", seq & 0xffff_ffff)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("message {} not received within {wait:?}", want & 0xffff_ffff)),
        }
    };
    let mut next = 0u64;
    let measured = (|| -> Result<Measured, String> {
        // The first message also waits for the driver to connect (it tries
        // every 100 ms).
        for i in 0..opts.warmup.max(1) {
            send(run_id | next)?;
            receipt(run_id | next, if i == 0 { Duration::from_secs(10) } else { STALL })?;
            next += 1;
        }
        let mut hist = new_hist();
        let mut call = new_hist();
        let cap = Duration::from_secs_f64(opts.max_seconds);
        let start = Instant::now();
        let (mut done, mut capped) = (0u64, false);
        while done < opts.iterations {
            let (t, took) = send(run_id | next)?;
            let at = receipt(run_id | next, STALL)?;
            next += 1;
            hist.saturating_record(ns(at.saturating_duration_since(t)));
            call.saturating_record(ns(took));
            done += 1;
            bar.inc(1);
            if start.elapsed() >= cap && done < opts.iterations {
                capped = true;
                break;
            }
        }
        let elapsed = start.elapsed();
        let mut notes = Vec::new();
        if let Some(l) = Latency::of(&call) {
            notes.push(format!(
                "the PIPE_SEND call itself (queues the message, returns before delivery): p50 {:.1} us, p99 {:.1} us",
                l.p50, l.p99
            ));
        }
        // Burst: as many messages as the driver takes, back to back.
        let burst = opts.iterations.min(proto::PIPE_QUEUE_CAPACITY as u64 * 4);
        let first = next;
        let t = Instant::now();
        for _ in 0..burst {
            send(run_id | next)?;
            next += 1;
        }
        let mut last = t;
        for seq in first..next {
            last = receipt(run_id | seq, STALL)?;
        }
        let secs = last.saturating_duration_since(t).as_secs_f64();
        notes.push(format!(
            "burst of {burst} messages sent back to back: all received in order in {:.1} ms = {:.0} messages/s ({:.3} MB/s); PIPE_SEND refused (queue full) {} times",
            secs * 1e3,
            burst as f64 / secs.max(1e-9),
            burst as f64 * size as f64 / secs.max(1e-9) / 1e6,
            busy.get()
        ));
        Ok(Measured { hist, iterations: done, elapsed, capped, notes })
    })();
    // Stop the server thread through the pipe itself; if that fails the
    // thread stays blocked in ReadFile and is left behind.
    let stopped = send(stop_seq).is_ok() && {
        let until = Instant::now() + STALL;
        while !thread.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        thread.is_finished()
    };
    let foreign = if stopped { thread.join().map(|(_server, f)| f).ok() } else { None };
    match measured {
        Ok(mut m) => {
            match foreign {
                Some(0) => {}
                Some(f) => m.notes.push(format!("{f} leftover messages of an earlier run skipped")),
                None => m.notes.push("the pipe server thread did not stop (left behind)".into()),
            }
            Outcome::Done(m)
        }
        Err(e) => Outcome::Failed(e),
    }
}

// ---------------------------------------------------------------------------
// Filter Manager communication port

fn port_send(opts: &Options, bar: &ProgressBar) -> Outcome {
    if opts.size > proto::MAX_PORT_MESSAGE {
        return Outcome::Skipped(format!("SIZE {} exceeds the port's message limit {}", opts.size, proto::MAX_PORT_MESSAGE));
    }
    let client = match PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let payload = pattern(opts.size, 0x43);
    let mut out = vec![0u8; opts.size];
    outcome(timed(opts, bar, || {
        out.fill(0xEE);
        let n = client.send(&payload, &mut out).map_err(|e| e.to_string())?;
        check_reply(&payload, n, &out)
    }))
}

/// Who asks and who answers in a `port-ask*` run.
#[derive(Clone, Copy)]
struct PortShape {
    /// Driver threads sending questions (`PortAsk::threads`).
    senders: u32,
    /// Receiver threads in this process.
    receivers: usize,
    /// Overlapped `FilterGetMessage` outstanding per receiver thread.
    outstanding: usize,
}

/// Receiver threads answering the driver's questions through one
/// completion port (the shape of Microsoft's scanner sample).
struct Answerers {
    client: Arc<PortClient>,
    done: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    workers: Vec<std::thread::JoinHandle<Result<(), String>>>,
}

impl Answerers {
    fn start(shape: PortShape, question_len: usize) -> Result<Answerers, String> {
        let client = Arc::new(PortClient::connect(proto::PORT_NAME, proto::PORT_CONTEXT).map_err(|e| e.to_string())?);
        let port = Arc::new(CompletionPort::new().map_err(|e| e.to_string())?);
        client.associate(&port, 1).map_err(|e| e.to_string())?;
        let cap = MESSAGE_HEADER_LEN + question_len;
        for tag in 0..(shape.receivers * shape.outstanding) as u64 {
            client.start_get_message(cap, tag).map_err(|e| e.to_string())?;
        }
        let done = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let workers = (0..shape.receivers)
            .map(|_| {
                let (client, port, done, answered) = (client.clone(), port.clone(), done.clone(), answered.clone());
                std::thread::spawn(move || loop {
                    let Some(c) = port.wait(Some(Duration::from_millis(50))).map_err(|e| e.to_string())? else {
                        if done.load(Ordering::Acquire) {
                            return Ok(());
                        }
                        continue;
                    };
                    if c.result.is_err() {
                        // Cancelled at shutdown, or the port went away.
                        if done.load(Ordering::Acquire) {
                            continue;
                        }
                        return Err(format!("receive failed: {:?}", c.result.err()));
                    }
                    let m = Message::parse(&c.buffer).map_err(|e| e.to_string())?;
                    let seq = proto::check_record(m.body).ok_or("a question failed its checksum")?;
                    client.reply(m.id, NtStatus::STATUS_SUCCESS, &port_verdict(seq)).map_err(|e| e.to_string())?;
                    answered.fetch_add(1, Ordering::Relaxed);
                    if !done.load(Ordering::Acquire) {
                        client.start_get_message(cap, c.tag).map_err(|e| e.to_string())?;
                    }
                })
            })
            .collect();
        Ok(Answerers { client, done, answered, workers })
    }

    /// Stops the receivers (cancelling outstanding receives); the first
    /// receiver error, if any.
    fn stop(self) -> Result<u64, String> {
        self.done.store(true, Ordering::Release);
        let _ = self.client.cancel_receives();
        let mut first = Ok(());
        for w in self.workers {
            let r = w.join().unwrap_or_else(|_| Err("a receiver thread panicked".to_owned()));
            if first.is_ok() {
                first = r;
            }
        }
        first.map(|()| self.answered.load(Ordering::Relaxed))
    }
}

/// One `PORT_ASK` of `questions`, in a thread, given at most `limit` to
/// finish; returns the tally and the IOCTL's duration.
fn ask_questions(questions: u32, senders: u32, size: usize, limit: Duration) -> Result<(PortTally, Duration), String> {
    let (tx, rx) = mpsc::channel();
    let ask = PortAsk { questions, threads: senders, timeout_ms: 5000, want_reply: 1, question_len: size as u32, reserved: 0 };
    std::thread::spawn(move || {
        let r = (|| -> Result<(PortTally, Duration), String> {
            let d = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
            let mut tally = PortTally::default();
            let t = Instant::now();
            d.ioctl(&proto::PORT_ASK, &ask, &mut tally).map_err(|e| format!("PORT_ASK: {e}"))?;
            Ok((tally, t.elapsed()))
        })();
        let _ = tx.send(r);
    });
    let (tally, took) =
        rx.recv_timeout(limit).map_err(|_| format!("PORT_ASK of {questions} questions did not complete within {limit:?}"))??;
    let q = u64::from(questions);
    let t = tally;
    if (t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed) != (q, q, 0, 0, 0, 0) {
        return Err(format!("PORT_ASK of {q}: tally {t:?}"));
    }
    let denied = q.div_ceil(3);
    if (t.allowed, t.denied) != (q - denied, denied) {
        return Err(format!("PORT_ASK of {q}: {} allowed / {} denied, expected {} / {denied}", t.allowed, t.denied, q - denied));
    }
    Ok((tally, took))
}

fn port_ask(opts: &Options, bar: &ProgressBar, shape: PortShape) -> Outcome {
    let size = opts.size;
    if !(proto::RECORD_MIN..=proto::MAX_PORT_MESSAGE).contains(&size) {
        return Outcome::Skipped(format!(
            "questions are demo records of {}..={} B, SIZE is {size}",
            proto::RECORD_MIN,
            proto::MAX_PORT_MESSAGE
        ));
    }
    let answerers = match Answerers::start(shape, size) {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(e),
    };
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let run = (|| -> Result<Measured, String> {
        // Warm-up, also the calibration that keeps the timed run near the cap.
        let warm = u32::try_from(opts.warmup.clamp(100, 100_000)).unwrap_or(100);
        let (_, took) = ask_questions(warm, shape.senders, size, cap + STALL * 4)?;
        let per_s = f64::from(warm) / took.as_secs_f64().max(1e-9);
        let fit = (per_s * opts.max_seconds).floor().max(1.0).min(f64::from(u32::MAX)) as u32;
        let n = opts.port_questions.min(fit).max(1);
        let capped = n < opts.port_questions;
        let (tally, took) = ask_questions(n, shape.senders, size, cap * 3 + STALL * 4)?;
        bar.inc(u64::from(n));
        let mut notes = vec![format!(
            "{warm} warm-up questions first ({per_s:.0}/s), then {n} timed{}: replied {}, allowed {}, denied {}, bad {}, timeouts {}",
            if capped {
                format!(" (fewer than --port-questions {}: sized to fit --max-seconds at the warm-up rate)", opts.port_questions)
            } else {
                String::new()
            },
            tally.replied,
            tally.allowed,
            tally.denied,
            tally.bad_replies,
            tally.timeouts
        )];
        let per_q = took / n;
        notes.push(if shape.outstanding == 1 && shape.receivers == 1 {
            format!("round trip per question (duration / questions, one at a time): {}", fmt_ns(per_q))
        } else {
            format!(
                "{} driver threads, {} receiver threads x {} outstanding; {} per question on average (throughput, not latency)",
                shape.senders,
                shape.receivers,
                shape.outstanding,
                fmt_ns(per_q)
            )
        });
        // The driver timed every question from FltSendMessage to the reply
        // (4 buckets per octave); record each bucket at its lower bound.
        let mut hist = new_hist();
        for (b, &count) in tally.rtt_hist.iter().enumerate() {
            if count > 0 {
                let _ = hist.record_n(proto::rtt_bucket_floor_us(b).max(1) * 1000, count);
            }
        }
        notes.push("latency columns: send -> reply as timed by the driver per question, bucketed (lower bounds, within 25 %)".to_owned());
        Ok(Measured { hist, iterations: n.into(), elapsed: took, capped, notes })
    })();
    let stopped = answerers.stop();
    match (run, stopped) {
        (Err(e), _) => Outcome::Failed(e),
        (Ok(_), Err(e)) => Outcome::Failed(format!("receivers: {e}")),
        (Ok(m), Ok(_)) => Outcome::Done(m),
    }
}

/// The LPC server instance the benchmarks use (the demo and tests use others).
const BENCH_LPC_INSTANCE: u32 = 200;

fn lpc_ask(opts: &Options, bar: &ProgressBar, workers: u32, through_view: bool) -> Outcome {
    let size = opts.size;
    if !through_view && size > ntcomm_proto::lpc::MAX_BODY {
        return Outcome::Skipped(format!(
            "an LPC message body holds at most {} B, SIZE is {size} (lpc-view carries more)",
            ntcomm_proto::lpc::MAX_BODY
        ));
    }
    if through_view && !(proto::RECORD_MIN..=proto::LPC_MAX_VIEW).contains(&size) {
        return Outcome::Skipped(format!("view payloads are {}..={} B, SIZE is {size}", proto::RECORD_MIN, proto::LPC_MAX_VIEW));
    }
    static SERVER: std::sync::OnceLock<Result<crate::lpc_server::BackgroundServer, String>> = std::sync::OnceLock::new();
    let server = SERVER.get_or_init(|| {
        crate::lpc_server::BackgroundServer::start(BENCH_LPC_INSTANCE, crate::lpc_server::ServerOptions::default())
            .map_err(|e| e.to_string())
    });
    if let Err(e) = server {
        return Outcome::Failed(format!("LPC server port: {e}"));
    }
    let run = || -> Result<Measured, String> {
        let dev = Device::open(proto::USER_PATH).map_err(|e| e.to_string())?;
        let view_size = if through_view { size.max(4096) as u32 } else { 0 };
        let mut c = proto::LpcConnect::new(proto::LPC_CONNECT_INFO, view_size);
        c.instance = BENCH_LPC_INSTANCE;
        let mut connected = proto::LpcConnected { max_message: 0, info_len: 0, view_size: 0, info: [0; 128] };
        dev.ioctl(&proto::LPC_CONNECT, &c, &mut connected).map_err(|e| format!("LPC_CONNECT: {e}"))?;
        let ask = |count: u32| -> Result<(proto::LpcTally, Duration), String> {
            let a = if through_view {
                proto::LpcAsk { kind: proto::LPC_KIND_VIEW, workers, count, body_len: 0, timeout_ms: 0, view_len: size as u32 }
            } else {
                proto::LpcAsk { kind: proto::LPC_KIND_REQUEST, workers, count, body_len: size as u32, timeout_ms: 0, view_len: 0 }
            };
            let mut t = proto::LpcTally::default();
            let started = Instant::now();
            dev.ioctl(&proto::LPC_ASK, &a, &mut t).map_err(|e| format!("LPC_ASK: {e}"))?;
            let took = started.elapsed();
            let n = u64::from(count) * u64::from(workers);
            if (t.sent, t.replied, t.mismatched, t.failed) != (n, n, 0, 0) {
                return Err(format!(
                    "LPC_ASK of {n}: tally sent {} replied {} mismatched {} failed {} (first error {})",
                    t.sent,
                    t.replied,
                    t.mismatched,
                    t.failed,
                    NtStatus(t.first_error)
                ));
            }
            Ok((t, took))
        };
        let warm = u32::try_from(opts.warmup.clamp(50, 10_000)).unwrap_or(50);
        let (_, took) = ask(warm)?;
        let per_s = f64::from(warm * workers) / took.as_secs_f64().max(1e-9);
        let fit = (per_s * opts.max_seconds / f64::from(workers)).floor().max(1.0).min(f64::from(u32::MAX)) as u32;
        let want = (opts.port_questions / workers).max(1);
        let count = want.min(fit);
        let (tally, took) = ask(count)?;
        let n = u64::from(count) * u64::from(workers);
        bar.inc(n);
        let _ = dev.ioctl(&proto::LPC_DISCONNECT, &(), &mut ());
        let mut hist = new_hist();
        for (b, &k) in tally.rtt_hist.iter().enumerate() {
            if k > 0 {
                let _ = hist.record_n(proto::rtt_bucket_floor_us(b).max(1) * 1000, k);
            }
        }
        let notes = vec![
            format!(
                "{} warm-up requests first ({per_s:.0}/s), then {n} timed, every reply matched to its request by the driver",
                warm * workers
            ),
            format!(
                "{workers} driver worker(s) on one connection; {} per request on average (duration / requests)",
                fmt_ns(took / u32::try_from(n).unwrap_or(u32::MAX).max(1))
            ),
            "latency columns: request -> reply as timed by the driver per request, bucketed (lower bounds, within 25 %)".to_owned(),
        ];
        Ok(Measured { hist, iterations: n, elapsed: took, capped: count < want, notes })
    };
    outcome(run())
}

// ---------------------------------------------------------------------------
// Helpers

fn outcome(m: Result<Measured, String>) -> Outcome {
    match m {
        Ok(m) => Outcome::Done(m),
        Err(e) => Outcome::Failed(e),
    }
}

/// The reply must be exactly the payload.
fn check_reply(payload: &[u8], n: usize, out: &[u8]) -> Result<(), String> {
    if n != payload.len() {
        return Err(format!("reply of {n} bytes, sent {}", payload.len()));
    }
    match out.get(..n) {
        Some(got) if got == payload => Ok(()),
        Some(got) => {
            let i = got.iter().zip(payload).position(|(a, b)| a != b).unwrap_or(0);
            Err(format!("reply differs at byte {i}: got {:#04x}, sent {:#04x}", got[i], payload[i]))
        }
        None => Err(format!("reply buffer holds {} bytes, {n} reported", out.len())),
    }
}

/// 1 ns .. 60 s, 3 significant digits.
pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn progress_bar(visible: bool, name: &str, len: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{prefix:>17} [{bar:30}] {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    bar
}

/// The command line as received, arguments with spaces quoted.
fn command_line() -> String {
    std::env::args()
        .map(|a| if a.is_empty() || a.contains([' ', '"']) { format!("\"{}\"", a.replace('"', "\\\"")) } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(m: &Machine) -> String {
    let mut s = format!("{} logical cores, {}", m.logical_cores, m.arch);
    if let Some(v) = &m.windows_version {
        s += &format!(", Windows {v}");
    }
    if let Some(w) = &m.wine_version {
        s += &format!(", Wine {w}");
        if let Some(h) = &m.wine_host {
            s += &format!(" on {h}");
        }
    }
    s += if m.release_build { ", release build" } else { ", debug build" };
    s
}

fn machine() -> Machine {
    let (windows_version, wine_version, wine_host) = os::versions();
    Machine {
        logical_cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        windows_version,
        wine_version,
        wine_host,
        arch: std::env::consts::ARCH,
        release_build: !cfg!(debug_assertions),
    }
}

/// Version facts from ntdll, looked up by name so nothing is linked that
/// Windows lacks (the `wine_*` exports exist only under Wine).
mod os {
    use core::ffi::{c_char, CStr};

    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};

    /// `RTL_OSVERSIONINFOW`.
    #[repr(C)]
    struct OsVersionInfo {
        size: u32,
        major: u32,
        minor: u32,
        build: u32,
        platform: u32,
        csd: [u16; 128],
    }

    type RtlGetVersion = unsafe extern "system" fn(*mut OsVersionInfo) -> i32;
    type WineGetVersion = unsafe extern "C" fn() -> *const c_char;
    type WineGetHostVersion = unsafe extern "C" fn(*mut *const c_char, *mut *const c_char);

    /// (Windows version, Wine version, Wine host).
    pub fn versions() -> (Option<String>, Option<String>, Option<String>) {
        // SAFETY: ntdll is always loaded; the name is NUL-terminated.
        let ntdll = unsafe { GetModuleHandleA(c"ntdll.dll".as_ptr().cast()) };
        if ntdll.is_null() {
            return (None, None, None);
        }
        // SAFETY: a loaded module and NUL-terminated names.
        let find = |name: &CStr| unsafe { GetProcAddress(ntdll, name.as_ptr().cast()) };
        let windows = find(c"RtlGetVersion").and_then(|f| {
            // SAFETY: RtlGetVersion has this signature; the struct is sized.
            let f: RtlGetVersion = unsafe { core::mem::transmute(f) };
            // SAFETY: plain data, all-zero is fine.
            let mut info: OsVersionInfo = unsafe { core::mem::zeroed() };
            info.size = core::mem::size_of::<OsVersionInfo>() as u32;
            // SAFETY: `info` is a valid, sized RTL_OSVERSIONINFOW.
            (unsafe { f(&mut info) } >= 0).then(|| format!("{}.{}.{}", info.major, info.minor, info.build))
        });
        let wine = find(c"wine_get_version").and_then(|f| {
            // SAFETY: Wine's export: returns a static NUL-terminated string.
            let f: WineGetVersion = unsafe { core::mem::transmute(f) };
            // SAFETY: as above.
            let version = unsafe { f() };
            // SAFETY: a static NUL-terminated string (or null).
            unsafe { cstr(version) }
        });
        let host = find(c"wine_get_host_version").and_then(|f| {
            // SAFETY: Wine's export: fills two pointers to static strings.
            let f: WineGetHostVersion = unsafe { core::mem::transmute(f) };
            let (mut sys, mut rel) = (core::ptr::null(), core::ptr::null());
            // SAFETY: both out-pointers are valid.
            unsafe { f(&mut sys, &mut rel) };
            // SAFETY: null or static NUL-terminated strings.
            let sys = unsafe { cstr(sys) };
            // SAFETY: as above.
            let rel = unsafe { cstr(rel) };
            Some(format!("{} {}", sys?, rel.unwrap_or_default()).trim().to_owned())
        });
        (windows, wine, host)
    }

    /// # Safety
    /// `p` is null or a NUL-terminated string that lives long enough.
    unsafe fn cstr(p: *const c_char) -> Option<String> {
        // SAFETY: by the caller.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}
