//! `ntcomm-rig`: run Windows drivers and their clients under Wine.
//!
//! ```text
//! ntcomm-rig [--prefix DIR] setup
//! ntcomm-rig [--prefix DIR] session start | stop | status
//! ntcomm-rig [--prefix DIR] driver install NAME PATH [--group G] [--minifilter ALTITUDE]
//! ntcomm-rig [--prefix DIR] driver start | stop | restart | uninstall | status NAME
//! ntcomm-rig [--prefix DIR] run PROGRAM [ARGS...]
//! ntcomm-rig [--prefix DIR] findings [--allow FILE] [--clear]
//! ntcomm-rig [--prefix DIR] verifier on | off
//! ntcomm-rig new DIR [--name NAME]
//! ntcomm-rig [--prefix DIR] test [CARGO TEST ARGS...]
//! ```
//!
//! The prefix is `--prefix`, else `$WINEPREFIX`, else
//! `~/.local/share/ntcomm-rig/prefix`. As a cargo target runner
//! (`.cargo/config.toml`): `[target.x86_64-pc-windows-gnu] runner = "ntcomm-rig run"`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ntcomm_rig::prefix::Prefix;
use ntcomm_rig::session::Session;

#[derive(Parser, Debug)]
#[command(name = "ntcomm-rig", version, about = "Run Windows drivers and their clients under Wine, with ntcomm's Wine layers")]
struct Cli {
    /// The Wine prefix (default: $WINEPREFIX, else ~/.local/share/ntcomm-rig/prefix).
    #[arg(long, global = true)]
    prefix: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update the prefix: Wine and mingw-w64 if missing (apt-get),
    /// ntcomm's Wine layers and ntcomm.exe. Idempotent.
    Setup,
    /// A test session: a persistent wineserver, so drivers stay loaded between programs.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Install, start, stop or remove a driver service: `ntcomm driver ARGS` in the session.
    #[command(disable_help_flag = true)]
    Driver {
        /// e.g. `install NAME PATH --group G`, `start NAME` (`driver --help` for all).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Create a driver project: protocol, driver, client with tests, README.
    New {
        /// The project's directory (new or empty).
        dir: PathBuf,
        /// The project's name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// A driver project's tests under Wine: build, a fresh session, its drivers
    /// installed and started, `cargo test` through the rig, drivers removed.
    Test {
        /// Arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<OsString>,
    },
    /// Print the verifier's findings of the prefix (docs/VERIFIER.md); fails if
    /// one is not allowed.
    Findings {
        /// The allow list (default: $NTCOMM_RIG_ALLOW, else ntcomm-rig-allow.txt here or in a parent).
        #[arg(long)]
        allow: Option<PathBuf>,
        /// Then empty the findings file.
        #[arg(long)]
        clear: bool,
    },
    /// Turn verifier mode on or off for driver hosts started from now on.
    Verifier {
        #[command(subcommand)]
        switch: VerifierSwitch,
    },
    /// Run a Windows program in the session (the cargo target runner); its
    /// drivers' DbgPrint lines go to stderr, and a driver-host crash or a
    /// verifier finding not allowed fails the run.
    Run {
        /// The program (.exe), then its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<OsString>,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum VerifierSwitch {
    /// The IRP, pool and unload rules are checked (the default).
    On,
    /// Not checked (IRQL tracking stays): to measure what verifier mode costs.
    Off,
}

#[derive(Subcommand, Debug)]
enum SessionAction {
    /// End whatever Wine runs in the prefix and start a fresh session.
    Start,
    /// End the session: drivers unload, the wineserver exits.
    Stop,
    /// Whether a session runs, and where its log is.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("ntcomm-rig: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<i32, String> {
    let prefix = Prefix::resolve(cli.prefix.as_deref())?;
    match cli.command {
        Command::Setup => ntcomm_rig::setup::setup(&prefix).map(|()| 0),
        Command::Session { action } => {
            let session = Session::new(&prefix);
            match action {
                SessionAction::Start => {
                    session.start()?;
                    println!("session running in {}; log: {}", prefix.path().display(), session.log_path().display());
                }
                SessionAction::Stop => {
                    session.stop();
                    println!("session ended in {}", prefix.path().display());
                }
                SessionAction::Status => {
                    let state = if session.is_running() { "running" } else { "not running" };
                    println!("session {state} in {}; log: {}", prefix.path().display(), session.log_path().display());
                }
            }
            Ok(0)
        }
        Command::New { dir, name } => {
            let files = ntcomm_rig::new::new(&dir, name.as_deref())?;
            println!("created {} ({} files): see its README.md", dir.display(), files.len());
            Ok(0)
        }
        Command::Test { cargo_args } => ntcomm_rig::test::test(&prefix, &cargo_args),
        Command::Driver { args } => ntcomm_rig::driver::driver(&prefix, &args),
        Command::Findings { allow, clear } => {
            let allow = ntcomm_rig::findings::Allow::find(allow.as_deref())?;
            let (all, _) = ntcomm_rig::findings::read_since(&prefix, 0)?;
            let failing = ntcomm_rig::findings::report(&all, &allow);
            println!("{} finding(s), {failing} not allowed ({})", all.len(), ntcomm_rig::findings::path(&prefix).display());
            if clear {
                let file = ntcomm_rig::findings::path(&prefix);
                if file.exists() {
                    std::fs::write(&file, b"").map_err(|e| format!("clearing {}: {e}", file.display()))?;
                }
            }
            Ok(i32::from(failing > 0))
        }
        Command::Verifier { switch } => {
            ntcomm_rig::setup::set_verifier(&prefix, matches!(switch, VerifierSwitch::On))?;
            println!(
                "verifier mode {} for driver hosts started from now on",
                if matches!(switch, VerifierSwitch::On) { "on" } else { "off" }
            );
            Ok(0)
        }
        Command::Run { command } => {
            let (program, args) = command.split_first().ok_or("run: no program")?;
            ntcomm_rig::run::run(&prefix, program, args)
        }
    }
}
