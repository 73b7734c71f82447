//! Next hops the daemon asked about: whether each resolves now, and a report
//! whenever that changes with links, addresses and covering routes, so the RIB can leave out
//! the paths whose next hop does not resolve (RFC 4271 §9.1.2).

use super::*;
use crate::model::NextHop;
use crate::resolve::resolve_hops_with;

/// Tracked next hops and who hears about their changes.
#[derive(Default)]
pub(super) struct TrackedNextHops {
    /// Whether each resolves, as last reported.
    resolves: HashMap<NextHop, bool>,
    subscriber: Option<mpsc::UnboundedSender<Vec<(NextHop, bool)>>>,
}

impl<F: Fib> Worker<F> {
    /// Starts tracking `next_hops`; the ones that do not resolve are reported
    /// at once (the subscriber assumes a new next hop resolves).
    pub(super) fn track(&mut self, next_hops: Vec<NextHop>) {
        let mut unresolved = Vec::new();
        for hop in next_hops {
            if self.tracked.resolves.contains_key(&hop) {
                continue;
            }
            let ok = self.resolves(&hop);
            self.tracked.resolves.insert(hop.clone(), ok);
            if !ok {
                unresolved.push((hop, false));
            }
        }
        self.report(unresolved);
    }

    /// A new subscriber hears at once which tracked next hops do not resolve.
    pub(super) fn watch_next_hops(&mut self, subscriber: mpsc::UnboundedSender<Vec<(NextHop, bool)>>) {
        self.tracked.subscriber = Some(subscriber);
        let unresolved = self
            .tracked
            .resolves
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(hop, _)| (hop.clone(), false))
            .collect();
        self.report(unresolved);
    }

    /// After a link or address change (or a change of the route covering
    /// `within`): reports the tracked next hops whose resolvability changed.
    pub(super) fn recheck_next_hops(&mut self, within: Option<IpNetwork>) {
        let hops: Vec<NextHop> = (self.tracked.resolves.keys())
            .filter(|hop| within.is_none_or(|p| p.contains(hop.gateway)))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for hop in hops {
            let ok = self.resolves(&hop);
            if self.tracked.resolves.insert(hop.clone(), ok) != Some(ok) {
                changed.push((hop, ok));
            }
        }
        self.report(changed);
    }

    /// A next hop resolves if the kernel could use it: not one of this host's
    /// own addresses (RFC 4271 §6.3; the kernel would refuse it, review
    /// finding 21), and reachable as routes are resolved.
    fn resolves(&self, hop: &NextHop) -> bool {
        let links = &self.res.links;
        let own = links.iter().any(|l| l.addrs.iter().any(|a| a.ip() == hop.gateway));
        let covers = self.res.recursive.then_some(&self.res.covers);
        !own && resolve_hops_with(
            std::slice::from_ref(hop),
            hop.gateway.is_ipv4(),
            self.cfg.mode,
            &self.cfg.tunnel_device,
            links,
            covers,
        )
        .is_ok()
    }

    fn report(&mut self, changes: Vec<(NextHop, bool)>) {
        if changes.is_empty() {
            return;
        }
        if let Some(s) = &self.tracked.subscriber {
            if s.send(changes).is_err() {
                self.tracked.subscriber = None;
            }
        }
    }
}
