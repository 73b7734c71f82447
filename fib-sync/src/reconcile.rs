//! The pure diff between what the caller wants and what the kernel has.

use std::collections::{BTreeSet, HashMap};

use ipnetwork::IpNetwork;

use crate::model::{normalize, Desired, KernelRoute, LinkTable, Op, RouteKey, RouteKind};
use crate::resolve::{resolve_hops, Mode, Unresolved};

/// Where our routes go and how they are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteParams {
    /// Table id.
    pub table: u32,
    /// Our protocol number.
    pub protocol: u8,
    /// Metric of our routes.
    pub metric: u32,
    /// Next-hop resolution mode.
    pub mode: Mode,
}

/// One of our routes as found in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRoute {
    /// The kernel's view of the route.
    pub route: KernelRoute,
    /// Adopted at start (or found by a resync) and not re-desired yet: kept until
    /// `sweep_stale`, as graceful restart needs.
    pub stale: bool,
}

/// The kernel table as fib-sync tracks it: our routes and the keys held by others.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// Routes with our protocol in our table (any metric).
    pub own: HashMap<RouteKey, OwnRoute>,
    /// Keys held by routes of another protocol in our table, with that protocol.
    pub foreign: HashMap<RouteKey, u8>,
}

impl Actual {
    /// Record a route from a dump or notification. The kernel keeps one route per key
    /// (we never append), so a route of one owner for a key replaces the other's.
    pub fn learn(&mut self, route: KernelRoute, protocol: u8, stale_if_new: bool) {
        let key = route.key();
        if route.protocol == protocol {
            self.foreign.remove(&key);
            let stale = match self.own.get(&key) {
                Some(o) => o.stale,
                None => stale_if_new,
            };
            self.own.insert(key, OwnRoute { route, stale });
        } else {
            self.own.remove(&key);
            self.foreign.insert(key, route.protocol);
        }
    }

    /// Forget a route the kernel reported deleted; only an entry of the same owner goes.
    pub fn forget(&mut self, route: &KernelRoute, protocol: u8) {
        let key = route.key();
        if route.protocol == protocol {
            self.own.remove(&key);
        } else if self.foreign.get(&key) == Some(&route.protocol) {
            self.foreign.remove(&key);
        }
    }
}

/// Why a desired route is not (or cannot be) in the kernel as wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A route of this protocol holds the key; we never overwrite it.
    Conflict(u8),
    /// The next hops could not be resolved to devices.
    Unresolved(Unresolved),
}

/// Result of reconciling one key: the op to send (if any) and what blocks the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Kernel change to make.
    pub op: Option<Op>,
    /// Set when the desired route cannot be installed now.
    pub blocked: Option<Blocked>,
}

/// Turn a desired entry into the kernel route we want, resolving next hops.
pub fn desired_route(
    prefix: IpNetwork,
    desired: &Desired,
    params: &RouteParams,
    tunnel_device: &str,
    links: &LinkTable,
) -> Result<KernelRoute, Unresolved> {
    let kind = match desired {
        Desired::Blackhole => RouteKind::Blackhole,
        Desired::Via(hops) => RouteKind::unicast(
            resolve_hops(hops, prefix.is_ipv4(), params.mode, tunnel_device, links)?
                .into_iter()
                .collect(),
        ),
    };
    Ok(KernelRoute {
        prefix: normalize(prefix),
        table: params.table,
        protocol: params.protocol,
        metric: params.metric,
        kind,
    })
}

/// Reconcile one key. Ours differing -> Replace; absent -> Add; foreign -> conflict, no op;
/// not desired and ours and not stale -> Delete; stale ones wait for `sweep_stale`.
pub fn reconcile_key(key: RouteKey, want: Option<&Result<KernelRoute, Unresolved>>, actual: &Actual) -> Decision {
    decide(want, actual.own.get(&key), actual.foreign.get(&key).copied())
}

/// [`reconcile_key`] on the parts of one key: what we want, our route there (if any) and
/// the protocol of a foreign route holding the key (if any). The sync worker calls this
/// with its compact per-prefix record, so both paths share one rule set.
pub fn decide(want: Option<&Result<KernelRoute, Unresolved>>, own: Option<&OwnRoute>, foreign: Option<u8>) -> Decision {
    match want {
        Some(Ok(route)) => {
            if let Some(p) = foreign {
                return Decision {
                    op: None,
                    blocked: Some(Blocked::Conflict(p)),
                };
            }
            let op = match own {
                Some(o) if o.route == *route => None,
                Some(_) => Some(Op::Replace(route.clone())),
                None => Some(Op::Add(route.clone())),
            };
            Decision { op, blocked: None }
        }
        Some(Err(u)) => Decision {
            // A route towards a gateway we can no longer reach is wrong: remove it.
            op: own.map(|o| Op::Delete(o.route.clone())),
            blocked: Some(Blocked::Unresolved(u.clone())),
        },
        None => Decision {
            op: own.filter(|o| !o.stale).map(|o| Op::Delete(o.route.clone())),
            blocked: None,
        },
    }
}

