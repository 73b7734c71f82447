//! The messages between tasks, in one place: what peer sessions tell the
//! RIB ([`RibMsg`]), what the RIB hands back to a session ([`PeerOut`],
//! [`PeerSignal`]) and to the kernel task ([`KernelWork`]), and what the
//! supervisor tells a session ([`PeerCmd`]). Queries carry their own typed
//! reply channel, so no caller has an "unexpected reply" branch.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use bgp_proto::attributes::Community;
use bgp_proto::framing::FrameError;
use bgp_proto::fsm::ConnId;
use bgp_proto::{Context, Family, FamilySet, Nlri};
use bytes::Bytes;
use ipnetwork::IpNetwork;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::route::policy::Chain;
use crate::route::RouteAttrs;

/// Identifies a peer (one configured or dynamic neighbour) inside the
/// daemon, everywhere; names are only for display. [`LOCAL`] is the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub u32);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The "peer" that originated routes belong to.
pub const LOCAL: PeerId = PeerId(0);
/// The "peer" that routes learned from the kernel (`[learn]`) belong to.
pub const KERNEL: PeerId = PeerId(u32::MAX);

impl PeerId {
    /// Routes of this host: originated or learned from its kernel, not from a peer.
    pub fn is_this_host(self) -> bool {
        self == LOCAL || self == KERNEL
    }
}
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
    /// Graceful restart as the peer announced it in this session's OPEN,
    /// when we negotiate it too (RFC 4724 §3).
    pub graceful_restart: Option<PeerGracefulRestart>,
}

/// How long a peer's routes outlive its session (RFC 4724, RFC 9494).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Families kept, stale, through the restart time.
    pub families: FamilySet,
    pub restart_time: std::time::Duration,
    /// Families kept after that as LLGR_STALE (RFC 9494), and for how long.
    pub long_lived: FamilySet,
    pub long_lived_time: std::time::Duration,
}

impl Retention {
    /// Graceful restart only (RFC 4724).
    pub fn restart(families: FamilySet, restart_time: std::time::Duration) -> Retention {
        Retention {
            families,
            restart_time,
            long_lived: FamilySet::new(),
            long_lived_time: std::time::Duration::ZERO,
        }
    }
}

/// A peer's graceful-restart capability on the current session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerGracefulRestart {
    /// Families whose forwarding state it preserved (F bit set).
    pub forwarding: FamilySet,
    /// R bit: it has just restarted.
    pub restarting: bool,
    /// It announced long-lived graceful restart (RFC 9494): it may be sent
    /// LLGR_STALE routes.
    pub long_lived: bool,
}

/// The parts of a session's settings a reload may change while it runs.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    pub import: Chain,
    pub export: Chain,
    pub next_hop: NextHopMode,
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
    /// The peer sent more prefixes than its limit (the last of `family`):
    /// tear the session down (RFC 4486 §4 names the family).
    MaxPrefixes { limit: u32, family: Family },
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
    /// Shared with the session's writer.
    pub flow: Arc<OutFlow>,
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
    /// Next hops the RIB now has paths via: report whether they resolve.
    Track(Vec<Gateway>),
}

/// A prefix this host originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Originated {
    pub prefix: IpNetwork,
    pub blackhole: bool,
    pub communities: Vec<Community>,
    pub large_communities: Vec<bgp_proto::attributes::LargeCommunity>,
}

/// A kernel route of another program that this host announces (`[learn]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    /// `rtm_protocol` of the program that wrote it (Felix: 3 "boot", 80).
    pub protocol: u8,
    /// Its output devices (none for a blackhole).
    pub devices: Vec<String>,
    pub blackhole: bool,
}

