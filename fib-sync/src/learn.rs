//! Which kernel routes of other programs to report to the daemon, which
//! announces them (BIRD's kernel protocol with `learn`; Calico's Felix
//! writes pod routes with protocol 3 "boot" and 80). Pure: a route and the
//! link table in, a learned route or nothing out.

use std::collections::HashMap;

use ipnetwork::IpNetwork;

use crate::model::{KernelRoute, LinkTable, RouteKind};

/// The routes to learn: of these protocols, inside these prefixes, and (when
/// any globs are given) out of a device whose name matches one of them.
#[derive(Debug, Clone, Default)]
pub struct LearnFilter {
    pub protocols: Vec<u8>,
    pub prefixes: Vec<IpNetwork>,
    pub interfaces: Vec<glob::Pattern>,
}

impl LearnFilter {
    /// A filter from configuration values; an invalid glob is an error.
    pub fn new(
        protocols: Vec<u8>,
        prefixes: Vec<IpNetwork>,
        interfaces: &[String],
    ) -> Result<Self, glob::PatternError> {
        let interfaces = interfaces
            .iter()
            .map(|g| glob::Pattern::new(g))
            .collect::<Result<_, _>>()?;
        Ok(LearnFilter {
            protocols,
            prefixes,
            interfaces,
        })
    }

    /// Learns nothing (no protocol or no prefix).
    pub fn is_empty(&self) -> bool {
        self.protocols.is_empty() || self.prefixes.is_empty()
    }

    /// `r` as a learned route, if the filter takes it: unicast (device or
    /// gateway) and blackhole routes only; a blackhole has no device, so it
    /// passes only a filter without interface globs.
    pub fn learn(&self, r: &KernelRoute, links: &LinkTable) -> Option<LearnedRoute> {
        if !self.protocols.contains(&r.protocol) {
            return None;
        }
        let inside = self
            .prefixes
            .iter()
            .any(|p| p.is_ipv4() == r.prefix.is_ipv4() && p.prefix() <= r.prefix.prefix() && p.contains(r.prefix.ip()));
        if !inside {
            return None;
        }
        let (ifindexes, blackhole) = match &r.kind {
            RouteKind::Unicast(hops) => (hops.iter().map(|h| h.ifindex).collect::<Vec<_>>(), false),
            RouteKind::Blackhole => (Vec::new(), true),
            RouteKind::Other(_) => return None,
        };
        let devices: Vec<String> = (ifindexes.iter())
            .filter_map(|i| links.get(*i).map(|l| l.name.clone()))
            .collect();
        let matches =
            self.interfaces.is_empty() || devices.iter().any(|d| self.interfaces.iter().any(|g| g.matches(d)));
        if !matches {
            return None;
        }
        Some(LearnedRoute {
            prefix: r.prefix,
            protocol: r.protocol,
            metric: r.metric,
            blackhole,
            devices,
            ifindexes,
        })
    }
}

/// A kernel route of another program that the filter takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedRoute {
    pub prefix: IpNetwork,
    /// `rtm_protocol` of the program that wrote it.
    pub protocol: u8,
    pub metric: u32,
    pub blackhole: bool,
    /// Names of its output devices (empty for a blackhole).
    pub devices: Vec<String>,
    /// Their ifindexes: the route vanishes with its device.
    pub ifindexes: Vec<u32>,
}

/// A change of the learned set, as reported to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnChange {
    Set(LearnedRoute),
    Remove(IpNetwork),
}

/// The learned routes by prefix (one per prefix: the lowest metric seen),
/// and how a new view of them differs from the old.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    pub(crate) filter: LearnFilter,
    pub(crate) routes: HashMap<IpNetwork, LearnedRoute>,
}

impl Learned {
    /// A route added or replaced in the kernel: what changes for its prefix.
    pub(crate) fn added(&mut self, r: &KernelRoute, links: &LinkTable) -> Option<LearnChange> {
        if self.filter.is_empty() {
            return None;
        }
        match (self.filter.learn(r, links), self.routes.get(&r.prefix)) {
            (Some(new), Some(old)) if *old == new || old.metric < new.metric => None,
            (Some(new), _) => {
                self.routes.insert(r.prefix, new.clone());
                Some(LearnChange::Set(new))
            }
            // The kernel replaced the route we had learned (same key) with one we do not take.
            (None, Some(old)) if old.metric == r.metric => {
                self.routes.remove(&r.prefix);
                Some(LearnChange::Remove(r.prefix))
            }
            (None, _) => None,
        }
    }

    /// A route deleted from the kernel: the learned one goes if it was that route.
    pub(crate) fn deleted(&mut self, r: &KernelRoute) -> Option<LearnChange> {
        let old = self.routes.get(&r.prefix)?;
        if old.metric != r.metric || old.protocol != r.protocol {
            return None;
        }
        self.routes.remove(&r.prefix);
        Some(LearnChange::Remove(r.prefix))
    }

    /// A link went away (or, for IPv4, down): the kernel drops the routes
    /// out of it without telling anyone, so they are unlearned here.
    pub(crate) fn link_gone(&mut self, ifindex: u32, only_v4: bool) -> Vec<LearnChange> {
        let gone: Vec<IpNetwork> = (self.routes.values())
            .filter(|l| l.ifindexes.contains(&ifindex) && (!only_v4 || l.prefix.is_ipv4()))
            .map(|l| l.prefix)
            .collect();
        for p in &gone {
            self.routes.remove(p);
        }
        gone.into_iter().map(LearnChange::Remove).collect()
    }

