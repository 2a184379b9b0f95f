//! Links the crate as a Windows kernel driver (see ntcomm-build).
fn main() {
    ntcomm_build::driver();
}
