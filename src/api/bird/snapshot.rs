//! The daemon as the BIRD views need it: peer rows from status cells, route
//! rows from typed RIB views (a stale graceful-restart path stays with its
//! peer's protocol, as in BIRD), channel counts and `show status` facts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use ipnetwork::IpNetwork;

use super::parse::Table;
use super::protocols::{ChannelCounts, PeerRow};
use super::routes::{BgpRoute, RouteRow};
use super::status::StatusView;
use super::time::wall_clock;
use crate::messages::{PeerId, RibSummary, RouteSource, RouteView};
use crate::registry::{Registry, QUERY_TIMEOUT};
use crate::session::PeerHandle;

/// One row per running peer, keyed by its id, from its status cell.
pub(super) fn peer_rows(
    handles: &[PeerHandle],
    summary: Option<&RibSummary>,
    now: SystemTime,
) -> Vec<(PeerId, PeerRow)> {
    handles
        .iter()
        .map(|h| {
            let st = h.status();
            let s = &h.settings;
            let (received, advertised) = summary.map_or((0, 0), |sm| sm.counts(s.id));
            let since = wall_clock(st.since.elapsed(), now);
            let row = PeerRow {
                name: s.name.clone(),
                address: s.address,
                asn: s.asn,
                local_asn: s.local_asn,
                state: st.state,
                since,
                passive: s.passive,
                last_error: st.last_error.clone(),
                hold_time: st.hold_time,
                keepalive_time: s.keepalive_time,
                neighbor_id: st.peer_router_id.map(|i| i.to_string()),
                local_address: st.local_address.map(|a| a.to_string()),
                families: s.families.clone(),
                negotiated: st.families.iter().map(|f| f.to_string()).collect(),
                graceful_restart: s.graceful_restart,
                add_path: s.add_path,
                hostname: s.hostname.clone(),
                rr_client: s.rr_client,
                description: s.description.clone(),
                received,
                advertised,
            };
            (s.id, row)
        })
        .collect()
}

/// Devices of installed kernel routes: (prefix, gateway) -> interface name.
pub(super) async fn route_devices(registry: &Registry) -> HashMap<(IpNetwork, IpAddr), String> {
    let mut out = HashMap::new();
    let Some(fib) = &registry.fib else {
        return out;
    };
    let Ok(Ok(snapshot)) = tokio::time::timeout(QUERY_TIMEOUT, fib.snapshot()).await else {
        return out;
    };
    for r in snapshot {
        if let Some(fib_sync::RouteKind::Unicast(hops)) = r.installed.as_ref().map(|k| &k.kind) {
            for (h, name) in hops.iter().zip(&r.devices) {
                if let Some(gw) = h.gateway.filter(|_| !name.is_empty()) {
                    out.insert((r.prefix, gw), name.clone());
                }
            }
        }
    }
    out
}

/// The peer a path came from: on its current session, or stale from an ended one.
fn source_peer(source: &RouteSource) -> Option<PeerId> {
    match source {
        RouteSource::Local | RouteSource::Kernel(_) => None,
        RouteSource::Peer(id) | RouteSource::Stale(id) => Some(*id),
    }
}

/// `show route` rows: our own blocks as `static1`, learned paths under
/// their peer's protocol name.
pub(super) fn route_rows(
    views: &[RouteView],
    peers: &[(PeerId, PeerRow)],
    devices: &HashMap<(IpNetwork, IpAddr), String>,
    blackholes: &[IpNetwork],
    started: SystemTime,
) -> Vec<RouteRow> {
    let by_id: HashMap<PeerId, &PeerRow> = peers.iter().map(|(id, row)| (*id, row)).collect();
    views
        .iter()
        .map(|v| {
            let net = v.prefix;
            let peer = source_peer(&v.source).and_then(|id| by_id.get(&id).copied());
            let Some(peer) = peer else {
                if let Some(id) = source_peer(&v.source) {
                    return bgp_row(v, &format!("peer_{id}"), None, started, devices);
                }
                let learned = match &v.source {
                    RouteSource::Kernel(l) => Some(l.clone()),
                    _ => None,
                };
                let blackhole = match &learned {
                    Some(l) => l.blackhole,
                    None => blackholes.contains(&net),
                };
                return RouteRow {
                    net,
                    best: v.best,
                    proto: if learned.is_some() { "kernel1" } else { "static1" }.into(),
                    since: started,
                    kind: if blackhole { "blackhole" } else { "unicast" },
                    bgp: None,
                    learned,
                };
            };
            bgp_row(v, &peer.name, Some(peer.address), peer.since, devices)
        })
        .collect()
}

fn bgp_row(
    v: &RouteView,
    proto: &str,
    from: Option<IpAddr>,
    since: SystemTime,
    devices: &HashMap<(IpNetwork, IpAddr), String>,
) -> RouteRow {
    let a = &v.attrs;
    RouteRow {
        net: v.prefix,
        best: v.best,
        proto: proto.to_string(),
        since,
        kind: "unicast",
        learned: None,
        bgp: Some(BgpRoute {
            next_hop: a.next_hop.map(|n| n.to_string()),
            from,
            device: a.next_hop.and_then(|nh| devices.get(&(v.prefix, nh)).cloned()),
            as_path: a.as_path.to_string(),
            origin: a.origin.as_str().into(),
            local_pref: a.local_pref,
            med: a.med,
            communities: a.communities.iter().map(|c| c.to_string()).collect(),
            large_communities: a.large_communities.iter().map(|c| c.to_string()).collect(),
            originator_id: a.originator_id.map(|o| o.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
        }),
    }
}

/// Per-peer, per-table counts of imported and preferred (best) paths.
pub(super) fn channel_counts(views: &[RouteView], peers: &[(PeerId, PeerRow)]) -> ChannelCounts {
    let names: HashMap<PeerId, &str> = peers.iter().map(|(id, row)| (*id, row.name.as_str())).collect();
    let mut out = ChannelCounts::default();
    for v in views {
        let table = Table::of(&v.prefix);
        let name = match source_peer(&v.source) {
            Some(id) => names.get(&id).map_or_else(|| format!("peer_{id}"), |n| n.to_string()),
            None => "static1".to_string(),
        };
        let e = out.imported.entry((name, table)).or_default();
        e.0 += 1;
        if v.best {
            e.1 += 1;
            *out.best.entry(table).or_default() += 1;
        }
    }
    out
}

/// What `show status` shows, graceful-restart recovery included.
pub(super) async fn status_view(registry: &Registry) -> StatusView {
    let now = SystemTime::now();
    let cfg = registry.config();
    let started = wall_clock(registry.started.elapsed(), now);
    StatusView {
        router_id: cfg.bgp.router_id.to_string(),
        hostname: crate::sys::hostname(),
        now,
        started,
        reconfigured: started,
        gr: registry.recovery().await,
    }
}
