//! `[mesh]`, `[[dynamic_peers]]` and `[[peer]]`, and the rule that peer
//! addresses and names are unique across them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use toml::Spanned;

use super::{address_name, resolve_timers, Validator};
use crate::model::*;
use crate::raw::*;
use crate::types::*;

/// Two networks of the same family share addresses.
fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

pub(super) fn validate_mesh(v: &mut Validator<'_>, m: &RawMesh, bgp: &Bgp) -> Mesh {
    let local_address = m
        .local_address
        .as_ref()
        .and_then(|a| v.ip(a, "mesh.local_address"))
        .unwrap_or(IpAddr::V4(bgp.router_id));
    let router_id = IpAddr::V4(bgp.router_id);
    let mut peers = Vec::new();
    let mut seen: HashMap<IpAddr, usize> = HashMap::new();
    for (i, p) in m.peers.iter().enumerate() {
        let key = format!("mesh.peers[{i}]");
        let Some(a) = v.ip(p, &key) else { continue };
        if a == local_address || a == router_id {
            v.err(
                p.span(),
                &key,
                format!("{a} is this host (mesh.local_address / bgp.router_id); remove it from the mesh"),
            );
            continue;
        }
        if let Some(j) = seen.insert(a, i) {
            v.err(p.span(), &key, format!("duplicate peer {a}: also mesh.peers[{j}]"));
            continue;
        }
        peers.push(a);
    }
    Mesh {
        peers,
        local_address,
        password: v.password(&m.password, "mesh.password"),
        port: v.int_or(&m.port, "mesh.port", 1, 65535, 179),
        bfd: m.bfd.unwrap_or(false),
    }
}

pub(super) fn validate_dynamic(
    v: &mut Validator<'_>,
    raw: &RawConfig,
    bgp: &Bgp,
    policies: &HashSet<String>,
) -> Vec<DynamicPeers> {
    let mut out: Vec<DynamicPeers> = Vec::new();
    let mut ranges: Vec<(usize, IpNetwork)> = Vec::new();
    for (i, d) in raw.dynamic_peers.iter().flatten().enumerate() {
        let d = d.get_ref();
        let k = format!("dynamic_peers[{i}]");
        let range = v.net(&d.range, &format!("{k}.range"));
        if let Some(r) = range {
            if let Some((j, other)) = ranges.iter().find(|(_, o)| overlaps(o, &r)) {
                v.err(
                    d.range.span(),
                    &format!("{k}.range"),
                    format!("{r} overlaps dynamic_peers[{j}].range {other}"),
                );
            }
            ranges.push((i, r));
        }
        let asn = match &d.asn {
            Some(a) => v.asn(a, &format!("{k}.asn")).unwrap_or(bgp.asn),
            None => bgp.asn,
        };
        let limit = v.int_or(&d.limit, &format!("{k}.limit"), 1, i64::from(u32::MAX), 5000);
        let route_reflector_client = v.rr_client(
            &d.route_reflector_client,
            &format!("{k}.route_reflector_client"),
            bgp.cluster_id,
            asn == bgp.asn,
        );
        let password = v.password(&d.password, &format!("{k}.password"));
        let hold_time = v.hold(&d.hold_time, &format!("{k}.hold_time"));
        let keepalive_time = v.opt_int(&d.keepalive_time, &format!("{k}.keepalive_time"), 0, 65535);
        let (h, ka) = resolve_timers(bgp, hold_time, keepalive_time);
        v.check_keepalive(&d.keepalive_time, &format!("{k}.keepalive_time"), h, ka);
        let import = v.policy_refs(&d.import, &format!("{k}.import"), policies);
        let export = v.policy_refs(&d.export, &format!("{k}.export"), policies);
        let max_prefixes = v.max_prefixes(&d.max_prefixes, &format!("{k}.max_prefixes"));
        if let Some(range) = range {
            out.push(DynamicPeers {
                range,
                asn,
                limit,
                route_reflector_client,
                password,
                hold_time,
                keepalive_time,
                import,
                export,
                max_prefixes,
                bfd: d.bfd.unwrap_or(false),
            });
        }
    }
    out
}

