//! Helpers shared by the Wine test suites.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ntcomm_demo_proto as demo;
use ntcomm_um::Device;

/// The driver's counters.
pub fn stats(dev: &Device) -> demo::Stats {
    dev.ioctl_get(&demo::GET_STATS).unwrap()
}

/// Polls until `f` holds, for driver state that settles asynchronously;
/// fails the test after a minute.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this process is a child started by [`ChildTest::spawn`].
pub fn is_child() -> bool {
    std::env::var_os("NTCOMM_CHILD").is_some()
}

/// This test binary re-run as a child process for one `#[ignore]`d test,
/// which prints words the parent waits for. Killed on drop.
pub struct ChildTest {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildTest {
    /// Starts the ignored test `name` in a child process.
    pub fn spawn(name: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
            .env("NTCOMM_CHILD", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// Reads the child's output until a line ends with `word` (libtest
    /// prints `test NAME ... ` first, on the same line).
    pub fn wait_for(&mut self, word: &str) {
        loop {
            let line = self.lines.next().unwrap_or_else(|| panic!("child exited before {word}")).unwrap();
            if line.trim_end().ends_with(word) {
                return;
            }
        }
    }

    /// Kills the child (`TerminateProcess`) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rig's findings file in the prefix (docs/VERIFIER.md).
pub fn findings_path() -> std::path::PathBuf {
    let root = std::env::var_os("SystemRoot").or_else(|| std::env::var_os("windir")).expect("SystemRoot");
    std::path::Path::new(&root).join(r"temp\ntcomm-findings.jsonl")
}

/// The findings of `driver` (e.g. `vftest.sys`) so far, one JSON line each.
pub fn findings_of(driver: &str) -> Vec<String> {
    let text = std::fs::read_to_string(findings_path()).unwrap_or_default();
    let me = format!("\"driver\":\"{driver}\"");
    text.lines().filter(|l| l.contains(&me)).map(str::to_owned).collect()
}

/// A string field of a finding's line.
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":\"");
    let start = line.find(&key).unwrap_or_else(|| panic!("no {name} in {line}")) + key.len();
    let end = line[start..].find('"').expect("unterminated field") + start;
    &line[start..end]
}

/// The IOCTL of case `n` of a C test corpus (irqltest.h, vftest.h: device type
/// 0x8000, function 0x800 + n, METHOD_BUFFERED, any access).
pub fn corpus_ioctl(n: u32) -> u32 {
    0x8000 << 16 | (0x800 + n) << 2
}
