//! The RIB: Adj-RIB-In per peer (the paths each peer gave, kept in the
//! Loc-RIB entries), the Loc-RIB with the RFC 4271 §9.1.2 decision process,
//! and an Adj-RIB-Out per peer. One task owns it; peers and the daemon talk
//! to it by message. Outbound UPDATEs are encoded once for every peer that
//! gets the same bytes, and a slow peer's backlog is bounded: changes for it
//! coalesce per prefix until its queue has room again.
//!
//! The files split the RIB by concern: `import` (sessions, loop checks,
//! import policy, prefix limit), `graceful` (stale paths, RFC 4724 §4.2),
//! `decision` (RFC 4271 §9.1.2.2, ECMP), `export` (RFC 4271 §5.1, RFC 4456,
//! RFC 1997), `adj_out` (per-peer bitsets, queues, table dumps), `encode`
//! (shared UPDATE encodings), `kernel` (best paths to kernel changes),
//! `view` (typed answers to queries), `task` (the inbox loop).

mod adj_out;
mod bits;
#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod converged_tests;
mod decision;
mod deferral;
mod encode;
mod export;
#[cfg(test)]
mod flow_tests;
mod graceful;
mod import;
mod kernel;
#[cfg(test)]
mod kernel_tests;
mod learned;
mod loc;
mod nexthop;
#[cfg(test)]
mod packing_tests;
#[cfg(test)]
mod review_tests;
mod shared;
mod table;
mod task;
#[cfg(test)]
mod tests;
mod view;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use bgp_proto::Family;
use ipnetwork::IpNetwork;

use crate::messages::{Originated, PeerId, PeerInfo, RibMsg};
use crate::route::RouteAttrs;
use adj_out::PeerState;
use deferral::Deferring;
use encode::{EncodeCache, GroupCache};
use graceful::StalePeer;

pub use deferral::Deferral;
pub use task::{run, RibOutputs};

/// Settings the RIB applies to every route.
#[derive(Clone, Debug)]
pub struct RibConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// Set on a route reflector (RFC 4456 §7).
    pub cluster_id: Option<Ipv4Addr>,
    /// Only best paths inside these reach the kernel.
    pub allowed_prefixes: Vec<IpNetwork>,
    pub kernel: bool,
    /// Longest a returned peer's stale paths wait for its End-of-RIB (RFC 4724 §4.2).
    pub stale_routes_time: std::time::Duration,
    /// Reject eBGP paths whose first AS is not the peer's (RFC 4271 §6.3).
    pub enforce_first_as: bool,
    /// Set when this speaker restarted: defer selection (RFC 4724 §4.1).
    pub deferral: Option<Deferral>,
}

/// Hash maps keyed by what peers send: aHash is fast and keyed per process,
/// so crafted prefixes cannot force collisions.
pub(super) type Map<K, V> = HashMap<K, V, ahash::RandomState>;
pub(super) type Set<T> = HashSet<T, ahash::RandomState>;

/// Export results by (source attributes' address, source peer, target
/// export class, IPv4?), each beside the source set it was made from.
pub(super) type ExportCache = Map<(usize, PeerId, u64, bool), (Arc<RouteAttrs>, Option<Arc<RouteAttrs>>)>;

/// Added to `released_since_purge` when a session's paths go: forces an
/// attribute purge at the next flush.
pub(super) const FORCE_PURGE: usize = 1 << 20;

/// Least time between two idle purges: any release schedules one, so what
/// the last changes left unused goes too, and a stream of changes pays for
/// a walk over every set at most this often.
const PURGE_SPACING: std::time::Duration = std::time::Duration::from_millis(20);

/// Prefix ids covered per step of a table dump or a queue drain: one
/// encoded hand-over. Small, as a reflector holds one per client at once
/// (1,024 ids, about 15 KB each at 5,000 clients: 74 MiB of encoded bytes).
pub(super) const DUMP_SLICE: usize = 256;

/// The routing information base. See the module docs.
pub struct Rib {
    cfg: RibConfig,
    /// Boxed: the map's buckets stay small, so growing it at thousands of
    /// peers does not hold two tables of whole peer states at once.
    peers: Map<PeerId, Box<PeerState>>,
    /// Loc-RIB: every path of every prefix (most prefixes have one: kept inline).
    loc: loc::LocRib,
    interned: Set<Arc<RouteAttrs>>,
    /// Kernel changes owed and the pace they are handed over at.
    kernel_feed: kernel::KernelFeed,
    /// Export results (see [`ExportCache`]); entries go at a purge once no
    /// path uses their source, and with the source peer's session.
    export_cache: ExportCache,
    encode_cache: EncodeCache,
    /// Encoded announcements per attribute set, kept across flushes.
    group_cache: GroupCache,
    /// Hand-overs peers in the same state share; emptied by every flush and
    /// every message but `Writable` (anything else may change the RIB).
    shared: shared::SharedSlices,
    originated: Map<IpNetwork, Originated>,
    /// Kernel routes of other programs (`[learn]`); those outside every
    /// originated block are paths of [`KERNEL`](crate::messages::KERNEL).
    learned: Map<IpNetwork, Arc<crate::messages::Learned>>,
    /// Every peer that came up has sent End-of-RIB (or none is configured to).
    converged: bool,
    /// End-of-RIBs still owed: one per family of each established peer that
    /// has not sent it (counted, not recomputed over every peer at every
    /// End-of-RIB: that was 6 % of a 10,000-client reflector's CPU).
    eor_owed: usize,
    released_since_purge: usize,
    last_purge: std::time::Instant,
    /// Paths kept for peers in graceful restart (RFC 4724 §4.2), under ids of their own.
    stale_peers: Map<PeerId, StalePeer>,
    next_stale_id: PeerId,
    /// Our own restart's selection deferral, while it lasts.
    deferring: Option<Deferring>,
    /// Next hops seen, and whether the kernel side says they resolve.
    next_hops: Map<crate::messages::Gateway, bool>,
    /// Seen since the kernel side was last told.
    new_next_hops: Vec<crate::messages::Gateway>,
    /// Zero of the entries' `changed` clock.
    started: std::time::Instant,
}

