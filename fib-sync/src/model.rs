//! Route, next-hop and link model shared by the pure logic and both `Fib` implementations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;

/// Protocol number BIRD uses (`proto bird`), which Calico hosts expect on BGP routes.
pub const RTPROT_BIRD: u8 = 12;
/// The kernel's main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// An abstract next hop as the caller knows it: the BGP next hop, plus an optional
/// device hint or link anchor (an IPv6 link-local gateway is ambiguous without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The gateway address (the BGP NEXT_HOP).
    pub gateway: IpAddr,
    /// Interface to use instead of resolving one (e.g. for `fe80::/10` gateways).
    pub device: Option<String>,
    /// For a link-local gateway: use the interface on which this address (the
    /// BGP peer the route came from) is on-link (RFC 2545 §3: the link-local
    /// next hop is only meaningful on the link shared with that peer).
    pub link_of: Option<IpAddr>,
}

impl NextHop {
    /// A next hop whose device is resolved by the crate.
    pub fn via(gateway: IpAddr) -> Self {
        NextHop {
            gateway,
            device: None,
            link_of: None,
        }
    }

    /// A link-local gateway on the link shared with `peer`.
    pub fn link_local(gateway: IpAddr, peer: IpAddr) -> Self {
        NextHop {
            gateway,
            device: None,
            link_of: Some(peer),
        }
    }
}

/// What the caller wants for one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Desired {
    /// Forward via these next hops (several = one ECMP route). Shared: routes towards the
    /// same gateways can hold one allocation (`Vec<NextHop>` converts with `.into()`).
    Via(Arc<[NextHop]>),
    /// Drop traffic (own pod blocks).
    Blackhole,
}

thread_local! {
    /// The last gateway set `Desired::via` built on this thread: a batch of routes
    /// towards one peer then shares one allocation instead of one per route.
    static LAST_VIA: RefCell<Option<Arc<[NextHop]>>> = const { RefCell::new(None) };
}

impl Desired {
    /// Convenience: forward via these gateways, devices resolved by the crate. Repeated
    /// calls with the same gateways (on one thread) return the same shared set.
    pub fn via<I: IntoIterator<Item = IpAddr>>(gateways: I) -> Self {
        Self::via_hops(gateways.into_iter().map(NextHop::via))
    }

    /// Forward via these next hops (device hints and link anchors kept), shared
    /// like [`Desired::via`].
    pub fn via_hops<I: IntoIterator<Item = NextHop>>(hops: I) -> Self {
        let hops: Vec<NextHop> = hops.into_iter().collect();
        let shared = LAST_VIA.with(|last| {
            let mut last = last.borrow_mut();
            match last.as_ref() {
                Some(l) if l[..] == hops[..] => l.clone(),
                _ => {
                    let a: Arc<[NextHop]> = hops.into();
                    *last = Some(a.clone());
                    a
                }
            }
        });
        Desired::Via(shared)
    }
}

/// One entry of a batch given to [`crate::FibHandle::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set (or overwrite) the desired route for a prefix.
    Set(IpNetwork, Desired),
    /// Forget the prefix; our kernel route for it is deleted.
    Remove(IpNetwork),
}

/// A next hop as the kernel sees it: gateway, outgoing interface and onlink flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hop {
    /// Gateway; `None` for device routes (`dev eth0` without `via`, foreign only).
    pub gateway: Option<IpAddr>,
    /// Outgoing interface index (0 = unspecified).
    pub ifindex: u32,
    /// `RTNH_F_ONLINK`: the gateway is assumed reachable on the device.
    pub onlink: bool,
}

/// What a kernel route does with a packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `RTN_BLACKHOLE`.
    Blackhole,
    /// `RTN_UNICAST` with one or more hops, kept sorted so equal sets compare equal;
    /// shared, since many routes use the same hops.
    Unicast(Arc<[Hop]>),
    /// Any other route type (local, unreachable, prohibit, ...), by `rtm_type`.
    Other(u8),
}

impl RouteKind {
    /// Unicast kind with hops put in canonical (sorted, deduplicated) order.
    pub fn unicast(mut hops: Vec<Hop>) -> Self {
        canonical(&mut hops);
        RouteKind::Unicast(hops.into())
    }
}

