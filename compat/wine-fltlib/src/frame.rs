//! Framing of the connect request and of control/reply pipe messages.

use wine_fltport::{kind, ConnectRequest, CtlRequest, CtlResponse, MAX_BODY, PIPE_BASE_CHARS, VERSION};
use zerocopy::{FromBytes, IntoBytes};

/// `IOCTL_CONNECT` input: [`ConnectRequest`], the port name (UTF-16, no
/// NUL), the context. `None` if a length does not fit the protocol.
pub fn connect_request(
    options: u32,
    port_name: &[u16],
    context: &[u8],
    client_pid: u32,
    pipe_base: [u16; PIPE_BASE_CHARS],
) -> Option<Vec<u8>> {
    let req = ConnectRequest {
        version: VERSION,
        options,
        port_name_chars: u32::try_from(port_name.len()).ok()?,
        context_bytes: u32::try_from(context.len()).ok()?,
        client_pid,
        reserved: 0,
        pipe_base,
    };
    if port_name.len() > u16::MAX as usize || context.len() > u16::MAX as usize {
        return None;
    }
    let mut out = Vec::with_capacity(size_of::<ConnectRequest>() + 2 * port_name.len() + context.len());
    out.extend_from_slice(req.as_bytes());
    out.extend_from_slice(port_name.as_bytes());
    out.extend_from_slice(context);
    Some(out)
}

/// One request message: header + body, written with one `WriteFile` so it
/// is one pipe message. `None` if the body exceeds [`MAX_BODY`].
pub fn request(kind: u32, status: i32, message_id: u64, out_capacity: u32, body: &[u8]) -> Option<Vec<u8>> {
    if body.len() > MAX_BODY || out_capacity as usize > MAX_BODY {
        return None;
    }
    let hdr = CtlRequest { kind, status, message_id, out_capacity, body_len: body.len() as u32 };
    let mut out = Vec::with_capacity(size_of::<CtlRequest>() + body.len());
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(body);
    Some(out)
}

/// A `SEND` request.
pub fn send_request(input: &[u8], out_capacity: u32) -> Option<Vec<u8>> {
    request(kind::SEND, 0, 0, out_capacity, input)
}

/// A `REPLY` request.
pub fn reply_request(status: i32, message_id: u64, body: &[u8]) -> Option<Vec<u8>> {
    request(kind::REPLY, status, message_id, 0, body)
}

/// A response that breaks the protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum BadResponse {
    /// Shorter than [`CtlResponse`].
    Short,
    /// `body_len` disagrees with the message length.
    LengthMismatch,
    /// More body than the request allowed.
    TooLong,
}

/// Splits one response message into its status and body; `capacity` is
/// the most body the request allowed.
pub fn parse_response(msg: &[u8], capacity: usize) -> Result<(i32, &[u8]), BadResponse> {
    let (hdr, body) = CtlResponse::read_from_prefix(msg).map_err(|_| BadResponse::Short)?;
    if hdr.body_len as usize != body.len() {
        return Err(BadResponse::LengthMismatch);
    }
    if body.len() > capacity {
        return Err(BadResponse::TooLong);
    }
    Ok((hdr.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wine_fltport::{MessageHeader, ReplyHeader};

    #[test]
    fn connect_layout() {
        let name: Vec<u16> = r"\NtCommPort".encode_utf16().collect();
        let base = crate::names::base_field("b").unwrap();
        let v = connect_request(1, &name, b"ctx", 42, base).unwrap();
        let (req, rest) = ConnectRequest::read_from_prefix(&v).unwrap();
        assert_eq!((req.version, req.options, req.client_pid), (VERSION, 1, 42));
        assert_eq!(req.port_name_chars as usize, name.len());
        assert_eq!(req.context_bytes, 3);
        assert_eq!(req.pipe_base[0], b'b' as u16);
        assert_eq!(rest.len(), 2 * name.len() + 3);
        assert_eq!(&rest[rest.len() - 3..], b"ctx");
        assert_eq!(&rest[..2], &[b'\\', 0]);
    }

    #[test]
    fn request_layout_and_bounds() {
        let v = send_request(b"hello", 100).unwrap();
        let (h, body) = CtlRequest::read_from_prefix(&v).unwrap();
        assert_eq!((h.kind, h.out_capacity, h.body_len), (kind::SEND, 100, 5));
        assert_eq!(body, b"hello");
        let v = reply_request(-5, 77, b"").unwrap();
        let (h, body) = CtlRequest::read_from_prefix(&v).unwrap();
        assert_eq!((h.kind, h.status, h.message_id, h.body_len), (kind::REPLY, -5, 77, 0));
        assert!(body.is_empty());
        assert!(send_request(&vec![0; MAX_BODY], MAX_BODY as u32).is_some());
        assert!(send_request(&vec![0; MAX_BODY + 1], 0).is_none());
        assert!(send_request(b"", MAX_BODY as u32 + 1).is_none());
    }

    #[test]
    fn responses() {
        let mut m = CtlResponse { status: 7, body_len: 2 }.as_bytes().to_vec();
        m.extend_from_slice(b"ok");
        assert_eq!(parse_response(&m, 2), Ok((7, &b"ok"[..])));
        assert_eq!(parse_response(&m, 1), Err(BadResponse::TooLong));
        assert_eq!(parse_response(&m[..9], 2), Err(BadResponse::LengthMismatch));
        assert_eq!(parse_response(&m[..7], 2), Err(BadResponse::Short));
    }

    #[test]
    fn headers_match_fltuserstructures_h() {
        // FILTER_MESSAGE_HEADER { ULONG ReplyLength; ULONGLONG MessageId; }
        // FILTER_REPLY_HEADER { NTSTATUS Status; ULONGLONG MessageId; }
        assert_eq!(core::mem::offset_of!(MessageHeader, reply_length), 0);
        assert_eq!(core::mem::offset_of!(MessageHeader, message_id), 8);
        assert_eq!(core::mem::offset_of!(ReplyHeader, status), 0);
        assert_eq!(core::mem::offset_of!(ReplyHeader, message_id), 8);
        assert_eq!(size_of::<MessageHeader>(), 16);
        assert_eq!(size_of::<ReplyHeader>(), 16);
    }
}
