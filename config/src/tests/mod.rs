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
        "[learn]",
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
        learn: Learn::default(),
        control: Control {
            socket: PathBuf::from("/run/tern/tern.sock"),
            bird_socket: None,
            bird6_socket: None,
            socket_mode: 0o660,
            socket_group: None,
            read_only_socket: None,
            read_only_socket_mode: 0o666,
        },
        metrics: None,
        bfd: Bfd::default(),
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

mod effective;
mod rules;
