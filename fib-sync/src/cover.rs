//! Routes that can carry our next hops (recursive resolution, as BIRD's `gateway
//! recursive`): the other protocols' routes of our table in an index searchable by longest
//! prefix match, and the gateways in use with the route each resolves through now.
//!
//! Per route the index keeps its key and 16 bytes: a device route (`/32 dev caliX`, the
//! bulk of a Calico host's table) stores its ifindex inline, a route via gateways a pointer
//! to an interned hop set. IPv6 link-local and multicast routes (one `fe80::/64` per pod
//! interface) can never cover a next hop and are not kept.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use crate::intern::{Interner, Shared};
use crate::model::{Hop, KernelRoute, RouteKind};

/// What a covering route does with traffic to a next hop inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cover {
    /// A device route (`dev eth1`: one hop, no gateway): the next hop is on that link.
    Device(u32),
    /// Via gateways (several: multipath).
    Gateways(Shared<Hop>),
    /// Blackhole, unreachable, prohibit, throw...: the next hop does not resolve, and
    /// shorter routes are not consulted (the kernel's lookup stops there too).
    Reject,
}

impl Cover {
    fn of(kind: &RouteKind, hops: &mut Interner<Hop>) -> Cover {
        match kind {
            RouteKind::Unicast(h) => match &h[..] {
                [one] if one.gateway.is_none() => Cover::Device(one.ifindex),
                _ => Cover::Gateways(hops.intern_arc(h)),
            },
            RouteKind::Blackhole | RouteKind::Other(_) => Cover::Reject,
        }
    }

    /// Whether traffic through this cover leaves on `ifindex`.
    fn uses_link(&self, ifindex: u32) -> bool {
        match self {
            Cover::Device(i) => *i == ifindex,
            Cover::Gateways(h) => h.iter().any(|h| h.ifindex == ifindex),
            Cover::Reject => false,
        }
    }
}

/// An address family's addresses as prefix keys.
trait Addr: Copy + Ord {
    const MAX_LEN: u8;
    /// The address with all but the first `len` bits cleared.
    fn mask(self, len: u8) -> Self;
}

impl Addr for Ipv4Addr {
    const MAX_LEN: u8 = 32;
    fn mask(self, len: u8) -> Self {
        let m = u32::MAX.checked_shl(u32::from(Self::MAX_LEN - len)).unwrap_or(0);
        Ipv4Addr::from(u32::from(self) & m)
    }
}

impl Addr for Ipv6Addr {
    const MAX_LEN: u8 = 128;
    fn mask(self, len: u8) -> Self {
        let m = u128::MAX.checked_shl(u32::from(Self::MAX_LEN - len)).unwrap_or(0);
        Ipv6Addr::from(u128::from(self) & m)
    }
}

/// (prefix length, network, metric): one kernel route of the table.
type Key<A> = (u8, A, u32);

/// The routes of one family. Ordered by length then network then metric, so the routes of
/// one prefix are adjacent and the lowest metric (the kernel's choice) comes first.
struct Family<A> {
    routes: BTreeMap<Key<A>, Cover>,
    /// Routes per prefix length: a lookup probes only the lengths in use.
    per_len: [u32; 129],
}

impl<A> Default for Family<A> {
    fn default() -> Self {
        Family {
            routes: BTreeMap::new(),
            per_len: [0; 129],
        }
    }
}

impl<A: Addr> Family<A> {
    /// Built in one go from (key, cover) pairs (a dump): the tree comes out densely packed.
    fn build(mut entries: Vec<(Key<A>, Cover)>) -> Self {
        entries.sort_unstable_by_key(|(k, _)| *k);
        let mut f = Family::default();
        for ((len, ..), _) in &entries {
            f.per_len[usize::from(*len)] += 1;
        }
        f.routes = entries.into_iter().collect();
        // A duplicate key in the dump kept only its last route.
        if f.routes.len() != f.per_len.iter().map(|n| *n as usize).sum::<usize>() {
            f.per_len = [0; 129];
            for (len, ..) in f.routes.keys() {
                f.per_len[usize::from(*len)] += 1;
            }
        }
        f
    }

    /// Set the route at `key`; true when that changed anything.
    fn insert(&mut self, key: Key<A>, cover: Cover) -> bool {
        match self.routes.insert(key, cover.clone()) {
            None => {
                self.per_len[usize::from(key.0)] += 1;
                true
            }
            Some(old) => old != cover,
        }
    }

