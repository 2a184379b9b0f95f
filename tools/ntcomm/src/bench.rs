//! `ntcomm bench`: round-trip latency and throughput of each channel of the
//! reference driver.
//!
//! The cases (rows) are declared by the channels, each in its module
//! (`BENCH` of [`crate::channel::ioctl`], [`crate::channel::ring`], ...):
//! a name (`ioctl-buffered`, `ring-d2u`, `port-ask-1`, ...), what one round
//! trip is (printed under the table), what its timed loop counts
//! ([`Load`]), and the function that runs it. This module is the engine:
//! sizes, progress, the table, the JSON report, the chart.
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
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ntcomm_demo_proto as proto;
use serde::Serialize;

use crate::channel::Channel;
use crate::machine::{describe, machine, Machine};
use crate::rig;
use crate::{async_rounds, baseline, chart, verifier_cost};

/// The async rows (`ntcomm_um::aio` under tokio), cases of the IOCTL and port channels.
pub(crate) mod aio;

/// What a case's timed run counts, which decides its sizes, its progress
/// and its depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Round trips of SIZE bytes, one at a time (up to `--iterations`).
    RoundTrips,
    /// Round trips of SIZE bytes, `--depth` in flight (up to `--iterations`).
    InFlight,
    /// Questions or requests the driver sends (up to `--port-questions`).
    Questions,
    /// Records of each `--ring-sizes` size (up to `--ring-records`).
    RingRecords,
}

/// One row of `ntcomm bench`, declared by its channel's module.
#[derive(Clone, Copy, Debug)]
pub struct BenchCase {
    /// Its name on the command line and in the table, e.g. `ioctl-buffered`.
    pub name: &'static str,
    /// The channel it measures.
    pub channel: Channel,
    /// What one round trip is.
    pub round_trip: &'static str,
    /// What the timed run counts.
    pub load: Load,
    /// The largest payload one round trip carries (the protocol's limit);
    /// larger sizes are skipped with the reason.
    pub max_payload: usize,
    /// The smallest payload it carries (a demo record, where the other side
    /// checks one); smaller sizes are skipped with the reason.
    pub min_payload: usize,
    /// The C baseline (`baseline/c`) has the same case, by this name.
    pub in_c_baseline: bool,
    /// Runs it at `size` bytes (`Options::size`; the record size of
    /// [`Load::RingRecords`] cases).
    pub run: fn(&Options, &ProgressBar, usize) -> Outcome,
}

impl BenchCase {
    /// Every case of every channel, in run order.
    pub fn all() -> &'static [BenchCase] {
        static ALL: LazyLock<Vec<BenchCase>> = LazyLock::new(|| Channel::ALL.iter().flat_map(|c| c.bench_cases()).copied().collect());
        &ALL
    }

    /// Runs the case at `size` bytes, or skips it when the size is more
    /// than the channel carries.
    pub(crate) fn run_at(&self, opts: &Options, bar: &ProgressBar, size: usize) -> Outcome {
        if self.load != Load::RingRecords && size > self.max_payload {
            return Outcome::Skipped(format!("the channel carries at most {} B per round trip", self.max_payload));
        }
        if self.load != Load::RingRecords && size < self.min_payload {
            return Outcome::Skipped(format!("round trips carry demo records of at least {} B, SIZE is {size}", self.min_payload));
        }
        (self.run)(opts, bar, size)
    }
}

impl PartialEq for BenchCase {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl clap::ValueEnum for BenchCase {
    fn value_variants<'a>() -> &'a [Self] {
        BenchCase::all()
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name))
    }
}

impl Serialize for BenchCase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

/// The sizes of `--all`: a small record, a page, a large buffer.
pub const ALL_SIZES: [usize; 3] = [64, 4096, 65536];

