//! A single-producer single-consumer ring of variable-length records in memory
//! shared by two parties that do not trust each other (a driver and a user
//! process).
//!
//! # Layout (`#[repr(C)]`-style, fixed, little-endian, version 3)
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 4 | magic `"NTRG"` | creator |
//! | 4 | 4 | version (2) | creator |
//! | 8 | 4 | capacity: data bytes, power of two, `>= 4096` | creator |
//! | 12 | 4 | max_record: largest payload, always `capacity / 2` | creator |
//! | 16 | 4 | failed: 0 = ok, else a [`reason`] code | whoever detects corruption |
//! | 20 | 4 | record_size: 0 = variable-length records, else every record's size | creator |
//! | 64 | 8 | head: total bytes ever published (monotonic) | producer |
//! | 72 | 4 | consumer_sleeping: 1 while the consumer waits for a wake-up | consumer sets, producer clears |
//! | 128 | 8 | tail: total bytes ever consumed (monotonic) | consumer |
//! | 192 | capacity | data | producer |
//!
//! The header is three 64-byte cache lines: line 0 holds the read-mostly words,
//! line 1 the producer's index, line 2 the consumer's. `consumer_sleeping` is on
//! line 1, next to `head`: [`Producer::publish`] writes it (a read-modify-write)
//! right after storing `head`, so both writes need the one line the producer
//! owns anyway; on line 0 it would make the consumer's reads of `failed` miss
//! after every publish, on line 2 it would fight the consumer's `tail` stores.
//! (Version 1 had the flag at offset 20 and a different wake-up protocol;
//! version 2 had no `record_size`.)
//!
//! # Records
//!
//! A ring carries records of one of two kinds, fixed by its creator:
//!
//! - **Variable length** (`record_size` 0, [`init`]): a record is an 8-byte header
//!   (`u32` payload length, `u32` reserved = 0) and the payload, padded to a
//!   multiple of 8. Records wrap around the end of the data area (the payload
//!   copy is split), so no space is wasted and no padding marker exists; record
//!   headers never straddle the end because every position is 8-aligned and the
//!   capacity is a multiple of 8.
//! - **Fixed size** (`record_size` = N, [`init_fixed`]): every record is exactly N
//!   bytes (a multiple of 8, at most `max_record`), stored with no header, so
//!   indices are multiples of N and a record wraps like a payload does. For a
//!   stream of one event type this is the fast layout: nothing per record to
//!   write or validate, and records of 64 B fill cache lines exactly instead of
//!   sharing each line between the record the consumer reads and the one the
//!   producer writes (a 64 B payload takes 72 B with a header). Such a ring is
//!   also a plain array of records, so [`Producer::write_records`] and
//!   [`Consumer::pop_records`] move many records with one copy each.
//!
//! # Hostile peer
//!
//! Each side takes a private copy of the geometry (capacity, max_record) when it
//! attaches and never re-reads it. Every index read from the other side is
//! validated (monotonic, within one capacity of the own index, 8-aligned), every
//! record length is checked against `max_record` and the published bytes, and a
//! record is copied once into the caller's buffer before it is handed out. A
//! violation stores a [`reason`] code in `failed` and makes every later call on
//! that side return [`RingError::Corrupt`]. Nothing read from the region can cause
//! an out-of-bounds access, a panic, or a loop: every call is wait-free.
//!
//! # Wake-ups
//!
//! The consumer that found the ring empty calls [`Consumer::prepare_sleep`]: it
//! sets `consumer_sleeping` with a read-modify-write (swap to 1), then re-reads
//! `head`; if data arrived it clears the flag (swap to 0) and answers
//! [`SleepDecision::DataReady`], else [`SleepDecision::MustWait`] and the caller
//! waits on its OS event (and calls [`Consumer::cancel_sleep`] if the wait times
//! out). [`Producer::publish`] stores `head` (release), then swaps the flag to 0;
//! if it was set it answers [`WakeNeeded`]`(true)`, and the caller signals the
//! event. Every write of the flag is a read-modify-write (acquire and release),
//! so the two swaps are ordered on that one location and one side always sees
//! the other: if the producer's swap comes later it reads the 1; if earlier, the
//! consumer's swap reads from it (directly or through later swaps), so the
//! producer's `head` store happens before the consumer's re-read of `head`. No
//! reliance on `SeqCst` fences, so the protocol is checked as-is by loom. While
//! the consumer is busy the flag is clear and publishing costs no system call.
//!
//! The swap makes every `publish` a full barrier: the producer waits until its
//! record bytes have reached the consumer's cache. A producer that wants each
//! record seen as soon as it is written, without that wait per record, calls
//! [`Producer::make_visible`] (only the release store of `head`) after each
//! `write`, and `publish` only before it waits or stops: a polling consumer sees
//! the records at once; one that announced sleep is woken by that `publish`.
//! The opposite direction (producer waiting for space) is not signalled: a
//! producer on a full ring polls with back-off; each channel direction uses its
//! own ring.

#[cfg(not(loom))]
mod region;
#[cfg(loom)]
mod region_loom;
mod sync;

