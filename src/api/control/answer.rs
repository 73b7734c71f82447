//! Answers ternctl requests from the registry: typed replies built from
//! status cells, RIB views and the kernel sync's snapshot.

use std::collections::HashMap;

use bgp_proto::fsm::State;
use fib_sync::{Desired, RouteKind, RouteState};

use super::proto::{
    FamilyCountsReply, FibCounters, FibReply, GracefulRestartReply, LearnedReply, PeerReply, RouteReply, ShutdownReply,
    StatusReply,
};
use crate::messages::{PeerId, RouteSource, RouteView};
use crate::registry::{Registry, StopMode};

/// `show peers`: every running peer, sorted by name.
pub async fn peers(registry: &Registry) -> Result<Vec<PeerReply>, String> {
    let summary = registry.rib_summary().await.map_err(|e| e.to_string())?;
    let bfd: HashMap<std::net::IpAddr, String> = (registry.bfd_sessions().await.into_iter())
        .map(|v| (v.remote, v.state))
        .collect();
    Ok(registry
        .statuses()
        .into_iter()
        .map(|(h, st)| {
            let (received, advertised) = summary.counts(h.settings.id);
            PeerReply {
                name: h.settings.name.clone(),
                address: h.settings.address,
                asn: h.settings.asn,
                state: st.state.as_str().to_string(),
                description: h.settings.description.clone(),
                uptime_secs: st.since.elapsed().as_secs(),
                since_unix: st.since_unix,
                capabilities: st.capabilities.clone(),
                keepalive_time: st.keepalive_time,
                disabled: st.disabled,
                last_notification: st.last_notification.clone(),
                last_error: st.last_error,
                hold_time: st.hold_time,
                peer_router_id: st.peer_router_id,
                peer_hostname: st.peer_hostname,
                families: st.families.iter().map(|f| f.to_string()).collect(),
                local_address: st.local_address,
                messages_in: st.messages_in,
                messages_out: st.messages_out,
                updates_in: st.updates_in,
                malformed_updates: st.malformed_updates,
                received,
                advertised,
                family_counts: (summary.family_counts(h.settings.id).iter())
                    .map(|c| FamilyCountsReply {
                        family: c.family.to_string(),
                        accepted: c.accepted,
                        filtered: c.filtered,
                        advertised: c.advertised,
                    })
                    .collect(),
                passive: h.settings.passive,
                graceful_restart: summary.stale_of(h.settings.id).map(|s| GracefulRestartReply {
                    state: if s.reconnected {
                        "waiting for End-of-RIB".into()
                    } else {
                        "restarting".into()
                    },
                    stale_routes: s.paths,
                    remaining_secs: s.remaining.as_secs(),
                }),
                bfd: bfd.get(&h.settings.address).cloned(),
            }
        })
        .collect())
}

/// Display names of the running peers, for route sources.
pub fn peer_names(registry: &Registry) -> HashMap<PeerId, String> {
    registry
        .peers()
        .into_iter()
        .map(|h| (h.settings.id, h.settings.name.clone()))
        .collect()
}

/// `show routes [PREFIX]`.
/// `show routes [PREFIX|ADDRESS]`: a prefix lists it and its more-specifics;
/// an address (no `/`) the longest prefix that contains it.
pub async fn routes(registry: &Registry, prefix: Option<String>) -> Result<Vec<RouteReply>, String> {
    let views = match prefix {
        Some(a) if !a.contains('/') => {
            let addr = a.parse().map_err(|e| format!("bad address {a:?}: {e}"))?;
            registry.rib_longest_match(addr).await
        }
        Some(p) => {
            let filter = p.parse().map_err(|e| format!("bad prefix {p:?}: {e}"))?;
            registry.rib_routes(Some(filter)).await
        }
        None => registry.rib_routes(None).await,
    }
    .map_err(|e| e.to_string())?;
    let names = peer_names(registry);
    Ok(views.iter().map(|v| route_reply(v, &names)).collect())
}

/// `show routes --peer NAME`: the paths received from it (stale ones too),
/// or with `advertised` the best paths of what it was sent.
pub async fn peer_routes(registry: &Registry, name: &str, advertised: bool) -> Result<Vec<RouteReply>, String> {
    let names = peer_names(registry);
    let id = (names.iter())
        .find(|(_, n)| n.as_str() == name)
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("no peer named {name:?} (see `ternctl show peers`)"))?;
    let views = match advertised {
        true => registry.rib_advertised(id).await,
        false => registry.rib_routes(None).await.map(|views| {
            let from = |v: &RouteView| matches!(v.source, RouteSource::Peer(p) | RouteSource::Stale(p) if p == id);
            views.into_iter().filter(from).collect()
        }),
    }
    .map_err(|e| e.to_string())?;
    Ok(views.iter().map(|v| route_reply(v, &names)).collect())
}

