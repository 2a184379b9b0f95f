//! Host ring throughput, interleaved: every contender runs once per round, in
//! the same order, for `ROUNDS` rounds, so that a change of machine speed
//! during the run (this machine is shared) hits all of them alike. Reports
//! the median, p10 and p90 of each contender's per-record time over the
//! rounds, and the median over rounds of each ratio to `rtrb` (or to
//! `memcpy` for the 64 KiB rows), taken within a round.
//!
//! Run with `cargo bench -p ntcomm-proto --bench ring_paired` (add
//! `-- --rounds N` for more rounds, `-- --filter TEXT` for some rows only). The workloads are those of the criterion
//! bench (`ring.rs`, see its header for what each does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;
mod work;

use std::time::Duration;

use work::*;

const SMALL_RECORDS: u64 = 1_000_000;
const LARGE: usize = 64 * 1024;
const LARGE_RECORDS: u64 = 2048;
const MEMCPY_BYTES: usize = 128 << 20;

/// A contender: its name, the row it is compared with, bytes per record,
/// records per run, and the run itself.
struct Row {
    name: &'static str,
    versus: &'static str,
    bytes: usize,
    records: u64,
    run: Box<dyn FnMut() -> Duration>,
}

fn row(name: &'static str, versus: &'static str, bytes: usize, records: u64, run: impl FnMut() -> Duration + 'static) -> Row {
    Row { name, versus, bytes, records, run: Box::new(run) }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut rounds = 15usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args[i + 1].parse().expect("--rounds N");
    }
    let n = SMALL_RECORDS;
    let src = vec![1u8; MEMCPY_BYTES];
    let mut dst = vec![0u8; MEMCPY_BYTES];
    let mut rows = vec![
        row("64 B ntcomm variable, try_push per record", "rtrb push/pop", SMALL, n, move || ntcomm(1 << 16, SMALL, n, 1)),
        row("64 B ntcomm variable, make_visible per record", "rtrb push/pop", SMALL, n, move || ntcomm_visible(n, 1, false)),
        row("64 B ntcomm variable, make_visible per 32", "rtrb push/pop", SMALL, n, move || ntcomm_visible(n, 32, false)),
        row("64 B ntcomm fixed, make_visible per record", "rtrb push/pop", SMALL, n, move || ntcomm_visible(n, 1, true)),
        row("64 B ntcomm fixed, make_visible per 32", "rtrb push/pop", SMALL, n, move || ntcomm_visible(n, 32, true)),
        row("64 B ntcomm fixed, bulk 32", "rtrb chunk 32", SMALL, n, move || ntcomm_bulk(n, 32)),
        row("rtrb push/pop", "rtrb push/pop", SMALL, n, move || rtrb_small(n)),
        row("rtrb chunk 32", "rtrb chunk 32", SMALL, n, move || rtrb_chunk(n, 32)),
        row("64 KiB ntcomm variable, try_push per record", "memcpy", LARGE, LARGE_RECORDS, || ntcomm(1 << 20, LARGE, LARGE_RECORDS, 1)),
        row("64 KiB rtrb byte ring", "memcpy", LARGE, LARGE_RECORDS, || rtrb_large(LARGE, LARGE_RECORDS)),
        row("memcpy", "memcpy", MEMCPY_BYTES, 1, move || memcpy(&src, &mut dst)),
    ];
    // `--filter TEXT`: only the rows whose name holds TEXT, and their references.
    if let Some(i) = args.iter().position(|a| a == "--filter") {
        let text = args[i + 1].clone();
        let keep: Vec<&'static str> = rows.iter().filter(|r| r.name.contains(&text)).flat_map(|r| [r.name, r.versus]).collect();
        rows.retain(|r| keep.contains(&r.name));
    }
    // One warm-up round, not counted.
    for r in rows.iter_mut() {
        (r.run)();
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for round in 0..rounds {
        for (i, r) in rows.iter_mut().enumerate() {
            times[i].push((r.run)().as_secs_f64());
        }
        eprint!("\rround {}/{rounds}", round + 1);
    }
    eprintln!();
    let index = |name: &str| rows.iter().position(|r| r.name == name).unwrap();
    println!("| contender | per record p50 | p10 | p90 | throughput p50 | ratio p50 (vs) |");
    println!("|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        let per: Vec<f64> = times[i].iter().map(|t| t / r.records as f64).collect();
        let mut sorted = per.clone();
        sorted.sort_by(f64::total_cmp);
        let p50 = percentile(&sorted, 0.5);
        // Ratio of speeds, round by round: the reference's time over ours,
        // each per byte (so memcpy compares with any record size).
        let v = index(r.versus);
        let mut ratios: Vec<f64> = (0..rounds)
            .map(|k| {
                let ours = times[i][k] / (r.records as f64 * r.bytes as f64);
                let theirs = times[v][k] / (rows[v].records as f64 * rows[v].bytes as f64);
                theirs / ours
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let gib = r.bytes as f64 / p50 / f64::from(1u32 << 30);
        let fmt = |s: f64| if s < 1e-6 { format!("{:.1} ns", s * 1e9) } else { format!("{:.2} µs", s * 1e6) };
        let per_record = if r.records == 1 { "-".to_string() } else { fmt(p50) };
        let (p10, p90) = if r.records == 1 {
            ("-".to_string(), "-".to_string())
        } else {
            (fmt(percentile(&sorted, 0.1)), fmt(percentile(&sorted, 0.9)))
        };
        println!(
            "| {} | {} | {} | {} | {:.2} GiB/s | {:.2}x ({}) |",
            r.name,
            per_record,
            p10,
            p90,
            gib,
            percentile(&ratios, 0.5),
            r.versus
        );
    }
}