#[cfg(not(loom))]
use region::Region;
#[cfg(loom)]
pub use region_loom::Region;
use sync::Ordering;

/// Header magic: the bytes `"NTRG"`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"NTRG");
/// Layout version written by [`init`] and required by `attach`.
pub const VERSION: u32 = 3;
/// Smallest data capacity.
#[cfg(not(loom))]
pub const MIN_CAPACITY: u32 = 4096;
/// Smallest data capacity (small under loom to keep the model tractable).
#[cfg(loom)]
pub const MIN_CAPACITY: u32 = 32;
/// Largest data capacity.
pub const MAX_CAPACITY: u32 = 1 << 30;
/// Size of a record header (length and reserved word).
pub const RECORD_HEADER: usize = 8;

/// Offsets of the header fields.
pub mod layout {
    /// Magic (`u32`).
    pub const OFF_MAGIC: usize = 0;
    /// Version (`u32`).
    pub const OFF_VERSION: usize = 4;
    /// Data capacity (`u32`).
    pub const OFF_CAPACITY: usize = 8;
    /// Maximum payload length (`u32`).
    pub const OFF_MAX_RECORD: usize = 12;
    /// Failure reason (`u32`, 0 = ok).
    pub const OFF_FAILED: usize = 16;
    /// Fixed record size (`u32`, 0 = variable-length records).
    pub const OFF_RECORD_SIZE: usize = 20;
    /// Consumer-sleeping flag (`u32`), cache line 1 beside `head`.
    pub const OFF_SLEEPING: usize = 72;
    /// Producer index (`u64`), cache line 1.
    pub const OFF_HEAD: usize = 64;
    /// Consumer index (`u64`), cache line 2.
    pub const OFF_TAIL: usize = 128;
    /// Header size; the data area follows.
    pub const HEADER_LEN: usize = 192;
    /// Required alignment of the region (64 recommended for cache lines).
    pub const MIN_ALIGN: usize = 8;
}

/// Reason codes stored in the header's `failed` word.
pub mod reason {
    /// The producer's `head` moved backwards.
    pub const HEAD_BACKWARDS: u32 = 1;
    /// `head` is more than one capacity ahead of the consumer's `tail`.
    pub const HEAD_OVERRUN: u32 = 2;
    /// An index is not a multiple of 8 (of the record size in a fixed-size ring).
    pub const MISALIGNED_INDEX: u32 = 3;
    /// A record's length exceeds `max_record`.
    pub const RECORD_TOO_LONG: u32 = 4;
    /// A record extends past the published bytes.
    pub const RECORD_TRUNCATED: u32 = 5;
    /// A record header's reserved word is not zero.
    pub const RECORD_HEADER: u32 = 6;
    /// The consumer's `tail` moved backwards.
    pub const TAIL_BACKWARDS: u32 = 7;
    /// The consumer's `tail` is ahead of the published `head`.
    pub const TAIL_AHEAD: u32 = 8;
    /// The indices found at attach time are inconsistent.
    pub const BAD_INDICES: u32 = 9;
    /// An owner closed the channel through `fail` without a reason.
    pub const ABORTED: u32 = 0x100;

    /// A short name for a reason code.
    pub fn name(code: u32) -> &'static str {
        match code {
            0 => "ok",
            HEAD_BACKWARDS => "head moved backwards",
            HEAD_OVERRUN => "head beyond capacity",
            MISALIGNED_INDEX => "misaligned index",
            RECORD_TOO_LONG => "record too long",
            RECORD_TRUNCATED => "record truncated",
            RECORD_HEADER => "bad record header",
            TAIL_BACKWARDS => "tail moved backwards",
            TAIL_AHEAD => "tail ahead of head",
            BAD_INDICES => "inconsistent indices",
            ABORTED => "aborted",
            _ => "unknown",
        }
    }
}

/// Why a region cannot be initialised or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The pointer is null.
    Null,
    /// The pointer is not 8-aligned.
    Misaligned,
    /// The region is shorter than header plus capacity.
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
    /// The capacity is not a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    BadCapacity(u32),
    /// The header's magic is wrong.
    BadMagic(u32),
    /// The header's version is not [`VERSION`].
    BadVersion(u32),
    /// The header's `max_record` is not `capacity / 2`.
    BadMaxRecord(u32),
    /// The fixed record size is not a nonzero multiple of 8 no larger than
    /// `capacity / 2` (in a header, or asked of [`init_fixed`]).
    BadRecordSize(u32),
}

/// Errors of ring operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The region is not a valid ring.
    Layout(LayoutError),
    /// A record longer than `max_record` was offered; nothing was written.
    TooLarge {
        /// The record's length.
        len: usize,
        /// The ring's `max_record`.
        max: usize,
    },
    /// A record of another length was offered to a fixed-size ring; nothing was written.
    WrongSize {
        /// The record's length.
        len: usize,
        /// The ring's record size.
        size: usize,
    },
    /// A call for fixed-size rings ([`Producer::write_records`],
    /// [`Consumer::pop_records`]) on a ring of variable-length records.
    NotFixedSize,
    /// The next record does not fit the caller's buffer; it was not consumed.
    BufferTooSmall {
        /// The record's length.
        needed: usize,
    },
    /// The channel has failed (detected here or by the peer): a [`reason`] code.
    /// Every later call on this side returns the same error.
    Corrupt(u32),
}

