//! Export rules: what a peer is sent of a best path (RFC 4271 §5.1, RFC 4456
//! §6/§8, RFC 1997 well-known communities), and export classes that let
//! peers with identical rules share one result.

use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::attributes::Community;
use ipnetwork::IpNetwork;

use super::table::Path;
use super::{family_of, Rib};
use crate::messages::{NextHopMode, PeerId, PeerInfo, DEFAULT_LOCAL_PREF};
use crate::route::policy::{Chain, RouteContext};
use crate::route::{RouteAttrs, LLGR_STALE};

/// Peers that get identical exports of the same route share a class: same
/// session kind, AS, next-hop rule and address, families, reflection role and
/// export chain (with policies, the peer itself). 0 (never cached): a
/// chain that looks at each prefix.
pub(super) fn export_class(info: &PeerInfo) -> u64 {
    if info.export.looks_at_prefix() {
        return 0;
    }
    // A policy may match the neighbour: then the class is the peer's own.
    let chain: (usize, Vec<usize>, Option<IpAddr>) = match &info.export {
        Chain::AcceptAll => (1, vec![], None),
        Chain::RejectAll => (2, vec![], None),
        Chain::Within(_) => return 0,
        Chain::Policies(list) => (
            3,
            list.iter().map(|p| Arc::as_ptr(p) as usize).collect(),
            Some(info.address),
        ),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(
        &(
            info.ibgp(),
            info.local_asn,
            info.rr_client,
            info.next_hop as u8,
            info.local_address,
            info.ipv4_via_ipv6,
            info.families.iter().collect::<Vec<_>>(),
            info.graceful_restart.as_ref().is_some_and(|g| g.long_lived),
            chain,
        ),
        &mut h,
    );
    std::hash::Hasher::finish(&h) | 1
}

impl Rib {
    /// Attributes `best` for `prefix` is sent to `to` with, or `None` when
    /// it must not be sent (split horizon, RFC 4456 rules, NO_EXPORT, family).
    pub(super) fn export(&self, to: PeerId, prefix: &IpNetwork, best: &Path) -> Option<RouteAttrs> {
        let peer = &self.peers.get(&to)?.info;
        if best.peer == to || !peer.families.contains(family_of(prefix)) {
            return None;
        }
        // Nor back to a returning peer its own stale routes (review finding 24):
        // it re-announces them, and an echo would need a withdrawal then.
        if self.stale_peers.get(&best.peer).is_some_and(|s| s.of == to) {
            return None;
        }
        let src = self.info(best.peer);
        let attrs = &best.attrs;
        if attrs.communities.contains(&Community::NO_ADVERTISE) {
            return None;
        }
        // RFC 9494 §4.5: LLGR_STALE routes only to peers that announced LLGR.
        if attrs.communities.contains(&LLGR_STALE) && !peer.graceful_restart.as_ref().is_some_and(|g| g.long_lived) {
            return None;
        }
        let reflecting = src.is_some_and(|s| s.ibgp()) && peer.ibgp();
        // RFC 4456 §6: client routes go to everyone, non-client routes to
        // clients only; without a cluster id, iBGP routes stay put (split horizon).
        if reflecting && (self.cfg.cluster_id.is_none() || !src.is_some_and(|s| s.rr_client || peer.rr_client)) {
            return None;
        }
        let mut out = (**attrs).clone();
        if reflecting {
            let src = src?;
            // RFC 4456 §8: ORIGINATOR_ID set once, our CLUSTER_ID prepended.
            out.originator_id.get_or_insert(src.router_id);
            out.cluster_list.insert(0, self.cfg.cluster_id?);
        }
        if peer.ibgp() {
            out.local_pref = Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
            let own = best.peer.is_this_host();
            if own || peer.next_hop == NextHopMode::SelfAddress {
                out.next_hop = None;
            }
        } else {
            // RFC 1997: NO_EXPORT and NO_EXPORT_SUBCONFED stay out of other
            // ASes (no confederations here: every eBGP peer is external).
            if attrs.communities.contains(&Community::NO_EXPORT)
                || attrs.communities.contains(&Community::NO_EXPORT_SUBCONFED)
            {
                return None;
            }
            // A host is no transit between its upstreams: without an export
            // policy of its own, an eBGP peer is not sent what another eBGP
            // peer announced (review finding 22; Calico's BIRD exports only
            // pod routes).
            if src.is_some_and(|s| !s.ibgp()) && !matches!(peer.export, Chain::Policies(_)) {
                return None;
            }
            // RFC 4271 §5.1.2: prepend our AS; §5.1.5: no LOCAL_PREF to eBGP;
            // §5.1.4: a received MED is not passed to another AS.
            out.as_path.prepend(peer.local_asn, 1);
            out.local_pref = None;
            if src.is_some() {
                out.med = None;
            }
            out.originator_id = None;
            out.cluster_list.clear();
            if peer.next_hop != NextHopMode::Keep || best.peer.is_this_host() {
                out.next_hop = None;
            }
        }
        let ctx = RouteContext {
            neighbor: peer.address,
            local_asn: peer.local_asn,
        };
        match peer.export.run(prefix, &out, &ctx) {
            None => return None,
            Some(Some(changed)) => out = changed,
            Some(None) => {}
        }
        if !peer.ibgp() {
            // RFC 4271 §5.1.5, also when an export policy set one.
            out.local_pref = None;
        }
        // RFC 8950: an IPv6 next hop for IPv4 NLRI only to a peer that
        // negotiated it; anyone else gets next hop self (finding 15).
        if prefix.is_ipv4() && out.next_hop.is_some_and(|n| n.is_ipv6()) && !peer.ipv4_via_ipv6 {
            out.next_hop = None;
        }
        // RFC 2545 §3: a link-local next hop belongs to the link it came
        // from; `::` or a link-local global one gets next hop self.
        out.link_local = None;
        let link_scoped = |n: IpAddr| match n {
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_unicast_link_local(),
            IpAddr::V4(_) => false,
        };
        if out.next_hop.is_some_and(link_scoped) {
            out.next_hop = None;
        }
        if out.next_hop.is_none() {
            // Next hop self: our address on this session, if of the prefix's family.
            let nh = peer.local_address;
            let rfc8950 = prefix.is_ipv4() && nh.is_ipv6() && peer.ipv4_via_ipv6;
            if nh.is_ipv4() != prefix.is_ipv4() && !rfc8950 {
                return None;
            }
            out.next_hop = Some(nh);
            out.link_local = None;
        }
        Some(out)
    }

    /// [`Rib::export`], interned, remembered for routes that share attributes
    /// (unless the peer's export policy looks at the prefix, or the path is a
    /// restarting peer's stale one, whose export depends on the target).
    /// Kept across flushes: a reflector exports each client's set once per
    /// class, not once per flush.
    pub(super) fn export_cached(&mut self, to: PeerId, prefix: &IpNetwork, best: &Path) -> Option<Arc<RouteAttrs>> {
        let peer = self.peers.get(&to)?;
        if best.peer == to {
            return None;
        }
        let class = peer.export_class;
        let key = (Arc::as_ptr(&best.attrs) as usize, best.peer, class, prefix.is_ipv4());
        if let Some((_, hit)) = self.export_cache.get(&key) {
            return hit.clone();
        }
        let fresh = self.export(to, prefix, best).map(|a| self.intern(a));
        // Count results for the purge so churn cannot pile them up.
        self.released_since_purge += usize::from(fresh.is_some());
        if class != 0 && !self.stale_peers.contains_key(&best.peer) {
            // The entry holds the source set, so its address (the key) is not
            // reused while the entry lives; the purge drops unused ones.
            self.export_cache.insert(key, (best.attrs.clone(), fresh.clone()));
        }
        fresh
    }

    /// Forgets the exports of a peer's paths: its session facts (reflection
    /// role, router id) may differ when it comes back.
    pub(super) fn forget_exports_of(&mut self, source: PeerId) {
        self.export_cache.retain(|key, _| key.1 != source);
    }
}
