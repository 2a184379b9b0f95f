//! Links the cdylib as a kernel driver: native subsystem, entry point
//! `DriverEntry`, no C runtime, imports only from ntoskrnl.exe and hal.dll.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-Wl,--subsystem,native",
        "-Wl,--entry,DriverEntry",
        "-Wl,--image-base,0x140000000",
        "-Wl,--dynamicbase",
        "-Wl,--nxcompat",
        "-Wl,--exclude-all-symbols",
        "-lntoskrnl",
        "-lhal",
        // ___chkstk_ms for large stack frames; it only touches the stack.
        "-lgcc",
    ] {
        println!("cargo:rustc-cdylib-link-arg={arg}");
    }
}
