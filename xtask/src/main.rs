//! `cargo xtask`: set up the Linux + Wine environment, build the driver and tools for
//! x86_64-pc-windows-gnu, and run the tests, demo and benchmarks under Wine.
//!
//! std only. Every external command is echoed to stderr before it runs.

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const WIN_TARGET: &str = "x86_64-pc-windows-gnu";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
const MINGW_DLLTOOL: &str = "x86_64-w64-mingw32-dlltool";
/// Overrides used whenever xtask starts Wine: no Mono/Gecko installer prompts on a
/// fresh prefix, no desktop menu entries written to $HOME, and no winedbg (see
/// `NO_WINEDBG_REG`). Keep in sync with xtask/wine-runner.sh.
const WINEDLLOVERRIDES: &str = "mscoree,mshtml=;winemenubuilder.exe=d;winedbg.exe=d";
/// The prefix's HKCU DllOverrides entry disabling winedbg.exe, as it appears in user.reg.
/// Measured under Wine 8: on an unhandled exception (e.g. a segfault in a test) Wine
/// starts `winedbg --auto`, which crashes internally and the process then exits with
/// code 0, so a crashing test binary would PASS `cargo test`. With winedbg disabled the
/// process exits with the exception code's low byte (5 for an access violation).
/// AeDebug registry settings do not stop Wine 8 from starting winedbg; this does.
const NO_WINEDBG_REG: &str = "\"winedbg.exe\"=\"\"";
/// The prefix's HKCU DllOverrides entry that makes winedevice load our fltmgr.sys
/// (system32\drivers) instead of Wine's, whose port functions are fatal stubs. With
/// "builtin" as fallback a prefix without our file still starts minifilters.
const FLTMGR_OVERRIDE_REG: &str = "\"fltmgr.sys\"=\"native,builtin\"";
/// Wine-only Filter Manager replacements installed into the prefix: (package, its
/// directory, built file, destination under drive_c/windows/system32).
const FLT_COMPONENTS: [(&str, &str, &str, &str); 2] = [
    ("wine-fltmgr", "compat/wine-fltmgr", "wine_fltmgr.dll", "drivers/fltmgr.sys"),
    ("wine-fltlib", "compat/wine-fltlib", "fltlib.dll", "fltlib.dll"),
];

/// Packages linted for x86_64-pc-windows-gnu (all but xtask and the minimal driver,
/// which `xtask test` lints in a cargo run of its own).
const WIN_PACKAGES: [&str; 12] = [
    "ntcomm-proto",
    "ntcomm-km",
    "ntcomm-um",
    "ntcomm-demo",
    "ntcomm-demo-proto",
    "ntcomm-minimal-proto",
    "ntcomm-example-proto",
    "ntcomm-examples-proto",
    "ntcomm",
    "wine-fltport",
    "wine-fltmgr",
    "wine-fltlib",
];
/// The small example drivers (drivers/examples), one channel each.
const SMALL_EXAMPLES: [&str; 3] = ["example-inverted-call", "example-read-queue", "example-lpc-call"];

/// Packages linted on the host: xtask and the ones with host code or tests.
const HOST_PACKAGES: [&str; 9] = [
    "xtask",
    "ntcomm-build",
    "ntcomm-rig",
    "ntcomm-proto",
    "ntcomm-demo-proto",
    "ntcomm-minimal-proto",
    "ntcomm-example-proto",
    "wine-fltport",
    "wine-fltlib",
];

