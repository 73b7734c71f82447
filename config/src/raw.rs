//! The file as written: every value keeps its byte span so validation can point at it.
//!
//! Integers are read as `i64` (TOML's integer type) and strings as `String`, so that
//! range and format checks happen in `validate` with a precise message, and all of
//! them are reported, not just the first.

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;
type Opt<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub bgp: Opt<RawBgp>,
    pub graceful_restart: Opt<RawGracefulRestart>,
    pub kernel: Opt<RawKernel>,
    pub originate: Option<Vec<S<RawOriginate>>>,
    pub learn: Opt<RawLearn>,
    pub control: Opt<RawControl>,
    pub metrics: Opt<RawMetrics>,
    pub bfd: Opt<RawBfd>,
    pub mesh: Opt<RawMesh>,
    pub dynamic_peers: Option<Vec<S<RawDynamicPeers>>>,
    pub peer: Option<Vec<S<RawPeer>>>,
    pub policy: Option<Vec<S<RawPolicy>>>,
}

impl RawConfig {
    /// Combines configs deserialized from disjoint parts of one document.
    pub fn merge(&mut self, other: RawConfig) {
        fn take<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        fn extend<T>(a: &mut Option<Vec<T>>, b: Option<Vec<T>>) {
            if let Some(b) = b {
                a.get_or_insert_with(Vec::new).extend(b);
            }
        }
        take(&mut self.bgp, other.bgp);
        take(&mut self.graceful_restart, other.graceful_restart);
        take(&mut self.kernel, other.kernel);
        extend(&mut self.originate, other.originate);
        take(&mut self.learn, other.learn);
        take(&mut self.control, other.control);
        take(&mut self.metrics, other.metrics);
        take(&mut self.bfd, other.bfd);
        take(&mut self.mesh, other.mesh);
        extend(&mut self.dynamic_peers, other.dynamic_peers);
        extend(&mut self.peer, other.peer);
        extend(&mut self.policy, other.policy);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    pub asn: S<i64>,
    pub router_id: S<String>,
    pub listen: Option<Vec<S<String>>>,
    pub hold_time: Opt<i64>,
    pub keepalive_time: Opt<i64>,
    pub connect_retry_time: Opt<i64>,
    pub cluster_id: Opt<String>,
    pub enforce_first_as: Option<bool>,
    pub rfc8212: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGracefulRestart {
    pub enabled: Option<bool>,
    pub restart_time: Opt<i64>,
    pub stale_routes_time: Opt<i64>,
    pub long_lived_stale_time: Opt<i64>,
    pub select_defer_time: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKernel {
    pub enabled: Option<bool>,
    pub ipip: Opt<String>,
    pub tunnel_device: Opt<String>,
    pub allowed_prefixes: Option<Vec<S<String>>>,
    pub table: Opt<i64>,
    pub protocol: Opt<i64>,
    pub metric: Opt<i64>,
    pub sweep_after: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOriginate {
    pub prefix: S<String>,
    pub blackhole: Option<bool>,
    pub communities: Option<Vec<S<String>>>,
    pub large_communities: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLearn {
    pub protocols: Option<Vec<S<i64>>>,
    pub prefixes: Option<Vec<S<String>>>,
    pub interfaces: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    pub socket: Opt<String>,
    pub bird_socket: Opt<String>,
    pub bird6_socket: Opt<String>,
    pub socket_mode: Opt<String>,
    pub socket_group: Opt<String>,
    pub read_only_socket: Opt<String>,
    pub read_only_socket_mode: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub listen: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBfd {
    pub min_rx_ms: Opt<i64>,
    pub min_tx_ms: Opt<i64>,
    pub multiplier: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMesh {
    pub peers: Vec<S<String>>,
    pub local_address: Opt<String>,
    pub password: Opt<String>,
    pub port: Opt<i64>,
    pub bfd: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaxPrefixes {
    pub limit: S<i64>,
    pub warning_percent: Opt<i64>,
    pub restart_after: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDynamicPeers {
    pub range: S<String>,
    pub asn: Opt<i64>,
    pub limit: Opt<i64>,
    pub route_reflector_client: Opt<bool>,
    pub password: Opt<String>,
    pub hold_time: Opt<i64>,
    pub keepalive_time: Opt<i64>,
    pub import: Option<Vec<S<String>>>,
    pub export: Option<Vec<S<String>>>,
    pub max_prefixes: Opt<RawMaxPrefixes>,
    pub bfd: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeer {
    pub name: Opt<String>,
    pub address: S<String>,
    pub asn: S<i64>,
    pub port: Opt<i64>,
    pub local_asn: Opt<i64>,
    pub passive: Option<bool>,
    pub enabled: Option<bool>,
    pub password: Opt<String>,
    pub ttl_security: Opt<bool>,
    pub ttl_security_hops: Opt<i64>,
    pub multihop: Opt<i64>,
    pub source_address: Opt<String>,
    pub next_hop: Opt<String>,
    pub route_reflector_client: Opt<bool>,
    pub hold_time: Opt<i64>,
    pub keepalive_time: Opt<i64>,
    pub allowas_in: Opt<i64>,
    pub families: Option<S<Vec<S<String>>>>,
    pub add_path: Opt<String>,
    pub import: Option<Vec<S<String>>>,
    pub export: Option<Vec<S<String>>>,
    pub shutdown_message: Opt<String>,
    pub description: Opt<String>,
    pub max_prefixes: Opt<RawMaxPrefixes>,
    pub bfd: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub name: S<String>,
    pub default: Opt<String>,
    pub rule: Option<Vec<S<RawRule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub prefix: Opt<String>,
    pub ge: Opt<i64>,
    pub le: Opt<i64>,
    pub community: Opt<String>,
    pub large_community: Opt<String>,
    pub as_path_contains: Opt<i64>,
    pub origin_as: Opt<i64>,
    pub neighbor: Opt<String>,
    pub action: Opt<String>,
    pub set_local_pref: Opt<i64>,
    pub set_med: Opt<i64>,
    pub add_communities: Option<Vec<S<String>>>,
    pub remove_communities: Option<Vec<S<String>>>,
    pub add_large_communities: Option<Vec<S<String>>>,
    pub remove_large_communities: Option<Vec<S<String>>>,
    pub add_ext_communities: Option<Vec<S<String>>>,
    pub prepend: Opt<i64>,
}
