//! The link side: this build script's executable, run by `gcc` in place of
//! `ld` (see `script::write_specs`). Runs the real `ld`, checks the image,
//! and writes the `.sys`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image;

/// The first argument that selects link mode.
const LINK_FLAG: &str = "--ntcomm-build-link";

/// The link-mode arguments, when this process was started as the linker.
pub(crate) struct Invocation {
    ld: PathBuf,
    modules: Vec<String>,
    ld_args: Vec<OsString>,
}

/// The spec string that starts link mode: `<me> --ntcomm-build-link
/// ld=<ld> allow=<m1>,<m2> --`, after which gcc appends the linker's arguments.
pub(crate) fn spec_command(me: &Path, ld: &Path, modules: &[String]) -> String {
    format!("{} {LINK_FLAG} ld={} allow={} --", me.display(), ld.display(), modules.join(","))
}

/// Link mode's arguments, if this process runs as the linker.
pub(crate) fn invocation() -> Option<Invocation> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != LINK_FLAG {
        return None;
    }
    let (mut ld, mut modules) = (PathBuf::new(), Vec::new());
    for arg in args.by_ref() {
        let arg = arg.to_string_lossy().into_owned();
        if arg == "--" {
            break;
        } else if let Some(path) = arg.strip_prefix("ld=") {
            ld = PathBuf::from(path);
        } else if let Some(list) = arg.strip_prefix("allow=") {
            modules = list.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
        }
    }
    Some(Invocation { ld, modules, ld_args: args.collect() })
}

/// Links, checks, writes the `.sys`; returns the exit code for the linker.
pub(crate) fn run(inv: Invocation) -> i32 {
    let status = match Command::new(&inv.ld).args(&inv.ld_args).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ntcomm-build: cannot run {}: {e}", inv.ld.display());
            return 1;
        }
    };
    if !status.success() {
        return status.code().unwrap_or(1);
    }
    let args = expand_response_files(&inv.ld_args);
    let Some(output) = output_path(&args) else {
        eprintln!("ntcomm-build: the linker was given no -o output; nothing to check");
        return 1;
    };
    match image::check(&output, &inv.modules, &library_dirs(&args)).and_then(|()| write_sys(&output)) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: ntcomm-build: {}: {message}", output.display());
            // Nothing half-checked is left for cargo to hand out.
            let _ = fs::remove_file(&output);
            1
        }
    }
}

/// Copies the linked image to `<name>.sys` in the profile's directory
/// (`target/<triple>/<profile>/`, the parent of rustc's `deps/`), through a
/// temporary file so a reader never sees half an image.
fn write_sys(output: &Path) -> Result<(), String> {
    let dir = output.parent().unwrap_or(Path::new("."));
    let dir = if dir.file_name().is_some_and(|n| n == "deps") { dir.parent().unwrap_or(dir) } else { dir };
    let stem = output.file_stem().ok_or("the output has no file name")?;
    let sys = dir.join(stem).with_extension("sys");
    let tmp = sys.with_extension("sys.tmp");
    fs::copy(output, &tmp).map_err(|e| format!("copy to {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &sys).map_err(|e| format!("rename to {}: {e}", sys.display()))
}

/// The path after `-o`.
fn output_path(args: &[String]) -> Option<PathBuf> {
    args.iter().position(|a| a == "-o").and_then(|i| args.get(i + 1)).map(PathBuf::from)
}

/// The `-L` directories, in order.
fn library_dirs(args: &[String]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-L" {
            dirs.extend(iter.next().map(PathBuf::from));
        } else if let Some(dir) = arg.strip_prefix("-L") {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs
}

/// The arguments with every `@file` replaced by the file's arguments (GNU
/// response files: white space separates, quotes and backslashes escape).
fn expand_response_files(args: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        match arg.strip_prefix('@').map(fs::read_to_string) {
            Some(Ok(text)) => out.extend(split_response_file(&text)),
            _ => out.push(arg.into_owned()),
        }
    }
    out
}

fn split_response_file(text: &str) -> Vec<String> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                word.extend(chars.next());
                in_word = true;
            }
            (q, None) if q == '"' || q == '\'' => {
                quote = Some(q);
                in_word = true;
            }
            (q, Some(open)) if q == open => quote = None,
            (w, None) if w.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (other, _) => {
                word.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn response_files_split_like_gnu() {
        let words = split_response_file("-o \"/a b/c.dll\" -L/x 'it''s' a\\ b\n-lntoskrnl");
        assert_eq!(words, ["-o", "/a b/c.dll", "-L/x", "its", "a b", "-lntoskrnl"]);
    }

    #[test]
    fn output_and_library_dirs_are_found() {
        let args: Vec<String> = ["-m", "i386pep", "-o", "/t/deps/drv.dll", "-L", "/one", "-L/two"].map(String::from).to_vec();
        assert_eq!(output_path(&args), Some(PathBuf::from("/t/deps/drv.dll")));
        assert_eq!(library_dirs(&args), [PathBuf::from("/one"), PathBuf::from("/two")]);
    }

    #[test]
    fn the_spec_command_round_trips_through_invocation_parsing() {
        let cmd = spec_command(Path::new("/b/build-script-build"), Path::new("/usr/bin/ld"), &["ntoskrnl.exe".into(), "hal.dll".into()]);
        let words = split_response_file(&cmd);
        assert_eq!(words[1], LINK_FLAG);
        assert_eq!(words[2], "ld=/usr/bin/ld");
        assert_eq!(words[3], "allow=ntoskrnl.exe,hal.dll");
        assert_eq!(words[4], "--");
    }
}
