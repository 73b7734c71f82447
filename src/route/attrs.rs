//! A route's attributes as the RIB keeps them: one canonical, hashable set
//! (interned, so the many prefixes that share it share one allocation), built
//! from a received UPDATE and turned back into path attributes for a peer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp_proto::attributes::{
    flags, Aggregator, AsPath, AttrValue, Community, ExtCommunity, LargeCommunity, MpNextHop, Origin, PathAttribute,
};
use bgp_proto::update::Update;
use bgp_proto::{Context, Family};

/// Path attributes of one route, minus the NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub origin: Origin,
    pub as_path: AsPath,
    /// The BGP next hop; `None` for routes we originate (next hop self).
    pub next_hop: Option<IpAddr>,
    /// IPv6 link-local next hop (RFC 2545 §3), when the peer sent one.
    pub link_local: Option<Ipv6Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub ext_communities: Vec<ExtCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub otc: Option<u32>,
    /// Unknown optional transitive attributes, passed on with the Partial
    /// bit set (RFC 4271 §5); unknown non-transitive ones are dropped.
    pub unknown: Vec<(u8, Vec<u8>)>,
}

impl RouteAttrs {
    /// Attributes of a route we originate.
    pub fn local(communities: Vec<Community>, large_communities: Vec<LargeCommunity>) -> RouteAttrs {
        RouteAttrs {
            origin: Origin::Igp,
            as_path: AsPath::default(),
            next_hop: None,
            link_local: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities,
            ext_communities: Vec::new(),
            large_communities,
            originator_id: None,
            cluster_list: Vec::new(),
            otc: None,
            unknown: Vec::new(),
        }
    }

    /// The attributes `update` gives routes of `family`. For a peer without
    /// 4-octet AS support, AS4_PATH / AS4_AGGREGATOR are merged in (RFC 6793 §4.2.3).
    pub fn from_update(update: &Update, family: Family, four_octet_as: bool) -> RouteAttrs {
        let mut a = RouteAttrs::local(Vec::new(), Vec::new());
        let mut as4_path = None;
        let mut as4_aggregator = None;
        for attr in &update.attributes {
            match &attr.value {
                AttrValue::Origin(o) => a.origin = *o,
                AttrValue::AsPath(p) => a.as_path = p.clone(),
                AttrValue::NextHop(n) if family == Family::IPV4_UNICAST => a.next_hop = Some(IpAddr::V4(*n)),
                AttrValue::Med(m) => a.med = Some(*m),
                AttrValue::LocalPref(l) => a.local_pref = Some(*l),
                AttrValue::AtomicAggregate => a.atomic_aggregate = true,
                AttrValue::Aggregator(g) => a.aggregator = Some(*g),
                AttrValue::Communities(c) => a.communities = c.clone(),
                AttrValue::OriginatorId(o) => a.originator_id = Some(*o),
                AttrValue::ClusterList(c) => a.cluster_list = c.clone(),
                AttrValue::MpReach(m) if m.family == family => match m.next_hop {
                    MpNextHop::V4(n) => a.next_hop = Some(IpAddr::V4(n)),
                    MpNextHop::V6 { global, link_local } => {
                        a.next_hop = Some(IpAddr::V6(global));
                        a.link_local = link_local;
                    }
                },
                AttrValue::ExtendedCommunities(c) => a.ext_communities = c.clone(),
                AttrValue::As4Path(p) => as4_path = Some(p),
                AttrValue::As4Aggregator(g) => as4_aggregator = Some(*g),
                AttrValue::LargeCommunities(c) => a.large_communities = c.clone(),
                AttrValue::Otc(o) => a.otc = Some(*o),
                AttrValue::Raw { type_code, data } if attr.flags & flags::TRANSITIVE != 0 => {
                    a.unknown.push((*type_code, data.clone()))
                }
                _ => {}
            }
        }
        if !four_octet_as {
            // RFC 6793 §4.2.3: an AGGREGATOR with an AS other than AS_TRANS
            // means AS4_AGGREGATOR and AS4_PATH "SHALL be ignored" (finding 20).
            let as_trans = bgp_proto::open::AS_TRANS as u32;
            let aggregated_by_old_speaker = a.aggregator.is_some_and(|g| g.asn != as_trans);
            if let Some(p) = as4_path.filter(|_| !aggregated_by_old_speaker) {
                a.as_path = a.as_path.merge_as4(p);
            }
            if let (Some(g4), Some(g)) = (as4_aggregator, a.aggregator) {
                if g.asn == as_trans {
                    a.aggregator = Some(g4);
                }
            }
        }
        a
    }

