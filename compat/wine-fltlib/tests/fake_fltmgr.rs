//! fltlib.dll against a user-mode stand-in for `fltmgr.sys`: the handshake
//! is a closure (a user program cannot create `\\.\NtCommWineFltMgr`); the
//! rest is the real pipe protocol, served by threads of this test that open
//! the client ends of the pipes exactly as `fltmgr.sys` does.
#![cfg(windows)]

use std::collections::HashSet;
use std::ptr::{null, null_mut};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use fltlib::*;
use windows_sys::Win32::Foundation::*;
use windows_sys::Win32::Storage::FileSystem::*;
use windows_sys::Win32::System::Pipes::*;
use windows_sys::Win32::System::Threading::*;
use windows_sys::Win32::System::IO::*;
use wine_fltport::*;
use zerocopy::{FromBytes, IntoBytes};

const S_OK: i32 = 0;
const IO_PENDING: i32 = 0x8007_03E5u32 as i32;
const E_INVALIDARG: i32 = 0x8007_0057u32 as i32;
const E_HANDLE6: i32 = 0x8007_0006u32 as i32;
const STATUS_ACCESS_DENIED: i32 = 0xC000_0022u32 as i32;
const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005u32 as i32;
const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;

#[derive(Clone, Copy)]
struct H(HANDLE);
unsafe impl Send for H {}
unsafe impl Sync for H {}

