//! Raw (spanned) config -> validated [`Config`], collecting every error.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use toml::Spanned;

use crate::error::{ConfigError, ErrorKind, Locator};
use crate::model::*;
use crate::raw::*;
use crate::types::*;

/// AS_TRANS (RFC 6793 §9): a placeholder, never a real AS.
const AS_TRANS: u64 = 23456;
/// Largest TCP-MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`); RFC 2385 keys.
const MAX_PASSWORD: usize = 80;
/// Linux `IFNAMSIZ` - 1.
const MAX_IFNAME: usize = 15;

/// Resolves the hold/keepalive pair for a session from its overrides and `[bgp]`.
///
/// A session that overrides only `hold_time` gets `hold_time / 3` as keepalive.
pub(crate) fn resolve_timers(bgp: &Bgp, hold: Option<u16>, keepalive: Option<u16>) -> (u16, u16) {
    let h = hold.unwrap_or(bgp.hold_time);
    let k = match (keepalive, hold) {
        (Some(k), _) => k,
        (None, Some(h)) => h / 3,
        (None, None) => bgp.keepalive_time,
    };
    (h, k)
}

/// `Peer_` / `Mesh_` name: the address with `.` and `:` replaced by `_`.
pub(crate) fn address_name(prefix: &str, addr: &IpAddr) -> String {
    let mut s = String::from(prefix);
    s.extend(
        addr.to_string()
            .chars()
            .map(|c| if c == '.' || c == ':' { '_' } else { c }),
    );
    s
}

struct V<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<ConfigError>,
}

