//! The sync worker's compact per-prefix record and its next-hop resolver.
//!
//! One [`Slot`] per prefix at our metric holds everything the worker knows about it:
//! what the caller wants, our route in the kernel, a foreign route holding the key, and
//! the queue/blocked flags. Next-hop sets are interned ([`crate::intern`]) and so are the
//! states that name them ([`States`]), so a slot is a 4-byte state number and an IPv4
//! route costs one 8-byte hash-table entry, with no allocation of its own.

use std::collections::HashMap;
use std::num::NonZeroU32;
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
/// and a slot names it by number: 4 bytes a slot, not 24 (issue 14, S3).
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

/// Fewest states kept before unused ones are collected.
const MIN_STATES: usize = 64;

/// A state's number in [`States`] (1-based: a slot without a state is `None` in 4 bytes).
pub(crate) type StateId = NonZeroU32;

/// The distinct states slots name, by number: 4 bytes a slot, where a pointer took 8
/// and made a table entry 16 bytes, not 8 (issue 14, S3). Slots do not count their
/// references; states no slot names are freed by [`States::collect`], which the worker
/// runs over its table once the states have doubled since the last collection.
#[derive(Default)]
pub(crate) struct States {
    /// By number - 1; `None`: free for reuse.
    all: Vec<Option<State>>,
    free: Vec<u32>,
    ids: HashMap<StateKey, StateId, ahash::RandomState>,
    /// States held when the last collection ended.
    kept: usize,
}

impl States {
    /// The state numbered `id`; the empty state for `None`.
    fn get(&self, id: Option<StateId>) -> &State {
        match id {
            None => &NOTHING,
            Some(id) => (self.all[id.get() as usize - 1].as_ref()).expect("a slot names a state that is held"),
        }
    }

    /// The number of `state`, held from now on; `None` for the empty state.
    fn intern(&mut self, state: State) -> Option<StateId> {
        if state.is_nothing() {
            return None;
        }
        let key = state.key();
        if let Some(&id) = self.ids.get(&key) {
            return Some(id);
        }
        let index = match self.free.pop() {
            Some(i) => {
                self.all[i as usize] = Some(state);
                i as usize
            }
            None => {
                self.all.push(Some(state));
                self.all.len() - 1
            }
        };
        let id = u32::try_from(index + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .expect("fewer than 2^32 states");
        self.ids.insert(key, id);
        Some(id)
    }

    /// Whether enough states came since the last collection to run one.
    pub(crate) fn due(&self) -> bool {
        self.ids.len() >= (2 * self.kept).max(MIN_STATES)
    }

    /// Frees every state that none of `used` (the slots' states) names.
    pub(crate) fn collect<'a>(&mut self, used: impl Iterator<Item = &'a Slot>) {
        let mut named = vec![false; self.all.len()];
        for id in used.filter_map(|s| s.state) {
            named[id.get() as usize - 1] = true;
        }
        for (i, named) in named.into_iter().enumerate() {
            if !named {
                if let Some(state) = self.all[i].take() {
                    self.ids.remove(&state.key());
                    self.free.push(i as u32);
                }
            }
        }
        self.kept = self.ids.len();
        self.ids.shrink_to(self.kept * 2);
        while self.all.last().is_some_and(Option::is_none) {
            self.all.pop();
        }
        let len = self.all.len() as u32;
        self.free.retain(|&i| i < len);
        self.free.shrink_to(self.free.len() * 2);
    }

    /// Distinct states held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Everything about one prefix at our metric: the number of its shared [`State`].
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// `None`: the empty state.
    state: Option<StateId>,
}

