//! Runs the library against real Windows objects (under Wine via the target
//! runner): named pipes stand in for a device where no driver is needed.
//! The library against a real driver is tested in `tools/ntcomm/tests`,
//! which load the reference driver.
#![cfg(windows)]

use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ntcomm_proto::{Access, ControlCode, DeviceType, Ioctl, Len, Method, NtStatus};
use ntcomm_um::{service, Completion, CompletionPort, Device, ErrorKind, OpKind, ServiceState};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile, PIPE_ACCESS_DUPLEX};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, SetNamedPipeHandleState, PIPE_READMODE_MESSAGE, PIPE_TYPE_MESSAGE, PIPE_WAIT,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(5));
const SHORT: Option<Duration> = Some(Duration::from_millis(100));

/// The server end of a message-mode pipe, written and read synchronously.
struct Server(HANDLE);

impl Server {
    fn write(&self, data: &[u8]) {
        let mut n = 0;
        // SAFETY: valid handle and buffer; synchronous handle.
        let ok = unsafe { WriteFile(self.0, data.as_ptr(), data.len() as u32, &mut n, ptr::null_mut()) };
        assert!(ok != 0 && n as usize == data.len());
    }
    fn read(&self) -> Vec<u8> {
        let mut buf = vec![0; 256];
        let mut n = 0;
        // SAFETY: valid handle and buffer; synchronous handle.
        let ok = unsafe { ReadFile(self.0, buf.as_mut_ptr(), buf.len() as u32, &mut n, ptr::null_mut()) };
        assert!(ok != 0);
        buf.truncate(n as usize);
        buf
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: we own it.
        unsafe { CloseHandle(self.0) };
    }
}

/// A fresh pipe and a client [`Device`] on it in message read mode.
fn pipe(overlapped: bool) -> (Server, Device) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(r"\\.\pipe\ntcomm-um-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let wide: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    // SAFETY: NUL-terminated name; default security.
    let server = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
            1,
            4096,
            4096,
            0,
            ptr::null(),
        )
    };
    assert_ne!(server, INVALID_HANDLE_VALUE);
    let dev = if overlapped { Device::open_overlapped(&name) } else { Device::open(&name) }.unwrap();
    // SAFETY: the client connected already; this returns at once (or fails
    // with ERROR_PIPE_CONNECTED, which is fine).
    unsafe { ConnectNamedPipe(server, ptr::null_mut()) };
    let mode = PIPE_READMODE_MESSAGE;
    // SAFETY: the client's pipe handle; only the mode is set.
    assert!(unsafe { SetNamedPipeHandleState(dev.as_raw_handle(), &mode, ptr::null(), ptr::null()) } != 0);
    (Server(server), dev)
}

fn wait(port: &CompletionPort) -> Completion {
    port.wait(WAIT).unwrap().expect("a completion within 5 s")
}

#[test]
fn missing_device_is_not_found() {
    let e = Device::open(r"\\.\NoSuchDevice-ntcomm-um").unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.context().contains(r"\\.\NoSuchDevice-ntcomm-um"));
    assert!(e.to_string().contains("(Win32 error 2"), "{e}");
    // The system reported the NTSTATUS too: it must map to the same code.
    if let Some(s) = e.ntstatus() {
        assert_eq!(ntcomm_um::error::status_to_win32(s), 2);
    }
    assert!(Device::open("a\0b").unwrap_err().kind() == ErrorKind::InvalidParameter);
}

#[test]
fn iocp_read_and_write() {
    let (server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 7).unwrap();

    dev.start_read(vec![0; 64], 1).unwrap();
    assert!(port.wait(SHORT).unwrap().is_none(), "nothing to read yet");
    server.write(b"hello");
    let c = wait(&port);
    assert_eq!((c.tag, c.key, c.kind), (1, 7, OpKind::Read));
    assert_eq!(c.result.unwrap(), 5);
    assert_eq!(c.buffer, b"hello");

    dev.start_write(b"world".to_vec(), 2).unwrap();
    let c = wait(&port);
    assert_eq!((c.tag, c.kind, c.result.unwrap()), (2, OpKind::Write, 5));
    assert_eq!(c.buffer, b"world");
    assert_eq!(server.read(), b"world");

    // Many at once, reaped in one call.
    for i in 0..4 {
        dev.start_write(vec![i; 3], 10 + i as u64).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        port.wait_many(&mut got, 16, WAIT).unwrap();
    }
    let mut tags: Vec<u64> = got.iter().map(|c| c.tag).collect();
    tags.sort();
    assert_eq!(tags, [10, 11, 12, 13]);
}