pub(super) fn validate_peers(
    v: &mut Validator<'_>,
    raw: &RawConfig,
    bgp: &Bgp,
    policies: &HashSet<String>,
) -> Vec<Peer> {
    let mut out = Vec::new();
    for (i, p) in raw.peer.iter().flatten().enumerate() {
        let p = p.get_ref();
        let k = format!("peer[{i}]");
        let key = |f: &str| format!("{k}.{f}");
        let address = v.ip(&p.address, &key("address"));
        let asn = v.asn(&p.asn, &key("asn"));
        let port = v.int_or(&p.port, &key("port"), 1, 65535, 179);
        let local_asn = match &p.local_asn {
            Some(a) => v.asn(a, &key("local_asn")).unwrap_or(bgp.asn),
            None => bgp.asn,
        };
        let ibgp = asn == Some(local_asn);
        let name = match (&p.name, address) {
            (Some(n), _) => {
                v.name(n, &key("name"));
                n.get_ref().clone()
            }
            (None, Some(a)) => address_name("Peer_", &a),
            (None, None) => String::new(),
        };
        let password = v.password(&p.password, &key("password"));
        let ttl_security = p.ttl_security.as_ref().is_some_and(|t| *t.get_ref());
        let ttl_security_hops = v.int_or(&p.ttl_security_hops, &key("ttl_security_hops"), 1, 254, 1);
        let multihop = v.opt_int(&p.multihop, &key("multihop"), 1, 255);
        if let (true, Some(m)) = (ttl_security, &p.multihop) {
            // RFC 5082 §3: GTSM fixes the outgoing TTL at 255.
            v.err(
                m.span(),
                &key("multihop"),
                "multihop cannot be combined with ttl_security (GTSM sends TTL 255, RFC 5082 §3); use ttl_security_hops",
            );
        }
        let source_address = p.source_address.as_ref().and_then(|s| v.ip(s, &key("source_address")));
        if let (Some(s), Some(a), Some(raw_s)) = (source_address, address, &p.source_address) {
            if s.is_ipv4() != a.is_ipv4() {
                v.err(
                    raw_s.span(),
                    &key("source_address"),
                    format!("{s} is not the same address family as the peer address {a}"),
                );
            }
        }
        let next_hop = v.keyword(
            &p.next_hop,
            &key("next_hop"),
            NextHop::parse_keyword,
            NextHop::NAMES,
            NextHop::Auto,
        );
        let route_reflector_client = v.rr_client(
            &p.route_reflector_client,
            &key("route_reflector_client"),
            bgp.cluster_id,
            ibgp || asn.is_none(),
        );
        let hold_time = v.hold(&p.hold_time, &key("hold_time"));
        let keepalive_time = v.opt_int(&p.keepalive_time, &key("keepalive_time"), 0, 65535);
        let (h, ka) = resolve_timers(bgp, hold_time, keepalive_time);
        v.check_keepalive(&p.keepalive_time, &key("keepalive_time"), h, ka);
        let allowas_in = v.int_or(&p.allowas_in, &key("allowas_in"), 0, 10, 0);
        let families = match &p.families {
            None => vec![Family::Ipv4, Family::Ipv6],
            Some(list) => {
                let mut fams = Vec::new();
                if list.get_ref().is_empty() {
                    v.err(list.span(), &key("families"), "at least one family is needed");
                }
                for (j, f) in list.get_ref().iter().enumerate() {
                    let fk = format!("{k}.families[{j}]");
                    match Family::parse_keyword(f.get_ref()) {
                        Some(x) if fams.contains(&x) => v.err(f.span(), &fk, format!("family `{x}` listed twice")),
                        Some(x) => fams.push(x),
                        None => v.err(
                            f.span(),
                            &fk,
                            format!("`{}` is not one of: {}", f.get_ref(), Family::NAMES.join(", ")),
                        ),
                    }
                }
                fams
            }
        };
        let add_path = v.keyword(
            &p.add_path,
            &key("add_path"),
            AddPath::parse_keyword,
            AddPath::NAMES,
            AddPath::None,
        );
        let import = v.policy_refs(&p.import, &key("import"), policies);
        let export = v.policy_refs(&p.export, &key("export"), policies);
        let shutdown_message = p.shutdown_message.as_ref().map(|s| {
            // RFC 8203 §2: the Shutdown Communication is at most 255 octets of UTF-8.
            if s.get_ref().len() > 255 {
                v.err(
                    s.span(),
                    &key("shutdown_message"),
                    format!(
                        "shutdown message is {} bytes; at most 255 (RFC 8203 §2)",
                        s.get_ref().len()
                    ),
                );
            }
            s.get_ref().clone()
        });
        let description = p.description.as_ref().map(|s| {
            if s.get_ref().len() > 255 {
                v.err(
                    s.span(),
                    &key("description"),
                    format!("description is {} bytes; at most 255", s.get_ref().len()),
                );
            }
            s.get_ref().clone()
        });
        let max_prefixes = v.max_prefixes(&p.max_prefixes, &key("max_prefixes"));
        if let (Some(address), Some(asn)) = (address, asn) {
            out.push(Peer {
                name,
                address,
                asn,
                port,
                local_asn,
                passive: p.passive.unwrap_or(false),
                enabled: p.enabled.unwrap_or(true),
                password,
                ttl_security,
                ttl_security_hops,
                multihop,
                source_address,
                next_hop,
                route_reflector_client,
                hold_time,
                keepalive_time,
                allowas_in,
                families,
                add_path,
                import,
                export,
                shutdown_message,
                description,
                max_prefixes,
                bfd: p.bfd.unwrap_or(false),
            });
        }
    }
    out
}

