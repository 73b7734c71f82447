//! Read-only views of the RIB for the front ends (`ternctl`, the BIRD
//! socket, metrics), answered between batches. Typed: the front ends turn
//! them into text.

use std::collections::HashMap;

use bgp_proto::Family;
use ipnetwork::IpNetwork;

use super::adj_out::PeerState;
use super::table::Path;
use super::{family_of, Rib};
use crate::messages::{FamilyCounts, PeerCounts, PeerId, RibSummary, RouteSource, RouteView, KERNEL, LOCAL};

impl Rib {
    /// Every path of the prefixes within `filter` (all without one), sorted by prefix.
    /// The best paths of what `peer` was sent (`show routes --peer NAME --advertised`),
    /// by prefix; the attributes as we hold them, before export rewrites.
    pub(super) fn advertised_to(&self, peer: PeerId) -> Vec<RouteView> {
        let Some(p) = self.peers.get(&peer) else {
            return Vec::new();
        };
        let mut prefixes: Vec<&IpNetwork> = (self.loc.with_ids())
            .filter(|(id, _)| p.advertised.get(*id))
            .map(|(_, e)| &e.prefix)
            .collect();
        prefixes.sort();
        let mut out = Vec::new();
        for prefix in prefixes {
            if let Some((best, _)) = self.select(prefix) {
                out.push(self.view(prefix, &best, true));
            }
        }
        out
    }

    /// The paths of the longest prefix containing `addr` (`show routes ADDRESS`).
    pub(super) fn longest_match(&self, addr: std::net::IpAddr) -> Vec<RouteView> {
        let longest = (self.loc.keys())
            .filter(|p| p.is_ipv4() == addr.is_ipv4() && p.contains(addr))
            .max_by_key(|p| p.prefix());
        let Some(prefix) = longest else {
            return Vec::new();
        };
        let best = self.select(prefix).map(|(b, _)| (b.peer, b.path_id));
        (self.loc[prefix].iter())
            .map(|path| self.view(prefix, path, best == Some((path.peer, path.path_id))))
            .collect()
    }

    pub(super) fn routes(&self, filter: Option<IpNetwork>) -> Vec<RouteView> {
        let mut prefixes: Vec<&IpNetwork> = match filter {
            Some(f) => self
                .loc
                .keys()
                .filter(|p| **p == f || f.contains(p.ip()) && f.prefix() <= p.prefix())
                .collect(),
            None => self.loc.keys().collect(),
        };
        prefixes.sort();
        let mut out = Vec::new();
        for prefix in prefixes {
            let best = self.select(prefix).map(|(b, _)| (b.peer, b.path_id));
            for path in self.loc[prefix].iter() {
                out.push(self.view(prefix, path, best == Some((path.peer, path.path_id))));
            }
        }
        out
    }

    pub(super) fn summary(&self) -> RibSummary {
        let mut accepted: HashMap<(PeerId, Family), usize> = HashMap::new();
        for (prefix, entry) in self.loc.iter() {
            for path in entry.iter() {
                *accepted.entry((path.peer, family_of(prefix))).or_default() += 1;
            }
        }
        let mut peers: Vec<PeerCounts> = self
            .peers
            .values()
            .map(|p| PeerCounts {
                peer: p.info.id,
                received: p.received,
                advertised: p.advertised.count,
                families: (p.info.families.iter())
                    .map(|family| FamilyCounts {
                        family,
                        accepted: accepted.get(&(p.info.id, family)).copied().unwrap_or(0),
                        filtered: (p.filtered.iter().find(|(f, _)| *f == family)).map_or(0, |(_, n)| *n),
                        advertised: self.advertised_of(p, family),
                    })
                    .collect(),
            })
            .collect();
        peers.sort_by_key(|p| p.peer);
        RibSummary {
            prefixes: self.loc.len(),
            paths: self.loc.values().map(|v| v.len()).sum(),
            attribute_sets: self.interned.len(),
            kernel_routes: self.loc.values().filter(|e| e.in_kernel).count(),
            learned: self.learned_in_use(),
            peers,
            stale: self.stale_sets(std::time::Instant::now()),
            converged: self.converged,
            deferring: self.deferring(),
        }
    }

