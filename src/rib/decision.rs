//! The decision process: RFC 4271 §9.1.2.2 (a–g) with RFC 4456 §9 for
//! reflected routes, graceful-restart stale paths least preferred, and the
//! set of paths that tie for forwarding (ECMP).

use std::cmp::Ordering;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::table::Path;
use super::Rib;
use crate::messages::{Gateways, DEFAULT_LOCAL_PREF, KERNEL, LOCAL};
use crate::route::LLGR_STALE;

/// Identifies the best path (its peer, path id and attribute set) so a
/// flush can tell whether the peers need to hear anything.
pub(super) fn best_digest(best: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(best.peer, best.path_id, Arc::as_ptr(&best.attrs) as usize), &mut h);
    std::hash::Hasher::finish(&h) | 1
}

/// Candidate paths of one prefix: a handful at most, kept off the heap
/// (the decision runs for every prefix a peer is sent).
type Candidates<'a> = smallvec::SmallVec<[&'a Path; 4]>;

/// Keeps the paths whose `key` is the smallest.
fn keep_min<K: Ord>(paths: &mut Candidates<'_>, key: impl Fn(&Path) -> K) {
    if let Some(min) = paths.iter().map(|p| key(p)).min() {
        paths.retain(|p| key(p) == min);
    }
}

impl Rib {
    /// RFC 4271 §9.1.2.2 as set elimination, one step at a time over every
    /// usable path (so the result does not depend on arrival order, review
    /// finding 10). What survives the eBGP/iBGP step shares the forwarding
    /// (ECMP); the best is chosen among them by the tie-breaks.
    fn candidates<'a>(&self, paths: &'a [Path]) -> Candidates<'a> {
        let mut c: Candidates<'a> = paths.iter().filter(|p| self.usable(p)).collect();
        // Our own routes win over BGP-learned ones (like BIRD's preference),
        // and so does what this host's kernel says about a prefix ([learn]).
        keep_min(&mut c, |p| p.peer != LOCAL);
        keep_min(&mut c, |p| p.peer != KERNEL);
        // RFC 9494 §4.4: LLGR_STALE routes are least preferred.
        keep_min(&mut c, |p| p.attrs.communities.contains(&LLGR_STALE));
        // A live path beats a stale one kept for a restarting peer (RFC 4724).
        keep_min(&mut c, |p| self.stale_peers.contains_key(&p.peer));
        // a) highest LOCAL_PREF, shortest AS_PATH; b) lowest ORIGIN.
        keep_min(&mut c, |p| {
            std::cmp::Reverse(p.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
        });
        keep_min(&mut c, |p| p.attrs.as_path.path_len());
        keep_min(&mut c, |p| p.attrs.origin);
        // c) lowest MED, compared only between routes from the same neighbouring AS.
        let med = |p: &Path| p.attrs.med.unwrap_or(0);
        let neighbour = |p: &Path| p.attrs.as_path.first_as();
        let all = c.clone();
        c.retain(|p| !all.iter().any(|q| neighbour(q) == neighbour(p) && med(q) < med(p)));
        // d) eBGP over iBGP (our own and unknown sources count as internal).
        keep_min(&mut c, |p| self.info(p.peer).is_none_or(|i| i.ibgp()));
        c
    }

    /// f), g) and RFC 4456 §9: lowest BGP identifier (ORIGINATOR_ID when
    /// reflected), shortest CLUSTER_LIST, lowest peer address, path id.
    fn tie_break(&self, a: &Path, b: &Path) -> Ordering {
        let id = |p: &Path| {
            p.attrs
                .originator_id
                .or_else(|| self.info(p.peer).map(|i| i.router_id))
                .unwrap_or(self.cfg.router_id)
        };
        let addr = |p: &Path| self.info(p.peer).map(|i| i.address);
        id(a)
            .cmp(&id(b))
            .then(a.attrs.cluster_list.len().cmp(&b.attrs.cluster_list.len()))
            .then(addr(a).cmp(&addr(b)))
            .then(a.path_id.cmp(&b.path_id))
    }

    /// The best usable path of `prefix` and the gateways of every path that
    /// ties with it for forwarding (ECMP).
    pub(super) fn select(&self, prefix: &IpNetwork) -> Option<(Path, Gateways)> {
        self.select_in(self.loc.get(prefix)?)
    }

    /// The best path of the prefix with id `id`, without the ECMP set: what
    /// a peer is sent. A lone path (most prefixes) needs no ranking.
    pub(super) fn best_id(&self, id: u32) -> Option<Path> {
        let entry = self.loc.by_id(id)?;
        match &entry.paths[..] {
            [only] => self.usable(only).then(|| only.clone()),
            _ => self.select_in(entry).map(|(best, _)| best),
        }
    }

    /// Whether a path may be selected at all: ours, or with a usable next hop.
    fn usable(&self, p: &Path) -> bool {
        p.peer.is_this_host() || self.next_hop_usable(p)
    }

    /// [`Rib::select`] for the prefix with id `id`, without hashing it.
    pub(super) fn select_id(&self, id: u32) -> Option<(Path, Gateways)> {
        self.select_in(self.loc.by_id(id)?)
    }

    fn select_in(&self, paths: &super::table::Entry) -> Option<(Path, Gateways)> {
        if let [only] = &paths.paths[..] {
            // One path (most prefixes): no ranking, its gateway if usable.
            if !self.usable(only) {
                return None;
            }
            let gateways = match only.peer.is_this_host() {
                true => Gateways::new(),
                false => self.gateway(only).into_iter().collect(),
            };
            return Some((only.clone(), gateways));
        }
        let multipath = self.candidates(paths);
        let best = (*multipath.iter().min_by(|a, b| self.tie_break(a, b))?).clone();
        let mut gateways: Gateways = multipath
            .iter()
            .filter(|p| !p.peer.is_this_host())
            .filter_map(|p| self.gateway(p))
            .collect();
        gateways.sort();
        gateways.dedup();
        Some((best, gateways))
    }

    /// A next hop of one of our own addresses is unusable, and so is one that
    /// does not resolve (RFC 4271 §9.1.2, see `nexthop`), or `::` without a
    /// link-local next hop beside it.
    pub(super) fn next_hop_usable(&self, p: &Path) -> bool {
        match (p.attrs.next_hop, self.info(p.peer)) {
            (Some(nh), Some(i)) if nh != i.local_address => {
                super::nexthop::gateway_of(&p.attrs, i.address).is_some_and(|gw| self.resolves(gw))
            }
            _ => false,
        }
    }
}
