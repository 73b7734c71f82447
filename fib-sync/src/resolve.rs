//! Next-hop resolution: a pure function of (next hop, mode, links+addresses, and the
//! table's other routes for next hops that are not on a connected subnet).

use std::net::IpAddr;

use crate::cover::{Cover, CoverIndex};
use crate::model::{Hop, LinkTable, NextHop};

/// How BGP next hops become kernel next hops (Calico's `ipip` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `via GW dev <interface whose subnet contains GW>`.
    #[default]
    Plain,
    /// `via GW dev tunl0 onlink` for every IPv4 gateway.
    IpipAlways,
    /// Tunnel only when GW is outside every local interface subnet.
    IpipCrossSubnet,
}

/// Why a next hop could not be turned into a kernel next hop (retried on link/address
/// change, and on a change of the route covering the gateway).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Unresolved {
    /// No up interface has an address whose subnet contains the gateway.
    #[error("no interface on-link for gateway {0}")]
    NoInterface(IpAddr),
    /// The gateway is not on-link and no usable route of the table covers it (none, a
    /// reject route, or one whose devices are down).
    #[error("no route to gateway {0}")]
    NoRoute(IpAddr),
    /// A named device (tunnel or hint) does not exist.
    #[error("device {0} missing")]
    DeviceMissing(String),
    /// A named device exists but is down.
    #[error("device {0} down")]
    DeviceDown(String),
    /// IPv6 link-local gateways are ambiguous without a device hint.
    #[error("link-local gateway {0} needs a device")]
    LinkLocalNeedsDevice(IpAddr),
    /// An IPv4 gateway for an IPv6 prefix (the reverse, RFC 8950, is supported).
    #[error("gateway {0} is not of the prefix's address family")]
    FamilyMismatch(IpAddr),
    /// A route with no next hops at all.
    #[error("no next hops")]
    Empty,
}

fn is_v6_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

fn named_up(links: &LinkTable, name: &str) -> Result<u32, Unresolved> {
    match links.by_name(name) {
        None => Err(Unresolved::DeviceMissing(name.to_string())),
        Some(l) if !l.up => Err(Unresolved::DeviceDown(name.to_string())),
        Some(l) => Ok(l.ifindex),
    }
}

/// Resolve one next hop. IPIP carries IPv4 only, so IPv6 gateways always resolve plainly.
pub fn resolve_hop(hop: &NextHop, mode: Mode, tunnel_device: &str, links: &LinkTable) -> Result<Hop, Unresolved> {
    let gw = hop.gateway;
    if let Some(dev) = &hop.device {
        let ifindex = named_up(links, dev)?;
        let covered = is_v6_link_local(gw)
            || links
                .get(ifindex)
                .is_some_and(|l| l.addrs.iter().any(|a| a.contains(gw)));
        return Ok(Hop {
            gateway: Some(gw),
            ifindex,
            onlink: !covered,
        });
    }
    if is_v6_link_local(gw) {
        // The link shared with the peer that gave us the gateway (RFC 2545 §3).
        return match hop.link_of {
            Some(peer) => links
                .onlink_interface(peer)
                .map(|ifindex| Hop {
                    gateway: Some(gw),
                    ifindex,
                    onlink: false,
                })
                .ok_or(Unresolved::NoInterface(peer)),
            None => Err(Unresolved::LinkLocalNeedsDevice(gw)),
        };
    }
    let plain = || {
        links
            .onlink_interface(gw)
            .map(|ifindex| Hop {
                gateway: Some(gw),
                ifindex,
                onlink: false,
            })
            .ok_or(Unresolved::NoInterface(gw))
    };
    let tunnel = || {
        named_up(links, tunnel_device).map(|ifindex| Hop {
            gateway: Some(gw),
            ifindex,
            onlink: true,
        })
    };
    match (mode, gw) {
        (_, IpAddr::V6(_)) | (Mode::Plain, _) => plain(),
        (Mode::IpipAlways, IpAddr::V4(_)) => tunnel(),
        (Mode::IpipCrossSubnet, IpAddr::V4(_)) => plain().or_else(|_| tunnel()),
    }
}

/// Resolve the next hops of a route (same family as `v4`). An ECMP route keeps
/// the hops that resolve (RFC 4271 §9.1.2: an unresolvable next hop is left
/// out, the others still forward), so losing one uplink of a dual-homed host
/// loses only that path; it is unresolved only when none resolves, with the
/// first hop's reason. When a hop resolves again (link or address event) the
/// route is resolved anew and gets it back. On-link gateways only; see
/// [`resolve_hops_with`] for resolution through the routing table.
pub fn resolve_hops(
    hops: &[NextHop],
    v4: bool,
    mode: Mode,
    tunnel_device: &str,
    links: &LinkTable,
) -> Result<Vec<Hop>, Unresolved> {
    resolve_hops_with(hops, v4, mode, tunnel_device, links, None)
}

