//! `ntcomm bench --async-rounds ROUNDS`: each async row against the
//! synchronous shapes that do the same work, in one run.
//!
//! Three kinds of work, each with its async row and its synchronous shapes:
//!
//! - one request at a time: `ioctl-buffered` (a blocking call) against
//!   `async-ioctl`;
//! - DEPTH requests in flight: `overlapped-ioctl` (one issuing thread, one
//!   completion port) and `threads-ioctl` (a thread per request) against
//!   `async-overlapped`;
//! - the driver's questions on a filter port: `port-ask` (receiver threads
//!   on a completion port) and `port-ask-threads` (a thread per request,
//!   blocking receives) against `async-port-ask`.
//!
//! Every round runs every case of a work once, in an order that rotates
//! from round to round (so no case is always first or always last); the
//! figure is the median over rounds of async / best synchronous shape of the
//! same round, in operations per second (a shared machine moves whole runs
//! by several times; the cases of one round see the same machine).

use std::fmt::Write as _;

use serde::Serialize;

use crate::baseline::{median, medians, Medians, Round};
use crate::bench::{self, BenchCase, Options};

/// One kind of work: its synchronous shapes and its async row.
struct Work {
    name: &'static str,
    sync: &'static [&'static str],
    async_case: &'static str,
}

const WORKS: [Work; 3] = [
    Work { name: "one at a time", sync: &["ioctl-buffered"], async_case: "async-ioctl" },
    Work { name: "DEPTH in flight", sync: &["overlapped-ioctl", "threads-ioctl"], async_case: "async-overlapped" },
    Work { name: "driver's questions", sync: &["port-ask", "port-ask-threads"], async_case: "async-port-ask" },
];

/// The whole comparison, as in `--json`.
#[derive(Debug, Serialize)]
pub struct AsyncRounds {
    /// Rounds run.
    pub rounds: u32,
    /// Timed operations per case and round (round trips; questions at most).
    pub iterations_per_round: u64,
    /// One entry per kind of work.
    pub works: Vec<WorkResult>,
    /// Every round of every case ran.
    pub ok: bool,
}

/// One kind of work.
#[derive(Debug, Serialize)]
pub struct WorkResult {
    /// What is compared, e.g. `DEPTH in flight`.
    pub work: &'static str,
    /// The synchronous shapes, then the async row.
    pub cases: Vec<CaseRounds>,
    /// Per round: async ops/s / the best synchronous shape's ops/s.
    pub async_to_best_sync: Vec<f64>,
    /// Their median: 1.0 or more means async is at least as fast.
    pub median_async_to_best_sync: Option<f64>,
}

/// One case's rounds.
#[derive(Debug, Serialize)]
pub struct CaseRounds {
    /// Case name.
    pub name: &'static str,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Its rounds.
    pub rounds: Vec<Round>,
    /// Medians over them.
    pub median: Option<Medians>,
    /// Median over rounds of async ops/s / this case's ops/s (the async row: 1).
    pub async_to_this: Option<f64>,
}

fn case(name: &str) -> Option<BenchCase> {
    BenchCase::all().iter().copied().find(|c| c.name == name)
}