/// Put hops in the canonical order [`RouteKind::Unicast`] keeps them in.
pub(crate) fn canonical(hops: &mut Vec<Hop>) {
    hops.sort_unstable();
    hops.dedup();
}

/// A route in a kernel table (ours or foreign).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    /// Destination, host bits cleared.
    pub prefix: IpNetwork,
    /// Routing table id.
    pub table: u32,
    /// `rtm_protocol`: who installed it.
    pub protocol: u8,
    /// `RTA_PRIORITY` (the metric); part of the kernel's key for a route.
    pub metric: u32,
    /// What the route does.
    pub kind: RouteKind,
}

impl KernelRoute {
    /// Key under which the kernel keeps the route within its table.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            prefix: self.prefix,
            metric: self.metric,
        }
    }
}

/// Identity of a route within one table: the kernel refuses two routes with the
/// same destination, tos (always 0 here) and metric unless asked to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// Destination prefix.
    pub prefix: IpNetwork,
    /// Metric.
    pub metric: u32,
}

/// A change to apply to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a route where we believe none exists (`NLM_F_CREATE|NLM_F_EXCL`): if a
    /// foreign route appeared meanwhile the kernel answers EEXIST instead of overwriting it.
    Add(KernelRoute),
    /// Replace a route we own (`NLM_F_CREATE|NLM_F_REPLACE`).
    Replace(KernelRoute),
    /// Delete a route we own; the request carries our protocol so the kernel only
    /// matches ours.
    Delete(KernelRoute),
}

impl Op {
    /// The route this op concerns.
    pub fn route(&self) -> &KernelRoute {
        match self {
            Op::Add(r) | Op::Replace(r) | Op::Delete(r) => r,
        }
    }
}

/// A network interface and its addresses, as far as next-hop resolution cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// `IFF_UP`.
    pub up: bool,
    /// Addresses with their prefix length (the subnet they make on-link).
    pub addrs: Vec<IpNetwork>,
}

/// All links, indexed by ifindex and by name.
#[derive(Debug, Clone, Default)]
pub struct LinkTable {
    links: HashMap<u32, Link>,
    names: HashMap<String, u32>,
}

impl LinkTable {
    /// Build from a dump.
    pub fn from_links<I: IntoIterator<Item = Link>>(links: I) -> Self {
        let mut t = LinkTable::default();
        for l in links {
            t.upsert(l.ifindex, &l.name, l.up);
            for a in l.addrs {
                t.add_addr(l.ifindex, a);
            }
        }
        t
    }

    /// Link by index.
    pub fn get(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    /// Link by name.
    pub fn by_name(&self, name: &str) -> Option<&Link> {
        self.names.get(name).and_then(|i| self.links.get(i))
    }

    /// Iterate over all links.
    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// Add or update a link; returns true when name or up-state changed (or it is new).
    pub fn upsert(&mut self, ifindex: u32, name: &str, up: bool) -> bool {
        match self.links.get_mut(&ifindex) {
            Some(l) => {
                let changed = l.name != name || l.up != up;
                if l.name != name {
                    if self.names.get(&l.name) == Some(&ifindex) {
                        self.names.remove(&l.name);
                    }
                    l.name = name.to_string();
                    self.names.insert(name.to_string(), ifindex);
                }
                l.up = up;
                changed
            }
            None => {
                self.links.insert(
                    ifindex,
                    Link {
                        ifindex,
                        name: name.to_string(),
                        up,
                        addrs: Vec::new(),
                    },
                );
                self.names.insert(name.to_string(), ifindex);
                true
            }
        }
    }

    /// Remove a link; returns it if it existed.
    pub fn remove(&mut self, ifindex: u32) -> Option<Link> {
        let l = self.links.remove(&ifindex)?;
        if self.names.get(&l.name) == Some(&ifindex) {
            self.names.remove(&l.name);
        }
        Some(l)
    }

    /// Add an address; returns true if it was new. Unknown links are created nameless
    /// (the kernel may report an address before we saw its link).
    pub fn add_addr(&mut self, ifindex: u32, addr: IpNetwork) -> bool {
        let l = self.links.entry(ifindex).or_insert_with(|| Link {
            ifindex,
            name: String::new(),
            up: false,
            addrs: Vec::new(),
        });
        if l.addrs.contains(&addr) {
            false
        } else {
            l.addrs.push(addr);
            true
        }
    }

    /// Remove an address; returns true if it was present.
    pub fn del_addr(&mut self, ifindex: u32, addr: IpNetwork) -> bool {
        match self.links.get_mut(&ifindex) {
            Some(l) => {
                let before = l.addrs.len();
                l.addrs.retain(|a| *a != addr);
                before != l.addrs.len()
            }
            None => false,
        }
    }

    /// The up interface whose address subnet contains `gw` (longest prefix wins;
    /// lowest ifindex breaks ties so the answer is deterministic).
    pub fn onlink_interface(&self, gw: IpAddr) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for l in self.links.values().filter(|l| l.up) {
            for a in &l.addrs {
                if a.is_ipv4() == gw.is_ipv4() && a.contains(gw) {
                    let cand = (a.prefix(), l.ifindex);
                    best = match best {
                        Some((p, i)) if p > cand.0 || (p == cand.0 && i < cand.1) => Some((p, i)),
                        _ => Some(cand),
                    };
                }
            }
        }
        best.map(|(_, i)| i)
    }
}

