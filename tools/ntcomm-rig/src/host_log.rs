//! What the session log says about the drivers: their `DbgPrint` lines, the
//! modules loaded (with their bases), and unhandled exceptions in a driver
//! host, named by module and offset.
//!
//! The formats are Wine 8's: `tid:warn:debugstr:vDbgPrintExWithPrefix
//! 00000000:00000001: text` for DbgPrint, `tid:trace:loaddll:build_module
//! Loaded L"C:\\path\\x.sys" at 0000000140000000: native` for a module, and
//! `wine: Unhandled page fault on write access to 0000000000000010 at
//! address 00000001D29B10E9 (thread 01e0), starting debugger...` for a crash.

/// A module a process loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Its Windows path, as Wine printed it (one backslash per separator).
    pub path: String,
    /// Its load address.
    pub base: u64,
}

impl Module {
    /// The file name (`rigdrv.sys`).
    pub fn name(&self) -> &str {
        self.path.rsplit('\\').next().unwrap_or(&self.path)
    }
}

/// An unhandled exception in a system process (a driver host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// Wine's description: `page fault on write access to 0000000000000010`.
    pub what: String,
    /// The faulting instruction's address.
    pub address: u64,
    /// The whole line.
    pub line: String,
}

/// The events of a stretch of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostEvents {
    /// `DbgPrint` output, one entry a line, without Wine's prefix.
    pub dbgprint: Vec<String>,
    /// Modules loaded, in order.
    pub modules: Vec<Module>,
    /// Unhandled exceptions.
    pub crashes: Vec<Crash>,
}

/// Reads the events of `log`.
pub fn parse(log: &str) -> HostEvents {
    let mut events = HostEvents::default();
    for line in log.lines() {
        if let Some(text) = dbgprint(line) {
            events.dbgprint.push(text.to_owned());
        } else if let Some(module) = module(line) {
            events.modules.push(module);
        } else if let Some(crash) = crash(line) {
            events.crashes.push(crash);
        }
    }
    events
}

fn dbgprint(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once(":debugstr:")?;
    let (_, text) = rest.split_once(' ')?;
    // "00000000:00000001: " is the component id and level of DbgPrintEx.
    let text = match text.split_once(": ") {
        Some((ids, t)) if ids.len() == 17 && ids.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') => t,
        _ => text,
    };
    Some(text.trim_end())
}

fn module(line: &str) -> Option<Module> {
    let (_, rest) = line.split_once(":loaddll:")?;
    let (_, rest) = rest.split_once("Loaded L\"")?;
    let (path, rest) = rest.split_once("\" at ")?;
    let base = u64::from_str_radix(rest.split(':').next()?.trim(), 16).ok()?;
    Some(Module { path: path.replace("\\\\", "\\"), base })
}

fn crash(line: &str) -> Option<Crash> {
    let rest = line.strip_prefix("wine: Unhandled ")?;
    let (what, rest) = rest.split_once(" at address ")?;
    let address = u64::from_str_radix(rest.split_whitespace().next()?, 16).ok()?;
    Some(Crash { what: what.to_owned(), address, line: line.to_owned() })
}

/// The module holding `address`: the one with the highest base at or below
/// it among `modules` whose size (from `size_of`, the image's SizeOfImage)
/// covers it; with no size known, the nearest base below.
pub fn module_at(modules: &[Module], address: u64, size_of: impl Fn(&Module) -> Option<u64>) -> Option<&Module> {
    modules
        .iter()
        .rev()
        .filter(|m| m.base <= address)
        .filter(|m| !matches!(size_of(m), Some(size) if address - m.base >= size))
        .max_by_key(|m| m.base)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    const LOG: &str = r#"0134:trace:loaddll:build_module Loaded L"C:\\windows\\system32\\drivers\\ntcomm_lpc.sys" at 000000034CD60000: native
ntcomm-irql: IRQL tracking on
01dc:trace:loaddll:build_module Loaded L"Z:\\tmp\\rigc\\rigdrv.sys" at 00000001D29B0000: native
01dc:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: rigdrv: loaded
01e0:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: rigdrv: ping 41
wine: Unhandled page fault on write access to 0000000000000010 at address 00000001D29B10E9 (thread 01e0), starting debugger...
01e0:err:seh:start_debugger Couldn't start debugger L"winedbg --auto 460 96" (126)
"#;

    #[test]
    fn reads_dbgprint_modules_and_crashes() {
        let e = parse(LOG);
        assert_eq!(e.dbgprint, ["rigdrv: loaded", "rigdrv: ping 41"]);
        assert_eq!(e.modules.len(), 2);
        assert_eq!(e.modules[1], Module { path: r"Z:\tmp\rigc\rigdrv.sys".into(), base: 0x1_D29B_0000 });
        assert_eq!(e.modules[1].name(), "rigdrv.sys");
        assert_eq!(e.crashes.len(), 1);
        assert_eq!(e.crashes[0].address, 0x1_D29B_10E9);
        assert_eq!(e.crashes[0].what, "page fault on write access to 0000000000000010");
    }

    #[test]
    fn a_crash_is_named_by_the_module_whose_image_covers_it() {
        let e = parse(LOG);
        let m = module_at(&e.modules, 0x1_D29B_10E9, |m| Some(if m.name() == "rigdrv.sys" { 0x8000 } else { 0x10_0000 })).unwrap();
        assert_eq!(m.name(), "rigdrv.sys");
        // Past the end of every image: no module.
        assert!(module_at(&e.modules, 0x1_D29B_9000, |_| Some(0x8000)).is_none());
        // Without sizes: the nearest base below.
        assert_eq!(module_at(&e.modules, 0x3_4CD6_0010, |_| None).unwrap().name(), "ntcomm_lpc.sys");
    }
}