impl V<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, msg: impl Into<String>) {
        let e = self.loc.error(ErrorKind::Invalid, Some(span), key, msg);
        self.errors.push(e);
    }

    /// An integer in `min..=max`, or `None` (error recorded).
    fn int(&mut self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        let n = *v.get_ref();
        if n < min || n > max {
            self.err(v.span(), key, format!("{n} is out of range {min}..={max}"));
            None
        } else {
            Some(n)
        }
    }

    fn opt_int<T: TryFrom<i64>>(&mut self, v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64) -> Option<T> {
        let n = self.int(v.as_ref()?, key, min, max)?;
        T::try_from(n).ok()
    }

    fn int_or<T: TryFrom<i64>>(&mut self, v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: T) -> T {
        self.opt_int(v, key, min, max).unwrap_or(default)
    }

    /// A 4-octet AS number: 1..=4294967295, not AS_TRANS (RFC 6793 §9), not 0 (RFC 7607).
    fn asn(&mut self, v: &Spanned<i64>, key: &str) -> Option<u32> {
        let n = self.int(v, key, 1, i64::from(u32::MAX))?;
        if n as u64 == AS_TRANS {
            self.err(v.span(), key, "23456 is AS_TRANS (RFC 6793), not a usable AS number");
            return None;
        }
        u32::try_from(n).ok()
    }

    fn parse<T: FromStr>(&mut self, v: &Spanned<String>, key: &str, what: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match v.get_ref().parse::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(v.span(), key, format!("`{}` is not {what}: {e}", v.get_ref()));
                None
            }
        }
    }

    fn ip(&mut self, v: &Spanned<String>, key: &str) -> Option<IpAddr> {
        self.parse(v, key, "an IP address")
    }

    /// A prefix `addr/len` whose host bits are zero.
    fn net(&mut self, v: &Spanned<String>, key: &str) -> Option<IpNetwork> {
        if !v.get_ref().contains('/') {
            self.err(
                v.span(),
                key,
                format!("`{}` is not a prefix: expected ADDRESS/LENGTH", v.get_ref()),
            );
            return None;
        }
        let n: IpNetwork = self.parse(v, key, "a prefix")?;
        if n.ip() != n.network() {
            self.err(
                v.span(),
                key,
                format!(
                    "`{}` has host bits set; did you mean {}/{}?",
                    v.get_ref(),
                    n.network(),
                    n.prefix()
                ),
            );
            return None;
        }
        Some(n)
    }

    fn keyword<T>(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        parse: fn(&str) -> Option<T>,
        names: &[&str],
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        match parse(v.get_ref()) {
            Some(x) => x,
            None => {
                self.err(
                    v.span(),
                    key,
                    format!("`{}` is not one of: {}", v.get_ref(), names.join(", ")),
                );
                default
            }
        }
    }

    fn list<T: FromStr>(&mut self, v: &Option<Vec<Spanned<String>>>, key: &str, what: &str) -> Vec<T>
    where
        T::Err: std::fmt::Display,
    {
        let mut out = Vec::new();
        for (i, s) in v.iter().flatten().enumerate() {
            if let Some(x) = self.parse(s, &format!("{key}[{i}]"), what) {
                out.push(x);
            }
        }
        out
    }

    /// A TCP-MD5 key: 1..=80 bytes (Linux `TCP_MD5SIG_MAXKEYLEN`, RFC 2385 §4).
    fn password(&mut self, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
        let v = v.as_ref()?;
        let len = v.get_ref().len();
        if len == 0 || len > MAX_PASSWORD {
            self.err(
                v.span(),
                key,
                format!("TCP-MD5 key must be 1..={MAX_PASSWORD} bytes, got {len}"),
            );
            return None;
        }
        Some(v.get_ref().clone())
    }

    /// A name usable as a protocol name in the BIRD-compatible CLI.
    fn name(&mut self, v: &Spanned<String>, key: &str) -> bool {
        let s = v.get_ref();
        let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.err(
                v.span(),
                key,
                format!("`{s}` is not a valid name: use 1..=64 of A-Z a-z 0-9 _ -"),
            );
        }
        ok
    }

    /// Hold time is 0 or at least 3 seconds (RFC 4271 §4.2).
    fn hold(&mut self, v: &Option<Spanned<i64>>, key: &str) -> Option<u16> {
        let v = v.as_ref()?;
        let n = self.int(v, key, 0, 65535)?;
        if n == 1 || n == 2 {
            self.err(
                v.span(),
                key,
                format!("hold time {n} is invalid: must be 0 or 3..=65535 (RFC 4271 §4.2)"),
            );
            return None;
        }
        u16::try_from(n).ok()
    }

    /// Keepalive must be shorter than the hold time when that is non-zero (RFC 4271 §4.4, §10).
    fn check_keepalive(&mut self, v: &Option<Spanned<i64>>, key: &str, hold: u16, keep: u16) {
        let Some(v) = v else { return };
        if hold > 0 && (keep == 0 || keep >= hold) {
            self.err(
                v.span(),
                key,
                format!("keepalive time {keep} must be in 1..{hold} (below the hold time)"),
            );
        }
    }

    fn names(&mut self, v: &Option<Vec<Spanned<String>>>) -> Vec<String> {
        v.iter().flatten().map(|s| s.get_ref().clone()).collect::<Vec<_>>()
    }

    fn policy_refs(&mut self, v: &Option<Vec<Spanned<String>>>, key: &str, known: &HashSet<String>) -> Vec<String> {
        for (i, s) in v.iter().flatten().enumerate() {
            if !known.contains(s.get_ref()) {
                self.err(
                    s.span(),
                    &format!("{key}[{i}]"),
                    format!("unknown policy `{}`: no [[policy]] has this name", s.get_ref()),
                );
            }
        }
        self.names(v)
    }

    fn max_prefixes(&mut self, v: &Option<Spanned<RawMaxPrefixes>>, key: &str) -> Option<MaxPrefixes> {
        let m = v.as_ref()?.get_ref();
        let limit = self.int(&m.limit, &format!("{key}.limit"), 1, i64::from(u32::MAX));
        let warning_percent = self.int_or(&m.warning_percent, &format!("{key}.warning_percent"), 1, 100, 75);
        let restart_after = self.int_or(
            &m.restart_after,
            &format!("{key}.restart_after"),
            0,
            i64::from(u32::MAX),
            60,
        );
        Some(MaxPrefixes {
            limit: u32::try_from(limit?).ok()?,
            warning_percent,
            restart_after,
        })
    }

    /// Route reflection needs a CLUSTER_ID and an iBGP session (RFC 4456 §7, §8).
    fn rr_client(&mut self, v: &Option<Spanned<bool>>, key: &str, cluster_id: Option<Ipv4Addr>, ibgp: bool) -> bool {
        let Some(v) = v else { return false };
        if !*v.get_ref() {
            return false;
        }
        if cluster_id.is_none() {
            self.err(
                v.span(),
                key,
                "route_reflector_client needs bgp.cluster_id to be set (RFC 4456 §7)",
            );
        }
        if !ibgp {
            self.err(
                v.span(),
                key,
                "route_reflector_client is only valid on an iBGP session (RFC 4456 §8)",
            );
        }
        true
    }
}

/// Linux `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_IFNAME
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