/// Full diff: ops that make `actual` match `desired` (keyed by prefix, at `metric`).
pub fn reconcile(
    desired: &HashMap<IpNetwork, Result<KernelRoute, Unresolved>>,
    actual: &Actual,
    metric: u32,
) -> Vec<Op> {
    let mut keys: BTreeSet<RouteKey> = desired.keys().map(|p| RouteKey { prefix: *p, metric }).collect();
    keys.extend(actual.own.keys().copied());
    keys.into_iter()
        .filter_map(|k| {
            let want = if k.metric == metric {
                desired.get(&k.prefix)
            } else {
                None
            };
            reconcile_key(k, want, actual).op
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hop;

    fn route(p: &str, proto: u8, metric: u32, gw: &str) -> KernelRoute {
        KernelRoute {
            prefix: p.parse().unwrap(),
            table: 254,
            protocol: proto,
            metric,
            kind: RouteKind::unicast(vec![Hop {
                gateway: Some(gw.parse().unwrap()),
                ifindex: 2,
                onlink: false,
            }]),
        }
    }

    fn want(routes: &[KernelRoute]) -> HashMap<IpNetwork, Result<KernelRoute, Unresolved>> {
        routes.iter().map(|r| (r.prefix, Ok(r.clone()))).collect()
    }

    #[test]
    fn add_replace_delete_and_noop() {
        let mut actual = Actual::default();
        let a = route("10.0.0.0/26", 12, 32, "192.168.1.2");
        let b = route("10.0.0.64/26", 12, 32, "192.168.1.2");
        let c = route("10.0.0.128/26", 12, 32, "192.168.1.2");
        actual.learn(a.clone(), 12, false);
        actual.learn(c.clone(), 12, false);
        let a2 = route("10.0.0.0/26", 12, 32, "192.168.1.3");
        let ops = reconcile(&want(&[a2.clone(), b.clone()]), &actual, 32);
        assert_eq!(ops.len(), 3);
        assert!(ops.contains(&Op::Replace(a2.clone())));
        assert!(ops.contains(&Op::Add(b.clone())));
        assert!(ops.contains(&Op::Delete(c.clone())));
        actual.learn(a2.clone(), 12, false);
        actual.learn(b.clone(), 12, false);
        actual.forget(&c, 12);
        assert!(reconcile(&want(&[a2, b]), &actual, 32).is_empty());
    }

    #[test]
    fn foreign_key_is_a_conflict_never_an_op() {
        let mut actual = Actual::default();
        actual.learn(route("10.0.0.0/26", 4, 32, "192.168.1.9"), 12, false);
        let ours = route("10.0.0.0/26", 12, 32, "192.168.1.2");
        let d = reconcile_key(ours.key(), Some(&Ok(ours.clone())), &actual);
        assert_eq!(d.op, None);
        assert_eq!(d.blocked, Some(Blocked::Conflict(4)));
        // Foreign route at another metric does not conflict and is never deleted.
        let mut actual = Actual::default();
        actual.learn(route("10.0.0.0/26", 4, 100, "192.168.1.9"), 12, false);
        let ops = reconcile(&want(std::slice::from_ref(&ours)), &actual, 32);
        assert_eq!(ops, vec![Op::Add(ours)]);
    }

    #[test]
    fn stale_routes_wait_for_sweep() {
        let mut actual = Actual::default();
        let old = route("10.0.0.0/26", 12, 32, "192.168.1.2");
        actual.learn(old.clone(), 12, true);
        assert!(reconcile(&HashMap::new(), &actual, 32).is_empty());
        // Once re-learned as not stale (sweep clears the flag), it is deleted.
        actual.own.get_mut(&old.key()).unwrap().stale = false;
        assert_eq!(reconcile(&HashMap::new(), &actual, 32), vec![Op::Delete(old)]);
    }

    #[test]
    fn unresolvable_desired_removes_our_wrong_route() {
        let mut actual = Actual::default();
        let old = route("10.0.0.0/26", 12, 32, "192.168.1.2");
        actual.learn(old.clone(), 12, false);
        let u = Err(Unresolved::NoInterface("192.168.9.9".parse().unwrap()));
        let d = reconcile_key(old.key(), Some(&u), &actual);
        assert_eq!(d.op, Some(Op::Delete(old)));
        assert!(matches!(d.blocked, Some(Blocked::Unresolved(_))));
    }

    #[test]
    fn desired_route_blackhole_and_ecmp_canonical() {
        let links = LinkTable::from_links([crate::model::Link {
            ifindex: 2,
            name: "eth0".into(),
            up: true,
            addrs: vec!["192.168.1.1/24".parse().unwrap()],
        }]);
        let p = RouteParams {
            table: 254,
            protocol: 12,
            metric: 32,
            mode: Mode::Plain,
        };
        let bh = desired_route("10.1.0.5/26".parse().unwrap(), &Desired::Blackhole, &p, "tunl0", &links).unwrap();
        assert_eq!(bh.prefix, "10.1.0.0/26".parse::<IpNetwork>().unwrap());
        assert_eq!(bh.kind, RouteKind::Blackhole);
        let gws = ["192.168.1.3", "192.168.1.2"].map(|s| s.parse().unwrap());
        let mut rev = gws;
        rev.reverse();
        let a = desired_route("10.1.0.0/26".parse().unwrap(), &Desired::via(gws), &p, "tunl0", &links);
        let b = desired_route("10.1.0.0/26".parse().unwrap(), &Desired::via(rev), &p, "tunl0", &links);
        assert_eq!(a, b);
    }
}
