//! Next-hop resolution: a pure function of (next hop, mode, links+addresses).

use std::net::IpAddr;

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

/// Why a next hop could not be turned into a kernel next hop (retried on link/address change).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Unresolved {
    /// No up interface has an address whose subnet contains the gateway.
    #[error("no interface on-link for gateway {0}")]
    NoInterface(IpAddr),
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
        return Err(Unresolved::LinkLocalNeedsDevice(gw));
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
/// route is resolved anew and gets it back.
pub fn resolve_hops(
    hops: &[NextHop],
    v4: bool,
    mode: Mode,
    tunnel_device: &str,
    links: &LinkTable,
) -> Result<Vec<Hop>, Unresolved> {
    let mut first_error = None;
    let mut resolved = Vec::with_capacity(hops.len());
    for h in hops {
        // RFC 8950: IPv4 routes may use IPv6 next hops; not the other way round.
        let r = if !v4 && h.gateway.is_ipv4() {
            Err(Unresolved::FamilyMismatch(h.gateway))
        } else {
            resolve_hop(h, mode, tunnel_device, links)
        };
        match r {
            Ok(hop) => resolved.push(hop),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if resolved.is_empty() {
        return Err(first_error.unwrap_or(Unresolved::Empty));
    }
    Ok(resolved)
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
            gateway: "fe80::1".parse().unwrap(),
            device: Some("eth0".into()),
        };
        let h = resolve_hop(&hinted, Mode::Plain, "tunl0", &links()).unwrap();
        assert_eq!((h.ifindex, h.onlink), (2, false));
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
}
