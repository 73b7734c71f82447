//! ROUTE-REFRESH message (RFC 2918 §3, subtypes from RFC 7313 §3).
//!
//! ```text
//!  0       7      15      23      31
//!  +-------+-------+-------+-------+
//!  |      AFI      | Subtyp| SAFI  |
//!  +-------+-------+-------+-------+
//! ```

use crate::error::{DecodeError, Reason};
use crate::framing::HEADER_LEN;
use crate::header::{header, MessageType};
use crate::types::{Afi, Family, Safi};

/// RFC 7313 §3 message subtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshSubtype {
    /// 0: a plain route refresh request.
    Request,
    /// 1: Beginning of Route Refresh.
    Begin,
    /// 2: End of Route Refresh.
    End,
    /// 3..=255: reserved; RFC 7313 §5 says to ignore the message.
    Reserved(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub fn request(family: Family) -> RouteRefresh {
        RouteRefresh {
            family,
            subtype: RefreshSubtype::Request,
        }
    }

    /// RFC 7313 §5: a length other than 4 octets of body is a ROUTE-REFRESH
    /// Message Error / Invalid Message Length (7/1), data = the message.
    pub fn decode(body: &[u8]) -> Result<RouteRefresh, DecodeError> {
        let [a0, a1, sub, safi] = body else {
            let mut data = header(MessageType::RouteRefresh, body.len());
            data.extend_from_slice(body);
            return Err(
                DecodeError::new(Reason::RouteRefreshLength((HEADER_LEN + body.len()) as u16), HEADER_LEN)
                    .with_data(data),
            );
        };
        let subtype = match sub {
            0 => RefreshSubtype::Request,
            1 => RefreshSubtype::Begin,
            2 => RefreshSubtype::End,
            n => RefreshSubtype::Reserved(*n),
        };
        Ok(RouteRefresh {
            family: Family::new(Afi(u16::from_be_bytes([*a0, *a1])), Safi(*safi)),
            subtype,
        })
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.family.afi.0.to_be_bytes());
        out.push(match self.subtype {
            RefreshSubtype::Request => 0,
            RefreshSubtype::Begin => 1,
            RefreshSubtype::End => 2,
            RefreshSubtype::Reserved(n) => n,
        });
        out.push(self.family.safi.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_length_error() {
        for subtype in [RefreshSubtype::Request, RefreshSubtype::Begin, RefreshSubtype::End] {
            let rr = RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype,
            };
            let mut body = Vec::new();
            rr.encode_body(&mut body);
            assert_eq!(RouteRefresh::decode(&body).unwrap(), rr);
        }
        let err = RouteRefresh::decode(&[0, 1, 0]).unwrap_err();
        assert_eq!(err.notification_code(), (7, 1));
        assert_eq!(err.data.len(), HEADER_LEN + 3);
    }
}
