//! The sync worker's compact per-prefix record and its next-hop resolver.
//!
//! One [`Slot`] per prefix at our metric holds everything the worker knows about it:
//! what the caller wants, our route in the kernel, a foreign route holding the key, and
//! the queue/blocked flags. Next-hop sets are interned ([`crate::intern`]), so a slot is
//! 24 bytes and a route costs one hash-table entry, with no allocation of its own.

use std::collections::HashMap;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use std::net::IpAddr;

use crate::cover::{CoverIndex, Gateways};
use crate::intern::{Interner, Shared};
use crate::model::{canonical, Desired, Hop, KernelRoute, LinkTable, NextHop, RouteKind};
use crate::reconcile::RouteParams;
use crate::resolve::{resolve_hops_with, Unresolved};

/// What the caller wants for the prefix (the hops of `Via` are in [`Slot::want_hops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Want {
    /// Not desired.
    #[default]
    Nothing,
    /// `Desired::Blackhole`.
    Blackhole,
    /// `Desired::Via`.
    Via,
}

/// Kind of our route in the kernel at our metric (unicast hops in [`Slot::have_hops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Have {
    /// We have no route there.
    #[default]
    Nothing,
    /// `RTN_BLACKHOLE`.
    Blackhole,
    /// `RTN_UNICAST`.
    Unicast,
    /// Another route type, by `rtm_type`.
    Other(u8),
}

/// Why the desired route is not installed, as last decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Block {
    /// Not blocked.
    #[default]
    No,
    /// A foreign route holds the key.
    Conflict,
    /// Next hops do not resolve.
    Unresolved,
}

/// Everything about one prefix at our metric.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    want_hops: Option<Shared<NextHop>>,
    have_hops: Option<Shared<Hop>>,
    want: Want,
    have: Have,
    /// Protocol of a foreign route holding the key.
    pub(crate) foreign: Option<u8>,
    /// Last decision said blocked (counted in `pending`).
    pub(crate) block: Block,
    /// Our route was adopted and not re-desired: kept until `sweep_stale`.
    pub(crate) stale: bool,
    /// Queued for reconciliation (the prefix is in the worker's dirty queue).
    pub(crate) dirty: bool,
}

impl Slot {
    /// True when nothing refers to the prefix any more and the slot can go.
    pub(crate) fn is_empty(&self) -> bool {
        self.want == Want::Nothing
            && self.have == Have::Nothing
            && self.foreign.is_none()
            && self.block == Block::No
            && !self.dirty
    }

    /// Whether the desired next hops name one of `gateways` (without a device hint).
    pub(crate) fn uses_any(&self, gateways: &[IpAddr]) -> bool {
        self.want == Want::Via
            && self
                .want_hops
                .as_ref()
                .is_some_and(|s| s.iter().any(|h| h.device.is_none() && gateways.contains(&h.gateway)))
    }

    /// Whether the caller wants a route here.
    pub(crate) fn wanted(&self) -> bool {
        self.want != Want::Nothing
    }

    /// Whether we have a route here.
    pub(crate) fn owned(&self) -> bool {
        self.have != Have::Nothing
    }

    /// The caller's wish, as the public type (shares the interned set).
    pub(crate) fn desired(&self) -> Option<Desired> {
        match (self.want, &self.want_hops) {
            (Want::Blackhole, _) => Some(Desired::Blackhole),
            (Want::Via, Some(h)) => Some(Desired::Via(Arc::clone(h))),
            _ => None,
        }
    }

    /// Set the wish; returns false when it was already exactly that.
    pub(crate) fn set_want(&mut self, want: Want, hops: Option<Shared<NextHop>>) -> bool {
        let same_hops = match (&self.want_hops, &hops) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if self.want == want && same_hops {
            return false;
        }
        self.want = want;
        self.want_hops = hops;
        true
    }

    /// Our route's kind, as the public type (shares the interned set).
    pub(crate) fn own_kind(&self) -> Option<RouteKind> {
        match (self.have, &self.have_hops) {
            (Have::Blackhole, _) => Some(RouteKind::Blackhole),
            (Have::Other(t), _) => Some(RouteKind::Other(t)),
            (Have::Unicast, Some(h)) => Some(RouteKind::Unicast(Arc::clone(h))),
            _ => None,
        }
    }

    /// Whether our route is exactly `kind` (the echo of our own change: no allocation).
    pub(crate) fn own_is(&self, kind: &RouteKind) -> bool {
        match (self.have, kind) {
            (Have::Blackhole, RouteKind::Blackhole) => true,
            (Have::Other(a), RouteKind::Other(b)) => a == *b,
            (Have::Unicast, RouteKind::Unicast(h)) => self.have_hops.as_ref().is_some_and(|s| s[..] == h[..]),
            _ => false,
        }
    }

    /// Record our route's kind (`None`: we have no route here); `stale` is left alone.
    pub(crate) fn set_own(&mut self, kind: Option<&RouteKind>, hops: &mut Interner<Hop>) {
        (self.have, self.have_hops) = match kind {
            None => (Have::Nothing, None),
            Some(RouteKind::Blackhole) => (Have::Blackhole, None),
            Some(RouteKind::Other(t)) => (Have::Other(*t), None),
            Some(RouteKind::Unicast(h)) => (Have::Unicast, Some(hops.intern_arc(h))),
        };
    }
}

