//! The sync worker's compact per-prefix record and its next-hop resolver.
//!
//! One [`Slot`] per prefix at our metric holds everything the worker knows about it:
//! what the caller wants, our route in the kernel, a foreign route holding the key, and
//! the queue/blocked flags. Next-hop sets are interned ([`crate::intern`]) and so are the
//! states that name them ([`States`]), so a slot is one pointer and a route costs one
//! 16-byte hash-table entry, with no allocation of its own.

use std::collections::HashMap;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use std::net::IpAddr;

use crate::cover::{CoverIndex, Gateways};
use crate::intern::{Interner, Shared};
use crate::model::{canonical, Desired, Hop, KernelRoute, LinkTable, NextHop, RouteKind};
use crate::reconcile::RouteParams;
use crate::resolve::{resolve_hops_with, Unresolved};

/// What the caller wants for the prefix (the hops of `Via` are in the slot's [`State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Want {
    /// Not desired.
    #[default]
    Nothing,
    /// `Desired::Blackhole`.
    Blackhole,
    /// `Desired::Via`.
    Via,
}

/// Kind of our route in the kernel at our metric (its unicast hops are in the slot's [`State`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Block {
    /// Not blocked.
    #[default]
    No,
    /// A foreign route holds the key.
    Conflict,
    /// Next hops do not resolve.
    Unresolved,
}

/// The flags of a prefix's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Flags {
    /// Protocol of a foreign route holding the key.
    pub(crate) foreign: Option<u8>,
    /// Last decision said blocked (counted in `pending`).
    pub(crate) block: Block,
    /// Our route was adopted and not re-desired: kept until `sweep_stale`.
    pub(crate) stale: bool,
    /// Queued for reconciliation (the prefix is in the worker's dirty queue).
    pub(crate) dirty: bool,
}

/// Everything about a prefix but the prefix: what the caller wants, what we have in
/// the kernel, and the flags. Few distinct states exist (100k routes over one gateway
/// share one, or two while they wait in the queue), so each is kept once in [`States`]
/// and a slot is a pointer to it: 8 bytes a slot, not 24 (issue 14, S3).
#[derive(Debug, Clone)]
pub(crate) struct State {
    want: Want,
    want_hops: Option<Shared<NextHop>>,
    have: Have,
    have_hops: Option<Shared<Hop>>,
    flags: Flags,
}

/// A slot without a state wants nothing, has nothing and has no flag set.
static NOTHING: State = State {
    want: Want::Nothing,
    want_hops: None,
    have: Have::Nothing,
    have_hops: None,
    flags: Flags {
        foreign: None,
        block: Block::No,
        stale: false,
        dirty: false,
    },
};

/// A state's identity: its kinds, its sets by address (sets are interned, and the
/// table of states holds each state's sets, so an address names one set) and flags.
type StateKey = (Want, usize, Have, usize, Flags);

impl State {
    fn key(&self) -> StateKey {
        let want = self.want_hops.as_ref().map_or(0, |s| Arc::as_ptr(s) as usize);
        let have = self.have_hops.as_ref().map_or(0, |s| Arc::as_ptr(s) as usize);
        (self.want, want, self.have, have, self.flags)
    }

    fn is_nothing(&self) -> bool {
        self.want == Want::Nothing && self.have == Have::Nothing && self.flags == Flags::default()
    }
}

/// Fewest states kept before unused ones are dropped.
const MIN_STATES: usize = 64;

/// The distinct states slots point at.
#[derive(Default)]
pub(crate) struct States {
    map: HashMap<StateKey, Arc<State>, ahash::RandomState>,
    /// Unused states are dropped when the table reaches this size.
    purge_at: usize,
}

impl States {
    /// The shared copy of `state`; `None` for the empty state.
    fn intern(&mut self, state: State) -> Option<Arc<State>> {
        if state.is_nothing() {
            return None;
        }
        let key = state.key();
        if let Some(shared) = self.map.get(&key) {
            return Some(Arc::clone(shared));
        }
        if self.map.len() >= self.purge_at.max(MIN_STATES) {
            self.map.retain(|_, s| Arc::strong_count(s) > 1);
            self.map.shrink_to(self.map.len() * 2);
            self.purge_at = self.map.len() * 2;
        }
        let shared = Arc::new(state);
        self.map.insert(key, Arc::clone(&shared));
        Some(shared)
    }

