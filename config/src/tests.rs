//! Unit tests: reference/minimal configs, one test per validation rule with exact
//! positions, syntax/shape errors, and `effective_peers`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::*;

/// Three lines; whatever is appended starts on line 4.
const BASE: &str = "[bgp]\nasn = 64512\nrouter_id = \"192.168.1.11\"\n";

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "t.toml") {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => e.0,
    }
}

/// Asserts exactly one error, at `line:column` for `key`, and returns it.
#[track_caller]
fn one(text: &str, line: usize, column: usize, key: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(
        errs.len(),
        1,
        "expected one error, got:\n{}",
        ConfigErrors(errs.clone())
    );
    let e = errs.into_iter().next().unwrap();
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (line, column, key),
        "wrong position/key: {e}"
    );
    assert_eq!(e.file, "t.toml");
    e
}

/// `one`, and also checks it is a validation error whose message contains `needle`.
#[track_caller]
fn invalid(text: &str, line: usize, column: usize, key: &str, needle: &str) {
    let e = one(text, line, column, key);
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(e.message.contains(needle), "message {:?} lacks {needle:?}", e.message);
}

fn base(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn ok(text: &str) -> Config {
    match parse(text, "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn reference_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/reference.toml")
}

// ---------------------------------------------------------------- whole files

#[test]
fn reference_config_loads_and_validates() {
    let c = match load(&reference_path()) {
        Ok(c) => c,
        Err(e) => panic!("reference.toml is invalid:\n{e}"),
    };
    assert_eq!(c.bgp.asn, 64512);
    assert_eq!(c.bgp.cluster_id, Some(Ipv4Addr::new(1, 1, 1, 1)));
    assert_eq!(c.bgp.listen.len(), 2);
    assert_eq!(c.kernel.ipip, IpipMode::CrossSubnet);
    assert_eq!(c.kernel.allowed_prefixes.len(), 2);
    assert_eq!(c.originate.len(), 2);
    assert_eq!(
        c.originate[0].communities,
        vec![Community(65000 << 16 | 100), Community::NO_EXPORT]
    );
    assert_eq!(c.metrics.as_ref().map(|m| m.listen.port()), Some(9179));
    assert_eq!(c.mesh.as_ref().map(|m| m.peers.len()), Some(2));
    assert_eq!(c.dynamic_peers.len(), 1);
    assert!(c.dynamic_peers[0].route_reflector_client);
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[0].name, "tor1");
    assert_eq!(c.peers[1].name, "Peer_192_168_2_20");
    assert_eq!(c.peers[0].max_prefixes.as_ref().map(|m| m.limit), Some(1000));
    assert_eq!(c.policies.len(), 2);
    let r = &c.policies[0].rules[0];
    assert_eq!(r.action, RuleAction::Next);
    assert_eq!(r.prepend, 2);
    assert_eq!(r.add_ext_communities.len(), 2);
    assert_eq!(
        c.policies[0].rules[1].prefix.as_ref().map(|p| (p.ge, p.le)),
        Some((16, 26))
    );
    // 2 explicit + 2 mesh.
    assert_eq!(c.effective_peers().len(), 4);
}

#[test]
fn reference_config_sets_every_key() {
    // Every key the parser knows appears in the reference file (as `key =` or `[table]`).
    let text = std::fs::read_to_string(reference_path()).unwrap();
    let keys = [
        "asn",
        "router_id",
        "listen",
        "hold_time",
        "keepalive_time",
        "connect_retry_time",
        "cluster_id",
        "enforce_first_as",
        "rfc8212",
        "enabled",
        "restart_time",
        "stale_routes_time",
        "long_lived_stale_time",
        "select_defer_time",
        "ipip",
        "tunnel_device",
        "allowed_prefixes",
        "table",
        "protocol",
        "metric",
        "sweep_after",
        "prefix",
        "blackhole",
        "communities",
        "large_communities",
        "socket",
        "bird_socket",
        "bird6_socket",
        "peers",
        "local_address",
        "password",
        "port",
        "range",
        "limit",
        "route_reflector_client",
        "import",
        "export",
        "name",
        "address",
        "local_asn",
        "passive",
        "ttl_security",
        "ttl_security_hops",
        "multihop",
        "source_address",
        "next_hop",
        "allowas_in",
        "families",
        "add_path",
        "shutdown_message",
        "warning_percent",
        "restart_after",
        "default",
        "ge",
        "le",
        "community",
        "large_community",
        "as_path_contains",
        "origin_as",
        "neighbor",
        "action",
        "set_local_pref",
        "set_med",
        "add_communities",
        "remove_communities",
        "add_large_communities",
        "remove_large_communities",
        "add_ext_communities",
        "prepend",
    ];
    for k in keys {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{k} = "))),
            "reference.toml lacks `{k}`"
        );
    }
    for t in [
        "[bgp]",
        "[graceful_restart]",
        "[kernel]",
        "[[originate]]",
        "[control]",
        "[metrics]",
        "[mesh]",
        "[[dynamic_peers]]",
        "[dynamic_peers.max_prefixes]",
        "[[peer]]",
        "[peer.max_prefixes]",
        "[[policy]]",
        "[[policy.rule]]",
    ] {
        assert!(text.lines().any(|l| l == t), "reference.toml lacks {t}");
    }
}

