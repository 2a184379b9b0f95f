//! The two ntdll functions the error paths use, resolved at run time so a
//! missing export (an old or partial Wine) degrades to "no NTSTATUS" instead
//! of a load failure.
#![cfg(windows)]
// multiple_unsafe_ops_per_block: each block resolves exports and gives them their published signatures; the lookups and transmutes share the one argument in the SAFETY comment.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use std::sync::OnceLock;

use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

type GetLastNtStatus = unsafe extern "system" fn() -> i32;
type StatusToDosError = unsafe extern "system" fn(i32) -> u32;

struct Fns {
    get_last_nt_status: Option<GetLastNtStatus>,
    status_to_dos_error: Option<StatusToDosError>,
}

fn fns() -> &'static Fns {
    static FNS: OnceLock<Fns> = OnceLock::new();
    FNS.get_or_init(|| {
        let name: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
        // SAFETY: `name` is NUL-terminated; ntdll is mapped into every process
        // and never unloaded, so the handle stays valid for the process.
        let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
        if ntdll.is_null() {
            return Fns { get_last_nt_status: None, status_to_dos_error: None };
        }
        // SAFETY: NUL-terminated ASCII names; the transmutes give each export
        // its documented signature (`NTSTATUS RtlGetLastNtStatus(void)`,
        // `ULONG RtlNtStatusToDosErrorNoTeb(NTSTATUS)`), both `WINAPI`.
        unsafe {
            let get = GetProcAddress(ntdll, c"RtlGetLastNtStatus".as_ptr().cast());
            let map = GetProcAddress(ntdll, c"RtlNtStatusToDosErrorNoTeb".as_ptr().cast());
            Fns {
                get_last_nt_status: get.map(|f| core::mem::transmute::<_, GetLastNtStatus>(f)),
                status_to_dos_error: map.map(|f| core::mem::transmute::<_, StatusToDosError>(f)),
            }
        }
    })
}

/// The thread's last NTSTATUS (`TEB.LastStatusValue`), if ntdll exports it.
///
/// Resolving the export on first use cannot disturb the value: only the
/// failure paths of `GetModuleHandleW`/`GetProcAddress` set a status.
pub(crate) fn last_nt_status() -> Option<i32> {
    let f = fns().get_last_nt_status?;
    // SAFETY: takes no arguments and only reads the current thread's TEB.
    Some(unsafe { f() })
}

/// `RtlNtStatusToDosErrorNoTeb`: the Win32 code for an NTSTATUS, without
/// touching the thread's last-error state.
pub(crate) fn status_to_win32(status: i32) -> Option<u32> {
    let f = fns().status_to_dos_error?;
    // SAFETY: a pure table lookup on an integer.
    Some(unsafe { f(status) })
}