/// How long any single wait may take before the channel is declared failed.
pub(crate) const STALL: Duration = Duration::from_secs(5);

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
    /// Only these cases (empty: all).
    pub channels: Vec<BenchCase>,
    /// Record sizes of `ring-d2u` and `ring-u2d` (one result each).
    pub ring_sizes: Vec<usize>,
    /// Records per `ring-d2u` / `ring-u2d` run, at most.
    pub ring_records: u64,
    /// And at most this many megabytes (10^6 B) of records per run.
    pub ring_megabytes: u64,
    /// Data bytes of each ring of those channels (power of two).
    pub ring_capacity: u32,
    /// Questions per `port-ask*` run, at most.
    pub port_questions: u32,
    /// The C baseline's client (`ntcomm_c_client.exe`): compare the shared
    /// channels with it, in interleaved rounds.
    pub c_baseline: Option<std::path::PathBuf>,
    /// The C baseline's driver (default: `ntcomm_c.sys` beside the client).
    pub c_driver: Option<std::path::PathBuf>,
    /// Rounds of the comparison; `iterations` is split over them.
    pub c_rounds: u32,
    /// Instead of the usual table: the cost of the rig's verifier mode on the
    /// IOCTL and read/write rows, in this many rounds ([`crate::verifier_cost`]).
    pub verifier_rounds: u32,
    /// Instead of the usual table: each async row against the synchronous
    /// shapes of the same work, in this many rounds ([`crate::async_rounds`]).
    pub async_rounds: u32,
}