#[test]
fn minimal_config_gets_every_default() {
    let c = ok(BASE);
    let expected = Config {
        bgp: Bgp {
            asn: 64512,
            router_id: Ipv4Addr::new(192, 168, 1, 11),
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 179))],
            hold_time: 90,
            keepalive_time: 30,
            connect_retry_time: 5,
            cluster_id: None,
            enforce_first_as: true,
            rfc8212: false,
        },
        graceful_restart: GracefulRestart {
            enabled: true,
            restart_time: 120,
            stale_routes_time: 360,
            long_lived_stale_time: 0,
            select_defer_time: 360,
        },
        kernel: Kernel {
            enabled: true,
            ipip: IpipMode::Never,
            tunnel_device: "tunl0".into(),
            allowed_prefixes: vec![],
            table: 254,
            protocol: 12,
            metric: 32,
            sweep_after: 120,
        },
        originate: vec![],
        control: Control {
            socket: PathBuf::from("/run/tern/tern.sock"),
            bird_socket: None,
            bird6_socket: None,
        },
        metrics: None,
        mesh: None,
        dynamic_peers: vec![],
        peers: vec![],
        policies: vec![],
    };
    assert_eq!(c, expected);
    assert!(c.effective_peers().is_empty());
}

#[test]
fn derived_defaults_follow_their_source() {
    let c = ok(&base("hold_time = 0\n[graceful_restart]\nrestart_time = 300\n"));
    assert_eq!(c.bgp.keepalive_time, 0);
    assert_eq!(c.kernel.sweep_after, 300);
    let c = ok(&base("hold_time = 9\nlisten = []\n"));
    assert_eq!(c.bgp.keepalive_time, 3);
    assert!(c.bgp.listen.is_empty());
}

#[test]
fn peer_and_dynamic_defaults() {
    let c = ok(&base(
        "[[peer]]\naddress = \"fd00::1\"\nasn = 65001\n\
         [[dynamic_peers]]\nrange = \"10.0.0.0/8\"\n\
         [[originate]]\nprefix = \"10.244.1.0/26\"\n",
    ));
    let p = &c.peers[0];
    assert_eq!(p.name, "Peer_fd00__1");
    assert_eq!((p.port, p.local_asn, p.passive, p.enabled), (179, 64512, false, true));
    assert_eq!((p.ttl_security, p.ttl_security_hops, p.multihop), (false, 1, None));
    assert_eq!(
        (p.next_hop, p.add_path, p.allowas_in),
        (NextHop::Auto, AddPath::None, 0)
    );
    assert_eq!(p.families, vec![Family::Ipv4, Family::Ipv6]);
    assert_eq!((p.hold_time, p.keepalive_time), (None, None));
    let d = &c.dynamic_peers[0];
    assert_eq!((d.asn, d.limit, d.route_reflector_client), (64512, 5000, false));
    let o = &c.originate[0];
    assert!(o.blackhole);
    assert!(o.communities.is_empty());
}