/// Peer addresses and names must be unique across `[[peer]]` and `[mesh]`.
pub(super) fn check_peer_uniqueness(v: &mut Validator<'_>, raw: &RawConfig, mesh: Option<&Mesh>) {
    let raw_peers: Vec<&RawPeer> = raw.peer.iter().flatten().map(Spanned::get_ref).collect();
    let mut addrs: HashMap<IpAddr, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, rp) in raw_peers.iter().enumerate() {
        let Ok(addr) = rp.address.get_ref().parse::<IpAddr>() else {
            continue;
        };
        if let Some(j) = addrs.insert(addr, i) {
            v.err(
                rp.address.span(),
                &format!("peer[{i}].address"),
                format!("duplicate peer address {addr}: also peer[{j}].address"),
            );
        }
        let name = match &rp.name {
            Some(n) => n.get_ref().clone(),
            None => address_name("Peer_", &addr),
        };
        let span = rp.name.as_ref().map_or(rp.address.span(), Spanned::span);
        let key = if rp.name.is_some() {
            format!("peer[{i}].name")
        } else {
            format!("peer[{i}].address")
        };
        if let Some(j) = names.insert(name.clone(), i) {
            v.err(
                span.clone(),
                &key,
                format!("duplicate peer name `{name}`: also peer[{j}]"),
            );
        }
        if name.starts_with("Mesh_") {
            let clash = raw
                .mesh
                .iter()
                .flat_map(|m| m.get_ref().peers.iter())
                .filter_map(|s| s.get_ref().parse::<IpAddr>().ok())
                .any(|a| address_name("Mesh_", &a) == name);
            if clash {
                v.err(span, &key, format!("duplicate peer name `{name}`: also a [mesh] peer"));
            }
        }
    }
    if let (Some(m), Some(rm)) = (mesh, raw.mesh.as_ref()) {
        for (i, p) in rm.get_ref().peers.iter().enumerate() {
            let Ok(a) = p.get_ref().parse::<IpAddr>() else {
                continue;
            };
            if !m.peers.contains(&a) {
                continue; // already reported (self or duplicate within the mesh)
            }
            if let Some(j) = addrs.get(&a) {
                v.err(
                    p.span(),
                    &format!("mesh.peers[{i}]"),
                    format!("duplicate peer {a}: also peer[{j}].address"),
                );
            }
        }
    }
}
