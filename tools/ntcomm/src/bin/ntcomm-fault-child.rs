//! `ntcomm-fault-child`: one child process of `ntcomm faults` (a channel's
//! client or a peer server), started and killed by the fault suite. A binary
//! of its own so that the `ntcomm` CLI carries no hidden test-only command.
//!
//! ```text
//! ntcomm-fault-child ROLE [--seed N] [--instance N] [--stall | --answer]
//! ```
// A test helper in user mode: a panic is a reported failure (see main.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!("ntcomm-fault-child is started by `ntcomm faults` under Windows or Wine");
    std::process::ExitCode::from(2)
}

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    use clap::Parser;

    /// A child process of `ntcomm faults`.
    #[derive(Parser, Debug)]
    struct Args {
        /// A channel's client (ioctl, readwrite, inverted, delayed, ring,
        /// pipe, port, lpc) or a channel's peer (pipe-server, port-peer,
        /// lpc-peer).
        role: String,
        /// PRNG seed of the child's random traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// LPC server instance (lpc-peer).
        #[arg(long, default_value_t = 0)]
        instance: u32,
        /// A peer that never answers.
        #[arg(long, conflicts_with = "answer")]
        stall: bool,
        /// A peer that answers as fast as it can (the default).
        #[arg(long)]
        answer: bool,
    }

    let args = Args::parse();
    ntcomm::fault_child::run(&args.role, args.seed, args.instance, args.stall)
}
