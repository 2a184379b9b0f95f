//! Phase 1 of the fault suite: random IOCTLs. Codes (entirely random,
//! near misses of the demo's, the demo's own), methods, sizes and contents
//! from a seeded PRNG, some well-formed enough to reach the handlers'
//! depths. Every request must end with a status from a defined set; pended
//! ones are cancelled after a short wait and must then end.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ntcomm_demo_proto::{
    self as proto, Delay, LpcAsk, LpcConnect, LpcConnected, LpcTally, PortAsk, PortTally, RingOpen, RingSource, Stats,
};
use ntcomm_proto::{ControlCode, NtStatus};
use ntcomm_um::{CompletionPort, Device, OpId};
use serde_json::{json, Value};
use zerocopy::IntoBytes;

use crate::faults::{HANG, LPC_PARENT};
use crate::rng::Rng;

/// An IOCTL declaration with byte-slice input and output.
type Erased = ntcomm_proto::Ioctl<[u8], [u8]>;

/// The statuses a request may end with; anything else is a failure. Each
/// is a status the demo driver (or its IOCTL table) returns for a reason
/// stated in docs/RELIABILITY.md.
const DEFINED: [NtStatus; 19] = [
    NtStatus::STATUS_SUCCESS,
    NtStatus::STATUS_INVALID_DEVICE_REQUEST,
    NtStatus::STATUS_INVALID_PARAMETER,
    NtStatus::STATUS_BUFFER_TOO_SMALL,
    NtStatus::STATUS_NOT_SUPPORTED,
    NtStatus::STATUS_ACCESS_DENIED,
    NtStatus::STATUS_CANCELLED,
    NtStatus::STATUS_NOT_FOUND,
    NtStatus::STATUS_DEVICE_BUSY,
    NtStatus::STATUS_INSUFFICIENT_RESOURCES,
    NtStatus::STATUS_QUOTA_EXCEEDED,
    NtStatus::STATUS_OBJECT_NAME_COLLISION,
    NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    NtStatus::STATUS_PORT_CONNECTION_REFUSED,
    NtStatus::STATUS_PORT_DISCONNECTED,
    NtStatus::STATUS_INVALID_BUFFER_SIZE,
    NtStatus::STATUS_IO_TIMEOUT,
    NtStatus::STATUS_DELETE_PENDING,
    NtStatus::STATUS_INVALID_VIEW_SIZE,
];

/// Every code the demo driver serves.
const DEMO_CODES: [&Erased; 17] = [
    &proto::ALL_IOCTLS[0],
    &proto::ALL_IOCTLS[1],
    &proto::ALL_IOCTLS[2],
    &proto::ALL_IOCTLS[3],
    &proto::ALL_IOCTLS[4],
    &proto::ALL_IOCTLS[5],
    &proto::ALL_IOCTLS[6],
    &proto::ALL_IOCTLS[7],
    &proto::ALL_IOCTLS[8],
    &proto::ALL_IOCTLS[9],
    &proto::ALL_IOCTLS[10],
    &proto::ALL_IOCTLS[11],
    &proto::ALL_IOCTLS[12],
    &proto::ALL_IOCTLS[13],
    &LPC_CONNECT_ERASED,
    &LPC_ASK_ERASED,
    &LPC_DISCONNECT_ERASED,
];
const LPC_CONNECT_ERASED: Erased = proto::LPC_CONNECT.erase();
const LPC_ASK_ERASED: Erased = proto::LPC_ASK.erase();
const LPC_DISCONNECT_ERASED: Erased = proto::LPC_DISCONNECT.erase();

/// How a request was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Any 32-bit code.
    RandomCode,
    /// The demo's device type, a random function, method and access.
    DemoDeviceType,
    /// A demo code with another method or access.
    NearMiss,
    /// A demo code with random sizes and contents.
    DemoRandom,
    /// A demo code with a well-formed input.
    DemoValid,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::RandomCode => "random code",
            Kind::DemoDeviceType => "demo device type, random function",
            Kind::NearMiss => "demo code, other method/access",
            Kind::DemoRandom => "demo code, random sizes and contents",
            Kind::DemoValid => "demo code, well-formed input",
        }
    }
}