impl Options {
    /// Records one [`Load::RingRecords`] run moves for `size`-byte records.
    pub fn ring_records(&self, size: usize) -> u64 {
        let by_bytes = (self.ring_megabytes as u128 * 1_000_000 / size.max(1) as u128).max(1);
        self.ring_records.min(u64::try_from(by_bytes).unwrap_or(u64::MAX))
    }
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
pub struct Measured {
    /// Latency of each timed round trip, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Timed round trips (or records, or questions).
    pub iterations: u64,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Stopped at `--max-seconds` before the count asked for.
    pub capped: bool,
    /// Case-specific observations.
    pub notes: Vec<String>,
}

/// Runs the benchmarks against the driver image `image` and prints them.
pub fn run(image: &Path, opts: &Options) -> ExitCode {
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
    if let Err(e) = rig::ensure_demo_running(image) {
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
    let selected = |case: &BenchCase| opts.channels.is_empty() || opts.channels.contains(case);
    if opts.verifier_rounds > 0 {
        let cases: Vec<BenchCase> = BenchCase::all().iter().copied().filter(|c| c.in_c_baseline && selected(c)).collect();
        let cost = verifier_cost::compare(opts, &cases, opts.verifier_rounds, progress);
        let text = (!opts.json).then(|| verifier_cost::render(&cost));
        return report_alone(&command, &machine, "verifier_cost", cost.ok, &cost, text);
    }
    if opts.async_rounds > 0 {
        let result = async_rounds::compare(opts, opts.async_rounds, selected, progress);
        let text = (!opts.json).then(|| async_rounds::render(&result));
        return report_alone(&command, &machine, "async_rounds", result.ok, &result, text);
    }
    // The shared cases first, interleaved with the C baseline; their
    // ntcomm rounds, merged, are the cases' rows of the usual table.
    let (comparison, mut compared) = match &opts.c_baseline {
        Some(client) => {
            let shared: Vec<BenchCase> = BenchCase::all().iter().copied().filter(|c| c.in_c_baseline && selected(c)).collect();
            if shared.is_empty() {
                (None, Vec::new())
            } else {
                // The C driver runs in a driver host of its own, without the
                // rig's verifier mode: so does ntcomm's side of the comparison
                // (IRQL tracking stays, as before verifier mode existed). What
                // the mode costs is `--verifier-cost`.
                let checks_off = rig::is_wine() && verifier_cost::reload(false).is_ok();
                let (mut c, outcomes) = baseline::compare(opts, client, &shared, progress);
                if checks_off {
                    c.verifier_mode = "off for the comparison (the C driver has none); its cost: --verifier-cost";
                    if let Err(e) = verifier_cost::reload(true) {
                        eprintln!("ntcomm bench: verifier mode could not be turned back on: {e}");
                    }
                }
                (Some(c), outcomes)
            }
        }
        None => (None, Vec::new()),
    };
    let mut results = Vec::new();
    let base_size = opts.size;
    for case in BenchCase::all().iter().filter(|c| selected(c)) {
        let sizes = if case.load == Load::RingRecords {
            opts.ring_sizes.clone()
        } else if opts.sizes.is_empty() {
            vec![opts.size]
        } else {
            opts.sizes.clone()
        };
        for size in sizes {
            let at_size = Options { size, ..opts.clone() };
            let opts = &at_size;
            let outcome = match compared.iter().position(|(n, _)| *n == case.name && size == base_size) {
                Some(i) => compared.swap_remove(i).1,
                None => {
                    let len = match case.load {
                        Load::RingRecords => opts.ring_records(size),
                        Load::Questions => u64::from(opts.port_questions),
                        Load::RoundTrips | Load::InFlight => opts.iterations,
                    };
                    let bar = progress_bar(progress, case.name, len);
                    let outcome = case.run_at(opts, &bar, size);
                    bar.finish_and_clear();
                    outcome
                }
            };
            let depth = if case.load == Load::InFlight { opts.depth } else { 1 };
            let mut r = result(case.name, case.round_trip, size, depth, outcome);
            if r.status == "ok" && size >= 128 && case.channel != Channel::Ring {
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

/// A case's outcome: measured, skipped (reason), or failed (reason).
pub enum Outcome {
    /// Measured.
    Done(Measured),
    /// Skipped, and why.
    Skipped(String),
    /// Failed, and why.
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
// The timed loop every round-trip case shares

/// Runs `op` `warmup` times, then times it up to `iterations` times (or
/// until the time cap). `op` checks its own reply.
pub(crate) fn timed(opts: &Options, bar: &ProgressBar, mut op: impl FnMut() -> Result<(), String>) -> Result<Measured, String> {
    timed_loop(opts, bar, |_| {
        let t = Instant::now();
        op()?;
        Ok(t.elapsed())
    })
}

/// [`timed`] for cases that time a round trip themselves: `op(timed)` runs
/// one (untimed in the warm-up) and returns its latency.
pub(crate) fn timed_loop(
    opts: &Options,
    bar: &ProgressBar,
    mut op: impl FnMut(bool) -> Result<Duration, String>,
) -> Result<Measured, String> {
    for i in 0..opts.warmup {
        op(false).map_err(|e| format!("warm-up round trip {i}: {e}"))?;
    }
    let mut hist = new_hist();
    let cap = Duration::from_secs_f64(opts.max_seconds);
    let start = Instant::now();
    let (mut done, mut capped) = (0, false);
    while done < opts.iterations {
        let lat = op(true).map_err(|e| format!("round trip {done}: {e}"))?;
        hist.saturating_record(ns(lat));
        done += 1;
        bar.inc(1);
        if start.elapsed() >= cap && done < opts.iterations {
            capped = true;
            break;
        }
    }
    Ok(Measured { hist, iterations: done, elapsed: start.elapsed(), capped, notes: Vec::new() })
}

// ---------------------------------------------------------------------------
// Helpers

/// Prints a comparison that replaces the usual table: `text` when given,
/// else one JSON document with the command and machine and the result
/// under `key`. Fails the run when the comparison did not complete (`ok`).
fn report_alone(command: &str, machine: &Machine, key: &str, ok: bool, result: &impl Serialize, text: Option<String>) -> ExitCode {
    match text {
        Some(t) => print!("{t}"),
        None => match serde_json::to_string_pretty(&serde_json::json!({ "command": command, "machine": machine, key: result })) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("ntcomm bench: JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn outcome(m: Result<Measured, String>) -> Outcome {
    match m {
        Ok(m) => Outcome::Done(m),
        Err(e) => Outcome::Failed(e),
    }
}

/// The driver's own timing of each question or request (`rtt_hist` of
/// `PORT_ASK` and `LPC_ASK`: 4 buckets per octave), each bucket recorded at
/// its lower bound.
pub(crate) fn driver_hist(rtt_hist: &[u64]) -> Histogram<u64> {
    let mut hist = new_hist();
    for (b, &count) in rtt_hist.iter().enumerate() {
        if count > 0 {
            let _ = hist.record_n(proto::rtt_bucket_floor_us(b).max(1) * 1000, count);
        }
    }
    hist
}

/// 1 ns .. 60 s, 3 significant digits.
pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

pub(crate) fn ns(d: Duration) -> u64 {
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
