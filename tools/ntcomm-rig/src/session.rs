//! A test session: a persistent wineserver, so that drivers stay loaded
//! between the programs of a test run (without it Wine ends its system
//! processes, and with them every driver, a few seconds after the last
//! program exits), and a log of the system processes' output: the driver
//! hosts' DbgPrint lines, the modules they load and their crashes.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::prefix::Prefix;

/// Debug channels of the session's system processes (services.exe and the
/// winedevice.exe driver hosts inherit them): `DbgPrint` (debugstr) and the
/// modules loaded with their bases (loaddll), which name the module of a
/// crash address. Wine prints unhandled exceptions whatever the channels.
const HOST_DEBUG: &str = "-all,warn+debugstr,trace+loaddll";

/// A session in one prefix.
pub struct Session<'a> {
    prefix: &'a Prefix,
}

impl<'a> Session<'a> {
    /// The session of `prefix` (running or not).
    pub fn new(prefix: &'a Prefix) -> Self {
        Self { prefix }
    }

    /// The log of the session's system processes.
    pub fn log_path(&self) -> PathBuf {
        self.prefix.rig_dir().join("session.log")
    }

    fn pid_path(&self) -> PathBuf {
        self.prefix.rig_dir().join("session.pid")
    }

    /// Whether this rig's persistent wineserver runs for the prefix.
    pub fn is_running(&self) -> bool {
        let Ok(pid) = fs::read_to_string(self.pid_path()) else { return false };
        let cmdline = fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains("wineserver")
    }

    /// Starts a session: ends whatever Wine runs in the prefix, starts a
    /// persistent wineserver, and boots the system processes with their
    /// output going to [`Self::log_path`] (truncated).
    ///
    /// # Errors
    /// When Wine cannot be run or does not boot.
    pub fn start(&self) -> Result<(), String> {
        self.prefix.check_ready()?;
        self.end_wineserver();
        fs::create_dir_all(self.prefix.rig_dir()).map_err(|e| format!("create {}: {e}", self.prefix.rig_dir().display()))?;
        let log = File::create(self.log_path()).map_err(|e| format!("create {}: {e}", self.log_path().display()))?;
        let server = self
            .prefix
            .command("wineserver")
            .args(["--foreground", "--persistent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for a test does not end the session.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run wineserver (Debian: apt-get install wine): {e}"))?;
        fs::write(self.pid_path(), server.id().to_string()).map_err(|e| format!("write {}: {e}", self.pid_path().display()))?;
        // The first program of a server starts wineboot, and wineboot
        // services.exe, which inherit its output: the log. (Not `wineboot`
        // itself: run as the first program it would boot twice, and the second
        // services.exe would hold the service database locked.)
        let status = self
            .prefix
            .command("wine")
            .args(["cmd", "/c", "exit"])
            .env("WINEDEBUG", HOST_DEBUG)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| format!("log: {e}"))?)
            .stderr(log)
            .status()
            .map_err(|e| format!("cannot run wine: {e}"))?;
        if !status.success() {
            return Err(format!("wineboot failed ({status}); see {}", self.log_path().display()));
        }
        Ok(())
    }

    /// Starts a session unless one runs. Returns whether it started one.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn ensure(&self) -> Result<bool, String> {
        if self.is_running() {
            return Ok(false);
        }
        self.start().map(|()| true)
    }

    /// Ends the session: stops every driver (their unload routines run) and
    /// the wineserver, and waits until it is gone.
    pub fn stop(&self) {
        self.end_wineserver();
        let _ = fs::remove_file(self.pid_path());
    }

    /// `wineserver -k` then `-w`, bounded: a hung driver host must not hang
    /// the rig.
    fn end_wineserver(&self) {
        let _ = self.prefix.command("wineserver").arg("-k").stderr(Stdio::null()).status();
        let Ok(mut wait) = self.prefix.command("wineserver").arg("-w").stderr(Stdio::null()).spawn() else { return };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = wait.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = wait.kill();
    }

    /// The log's length now: where the output of what comes next starts.
    pub fn log_mark(&self) -> u64 {
        fs::metadata(self.log_path()).map_or(0, |m| m.len())
    }

    /// The log from `mark` on.
    pub fn log_since(&self, mark: u64) -> String {
        let Ok(bytes) = fs::read(self.log_path()) else { return String::new() };
        let from = usize::try_from(mark).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
    }

    /// The whole log (module loads from before a mark are needed to name a
    /// crash after it).
    pub fn log(&self) -> String {
        self.log_since(0)
    }
}

/// Runs `cmd` and returns its exit code (a signal is 128 + its number).
///
/// # Errors
/// When the program cannot be started.
pub fn exit_code(cmd: &mut Command) -> Result<i32, String> {
    use std::os::unix::process::ExitStatusExt;
    let status = cmd.status().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    Ok(status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1))
}
