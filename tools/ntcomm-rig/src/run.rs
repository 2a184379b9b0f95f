//! Running a Windows program in the session: the cargo target runner.
//! Afterwards the driver hosts' `DbgPrint` lines of the run are copied to
//! stderr, a crash of a driver host fails the run, naming the module and
//! offset of the faulting instruction, and so does a verifier finding the
//! allow list does not allow ([`crate::findings`]).

use std::ffi::OsString;
use std::fs;

use crate::findings::{self, Allow};
use crate::host_log::{self, Module};
use crate::prefix::Prefix;
use crate::session::{exit_code, Session};

/// DbgPrint lines of one run copied to stderr, at most (the rest stay in the log).
const DBGPRINT_LINES: usize = 200;

/// The exit code of a run whose program succeeded while a driver host crashed.
pub const HOST_CRASHED: i32 = 101;

/// The exit code of a run whose program succeeded while a driver broke a rule
/// the verifier checks (and the allow list does not allow it).
pub const FINDINGS: i32 = 102;

/// Runs `program` with `args` under Wine in `prefix`'s session (started if
/// none runs); returns the exit code to exit with.
///
/// # Errors
/// When the prefix is not ready, Wine cannot be run, or the allow list
/// ([`Allow::find`]) cannot be read.
pub fn run(prefix: &Prefix, program: &OsString, args: &[OsString]) -> Result<i32, String> {
    let allow = Allow::find(None)?;
    let session = Session::new(prefix);
    if session.ensure()? {
        eprintln!(
            "ntcomm-rig: started a Wine session in {} (drivers stay loaded; end it with `ntcomm-rig session stop`)",
            prefix.path().display()
        );
    }
    let mark = session.log_mark();
    let findings_mark = findings::mark(prefix);
    let code = exit_code(prefix.command("wine").arg(program).args(args))?;
    let events = host_log::parse(&session.log_since(mark));
    for line in events.dbgprint.iter().take(DBGPRINT_LINES) {
        eprintln!("[DbgPrint] {line}");
    }
    if events.dbgprint.len() > DBGPRINT_LINES {
        eprintln!("[DbgPrint] ... {} more lines in {}", events.dbgprint.len() - DBGPRINT_LINES, session.log_path().display());
    }
    let (new, _) = findings::read_since(prefix, findings_mark)?;
    let failing = findings::report(&new, &allow);
    let code = if failing > 0 && code == 0 {
        eprintln!(
            "ntcomm-rig: {failing} verifier finding(s) in this run (docs/VERIFIER.md; allow deliberate ones in {})",
            findings::ALLOW_FILE
        );
        FINDINGS
    } else {
        code
    };
    if events.crashes.is_empty() {
        return Ok(code);
    }
    let modules = host_log::parse(&session.log()).modules;
    for crash in &events.crashes {
        let place = match host_log::module_at(&modules, crash.address, |m| image_size(prefix, m)) {
            Some(m) => format!("{}+{:#x} (address {:#x}, {})", m.name(), crash.address - m.base, crash.address, m.path),
            None => format!("{:#x}, in no module the session loaded", crash.address),
        };
        eprintln!("ntcomm-rig: a driver host crashed: {} at {place}", crash.what);
    }
    eprintln!(
        "ntcomm-rig: the crashed host's drivers are gone and their services cannot be controlled: \
         `ntcomm-rig session start` begins a fresh session; the full log is {}",
        session.log_path().display()
    );
    Ok(if code == 0 { HOST_CRASHED } else { code })
}

/// `SizeOfImage` of a loaded module's file (the same offset, 56, in the
/// optional headers of PE32 and PE32+).
fn image_size(prefix: &Prefix, module: &Module) -> Option<u64> {
    let bytes = fs::read(prefix.unix_path(&module.path)?).ok()?;
    let field = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    let pe = usize::try_from(field(0x3c)?).ok()?;
    // The signature (4 bytes) and the file header (20) precede the optional header.
    field(pe + 24 + 56).map(u64::from)
}
