//! The decision process: RFC 4271 §9.1.2.2 (a–g) with RFC 4456 §9 for
//! reflected routes, graceful-restart stale paths least preferred, and the
//! set of paths that tie for forwarding (ECMP).

use std::cmp::Ordering;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::table::Path;
use super::Rib;
use crate::messages::{Gateways, DEFAULT_LOCAL_PREF, LOCAL};
use crate::route::LLGR_STALE;

/// Identifies the best path (its peer, path id and attribute set) so a
/// flush can tell whether the peers need to hear anything.
pub(super) fn best_digest(best: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(best.peer, best.path_id, Arc::as_ptr(&best.attrs) as usize), &mut h);
    std::hash::Hasher::finish(&h) | 1
}

impl Rib {
    /// Compares two paths per RFC 4271 §9.1.2.2 (Less = `a` is better), and
    /// says whether they tie up to and including the eBGP/iBGP step, so
    /// they may share the forwarding (ECMP).
    pub(super) fn compare(&self, a: &Path, b: &Path) -> (Ordering, bool) {
        let lp = |p: &Path| p.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
        let ebgp = |p: &Path| self.info(p.peer).is_some_and(|i| !i.ibgp());
        let local = |p: &Path| p.peer == LOCAL;
        let med = |p: &Path| p.attrs.med.unwrap_or(0);
        let stale = |p: &Path| self.stale_peers.contains_key(&p.peer);
        let llgr_stale = |p: &Path| p.attrs.communities.contains(&LLGR_STALE);
        let steps = [
            // Our own routes win over learned ones (like BIRD's preference).
            local(b).cmp(&local(a)),
            // RFC 9494 §4.4: an LLGR_STALE route is least preferred.
            llgr_stale(a).cmp(&llgr_stale(b)),
            // A live path beats a stale one kept for a restarting peer (RFC 4724).
            stale(a).cmp(&stale(b)),
            // a) highest LOCAL_PREF.
            lp(b).cmp(&lp(a)),
            // a) shortest AS_PATH.
            a.attrs.as_path.path_len().cmp(&b.attrs.as_path.path_len()),
            // b) lowest ORIGIN.
            a.attrs.origin.cmp(&b.attrs.origin),
            // c) lowest MED, only between routes from the same neighbouring AS.
            if a.attrs.as_path.first_as() == b.attrs.as_path.first_as() {
                med(a).cmp(&med(b))
            } else {
                Ordering::Equal
            },
            // d) eBGP over iBGP.
            ebgp(b).cmp(&ebgp(a)),
        ];
        if let Some(o) = steps.iter().find(|o| **o != Ordering::Equal) {
            return (*o, false);
        }
        // f) lowest BGP identifier (ORIGINATOR_ID when reflected, RFC 4456 §9).
        let id = |p: &Path| {
            p.attrs
                .originator_id
                .or_else(|| self.info(p.peer).map(|i| i.router_id))
                .unwrap_or(self.cfg.router_id)
        };
        let addr = |p: &Path| self.info(p.peer).map(|i| i.address);
        let tie = [
            id(a).cmp(&id(b)),
            // RFC 4456 §9: shortest CLUSTER_LIST.
            a.attrs.cluster_list.len().cmp(&b.attrs.cluster_list.len()),
            // g) lowest peer address.
            addr(a).cmp(&addr(b)),
            a.path_id.cmp(&b.path_id),
        ];
        (
            tie.into_iter()
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            true,
        )
    }

    /// The best usable path of `prefix` and the gateways of every path that
    /// ties with it for forwarding (ECMP).
    pub(super) fn select(&self, prefix: &IpNetwork) -> Option<(Path, Gateways)> {
        let paths = self.loc.get(prefix)?;
        let usable = |p: &&Path| p.peer == LOCAL || self.next_hop_usable(p);
        let best = paths.iter().filter(usable).min_by(|a, b| self.compare(a, b).0)?.clone();
        let mut gateways: Gateways = paths
            .iter()
            .filter(usable)
            .filter(|p| p.peer != LOCAL && self.compare(p, &best).1)
            .filter_map(|p| p.attrs.next_hop)
            .collect();
        gateways.sort();
        gateways.dedup();
        Some((best, gateways))
    }

    /// A next hop of one of our own addresses is unusable (RFC 4271 §9.1.2).
    pub(super) fn next_hop_usable(&self, p: &Path) -> bool {
        match (p.attrs.next_hop, self.info(p.peer)) {
            (Some(nh), Some(i)) => nh != i.local_address && !nh.is_unspecified(),
            _ => false,
        }
    }
}