/// Messages to the RIB task.
#[derive(Debug)]
pub enum RibMsg {
    PeerUp(PeerInfo, PeerOut),
    PeerDown(PeerId),
    /// The session of a peer in graceful restart ended in a way that keeps
    /// its routes (RFC 4724 §4.2, RFC 8538): stale, as `retention` says.
    PeerDownGraceful {
        peer: PeerId,
        retention: Retention,
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
    /// Kernel routes learned (`Some`) or gone (`None`).
    Learn(Vec<(IpNetwork, Option<Learned>)>),
    /// The peer's queue has room again.
    Writable(PeerId),
    /// The kernel task took this many chunks of kernel changes: it can have more.
    KernelTaken(usize),
    /// Sweep the kernel routes adopted at start that were not learned again,
    /// after every kernel change owed so far.
    SweepStaleKernelRoutes,
    /// Next hops that stopped or started resolving (from the kernel side).
    NextHops(Vec<(Gateway, bool)>),
    /// The peer asked for our routes of a family again (RFC 2918 §4).
    RouteRefresh(PeerId, Family),
    /// A reload changed a running session's policies, next-hop rule or prefix
    /// limit: what it is sent is re-evaluated (soft reconfiguration).
    PeerPolicy(PeerId, PeerPolicy),
    /// Every path within a prefix (all when `None`), for the front ends.
    Routes(Option<IpNetwork>, oneshot::Sender<Vec<RouteView>>),
    /// The paths of the longest prefix that contains an address.
    LongestMatch(IpAddr, oneshot::Sender<Vec<RouteView>>),
    /// The best paths of the prefixes advertised to a peer (its Adj-RIB-Out).
    Advertised(PeerId, oneshot::Sender<Vec<RouteView>>),
    /// Table sizes, per-peer counts and convergence.
    Summary(oneshot::Sender<RibSummary>),
}

/// Where a path in the RIB came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteSource {
    /// Originated by this host (`[[originate]]`).
    Local,
    /// Learned from this host's kernel (`[learn]`).
    Kernel(Arc<Learned>),
    /// Received from a peer on its current session.
    Peer(PeerId),
    /// Kept from a peer's ended session during graceful restart (RFC 4724 §4.2).
    Stale(PeerId),
}

/// One path of one prefix, typed; the front ends turn it into text.
#[derive(Debug, Clone)]
pub struct RouteView {
    pub prefix: IpNetwork,
    /// Since the prefix last changed: a path announced, replaced or withdrawn,
    /// or its next hop's resolution changed.
    pub age: std::time::Duration,
    pub best: bool,
    pub source: RouteSource,
    /// ADD-PATH path identifier (RFC 7911), when the peer sent one.
    pub path_id: Option<u32>,
    pub attrs: Arc<RouteAttrs>,
}

/// Sizes of the RIB and what each peer sent and was sent.
#[derive(Debug, Clone, Default)]
pub struct RibSummary {
    pub prefixes: usize,
    pub paths: usize,
    pub attribute_sets: usize,
    pub kernel_routes: usize,
    /// Kernel routes of other programs announced (`[learn]`).
    pub learned: usize,
    pub peers: Vec<PeerCounts>,
    /// Paths kept for peers in graceful restart.
    pub stale: Vec<StaleSet>,
    /// Every established peer has sent End-of-RIB for each of its families.
    pub converged: bool,
    /// Route selection deferred after our own restart (RFC 4724 §4.1).
    pub deferring: bool,
}

/// Stale paths kept for one peer in graceful restart (RFC 4724 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleSet {
    pub peer: PeerId,
    pub paths: usize,
    /// Until they are removed unless the peer's End-of-RIB comes first.
    pub remaining: std::time::Duration,
    /// The peer's session is back; they wait for its End-of-RIB.
    pub reconnected: bool,
}

impl RibSummary {
    /// The stale set kept for `peer`, if any.
    pub fn stale_of(&self, peer: PeerId) -> Option<&StaleSet> {
        self.stale.iter().find(|s| s.peer == peer)
    }

    /// Per-family counts of `peer` (empty when it has no session).
    pub fn family_counts(&self, peer: PeerId) -> &[FamilyCounts] {
        self.peers.iter().find(|p| p.peer == peer).map_or(&[], |p| &p.families)
    }

    /// Prefixes received from and advertised to `peer` (0, 0 when it has no session).
    pub fn counts(&self, peer: PeerId) -> (usize, usize) {
        self.peers
            .iter()
            .find(|p| p.peer == peer)
            .map_or((0, 0), |p| (p.received, p.advertised))
    }
}

