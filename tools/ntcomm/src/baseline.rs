//! `ntcomm bench --c-baseline CLIENT`: ntcomm against the C baseline
//! (`baseline/c`: a plain WDM driver and a client written in C), channel by
//! channel, in one run.
//!
//! The C client (`ntcomm_c_client.exe bench`) times its channels the way
//! [`crate::bench`] times ntcomm's (QueryPerformanceCounter around each
//! round trip, the same payload, the same warm-up, the reply checked inside
//! the timed region) and prints JSON. To keep a noisy machine from
//! favouring one side, the comparison runs in rounds: in each round every
//! shared channel runs once on each side, ntcomm first in odd rounds and the
//! C client first in even ones, `--iterations / --c-rounds` round trips each.
//! Reported per channel: the median over rounds of each side's p50 and p99,
//! their ratio (ntcomm / C), and the median of the per-round p50 ratios
//! ("paired"). The goal is judged on the paired ratio: under Wine on a small
//! VM the latency of a whole stretch of time can jump between two levels
//! (measured: 75 us and 200 us for the same IOCTL), and the two runs of one
//! round are the closest in time, so their ratio is the least disturbed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bench::{self, BenchCase, Latency, Measured, Options, Outcome};

/// The cases both ntcomm's bench and the C client have (by the same name):
/// those declared [`BenchCase::in_c_baseline`].
pub fn shared() -> Vec<BenchCase> {
    BenchCase::all().iter().copied().filter(|c| c.in_c_baseline).collect()
}

/// The overhead goal: ntcomm's p50 at most this times the C baseline's
/// (judged on the paired ratio).
pub const GOAL_RATIO: f64 = 1.05;

/// File name of the C baseline's driver, looked for beside its client.
pub const C_DRIVER_FILE: &str = "ntcomm_c.sys";

/// The whole comparison, as in `--json`.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The C client that was run.
    pub client: String,
    /// The C driver it was given.
    pub driver: String,
    /// Rounds run.
    pub rounds: u32,
    /// Timed round trips per channel, side and round.
    pub iterations_per_round: u64,
    /// Run order within a round.
    pub order: &'static str,
    /// The goal: the paired p50 ratio at most this.
    pub goal_ratio: f64,
    /// The rig's verifier mode during the comparison (under Wine).
    pub verifier_mode: &'static str,
    /// One entry per shared channel.
    pub channels: Vec<Compared>,
    /// Every run of both sides worked.
    pub ok: bool,
}

/// One shared channel on both sides.
#[derive(Debug, Serialize)]
pub struct Compared {
    /// Channel name.
    pub name: &'static str,
    /// Why the comparison failed, if it did.
    pub error: Option<String>,
    /// Each ntcomm round.
    pub ntcomm: Vec<Round>,
    /// Each C round.
    pub c: Vec<Round>,
    /// Medians over the rounds (None when a side has no rounds).
    pub ntcomm_median: Option<Medians>,
    /// Medians over the rounds of the C side.
    pub c_median: Option<Medians>,
    /// ntcomm median p50 / C median p50.
    pub ratio_p50: Option<f64>,
    /// ntcomm median p99 / C median p99.
    pub ratio_p99: Option<f64>,
    /// Median over rounds of (ntcomm p50 / C p50) of the same round.
    pub paired_ratio_p50: Option<f64>,
    /// `paired_ratio_p50 <= goal_ratio`.
    pub goal_met: Option<bool>,
}

/// One side's figures in one round.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: u32,
    /// Whether this side ran first in the round.
    pub first: bool,
    /// Timed round trips.
    pub iterations: u64,
    /// Round trips per second.
    pub ops_per_s: f64,
    /// Latency percentiles, microseconds.
    pub latency_us: Latency,
}

impl Round {
    /// Round `round`'s figures from its measurement (None without samples).
    pub(crate) fn of(round: u32, first: bool, m: &Measured) -> Option<Self> {
        Latency::of(&m.hist).map(|latency_us| Self {
            round,
            first,
            iterations: m.iterations,
            ops_per_s: ops(m.iterations, m.elapsed),
            latency_us,
        })
    }

    /// Round `round`'s figures from a case's outcome; the reason when it
    /// has none (skipped, failed, or no samples).
    pub(crate) fn of_outcome(round: u32, first: bool, outcome: Outcome) -> Result<Self, String> {
        match outcome {
            Outcome::Done(m) => Self::of(round, first, &m).ok_or_else(|| "no samples".to_owned()),
            Outcome::Skipped(e) | Outcome::Failed(e) => Err(e),
        }
    }
}

/// Medians over rounds, microseconds (ops/s for `ops_per_s`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Medians {
    /// Of the rounds' p50.
    pub p50: f64,
    /// Of the rounds' p99.
    pub p99: f64,
    /// Of the rounds' p99.9.
    pub p99_9: f64,
    /// Of the rounds' mean.
    pub mean: f64,
    /// Of the rounds' ops/s.
    pub ops_per_s: f64,
}