    /// The attributes to send (without NEXT_HOP / MP_*), sorted by type code.
    /// For a 2-octet peer, 4-octet ASes travel in AS4_PATH / AS4_AGGREGATOR (RFC 6793 §4.2.2).
    pub fn to_path_attributes(&self, ctx: &Context) -> Vec<PathAttribute> {
        let mut v = Vec::with_capacity(8);
        v.push(PathAttribute::new(AttrValue::Origin(self.origin)));
        v.push(PathAttribute::new(AttrValue::AsPath(self.as_path.clone())));
        if let Some(m) = self.med {
            v.push(PathAttribute::new(AttrValue::Med(m)));
        }
        if let Some(l) = self.local_pref {
            v.push(PathAttribute::new(AttrValue::LocalPref(l)));
        }
        if self.atomic_aggregate {
            v.push(PathAttribute::new(AttrValue::AtomicAggregate));
        }
        if let Some(g) = self.aggregator {
            v.push(PathAttribute::new(AttrValue::Aggregator(g)));
        }
        if !self.communities.is_empty() {
            v.push(PathAttribute::new(AttrValue::Communities(self.communities.clone())));
        }
        if let Some(o) = self.originator_id {
            v.push(PathAttribute::new(AttrValue::OriginatorId(o)));
        }
        if !self.cluster_list.is_empty() {
            v.push(PathAttribute::new(AttrValue::ClusterList(self.cluster_list.clone())));
        }
        if !self.ext_communities.is_empty() {
            v.push(PathAttribute::new(AttrValue::ExtendedCommunities(
                self.ext_communities.clone(),
            )));
        }
        if !ctx.four_octet_as {
            if self.as_path.has_four_octet_as() {
                v.push(PathAttribute::new(AttrValue::As4Path(self.as_path.clone())));
            }
            if let Some(g) = self.aggregator.filter(|g| g.asn > 0xffff) {
                v.push(PathAttribute::new(AttrValue::As4Aggregator(g)));
            }
        }
        if !self.large_communities.is_empty() {
            v.push(PathAttribute::new(AttrValue::LargeCommunities(
                self.large_communities.clone(),
            )));
        }
        if let Some(o) = self.otc {
            v.push(PathAttribute::new(AttrValue::Otc(o)));
        }
        for (t, data) in &self.unknown {
            v.push(PathAttribute {
                flags: flags::OPTIONAL_TRANSITIVE | flags::PARTIAL,
                value: AttrValue::Raw {
                    type_code: *t,
                    data: data.clone(),
                },
            });
        }
        v.sort_by_key(|a| a.type_code());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::attributes::MpReach;
    use bgp_proto::Nlri;

    #[test]
    fn two_octet_peer_round_trip_keeps_four_octet_path() {
        let mut a = RouteAttrs::local(vec![Community::new(65000, 1)], Vec::new());
        a.as_path = AsPath::sequence(vec![4_200_000_001, 65002]);
        a.next_hop = Some("192.168.1.12".parse().unwrap());
        let legacy = Context::legacy();
        let update = Update {
            withdrawn: vec![],
            attributes: {
                let mut v = a.to_path_attributes(&legacy);
                v.push(PathAttribute::new(AttrValue::NextHop("192.168.1.12".parse().unwrap())));
                v
            },
            nlri: vec![Nlri::new("10.244.2.0/26".parse().unwrap())],
        };
        let bytes = bgp_proto::Message::Update(update).to_bytes(&legacy).unwrap();
        let decoded = bgp_proto::decode(&bytes, &legacy).unwrap();
        let bgp_proto::Message::Update(u) = decoded.message else {
            panic!()
        };
        assert_eq!(u.as_path().unwrap().to_string(), "23456 65002");
        let back = RouteAttrs::from_update(&u, Family::IPV4_UNICAST, false);
        assert_eq!(back, a);
    }

    #[test]
    fn mp_next_hop_per_family() {
        let update = Update {
            withdrawn: vec![],
            attributes: vec![
                PathAttribute::new(AttrValue::MpReach(MpReach {
                    family: Family::IPV6_UNICAST,
                    next_hop: MpNextHop::V6 {
                        global: "fd00::12".parse().unwrap(),
                        link_local: Some("fe80::12".parse().unwrap()),
                    },
                    reserved: 0,
                    nlri: vec![],
                })),
                PathAttribute::new(AttrValue::NextHop("192.168.1.12".parse().unwrap())),
                PathAttribute {
                    flags: flags::OPTIONAL,
                    value: AttrValue::Raw {
                        type_code: 200,
                        data: vec![1],
                    },
                },
            ],
            nlri: vec![],
        };
        let v6 = RouteAttrs::from_update(&update, Family::IPV6_UNICAST, true);
        assert_eq!(v6.next_hop, Some("fd00::12".parse().unwrap()));
        assert_eq!(v6.link_local, Some("fe80::12".parse().unwrap()));
        let v4 = RouteAttrs::from_update(&update, Family::IPV4_UNICAST, true);
        assert_eq!(v4.next_hop, Some("192.168.1.12".parse().unwrap()));
        assert!(v4.unknown.is_empty(), "unknown non-transitive attributes are dropped");
    }

    fn from_old_speaker(aggregator_asn: u32) -> RouteAttrs {
        let update = Update {
            attributes: vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![65001, 23456]))),
                PathAttribute::new(AttrValue::NextHop("192.168.1.1".parse().unwrap())),
                PathAttribute::new(AttrValue::Aggregator(Aggregator {
                    asn: aggregator_asn,
                    address: "10.0.0.1".parse().unwrap(),
                })),
                PathAttribute::new(AttrValue::As4Path(AsPath::sequence(vec![4_200_000_001]))),
            ],
            ..Update::default()
        };
        RouteAttrs::from_update(&update, Family::IPV4_UNICAST, false)
    }

    #[test]
    fn finding_20_as4_path_is_ignored_when_aggregator_is_not_as_trans() {
        let asns = |a: RouteAttrs| -> Vec<u32> { a.as_path.segments.iter().flat_map(|s| s.asns.clone()).collect() };
        assert_eq!(asns(from_old_speaker(65010)), vec![65001, 23456], "RFC 6793 §4.2.3");
        assert_eq!(asns(from_old_speaker(23456)), vec![65001, 4_200_000_001]);
    }
}
