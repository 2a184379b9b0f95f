//! How an overlapped `FilterGetMessage` pending when the port disconnects
//! completes with `STATUS_PORT_DISCONNECTED` (`ERROR_INVALID_HANDLE`), as on
//! Windows, although under Wine it is a read of the message pipe, which Wine
//! completes with `STATUS_PIPE_BROKEN` when `fltmgr.sys` closes its end.
//!
//! Every such read is recorded here by its `OVERLAPPED`. A read with a
//! caller's event gets a private event and a private status block instead; a
//! thread-pool wait on the private event copies the final status (rewritten)
//! and byte count into the `OVERLAPPED`, then sets the caller's event, so the
//! `OVERLAPPED` reads `STATUS_PENDING` until it is final. `NtCancelIoFileEx`
//! (`CancelIoEx`) is hooked to find such a read by the caller's `OVERLAPPED`.
//! A completion packet carries its own copy of the status, queued by Wine's
//! server; `NtRemoveIoCompletion` and `NtRemoveIoCompletionEx` (what
//! `GetQueuedCompletionStatus(Ex)` use) are hooked so that a packet of a
//! recorded read gets the same rewrite, `OVERLAPPED` included, before the
//! caller sees either. Only `STATUS_PIPE_BROKEN` of recorded reads is
//! rewritten; everything else passes unchanged.
// multiple_unsafe_ops_per_block: code patching and raw status-block access share one SAFETY argument per block.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;
use core::ptr::null;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, NTSTATUS, STATUS_PENDING};
use windows_sys::Win32::System::Diagnostics::Debug::FlushInstructionCache;
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualProtect, MEM_COMMIT, MEM_RESERVE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE, PAGE_PROTECTION_FLAGS,
};
use windows_sys::Win32::System::Threading::{
    CloseThreadpoolWait, CreateThreadpoolWait, GetCurrentProcess, ResetEvent, SetEvent, SetThreadpoolWait, WaitForThreadpoolWaitCallbacks,
    PTP_CALLBACK_INSTANCE, PTP_WAIT,
};
use windows_sys::Win32::System::IO::{IO_STATUS_BLOCK, OVERLAPPED};

use crate::hresult::port_status;

/// A pending port read.
struct Read {
    /// Tells this read from a later one on the same `OVERLAPPED`.
    id: u64,
    /// The caller's event (low bit cleared), set once the `OVERLAPPED` is
    /// final; null when the caller gave none.
    event: HANDLE,
    /// The read's private status block (owned by its [`Watch`], alive until
    /// the read is delivered), or null when the `OVERLAPPED` is the block.
    block: *const IO_STATUS_BLOCK,
    /// The caller has been told (`OVERLAPPED` final, event set).
    delivered: bool,
}

// SAFETY: the event is a kernel handle, usable from any thread; the block is
// only read under the READS lock while its Watch keeps it alive.
unsafe impl Send for Read {}

/// Pending port reads, by `OVERLAPPED` address. An entry goes when the read's
/// packet is dequeued, when its private event fires and it queues no packet,
/// or when the caller reuses the `OVERLAPPED` for another `FilterGetMessage`.
static READS: Mutex<BTreeMap<usize, Read>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn reads() -> std::sync::MutexGuard<'static, BTreeMap<usize, Read>> {
    READS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forgets a read that failed at once (it queues nothing).
pub fn forget(ov: *mut OVERLAPPED, id: u64) {
    let mut r = reads();
    if r.get(&(ov as usize)).is_some_and(|e| e.id == id) {
        r.remove(&(ov as usize));
    }
}

/// Tells the caller of a completed read: final `OVERLAPPED`, then its event.
///
/// # Safety
/// `ov` is the `OVERLAPPED` of a completed port read that the caller has not
/// yet been told about, so it is still valid; `read.block` is null or alive.
unsafe fn deliver(ov: usize, read: &mut Read) {
    if read.delivered {
        return;
    }
    read.delivered = true;
    let ov = ov as *mut OVERLAPPED;
    // SAFETY: per the contract; Internal (the status) is the first field.
    unsafe {
        let st = ov.cast::<usize>();
        if read.block.is_null() {
            let s = core::ptr::read_volatile(st) as NTSTATUS;
            if port_status(s) != s {
                core::ptr::write_volatile(st, port_status(s) as u32 as usize);
            }
        } else {
            let b = &*read.block;
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*ov).InternalHigh), b.Information);
            core::sync::atomic::fence(Ordering::Release);
            core::ptr::write_volatile(st, port_status(b.Anonymous.Status) as u32 as usize);
        }
        if !read.event.is_null() {
            SetEvent(read.event);
        }
    }
}