struct Req {
    code: u32,
    input: Vec<u8>,
    out: usize,
    kind: Kind,
}

struct InFlight {
    id: OpId,
    code: u32,
    kind: Kind,
    started: Instant,
    cancelled: Option<Instant>,
    /// The input of an echo, to check the answer.
    echo: Option<Vec<u8>>,
}

/// The random-request engine: one overlapped handle, `depth` requests in
/// flight, each cancelled after `pend` if still pending; the handle is
/// closed and reopened every few thousand requests (closing ends the
/// channels a handle owns).
pub(crate) struct Fuzz {
    rng: Rng,
    dev: Option<(Device, CompletionPort)>,
    depth: usize,
    pend: Duration,
    inflight: HashMap<u64, InFlight>,
    next_tag: u64,
    issued: u64,
    since_reopen: u64,
    statuses: BTreeMap<String, u64>,
    kinds: BTreeMap<Kind, u64>,
    methods: [u64; 4],
    cancels: u64,
    cancelled_then_done: u64,
    echo_checked: u64,
    slowest_after_cancel: Duration,
    handles_opened: u64,
    /// Indexes into DEMO_CODES to use only (empty: all, and random codes).
    only: Vec<usize>,
}

const REOPEN_EVERY: u64 = 2_000;

impl Fuzz {
    pub(crate) fn new(seed: u64, depth: usize, pend: Duration, only: &[String]) -> Result<Self, String> {
        let mut picked = Vec::new();
        for name in only {
            let i = DEMO_CODES.iter().position(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| format!("no demo IOCTL {name}"))?;
            picked.push(i);
        }
        let mut f = Fuzz {
            rng: Rng::new(seed),
            dev: None,
            depth: depth.max(1),
            pend,
            inflight: HashMap::new(),
            next_tag: 0,
            issued: 0,
            since_reopen: 0,
            statuses: BTreeMap::new(),
            kinds: BTreeMap::new(),
            methods: [0; 4],
            cancels: 0,
            cancelled_then_done: 0,
            echo_checked: 0,
            slowest_after_cancel: Duration::ZERO,
            handles_opened: 0,
            only: picked,
        };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.drain()?;
        self.dev = None;
        let d = Device::open_overlapped(proto::USER_PATH).map_err(|e| e.to_string())?;
        let p = CompletionPort::new().map_err(|e| e.to_string())?;
        p.associate(&d, 0).map_err(|e| e.to_string())?;
        self.dev = Some((d, p));
        self.since_reopen = 0;
        self.handles_opened += 1;
        Ok(())
    }

    /// Issues `n` more requests.
    pub(crate) fn run(&mut self, n: u64) -> Result<(), String> {
        let mut left = n;
        while left > 0 || !self.inflight.is_empty() {
            if self.since_reopen >= REOPEN_EVERY {
                self.reopen()?;
            }
            while left > 0 && self.inflight.len() < self.depth && self.since_reopen < REOPEN_EVERY {
                let r = self.generate();
                self.issue(r)?;
                left -= 1;
            }
            if left == 0 && self.inflight.is_empty() {
                break;
            }
            self.reap(if left == 0 { Duration::from_millis(1) } else { Duration::ZERO })?;
            if left == 0 {
                // Let the tail finish before the next batch.
                continue;
            }
        }
        Ok(())
    }

    /// Cancels whatever is left and collects it.
    pub(crate) fn drain(&mut self) -> Result<(), String> {
        if let Some((d, _)) = &self.dev {
            let _ = d.cancel_all();
        }
        let deadline = Instant::now() + HANG;
        while !self.inflight.is_empty() {
            if Instant::now() > deadline {
                let stuck: Vec<String> = self.inflight.values().map(|f| format!("{:#010x}", f.code)).collect();
                return Err(format!("requests still pending {HANG:?} after CancelIoEx: {stuck:?}"));
            }
            self.reap(Duration::from_millis(10))?;
        }
        Ok(())
    }

