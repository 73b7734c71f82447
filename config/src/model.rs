//! The validated configuration. All times are whole seconds; all defaults are filled.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde::{Serialize, Serializer};

use crate::types::{
    AddPath, Community, ExtCommunity, Family, IpipMode, LargeCommunity, NextHop, PolicyDefault, RuleAction,
};

/// Shows a TCP-MD5 key as `<redacted>` so `ternctl` never prints secrets.
fn redact<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_some("<redacted>"),
        None => s.serialize_none(),
    }
}

/// Stands in for a TCP-MD5 key in `Debug` output, so logs never carry secrets.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Debug` as derived, except the fields marked `#[secret]` (an
/// `Option<String>`) print as `Some(<redacted>)` or `None`. The struct is
/// destructured without `..`, so a field added to it but not here fails to compile.
macro_rules! debug_redacted {
    ($ty:ident { $($(#[$secret:ident])? $field:ident),* $(,)? }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $ty { $($field),* } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), debug_redacted!(@value $($secret)? $field)))*
                    .finish()
            }
        }
    };
    (@value secret $field:ident) => {
        &$field.as_ref().map(|_| Redacted)
    };
    (@value $field:ident) => {
        $field
    };
}

/// A validated tern configuration. `PartialEq` lets the daemon diff old and new on SIGHUP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `[bgp]`: global speaker settings.
    pub bgp: Bgp,
    /// `[graceful_restart]`.
    pub graceful_restart: GracefulRestart,
    /// `[kernel]`: FIB programming.
    pub kernel: Kernel,
    /// `[[originate]]`: our own prefixes.
    pub originate: Vec<Originate>,
    /// `[learn]`: routes other programs put in the kernel, announced too.
    pub learn: Learn,
    /// `[control]`: local sockets.
    pub control: Control,
    /// `[metrics]`: Prometheus endpoint, if any.
    pub metrics: Option<Metrics>,
    /// `[bfd]`: timers of every BFD session.
    pub bfd: Bfd,
    /// `[mesh]`: full iBGP mesh, if any.
    pub mesh: Option<Mesh>,
    /// `[[dynamic_peers]]`: ranges peers may connect from.
    pub dynamic_peers: Vec<DynamicPeers>,
    /// `[[peer]]`: explicit neighbors.
    pub peers: Vec<Peer>,
    /// `[[policy]]`: named import/export policies.
    pub policies: Vec<Policy>,
}

/// `[bgp]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bgp {
    /// Our AS number (4-octet, RFC 6793).
    pub asn: u32,
    /// BGP Identifier (RFC 4271 §4.2).
    pub router_id: Ipv4Addr,
    /// Addresses to accept connections on; empty: do not listen.
    pub listen: Vec<SocketAddr>,
    /// Proposed Hold Time: 0 or 3..=65535 (RFC 4271 §4.2).
    pub hold_time: u16,
    /// KEEPALIVE interval; default `hold_time / 3` (RFC 4271 §10).
    pub keepalive_time: u16,
    /// ConnectRetryTimer, >= 1.
    pub connect_retry_time: u32,
    /// Route-reflector CLUSTER_ID (RFC 4456 §7); set on reflectors.
    pub cluster_id: Option<Ipv4Addr>,
    /// Reject eBGP UPDATEs whose AS_PATH does not start with the peer's AS (RFC 4271 §6.3).
    pub enforce_first_as: bool,
    /// RFC 8212: eBGP peers without explicit policy exchange nothing.
    pub rfc8212: bool,
}

/// `[graceful_restart]` (RFC 4724, RFC 9494).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GracefulRestart {
    /// Advertise and honour graceful restart.
    pub enabled: bool,
    /// Restart Time we advertise, 0..=4095 (12-bit field, RFC 4724 §3).
    pub restart_time: u16,
    /// How long a restarting peer's routes are kept stale.
    pub stale_routes_time: u32,
    /// Long-lived stale time, 0..=16777215 (24-bit, RFC 9494); 0 = off.
    pub long_lived_stale_time: u32,
    /// After our own restart, longest we defer route selection waiting for
    /// peers' End-of-RIB (RFC 4724 §4.1 Selection_Deferral_Timer).
    pub select_defer_time: u32,
}