/// Most resolutions cached before the cache starts over.
const MAX_CACHED: usize = 4096;

/// A cached resolution; holds the set so its address cannot be reused while cached.
type Cached = (Shared<NextHop>, Result<Shared<Hop>, Unresolved>);

/// Resolution of interned next-hop sets against the links (and the table's other routes),
/// cached per set: 100k routes over one gateway resolve once, not 100k times.
#[derive(Default)]
pub(crate) struct Resolver {
    /// Links and addresses as last reported.
    pub(crate) links: LinkTable,
    /// Resolve off-subnet next hops through the table (`FibConfig::recursive`).
    pub(crate) recursive: bool,
    /// Other protocols' routes of our table, for recursive resolution.
    pub(crate) covers: CoverIndex,
    /// Next hops of desired routes that resolve recursively, with their current cover.
    pub(crate) gateways: Gateways,
    /// Interned desired next-hop sets.
    pub(crate) nexthops: Interner<NextHop>,
    /// Interned kernel hop sets (resolved, and as reported by the kernel).
    pub(crate) hops: Interner<Hop>,
    /// (set address, IPv4 prefix) -> resolution.
    cache: HashMap<(usize, bool), Cached>,
}

impl Resolver {
    /// A resolver with nothing learnt yet; `recursive` as `FibConfig::recursive`.
    pub(crate) fn new(recursive: bool) -> Self {
        Resolver {
            recursive,
            ..Resolver::default()
        }
    }

    /// Forget cached resolutions; call on every link or address change, and when a next
    /// hop's covering route changed.
    pub(crate) fn links_changed(&mut self) {
        self.cache.clear();
    }

    /// The interned copy of a desired set.
    pub(crate) fn intern_desired(&mut self, hops: &Arc<[NextHop]>) -> Shared<NextHop> {
        self.nexthops.intern_arc(hops)
    }

    fn resolve(
        &mut self,
        set: &Shared<NextHop>,
        v4: bool,
        p: &RouteParams,
        tunnel: &str,
    ) -> Result<Shared<Hop>, Unresolved> {
        let key = (Arc::as_ptr(set) as usize, v4);
        if let Some((_, r)) = self.cache.get(&key) {
            return r.clone();
        }
        let covers = self.recursive.then_some(&self.covers);
        let r = resolve_hops_with(&set[..], v4, p.mode, tunnel, &self.links, covers).map(|mut hops| {
            canonical(&mut hops);
            self.hops.intern(&hops)
        });
        if self.cache.len() >= MAX_CACHED {
            // The cache pins the sets it names; never let it hold on to every set ever seen.
            self.cache.clear();
        }
        self.cache.insert(key, (set.clone(), r.clone()));
        r
    }

    /// The kernel route we want for `slot` (`None` when nothing is desired).
    pub(crate) fn want(
        &mut self,
        prefix: IpNetwork,
        slot: &Slot,
        p: &RouteParams,
        tunnel: &str,
    ) -> Option<Result<KernelRoute, Unresolved>> {
        let kind = match (slot.want, &slot.want_hops) {
            (Want::Blackhole, _) => Ok(RouteKind::Blackhole),
            (Want::Via, Some(set)) => self
                .resolve(set, prefix.is_ipv4(), p, tunnel)
                .map(|h| RouteKind::Unicast(Arc::clone(&h))),
            _ => return None,
        };
        Some(kind.map(|k| route(prefix, k, p)))
    }
}

/// Our kernel route for `prefix` with `kind`.
pub(crate) fn route(prefix: IpNetwork, kind: RouteKind, p: &RouteParams) -> KernelRoute {
    KernelRoute {
        prefix,
        table: p.table,
        protocol: p.protocol,
        metric: p.metric,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_small() {
        // The per-route cost: this plus an 18-byte prefix key in the hash table.
        assert!(std::mem::size_of::<Slot>() <= 24, "{}", std::mem::size_of::<Slot>());
        assert!(std::mem::size_of::<(IpNetwork, Slot)>() <= 48);
    }

    #[test]
    fn own_route_round_trip_and_echo_match() {
        let mut hops = Interner::default();
        let mut s = Slot::default();
        assert!(s.is_empty());
        let k = RouteKind::unicast(vec![Hop {
            gateway: Some("192.168.1.12".parse().unwrap()),
            ifindex: 2,
            onlink: false,
        }]);
        s.set_own(Some(&k), &mut hops);
        assert!(s.own_is(&k) && s.owned() && !s.is_empty());
        assert_eq!(s.own_kind(), Some(k));
        assert!(!s.own_is(&RouteKind::Blackhole));
        s.set_own(Some(&RouteKind::Other(7)), &mut hops);
        assert_eq!(s.own_kind(), Some(RouteKind::Other(7)));
        s.set_own(None, &mut hops);
        assert!(s.is_empty());
    }
}