#[test]
fn io_error_has_no_position() {
    let e = load(std::path::Path::new("/nonexistent/tern.toml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].kind, ErrorKind::Io);
    assert_eq!((e.0[0].line, e.0[0].column), (0, 0));
    assert!(e.to_string().starts_with("/nonexistent/tern.toml: cannot read"));
}

// ---------------------------------------------------------------- syntax / shape

#[test]
fn syntax_error_has_position() {
    let e = one(&base("[kernel]\nipip = always\n"), 5, 8, "kernel.ipip");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.to_string().starts_with("t.toml:5:8: kernel.ipip: "), "{e}");
}

#[test]
fn syntax_error_unterminated_string() {
    let e = errors("[bgp]\nasn = 1\nrouter_id = \"1.2.3.4\n");
    assert_eq!(e[0].kind, ErrorKind::Syntax);
    assert_eq!(e[0].line, 3);
}

#[test]
fn unknown_key_is_an_error() {
    let e = one(&base("bogus = 1\n"), 4, 1, "bgp.bogus");
    assert_eq!(e.kind, ErrorKind::Type);
    assert!(e.message.contains("unknown field `bogus`"), "{e}");
    let e = one(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nhold = 3\n"),
        7,
        1,
        "peer[0].hold",
    );
    assert_eq!(e.kind, ErrorKind::Type);
    one(&base("[peer_group]\n"), 4, 2, "peer_group");
    one(
        &base("[[policy]]\nname = \"p\"\n[[policy.rule]]\nmatch = 1\n"),
        7,
        1,
        "policy[0].rule[0].match",
    );
}

#[test]
fn type_errors_have_position() {
    let e = one("[bgp]\nasn = \"x\"\nrouter_id = \"1.1.1.1\"\n", 2, 7, "bgp.asn");
    assert_eq!(e.kind, ErrorKind::Type);
    one(&base("[mesh]\npeers = [\"1.1.1.1\", 5]\n"), 5, 21, "mesh.peers[1]");
    one(&base("enforce_first_as = \"yes\"\n"), 4, 20, "bgp.enforce_first_as");
}

#[test]
fn missing_required_keys() {
    let e = one("[bgp]\nasn = 1\n", 1, 1, "bgp.router_id");
    assert_eq!(e.kind, ErrorKind::Type);
    one(&base("[[peer]]\naddress = \"1.1.1.1\"\n"), 4, 1, "peer[0].asn");
    let e = one("[kernel]\nenabled = true\n", 1, 1, "bgp");
    assert!(e.message.contains("missing required table [bgp]"));
}

#[test]
fn shape_errors_are_collected_per_table() {
    let text = base(
        "[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nbad1 = 1\n\
         [[peer]]\naddress = \"1.1.1.2\"\nasn = 1\n\
         [[peer]]\naddress = \"1.1.1.3\"\nasn = \"x\"\n\
         [kernel]\ntable = \"main\"\n",
    );
    let e = errors(&text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.column, e.key.as_str())).collect();
    assert_eq!(
        got,
        vec![(7, 1, "peer[0].bad1"), (13, 7, "peer[2].asn"), (15, 9, "kernel.table"),]
    );
}

#[test]
fn validation_errors_are_all_reported_in_file_order() {
    let text = "[bgp]\nasn = 0\nrouter_id = \"0.0.0.0\"\nhold_time = 2\n\
                [kernel]\ntable = 0\nprotocol = 3\n";
    let e = errors(text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "bgp.asn"),
            (3, "bgp.router_id"),
            (4, "bgp.hold_time"),
            (6, "kernel.table"),
            (7, "kernel.protocol"),
        ]
    );
    let shown = ConfigErrors(e).to_string();
    assert_eq!(shown.lines().count(), 5);
    assert!(shown.lines().next().unwrap().starts_with("t.toml:2:7: bgp.asn: "));
}

// ---------------------------------------------------------------- one test per rule

#[test]
fn rule_router_id() {
    let rid = |v: &str| format!("[bgp]\nasn = 1\nrouter_id = \"{v}\"\n");
    invalid(&rid("0.0.0.0"), 3, 13, "bgp.router_id", "not a usable router id");
    invalid(&rid("224.0.0.5"), 3, 13, "bgp.router_id", "not a usable router id");
    invalid(&rid("255.255.255.255"), 3, 13, "bgp.router_id", "not a usable");
    invalid(&rid("fd00::1"), 3, 13, "bgp.router_id", "not an IPv4 address");
    invalid(&rid("host1"), 3, 13, "bgp.router_id", "not an IPv4 address");
    ok(&rid("10.0.0.1"));
}

#[test]
fn rule_asn_ranges() {
    let asn = |v: &str| format!("[bgp]\nasn = {v}\nrouter_id = \"1.1.1.1\"\n");
    invalid(&asn("0"), 2, 7, "bgp.asn", "out of range 1..=4294967295");
    invalid(&asn("23456"), 2, 7, "bgp.asn", "AS_TRANS");
    invalid(&asn("4294967296"), 2, 7, "bgp.asn", "out of range");
    invalid(&asn("-1"), 2, 7, "bgp.asn", "out of range");
    assert_eq!(ok(&asn("4294967295")).bgp.asn, u32::MAX);
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 0\n"),
        6,
        7,
        "peer[0].asn",
        "out of range",
    );
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nlocal_asn = 23456\n"),
        7,
        13,
        "peer[0].local_asn",
        "AS_TRANS",
    );
    invalid(
        &base("[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\nasn = 23456\n"),
        6,
        7,
        "dynamic_peers[0].asn",
        "AS_TRANS",
    );
}

#[test]
fn rule_prefix_host_bits() {
    invalid(
        &base("[[originate]]\nprefix = \"10.244.1.1/26\"\n"),
        5,
        10,
        "originate[0].prefix",
        "host bits set; did you mean 10.244.1.0/26",
    );
    invalid(
        &base("[kernel]\nallowed_prefixes = [\"10.244.0.0/16\", \"fd00::1/64\"]\n"),
        5,
        38,
        "kernel.allowed_prefixes[1]",
        "host bits",
    );
    invalid(
        &base("[[dynamic_peers]]\nrange = \"10.1.0.0/8\"\n"),
        5,
        9,
        "dynamic_peers[0].range",
        "host bits",
    );
    invalid(
        &base("[[policy]]\nname = \"p\"\n[[policy.rule]]\nprefix = \"10.0.0.1/8\"\n"),
        7,
        10,
        "policy[0].rule[0].prefix",
        "host bits",
    );
    invalid(
        &base("[[originate]]\nprefix = \"10.244.1.0\"\n"),
        5,
        10,
        "originate[0].prefix",
        "expected ADDRESS/LENGTH",
    );
    invalid(
        &base("[[originate]]\nprefix = \"10.244.1.0/33\"\n"),
        5,
        10,
        "originate[0].prefix",
        "not a prefix",
    );
}

