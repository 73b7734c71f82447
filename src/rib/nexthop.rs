//! Whether next hops resolve (RFC 4271 §9.1.2: "a route … whose NEXT_HOP
//! is not resolvable … MUST be excluded from the decision process"). The
//! kernel side (fib-sync) is asked about every next hop the RIB sees and
//! reports when one stops or starts resolving; until told otherwise a next
//! hop is taken to resolve. Paths via a next hop that does not resolve are
//! left out of selection, so the next best path takes over, and come back
//! when it resolves again.

use std::net::IpAddr;

use super::Rib;

impl Rib {
    /// Remembers a next hop seen in a path; new ones are handed to the kernel side.
    pub(super) fn note_next_hop(&mut self, next_hop: Option<IpAddr>) {
        let Some(nh) = next_hop.filter(|_| self.cfg.kernel) else {
            return;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = self.next_hops.entry(nh) {
            e.insert(true);
            self.new_next_hops.push(nh);
        }
    }

    /// Next hops to ask the kernel side about since the last call.
    pub fn take_new_next_hops(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.new_next_hops)
    }

    /// Whether `nh` resolves, as far as the kernel side said.
    pub(super) fn resolves(&self, nh: IpAddr) -> bool {
        self.next_hops.get(&nh).copied().unwrap_or(true)
    }

    /// The kernel side's report: the prefixes with a path via a next hop
    /// that changed are selected again.
    pub(super) fn next_hops_changed(&mut self, changes: Vec<(IpAddr, bool)>) {
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
        for (prefix, paths) in self.loc.iter() {
            if paths
                .iter()
                .any(|p| p.attrs.next_hop.is_some_and(|nh| changed.contains(&nh)))
            {
                self.dirty.insert(*prefix);
            }
        }
    }
}