/// A dequeued packet: rewrites its status (and its read's `OVERLAPPED`) if it
/// belongs to a recorded port read.
///
/// # Safety
/// `status` must be writable; a recorded `value` is a live `OVERLAPPED`.
unsafe fn fix_packet(value: usize, status: *mut NTSTATUS) {
    let mut r = reads();
    let Some(mut read) = r.remove(&value) else {
        return;
    };
    // SAFETY: a recorded address is the OVERLAPPED of a port read whose
    // packet is being handed to the caller only now.
    unsafe {
        deliver(value, &mut read);
        *status = port_status(*status);
    }
}

// ---------------------------------------------------------------------------
// The private event and status block of a read with a caller's event.

struct Watch {
    ov: usize,
    id: u64,
    private_event: HANDLE,
    block: Box<IO_STATUS_BLOCK>,
    /// Whether the read queues a completion packet (then the packet's
    /// dequeue forgets it).
    packet: bool,
}

unsafe extern "system" fn watch_fired(_: PTP_CALLBACK_INSTANCE, context: *mut c_void, wait: PTP_WAIT, _: u32) {
    // SAFETY: context is the Box leaked by `Armed::arm`, handed to this one callback only.
    let w = unsafe { Box::from_raw(context.cast::<Watch>()) };
    {
        let mut r = reads();
        if let Some(read) = r.get_mut(&w.ov).filter(|e| e.id == w.id) {
            // SAFETY: the read completed (its private event is set) and the
            // caller was not told yet, so it still keeps its OVERLAPPED.
            unsafe { deliver(w.ov, read) };
            read.block = core::ptr::null();
            if !w.packet {
                r.remove(&w.ov);
            }
        }
    }
    // Not closed here: Wine 8's wait queue may still hold the event's handle
    // when the callback runs, and a closed handle's value is soon reused (a
    // test saw an unrelated wait hang). `bury` releases both later, the way
    // Microsoft documents for closing a wait's handle.
    lock_graves().push(Grave { wait, event: w.private_event });
}

/// A fired wait and its event, released from a thread that is not running
/// its callback.
struct Grave {
    wait: PTP_WAIT,
    event: HANDLE,
}

// SAFETY: a thread-pool wait and a kernel handle, usable from any thread.
unsafe impl Send for Grave {}

static GRAVES: Mutex<Vec<Grave>> = Mutex::new(Vec::new());

fn lock_graves() -> std::sync::MutexGuard<'static, Vec<Grave>> {
    GRAVES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Releases the waits whose callbacks ran: stop the wait, wait for its
/// callback to return, close it, then close its event (the order of
/// Microsoft's `CloseThreadpoolWait` documentation). Called on the caller's
/// thread before each overlapped read, never from a callback of ours.
fn bury() {
    let graves = core::mem::take(&mut *lock_graves());
    for g in graves {
        // SAFETY: our fired wait and its event, closed once.
        unsafe {
            SetThreadpoolWait(g.wait, core::ptr::null_mut(), null());
            WaitForThreadpoolWaitCallbacks(g.wait, 0);
            CloseThreadpoolWait(g.wait);
            CloseHandle(g.event);
        }
    }
}

/// A recorded read about to be issued: its event and status block, and for a
/// caller's event the wait that passes the completion on. [`Issue::issued`]
/// starts that wait once the read is pending or complete; [`Issue::failed`]
/// undoes everything for a read that failed at once.
pub struct Issue {
    ov: *mut OVERLAPPED,
    id: u64,
    wait: PTP_WAIT,
    watch: *mut Watch,
}

impl Issue {
    /// The event to give the read (null: none).
    pub fn event(&self) -> HANDLE {
        if self.watch.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: watch is ours until issued.
        unsafe { (*self.watch).private_event }
    }

    /// The status block to give the read.
    pub fn block(&self) -> *mut IO_STATUS_BLOCK {
        if self.watch.is_null() {
            return self.ov.cast();
        }
        // SAFETY: watch is ours until issued; the Box does not move.
        unsafe { &mut *(*self.watch).block as *mut IO_STATUS_BLOCK }
    }

    /// The read is pending or complete: pass its completion on.
    pub fn issued(self) {
        if !self.watch.is_null() {
            // SAFETY: our wait and event; the callback frees both and the watch.
            unsafe { SetThreadpoolWait(self.wait, (*self.watch).private_event, null()) };
        }
    }

    /// The read failed at once: no event, no packet.
    pub fn failed(self) {
        forget(self.ov, self.id);
        if !self.watch.is_null() {
            // SAFETY: never armed, so no callback runs: everything is still ours.
            unsafe {
                let w = Box::from_raw(self.watch);
                CloseThreadpoolWait(self.wait);
                CloseHandle(w.private_event);
            }
        }
    }
}

