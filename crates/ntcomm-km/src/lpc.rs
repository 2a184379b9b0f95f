//! The driver as an LPC client of a port a user-mode process created
//! (`ntcomm_um::lpc::LpcServer`): connect by name with connection
//! information, request/reply, datagrams.
//!
//! LPC is undocumented; layouts and size rules are in [`ntcomm_proto::lpc`].
//! Which exports exist (checked against Wine 8.0's `ntoskrnl.exe.spec` and
//! `objdump -p` of its ntoskrnl.exe; the Windows list from the public
//! references, not checked against a Windows ntoskrnl here):
//!
//! | export | Windows ntoskrnl | Wine 8 ntoskrnl |
//! |---|---|---|
//! | `ZwConnectPort` | exported | exported, forwards to ntdll's stub (`STATUS_NOT_IMPLEMENTED`) |
//! | `ZwSecureConnectPort` | exported | same as above |
//! | `ZwRequestWaitReplyPort` | exported | same as above |
//! | `NtRequestPort` (datagram) | exported | **fatal stub**: calling it kills winedevice |
//! | `ZwRequestPort` | not exported | not exported |
//!
//! Status (issue 5 groundwork): compiled and linted only. Nothing in the
//! demo driver calls it yet, so the driver's import table is unchanged.
//! Never call [`LpcClient::datagram`] under a Wine without ntcomm's compat
//! LPC (see docs/LPC.md).
//!
//! Every call here blocks (an LPC request waits for its reply without a
//! timeout): call them from a system thread or work item, never from a
//! dispatch routine (Wine runs all dispatch of a winedevice on one thread).
//! The handle lives in the process the call ran in: connect from a system
//! thread so it lands in the System process's table.

use alloc::boxed::Box;
use core::ffi::c_void;
use core::ptr;

use ntcomm_proto::lpc::{self as wire, MessageBuffer, PortMessage};
use ntcomm_proto::NtStatus;

use crate::handle::KernelHandle;
use crate::string::UnicodeString;
use crate::{sys, Error};

/// `SECURITY_QUALITY_OF_SERVICE` (x64: 12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SecurityQos {
    /// `Length`: 12.
    pub length: u32,
    /// `ImpersonationLevel` (`SecurityImpersonation` = 2).
    pub impersonation_level: u32,
    /// `ContextTrackingMode` (`SECURITY_DYNAMIC_TRACKING` = 1).
    pub context_tracking_mode: u8,
    /// `EffectiveOnly`.
    pub effective_only: u8,
}

const _: () = assert!(core::mem::size_of::<SecurityQos>() == 12);

impl Default for SecurityQos {
    /// Impersonation level, dynamic tracking, not effective-only: what
    /// clients of LPC servers usually pass.
    fn default() -> Self {
        Self { length: 12, impersonation_level: 2, context_tracking_mode: 1, effective_only: 0 }
    }
}

#[allow(non_snake_case)]
#[link(name = "ntoskrnl")]
extern "system" {
    fn ZwConnectPort(
        port: *mut sys::HANDLE,
        name: *mut sys::UNICODE_STRING,
        qos: *mut SecurityQos,
        client_view: *mut wire::PortView,
        server_view: *mut wire::RemotePortView,
        max_message_length: *mut u32,
        connection_info: *mut c_void,
        connection_info_length: *mut u32,
    ) -> sys::NTSTATUS;
    fn ZwRequestWaitReplyPort(port: sys::HANDLE, request: *mut PortMessage, reply: *mut PortMessage) -> sys::NTSTATUS;
    fn NtRequestPort(port: sys::HANDLE, request: *mut PortMessage) -> sys::NTSTATUS;
}

/// A connected LPC client port, closed on drop (the server then receives
/// `LPC_PORT_CLOSED`).
pub struct LpcClient {
    handle: KernelHandle,
    max_message: usize,
}

impl LpcClient {
    /// Connects to the server port `name` (e.g. `\RPC Control\NtComm`)
    /// sending `connection_info` (at most
    /// [`wire::LPC_MAX_CONNECTION_INFO_SIZE`] bytes). The server's reply
    /// information is discarded; see [`LpcClient::connect_with`].
    pub fn connect(name: &str, connection_info: &[u8]) -> Result<Self, Error> {
        Self::connect_with(name, connection_info, &mut [], SecurityQos::default()).map(|(c, _)| c)
    }

