//! The RIB: Adj-RIB-In per peer (the paths each peer gave, kept in the
//! Loc-RIB entries), the Loc-RIB with the RFC 4271 §9.1.2 decision process,
//! and an Adj-RIB-Out per peer. One task owns it; peers and the daemon talk
//! to it by message. Outbound UPDATEs are encoded once for every peer that
//! gets the same bytes, and a slow peer's backlog is bounded: changes for it
//! coalesce per prefix until its queue has room again.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use bgp_proto::attributes::{Community, MpNextHop};
use bgp_proto::update::{pack_announcements, pack_withdrawals, Update};
use bgp_proto::{Context, Family, FamilySet, Message, Nlri};
use bytes::Bytes;
use ipnetwork::IpNetwork;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::policy::{Chain, RouteContext};
use crate::route::RouteAttrs;

/// Identifies a peer inside the daemon; [`LOCAL`] is the daemon itself.
pub type PeerId = u32;
/// The "peer" that originated routes belong to.
pub const LOCAL: PeerId = 0;
/// LOCAL_PREF assumed when a route has none (RFC 4271 §5.1.5 leaves it local; 100 is universal).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// How the next hop is chosen when a route is sent to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NextHopMode {
    /// eBGP: self; iBGP: keep, except for our own routes.
    Auto,
    SelfAddress,
    Keep,
}

/// What the RIB needs to know about an established session.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    pub address: IpAddr,
    /// Our address on this session: the next hop we announce as "self".
    pub local_address: IpAddr,
    pub asn: u32,
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// Encoding context for what we send (RFC 6793, RFC 8654, RFC 7911).
    pub tx: Context,
    /// Decoding context for what we receive (4-octet AS decides AS4_PATH merging).
    pub rx_four_octet_as: bool,
    pub families: FamilySet,
    /// Accept this many of our own AS in received paths (eBGP loop check).
    pub allowas_in: u8,
    /// RFC 8950 negotiated: IPv4 routes may be sent with an IPv6 next hop.
    pub ipv4_via_ipv6: bool,
    pub import: Chain,
    pub export: Chain,
    /// Prefix limit (RFC 4486 §4: Cease / Maximum Number of Prefixes Reached).
    pub max_prefixes: Option<PrefixLimit>,
}

/// A per-peer prefix limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixLimit {
    pub limit: u32,
    /// Warn once when this many prefixes are reached.
    pub warning: u32,
}

/// What the RIB tells a peer task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSignal {
    /// The peer sent more prefixes than its limit: tear the session down.
    MaxPrefixes { limit: u32 },
}

impl PeerInfo {
    pub fn ibgp(&self) -> bool {
        self.asn == self.local_asn
    }
}

/// The send side of a peer's outbound queue.
#[derive(Clone, Debug)]
pub struct PeerOut {
    pub queue: mpsc::Sender<Bytes>,
    /// Set by the RIB when the queue was full; the writer then reports
    /// [`RibMsg::Writable`] once it has room.
    pub want_writable: Arc<AtomicBool>,
    /// Signals back to the peer task (prefix limit).
    pub signals: mpsc::UnboundedSender<PeerSignal>,
}

/// A route change for the kernel, handed to fib-sync by the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KernelOp {
    /// Route via these gateways (several: ECMP).
    Via(IpNetwork, Gateways),
    Blackhole(IpNetwork),
    Remove(IpNetwork),
}

/// Work for the kernel task, in order: route changes, and the one-time sweep
/// of routes adopted at start — queued behind the changes before it, so a
/// route just re-learned is never swept.
#[derive(Debug)]
pub enum KernelWork {
    Ops(Vec<KernelOp>),
    SweepStale,
}

/// A prefix this host originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Originated {
    pub prefix: IpNetwork,
    pub blackhole: bool,
    pub communities: Vec<Community>,
    pub large_communities: Vec<bgp_proto::attributes::LargeCommunity>,
}

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
}

/// Messages to the RIB task.
#[derive(Debug)]
pub enum RibMsg {
    PeerUp(PeerInfo, PeerOut),
    PeerDown(PeerId),
    /// The session ended without a NOTIFICATION and the peer announced
    /// graceful restart: keep its routes of these families, stale, for a while.
    PeerDownGraceful {
        peer: PeerId,
        families: FamilySet,
        restart_time: std::time::Duration,
    },
    /// Routes of `family` announced by a peer with one attribute set.
    Announce {
        peer: PeerId,
        family: Family,
        attrs: RouteAttrs,
        nlri: Vec<Nlri>,
    },
    Withdraw {
        peer: PeerId,
        family: Family,
        nlri: Vec<Nlri>,
    },
    EndOfRib(PeerId, Family),
    /// The full set of originated prefixes (config load and reload).
    Originate(Vec<Originated>),
    /// The peer's queue has room again.
    Writable(PeerId),
    /// The peer asked for our routes of a family again (RFC 2918 §4).
    RouteRefresh(PeerId, Family),
    Query(Query, oneshot::Sender<QueryReply>),
}

#[derive(Debug, Clone)]
pub enum Query {
    Routes(Option<IpNetwork>),
    Summary,
}

#[derive(Debug, Clone, Serialize)]
pub enum QueryReply {
    Routes(Vec<RouteView>),
    Summary(RibSummary),
}

