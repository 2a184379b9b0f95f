// The declaration's input changed to u32; the handler still takes a u64.
use ntcomm_km::ioctl::IoctlHandler;
use ntcomm_km::NtStatus;
use ntcomm_proto::{Access, DeviceType, Ioctl, Method};

struct Driver;

const PROBE: Ioctl<u32, u32> = Ioctl::fixed("PROBE", DeviceType(0x8000), 1, Method::Buffered, Access::ANY);

fn probe(_d: &Driver, addr: u64) -> Result<u32, NtStatus> {
    Ok(addr as u32)
}

const TABLE: &[IoctlHandler<Driver>] = &[IoctlHandler::typed(&PROBE, probe)];

fn main() {
    let _ = TABLE;
}