impl From<LayoutError> for RingError {
    fn from(e: LayoutError) -> Self {
        RingError::Layout(e)
    }
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RingError::Layout(e) => write!(f, "invalid ring region: {e:?}"),
            RingError::TooLarge { len, max } => write!(f, "record of {len} bytes exceeds the maximum {max}"),
            RingError::WrongSize { len, size } => {
                write!(f, "record of {len} bytes offered to a ring of {size}-byte records")
            }
            RingError::NotFixedSize => f.write_str("the ring's records are not of a fixed size"),
            RingError::BufferTooSmall { needed } => write!(f, "record of {needed} bytes does not fit the buffer"),
            RingError::Corrupt(code) => write!(f, "ring failed: {} ({code})", reason::name(*code)),
        }
    }
}

/// Answer of [`Producer::publish`]: `true` if the consumer announced it sleeps,
/// so the caller must signal the consumer's event.
#[must_use = "signal the consumer's event when this is WakeNeeded(true)"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeNeeded(pub bool);

/// Answer of [`Consumer::prepare_sleep`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepDecision {
    /// Data is available: do not sleep (the sleeping flag is clear).
    DataReady,
    /// The ring is empty and the flag is set: wait on the event; the producer will
    /// signal it after its next publish. Call [`Consumer::cancel_sleep`] if the wait
    /// ends without a signal (timeout).
    MustWait,
}

/// Sizes of a ring region.
#[derive(Debug, Clone, Copy)]
pub struct RingLayout;

impl RingLayout {
    /// Bytes of region (header plus data) for `capacity` data bytes, or `None` if
    /// `capacity` is not a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub const fn bytes_for(capacity: u32) -> Option<usize> {
        if capacity_ok(capacity) {
            Some(layout::HEADER_LEN + capacity as usize)
        } else {
            None
        }
    }

    /// The largest payload a ring of `capacity` data bytes accepts.
    pub const fn max_record_for(capacity: u32) -> u32 {
        capacity / 2
    }

    /// Whether a ring of `capacity` data bytes can hold fixed-size records of
    /// `size` bytes: a nonzero multiple of 8, at most `capacity / 2`.
    pub const fn record_size_ok(size: u32, capacity: u32) -> bool {
        size != 0 && size.is_multiple_of(8) && size <= Self::max_record_for(capacity)
    }

    /// Ring bytes one record of `len` payload bytes occupies (header, payload, padding).
    pub const fn footprint(len: usize) -> usize {
        RECORD_HEADER + ((len + 7) & !7)
    }
}

const fn capacity_ok(capacity: u32) -> bool {
    capacity.is_power_of_two() && capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY
}

/// A `record_size` header value for `capacity`: 0 (variable-length records) or
/// a valid fixed size.
fn check_record_size(size: u32, capacity: u32) -> Result<(), LayoutError> {
    if size == 0 || RingLayout::record_size_ok(size, capacity) {
        Ok(())
    } else {
        Err(LayoutError::BadRecordSize(size))
    }
}

/// The geometry a side copies once from the header.
#[derive(Clone, Copy)]
struct Geometry {
    cap: u64,
    max_record: u32,
    /// Fixed record size, 0 for variable-length records.
    fixed: u32,
    /// Every index is a multiple of this: 8, or the fixed record size.
    unit: u64,
    /// `log2(unit)` when `unit` is a power of two (the usual case), else
    /// `u32::MAX`: computed once, so the per-record checks are a mask.
    unit_shift: u32,
}

impl Geometry {
    fn new(cap: u32, fixed: u32) -> Self {
        let unit = if fixed == 0 { 8 } else { u64::from(fixed) };
        let unit_shift = if unit.is_power_of_two() { unit.trailing_zeros() } else { u32::MAX };
        Geometry { cap: u64::from(cap), max_record: RingLayout::max_record_for(cap), fixed, unit, unit_shift }
    }

    /// Ring bytes of a record of `len` payload bytes (`len` already checked).
    #[inline]
    fn footprint(&self, len: u32) -> u64 {
        if self.fixed != 0 {
            u64::from(self.fixed)
        } else {
            RECORD_HEADER as u64 + ((u64::from(len) + 7) & !7)
        }
    }

    /// Bytes before a record's payload.
    #[inline]
    fn header(&self) -> u64 {
        if self.fixed != 0 {
            0
        } else {
            RECORD_HEADER as u64
        }
    }

    /// Whole units (records of a fixed-size ring) in `bytes`: a shift for the
    /// usual power-of-two sizes, a division otherwise.
    #[inline]
    fn units_in(&self, bytes: u64) -> u64 {
        if self.unit_shift != u32::MAX {
            bytes >> self.unit_shift
        } else {
            bytes / self.unit
        }
    }

    /// Whether `index` is on a record boundary's grid.
    #[inline]
    fn aligned(&self, index: u64) -> bool {
        if self.unit_shift != u32::MAX {
            index & (self.unit - 1) == 0
        } else {
            index.is_multiple_of(self.unit)
        }
    }
}