/// Records a port read on `ov` about to be issued; `event` is the caller's
/// `hEvent` (the low bit asks for no completion packet, as with `ReadFile`).
pub fn record(ov: *mut OVERLAPPED, event: HANDLE) -> Result<Issue, u32> {
    bury();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let packet = event as usize & 1 == 0;
    let caller_event = (event as usize & !1) as HANDLE;
    let (mut wait, mut watch) = (0, core::ptr::null_mut::<Watch>());
    if !caller_event.is_null() {
        // As NtReadFile does for its event: not signaled until this read completes.
        // SAFETY: the caller's event handle.
        unsafe { ResetEvent(caller_event) };
        let private_event = super::new_event()?.into_raw();
        // SAFETY: IO_STATUS_BLOCK is plain data.
        let mut block: Box<IO_STATUS_BLOCK> = Box::new(unsafe { core::mem::zeroed() });
        block.Anonymous.Status = STATUS_PENDING;
        watch = Box::into_raw(Box::new(Watch { ov: ov as usize, id, private_event, block, packet }));
        // SAFETY: the callback gets the Box exactly once (issued) or never (failed).
        wait = unsafe { CreateThreadpoolWait(Some(watch_fired), watch.cast(), null()) };
        if wait == 0 {
            let e = super::last_error();
            // SAFETY: never shared.
            unsafe {
                let w = Box::from_raw(watch);
                CloseHandle(w.private_event);
            }
            return Err(e);
        }
    }
    // SAFETY: watch is null or ours; its block does not move.
    let block = if watch.is_null() { core::ptr::null() } else { unsafe { &*(*watch).block as *const IO_STATUS_BLOCK } };
    reads().insert(ov as usize, Read { id, event: caller_event, block, delivered: false });
    Ok(Issue { ov, id, wait, watch })
}

/// The status block a recorded read was issued with, for `CancelIoEx`.
fn block_of(ov: *const IO_STATUS_BLOCK) -> *const IO_STATUS_BLOCK {
    match reads().get(&(ov as usize)) {
        Some(r) if !r.block.is_null() && !r.delivered => r.block,
        _ => ov,
    }
}

// ---------------------------------------------------------------------------
// The hooks.

type RemoveFn = unsafe extern "system" fn(HANDLE, *mut usize, *mut usize, *mut IO_STATUS_BLOCK, *const i64) -> NTSTATUS;
type RemoveExFn = unsafe extern "system" fn(HANDLE, *mut CompletionInfo, u32, *mut u32, *const i64, u8) -> NTSTATUS;

/// `FILE_IO_COMPLETION_INFORMATION`.
#[repr(C)]
pub struct CompletionInfo {
    key: usize,
    value: usize,
    iosb: IO_STATUS_BLOCK,
}

type CancelExFn = unsafe extern "system" fn(HANDLE, *const IO_STATUS_BLOCK, *mut IO_STATUS_BLOCK) -> NTSTATUS;

static ORIG_CANCEL_EX: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn cancel_ex(file: HANDLE, iosb: *const IO_STATUS_BLOCK, status: *mut IO_STATUS_BLOCK) -> NTSTATUS {
    // SAFETY: set before the jump to this function was written.
    let orig: CancelExFn = unsafe { core::mem::transmute::<usize, CancelExFn>(ORIG_CANCEL_EX.load(Ordering::Acquire)) };
    let iosb = if iosb.is_null() { iosb } else { block_of(iosb) };
    // SAFETY: the caller's arguments, a recorded OVERLAPPED replaced by the
    // status block its read was issued with.
    unsafe { orig(file, iosb, status) }
}

static ORIG_REMOVE: AtomicUsize = AtomicUsize::new(0);
static ORIG_REMOVE_EX: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn remove(
    port: HANDLE,
    key: *mut usize,
    value: *mut usize,
    iosb: *mut IO_STATUS_BLOCK,
    timeout: *const i64,
) -> NTSTATUS {
    // SAFETY: set before the jump to this function was written.
    let orig: RemoveFn = unsafe { core::mem::transmute::<usize, RemoveFn>(ORIG_REMOVE.load(Ordering::Acquire)) };
    // SAFETY: the caller's arguments, passed on unchanged.
    let st = unsafe { orig(port, key, value, iosb, timeout) };
    if st == 0 {
        // SAFETY: a dequeued packet was stored through the caller's pointers.
        unsafe { fix_packet(*value, core::ptr::addr_of_mut!((*iosb).Anonymous.Status)) };
    }
    st
}