pub(super) fn family_of(prefix: &IpNetwork) -> Family {
    match prefix {
        IpNetwork::V4(_) => Family::IPV4_UNICAST,
        IpNetwork::V6(_) => Family::IPV6_UNICAST,
    }
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        let deferring = cfg
            .deferral
            .as_ref()
            .map(|d| Deferring::new(d, std::time::Instant::now()));
        Rib {
            cfg,
            peers: Map::default(),
            loc: loc::LocRib::default(),
            interned: Set::default(),
            kernel_feed: kernel::KernelFeed::default(),
            export_cache: ExportCache::default(),
            encode_cache: EncodeCache::default(),
            group_cache: GroupCache::default(),
            shared: shared::SharedSlices::default(),
            originated: Map::default(),
            learned: Map::default(),
            converged: false,
            eor_owed: 0,
            released_since_purge: 0,
            last_purge: std::time::Instant::now(),
            stale_peers: Map::default(),
            next_stale_id: PeerId(u32::MAX - 1),
            deferring,
            next_hops: Map::default(),
            new_next_hops: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// Seconds since the RIB started, the clock of `Entry::changed`.
    fn clock(&self) -> u32 {
        self.started.elapsed().as_secs().try_into().unwrap_or(u32::MAX)
    }

    /// Session facts of a live peer or of a peer's stale paths.
    fn info(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers
            .get(&id)
            .map(|p| &p.info)
            .or_else(|| self.stale_peers.get(&id).map(|g| &g.info))
    }

    fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.interned.get(&attrs) {
            return a.clone();
        }
        let a = Arc::new(attrs);
        self.interned.insert(a.clone());
        a
    }

    /// Drops the attribute sets recent changes left unused (the RIB task
    /// calls it at [`Rib::purge_at`]), so a quiet RIB holds only what
    /// its routes use (attribute churn leaves nothing behind, review finding 9).
    pub fn purge_released(&mut self) {
        if self.released_since_purge > 0 {
            self.purge_interned();
        }
    }

    /// When [`Rib::purge_released`] should run: once attribute sets may
    /// have been released, not sooner than [`PURGE_SPACING`] after the last
    /// purge.
    pub fn purge_at(&self) -> Option<std::time::Instant> {
        (self.released_since_purge > 0).then(|| self.last_purge + PURGE_SPACING)
    }

    /// Drops attribute sets no route uses any more: first the cached exports
    /// of sources only the set and the cache hold, then cached encodings only
    /// the set, the cache and nothing else hold, then the sets themselves.
    fn purge_interned(&mut self) {
        self.export_cache.retain(|_, (source, _)| Arc::strong_count(source) > 2);
        self.encode_cache = EncodeCache::default();
        self.group_cache.retain_used();
        self.interned.retain(|a| Arc::strong_count(a) > 1);
        self.released_since_purge = 0;
        self.last_purge = std::time::Instant::now();
    }

    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Handles one message; call [`Rib::flush`] after a batch.
    pub fn handle(&mut self, msg: RibMsg) {
        if !matches!(msg, RibMsg::Writable(_) | RibMsg::KernelTaken(_)) {
            self.shared.clear();
        }
        match msg {
            RibMsg::PeerUp(info, out) => self.peer_up(info, out),
            RibMsg::PeerDown(id) => self.peer_down(id),
            RibMsg::PeerDownGraceful { peer, retention } => self.peer_down_graceful(peer, retention),
            RibMsg::Announce {
                peer,
                family,
                attrs,
                nlri,
            } => self.announce(peer, family, attrs, &nlri),
            RibMsg::Withdraw { peer, nlri, .. } => self.withdraw(peer, &nlri),
            RibMsg::EndOfRib(peer, family) => self.end_of_rib(peer, family),
            RibMsg::Originate(list) => self.set_originated(list),
            RibMsg::Learn(changes) => self.learn(changes),
            RibMsg::Writable(peer) => self.drain_backlog(peer),
            RibMsg::KernelTaken(chunks) => self.kernel_taken(chunks),
            RibMsg::SweepStaleKernelRoutes => self.sweep_stale_kernel_routes(),
            RibMsg::RouteRefresh(peer, family) => self.route_refresh(peer, family),
            RibMsg::PeerPolicy(peer, policy) => self.peer_policy(peer, policy),
            RibMsg::NextHops(changes) => self.next_hops_changed(changes),
            RibMsg::Advertised(peer, reply) => {
                let _ = reply.send(self.advertised_to(peer));
            }
            RibMsg::LongestMatch(addr, reply) => {
                let _ = reply.send(self.longest_match(addr));
            }
            RibMsg::Routes(filter, reply) => {
                let _ = reply.send(self.routes(filter));
            }
            RibMsg::Summary(reply) => {
                let _ = reply.send(self.summary());
            }
        }
    }
}
