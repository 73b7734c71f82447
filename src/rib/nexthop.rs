//! Whether next hops resolve (RFC 4271 §9.1.2: "a route … whose NEXT_HOP
//! is not resolvable … MUST be excluded from the decision process"). The
//! kernel side (fib-sync) is asked about every next hop the RIB sees and
//! reports when one stops or starts resolving; until told otherwise a next
//! hop is taken to resolve. Paths via a next hop that does not resolve are
//! left out of selection, so the next best path takes over, and come back
//! when it resolves again.

use std::net::IpAddr;

use super::table::Path;
use super::Rib;
use crate::messages::Gateway;
use crate::route::RouteAttrs;

/// The kernel gateway of a path from the peer at `peer`: its NEXT_HOP, or
/// the link-local one on the link shared with the peer when the global next
/// hop is `::` or itself link-local (RFC 2545 §3, review finding 15a). A
/// global next hop is preferred when there is one, as FRR does.
pub(super) fn gateway_of(attrs: &RouteAttrs, peer: IpAddr) -> Option<Gateway> {
    let nh = attrs.next_hop?;
    let link_local = |a: IpAddr| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local());
    if link_local(nh) {
        return Some(Gateway {
            addr: nh,
            link_of: Some(peer),
        });
    }
    if nh.is_unspecified() {
        return attrs.link_local.map(|ll| Gateway {
            addr: IpAddr::V6(ll),
            link_of: Some(peer),
        });
    }
    Some(Gateway::from(nh))
}

impl Rib {
    /// The kernel gateway of `p` (see [`gateway_of`]); none when its peer is gone.
    pub(super) fn gateway(&self, p: &Path) -> Option<Gateway> {
        gateway_of(&p.attrs, self.info(p.peer)?.address)
    }

    /// Remembers a next hop seen in a path; new ones are handed to the kernel side.
    pub(super) fn note_next_hop(&mut self, next_hop: Option<Gateway>) {
        let Some(nh) = next_hop.filter(|_| self.cfg.kernel) else {
            return;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = self.next_hops.entry(nh) {
            e.insert(true);
            self.new_next_hops.push(nh);
        }
    }

    /// Next hops to ask the kernel side about since the last call.
    pub fn take_new_next_hops(&mut self) -> Vec<Gateway> {
        std::mem::take(&mut self.new_next_hops)
    }

    /// Whether `nh` resolves, as far as the kernel side said.
    pub(super) fn resolves(&self, nh: Gateway) -> bool {
        self.next_hops.get(&nh).copied().unwrap_or(true)
    }

    /// The kernel side's report: the prefixes with a path via a next hop
    /// that changed are selected again.
    pub(super) fn next_hops_changed(&mut self, changes: Vec<(Gateway, bool)>) {
        let mut changed = Vec::new();
        for (nh, ok) in changes {
            if self.next_hops.insert(nh, ok) != Some(ok) {
                tracing::info!(
                    "next hop {nh} {}",
                    if ok { "resolves again" } else { "does not resolve" }
                );
                changed.push(nh);
            }
        }
        if changed.is_empty() {
            return;
        }
        let mut dirty = Vec::new();
        for (prefix, paths) in self.loc.iter() {
            if paths
                .iter()
                .any(|p| self.gateway(p).is_some_and(|nh| changed.contains(&nh)))
            {
                dirty.push(*prefix);
            }
        }
        for prefix in &dirty {
            self.loc.mark_dirty(prefix);
        }
    }
}
