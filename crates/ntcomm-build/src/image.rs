//! The checks of a linked driver image: what Windows would refuse at load
//! time, caught at build time with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use object::pe::{IMAGE_FILE_MACHINE_AMD64, IMAGE_SUBSYSTEM_NATIVE};
use object::read::archive::ArchiveFile;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::{NameOrOrdinal, Object};

/// Checks `image`: an x64 native-subsystem image with an entry point, whose
/// imports come only from `modules`, each function one its module exports
/// (by the import library found in `lib_dirs`, mingw-w64's list of what
/// Windows exports).
pub(crate) fn check(image: &Path, modules: &[String], lib_dirs: &[PathBuf]) -> Result<(), String> {
    let data = fs::read(image).map_err(|e| format!("read: {e}"))?;
    let pe = PeFile64::parse(&*data).map_err(|e| format!("not a PE32+ image: {e}"))?;
    let headers = pe.nt_headers();
    if headers.file_header.machine.get(object::LittleEndian) != IMAGE_FILE_MACHINE_AMD64 {
        return Err("not an x64 image".into());
    }
    let optional = headers.optional_header();
    if optional.subsystem() != IMAGE_SUBSYSTEM_NATIVE {
        return Err(format!(
            "subsystem {} is not native (1): Windows would refuse to start it as a driver (Win32 error 731)",
            optional.subsystem()
        ));
    }
    if optional.address_of_entry_point() == 0 {
        return Err("no entry point: define DriverEntry with `ntcomm_km::driver_entry!`".into());
    }
    let imports = imports_by_module(&pe)?;
    if imports.is_empty() {
        return Err("imports nothing: a driver that does anything calls the kernel; was ntcomm-km linked?".into());
    }
    let mut problems = Vec::new();
    for (module, functions) in &imports {
        if !modules.iter().any(|m| m.eq_ignore_ascii_case(module)) {
            problems.push(format!(
                "imports {} from {module}, which is not a kernel module (allowed: {}). A driver can only import from \
                 kernel-mode modules; this is usually a dependency built with std or a C runtime: make every crate of \
                 the driver #![no_std] (`cargo tree -e normal` shows which pulls it in), or allow a kernel module with \
                 ntcomm_build::Driver::allow_module",
                list(functions),
                modules.join(", ")
            ));
            continue;
        }
        let Some(exports) = library_exports(module, lib_dirs)? else { continue };
        let missing: BTreeSet<&String> = functions.iter().filter(|f| !exports.contains(f.as_str())).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "imports {} from {module}, which its import library does not list as exported: Windows would refuse \
                 to load the driver (STATUS_PROCEDURE_NOT_FOUND)",
                list(missing)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The import table: module (lowercased) -> function names (`#n` for an
/// ordinal).
fn imports_by_module(pe: &PeFile64<'_>) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut by_module: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for import in pe.imports().map_err(|e| format!("unreadable import table: {e}"))? {
        let import = import.map_err(|e| format!("unreadable import: {e}"))?;
        let module = String::from_utf8_lossy(import.library()).to_ascii_lowercase();
        let name = match import.name() {
            NameOrOrdinal::Name(name) => String::from_utf8_lossy(name).into_owned(),
            NameOrOrdinal::Ordinal(n) => format!("#{n}"),
        };
        by_module.entry(module).or_default().insert(name);
    }
    Ok(by_module)
}

/// The names `lib<module stem>.a` in `lib_dirs` exports (its `__imp_`
/// symbols), or `None` when no such import library is on the link path.
fn library_exports(module: &str, lib_dirs: &[PathBuf]) -> Result<Option<BTreeSet<String>>, String> {
    let stem = module.rsplit_once('.').map_or(module, |(s, _)| s);
    let Some(lib) = lib_dirs.iter().map(|d| d.join(format!("lib{stem}.a"))).find(|p| p.is_file()) else {
        return Ok(None);
    };
    let data = fs::read(&lib).map_err(|e| format!("read {}: {e}", lib.display()))?;
    let archive = ArchiveFile::parse(&*data).map_err(|e| format!("{}: not an archive: {e}", lib.display()))?;
    let symbols = archive.symbols().map_err(|e| format!("{}: unreadable symbol map: {e}", lib.display()))?;
    let mut names = BTreeSet::new();
    for symbol in symbols.into_iter().flatten() {
        let symbol = symbol.map_err(|e| format!("{}: {e}", lib.display()))?;
        if let Some(name) = symbol.name().strip_prefix(b"__imp_") {
            names.insert(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(Some(names))
}

fn list<'a>(functions: impl IntoIterator<Item = &'a String>) -> String {
    functions.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}
