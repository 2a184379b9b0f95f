//! `ntcomm-rig new DIR`: a project to start from: a protocol crate, a
//! driver, a client with tests, and a README whose two commands build it and
//! pass its tests under Wine. The toolkit is used by path, from the ntcomm
//! sources this rig was built from.

use std::fs;
use std::path::{Path, PathBuf};

use crate::setup::source_root;

/// The template's files: (path in the project, text with `{{name}}`,
/// `{{Name}}`, `{{crate}}` and `{{ntcomm}}` to fill in).
const FILES: [(&str, &str); 12] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    (".cargo/config.toml", include_str!("../template/.cargo/config.toml.tmpl")),
    ("README.md", include_str!("../template/README.md.tmpl")),
    ("proto/Cargo.toml", include_str!("../template/proto/Cargo.toml.tmpl")),
    ("proto/src/lib.rs", include_str!("../template/proto/src/lib.rs.tmpl")),
    ("driver/Cargo.toml", include_str!("../template/driver/Cargo.toml.tmpl")),
    ("driver/build.rs", include_str!("../template/driver/build.rs.tmpl")),
    ("driver/src/lib.rs", include_str!("../template/driver/src/lib.rs.tmpl")),
    ("client/Cargo.toml", include_str!("../template/client/Cargo.toml.tmpl")),
    ("client/src/main.rs", include_str!("../template/client/src/main.rs.tmpl")),
    ("client/tests/driver.rs", include_str!("../template/client/tests/driver.rs.tmpl")),
    (".gitignore", "/target\n"),
];

/// Creates the project in `dir` (which must not exist or be empty), named
/// after the directory unless `name` is given. Returns the files written.
///
/// # Errors
/// A name that is not a lower-case identifier with dashes, a non-empty
/// directory, or the file system's errors.
pub fn new(dir: &Path, name: Option<&str>) -> Result<Vec<PathBuf>, String> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or("the directory has no name: pass --name")?,
    };
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("project name {name:?}: use lower-case letters, digits and dashes, starting with a letter (--name)"));
    }
    if fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let ntcomm = source_root().canonicalize().map_err(|e| format!("the ntcomm sources at {}: {e}", source_root().display()))?;
    let ntcomm = ntcomm.to_str().ok_or("the ntcomm sources' path is not UTF-8")?.to_owned();
    let camel: String = name
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let crate_name = name.replace('-', "_");
    let mut written = Vec::new();
    for (path, text) in FILES {
        let text =
            text.replace("{{name}}", &name).replace("{{Name}}", &camel).replace("{{crate}}", &crate_name).replace("{{ntcomm}}", &ntcomm);
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}
