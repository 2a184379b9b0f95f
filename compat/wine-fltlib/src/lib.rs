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
//! | `FilterGetMessage` | a `ReadFile` of one pipe message on the port handle (overlapped: the caller's `OVERLAPPED`, so events and completion ports work) |
//! | `FilterReplyMessage` | a `REPLY` request on the reply pipe |
//! | `FilterSendMessage` | a `SEND` request on the control pipe |
//! | `FilterLoad`/`FilterUnload` | start/stop the driver service of that name |
//! | every other fltlib export | `E_NOTIMPL` |
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
