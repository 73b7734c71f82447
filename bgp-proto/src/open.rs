//! OPEN message (RFC 4271 §4.2) with RFC 9072 extended optional parameters.
//!
//! ```text
//!  +-+-+-+-+-+-+-+-+
//!  |    Version    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |     My Autonomous System      |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |           Hold Time           |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                         BGP Identifier                        |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Opt Parm Len  |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |             Optional Parameters (variable)                    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::Parser;

use crate::capability::{AddPathMode, Capability};
use crate::error::{DecodeError, EncodeError, Reason};
use crate::framing::{HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use crate::types::{Context, Family};
use crate::wire::{failed_at, PResult};

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet AS in 2-octet fields.
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type carrying capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: Non-Ext OP Type value that announces the extended encoding.
const PARAM_EXTENDED_LENGTH: u8 = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for 4-octet ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Capabilities grouped as they travel: one group per optional parameter.
    /// BIRD sends one parameter with all capabilities, others one per capability.
    pub capability_groups: Vec<Vec<Capability>>,
    /// Optional parameters use the RFC 9072 extended (2-octet length) encoding.
    pub extended_params: bool,
}

impl Open {
    /// An OPEN for `asn` with all `capabilities` in one optional parameter.
    /// A 4-octet `asn` puts AS_TRANS in the 2-octet field (RFC 6793 §4.1).
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capability_groups: vec![capabilities],
            extended_params: false,
        }
    }

    /// All capabilities in order, as on the wire.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.capability_groups.iter().flatten()
    }

    /// All capabilities in order, by meaning (see [`Capability::understood`]):
    /// what negotiation reads.
    pub fn understood_capabilities(&self) -> impl Iterator<Item = std::borrow::Cow<'_, Capability>> {
        self.capabilities().map(Capability::understood)
    }

    /// The sender's AS: from the 4-octet AS capability if present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(self.my_as as u32)
    }

    /// Decodes an OPEN body (the bytes after the 19-byte header).
    pub fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let base = HEADER_LEN;
        let fixed: PResult<(u8, u16, u16, u32, u8)> = (be_u8, be_u16, be_u16, be_u32, be_u8).parse(body);
        let (rest, (version, my_as, hold_time, id, opt_len)) =
            fixed.map_err(|e| DecodeError::new(Reason::Truncated("OPEN"), failed_at(base, body, e)))?;
        // RFC 4271 §6.2: the data field is the largest supported version (2 octets).
        if version != 4 {
            return Err(DecodeError::new(Reason::UnsupportedVersion(version), base).with_data(vec![0, 4]));
        }
        // RFC 4271 §6.2: hold times of one or two seconds MUST be rejected.
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::new(Reason::UnacceptableHoldTime(hold_time), base + 3));
        }
        let bgp_id = Ipv4Addr::from(id);
        // RFC 6286 §2.2: the BGP Identifier is a non-zero 4-octet value.
        if id == 0 {
            return Err(DecodeError::new(Reason::BadBgpId(bgp_id), base + 5));
        }
        let mut offset = base + 10;
        // RFC 9072 §2: Non-Ext OP Len 255 followed by Non-Ext OP Type 255.
        let extended_params = opt_len == 255 && rest.first() == Some(&PARAM_EXTENDED_LENGTH);
        let (mut params, params_len) = if extended_params {
            if rest.len() < 3 {
                return Err(DecodeError::new(
                    Reason::MalformedOpen("extended parameter length"),
                    offset,
                ));
            }
            offset += 3;
            (&rest[3..], u16::from_be_bytes([rest[1], rest[2]]) as usize)
        } else {
            (rest, opt_len as usize)
        };
        if params.len() != params_len {
            return Err(DecodeError::new(
                Reason::MalformedOpen("optional parameters length"),
                offset,
            ));
        }
        let mut capability_groups = Vec::new();
        while !params.is_empty() {
            let header_len = if extended_params { 3 } else { 2 };
            if params.len() < header_len {
                return Err(DecodeError::new(
                    Reason::MalformedOpen("optional parameter header"),
                    offset,
                ));
            }
            let kind = params[0];
            let len = if extended_params {
                u16::from_be_bytes([params[1], params[2]]) as usize
            } else {
                params[1] as usize
            };
            let value = params
                .get(header_len..header_len + len)
                .ok_or_else(|| DecodeError::new(Reason::MalformedOpen("optional parameter overruns"), offset))?;
            // RFC 4271 §6.2 / RFC 5492 §3: only capabilities are a known parameter.
            if kind != PARAM_CAPABILITIES {
                return Err(DecodeError::new(Reason::UnsupportedOptionalParameter(kind), offset));
            }
            capability_groups.push(decode_capabilities(value, offset + header_len)?);
            params = &params[header_len + len..];
            offset += header_len + len;
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capability_groups,
            extended_params,
        })
    }

    /// Appends the OPEN body (no header). Switches to the RFC 9072 encoding
    /// when the parameters do not fit in 255 octets, or when asked to. A
    /// capability value over 255 octets cannot be sent and is an error.
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut groups: Vec<Vec<u8>> = Vec::with_capacity(self.capability_groups.len());
        for group in &self.capability_groups {
            let mut v = Vec::new();
            for cap in group {
                let value = cap.encode_value();
                let len = u8::try_from(value.len()).map_err(|_| EncodeError::CapabilityTooLong(cap.code()))?;
                v.push(cap.code());
                v.push(len);
                v.extend_from_slice(&value);
            }
            groups.push(v);
        }
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let short_len: usize = groups.iter().map(|g| 2 + g.len()).sum();
        let extended = self.extended_params || short_len > 255 || groups.iter().any(|g| g.len() > 255);
        if extended {
            let long_len: usize = groups.iter().map(|g| 3 + g.len()).sum();
            out.push(255);
            out.push(PARAM_EXTENDED_LENGTH);
            out.extend_from_slice(&(long_len as u16).to_be_bytes());
            for g in &groups {
                out.push(PARAM_CAPABILITIES);
                out.extend_from_slice(&(g.len() as u16).to_be_bytes());
                out.extend_from_slice(g);
            }
        } else {
            out.push(short_len as u8);
            for g in &groups {
                out.push(PARAM_CAPABILITIES);
                out.push(g.len() as u8);
                out.extend_from_slice(g);
            }
        }
        Ok(())
    }
}