#[test]
fn rule_duplicate_peer_address() {
    invalid(
        &base(
            "[[peer]]\naddress = \"10.0.0.1\"\nasn = 1\n\
             [[peer]]\naddress = \"10.0.0.1\"\nasn = 2\nname = \"other\"\n",
        ),
        8,
        11,
        "peer[1].address",
        "duplicate peer address 10.0.0.1: also peer[0].address",
    );
    invalid(
        &base(
            "[mesh]\npeers = [\"10.0.0.2\", \"10.0.0.1\"]\n\
             [[peer]]\naddress = \"10.0.0.1\"\nasn = 1\n",
        ),
        5,
        22,
        "mesh.peers[1]",
        "duplicate peer 10.0.0.1: also peer[0].address",
    );
    invalid(
        &base("[mesh]\npeers = [\"10.0.0.2\", \"10.0.0.2\"]\n"),
        5,
        22,
        "mesh.peers[1]",
        "also mesh.peers[0]",
    );
}

#[test]
fn rule_duplicate_peer_name() {
    invalid(
        &base(
            "[[peer]]\nname = \"tor\"\naddress = \"10.0.0.1\"\nasn = 1\n\
             [[peer]]\nname = \"tor\"\naddress = \"10.0.0.2\"\nasn = 1\n",
        ),
        9,
        8,
        "peer[1].name",
        "duplicate peer name `tor`: also peer[0]",
    );
    // An explicit name equal to another peer's generated name.
    invalid(
        &base(
            "[[peer]]\naddress = \"10.0.0.1\"\nasn = 1\n\
             [[peer]]\nname = \"Peer_10_0_0_1\"\naddress = \"10.0.0.2\"\nasn = 1\n",
        ),
        8,
        8,
        "peer[1].name",
        "duplicate peer name `Peer_10_0_0_1`",
    );
    // An explicit name equal to a mesh session's name.
    invalid(
        &base(
            "[mesh]\npeers = [\"10.0.0.9\"]\n\
             [[peer]]\nname = \"Mesh_10_0_0_9\"\naddress = \"10.0.0.2\"\nasn = 1\n",
        ),
        7,
        8,
        "peer[0].name",
        "also a [mesh] peer",
    );
    invalid(
        &base("[[peer]]\nname = \"tor 1\"\naddress = \"10.0.0.1\"\nasn = 1\n"),
        5,
        8,
        "peer[0].name",
        "not a valid name",
    );
}

#[test]
fn rule_self_in_mesh() {
    invalid(
        &base("[mesh]\npeers = [\"192.168.1.12\", \"192.168.1.11\"]\n"),
        5,
        26,
        "mesh.peers[1]",
        "is this host",
    );
    invalid(
        &base("[mesh]\nlocal_address = \"10.0.0.5\"\npeers = [\"10.0.0.5\"]\n"),
        6,
        10,
        "mesh.peers[0]",
        "is this host",
    );
}

#[test]
fn rule_hold_time_one_or_two() {
    invalid(&base("hold_time = 1\n"), 4, 13, "bgp.hold_time", "RFC 4271 §4.2");
    invalid(
        &base("hold_time = 2\n"),
        4,
        13,
        "bgp.hold_time",
        "must be 0 or 3..=65535",
    );
    invalid(&base("hold_time = 65536\n"), 4, 13, "bgp.hold_time", "out of range");
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nhold_time = 2\n"),
        7,
        13,
        "peer[0].hold_time",
        "RFC 4271",
    );
    invalid(
        &base("[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\nhold_time = 1\n"),
        6,
        13,
        "dynamic_peers[0].hold_time",
        "RFC 4271",
    );
    ok(&base("hold_time = 3\n"));
}

#[test]
fn rule_keepalive_below_hold() {
    invalid(
        &base("hold_time = 90\nkeepalive_time = 90\n"),
        5,
        18,
        "bgp.keepalive_time",
        "below the hold time",
    );
    invalid(&base("keepalive_time = 0\n"), 4, 18, "bgp.keepalive_time", "1..90");
    // A peer keepalive is checked against the inherited [bgp] hold time...
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nkeepalive_time = 100\n"),
        7,
        18,
        "peer[0].keepalive_time",
        "1..90",
    );
    // ...or its own.
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nhold_time = 30\nkeepalive_time = 30\n"),
        8,
        18,
        "peer[0].keepalive_time",
        "1..30",
    );
    // Hold time 0 disables keepalives; any keepalive is accepted.
    ok(&base("hold_time = 0\nkeepalive_time = 30\n"));
}

