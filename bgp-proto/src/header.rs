//! The fixed message header (RFC 4271 §4.1): the type codes and the helpers
//! every message encoder writes its header with. A leaf (it imports only
//! `framing`), so the per-message modules and `message.rs`, which dispatches
//! to them, can all use it without a cycle.

use crate::framing::HEADER_LEN;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }
}

/// The RFC's name of the type, e.g. `UPDATE`, for log lines.
impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MessageType::Open => "OPEN",
            MessageType::Update => "UPDATE",
            MessageType::Notification => "NOTIFICATION",
            MessageType::Keepalive => "KEEPALIVE",
            MessageType::RouteRefresh => "ROUTE-REFRESH",
        })
    }
}

/// Writes a header with a zero length; [`finish_header`] fills it in once the
/// body is written.
pub(crate) fn write_header(out: &mut Vec<u8>, ty: MessageType) {
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, ty as u8]);
}

/// Sets the length field of the message that starts at `out[start]` to the
/// octets written since. The caller has checked the length fits the maximum.
pub(crate) fn finish_header(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// A complete header for a body of `body_len` octets (for NOTIFICATION data
/// that must quote a message, RFC 7313 §5).
pub(crate) fn header(ty: MessageType, body_len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + body_len);
    write_header(&mut v, ty);
    let len = ((HEADER_LEN + body_len).min(u16::MAX as usize)) as u16;
    v[16..18].copy_from_slice(&len.to_be_bytes());
    v
}