/// The context for decoding what `sender` sends to `receiver`, from their
/// two OPENs: 4-octet AS if both announce it (RFC 6793 §4), extended messages
/// if both do (RFC 8654 §3), path identifiers for each family the sender may
/// send and the receiver may receive (RFC 7911 §4).
pub fn receive_context(sender: &Open, receiver: &Open) -> Context {
    let four = |o: &Open| o.capabilities().any(|c| matches!(c, Capability::FourOctetAs(_)));
    let ext = |o: &Open| o.capabilities().any(|c| matches!(c, Capability::ExtendedMessage));
    let add_path = |o: &Open| -> Vec<(Family, AddPathMode)> {
        o.capabilities()
            .filter_map(|c| match c {
                Capability::AddPath(v) => Some(v.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let (s, r) = (add_path(sender), add_path(receiver));
    Context {
        four_octet_as: four(sender) && four(receiver),
        max_message_len: if ext(sender) && ext(receiver) {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        },
        add_path: s
            .iter()
            .filter(|(f, m)| m.can_send() && r.iter().any(|(g, n)| g == f && n.can_receive()))
            .map(|(f, _)| *f)
            .collect(),
        external: sender.asn() != receiver.asn(),
    }
}

/// Splits an optional parameter of type 2 into capabilities (RFC 5492 §4).
fn decode_capabilities(mut value: &[u8], mut offset: usize) -> Result<Vec<Capability>, DecodeError> {
    let mut caps = Vec::new();
    while !value.is_empty() {
        if value.len() < 2 {
            return Err(DecodeError::new(Reason::MalformedOpen("capability header"), offset));
        }
        let code = value[0];
        let len = value[1] as usize;
        let body = value
            .get(2..2 + len)
            .ok_or_else(|| DecodeError::new(Reason::MalformedOpen("capability overruns parameter"), offset))?;
        caps.push(Capability::decode(code, body));
        value = &value[2 + len..];
        offset += 2 + len;
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Open {
        Open::new(
            4_200_000_001,
            90,
            Ipv4Addr::new(192, 168, 1, 11),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_001),
                Capability::AddPath(vec![(Family::IPV4_UNICAST, AddPathMode::Both)]),
            ],
        )
    }

    #[test]
    fn receive_context_negotiates_each_direction() {
        let a = sample(); // 4-octet AS, ADD-PATH both for IPv4
        let mut b = Open::new(
            65002,
            90,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![
                Capability::AddPath(vec![(Family::IPV4_UNICAST, AddPathMode::Receive)]),
                Capability::ExtendedMessage,
            ],
        );
        let a_to_b = receive_context(&a, &b);
        assert!(!a_to_b.four_octet_as);
        assert!(a_to_b.has_add_path(Family::IPV4_UNICAST));
        assert_eq!(a_to_b.max_message_len, 4096);
        assert!(!receive_context(&b, &a).has_add_path(Family::IPV4_UNICAST));
        b.capability_groups[0].push(Capability::FourOctetAs(65002));
        assert!(receive_context(&b, &a).four_octet_as);
    }

    #[test]
    fn round_trip_and_as_trans() {
        let open = sample();
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), 4_200_000_001);
        let mut body = Vec::new();
        open.encode_body(&mut body).unwrap();
        assert_eq!(Open::decode(&body).unwrap(), open);
    }

    #[test]
    fn extended_parameters_round_trip() {
        let mut open = sample();
        open.capability_groups = (0..40)
            .map(|i| {
                vec![Capability::Unknown {
                    code: 200,
                    value: vec![i; 6],
                }]
            })
            .collect();
        let mut body = Vec::new();
        open.encode_body(&mut body).unwrap();
        assert_eq!(body[9], 255);
        assert_eq!(body[10], 255);
        let decoded = Open::decode(&body).unwrap();
        assert!(decoded.extended_params);
        assert_eq!(decoded.capability_groups, open.capability_groups);
    }

    #[test]
    fn capability_too_long_is_an_error_not_a_truncation() {
        let mut open = sample();
        open.capability_groups = vec![vec![Capability::Unknown {
            code: 200,
            value: vec![0; 300],
        }]];
        let mut body = Vec::new();
        assert_eq!(open.encode_body(&mut body), Err(EncodeError::CapabilityTooLong(200)));
    }

    #[test]
    fn rejects_bad_version_hold_time_and_id() {
        let mut body = Vec::new();
        sample().encode_body(&mut body).unwrap();
        let mut v3 = body.clone();
        v3[0] = 3;
        let err = Open::decode(&v3).unwrap_err();
        assert_eq!(err.notification_code(), (2, 1));
        assert_eq!(err.data, vec![0, 4]);
        let mut hold = body.clone();
        hold[3..5].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(Open::decode(&hold).unwrap_err().notification_code(), (2, 6));
        let mut id = body.clone();
        id[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Open::decode(&id).unwrap_err().notification_code(), (2, 3));
    }

    #[test]
    fn rejects_unknown_parameter_and_overrun() {
        let mut body = vec![4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0];
        let err = Open::decode(&body).unwrap_err();
        assert_eq!(err.notification_code(), (2, 4));
        assert_eq!(err.offset, HEADER_LEN + 10);
        body[9] = 9;
        assert_eq!(Open::decode(&body).unwrap_err().notification_code(), (2, 0));
        assert_eq!(Open::decode(&body[..5]).unwrap_err().offset, HEADER_LEN + 5);
    }
}