    /// [`LpcClient::connect`] that also returns the server's connection
    /// information in `reply_info` (its length as the second value; longer
    /// information is cut to `reply_info.len()`).
    ///
    /// Errors: `STATUS_OBJECT_NAME_NOT_FOUND` (no server),
    /// `STATUS_PORT_CONNECTION_REFUSED` (refused), `STATUS_NOT_IMPLEMENTED`
    /// (a Wine without ntcomm's compat LPC), `STATUS_INVALID_PARAMETER`
    /// (connection information too long).
    pub fn connect_with(
        name: &str,
        connection_info: &[u8],
        reply_info: &mut [u8],
        qos: SecurityQos,
    ) -> Result<(Self, usize), Error> {
        let mut info = [0u8; wire::LPC_MAX_CONNECTION_INFO_SIZE];
        info.get_mut(..connection_info.len())
            .ok_or(Error::new(NtStatus::STATUS_INVALID_PARAMETER, "LPC connection information too long"))?
            .copy_from_slice(connection_info);
        // Fits: at most 128.
        let mut info_len = connection_info.len() as u32;
        let mut path = UnicodeString::new(name)?;
        let mut raw = path.as_raw();
        let mut qos = qos;
        let mut max_message: u32 = 0;
        let mut h: sys::HANDLE = ptr::null_mut();
        // SAFETY: valid out-pointers; the name, QoS and the connection
        // information buffer (128 bytes, the most LPC passes either way, with
        // its in/out length) live for the call; no views.
        let status = unsafe {
            ZwConnectPort(
                &mut h,
                &mut raw,
                &mut qos,
                ptr::null_mut(),
                ptr::null_mut(),
                &mut max_message,
                info.as_mut_ptr().cast(),
                &mut info_len,
            )
        };
        Error::check(status, "ZwConnectPort")?;
        let handle = KernelHandle::from_raw(h).ok_or(Error::new(NtStatus::STATUS_UNSUCCESSFUL, "ZwConnectPort"))?;
        let got = (info_len as usize).min(info.len());
        let n = got.min(reply_info.len());
        if let (Some(dst), Some(src)) = (reply_info.get_mut(..n), info.get(..n)) {
            dst.copy_from_slice(src);
        }
        let max_message = match max_message as usize {
            0 => wire::PORT_MAXIMUM_MESSAGE_LENGTH,
            m => m.min(wire::PORT_MAXIMUM_MESSAGE_LENGTH),
        };
        Ok((Self { handle, max_message }, got))
    }

    /// The port's maximum message length (header included) as the server set it.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The largest request or reply body.
    pub fn max_body(&self) -> usize {
        self.max_message.saturating_sub(wire::PORT_MESSAGE_LEN)
    }

    /// Sends `body` and waits (without a timeout: LPC has none) for the
    /// reply, whose body is copied into `reply`; returns its length.
    /// A body over [`LpcClient::max_body`] is `STATUS_PORT_MESSAGE_TOO_LONG`
    /// before anything is sent; a reply longer than `reply` is
    /// `STATUS_BUFFER_OVERFLOW` (the reply is consumed).
    pub fn request(&self, body: &[u8], reply: &mut [u8]) -> Result<usize, Error> {
        let mut req = Box::new(MessageBuffer::default());
        let mut rep = Box::new(MessageBuffer::default());
        let h = PortMessage::default();
        wire::encode(&h, body, self.max_message, &mut req.0)
            .map_err(|e| Error::new(e.status(), "LPC request"))?;
        // SAFETY: our port handle; both buffers are 8-aligned and hold
        // PORT_TOTAL_MAXIMUM_MESSAGE_LENGTH bytes; the request is checked.
        let status = unsafe {
            ZwRequestWaitReplyPort(self.handle.raw(), req.0.as_mut_ptr().cast(), rep.0.as_mut_ptr().cast())
        };
        Error::check(status, "ZwRequestWaitReplyPort")?;
        let m = wire::parse(&rep.0).map_err(|e| Error::new(e.status(), "LPC reply"))?;
        let dst = reply
            .get_mut(..m.body.len())
            .ok_or(Error::new(NtStatus::STATUS_BUFFER_OVERFLOW, "LPC reply longer than the buffer"))?;
        dst.copy_from_slice(m.body);
        Ok(m.body.len())
    }

    /// Sends `body` as a datagram (no reply) with `NtRequestPort`.
    ///
    /// Under Wine 8 without ntcomm's compat LPC, `NtRequestPort` is a fatal
    /// stub: this call kills the winedevice process. Do not call it there.
    pub fn datagram(&self, body: &[u8]) -> Result<(), Error> {
        let mut req = Box::new(MessageBuffer::default());
        let h = PortMessage::default();
        wire::encode(&h, body, self.max_message, &mut req.0)
            .map_err(|e| Error::new(e.status(), "LPC datagram"))?;
        // SAFETY: our port handle and a checked message in an aligned buffer.
        let status = unsafe { NtRequestPort(self.handle.raw(), req.0.as_mut_ptr().cast()) };
        Error::check(status, "NtRequestPort")
    }
}
