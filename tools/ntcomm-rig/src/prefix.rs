//! The Wine prefix the rig works in, and commands that run in it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Wine's debug channels for the programs the rig runs: none (the session's
/// system processes have their own, see `session::HOST_DEBUG`).
const PROGRAM_DEBUG: &str = "-all";
/// No Mono/Gecko prompts, no desktop-menu spam, no winedbg (under Wine 8 a
/// crashed program under winedbg exits 0).
const DLL_OVERRIDES: &str = "mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d";

/// A Wine prefix.
#[derive(Clone, Debug)]
pub struct Prefix {
    path: PathBuf,
}

impl Prefix {
    /// `explicit` (`--prefix`), else `$WINEPREFIX`, else
    /// `$XDG_DATA_HOME/ntcomm-rig/prefix` (`~/.local/share/...`).
    ///
    /// # Errors
    /// When no directory can be found (no `HOME`).
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, String> {
        let path = match (explicit, env::var_os("WINEPREFIX")) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let data = env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
                    .ok_or("no --prefix, WINEPREFIX, XDG_DATA_HOME or HOME: say where the Wine prefix is")?;
                data.join("ntcomm-rig/prefix")
            }
        };
        let path = if path.is_absolute() { path } else { env::current_dir().map_err(|e| format!("current directory: {e}"))?.join(path) };
        Ok(Self { path })
    }

    /// The prefix directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rig's own files in the prefix (session log, pid).
    pub fn rig_dir(&self) -> PathBuf {
        self.path.join("ntcomm-rig")
    }

    /// A prefix made by `ntcomm-rig setup`: a Wine prefix with ntcomm's
    /// helper driver and CLI installed.
    ///
    /// # Errors
    /// What is missing, and the command that makes it.
    pub fn check_ready(&self) -> Result<(), String> {
        let system32 = self.path.join("drive_c/windows/system32");
        let needed = [
            (self.path.join("system.reg"), "a Wine prefix"),
            (system32.join("drivers/ntcomm_lpc.sys"), "ntcomm's Wine layers"),
            (system32.join("ntcomm.exe"), "ntcomm.exe"),
        ];
        for (file, what) in needed {
            if !file.is_file() {
                return Err(format!(
                    "{} has no {what} ({} is missing): run `ntcomm-rig setup --prefix {}`",
                    self.path.display(),
                    file.display(),
                    self.path.display()
                ));
            }
        }
        Ok(())
    }

    /// `program` with this prefix's environment: `WINEPREFIX`, and
    /// `WINEDEBUG`/`WINEDLLOVERRIDES` unless the caller set them.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", &self.path);
        if env::var_os("WINEDEBUG").is_none() {
            c.env("WINEDEBUG", PROGRAM_DEBUG);
        }
        if env::var_os("WINEDLLOVERRIDES").is_none() {
            c.env("WINEDLLOVERRIDES", DLL_OVERRIDES);
        }
        c
    }

    /// The Unix path of a Windows path in this prefix (`C:\...` under
    /// `drive_c`, `Z:\...` from `/`), for files Wine names.
    pub fn unix_path(&self, windows: &str) -> Option<PathBuf> {
        let (drive, rest) = windows.split_once(":\\")?;
        let rest = rest.replace('\\', "/");
        match drive.to_ascii_lowercase().as_str() {
            "z" => Some(Path::new("/").join(rest)),
            "c" => Some(self.path.join("drive_c").join(rest)),
            _ => None,
        }
    }
}