#[test]
fn rule_restart_time_12_bits() {
    invalid(
        &base("[graceful_restart]\nrestart_time = 4096\n"),
        5,
        16,
        "graceful_restart.restart_time",
        "0..=4095",
    );
    ok(&base("[graceful_restart]\nrestart_time = 4095\n"));
    invalid(
        &base("[graceful_restart]\nlong_lived_stale_time = 16777216\n"),
        5,
        25,
        "graceful_restart.long_lived_stale_time",
        "0..=16777215",
    );
    invalid(
        &base("[graceful_restart]\nselect_defer_time = 0\n"),
        5,
        21,
        "graceful_restart.select_defer_time",
        "1..=4294967295",
    );
}

#[test]
fn rule_route_reflector_client() {
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 64512\nroute_reflector_client = true\n"),
        7,
        26,
        "peer[0].route_reflector_client",
        "needs bgp.cluster_id",
    );
    invalid(
        &base(
            "cluster_id = \"1.1.1.1\"\n\
             [[peer]]\naddress = \"1.1.1.1\"\nasn = 65001\nroute_reflector_client = true\n",
        ),
        8,
        26,
        "peer[0].route_reflector_client",
        "only valid on an iBGP session",
    );
    invalid(
        &base("[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\nroute_reflector_client = true\n"),
        6,
        26,
        "dynamic_peers[0].route_reflector_client",
        "needs bgp.cluster_id",
    );
    let c = ok(&base(
        "cluster_id = \"1.1.1.1\"\n\
         [[peer]]\naddress = \"1.1.1.1\"\nasn = 64512\nroute_reflector_client = true\n",
    ));
    assert!(c.peers[0].route_reflector_client);
}

#[test]
fn rule_ttl_security_with_multihop() {
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nttl_security = true\nmultihop = 2\n"),
        8,
        12,
        "peer[0].multihop",
        "cannot be combined with ttl_security",
    );
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nttl_security_hops = 255\n"),
        7,
        21,
        "peer[0].ttl_security_hops",
        "1..=254",
    );
    invalid(
        &base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nmultihop = 0\n"),
        7,
        12,
        "peer[0].multihop",
        "1..=255",
    );
}

#[test]
fn rule_password_length() {
    let long = "x".repeat(81);
    invalid(
        &base(&format!(
            "[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\npassword = \"{long}\"\n"
        )),
        7,
        12,
        "peer[0].password",
        "1..=80 bytes, got 81",
    );
    invalid(
        &base("[mesh]\npeers = []\npassword = \"\"\n"),
        6,
        12,
        "mesh.password",
        "got 0",
    );
    invalid(
        &base(&format!(
            "[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\npassword = \"{long}\"\n"
        )),
        6,
        12,
        "dynamic_peers[0].password",
        "got 81",
    );
    let c = ok(&base(&format!(
        "[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\npassword = \"{}\"\n",
        "x".repeat(80)
    )));
    assert_eq!(c.peers[0].password.as_ref().map(String::len), Some(80));
}

#[test]
fn rule_unknown_policy_reference() {
    invalid(
        &base(
            "[[policy]]\nname = \"a\"\n\
             [[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nimport = [\"a\", \"b\"]\n",
        ),
        9,
        16,
        "peer[0].import[1]",
        "unknown policy `b`",
    );
    invalid(
        &base("[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\nexport = [\"nope\"]\n"),
        6,
        11,
        "dynamic_peers[0].export[0]",
        "unknown policy `nope`",
    );
    invalid(
        &base("[[policy]]\nname = \"a\"\n[[policy]]\nname = \"a\"\n"),
        7,
        8,
        "policy[1].name",
        "duplicate policy name",
    );
}

