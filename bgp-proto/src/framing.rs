//! Splitting a byte stream into BGP messages (RFC 4271 §4.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                           Marker (16 octets, all ones)        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |          Length               |      Type     |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

/// Length of the fixed BGP message header.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message once RFC 8654 extended messages are negotiated.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Why a stream cannot be framed; each is a Message Header Error (code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RFC 4271 §6.1: the marker is not all ones -> 1/1 Connection Not Synchronized.
    #[error("message header marker is not all ones")]
    BadMarker,
    /// RFC 4271 §6.1: length below 19 or above the negotiated maximum -> 1/2 Bad Message Length.
    #[error("bad message length {0}")]
    BadLength(u16),
}

impl FrameError {
    /// NOTIFICATION (code, subcode) this error must be reported with.
    pub fn notification_code(&self) -> (u8, u8) {
        match self {
            FrameError::BadMarker => (1, 1),
            FrameError::BadLength(_) => (1, 2),
        }
    }
}

/// Looks at the start of `buf` and tells how long the first message is.
///
/// `Ok(None)` means "need more bytes" (not an error); `Ok(Some(n))` means the
/// first `n` bytes of `buf` are one complete message. `max_len` is 4096, or
/// 65535 once extended messages are negotiated (RFC 8654).
pub fn next_message_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let marker_seen = buf.len().min(16);
    if buf[..marker_seen].iter().any(|&b| b != 0xff) {
        return Err(FrameError::BadMarker);
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]);
    if (len as usize) < HEADER_LEN || len as usize > max_len {
        return Err(FrameError::BadLength(len));
    }
    if buf.len() < len as usize {
        return Ok(None);
    }
    Ok(Some(len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16, ty: u8) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(ty);
        v
    }

    #[test]
    fn partial_header_needs_more() {
        assert_eq!(next_message_len(&[0xff; 10], 4096), Ok(None));
        assert_eq!(next_message_len(&[], 4096), Ok(None));
    }

    #[test]
    fn bad_marker_detected_early() {
        assert_eq!(next_message_len(&[0xff, 0x00], 4096), Err(FrameError::BadMarker));
    }

    #[test]
    fn keepalive_is_complete() {
        let mut b = header(19, 4);
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(next_message_len(&b, 4096), Ok(Some(19)));
    }

    #[test]
    fn body_incomplete_needs_more() {
        let b = header(23, 2);
        assert_eq!(next_message_len(&b, 4096), Ok(None));
    }

    #[test]
    fn lengths_out_of_range_rejected() {
        assert_eq!(next_message_len(&header(18, 4), 4096), Err(FrameError::BadLength(18)));
        assert_eq!(
            next_message_len(&header(4097, 2), 4096),
            Err(FrameError::BadLength(4097))
        );
        assert_eq!(next_message_len(&header(4097, 2), 65535), Ok(None));
    }
}