    /// Drop the route at `key`; true when there was one.
    fn remove(&mut self, key: Key<A>) -> bool {
        if self.per_len[usize::from(key.0)] == 0 || self.routes.remove(&key).is_none() {
            return false;
        }
        self.per_len[usize::from(key.0)] -= 1;
        true
    }

    /// The lowest-metric route of the longest prefix containing `ip`.
    fn lookup(&self, ip: A) -> Option<&Cover> {
        (0..=A::MAX_LEN)
            .rev()
            .filter(|l| self.per_len[usize::from(*l)] > 0)
            .find_map(|len| {
                let net = ip.mask(len);
                self.routes
                    .range((len, net, 0)..=(len, net, u32::MAX))
                    .next()
                    .map(|(_, c)| c)
            })
    }
}

/// Whether a route for `prefix` can ever carry a next hop: IPv6 link-local and multicast
/// gateways never resolve through the table.
fn may_cover(prefix: IpNetwork) -> bool {
    match prefix {
        IpNetwork::V4(_) => true,
        IpNetwork::V6(n) => {
            let first = n.network().segments()[0];
            let link_local = n.prefix() >= 10 && first & 0xffc0 == 0xfe80;
            let multicast = n.prefix() >= 8 && first & 0xff00 == 0xff00;
            !(link_local || multicast)
        }
    }
}

/// The foreign routes of our table, by family, for longest prefix match.
#[derive(Default)]
pub(crate) struct CoverIndex {
    v4: Family<Ipv4Addr>,
    v6: Family<Ipv6Addr>,
}

impl CoverIndex {
    /// The index of a table dump, leaving out routes of our protocol `own`.
    pub(crate) fn build<'a>(
        routes: impl IntoIterator<Item = &'a KernelRoute>,
        own: u8,
        hops: &mut Interner<Hop>,
    ) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for r in routes {
            if r.protocol == own || !may_cover(r.prefix) {
                continue;
            }
            let cover = Cover::of(&r.kind, hops);
            match r.prefix {
                IpNetwork::V4(n) => v4.push(((n.prefix(), n.network(), r.metric), cover)),
                IpNetwork::V6(n) => v6.push(((n.prefix(), n.network(), r.metric), cover)),
            }
        }
        CoverIndex {
            v4: Family::build(v4),
            v6: Family::build(v6),
        }
    }

    /// A route reported added or replaced; true when the index changed. A route of ours
    /// takes its key from whichever foreign route held it.
    pub(crate) fn learn(&mut self, r: &KernelRoute, own: u8, hops: &mut Interner<Hop>) -> bool {
        if !may_cover(r.prefix) {
            return false;
        }
        if r.protocol == own {
            return self.remove(r);
        }
        let cover = Cover::of(&r.kind, hops);
        match r.prefix {
            IpNetwork::V4(n) => self.v4.insert((n.prefix(), n.network(), r.metric), cover),
            IpNetwork::V6(n) => self.v6.insert((n.prefix(), n.network(), r.metric), cover),
        }
    }

    /// A route reported deleted; true when the index changed.
    pub(crate) fn forget(&mut self, r: &KernelRoute, own: u8) -> bool {
        r.protocol != own && may_cover(r.prefix) && self.remove(r)
    }

    fn remove(&mut self, r: &KernelRoute) -> bool {
        match r.prefix {
            IpNetwork::V4(n) => self.v4.remove((n.prefix(), n.network(), r.metric)),
            IpNetwork::V6(n) => self.v6.remove((n.prefix(), n.network(), r.metric)),
        }
    }

    /// The route the kernel would use for `ip`, if any.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<&Cover> {
        match ip {
            IpAddr::V4(a) => self.v4.lookup(a),
            IpAddr::V6(a) => self.v6.lookup(a),
        }
    }

    /// Routes held.
    pub(crate) fn len(&self) -> usize {
        self.v4.routes.len() + self.v6.routes.len()
    }
}

/// A gateway in use: how many desired routes name it and the route it resolves through.
#[derive(Debug)]
struct Gateway {
    uses: usize,
    cover: Option<Cover>,
}

/// The next hops of desired routes that resolve through the table, with the cover each
/// resolves through now: a route change concerns a next hop only if its cover changes.
#[derive(Debug, Default)]
pub(crate) struct Gateways {
    map: BTreeMap<IpAddr, Gateway>,
}