#[test]
fn rule_ge_le_ranges() {
    let rule = |extra: &str| {
        base(&format!(
            "[[policy]]\nname = \"p\"\n[[policy.rule]]\nprefix = \"10.0.0.0/16\"\n{extra}"
        ))
    };
    invalid(&rule("ge = 8\n"), 8, 6, "policy[0].rule[0].ge", "out of range 16..=32");
    invalid(&rule("ge = 33\n"), 8, 6, "policy[0].rule[0].ge", "16..=32");
    invalid(&rule("ge = 24\nle = 20\n"), 9, 6, "policy[0].rule[0].le", "24..=32");
    invalid(&rule("le = 33\n"), 8, 6, "policy[0].rule[0].le", "16..=32");
    invalid(
        &base("[[policy]]\nname = \"p\"\n[[policy.rule]]\nle = 24\n"),
        7,
        6,
        "policy[0].rule[0].le",
        "needs `prefix`",
    );
    let c = ok(&rule("ge = 24\n"));
    let m = c.policies[0].rules[0].prefix.clone().unwrap();
    assert_eq!((m.ge, m.le), (24, 32));
    let c = ok(&rule(""));
    let m = c.policies[0].rules[0].prefix.clone().unwrap();
    assert_eq!((m.ge, m.le), (16, 16));
    assert!(m.matches(&"10.0.0.0/16".parse().unwrap()));
    assert!(!m.matches(&"10.0.1.0/24".parse().unwrap()));
    let m = PrefixMatch {
        prefix: "10.0.0.0/16".parse().unwrap(),
        ge: 24,
        le: 26,
    };
    assert!(m.matches(&"10.0.7.0/24".parse().unwrap()));
    assert!(m.matches(&"10.0.7.64/26".parse().unwrap()));
    assert!(!m.matches(&"10.0.7.0/27".parse().unwrap()));
    assert!(!m.matches(&"10.1.7.0/24".parse().unwrap()));
}

#[test]
fn rule_bad_communities() {
    invalid(
        &base("[[originate]]\nprefix = \"10.0.0.0/8\"\ncommunities = [\"1:1\", \"65536:1\"]\n"),
        6,
        23,
        "originate[0].communities[1]",
        "`65536` is not a number in 0..=65535",
    );
    invalid(
        &base("[[originate]]\nprefix = \"10.0.0.0/8\"\nlarge_communities = [\"1:2\"]\n"),
        6,
        22,
        "originate[0].large_communities[0]",
        "A:B:C",
    );
    let rule = |line: &str| base(&format!("[[policy]]\nname = \"p\"\n[[policy.rule]]\n{line}\n"));
    invalid(
        &rule("community = \"no-such\""),
        7,
        13,
        "policy[0].rule[0].community",
        "not a standard community",
    );
    invalid(
        &rule("add_ext_communities = [\"rt:70000:1\"]"),
        7,
        24,
        "policy[0].rule[0].add_ext_communities[0]",
        "not an extended community",
    );
    invalid(
        &rule("remove_large_communities = [\"1:2:x\"]"),
        7,
        29,
        "policy[0].rule[0].remove_large_communities[0]",
        "`x` is not a number",
    );
}

#[test]
fn rule_tunnel_device_name() {
    let dev = |v: &str| base(&format!("[kernel]\ntunnel_device = \"{v}\"\n"));
    for bad in ["this-is-too-long", "a/b", "tun 0", "", "..", "a:b"] {
        invalid(&dev(bad), 5, 17, "kernel.tunnel_device", "not a valid interface name");
    }
    assert_eq!(ok(&dev("fifteen-bytes-x")).kernel.tunnel_device, "fifteen-bytes-x");
}

#[test]
fn rule_table_reserved() {
    invalid(&base("[kernel]\ntable = 0\n"), 5, 9, "kernel.table", "reserved");
    invalid(&base("[kernel]\ntable = 255\n"), 5, 9, "kernel.table", "reserved");
    invalid(
        &base("[kernel]\ntable = 4294967296\n"),
        5,
        9,
        "kernel.table",
        "out of range",
    );
    assert_eq!(ok(&base("[kernel]\ntable = 100\n")).kernel.table, 100);
}

#[test]
fn rule_protocol_reserved() {
    for n in 0..=3 {
        invalid(
            &base(&format!("[kernel]\nprotocol = {n}\n")),
            5,
            12,
            "kernel.protocol",
            "reserved by the kernel",
        );
    }
    invalid(&base("[kernel]\nprotocol = 256\n"), 5, 12, "kernel.protocol", "4..=255");
    assert_eq!(ok(&base("[kernel]\nprotocol = 4\n")).kernel.protocol, 4);
}

#[test]
fn rule_listen_addresses() {
    invalid(
        &base("listen = [\"0.0.0.0:179\", \"0.0.0.0\"]\n"),
        4,
        26,
        "bgp.listen[1]",
        "not a socket address",
    );
    invalid(
        &base("[metrics]\nlisten = \"localhost:9179\"\n"),
        5,
        10,
        "metrics.listen",
        "not a socket address",
    );
    let c = ok(&base("listen = [\"[::1]:1179\"]\n"));
    assert_eq!(c.bgp.listen, vec!["[::1]:1179".parse::<SocketAddr>().unwrap()]);
}

#[test]
fn rule_source_address_family() {
    invalid(
        &base("[[peer]]\naddress = \"10.0.0.1\"\nasn = 1\nsource_address = \"fd00::1\"\n"),
        7,
        18,
        "peer[0].source_address",
        "not the same address family",
    );
}