unsafe extern "system" fn remove_ex(
    port: HANDLE,
    info: *mut CompletionInfo,
    count: u32,
    written: *mut u32,
    timeout: *const i64,
    alertable: u8,
) -> NTSTATUS {
    // SAFETY: set before the jump to this function was written.
    let orig: RemoveExFn = unsafe { core::mem::transmute::<usize, RemoveExFn>(ORIG_REMOVE_EX.load(Ordering::Acquire)) };
    // SAFETY: the caller's arguments, passed on unchanged.
    let st = unsafe { orig(port, info, count, written, timeout, alertable) };
    if st == 0 && !written.is_null() {
        // SAFETY: the call stored *written entries (at most count) in info.
        unsafe {
            for i in 0..(*written).min(count) as usize {
                let e = info.add(i);
                fix_packet((*e).value, core::ptr::addr_of_mut!((*e).iosb.Anonymous.Status));
            }
        }
    }
    st
}

/// Wine 8's x86-64 system call stub starts `mov r10,rcx; mov eax,N; test byte [0x7ffe0308],1`.
fn is_syscall_stub(p: &[u8; 16]) -> bool {
    p[..4] == [0x4c, 0x8b, 0xd1, 0xb8] && p[8..] == [0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01]
}

/// `movabs rax, target; jmp rax`.
fn jump_to(target: usize) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = 0x48;
    c[1] = 0xb8;
    c[2..10].copy_from_slice(&(target as u64).to_le_bytes());
    c[10] = 0xff;
    c[11] = 0xe0;
    c
}

/// Hooks one ntdll system call stub: a trampoline replays its first 16 bytes
/// and jumps back to byte 16; the stub's start jumps to `hook`. Returns false
/// (and changes nothing) if the code is not the stub Wine 8 has.
///
/// # Safety
/// `orig` must be the slot `hook` calls the original through.
unsafe fn hook(ntdll: *mut c_void, name: &[u8], hook: usize, orig: &AtomicUsize) -> bool {
    // SAFETY: name is NUL-terminated; ntdll is the loaded module.
    let Some(f) = (unsafe { GetProcAddress(ntdll, name.as_ptr()) }) else {
        return false;
    };
    let p = f as usize as *mut u8;
    let mut head = [0u8; 16];
    // SAFETY: an exported function's first 16 bytes are readable code.
    unsafe { core::ptr::copy_nonoverlapping(p, head.as_mut_ptr(), 16) };
    if !is_syscall_stub(&head) {
        return false;
    }
    // SAFETY: fresh executable memory for the trampoline, written before use.
    let t = unsafe { VirtualAlloc(null(), 4096, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE) }.cast::<u8>();
    if t.is_null() {
        return false;
    }
    let back = (p as u64 + 16).to_le_bytes();
    // SAFETY: t has 4096 writable bytes; then the stub's first 12 bytes are
    // made writable, replaced by a jump, and protected again.
    unsafe {
        core::ptr::copy_nonoverlapping(head.as_ptr(), t, 16);
        // jmp [rip+0]; dq back
        core::ptr::copy_nonoverlapping([0xff, 0x25, 0, 0, 0, 0].as_ptr(), t.add(16), 6);
        core::ptr::copy_nonoverlapping(back.as_ptr(), t.add(22), 8);
        let mut old: PAGE_PROTECTION_FLAGS = 0;
        VirtualProtect(t.cast(), 4096, PAGE_EXECUTE_READ, &mut old);
        FlushInstructionCache(GetCurrentProcess(), t.cast(), 30);
        orig.store(t as usize, Ordering::Release);
        let code = jump_to(hook);
        if VirtualProtect(p.cast(), 12, PAGE_EXECUTE_READWRITE, &mut old) == 0 {
            return false;
        }
        core::ptr::copy_nonoverlapping(code.as_ptr(), p, 12);
        VirtualProtect(p.cast(), 12, old, &mut old);
        FlushInstructionCache(GetCurrentProcess(), p.cast(), 12);
    }
    true
}

static INSTALL: Once = Once::new();

/// Installs the completion hooks once per process (before the first port
/// exists, so no packet of a port read can be dequeued unhooked).
pub fn install() {
    INSTALL.call_once(|| {
        let name: Vec<u16> = "ntdll.dll".encode_utf16().chain([0]).collect();
        // SAFETY: name is NUL-terminated; ntdll is always loaded.
        let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
        if ntdll.is_null() {
            return;
        }
        // SAFETY: each hook calls the original through its own slot.
        unsafe {
            hook(ntdll, b"NtRemoveIoCompletion\0", remove as *const () as usize, &ORIG_REMOVE);
            hook(ntdll, b"NtRemoveIoCompletionEx\0", remove_ex as *const () as usize, &ORIG_REMOVE_EX);
            hook(ntdll, b"NtCancelIoFileEx\0", cancel_ex as *const () as usize, &ORIG_CANCEL_EX);
        }
    });
}