/// Whether a gateway without device hint may resolve through the routing table: IPv6
/// ones always, IPv4 ones in plain mode (the IPIP modes tunnel IPv4 instead).
pub(crate) fn recurses(gateway: IpAddr, mode: Mode) -> bool {
    gateway.is_ipv6() || mode == Mode::Plain
}

/// [`resolve_hops`], and with `covers` a gateway that is on no connected subnet resolves
/// through the longest-prefix route of the table (other protocols' routes only), as
/// BIRD's `gateway recursive` does: a route via gateways gives those gateways and devices
/// (all of them if multipath), a device route gives `via GATEWAY dev DEV onlink`.
pub(crate) fn resolve_hops_with(
    hops: &[NextHop],
    v4: bool,
    mode: Mode,
    tunnel_device: &str,
    links: &LinkTable,
    covers: Option<&CoverIndex>,
) -> Result<Vec<Hop>, Unresolved> {
    let mut first_error = None;
    let mut resolved = Vec::with_capacity(hops.len());
    for h in hops {
        // RFC 8950: IPv4 routes may use IPv6 next hops; not the other way round.
        let r = if !v4 && h.gateway.is_ipv4() {
            Err(Unresolved::FamilyMismatch(h.gateway))
        } else {
            match (resolve_hop(h, mode, tunnel_device, links), covers) {
                // Only plain resolution fails so: the gateway recurses (see `recurses`).
                (Err(Unresolved::NoInterface(gw)), Some(c)) => through(gw, v4, c, links, &mut resolved),
                (r, _) => r.map(|hop| resolved.push(hop)),
            }
        };
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    if resolved.is_empty() {
        return Err(first_error.unwrap_or(Unresolved::Empty));
    }
    Ok(resolved)
}

/// Resolve `gw` through the route covering it, one level deep (the covering route's own
/// gateways are on-link); hops on devices that are down or missing are left out.
fn through(gw: IpAddr, v4: bool, covers: &CoverIndex, links: &LinkTable, out: &mut Vec<Hop>) -> Result<(), Unresolved> {
    let up = |i: u32| links.get(i).is_some_and(|l| l.up);
    let before = out.len();
    match covers.lookup(gw) {
        Some(Cover::Device(i)) if up(*i) => out.push(Hop {
            gateway: Some(gw),
            ifindex: *i,
            onlink: true,
        }),
        Some(Cover::Gateways(hops)) => out.extend(
            hops.iter()
                // An IPv6 route cannot use an IPv4 gateway.
                .filter(|h| up(h.ifindex) && (v4 || !h.gateway.is_some_and(|g| g.is_ipv4())))
                .map(|h| match h.gateway {
                    Some(_) => *h,
                    None => Hop {
                        gateway: Some(gw),
                        ifindex: h.ifindex,
                        onlink: true,
                    },
                }),
        ),
        _ => {}
    }
    if out.len() == before {
        return Err(Unresolved::NoRoute(gw));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Link;

    fn links() -> LinkTable {
        LinkTable::from_links([
            Link {
                ifindex: 2,
                name: "eth0".into(),
                up: true,
                addrs: vec!["192.168.1.11/24".parse().unwrap(), "fd00::11/64".parse().unwrap()],
            },
            Link {
                ifindex: 3,
                name: "tunl0".into(),
                up: true,
                addrs: vec![],
            },
            Link {
                ifindex: 4,
                name: "eth1".into(),
                up: false,
                addrs: vec!["192.168.3.1/24".parse().unwrap()],
            },
        ])
    }

    fn nh(s: &str) -> NextHop {
        NextHop::via(s.parse().unwrap())
    }

    #[test]
    fn plain_uses_interface_whose_subnet_has_gateway() {
        let h = resolve_hop(&nh("192.168.1.12"), Mode::Plain, "tunl0", &links()).unwrap();
        assert_eq!((h.ifindex, h.onlink), (2, false));
        assert_eq!(
            resolve_hop(&nh("192.168.2.12"), Mode::Plain, "tunl0", &links()),
            Err(Unresolved::NoInterface("192.168.2.12".parse().unwrap()))
        );
        // eth1 is down: its subnet does not count.
        assert!(resolve_hop(&nh("192.168.3.5"), Mode::Plain, "tunl0", &links()).is_err());
    }

    #[test]
    fn ipip_always_uses_tunnel_onlink() {
        let h = resolve_hop(&nh("192.168.1.12"), Mode::IpipAlways, "tunl0", &links()).unwrap();
        assert_eq!((h.ifindex, h.onlink), (3, true));
        assert_eq!(
            resolve_hop(&nh("192.168.1.12"), Mode::IpipAlways, "tun9", &links()),
            Err(Unresolved::DeviceMissing("tun9".into()))
        );
    }

    #[test]
    fn cross_subnet_decision() {
        let same = resolve_hop(&nh("192.168.1.12"), Mode::IpipCrossSubnet, "tunl0", &links());
        assert_eq!(same.map(|h| (h.ifindex, h.onlink)), Ok((2, false)));
        let other = resolve_hop(&nh("192.168.2.12"), Mode::IpipCrossSubnet, "tunl0", &links());
        assert_eq!(other.map(|h| (h.ifindex, h.onlink)), Ok((3, true)));
    }

    #[test]
    fn ipv6_never_tunnels_and_link_local_needs_device() {
        let h = resolve_hop(&nh("fd00::12"), Mode::IpipAlways, "tunl0", &links()).unwrap();
        assert_eq!(h.ifindex, 2);
        assert_eq!(
            resolve_hop(&nh("fe80::1"), Mode::Plain, "tunl0", &links()),
            Err(Unresolved::LinkLocalNeedsDevice("fe80::1".parse().unwrap()))
        );
        let hinted = NextHop {
            device: Some("eth0".into()),
            ..nh("fe80::1")
        };
        let h = resolve_hop(&hinted, Mode::Plain, "tunl0", &links()).unwrap();
        assert_eq!((h.ifindex, h.onlink), (2, false));
    }

    /// Review finding 15a: a link-local gateway goes out of the interface on
    /// which the peer it came from is on-link, and only while that link is up.
    #[test]
    fn link_local_resolves_on_the_peers_link() {
        let ll: IpAddr = "fe80::12".parse().unwrap();
        let on_eth0 = NextHop::link_local(ll, "fd00::12".parse().unwrap());
        let h = resolve_hop(&on_eth0, Mode::IpipAlways, "tunl0", &links()).unwrap();
        assert_eq!((h.gateway, h.ifindex, h.onlink), (Some(ll), 2, false));
        let v4_session = NextHop::link_local(ll, "192.168.1.12".parse().unwrap());
        assert_eq!(
            resolve_hop(&v4_session, Mode::Plain, "tunl0", &links()).map(|h| h.ifindex),
            Ok(2)
        );
        let down_link = NextHop::link_local(ll, "192.168.3.7".parse().unwrap());
        assert_eq!(
            resolve_hop(&down_link, Mode::Plain, "tunl0", &links()),
            Err(Unresolved::NoInterface("192.168.3.7".parse().unwrap()))
        );
    }

    #[test]
    fn family_mismatch_and_empty() {
        assert_eq!(
            resolve_hops(&[nh("192.168.1.12")], false, Mode::Plain, "tunl0", &links()),
            Err(Unresolved::FamilyMismatch("192.168.1.12".parse().unwrap()))
        );
        assert!(
            resolve_hops(&[nh("fd00::12")], true, Mode::Plain, "tunl0", &links()).is_ok(),
            "an IPv6 next hop for an IPv4 route (RFC 8950)"
        );
        assert_eq!(
            resolve_hops(&[], true, Mode::Plain, "tunl0", &links()),
            Err(Unresolved::Empty)
        );
    }

    #[test]
    fn an_ecmp_route_keeps_the_hops_that_resolve() {
        // eth1 is down: its gateway drops out, the eth0 one stays (review finding 2).
        let hops = resolve_hops(
            &[nh("192.168.1.12"), nh("192.168.3.5")],
            true,
            Mode::Plain,
            "tunl0",
            &links(),
        )
        .unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].gateway, Some("192.168.1.12".parse().unwrap()));
        assert_eq!(
            resolve_hops(
                &[nh("192.168.3.5"), nh("192.168.2.1")],
                true,
                Mode::Plain,
                "tunl0",
                &links()
            ),
            Err(Unresolved::NoInterface("192.168.3.5".parse().unwrap())),
            "none resolves: the first hop's reason"
        );
    }

    fn covers() -> CoverIndex {
        use crate::model::{KernelRoute, RouteKind};
        let r = |prefix: &str, proto: u8, kind: RouteKind| KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol: proto,
            metric: 0,
            kind,
        };
        let hop = |gw: Option<&str>, ifindex: u32| Hop {
            gateway: gw.map(|g| g.parse().unwrap()),
            ifindex,
            onlink: false,
        };
        let routes = [
            r("10.0.0.0/8", 4, RouteKind::unicast(vec![hop(Some("192.168.1.1"), 2)])),
            r("10.5.0.0/16", 4, RouteKind::unicast(vec![hop(None, 2)])),
            r(
                "10.6.0.0/16",
                4,
                RouteKind::unicast(vec![hop(Some("192.168.1.1"), 2), hop(Some("192.168.1.2"), 2)]),
            ),
            r("10.7.0.0/16", 4, RouteKind::Other(7)),
            r("10.8.0.0/16", 12, RouteKind::unicast(vec![hop(Some("192.168.1.9"), 2)])),
            r("10.9.0.0/16", 4, RouteKind::unicast(vec![hop(None, 4)])),
            r("::/0", 9, RouteKind::unicast(vec![hop(Some("fe80::1"), 2)])),
        ];
        let mut hops = crate::intern::Interner::default();
        CoverIndex::build(&routes, 12, &mut hops)
    }

    fn rec(gws: &[&str], mode: Mode) -> Result<Vec<(String, u32, bool)>, Unresolved> {
        let hops: Vec<NextHop> = gws.iter().map(|g| nh(g)).collect();
        let v4 = gws[0].contains('.');
        resolve_hops_with(&hops, v4, mode, "tunl0", &links(), Some(&covers())).map(|v| {
            v.iter()
                .map(|h| (h.gateway.unwrap().to_string(), h.ifindex, h.onlink))
                .collect()
        })
    }

    fn hop(gw: &str, ifindex: u32, onlink: bool) -> (String, u32, bool) {
        (gw.to_string(), ifindex, onlink)
    }

    #[test]
    fn an_off_subnet_next_hop_resolves_through_the_covering_route() {
        assert_eq!(rec(&["10.1.2.3"], Mode::Plain), Ok(vec![hop("192.168.1.1", 2, false)]));
        // A device route: the next hop is taken as on that link.
        assert_eq!(rec(&["10.5.0.9"], Mode::Plain), Ok(vec![hop("10.5.0.9", 2, true)]));
        // A multipath route: all its paths.
        assert_eq!(
            rec(&["10.6.0.9"], Mode::Plain),
            Ok(vec![hop("192.168.1.1", 2, false), hop("192.168.1.2", 2, false)])
        );
        // On-link wins over any route.
        assert_eq!(
            rec(&["192.168.1.12"], Mode::Plain),
            Ok(vec![hop("192.168.1.12", 2, false)])
        );
        // IPv6 through the default route, in every mode.
        assert_eq!(rec(&["fd99::5"], Mode::IpipAlways), Ok(vec![hop("fe80::1", 2, false)]));
    }

    #[test]
    fn rejects_own_routes_down_devices_and_no_route_do_not_resolve() {
        let no_route = |g: &str| Err(Unresolved::NoRoute(g.parse().unwrap()));
        assert_eq!(rec(&["10.7.0.1"], Mode::Plain), no_route("10.7.0.1"), "unreachable");
        // Our own 10.8.0.0/16 is not in the index: the /8 covers instead.
        assert_eq!(rec(&["10.8.0.1"], Mode::Plain), Ok(vec![hop("192.168.1.1", 2, false)]));
        assert_eq!(rec(&["10.9.0.1"], Mode::Plain), no_route("10.9.0.1"), "eth1 is down");
        assert_eq!(rec(&["11.0.0.1"], Mode::Plain), no_route("11.0.0.1"));
        // ECMP keeps what resolves; the public, on-link-only function is unchanged.
        assert_eq!(
            rec(&["11.0.0.1", "10.5.0.9"], Mode::Plain),
            Ok(vec![hop("10.5.0.9", 2, true)])
        );
        assert_eq!(
            resolve_hops(&[nh("10.1.2.3")], true, Mode::Plain, "tunl0", &links()),
            Err(Unresolved::NoInterface("10.1.2.3".parse().unwrap()))
        );
    }

    #[test]
    fn ipip_modes_tunnel_ipv4_instead_of_recursing() {
        assert_eq!(rec(&["10.1.2.3"], Mode::IpipAlways), Ok(vec![hop("10.1.2.3", 3, true)]));
        assert_eq!(
            rec(&["10.1.2.3"], Mode::IpipCrossSubnet),
            Ok(vec![hop("10.1.2.3", 3, true)])
        );
        assert!(recurses("fd00::1".parse().unwrap(), Mode::IpipAlways));
        assert!(!recurses("10.0.0.1".parse().unwrap(), Mode::IpipCrossSubnet));
    }
}
