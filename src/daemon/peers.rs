//! Starting and stopping peer sessions: configured peers, peers admitted
//! from `[[dynamic_peers]]` ranges (with their limit), and the TCP-MD5 keys
//! those peers need on the listening sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use config::{Config, EffectivePeer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::settings::{compile, dynamic_settings, peer_settings};
use crate::messages::PeerId;
use crate::registry::Registry;
use crate::route::policy::Policy;
use crate::session::{self, sockopt, LocalRestart, PeerHandle};

/// The supervisor's own state: what it needs to start peers. The running
/// peers themselves are in the [`Registry`].
pub(crate) struct Supervisor {
    pub(crate) registry: Arc<Registry>,
    next_peer_id: AtomicU32,
    /// Compiled `[[policy]]`s of the running configuration.
    pub(super) policies: RwLock<Vec<Arc<Policy>>>,
    /// Listening BGP sockets, for TCP-MD5 keys.
    pub(super) listeners: RwLock<Vec<Arc<TcpListener>>>,
    /// Our own graceful restart, as every session's OPEN announces it.
    pub(super) local_restart: Arc<LocalRestart>,
    /// A dynamic peer keeps its id across sessions, so what the RIB keeps
    /// for it (graceful-restart stale paths) is found again when it is back.
    dynamic_ids: RwLock<HashMap<IpAddr, PeerId>>,
    /// How many peers the registry held after ended dynamic peers were last
    /// forgotten (see `dynamic_peer`).
    pruned_len: AtomicUsize,
    /// Connections a dynamic peer's task received as its session ended; the
    /// listener hands them to a new session (`listener::serve_returned`).
    returned: mpsc::UnboundedSender<TcpStream>,
    /// One reload at a time (SIGHUP and `ternctl reload` may meet).
    pub(super) reload_lock: tokio::sync::Mutex<()>,
}

