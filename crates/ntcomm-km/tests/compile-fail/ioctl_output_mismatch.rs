// The declaration's output is a Stats; the handler returns a bare counter.
use ntcomm_km::ioctl::IoctlHandler;
use ntcomm_km::NtStatus;
use ntcomm_proto::{Access, DeviceType, Ioctl, Method};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Stats {
    requests: u64,
}

struct Driver;

const GET_STATS: Ioctl<(), Stats> = Ioctl::fixed("GET_STATS", DeviceType(0x8000), 2, Method::Buffered, Access::ANY);

fn stats(_d: &Driver, (): ()) -> Result<u64, NtStatus> {
    Ok(0)
}

const TABLE: &[IoctlHandler<Driver>] = &[IoctlHandler::typed(&GET_STATS, stats)];

fn main() {
    let _ = TABLE;
}
