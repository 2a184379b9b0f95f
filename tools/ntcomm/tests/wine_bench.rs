//! `ntcomm bench --c-baseline` under Wine, tiny: both sides of every shared
//! channel run, and the run succeeds (every reply checked on both sides).
//! Needs the C baseline's client: `cargo xtask test` builds it and sets
//! NTCOMM_C_BASELINE.
#![cfg(windows)]

use std::path::PathBuf;
use std::process::ExitCode;

use ntcomm::{baseline, bench, rig};

#[test]
fn c_baseline_comparison_runs_every_shared_channel() {
    let client = PathBuf::from(
        std::env::var_os("NTCOMM_C_BASELINE").expect("NTCOMM_C_BASELINE names ntcomm_c_client.exe (cargo xtask test builds it)"),
    );
    let image = rig::driver_path(None).expect("no driver image: set NTCOMM_DRIVER");
    let opts = bench::Options {
        json: true,
        iterations: 40,
        size: 64,
        warmup: 5,
        depth: 1,
        max_seconds: 5.0,
        channels: baseline::SHARED.iter().map(|s| s.to_string()).collect(),
        ring_sizes: vec![64],
        ring_records: 1,
        ring_megabytes: 1,
        ring_capacity: 4096,
        port_questions: 1,
        c_baseline: Some(client),
        c_driver: None,
        c_rounds: 2,
    };
    let code = bench::run(&image, &opts);
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::SUCCESS), "bench --c-baseline failed (its JSON is on stdout)");
}