    fn issue(&mut self, r: Req) -> Result<(), String> {
        let (dev, _) = self.dev.as_ref().ok_or("no handle")?;
        let tag = self.next_tag;
        self.next_tag += 1;
        self.issued += 1;
        self.since_reopen += 1;
        *self.kinds.entry(r.kind).or_default() += 1;
        self.methods[(r.code & 3) as usize] += 1;
        let is_echo = DEMO_CODES[..4].iter().any(|c| c.code.0 == r.code);
        let echo = is_echo.then(|| r.input.clone());
        match dev.start_ioctl_raw(r.code, r.input, r.out, tag) {
            Ok(id) => {
                self.inflight.insert(tag, InFlight { id, code: r.code, kind: r.kind, started: Instant::now(), cancelled: None, echo });
                Ok(())
            }
            // Failed at once: no packet comes; this is its status.
            Err(e) => self.record(r.code, r.kind, Err(e), &[], None),
        }
    }

    /// Collects completions (waiting up to `wait` for the first, or until
    /// the oldest request's pend time is up), and cancels requests that
    /// pended too long.
    fn reap(&mut self, wait: Duration) -> Result<(), String> {
        let now = Instant::now();
        let next_cancel = self.inflight.values().filter(|f| f.cancelled.is_none()).map(|f| f.started + self.pend).min();
        let until_cancel = next_cancel.map_or(Duration::from_millis(50), |t| t.saturating_duration_since(now));
        let timeout = if self.inflight.len() >= self.depth || wait > Duration::ZERO {
            until_cancel.max(wait).min(Duration::from_millis(50))
        } else {
            Duration::ZERO
        };
        let mut done = Vec::new();
        {
            let (_, port) = self.dev.as_ref().ok_or("no handle")?;
            port.wait_many(&mut done, 64, Some(timeout)).map_err(|e| e.to_string())?;
        }
        for c in done {
            let Some(f) = self.inflight.remove(&c.tag) else {
                return Err(format!("a completion for unknown tag {}", c.tag));
            };
            if let Some(at) = f.cancelled {
                self.cancelled_then_done += 1;
                self.slowest_after_cancel = self.slowest_after_cancel.max(at.elapsed());
            }
            self.record(f.code, f.kind, c.result, &c.buffer, f.echo.as_deref())?;
        }
        let now = Instant::now();
        let (dev, _) = self.dev.as_ref().ok_or("no handle")?;
        for f in self.inflight.values_mut() {
            match f.cancelled {
                None if now.duration_since(f.started) >= self.pend => {
                    let _ = dev.cancel(f.id);
                    f.cancelled = Some(now);
                    self.cancels += 1;
                }
                Some(at) if now.duration_since(at) > HANG => {
                    return Err(format!(
                        "request {:#010x} ({}) still pending {HANG:?} after CancelIoEx: not cancellable",
                        f.code,
                        f.kind.name()
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn record(&mut self, code: u32, kind: Kind, result: ntcomm_um::Result<usize>, out: &[u8], echo: Option<&[u8]>) -> Result<(), String> {
        let status = match &result {
            Ok(_) => NtStatus::STATUS_SUCCESS,
            Err(e) => match e.ntstatus() {
                Some(s) => s,
                None => return Err(format!("request {code:#010x} ({}) failed without an NTSTATUS: {e}", kind.name())),
            },
        };
        if !DEFINED.contains(&status) {
            return Err(format!("request {code:#010x} ({}) ended with an undefined status {status}", kind.name()));
        }
        let name = status.name().map_or_else(|| format!("{status}"), str::to_owned);
        *self.statuses.entry(name).or_default() += 1;
        if let (Ok(n), Some(input)) = (&result, echo) {
            if code & 3 == ntcomm_proto::Method::InDirect as u32 {
                // COMPARE_IN_DIRECT against the zeroed buffer ntcomm-um passes:
                // the common prefix is the input's leading zeros, and the
                // read-only buffer must come back untouched.
                let zeros = input.iter().take_while(|b| **b == 0).count();
                if *n != zeros || out.iter().any(|b| *b != 0) {
                    return Err(format!(
                        "compare {code:#010x}: {} B in, {n} B reported ({zeros} expected), or the read-only buffer was written",
                        input.len()
                    ));
                }
            } else if *n != input.len() || out.get(..*n) != Some(input) {
                return Err(format!("echo {code:#010x}: {} B in, {n} B back, contents differ", input.len()));
            }
            self.echo_checked += 1;
        }
        Ok(())
    }

    pub(crate) fn summary(&self) -> Value {
        let kinds: BTreeMap<&str, u64> = self.kinds.iter().map(|(k, v)| (k.name(), *v)).collect();
        json!({
            "statuses": self.statuses,
            "kinds": kinds,
            "methods": {"buffered": self.methods[0], "in_direct": self.methods[1], "out_direct": self.methods[2], "neither": self.methods[3]},
            "cancelled_after_pending": self.cancels,
            "slowest_completion_after_cancel_ms": self.slowest_after_cancel.as_millis() as u64,
            "echo_replies_checked": self.echo_checked,
            "handles_opened": self.handles_opened,
        })
    }

    fn generate(&mut self) -> Req {
        if !self.only.is_empty() {
            let which = self.only[self.rng.below(self.only.len() as u64) as usize];
            if self.rng.chance(50) {
                return self.well_formed_of(which);
            }
            let (n_in, n_out) = (self.rng.size(), self.rng.size());
            return Req { code: DEMO_CODES[which].code.0, input: self.rng.bytes(n_in), out: n_out, kind: Kind::DemoRandom };
        }
        let rng = &mut self.rng;
        let r = rng.below(100);
        let (code, kind) = match r {
            0..=19 => (rng.u32(), Kind::RandomCode),
            20..=34 => {
                let c = ControlCode::new(
                    proto::DEVICE_TYPE,
                    rng.below(4096) as u16,
                    method_of(rng.below(4)),
                    ntcomm_proto::Access(rng.below(4) as u8),
                );
                (c.0, Kind::DemoDeviceType)
            }
            35..=44 => {
                let base = DEMO_CODES[rng.below(DEMO_CODES.len() as u64) as usize].code.0;
                let flipped = base ^ (1 + rng.below(3) as u32) ^ ((rng.below(4) as u32) << 14);
                (if flipped == base { base ^ 1 } else { flipped }, Kind::NearMiss)
            }
            45..=69 => (DEMO_CODES[rng.below(DEMO_CODES.len() as u64) as usize].code.0, Kind::DemoRandom),
            _ => return self.well_formed(),
        };
        let (n_in, n_out) = (rng.size(), rng.size());
        Req { code, input: rng.bytes(n_in), out: n_out, kind }
    }

    /// A demo request whose input is well-formed (random within its rules,
    /// sometimes at or past their edges), to reach the handlers' depths.
    fn well_formed(&mut self) -> Req {
        let which = self.rng.below(DEMO_CODES.len() as u64) as usize;
        self.well_formed_of(which)
    }

    fn well_formed_of(&mut self, which: usize) -> Req {
        let rng = &mut self.rng;
        let ioctl = DEMO_CODES[which];
        let code = ioctl.code.0;
        let small = |rng: &mut Rng, n: u64| rng.below(n + 1) as u32;
        let (input, out): (Vec<u8>, usize) = match which {
            0..=3 => {
                let n = rng.below(proto::MAX_ECHO as u64 + 1) as usize;
                let out = if rng.chance(90) { n + rng.below(64) as usize } else { rng.below(n as u64 + 1) as usize };
                (rng.bytes(n), out)
            }
            4 => (Vec::new(), core::mem::size_of::<Stats>()),
            5 => (Vec::new(), proto::MAX_EVENT),
            6 => {
                let n = rng.below(proto::MAX_EVENT as u64 + 1) as usize;
                (rng.bytes(n), 0)
            }
            7 => {
                let millis = match rng.below(4) {
                    0 => 0,
                    1 => small(rng, 20),
                    2 => small(rng, proto::MAX_DELAY_MS as u64),
                    _ => proto::MAX_DELAY_MS + small(rng, 10),
                };
                (Delay { millis, token: rng.u32() }.as_bytes().to_vec(), 4)
            }
            8 => {
                let n = rng.below(proto::MAX_PIPE_MESSAGE as u64 + 1) as usize;
                (rng.bytes(n), 0)
            }
            9 => {
                let cap = |rng: &mut Rng| if rng.chance(90) { 4096u32 << rng.below(5) } else { rng.u32() };
                let mut nonce = [0u8; 16];
                rng.fill(&mut nonce);
                let o = RingOpen {
                    d2u_capacity: cap(rng),
                    u2d_capacity: cap(rng),
                    mode: small(rng, 2),
                    record_size: match rng.below(8) {
                        0 => rng.u32(),
                        1 => 8 * small(rng, 64),
                        _ => 0,
                    },
                    nonce,
                };
                (o.as_bytes().to_vec(), core::mem::size_of::<proto::RingInfo>())
            }
            10 => {
                let count = if rng.chance(10) { u64::MAX } else { rng.below(10_000) };
                let s = RingSource { count, rate: if rng.chance(50) { 0 } else { rng.u32() }, record_len: small(rng, 300) };
                (s.as_bytes().to_vec(), 0)
            }
            11 => (Vec::new(), core::mem::size_of::<proto::RingStatus>()),
            12 => {
                let a = PortAsk {
                    questions: if rng.chance(10) { u32::MAX } else { small(rng, 64) },
                    threads: small(rng, 17),
                    timeout_ms: small(rng, 100),
                    want_reply: small(rng, 1),
                    question_len: if rng.chance(90) { proto::RECORD_MIN as u32 + small(rng, 4096) } else { rng.u32() },
                    reserved: 0,
                };
                (a.as_bytes().to_vec(), core::mem::size_of::<PortTally>())
            }
            13 => {
                let addr = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1 << 47),
                    2 => u64::MAX - rng.below(4096),
                    _ => rng.next_u64(),
                };
                (addr.to_le_bytes().to_vec(), 4)
            }
            14 => {
                let info: &[u8] = if rng.chance(80) { proto::LPC_CONNECT_INFO } else { b"not the demo" };
                let mut c = LpcConnect::new(info, if rng.chance(70) { 0 } else { 4096 << rng.below(10) });
                c.instance = if rng.chance(70) { LPC_PARENT } else { rng.u32() };
                if rng.chance(5) {
                    c.info_len = rng.u32();
                }
                (c.as_bytes().to_vec(), core::mem::size_of::<LpcConnected>())
            }
            15 => {
                let a = LpcAsk {
                    kind: small(rng, 3),
                    workers: small(rng, 17),
                    count: if rng.chance(10) { u32::MAX } else { small(rng, 50) },
                    body_len: small(rng, 600),
                    timeout_ms: small(rng, 100),
                    view_len: if rng.chance(70) { 0 } else { small(rng, 1 << 16) },
                };
                (a.as_bytes().to_vec(), core::mem::size_of::<LpcTally>())
            }
            _ => (Vec::new(), 0),
        };
        Req { code, input, out, kind: Kind::DemoValid }
    }
}

fn method_of(n: u64) -> ntcomm_proto::Method {
    match n {
        0 => ntcomm_proto::Method::Buffered,
        1 => ntcomm_proto::Method::InDirect,
        2 => ntcomm_proto::Method::OutDirect,
        _ => ntcomm_proto::Method::Neither,
    }
}
