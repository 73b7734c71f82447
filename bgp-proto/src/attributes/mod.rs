//! Path attributes (RFC 4271 §4.3, §5) and their RFC 7606 checks.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then Length: 1 octet, or 2 with Extended Length
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Each attribute keeps the flags it arrived with, so a received UPDATE
//! re-encodes byte for byte (Extended Length on short values included).
//!
//! This file has the attribute values and their encoding; AS paths live in
//! `as_path.rs`, communities in `community.rs`, and decoding with the RFC 7606
//! checks in `decode.rs`.

mod as_path;
mod community;
mod decode;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use as_path::{AsPath, AsSegment, SegmentType};
pub use community::{Community, ExtCommunity, LargeCommunity};
pub(crate) use decode::{decode_value, Checked};

use crate::error::EncodeError;
use crate::nlri::Nlri;
use crate::open::AS_TRANS;
use crate::types::{Context, Family};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// Well-known attributes: not optional, transitive.
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
    pub const OPTIONAL_NON_TRANSITIVE: u8 = OPTIONAL;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
    pub const OTC: u8 = 35;
}

/// ORIGIN values (RFC 4271 §5.1.1); the order is the decision-process order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Igp => "IGP",
            Origin::Egp => "EGP",
            Origin::Incomplete => "incomplete",
        }
    }
}

/// AGGREGATOR / AS4_AGGREGATOR value (RFC 4271 §5.1.7, RFC 6793).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// Next hop carried in MP_REACH_NLRI (RFC 4760 §3, RFC 2545 §3, RFC 8950 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    /// The address routes are installed via (the global one for IPv6).
    pub fn addr(&self) -> IpAddr {
        match self {
            MpNextHop::V4(a) => IpAddr::V4(*a),
            MpNextHop::V6 { global, .. } => IpAddr::V6(*global),
        }
    }

    fn wire_len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6 { link_local: None, .. } => 16,
            MpNextHop::V6 {
                link_local: Some(_), ..
            } => 32,
        }
    }
}

impl fmt::Display for MpNextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpNextHop::V4(a) => write!(f, "{a}"),
            MpNextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            MpNextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} {ll}"),
        }
    }
}

/// MP_REACH_NLRI for a family tern understands (IPv4/IPv6 unicast or multicast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    /// RFC 4760 §3: reserved octet, sent as 0, ignored on receipt (kept for re-encoding).
    pub reserved: u8,
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI for a family tern understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// A path attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(Vec<Community>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    ExtendedCommunities(Vec<ExtCommunity>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    LargeCommunities(Vec<LargeCommunity>),
    /// Only To Customer (RFC 9234 §5).
    Otc(u32),
    /// An attribute tern does not interpret (unknown optional, or an
    /// MP_(UN)REACH_NLRI of a family tern does not speak), byte for byte.
    Raw {
        type_code: u8,
        data: Vec<u8>,
    },
}

/// A path attribute: the flags it travels with and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathAttribute {
    pub flags: u8,
    pub value: AttrValue,
}

impl AttrValue {
    pub fn type_code(&self) -> u8 {
        use type_code::*;
        match self {
            AttrValue::Origin(_) => ORIGIN,
            AttrValue::AsPath(_) => AS_PATH,
            AttrValue::NextHop(_) => NEXT_HOP,
            AttrValue::Med(_) => MED,
            AttrValue::LocalPref(_) => LOCAL_PREF,
            AttrValue::AtomicAggregate => ATOMIC_AGGREGATE,
            AttrValue::Aggregator(_) => AGGREGATOR,
            AttrValue::Communities(_) => COMMUNITIES,
            AttrValue::OriginatorId(_) => ORIGINATOR_ID,
            AttrValue::ClusterList(_) => CLUSTER_LIST,
            AttrValue::MpReach(_) => MP_REACH_NLRI,
            AttrValue::MpUnreach(_) => MP_UNREACH_NLRI,
            AttrValue::ExtendedCommunities(_) => EXTENDED_COMMUNITIES,
            AttrValue::As4Path(_) => AS4_PATH,
            AttrValue::As4Aggregator(_) => AS4_AGGREGATOR,
            AttrValue::LargeCommunities(_) => LARGE_COMMUNITIES,
            AttrValue::Otc(_) => OTC,
            AttrValue::Raw { type_code, .. } => *type_code,
        }
    }
}

/// The optional/transitive flags a known attribute must carry (RFC 4271 §5
/// and each attribute's RFC); `None` for attributes tern does not know.
pub fn expected_flags(type_code: u8) -> Option<u8> {
    use type_code::*;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => flags::WELL_KNOWN,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => flags::OPTIONAL_NON_TRANSITIVE,
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES | OTC => {
            flags::OPTIONAL_TRANSITIVE
        }
        _ => return None,
    })
}