/// `[kernel]`: how routes reach the Linux FIB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kernel {
    /// Program routes at all.
    pub enabled: bool,
    /// IPIP encapsulation mode.
    pub ipip: IpipMode,
    /// Tunnel device name (a valid Linux ifname).
    pub tunnel_device: String,
    /// Only routes inside one of these reach the kernel.
    pub allowed_prefixes: Vec<IpNetwork>,
    /// Routing table id (never 0 or 255).
    pub table: u32,
    /// rtnetlink protocol number our routes carry (never 0..=3).
    pub protocol: u8,
    /// Route metric (priority).
    pub metric: u32,
    /// Seconds after start before unconfirmed adopted routes are removed.
    pub sweep_after: u32,
}

/// `[learn]`: kernel routes of other programs (Calico's Felix writes pod
/// routes with protocol 3 "boot" and 80) announced like originated ones, as
/// BIRD's kernel protocol with `learn` does. Empty `prefixes`: nothing learned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Learn {
    /// rtnetlink protocol numbers to learn: never 0..=2 or our own.
    pub protocols: Vec<u8>,
    /// Only routes inside one of these.
    pub prefixes: Vec<IpNetwork>,
    /// Only routes whose output device matches one of these globs; empty: any.
    pub interfaces: Vec<String>,
}

/// `[[originate]]`: a prefix this host announces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Originate {
    /// The prefix (host bits zero).
    pub prefix: IpNetwork,
    /// Install a blackhole route for it.
    pub blackhole: bool,
    /// Standard communities attached.
    pub communities: Vec<Community>,
    /// Large communities attached.
    pub large_communities: Vec<LargeCommunity>,
}

/// `[control]`: local control sockets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    /// ternctl socket.
    pub socket: PathBuf,
    /// BIRD-compatible CLI socket (IPv4 view).
    pub bird_socket: Option<PathBuf>,
    /// BIRD-compatible CLI socket (IPv6 view).
    pub bird6_socket: Option<PathBuf>,
    /// Permission bits of the ternctl socket (default 0o660: owner and group).
    pub socket_mode: u32,
    /// Group that owns the ternctl socket (name or number); `None`: the daemon's.
    pub socket_group: Option<String>,
    /// A second ternctl socket that answers `show …` only (commands that
    /// change things are refused), so reading can be allowed more widely.
    pub read_only_socket: Option<PathBuf>,
    /// Permission bits of the read-only socket (default 0o666).
    pub read_only_socket_mode: u32,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Prometheus text endpoint.
    pub listen: SocketAddr,
}

/// `[bfd]`: the timers every BFD session (RFC 5880) starts with; which
/// peers run one is their `bfd = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bfd {
    /// Required Min RX Interval we advertise, milliseconds (default 300).
    pub min_rx_ms: u32,
    /// Desired Min TX Interval once Up, milliseconds (default 300).
    pub min_tx_ms: u32,
    /// Detect Mult: missed intervals before the remote declares us down (default 3).
    pub multiplier: u8,
}

impl Default for Bfd {
    fn default() -> Bfd {
        Bfd {
            min_rx_ms: 300,
            min_tx_ms: 300,
            multiplier: 3,
        }
    }
}

/// `[mesh]`: full iBGP mesh.
/// `Debug` shows the password as `<redacted>`.
#[derive(Clone, PartialEq, Serialize)]
pub struct Mesh {
    /// The other hosts.
    pub peers: Vec<IpAddr>,
    /// Our address in the mesh (default `bgp.router_id`).
    pub local_address: IpAddr,
    /// TCP-MD5 key for all mesh sessions (RFC 2385).
    #[serde(serialize_with = "redact")]
    pub password: Option<String>,
    /// Remote TCP port.
    pub port: u16,
    /// Run BFD with every mesh peer.
    pub bfd: bool,
}

debug_redacted!(Mesh {
    peers,
    local_address,
    #[secret]
    password,
    port,
    bfd
});

/// `max_prefixes`: limit on prefixes accepted from a peer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaxPrefixes {
    /// Prefix count that trips the limit (>= 1).
    pub limit: u32,
    /// Log a warning at this percentage of `limit` (1..=100).
    pub warning_percent: u8,
    /// Seconds before reconnecting after the limit tripped; 0 = stay down.
    pub restart_after: u32,
}