fn route_reply(v: &RouteView, names: &HashMap<PeerId, String>) -> RouteReply {
    let name = |id: &PeerId| names.get(id).cloned().unwrap_or_else(|| format!("peer #{id}"));
    let a = &v.attrs;
    RouteReply {
        prefix: v.prefix.to_string(),
        best: v.best,
        from: match &v.source {
            RouteSource::Local => "local".into(),
            RouteSource::Kernel(_) => "kernel".into(),
            RouteSource::Peer(id) => name(id),
            RouteSource::Stale(id) => format!("{} (stale)", name(id)),
        },
        next_hop: a.next_hop,
        as_path: a.as_path.to_string(),
        local_pref: a.local_pref,
        med: a.med,
        origin: a.origin.as_str().into(),
        communities: a.communities.iter().map(|c| c.to_string()).collect(),
        large_communities: a.large_communities.iter().map(|c| c.to_string()).collect(),
        originator_id: a.originator_id,
        cluster_list: a.cluster_list.clone(),
        path_id: v.path_id,
        age_secs: v.age.as_secs(),
        learned: match &v.source {
            RouteSource::Kernel(l) => Some(LearnedReply {
                protocol: l.protocol,
                devices: l.devices.clone(),
                blackhole: l.blackhole,
            }),
            _ => None,
        },
    }
}

/// `show fib`: the routes tern keeps in the kernel and their state.
pub async fn fib(registry: &Registry) -> Result<Vec<FibReply>, String> {
    let Some(fib) = &registry.fib else {
        return Ok(Vec::new());
    };
    let snapshot = fib.snapshot().await.map_err(|e| e.to_string())?;
    let mut out: Vec<FibReply> = snapshot
        .iter()
        .map(|r| {
            let (kind, gateways, devices) = match r.installed.as_ref().map(|k| &k.kind) {
                Some(RouteKind::Blackhole) => ("blackhole", vec![], vec![]),
                Some(RouteKind::Unicast(hops)) => (
                    "unicast",
                    hops.iter().filter_map(|h| h.gateway).collect(),
                    hops.iter()
                        .enumerate()
                        .map(|(i, h)| match r.devices.get(i).filter(|n| !n.is_empty()) {
                            Some(name) => name.clone(),
                            None => format!("ifindex {}", h.ifindex),
                        })
                        .collect(),
                ),
                Some(RouteKind::Other(_)) => ("other", vec![], vec![]),
                None => match &r.desired {
                    Some(Desired::Blackhole) => ("blackhole", vec![], vec![]),
                    Some(Desired::Via(v)) => ("unicast", v.iter().map(|h| h.gateway).collect(), vec![]),
                    None => ("none", vec![], vec![]),
                },
            };
            let state = match &r.state {
                RouteState::Installed => "installed".to_string(),
                RouteState::Queued => "queued".to_string(),
                RouteState::Unresolved(u) => format!("unresolved: {u}"),
                RouteState::Conflict { protocol } => format!("conflict with proto {protocol}"),
                RouteState::Failed { error, attempts } => format!("failed: {error:?} ({attempts} attempts)"),
                RouteState::Stale => "stale".to_string(),
            };
            FibReply {
                prefix: r.prefix.to_string(),
                kind: kind.into(),
                gateways,
                device: devices.join(","),
                state,
            }
        })
        .collect();
    out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    Ok(out)
}

/// `shutdown [--hard]`: asks the supervisor to stop; the reply goes out first.
pub fn shutdown(registry: &Registry, hard: bool) -> ShutdownReply {
    let mode = if hard { StopMode::Hard } else { StopMode::Graceful };
    registry.request_stop(mode);
    ShutdownReply {
        mode: if hard { "hard" } else { "graceful" }.into(),
    }
}

/// `show status`: the daemon summary.
pub async fn status(registry: &Registry) -> Result<StatusReply, String> {
    let summary = registry.rib_summary().await.map_err(|e| e.to_string())?;
    let cfg = registry.config();
    let statuses = registry.statuses();
    let established = statuses.iter().filter(|(_, st)| st.state == State::Established).count();
    Ok(StatusReply {
        version: env!("CARGO_PKG_VERSION").into(),
        router_id: cfg.bgp.router_id,
        asn: cfg.bgp.asn,
        uptime_secs: registry.started.elapsed().as_secs(),
        converged: summary.converged,
        peers_established: established,
        peers_configured: statuses.len(),
        prefixes: summary.prefixes,
        paths: summary.paths,
        attribute_sets: summary.attribute_sets,
        kernel_routes: summary.kernel_routes,
        learned_routes: summary.learned,
        selection_deferred: summary.deferring,
        fib: registry.fib.as_ref().map(|f| {
            let s = f.stats();
            FibCounters {
                installs: s.installs,
                deletes: s.deletes,
                conflicts: s.conflicts,
                errors: s.errors,
                resyncs: s.resyncs,
                restores: s.restores,
                pending: s.pending,
            }
        }),
    })
}