impl PathAttribute {
    /// An attribute with the flags its type requires (unknown types: optional transitive).
    pub fn new(value: AttrValue) -> PathAttribute {
        let flags = expected_flags(value.type_code()).unwrap_or(flags::OPTIONAL_TRANSITIVE);
        PathAttribute { flags, value }
    }

    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    /// Appends the attribute. The Extended Length bit is kept if it was set
    /// and added when the value needs it; a value over 65535 octets cannot be
    /// sent and is reported, never truncated.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0, self.type_code(), 0, 0]);
        encode_value(&self.value, ctx, out);
        let len = out.len() - start - 4;
        if len > u16::MAX as usize {
            out.truncate(start);
            return Err(EncodeError::AttributeTooLong(self.type_code()));
        }
        if self.flags & flags::EXTENDED_LENGTH != 0 || len > 255 {
            out[start] = self.flags | flags::EXTENDED_LENGTH;
            out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
        } else {
            out[start] = self.flags;
            out[start + 2] = len as u8;
            out.remove(start + 3);
        }
        Ok(())
    }
}

fn encode_value(value: &AttrValue, ctx: &Context, out: &mut Vec<u8>) {
    match value {
        AttrValue::Origin(o) => out.push(*o as u8),
        AttrValue::AsPath(p) => p.encode(ctx.four_octet_as, out),
        AttrValue::As4Path(p) => p.encode(true, out),
        AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => out.extend_from_slice(&a.octets()),
        AttrValue::Med(v) | AttrValue::LocalPref(v) | AttrValue::Otc(v) => out.extend_from_slice(&v.to_be_bytes()),
        AttrValue::AtomicAggregate => {}
        AttrValue::Aggregator(a) => {
            if ctx.four_octet_as {
                out.extend_from_slice(&a.asn.to_be_bytes());
            } else {
                out.extend_from_slice(&u16::try_from(a.asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
            out.extend_from_slice(&a.address.octets());
        }
        AttrValue::As4Aggregator(a) => {
            out.extend_from_slice(&a.asn.to_be_bytes());
            out.extend_from_slice(&a.address.octets());
        }
        AttrValue::Communities(cs) => cs.iter().for_each(|c| out.extend_from_slice(&c.0.to_be_bytes())),
        AttrValue::ClusterList(ids) => ids.iter().for_each(|i| out.extend_from_slice(&i.octets())),
        AttrValue::ExtendedCommunities(cs) => cs.iter().for_each(|c| out.extend_from_slice(&c.0)),
        AttrValue::LargeCommunities(cs) => {
            for c in cs {
                out.extend_from_slice(&c.global.to_be_bytes());
                out.extend_from_slice(&c.local1.to_be_bytes());
                out.extend_from_slice(&c.local2.to_be_bytes());
            }
        }
        AttrValue::MpReach(mp) => {
            out.extend_from_slice(&mp.family.afi.0.to_be_bytes());
            out.push(mp.family.safi.0);
            out.push(mp.next_hop.wire_len() as u8);
            match mp.next_hop {
                MpNextHop::V4(a) => out.extend_from_slice(&a.octets()),
                MpNextHop::V6 { global, link_local } => {
                    out.extend_from_slice(&global.octets());
                    if let Some(ll) = link_local {
                        out.extend_from_slice(&ll.octets());
                    }
                }
            }
            out.push(mp.reserved);
            let add_path = ctx.has_add_path(mp.family);
            mp.nlri.iter().for_each(|n| n.encode(add_path, out));
        }
        AttrValue::MpUnreach(mp) => {
            out.extend_from_slice(&mp.family.afi.0.to_be_bytes());
            out.push(mp.family.safi.0);
            let add_path = ctx.has_add_path(mp.family);
            mp.withdrawn.iter().for_each(|n| n.encode(add_path, out));
        }
        AttrValue::Raw { data, .. } => out.extend_from_slice(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_length_kept_and_added() {
        let ctx = Context::default();
        let mut short = PathAttribute::new(AttrValue::Med(5));
        let mut out = Vec::new();
        short.encode(&ctx, &mut out).unwrap();
        assert_eq!(out, vec![0x80, 4, 4, 0, 0, 0, 5]);
        short.flags |= flags::EXTENDED_LENGTH;
        out.clear();
        short.encode(&ctx, &mut out).unwrap();
        assert_eq!(out, vec![0x90, 4, 0, 4, 0, 0, 0, 5]);
        let many = PathAttribute::new(AttrValue::Communities((0..100).map(Community).collect()));
        out.clear();
        many.encode(&ctx, &mut out).unwrap();
        assert_eq!(out[0], 0xd0);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 400);
    }
}