/// `[[dynamic_peers]]`: accept sessions from any address in a range.
/// `Debug` shows the password as `<redacted>`.
#[derive(Clone, PartialEq, Serialize)]
pub struct DynamicPeers {
    /// Source range (host bits zero).
    pub range: IpNetwork,
    /// Remote AS expected (default `bgp.asn`).
    pub asn: u32,
    /// Maximum concurrent sessions from the range.
    pub limit: u32,
    /// Treat these peers as route-reflector clients (RFC 4456).
    pub route_reflector_client: bool,
    /// TCP-MD5 key.
    #[serde(serialize_with = "redact")]
    pub password: Option<String>,
    /// Hold time override.
    pub hold_time: Option<u16>,
    /// Keepalive override.
    pub keepalive_time: Option<u16>,
    /// Import policy chain.
    pub import: Vec<String>,
    /// Export policy chain.
    pub export: Vec<String>,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixes>,
    /// Run BFD with every peer admitted from the range.
    pub bfd: bool,
}

debug_redacted!(DynamicPeers {
    range,
    asn,
    limit,
    route_reflector_client,
    #[secret]
    password,
    hold_time,
    keepalive_time,
    import,
    export,
    max_prefixes,
    bfd
});

/// `[[peer]]`: an explicit neighbor, as written (overrides stay `Option`).
///
/// See [`Config::effective_peers`] for the fully resolved view.
/// `Debug` shows the password as `<redacted>`.
#[derive(Clone, PartialEq, Serialize)]
pub struct Peer {
    /// Unique name (default `Peer_` + address with `.`/`:` as `_`).
    pub name: String,
    /// Remote address.
    pub address: IpAddr,
    /// Remote AS.
    pub asn: u32,
    /// Remote TCP port.
    pub port: u16,
    /// Local AS for this session (default `bgp.asn`).
    pub local_asn: u32,
    /// Only accept, never connect.
    pub passive: bool,
    /// Administratively up.
    pub enabled: bool,
    /// TCP-MD5 key (RFC 2385).
    #[serde(serialize_with = "redact")]
    pub password: Option<String>,
    /// GTSM (RFC 5082).
    pub ttl_security: bool,
    /// GTSM hop count, 1..=254.
    pub ttl_security_hops: u8,
    /// Outgoing TTL as written; `None`: 1 for eBGP, 64 for iBGP.
    pub multihop: Option<u8>,
    /// Local address for the session.
    pub source_address: Option<IpAddr>,
    /// Next-hop handling on export.
    pub next_hop: NextHop,
    /// Route-reflector client (RFC 4456).
    pub route_reflector_client: bool,
    /// Hold time override.
    pub hold_time: Option<u16>,
    /// Keepalive override.
    pub keepalive_time: Option<u16>,
    /// Accept our own AS in AS_PATH this many times (0..=10).
    pub allowas_in: u8,
    /// Address families to negotiate.
    pub families: Vec<Family>,
    /// ADD-PATH mode (RFC 7911).
    pub add_path: AddPath,
    /// Import policy chain (names of `[[policy]]`).
    pub import: Vec<String>,
    /// Export policy chain.
    pub export: Vec<String>,
    /// Administrative shutdown text (RFC 8203), <= 255 bytes.
    pub shutdown_message: Option<String>,
    /// Free text for operators (`show peer`, BIRD's `description`), <= 255 bytes.
    pub description: Option<String>,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixes>,
    /// Run BFD with this peer (RFC 5882: its failure takes the session down).
    pub bfd: bool,
}

debug_redacted!(Peer {
    name,
    address,
    asn,
    port,
    local_asn,
    passive,
    enabled,
    #[secret]
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
    bfd
});

/// `[[policy]]`: an ordered rule list with a default verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Unique name, referenced by `import`/`export`.
    pub name: String,
    /// Verdict when no rule decides.
    pub default: PolicyDefault,
    /// Rules, in order.
    pub rules: Vec<Rule>,
}

/// A prefix match with a prefix-length range: `prefix.len() <= ge <= le <= max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixMatch {
    /// Covering prefix.
    pub prefix: IpNetwork,
    /// Shortest matching length (default: the prefix length, or `ge` if only `ge`).
    pub ge: u8,
    /// Longest matching length (default: `ge` if neither given, else the family maximum).
    pub le: u8,
}

impl PrefixMatch {
    /// Whether `net` lies inside `prefix` with a length in `ge..=le`.
    pub fn matches(&self, net: &IpNetwork) -> bool {
        let len = net.prefix();
        len >= self.ge && len <= self.le && self.prefix.contains(net.network())
    }
}

