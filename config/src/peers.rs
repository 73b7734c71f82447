//! Resolving `[[peer]]` and `[mesh]` into one list of fully specified sessions.

use std::net::IpAddr;

use crate::model::{Config, DynamicPeers, EffectivePeer, PeerOrigin, TtlMode};
use crate::types::{AddPath, Family, NextHop};
use crate::validate::{address_name, resolve_timers};

/// Default outgoing TTL towards an iBGP neighbor without `multihop` (like BIRD's `multihop`).
const IBGP_TTL: u8 = 64;

impl Config {
    /// The explicit peers followed by one iBGP peer per `[mesh]` entry, all defaults resolved.
    ///
    /// Mesh peers are named `Mesh_<address>`; of a mesh pair, the host with the higher
    /// address is passive (as Calico does), so exactly one side connects.
    pub fn effective_peers(&self) -> Vec<EffectivePeer> {
        let mut out = Vec::with_capacity(self.peers.len() + self.mesh.as_ref().map_or(0, |m| m.peers.len()));
        for (i, p) in self.peers.iter().enumerate() {
            let ibgp = p.asn == p.local_asn;
            let (hold_time, keepalive_time) = resolve_timers(&self.bgp, p.hold_time, p.keepalive_time);
            let ttl = if p.ttl_security {
                TtlMode::Gtsm {
                    hops: p.ttl_security_hops,
                }
            } else {
                TtlMode::Fixed(p.multihop.unwrap_or(if ibgp { IBGP_TTL } else { 1 }))
            };
            out.push(EffectivePeer {
                name: p.name.clone(),
                origin: PeerOrigin::Explicit(i),
                address: p.address,
                port: p.port,
                asn: p.asn,
                local_asn: p.local_asn,
                ibgp,
                passive: p.passive,
                enabled: p.enabled,
                password: p.password.clone(),
                ttl,
                source_address: p.source_address,
                next_hop: p.next_hop,
                route_reflector_client: p.route_reflector_client,
                hold_time,
                keepalive_time,
                allowas_in: p.allowas_in,
                families: p.families.clone(),
                add_path: p.add_path,
                import: p.import.clone(),
                export: p.export.clone(),
                shutdown_message: p.shutdown_message.clone(),
                description: p.description.clone(),
                max_prefixes: p.max_prefixes.clone(),
                bfd: p.bfd,
            });
        }
        if let Some(mesh) = &self.mesh {
            for (i, &address) in mesh.peers.iter().enumerate() {
                let same_family = mesh.local_address.is_ipv4() == address.is_ipv4();
                out.push(EffectivePeer {
                    name: address_name("Mesh_", &address),
                    origin: PeerOrigin::Mesh(i),
                    address,
                    port: mesh.port,
                    asn: self.bgp.asn,
                    local_asn: self.bgp.asn,
                    ibgp: true,
                    passive: mesh.local_address > address,
                    enabled: true,
                    password: mesh.password.clone(),
                    ttl: TtlMode::Fixed(IBGP_TTL),
                    source_address: same_family.then_some(mesh.local_address),
                    // Calico's mesh template uses `next hop self`.
                    next_hop: NextHop::SelfAddr,
                    route_reflector_client: false,
                    hold_time: self.bgp.hold_time,
                    keepalive_time: self.bgp.keepalive_time,
                    allowas_in: 0,
                    families: vec![Family::Ipv4, Family::Ipv6],
                    add_path: AddPath::None,
                    import: Vec::new(),
                    export: Vec::new(),
                    shutdown_message: None,
                    description: None,
                    max_prefixes: None,
                    bfd: mesh.bfd,
                });
            }
        }
        out
    }
}

impl DynamicPeers {
    /// The name of a session accepted from this range: `Dynamic_<address>`
    /// (named like `Mesh_` and `Peer_` sessions, in one place).
    pub fn peer_name(&self, address: IpAddr) -> String {
        address_name("Dynamic_", &address)
    }
}
