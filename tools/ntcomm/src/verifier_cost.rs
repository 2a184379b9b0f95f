//! `ntcomm bench --verifier-cost ROUNDS`: what the rig's verifier mode
//! (docs/VERIFIER.md) costs, on the IOCTL and read/write rows, in one run.
//!
//! Rounds alternate the reference driver loaded with verifier mode on and off:
//! the switch (`HKLM\Software\ntcomm\rig`, `Verifier`) is read when a driver's
//! image loads, so each side sets it and restarts the driver. On runs first in
//! odd rounds, off first in even ones; `--iterations / ROUNDS` round trips per
//! case, side and round. Reported per case: the median over rounds of each
//! side's p50 and p99, and the median of the per-round p50 ratios (on / off),
//! the figure least disturbed by a noisy machine (see [`crate::baseline`]).
//! IRQL tracking is on in both: it is the rig's baseline, not part of the switch.

use std::fmt::Write as _;
use std::process::Command;

use serde::Serialize;

use crate::baseline::{median, medians, Medians, Round};
use crate::bench::{self, BenchCase, Options};
use crate::rig;

/// The whole comparison, as in `--json`.
#[derive(Debug, Serialize)]
pub struct VerifierCost {
    /// Rounds run.
    pub rounds: u32,
    /// Timed round trips per case, side and round.
    pub iterations_per_round: u64,
    /// One entry per case.
    pub cases: Vec<CaseCost>,
    /// Every round of both sides ran.
    pub ok: bool,
}

/// One case, verifier mode on and off.
#[derive(Debug, Serialize)]
pub struct CaseCost {
    /// Case name.
    pub name: &'static str,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Rounds with verifier mode on.
    pub on: Vec<Round>,
    /// Rounds with it off.
    pub off: Vec<Round>,
    /// Medians over the rounds, on.
    pub on_median: Option<Medians>,
    /// Medians over the rounds, off.
    pub off_median: Option<Medians>,
    /// Median over rounds of (on p50 / off p50) of the same round.
    pub paired_ratio_p50: Option<f64>,
    /// Median p99 on / median p99 off.
    pub ratio_p99: Option<f64>,
}

/// Sets the verifier switch (read by the driver host when an image loads).
fn set_switch(on: bool) -> Result<(), String> {
    let value = if on { "1" } else { "0" };
    let out = Command::new("reg")
        .args(["add", r"HKLM\Software\ntcomm\rig", "/v", "Verifier", "/t", "REG_DWORD", "/d", value, "/f"])
        .output()
        .map_err(|e| format!("running reg add: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("reg add Verifier={value} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The reference driver reloaded with verifier mode `on`.
pub(crate) fn reload(on: bool) -> Result<(), String> {
    set_switch(on)?;
    rig::restart_demo().map_err(|e| format!("restarting the driver: {e}"))
}

/// Runs the comparison on `cases`; leaves verifier mode on and the driver loaded.
pub fn compare(opts: &Options, cases: &[BenchCase], rounds: u32, progress: bool) -> VerifierCost {
    let rounds = rounds.max(1);
    let per_round = opts.iterations.div_ceil(u64::from(rounds)).max(1);
    let round_opts = Options { iterations: per_round, c_baseline: None, ..opts.clone() };
    let mut rows: Vec<CaseCost> = cases
        .iter()
        .map(|case| CaseCost {
            name: case.name,
            error: None,
            on: Vec::new(),
            off: Vec::new(),
            on_median: None,
            off_median: None,
            paired_ratio_p50: None,
            ratio_p99: None,
        })
        .collect();

    for round in 1..=rounds {
        let on_first = round % 2 == 1;
        for on in if on_first { [true, false] } else { [false, true] } {
            if let Err(e) = reload(on) {
                for row in rows.iter_mut().filter(|r| r.error.is_none()) {
                    row.error = Some(format!("round {round}: {e}"));
                }
                continue;
            }
            for (row, case) in rows.iter_mut().zip(cases) {
                if row.error.is_some() {
                    continue;
                }
                let side = if on { "on" } else { "off" };
                let bar = bench::progress_bar(progress, &format!("{} r{round} verifier {side}", case.name), per_round);
                let outcome = case.run_at(&round_opts, &bar, opts.size);
                bar.finish_and_clear();
                match Round::of_outcome(round, on == on_first, outcome) {
                    Ok(r) if on => row.on.push(r),
                    Ok(r) => row.off.push(r),
                    Err(e) => row.error = Some(format!("round {round}, verifier {side}: {e}")),
                }
            }
        }
    }
    let restored = reload(true);

    let mut ok = restored.is_ok();
    for row in &mut rows {
        ok &= row.error.is_none();
        row.on_median = medians(&row.on);
        row.off_median = medians(&row.off);
        if let (Some(a), Some(b)) = (row.on_median, row.off_median) {
            row.ratio_p99 = Some(a.p99 / b.p99);
        }
        let paired: Vec<f64> = row
            .on
            .iter()
            .filter_map(|a| row.off.iter().find(|b| b.round == a.round).map(|b| a.latency_us.p50 / b.latency_us.p50))
            .collect();
        row.paired_ratio_p50 = median(paired);
    }
    if let Err(e) = restored {
        eprintln!("ntcomm bench: verifier mode could not be turned back on: {e}");
    }
    VerifierCost { rounds, iterations_per_round: per_round, cases: rows, ok }
}

/// The comparison table.
pub fn render(c: &VerifierCost) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "verifier mode (docs/VERIFIER.md): on vs off, {} rounds of {} round trips per case and side, alternating which runs first",
        c.rounds, c.iterations_per_round
    );
    let _ = writeln!(
        s,
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}",
        "case", "p50 on", "p50 off", "p99 on", "p99 off", "paired p50", "p99"
    );
    for row in &c.cases {
        match (&row.error, row.on_median, row.off_median) {
            (None, Some(on), Some(off)) => {
                let _ = writeln!(
                    s,
                    "{:<22} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>12} {:>9}",
                    row.name,
                    on.p50,
                    off.p50,
                    on.p99,
                    off.p99,
                    row.paired_ratio_p50.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
                    row.ratio_p99.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
                );
            }
            (e, _, _) => {
                let _ = writeln!(s, "{:<22} failed: {}", row.name, e.as_deref().unwrap_or("no rounds"));
            }
        }
    }
    let _ = writeln!(s, "latency in microseconds; ratios on / off (1.000: no cost)");
    s
}
