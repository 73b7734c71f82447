//! `[bgp]`, `[graceful_restart]`, `[kernel]` and `[control]`: the sections
//! that configure the daemon as a whole.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use toml::Spanned;

use super::Validator;
use crate::model::*;
use crate::raw::*;
use crate::types::*;

/// Linux `IFNAMSIZ` - 1.
const MAX_IFNAME: usize = 15;

/// Linux `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_IFNAME
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

pub(super) fn validate_bgp(v: &mut Validator<'_>, b: &RawBgp) -> Bgp {
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

pub(super) fn validate_gr(v: &mut Validator<'_>, g: Option<&Spanned<RawGracefulRestart>>) -> GracefulRestart {
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

pub(super) fn validate_kernel(v: &mut Validator<'_>, k: Option<&Spanned<RawKernel>>, restart_time: u32) -> Kernel {
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

pub(super) fn validate_control(v: &mut Validator<'_>, c: Option<&Spanned<RawControl>>) -> Control {
    let mut out = Control {
        socket: PathBuf::from("/run/tern/tern.sock"),
        bird_socket: None,
        bird6_socket: None,
        socket_mode: 0o660,
        socket_group: None,
        read_only_socket: None,
        read_only_socket_mode: 0o666,
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
    out.read_only_socket = path(&c.read_only_socket, "control.read_only_socket");
    let mut mode = |s: &Option<Spanned<String>>, key: &str, default: u32| -> u32 {
        let Some(s) = s else { return default };
        match u32::from_str_radix(s.get_ref().trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => m,
            _ => {
                v.err(
                    s.span(),
                    key,
                    format!("`{}` is not a file mode: octal, e.g. \"0660\"", s.get_ref()),
                );
                default
            }
        }
    };
    out.socket_mode = mode(&c.socket_mode, "control.socket_mode", 0o660);
    out.read_only_socket_mode = mode(&c.read_only_socket_mode, "control.read_only_socket_mode", 0o666);
    if let Some(g) = &c.socket_group {
        if g.get_ref().is_empty() {
            v.err(g.span(), "control.socket_group", "group must not be empty");
        } else {
            out.socket_group = Some(g.get_ref().clone());
        }
    }
    out
}

/// `[learn]`: protocols 0..=2 (unspec, redirect, kernel) and our own are
/// never learned; prefixes without host bits; non-empty, valid globs.
pub(super) fn validate_learn(v: &mut Validator<'_>, l: Option<&Spanned<RawLearn>>, own_protocol: u8) -> Learn {
    let mut out = Learn::default();
    let Some(l) = l.map(Spanned::get_ref) else {
        return out;
    };
    for (i, p) in l.protocols.iter().flatten().enumerate() {
        let key = format!("learn.protocols[{i}]");
        let n = *p.get_ref();
        if (0..=2).contains(&n) {
            v.err(
                p.span(),
                &key,
                format!("protocol {n} is the kernel's own (0 unspec, 1 redirect, 2 kernel): never learned"),
            );
        } else if n == i64::from(own_protocol) {
            v.err(
                p.span(),
                &key,
                format!("protocol {n} marks our own routes (kernel.protocol): never learned"),
            );
        } else if let Some(n) = v.int(p, &key, 3, 255) {
            out.protocols.push(n as u8);
        }
    }
    for (i, p) in l.prefixes.iter().flatten().enumerate() {
        if let Some(n) = v.net(p, &format!("learn.prefixes[{i}]")) {
            out.prefixes.push(n);
        }
    }
    for (i, g) in l.interfaces.iter().flatten().enumerate() {
        let key = format!("learn.interfaces[{i}]");
        let glob = g.get_ref();
        if glob.is_empty() {
            v.err(g.span(), &key, "an empty interface glob matches nothing");
        } else if let Err(e) = glob::Pattern::new(glob) {
            v.err(g.span(), &key, format!("`{glob}` is not a valid glob: {e}"));
        } else {
            out.interfaces.push(glob.clone());
        }
    }
    out
}

/// `[bfd]`: session timers. Intervals travel as 32-bit microseconds (RFC 5880
/// §4.1), and a Detect Mult of zero is discarded by receivers (§6.8.6).
pub(super) fn validate_bfd(v: &mut Validator<'_>, b: Option<&Spanned<RawBfd>>) -> Bfd {
    let default = Bfd::default();
    let Some(b) = b.map(Spanned::get_ref) else {
        return default;
    };
    Bfd {
        min_rx_ms: v.int_or(&b.min_rx_ms, "bfd.min_rx_ms", 10, 60_000, default.min_rx_ms),
        min_tx_ms: v.int_or(&b.min_tx_ms, "bfd.min_tx_ms", 10, 60_000, default.min_tx_ms),
        multiplier: v.int_or(&b.multiplier, "bfd.multiplier", 1, 255, default.multiplier),
    }
}
