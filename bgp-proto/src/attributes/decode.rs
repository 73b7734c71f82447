//! Decoding one attribute value and checking it per RFC 7606 §7: each
//! malformed value gets its treatment (attribute discard, treat-as-withdraw,
//! AFI/SAFI disable) or, where the RFC says so, a session reset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    expected_flags, flags, type_code, Aggregator, AsPath, AttrValue, Community, ExtCommunity, LargeCommunity,
    MpNextHop, MpReach, MpUnreach, Origin,
};
use crate::error::{Reason, Treatment};
use crate::nlri::{decode_prefixes, AddressKind};
use crate::types::{Afi, Context, Family, Safi};

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
                // RFC 7606 §7.5: LOCAL_PREF from an external peer is not used, so
                // a malformed one is discarded.
                if type_code == LOCAL_PREF && ctx.external {
                    return Malformed(len_err(), Discard);
                }
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
        // RFC 7606 §7.9: from an external peer the attribute is discarded.
        ORIGINATOR_ID => match v {
            [a, b, c, d] => Ok(AttrValue::OriginatorId(Ipv4Addr::new(*a, *b, *c, *d))),
            _ if ctx.external => Malformed(len_err(), Discard),
            _ => Malformed(len_err(), Withdraw),
        },
        // RFC 7606 §7.10: likewise for CLUSTER_LIST.
        CLUSTER_LIST => {
            if v.is_empty() || v.len() % 4 != 0 {
                let treatment = if ctx.external { Discard } else { Withdraw };
                return Malformed(len_err(), treatment);
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