/// `[[policy.rule]]`: all given match fields must hold; then the actions apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Prefix match.
    pub prefix: Option<PrefixMatch>,
    /// Route carries this standard community.
    pub community: Option<Community>,
    /// Route carries this large community.
    pub large_community: Option<LargeCommunity>,
    /// AS_PATH contains this AS.
    pub as_path_contains: Option<u32>,
    /// AS_PATH originates in this AS.
    pub origin_as: Option<u32>,
    /// The peer the route came from / goes to.
    pub neighbor: Option<IpAddr>,
    /// Verdict after the sets.
    pub action: RuleAction,
    /// LOCAL_PREF to set.
    pub set_local_pref: Option<u32>,
    /// MED to set.
    pub set_med: Option<u32>,
    /// Standard communities to add.
    pub add_communities: Vec<Community>,
    /// Standard communities to remove.
    pub remove_communities: Vec<Community>,
    /// Large communities to add.
    pub add_large_communities: Vec<LargeCommunity>,
    /// Large communities to remove.
    pub remove_large_communities: Vec<LargeCommunity>,
    /// Extended communities to add.
    pub add_ext_communities: Vec<ExtCommunity>,
    /// Prepend our AS this many times (0..=10).
    pub prepend: u8,
}

/// Where an [`EffectivePeer`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PeerOrigin {
    /// A `[[peer]]` entry (its index).
    Explicit(usize),
    /// A `[mesh] peers` entry (its index).
    Mesh(usize),
}

/// How the session's IP TTL is set and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TtlMode {
    /// Send with this TTL, accept any.
    Fixed(u8),
    /// GTSM (RFC 5082 §3): send 255, accept only TTL >= 256 - hops.
    Gtsm {
        /// Allowed hop count.
        hops: u8,
    },
}

/// A neighbor with every default and inheritance resolved; what a session task runs.
/// `Debug` shows the password as `<redacted>`.
#[derive(Clone, PartialEq, Serialize)]
pub struct EffectivePeer {
    /// Protocol name (`tor1`, `Peer_192_168_1_1`, `Mesh_192_168_1_12`).
    pub name: String,
    /// Where it was configured.
    pub origin: PeerOrigin,
    /// Remote address.
    pub address: IpAddr,
    /// Remote TCP port.
    pub port: u16,
    /// Remote AS.
    pub asn: u32,
    /// Our AS on this session.
    pub local_asn: u32,
    /// `asn == local_asn`.
    pub ibgp: bool,
    /// Only accept, never connect.
    pub passive: bool,
    /// Administratively up.
    pub enabled: bool,
    /// TCP-MD5 key.
    #[serde(serialize_with = "redact")]
    pub password: Option<String>,
    /// TTL handling.
    pub ttl: TtlMode,
    /// Local address for the session.
    pub source_address: Option<IpAddr>,
    /// Next-hop handling.
    pub next_hop: NextHop,
    /// Route-reflector client.
    pub route_reflector_client: bool,
    /// Hold time we propose.
    pub hold_time: u16,
    /// Keepalive interval.
    pub keepalive_time: u16,
    /// allowas-in count.
    pub allowas_in: u8,
    /// Families to negotiate.
    pub families: Vec<Family>,
    /// ADD-PATH mode.
    pub add_path: AddPath,
    /// Import policy chain.
    pub import: Vec<String>,
    /// Export policy chain.
    pub export: Vec<String>,
    /// Administrative shutdown text.
    pub shutdown_message: Option<String>,
    /// Operator's free text (`[[peer]]` only).
    pub description: Option<String>,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixes>,
    /// Run a BFD session with this peer; its Down takes the BGP session down (RFC 5882).
    pub bfd: bool,
}

debug_redacted!(EffectivePeer {
    name,
    origin,
    address,
    port,
    asn,
    local_asn,
    ibgp,
    passive,
    enabled,
    #[secret]
    password,
    ttl,
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
    bfd
});

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// No TCP-MD5 key of the reference file shows in `Debug` output, of the
    /// config or of the resolved peers; that a key is set still does.
    #[test]
    fn debug_redacts_passwords() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/reference.toml");
        let config = crate::load(&path).unwrap();
        let peers = config.effective_peers();
        for text in [format!("{config:?}"), format!("{peers:?}"), format!("{config:#?}")] {
            for secret in ["mesh-secret", "rr-secret", "tor-secret"] {
                assert!(!text.contains(secret), "{secret} leaked");
            }
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(format!("{config:?}").contains("password: Some(<redacted>)"));
        let mesh = config.mesh.as_ref().unwrap();
        assert_eq!(mesh.password.as_deref(), Some("mesh-secret"));
        assert!(format!("{mesh:?}").starts_with("Mesh { peers: ["));
    }
}