    /// Distinct states held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Everything about one prefix at our metric: a pointer to its shared [`State`].
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// `None`: the empty state.
    state: Option<Arc<State>>,
}

impl Slot {
    fn state(&self) -> &State {
        self.state.as_deref().unwrap_or(&NOTHING)
    }

    /// Moves to the state `change` makes of a copy of the current one.
    fn change(&mut self, res: &mut Resolver, change: impl FnOnce(&mut State)) {
        let mut next = self.state().clone();
        change(&mut next);
        self.state = res.states.intern(next);
    }

    /// True when nothing refers to the prefix any more and the slot can go
    /// (a `stale` mark alone does not keep it).
    pub(crate) fn is_empty(&self) -> bool {
        let s = self.state();
        let f = s.flags;
        s.want == Want::Nothing && s.have == Have::Nothing && f.foreign.is_none() && f.block == Block::No && !f.dirty
    }

    pub(crate) fn flags(&self) -> Flags {
        self.state().flags
    }

    /// Sets the flags `change` changes (nothing to do when it changes none).
    pub(crate) fn set_flags(&mut self, res: &mut Resolver, change: impl FnOnce(&mut Flags)) {
        let mut flags = self.flags();
        change(&mut flags);
        if flags != self.flags() {
            self.change(res, |s| s.flags = flags);
        }
    }

    /// Whether the desired next hops name one of `gateways` (without a device hint).
    pub(crate) fn uses_any(&self, gateways: &[IpAddr]) -> bool {
        let s = self.state();
        s.want == Want::Via
            && s.want_hops
                .as_ref()
                .is_some_and(|h| h.iter().any(|h| h.device.is_none() && gateways.contains(&h.gateway)))
    }

    /// Whether the caller wants a route here.
    pub(crate) fn wanted(&self) -> bool {
        self.state().want != Want::Nothing
    }

    /// Whether we have a route here.
    pub(crate) fn owned(&self) -> bool {
        self.state().have != Have::Nothing
    }

    /// The caller's wish, as the public type (shares the interned set).
    pub(crate) fn desired(&self) -> Option<Desired> {
        match (self.state().want, &self.state().want_hops) {
            (Want::Blackhole, _) => Some(Desired::Blackhole),
            (Want::Via, Some(h)) => Some(Desired::Via(Arc::clone(h))),
            _ => None,
        }
    }

    /// Set the wish; returns false when it was already exactly that.
    pub(crate) fn set_want(&mut self, want: Want, hops: Option<Shared<NextHop>>, res: &mut Resolver) -> bool {
        let s = self.state();
        let same_hops = match (&s.want_hops, &hops) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if s.want == want && same_hops {
            return false;
        }
        self.change(res, |s| (s.want, s.want_hops) = (want, hops));
        true
    }

    /// Our route's kind, as the public type (shares the interned set).
    pub(crate) fn own_kind(&self) -> Option<RouteKind> {
        match (self.state().have, &self.state().have_hops) {
            (Have::Blackhole, _) => Some(RouteKind::Blackhole),
            (Have::Other(t), _) => Some(RouteKind::Other(t)),
            (Have::Unicast, Some(h)) => Some(RouteKind::Unicast(Arc::clone(h))),
            _ => None,
        }
    }

    /// Whether our route is exactly `kind` (the echo of our own change: no allocation).
    pub(crate) fn own_is(&self, kind: &RouteKind) -> bool {
        let s = self.state();
        match (s.have, kind) {
            (Have::Blackhole, RouteKind::Blackhole) => true,
            (Have::Other(a), RouteKind::Other(b)) => a == *b,
            (Have::Unicast, RouteKind::Unicast(h)) => s.have_hops.as_ref().is_some_and(|s| s[..] == h[..]),
            _ => false,
        }
    }