impl Slot {
    fn state<'a>(&self, states: &'a States) -> &'a State {
        states.get(self.state)
    }

    /// Moves to the state `change` makes of a copy of the current one.
    fn change(&mut self, res: &mut Resolver, change: impl FnOnce(&mut State)) {
        let mut next = self.state(&res.states).clone();
        change(&mut next);
        self.state = res.states.intern(next);
    }

    /// True when nothing refers to the prefix any more and the slot can go
    /// (a `stale` mark alone does not keep it).
    pub(crate) fn is_empty(&self, states: &States) -> bool {
        let s = self.state(states);
        let f = s.flags;
        s.want == Want::Nothing && s.have == Have::Nothing && f.foreign.is_none() && f.block == Block::No && !f.dirty
    }

    pub(crate) fn flags(&self, states: &States) -> Flags {
        self.state(states).flags
    }

    /// Sets the flags `change` changes (nothing to do when it changes none).
    pub(crate) fn set_flags(&mut self, res: &mut Resolver, change: impl FnOnce(&mut Flags)) {
        let mut flags = self.flags(&res.states);
        change(&mut flags);
        if flags != self.flags(&res.states) {
            self.change(res, |s| s.flags = flags);
        }
    }

    /// Whether the desired next hops name one of `gateways` (without a device hint).
    pub(crate) fn uses_any(&self, states: &States, gateways: &[IpAddr]) -> bool {
        let s = self.state(states);
        s.want == Want::Via
            && s.want_hops
                .as_ref()
                .is_some_and(|h| h.iter().any(|h| h.device.is_none() && gateways.contains(&h.gateway)))
    }

    /// Whether the caller wants a route here.
    pub(crate) fn wanted(&self, states: &States) -> bool {
        self.state(states).want != Want::Nothing
    }

    /// Whether we have a route here.
    pub(crate) fn owned(&self, states: &States) -> bool {
        self.state(states).have != Have::Nothing
    }

    /// The caller's wish, as the public type (shares the interned set).
    pub(crate) fn desired(&self, states: &States) -> Option<Desired> {
        let s = self.state(states);
        match (s.want, &s.want_hops) {
            (Want::Blackhole, _) => Some(Desired::Blackhole),
            (Want::Via, Some(h)) => Some(Desired::Via(Arc::clone(h))),
            _ => None,
        }
    }

    /// Set the wish; returns false when it was already exactly that.
    pub(crate) fn set_want(&mut self, want: Want, hops: Option<Shared<NextHop>>, res: &mut Resolver) -> bool {
        let s = self.state(&res.states);
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
    pub(crate) fn own_kind(&self, states: &States) -> Option<RouteKind> {
        let s = self.state(states);
        match (s.have, &s.have_hops) {
            (Have::Blackhole, _) => Some(RouteKind::Blackhole),
            (Have::Other(t), _) => Some(RouteKind::Other(t)),
            (Have::Unicast, Some(h)) => Some(RouteKind::Unicast(Arc::clone(h))),
            _ => None,
        }
    }

    /// Whether our route is exactly `kind` (the echo of our own change: no allocation).
    pub(crate) fn own_is(&self, states: &States, kind: &RouteKind) -> bool {
        let s = self.state(states);
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
        let state = slot.state(&self.states);
        let kind = match (state.want, state.want_hops.clone()) {
            (Want::Blackhole, _) => Ok(RouteKind::Blackhole),
            (Want::Via, Some(set)) => self
                .resolve(&set, prefix.is_ipv4(), p, tunnel)
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
        // The per-route cost: this plus a 4-byte IPv4 address in the hash table.
        assert_eq!(std::mem::size_of::<Slot>(), 4);
        assert_eq!(std::mem::size_of::<(u32, Slot)>(), 8);
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
        assert!(s.is_empty(&res.states));
        let k = unicast("192.168.1.12");
        s.set_own(Some(&k), &mut res);
        let st = &res.states;
        assert!(s.own_is(st, &k) && s.owned(st) && !s.is_empty(st));
        assert_eq!(s.own_kind(st), Some(k));
        assert!(!s.own_is(st, &RouteKind::Blackhole));
        s.set_own(Some(&RouteKind::Other(7)), &mut res);
        assert_eq!(s.own_kind(&res.states), Some(RouteKind::Other(7)));
        s.set_own(None, &mut res);
        assert!(s.is_empty(&res.states));
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
        assert!(slots.iter().all(|s| s.state.is_some() && s.state == slots[0].state));
        // One slot's route changes: its wish stays, the others keep theirs.
        slots[7].set_own(Some(&RouteKind::Blackhole), &mut res);
        let st = &res.states;
        assert_eq!(slots[7].desired(st), Some(Desired::Via(Arc::clone(&wish))));
        assert_eq!(slots[7].own_kind(st), Some(RouteKind::Blackhole));
        assert_eq!(slots[8].own_kind(st), Some(route.clone()));
        // The wish goes, the route stays: still a slot that must be kept.
        assert!(slots[8].set_want(Want::Nothing, None, &mut res));
        let st = &res.states;
        assert!(!slots[8].wanted(st) && slots[8].owned(st) && !slots[8].is_empty(st));
        slots[8].set_own(None, &mut res);
        assert!(slots[8].is_empty(&res.states));
        // Flags are part of the state; a stale mark alone does not keep a slot.
        slots[9].set_flags(&mut res, |f| f.dirty = true);
        let st = &res.states;
        assert!(slots[9].flags(st).dirty && !slots[10].flags(st).dirty);
        assert_eq!(slots[9].desired(st), slots[10].desired(st));
        let mut only_stale = Slot::default();
        only_stale.set_flags(&mut res, |f| f.stale = true);
        assert!(only_stale.flags(&res.states).stale && only_stale.is_empty(&res.states));
    }

    #[test]
    fn a_collection_frees_only_the_states_no_slot_names() {
        let mut res = Resolver::default();
        let mut kept: Vec<Slot> = (0..3).map(|_| Slot::default()).collect();
        for (t, s) in kept.iter_mut().enumerate() {
            s.set_own(Some(&RouteKind::Other(t as u8)), &mut res);
        }
        for t in 10..200u8 {
            Slot::default().set_own(Some(&RouteKind::Other(t)), &mut res);
        }
        assert_eq!(res.states.len(), 193);
        assert!(res.states.due());
        res.states.collect(kept.iter());
        assert_eq!(res.states.len(), 3, "only the states slots name are left");
        assert!(!res.states.due(), "not again before the states double");
        for (t, s) in kept.iter().enumerate() {
            assert_eq!(s.own_kind(&res.states), Some(RouteKind::Other(t as u8)));
        }
        // Freed numbers are handed out again, and a new state is found by its contents.
        let mut again = Slot::default();
        again.set_own(Some(&RouteKind::Other(1)), &mut res);
        assert_eq!(again.state, kept[1].state);
        again.set_own(Some(&RouteKind::Other(250)), &mut res);
        assert_eq!(again.own_kind(&res.states), Some(RouteKind::Other(250)));
        assert!(res.states.all.len() <= 193);
    }
}
