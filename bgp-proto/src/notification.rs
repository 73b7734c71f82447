//! NOTIFICATION message (RFC 4271 §4.5) and the shutdown communication of
//! RFC 8203 / RFC 9003.
//!
//! ```text
//!  0                   1                   2                   3
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Error code    | Error subcode |   Data (variable)             |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::error::{code, DecodeError, Reason};
use crate::framing::HEADER_LEN;

/// Cease subcodes (RFC 4486, RFC 8538).
pub mod cease {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
}

/// Longest shutdown communication (RFC 9003 §2: 255 octets of UTF-8).
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// Cease with a shutdown communication (RFC 9003 §2): subcode 2
    /// (Administrative Shutdown) or 4 (Administrative Reset). Text longer than
    /// 255 octets is cut at a character boundary.
    pub fn shutdown(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification {
            code: code::CEASE,
            subcode,
            data,
        }
    }

    /// The shutdown communication, when this is a Cease/Administrative
    /// Shutdown or Reset whose data is a valid length-prefixed UTF-8 text
    /// (RFC 9003), also inside a Hard Reset that carries one (RFC 8538 §3).
    pub fn shutdown_message(&self) -> Option<&str> {
        if self.code != code::CEASE {
            return None;
        }
        let texts = |s: u8| matches!(s, cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET);
        let payload = match (self.subcode, self.data.as_slice()) {
            (s, data) if texts(s) => data,
            (cease::HARD_RESET, [c, s, rest @ ..]) if *c == code::CEASE && texts(*s) => rest,
            _ => return None,
        };
        let (&len, text) = payload.split_first()?;
        // RFC 9003 §2: a length beyond the data is a malformed communication (ignored).
        std::str::from_utf8(text.get(..len as usize)?).ok()
    }

    pub fn decode(body: &[u8]) -> Result<Notification, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification {
                code: *code,
                subcode: *subcode,
                data: data.to_vec(),
            }),
            _ => Err(DecodeError::new(
                Reason::Truncated("NOTIFICATION"),
                HEADER_LEN + body.len(),
            )),
        }
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    /// "code/subcode (name / subname)", e.g. `6/2 (Cease / Administrative Shutdown)`.
    pub fn describe(&self) -> String {
        let (name, sub) = names(self.code, self.subcode);
        format!("{}/{} ({} / {})", self.code, self.subcode, name, sub)
    }
}

/// The NOTIFICATION a decode error must cause: its (code, subcode) and data.
impl From<&DecodeError> for Notification {
    fn from(e: &DecodeError) -> Notification {
        let (code, subcode) = e.notification_code();
        Notification {
            code,
            subcode,
            data: e.data.clone(),
        }
    }
}

/// Kept here rather than in `error.rs`, so that the error types need not
/// import the messages (the conversion above is the same thing).
impl DecodeError {
    /// The NOTIFICATION message this error must cause.
    pub fn to_notification(&self) -> Notification {
        Notification::from(self)
    }
}

/// Names of an error code and subcode as the RFCs give them.
pub fn names(code: u8, subcode: u8) -> (&'static str, &'static str) {
    let name = match code {
        1 => "Message Header Error",
        2 => "OPEN Message Error",
        3 => "UPDATE Message Error",
        4 => "Hold Timer Expired",
        5 => "Finite State Machine Error",
        6 => "Cease",
        7 => "ROUTE-REFRESH Message Error",
        _ => "Unknown",
    };
    let sub = match (code, subcode) {
        (_, 0) => "Unspecific",
        (1, 1) => "Connection Not Synchronized",
        (1, 2) => "Bad Message Length",
        (1, 3) => "Bad Message Type",
        (2, 1) => "Unsupported Version Number",
        (2, 2) => "Bad Peer AS",
        (2, 3) => "Bad BGP Identifier",
        (2, 4) => "Unsupported Optional Parameter",
        (2, 6) => "Unacceptable Hold Time",
        (2, 7) => "Unsupported Capability",
        (2, 11) => "Role Mismatch",
        (3, 1) => "Malformed Attribute List",
        (3, 2) => "Unrecognized Well-known Attribute",
        (3, 3) => "Missing Well-known Attribute",
        (3, 4) => "Attribute Flags Error",
        (3, 5) => "Attribute Length Error",
        (3, 6) => "Invalid ORIGIN Attribute",
        (3, 8) => "Invalid NEXT_HOP Attribute",
        (3, 9) => "Optional Attribute Error",
        (3, 10) => "Invalid Network Field",
        (3, 11) => "Malformed AS_PATH",
        (5, 1) => "Unexpected Message in OpenSent State",
        (5, 2) => "Unexpected Message in OpenConfirm State",
        (5, 3) => "Unexpected Message in Established State",
        (6, 1) => "Maximum Number of Prefixes Reached",
        (6, 2) => "Administrative Shutdown",
        (6, 3) => "Peer De-configured",
        (6, 4) => "Administrative Reset",
        (6, 5) => "Connection Rejected",
        (6, 6) => "Other Configuration Change",
        (6, 7) => "Connection Collision Resolution",
        (6, 8) => "Out of Resources",
        (6, 9) => "Hard Reset",
        (6, 10) => "BFD Down",
        (7, 1) => "Invalid Message Length",
        _ => "Unknown",
    };
    (name, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_message_round_trip() {
        let n = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance: back at 10:00 ✈");
        let mut body = Vec::new();
        n.encode_body(&mut body);
        let d = Notification::decode(&body).unwrap();
        assert_eq!(d.shutdown_message(), Some("maintenance: back at 10:00 ✈"));
        assert_eq!(d.describe(), "6/2 (Cease / Administrative Shutdown)");
    }

    #[test]
    fn long_shutdown_message_is_cut_on_char_boundary() {
        let text = "é".repeat(200);
        let n = Notification::shutdown(cease::ADMINISTRATIVE_RESET, &text);
        assert_eq!(n.data[0] as usize, 254);
        assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);
    }

    #[test]
    fn bad_shutdown_text_is_not_a_message() {
        let n = Notification {
            code: 6,
            subcode: 2,
            data: vec![10, b'a'],
        };
        assert_eq!(n.shutdown_message(), None);
        assert_eq!(Notification::decode(&[6]).unwrap_err().notification_code(), (1, 2));
    }

    #[test]
    fn a_hard_reset_carries_the_shutdown_communication_of_its_cease() {
        let inner = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance window");
        let mut data = vec![inner.code, inner.subcode];
        data.extend_from_slice(&inner.data);
        let hard = Notification {
            code: code::CEASE,
            subcode: cease::HARD_RESET,
            data,
        };
        assert_eq!(hard.shutdown_message(), Some("maintenance window"));
    }
}
