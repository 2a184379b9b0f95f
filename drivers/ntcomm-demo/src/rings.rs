//! The demo's shared-memory channels: the toolkit's ring channel service
//! (`ntcomm_km::ring_channel`) with the demo's handler. Per channel, a
//! synthetic source feeds the driver-to-user ring (`RING_SOURCE`) and every
//! record from the client is validated (sequence and checksum) and counted,
//! and in echo mode sent back.

use alloc::vec::Vec;
use core::time::Duration;

use ntcomm_demo_proto::{self as proto, RingOpen, RingSource};
use ntcomm_km::ioctl::IoctlRequest;
use ntcomm_km::irp::{FileId, Handled};
use ntcomm_km::ring_channel::{Next, RingChannels, RingConfig, RingHandler, RingIo, RingTotals};
use ntcomm_km::sync::SpinLock;
use ntcomm_km::{time, NtStatus};
use ntcomm_proto::ring::RingError;

/// Records handled per direction before the thread looks at the other one.
const BATCH: usize = 256;
/// How often a paced source with nothing due retries at most.
const FULL_POLL: Duration = Duration::from_millis(1);

/// Every channel of the driver.
pub struct Rings {
    channels: RingChannels<DemoRing, { proto::MAX_RING_CHANNELS }>,
}

/// What dispatch tells a channel's handler: a new source.
pub struct Control {
    new_source: SpinLock<Option<RingSource>>,
}

impl Rings {
    pub fn new() -> Self {
        let config = RingConfig::new("NtComm", proto::MAX_RING_CAPACITY, proto::RING_SECTION_BUDGET);
        Self { channels: RingChannels::new(config) }
    }

    pub fn totals(&self) -> &RingTotals {
        self.channels.totals()
    }

    /// Section bytes held now, and channels open or opening.
    pub fn usage(&self) -> (u64, u64) {
        self.channels.usage()
    }

    pub fn reap(&self) {
        self.channels.reap();
    }

    pub fn open(&self, req: IoctlRequest) -> Handled {
        self.channels.open(req, DemoRing::new)
    }

    /// `RING_SOURCE` on `file`'s channel: starts (or replaces) its source.
    pub fn source(&self, file: FileId, src: RingSource) -> Result<(), NtStatus> {
        let set = self.channels.control(file, |c, open| {
            if (src.record_len as usize) < proto::RECORD_MIN || (open.record_size != 0 && src.record_len != open.record_size) {
                return false;
            }
            c.new_source.replace(Some(src));
            true
        });
        match set {
            None => Err(NtStatus::STATUS_NOT_FOUND),
            Some(false) => Err(NtStatus::STATUS_INVALID_PARAMETER),
            Some(true) => Ok(()),
        }
    }

    /// `RING_STATUS` on `file`'s channel.
    pub fn status(&self, file: FileId) -> Result<proto::RingStatus, NtStatus> {
        self.channels.status(file)
    }

    pub fn close(&self, file: FileId) {
        self.channels.close(file);
    }

    pub fn shutdown(&self) {
        self.channels.shutdown();
    }
}

/// The synthetic driver-to-user source.
struct Source {
    remaining: u64,
    next_seq: u64,
    rate: u32,
    len: usize,
    started: u64,
    sent: u64,
}

impl Source {
    /// Records allowed now by the rate, and the wait until the next one.
    fn due(&self) -> (u64, Option<Duration>) {
        if self.rate == 0 {
            return (self.remaining, None);
        }
        let elapsed = time::interrupt_time().saturating_sub(self.started);
        let allowed = (u128::from(elapsed) * u128::from(self.rate) / 10_000_000) as u64;
        let due = allowed.saturating_sub(self.sent).min(self.remaining);
        let next = Duration::from_nanos(1_000_000_000 / u64::from(self.rate));
        (due, Some(next))
    }
}

/// One channel's demo logic.
pub struct DemoRing {
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    source: Option<Source>,
    expect_seq: u64,
    echo: bool,
    /// Length of a record in `inbox` still to be echoed.
    held: Option<usize>,
}

impl DemoRing {
    /// Checks the demo's part of an open: its mode, and a fixed record size
    /// that holds the demo's sequence number and checksum.
    fn new(open: &RingOpen) -> Result<(DemoRing, Control), NtStatus> {
        let size = open.record_size;
        if open.mode > proto::RING_MODE_ECHO || (size != 0 && (size as usize) < proto::RECORD_MIN) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let ring = DemoRing {
            inbox: Vec::new(),
            outbox: Vec::new(),
            source: None,
            expect_seq: 0,
            echo: open.mode == proto::RING_MODE_ECHO,
            held: None,
        };
        Ok((ring, Control { new_source: SpinLock::new(None) }))
    }
}

impl RingHandler for DemoRing {
    type Control = Control;

    fn serve(&mut self, control: &Control, io: &mut RingIo<'_, '_>) -> Next {
        if self.inbox.len() != io.max_recv() {
            if self.inbox.try_reserve_exact(io.max_recv()).is_err() {
                return Next::Stop;
            }
            self.inbox.resize(io.max_recv(), 0);
        }
        let mut worked = false;

        // User to driver: validate and count (and in echo mode send back,
        // holding a record while the way back is full: nothing is dropped).
        for _ in 0..BATCH {
            if let Some(n) = self.held {
                match io.send(self.inbox.get(..n).unwrap_or_default()) {
                    Ok(true) => {
                        self.held = None;
                        worked = true;
                    }
                    Ok(false) => break,
                    Err(RingError::Corrupt(_)) => return Next::Again,
                    Err(_) => self.held = None,
                }
            }
            match io.recv(&mut self.inbox) {
                Ok(Some(n)) => {
                    worked = true;
                    match self.inbox.get(..n).and_then(proto::check_record) {
                        Some(seq) if seq == self.expect_seq => io.accept(n),
                        _ => io.reject(),
                    }
                    self.expect_seq += 1;
                    if self.echo {
                        self.held = Some(n);
                    }
                }
                Ok(None) => break,
                Err(_) => return Next::Again,
            }
        }

        // Driver to user: the source.
        if let Some(src) = control.new_source.take() {
            self.source = Some(Source {
                remaining: src.count,
                next_seq: 0,
                rate: src.rate,
                len: (src.record_len as usize).min(io.max_send()),
                started: time::interrupt_time(),
                sent: 0,
            });
        }
        let mut pace: Option<Duration> = None;
        if let Some(src) = self.source.as_mut().filter(|s| s.remaining > 0) {
            let (due, next) = src.due();
            pace = next;
            if self.outbox.len() != src.len {
                self.outbox.clear();
                if self.outbox.try_reserve_exact(src.len).is_err() {
                    return Next::Stop;
                }
                self.outbox.resize(src.len, 0);
            }
            for _ in 0..due.min(BATCH as u64) {
                proto::fill_record(src.next_seq, &mut self.outbox);
                match io.send(&self.outbox) {
                    Ok(true) => {
                        src.next_seq += 1;
                        src.remaining -= 1;
                        src.sent += 1;
                        worked = true;
                    }
                    _ => break,
                }
            }
        }
        let remaining = self.source.as_ref().map_or(0, |s| s.remaining);
        io.set_backlog(remaining);
        if worked {
            Next::Again
        } else if remaining > 0 {
            Next::Sleep(Some(pace.unwrap_or(FULL_POLL)))
        } else {
            Next::Sleep(None)
        }
    }
}