/// The C client's JSON (what we read of it).
#[derive(Debug, Deserialize)]
struct CReport {
    channels: Vec<CChannel>,
}

#[derive(Debug, Deserialize)]
struct CChannel {
    name: String,
    status: String,
    error: Option<String>,
    iterations: u64,
    ops_per_s: f64,
    latency_us: Option<CLatency>,
}

#[derive(Debug, Deserialize)]
struct CLatency {
    min: f64,
    mean: f64,
    p50: f64,
    p99: f64,
    p99_9: f64,
    max: f64,
}

/// Runs the comparison of `shared` channels. Returns it and, per channel,
/// ntcomm's rounds merged into one outcome (for the usual table).
pub(crate) fn compare(opts: &Options, client: &Path, shared: &[BenchCase], progress: bool) -> (Comparison, Vec<(&'static str, Outcome)>) {
    let rounds = opts.c_rounds.max(1);
    let per_round = opts.iterations.div_ceil(u64::from(rounds)).max(1);
    let driver =
        opts.c_driver.clone().unwrap_or_else(|| client.parent().map_or_else(|| PathBuf::from(C_DRIVER_FILE), |d| d.join(C_DRIVER_FILE)));
    let mut round_opts = opts.clone();
    round_opts.iterations = per_round;
    round_opts.c_baseline = None;

    let mut channels: Vec<Compared> = shared
        .iter()
        .map(|case| Compared {
            name: case.name,
            error: None,
            ntcomm: Vec::new(),
            c: Vec::new(),
            ntcomm_median: None,
            c_median: None,
            ratio_p50: None,
            ratio_p99: None,
            paired_ratio_p50: None,
            goal_met: None,
        })
        .collect();
    let mut merged: Vec<Option<Measured>> = shared.iter().map(|_| None).collect();
    let mut failed: Vec<Option<String>> = shared.iter().map(|_| None).collect();

    for round in 1..=rounds {
        let ntcomm_first = round % 2 == 1;
        for (i, case) in shared.iter().enumerate() {
            let name = case.name;
            if failed[i].is_some() {
                continue;
            }
            for side_is_ntcomm in if ntcomm_first { [true, false] } else { [false, true] } {
                let first = side_is_ntcomm == ntcomm_first;
                let got = if side_is_ntcomm {
                    let bar = bench::progress_bar(progress, &format!("{name} r{round} ntcomm"), per_round);
                    let outcome = case.run_at(&round_opts, &bar, opts.size);
                    bar.finish_and_clear();
                    match outcome {
                        Outcome::Done(m) => {
                            let r = Round::of(round, first, &m);
                            merge(&mut merged[i], m);
                            r.ok_or_else(|| "no samples".to_owned())
                        }
                        Outcome::Skipped(e) | Outcome::Failed(e) => Err(format!("ntcomm: {e}")),
                    }
                } else {
                    run_c(client, &driver, name, &round_opts).map(|(iterations, ops_per_s, latency_us)| Round {
                        round,
                        first,
                        iterations,
                        ops_per_s,
                        latency_us,
                    })
                };
                match got {
                    Ok(r) if side_is_ntcomm => channels[i].ntcomm.push(r),
                    Ok(r) => channels[i].c.push(r),
                    Err(e) => {
                        failed[i] = Some(format!("round {round}: {e}"));
                        break;
                    }
                }
            }
        }
    }

    let mut ok = true;
    for (i, c) in channels.iter_mut().enumerate() {
        c.error = failed[i].take();
        ok &= c.error.is_none();
        c.ntcomm_median = medians(&c.ntcomm);
        c.c_median = medians(&c.c);
        if let (Some(a), Some(b)) = (c.ntcomm_median, c.c_median) {
            c.ratio_p50 = Some(a.p50 / b.p50);
            c.ratio_p99 = Some(a.p99 / b.p99);
        }
        let paired: Vec<f64> =
            c.ntcomm.iter().filter_map(|a| c.c.iter().find(|b| b.round == a.round).map(|b| a.latency_us.p50 / b.latency_us.p50)).collect();
        c.paired_ratio_p50 = median(paired);
        c.goal_met = c.paired_ratio_p50.map(|r| r <= GOAL_RATIO);
    }

    let outcomes = shared
        .iter()
        .zip(merged)
        .zip(&channels)
        .map(|((case, m), c)| {
            let outcome = match (m, &c.error) {
                (Some(mut m), _) => {
                    m.notes.push(format!(
                        "measured in {} rounds of {per_round} interleaved with the C baseline (table below); figures of all rounds together",
                        c.ntcomm.len()
                    ));
                    Outcome::Done(m)
                }
                (None, Some(e)) => Outcome::Failed(e.clone()),
                (None, None) => Outcome::Failed("no rounds ran".into()),
            };
            (case.name, outcome)
        })
        .collect();

    let comparison = Comparison {
        client: client.display().to_string(),
        driver: driver.display().to_string(),
        rounds,
        iterations_per_round: per_round,
        order: "per channel, ntcomm then C in odd rounds, C then ntcomm in even rounds",
        goal_ratio: GOAL_RATIO,
        verifier_mode: "as set (ntcomm-rig verifier on|off)",
        channels,
        ok,
    };
    (comparison, outcomes)
}

/// Round trips per second.
fn ops(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Adds a round's samples to the merged measurement of its channel.
fn merge(into: &mut Option<Measured>, m: Measured) {
    match into {
        None => *into = Some(Measured { notes: Vec::new(), ..m }),
        Some(acc) => {
            // Both histograms have the same bounds (`new_hist`): adding cannot fail.
            let _ = acc.hist.add(&m.hist);
            acc.iterations += m.iterations;
            acc.elapsed += m.elapsed;
            acc.capped |= m.capped;
        }
    }
}

/// Runs the C client on one channel; (iterations, ops/s, latency).
fn run_c(client: &Path, driver: &Path, name: &str, o: &Options) -> Result<(u64, f64, Latency), String> {
    let mut cmd = Command::new(client);
    cmd.arg("--driver")
        .arg(driver)
        .args(["bench", "--channels", name])
        .args(["--iterations", &o.iterations.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--size", &o.size.to_string()])
        .args(["--max-seconds", &o.max_seconds.to_string()]);
    let out = cmd.output().map_err(|e| format!("running {}: {e}", client.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: CReport = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("C client (exit {:?}) printed no valid JSON ({e}); stderr: {}", out.status.code(), stderr.trim()))?;
    let ch = report.channels.into_iter().find(|c| c.name == name).ok_or_else(|| format!("C client did not report {name}"))?;
    if ch.status != "ok" {
        return Err(format!("C client: {}", ch.error.unwrap_or_else(|| ch.status.clone())));
    }
    let l = ch.latency_us.ok_or("C client reported no latency")?;
    let latency = Latency { min: l.min, mean: l.mean, p50: l.p50, p99: l.p99, p99_9: l.p99_9, max: l.max };
    Ok((ch.iterations, ch.ops_per_s, latency))
}

/// The median (None when empty).
pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Medians over rounds of each figure.
pub(crate) fn medians(rounds: &[Round]) -> Option<Medians> {
    let of = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    Some(Medians {
        p50: of(|r| r.latency_us.p50)?,
        p99: of(|r| r.latency_us.p99)?,
        p99_9: of(|r| r.latency_us.p99_9)?,
        mean: of(|r| r.latency_us.mean)?,
        ops_per_s: of(|r| r.ops_per_s)?,
    })
}

/// The comparison table.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "C baseline: {} (driver {}); rig verifier mode {}", c.client, c.driver, c.verifier_mode);
    let _ = writeln!(
        s,
        "{} rounds x {} timed round trips per channel and side; {}; medians over rounds, latency in microseconds",
        c.rounds, c.iterations_per_round, c.order
    );
    let _ = writeln!(
        s,
        "{:<15} {:>10} {:>8} {:>7}  {:>10} {:>8} {:>7}  {:>7}  {:>9} {:>9}  goal (paired <= {:.2}x)",
        "CHANNEL", "ntcomm p50", "C p50", "ratio", "ntcomm p99", "C p99", "ratio", "paired", "ntcomm/s", "C/s", c.goal_ratio
    );
    for ch in &c.channels {
        match (&ch.ntcomm_median, &ch.c_median) {
            (Some(a), Some(b)) => {
                let _ = writeln!(
                    s,
                    "{:<15} {:>10.1} {:>8.1} {:>6.3}x  {:>10.1} {:>8.1} {:>6.3}x  {:>6.3}x  {:>9.0} {:>9.0}  {}",
                    ch.name,
                    a.p50,
                    b.p50,
                    a.p50 / b.p50,
                    a.p99,
                    b.p99,
                    a.p99 / b.p99,
                    ch.paired_ratio_p50.unwrap_or(f64::NAN),
                    a.ops_per_s,
                    b.ops_per_s,
                    if ch.goal_met == Some(true) { "met" } else { "NOT met" }
                );
            }
            _ => {
                let _ = writeln!(s, "{:<15} FAILED: {}", ch.name, ch.error.as_deref().unwrap_or("no rounds"));
                continue;
            }
        }
        if let Some(e) = &ch.error {
            let _ = writeln!(s, "{:<15}   FAILED: {e}", "");
        }
        let per_round = |rounds: &[Round]| rounds.iter().map(|r| format!("{:.1}", r.latency_us.p50)).collect::<Vec<_>>().join(" ");
        let _ = writeln!(s, "{:<15}   p50 by round: ntcomm {} | C {}", "", per_round(&ch.ntcomm), per_round(&ch.c));
    }
    let _ = writeln!(s, "ratio = ntcomm median / C median; paired = median over rounds of ntcomm p50 / C p50 in the same round");
    s
}