/// Reads and validates the header's constant part once.
fn read_geometry(region: &Region) -> Result<Geometry, LayoutError> {
    let magic = region.magic().load(Ordering::Acquire);
    if magic != MAGIC {
        return Err(LayoutError::BadMagic(magic));
    }
    let version = region.version().load(Ordering::Relaxed);
    if version != VERSION {
        return Err(LayoutError::BadVersion(version));
    }
    let cap = region.capacity().load(Ordering::Relaxed);
    if !capacity_ok(cap) {
        return Err(LayoutError::BadCapacity(cap));
    }
    let max_record = region.max_record().load(Ordering::Relaxed);
    if max_record != RingLayout::max_record_for(cap) {
        return Err(LayoutError::BadMaxRecord(max_record));
    }
    let fixed = region.record_size().load(Ordering::Relaxed);
    check_record_size(fixed, cap)?;
    Ok(Geometry::new(cap, fixed))
}

/// Writes a fresh header into a region (the creator's side).
fn write_header(region: &Region, cap: u32, fixed: u32) {
    region.version().store(VERSION, Ordering::Relaxed);
    region.capacity().store(cap, Ordering::Relaxed);
    region.max_record().store(RingLayout::max_record_for(cap), Ordering::Relaxed);
    region.record_size().store(fixed, Ordering::Relaxed);
    region.failed().store(0, Ordering::Relaxed);
    region.sleeping().store(0, Ordering::Relaxed);
    region.head().store(0, Ordering::Relaxed);
    region.tail().store(0, Ordering::Relaxed);
    region.magic().store(MAGIC, Ordering::Release);
}

/// Checks pointer and length and returns the header-only view.
#[cfg(not(loom))]
fn check_region(mem: *mut u8, len: usize) -> Result<core::ptr::NonNull<u8>, LayoutError> {
    let base = core::ptr::NonNull::new(mem).ok_or(LayoutError::Null)?;
    if (mem as usize) & (layout::MIN_ALIGN - 1) != 0 {
        return Err(LayoutError::Misaligned);
    }
    if len < layout::HEADER_LEN {
        return Err(LayoutError::TooShort { needed: layout::HEADER_LEN, len });
    }
    Ok(base)
}

/// Initialises a ring of variable-length records in `mem` (the creator's
/// side): writes the header with empty indices. The data area is not cleared.
///
/// # Safety
/// `mem` must be valid for reads and writes of `len` bytes. Nobody may be
/// attached to the region while it is initialised.
#[cfg(not(loom))]
#[allow(unsafe_code)]
pub unsafe fn init(mem: *mut u8, len: usize, capacity: u32) -> Result<(), RingError> {
    // SAFETY: forwarded caller contract.
    unsafe { init_records(mem, len, capacity, 0) }
}

/// Initialises a ring of fixed-size records of `record_size` bytes (a nonzero
/// multiple of 8, at most `capacity / 2`) in `mem`. See [`init`].
///
/// # Safety
/// As for [`init`].
#[cfg(not(loom))]
#[allow(unsafe_code)]
pub unsafe fn init_fixed(mem: *mut u8, len: usize, capacity: u32, record_size: u32) -> Result<(), RingError> {
    if record_size == 0 && capacity_ok(capacity) {
        return Err(LayoutError::BadRecordSize(0).into());
    }
    // SAFETY: forwarded caller contract.
    unsafe { init_records(mem, len, capacity, record_size) }
}

/// Initialises a ring as its header's `record_size` word says: variable-length
/// records for 0 (as [`init`]), else fixed-size records of that many bytes (as
/// [`init_fixed`]). For creators that take the size from a request.
///
/// # Safety
/// As for [`init`].
#[cfg(not(loom))]
#[allow(unsafe_code)]
pub unsafe fn init_records(mem: *mut u8, len: usize, capacity: u32, record_size: u32) -> Result<(), RingError> {
    if capacity_ok(capacity) {
        check_record_size(record_size, capacity)?;
    }
    let base = check_region(mem, len)?;
    let needed = RingLayout::bytes_for(capacity).ok_or(LayoutError::BadCapacity(capacity))?;
    if len < needed {
        return Err(LayoutError::TooShort { needed, len }.into());
    }
    // SAFETY: `base` is 8-aligned and valid for `len >= HEADER_LEN + capacity`
    // bytes (the caller's contract and the checks above); capacity is a power of two.
    let region = unsafe { Region::new(base, capacity as usize) };
    write_header(&region, capacity, record_size);
    Ok(())
}

/// Validates pointer, length and header; returns the region and its geometry.
#[cfg(not(loom))]
#[allow(unsafe_code)]
unsafe fn attach_region(mem: *mut u8, len: usize) -> Result<(Region, Geometry), RingError> {
    let base = check_region(mem, len)?;
    // SAFETY: `base` is 8-aligned and valid for at least HEADER_LEN bytes (checked;
    // the caller vouches for `len`). With capacity 0 only the header is reachable.
    let header = unsafe { Region::new(base, 0) };
    let geo = read_geometry(&header)?;
    let needed = layout::HEADER_LEN + geo.cap as usize;
    if len < needed {
        return Err(LayoutError::TooShort { needed, len }.into());
    }
    // SAFETY: as above, now with `len >= HEADER_LEN + cap` checked against the
    // capacity we read once and keep privately; `cap` is a power of two.
    let region = unsafe { Region::new(base, geo.cap as usize) };
    Ok((region, geo))
}