/// The first and last address of a prefix, as a range of `IpAddr`.
fn bounds(prefix: IpNetwork) -> (IpAddr, IpAddr) {
    match prefix {
        IpNetwork::V4(n) => {
            let low = u32::from(n.network());
            let high = low | u32::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            (IpAddr::V4(low.into()), IpAddr::V4(high.into()))
        }
        IpNetwork::V6(n) => {
            let low = u128::from(n.network());
            let high = low | u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            (IpAddr::V6(low.into()), IpAddr::V6(high.into()))
        }
    }
}

impl Gateways {
    /// One more desired route names `gw`; true when no other did (its cover
    /// was not followed until now, so a cached resolution of it may be stale).
    pub(crate) fn add(&mut self, gw: IpAddr, index: &CoverIndex) -> bool {
        if let Some(g) = self.map.get_mut(&gw) {
            g.uses += 1;
            return false;
        }
        let cover = index.lookup(gw).cloned();
        self.map.insert(gw, Gateway { uses: 1, cover });
        true
    }

    /// One desired route fewer names `gw`.
    pub(crate) fn remove(&mut self, gw: IpAddr) {
        if let Some(g) = self.map.get_mut(&gw) {
            g.uses -= 1;
            if g.uses == 0 {
                self.map.remove(&gw);
            }
        }
    }

    /// After the index changed under `prefix`: the gateways inside it whose cover changed.
    pub(crate) fn recheck(&mut self, prefix: IpNetwork, index: &CoverIndex) -> Vec<IpAddr> {
        let (low, high) = bounds(prefix);
        let mut moved = Vec::new();
        for (gw, g) in self.map.range_mut(low..=high) {
            let now = index.lookup(*gw);
            if g.cover.as_ref() != now {
                g.cover = now.cloned();
                moved.push(*gw);
            }
        }
        moved
    }

    /// After the index was rebuilt: look every gateway up again.
    pub(crate) fn recheck_all(&mut self, index: &CoverIndex) {
        for (gw, g) in self.map.iter_mut() {
            g.cover = index.lookup(*gw).cloned();
        }
    }

    /// Whether a gateway in use resolves through a route leaving on `ifindex` (its link
    /// going up or down then changes the resolution).
    pub(crate) fn uses_link(&self, ifindex: u32) -> bool {
        self.map
            .values()
            .any(|g| g.cover.as_ref().is_some_and(|c| c.uses_link(ifindex)))
    }

