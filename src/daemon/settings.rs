//! Every mapping from the configuration to runtime settings in one place:
//! peer sessions (configured and dynamic), originated prefixes, compiled
//! policies and chains, the RIB's and the kernel sync's settings.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::attributes::{Community, ExtCommunity, LargeCommunity};
use bgp_proto::capability::AddPathMode;
use bgp_proto::Family;
use config::{Config, DynamicPeers, EffectivePeer};
use fib_sync::{FibConfig, Mode};

use crate::messages::{NextHopMode, Originated, PeerId};
use crate::rib::RibConfig;
use crate::route::policy::{Chain, Policy, Rule, Verdict};
use crate::session::{MaxPrefixes, PeerSettings};
use crate::sys::hostname;

/// Peer settings from the configuration (ids are assigned by the caller).
pub fn peer_settings(cfg: &Config, policies: &[Arc<Policy>], p: &EffectivePeer, id: PeerId) -> PeerSettings {
    let (import, export) = chains(cfg, policies, &p.import, &p.export, !p.ibgp);
    PeerSettings {
        id,
        name: p.name.clone(),
        address: p.address,
        port: p.port,
        asn: p.asn,
        local_asn: p.local_asn,
        router_id: cfg.bgp.router_id,
        passive: p.passive,
        hold_time: p.hold_time,
        keepalive_time: p.keepalive_time,
        connect_retry: Duration::from_secs(cfg.bgp.connect_retry_time.max(1) as u64),
        source_address: p.source_address,
        ttl: match p.ttl {
            config::TtlMode::Fixed(t) => Some(t),
            config::TtlMode::Gtsm { .. } => Some(255),
        },
        next_hop: match p.next_hop {
            config::NextHop::SelfAddr => NextHopMode::SelfAddress,
            config::NextHop::Keep => NextHopMode::Keep,
            config::NextHop::Auto => NextHopMode::Auto,
        },
        rr_client: p.route_reflector_client,
        families: p
            .families
            .iter()
            .map(|f| match f {
                config::Family::Ipv4 => Family::IPV4_UNICAST,
                config::Family::Ipv6 => Family::IPV6_UNICAST,
            })
            .collect(),
        add_path: match p.add_path {
            config::AddPath::None => None,
            config::AddPath::Send => Some(AddPathMode::Send),
            config::AddPath::Receive => Some(AddPathMode::Receive),
            config::AddPath::Both => Some(AddPathMode::Both),
        },
        allowas_in: p.allowas_in,
        graceful_restart: cfg
            .graceful_restart
            .enabled
            .then_some(cfg.graceful_restart.restart_time),
        long_lived_stale_time: long_lived_stale_time(cfg),
        hostname: hostname(),
        shutdown_message: p.shutdown_message.clone(),
        description: p.description.clone(),
        password: p.password.clone(),
        gtsm_hops: match p.ttl {
            config::TtlMode::Gtsm { hops } => Some(hops),
            config::TtlMode::Fixed(_) => None,
        },
        import,
        export,
        max_prefixes: p.max_prefixes.as_ref().map(max_prefixes),
        dynamic: false,
    }
}

/// RFC 9494: on when `[graceful_restart] long_lived_stale_time` is set.
fn long_lived_stale_time(cfg: &Config) -> Option<u32> {
    let g = &cfg.graceful_restart;
    (g.enabled && g.long_lived_stale_time > 0).then_some(g.long_lived_stale_time)
}

fn max_prefixes(m: &config::MaxPrefixes) -> MaxPrefixes {
    MaxPrefixes {
        limit: m.limit,
        warning_percent: m.warning_percent,
        restart_after: (m.restart_after > 0).then(|| Duration::from_secs(m.restart_after as u64)),
    }
}

/// Settings for a peer accepted from a `[[dynamic_peers]]` range: passive,
/// named `Dynamic_<address>`, ending with its session.
pub fn dynamic_settings(
    cfg: &Config,
    policies: &[Arc<Policy>],
    d: &DynamicPeers,
    address: IpAddr,
    id: PeerId,
) -> PeerSettings {
    let ibgp = d.asn == cfg.bgp.asn;
    let (import, export) = chains(cfg, policies, &d.import, &d.export, !ibgp);
    let hold_time = d.hold_time.unwrap_or(cfg.bgp.hold_time);
    PeerSettings {
        id,
        name: d.peer_name(address),
        address,
        port: 179,
        asn: d.asn,
        local_asn: cfg.bgp.asn,
        router_id: cfg.bgp.router_id,
        passive: true,
        hold_time,
        keepalive_time: d.keepalive_time.unwrap_or(if d.hold_time.is_some() {
            hold_time / 3
        } else {
            cfg.bgp.keepalive_time
        }),
        connect_retry: Duration::from_secs(cfg.bgp.connect_retry_time.max(1) as u64),
        source_address: None,
        ttl: Some(if ibgp { 64 } else { 1 }),
        next_hop: NextHopMode::Auto,
        rr_client: d.route_reflector_client,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        add_path: None,
        allowas_in: 0,
        graceful_restart: cfg
            .graceful_restart
            .enabled
            .then_some(cfg.graceful_restart.restart_time),
        long_lived_stale_time: long_lived_stale_time(cfg),
        hostname: hostname(),
        shutdown_message: None,
        description: None,
        password: d.password.clone(),
        gtsm_hops: None,
        import,
        export,
        max_prefixes: d.max_prefixes.as_ref().map(max_prefixes),
        dynamic: true,
    }
}