/// Reads both indices at attach time and checks they are consistent.
fn attach_indices(region: &Region, geo: Geometry) -> Result<(u64, u64), RingError> {
    let failed = region.failed().load(Ordering::Acquire);
    if failed != 0 {
        return Err(RingError::Corrupt(failed));
    }
    let head = region.head().load(Ordering::Acquire);
    let tail = region.tail().load(Ordering::Acquire);
    if tail > head || head - tail > geo.cap || !geo.aligned(head) || !geo.aligned(tail) {
        let _ = region.failed().compare_exchange(0, reason::BAD_INDICES, Ordering::AcqRel, Ordering::Relaxed);
        return Err(RingError::Corrupt(reason::BAD_INDICES));
    }
    Ok((head, tail))
}

/// Marks the region failed (first reason wins in the header) and returns the error.
fn mark_failed(region: &Region, code: u32) -> RingError {
    let code = if code == 0 { reason::ABORTED } else { code };
    let _ = region.failed().compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
    RingError::Corrupt(code)
}

/// What both ends of a ring keep: the region, the geometry copied when
/// attaching (never re-read from shared memory), and this end's failure.
struct Side {
    region: Region,
    geo: Geometry,
    /// Nonzero once this end saw a failure: every later call reports it.
    broken: u32,
}

impl Side {
    fn max_record(&self) -> usize {
        if self.geo.fixed != 0 {
            self.geo.fixed as usize
        } else {
            self.geo.max_record as usize
        }
    }

    fn record_size(&self) -> Option<usize> {
        (self.geo.fixed != 0).then_some(self.geo.fixed as usize)
    }

    #[inline]
    fn check(&self) -> Result<(), RingError> {
        if self.broken != 0 {
            Err(RingError::Corrupt(self.broken))
        } else {
            Ok(())
        }
    }

    fn fail_with(&mut self, code: u32) -> RingError {
        let e = mark_failed(&self.region, code);
        if let RingError::Corrupt(c) = e {
            self.broken = c;
        }
        e
    }

    #[inline]
    fn check_shared_failed(&mut self) -> Result<(), RingError> {
        let f = self.region.failed().load(Ordering::Acquire);
        if f != 0 {
            self.broken = f;
            return Err(RingError::Corrupt(f));
        }
        Ok(())
    }
}

/// The writing side of a ring.
///
/// Records are staged with [`write`](Self::write) and made visible together by
/// [`publish`](Self::publish); [`try_push`](Self::try_push) does both.
/// [`make_visible`](Self::make_visible) shows staged records to a polling
/// consumer early, without the wake-up check; `publish` is still due.
pub struct Producer {
    side: Side,
    /// Next write position (staged records end here).
    write: u64,
    /// Last value stored to `head` (by `publish` or `make_visible`).
    visible: u64,
    /// Last value stored to `head` by `publish`, i.e. followed by the check of
    /// the consumer's sleeping flag.
    published: u64,
    /// Last validated consumer `tail`.
    tail: u64,
}

