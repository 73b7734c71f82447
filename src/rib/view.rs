//! Read-only views of the RIB for the front ends (`ternctl`, the BIRD
//! socket, metrics), answered between batches. Typed: the front ends turn
//! them into text.

use ipnetwork::IpNetwork;

use super::table::Path;
use super::Rib;
use crate::messages::{PeerCounts, PeerId, RibSummary, RouteSource, RouteView, KERNEL, LOCAL};

impl Rib {
    /// Every path of the prefixes within `filter` (all without one), sorted by prefix.
    /// The best paths of what `peer` was sent (`show routes --peer NAME --advertised`),
    /// by prefix; the attributes as we hold them, before export rewrites.
    pub(super) fn advertised_to(&self, peer: PeerId) -> Vec<RouteView> {
        let Some(p) = self.peers.get(&peer) else {
            return Vec::new();
        };
        let mut prefixes: Vec<&IpNetwork> = (self.loc.iter())
            .filter(|(_, e)| p.advertised.get(e.id))
            .map(|(prefix, _)| prefix)
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
        let mut peers: Vec<PeerCounts> = self
            .peers
            .values()
            .map(|p| PeerCounts {
                peer: p.info.id,
                received: p.received,
                advertised: p.advertised.count,
            })
            .collect();
        peers.sort_by_key(|p| p.peer);
        RibSummary {
            prefixes: self.loc.len(),
            paths: self.loc.values().map(|v| v.len()).sum(),
            attribute_sets: self.interned.len(),
            kernel_routes: self.loc.values().filter(|e| e.kernel != 0).count(),
            learned: self.learned_in_use(),
            peers,
            stale: self.stale_sets(std::time::Instant::now()),
            converged: self.converged,
            deferring: self.deferring(),
        }
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
        RouteView {
            prefix: *prefix,
            best,
            source,
            path_id: (path.path_id != 0).then_some(path.path_id),
            attrs: path.attrs.clone(),
        }
    }
}