pub(crate) fn validate(raw: &RawConfig, loc: &Locator<'_>) -> Result<Config, Vec<ConfigError>> {
    let mut v = V {
        loc,
        errors: Vec::new(),
    };
    let Some(rb) = raw.bgp.as_ref() else {
        v.err(0..0, "bgp", "missing required table [bgp] (asn, router_id)");
        return Err(v.errors);
    };
    let bgp = validate_bgp(&mut v, rb.get_ref());
    let graceful_restart = validate_gr(&mut v, raw.graceful_restart.as_ref());
    let kernel = validate_kernel(&mut v, raw.kernel.as_ref(), u32::from(graceful_restart.restart_time));

    let mut originate = Vec::new();
    for (i, o) in raw.originate.iter().flatten().enumerate() {
        let o = o.get_ref();
        let k = format!("originate[{i}]");
        let prefix = v.net(&o.prefix, &format!("{k}.prefix"));
        let communities = v.list(&o.communities, &format!("{k}.communities"), "a standard community");
        let large_communities = v.list(
            &o.large_communities,
            &format!("{k}.large_communities"),
            "a large community",
        );
        if let Some(prefix) = prefix {
            originate.push(Originate {
                prefix,
                blackhole: o.blackhole.unwrap_or(true),
                communities,
                large_communities,
            });
        }
    }

    let control = validate_control(&mut v, raw.control.as_ref());
    let metrics = raw.metrics.as_ref().and_then(|m| {
        let listen = v.parse(&m.get_ref().listen, "metrics.listen", "a socket address")?;
        Some(Metrics { listen })
    });

    // Policy names first: peers refer to them.
    let mut policy_names = HashSet::new();
    for (i, p) in raw.policy.iter().flatten().enumerate() {
        let name = &p.get_ref().name;
        if v.name(name, &format!("policy[{i}].name")) && !policy_names.insert(name.get_ref().clone()) {
            v.err(
                name.span(),
                &format!("policy[{i}].name"),
                format!("duplicate policy name `{}`", name.get_ref()),
            );
        }
    }

    let mesh = raw.mesh.as_ref().map(|m| validate_mesh(&mut v, m.get_ref(), &bgp));
    let dynamic_peers = validate_dynamic(&mut v, raw, &bgp, &policy_names);
    let peers = validate_peers(&mut v, raw, &bgp, &policy_names);
    check_peer_uniqueness(&mut v, raw, mesh.as_ref());

    let mut policies = Vec::new();
    for (i, p) in raw.policy.iter().flatten().enumerate() {
        policies.push(validate_policy(&mut v, p.get_ref(), &format!("policy[{i}]")));
    }

    if v.errors.is_empty() {
        Ok(Config {
            bgp,
            graceful_restart,
            kernel,
            originate,
            control,
            metrics,
            mesh,
            dynamic_peers,
            peers,
            policies,
        })
    } else {
        Err(v.errors)
    }
}

fn validate_bgp(v: &mut V<'_>, b: &RawBgp) -> Bgp {
    let asn = v.asn(&b.asn, "bgp.asn").unwrap_or(0);
    let router_id = match v.parse::<Ipv4Addr>(&b.router_id, "bgp.router_id", "an IPv4 address") {
        Some(id) if id.is_unspecified() || id.is_multicast() || id.is_broadcast() => {
            // RFC 4271 §4.2 / RFC 6286 §2.1: a non-zero identifier; a unicast address by convention.
            v.err(
                b.router_id.span(),
                "bgp.router_id",
                format!("{id} is not a usable router id (0.0.0.0, multicast and broadcast are not)"),
            );
            Ipv4Addr::UNSPECIFIED
        }
        Some(id) => id,
        None => Ipv4Addr::UNSPECIFIED,
    };
    let listen = match &b.listen {
        None => vec![SocketAddr::from(([0, 0, 0, 0], 179))],
        some => v.list(some, "bgp.listen", "a socket address (ADDRESS:PORT)"),
    };
    let hold_time = v.hold(&b.hold_time, "bgp.hold_time").unwrap_or(90);
    let keepalive_time = v
        .opt_int(&b.keepalive_time, "bgp.keepalive_time", 0, 65535)
        .unwrap_or(hold_time / 3);
    v.check_keepalive(&b.keepalive_time, "bgp.keepalive_time", hold_time, keepalive_time);
    let connect_retry_time = v.int_or(
        &b.connect_retry_time,
        "bgp.connect_retry_time",
        1,
        i64::from(u32::MAX),
        5,
    );
    let cluster_id = b
        .cluster_id
        .as_ref()
        .and_then(|c| v.parse(c, "bgp.cluster_id", "an IPv4 address"));
    Bgp {
        asn,
        router_id,
        listen,
        hold_time,
        keepalive_time,
        connect_retry_time,
        cluster_id,
        enforce_first_as: b.enforce_first_as.unwrap_or(true),
        rfc8212: b.rfc8212.unwrap_or(false),
    }
}

