//! `ntcomm bench --c-baseline` under Wine, tiny: both sides of every shared
//! channel run, and the run succeeds (every reply checked on both sides).
//! Needs the C baseline's client: `cargo xtask test` builds it and sets
//! NTCOMM_C_BASELINE.
#![cfg(windows)]

use std::path::PathBuf;
use std::process::ExitCode;

use ntcomm::bench::BenchCase;
use ntcomm::{baseline, bench, rig};

/// The two runs share the demo driver's counters and its single pipe and
/// port peers, and the C baseline starts a second driver: one at a time (a
/// run beside the other once failed and left the second waiting).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn c_baseline_comparison_runs_every_shared_channel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let client = PathBuf::from(
        std::env::var_os("NTCOMM_C_BASELINE").expect("NTCOMM_C_BASELINE names ntcomm_c_client.exe (cargo xtask test builds it)"),
    );
    let image = rig::driver_path(None).expect("no driver image: set NTCOMM_DRIVER");
    let opts = bench::Options {
        json: true,
        iterations: 40,
        size: 64,
        sizes: Vec::new(),
        chart: None,
        warmup: 5,
        depth: 1,
        max_seconds: 5.0,
        channels: baseline::shared(),
        ring_sizes: vec![64],
        ring_records: 1,
        ring_megabytes: 1,
        ring_capacity: 4096,
        port_questions: 1,
        c_baseline: Some(client),
        c_driver: None,
        c_rounds: 2,
        verifier_rounds: 0,
        async_rounds: 0,
    };
    let code = bench::run(&image, &opts);
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::SUCCESS), "bench --c-baseline failed (its JSON is on stdout)");
}

/// `ntcomm bench --all --chart`, tiny: every channel at 64 B, 4 KiB and
/// 64 KiB in one run (each reply checked), and a chart naming every channel
/// that ran.
#[test]
fn all_channels_at_every_size_with_a_chart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = rig::driver_path(None).expect("no driver image: set NTCOMM_DRIVER");
    let chart = std::env::temp_dir().join(format!("ntcomm-bench-{}.svg", std::process::id()));
    let opts = bench::Options {
        json: true,
        iterations: 30,
        size: 64,
        sizes: bench::ALL_SIZES.to_vec(),
        chart: Some(chart.clone()),
        warmup: 5,
        depth: 4,
        max_seconds: 2.0,
        channels: Vec::new(),
        ring_sizes: bench::ALL_SIZES.to_vec(),
        ring_records: 2_000,
        ring_megabytes: 20,
        ring_capacity: 4 << 20,
        port_questions: 200,
        c_baseline: None,
        c_driver: None,
        c_rounds: 1,
        verifier_rounds: 0,
        async_rounds: 0,
    };
    let code = bench::run(&image, &opts);
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::SUCCESS), "bench --all failed (its JSON is on stdout)");
    let svg = std::fs::read_to_string(&chart).unwrap();
    let _ = std::fs::remove_file(&chart);
    for case in BenchCase::all() {
        assert!(svg.contains(&format!(">{}<", case.name)), "{} missing from the chart", case.name);
    }
    for size in ["64 B", "4 KiB", "64 KiB"] {
        assert!(svg.contains(&format!(">{size}<")), "{size} missing from the legend");
    }
}

/// `ntcomm bench --async-rounds`, tiny: every kind of work runs each of its
/// synchronous shapes and its async row in every round (each reply
/// checked), and each round yields a ratio.
#[test]
fn async_rounds_run_every_shape_of_every_work() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = rig::driver_path(None).expect("no driver image: set NTCOMM_DRIVER");
    rig::ensure_demo_running(&image).unwrap();
    let opts = bench::Options {
        json: true,
        iterations: 60,
        size: 64,
        sizes: Vec::new(),
        chart: None,
        warmup: 5,
        depth: 4,
        max_seconds: 2.0,
        channels: Vec::new(),
        ring_sizes: vec![64],
        ring_records: 1,
        ring_megabytes: 1,
        ring_capacity: 4096,
        port_questions: 400,
        c_baseline: None,
        c_driver: None,
        c_rounds: 1,
        verifier_rounds: 0,
        async_rounds: 2,
    };
    let result = ntcomm::async_rounds::compare(&opts, 2, |_| true, false);
    let names: Vec<Vec<&str>> = result.works.iter().map(|w| w.cases.iter().map(|c| c.name).collect()).collect();
    assert_eq!(
        names,
        [
            vec!["ioctl-buffered", "async-ioctl"],
            vec!["overlapped-ioctl", "threads-ioctl", "async-overlapped"],
            vec!["port-ask", "port-ask-threads", "async-port-ask"]
        ]
    );
    for w in &result.works {
        for c in &w.cases {
            assert!(c.error.is_none(), "{}: {:?}", c.name, c.error);
            assert_eq!(c.rounds.len(), 2, "{}", c.name);
        }
        assert_eq!(w.async_to_best_sync.len(), 2, "{}", w.work);
        assert!(w.async_to_best_sync.iter().all(|r| r.is_finite() && *r > 0.0), "{}: {:?}", w.work, w.async_to_best_sync);
    }
    assert!(result.ok);
    let table = ntcomm::async_rounds::render(&result);
    assert!(table.contains("async / best synchronous shape per round"), "{table}");
}