    /// Distinct gateways held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, proto: u8, metric: u32, kind: RouteKind) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol: proto,
            metric,
            kind,
        }
    }

    fn via(gw: &str, ifindex: u32) -> RouteKind {
        RouteKind::unicast(vec![Hop {
            gateway: Some(gw.parse().unwrap()),
            ifindex,
            onlink: false,
        }])
    }

    fn dev(ifindex: u32) -> RouteKind {
        RouteKind::unicast(vec![Hop {
            gateway: None,
            ifindex,
            onlink: false,
        }])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn gw_of(c: Option<&Cover>) -> Option<IpAddr> {
        match c {
            Some(Cover::Gateways(h)) => h[0].gateway,
            _ => None,
        }
    }

    #[test]
    fn longest_prefix_then_lowest_metric_and_own_routes_excluded() {
        let mut hops = Interner::default();
        let routes = [
            route("0.0.0.0/0", 4, 0, via("192.168.1.1", 2)),
            route("10.0.0.0/8", 4, 100, via("192.168.1.3", 2)),
            route("10.0.0.0/8", 4, 10, via("192.168.1.2", 2)),
            route("10.1.0.0/16", 12, 32, via("192.168.1.9", 2)),
            route("10.2.0.0/16", 4, 0, RouteKind::Blackhole),
            route("10.3.2.1/32", 3, 0, dev(7)),
            route("fe80::/64", 2, 256, dev(7)),
        ];
        let mut idx = CoverIndex::build(&routes, 12, &mut hops);
        assert_eq!(idx.len(), 5, "our own route and the link-local one are left out");
        assert_eq!(
            gw_of(idx.lookup(ip("10.1.2.3"))),
            Some(ip("192.168.1.2")),
            "metric 10 wins"
        );
        assert_eq!(gw_of(idx.lookup(ip("11.0.0.1"))), Some(ip("192.168.1.1")), "default");
        assert_eq!(
            idx.lookup(ip("10.2.0.1")),
            Some(&Cover::Reject),
            "a blackhole shadows the /8"
        );
        assert_eq!(idx.lookup(ip("10.3.2.1")), Some(&Cover::Device(7)));
        assert_eq!(idx.lookup(ip("fd00::1")), None);
        // Events: a better route, a replacement, a deletion, and ours taking a key.
        assert!(idx.learn(&route("10.1.0.0/16", 4, 0, via("192.168.1.5", 2)), 12, &mut hops));
        assert!(!idx.learn(&route("10.1.0.0/16", 4, 0, via("192.168.1.5", 2)), 12, &mut hops));
        assert_eq!(gw_of(idx.lookup(ip("10.1.2.3"))), Some(ip("192.168.1.5")));
        assert!(idx.learn(&route("10.1.0.0/16", 12, 0, via("192.168.1.5", 2)), 12, &mut hops));
        assert_eq!(gw_of(idx.lookup(ip("10.1.2.3"))), Some(ip("192.168.1.2")));
        assert!(idx.forget(&route("10.0.0.0/8", 4, 10, RouteKind::Blackhole), 12));
        assert_eq!(gw_of(idx.lookup(ip("10.1.2.3"))), Some(ip("192.168.1.3")));
        assert!(!idx.forget(&route("10.9.0.0/16", 4, 0, RouteKind::Blackhole), 12));
        assert!(
            !idx.forget(&route("0.0.0.0/0", 12, 0, RouteKind::Blackhole), 12),
            "ours never"
        );
        // IPv6, including the default route.
        assert!(idx.learn(&route("::/0", 9, 1024, via("fe80::1", 2)), 12, &mut hops));
        assert_eq!(gw_of(idx.lookup(ip("fd00::1"))), Some(ip("fe80::1")));
    }

    #[test]
    fn gateways_see_only_changes_of_their_cover() {
        let mut hops = Interner::default();
        let mut idx = CoverIndex::default();
        let mut gws = Gateways::default();
        gws.add(ip("10.1.2.3"), &idx);
        gws.add(ip("10.1.2.3"), &idx);
        gws.add(ip("10.9.0.1"), &idx);
        let r8 = route("10.0.0.0/8", 4, 0, via("192.168.1.1", 2));
        idx.learn(&r8, 12, &mut hops);
        assert_eq!(gws.recheck(r8.prefix, &idx), vec![ip("10.1.2.3"), ip("10.9.0.1")]);
        // A /16 that covers only one of them; a pod route that covers neither.
        let r16 = route("10.1.0.0/16", 4, 0, dev(5));
        idx.learn(&r16, 12, &mut hops);
        assert_eq!(gws.recheck(r16.prefix, &idx), vec![ip("10.1.2.3")]);
        assert!(gws.uses_link(5) && !gws.uses_link(6));
        let pod = route("10.1.7.7/32", 3, 0, dev(6));
        idx.learn(&pod, 12, &mut hops);
        assert!(gws.recheck(pod.prefix, &idx).is_empty());
        // A route at a worse metric does not change what the /16 resolves through.
        let worse = route("10.1.0.0/16", 4, 50, via("192.168.1.7", 2));
        idx.learn(&worse, 12, &mut hops);
        assert!(gws.recheck(worse.prefix, &idx).is_empty());
        gws.remove(ip("10.1.2.3"));
        gws.remove(ip("10.1.2.3"));
        gws.remove(ip("10.9.0.1"));
        assert_eq!(gws.len(), 0);
    }

    #[test]
    fn masks_and_bounds() {
        assert_eq!(Ipv4Addr::new(10, 1, 2, 3).mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(Ipv4Addr::new(10, 1, 2, 3).mask(16), Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(Ipv4Addr::new(10, 1, 2, 3).mask(32), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(
            "fd00::1:2".parse::<Ipv6Addr>().unwrap().mask(64),
            "fd00::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            bounds("0.0.0.0/0".parse().unwrap()),
            (ip("0.0.0.0"), ip("255.255.255.255"))
        );
        assert_eq!(bounds("10.1.2.3/32".parse().unwrap()), (ip("10.1.2.3"), ip("10.1.2.3")));
        assert_eq!(bounds("fd00::/120".parse().unwrap()), (ip("fd00::"), ip("fd00::ff")));
    }

    #[test]
    fn a_device_route_costs_no_allocation_of_its_own() {
        assert_eq!(std::mem::size_of::<Cover>(), 16);
        assert_eq!(std::mem::size_of::<Key<Ipv4Addr>>(), 12);
    }
}