fn validate_gr(v: &mut V<'_>, g: Option<&Spanned<RawGracefulRestart>>) -> GracefulRestart {
    let mut out = GracefulRestart {
        enabled: true,
        restart_time: 120,
        stale_routes_time: 360,
        long_lived_stale_time: 0,
        select_defer_time: 360,
    };
    let Some(g) = g.map(Spanned::get_ref) else {
        return out;
    };
    out.enabled = g.enabled.unwrap_or(true);
    // RFC 4724 §3: Restart Time is a 12-bit field.
    out.restart_time = v.int_or(&g.restart_time, "graceful_restart.restart_time", 0, 4095, 120);
    out.stale_routes_time = v.int_or(
        &g.stale_routes_time,
        "graceful_restart.stale_routes_time",
        0,
        i64::from(u32::MAX),
        360,
    );
    // RFC 9494 §3: Long-Lived Stale Time is a 24-bit field.
    out.long_lived_stale_time = v.int_or(
        &g.long_lived_stale_time,
        "graceful_restart.long_lived_stale_time",
        0,
        0xFF_FFFF,
        0,
    );
    out.select_defer_time = v.int_or(
        &g.select_defer_time,
        "graceful_restart.select_defer_time",
        1,
        i64::from(u32::MAX),
        360,
    );
    out
}

fn validate_kernel(v: &mut V<'_>, k: Option<&Spanned<RawKernel>>, restart_time: u32) -> Kernel {
    let mut out = Kernel {
        enabled: true,
        ipip: IpipMode::Never,
        tunnel_device: "tunl0".to_string(),
        allowed_prefixes: Vec::new(),
        table: 254,
        protocol: 12,
        metric: 32,
        sweep_after: restart_time,
    };
    let Some(k) = k.map(Spanned::get_ref) else {
        return out;
    };
    out.enabled = k.enabled.unwrap_or(true);
    out.ipip = v.keyword(
        &k.ipip,
        "kernel.ipip",
        IpipMode::parse_keyword,
        IpipMode::NAMES,
        IpipMode::Never,
    );
    if let Some(t) = &k.tunnel_device {
        if valid_ifname(t.get_ref()) {
            out.tunnel_device = t.get_ref().clone();
        } else {
            v.err(
                t.span(),
                "kernel.tunnel_device",
                format!(
                    "`{}` is not a valid interface name: 1..={MAX_IFNAME} bytes, no '/', ':' or whitespace",
                    t.get_ref()
                ),
            );
        }
    }
    for (i, p) in k.allowed_prefixes.iter().flatten().enumerate() {
        if let Some(n) = v.net(p, &format!("kernel.allowed_prefixes[{i}]")) {
            out.allowed_prefixes.push(n);
        }
    }
    if let Some(t) = &k.table {
        let n = *t.get_ref();
        if n == 0 || n == 255 {
            // 0 is RT_TABLE_UNSPEC, 255 RT_TABLE_LOCAL: never ours to program.
            v.err(
                t.span(),
                "kernel.table",
                format!("table {n} is reserved (0 = unspec, 255 = local)"),
            );
        } else if let Some(n) = v.opt_int(&k.table, "kernel.table", 1, i64::from(u32::MAX)) {
            out.table = n;
        }
    }
    if let Some(p) = &k.protocol {
        let n = *p.get_ref();
        if (0..=3).contains(&n) {
            v.err(
                p.span(),
                "kernel.protocol",
                format!("protocol {n} is reserved by the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot)"),
            );
        } else if let Some(n) = v.opt_int(&k.protocol, "kernel.protocol", 4, 255) {
            out.protocol = n;
        }
    }
    out.metric = v.int_or(&k.metric, "kernel.metric", 0, i64::from(u32::MAX), 32);
    out.sweep_after = v.int_or(
        &k.sweep_after,
        "kernel.sweep_after",
        0,
        i64::from(u32::MAX),
        restart_time,
    );
    out
}

fn validate_control(v: &mut V<'_>, c: Option<&Spanned<RawControl>>) -> Control {
    let mut out = Control {
        socket: PathBuf::from("/run/tern/tern.sock"),
        bird_socket: None,
        bird6_socket: None,
    };
    let Some(c) = c.map(Spanned::get_ref) else {
        return out;
    };
    let mut path = |s: &Option<Spanned<String>>, key: &str| -> Option<PathBuf> {
        let s = s.as_ref()?;
        if s.get_ref().is_empty() {
            v.err(s.span(), key, "socket path must not be empty");
            return None;
        }
        Some(PathBuf::from(s.get_ref()))
    };
    if let Some(p) = path(&c.socket, "control.socket") {
        out.socket = p;
    }
    out.bird_socket = path(&c.bird_socket, "control.bird_socket");
    out.bird6_socket = path(&c.bird6_socket, "control.bird6_socket");
    out
}