#[test]
fn rule_dynamic_ranges_overlap() {
    invalid(
        &base(
            "[[dynamic_peers]]\nrange = \"10.0.0.0/8\"\n\
             [[dynamic_peers]]\nrange = \"192.168.0.0/16\"\n\
             [[dynamic_peers]]\nrange = \"10.1.0.0/16\"\n",
        ),
        9,
        9,
        "dynamic_peers[2].range",
        "overlaps dynamic_peers[0].range 10.0.0.0/8",
    );
    // Different families never overlap; adjacent ranges do not either.
    ok(&base(
        "[[dynamic_peers]]\nrange = \"10.0.0.0/9\"\n\
         [[dynamic_peers]]\nrange = \"10.128.0.0/9\"\n\
         [[dynamic_peers]]\nrange = \"::/0\"\n",
    ));
}

#[test]
fn rule_keywords() {
    invalid(
        &base("[kernel]\nipip = \"sometimes\"\n"),
        5,
        8,
        "kernel.ipip",
        "always, cross-subnet, never",
    );
    let peer = |l: &str| base(&format!("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\n{l}\n"));
    invalid(
        &peer("next_hop = \"me\""),
        7,
        12,
        "peer[0].next_hop",
        "self, keep, auto",
    );
    invalid(&peer("add_path = \"all\""), 7, 12, "peer[0].add_path", "none, send");
    invalid(
        &peer("families = [\"ipv4\", \"l2vpn\"]"),
        7,
        21,
        "peer[0].families[1]",
        "ipv4, ipv6",
    );
    invalid(
        &peer("families = [\"ipv4\", \"ipv4\"]"),
        7,
        21,
        "peer[0].families[1]",
        "twice",
    );
    invalid(&peer("families = []"), 7, 12, "peer[0].families", "at least one");
    invalid(&peer("allowas_in = 11"), 7, 14, "peer[0].allowas_in", "0..=10");
    invalid(&peer("port = 0"), 7, 8, "peer[0].port", "1..=65535");
    invalid(
        &peer(&format!("shutdown_message = \"{}\"", "é".repeat(128))),
        7,
        20,
        "peer[0].shutdown_message",
        "256 bytes",
    );
}

#[test]
fn rule_max_prefixes() {
    let mp = |l: &str| {
        base(&format!(
            "[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\n[peer.max_prefixes]\n{l}\n"
        ))
    };
    invalid(&mp("limit = 0"), 8, 9, "peer[0].max_prefixes.limit", "1..=4294967295");
    invalid(
        &mp("limit = 10\nwarning_percent = 0"),
        9,
        19,
        "peer[0].max_prefixes.warning_percent",
        "1..=100",
    );
    let c = ok(&mp("limit = 10"));
    assert_eq!(
        c.peers[0].max_prefixes,
        Some(MaxPrefixes {
            limit: 10,
            warning_percent: 75,
            restart_after: 60
        })
    );
}

// ---------------------------------------------------------------- effective peers

fn mesh_cfg(local: &str, peers: &str) -> Config {
    ok(&base(&format!(
        "[mesh]\nlocal_address = \"{local}\"\npeers = [{peers}]\npassword = \"pw\"\nport = 1179\n"
    )))
}

#[test]
fn mesh_passive_rule_both_ways() {
    let c = mesh_cfg("10.0.0.5", "\"10.0.0.4\", \"10.0.0.6\"");
    let ps = c.effective_peers();
    assert_eq!(ps.len(), 2);
    // We are higher than .4: we wait for it to connect.
    assert_eq!((ps[0].address, ps[0].passive), ("10.0.0.4".parse().unwrap(), true));
    // We are lower than .6: we connect.
    assert_eq!((ps[1].address, ps[1].passive), ("10.0.0.6".parse().unwrap(), false));
    // The other side of each pair decides the opposite way.
    let other = mesh_cfg("10.0.0.4", "\"10.0.0.5\"").effective_peers();
    assert!(!other[0].passive);
    let other = mesh_cfg("10.0.0.6", "\"10.0.0.5\"").effective_peers();
    assert!(other[0].passive);
}

#[test]
fn mesh_peer_naming_and_resolution() {
    let c = mesh_cfg("10.0.0.5", "\"10.0.0.4\", \"fd00::1:2\"");
    let ps = c.effective_peers();
    assert_eq!(ps[0].name, "Mesh_10_0_0_4");
    assert_eq!(ps[1].name, "Mesh_fd00__1_2");
    let p = &ps[0];
    assert_eq!(p.origin, PeerOrigin::Mesh(0));
    assert_eq!((p.asn, p.local_asn, p.ibgp), (64512, 64512, true));
    assert_eq!((p.port, p.password.as_deref()), (1179, Some("pw")));
    assert_eq!((p.hold_time, p.keepalive_time), (90, 30));
    assert_eq!(p.ttl, TtlMode::Fixed(64));
    assert_eq!(p.source_address, Some("10.0.0.5".parse().unwrap()));
    // No IPv4 source for an IPv6 neighbor.
    assert_eq!(ps[1].source_address, None);
}