/// Normalise a prefix: clear host bits (the kernel rejects `10.0.0.1/24` as a destination).
pub fn normalize(prefix: IpNetwork) -> IpNetwork {
    IpNetwork::new(prefix.network(), prefix.prefix()).unwrap_or(prefix)
}

/// A kernel error number attached to an op (e.g. ENODEV); shown by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{} ({})", errno_name(*.0), .0)]
pub struct Errno(pub i32);

/// Name of common netlink errnos, for status output.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EAGAIN => "EAGAIN",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "errno",
    }
}

/// `add 10.244.2.0/26 via 192.168.1.12 ifindex 2 table 254 metric 0`, for log lines.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, r) = match self {
            Op::Add(r) => ("add", r),
            Op::Replace(r) => ("replace", r),
            Op::Delete(r) => ("delete", r),
        };
        write!(f, "{verb} {} ", r.prefix)?;
        match &r.kind {
            RouteKind::Blackhole => write!(f, "blackhole")?,
            RouteKind::Unicast(hops) => {
                for (i, h) in hops.iter().enumerate() {
                    write!(f, "{}{h}", if i == 0 { "" } else { ", " })?;
                }
            }
            RouteKind::Other(t) => write!(f, "type {t}")?,
        }
        write!(f, " table {} metric {}", r.table, r.metric)
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(g) = self.gateway {
            write!(f, "via {g} ")?;
        }
        write!(f, "ifindex {}", self.ifindex)?;
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_reads_like_ip_route() {
        let hop = Hop {
            gateway: Some("192.168.1.12".parse().unwrap()),
            ifindex: 2,
            onlink: false,
        };
        let route = KernelRoute {
            prefix: "10.244.2.0/26".parse().unwrap(),
            table: 254,
            protocol: 12,
            metric: 0,
            kind: RouteKind::unicast(vec![hop]),
        };
        assert_eq!(
            Op::Add(route).to_string(),
            "add 10.244.2.0/26 via 192.168.1.12 ifindex 2 table 254 metric 0"
        );
    }

    #[test]
    fn via_shares_equal_gateway_sets() {
        let gw: IpAddr = "192.168.1.12".parse().unwrap();
        let other: IpAddr = "192.168.1.13".parse().unwrap();
        let (Desired::Via(a), Desired::Via(b)) = (Desired::via([gw]), Desired::via([gw])) else {
            panic!("via builds Via");
        };
        assert!(Arc::ptr_eq(&a, &b), "same gateways, one allocation");
        let Desired::Via(c) = Desired::via([gw, other]) else {
            panic!("via builds Via");
        };
        assert_eq!(c.len(), 2);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(Desired::via([gw]), Desired::Via(vec![NextHop::via(gw)].into()));
    }
}