pub(super) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    /// The supervisor, and the receiving end of its returned connections.
    pub(super) fn new(
        registry: Arc<Registry>,
        cfg: &Config,
        local_restart: Arc<LocalRestart>,
    ) -> (Supervisor, mpsc::UnboundedReceiver<TcpStream>) {
        let (returned, returned_rx) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            registry,
            next_peer_id: AtomicU32::new(1),
            policies: RwLock::new(compile(&cfg.policies)),
            listeners: RwLock::new(Vec::new()),
            dynamic_ids: RwLock::new(HashMap::new()),
            pruned_len: AtomicUsize::new(0),
            local_restart,
            returned,
            reload_lock: tokio::sync::Mutex::new(()),
        };
        (supervisor, returned_rx)
    }

    fn next_id(&self) -> PeerId {
        PeerId(self.next_peer_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn start_peer(&self, cfg: &Config, p: &EffectivePeer) {
        if !p.enabled {
            return;
        }
        let settings = peer_settings(cfg, &read(&self.policies), p, self.next_id());
        self.set_listener_key(p.address, None, settings.password.as_deref());
        let handle = match self.registry.disabled(&p.name) {
            Some(_) => session::spawn_disabled(settings, self.registry.rib.clone(), &self.local_restart),
            None => session::spawn(settings, self.registry.rib.clone(), &self.local_restart),
        };
        self.registry.peers_mut().insert(p.address, handle);
        self.start_bfd(cfg, p);
    }

    /// Installs (or removes) the TCP-MD5 key for a peer address or range on
    /// every listening socket of its family, so its SYNs are verified (RFC 2385).
    pub(super) fn set_listener_key(&self, addr: IpAddr, prefix_len: Option<u8>, key: Option<&str>) {
        for listener in read(&self.listeners).iter() {
            let v6 = listener.local_addr().is_ok_and(|a| a.is_ipv6());
            if addr.is_ipv6() != v6 {
                continue;
            }
            let fd = listener.as_raw_fd();
            if let Err(e) = sockopt::set_md5(fd, v6, addr, prefix_len, key.map(str::as_bytes)) {
                if key.is_some() {
                    warn!("TCP-MD5 key for {addr} on a listener: {e}");
                }
            }
        }
    }

    /// GTSM on the listening sockets (RFC 5082 §3: the check covers the
    /// handshake too): see [`listener_min_ttl`]. Run at start and after a reload.
    pub(super) fn set_listener_min_ttl(&self, cfg: &Config) {
        for listener in read(&self.listeners).iter() {
            let v6 = listener.local_addr().is_ok_and(|a| a.is_ipv6());
            let min_ttl = listener_min_ttl(cfg, v6);
            let fd = listener.as_raw_fd();
            // An IPv6 listener also takes IPv4 connections (mapped): both checks.
            let set = match v6 {
                true => sockopt::set_min_ttl(fd, true, min_ttl).and(sockopt::set_min_ttl(fd, false, min_ttl)),
                false => sockopt::set_min_ttl(fd, false, min_ttl),
            };
            if let Err(e) = set {
                warn!("GTSM minimum TTL {min_ttl} on a listener: {e}");
            }
        }
    }

    /// The session for a connection from `addr`: a configured peer, or one
    /// admitted from a `[[dynamic_peers]]` range with room left.
    pub(super) fn session_for(&self, addr: IpAddr) -> Option<PeerHandle> {
        // A dynamic peer whose task has ended is not there any more.
        let running = self
            .registry
            .peer(addr)
            .filter(|h| !(h.settings.dynamic && h.cmd.is_closed()));
        running.or_else(|| self.dynamic_peer(addr))
    }

    fn dynamic_peer(&self, addr: IpAddr) -> Option<PeerHandle> {
        let cfg = self.registry.config();
        let (index, range) = cfg
            .dynamic_peers
            .iter()
            .enumerate()
            .find(|(_, d)| d.range.contains(addr))?;
        let mut peers = self.registry.peers_mut();
        // Forgetting ended dynamic peers and counting the range's walks every
        // peer: done only when the range may be full (fewer peers than the
        // limit, ended ones included, leave room) or the table doubled since
        // the last walk. A walk per admission made 10,000 clients dialling at
        // once quadratic.
        let limit = range.limit as usize;
        if peers.len() >= limit || peers.len() >= 2 * self.pruned_len.load(Ordering::Relaxed).max(32) {
            peers.retain(|_, h| !(h.settings.dynamic && h.cmd.is_closed()));
            self.pruned_len.store(peers.len(), Ordering::Relaxed);
            let in_range = peers
                .values()
                .filter(|h| h.settings.dynamic && range.range.contains(h.settings.address))
                .count();
            if in_range >= limit {
                warn!(
                    "refused connection from {addr}: dynamic range {} is full ({} peers)",
                    range.range, range.limit
                );
                return None;
            }
        }
        let id = *write(&self.dynamic_ids).entry(addr).or_insert_with(|| self.next_id());
        let settings = dynamic_settings(&cfg, &read(&self.policies), range, addr, id);
        info!(peer = %settings.name, "accepting dynamic peer from range {} (#{index})", range.range);
        // An operator disabled it: its task refuses the connection and ends.
        let disabled = self.registry.disabled(&settings.name).is_some();
        let handle = session::spawn_with_return(
            settings,
            self.registry.rib.clone(),
            &self.local_restart,
            Some(self.returned.clone()),
            disabled,
        );
        peers.insert(addr, handle.clone());
        drop(peers);
        if range.bfd {
            let cmd = handle.cmd.clone();
            self.start_dynamic_bfd(
                &cfg,
                handle.settings.name.clone(),
                addr,
                async move { cmd.closed().await },
            );
        }
        Some(handle)
    }
}

/// The lowest TTL a listener of this family may accept from every peer that
/// can connect to it: when all of them use GTSM, SYNs from farther away are
/// dropped before a handshake (RFC 5082 §3); 0 (no check) when any of them,
/// or a `[[dynamic_peers]]` range, does not. Accepted connections get their
/// own peer's check in any case (`session::conn::apply_ttl`).
pub(super) fn listener_min_ttl(cfg: &Config, v6: bool) -> u8 {
    // An IPv6 listener is dual-stack: every peer may connect to it.
    let reaches = |a: IpAddr| v6 || a.is_ipv4();
    if cfg.dynamic_peers.iter().any(|d| reaches(d.range.network())) {
        return 0;
    }
    let mut lowest: Option<u8> = None;
    for p in cfg.effective_peers().iter().filter(|p| p.enabled && reaches(p.address)) {
        match p.ttl {
            config::TtlMode::Gtsm { hops } => {
                let min = (256 - u16::from(hops.max(1))) as u8;
                lowest = Some(lowest.map_or(min, |l| l.min(min)));
            }
            config::TtlMode::Fixed(_) => return 0,
        }
    }
    lowest.unwrap_or(0)
}