pub fn originated(cfg: &Config) -> Vec<Originated> {
    cfg.originate
        .iter()
        .map(|o| Originated {
            prefix: o.prefix,
            blackhole: o.blackhole,
            communities: o.communities.iter().map(|c| Community(c.0)).collect(),
            large_communities: o
                .large_communities
                .iter()
                .map(|c| LargeCommunity {
                    global: c.global,
                    local1: c.local1,
                    local2: c.local2,
                })
                .collect(),
        })
        .collect()
}

pub fn fib_config(cfg: &Config) -> FibConfig {
    FibConfig {
        table: cfg.kernel.table,
        protocol: cfg.kernel.protocol,
        metric: cfg.kernel.metric,
        mode: match cfg.kernel.ipip {
            config::IpipMode::Always => Mode::IpipAlways,
            config::IpipMode::CrossSubnet => Mode::IpipCrossSubnet,
            config::IpipMode::Never => Mode::Plain,
        },
        tunnel_device: cfg.kernel.tunnel_device.clone(),
        ..FibConfig::default()
    }
}

/// How long a restarted ternd defers route selection at most (RFC 4724 §4.1
/// Selection_Deferral_Timer).
pub fn select_defer_time(cfg: &Config) -> Duration {
    Duration::from_secs(u64::from(cfg.graceful_restart.select_defer_time))
}

/// How often the graceful-restart state file is rewritten: a crash then
/// leaves a moment well within the restart time.
pub fn state_heartbeat(cfg: &Config) -> Duration {
    Duration::from_secs(u64::from(cfg.graceful_restart.restart_time / 4).clamp(1, 30))
}

/// The RIB's settings.
pub fn rib_config(cfg: &Config) -> RibConfig {
    RibConfig {
        local_asn: cfg.bgp.asn,
        router_id: cfg.bgp.router_id,
        cluster_id: cfg.bgp.cluster_id,
        allowed_prefixes: cfg.kernel.allowed_prefixes.clone(),
        kernel: cfg.kernel.enabled,
        stale_routes_time: Duration::from_secs(u64::from(cfg.graceful_restart.stale_routes_time)),
        enforce_first_as: cfg.bgp.enforce_first_as,
        deferral: None,
    }
}

/// Compiles the configuration's policies.
pub fn compile(policies: &[config::Policy]) -> Vec<Arc<Policy>> {
    policies
        .iter()
        .map(|p| {
            Arc::new(Policy {
                name: p.name.clone(),
                default: match p.default {
                    config::PolicyDefault::Accept => Verdict::Accept,
                    config::PolicyDefault::Reject => Verdict::Reject,
                },
                rules: p
                    .rules
                    .iter()
                    .map(|r| Rule {
                        prefix: r.prefix.clone(),
                        community: r.community.map(|c| Community(c.0)),
                        large_community: r.large_community.map(large),
                        as_path_contains: r.as_path_contains,
                        origin_as: r.origin_as,
                        neighbor: r.neighbor,
                        verdict: match r.action {
                            config::RuleAction::Accept => Some(Verdict::Accept),
                            config::RuleAction::Reject => Some(Verdict::Reject),
                            config::RuleAction::Next => None,
                        },
                        set_local_pref: r.set_local_pref,
                        set_med: r.set_med,
                        add_communities: r.add_communities.iter().map(|c| Community(c.0)).collect(),
                        remove_communities: r.remove_communities.iter().map(|c| Community(c.0)).collect(),
                        add_large_communities: r.add_large_communities.iter().map(|c| large(*c)).collect(),
                        remove_large_communities: r.remove_large_communities.iter().map(|c| large(*c)).collect(),
                        add_ext_communities: r
                            .add_ext_communities
                            .iter()
                            .map(|c| ExtCommunity(c.to_bytes()))
                            .collect(),
                        prepend: r.prepend,
                    })
                    .collect(),
            })
        })
        .collect()
}

fn large(c: config::LargeCommunity) -> LargeCommunity {
    LargeCommunity {
        global: c.global,
        local1: c.local1,
        local2: c.local2,
    }
}

/// The import and export chains of a session: named policies if given;
/// otherwise RFC 8212 (if enabled, for eBGP) or the safe defaults — import
/// only `allowed_prefixes` (when any are set), export everything.
pub fn chains(
    cfg: &config::Config,
    compiled: &[Arc<Policy>],
    import: &[String],
    export: &[String],
    ebgp: bool,
) -> (Chain, Chain) {
    let named = |names: &[String]| {
        Chain::Policies(
            names
                .iter()
                .filter_map(|n| compiled.iter().find(|p| &p.name == n).cloned())
                .collect(),
        )
    };
    let rfc8212 = cfg.bgp.rfc8212 && ebgp;
    let import = if !import.is_empty() {
        named(import)
    } else if rfc8212 {
        Chain::RejectAll
    } else if cfg.kernel.allowed_prefixes.is_empty() {
        Chain::AcceptAll
    } else {
        Chain::Within(Arc::new(cfg.kernel.allowed_prefixes.clone()))
    };
    let export = if !export.is_empty() {
        named(export)
    } else if rfc8212 {
        Chain::RejectAll
    } else {
        Chain::AcceptAll
    };
    (import, export)
}

#[cfg(test)]
mod policy_tests;

/// `[learn]` as fib-sync's filter (the globs were checked when the file was read).
pub(super) fn learn_filter(learn: &config::Learn) -> fib_sync::LearnFilter {
    fib_sync::LearnFilter::new(learn.protocols.clone(), learn.prefixes.clone(), &learn.interfaces).unwrap_or_else(|e| {
        tracing::error!("[learn] interfaces: {e}; learning nothing");
        fib_sync::LearnFilter::default()
    })
}
