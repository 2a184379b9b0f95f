//! User-mode side of ntcomm: open a driver's device, send typed IOCTLs,
//! run overlapped operations through a completion port, and manage the
//! driver's service.
//!
//! Everything but [`error`] is Windows-only; elsewhere this crate is just its
//! error type (so host builds of the workspace work and the pure logic is
//! tested on the host).
//!
//! # API
//!
//! ```text
//! error    Error { context, win32, ntstatus }      Result<T> = Result<T, Error>
//!          Error::new(ctx, win32) / with_ntstatus(ctx, win32, NtStatus)
//!               / from_ntstatus(ctx, NtStatus) / last(ctx)          [last: Windows]
//!          .context() .win32() .ntstatus() .kind() .message() .prefixed(p)
//!          ErrorKind::{NotFound, AccessDenied, InvalidParameter, BufferTooSmall, Busy,
//!            Cancelled, NotFoundItem, InvalidFunction, Timeout, ServiceExists,
//!            ServiceNotFound, ServiceNotActive, InvalidData, OutOfResources, QuotaExceeded, Other}
//!          ErrorKind::from_win32(u32)   status_to_win32(NtStatus)   error::code::*
//! device   Device::open(path) / open_overlapped(path) / open_with(path, DeviceAccess, overlapped)
//!          .read(&mut [u8]) .write(&[u8]) -> Result<usize>
//!          .ioctl(&Ioctl<I,O>, &I, &mut O) -> Result<usize>   (sizes checked first)
//!          .ioctl_get(&Ioctl<(),O>) -> Result<O>
//!          .ioctl_raw(code: u32, &[u8], &mut [u8]) -> Result<usize>   (unchecked)
//!          .cancel_all() .path() .is_overlapped()   AsRawHandle
//! iocp     CompletionPort::new() .associate(&Device, key) .post(key, tag)
//!          .wait(Option<Duration>) -> Result<Option<Completion>>
//!          .wait_many(&mut Vec<Completion>, max, Option<Duration>) -> Result<usize>
//!          Device::start_read(Vec<u8>, tag) / start_write(Vec<u8>, tag)
//!                 / start_ioctl(&Ioctl<I,O>, input: Vec<u8>, output_capacity, tag)
//!                 / start_ioctl_raw(code: u32, input, output_capacity, tag) -> Result<OpId>
//!          Device::cancel(OpId)
//!          Completion { tag: u64, key: usize, kind: OpKind, result: Result<usize>, buffer: Vec<u8> }
//! ring     RingChannel::open(path, &RingIoctls, d2u_cap, u2d_cap) / open_with(path, &RingIoctls, &RingOptions)
//!               .control(&Ioctl<I,()>, &I) .status() .split()
//!          RingSender::send(&[u8], timeout) .write() .flush()   RingReceiver::recv(&mut [u8], timeout) .try_recv()
//! port     PortClient::connect(name, ctx) .send(in, out) .get_message(buf) -> Message{id, reply_length, body}
//!          .reply(id, status, body) .associate(&CompletionPort, key) .start_get_message(cap, tag) .cancel_receives()
//! pipe     PipeServer::create(name) .accept() .read_message(&mut Vec<u8>) -> Result<bool> .disconnect()
//! aio      (feature `async`) AsyncDevice, AsyncPort: futures and streams, cancelled on drop
//! service  install(name, display, &Path) / install_with(.., &InstallOptions)
//!          start(name) / stop(name) / uninstall(name) -> Result<()>
//!          status(name) -> Result<ServiceState>   TRANSITION_TIMEOUT (10 s)
//! ```
//!
//! ```no_run
//! # #[cfg(windows)] fn main() -> ntcomm_um::Result<()> {
//! use ntcomm_proto::ring_channel::RingIoctls;
//! use ntcomm_proto::{Access, DeviceType, Ioctl, Len, Method};
//! use ntcomm_um::{CompletionPort, Device, RingChannel};
//!
//! // The driver's protocol, declared once for both sides.
//! const DEVICE_TYPE: DeviceType = DeviceType(0x8123);
//! const ECHO: Ioctl<[u8], [u8]> =
//!     Ioctl::new("ECHO", DEVICE_TYPE, 0, Method::Buffered, Access::READ, Len::up_to(4096), Len::up_to(4096));
//! const WAIT: Ioctl<(), [u8]> =
//!     Ioctl::new("WAIT", DEVICE_TYPE, 1, Method::Buffered, Access::READ, Len::NONE, Len::range(256, 256));
//! const RINGS: RingIoctls = RingIoctls::new(DEVICE_TYPE, 2, 3);
//! const PATH: &str = r"\\.\MyDevice";
//!
//! let dev = Device::open(PATH)?;
//! let mut out = [0u8; 5];
//! let n = dev.ioctl(&ECHO, &b"hello"[..], &mut out[..])?;
//! assert_eq!(&out[..n], b"hello");
//!
//! let dev = Device::open_overlapped(PATH)?;
//! let port = CompletionPort::new()?;
//! port.associate(&dev, 1)?;
//! dev.start_ioctl(&WAIT, Vec::new(), 256, 42)?;
//! if let Some(done) = port.wait(None)? {
//!     println!("tag {}: {:?}, {} bytes", done.tag, done.result, done.buffer.len());
//! }
//!
//! let (mut tx, mut rx) = RingChannel::open(PATH, &RINGS, 1 << 20, 1 << 20)?.split();
//! tx.send(b"record", None)?;
//! let mut buf = vec![0u8; rx.max_record()];
//! let _ = rx.recv(&mut buf, Some(std::time::Duration::from_secs(1)))?;
//! # Ok(()) }
//! # #[cfg(not(windows))] fn main() {}
//! ```
#![warn(missing_docs)]

pub mod error;
mod util;

#[cfg(windows)]
mod ntdll;

#[cfg(all(windows, feature = "async"))]
pub mod aio;
#[cfg(windows)]
pub mod device;
#[cfg(windows)]
pub mod iocp;
#[cfg(windows)]
pub mod lpc;
#[cfg(windows)]
pub mod minifilter;
#[cfg(windows)]
pub mod pipe;
#[cfg(windows)]
pub mod port;
#[cfg(windows)]
pub mod ring;
#[cfg(windows)]
pub mod service;

pub use error::{Error, ErrorKind, Result};

#[cfg(windows)]
pub use device::{Device, DeviceAccess};
#[cfg(windows)]
pub use iocp::{Completion, CompletionPort, OpId, OpKind};
#[cfg(windows)]
pub use pipe::PipeServer;
#[cfg(windows)]
pub use port::{Message, PortClient};
#[cfg(windows)]
pub use ring::{RingChannel, RingOptions, RingReceiver, RingSender};
#[cfg(windows)]
pub use service::ServiceState;