/// One path of one prefix, for `ternctl show routes`.
#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    pub prefix: String,
    pub best: bool,
    pub from: String,
    pub next_hop: Option<String>,
    pub as_path: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub origin: String,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    pub path_id: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RibSummary {
    pub prefixes: usize,
    pub paths: usize,
    pub attribute_sets: usize,
    pub kernel_routes: usize,
    /// Prefixes received / advertised per peer name.
    pub peers: Vec<PeerCounts>,
    pub converged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerCounts {
    pub name: String,
    pub received: usize,
    pub advertised: usize,
}

/// The gateways of one kernel route; up to two without a heap allocation.
pub type Gateways = smallvec::SmallVec<[IpAddr; 2]>;

/// Hash maps keyed by what peers send: aHash is fast and keyed per process,
/// so crafted prefixes cannot force collisions.
type Map<K, V> = HashMap<K, V, ahash::RandomState>;
type Set<T> = HashSet<T, ahash::RandomState>;

/// Export results: (source attributes, source peer, target export class, IPv4?).
type ExportCache = Map<(usize, PeerId, u64, bool), Option<Arc<RouteAttrs>>>;

/// Peers that get identical exports of the same route share a class: same
/// session kind, AS, next-hop rule and address, families, reflection role and
/// export chain. 0 (never cached): a policy that looks at each prefix.
fn export_class(info: &PeerInfo) -> u64 {
    let chain = match &info.export {
        Chain::Policies(_) => return 0,
        Chain::AcceptAll => 1usize,
        Chain::RejectAll => 2,
        Chain::Within(nets) => Arc::as_ptr(nets) as usize,
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(
        &(
            info.ibgp(),
            info.local_asn,
            info.rr_client,
            info.next_hop as u8,
            info.local_address,
            info.ipv4_via_ipv6,
            info.families.iter().collect::<Vec<_>>(),
            chain,
        ),
        &mut h,
    );
    std::hash::Hasher::finish(&h) | 1
}

/// Prefix ids covered per step of an initial table dump.
const DUMP_SLICE: usize = 1024;

/// Kernel changes handed over per chunk during a large flush.
const KERNEL_CHUNK: usize = 4096;

/// The paths of one prefix; one fits without a heap allocation.
type Paths = smallvec::SmallVec<[Path; 1]>;

/// A Loc-RIB entry: the prefix's paths, and a digest of what the kernel was
/// last told for it (0: nothing) — kept here rather than in a second map.
struct Entry {
    paths: Paths,
    kernel: u64,
    /// Index into every peer's Adj-RIB-Out bitset.
    id: u32,
    /// Which path was best at the last flush (0: none); unchanged means
    /// nothing to tell the peers.
    best: u64,
}

impl Entry {
    fn new(id: u32) -> Entry {
        Entry {
            paths: Paths::new(),
            kernel: 0,
            id,
            best: 0,
        }
    }
}

/// Identifies the best path (its peer, path id and attribute set) so a
/// flush can tell whether the peers need to hear anything.
fn best_digest(best: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(best.peer, best.path_id, Arc::as_ptr(&best.attrs) as usize), &mut h);
    std::hash::Hasher::finish(&h) | 1
}

impl std::ops::Deref for Entry {
    type Target = Paths;
    fn deref(&self) -> &Paths {
        &self.paths
    }
}

impl std::ops::DerefMut for Entry {
    fn deref_mut(&mut self) -> &mut Paths {
        &mut self.paths
    }
}

#[derive(Clone, Debug)]
struct Path {
    peer: PeerId,
    path_id: u32,
    attrs: Arc<RouteAttrs>,
}

struct PeerState {
    info: PeerInfo,
    out: PeerOut,
    /// See [`export_class`].
    export_class: u64,
    /// Adj-RIB-Out as one bit per prefix id: announced (or queued to be).
    /// What was sent follows from the Loc-RIB, so a reflector with thousands
    /// of clients keeps bits, not copies of routes.
    advertised: Bits,
    /// Prefixes whose best path changed since they were last sent: they are
    /// re-evaluated when encoded, so repeated changes coalesce (`queued` dedups).
    queue: VecDeque<u32>,
    queued: Bits,
    /// Advertised prefixes that left the Loc-RIB (their ids may be reused).
    withdraw: Vec<IpNetwork>,
    /// The initial table (or a route refresh) is sent lazily, in prefix-id
    /// order from here, as the peer's queue drains.
    dump_next: Option<u32>,
    /// Encoded messages that did not fit the queue.
    backlog: VecDeque<Bytes>,
    /// Families whose End-of-RIB we still owe after the initial table.
    eor_due: FamilySet,
    eor_received: FamilySet,
    received: usize,
    /// The prefix limit tripped: further announcements are ignored until the session resets.
    limit_tripped: bool,
    limit_warned: bool,
}

/// A growable bitset indexed by prefix id.
#[derive(Default)]
struct Bits {
    words: Vec<u64>,
    count: usize,
}

impl Bits {
    fn get(&self, i: u32) -> bool {
        self.words
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: u32, on: bool) {
        let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
        if word >= self.words.len() {
            if !on {
                return;
            }
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & bit != 0;
        if on && !was {
            self.words[word] |= bit;
            self.count += 1;
        } else if !on && was {
            self.words[word] &= !bit;
            self.count -= 1;
        }
    }
}

/// Small stable ids for prefixes (index of the per-peer bitsets), reused when freed.
#[derive(Default)]
struct PrefixIds {
    prefixes: Vec<Option<IpNetwork>>,
    free: Vec<u32>,
}

impl PrefixIds {
    fn alloc(&mut self, prefix: IpNetwork) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.prefixes[id as usize] = Some(prefix);
                id
            }
            None => {
                self.prefixes.push(Some(prefix));
                (self.prefixes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, id: u32) {
        if let Some(slot) = self.prefixes.get_mut(id as usize) {
            *slot = None;
            self.free.push(id);
        }
    }
}

/// The routing information base. See the module docs.
pub struct Rib {
    cfg: RibConfig,
    peers: Map<PeerId, PeerState>,
    /// Loc-RIB: every path of every prefix (most prefixes have one: kept inline).
    loc: Map<IpNetwork, Entry>,
    interned: Set<Arc<RouteAttrs>>,
    dirty: Set<IpNetwork>,
    kernel_ops: Vec<KernelOp>,
    ids: PrefixIds,
    /// Export results by (source attributes, source peer, export class,
    /// IPv4?). Keys hold attribute pointers, so the cache is emptied whenever
    /// attribute sets may be freed (purge) and at every flush.
    export_cache: ExportCache,
    encode_cache: EncodeCache,
    /// Where kernel changes go as soon as a chunk is ready (the daemon's kernel task).
    kernel_sink: Option<mpsc::UnboundedSender<KernelWork>>,
    originated: Map<IpNetwork, Originated>,
    /// Every peer that came up has sent End-of-RIB (or none is configured to).
    converged: bool,
    released_since_purge: usize,
    /// Paths kept for peers in graceful restart (RFC 4724 §4.2), under ids of their own.
    ghosts: Map<PeerId, Ghost>,
    next_ghost: PeerId,
}

/// The stale paths of a peer whose session ended while graceful restart was
/// negotiated; they keep forwarding until the peer's End-of-RIB or the deadline.
struct Ghost {
    info: PeerInfo,
    of: PeerId,
    families: FamilySet,
    deadline: std::time::Instant,
}

fn family_of(prefix: &IpNetwork) -> Family {
    match prefix {
        IpNetwork::V4(_) => Family::IPV4_UNICAST,
        IpNetwork::V6(_) => Family::IPV6_UNICAST,
    }
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        Rib {
            cfg,
            peers: Map::default(),
            loc: Map::default(),
            interned: Set::default(),
            dirty: Set::default(),
            kernel_ops: Vec::new(),
            ids: PrefixIds::default(),
            export_cache: ExportCache::default(),
            encode_cache: EncodeCache::default(),
            kernel_sink: None,
            originated: Map::default(),
            converged: false,
            released_since_purge: 0,
            ghosts: Map::default(),
            next_ghost: PeerId::MAX,
        }
    }

    /// Session facts of a live peer or of a peer's stale paths.
    fn info(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers
            .get(&id)
            .map(|p| &p.info)
            .or_else(|| self.ghosts.get(&id).map(|g| &g.info))
    }

    /// When the earliest stale set runs out.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        self.ghosts.values().map(|g| g.deadline).min()
    }

    /// Drops stale paths whose restart time is over (RFC 4724 §4.2).
    pub fn expire(&mut self, now: std::time::Instant) {
        let expired: Vec<PeerId> = self
            .ghosts
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(g) = self.ghosts.remove(&id) {
                tracing::info!(peer = %g.info.name, "graceful restart: restart time over, removing stale routes");
            }
            self.remove_paths(id, None);
        }
    }

    /// Removes the paths of `id` (only of `families` when given).
    fn remove_paths(&mut self, id: PeerId, families: Option<&FamilySet>) {
        for (prefix, paths) in self.loc.iter_mut() {
            if families.is_some_and(|f| !f.contains(family_of(prefix))) {
                continue;
            }
            let before = paths.len();
            paths.retain(|p| p.peer != id);
            if paths.len() != before {
                self.dirty.insert(*prefix);
            }
        }
        self.released_since_purge += 1 << 20;
    }

    /// The session of a peer that announced graceful restart ended without a
    /// NOTIFICATION: its routes of `families` stay (stale) for `restart_time`.
    fn peer_down_graceful(&mut self, id: PeerId, families: FamilySet, restart_time: std::time::Duration) {
        let Some(state) = self.peers.remove(&id) else {
            return;
        };
        let ghost = self.next_ghost;
        self.next_ghost -= 1;
        tracing::info!(peer = %state.info.name, "graceful restart: keeping its routes as stale for {restart_time:?}");
        for (prefix, paths) in self.loc.iter_mut() {
            let keep = families.contains(family_of(prefix));
            let before = paths.len();
            paths.retain(|p| p.peer != id || keep);
            for p in paths.iter_mut().filter(|p| p.peer == id) {
                p.peer = ghost;
            }
            if paths.len() != before {
                self.dirty.insert(*prefix);
            }
        }
        self.ghosts.insert(
            ghost,
            Ghost {
                info: state.info,
                of: id,
                families,
                deadline: std::time::Instant::now() + restart_time,
            },
        );
        self.check_converged();
    }

    fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.interned.get(&attrs) {
            return a.clone();
        }
        let a = Arc::new(attrs);
        self.interned.insert(a.clone());
        a
    }

    /// Drops attribute sets no route uses any more.
    fn purge_interned(&mut self) {
        self.export_cache.clear();
        self.encode_cache = EncodeCache::default();
        self.interned.retain(|a| Arc::strong_count(a) > 1);
        self.released_since_purge = 0;
    }

    /// Kernel changes produced since the last call.
    pub fn take_kernel_ops(&mut self) -> Vec<KernelOp> {
        std::mem::take(&mut self.kernel_ops)
    }

    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Handles one message; call [`Rib::flush`] after a batch.
    pub fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::PeerUp(info, out) => self.peer_up(info, out),
            RibMsg::PeerDown(id) => self.peer_down(id),
            RibMsg::PeerDownGraceful {
                peer,
                families,
                restart_time,
            } => self.peer_down_graceful(peer, families, restart_time),
            RibMsg::Announce {
                peer,
                family,
                attrs,
                nlri,
            } => self.announce(peer, family, attrs, &nlri),
            RibMsg::Withdraw { peer, nlri, .. } => self.withdraw(peer, &nlri),
            RibMsg::EndOfRib(peer, family) => self.end_of_rib(peer, family),
            RibMsg::Originate(list) => self.set_originated(list),
            RibMsg::Writable(peer) => self.drain_backlog(peer),
            RibMsg::RouteRefresh(peer, family) => {
                // RFC 2918 §4: send the whole table of the family again.
                let Some(p) = self.peers.get_mut(&peer) else { return };
                for (id, prefix) in self.ids.prefixes.iter().enumerate() {
                    if prefix.is_some_and(|pr| family_of(&pr) == family) {
                        p.advertised.set(id as u32, false);
                    }
                }
                p.dump_next = Some(0);
            }
            RibMsg::Query(q, reply) => {
                let _ = reply.send(self.query(q));
            }
        }
    }

    fn peer_up(&mut self, info: PeerInfo, out: PeerOut) {
        let id = info.id;
        let export_class = export_class(&info);
        let families = info.families.clone();
        self.peers.insert(
            id,
            PeerState {
                info,
                out,
                export_class,
                advertised: Bits::default(),
                queue: VecDeque::new(),
                queued: Bits::default(),
                withdraw: Vec::new(),
                dump_next: Some(0),
                backlog: VecDeque::new(),
                eor_due: families,
                eor_received: FamilySet::new(),
                received: 0,
                limit_tripped: false,
                limit_warned: false,
            },
        );
        // The initial table goes out lazily as the queue drains (send_pending).
        self.converged = false;
    }

    fn peer_down(&mut self, id: PeerId) {
        if self.peers.remove(&id).is_none() {
            return;
        }
        for (prefix, paths) in self.loc.iter_mut() {
            let before = paths.len();
            paths.retain(|p| p.peer != id);
            if paths.len() != before {
                self.dirty.insert(*prefix);
            }
        }
        self.check_converged();
        self.released_since_purge += 1 << 20; // force a purge at the next flush
    }

    /// RFC 4271 §9.1.2 import: loop checks, then into the peer's Adj-RIB-In.
    fn announce(&mut self, peer: PeerId, family: Family, attrs: RouteAttrs, nlri: &[Nlri]) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let info = &state.info;
        let looped = if info.ibgp() {
            // RFC 4456 §8: our own ORIGINATOR_ID or CLUSTER_ID means a loop.
            attrs.originator_id == Some(self.cfg.router_id)
                || self.cfg.cluster_id.is_some_and(|c| attrs.cluster_list.contains(&c))
        } else {
            // RFC 4271 §9.1.2: a path holding our own AS is a loop (allowas-in relaxes it).
            let own = attrs
                .as_path
                .segments
                .iter()
                .flat_map(|s| &s.asns)
                .filter(|&&a| a == info.local_asn)
                .count();
            own > info.allowas_in as usize
        };
        if looped || family_of_nlri_mismatch(family, nlri) {
            // A looped route replaces (withdraws) any earlier path for the same NLRI.
            self.withdraw(peer, nlri);
            return;
        }
        if state.limit_tripped {
            return;
        }
        let import = info.import.clone();
        let ctx = RouteContext {
            neighbor: info.address,
            local_asn: info.local_asn,
        };
        let base = self.intern(attrs);
        let mut added = 0usize;
        let mut rejected = Vec::new();
        for n in nlri {
            let attrs = match import.run(&n.prefix, &base, &ctx) {
                None => {
                    rejected.push(*n);
                    continue;
                }
                Some(None) => base.clone(),
                Some(Some(changed)) => self.intern(changed),
            };
            let path_id = n.path_id.unwrap_or(0);
            let paths = self
                .loc
                .entry(n.prefix)
                .or_insert_with(|| Entry::new(self.ids.alloc(n.prefix)));
            match paths.iter_mut().find(|p| p.peer == peer && p.path_id == path_id) {
                Some(p) => p.attrs = attrs,
                None => {
                    paths.push(Path { peer, path_id, attrs });
                    added += 1;
                }
            }
            self.dirty.insert(n.prefix);
        }
        // A rejected route replaces whatever the peer sent for it before.
        if !rejected.is_empty() {
            self.withdraw(peer, &rejected);
        }
        if let Some(s) = self.peers.get_mut(&peer) {
            s.received += added;
            if let Some(limit) = s.info.max_prefixes {
                let received = s.received as u64;
                if received > limit.limit as u64 && !s.limit_tripped {
                    s.limit_tripped = true;
                    tracing::warn!(peer = %s.info.name, "{received} prefixes: over the limit of {}", limit.limit);
                    let _ = s.out.signals.send(PeerSignal::MaxPrefixes { limit: limit.limit });
                } else if received >= limit.warning as u64 && !s.limit_warned {
                    s.limit_warned = true;
                    tracing::warn!(peer = %s.info.name, "{received} prefixes: {}% of the limit of {}", received * 100 / limit.limit.max(1) as u64, limit.limit);
                }
            }
        }
    }

    fn withdraw(&mut self, peer: PeerId, nlri: &[Nlri]) {
        let mut removed = 0usize;
        for n in nlri {
            let path_id = n.path_id.unwrap_or(0);
            if let Some(paths) = self.loc.get_mut(&n.prefix) {
                let before = paths.len();
                paths.retain(|p| !(p.peer == peer && p.path_id == path_id));
                if paths.len() != before {
                    removed += 1;
                    self.dirty.insert(n.prefix);
                }
            }
        }
        if let Some(s) = self.peers.get_mut(&peer) {
            s.received = s.received.saturating_sub(removed);
        }
        self.released_since_purge += removed;
    }

    fn end_of_rib(&mut self, peer: PeerId, family: Family) {
        if let Some(s) = self.peers.get_mut(&peer) {
            s.eor_received.insert(family);
        }
        // RFC 4724 §4.2: the restarted peer's End-of-RIB ends the stale paths of that family.
        let ghosts: Vec<PeerId> = self
            .ghosts
            .iter()
            .filter(|(_, g)| g.of == peer && g.families.contains(family))
            .map(|(id, _)| *id)
            .collect();
        for id in ghosts {
            let only: FamilySet = [family].into_iter().collect();
            self.remove_paths(id, Some(&only));
            if let Some(g) = self.ghosts.get_mut(&id) {
                g.families = g.families.iter().filter(|f| *f != family).collect();
                if g.families.is_empty() {
                    self.ghosts.remove(&id);
                }
            }
        }
        self.check_converged();
    }

    /// Converged once every established peer sent End-of-RIB for each of its families.
    fn check_converged(&mut self) {
        self.converged = self
            .peers
            .values()
            .all(|p| p.info.families.iter().all(|f| p.eor_received.contains(f)));
    }

    fn set_originated(&mut self, list: Vec<Originated>) {
        let new: Map<IpNetwork, Originated> = list.into_iter().map(|o| (o.prefix, o)).collect();
        let old = std::mem::take(&mut self.originated);
        for prefix in old.keys().filter(|p| !new.contains_key(p)) {
            if let Some(paths) = self.loc.get_mut(prefix) {
                paths.retain(|p| p.peer != LOCAL);
            }
            self.dirty.insert(*prefix);
        }
        for (prefix, o) in &new {
            if old.get(prefix) == Some(o) {
                continue;
            }
            let attrs = self.intern(RouteAttrs::local(o.communities.clone(), o.large_communities.clone()));
            let paths = self
                .loc
                .entry(*prefix)
                .or_insert_with(|| Entry::new(self.ids.alloc(*prefix)));
            paths.retain(|p| p.peer != LOCAL);
            paths.push(Path {
                peer: LOCAL,
                path_id: 0,
                attrs,
            });
            self.dirty.insert(*prefix);
        }
        self.originated = new;
    }

    /// Compares two paths per RFC 4271 §9.1.2.2 (Less = `a` is better), and
    /// says whether they tie up to and including the eBGP/iBGP step, so
    /// they may share the forwarding (ECMP).
    fn compare(&self, a: &Path, b: &Path) -> (Ordering, bool) {
        let lp = |p: &Path| p.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
        let ebgp = |p: &Path| self.info(p.peer).is_some_and(|i| !i.ibgp());
        let local = |p: &Path| p.peer == LOCAL;
        let med = |p: &Path| p.attrs.med.unwrap_or(0);
        let stale = |p: &Path| self.ghosts.contains_key(&p.peer);
        let steps = [
            // Our own routes win over learned ones (like BIRD's preference).
            local(b).cmp(&local(a)),
            // A live path beats a stale one kept for a restarting peer (RFC 4724).
            stale(a).cmp(&stale(b)),
            // a) highest LOCAL_PREF.
            lp(b).cmp(&lp(a)),
            // a) shortest AS_PATH.
            a.attrs.as_path.path_len().cmp(&b.attrs.as_path.path_len()),
            // b) lowest ORIGIN.
            a.attrs.origin.cmp(&b.attrs.origin),
            // c) lowest MED, only between routes from the same neighbouring AS.
            if a.attrs.as_path.first_as() == b.attrs.as_path.first_as() {
                med(a).cmp(&med(b))
            } else {
                Ordering::Equal
            },
            // d) eBGP over iBGP.
            ebgp(b).cmp(&ebgp(a)),
        ];
        if let Some(o) = steps.iter().find(|o| **o != Ordering::Equal) {
            return (*o, false);
        }
        // f) lowest BGP identifier (ORIGINATOR_ID when reflected, RFC 4456 §9).
        let id = |p: &Path| {
            p.attrs
                .originator_id
                .or_else(|| self.info(p.peer).map(|i| i.router_id))
                .unwrap_or(self.cfg.router_id)
        };
        let addr = |p: &Path| self.info(p.peer).map(|i| i.address);
        let tie = [
            id(a).cmp(&id(b)),
            // RFC 4456 §9: shortest CLUSTER_LIST.
            a.attrs.cluster_list.len().cmp(&b.attrs.cluster_list.len()),
            // g) lowest peer address.
            addr(a).cmp(&addr(b)),
            a.path_id.cmp(&b.path_id),
        ];
        (
            tie.into_iter()
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            true,
        )
    }

    /// The best usable path of `prefix` and the gateways of every path that
    /// ties with it for forwarding (ECMP).
    fn select(&self, prefix: &IpNetwork) -> Option<(Path, Gateways)> {
        let paths = self.loc.get(prefix)?;
        let usable = |p: &&Path| p.peer == LOCAL || self.next_hop_usable(p);
        let best = paths.iter().filter(usable).min_by(|a, b| self.compare(a, b).0)?.clone();
        let mut gateways: Gateways = paths
            .iter()
            .filter(usable)
            .filter(|p| p.peer != LOCAL && self.compare(p, &best).1)
            .filter_map(|p| p.attrs.next_hop)
            .collect();
        gateways.sort();
        gateways.dedup();
        Some((best, gateways))
    }

    /// A next hop of one of our own addresses is unusable (RFC 4271 §9.1.2).
    fn next_hop_usable(&self, p: &Path) -> bool {
        match (p.attrs.next_hop, self.info(p.peer)) {
            (Some(nh), Some(i)) => nh != i.local_address && !nh.is_unspecified(),
            _ => false,
        }
    }

    /// Attributes `best` for `prefix` is sent to `to` with, or `None` when
    /// it must not be sent (split horizon, RFC 4456 rules, NO_EXPORT, family).
    fn export(&self, to: PeerId, prefix: &IpNetwork, best: &Path) -> Option<RouteAttrs> {
        let peer = &self.peers.get(&to)?.info;
        if best.peer == to || !peer.families.contains(family_of(prefix)) {
            return None;
        }
        let src = self.info(best.peer);
        let attrs = &best.attrs;
        if attrs.communities.contains(&Community::NO_ADVERTISE) {
            return None;
        }
        let reflecting = src.is_some_and(|s| s.ibgp()) && peer.ibgp();
        // RFC 4456 §6: client routes go to everyone, non-client routes to
        // clients only; without a cluster id, iBGP routes stay put (split horizon).
        if reflecting && (self.cfg.cluster_id.is_none() || !src.is_some_and(|s| s.rr_client || peer.rr_client)) {
            return None;
        }
        let mut out = (**attrs).clone();
        if reflecting {
            let src = src?;
            // RFC 4456 §8: ORIGINATOR_ID set once, our CLUSTER_ID prepended.
            out.originator_id.get_or_insert(src.router_id);
            out.cluster_list.insert(0, self.cfg.cluster_id?);
        }
        if peer.ibgp() {
            out.local_pref = Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
            let own = best.peer == LOCAL;
            if own || peer.next_hop == NextHopMode::SelfAddress {
                out.next_hop = None;
            }
        } else {
            if attrs.communities.contains(&Community::NO_EXPORT) {
                return None;
            }
            // RFC 4271 §5.1.2: prepend our AS; §5.1.5: no LOCAL_PREF to eBGP;
            // §5.1.4: a received MED is not passed to another AS.
            out.as_path.prepend(peer.local_asn, 1);
            out.local_pref = None;
            if src.is_some() {
                out.med = None;
            }
            out.originator_id = None;
            out.cluster_list.clear();
            if peer.next_hop != NextHopMode::Keep || best.peer == LOCAL {
                out.next_hop = None;
            }
        }
        let ctx = RouteContext {
            neighbor: peer.address,
            local_asn: peer.local_asn,
        };
        match peer.export.run(prefix, &out, &ctx) {
            None => return None,
            Some(Some(changed)) => out = changed,
            Some(None) => {}
        }
        if out.next_hop.is_none() {
            // Next hop self: our address on this session, if of the prefix's family.
            let nh = peer.local_address;
            let rfc8950 = prefix.is_ipv4() && nh.is_ipv6() && peer.ipv4_via_ipv6;
            if nh.is_ipv4() != prefix.is_ipv4() && !rfc8950 {
                return None;
            }
            out.next_hop = Some(nh);
            out.link_local = None;
        }
        Some(out)
    }

    /// [`Rib::export`], interned, remembered for routes that share attributes
    /// (unless the peer's export policy looks at the prefix).
    fn export_cached(&mut self, to: PeerId, prefix: &IpNetwork, best: &Path) -> Option<Arc<RouteAttrs>> {
        let peer = self.peers.get(&to)?;
        if best.peer == to {
            return None;
        }
        let class = peer.export_class;
        let key = (Arc::as_ptr(&best.attrs) as usize, best.peer, class, prefix.is_ipv4());
        if let Some(hit) = self.export_cache.get(&key) {
            return hit.clone();
        }
        let fresh = self.export(to, prefix, best).map(|a| self.intern(a));
        if class != 0 {
            self.export_cache.insert(key, fresh.clone());
        }
        fresh
    }

    /// Recomputes every changed prefix, updates the kernel and each peer's
    /// Adj-RIB-Out, and sends what fits in the peers' queues.
    pub fn flush(&mut self) -> usize {
        let dirty: Vec<IpNetwork> = self.dirty.drain().collect();
        let changed = dirty.len();
        self.export_cache = ExportCache::default();
        self.encode_cache = EncodeCache::default();
        // A burst (a full table) must not leave a table-sized set behind.
        self.dirty.shrink_to(1024);
        let peer_ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for prefix in dirty {
            let selected = self.select(&prefix);
            self.update_kernel(&prefix, selected.as_ref());
            let digest = selected.as_ref().map_or(0, |(best, _)| best_digest(best));
            let Some(entry) = self.loc.get_mut(&prefix) else {
                continue;
            };
            let entry_id = entry.id;
            let gone = entry.paths.is_empty();
            if entry.best != digest {
                entry.best = digest;
                for &id in &peer_ids {
                    let Some(p) = self.peers.get_mut(&id) else { continue };
                    if gone {
                        // The id is released below: withdraw by prefix, not by id.
                        if p.advertised.get(entry_id) {
                            p.advertised.set(entry_id, false);
                            p.withdraw.push(prefix);
                        }
                    } else if selected.as_ref().is_some_and(|(best, _)| best.peer == id) && !p.advertised.get(entry_id)
                    {
                        // Its own route, never sent to it: nothing to tell it.
                    } else if !p.queued.get(entry_id) {
                        p.queued.set(entry_id, true);
                        p.queue.push_back(entry_id);
                    }
                }
            }
            if self.loc.get(&prefix).is_some_and(|p| p.is_empty()) {
                // No path, no best: every peer's bit was cleared above.
                self.loc.remove(&prefix);
                self.ids.release(entry_id);
            }
        }
        for id in peer_ids {
            self.send_pending(id);
        }
        if self.released_since_purge > self.interned.len().max(1024) {
            self.purge_interned();
        }
        changed
    }

    fn update_kernel(&mut self, prefix: &IpNetwork, selected: Option<&(Path, Gateways)>) {
        if !self.cfg.kernel {
            return;
        }
        let allowed = self
            .cfg
            .allowed_prefixes
            .iter()
            .any(|a| a.contains(prefix.ip()) && a.prefix() <= prefix.prefix());
        let want = match selected {
            Some((best, _)) if best.peer == LOCAL => self
                .originated
                .get(prefix)
                .filter(|o| o.blackhole)
                .map(|_| KernelOp::Blackhole(*prefix)),
            Some((_, gateways)) if allowed && !gateways.is_empty() => Some(KernelOp::Via(*prefix, gateways.clone())),
            _ => None,
        };
        let digest = want.as_ref().map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(w, &mut h);
            std::hash::Hasher::finish(&h) | 1
        });
        let Some(entry) = self.loc.get_mut(prefix) else {
            return;
        };
        match (want, digest) {
            (Some(_), Some(d)) if d == entry.kernel => return,
            (Some(w), Some(d)) => {
                entry.kernel = d;
                self.kernel_ops.push(w);
            }
            _ if entry.kernel != 0 => {
                entry.kernel = 0;
                self.kernel_ops.push(KernelOp::Remove(*prefix));
            }
            _ => return,
        }
        // Hand large bursts over in chunks, so the kernel work starts early
        // and no table-sized list of changes builds up.
        if self.kernel_ops.len() >= KERNEL_CHUNK {
            if let Some(sink) = &self.kernel_sink {
                let _ = sink.send(KernelWork::Ops(std::mem::take(&mut self.kernel_ops)));
            }
        }
    }

    /// Feeds a peer's queue until it is full: first changes not yet encoded,
    /// then the next slice of the initial table, then End-of-RIB.
    fn send_pending(&mut self, id: PeerId) {
        loop {
            if !self.drain_backlog_only(id) {
                return;
            }
            let Some(p) = self.peers.get_mut(&id) else { return };
            if !p.withdraw.is_empty() {
                let changes = std::mem::take(&mut p.withdraw)
                    .into_iter()
                    .map(|prefix| (prefix, None))
                    .collect();
                self.encode_changes(id, changes);
            } else if !p.queue.is_empty() {
                let take = p.queue.len().min(DUMP_SLICE);
                let ids: Vec<u32> = p.queue.drain(..take).collect();
                for &i in &ids {
                    p.queued.set(i, false);
                }
                let changes = self.evaluate(id, &ids, false);
                self.encode_changes(id, changes);
            } else if let Some(start) = p.dump_next {
                self.dump_slice(id, start);
            } else if !p.eor_due.is_empty() {
                for family in std::mem::take(&mut p.eor_due).iter() {
                    if let Ok(b) = Message::Update(Update::end_of_rib(family)).to_bytes(&p.info.tx) {
                        p.backlog.push_back(Bytes::from(b));
                    }
                }
            } else {
                self.drain_backlog_only(id);
                return;
            }
        }
    }

    /// Queues the UPDATEs for a change set, encoded once per distinct set and context.
    fn encode_changes(&mut self, id: PeerId, changes: Vec<(IpNetwork, Option<Arc<RouteAttrs>>)>) {
        if changes.is_empty() {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else { return };
        let key = changes_key(&changes);
        let slot = self.encode_cache.entries.entry(key).or_default();
        let bytes = match slot.iter().find(|(c, _)| *c == p.info.tx) {
            Some((_, b)) => b.clone(),
            None => {
                let b = Bytes::from(encode_change_set(&p.info.tx, &changes));
                slot.push((p.info.tx.clone(), b.clone()));
                b
            }
        };
        if !bytes.is_empty() {
            p.backlog.push_back(bytes);
        }
    }

    /// Sends the next slice of the table to a peer that is being dumped to.
    fn dump_slice(&mut self, id: PeerId, start: u32) {
        let end = (start as usize + DUMP_SLICE).min(self.ids.prefixes.len());
        let ids: Vec<u32> = (start..end as u32).collect();
        if let Some(p) = self.peers.get_mut(&id) {
            p.dump_next = (end < self.ids.prefixes.len()).then_some(end as u32);
        }
        let changes = self.evaluate(id, &ids, true);
        self.encode_changes(id, changes);
    }

    /// What a peer must be told about these prefixes now: an announcement of
    /// the current export, or a withdrawal of what it was sent. A dump
    /// (`skip_advertised`) only adds what the peer does not have yet.
    fn evaluate(
        &mut self,
        id: PeerId,
        ids: &[u32],
        skip_advertised: bool,
    ) -> Vec<(IpNetwork, Option<Arc<RouteAttrs>>)> {
        let mut changes = Vec::with_capacity(ids.len());
        for &index in ids {
            let Some(prefix) = self.ids.prefixes.get(index as usize).copied().flatten() else {
                continue;
            };
            let advertised = self.peers.get(&id).is_some_and(|p| p.advertised.get(index));
            if skip_advertised && advertised {
                continue;
            }
            let exported = match self.select(&prefix) {
                Some((best, _)) => self.export_cached(id, &prefix, &best),
                None => None,
            };
            let Some(p) = self.peers.get_mut(&id) else { break };
            match exported {
                Some(attrs) => {
                    p.advertised.set(index, true);
                    changes.push((prefix, Some(attrs)));
                }
                None if advertised => {
                    p.advertised.set(index, false);
                    changes.push((prefix, None));
                }
                None => {}
            }
        }
        changes
    }

    /// Moves queued bytes into the peer's channel; false once it is full.
    fn drain_backlog_only(&mut self, id: PeerId) -> bool {
        let Some(p) = self.peers.get_mut(&id) else { return false };
        while let Some(b) = p.backlog.pop_front() {
            match p.out.queue.try_send(b) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(b)) => {
                    p.backlog.push_front(b);
                    p.out.want_writable.store(true, AtomicOrdering::Release);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    p.backlog.clear();
                    return false;
                }
            }
        }
        true
    }

    /// The peer's queue has room: carry on where it stopped.
    fn drain_backlog(&mut self, id: PeerId) {
        self.send_pending(id);
    }

    fn query(&self, q: Query) -> QueryReply {
        match q {
            Query::Routes(filter) => {
                let mut out = Vec::new();
                let mut prefixes: Vec<&IpNetwork> = match filter {
                    Some(f) => self
                        .loc
                        .keys()
                        .filter(|p| **p == f || f.contains(p.ip()) && f.prefix() <= p.prefix())
                        .collect(),
                    None => self.loc.keys().collect(),
                };
                prefixes.sort();
                for prefix in prefixes {
                    let best = self.select(prefix).map(|(b, _)| (b.peer, b.path_id));
                    for path in self.loc[prefix].iter() {
                        out.push(self.view(prefix, path, best == Some((path.peer, path.path_id))));
                    }
                }
                QueryReply::Routes(out)
            }
            Query::Summary => {
                let mut peers: Vec<PeerCounts> = self
                    .peers
                    .values()
                    .map(|p| PeerCounts {
                        name: p.info.name.clone(),
                        received: p.received,
                        advertised: p.advertised.count,
                    })
                    .collect();
                peers.sort_by(|a, b| a.name.cmp(&b.name));
                QueryReply::Summary(RibSummary {
                    prefixes: self.loc.len(),
                    paths: self.loc.values().map(|v| v.len()).sum(),
                    attribute_sets: self.interned.len(),
                    kernel_routes: self.loc.values().filter(|e| e.kernel != 0).count(),
                    peers,
                    converged: self.converged,
                })
            }
        }
    }

    fn view(&self, prefix: &IpNetwork, path: &Path, best: bool) -> RouteView {
        let a = &path.attrs;
        RouteView {
            prefix: prefix.to_string(),
            best,
            from: match (self.info(path.peer), self.ghosts.contains_key(&path.peer)) {
                (Some(i), true) => format!("{} (stale)", i.name),
                (Some(i), false) => i.name.clone(),
                (None, _) => "local".into(),
            },
            next_hop: a.next_hop.map(|n| n.to_string()),
            as_path: a.as_path.to_string(),
            local_pref: a.local_pref,
            med: a.med,
            origin: a.origin.as_str().into(),
            communities: a.communities.iter().map(|c| c.to_string()).collect(),
            large_communities: a.large_communities.iter().map(|c| c.to_string()).collect(),
            originator_id: a.originator_id.map(|o| o.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
            path_id: (path.path_id != 0).then_some(path.path_id),
        }
    }
}