#[test]
fn warning_status_still_completes_through_the_port() {
    // A 10-byte message read with a 4-byte buffer fails at once with
    // STATUS_BUFFER_OVERFLOW, a warning: the packet is queued regardless and
    // the op must be reclaimed there, not by start_read.
    let (server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 0).unwrap();
    server.write(b"0123456789");
    dev.start_read(vec![0; 4], 3).unwrap();
    let c = wait(&port);
    let e = c.result.unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::BufferTooSmall);
    assert_eq!(e.ntstatus(), Some(NtStatus::STATUS_BUFFER_OVERFLOW));
    assert_eq!(c.buffer, b"0123");
    dev.start_read(vec![0; 64], 4).unwrap();
    let c = wait(&port);
    assert_eq!(c.buffer, b"456789");

    // The same through a synchronous call on the overlapped handle.
    server.write(b"abcdefgh");
    let mut small = [0u8; 3];
    let e = dev.read(&mut small).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BufferTooSmall);
    assert_eq!(&small, b"abc");
    let mut rest = [0u8; 16];
    assert_eq!(dev.read(&mut rest).unwrap(), 5);
    assert!(port.wait(SHORT).unwrap().is_none(), "synchronous calls queue no packet");
}

#[test]
fn immediate_error_is_returned_and_reclaimed() {
    let (server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 0).unwrap();
    drop(server);
    let e = dev.start_read(vec![0; 8], 5).unwrap_err();
    eprintln!("{e}");
    assert!(e.context().contains("ReadFile"), "{e}");
    assert!(e.context().contains("tag 5"), "{e}");
    assert!(port.wait(SHORT).unwrap().is_none(), "an NT_ERROR failure queues nothing");
}

#[test]
fn cancel_one_and_all() {
    let (_server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 0).unwrap();
    let id = dev.start_read(vec![0; 8], 6).unwrap();
    dev.cancel(id).unwrap();
    let c = wait(&port);
    let e = c.result.unwrap_err();
    eprintln!("{e}");
    assert_eq!(c.tag, 6);
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert_eq!(e.ntstatus(), Some(NtStatus::STATUS_CANCELLED));
    assert!(c.buffer.is_empty());
    assert_eq!(dev.cancel(id).unwrap_err().kind(), ErrorKind::NotFoundItem);
    // Windows: ERROR_NOT_FOUND; Wine 8 reports success when nothing matched.
    if let Err(e) = dev.cancel_all() {
        assert_eq!(e.kind(), ErrorKind::NotFoundItem);
    }

    dev.start_read(vec![0; 8], 7).unwrap();
    dev.start_read(vec![0; 8], 8).unwrap();
    dev.cancel_all().unwrap();
    for _ in 0..2 {
        assert_eq!(wait(&port).result.unwrap_err().kind(), ErrorKind::Cancelled);
    }
}

#[test]
fn dropping_the_device_cancels_and_the_port_reclaims() {
    let (_server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 3).unwrap();
    dev.start_read(vec![0; 8], 9).unwrap();
    drop(dev);
    let c = wait(&port);
    assert_eq!((c.tag, c.key), (9, 3));
    assert_eq!(c.result.unwrap_err().kind(), ErrorKind::Cancelled);
}

#[test]
fn posted_packets_and_timeouts() {
    let port = CompletionPort::new().unwrap();
    assert!(port.wait(Some(Duration::ZERO)).unwrap().is_none());
    port.post(9, 77).unwrap();
    let c = wait(&port);
    assert_eq!((c.key, c.tag, c.kind, c.result.unwrap()), (9, 77, OpKind::Posted, 0));
    for t in 0..3 {
        port.post(1, t).unwrap();
    }
    let mut v = Vec::new();
    assert_eq!(port.wait_many(&mut v, 2, WAIT).unwrap(), 2);
    assert_eq!(port.wait_many(&mut v, 2, WAIT).unwrap(), 1);
    assert_eq!(port.wait_many(&mut v, 2, SHORT).unwrap(), 0);
    assert_eq!(v.len(), 3);
}

#[test]
fn synchronous_calls_on_both_kinds_of_handle() {
    for overlapped in [false, true] {
        let (server, dev) = pipe(overlapped);
        let port = CompletionPort::new().unwrap();
        if overlapped {
            port.associate(&dev, 0).unwrap();
        }
        assert_eq!(dev.write(b"abc").unwrap(), 3);
        assert_eq!(server.read(), b"abc");
        server.write(b"xyz!");
        let mut buf = [0u8; 16];
        assert_eq!(dev.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"xyz!");
        assert!(port.wait(SHORT).unwrap().is_none());
    }
}

