//! Whole BGP messages: the header (RFC 4271 §4.1) and dispatch to each type.

use crate::error::{AttributeError, DecodeError, EncodeError, Reason, Treatment};
use crate::framing::{HEADER_LEN, MAX_MESSAGE_LEN};
use crate::header::{finish_header, write_header};
use crate::notification::Notification;
use crate::open::Open;
use crate::route_refresh::RouteRefresh;
use crate::types::Context;
use crate::update::Update;

/// Re-exported from [`crate::header`], where it lives so that the message
/// modules can use it without importing this dispatcher.
pub use crate::header::MessageType;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A decoded message; for UPDATEs also the RFC 7606 outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub message: Message,
    pub treatment: Treatment,
    pub errors: Vec<AttributeError>,
}

/// Decodes one whole message (header included), as framed by
/// [`crate::framing::next_message_len`].
pub fn decode(msg: &[u8], ctx: &Context) -> Result<Decoded, DecodeError> {
    if msg.len() < HEADER_LEN {
        return Err(DecodeError::new(Reason::BadLength(msg.len() as u16), 16));
    }
    if msg[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::new(Reason::BadMarker, 0));
    }
    let len = u16::from_be_bytes([msg[16], msg[17]]);
    let ty = msg[18];
    let body = &msg[HEADER_LEN..];
    // RFC 4271 §6.1: the data of a Bad Message Length is the length field.
    let bad_length = || DecodeError::new(Reason::BadLength(len), 16).with_data(len.to_be_bytes().to_vec());
    if len as usize != msg.len() || msg.len() > ctx.max_message_len.max(MAX_MESSAGE_LEN) {
        return Err(bad_length());
    }
    let Some(kind) = MessageType::from_u8(ty) else {
        return Err(DecodeError::new(Reason::BadType(ty), 18).with_data(vec![ty]));
    };
    // RFC 4271 §6.1 minimum lengths; RFC 8654 §3: OPEN and KEEPALIVE stay within 4096.
    let ok_len = match kind {
        MessageType::Open => (29..=MAX_MESSAGE_LEN).contains(&msg.len()),
        MessageType::Update => msg.len() >= 23,
        MessageType::Notification => msg.len() >= 21,
        MessageType::Keepalive => msg.len() == HEADER_LEN,
        MessageType::RouteRefresh => true, // its own error, RFC 7313 §5
    };
    if !ok_len {
        return Err(bad_length());
    }
    let plain = |message| Decoded {
        message,
        treatment: Treatment::None,
        errors: Vec::new(),
    };
    Ok(match kind {
        MessageType::Open => plain(Message::Open(Open::decode(body)?)),
        MessageType::Update => {
            let parsed = Update::decode(body, ctx)?;
            Decoded {
                message: Message::Update(parsed.update),
                treatment: parsed.treatment,
                errors: parsed.errors,
            }
        }
        MessageType::Notification => plain(Message::Notification(Notification::decode(body)?)),
        MessageType::Keepalive => plain(Message::Keepalive),
        MessageType::RouteRefresh => plain(Message::RouteRefresh(RouteRefresh::decode(body)?)),
    })
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Appends the whole message to `out`; never truncates: a message that
    /// does not fit the negotiated maximum is an error and nothing is written.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if let Message::Update(u) = self {
            return u.encode(ctx, out);
        }
        let start = out.len();
        write_header(out, self.message_type());
        match self {
            Message::Open(o) => {
                if let Err(e) = o.encode_body(out) {
                    out.truncate(start);
                    return Err(e);
                }
            }
            Message::Notification(n) => n.encode_body(out),
            Message::RouteRefresh(r) => r.encode_body(out),
            Message::Keepalive | Message::Update(_) => {}
        }
        let len = out.len() - start;
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len,
        };
        if len > max {
            out.truncate(start);
            return Err(EncodeError::MessageTooLong { len, max });
        }
        finish_header(out, start);
        Ok(())
    }

    /// Convenience: the message as a fresh byte vector.
    pub fn to_bytes(&self, ctx: &Context) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(ctx, &mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{next_message_len, FrameError};

    /// A framing error converts to the very error `decode` gives for the same bytes.
    #[test]
    fn frame_errors_convert_like_decode_errors() {
        let ctx = Context::default();
        let mut bad_marker = vec![0xff; 19];
        bad_marker[3] = 0;
        bad_marker[18] = 4;
        let mut bad_length = vec![0xff; 16];
        bad_length.extend_from_slice(&[0x10, 0x01, 2]);
        bad_length.resize(4097, 0);
        for (msg, frame_error) in [
            (bad_marker, FrameError::BadMarker),
            (bad_length, FrameError::BadLength(4097)),
        ] {
            assert_eq!(next_message_len(&msg, MAX_MESSAGE_LEN), Err(frame_error));
            let converted = DecodeError::from(frame_error);
            assert_eq!(converted, decode(&msg, &ctx).unwrap_err());
            assert_eq!(converted.to_notification(), Notification::from(&converted));
        }
        let n = Notification::from(&DecodeError::from(FrameError::BadLength(4097)));
        assert_eq!((n.code, n.subcode, n.data), (1, 2, vec![0x10, 0x01]));
    }
}
