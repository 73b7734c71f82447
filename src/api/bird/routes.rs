//! `show route [all] [count] …`: BIRD's route list and attribute lines.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use ipnetwork::IpNetwork;

use super::code;
use super::parse::{NetFilter, RouteArgs, Table};
use super::reply::Reply;
use super::time::short_time;

/// One path as `show route` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRow {
    pub net: IpNetwork,
    pub best: bool,
    /// Protocol name: the peer, or `static1` for our own blocks.
    pub proto: String,
    pub since: SystemTime,
    /// `unicast` or `blackhole`.
    pub kind: &'static str,
    pub bgp: Option<BgpRoute>,
    /// A route learned from the kernel (`[learn]`), shown as BIRD shows its
    /// kernel protocol's learned routes (`kernel1`).
    pub learned: Option<std::sync::Arc<crate::messages::Learned>>,
}

/// The BGP part of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRoute {
    pub next_hop: Option<String>,
    /// The peer's address, shown as `from` when it differs from the next hop.
    pub from: Option<IpAddr>,
    pub device: Option<String>,
    pub as_path: String,
    pub origin: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
}

/// `[AS65001i]`: the origin AS (last of the path) and the origin as one letter.
fn origin_info(b: &BgpRoute) -> String {
    let last = b
        .as_path
        .split(|c: char| c.is_whitespace() || "{}()[]".contains(c))
        .rfind(|s| !s.is_empty());
    let o = match b.origin.as_str() {
        "IGP" => 'i',
        "EGP" => 'e',
        _ => '?',
    };
    match last {
        Some(a) => format!("[AS{a}{o}]"),
        None => format!("[{o}]"),
    }
}

/// `(a,b)` for a community written `a:b`; large ones `(a, b, c)`.
fn bird_community(c: &str, large: bool) -> String {
    let parts: Vec<&str> = c.split(':').collect();
    if parts.len() >= 2 && parts.iter().all(|p| p.parse::<u32>().is_ok()) {
        if large {
            format!("({})", parts.join(", "))
        } else {
            format!("({})", parts.join(","))
        }
    } else {
        c.to_string()
    }
}

fn route_lines(r: &mut Reply, rt: &RouteRow, first_of_net: bool, all: bool, now: SystemTime) {
    let net = if first_of_net {
        rt.net.to_string()
    } else {
        String::new()
    };
    let star = if rt.best { " *" } else { "" };
    let time = short_time(rt.since, now);
    match &rt.bgp {
        Some(b) => {
            let from = match (b.from, &b.next_hop) {
                (Some(f), Some(nh)) if f.to_string() != *nh => format!(" from {f}"),
                _ => String::new(),
            };
            r.line(
                code::ROUTE_LIST,
                format!(
                    "{net:<20} {} [{} {time}{from}]{star} (100/0) {}",
                    rt.kind,
                    rt.proto,
                    origin_info(b)
                ),
            );
            if let Some(nh) = &b.next_hop {
                match &b.device {
                    Some(d) => r.line(code::ROUTE_LIST, format!("\tvia {nh} on {d}")),
                    None => r.line(code::ROUTE_LIST, format!("\tvia {nh}")),
                }
            }
            if all {
                r.line(code::ROUTE_DETAILS, "\tType: BGP univ");
                r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.origin: {}", b.origin));
                r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.as_path: {}", b.as_path));
                if let Some(nh) = &b.next_hop {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.next_hop: {nh}"));
                }
                if let Some(m) = b.med {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.med: {m}"));
                }
                if let Some(lp) = b.local_pref {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.local_pref: {lp}"));
                }
                if !b.communities.is_empty() {
                    let c: Vec<String> = b.communities.iter().map(|c| bird_community(c, false)).collect();
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.community: {}", c.join(" ")));
                }
                if let Some(o) = &b.originator_id {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.originator_id: {o}"));
                }
                if !b.cluster_list.is_empty() {
                    r.line(
                        code::ROUTE_ATTRIBUTES,
                        format!("\tBGP.cluster_list: {}", b.cluster_list.join(" ")),
                    );
                }
                if !b.large_communities.is_empty() {
                    let c: Vec<String> = b.large_communities.iter().map(|c| bird_community(c, true)).collect();
                    r.line(
                        code::ROUTE_ATTRIBUTES,
                        format!("\tBGP.large_community: {}", c.join(" ")),
                    );
                }
            }
        }
        None => match &rt.learned {
            Some(l) => {
                r.line(
                    code::ROUTE_LIST,
                    format!("{net:<20} {} [{} {time}]{star} (10)", rt.kind, rt.proto),
                );
                for d in &l.devices {
                    r.line(code::ROUTE_LIST, format!("\tdev {d}"));
                }
                if all {
                    r.line(code::ROUTE_DETAILS, "\tType: inherit univ");
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tKernel.source: {}", l.protocol));
                }
            }
            None => {
                r.line(
                    code::ROUTE_LIST,
                    format!("{net:<20} {} [{} {time}]{star} (200)", rt.kind, rt.proto),
                );
                if all {
                    r.line(code::ROUTE_DETAILS, "\tType: static univ");
                }
            }
        },
    }
}

