//! The ternctl protocol: one JSON request per line, one JSON reply per line,
//! `{"ok": REPLY}` or `{"error": "TEXT"}`. These types are what ternd
//! serializes and ternctl (and the tests) deserialize; the field names are
//! the stable `--json` output.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// A request from ternctl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    Peers,
    /// `show bfd`: every BFD session.
    Bfd,
    Routes {
        prefix: Option<String>,
    },
    Fib,
    Status,
    /// Stop the daemon: gracefully (peers and the kernel keep our routes) or hard.
    Shutdown {
        hard: bool,
    },
    /// `peer disable|enable|reset|refresh NAME`.
    Peer {
        name: String,
        action: PeerRequest,
    },
    /// Re-read the configuration file, as SIGHUP does.
    Reload,
    /// `show routes --peer NAME [--received|--advertised]`.
    PeerRoutes {
        name: String,
        advertised: bool,
    },
}

/// What to do to one peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PeerRequest {
    /// Cease / Administrative Shutdown with the RFC 9003 text; stays down until enabled.
    Disable {
        message: Option<String>,
    },
    Enable,
    /// Cease / Administrative Reset, then connect again.
    Reset,
    /// ROUTE-REFRESH to the peer (`inbound`) and/or our routes again (`outbound`).
    Refresh {
        inbound: bool,
        outbound: bool,
    },
}

/// Where a peer stands after a `peer …` command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerActionReply {
    pub name: String,
    pub state: String,
    pub disabled: bool,
}

/// What `reload` changed.
pub use crate::registry::ReloadReport as ReloadReply;

/// The answer line: a reply or an error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Response<T> {
    Ok(T),
    Error(String),
}

/// One peer (`show peers`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerReply {
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    /// RFC 4271 §8.2.2 state name, e.g. `Established`.
    pub state: String,
    /// The operator's `description` of the peer.
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds since the session came up (Established) or went down; a
    /// down peer's connect retries do not reset it.
    pub uptime_secs: u64,
    /// That moment, seconds since the Unix epoch.
    pub since_unix: u64,
    pub last_error: Option<String>,
    /// The last NOTIFICATION sent or received, and why (kept across retries).
    #[serde(default)]
    pub last_notification: Option<String>,
    /// Disabled by an operator (`ternctl peer disable`).
    #[serde(default)]
    pub disabled: bool,
    pub hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    pub peer_hostname: Option<String>,
    /// Negotiated families, e.g. `ipv4-unicast`.
    pub families: Vec<String>,
    /// Capabilities the session runs with (`show peer NAME`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Our KEEPALIVE interval on the session, seconds.
    #[serde(default)]
    pub keepalive_time: Option<u16>,
    pub local_address: Option<IpAddr>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub malformed_updates: u64,
    /// Prefixes received from the peer (its Adj-RIB-In).
    pub received: usize,
    /// Prefixes advertised to it (its Adj-RIB-Out).
    pub advertised: usize,
    /// The counts per negotiated family (`show peer NAME`).
    #[serde(default)]
    pub family_counts: Vec<FamilyCountsReply>,
    pub passive: bool,
    /// Graceful restart in progress for this peer (we keep its routes as stale).
    pub graceful_restart: Option<GracefulRestartReply>,
    /// The peer's BFD session state (`Up`, `Down`, `Init`, `AdminDown`); None without BFD.
    #[serde(default)]
    pub bfd: Option<String>,
}

/// One family of one session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FamilyCountsReply {
    /// e.g. `ipv4-unicast`.
    pub family: String,
    /// Paths accepted by the import policy (in the RIB).
    pub accepted: usize,
    /// Routes the import policy rejected since the session came up.
    pub filtered: u64,
    /// Prefixes advertised to the peer.
    pub advertised: usize,
}

/// One BFD session (`show bfd`): peer, addresses, state, negotiated
/// intervals (µs), detection time, last diagnostic, time since the last change.
pub use crate::bfd::BfdView as BfdReply;

/// A peer's graceful restart as the helper sees it (RFC 4724 §4.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GracefulRestartReply {
    /// `restarting` (session down, within its restart time) or
    /// `waiting for End-of-RIB` (session back, stale routes not yet replaced).
    pub state: String,
    pub stale_routes: usize,
    /// Seconds until the stale routes are removed.
    pub remaining_secs: u64,
}

/// One path of one prefix (`show routes`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteReply {
    pub prefix: String,
    /// The best path of its prefix.
    pub best: bool,
    /// `local`, `kernel` (learned, `[learn]`), a peer name, or `NAME (stale)`
    /// for a graceful-restart stale path.
    pub from: String,
    pub next_hop: Option<IpAddr>,
    pub as_path: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub origin: String,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub path_id: Option<u32>,
    /// Route age: seconds since the prefix last changed (a path announced,
    /// replaced or withdrawn, or its next hop's resolution changed).
    #[serde(default)]
    pub age_secs: u64,
    /// For a route learned from the kernel: who wrote it and where it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedReply>,
}

/// A kernel route of another program that ternd announces (`[learn]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LearnedReply {
    /// rtnetlink protocol number (Felix: 3 "boot", 80).
    pub protocol: u8,
    pub devices: Vec<String>,
    pub blackhole: bool,
}

/// One route tern keeps in the kernel (`show fib`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FibReply {
    pub prefix: String,
    /// `unicast`, `blackhole`, `other` or `none`.
    pub kind: String,
    pub gateways: Vec<IpAddr>,
    /// Output devices of the installed route, comma-separated (e.g. `eth0`).
    pub device: String,
    /// `installed`, `queued`, `stale`, `unresolved: …`, `conflict with proto N`, `failed: …`.
    pub state: String,
}

/// The daemon summary (`show status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReply {
    pub version: String,
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub uptime_secs: u64,
    /// Every established peer has sent End-of-RIB.
    pub converged: bool,
    pub peers_established: usize,
    pub peers_configured: usize,
    pub prefixes: usize,
    pub paths: usize,
    pub attribute_sets: usize,
    pub kernel_routes: usize,
    /// Kernel routes of other programs announced (`[learn]`).
    #[serde(default)]
    pub learned_routes: usize,
    /// After our own restart: routes are not sent until peers' End-of-RIB (RFC 4724 §4.1).
    pub selection_deferred: bool,
    pub fib: Option<FibCounters>,
}

/// What `ternctl shutdown` was told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShutdownReply {
    /// `graceful` or `hard`.
    pub mode: String,
}

/// Kernel sync counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FibCounters {
    pub installs: u64,
    pub deletes: u64,
    pub conflicts: u64,
    pub errors: u64,
    pub resyncs: u64,
    pub restores: u64,
    pub pending: u64,
}
