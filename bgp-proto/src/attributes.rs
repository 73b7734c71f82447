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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{EncodeError, Reason, Treatment};
use crate::nlri::{decode_prefixes, AddressKind, Nlri};
use crate::open::AS_TRANS;
use crate::types::{Afi, Context, Family, Safi};

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

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// AS_PATH or AS4_PATH as a list of segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an AS_SET
    /// counts as 1, confederation segments count 0 (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// First AS of the path (the neighbouring AS), if the path starts with a sequence.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }) => asns.first().copied(),
            _ => None,
        }
    }

    /// The originating AS: the last AS of a trailing AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        match self.segments.last() {
            Some(AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }) => asns.last().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepends `asn` `count` times to the leading AS_SEQUENCE (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32, count: usize) {
        match self.segments.first_mut() {
            Some(seg) if seg.kind == SegmentType::Sequence && seg.asns.len() + count <= 255 => {
                seg.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn; count],
                },
            ),
        }
    }

    /// Whether any AS does not fit in 2 octets.
    pub fn has_four_octet_as(&self) -> bool {
        self.segments.iter().flat_map(|s| &s.asns).any(|&a| a > 0xffff)
    }

    /// Number of ASes counted as RFC 6793 §4.2.3 counts them (sets as 1, confed segments as 0).
    fn count_for_as4(&self) -> usize {
        self.path_len()
    }

    /// RFC 6793 §4.2.3: rebuild the real path from a 2-octet peer's AS_PATH and
    /// AS4_PATH. If AS4_PATH is longer than AS_PATH it is ignored.
    pub fn merge_as4(&self, as4_path: &AsPath) -> AsPath {
        let n = self.count_for_as4();
        let m = as4_path.count_for_as4();
        if m > n {
            return self.clone();
        }
        // Keep the leading (n - m) ASes of AS_PATH, then append AS4_PATH.
        let mut keep = n - m;
        let mut out = AsPath::default();
        for seg in &self.segments {
            if keep == 0 {
                break;
            }
            match seg.kind {
                SegmentType::Sequence => {
                    let take = keep.min(seg.asns.len());
                    out.segments.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
                SegmentType::Set => {
                    out.segments.push(seg.clone());
                    keep -= 1;
                }
                SegmentType::ConfedSequence | SegmentType::ConfedSet => out.segments.push(seg.clone()),
            }
        }
        out.segments.extend(as4_path.segments.iter().cloned());
        out
    }

    fn decode(mut v: &[u8], four_octet: bool) -> Result<AsPath, Reason> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !v.is_empty() {
            // RFC 7606 §7.2: overrun, zero length or undefined type is malformed.
            let [kind, count, rest @ ..] = v else {
                return Err(Reason::MalformedAsPath("segment header overruns"));
            };
            let kind = match kind {
                1 => SegmentType::Set,
                2 => SegmentType::Sequence,
                3 => SegmentType::ConfedSequence,
                4 => SegmentType::ConfedSet,
                _ => return Err(Reason::MalformedAsPath("undefined segment type")),
            };
            if *count == 0 {
                return Err(Reason::MalformedAsPath("zero segment length"));
            }
            let len = *count as usize * width;
            let Some(body) = rest.get(..len) else {
                return Err(Reason::MalformedAsPath("segment overruns"));
            };
            let asns = body
                .chunks_exact(width)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]) as u32,
                    [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                    _ => 0,
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            v = &rest[len..];
        }
        Ok(AsPath { segments })
    }

    /// Wire form; with `four_octet` false, ASes above 65535 become AS_TRANS
    /// (RFC 6793 §4.2.2). Segments longer than 255 ASes are split.
    pub fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            for chunk in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        out.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
                    }
                }
            }
        }
    }
}

impl fmt::Display for AsPath {
    /// BIRD style: `65001 65002 {65003 65004} (65005)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list = seg.asns.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
            match seg.kind {
                SegmentType::Sequence => f.write_str(&list)?,
                SegmentType::Set => write!(f, "{{{list}}}")?,
                SegmentType::ConfedSequence => write!(f, "({list})")?,
                SegmentType::ConfedSet => write!(f, "[{list}]")?,
            }
        }
        Ok(())
    }
}

/// AGGREGATOR / AS4_AGGREGATOR value (RFC 4271 §5.1.7, RFC 6793).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997), shown as `ASN:VALUE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    pub const NO_PEER: Community = Community(0xFFFF_FF04);

    pub fn new(asn: u16, value: u16) -> Community {
        Community(((asn as u32) << 16) | value as u32)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Community::NO_EXPORT => f.write_str("no-export"),
            Community::NO_ADVERTISE => f.write_str("no-advertise"),
            Community::NO_EXPORT_SUBCONFED => f.write_str("no-export-subconfed"),
            Community::NO_PEER => f.write_str("no-peer"),
            Community(c) => write!(f, "{}:{}", c >> 16, c & 0xffff),
        }
    }
}