fn family_of_nlri_mismatch(family: Family, nlri: &[Nlri]) -> bool {
    nlri.iter().any(|n| family_of(&n.prefix) != family)
}

/// Encoded change sets, shared by every peer that is sent the same changes
/// with the same context — the UPDATEs are encoded once for all of them.
/// Keys hash attribute pointers: emptied at every flush and purge.
#[derive(Default)]
struct EncodeCache {
    entries: Map<u64, Vec<(Context, Bytes)>>,
}

/// Identifies a change set: its prefixes and attribute sets, in order.
fn changes_key(changes: &[(IpNetwork, Option<Arc<RouteAttrs>>)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (prefix, attrs) in changes {
        std::hash::Hash::hash(prefix, &mut h);
        std::hash::Hash::hash(&attrs.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize), &mut h);
    }
    std::hash::Hasher::finish(&h)
}

/// UPDATEs for a change set: withdrawals, then announcements grouped by attribute set.
fn encode_change_set(ctx: &Context, changes: &[(IpNetwork, Option<Arc<RouteAttrs>>)]) -> Vec<u8> {
    let mut withdrawn: HashMap<Family, Vec<Nlri>> = HashMap::new();
    let mut groups: Vec<(Arc<RouteAttrs>, Family, Vec<Nlri>)> = Vec::new();
    let mut group_of: HashMap<(usize, Family), usize> = HashMap::new();
    for (prefix, change) in changes {
        let family = family_of(prefix);
        match change {
            None => withdrawn.entry(family).or_default().push(Nlri::new(*prefix)),
            Some(attrs) => {
                let g = *group_of
                    .entry((Arc::as_ptr(attrs) as usize, family))
                    .or_insert_with(|| {
                        groups.push((attrs.clone(), family, Vec::new()));
                        groups.len() - 1
                    });
                groups[g].2.push(Nlri::new(*prefix));
            }
        }
    }
    let mut buf = Vec::new();
    let mut withdrawn: Vec<_> = withdrawn.into_iter().collect();
    withdrawn.sort_by_key(|(f, _)| *f);
    for (family, nlri) in withdrawn {
        if let Err(e) = pack_withdrawals(ctx, family, &nlri, &mut buf) {
            tracing::warn!("cannot encode withdrawals: {e}");
        }
    }
    for (attrs, family, nlri) in groups {
        let Some(next_hop) = attrs.next_hop else { continue };
        let next_hop = match (next_hop, attrs.link_local) {
            (IpAddr::V4(a), _) => MpNextHop::V4(a),
            (IpAddr::V6(global), link_local) => MpNextHop::V6 { global, link_local },
        };
        if let Err(e) = pack_announcements(ctx, family, next_hop, &attrs.to_path_attributes(ctx), &nlri, &mut buf) {
            tracing::warn!("cannot encode announcements: {e}");
        }
    }
    buf
}