    /// The learned set from a full dump of the table (start, filter change,
    /// resync): the differences from what was reported.
    pub(crate) fn rebuild(&mut self, table: &[KernelRoute], links: &LinkTable) -> Vec<LearnChange> {
        let mut fresh: HashMap<IpNetwork, LearnedRoute> = HashMap::new();
        if !self.filter.is_empty() {
            for l in table.iter().filter_map(|r| self.filter.learn(r, links)) {
                match fresh.get(&l.prefix) {
                    Some(old) if old.metric <= l.metric => {}
                    _ => {
                        fresh.insert(l.prefix, l);
                    }
                }
            }
        }
        let mut changes: Vec<LearnChange> = (self.routes.keys())
            .filter(|p| !fresh.contains_key(p))
            .map(|p| LearnChange::Remove(*p))
            .collect();
        changes.extend(
            (fresh.values())
                .filter(|l| self.routes.get(&l.prefix) != Some(l))
                .map(|l| LearnChange::Set(l.clone())),
        );
        self.routes = fresh;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hop, Link};

    fn links() -> LinkTable {
        let link = |ifindex: u32, name: &str| Link {
            ifindex,
            name: name.into(),
            up: true,
            addrs: vec![],
        };
        LinkTable::from_links([link(2, "eth0"), link(7, "cali1234"), link(8, "cali5678")])
    }

    fn route(prefix: &str, protocol: u8, metric: u32, ifindex: Option<u32>) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol,
            metric,
            kind: match ifindex {
                Some(i) => RouteKind::unicast(vec![Hop {
                    gateway: None,
                    ifindex: i,
                    onlink: false,
                }]),
                None => RouteKind::Blackhole,
            },
        }
    }

    fn calico(globs: &[&str]) -> Learned {
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        Learned {
            filter: LearnFilter::new(vec![3, 80], vec!["10.244.0.0/16".parse().unwrap()], &globs).unwrap(),
            routes: HashMap::new(),
        }
    }

    #[test]
    fn only_the_configured_protocols_prefixes_and_devices_are_learned() {
        let mut l = calico(&["cali*"]);
        let pod = route("10.244.9.7/32", 3, 0, Some(7));
        assert!(matches!(l.added(&pod, &links()), Some(LearnChange::Set(r)) if r.devices == ["cali1234"]));
        for other in [
            route("10.244.9.8/32", 4, 0, Some(7)), // static: not in protocols
            route("10.245.0.1/32", 3, 0, Some(7)), // outside the prefixes
            route("10.244.9.9/32", 3, 0, Some(2)), // eth0 does not match cali*
            route("10.244.0.0/8", 3, 0, Some(7)),  // wider than the prefix
            route("10.244.10.0/26", 80, 0, None),  // blackhole: no device to match
        ] {
            assert_eq!(l.added(&other, &links()), None, "{other:?}");
        }
        let mut any_device = calico(&[]);
        assert!(any_device
            .added(&route("10.244.10.0/26", 80, 0, None), &links())
            .is_some());
    }

    #[test]
    fn ipv6_routes_are_learned_inside_ipv6_prefixes_only() {
        let filter = LearnFilter::new(vec![3], vec!["fd00:10:244::/48".parse().unwrap()], &[]).unwrap();
        let mut l = Learned {
            filter,
            routes: HashMap::new(),
        };
        let pod6 = route("fd00:10:244:9::7/128", 3, 1024, Some(7));
        assert!(matches!(l.added(&pod6, &links()), Some(LearnChange::Set(r)) if r.metric == 1024));
        assert_eq!(l.added(&route("fd00:10:245::1/128", 3, 0, Some(7)), &links()), None);
        assert_eq!(
            l.added(&route("10.244.9.7/32", 3, 0, Some(7)), &links()),
            None,
            "other family"
        );
        // An IPv6 route stays when its link goes down (the kernel reports its deletion).
        assert!(l.link_gone(7, true).is_empty());
        assert_eq!(
            l.deleted(&pod6),
            Some(LearnChange::Remove("fd00:10:244:9::7/128".parse().unwrap()))
        );
    }

    #[test]
    fn deletion_replacement_and_a_vanished_device_unlearn() {
        let mut l = calico(&["cali*"]);
        l.added(&route("10.244.9.7/32", 3, 0, Some(7)), &links());
        // Deleting a route at another metric leaves the learned one.
        assert_eq!(l.deleted(&route("10.244.9.7/32", 3, 100, Some(7))), None);
        // Replaced in place by a route out of eth0: no longer learned.
        assert_eq!(
            l.added(&route("10.244.9.7/32", 3, 0, Some(2)), &links()),
            Some(LearnChange::Remove("10.244.9.7/32".parse().unwrap()))
        );
        l.added(&route("10.244.9.8/32", 3, 0, Some(8)), &links());
        assert_eq!(
            l.link_gone(8, true),
            vec![LearnChange::Remove("10.244.9.8/32".parse().unwrap())]
        );
        assert!(l.routes.is_empty());
    }

    #[test]
    fn a_rebuild_reports_only_the_differences() {
        let mut l = calico(&["cali*"]);
        l.added(&route("10.244.9.7/32", 3, 0, Some(7)), &links());
        l.added(&route("10.244.9.8/32", 3, 0, Some(8)), &links());
        let table = [
            route("10.244.9.7/32", 3, 0, Some(7)),
            route("10.244.9.9/32", 80, 0, Some(8)),
        ];
        let mut changes = l.rebuild(&table, &links());
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.contains(&LearnChange::Remove("10.244.9.8/32".parse().unwrap())));
        assert!(changes
            .iter()
            .any(|c| matches!(c, LearnChange::Set(r) if r.prefix.to_string() == "10.244.9.9/32")));
        l.filter = LearnFilter::default();
        assert_eq!(
            l.rebuild(&table, &links()).len(),
            2,
            "an empty filter unlearns everything"
        );
    }
}
