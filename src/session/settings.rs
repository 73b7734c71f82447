//! A peer's settings, resolved from the configuration, and the capabilities
//! we offer it in our OPEN.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bgp_proto::capability::{
    AddPathMode, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LlgrFamily,
};
use bgp_proto::Family;

use crate::messages::{NextHopMode, PeerId};
use crate::route::policy::Chain;

/// Everything a peer task needs, resolved from the configuration.
#[derive(Clone, PartialEq)]
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
    /// Long-lived stale time we announce (RFC 9494), when LLGR is on.
    pub long_lived_stale_time: Option<u32>,
    pub hostname: Option<String>,
    pub shutdown_message: Option<String>,
    /// Operator's free text (`description`).
    pub description: Option<String>,
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

/// The TCP-MD5 key never appears in logs or debug output.
impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("asn", &self.asn)
            .field("local_asn", &self.local_asn)
            .field("router_id", &self.router_id)
            .field("passive", &self.passive)
            .field("hold_time", &self.hold_time)
            .field("keepalive_time", &self.keepalive_time)
            .field("connect_retry", &self.connect_retry)
            .field("source_address", &self.source_address)
            .field("ttl", &self.ttl)
            .field("next_hop", &self.next_hop)
            .field("rr_client", &self.rr_client)
            .field("families", &self.families)
            .field("add_path", &self.add_path)
            .field("allowas_in", &self.allowas_in)
            .field("graceful_restart", &self.graceful_restart)
            .field("long_lived_stale_time", &self.long_lived_stale_time)
            .field("hostname", &self.hostname)
            .field("shutdown_message", &self.shutdown_message)
            .field("description", &self.description)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("gtsm_hops", &self.gtsm_hops)
            .field("import", &self.import)
            .field("export", &self.export)
            .field("max_prefixes", &self.max_prefixes)
            .field("dynamic", &self.dynamic)
            .finish()
    }
}

/// Settings a running session takes without a new OPEN (soft
/// reconfiguration): the routes are re-evaluated, the session stays up.
pub const SOFT_SETTINGS: [&str; 6] = [
    "import",
    "export",
    "next_hop",
    "max_prefixes",
    "shutdown_message",
    "description",
];

impl PeerSettings {
    /// Names of the settings that differ between `self` and `other`.
    pub fn differences(&self, other: &PeerSettings) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! compare {
            ($($field:ident),* $(,)?) => {
                $(if self.$field != other.$field { out.push(stringify!($field)); })*
            };
        }
        compare!(
            id,
            name,
            address,
            port,
            asn,
            local_asn,
            router_id,
            passive,
            hold_time,
            keepalive_time,
            connect_retry,
            source_address,
            ttl,
            next_hop,
            rr_client,
            families,
            add_path,
            allowas_in,
            graceful_restart,
            long_lived_stale_time,
            hostname,
            shutdown_message,
            description,
            password,
            gtsm_hops,
            import,
            export,
            max_prefixes,
            dynamic,
        );
        out
    }

    /// The prefix limit as the RIB applies it.
    pub fn prefix_limit(&self) -> Option<crate::messages::PrefixLimit> {
        self.max_prefixes.map(|m| crate::messages::PrefixLimit {
            limit: m.limit,
            warning: (m.limit as u64 * m.warning_percent as u64 / 100) as u32,
        })
    }
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
/// Our own restart as OPENs announce it (RFC 4724 §3, §4.1): shared by every
/// session; the supervisor clears `restarting` once route selection is done.
#[derive(Debug, Default)]
pub struct LocalRestart {
    restarting: AtomicBool,
    /// Families whose forwarding state survived the restart (our kernel
    /// routes were found in place at start).
    forwarding: Vec<Family>,
    /// A session came up or went down: the peers to wait for after a crash
    /// must be recorded again (the supervisor's state file).
    sessions_changed: tokio::sync::Notify,
}

impl LocalRestart {
    pub fn new(restarting: bool, forwarding: Vec<Family>) -> LocalRestart {
        LocalRestart {
            restarting: AtomicBool::new(restarting),
            forwarding,
            sessions_changed: tokio::sync::Notify::new(),
        }
    }

    /// The R bit: we restarted and are deferring route selection.
    pub fn restarting(&self) -> bool {
        self.restarting.load(Ordering::Relaxed)
    }

    /// Route selection is done: later OPENs say we are not restarting.
    pub fn finished(&self) {
        self.restarting.store(false, Ordering::Relaxed);
    }

    /// A session reached or left Established.
    pub fn session_changed(&self) {
        self.sessions_changed.notify_one();
    }

    /// Resolves after the next [`LocalRestart::session_changed`].
    pub async fn sessions_changed(&self) {
        self.sessions_changed.notified().await;
    }

    /// The F bit for `family`.
    pub fn forwarding_preserved(&self, family: Family) -> bool {
        self.restarting() && self.forwarding.contains(&family)
    }
}

pub(crate) fn capabilities(s: &PeerSettings, local: &LocalRestart) -> Vec<Capability> {
    let families: Vec<Family> = s.families.clone();
    let mut caps: Vec<Capability> = families.iter().map(|f| Capability::Multiprotocol(*f)).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::ExtendedMessage);
    if let Some(time) = s.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: local.restarting(),
            // RFC 8538: a NOTIFICATION (other than Hard Reset) keeps routes too.
            notification: true,
            restart_time: time.min(4095),
            families: families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: local.forwarding_preserved(*f),
                })
                .collect(),
        }));
    }
    if let Some(time) = s.long_lived_stale_time {
        caps.push(Capability::LongLivedGracefulRestart(
            families
                .iter()
                .map(|f| LlgrFamily {
                    family: *f,
                    forwarding_preserved: local.forwarding_preserved(*f),
                    stale_time: time.min(0xFF_FFFF),
                })
                .collect(),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_the_md5_key() {
        let s = PeerSettings {
            id: PeerId(1),
            name: "tor1".into(),
            address: "192.168.1.1".parse().unwrap(),
            port: 179,
            asn: 65001,
            local_asn: 64512,
            router_id: "192.168.1.11".parse().unwrap(),
            passive: false,
            hold_time: 90,
            keepalive_time: 30,
            connect_retry: Duration::from_secs(5),
            source_address: None,
            ttl: None,
            next_hop: NextHopMode::Auto,
            rr_client: false,
            families: vec![Family::IPV4_UNICAST],
            add_path: None,
            allowas_in: 0,
            graceful_restart: None,
            long_lived_stale_time: None,
            hostname: None,
            shutdown_message: None,
            description: None,
            password: Some("s3cret-key".into()),
            gtsm_hops: None,
            import: Chain::AcceptAll,
            export: Chain::AcceptAll,
            max_prefixes: None,
            dynamic: false,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret-key"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