/// Returns freed heap pages to the system after a burst (glibc keeps them otherwise).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The RIB task: drains its inbox in batches, flushes after each batch, and
/// hands kernel changes to `kernel` and convergence to `converged`.
pub async fn run(
    mut rib: Rib,
    mut inbox: mpsc::Receiver<RibMsg>,
    kernel: mpsc::UnboundedSender<KernelWork>,
    converged: tokio::sync::watch::Sender<bool>,
) {
    rib.kernel_sink = Some(kernel.clone());
    loop {
        let deadline = rib.next_deadline();
        let first = tokio::select! {
            m = inbox.recv() => match m {
                Some(m) => Some(m),
                None => break,
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        rib.expire(std::time::Instant::now());
        if let Some(first) = first {
            rib.handle(first);
        }
        // Batch whatever else is already queued, bounded so queries stay prompt.
        for _ in 0..4096 {
            match inbox.try_recv() {
                Ok(m) => rib.handle(m),
                Err(_) => break,
            }
        }
        let changed = rib.flush();
        let ops = rib.take_kernel_ops();
        if !ops.is_empty() && kernel.send(KernelWork::Ops(ops)).is_err() {
            tracing::warn!("kernel sync task is gone; routes are no longer installed");
        }
        if changed > 10_000 {
            // A full table went through: give the allocator's free pages back.
            release_free_memory();
        }
        converged.send_if_modified(|c| {
            let changed = *c != rib.converged();
            *c = rib.converged();
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::attributes::AsPath;
    use bgp_proto::framing::next_message_len;

    const ASN: u32 = 64512;

    fn rib() -> Rib {
        Rib::new(RibConfig {
            local_asn: ASN,
            router_id: "192.168.1.11".parse().unwrap(),
            cluster_id: None,
            allowed_prefixes: vec!["10.244.0.0/16".parse().unwrap()],
            kernel: true,
        })
    }

    fn peer(id: PeerId, addr: &str, asn: u32, capacity: usize) -> (PeerInfo, PeerOut, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        let info = PeerInfo {
            id,
            name: format!("peer{id}"),
            address: addr.parse().unwrap(),
            local_address: "192.168.1.11".parse().unwrap(),
            asn,
            local_asn: ASN,
            router_id: addr.parse().unwrap_or(Ipv4Addr::new(10, 0, 0, id as u8)),
            rr_client: false,
            next_hop: NextHopMode::Auto,
            tx: Context::default(),
            rx_four_octet_as: true,
            families: [Family::IPV4_UNICAST].into_iter().collect(),
            allowas_in: 0,
            ipv4_via_ipv6: false,
            import: Chain::AcceptAll,
            export: Chain::AcceptAll,
            max_prefixes: None,
        };
        let out = PeerOut {
            queue: tx,
            want_writable: Arc::new(AtomicBool::new(false)),
            signals: mpsc::unbounded_channel().0,
        };
        (info, out, rx)
    }

    fn up(rib: &mut Rib, id: PeerId, addr: &str, asn: u32) -> mpsc::Receiver<Bytes> {
        let (info, out, rx) = peer(id, addr, asn, 64);
        rib.handle(RibMsg::PeerUp(info, out));
        rx
    }

    fn learned(next_hop: &str, as_path: Vec<u32>) -> RouteAttrs {
        let mut a = RouteAttrs::local(vec![], vec![]);
        a.next_hop = Some(next_hop.parse().unwrap());
        a.as_path = AsPath::sequence(as_path);
        a
    }

    fn nlri(p: &str) -> Vec<Nlri> {
        vec![Nlri::new(p.parse().unwrap())]
    }

    fn announce(rib: &mut Rib, peer: PeerId, prefix: &str, attrs: RouteAttrs) {
        rib.handle(RibMsg::Announce {
            peer,
            family: Family::IPV4_UNICAST,
            attrs,
            nlri: nlri(prefix),
        });
    }

    /// Every UPDATE a peer has been sent so far.
    fn received(rx: &mut mpsc::Receiver<Bytes>) -> Vec<Update> {
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            let mut buf = &chunk[..];
            while let Ok(Some(n)) = next_message_len(buf, 65535) {
                match bgp_proto::decode(&buf[..n], &Context::default()).unwrap().message {
                    Message::Update(u) => out.push(u),
                    other => panic!("unexpected {other:?}"),
                }
                buf = &buf[n..];
            }
        }
        out
    }

    fn originate(rib: &mut Rib, prefixes: &[&str]) {
        rib.handle(RibMsg::Originate(
            prefixes
                .iter()
                .map(|p| Originated {
                    prefix: p.parse().unwrap(),
                    blackhole: true,
                    communities: vec![],
                    large_communities: vec![],
                })
                .collect(),
        ));
    }

    #[test]
    fn originated_block_is_blackholed_and_announced_with_next_hop_self() {
        let mut rib = rib();
        originate(&mut rib, &["10.244.1.0/26"]);
        let mut rx = up(&mut rib, 1, "192.168.1.12", ASN);
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Blackhole("10.244.1.0/26".parse().unwrap())]
        );
        let updates = received(&mut rx);
        assert_eq!(updates.len(), 2, "the block, then End-of-RIB");
        let u = &updates[0];
        assert_eq!(u.nlri, nlri("10.244.1.0/26"));
        assert_eq!(u.next_hop(), Some("192.168.1.11".parse().unwrap()));
        assert_eq!(u.as_path().unwrap().to_string(), "");
        assert_eq!(updates[1].as_end_of_rib(), Some(Family::IPV4_UNICAST));
    }

    #[test]
    fn learned_block_goes_to_kernel_but_not_to_other_ibgp_peers() {
        let mut rib = rib();
        let _rx1 = up(&mut rib, 1, "192.168.1.12", ASN);
        let mut rx2 = up(&mut rib, 2, "192.168.1.13", ASN);
        rib.flush();
        received(&mut rx2);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Via(
                "10.244.2.0/26".parse().unwrap(),
                Gateways::from_elem("192.168.1.12".parse().unwrap(), 1)
            )]
        );
        assert!(received(&mut rx2).is_empty(), "iBGP split horizon");
        rib.handle(RibMsg::PeerDown(1));
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
        );
    }

    #[test]
    fn nothing_outside_allowed_prefixes_reaches_the_kernel() {
        let mut rib = rib();
        let _rx = up(&mut rib, 1, "192.168.1.1", 65001);
        announce(&mut rib, 1, "0.0.0.0/0", learned("192.168.1.1", vec![65001]));
        announce(&mut rib, 1, "10.0.0.0/8", learned("192.168.1.1", vec![65001]));
        rib.flush();
        assert!(rib.take_kernel_ops().is_empty());
    }

    #[test]
    fn decision_prefers_local_pref_then_path_length_and_multipaths_ties() {
        let mut rib = rib();
        let _a = up(&mut rib, 1, "192.168.1.12", ASN);
        let _b = up(&mut rib, 2, "192.168.1.13", ASN);
        let _c = up(&mut rib, 3, "192.168.1.14", ASN);
        let p = "10.244.9.0/26";
        announce(&mut rib, 1, p, learned("192.168.1.12", vec![65001]));
        announce(&mut rib, 2, p, learned("192.168.1.13", vec![65001]));
        let mut longer = learned("192.168.1.14", vec![65001, 65002]);
        longer.local_pref = Some(100);
        announce(&mut rib, 3, p, longer);
        rib.flush();
        let gw = |s: &[&str]| s.iter().map(|a| a.parse().unwrap()).collect::<Gateways>();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Via(p.parse().unwrap(), gw(&["192.168.1.12", "192.168.1.13"]))]
        );
        let mut preferred = learned("192.168.1.14", vec![65001, 65002]);
        preferred.local_pref = Some(200);
        announce(&mut rib, 3, p, preferred);
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Via(p.parse().unwrap(), gw(&["192.168.1.14"]))]
        );
        let QueryReply::Routes(routes) = rib.query(Query::Routes(Some(p.parse().unwrap()))) else {
            panic!()
        };
        assert_eq!(
            routes
                .iter()
                .filter(|r| r.best)
                .map(|r| r.from.as_str())
                .collect::<Vec<_>>(),
            vec!["peer3"]
        );
    }

    #[test]
    fn med_compared_only_within_the_same_neighbour_as() {
        let mut rib = rib();
        let _a = up(&mut rib, 1, "192.168.1.12", 65001);
        let _b = up(&mut rib, 2, "192.168.1.13", 65001);
        let p = "10.244.9.0/26";
        let mut high = learned("192.168.1.12", vec![65001]);
        high.med = Some(50);
        let mut low = learned("192.168.1.13", vec![65001]);
        low.med = Some(10);
        announce(&mut rib, 1, p, high);
        announce(&mut rib, 2, p, low);
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Via(
                p.parse().unwrap(),
                Gateways::from_elem("192.168.1.13".parse().unwrap(), 1)
            )]
        );
    }

    #[test]
    fn ebgp_export_prepends_and_sets_next_hop_self() {
        let mut rib = rib();
        originate(&mut rib, &["10.244.1.0/26"]);
        let _ibgp = up(&mut rib, 1, "192.168.1.12", ASN);
        let mut tor = up(&mut rib, 2, "192.168.1.1", 65001);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        let updates = received(&mut tor);
        let mut got: Vec<(String, String, Option<Ipv4Addr>, bool)> = updates
            .iter()
            .flat_map(|u| {
                u.nlri.iter().map(move |n| {
                    (
                        n.prefix.to_string(),
                        u.as_path().unwrap().to_string(),
                        u.next_hop(),
                        u.attribute(bgp_proto::attributes::type_code::LOCAL_PREF).is_some(),
                    )
                })
            })
            .collect();
        got.sort();
        let me = Some("192.168.1.11".parse().unwrap());
        assert_eq!(
            got,
            vec![
                ("10.244.1.0/26".into(), "64512".into(), me, false),
                ("10.244.2.0/26".into(), "64512".into(), me, false)
            ]
        );
    }

    #[test]
    fn ebgp_route_with_our_as_is_a_loop() {
        let mut rib = rib();
        let _tor = up(&mut rib, 1, "192.168.1.1", 65001);
        announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.1", vec![65001, ASN]));
        rib.flush();
        assert!(rib.take_kernel_ops().is_empty());
        let QueryReply::Summary(s) = rib.query(Query::Summary) else {
            panic!()
        };
        assert_eq!(s.prefixes, 0);
    }

    #[test]
    fn reflector_reflects_client_routes_with_originator_and_cluster_list() {
        let mut rib = rib();
        rib.cfg.cluster_id = Some("1.1.1.1".parse().unwrap());
        let (mut c1, o1, _r1) = peer(1, "192.168.1.12", ASN, 64);
        c1.rr_client = true;
        let (mut c2, o2, mut r2) = peer(2, "192.168.1.13", ASN, 64);
        c2.rr_client = true;
        rib.handle(RibMsg::PeerUp(c1, o1));
        rib.handle(RibMsg::PeerUp(c2, o2));
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        let u: Vec<Update> = received(&mut r2).into_iter().filter(|u| !u.nlri.is_empty()).collect();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].next_hop(), Some("192.168.1.12".parse().unwrap()), "next hop kept");
        let attrs = RouteAttrs::from_update(&u[0], Family::IPV4_UNICAST, true);
        assert_eq!(attrs.originator_id, Some("192.168.1.12".parse().unwrap()));
        assert_eq!(attrs.cluster_list, vec!["1.1.1.1".parse::<Ipv4Addr>().unwrap()]);
        // The route coming back with our cluster id is a loop.
        let mut back = attrs.clone();
        back.next_hop = Some("192.168.1.13".parse().unwrap());
        announce(&mut rib, 2, "10.244.5.0/26", back);
        rib.flush();
        let QueryReply::Routes(r) = rib.query(Query::Routes(Some("10.244.5.0/26".parse().unwrap()))) else {
            panic!()
        };
        assert!(r.is_empty());
    }

    #[test]
    fn slow_peer_backlog_is_bounded_and_coalesced() {
        let mut rib = rib();
        let (info, out, mut rx) = peer(1, "192.168.1.12", ASN, 1);
        let flag = out.want_writable.clone();
        rib.handle(RibMsg::PeerUp(info, out));
        let _src = up(&mut rib, 2, "192.168.1.1", 65001);
        for i in 0..50u32 {
            let mut a = learned("192.168.1.1", vec![65001]);
            a.med = Some(i);
            announce(&mut rib, 2, &format!("10.244.{i}.0/26"), a);
            rib.flush();
        }
        assert!(
            flag.load(AtomicOrdering::Acquire),
            "queue full: writer asked to report room"
        );
        // The same prefixes change again while the peer is stuck: they coalesce.
        for i in 0..50u32 {
            rib.handle(RibMsg::Withdraw {
                peer: 2,
                family: Family::IPV4_UNICAST,
                nlri: nlri(&format!("10.244.{i}.0/26")),
            });
        }
        rib.flush();
        let queued = rib.peers[&1].queue.len();
        assert!(queued <= 50, "one queued entry per prefix, got {queued}");
        // Drain: the peer ends up with nothing announced.
        let mut all = Vec::new();
        for _ in 0..200 {
            all.extend(received(&mut rx));
            rib.handle(RibMsg::Writable(1));
        }
        all.extend(received(&mut rx));
        let mut state: HashMap<IpNetwork, bool> = HashMap::new();
        for u in &all {
            for n in &u.withdrawn {
                state.insert(n.prefix, false);
            }
            for n in &u.nlri {
                state.insert(n.prefix, true);
            }
        }
        assert!(
            state.values().all(|up| !up),
            "every announced prefix was withdrawn in the end"
        );
        assert_eq!(rib.peers[&1].advertised.count, 0);
    }

    #[test]
    fn graceful_restart_keeps_stale_routes_until_end_of_rib() {
        let mut rib = rib();
        let _a = up(&mut rib, 1, "192.168.1.12", ASN);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        announce(&mut rib, 1, "10.244.3.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        assert_eq!(rib.take_kernel_ops().len(), 2);
        rib.handle(RibMsg::PeerDownGraceful {
            peer: 1,
            families: [Family::IPV4_UNICAST].into_iter().collect(),
            restart_time: std::time::Duration::from_secs(120),
        });
        rib.flush();
        assert!(rib.take_kernel_ops().is_empty(), "stale routes keep forwarding");
        // The peer comes back and re-announces one block, then End-of-RIB.
        let _a = up(&mut rib, 1, "192.168.1.12", ASN);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        assert!(rib.take_kernel_ops().is_empty(), "same forwarding, nothing to change");
        rib.handle(RibMsg::EndOfRib(1, Family::IPV4_UNICAST));
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Remove("10.244.3.0/26".parse().unwrap())]
        );
        assert!(rib.ghosts.is_empty());
    }

    #[test]
    fn graceful_restart_stale_routes_expire() {
        let mut rib = rib();
        let _a = up(&mut rib, 1, "192.168.1.12", ASN);
        announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
        rib.flush();
        rib.take_kernel_ops();
        rib.handle(RibMsg::PeerDownGraceful {
            peer: 1,
            families: [Family::IPV4_UNICAST].into_iter().collect(),
            restart_time: std::time::Duration::from_secs(120),
        });
        rib.flush();
        let deadline = rib.next_deadline().expect("a stale set is pending");
        rib.expire(deadline - std::time::Duration::from_secs(1));
        rib.flush();
        assert!(rib.take_kernel_ops().is_empty(), "not yet");
        rib.expire(deadline);
        rib.flush();
        assert_eq!(
            rib.take_kernel_ops(),
            vec![KernelOp::Remove("10.244.2.0/26".parse().unwrap())]
        );
    }

    #[test]
    fn ipv4_blocks_go_over_ipv6_sessions_only_with_rfc8950() {
        let mut rib = rib();
        originate(&mut rib, &["10.244.1.0/26"]);
        let (mut plain, out, mut rx_plain) = peer(1, "fd00::12", ASN, 64);
        plain.local_address = "fd00::11".parse().unwrap();
        rib.handle(RibMsg::PeerUp(plain, out));
        let (mut ext, out, mut rx_ext) = peer(2, "fd00::13", ASN, 64);
        ext.local_address = "fd00::11".parse().unwrap();
        ext.ipv4_via_ipv6 = true;
        rib.handle(RibMsg::PeerUp(ext, out));
        rib.flush();
        assert!(
            received(&mut rx_plain).iter().all(|u| u.as_end_of_rib().is_some()),
            "no IPv6 next hop without RFC 8950"
        );
        let got: Vec<Update> = received(&mut rx_ext)
            .into_iter()
            .filter(|u| u.as_end_of_rib().is_none())
            .collect();
        assert_eq!(got.len(), 1);
        let mp = got[0].mp_reach().expect("IPv4 NLRI in MP_REACH_NLRI");
        assert_eq!(mp.family, Family::IPV4_UNICAST);
        assert_eq!(mp.next_hop.addr(), "fd00::11".parse::<IpAddr>().unwrap());
        assert_eq!(mp.nlri, nlri("10.244.1.0/26"));
    }

    #[test]
    fn peers_with_the_same_context_share_one_encoding() {
        let mut rib = rib();
        let mut r1 = up(&mut rib, 1, "192.168.1.12", 65001);
        let mut r2 = up(&mut rib, 2, "192.168.1.13", 65002);
        rib.flush();
        received(&mut r1);
        received(&mut r2);
        originate(&mut rib, &["10.244.1.0/26", "10.244.1.64/26"]);
        rib.flush();
        let a = r1.try_recv().unwrap();
        let b = r2.try_recv().unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
    }
}