/// Runs the comparison (the works whose async row `selected` accepts).
pub fn compare(opts: &Options, rounds: u32, selected: impl Fn(&BenchCase) -> bool, progress: bool) -> AsyncRounds {
    let rounds = rounds.max(1);
    let per_round = opts.iterations.div_ceil(u64::from(rounds)).max(1);
    let round_opts =
        Options { iterations: per_round, port_questions: opts.port_questions.div_ceil(rounds).max(1), c_baseline: None, ..opts.clone() };
    let mut works = Vec::new();
    for work in WORKS.iter().filter(|w| case(w.async_case).is_some_and(|c| selected(&c))) {
        let names: Vec<&'static str> = work.sync.iter().copied().chain([work.async_case]).collect();
        let mut cases: Vec<CaseRounds> =
            names.iter().map(|&name| CaseRounds { name, error: None, rounds: Vec::new(), median: None, async_to_this: None }).collect();
        for round in 1..=rounds {
            let n = names.len();
            for k in 0..n {
                let i = (k + round as usize) % n;
                let Some(row) = cases.get_mut(i) else { continue };
                if row.error.is_some() {
                    continue;
                }
                let Some(bc) = case(row.name) else {
                    row.error = Some("no such case".into());
                    continue;
                };
                let bar = bench::progress_bar(progress, &format!("{} r{round}", row.name), per_round);
                let outcome = bc.run_at(&round_opts, &bar, opts.size);
                bar.finish_and_clear();
                match Round::of_outcome(round, k == 0, outcome) {
                    Ok(r) => row.rounds.push(r),
                    Err(e) => row.error = Some(format!("round {round}: {e}")),
                }
            }
        }
        let ops_in = |c: &CaseRounds, round: u32| c.rounds.iter().find(|r| r.round == round).map(|r| r.ops_per_s);
        let (sync_rows, async_row) = cases.split_at(work.sync.len());
        let async_row = async_row.first();
        let per_round: Vec<f64> = (1..=rounds)
            .filter_map(|round| {
                let a = async_row.and_then(|c| ops_in(c, round))?;
                let best =
                    sync_rows.iter().filter_map(|c| ops_in(c, round)).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))?;
                Some(a / best)
            })
            .collect();
        let async_to: Vec<Option<f64>> = cases
            .iter()
            .map(|c| median((1..=rounds).filter_map(|round| Some(async_row.and_then(|a| ops_in(a, round))? / ops_in(c, round)?)).collect()))
            .collect();
        for (c, r) in cases.iter_mut().zip(async_to) {
            c.median = medians(&c.rounds);
            c.async_to_this = r;
        }
        works.push(WorkResult {
            work: work.name,
            median_async_to_best_sync: median(per_round.clone()),
            async_to_best_sync: per_round,
            cases,
        });
    }
    let ok = works.iter().all(|w| w.cases.iter().all(|c| c.error.is_none()));
    AsyncRounds { rounds, iterations_per_round: per_round, works, ok }
}

/// The comparison table.
pub fn render(c: &AsyncRounds) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "async rows against the synchronous shapes of the same work: {} rounds, up to {} operations per case and round, order rotating",
        c.rounds, c.iterations_per_round
    );
    let _ = writeln!(s, "{:<20} {:<18} {:>10} {:>9} {:>9} {:>12}", "work", "case", "ops/s", "p50 us", "p99 us", "async/this");
    for w in &c.works {
        for (i, row) in w.cases.iter().enumerate() {
            let work = if i == 0 { w.work } else { "" };
            match (&row.error, row.median) {
                (None, Some(m)) => {
                    let _ = writeln!(
                        s,
                        "{work:<20} {:<18} {:>10.0} {:>9.1} {:>9.1} {:>12}",
                        row.name,
                        m.ops_per_s,
                        m.p50,
                        m.p99,
                        row.async_to_this.map_or_else(|| "-".into(), |r| format!("{r:.3}"))
                    );
                }
                (e, _) => {
                    let _ = writeln!(s, "{work:<20} {:<18} failed: {}", row.name, e.as_deref().unwrap_or("no rounds"));
                }
            }
        }
        let rounds: Vec<String> = w.async_to_best_sync.iter().map(|r| format!("{r:.2}")).collect();
        let _ = writeln!(
            s,
            "{:<20} async / best synchronous shape per round: {}  median {}",
            "",
            rounds.join(" "),
            w.median_async_to_best_sync.map_or_else(|| "-".into(), |r| format!("{r:.3}"))
        );
    }
    let _ = writeln!(s, "medians over rounds; async/this = median over rounds of the async row's ops/s / this case's (1.000: even)");
    s
}