/// An extended community (RFC 4360), eight raw octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl fmt::Display for ExtCommunity {
    /// Route target / origin in the usual `rt:ASN:N` / `soo:ASN:N` form, hex otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let name = match b[1] {
            0x02 => "rt",
            0x03 => "soo",
            _ => "",
        };
        match (b[0] & 0x3f, name) {
            (0x00, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]])
            ),
            (0x01, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            (0x02, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            _ => write!(
                f,
                "0x{:02x}{:02x}:{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
            ),
        }
    }
}

/// A large community (RFC 8092), shown as `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
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

/// What became of one attribute's value during decoding.
pub(crate) enum Checked {
    Ok(AttrValue),
    /// Malformed, handled by the given RFC 7606 treatment (the value is dropped).
    Malformed(Reason, Treatment),
    /// Malformed in a way that requires a session reset.
    Reset(Reason),
}

fn address_kind(family: Family) -> Option<AddressKind> {
    match (family.afi, family.safi) {
        (Afi::IPV4, Safi::UNICAST | Safi::MULTICAST) => Some(AddressKind::V4),
        (Afi::IPV6, Safi::UNICAST | Safi::MULTICAST) => Some(AddressKind::V6),
        _ => None,
    }
}

fn u32_at(v: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]])
}

/// Decodes and checks one attribute value per RFC 7606 §7 (and RFC 8092 §6,
/// RFC 9234 §5, RFC 6793 §6). `flag_bits` are the received flags.
pub(crate) fn decode_value(type_code: u8, flag_bits: u8, v: &[u8], ctx: &Context) -> Checked {
    use type_code::*;
    use Checked::*;
    use Treatment::{AttributeDiscard as Discard, TreatAsWithdraw as Withdraw};
    // RFC 7606 §3 c: optional/transitive bits in conflict with the attribute's
    // definition make it malformed: treat-as-withdraw, except where the
    // attribute's own rules say otherwise (AS4_* discard; MP_* reset).
    if let Some(expected) = expected_flags(type_code) {
        if flag_bits & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            return match type_code {
                AS4_PATH | AS4_AGGREGATOR | ATOMIC_AGGREGATE | AGGREGATOR => {
                    Malformed(Reason::AttributeFlags(type_code), Discard)
                }
                MP_REACH_NLRI | MP_UNREACH_NLRI => Reset(Reason::AttributeFlags(type_code)),
                _ => Malformed(Reason::AttributeFlags(type_code), Withdraw),
            };
        }
    }
    let len_err = || Reason::AttributeLength(type_code);
    match type_code {
        // RFC 7606 §7.1: length other than 1, or an undefined value.
        ORIGIN => match v {
            [0] => Ok(AttrValue::Origin(Origin::Igp)),
            [1] => Ok(AttrValue::Origin(Origin::Egp)),
            [2] => Ok(AttrValue::Origin(Origin::Incomplete)),
            [x] => Malformed(Reason::InvalidOrigin(*x), Withdraw),
            _ => Malformed(len_err(), Withdraw),
        },
        // RFC 7606 §7.2.
        AS_PATH => match AsPath::decode(v, ctx.four_octet_as) {
            Result::Ok(p) => Ok(AttrValue::AsPath(p)),
            Err(r) => Malformed(r, Withdraw),
        },
        // RFC 6793 §6 / RFC 7606 §7.2: a malformed AS4_PATH is discarded.
        AS4_PATH => match AsPath::decode(v, true) {
            Result::Ok(p) => Ok(AttrValue::As4Path(p)),
            Err(_) => Malformed(Reason::OptionalAttribute(AS4_PATH, "malformed AS4_PATH"), Discard),
        },
        // RFC 7606 §7.3: wrong length, or not a usable unicast address.
        NEXT_HOP => match v {
            [a, b, c, d] => {
                let addr = Ipv4Addr::new(*a, *b, *c, *d);
                if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
                    Malformed(Reason::InvalidNextHop(IpAddr::V4(addr)), Withdraw)
                } else {
                    Ok(AttrValue::NextHop(addr))
                }
            }
            _ => Malformed(len_err(), Withdraw),
        },
        // RFC 7606 §7.4, §7.5.
        MED | LOCAL_PREF | OTC => {
            if v.len() != 4 {
                // RFC 9234 §5 (OTC) and RFC 7606 §7.4/7.5: treat-as-withdraw.
                return Malformed(len_err(), Withdraw);
            }
            let x = u32_at(v, 0);
            Ok(match type_code {
                MED => AttrValue::Med(x),
                LOCAL_PREF => AttrValue::LocalPref(x),
                _ => AttrValue::Otc(x),
            })
        }
        // RFC 7606 §7.6: a non-zero length is discarded.
        ATOMIC_AGGREGATE => {
            if v.is_empty() {
                Ok(AttrValue::AtomicAggregate)
            } else {
                Malformed(len_err(), Discard)
            }
        }
        // RFC 7606 §7.7: 6 octets (8 with 4-octet AS) or discarded.
        AGGREGATOR => {
            let width = if ctx.four_octet_as { 4 } else { 2 };
            if v.len() != width + 4 {
                return Malformed(len_err(), Discard);
            }
            let asn = if width == 4 {
                u32_at(v, 0)
            } else {
                u16::from_be_bytes([v[0], v[1]]) as u32
            };
            Ok(AttrValue::Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::new(v[width], v[width + 1], v[width + 2], v[width + 3]),
            }))
        }
        // RFC 6793 §6: AS4_AGGREGATOR of the wrong length is discarded.
        AS4_AGGREGATOR => {
            if v.len() != 8 {
                return Malformed(len_err(), Discard);
            }
            Ok(AttrValue::As4Aggregator(Aggregator {
                asn: u32_at(v, 0),
                address: Ipv4Addr::new(v[4], v[5], v[6], v[7]),
            }))
        }
        // RFC 7606 §7.8: zero or not a multiple of 4.
        COMMUNITIES => {
            if v.is_empty() || v.len() % 4 != 0 {
                return Malformed(len_err(), Withdraw);
            }
            Ok(AttrValue::Communities(
                v.chunks_exact(4).map(|c| Community(u32_at(c, 0))).collect(),
            ))
        }
        // RFC 7606 §7.9.
        ORIGINATOR_ID => match v {
            [a, b, c, d] => Ok(AttrValue::OriginatorId(Ipv4Addr::new(*a, *b, *c, *d))),
            _ => Malformed(len_err(), Withdraw),
        },
        // RFC 7606 §7.10.
        CLUSTER_LIST => {
            if v.is_empty() || v.len() % 4 != 0 {
                return Malformed(len_err(), Withdraw);
            }
            Ok(AttrValue::ClusterList(
                v.chunks_exact(4).map(|c| Ipv4Addr::from(u32_at(c, 0))).collect(),
            ))
        }
        // RFC 7606 §7.14.
        EXTENDED_COMMUNITIES => {
            if v.is_empty() || v.len() % 8 != 0 {
                return Malformed(len_err(), Withdraw);
            }
            Ok(AttrValue::ExtendedCommunities(
                v.chunks_exact(8)
                    .map(|c| ExtCommunity([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ))
        }
        // RFC 8092 §6: zero or not a multiple of 12 is treat-as-withdraw.
        LARGE_COMMUNITIES => {
            if v.is_empty() || v.len() % 12 != 0 {
                return Malformed(len_err(), Withdraw);
            }
            Ok(AttrValue::LargeCommunities(
                v.chunks_exact(12)
                    .map(|c| LargeCommunity {
                        global: u32_at(c, 0),
                        local1: u32_at(c, 4),
                        local2: u32_at(c, 8),
                    })
                    .collect(),
            ))
        }
        MP_REACH_NLRI => decode_mp_reach(v, ctx),
        MP_UNREACH_NLRI => decode_mp_unreach(v, ctx),
        _ => {
            // RFC 4271 §6.3: an unrecognized well-known attribute resets the session.
            if flag_bits & flags::OPTIONAL == 0 {
                return Reset(Reason::UnrecognizedWellKnown(type_code));
            }
            Ok(AttrValue::Raw {
                type_code,
                data: v.to_vec(),
            })
        }
    }
}

/// RFC 4760 §3 MP_REACH_NLRI. RFC 7606 §7.11: if AFI/SAFI cannot be read the
/// session is reset; a bad next-hop length or NLRI disables the family.
fn decode_mp_reach(v: &[u8], ctx: &Context) -> Checked {
    let (afi, safi, nh_len) = match v {
        [a0, a1, s, n, ..] => (Afi(u16::from_be_bytes([*a0, *a1])), Safi(*s), *n as usize),
        _ => return Checked::Reset(Reason::OptionalAttribute(type_code::MP_REACH_NLRI, "too short")),
    };
    let family = Family::new(afi, safi);
    let Some(kind) = address_kind(family) else {
        return Checked::Ok(AttrValue::Raw {
            type_code: type_code::MP_REACH_NLRI,
            data: v.to_vec(),
        });
    };
    let disable = |what| {
        Checked::Malformed(
            Reason::OptionalAttribute(type_code::MP_REACH_NLRI, what),
            Treatment::AfiSafiDisable(family),
        )
    };
    let Some(nh) = v.get(4..4 + nh_len) else {
        return disable("next hop overruns");
    };
    let next_hop = match (kind, nh.len()) {
        (AddressKind::V4, 4) => MpNextHop::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])),
        // IPv6 next hops for IPv6 NLRI (RFC 2545) or IPv4 NLRI (RFC 8950).
        (_, 16) => MpNextHop::V6 {
            global: Ipv6Addr::from(<[u8; 16]>::try_from(nh).unwrap_or_default()),
            link_local: None,
        },
        (_, 32) => MpNextHop::V6 {
            global: Ipv6Addr::from(<[u8; 16]>::try_from(&nh[..16]).unwrap_or_default()),
            link_local: Some(Ipv6Addr::from(<[u8; 16]>::try_from(&nh[16..]).unwrap_or_default())),
        },
        _ => return disable("next hop length"),
    };
    let Some(&reserved) = v.get(4 + nh_len) else {
        return disable("reserved octet missing");
    };
    let mut nlri = Vec::new();
    if decode_prefixes(&v[5 + nh_len..], kind, ctx.has_add_path(family), &mut nlri).is_err() {
        // RFC 7606 §5.3 / §7.11.
        return disable("NLRI");
    }
    Checked::Ok(AttrValue::MpReach(MpReach {
        family,
        next_hop,
        reserved,
        nlri,
    }))
}

