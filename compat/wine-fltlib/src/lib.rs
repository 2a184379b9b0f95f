//! `fltlib.dll` for Wine: the user-mode half of Filter Manager
//! communication ports, talking to ntcomm's replacement `fltmgr.sys`
//! through the private protocol in [`wine_fltport`].
//!
//! Wine's own fltlib fails `FilterConnectCommunicationPort` with
//! `E_NOTIMPL` and kills the process on the other port calls. A native
//! `fltlib.dll` beside the program (or in `system32`) is loaded instead with
//! no override. Programs call the documented functions unchanged:
//!
//! | export | what it does here |
//! |---|---|
//! | `FilterConnectCommunicationPort` | creates the message, control and reply pipes, hands their names to `fltmgr.sys` in an `IOCTL_CONNECT`; the port handle is the message pipe's server end |
//! | `FilterGetMessage` | a read of one pipe message on the port handle (overlapped: the caller's `OVERLAPPED`, so events and completion ports work; a read the disconnect breaks completes with `STATUS_PORT_DISCONNECTED`, see `completion.rs`) |
//! | `FilterReplyMessage` | a `REPLY` request on the reply pipe |
//! | `FilterSendMessage` | a `SEND` request on the control pipe |
//! | `FilterLoad`/`FilterUnload` | start/stop the driver service of that name |
//! | every other fltlib export | `E_NOTIMPL` |
//!
//! HRESULTs are `HRESULT_FROM_WIN32(RtlNtStatusToDosError(status))` as on
//! Windows: no such port (or no `fltmgr.sys` replacement loaded)
//! `0x80070002`; refused by ConnectNotify with `STATUS_ACCESS_DENIED`
//! `0x80070005`; MaxConnections reached `0x800704D6`; a reply nobody waits
//! for `0x801F0020` (`ERROR_FLT_NO_WAITER_FOR_REPLY`); a disconnected port
//! (driver closed the client port or unloaded) `0x80070006`
//! (`STATUS_PORT_DISCONNECTED` -> `ERROR_INVALID_HANDLE`, what Microsoft's
//! scanner sample tests for); bad arguments `E_INVALIDARG` (`0x80070057`,
//! which is also `HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER)`).
//!
//! Known differences from Windows:
//! - an overlapped `FilterGetMessage` pending when the port disconnects
//!   completes with `ERROR_INVALID_HANDLE` through its event or completion
//!   port (the latter through hooks of `NtRemoveIoCompletion(Ex)`), but a
//!   read without an event shows the pipe's `ERROR_BROKEN_PIPE` in its
//!   `OVERLAPPED` until its packet is dequeued, or for good with no
//!   completion port (README);
//! - the rest of a message larger than an overlapped `FilterGetMessage`'s
//!   buffer stays in the pipe (see [`FilterGetMessage`]);
//! - `FilterSendMessage` calls on one port are serialized (one control
//!   pipe); `CancelIoEx` on the port does not cancel them;
//! - `lpSecurityAttributes` contributes only `bInheritHandle`;
//! - with `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` set on the port, a read
//!   Wine completes at once queues no packet although `FilterGetMessage`
//!   reports `ERROR_IO_PENDING` (Windows always pends these reads).
//!
//! The pure pieces (HRESULT mapping, pipe names, framing) build and are
//! tested on any host; the exports exist only on Windows targets.
#![cfg_attr(not(windows), allow(dead_code))]

pub mod frame;
pub mod hresult;
pub mod names;

#[cfg(windows)]
mod win;

#[cfg(windows)]
pub use win::*;