#[test]
fn ops_need_an_overlapped_associated_handle() {
    let (_s, dev) = pipe(true);
    assert_eq!(dev.start_read(vec![0; 4], 0).unwrap_err().kind(), ErrorKind::InvalidParameter);
    let (_s2, sync) = pipe(false);
    let port = CompletionPort::new().unwrap();
    assert_eq!(port.associate(&sync, 0).unwrap_err().kind(), ErrorKind::InvalidParameter);
    assert_eq!(sync.start_write(vec![1], 0).unwrap_err().kind(), ErrorKind::InvalidParameter);
}

/// `FSCTL_PIPE_PEEK`: a real code the pipe answers, used to check the typed
/// wrappers (its reply is a 16-byte header plus the data peeked).
fn pipe_peek<I: ?Sized, O: ?Sized>(input: Len, output: Len) -> Ioctl<I, O> {
    let mut io = Ioctl::new("PIPE_PEEK", DeviceType(0x11), 0, Method::Buffered, Access::READ, input, output);
    io.code = ControlCode::new(DeviceType(0x11), 3, Method::Buffered, Access::READ);
    io
}

#[test]
fn typed_ioctls_check_sizes_before_calling() {
    let (server, dev) = pipe(false);
    let peek: Ioctl<[u8], [u8]> = pipe_peek(Len::NONE, Len::range(16, 64));
    let mut out = [0u8; 64];
    let e = dev.ioctl(&peek, &[1u8, 2, 3][..], &mut out[..]).unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.context().contains("PIPE_PEEK") && e.context().contains("input is 3 bytes"), "{e}");
    let e = dev.ioctl(&peek, &[][..], &mut out[..8]).unwrap_err();
    assert!(e.context().contains("output buffer is 8 bytes"), "{e}");

    server.write(b"peekaboo");
    let n = dev.ioctl(&peek, &[][..], &mut out[..]).unwrap();
    assert_eq!(&out[16..n], b"peekaboo");

    // ioctl_get insists on a whole reply: peeking 8 bytes returns 24 of 32.
    let short: Ioctl<(), [u8; 32]> = pipe_peek(Len::NONE, Len::of::<[u8; 32]>());
    let e = dev.ioctl_get(&short).unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    let whole: Ioctl<(), [u8; 24]> = pipe_peek(Len::NONE, Len::of::<[u8; 24]>());
    assert_eq!(&dev.ioctl_get(&whole).unwrap()[16..], b"peekaboo");

    // Raw calls go through unchecked, and name the code when they fail.
    assert!(dev.ioctl_raw(peek.code.0, &[1, 2, 3], &mut out).is_ok());
    let e = dev.ioctl_raw(0x0022_2003, &[], &mut []).unwrap_err();
    eprintln!("{e}");
    assert!(e.context().contains("0x00222003"), "{e}");
}

#[test]
fn typed_ioctl_through_the_port() {
    let (server, dev) = pipe(true);
    let port = CompletionPort::new().unwrap();
    port.associate(&dev, 0).unwrap();
    let peek: Ioctl<[u8], [u8]> = pipe_peek(Len::NONE, Len::range(16, 64));
    assert_eq!(dev.start_ioctl(&peek, vec![0; 1], 64, 1).unwrap_err().kind(), ErrorKind::InvalidParameter);
    server.write(b"hi");
    dev.start_ioctl(&peek, Vec::new(), 64, 2).unwrap();
    let c = wait(&port);
    assert_eq!(c.kind, OpKind::Ioctl(peek.code));
    assert_eq!(c.result.unwrap(), 18);
    assert_eq!(&c.buffer[16..], b"hi");
}

#[test]
fn service_install_status_uninstall() {
    let name = format!("NtCommUmTest{}", std::process::id());
    let image = std::env::current_exe().unwrap();
    assert_eq!(service::status(&name).unwrap(), ServiceState::NotInstalled);
    assert_eq!(service::uninstall(&name).unwrap_err().kind(), ErrorKind::ServiceNotFound);
    assert_eq!(service::stop(&name).unwrap_err().kind(), ErrorKind::ServiceNotFound);
    assert_eq!(service::start(&name).unwrap_err().kind(), ErrorKind::ServiceNotFound);
    let e = service::install(&name, "x", Path::new("no-such-driver.sys")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    service::install(&name, "ntcomm-um test", &image).unwrap();
    let e = service::install(&name, "ntcomm-um test", &image).unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::ServiceExists);
    assert_eq!(service::status(&name).unwrap(), ServiceState::Stopped);
    service::stop(&name).unwrap();
    service::uninstall(&name).unwrap();
    assert_eq!(service::status(&name).unwrap(), ServiceState::NotInstalled);
}