/// Prefixes received from / advertised to one peer.
#[derive(Debug, Clone)]
pub struct PeerCounts {
    pub peer: PeerId,
    pub received: usize,
    pub advertised: usize,
    /// The same per negotiated family, with the import policy's rejections.
    pub families: Vec<FamilyCounts>,
}

/// One family of one session (`show peer NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyCounts {
    pub family: Family,
    /// Paths in the Loc-RIB (accepted by the import policy).
    pub accepted: usize,
    /// Routes the import policy rejected since the session came up.
    pub filtered: u64,
    pub advertised: usize,
}

/// The gateways of one kernel route; up to two without a heap allocation.
pub type Gateways = smallvec::SmallVec<[Gateway; 2]>;

/// A kernel gateway: the BGP next hop, and for an IPv6 link-local one the
/// peer it came from, whose link it lives on (RFC 2545 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gateway {
    pub addr: IpAddr,
    pub link_of: Option<IpAddr>,
}

impl From<IpAddr> for Gateway {
    fn from(addr: IpAddr) -> Self {
        Gateway { addr, link_of: None }
    }
}

/// A gateway without a link anchor, from its address (as in tests and logs).
impl std::str::FromStr for Gateway {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<IpAddr>().map(Gateway::from)
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.link_of {
            Some(peer) => write!(f, "{} on the link to {peer}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Commands to a peer task.
#[derive(Debug)]
pub enum PeerCmd {
    /// A connection from the peer's address, accepted by a listener.
    Incoming(TcpStream),
    /// Stop the session (Cease / Administrative Shutdown) and end the task.
    Stop(Option<String>),
    /// The peer's BFD session went from Up to Down (the text says why):
    /// the session goes down at once (RFC 5882 §4.3), then connects again.
    BfdDown(String),
    /// Close the connections without a NOTIFICATION and end the task: this
    /// daemon stops for a graceful restart (RFC 4724 §4.1).
    CloseForRestart,
    /// An operator's command (`ternctl peer …`); the reply says whether it was done.
    Act(PeerAction, tokio::sync::oneshot::Sender<Result<(), String>>),
    /// A reload changed only settings a session takes while it runs
    /// (`SOFT_SETTINGS`): apply them without a new OPEN.
    Reconfigure(Box<crate::session::PeerSettings>),
}

/// What an operator asks of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAction {
    /// Cease / Administrative Shutdown (RFC 9003 text if given); the session
    /// stays down, across reloads too, until enabled.
    Disable(Option<String>),
    Enable,
    /// Cease / Administrative Reset (RFC 4486), then connect again.
    Reset,
    /// `inbound`: ask the peer for its routes again (ROUTE-REFRESH, RFC 2918);
    /// `outbound`: send it ours again.
    Refresh {
        inbound: bool,
        outbound: bool,
    },
}

/// Events from a session's connection helpers (connect, reader, writer) to its task.
pub(crate) enum ConnEvent {
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId, String),
    Message(ConnId, Bytes),
    FrameError(ConnId, FrameError),
    Closed(ConnId, String),
    /// The writer found the RIB waiting for room.
    Writable,
}

/// What the RIB and a session's writer share about the RIB's queue to it.
#[derive(Debug, Default)]
pub struct OutFlow {
    /// Set by the RIB when it stopped feeding the queue (full, or
    /// [`OUT_BUDGET`] unsent); the writer then reports [`RibMsg::Writable`].
    pub want_writable: AtomicBool,
    /// Bytes handed to the queue and not written to the socket yet.
    pub unsent: AtomicUsize,
}

/// Unsent bytes a peer's queue holds at most (give or take one hand-over):
/// beyond it the RIB keeps the peer's changes as prefix ids, not encoded
/// bytes. At 5,000 reflector clients encoded bytes waiting on slow sockets
/// were most of the daemon's memory.
pub const OUT_BUDGET: usize = 64 * 1024;

/// Messages to a connection's writer.
pub(crate) enum WriterMsg {
    Send(Bytes),
    /// From now on also drain the RIB's queue for this session.
    Attach(mpsc::Receiver<Bytes>, Arc<OutFlow>),
    Close,
}
