//! `ntcomm-example`: a small driver built on the toolkit alone, and the
//! seed of an example. It serves `\\.\NtCommExample` with
//! - one typed IOCTL, [`CHECKSUM`](proto::CHECKSUM): sums and XORs four
//!   words, counting the calls (`IoctlHandler::typed`);
//! - a shared-memory ring channel per handle ([`RINGS`](proto::RINGS), its
//!   own IOCTL codes, `ntcomm_km::ring_channel`): every record the client
//!   sends comes back with its ASCII letters upper-cased;
//! - a Filter Manager communication port
//!   ([`PORT_NAME`](proto::PORT_NAME)) whose one typed message,
//!   [`DIVIDE`](proto::DIVIDE), is answered with `flt::serve`.
//!
//! It enables only the ntcomm-km features `flt` and `ring`, and has no
//! `unsafe` of its own.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use ntcomm_example_proto::{self as proto, Division, Quotient, Sums, Words};
use ntcomm_km::device::{Device, DeviceConfig, DeviceOperations};
use ntcomm_km::flt::{self, Filter, Port, PortHandler};
use ntcomm_km::ioctl::{self, IoctlHandler, IoctlRequest};
use ntcomm_km::irp::{FileId, Handled, Request};
use ntcomm_km::pool::PoolAllocator;
use ntcomm_km::ring_channel::{Next, RingChannels, RingConfig, RingHandler, RingIo};
use ntcomm_km::sync::SpinLock;
use ntcomm_km::{Error, NtStatus};

#[global_allocator]
static POOL: PoolAllocator = PoolAllocator::new(proto::POOL_TAG.to_le_bytes());

const CONFIG: DeviceConfig = DeviceConfig::new(proto::DEVICE_NAME, proto::DOS_NAME);

ntcomm_km::driver_entry!(Example, CONFIG, Example::new);

/// Records moved per round before the channel's thread yields.
const BATCH: usize = 256;

struct Example {
    calls: AtomicU32,
    rings: RingChannels<Upper, { proto::MAX_RING_CHANNELS }>,
    /// The port, then its filter registration: dropped in that order at
    /// unload, outside the locks (closing the port waits for its callbacks).
    port: SpinLock<Option<Port<Divider>>>,
    filter: SpinLock<Option<Filter>>,
}

const TABLE: &[IoctlHandler<Example>] = &[
    IoctlHandler::typed(&proto::CHECKSUM, Example::checksum),
    IoctlHandler::new(&proto::RINGS.open, Example::ring_open),
    IoctlHandler::typed_with_file(&proto::RINGS.status, |e: &Example, file, ()| e.rings.status(file)),
];

impl Example {
    fn new(device: Device) -> Result<Self, Error> {
        // The minifilter and its port. Without them (a Filter Manager that
        // refuses the registration) the driver still serves its device.
        let opened = Filter::register(device.driver(), None).and_then(|filter| {
            let port = Port::create(&filter, proto::PORT_NAME, proto::PORT_MAX_CONNECTIONS, Divider)?;
            Ok((filter, port))
        });
        let (filter, port) = match opened {
            Ok((f, p)) => (Some(f), Some(p)),
            Err(e) => {
                ntcomm_km::kprintln!("ntcomm-example: no Filter Manager port: {}", e);
                (None, None)
            }
        };
        let config = RingConfig::new(proto::RING_NAME_PREFIX, proto::MAX_RING_CAPACITY, proto::RING_SECTION_BUDGET);
        Ok(Self { calls: AtomicU32::new(0), rings: RingChannels::new(config), port: SpinLock::new(port), filter: SpinLock::new(filter) })
    }

    /// `CHECKSUM`: the table has checked the sizes and read the input.
    fn checksum(&self, input: Words) -> Result<Sums, NtStatus> {
        let sum = input.words.iter().fold(0u64, |s, w| s.wrapping_add(u64::from(*w)));
        let xor = input.words.iter().fold(0u32, |x, w| x ^ w);
        let calls = self.calls.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        Ok(Sums { sum, xor, calls })
    }

    fn ring_open(&self, req: IoctlRequest) -> Handled {
        self.rings.open(req, Upper::new)
    }
}

impl DeviceOperations for Example {
    fn ioctl(&self, req: Request) -> Handled {
        ioctl::dispatch(TABLE, self, req)
    }

    fn cleanup(&self, file: FileId) {
        self.rings.close(file);
    }

    fn unload(&self) {
        self.rings.shutdown();
        // Taken under the locks, disconnected and dropped outside them.
        let port = self.port.take();
        if let Some(p) = port.as_ref() {
            for client in p.clients() {
                client.disconnect();
            }
        }
        drop(port);
        drop(self.filter.take());
    }
}

/// The port's behaviour: one typed message.
struct Divider;

impl PortHandler for Divider {
    type Connection = ();
    // Bounds checked before any allocation; `DIVIDE` itself checks the
    // exact sizes.
    const MAX_MESSAGE: usize = 64;
    const MAX_REPLY: usize = core::mem::size_of::<Quotient>();
    const MAX_CONTEXT: usize = 64;

    fn connect(&self, context: &[u8]) -> Result<(), NtStatus> {
        if context == proto::PORT_CONTEXT {
            Ok(())
        } else {
            Err(NtStatus::STATUS_ACCESS_DENIED)
        }
    }

    fn message(&self, _connection: &(), input: &[u8], output: &mut [u8]) -> Result<usize, NtStatus> {
        flt::serve(&proto::DIVIDE, input, output, |d: Division| {
            let quotient = d.dividend.checked_div(d.divisor).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
            let remainder = d.dividend.checked_rem(d.divisor).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
            Ok(Quotient { quotient, remainder })
        })
    }
}

/// One ring channel: sends every record back upper-cased, holding a record
/// while the way back is full (nothing is dropped).
struct Upper {
    buf: Vec<u8>,
    /// Length of a record in `buf` still to be sent back.
    held: Option<usize>,
}

impl Upper {
    /// Any mode and record size the toolkit accepts.
    fn new(_open: &ntcomm_km::proto::ring_channel::RingOpen) -> Result<(Upper, ()), NtStatus> {
        Ok((Upper { buf: Vec::new(), held: None }, ()))
    }
}

impl RingHandler for Upper {
    type Control = ();

    fn serve(&mut self, _control: &(), io: &mut RingIo<'_, '_>) -> Next {
        if self.buf.len() != io.max_recv() {
            self.buf.clear();
            if self.buf.try_reserve_exact(io.max_recv()).is_err() {
                return Next::Stop;
            }
            self.buf.resize(io.max_recv(), 0);
        }
        let mut worked = false;
        for _ in 0..BATCH {
            if let Some(n) = self.held {
                match io.send(self.buf.get(..n).unwrap_or_default()) {
                    Ok(true) => {
                        self.held = None;
                        worked = true;
                    }
                    // The way back is full: try again next round.
                    Ok(false) => break,
                    Err(_) => return Next::Again,
                }
            }
            match io.recv(&mut self.buf) {
                Ok(Some(n)) => {
                    worked = true;
                    match self.buf.get_mut(..n) {
                        Some(record) => {
                            proto::upper(record);
                            io.accept(n);
                            self.held = Some(n);
                        }
                        None => io.reject(),
                    }
                }
                Ok(None) => break,
                Err(_) => return Next::Again,
            }
        }
        // A record held for a full way back: serve again (the toolkit polls
        // shortly when the driver-to-user ring was full).
        if worked || self.held.is_some() {
            Next::Again
        } else {
            Next::Sleep(None)
        }
    }
}
