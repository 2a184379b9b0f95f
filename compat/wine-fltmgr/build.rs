//! Links the cdylib as a native-subsystem DLL that imports only ntoskrnl.exe:
//! Wine loads it in place of its builtin fltmgr.sys and never calls its entry
//! point (it initialises itself on first use), but an entry that returns TRUE
//! is named anyway so no loader ever jumps to the start of `.text`.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-Wl,--subsystem,native",
        "-Wl,--entry,FltMgrDllEntry",
        "-Wl,--image-base,0x1c0000000",
        "-Wl,--dynamicbase",
        "-Wl,--nxcompat",
        "-lntoskrnl",
        // ___chkstk_ms for large stack frames; it only touches the stack.
        "-lgcc",
    ] {
        println!("cargo:rustc-cdylib-link-arg={arg}");
    }
}