impl Producer {
    /// Attaches the producer to an initialised region, validating its header and
    /// indices and copying its geometry.
    ///
    /// # Safety
    /// `mem` must be valid for reads and writes of `len` bytes for the lifetime of
    /// the `Producer`, and no other `Producer` may use the region meanwhile. The
    /// bytes may be changed by anyone else at any time: that is tolerated.
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn attach(mem: *mut u8, len: usize) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        let (region, geo) = unsafe { attach_region(mem, len) }?;
        Self::from_region(region, geo)
    }

    fn from_region(region: Region, geo: Geometry) -> Result<Self, RingError> {
        let (head, tail) = attach_indices(&region, geo)?;
        Ok(Producer { side: Side { region, geo, broken: 0 }, write: head, visible: head, published: head, tail })
    }

    /// The largest payload [`write`](Self::write) accepts (in a fixed-size
    /// ring, the record size).
    pub fn max_record(&self) -> usize {
        self.side.max_record()
    }

    /// The fixed record size, or `None` for variable-length records.
    pub fn record_size(&self) -> Option<usize> {
        self.side.record_size()
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.side.geo.cap as usize
    }

    /// Reloads and validates the consumer's `tail`.
    #[inline]
    fn reload_tail(&mut self) -> Result<(), RingError> {
        let t = self.side.region.tail().load(Ordering::Acquire);
        if t < self.tail {
            return Err(self.side.fail_with(reason::TAIL_BACKWARDS));
        }
        if t > self.visible {
            return Err(self.side.fail_with(reason::TAIL_AHEAD));
        }
        if !self.side.geo.aligned(t) {
            return Err(self.side.fail_with(reason::MISALIGNED_INDEX));
        }
        self.tail = t;
        self.side.check_shared_failed()
    }

    /// Whether `len` payload bytes fit now; reloads `tail` only if the cached
    /// value says they do not.
    #[inline(always)]
    fn reserve(&mut self, len: usize) -> Result<Option<u32>, RingError> {
        self.side.check()?;
        let geo = &self.side.geo;
        let len32 = if geo.fixed != 0 {
            if len != geo.fixed as usize {
                return Err(RingError::WrongSize { len, size: geo.fixed as usize });
            }
            geo.fixed
        } else {
            match u32::try_from(len) {
                Ok(l) if l <= geo.max_record => l,
                _ => return Err(RingError::TooLarge { len, max: self.max_record() }),
            }
        };
        let foot = geo.footprint(len32);
        // write - tail <= cap always holds (tail is validated <= visible <= write).
        if self.write - self.tail + foot > self.side.geo.cap {
            self.reload_tail()?;
            if self.write - self.tail + foot > self.side.geo.cap {
                return Ok(None);
            }
        }
        Ok(Some(len32))
    }

    /// Writes the record header (variable-length rings only); returns where
    /// the payload goes.
    #[inline]
    fn put_header(&mut self, len: u32) -> u64 {
        if self.side.geo.fixed != 0 {
            return self.write;
        }
        self.side.region.write_word(self.write, u64::from(len));
        self.write + RECORD_HEADER as u64
    }

    /// Stages one record (not yet visible to the consumer). `Ok(false)` if the
    /// ring has no room for it now.
    #[inline]
    pub fn write(&mut self, record: &[u8]) -> Result<bool, RingError> {
        let Some(len) = self.reserve(record.len())? else { return Ok(false) };
        let at = self.put_header(len);
        self.side.region.copy_in(at, record);
        self.write += self.side.geo.footprint(len);
        Ok(true)
    }

    /// Stages one record made of the concatenation of `parts` (e.g. a header and
    /// a payload, without assembling them first). `Ok(false)` if it does not fit.
    #[inline(always)]
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> Result<bool, RingError> {
        let total = parts.iter().fold(0usize, |a, p| a.saturating_add(p.len()));
        let Some(len) = self.reserve(total)? else { return Ok(false) };
        let mut pos = self.put_header(len);
        for p in parts {
            self.side.region.copy_in(pos, p);
            pos += p.len() as u64;
        }
        self.write += self.side.geo.footprint(len);
        Ok(true)
    }

    /// Stages as many whole records of `records` (records of the ring's fixed
    /// size, back to back) as fit now, with one copy, and returns how many
    /// (0 if the ring is full). Fixed-size rings only: [`RingError::NotFixedSize`]
    /// otherwise, and [`RingError::WrongSize`] if `records.len()` is not a
    /// multiple of the record size (nothing is written then).
    #[inline]
    pub fn write_records(&mut self, records: &[u8]) -> Result<usize, RingError> {
        self.side.check()?;
        let size = self.side.geo.fixed as usize;
        if size == 0 {
            return Err(RingError::NotFixedSize);
        }
        let want = self.side.geo.units_in(records.len() as u64) as usize;
        if want * size != records.len() {
            return Err(RingError::WrongSize { len: records.len(), size });
        }
        let free = |p: &Self| p.side.geo.units_in(p.side.geo.cap - (p.write - p.tail)) as usize;
        if free(self) < want {
            self.reload_tail()?;
        }
        let n = want.min(free(self));
        // n * size <= records.len(), and <= cap, so `copy_in` copies it all.
        let Some(src) = records.get(..n * size) else { return Ok(0) };
        self.side.region.copy_in(self.write, src);
        self.write += src.len() as u64;
        Ok(n)
    }

    /// Bytes staged by `write` and not yet published by [`publish`](Self::publish)
    /// (records only made visible by [`make_visible`](Self::make_visible) count).
    pub fn unpublished(&self) -> usize {
        (self.write - self.published) as usize
    }

    /// Makes all staged records visible. Returns [`WakeNeeded`]`(true)` if the
    /// consumer announced it sleeps: the caller must then signal its event.
    /// This is also the wake-up check for records shown by
    /// [`make_visible`](Self::make_visible).
    #[inline]
    pub fn publish(&mut self) -> Result<WakeNeeded, RingError> {
        self.side.check()?;
        if self.write == self.published {
            return Ok(WakeNeeded(false));
        }
        self.side.region.head().store(self.write, Ordering::Release);
        self.visible = self.write;
        self.published = self.write;
        self.side.check_shared_failed()?;
        // Always a read-modify-write (even when the flag is clear): it pairs with
        // the consumer's swap in `prepare_sleep`, so either we read its 1 or its
        // swap reads ours and it then sees the head stored above.
        Ok(WakeNeeded(self.side.region.sleeping().swap(0, Ordering::AcqRel) != 0))
    }

    /// Makes all staged records visible to a consumer that is polling, without
    /// the wake-up check: a plain release store of `head` (no read-modify-write,
    /// no fence), so that a producer can show every record as soon as it is
    /// written, at the cost of a store. A consumer that already announced it
    /// sleeps is *not* woken: as after [`write`](Self::write), call
    /// [`publish`](Self::publish) (and signal when it says so) before the
    /// producer waits or stops producing. Records shown here count as
    /// [`unpublished`](Self::unpublished) until then.
    #[inline]
    pub fn make_visible(&mut self) -> Result<(), RingError> {
        self.side.check()?;
        if self.write == self.visible {
            return Ok(());
        }
        // Release: the records' bytes happen before this head value. The flag is
        // not touched, so this gives no wake-up guarantee; the next `publish` does.
        self.side.region.head().store(self.write, Ordering::Release);
        self.visible = self.write;
        self.side.check_shared_failed()
    }

    /// Writes and publishes one record. `Ok(None)` if the ring is full (records
    /// staged earlier stay staged).
    #[inline]
    pub fn try_push(&mut self, record: &[u8]) -> Result<Option<WakeNeeded>, RingError> {
        if self.write(record)? {
            self.publish().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Marks the channel failed (e.g. on teardown); both sides then report
    /// [`RingError::Corrupt`]`(reason)` (0 becomes [`reason::ABORTED`]).
    pub fn fail(&mut self, reason: u32) {
        let _ = self.side.fail_with(reason);
    }

    /// Checks the shared `failed` word now.
    pub fn status(&mut self) -> Result<(), RingError> {
        self.side.check()?;
        self.side.check_shared_failed()
    }
}

/// The reading side of a ring.
pub struct Consumer {
    side: Side,
    /// Own index: everything before it is consumed.
    tail: u64,
    /// Last validated producer `head`.
    head: u64,
    /// Last value stored to the shared `tail` (consumed space is handed back in
    /// batches: when the consumer catches up with the `head` it knows, or after
    /// an eighth of the capacity).
    released: u64,
}

impl Consumer {
    /// Attaches the consumer to an initialised region, validating its header and
    /// indices and copying its geometry.
    ///
    /// # Safety
    /// `mem` must be valid for reads and writes of `len` bytes for the lifetime of
    /// the `Consumer`, and no other `Consumer` may use the region meanwhile. The
    /// bytes may be changed by anyone else at any time: that is tolerated.
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn attach(mem: *mut u8, len: usize) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        let (region, geo) = unsafe { attach_region(mem, len) }?;
        Self::from_region(region, geo)
    }

    fn from_region(region: Region, geo: Geometry) -> Result<Self, RingError> {
        let (head, tail) = attach_indices(&region, geo)?;
        Ok(Consumer { side: Side { region, geo, broken: 0 }, tail, head, released: tail })
    }

    /// The largest payload a record can have (in a fixed-size ring, the
    /// record size).
    pub fn max_record(&self) -> usize {
        self.side.max_record()
    }

    /// The fixed record size, or `None` for variable-length records.
    pub fn record_size(&self) -> Option<usize> {
        self.side.record_size()
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.side.geo.cap as usize
    }

    #[inline]
    fn accept_head(&mut self, h: u64) -> Result<(), RingError> {
        if h < self.head {
            return Err(self.side.fail_with(reason::HEAD_BACKWARDS));
        }
        if h - self.tail > self.side.geo.cap {
            return Err(self.side.fail_with(reason::HEAD_OVERRUN));
        }
        if !self.side.geo.aligned(h) {
            return Err(self.side.fail_with(reason::MISALIGNED_INDEX));
        }
        self.head = h;
        self.side.check_shared_failed()
    }

    /// Published bytes not yet consumed; reloads `head` only when the cached
    /// value says the ring is empty.
    #[inline]
    fn available(&mut self) -> Result<u64, RingError> {
        self.side.check()?;
        if self.head == self.tail {
            let h = self.side.region.head().load(Ordering::Acquire);
            self.accept_head(h)?;
        }
        Ok(self.head - self.tail)
    }

    /// The next record's length and footprint, validated.
    #[inline(always)]
    fn next(&mut self) -> Result<Option<(usize, u64)>, RingError> {
        let avail = self.available()?;
        if avail == 0 {
            return Ok(None);
        }
        let fixed = self.side.geo.fixed;
        if fixed != 0 {
            // avail >= fixed: both indices are multiples of it.
            return Ok(Some((fixed as usize, u64::from(fixed))));
        }
        // avail >= 8: both indices are multiples of 8.
        let word = self.side.region.read_word(self.tail);
        if word >> 32 != 0 {
            return Err(self.side.fail_with(reason::RECORD_HEADER));
        }
        let len = word as u32;
        if len > self.side.geo.max_record {
            return Err(self.side.fail_with(reason::RECORD_TOO_LONG));
        }
        let foot = self.side.geo.footprint(len);
        if foot > avail {
            return Err(self.side.fail_with(reason::RECORD_TRUNCATED));
        }
        Ok(Some((len as usize, foot)))
    }

    #[inline]
    fn advance(&mut self, foot: u64) {
        self.tail += foot;
        if self.tail == self.head || self.tail - self.released >= self.side.geo.cap / 8 {
            self.release();
        }
    }

    #[inline]
    fn release(&mut self) {
        self.released = self.tail;
        self.side.region.tail().store(self.tail, Ordering::Release);
    }

    /// The length of the next record, if one is published.
    pub fn peek_len(&mut self) -> Result<Option<usize>, RingError> {
        Ok(self.next()?.map(|(len, _)| len))
    }

    /// Copies the next record into `buf` and consumes it; returns its length.
    /// `Ok(None)` if the ring is empty; [`RingError::BufferTooSmall`] (record not
    /// consumed) if it does not fit `buf`.
    #[inline(always)]
    pub fn try_pop(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RingError> {
        let Some((len, foot)) = self.next()? else { return Ok(None) };
        let dst = buf.get_mut(..len).ok_or(RingError::BufferTooSmall { needed: len })?;
        self.side.region.copy_out(self.tail + self.side.geo.header(), dst);
        self.advance(foot);
        Ok(Some(len))
    }

    /// Copies the next record into a new vector and consumes it.
    #[cfg(feature = "alloc")]
    pub fn try_pop_vec(&mut self) -> Result<Option<alloc::vec::Vec<u8>>, RingError> {
        let Some((len, foot)) = self.next()? else { return Ok(None) };
        let mut v = alloc::vec![0u8; len];
        self.side.region.copy_out(self.tail + self.side.geo.header(), &mut v);
        self.advance(foot);
        Ok(Some(v))
    }

    /// Copies as many whole records as are published and fit `buf` into it,
    /// back to back, with one copy, and consumes them; returns how many (0 if
    /// the ring is empty). Fixed-size rings only: [`RingError::NotFixedSize`]
    /// otherwise, and [`RingError::BufferTooSmall`] if `buf` cannot hold one record.
    #[inline]
    pub fn pop_records(&mut self, buf: &mut [u8]) -> Result<usize, RingError> {
        self.side.check()?;
        let size = self.side.geo.fixed as usize;
        if size == 0 {
            return Err(RingError::NotFixedSize);
        }
        let geo = self.side.geo;
        let room = geo.units_in(buf.len() as u64) as usize;
        if room == 0 {
            return Err(RingError::BufferTooSmall { needed: size });
        }
        // Both indices are multiples of `size` (validated), so `avail` is too.
        if geo.units_in(self.head - self.tail) < room as u64 {
            let h = self.side.region.head().load(Ordering::Acquire);
            self.accept_head(h)?;
        }
        let n = room.min(geo.units_in(self.head - self.tail) as usize);
        if n == 0 {
            return Ok(0);
        }
        // n * size <= buf.len(): n <= room.
        let Some(dst) = buf.get_mut(..n * size) else { return Ok(0) };
        self.side.region.copy_out(self.tail, dst);
        self.advance(dst.len() as u64);
        Ok(n)
    }

    /// Announces that the consumer is about to wait. See the module docs.
    pub fn prepare_sleep(&mut self) -> Result<SleepDecision, RingError> {
        self.side.check()?;
        if self.head != self.tail {
            return Ok(SleepDecision::DataReady);
        }
        // A read-modify-write paired with the producer's swap in `publish`
        // (see the module docs); acquire orders the `head` load after it.
        self.side.region.sleeping().swap(1, Ordering::AcqRel);
        let h = self.side.region.head().load(Ordering::Acquire);
        if let Err(e) = self.accept_head(h) {
            self.cancel_sleep();
            return Err(e);
        }
        if self.head != self.tail {
            self.cancel_sleep();
            return Ok(SleepDecision::DataReady);
        }
        Ok(SleepDecision::MustWait)
    }

    /// Withdraws a sleep announcement (after a wait that timed out).
    pub fn cancel_sleep(&mut self) {
        // A swap, not a store: every write of the flag is a read-modify-write, so
        // the chain of swaps that orders the two sides is never broken.
        self.side.region.sleeping().swap(0, Ordering::AcqRel);
    }

    /// Marks the channel failed (e.g. on teardown); both sides then report
    /// [`RingError::Corrupt`]`(reason)` (0 becomes [`reason::ABORTED`]).
    pub fn fail(&mut self, reason: u32) {
        let _ = self.side.fail_with(reason);
    }

    /// Checks the shared `failed` word now.
    pub fn status(&mut self) -> Result<(), RingError> {
        self.side.check()?;
        self.side.check_shared_failed()
    }
}

/// Loom support: a modelled region and an attached pair (variable-length records).
#[cfg(loom)]
pub fn loom_pair(capacity: u32) -> Result<(Producer, Consumer, Region), RingError> {
    loom_pair_fixed(capacity, 0)
}

/// Loom support: as [`loom_pair`], with fixed-size records of `record_size`
/// bytes (0: variable-length records).
#[cfg(loom)]
pub fn loom_pair_fixed(capacity: u32, record_size: u32) -> Result<(Producer, Consumer, Region), RingError> {
    if !capacity_ok(capacity) {
        return Err(LayoutError::BadCapacity(capacity).into());
    }
    check_record_size(record_size, capacity)?;
    let region = Region::new_zeroed(capacity as usize);
    write_header(&region, capacity, record_size);
    let geo = read_geometry(&region)?;
    let p = Producer::from_region(region.clone(), geo)?;
    let c = Consumer::from_region(region.clone(), geo)?;
    Ok((p, c, region))
}
