//! Copying from and to user addresses without crashing on a bad one.
//!
//! A user address handed to a driver may be unmapped, or unmapped by
//! another thread mid-copy. C drivers wrap the copy in `__try/__except`;
//! Rust has no SEH syntax, so the copy is a small assembly routine with x64
//! unwind information naming a language-specific handler. When the copy
//! faults, the system's exception dispatcher finds that handler through the
//! unwind tables; it sees the fault lies inside the copy instruction and
//! resumes at a recovery label that returns failure. No other code runs in
//! between, so no Rust state is left half-updated.
//!
//! Only user-range addresses are attempted: a bad *kernel* address is not
//! recoverable on Windows (it bug-checks before SEH), so those are refused
//! up front, as `ProbeForRead`/`ProbeForWrite` would.
// multiple_unsafe_ops_per_block: the copy's blocks call the assembly copy routine on pointers bounded by one range check, argued once in each SAFETY comment.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use core::ffi::c_void;

use crate::sys;

// Windows (PE/COFF) only: the SEH directives do not exist elsewhere. The
// library still builds for the host, for its compile-fail tests, which never
// link it.
#[cfg(target_os = "windows")]
core::arch::global_asm!(
    r#"
    .text
    .p2align 4
    .globl ntcomm_user_copy
    .def ntcomm_user_copy; .scl 2; .type 32; .endef
    .seh_proc ntcomm_user_copy
ntcomm_user_copy:
    .seh_handler ntcomm_user_copy_handler, @except
    push %rsi
    .seh_pushreg %rsi
    push %rdi
    .seh_pushreg %rdi
    .seh_endprologue
    mov %rcx, %rdi
    mov %rdx, %rsi
    mov %r8, %rcx
    .globl ntcomm_user_copy_begin
ntcomm_user_copy_begin:
    rep movsb
    .globl ntcomm_user_copy_end
ntcomm_user_copy_end:
    xor %eax, %eax
    pop %rdi
    pop %rsi
    ret
    .globl ntcomm_user_copy_fault
ntcomm_user_copy_fault:
    mov $1, %eax
    pop %rdi
    pop %rsi
    ret
    .seh_endproc
"#,
    options(att_syntax)
);

extern "C" {
    /// Copies `len` bytes from `src` to `dst`; 0 on success, 1 if an access
    /// faulted (some bytes may have been copied).
    fn ntcomm_user_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
    static ntcomm_user_copy_begin: u8;
    static ntcomm_user_copy_end: u8;
    static ntcomm_user_copy_fault: u8;
}

const EXCEPTION_ACCESS_VIOLATION: u32 = 0xC000_0005;
const EXCEPTION_IN_PAGE_ERROR: u32 = 0xC000_0006;
const EXCEPTION_GUARD_PAGE: u32 = 0x8000_0001;
const EXCEPTION_UNWIND: u32 = 0x2 | 0x4;
const EXCEPTION_CONTINUE_EXECUTION: u32 = 0;
const EXCEPTION_CONTINUE_SEARCH: u32 = 1;
/// `CONTEXT.Rip` on x64.
const CONTEXT_RIP: usize = 0xF8;

/// The language-specific handler of `ntcomm_user_copy` (see module docs).
///
/// # Safety
/// Called only by the system's exception dispatcher, with valid records.
#[no_mangle]
unsafe extern "system" fn ntcomm_user_copy_handler(
    record: *mut c_void,
    _frame: *mut c_void,
    context: *mut c_void,
    _dispatcher: *mut c_void,
) -> u32 {
    // SAFETY: the dispatcher passes a valid EXCEPTION_RECORD (code at 0,
    // flags at 4) and x64 CONTEXT; the labels are our own symbols.
    unsafe {
        let code = *(record as *const u32);
        let flags = *((record as *const u8).add(4) as *const u32);
        if flags & EXCEPTION_UNWIND != 0 {
            return EXCEPTION_CONTINUE_SEARCH;
        }
        if !matches!(code, EXCEPTION_ACCESS_VIOLATION | EXCEPTION_IN_PAGE_ERROR | EXCEPTION_GUARD_PAGE) {
            return EXCEPTION_CONTINUE_SEARCH;
        }
        let rip = (context as *mut u8).add(CONTEXT_RIP) as *mut u64;
        let begin = core::ptr::addr_of!(ntcomm_user_copy_begin) as u64;
        let end = core::ptr::addr_of!(ntcomm_user_copy_end) as u64;
        if *rip < begin || *rip >= end {
            return EXCEPTION_CONTINUE_SEARCH;
        }
        *rip = core::ptr::addr_of!(ntcomm_user_copy_fault) as u64;
        EXCEPTION_CONTINUE_EXECUTION
    }
}

/// Why a user copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserCopyError {
    /// The range is not entirely in user space (or wraps).
    NotUserRange,
    /// An access faulted: the address is not mapped (as asked).
    Fault,
}

fn user_range(addr: usize, len: usize) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= sys::MM_USER_PROBE_ADDRESS) && (len == 0 || addr != 0)
}

/// Copies `dst.len()` bytes from user address `src` into kernel memory.
/// The caller validates the copy afterwards: the user can change the source
/// at any time, so it is read exactly once, here.
pub fn copy_from_user(dst: &mut [u8], src: usize) -> Result<(), UserCopyError> {
    if !user_range(src, dst.len()) {
        return Err(UserCopyError::NotUserRange);
    }
    if dst.is_empty() {
        return Ok(());
    }
    // SAFETY: `dst` is valid kernel memory of that length; a fault on `src`
    // is recovered by the routine's handler.
    match unsafe { ntcomm_user_copy(dst.as_mut_ptr(), src as *const u8, dst.len()) } {
        0 => Ok(()),
        _ => Err(UserCopyError::Fault),
    }
}

/// Copies `src` out to user address `dst`.
pub fn copy_to_user(dst: usize, src: &[u8]) -> Result<(), UserCopyError> {
    if !user_range(dst, src.len()) {
        return Err(UserCopyError::NotUserRange);
    }
    if src.is_empty() {
        return Ok(());
    }
    // SAFETY: `src` is valid kernel memory; a fault on `dst` is recovered.
    match unsafe { ntcomm_user_copy(dst as *mut u8, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(UserCopyError::Fault),
    }
}
