//! Verifier findings: what the driver hosts' checks (compat/wine-verifier and
//! compat/wine-irql in ntcomm's sources) wrote to the prefix's findings file, one
//! JSON object a line, read back, matched against an allow list and printed.
//!
//! A finding fails the run unless an entry of the allow list names its driver
//! and rule. The allow list is a text file, one entry a line:
//!
//! ```text
//! # driver      rule                  why
//! mydrv.sys     pool-leak-at-unload   the cache is freed by the next load (issue 12)
//! broken.sys    *                     a test corpus of deliberately broken cases
//! ```
//!
//! Allowed findings are still printed, with the reason: nothing is hidden.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::prefix::Prefix;

/// The file the checks append to, in the prefix (`C:\windows\temp`).
pub fn path(prefix: &Prefix) -> PathBuf {
    prefix.path().join("drive_c/windows/temp/ntcomm-findings.jsonl")
}

/// The allow list's default name, looked up in the current directory and its
/// parents when neither `--allow` nor `$NTCOMM_RIG_ALLOW` names one.
pub const ALLOW_FILE: &str = "ntcomm-rig-allow.txt";

/// One finding, as written by the driver host.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The whole JSON line.
    pub line: String,
    fields: Value,
}

impl Finding {
    /// Parses one line of the findings file.
    ///
    /// # Errors
    /// When the line is not a JSON object.
    pub fn parse(line: &str) -> Result<Self, String> {
        let fields: Value = serde_json::from_str(line).map_err(|e| format!("a findings line that is not JSON ({e}): {line}"))?;
        if !fields.is_object() {
            return Err(format!("a findings line that is not a JSON object: {line}"));
        }
        Ok(Self { line: line.to_owned(), fields })
    }

    /// A string field (`code`, `p1`, `rule`, `driver`, `at`, `detail`...), "" if absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// One line for a person: code/parameter 1, rule, driver, place, detail.
    pub fn readable(&self) -> String {
        format!(
            "{}/{} {} in {} at {} ({}): {}",
            self.get("code"),
            self.get("p1"),
            self.get("rule"),
            self.get("driver"),
            self.get("at"),
            self.get("routine"),
            self.get("detail")
        )
    }
}

/// Findings from byte `from` of the file on (all of them from 0), and the
/// file's length, where the next read starts.
///
/// # Errors
/// When the file exists but cannot be read, or holds a line that is not JSON.
pub fn read_since(prefix: &Prefix, from: u64) -> Result<(Vec<Finding>, u64), String> {
    let file = path(prefix);
    let bytes = match fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(format!("reading {}: {e}", file.display())),
    };
    let len = bytes.len() as u64;
    // A file shorter than the mark was cleared meanwhile: all of it is new.
    let start = if from > len { 0 } else { usize::try_from(from).unwrap_or(0) };
    let text = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default());
    let findings = text.lines().filter(|l| !l.trim().is_empty()).map(Finding::parse).collect::<Result<Vec<_>, _>>()?;
    Ok((findings, len))
}

/// The findings file's current length (where a run's own findings start).
pub fn mark(prefix: &Prefix) -> u64 {
    fs::metadata(path(prefix)).map_or(0, |m| m.len())
}

/// The allow list: (driver, rule or `*`, reason) entries.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    entries: Vec<(String, String, String)>,
    source: Option<PathBuf>,
}