    /// Record our route's kind (`None`: we have no route here); `stale` is left alone.
    pub(crate) fn set_own(&mut self, kind: Option<&RouteKind>, res: &mut Resolver) {
        let (have, have_hops) = match kind {
            None => (Have::Nothing, None),
            Some(RouteKind::Blackhole) => (Have::Blackhole, None),
            Some(RouteKind::Other(t)) => (Have::Other(*t), None),
            Some(RouteKind::Unicast(h)) => (Have::Unicast, Some(res.hops.intern_arc(h))),
        };
        self.change(res, |s| (s.have, s.have_hops) = (have, have_hops));
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
    /// The distinct wish-and-route states of the slots.
    pub(crate) states: States,
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
        let kind = match (slot.state().want, &slot.state().want_hops) {
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
        // The per-route cost: this plus an 8-byte IPv4 key in the hash table.
        assert!(std::mem::size_of::<Slot>() <= 8, "{}", std::mem::size_of::<Slot>());
        assert!(std::mem::size_of::<(u64, Slot)>() <= 16);
    }

    fn unicast(gateway: &str) -> RouteKind {
        RouteKind::unicast(vec![Hop {
            gateway: Some(gateway.parse().unwrap()),
            ifindex: 2,
            onlink: false,
        }])
    }

    #[test]
    fn own_route_round_trip_and_echo_match() {
        let mut res = Resolver::default();
        let mut s = Slot::default();
        assert!(s.is_empty());
        let k = unicast("192.168.1.12");
        s.set_own(Some(&k), &mut res);
        assert!(s.own_is(&k) && s.owned() && !s.is_empty());
        assert_eq!(s.own_kind(), Some(k));
        assert!(!s.own_is(&RouteKind::Blackhole));
        s.set_own(Some(&RouteKind::Other(7)), &mut res);
        assert_eq!(s.own_kind(), Some(RouteKind::Other(7)));
        s.set_own(None, &mut res);
        assert!(s.is_empty());
    }

    #[test]
    fn slots_in_the_same_state_share_it_and_each_keeps_its_own_changes() {
        let mut res = Resolver::default();
        let wish = res.intern_desired(&Arc::from(vec![NextHop::via("192.168.1.12".parse().unwrap())]));
        let route = unicast("192.168.1.12");
        let mut slots: Vec<Slot> = (0..1000).map(|_| Slot::default()).collect();
        for s in &mut slots {
            assert!(s.set_want(Want::Via, Some(wish.clone()), &mut res));
            assert!(
                !s.set_want(Want::Via, Some(wish.clone()), &mut res),
                "same wish: no change"
            );
            s.set_own(Some(&route), &mut res);
        }
        let first = slots[0].state.clone().unwrap();
        assert!(slots
            .iter()
            .all(|s| s.state.as_ref().is_some_and(|x| Arc::ptr_eq(x, &first))));
        drop(first);
        // One slot's route changes: its wish stays, the others keep theirs.
        slots[7].set_own(Some(&RouteKind::Blackhole), &mut res);
        assert_eq!(slots[7].desired(), Some(Desired::Via(Arc::clone(&wish))));
        assert_eq!(slots[7].own_kind(), Some(RouteKind::Blackhole));
        assert_eq!(slots[8].own_kind(), Some(route.clone()));
        // The wish goes, the route stays: still a slot that must be kept.
        assert!(slots[8].set_want(Want::Nothing, None, &mut res));
        assert!(!slots[8].wanted() && slots[8].owned() && !slots[8].is_empty());
        slots[8].set_own(None, &mut res);
        assert!(slots[8].is_empty());
        // Flags are part of the state; a stale mark alone does not keep a slot.
        slots[9].set_flags(&mut res, |f| f.dirty = true);
        assert!(slots[9].flags().dirty && !slots[10].flags().dirty);
        assert_eq!(slots[9].desired(), slots[10].desired());
        let mut only_stale = Slot::default();
        only_stale.set_flags(&mut res, |f| f.stale = true);
        assert!(only_stale.flags().stale && only_stale.is_empty());
        // States no slot holds are dropped as new ones come.
        drop(slots);
        for t in 0..200u8 {
            Slot::default().set_own(Some(&RouteKind::Other(t)), &mut res);
        }
        assert!(res.states.len() <= 2 * MIN_STATES, "{}", res.states.len());
    }
}