impl H {
    fn get(self) -> HANDLE {
        self.0
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn open_client(base: &str, suffix: &str) -> H {
    let path: Vec<u16> = format!(r"\\.\pipe\{base}{suffix}").encode_utf16().chain([0]).collect();
    let h = unsafe { CreateFileW(path.as_ptr(), GENERIC_READ | GENERIC_WRITE, 0, null(), OPEN_EXISTING, 0, null_mut()) };
    assert_ne!(h, INVALID_HANDLE_VALUE, "open {suffix}: {}", unsafe { GetLastError() });
    let mode = PIPE_READMODE_MESSAGE;
    assert_ne!(unsafe { SetNamedPipeHandleState(h, &mode, null(), null()) }, 0);
    H(h)
}

fn read_msg(h: H) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 24 + MAX_BODY];
    let mut n = 0u32;
    let ok = unsafe { ReadFile(h.0, buf.as_mut_ptr(), buf.len() as u32, &mut n, null_mut()) };
    if ok == 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn write_msg(h: H, m: &[u8]) -> bool {
    let mut n = 0u32;
    unsafe { WriteFile(h.0, m.as_ptr(), m.len() as u32, &mut n, null_mut()) != 0 }
}

fn response(status: i32, body: &[u8]) -> Vec<u8> {
    let mut v = CtlResponse { status, body_len: body.len() as u32 }.as_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The stand-in driver of one connection.
struct Fake {
    msg: H,
    ctl: H,
    rpl: H,
    /// Message ids that wait for a reply.
    waiting: Arc<Mutex<HashSet<u64>>>,
    /// (message id, status, body) of every accepted reply.
    replies: mpsc::Receiver<(u64, i32, Vec<u8>)>,
    /// The connect request as received.
    request: ConnectRequest,
    name: Vec<u16>,
    context: Vec<u8>,
}

impl Fake {
    fn send(&self, id: u64, reply_len: u32, body: &[u8]) {
        if reply_len != 0 {
            self.waiting.lock().unwrap().insert(id);
        }
        let hdr = MessageHeader { reply_length: if reply_len == 0 { 0 } else { reply_len + 16 }, reserved: 0, message_id: id };
        let mut m = hdr.as_bytes().to_vec();
        m.extend_from_slice(body);
        assert!(write_msg(self.msg, &m));
    }
}

/// Connects through `connect_with`, playing fltmgr.sys in the handshake.
fn connect(options: u32, context: &[u8]) -> (HANDLE, Fake) {
    let mut fake = None;
    let port = connect_with(&wide(r"\NtCommPort"), options, context, false, |input| {
        let (req, rest) = ConnectRequest::read_from_prefix(input).unwrap();
        assert_eq!(req.version, VERSION);
        let name_bytes = 2 * req.port_name_chars as usize;
        let name: Vec<u16> = rest[..name_bytes].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let context = rest[name_bytes..].to_vec();
        assert_eq!(context.len(), req.context_bytes as usize);
        let base = String::from_utf16(&req.pipe_base.iter().copied().take_while(|&c| c != 0).collect::<Vec<_>>()).unwrap();
        let (msg, ctl, rpl) = (open_client(&base, "-msg"), open_client(&base, "-ctl"), open_client(&base, "-rpl"));
        let waiting = Arc::new(Mutex::new(HashSet::new()));
        let (tx, rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        // Control pipe: SEND answered with the input reversed; "fail" ->
        // access denied; "warn" -> buffer overflow with output; "block"
        // waits until a reply arrived on the reply pipe.
        thread::spawn(move || {
            while let Some(m) = read_msg(ctl) {
                let (h, body) = CtlRequest::read_from_prefix(&m).unwrap();
                assert_eq!(h.kind, kind::SEND);
                assert_eq!(h.body_len as usize, body.len());
                let (st, out): (i32, Vec<u8>) = match body {
                    b"fail" => (STATUS_ACCESS_DENIED, vec![]),
                    b"warn" => (STATUS_BUFFER_OVERFLOW, b"part".to_vec()),
                    b"block" => {
                        gate_rx.recv_timeout(Duration::from_secs(10)).expect("reply while a send blocks");
                        (0, b"unblocked".to_vec())
                    }
                    _ => (0, body.iter().rev().copied().collect()),
                };
                let out = &out[..out.len().min(h.out_capacity as usize)];
                if !write_msg(ctl, &response(st, out)) {
                    break;
                }
            }
        });
        let w = waiting.clone();
        thread::spawn(move || {
            while let Some(m) = read_msg(rpl) {
                let (h, body) = CtlRequest::read_from_prefix(&m).unwrap();
                assert_eq!(h.kind, kind::REPLY);
                let st = if w.lock().unwrap().remove(&h.message_id) {
                    let _ = tx.send((h.message_id, h.status, body.to_vec()));
                    let _ = gate_tx.send(());
                    0
                } else {
                    wine_fltport::STATUS_FLT_NO_WAITER_FOR_REPLY
                };
                if !write_msg(rpl, &response(st, &[])) {
                    break;
                }
            }
        });
        fake = Some(Fake { msg, ctl, rpl, waiting, replies: rx, request: req, name, context });
        Ok(0)
    })
    .expect("connect");
    (port, fake.unwrap())
}

fn reply(port: HANDLE, id: u64, status: i32, body: &[u8]) -> i32 {
    let mut buf = ReplyHeader { status, reserved: 0, message_id: id }.as_bytes().to_vec();
    buf.extend_from_slice(body);
    unsafe { FilterReplyMessage(port, buf.as_ptr().cast(), buf.len() as u32) }
}

fn send(port: HANDLE, input: &[u8], out_cap: usize) -> (i32, Vec<u8>) {
    let mut out = vec![0u8; out_cap];
    let mut n = 0xdead_u32;
    let hr = unsafe { FilterSendMessage(port, input.as_ptr().cast(), input.len() as u32, out.as_mut_ptr().cast(), out_cap as u32, &mut n) };
    out.truncate(n as usize);
    (hr, out)
}

#[repr(C)]
struct Msg {
    hdr: MessageHeader,
    body: [u8; 64],
}

fn get_sync(port: HANDLE, size: u32) -> (i32, Msg) {
    let mut m = Msg { hdr: MessageHeader::default(), body: [0; 64] };
    let hr = unsafe { FilterGetMessage(port, &mut m.hdr, size, null_mut()) };
    (hr, m)
}

#[test]
fn handshake_carries_name_options_context() {
    let (port, fake) = connect(FLT_PORT_FLAG_SYNC_HANDLE, b"ctx!");
    assert_eq!(String::from_utf16(&fake.name).unwrap(), r"\NtCommPort");
    assert_eq!(fake.context, b"ctx!");
    assert_eq!(fake.request.options, FLT_PORT_FLAG_SYNC_HANDLE);
    assert_eq!(fake.request.client_pid, unsafe { GetCurrentProcessId() });
    unsafe { CloseHandle(port) };
}

#[test]
fn send_message() {
    let (port, _fake) = connect(0, b"");
    assert_eq!(send(port, b"hello", 64), (S_OK, b"olleh".to_vec()));
    assert_eq!(send(port, b"hello", 2), (S_OK, b"ol".to_vec()));
    assert_eq!(send(port, b"", 8), (S_OK, vec![]));
    assert_eq!(send(port, b"fail", 8).0 as u32, 0x8007_0005);
    assert_eq!(send(port, b"warn", 8), (0x8007_00EAu32 as i32, b"part".to_vec()));
    // No output buffer.
    let mut n = 1u32;
    let hr = unsafe { FilterSendMessage(port, b"abc".as_ptr().cast(), 3, null_mut(), 100, &mut n) };
    assert_eq!((hr, n), (S_OK, 0));
    // Maximum and too large inputs.
    let big = vec![7u8; MAX_BODY];
    let (hr, out) = send(port, &big, MAX_BODY);
    assert_eq!((hr, out.len()), (S_OK, MAX_BODY));
    let too_big = vec![7u8; MAX_BODY + 1];
    assert_eq!(send(port, &too_big, 8).0, E_INVALIDARG);
    // Argument checks.
    let hr = unsafe { FilterSendMessage(port, b"x".as_ptr().cast(), 1, null_mut(), 0, null_mut()) };
    assert_eq!(hr, E_INVALIDARG);
    let hr = unsafe { FilterSendMessage(port, null(), 1, null_mut(), 0, &mut n) };
    assert_eq!(hr, E_INVALIDARG);
    let hr = unsafe { FilterSendMessage(null_mut(), null(), 0, null_mut(), 0, &mut n) };
    assert_eq!(hr, E_HANDLE6);
    unsafe { CloseHandle(port) };
}

#[test]
fn get_and_reply_sync() {
    for options in [0, FLT_PORT_FLAG_SYNC_HANDLE] {
        let (port, fake) = connect(options, b"");
        fake.send(7, 4, b"q1");
        let (hr, m) = get_sync(port, size_of::<Msg>() as u32);
        assert_eq!(hr, S_OK);
        assert_eq!((m.hdr.reply_length, m.hdr.message_id), (20, 7));
        assert_eq!(&m.body[..2], b"q1");
        assert_eq!(reply(port, 7, 0, b"yes!"), S_OK);
        assert_eq!(fake.replies.recv().unwrap(), (7, 0, b"yes!".to_vec()));
        // Answered already / unknown: ERROR_FLT_NO_WAITER_FOR_REPLY.
        assert_eq!(reply(port, 7, 0, b"yes!") as u32, 0x801F_0020);
        // Header only is a valid reply; less is not.
        fake.send(8, 1, b"");
        assert_eq!(get_sync(port, 16).0, S_OK);
        assert_eq!(reply(port, 8, 0, b""), S_OK);
        let hdr = ReplyHeader::default();
        assert_eq!(unsafe { FilterReplyMessage(port, &hdr, 15) }, E_INVALIDARG);
        assert_eq!(unsafe { FilterReplyMessage(port, null(), 16) }, E_INVALIDARG);
        assert_eq!(unsafe { FilterGetMessage(port, null_mut(), 100, null_mut()) }, E_INVALIDARG);
        unsafe { CloseHandle(port) };
    }
}

#[test]
fn message_larger_than_buffer_is_consumed() {
    let (port, fake) = connect(0, b"");
    fake.send(1, 0, &[1; 40]);
    fake.send(2, 0, b"next");
    let (hr, m) = get_sync(port, 16 + 8);
    assert_eq!(hr as u32, 0x8007_00EA); // HRESULT_FROM_WIN32(ERROR_MORE_DATA)
    assert_eq!(m.hdr.message_id, 1);
    assert_eq!(&m.body[..8], &[1; 8]);
    let (hr, m) = get_sync(port, size_of::<Msg>() as u32);
    assert_eq!((hr, m.hdr.message_id), (S_OK, 2));
    assert_eq!(&m.body[..4], b"next");
    unsafe { CloseHandle(port) };
}

#[test]
fn overlapped_get_with_event() {
    let (port, fake) = connect(0, b"");
    let ev = unsafe { CreateEventW(null(), 1, 0, null()) };
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.hEvent = ev;
    let mut m = Msg { hdr: MessageHeader::default(), body: [0; 64] };
    // Pending first, then delivered.
    let hr = unsafe { FilterGetMessage(port, &mut m.hdr, size_of::<Msg>() as u32, &mut ov) };
    assert_eq!(hr, IO_PENDING);
    assert_eq!(unsafe { WaitForSingleObject(ev, 100) }, WAIT_TIMEOUT);
    fake.send(5, 0, b"abc");
    let mut n = 0u32;
    assert_ne!(unsafe { GetOverlappedResult(port, &ov, &mut n, 1) }, 0);
    assert_eq!((n, m.hdr.message_id), (19, 5));
    // Already available: still ERROR_IO_PENDING, as Windows (scanner relies on it).
    fake.send(6, 0, b"d");
    thread::sleep(Duration::from_millis(50));
    let hr = unsafe { FilterGetMessage(port, &mut m.hdr, size_of::<Msg>() as u32, &mut ov) };
    assert_eq!(hr, IO_PENDING);
    assert_ne!(unsafe { GetOverlappedResult(port, &ov, &mut n, 1) }, 0);
    assert_eq!((n, m.hdr.message_id), (17, 6));
    // CancelIoEx on the port cancels an outstanding get (shutdown of a receiver).
    let hr = unsafe { FilterGetMessage(port, &mut m.hdr, size_of::<Msg>() as u32, &mut ov) };
    assert_eq!(hr, IO_PENDING);
    assert_ne!(unsafe { CancelIoEx(port, &ov) }, 0);
    assert_eq!(unsafe { GetOverlappedResult(port, &ov, &mut n, 1) }, 0);
    assert_eq!(unsafe { GetLastError() }, ERROR_OPERATION_ABORTED);
    // The port still works afterwards.
    fake.send(7, 0, b"e");
    assert_eq!(get_sync(port, size_of::<Msg>() as u32).0, S_OK);
    unsafe { CloseHandle(port) };
    unsafe { CloseHandle(ev) };
}

#[test]
fn overlapped_get_through_completion_port() {
    let (port, fake) = connect(0, b"");
    let iocp = unsafe { CreateIoCompletionPort(port, null_mut(), 0x55, 0) };
    assert!(!iocp.is_null());
    let mut msgs: Vec<Box<(OVERLAPPED, Msg)>> =
        (0..4).map(|_| Box::new((unsafe { std::mem::zeroed() }, Msg { hdr: MessageHeader::default(), body: [0; 64] }))).collect();
    for b in msgs.iter_mut() {
        let (ov, m) = &mut **b;
        let hr = unsafe { FilterGetMessage(port, &mut m.hdr, size_of::<Msg>() as u32, ov) };
        assert_eq!(hr, IO_PENDING);
    }
    for id in 0..4u64 {
        fake.send(100 + id, 8, b"question");
    }
    let mut seen = HashSet::new();
    for _ in 0..4 {
        let (mut n, mut key, mut pov) = (0u32, 0usize, null_mut::<OVERLAPPED>());
        assert_ne!(unsafe { GetQueuedCompletionStatus(iocp, &mut n, &mut key, &mut pov, 5000) }, 0);
        assert_eq!((n, key), (24, 0x55));
        let b = msgs.iter().find(|b| std::ptr::eq(&b.0, pov)).expect("our OVERLAPPED");
        assert_eq!(b.1.hdr.reply_length, 24);
        seen.insert(b.1.hdr.message_id);
        assert_eq!(reply(port, b.1.hdr.message_id, 0, b"ok"), S_OK);
    }
    assert_eq!(seen, (100..104).collect());
    // A synchronous get on the same port queues no packet.
    fake.send(200, 0, b"");
    assert_eq!(get_sync(port, size_of::<Msg>() as u32).0, S_OK);
    let (mut n, mut key, mut pov) = (0u32, 0usize, null_mut::<OVERLAPPED>());
    assert_eq!(unsafe { GetQueuedCompletionStatus(iocp, &mut n, &mut key, &mut pov, 100) }, 0);
    assert!(pov.is_null());
    unsafe { CloseHandle(port) };
    unsafe { CloseHandle(iocp) };
}

#[test]
fn reply_is_not_stuck_behind_a_blocked_send() {
    let (port, fake) = connect(0, b"");
    let p = H(port);
    let sender = thread::spawn(move || send(p.get(), b"block", 32));
    thread::sleep(Duration::from_millis(100));
    fake.send(9, 4, b"ask");
    assert_eq!(get_sync(port, size_of::<Msg>() as u32).0, S_OK);
    assert_eq!(reply(port, 9, 0, b"fine"), S_OK);
    assert_eq!(sender.join().unwrap(), (S_OK, b"unblocked".to_vec()));
    unsafe { CloseHandle(port) };
}

#[test]
fn concurrent_sends_are_serialized_correctly() {
    let (port, _fake) = connect(0, b"");
    let p = H(port);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..200 {
                    let input = format!("t{t}-{i}");
                    let (hr, out) = send(p.get(), input.as_bytes(), 64);
                    assert_eq!(hr, S_OK);
                    assert_eq!(out, input.bytes().rev().collect::<Vec<_>>());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    unsafe { CloseHandle(port) };
}

#[test]
fn driver_disconnect_is_invalid_handle() {
    let (port, fake) = connect(0, b"");
    let ev = unsafe { CreateEventW(null(), 1, 0, null()) };
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.hEvent = ev;
    let mut m = Msg { hdr: MessageHeader::default(), body: [0; 64] };
    assert_eq!(unsafe { FilterGetMessage(port, &mut m.hdr, 80, &mut ov) }, IO_PENDING);
    let p = H(port);
    let blocked = thread::spawn(move || get_sync(p.get(), 80).0);
    thread::sleep(Duration::from_millis(100));
    unsafe {
        CloseHandle(fake.msg.0);
        CloseHandle(fake.ctl.0);
        CloseHandle(fake.rpl.0);
    }
    assert_eq!(blocked.join().unwrap(), E_HANDLE6);
    let mut n = 0;
    assert_eq!(unsafe { GetOverlappedResult(port, &ov, &mut n, 1) }, 0);
    // The pending overlapped read completes as a disconnected port's does, not
    // with the pipe's ERROR_BROKEN_PIPE.
    assert_eq!(unsafe { GetLastError() }, ERROR_INVALID_HANDLE);
    assert_eq!(ov.Internal, wine_fltport::STATUS_PORT_DISCONNECTED as u32 as usize);
    assert_eq!(get_sync(port, 80).0, E_HANDLE6);
    assert_eq!(unsafe { FilterGetMessage(port, &mut m.hdr, 80, &mut ov) }, E_HANDLE6);
    assert_eq!(send(port, b"x", 8).0, E_HANDLE6);
    assert_eq!(reply(port, 1, 0, b""), E_HANDLE6);
    unsafe { CloseHandle(port) };
    unsafe { CloseHandle(ev) };
}

#[test]
fn driver_disconnect_through_completion_port_is_invalid_handle() {
    let (port, fake) = connect(0, b"");
    let iocp = unsafe { CreateIoCompletionPort(port, null_mut(), 0x66, 0) };
    assert!(!iocp.is_null());
    let mut a: Box<(OVERLAPPED, Msg)> = Box::new((unsafe { std::mem::zeroed() }, Msg { hdr: MessageHeader::default(), body: [0; 64] }));
    let mut b: Box<(OVERLAPPED, Msg)> = Box::new((unsafe { std::mem::zeroed() }, Msg { hdr: MessageHeader::default(), body: [0; 64] }));
    for x in [&mut a, &mut b] {
        let (ov, m) = &mut **x;
        assert_eq!(unsafe { FilterGetMessage(port, &mut m.hdr, size_of::<Msg>() as u32, ov) }, IO_PENDING);
    }
    // A packet nobody asked fltlib for keeps its status.
    let mut other: OVERLAPPED = unsafe { std::mem::zeroed() };
    assert_ne!(unsafe { PostQueuedCompletionStatus(iocp, 3, 0x77, &mut other) }, 0);
    let (mut n, mut key, mut pov) = (0u32, 0usize, null_mut::<OVERLAPPED>());
    assert_ne!(unsafe { GetQueuedCompletionStatus(iocp, &mut n, &mut key, &mut pov, 5000) }, 0);
    assert_eq!((n, key, pov), (3, 0x77, &mut other as *mut OVERLAPPED));
    unsafe {
        CloseHandle(fake.msg.0);
        CloseHandle(fake.ctl.0);
        CloseHandle(fake.rpl.0);
    }
    // GetQueuedCompletionStatus, as Microsoft's scanner sample waits.
    let (mut n, mut key, mut pov) = (0u32, 0usize, null_mut::<OVERLAPPED>());
    assert_eq!(unsafe { GetQueuedCompletionStatus(iocp, &mut n, &mut key, &mut pov, 5000) }, 0);
    assert_eq!(unsafe { GetLastError() }, ERROR_INVALID_HANDLE);
    assert_eq!(key, 0x66);
    assert!(std::ptr::eq(pov, &a.0) || std::ptr::eq(pov, &b.0));
    // GetQueuedCompletionStatusEx: the entry carries the I/O's NTSTATUS.
    let mut e: OVERLAPPED_ENTRY = unsafe { std::mem::zeroed() };
    let mut count = 0u32;
    assert_ne!(unsafe { GetQueuedCompletionStatusEx(iocp, &mut e, 1, &mut count, 5000, 0) }, 0);
    assert_eq!((count, e.lpCompletionKey), (1, 0x66));
    assert_eq!(e.Internal, wine_fltport::STATUS_PORT_DISCONNECTED as u32 as usize);
    assert!(!std::ptr::eq(e.lpOverlapped, pov) && (std::ptr::eq(e.lpOverlapped, &a.0) || std::ptr::eq(e.lpOverlapped, &b.0)));
    // Both OVERLAPPEDs hold the final status too.
    for x in [&a, &b] {
        let mut n = 0;
        assert_eq!(unsafe { GetOverlappedResult(port, &x.0, &mut n, 0) }, 0);
        assert_eq!(unsafe { GetLastError() }, ERROR_INVALID_HANDLE);
    }
    unsafe { CloseHandle(port) };
    unsafe { CloseHandle(iocp) };
}

#[test]
fn handshake_failures_map_and_clean_up() {
    let name = wide(r"\NtCommPort");
    let cases = [
        (STATUS_OBJECT_NAME_NOT_FOUND, 0x8007_0002u32),
        (wine_fltport::STATUS_CONNECTION_COUNT_LIMIT, 0x8007_04D6),
        (STATUS_ACCESS_DENIED, 0x8007_0005),
        (wine_fltport::STATUS_FLT_NO_WAITER_FOR_REPLY, 0x801F_0020),
    ];
    for (st, hr) in cases {
        let mut base = String::new();
        let r = connect_with(&name, 0, b"", false, |input| {
            let (req, _) = ConnectRequest::read_from_prefix(input).unwrap();
            base = String::from_utf16(&req.pipe_base.iter().copied().take_while(|&c| c != 0).collect::<Vec<_>>()).unwrap();
            Ok(st)
        });
        assert_eq!(r.map_err(|e| e as u32), Err(hr));
        // The pipes are gone.
        let path: Vec<u16> = format!(r"\\.\pipe\{base}-msg").encode_utf16().chain([0]).collect();
        let h = unsafe { CreateFileW(path.as_ptr(), GENERIC_READ, 0, null(), OPEN_EXISTING, 0, null_mut()) };
        assert_eq!(h, INVALID_HANDLE_VALUE);
    }
    // No device at all: no such port.
    let r = connect_with(&name, 0, b"", false, |_| Err(2));
    assert_eq!(r.map_err(|e| e as u32), Err(0x8007_0002));
    // A "driver" that reports success without opening the pipes: an error, not a hang.
    for options in [0, FLT_PORT_FLAG_SYNC_HANDLE] {
        let r = connect_with(&name, options, b"", false, |_| Ok(0));
        assert!(r.is_err(), "{r:?}");
    }
}

/// A port nobody creates, whether or not a Filter Manager (and the demo
/// driver, whose port is `\NtCommPort`) runs in the prefix's session.
#[test]
fn exported_connect_to_a_missing_port_is_no_such_port() {
    let name: Vec<u16> = wide(r"\NtCommNoSuchPort").into_iter().chain([0]).collect();
    let mut port: HANDLE = null_mut();
    let hr = unsafe { FilterConnectCommunicationPort(name.as_ptr(), 0, null(), 0, null(), &mut port) };
    assert_eq!(hr as u32, 0x8007_0002);
    assert_eq!(port, INVALID_HANDLE_VALUE);
    let hr = unsafe { FilterConnectCommunicationPort(null(), 0, null(), 0, null(), &mut port) };
    assert_eq!(hr, E_INVALIDARG);
    let hr = unsafe { FilterConnectCommunicationPort(name.as_ptr(), 0, null(), 4, null(), &mut port) };
    assert_eq!(hr, E_INVALIDARG);
    let hr = unsafe { FilterConnectCommunicationPort(name.as_ptr(), 0, null(), 0, null(), null_mut()) };
    assert_eq!(hr, E_INVALIDARG);
    assert_eq!(FilterClose(null_mut()) as u32, 0x8000_4001);
}