    /// Prefixes of `family` in a peer's Adj-RIB-Out: its bit count when the
    /// session has one family, else a walk over the set bits.
    fn advertised_of(&self, p: &PeerState, family: Family) -> usize {
        if p.info.families.iter().count() <= 1 {
            return p.advertised.count;
        }
        p.advertised
            .ones_from(0)
            .filter(|&id| self.loc.prefix_of(id).is_some_and(|pr| family_of(&pr) == family))
            .count()
    }

    fn view(&self, prefix: &IpNetwork, path: &Path, best: bool) -> RouteView {
        let source = if path.peer == LOCAL {
            RouteSource::Local
        } else if let Some(learned) = self.learned.get(prefix).filter(|_| path.peer == KERNEL) {
            RouteSource::Kernel(learned.clone())
        } else if let Some(stale) = self.stale_peers.get(&path.peer) {
            RouteSource::Stale(stale.of)
        } else {
            RouteSource::Peer(path.peer)
        };
        let changed = self.loc.get(prefix).map_or(0, |e| e.changed);
        RouteView {
            prefix: *prefix,
            age: std::time::Duration::from_secs(u64::from(self.clock().saturating_sub(changed))),
            best,
            source,
            path_id: (path.path_id != 0).then_some(path.path_id),
            attrs: path.attrs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::rib::tests::{announce, learned, rib, up};

    /// Route age: the time since the prefix last changed, from the RIB's own
    /// clock (moved back here instead of waiting).
    #[test]
    fn route_age_counts_from_the_last_change_of_the_prefix() {
        let mut rib = rib();
        let _rx = up(&mut rib, 1, "192.168.1.12", super::super::tests::ASN);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        rib.started -= Duration::from_secs(90);
        let age = |rib: &crate::rib::Rib, p: &str| {
            let views = rib.routes(Some(p.parse().unwrap()));
            assert_eq!(views.len(), 1, "{views:?}");
            views[0].age.as_secs()
        };
        assert_eq!(age(&rib, "10.244.2.0/26"), 90);
        // A new path for one prefix: its age starts again, the other's does not.
        let mut changed = learned("192.168.1.12", vec![]);
        changed.med = Some(5);
        announce(&mut rib, 1, "10.244.2.0/26", changed);
        rib.flush();
        assert_eq!(age(&rib, "10.244.2.0/26"), 0);
        assert_eq!(age(&rib, "10.244.3.0/26"), 90);
    }

    /// A dual-stack session's Adj-RIB-Out is counted per family.
    #[test]
    fn advertised_prefixes_are_counted_per_family() {
        use bgp_proto::Family;
        let mut rib = rib();
        crate::rib::tests::originate(&mut rib, &["10.244.1.0/26", "10.244.2.0/26", "fd00:10:244:1::/64"]);
        let (mut info, out, _rx) = crate::rib::tests::peer(1, "192.168.1.12", super::super::tests::ASN, 64);
        info.families = [Family::IPV4_UNICAST, Family::IPV6_UNICAST].into_iter().collect();
        // An IPv6 session (RFC 8950 for IPv4): both families can be sent.
        info.local_address = "fd00::11".parse().unwrap();
        info.ipv4_via_ipv6 = true;
        rib.handle(crate::messages::RibMsg::PeerUp(info, out));
        rib.flush();
        let summary = rib.summary();
        let counts: Vec<(Family, usize)> = (summary.family_counts(crate::messages::PeerId(1)).iter())
            .map(|c| (c.family, c.advertised))
            .collect();
        assert_eq!(counts, [(Family::IPV4_UNICAST, 2), (Family::IPV6_UNICAST, 1)]);
    }
}