/// The ntoskrnl.exe functions the minimal driver (drivers/ntcomm-minimal, ntcomm-km
/// without features: IOCTL and read/write) may import: device and link, dispatch and
/// completion, the cancel lock, spin locks and events, pool, the MDL mapping, the
/// device DACL, handle waits/closes (unload), DbgPrint, the panic bug check and the
/// C memory functions. A new import there is a choice, made here.
const MINIMAL_IMPORTS: &[&str] = &[
    "DbgPrint",
    "ExAllocatePoolWithTag",
    "ExFreePoolWithTag",
    "IoCreateDevice",
    "IoCreateSymbolicLink",
    "IoDeleteDevice",
    "IoDeleteSymbolicLink",
    "IoReleaseCancelSpinLock",
    "IofCompleteRequest",
    "KeAcquireSpinLockRaiseToDpc",
    "KeBugCheckEx",
    "KeClearEvent",
    "KeDelayExecutionThread",
    "KeInitializeEvent",
    "KeReleaseSpinLock",
    "KeSetEvent",
    "KeWaitForSingleObject",
    "MmMapLockedPagesSpecifyCache",
    "ObOpenObjectByPointer",
    "ZwClose",
    "ZwSetSecurityObject",
    "ZwWaitForSingleObject",
    "memcmp",
    "memcpy",
    "memmove",
    "memset",
    "strlen",
];

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup [--prefix DIR]       install wine/mingw-w64 (apt-get), the Rust Windows target and
                             clippy and rustfmt, create the Wine prefix target/wine/prefix and install
                             the bcryptprimitives.dll shim into it; build the Wine-only
                             fltmgr.sys and fltlib.dll (compat/) and install them with the
                             fltmgr.sys=native,builtin DllOverride (idempotent)
  build [--release]          setup, build ntcomm-demo + ntcomm + wine-fltmgr + wine-fltlib for
                             x86_64-pc-windows-gnu, copy ntcomm_demo.dll to ntcomm_demo.sys,
                             install that profile's fltmgr.sys/fltlib.dll into the prefix; build
                             the minimal driver (drivers/ntcomm-minimal, its own cargo run so no
                             other package's ntcomm-km features reach it) to ntcomm_minimal.sys
                             and check its imports: ntoskrnl.exe only, from MINIMAL_IMPORTS;
                             the example driver (drivers/ntcomm-example, likewise its own run)
                             to ntcomm_example.sys, checked as a kernel image
  test  [--release] [-- ARGS]
                             setup + build, then: host tests of ntcomm-proto and ntcomm-demo-proto and
                             the compile-fail tests of ntcomm-km; Windows tests
                             of ntcomm-um and ntcomm under Wine (NTCOMM_DRIVER set); the C
                             minifilter + client test of compat/wine-fltmgr under Wine; the fault
                             suite at its CI size (`ntcomm faults`, about 2 minutes); clippy
                             -D warnings on every package (host packages on the host, kernel and
                             Windows packages for x86_64-pc-windows-gnu); rustfmt --check. ARGS go to both
                             `cargo test` runs (e.g. `-- --no-fail-fast`, a test-name filter,
                             `-- -- --nocapture`)
  demo  [--release] [ARGS]   setup + build, then `ntcomm demo --driver <sys> ARGS` under Wine
  bench [--release] [ARGS]   setup + build, build the C baseline (baseline/c, mingw -O2), then
                             `ntcomm bench --driver <sys> --c-baseline <client> ARGS` under Wine
                             (e.g. `cargo xtask bench --json`; `--no-c-baseline` leaves it out;
                             `--one-cpu` runs Wine and all its processes on CPU 0 (taskset): on a
                             small VM this removes the cross-CPU wake-ups that make IOCTL latency
                             jump between ~75 and ~200 us)
  faults [--release] [ARGS]  setup + build, then the fault suite `ntcomm faults --driver <sys> ARGS`
                             under Wine: random IOCTLs, clients killed, the driver stopped under
                             load, peers killed mid-message, each followed by the no-leak checks
                             (default: the CI size `xtask test` runs; `--full` is the size of
                             docs/RELIABILITY.md; e.g. `cargo xtask faults --release -- --full --json`)
  wine  [--] EXE [ARGS]      run a Windows executable in the workspace's Wine prefix
  help                       this text

environment: WINEDEBUG is passed through (default -all), e.g. WINEDEBUG=-all,warn+debugstr
shows driver DbgPrint output.";

// ---------------------------------------------------------------------------------------
// Errors

struct Error(String);

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

type Result<T = ()> = std::result::Result<T, Error>;

macro_rules! bail {
    ($($arg:tt)*) => { return Err(Error(format!($($arg)*))) };
}

trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

// ---------------------------------------------------------------------------------------
// Entry point and argument parsing

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Splits `[--release] [--] rest...`. With `strict`, unknown `-`-options before `--` are
/// errors; otherwise the first argument xtask does not know (and everything after it) is
/// passed through.
fn parse_profile_args(args: &[String], strict: bool) -> Result<(Profile, Vec<String>)> {
    let mut profile = Profile::Debug;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--release" | "-r" => profile = Profile::Release,
            "--" => {
                rest.extend(it.by_ref().cloned());
                break;
            }
            _ if strict => bail!("unexpected argument `{a}` (extra arguments go after `--`)"),
            _ => {
                rest.push(a.clone());
                rest.extend(it.by_ref().cloned());
                break;
            }
        }
    }
    Ok((profile, rest))
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let ws = Workspace::locate()?;
    match cmd.as_str() {
        "setup" => {
            let ws = match rest {
                [] => ws,
                [flag, prefix] if flag == "--prefix" => Workspace { prefix: absolute(Path::new(prefix))?, ..ws },
                _ => bail!("usage: cargo xtask setup [--prefix DIR]"),
            };
            ws.setup()?;
            Ok(ExitCode::SUCCESS)
        }
        "build" => {
            let (profile, extra) = parse_profile_args(rest, true)?;
            if !extra.is_empty() {
                bail!("`build` takes only --release");
            }
            ws.setup()?;
            ws.build(profile)?;
            Ok(ExitCode::SUCCESS)
        }
        "test" => {
            let (profile, extra) = parse_profile_args(rest, true)?;
            ws.test(profile, &extra)
        }
        "demo" | "bench" | "faults" => {
            let (profile, mut extra) = parse_profile_args(rest, false)?;
            ws.setup()?;
            let sys = ws.build(profile)?;
            let exe = ws.win_out(profile).join("ntcomm.exe");
            let mut tool_args = vec![exe.into_os_string(), cmd.into(), "--driver".into(), windows_path(&sys).into()];
            // The bench compares the channels it shares with the C baseline
            // (baseline/c) unless told not to or given another client.
            // The comparisons of their own (--async-rounds, --verifier-cost) run without it.
            let no_c = extra.iter().any(|a| a == "--no-c-baseline" || a.starts_with("--async-rounds") || a.starts_with("--verifier-cost"));
            let one_cpu = extra.iter().any(|a| a == "--one-cpu");
            extra.retain(|a| a != "--no-c-baseline" && a != "--one-cpu");
            if cmd == "bench" && !no_c && !extra.iter().any(|a| a.starts_with("--c-baseline")) {
                let (_, client) = ws.c_baseline()?;
                tool_args.push("--c-baseline".into());
                tool_args.push(windows_path(&client).into());
            }
            tool_args.extend(extra.into_iter().map(OsString::from));
            ws.kill_wineserver();
            if one_cpu {
                // The wineserver this starts, winedevice and every client
                // inherit the affinity.
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(ws.runner()).args(&tool_args).env("NTCOMM_WINE_NO_SETUP", "1");
                return Ok(exit_code(status(&mut c)?));
            }
            ws.run_in_wine(&tool_args)
        }
        "wine" => {
            let rest = match rest.first().map(String::as_str) {
                Some("--") => rest.get(1..).unwrap_or_default(),
                _ => rest,
            };
            if rest.is_empty() {
                bail!("usage: cargo xtask wine -- EXE [ARGS]");
            }
            ws.setup()?;
            let args: Vec<OsString> = rest.iter().map(OsString::from).collect();
            ws.run_in_wine(&args)
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

// ---------------------------------------------------------------------------------------
// Running commands

/// Renders a command line for echoing: the env vars we set, then program and arguments.
/// `p` made absolute against the current directory (it need not exist yet).
fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(env::current_dir().context(|| "current directory".into())?.join(p))
}

fn render(cmd: &Command) -> String {
    let mut s = String::from("$ ");
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), quote(&v.to_string_lossy())));
        }
    }
    s.push_str(&quote(&cmd.get_program().to_string_lossy()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(&a.to_string_lossy()));
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!("    (in {})", dir.display()));
    }
    s
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn echo(cmd: &Command) {
    eprintln!("{}", render(cmd));
    let _ = io::stderr().flush();
}

/// Runs a command with inherited stdio; returns its exit status code (-1 if killed by a
/// signal).
fn status(cmd: &mut Command) -> Result<i32> {
    echo(cmd);
    let st = cmd.status().context(|| format!("cannot run `{}`", cmd.get_program().to_string_lossy()))?;
    Ok(st.code().unwrap_or(-1))
}

/// Runs a command and fails unless it exits 0.
fn check(cmd: &mut Command) -> Result {
    match status(cmd)? {
        0 => Ok(()),
        code => bail!("`{}` failed (exit code {code})", render(cmd).trim_start_matches("$ ")),
    }
}