/// Does `rt` pass the filters other than the table?
fn route_matches(rt: &RouteRow, a: &RouteArgs) -> bool {
    (!a.primary || rt.best) && a.protocol.as_ref().is_none_or(|p| *p == rt.proto)
}

/// Renders `show route ...` over every path in `routes`.
pub fn render_routes(routes: &[RouteRow], a: &RouteArgs, now: SystemTime) -> Reply {
    // Group by table, then prefix (sorted), best path first.
    let mut tables: BTreeMap<Table, BTreeMap<IpNetwork, Vec<&RouteRow>>> = BTreeMap::new();
    for rt in routes {
        tables
            .entry(Table::of(&rt.net))
            .or_default()
            .entry(rt.net)
            .or_default()
            .push(rt);
    }
    for nets in tables.values_mut() {
        for paths in nets.values_mut() {
            paths.sort_by_key(|p| !p.best);
        }
    }
    // Prefix selection: exact, or the longest prefix covering the target.
    let wanted: Option<IpNetwork> = match a.net {
        None => None,
        Some(NetFilter::Exact(n)) => {
            let found = tables.get(&Table::of(&n)).is_some_and(|t| t.contains_key(&n));
            if !found {
                return Reply::single(code::NETWORK_NOT_FOUND, "Network not found");
            }
            Some(n)
        }
        Some(NetFilter::For(target)) => {
            let best = tables.get(&Table::of(&target)).and_then(|t| {
                t.keys()
                    .filter(|n| n.prefix() <= target.prefix() && n.contains(target.network()))
                    .max_by_key(|n| n.prefix())
                    .copied()
            });
            match best {
                Some(n) => Some(n),
                None => return Reply::single(code::NETWORK_NOT_FOUND, "Network not found"),
            }
        }
    };
    let shown_tables: Vec<Table> = match (a.table, wanted) {
        (Some(t), _) => vec![t],
        (None, Some(n)) => vec![Table::of(&n)],
        (None, None) => vec![Table::Master4, Table::Master6],
    };
    let mut r = Reply::new();
    if a.count {
        let mut total = (0usize, 0usize, 0usize);
        let mut listed = 0;
        for t in &shown_tables {
            let nets = tables.get(t);
            let all_paths: usize = nets.map(|n| n.values().map(Vec::len).sum()).unwrap_or(0);
            let all_nets = nets.map(BTreeMap::len).unwrap_or(0);
            let shown: usize = nets
                .map(|n| {
                    n.iter()
                        .filter(|(net, _)| wanted.is_none_or(|w| w == **net))
                        .map(|(_, p)| p.iter().filter(|rt| route_matches(rt, a)).count())
                        .sum()
                })
                .unwrap_or(0);
            // A protocol filter only looks at the tables the protocol feeds.
            if a.protocol.is_some() && a.table.is_none() && shown == 0 && *t == Table::Master6 {
                continue;
            }
            r.line(
                code::ROUTE_LIST,
                format!(
                    "{shown} of {all_paths} routes for {all_nets} networks in table {}",
                    t.name()
                ),
            );
            total = (total.0 + shown, total.1 + all_paths, total.2 + all_nets);
            listed += 1;
        }
        if listed > 1 {
            r.finish(
                code::ROUTE_COUNT_TOTAL,
                format!(
                    "Total: {} of {} routes for {} networks in {listed} tables",
                    total.0, total.1, total.2
                ),
            );
        }
        return r;
    }
    for t in &shown_tables {
        let Some(nets) = tables.get(t) else {
            if a.table.is_some() {
                r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
            }
            continue;
        };
        let mut header = a.table.is_some();
        if header {
            r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
        }
        for (net, paths) in nets {
            if wanted.is_some_and(|w| w != *net) {
                continue;
            }
            let mut first = true;
            for rt in paths.iter().filter(|rt| route_matches(rt, a)) {
                if !header {
                    r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
                    header = true;
                }
                route_lines(&mut r, rt, first, a.all, now);
                first = false;
            }
        }
    }
    r
}