#[test]
fn mesh_local_address_defaults_to_router_id() {
    let c = ok(&base("[mesh]\npeers = [\"192.168.1.12\", \"192.168.1.10\"]\n"));
    let m = c.mesh.as_ref().unwrap();
    assert_eq!(m.local_address, IpAddr::from([192, 168, 1, 11]));
    assert_eq!(m.port, 179);
    let ps = c.effective_peers();
    assert!(!ps[0].passive);
    assert!(ps[1].passive);
}

#[test]
fn explicit_peer_resolution_and_overrides() {
    let c = ok(&base(
        "hold_time = 60\nkeepalive_time = 15\n\
         [[peer]]\naddress = \"10.0.0.1\"\nasn = 65001\n\
         [[peer]]\naddress = \"10.0.0.2\"\nasn = 64512\nhold_time = 9\n\
         [[peer]]\nname = \"gtsm\"\naddress = \"10.0.0.3\"\nasn = 65003\nlocal_asn = 65100\n\
         ttl_security = true\nttl_security_hops = 2\nkeepalive_time = 5\npassive = true\n\
         [[peer]]\naddress = \"10.0.0.4\"\nasn = 65004\nmultihop = 3\nenabled = false\n",
    ));
    let ps = c.effective_peers();
    assert_eq!(ps.len(), 4);
    // eBGP, inherits [bgp] timers, TTL 1.
    assert_eq!(ps[0].name, "Peer_10_0_0_1");
    assert_eq!(ps[0].origin, PeerOrigin::Explicit(0));
    assert!(!ps[0].ibgp);
    assert_eq!((ps[0].hold_time, ps[0].keepalive_time), (60, 15));
    assert_eq!(ps[0].ttl, TtlMode::Fixed(1));
    // iBGP, own hold time: keepalive is its third, TTL 64.
    assert!(ps[1].ibgp);
    assert_eq!((ps[1].hold_time, ps[1].keepalive_time), (9, 3));
    assert_eq!(ps[1].ttl, TtlMode::Fixed(64));
    // GTSM, own local AS, keepalive override against inherited hold.
    assert_eq!(ps[2].name, "gtsm");
    assert_eq!((ps[2].asn, ps[2].local_asn, ps[2].ibgp), (65003, 65100, false));
    assert_eq!(ps[2].ttl, TtlMode::Gtsm { hops: 2 });
    assert_eq!((ps[2].hold_time, ps[2].keepalive_time), (60, 5));
    assert!(ps[2].passive);
    // Explicit multihop, disabled.
    assert_eq!(ps[3].ttl, TtlMode::Fixed(3));
    assert!(!ps[3].enabled);
}

// ---------------------------------------------------------------- serialization

#[test]
fn serialize_redacts_passwords_and_shows_communities() {
    let c = load(&reference_path()).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    for secret in ["mesh-secret", "rr-secret", "tor-secret"] {
        assert!(!json.contains(secret), "{secret} leaked");
    }
    assert!(json.contains("\"<redacted>\""));
    assert!(json.contains("\"65000:100\""));
    assert!(json.contains("\"rt:65000:1\""));
    assert!(json.contains("\"cross-subnet\""));
    let peers = serde_json::to_string(&c.effective_peers()).unwrap();
    assert!(!peers.contains("tor-secret"));
}

#[test]
fn configs_compare_for_reload() {
    let a = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\n"));
    let b = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 1\nport = 179\n"));
    let c = ok(&base("[[peer]]\naddress = \"1.1.1.1\"\nasn = 2\n"));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

// ---------------------------------------------------------------- robustness

/// Thousands of random single edits of the reference file: parsing never panics and
/// every error points inside the file.
#[test]
fn mutated_reference_never_panics() {
    let text = std::fs::read_to_string(reference_path()).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let lines = text.lines().count() + 1;
    let alphabet: Vec<char> = "\"'[]{}=.,:/\n#-_019azé \t".chars().collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    let mut failures = 0;
    for _ in 0..3000 {
        let mut c = chars.clone();
        for _ in 0..1 + next(3) {
            let at = next(c.len());
            match next(3) {
                0 => {
                    c.remove(at);
                }
                1 => c.insert(at, alphabet[next(alphabet.len())]),
                _ => c[at] = alphabet[next(alphabet.len())],
            }
        }
        let mutated: String = c.into_iter().collect();
        if let Err(errs) = parse(&mutated, "m.toml") {
            failures += 1;
            assert!(!errs.0.is_empty());
            for e in &errs.0 {
                assert!(e.line >= 1 && e.line <= lines + 1, "{e}");
                assert!(e.column >= 1, "{e}");
            }
        }
    }
    // Most single edits break something; if none did, the parser is not looking.
    assert!(failures > 1000, "only {failures} of 3000 mutations were rejected");
}