/// Runs a command quietly (not echoed: used only for read-only probes) and returns stdout.
fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Looks a program up on PATH without spawning anything.
fn which(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn exit_code(code: i32) -> ExitCode {
    match code {
        0 => ExitCode::SUCCESS,
        1..=255 => ExitCode::from(code as u8),
        _ => ExitCode::FAILURE,
    }
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    if let Ok(s) = fs::read_to_string("/proc/self/status") {
        if let Some(line) = s.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    probe("id", &["-u"]).is_some_and(|s| s.trim() == "0")
}

/// The Windows view of a Unix path, through Wine's default `Z:` -> `/` mapping.
fn windows_path(p: &Path) -> String {
    format!("Z:{}", p.display().to_string().replace('/', "\\"))
}

fn newer_than(src: &[PathBuf], out: &Path) -> bool {
    let Ok(out_time) = fs::metadata(out).and_then(|m| m.modified()) else {
        return true;
    };
    src.iter().any(|s| fs::metadata(s).and_then(|m| m.modified()).map_or(true, |t| t > out_time))
}

// ---------------------------------------------------------------------------------------
// The workspace

/// The IRQL tracker's findings, one JSON object a line, in the prefix's
/// C:\\windows\\temp (compat/wine-irql/README.md).
const FINDINGS_FILE: &str = "ntcomm-findings.jsonl";

struct Workspace {
    root: PathBuf,
    cargo: OsString,
    /// The Wine prefix: target/wine/prefix unless `setup --prefix` names another.
    prefix: PathBuf,
}

impl Workspace {
    fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("CARGO_MANIFEST_DIR has no parent")?.to_path_buf();
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let prefix = root.join("target/wine/prefix");
        Ok(Workspace { root, cargo, prefix })
    }

    fn wine_dir(&self) -> PathBuf {
        self.root.join("target/wine")
    }

    fn prefix(&self) -> PathBuf {
        self.prefix.clone()
    }

    fn shim_src(&self) -> PathBuf {
        self.root.join("compat/wine-bcryptprimitives")
    }

    fn shim_out(&self) -> PathBuf {
        self.wine_dir().join("bcryptprimitives.dll")
    }

    fn runner(&self) -> PathBuf {
        self.root.join("xtask/wine-runner.sh")
    }

    fn win_out(&self, profile: Profile) -> PathBuf {
        self.root.join("target").join(WIN_TARGET).join(profile.dir())
    }

    fn cargo(&self) -> Command {
        let mut c = Command::new(&self.cargo);
        c.current_dir(&self.root);
        c
    }

    /// A command with this workspace's Wine environment.
    fn wine_cmd(&self, program: &str, prefix: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", prefix);
        if env::var_os("WINEDEBUG").is_none() {
            c.env("WINEDEBUG", "-all");
        }
        if env::var_os("WINEDLLOVERRIDES").is_none() {
            c.env("WINEDLLOVERRIDES", WINEDLLOVERRIDES);
        }
        c
    }

    // ----- setup -----------------------------------------------------------------------

    fn setup(&self) -> Result {
        let t0 = Instant::now();
        eprintln!("xtask setup: checking {}", self.root.display());
        self.ensure_packages()?;
        self.ensure_rust()?;
        self.ensure_shim_built()?;
        self.ensure_prefix()?;
        self.ensure_shim_installed()?;
        self.ensure_lpc_helper()?;
        self.ensure_cli_installed()?;
        // Not fatal here: a half-written compat crate must not stop every other command
        // (`build` builds them again and fails properly).
        if let Err(e) = self.build_flt(Profile::Debug).and_then(|()| self.install_flt(Profile::Debug)) {
            eprintln!("  WARNING: Filter Manager replacements not installed: {e:?}");
        }
        eprintln!("xtask setup: ready ({:.2} s)", t0.elapsed().as_secs_f64());
        Ok(())
    }

    fn ensure_packages(&self) -> Result {
        // (what must be found, Debian package providing it)
        let needed: [(&str, Option<PathBuf>, &str); 6] = [
            ("wine", which("wine"), "wine"),
            ("wineserver", which("wineserver"), "wine"),
            ("wineboot", which("wineboot"), "wine"),
            ("/usr/lib/wine/wine64", Some(PathBuf::from("/usr/lib/wine/wine64")), "wine64"),
            (MINGW_GCC, which(MINGW_GCC), "mingw-w64"),
            (MINGW_DLLTOOL, which(MINGW_DLLTOOL), "mingw-w64"),
        ];
        let mut missing: Vec<&str> = Vec::new();
        for (name, found, pkg) in &needed {
            match found {
                Some(p) if is_executable(p) => eprintln!("  found {name}: {}", p.display()),
                _ => {
                    eprintln!("  missing {name} (package {pkg})");
                    if !missing.contains(pkg) {
                        missing.push(pkg);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        // `wine` alone pulls wine64 on amd64, but asking for both is explicit and harmless.
        for pkg in ["wine", "wine64"] {
            if missing.contains(&"wine") && !missing.contains(&pkg) {
                missing.push(pkg);
            }
        }
        if which("apt-get").is_none() {
            bail!(
                "missing tools and no apt-get to install them: install the packages {} \
                 (or their equivalents) and re-run",
                missing.join(" ")
            );
        }
        let sudo: Vec<&str> = if is_root() {
            vec![]
        } else if which("sudo").is_none() {
            bail!("not root and no sudo: install the packages {} and re-run", missing.join(" "));
        } else if env::var_os("CI").is_some() || !io::stdin().is_terminal() {
            vec!["sudo", "-n"] // never wait for a password that nobody will type
        } else {
            vec!["sudo"]
        };
        let apt = |args: &[&str]| {
            let mut argv: Vec<&str> = sudo.clone();
            argv.extend(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            argv.extend(args);
            let (program, args) = argv.split_first().unwrap_or((&"apt-get", &[]));
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        check(&mut apt(&["update"]))?;
        let mut install = vec!["install", "-y"];
        install.extend(missing.iter().copied());
        check(&mut apt(&install))?;
        for (name, _, _) in &needed {
            let ok = if name.starts_with('/') { is_executable(Path::new(name)) } else { which(name).is_some() };
            if !ok {
                bail!("`{name}` still missing after apt-get install");
            }
        }
        Ok(())
    }

    fn ensure_rust(&self) -> Result {
        if which("rustup").is_some() {
            let targets = probe("rustup", &["target", "list", "--installed"]).unwrap_or_default();
            if targets.lines().any(|l| l.trim() == WIN_TARGET) {
                eprintln!("  found rust target {WIN_TARGET}");
            } else {
                check(Command::new("rustup").args(["target", "add", WIN_TARGET]))?;
            }
            let comps = probe("rustup", &["component", "list", "--installed"]).unwrap_or_default();
            for comp in ["clippy", "rustfmt"] {
                if comps.lines().any(|l| l.trim().starts_with(comp)) {
                    eprintln!("  found rust component {comp}");
                } else {
                    check(Command::new("rustup").args(["component", "add", comp]))?;
                }
            }
        } else {
            // No rustup (distribution Rust?): check, cannot install.
            let sysroot = probe("rustc", &["--print", "sysroot"]).unwrap_or_default();
            let lib = Path::new(sysroot.trim()).join("lib/rustlib").join(WIN_TARGET);
            if !lib.is_dir() {
                bail!("no rustup, and the standard library for {WIN_TARGET} is not in {}", lib.display());
            }
            eprintln!("  found rust target {WIN_TARGET} (no rustup): {}", lib.display());
        }
        Ok(())
    }

    fn ensure_shim_built(&self) -> Result {
        let src = self.shim_src();
        let (c, def) = (src.join("prng.c"), src.join("bcryptprimitives.def"));
        let lpc = self.root.join("compat/wine-lpc");
        let (lpc_c, lpc_h) = (lpc.join("lpc.c"), lpc.join("lpc.h"));
        let out = self.shim_out();
        if !newer_than(&[c.clone(), def.clone(), lpc_c.clone(), lpc_h.clone()], &out) {
            eprintln!("  found bcryptprimitives shim: {}", out.display());
            return Ok(());
        }
        fs::create_dir_all(self.wine_dir()).context(|| "create target/wine".into())?;
        let tmp = out.with_extension("dll.tmp");
        check(
            Command::new(MINGW_GCC)
                .args(["-shared", "-O2", "-Wall", "-Wextra", "-Werror", "-nostdlib", "-s"])
                .arg("-Wl,--entry,DllMainCRTStartup")
                .arg("-o")
                .arg(&tmp)
                .arg(&c)
                .arg(&lpc_c)
                .arg(&def)
                .args(["-ladvapi32", "-lkernel32"]),
        )?;
        fs::rename(&tmp, &out).context(|| format!("rename to {}", out.display()))?;
        Ok(())
    }

    /// Builds compat/wine-lpc's helper driver (the LPC implementation in
    /// winedevice.exe) and copies it to the prefix's system32\drivers, where
    /// the CLI's rig finds it (`rig::wine_lpc_helper`).
    fn ensure_lpc_helper(&self) -> Result {
        let src = self.root.join("compat/wine-lpc");
        let irp = self.root.join("compat/wine-irp");
        let irql = self.root.join("compat/wine-irql");
        let kapi = self.root.join("compat/wine-kapi");
        let verifier = self.root.join("compat/wine-verifier");
        let sources = [
            src.join("helper.c"),
            src.join("lpc.c"),
            irp.join("quarantine.c"),
            irql.join("track.c"),
            irql.join("hooks.c"),
            kapi.join("kapi.c"),
            verifier.join("host.c"),
            verifier.join("irp.c"),
            verifier.join("pool.c"),
            verifier.join("unload.c"),
        ];
        let headers = [
            src.join("lpc.h"),
            irp.join("quarantine.h"),
            irql.join("irql.h"),
            kapi.join("kapi.h"),
            verifier.join("verifier.h"),
            verifier.join("codes.h"),
        ];
        let inputs: Vec<PathBuf> = sources.iter().chain(&headers).cloned().collect();
        let out = self.wine_dir().join("ntcomm_lpc.sys");
        if newer_than(&inputs, &out) {
            let tmp = out.with_extension("sys.tmp");
            check(
                Command::new(MINGW_GCC)
                    .args(["-shared", "-O2", "-Wall", "-Wextra", "-Werror", "-nostdlib", "-s"])
                    .args(["-Wl,--subsystem,native", "-Wl,--entry,LpcHelperEntry", "-o"])
                    .arg(&tmp)
                    .args(&sources) // the headers are inputs for newer_than only
                    .args(["-lntoskrnl", "-lkernel32", "-ladvapi32", "-lntdll"]),
            )?;
            fs::rename(&tmp, &out).context(|| format!("rename to {}", out.display()))?;
        }
        install_file(&out, &self.prefix().join("drive_c/windows/system32/drivers/ntcomm_lpc.sys"))
    }

    /// Builds ntcomm.exe and copies it into the prefix's system32, where
    /// `ntcomm-rig driver ...` runs it (`wine ntcomm driver ...`).
    fn ensure_cli_installed(&self) -> Result {
        let mut c = self.cargo();
        c.args(["build", "--quiet", "--target", WIN_TARGET, "-p", "ntcomm", "--bin", "ntcomm"]);
        check(&mut c)?;
        install_file(&self.win_out(Profile::Debug).join("ntcomm.exe"), &self.prefix().join("drive_c/windows/system32/ntcomm.exe"))
    }

    fn ensure_prefix(&self) -> Result {
        let prefix = self.prefix();
        if prefix.join("system.reg").is_file() {
            eprintln!("  found Wine prefix: {}", prefix.display());
            let user_reg = fs::read_to_string(prefix.join("user.reg")).unwrap_or_default();
            if !user_reg.contains(NO_WINEDBG_REG) {
                // A prefix made before this setting existed. Goes through a running
                // wineserver if there is one (not killed: others may be using it).
                self.disable_winedbg(&prefix)?;
            }
            return Ok(());
        }
        if prefix.exists() {
            // A directory without system.reg is an interrupted or foreign attempt.
            eprintln!("  incomplete Wine prefix at {}: recreating", prefix.display());
            fs::remove_dir_all(&prefix).context(|| format!("remove {}", prefix.display()))?;
        }
        // Build it beside, then rename: an interrupted setup never leaves a half prefix
        // that later runs would take for a good one.
        let parent = prefix.parent().ok_or("the prefix has no parent directory")?;
        fs::create_dir_all(parent).context(|| format!("create {}", parent.display()))?;
        let tmp =
            parent.join(format!(".{}.tmp-{}", prefix.file_name().map_or("prefix".into(), |n| n.to_string_lossy()), std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).context(|| format!("remove {}", tmp.display()))?;
        }
        let t0 = Instant::now();
        check(self.wine_cmd("wineboot", &tmp).arg("--init"))?;
        self.disable_winedbg(&tmp)?;
        check(self.wine_cmd("wineserver", &tmp).arg("-w"))?;
        if !tmp.join("system.reg").is_file() {
            bail!("wineboot did not create {}", tmp.join("system.reg").display());
        }
        match fs::rename(&tmp, &prefix) {
            Ok(()) => {}
            Err(_) if prefix.join("system.reg").is_file() => {
                // Another setup finished first; use its prefix.
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => bail!("rename {} -> {}: {e}", tmp.display(), prefix.display()),
        }
        eprintln!("  created Wine prefix in {:.1} s: {}", t0.elapsed().as_secs_f64(), prefix.display());
        Ok(())
    }

    /// See `NO_WINEDBG_REG`.
    fn disable_winedbg(&self, prefix: &Path) -> Result {
        check(self.wine_cmd("wine", prefix).args([
            "reg",
            "add",
            r"HKCU\Software\Wine\DllOverrides",
            "/v",
            "winedbg.exe",
            "/t",
            "REG_SZ",
            "/d",
            "",
            "/f",
        ]))
    }

    fn ensure_shim_installed(&self) -> Result {
        let dest = self.prefix().join("drive_c/windows/system32/bcryptprimitives.dll");
        if fs::read(&dest).is_ok_and(|cur| contains(&cur, b"Wine builtin DLL") || contains(&cur, b"Wine placeholder DLL")) {
            // wineboot put a placeholder there: this Wine has its own bcryptprimitives
            // (Wine >= 9 ships ProcessPrng). Leave it alone.
            eprintln!("  this Wine has its own bcryptprimitives.dll: shim not installed");
            return Ok(());
        }
        install_file(&self.shim_out(), &dest)
    }

    /// The Filter Manager replacements present in this checkout.
    fn flt_components(&self) -> impl Iterator<Item = &(&'static str, &'static str, &'static str, &'static str)> + '_ {
        FLT_COMPONENTS.iter().filter(|(_, dir, _, _)| self.root.join(dir).join("Cargo.toml").is_file())
    }

    fn build_flt(&self, profile: Profile) -> Result {
        let mut c = self.cargo();
        c.args(["build", "--quiet", "--target", WIN_TARGET]);
        for (pkg, ..) in self.flt_components() {
            c.args(["-p", pkg]);
        }
        if profile == Profile::Release {
            c.arg("--release");
        }
        check(&mut c)
    }

    /// Copies the built fltmgr.sys/fltlib.dll into the prefix when they differ from
    /// what is there, and adds the fltmgr.sys DllOverride when it is missing. A
    /// winedevice.exe already running keeps the fltmgr.sys it loaded: restart the
    /// wineserver (`xtask test` does) for a new one to be used.
    fn install_flt(&self, profile: Profile) -> Result {
        let system32 = self.prefix().join("drive_c/windows/system32");
        for (_, _, file, dest) in self.flt_components() {
            install_file(&self.win_out(profile).join(file), &system32.join(dest))?;
        }
        let user_reg = fs::read_to_string(self.prefix().join("user.reg")).unwrap_or_default();
        if !user_reg.contains(FLTMGR_OVERRIDE_REG) && self.flt_components().any(|(pkg, ..)| *pkg == "wine-fltmgr") {
            check(self.wine_cmd("wine", &self.prefix()).args([
                "reg",
                "add",
                r"HKCU\Software\Wine\DllOverrides",
                "/v",
                "fltmgr.sys",
                "/t",
                "REG_SZ",
                "/d",
                "native,builtin",
                "/f",
            ]))?;
        }
        Ok(())
    }

    // ----- build -----------------------------------------------------------------------

    fn build(&self, profile: Profile) -> Result<PathBuf> {
        // The rig's runner (xtask/wine-runner.sh runs it), for the host.
        check(self.cargo().args(["build", "--quiet", "-p", "ntcomm-rig"]))?;
        let mut c = self.cargo();
        c.args(["build", "--target", WIN_TARGET, "-p", "ntcomm-demo", "-p", "ntcomm"]);
        for (pkg, ..) in self.flt_components() {
            c.args(["-p", pkg]);
        }
        if profile == Profile::Release {
            c.arg("--release");
        }
        check(&mut c)?;
        // ntcomm_build::driver() (the driver's build.rs) wrote the .sys.
        let sys = self.win_out(profile).join("ntcomm_demo.sys");
        self.install_flt(profile)?;
        let minimal = self.build_minimal(profile)?;
        check_driver_image(&minimal, Imports::Minimal)?;
        let example = self.build_example(profile)?;
        check_driver_image(&example, Imports::Kernel)?;
        // The small example drivers (drivers/examples).
        self.build_windows(profile, &SMALL_EXAMPLES)?;
        Ok(sys)
    }

    /// Builds `packages` for Windows in a cargo run of their own: Cargo unifies
    /// the features of a package across one run, so the minimal and example
    /// drivers built next to the demo would get the demo's ntcomm-km features
    /// (and their imports). ntcomm_build::driver() (each driver's build.rs)
    /// writes the .sys.
    fn build_windows(&self, profile: Profile, packages: &[&str]) -> Result {
        let mut c = self.cargo();
        c.args(["build", "--target", WIN_TARGET]);
        for pkg in packages {
            c.args(["-p", pkg]);
        }
        if profile == Profile::Release {
            c.arg("--release");
        }
        check(&mut c)
    }

    /// Builds drivers/ntcomm-example to ntcomm_example.sys (ntcomm-km features flt, ring).
    fn build_example(&self, profile: Profile) -> Result<PathBuf> {
        self.build_windows(profile, &["ntcomm-example"])?;
        Ok(self.win_out(profile).join("ntcomm_example.sys"))
    }

    /// Builds drivers/ntcomm-minimal to ntcomm_minimal.sys (no ntcomm-km feature).
    fn build_minimal(&self, profile: Profile) -> Result<PathBuf> {
        self.build_windows(profile, &["ntcomm-minimal"])?;
        Ok(self.win_out(profile).join("ntcomm_minimal.sys"))
    }

    /// Builds the plain C port client (compat/wine-fltlib/tests/fltclient.c,
    /// written only against <fltuser.h>) with mingw; the Wine test suite runs
    /// it against the reference driver.
    fn fltlib_c_client(&self) -> Result<PathBuf> {
        let out = self.wine_dir().join("fltlib-client");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let exe = out.join("fltclient.exe");
        check(
            Command::new(MINGW_GCC)
                .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&exe)
                .arg(self.root.join("compat/wine-fltlib/tests/fltclient.c"))
                .arg("-lfltlib"),
        )?;
        Ok(exe)
    }

    /// Builds compat/wine-fltmgr's C test minifilter and client with mingw and runs
    /// the client under Wine against the installed fltmgr.sys/fltlib.dll.
    fn fltmgr_c_test(&self) -> Result<i32> {
        let src = self.root.join("compat/wine-fltmgr");
        let tests = src.join("tests");
        let out = self.wine_dir().join("fltmgr-test");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let lib = out.join("libfltmgr.a");
        check(Command::new(MINGW_DLLTOOL).arg("-d").arg(src.join("fltmgr.def")).arg("-l").arg(&lib))?;
        let sys = out.join("testflt.sys");
        check(
            Command::new(MINGW_GCC)
                .args(["-O2", "-Wall", "-Werror", "-shared", "-nostdlib", "-nostartfiles"])
                .args(["-Wl,--subsystem,native", "-Wl,--entry,DriverEntry", "-I/usr/share/mingw-w64/include/ddk", "-I"])
                .arg(&tests)
                .arg("-o")
                .arg(&sys)
                .arg(tests.join("testflt.c"))
                .arg(&lib)
                .arg("-lntoskrnl"),
        )?;
        let exe = out.join("testclient.exe");
        check(
            Command::new(MINGW_GCC)
                .args(["-O2", "-Wall", "-Werror", "-I"])
                .arg(&tests)
                .arg("-o")
                .arg(&exe)
                .arg(tests.join("testclient.c"))
                .arg("-lfltlib"),
        )?;
        let mut first_failure = status(self.wine_cmd("wine", &self.prefix()).arg(&exe).arg(windows_path(&sys)))?;
        // A minifilter with only a FilterUnloadCallback, stopped as a service three times;
        // one importing 35 more Filter Manager routines, checked against the documented answers.
        for (driver, client) in [("unloadflt", "unloadtest"), ("surfaceflt", "surfacetest")] {
            let sys = out.join(format!("{driver}.sys"));
            check(
                Command::new(MINGW_GCC)
                    .args(["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-nostdlib", "-nostartfiles"])
                    .args(["-Wl,--subsystem,native", "-Wl,--entry,DriverEntry", "-I/usr/share/mingw-w64/include/ddk", "-I"])
                    .arg(&tests)
                    .arg("-o")
                    .arg(&sys)
                    .arg(tests.join(format!("{driver}.c")))
                    .arg(&lib)
                    .arg("-lntoskrnl"),
            )?;
            let exe = out.join(format!("{client}.exe"));
            check(
                Command::new(MINGW_GCC)
                    .args(["-O2", "-Wall", "-Wextra", "-Werror", "-I"])
                    .arg(&tests)
                    .arg("-o")
                    .arg(&exe)
                    .arg(tests.join(format!("{client}.c")))
                    .arg("-lfltlib"),
            )?;
            let code = status(self.wine_cmd("wine", &self.prefix()).arg(&exe).arg(windows_path(&sys)))?;
            if first_failure == 0 {
                first_failure = code;
            }
        }
        Ok(first_failure)
    }

    /// Builds compat/wine-lpc's C check (server and clients in one process,
    /// written against the ntdll prototypes only) and runs it under Wine.
    fn lpc_c_test(&self) -> Result<i32> {
        let out = self.wine_dir().join("lpc-test");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let exe = out.join("lpctest.exe");
        check(
            Command::new(MINGW_GCC)
                .args(["-O2", "-Wall", "-Werror", "-o"])
                .arg(&exe)
                .arg(self.root.join("compat/wine-lpc/tests/lpctest.c")),
        )?;
        status(self.wine_cmd("wine", &self.prefix()).arg(&exe))
    }

    /// Builds compat/wine-kapi's C test driver and client with mingw and runs the
    /// client under Wine: the driver calls the kernel routines the helper supplies.
    fn kapi_c_test(&self) -> Result<i32> {
        let tests = self.root.join("compat/wine-kapi/tests");
        let out = self.wine_dir().join("kapi-test");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let lib = out.join("libntoskrnl-extra.a");
        check(Command::new(MINGW_DLLTOOL).arg("-d").arg(tests.join("ntoskrnl-extra.def")).arg("-l").arg(&lib))?;
        let sys = out.join("kapitest.sys");
        build_c_driver(&tests, &[&tests.join("kapitest.c"), &lib], &sys)?;
        let exe = out.join("kapiclient.exe");
        build_c_program(&tests, &tests.join("kapiclient.c"), &[], &exe)?;
        status(self.wine_cmd("wine", &self.prefix()).arg(&exe).arg(windows_path(&sys)))
    }

    /// Builds compat/wine-irql's test driver (one IOCTL per IRQL rule, each broken
    /// once) with mingw; tools/ntcomm/tests/wine_irql.rs installs and pokes it.
    fn irql_test_driver(&self) -> Result<PathBuf> {
        let tests = self.root.join("compat/wine-irql/tests");
        let out = self.wine_dir().join("irql-test");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let sys = out.join("irqltest.sys");
        build_c_driver(&tests, &[&tests.join("irqltest.c")], &sys)?;
        Ok(sys)
    }

    /// Builds compat/wine-verifier's test driver (one IOCTL per verifier rule, each
    /// broken once, and correct twins); tools/ntcomm/tests/wine_verifier.rs runs it.
    fn verifier_test_driver(&self) -> Result<PathBuf> {
        let tests = self.root.join("compat/wine-verifier/tests");
        let out = self.wine_dir().join("verifier-test");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let sys = out.join("vftest.sys");
        build_c_driver(&tests, &[&tests.join("vftest.c")], &sys)?;
        Ok(sys)
    }

    /// The IRQL tracker's findings file (compat/wine-irql/README.md) in the prefix.
    fn findings_file(&self) -> PathBuf {
        self.prefix().join("drive_c/windows/temp").join(FINDINGS_FILE)
    }

    /// Prints the run's verifier findings (`ntcomm-rig findings` with this
    /// repository's allow list, which allows only the two test corpora) and
    /// returns its exit code: 1 if one is not allowed.
    fn check_findings(&self) -> Result<i32> {
        let mut c = self.cargo();
        c.args(["run", "--quiet", "-p", "ntcomm-rig", "--", "--prefix"]).arg(self.prefix());
        c.args(["findings", "--allow"]).arg(self.root.join("ntcomm-rig-allow.txt"));
        status(&mut c)
    }

    /// Builds the C baseline (baseline/c) with mingw at -O2 whatever the
    /// profile: the driver `ntcomm_c.sys` and its client
    /// `ntcomm_c_client.exe`, side by side in target/c-baseline (the client
    /// finds the driver there). Returns (driver, client).
    fn c_baseline(&self) -> Result<(PathBuf, PathBuf)> {
        let src = self.root.join("baseline/c");
        let out = self.root.join("target/c-baseline");
        fs::create_dir_all(&out).context(|| format!("create {}", out.display()))?;
        let sys = out.join("ntcomm_c.sys");
        build_c_driver(&src, &[&src.join("driver.c")], &sys)?;
        let exe = out.join("ntcomm_c_client.exe");
        build_c_program(&src, &src.join("client.c"), &[], &exe)?;
        Ok((sys, exe))
    }

    /// Builds the C baseline and runs its client's self-test under Wine:
    /// installs and starts the driver (service NtCommC), checks the echo in
    /// all four methods and the read/write queue, stops the driver.
    /// The driver is installed and started through the rig first (`ntcomm driver`,
    /// group NtComm), so that it shares the helper's driver host and runs in
    /// verifier mode; the client finds its service running.
    fn c_baseline_test(&self) -> Result<i32> {
        let (sys, exe) = self.c_baseline()?;
        check_driver_image(&sys, Imports::Kernel)?;
        let ntcomm = |args: &[&str]| self.wine_cmd("wine", &self.prefix()).arg("ntcomm").arg("driver").args(args).status();
        let _ = ntcomm(&["uninstall", "NtCommC"]); // another checkout's, or none
        let image = windows_path(&sys);
        let code = status(self.wine_cmd("wine", &self.prefix()).args(["ntcomm", "driver", "install", "NtCommC"]).arg(&image))?;
        if code != 0 {
            return Ok(code);
        }
        let code = status(self.wine_cmd("wine", &self.prefix()).args(["ntcomm", "driver", "start", "NtCommC"]))?;
        if code != 0 {
            return Ok(code);
        }
        let code = status(self.wine_cmd("wine", &self.prefix()).arg(&exe).arg("--driver").arg(image).arg("test"))?;
        // As the client's own bench makes it (no group), for `cargo xtask bench`.
        let _ = ntcomm(&["uninstall", "NtCommC"]);
        Ok(code)
    }

    // ----- test ------------------------------------------------------------------------

    fn test(&self, profile: Profile, extra: &[String]) -> Result<ExitCode> {
        self.setup()?;
        let mut failed: Vec<String> = Vec::new();
        let mut step = |name: &str, r: Result<i32>| match r {
            Ok(0) => eprintln!("xtask test: {name}: ok"),
            Ok(code) => {
                eprintln!("xtask test: {name}: FAILED (exit code {code})");
                failed.push(name.to_owned());
            }
            Err(e) => {
                eprintln!("xtask test: {name}: FAILED: {e:?}");
                failed.push(name.to_owned());
            }
        };

        // IRQL findings (compat/wine-irql) of this run only.
        self.kill_wineserver();
        let _ = fs::remove_file(self.findings_file());

        // Keep going after a failure: one run should report every broken group.
        // But not under Wine: a failed build leaves the previous images in place,
        // and tests of those would report on code that is not the code checked out.
        let (sys, built) = match self.build(profile) {
            Ok(sys) => {
                step("build", Ok(0));
                (sys, true)
            }
            Err(e) => {
                step("build", Err(e));
                (self.win_out(profile).join("ntcomm_demo.sys"), false)
            }
        };
        let release: &[&str] = if profile == Profile::Release { &["--release"] } else { &[] };

        // The image must be a native-subsystem PE importing only from Windows'
        // kernel modules (Wine would accept more).
        step("driver image (native subsystem, ntoskrnl/hal/fltmgr imports only)", check_driver_image(&sys, Imports::Kernel).map(|()| 0));
        let minimal = self.win_out(profile).join("ntcomm_minimal.sys");
        step(
            "minimal driver image (ntoskrnl only, MINIMAL_IMPORTS, no fltmgr.sys)",
            check_driver_image(&minimal, Imports::Minimal).map(|()| 0),
        );
        let example = self.win_out(profile).join("ntcomm_example.sys");
        step("example driver image (native subsystem, kernel imports only)", check_driver_image(&example, Imports::Kernel).map(|()| 0));

        // (a) host
        let mut c = self.cargo();
        c.args(["test", "-p", "ntcomm-proto", "-p", "ntcomm-demo-proto"]).args(release).args(extra);
        step("host tests (ntcomm-proto, ntcomm-demo-proto)", status(&mut c));

        // The build helper, on driver crates outside the workspace: a correct one
        // gets its .sys; a missing build.rs, panic = "unwind" or a user-mode import
        // fails the build with what to change.
        let mut c = self.cargo();
        c.args(["test", "-p", "ntcomm-build"]);
        step("build helper (ntcomm-build, driver crates outside the workspace)", status(&mut c));

        // (a'') typed handlers: one whose types disagree with its declaration
        // must not compile (trybuild fixtures, type-checked on the host).
        let mut c = self.cargo();
        c.args(["test", "-p", "ntcomm-km", "--test", "compile_fail"]);
        step("compile-fail tests (typed handlers, ntcomm-km)", status(&mut c));

        // (a') the ring's index and sleep/wake protocol, model-checked with loom
        // (its own target dir: --cfg loom changes every crate's build).
        let mut c = self.cargo();
        c.args(["test", "-p", "ntcomm-proto", "--release", "--test", "loom_ring"])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", self.root.join("target").join("loom"));
        step("loom model check (ring)", status(&mut c));

        if !built {
            eprintln!("xtask test: the Wine steps are skipped: the build failed, and they would run the previous images");
        } else {
            // (b) Windows, under Wine through the target runner. A clean wineserver before and
            // after: a winedevice.exe crashed by an earlier run would fail every later test.
            self.kill_wineserver();
            let mut c = self.cargo();
            c.args(["test", "--target", WIN_TARGET, "-p", "ntcomm-um", "-p", "ntcomm", "-p", "wine-fltlib"])
                .args(release)
                .args(extra)
                .env("NTCOMM_DRIVER", windows_path(&sys))
                .env("NTCOMM_MINIMAL_DRIVER", windows_path(&minimal))
                .env("NTCOMM_EXAMPLE_DRIVER", windows_path(&example))
                .env("NTCOMM_EXAMPLES_DIR", windows_path(&self.win_out(profile)));
            match self.fltlib_c_client() {
                Ok(exe) => {
                    c.env("NTCOMM_FLT_C_CLIENT", windows_path(&exe));
                }
                Err(e) => step("build the C port client", Err(e)),
            }
            match self.c_baseline() {
                Ok((_, client)) => {
                    c.env("NTCOMM_C_BASELINE", windows_path(&client));
                }
                Err(e) => step("build the C baseline", Err(e)),
            }
            match self.irql_test_driver() {
                Ok(sys) => {
                    c.env("NTCOMM_IRQL_TEST_DRIVER", windows_path(&sys));
                }
                Err(e) => step("build the IRQL test driver", Err(e)),
            }
            match self.verifier_test_driver() {
                Ok(sys) => {
                    c.env("NTCOMM_VERIFIER_TEST_DRIVER", windows_path(&sys));
                }
                Err(e) => step("build the verifier test driver", Err(e)),
            }
            step("Windows tests under Wine (ntcomm-um, ntcomm, wine-fltlib)", status(&mut c));
            self.kill_wineserver();

            // (b'') the rig as a user has it: ntcomm-rig's commands on a C driver and
            // client (session, driver service, runner, DbgPrint, a driver-host crash), and
            // a project made by `ntcomm-rig new` outside the workspace, tested by `ntcomm-rig test`.
            let mut c = self.cargo();
            c.args(["test", "-p", "ntcomm-rig"]).env("NTCOMM_RIG_TEST_PREFIX", self.prefix());
            step("ntcomm-rig: a C driver and client; the template project", status(&mut c));
            self.kill_wineserver();

            // (b') the Wine fltmgr.sys on its own: a C minifilter and a <fltuser.h> client.
            if self.root.join("compat/wine-fltmgr/Cargo.toml").is_file() {
                step("Wine fltmgr.sys: C minifilters + fltuser.h clients (ports, service stop, surface)", self.fltmgr_c_test());
                self.kill_wineserver();
            }

            // (b'') the Wine LPC on its own: a C server and C clients in one process.
            step("Wine LPC: C server + clients (compat/wine-lpc)", self.lpc_c_test());
            self.kill_wineserver();

            // (b-2) kernel routines Wine lacks, supplied by the helper: a C driver and client.
            step("Wine kernel routines: C driver + client (compat/wine-kapi)", self.kapi_c_test());
            self.kill_wineserver();

            // (b-4) the fault suite at its CI size (`ntcomm faults` defaults; the
            // full size of docs/RELIABILITY.md is `cargo xtask faults -- --full`).
            let exe = self.win_out(profile).join("ntcomm.exe");
            let mut c = Command::new(self.runner());
            c.arg(&exe).args(["faults", "--driver"]).arg(windows_path(&sys)).env("NTCOMM_WINE_NO_SETUP", "1");
            step("fault suite, CI size (ntcomm faults)", status(&mut c));
            self.kill_wineserver();

            // (b-3) the C baseline of the benchmark (its driver and client).
            step("C baseline: driver + client test (baseline/c)", self.c_baseline_test());
            self.kill_wineserver();

            // (b-5) every driver above ran in verifier mode (docs/VERIFIER.md): a finding
            // not in ntcomm-rig-allow.txt fails the run, unless NTCOMM_IRQL_FINDINGS=report
            // says only to print them.
            let fatal = env::var("NTCOMM_IRQL_FINDINGS").map_or(true, |v| v != "report");
            let name = format!("verifier findings ({})", self.findings_file().display());
            step(&name, self.check_findings().map(|code| if fatal { code } else { 0 }));
        }

        // (c) lints ([workspace.lints]) of every package, for the target it runs on:
        // the Windows packages (kernel and user mode) for x86_64-pc-windows-gnu, the
        // minimal and example drivers each in a run of its own (their own ntcomm-km
        // features, see `build_minimal`), the host packages on the host. The no_std crates and
        // wine-fltlib (a DLL with host tests) go through both.
        let runs: [(&str, Option<&str>, &[&str]); 5] = [
            ("Windows", Some(WIN_TARGET), &WIN_PACKAGES),
            ("minimal driver", Some(WIN_TARGET), &["ntcomm-minimal"]),
            ("example driver", Some(WIN_TARGET), &["ntcomm-example"]),
            ("small example drivers", Some(WIN_TARGET), &SMALL_EXAMPLES),
            ("host", None, &HOST_PACKAGES),
        ];
        for (what, target, packages) in runs {
            let mut c = self.cargo();
            c.arg("clippy");
            if let Some(t) = target {
                c.args(["--target", t]);
            }
            for p in packages {
                c.args(["-p", p]);
            }
            c.args(release).args(["--", "-D", "warnings"]);
            step(&format!("clippy, {what} ({})", packages.join(", ")), status(&mut c));
        }

        // (d) formatting (rustfmt.toml), checked, not applied.
        let mut c = self.cargo();
        c.args(["fmt", "--all", "--", "--check"]);
        step("formatting (cargo fmt --all -- --check)", status(&mut c));

        if failed.is_empty() {
            eprintln!("xtask test: all passed");
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("xtask test: FAILED: {}", failed.join("; "));
            Ok(ExitCode::FAILURE)
        }
    }

    // ----- Wine ------------------------------------------------------------------------

    fn kill_wineserver(&self) {
        let prefix = self.prefix();
        // Exit codes ignored: "no server running" is the usual answer.
        let _ = status(self.wine_cmd("wineserver", &prefix).arg("-k"));
        let _ = status(self.wine_cmd("wineserver", &prefix).arg("-w"));
    }

    fn run_in_wine(&self, args: &[OsString]) -> Result<ExitCode> {
        let mut c = Command::new(self.runner());
        c.args(args).env("NTCOMM_WINE_NO_SETUP", "1");
        Ok(exit_code(status(&mut c)?))
    }
}

/// Copies `src` to `dest` unless `dest` already holds the same bytes, through
/// a temporary file beside `dest` so a reader never sees half a file.
fn install_file(src: &Path, dest: &Path) -> Result {
    let built = fs::read(src).context(|| format!("read {}", src.display()))?;
    if fs::read(dest).is_ok_and(|cur| cur == built) {
        eprintln!("  found installed: {}", dest.display());
        return Ok(());
    }
    eprintln!("$ cp {} {}", src.display(), dest.display());
    let tmp = dest.with_extension("tmp");
    fs::write(&tmp, &built).context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, dest).context(|| format!("rename to {}", dest.display()))
}

/// Builds a C WDM driver with mingw-w64 against its DDK headers (and
/// `include`): `inputs` (sources, import libraries) linked with ntoskrnl.
fn build_c_driver(include: &Path, inputs: &[&Path], out: &Path) -> Result {
    check(
        Command::new(MINGW_GCC)
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-nostdlib", "-nostartfiles"])
            .args(["-Wl,--subsystem,native", "-Wl,--entry,DriverEntry", "-I/usr/share/mingw-w64/include/ddk", "-I"])
            .arg(include)
            .arg("-o")
            .arg(out)
            .args(inputs)
            .arg("-lntoskrnl"),
    )
}

/// Builds a C user-mode program with mingw-w64 (headers from `include`).
fn build_c_program(include: &Path, source: &Path, libs: &[&str], out: &Path) -> Result {
    check(Command::new(MINGW_GCC).args(["-O2", "-Wall", "-Wextra", "-Werror", "-I"]).arg(include).arg("-o").arg(out).arg(source).args(libs))
}

/// What a driver image may import.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Imports {
    /// Anything from Windows' kernel modules ntoskrnl.exe, hal.dll and fltmgr.sys
    /// (the Filter Manager, which minifilters link to).
    Kernel,
    /// The minimal driver: only ntoskrnl.exe, and only [`MINIMAL_IMPORTS`].
    Minimal,
}

/// Reads the PE headers with mingw's objdump and refuses a driver image that
/// is not native-subsystem or imports more than `allowed` says.
fn check_driver_image(sys: &Path, allowed: Imports) -> Result {
    let mut c = Command::new("x86_64-w64-mingw32-objdump");
    c.arg("-p").arg(sys);
    echo(&c);
    let out = c.output().context(|| format!("objdump -p {}", sys.display()))?;
    if !out.status.success() {
        bail!("objdump -p {} failed: {}", sys.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.lines().any(|l| l.starts_with("Subsystem") && l.contains("(NT native)")) {
        return Err(format!("{} is not a native-subsystem image", sys.display()).into());
    }
    let imports = parse_imports(&text);
    let dlls: Vec<&str> = imports.iter().map(|(d, _)| d.as_str()).collect();
    let kernel: &[&str] = match allowed {
        Imports::Kernel => &["ntoskrnl.exe", "hal.dll", "fltmgr.sys"],
        Imports::Minimal => &["ntoskrnl.exe"],
    };
    let foreign: Vec<&&str> = dlls.iter().filter(|d| !kernel.contains(d)).collect();
    if dlls.is_empty() || !foreign.is_empty() {
        bail!("{} imports {:?}; only {:?} are allowed", sys.display(), dlls, kernel);
    }
    let count: usize = imports.iter().map(|(_, f)| f.len()).sum();
    if allowed == Imports::Minimal {
        let extra: Vec<&String> = imports.iter().flat_map(|(_, f)| f).filter(|f| !MINIMAL_IMPORTS.contains(&f.as_str())).collect();
        if !extra.is_empty() {
            bail!("{} imports {extra:?}, which are not in xtask's MINIMAL_IMPORTS", sys.display());
        }
    }
    let per_dll: Vec<String> = imports.iter().map(|(d, f)| format!("{d}: {}", f.len())).collect();
    eprintln!("xtask: {} imports {count} functions ({})", sys.display(), per_dll.join(", "));
    Ok(())
}

/// The import table in `objdump -p` output: (DLL name lowercased, function names).
fn parse_imports(objdump: &str) -> Vec<(String, Vec<String>)> {
    let mut imports: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_dll = false;
    for line in objdump.lines() {
        if let Some(d) = line.trim().strip_prefix("DLL Name:") {
            imports.push((d.trim().to_ascii_lowercase(), Vec::new()));
            in_dll = true;
        } else if line.trim().is_empty() {
            in_dll = false;
        } else if in_dll {
            // "\tvma\t hint  Name": a hex address, a decimal hint, the name.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let (Some(last), [vma, hint, name]) = (imports.last_mut(), fields.as_slice()) {
                if u64::from_str_radix(vma, 16).is_ok() && hint.parse::<u32>().is_ok() {
                    last.1.push((*name).to_owned());
                }
            }
        }
    }
    imports
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