fn validate_mesh(v: &mut V<'_>, m: &RawMesh, bgp: &Bgp) -> Mesh {
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
    }
}

fn validate_dynamic(v: &mut V<'_>, raw: &RawConfig, bgp: &Bgp, policies: &HashSet<String>) -> Vec<DynamicPeers> {
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
            });
        }
    }
    out
}

fn validate_peers(v: &mut V<'_>, raw: &RawConfig, bgp: &Bgp, policies: &HashSet<String>) -> Vec<Peer> {
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
                max_prefixes,
            });
        }
    }
    out
}

/// Peer addresses and names must be unique across `[[peer]]` and `[mesh]`.
fn check_peer_uniqueness(v: &mut V<'_>, raw: &RawConfig, mesh: Option<&Mesh>) {
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

fn validate_policy(v: &mut V<'_>, p: &RawPolicy, k: &str) -> Policy {
    let default = v.keyword(
        &p.default,
        &format!("{k}.default"),
        PolicyDefault::parse_keyword,
        PolicyDefault::NAMES,
        PolicyDefault::Reject,
    );
    let mut rules = Vec::new();
    for (i, r) in p.rule.iter().flatten().enumerate() {
        rules.push(validate_rule(v, r.get_ref(), &format!("{k}.rule[{i}]")));
    }
    Policy {
        name: p.name.get_ref().clone(),
        default,
        rules,
    }
}

fn validate_rule(v: &mut V<'_>, r: &RawRule, k: &str) -> Rule {
    let key = |f: &str| format!("{k}.{f}");
    let prefix = match &r.prefix {
        Some(p) => v.net(p, &key("prefix")).and_then(|net| {
            // prefix length <= ge <= le <= address length
            let len = i64::from(net.prefix());
            let max: i64 = if net.is_ipv4() { 32 } else { 128 };
            let ge = match &r.ge {
                Some(g) => v.int(g, &key("ge"), len, max)?,
                None => len,
            };
            let le = match &r.le {
                Some(l) => v.int(l, &key("le"), ge, max)?,
                None if r.ge.is_some() => max,
                None => ge,
            };
            Some(PrefixMatch {
                prefix: net,
                ge: u8::try_from(ge).ok()?,
                le: u8::try_from(le).ok()?,
            })
        }),
        None => {
            for (f, val) in [("ge", &r.ge), ("le", &r.le)] {
                if let Some(val) = val {
                    v.err(val.span(), &key(f), format!("`{f}` needs `prefix` in the same rule"));
                }
            }
            None
        }
    };
    let community = r
        .community
        .as_ref()
        .and_then(|c| v.parse(c, &key("community"), "a standard community"));
    let large_community = r
        .large_community
        .as_ref()
        .and_then(|c| v.parse(c, &key("large_community"), "a large community"));
    let as_max = i64::from(u32::MAX);
    let as_path_contains = v.opt_int(&r.as_path_contains, &key("as_path_contains"), 1, as_max);
    let origin_as = v.opt_int(&r.origin_as, &key("origin_as"), 1, as_max);
    let neighbor = r.neighbor.as_ref().and_then(|n| v.ip(n, &key("neighbor")));
    let action = v.keyword(
        &r.action,
        &key("action"),
        RuleAction::parse_keyword,
        RuleAction::NAMES,
        RuleAction::Accept,
    );
    Rule {
        prefix,
        community,
        large_community,
        as_path_contains,
        origin_as,
        neighbor,
        action,
        set_local_pref: v.opt_int(&r.set_local_pref, &key("set_local_pref"), 0, as_max),
        set_med: v.opt_int(&r.set_med, &key("set_med"), 0, as_max),
        add_communities: v.list(&r.add_communities, &key("add_communities"), "a standard community"),
        remove_communities: v.list(
            &r.remove_communities,
            &key("remove_communities"),
            "a standard community",
        ),
        add_large_communities: v.list(
            &r.add_large_communities,
            &key("add_large_communities"),
            "a large community",
        ),
        remove_large_communities: v.list(
            &r.remove_large_communities,
            &key("remove_large_communities"),
            "a large community",
        ),
        add_ext_communities: v.list(
            &r.add_ext_communities,
            &key("add_ext_communities"),
            "an extended community",
        ),
        prepend: v.int_or(&r.prepend, &key("prepend"), 0, 10, 0),
    }
}
