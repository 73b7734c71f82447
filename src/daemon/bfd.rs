//! BFD for BGP peers (RFC 5882): which peers get a session and how
//! (single-hop or multihop, from which address), starting the BFD task when
//! a configuration first asks for it, applying reloads, and taking a BGP
//! session down when its BFD session fails.
//!
//! Choice (as BIRD): only a BFD session going from Up to Down takes BGP
//! down. BGP may connect again at once while BFD is still Down; since that
//! is not a new Up→Down transition, it does not flap the session again. A
//! peer that never runs BFD leaves BGP alone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use config::{Config, EffectivePeer, TtlMode};
use tracing::info;

use super::peers::Supervisor;
use crate::bfd::{BfdHandle, BfdNotice, BfdNotices, BfdPeer, BfdSettings, BfdTimers};
use crate::messages::PeerCmd;
use crate::registry::Registry;

/// Whether any peer, the mesh or a dynamic range runs BFD.
pub(super) fn uses_bfd(cfg: &Config) -> bool {
    cfg.peers.iter().any(|p| p.bfd && p.enabled)
        || cfg.mesh.as_ref().is_some_and(|m| m.bfd)
        || cfg.dynamic_peers.iter().any(|d| d.bfd)
}

/// BFD listens where BGP does: on the `[bgp] listen` addresses, and on
/// every address of both families when one of them is unspecified.
fn bind_addresses(cfg: &Config) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for l in &cfg.bgp.listen {
        let ips = match l.ip().is_unspecified() {
            true => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
            false => vec![l.ip()],
        };
        for ip in ips {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// The listen address of `remote`'s family, when BGP listens on one
/// specific address of it: the address this host uses for its peers.
fn listen_address(cfg: &Config, remote: IpAddr) -> Option<IpAddr> {
    let mut same_family = cfg
        .bgp
        .listen
        .iter()
        .map(|l| l.ip())
        .filter(|ip| ip.is_ipv4() == remote.is_ipv4());
    match (same_family.next(), same_family.next()) {
        (Some(ip), None) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// RFC 5883 multihop when the BGP session is: eBGP with `multihop` or GTSM
/// over more than one hop, or iBGP to an address on none of our subnets
/// (RFC 5881 §2 single-hop means directly connected).
fn multihop(p: &EffectivePeer) -> bool {
    match p.ttl {
        TtlMode::Gtsm { hops } => hops > 1,
        TtlMode::Fixed(ttl) if !p.ibgp => ttl > 1,
        TtlMode::Fixed(_) => !crate::sys::on_connected_subnet(p.address),
    }
}

/// The BFD session a configured (or admitted) peer gets.
pub(super) fn bfd_peer(cfg: &Config, p: &EffectivePeer) -> BfdPeer {
    BfdPeer {
        name: p.name.clone(),
        remote: p.address,
        local: p.source_address.or_else(|| listen_address(cfg, p.address)),
        multihop: multihop(p),
    }
}

/// The BFD peer of a dynamic peer admitted from a range (iBGP or one-hop eBGP).
pub(super) fn dynamic_bfd_peer(cfg: &Config, name: String, remote: IpAddr) -> BfdPeer {
    BfdPeer {
        name,
        remote,
        local: listen_address(cfg, remote),
        multihop: !crate::sys::on_connected_subnet(remote),
    }
}

/// RFC 5882 §4.3: a path failure takes the BGP session down at once; the
/// session task sends Cease and removes the peer's routes, then connects again.
async fn forward_notices(registry: Arc<Registry>, mut notices: BfdNotices) {
    while let Some(n) = notices.recv().await {
        if let BfdNotice::PathDown { remote, diag, .. } = n {
            if let Some(peer) = registry.peer(remote) {
                let _ = peer.cmd.send(PeerCmd::BfdDown(diag.to_string())).await;
            }
        }
    }
}

impl Supervisor {
    /// The BFD task, started the first time a configuration uses BFD.
    pub(super) fn bfd_for(&self, cfg: &Config) -> Option<BfdHandle> {
        if let Some(b) = self.registry.bfd() {
            return Some(b.clone());
        }
        if !uses_bfd(cfg) {
            return None;
        }
        let settings = BfdSettings::new(bind_addresses(cfg), BfdTimers::from(&cfg.bfd));
        let (handle, notices) = crate::bfd::spawn(settings);
        if self.registry.bfd.set(handle).is_ok() {
            tokio::spawn(forward_notices(self.registry.clone(), notices));
        }
        self.registry.bfd().cloned()
    }

    /// A BFD session for a peer with `bfd = true` (none for one without).
    pub(super) fn start_bfd(&self, cfg: &Config, p: &EffectivePeer) {
        if p.bfd && p.enabled {
            if let Some(b) = self.bfd_for(cfg) {
                b.add(bfd_peer(cfg, p));
            }
        }
    }

    /// A dynamic peer admitted from a range with `bfd = true` gets a BFD
    /// session for as long as its BGP session task runs.
    pub(super) fn start_dynamic_bfd(
        &self,
        cfg: &Config,
        name: String,
        remote: IpAddr,
        task_gone: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let Some(b) = self.bfd_for(cfg) else { return };
        b.add(dynamic_bfd_peer(cfg, name, remote));
        tokio::spawn(async move {
            task_gone.await;
            b.remove(remote);
        });
    }

    /// Reload (RFC 5880 §6.8.3): new `[bfd]` timers go to every session by
    /// a Poll Sequence; sessions of peers that lost `bfd = true` end with
    /// AdminDown, new ones start. BGP sessions are not touched.
    pub(super) fn reload_bfd(&self, old: &Config, new: &Config) -> bool {
        let wanted = |c: &Config| -> HashMap<IpAddr, EffectivePeer> {
            c.effective_peers()
                .into_iter()
                .filter(|p| p.bfd && p.enabled)
                .map(|p| (p.address, p))
                .collect()
        };
        let (before, after) = (wanted(old), wanted(new));
        let timers_changed = old.bfd != new.bfd;
        let dynamic_changed = self.reload_dynamic_bfd(old, new);
        if before.is_empty() && after.is_empty() && !timers_changed {
            return dynamic_changed;
        }
        let Some(b) = self.bfd_for(new) else {
            return timers_changed;
        };
        if timers_changed {
            info!("reload: [bfd] timers changed");
            b.set_timers(BfdTimers::from(&new.bfd));
        }
        for addr in before.keys().filter(|a| !after.contains_key(a)) {
            b.remove(*addr);
        }
        for (addr, p) in &after {
            let peer = bfd_peer(new, p);
            // A new local address or hop mode is a new session (ours is keyed by both).
            if before.get(addr).is_some_and(|old_p| bfd_peer(old, old_p) != peer) {
                b.remove(*addr);
            }
            b.add(peer);
        }
        timers_changed
            || dynamic_changed
            || before.len() != after.len()
            || before.keys().any(|a| !after.contains_key(a))
    }

    /// Running dynamic peers whose range's `bfd` changed: sessions start or end.
    fn reload_dynamic_bfd(&self, old: &Config, new: &Config) -> bool {
        let range_bfd = |c: &Config, a: IpAddr| {
            c.dynamic_peers
                .iter()
                .find(|d| d.range.contains(a))
                .is_some_and(|d| d.bfd)
        };
        let mut changed = false;
        for h in self
            .registry
            .peers()
            .into_iter()
            .filter(|h| h.settings.dynamic && !h.cmd.is_closed())
        {
            let addr = h.settings.address;
            match (range_bfd(old, addr), range_bfd(new, addr)) {
                (false, true) => {
                    let cmd = h.cmd.clone();
                    self.start_dynamic_bfd(new, h.settings.name.clone(), addr, async move { cmd.closed().await });
                }
                (true, false) => {
                    if let Some(b) = self.registry.bfd() {
                        b.remove(addr);
                    }
                }
                _ => continue,
            }
            changed = true;
        }
        changed
    }
}
