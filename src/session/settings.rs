//! A peer's settings, resolved from the configuration, and the capabilities
//! we offer it in our OPEN.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp_proto::capability::{AddPathMode, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily};
use bgp_proto::Family;

use crate::messages::{NextHopMode, PeerId};
use crate::route::policy::Chain;

/// Everything a peer task needs, resolved from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSettings {
    pub id: PeerId,
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub asn: u32,
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub passive: bool,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry: Duration,
    pub source_address: Option<IpAddr>,
    pub ttl: Option<u8>,
    pub next_hop: NextHopMode,
    pub rr_client: bool,
    pub families: Vec<Family>,
    pub add_path: Option<AddPathMode>,
    pub allowas_in: u8,
    pub graceful_restart: Option<u16>,
    pub hostname: Option<String>,
    pub shutdown_message: Option<String>,
    /// TCP-MD5 key (RFC 2385).
    pub password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255, accept only TTL >= 256 - hops.
    pub gtsm_hops: Option<u8>,
    pub import: Chain,
    pub export: Chain,
    pub max_prefixes: Option<MaxPrefixes>,
    /// Accepted from a `[[dynamic_peers]]` range: the task ends with its session.
    pub dynamic: bool,
}

/// Prefix limit settings (RFC 4486).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    pub limit: u32,
    pub warning_percent: u8,
    /// Reconnect this long after the limit tripped; `None`: stay down.
    pub restart_after: Option<Duration>,
}

/// Our capabilities for this peer.
pub(crate) fn capabilities(s: &PeerSettings) -> Vec<Capability> {
    let families: Vec<Family> = s.families.clone();
    let mut caps: Vec<Capability> = families.iter().map(|f| Capability::Multiprotocol(*f)).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::ExtendedMessage);
    if let Some(time) = s.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: time.min(4095),
            families: families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: false,
                })
                .collect(),
        }));
    }
    caps.push(Capability::FourOctetAs(s.local_asn));
    // RFC 8950: on an IPv6 session, IPv4 routes may carry IPv6 next hops.
    if s.address.is_ipv6() && families.contains(&Family::IPV4_UNICAST) {
        caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: bgp_proto::Afi::IPV6,
        }]));
    }
    if let Some(mode) = s.add_path {
        caps.push(Capability::AddPath(families.iter().map(|f| (*f, mode)).collect()));
    }
    if let Some(host) = &s.hostname {
        caps.push(Capability::Fqdn {
            hostname: host.as_bytes().to_vec(),
            domain: Vec::new(),
        });
    }
    caps
}