impl Allow {
    /// Reads an allow list.
    ///
    /// # Errors
    /// When the file cannot be read, or a line lacks a driver, a rule or a reason
    /// (an exception must say why it is one).
    pub fn load(file: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(file).map_err(|e| format!("reading the allow list {}: {e}", file.display()))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Columns may be aligned with any run of blanks.
            let mut rest = line;
            let mut word = || {
                let w = rest.split_whitespace().next()?;
                rest = rest.trim_start().get(w.len()..)?.trim_start();
                Some(w)
            };
            let (Some(driver), Some(rule)) = (word(), word()) else {
                return Err(format!("{}:{}: expected `driver rule reason`, got `{line}`", file.display(), n + 1));
            };
            let reason = rest.trim();
            if reason.is_empty() {
                return Err(format!("{}:{}: `{driver} {rule}` gives no reason", file.display(), n + 1));
            }
            entries.push((driver.to_ascii_lowercase(), rule.to_owned(), reason.to_owned()));
        }
        Ok(Self { entries, source: Some(file.to_owned()) })
    }

    /// `explicit`, else `$NTCOMM_RIG_ALLOW`, else [`ALLOW_FILE`] in the current
    /// directory or one of its parents, else an empty list.
    ///
    /// # Errors
    /// As [`Allow::load`].
    pub fn find(explicit: Option<&Path>) -> Result<Self, String> {
        if let Some(file) = explicit {
            return Self::load(file);
        }
        if let Some(file) = std::env::var_os("NTCOMM_RIG_ALLOW") {
            return Self::load(Path::new(&file));
        }
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        for dir in cwd.ancestors() {
            let file = dir.join(ALLOW_FILE);
            if file.is_file() {
                return Self::load(&file);
            }
        }
        Ok(Self::default())
    }

    /// Why `finding` is allowed, if it is.
    pub fn reason(&self, finding: &Finding) -> Option<&str> {
        let driver = finding.get("driver").to_ascii_lowercase();
        let rule = finding.get("rule");
        self.entries.iter().find(|(d, r, _)| *d == driver && (r == "*" || r == rule)).map(|(_, _, why)| why.as_str())
    }
}

/// Prints `findings` (allowed ones with their reason, from `allow`'s file) to
/// stderr and returns how many are not allowed.
pub fn report(findings: &[Finding], allow: &Allow) -> usize {
    let mut failing = 0;
    for f in findings {
        match allow.reason(f) {
            Some(why) => {
                let from = allow.source.as_deref().map_or_else(String::new, |p| format!(", {}", p.display()));
                eprintln!("ntcomm-rig: finding (allowed: {why}{from}): {}", f.readable());
            }
            None => {
                failing += 1;
                eprintln!("ntcomm-rig: FINDING: {}\n    {}", f.readable(), f.line);
            }
        }
    }
    failing
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"code":"0xC4","p1":"0x62","p2":"0x0","p3":"0x0","p4":"0x3","rule":"pool-leak-at-unload","driver":"VfTest.sys","routine":"DriverUnload","at":"vftest.sys+0x16C4","irql":0,"tid":268,"repeat":1,"stack":"","detail":"3 blocks"}"#;

    fn allow(text: &str) -> Result<Allow, String> {
        let file = std::env::temp_dir().join(format!("ntcomm-rig-allow-{}-{}.txt", std::process::id(), text.len()));
        fs::write(&file, text).map_err(|e| e.to_string())?;
        let a = Allow::load(&file);
        let _ = fs::remove_file(&file);
        a
    }

    #[test]
    fn a_finding_is_allowed_by_driver_and_rule_only() {
        let f = Finding::parse(LINE).unwrap();
        assert_eq!(f.get("p4"), "0x3");
        assert!(f.readable().starts_with("0xC4/0x62 pool-leak-at-unload in VfTest.sys"));
        let none = Allow::default();
        assert_eq!(none.reason(&f), None);
        let by_rule = allow("# comment\nvftest.sys   pool-leak-at-unload \t kept on purpose\n").unwrap();
        assert_eq!(by_rule.reason(&f), Some("kept on purpose"));
        let other_rule = allow("vftest.sys pool-double-free corpus\n").unwrap();
        assert_eq!(other_rule.reason(&f), None);
        let other_driver = allow("demo.sys * corpus\n").unwrap();
        assert_eq!(other_driver.reason(&f), None);
        let any_rule = allow("VFTEST.SYS * the corpus\n").unwrap();
        assert_eq!(any_rule.reason(&f), Some("the corpus"));
        assert_eq!(report(&[f.clone()], &any_rule), 0);
        assert_eq!(report(&[f], &other_rule), 1);
    }

    #[test]
    fn an_entry_without_a_reason_is_refused() {
        let e = allow("vftest.sys pool-leak-at-unload\n").unwrap_err();
        assert!(e.contains("gives no reason"), "{e}");
        let e = allow("vftest.sys\n").unwrap_err();
        assert!(e.contains("expected `driver rule reason`"), "{e}");
        assert!(Finding::parse("not json").is_err());
    }
}
