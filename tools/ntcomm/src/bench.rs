//! `ntcomm bench` (in progress).
use std::path::Path;
use std::process::ExitCode;

/// Options.
#[derive(Debug)]
pub struct Options {
    /// JSON output.
    pub json: bool,
    /// Iterations.
    pub iterations: u64,
    /// Size.
    pub size: usize,
    /// Warmup.
    pub warmup: u64,
    /// Depth.
    pub depth: usize,
    /// Max seconds per channel.
    pub max_seconds: f64,
    /// Channels.
    pub channels: Vec<String>,
}

/// Runs.
pub fn run(_image: &Path, _o: &Options) -> ExitCode {
    ExitCode::FAILURE
}