/// RFC 4760 §4 MP_UNREACH_NLRI, checked like MP_REACH_NLRI (RFC 7606 §7.11).
fn decode_mp_unreach(v: &[u8], ctx: &Context) -> Checked {
    let [a0, a1, s, rest @ ..] = v else {
        return Checked::Reset(Reason::OptionalAttribute(type_code::MP_UNREACH_NLRI, "too short"));
    };
    let family = Family::new(Afi(u16::from_be_bytes([*a0, *a1])), Safi(*s));
    let Some(kind) = address_kind(family) else {
        return Checked::Ok(AttrValue::Raw {
            type_code: type_code::MP_UNREACH_NLRI,
            data: v.to_vec(),
        });
    };
    let mut withdrawn = Vec::new();
    if decode_prefixes(rest, kind, ctx.has_add_path(family), &mut withdrawn).is_err() {
        return Checked::Malformed(
            Reason::OptionalAttribute(type_code::MP_UNREACH_NLRI, "NLRI"),
            Treatment::AfiSafiDisable(family),
        );
    }
    Checked::Ok(AttrValue::MpUnreach(MpUnreach { family, withdrawn }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as4_reconstruction() {
        // RFC 6793 §4.2.3: AS_PATH 65001 23456 23456 65002, AS4_PATH 4200000001 4200000002 65002.
        let as_path = AsPath::sequence(vec![65001, 23456, 23456, 65002]);
        let as4 = AsPath::sequence(vec![4_200_000_001, 4_200_000_002, 65002]);
        let merged = as_path.merge_as4(&as4);
        assert_eq!(merged.to_string(), "65001 4200000001 4200000002 65002");
        // An AS4_PATH longer than AS_PATH is ignored.
        let long = AsPath::sequence(vec![1, 2, 3, 4, 5]);
        assert_eq!(as_path.merge_as4(&long), as_path);
    }

    #[test]
    fn as_path_two_octet_encoding_uses_as_trans() {
        let p = AsPath::sequence(vec![65001, 4_200_000_001]);
        let mut out = Vec::new();
        p.encode(false, &mut out);
        assert_eq!(out, vec![2, 2, 0xfd, 0xe9, 0x5b, 0xa0]);
    }

    #[test]
    fn prepend_and_lengths() {
        let mut p = AsPath::sequence(vec![65002]);
        p.prepend(65001, 2);
        assert_eq!(p.to_string(), "65001 65001 65002");
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65001));
        assert_eq!(p.origin_as(), Some(65002));
        let mut empty = AsPath::default();
        empty.prepend(64512, 1);
        assert_eq!(empty.to_string(), "64512");
    }

    #[test]
    fn community_text() {
        assert_eq!(Community::new(65000, 1).to_string(), "65000:1");
        assert_eq!(Community::NO_EXPORT.to_string(), "no-export");
        let lc = LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 2,
        };
        assert_eq!(lc.to_string(), "65000:1:2");
        assert_eq!(ExtCommunity([0, 2, 0xfd, 0xe8, 0, 0, 0, 1]).to_string(), "rt:65000:1");
    }

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
