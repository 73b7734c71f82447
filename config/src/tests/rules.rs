//! One test per validation rule, each with the exact position of its error.

use super::*;

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
    invalid(
        &peer(&format!("description = \"{}\"", "x".repeat(256))),
        7,
        15,
        "peer[0].description",
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

#[test]
fn rule_learn() {
    let learn = |body: &str| base(&format!("[learn]\n{body}\n"));
    invalid(
        &learn("protocols = [3, 2]"),
        5,
        17,
        "learn.protocols[1]",
        "never learned",
    );
    invalid(
        &learn("protocols = [12]"),
        5,
        14,
        "learn.protocols[0]",
        "our own routes",
    );
    invalid(&learn("protocols = [256]"), 5, 14, "learn.protocols[0]", "out of range");
    invalid(
        &learn("prefixes = [\"10.244.0.1/16\"]"),
        5,
        13,
        "learn.prefixes[0]",
        "host bits",
    );
    invalid(
        &learn("interfaces = [\"\"]"),
        5,
        15,
        "learn.interfaces[0]",
        "empty interface glob",
    );
    invalid(
        &learn("interfaces = [\"cali[\"]"),
        5,
        15,
        "learn.interfaces[0]",
        "not a valid glob",
    );
    let c = ok(&learn(
        "protocols = [3, 80]\nprefixes = [\"10.244.0.0/16\"]\ninterfaces = [\"cali*\"]",
    ));
    assert_eq!(c.learn.protocols, vec![3, 80]);
    assert_eq!(c.learn.prefixes, vec!["10.244.0.0/16".parse().unwrap()]);
    assert_eq!(c.learn.interfaces, vec!["cali*".to_string()]);
}

#[test]
fn rule_control_socket_permissions() {
    let control = |body: &str| base(&format!("[control]\n{body}\n"));
    invalid(
        &control("socket_mode = \"0999\""),
        5,
        15,
        "control.socket_mode",
        "not a file mode",
    );
    invalid(
        &control("read_only_socket_mode = \"01777\""),
        5,
        25,
        "control.read_only_socket_mode",
        "not a file mode",
    );
    invalid(
        &control("socket_group = \"\""),
        5,
        16,
        "control.socket_group",
        "must not be empty",
    );
    let c = ok(&control(
        "socket_mode = \"0640\"\nsocket_group = \"tern\"\nread_only_socket = \"/run/tern/ro.sock\"",
    ));
    assert_eq!(
        (c.control.socket_mode, c.control.socket_group.as_deref()),
        (0o640, Some("tern"))
    );
    assert_eq!(c.control.read_only_socket_mode, 0o666);
}

#[test]
fn rule_bfd_timers() {
    invalid(
        &base("[bfd]\nmin_rx_ms = 5\n"),
        5,
        13,
        "bfd.min_rx_ms",
        "out of range 10..=60000",
    );
    invalid(
        &base("[bfd]\nmin_tx_ms = 60001\n"),
        5,
        13,
        "bfd.min_tx_ms",
        "out of range 10..=60000",
    );
    invalid(
        &base("[bfd]\nmultiplier = 0\n"),
        5,
        14,
        "bfd.multiplier",
        "out of range 1..=255",
    );
    let c = ok(&base("[bfd]\nmin_rx_ms = 100\nmultiplier = 5\n"));
    assert_eq!((c.bfd.min_rx_ms, c.bfd.min_tx_ms, c.bfd.multiplier), (100, 300, 5));
    let c = ok(&base(
        "[mesh]\npeers = [\"10.0.0.2\"]\nbfd = true\n[[peer]]\naddress = \"10.0.0.9\"\nasn = 65001\nbfd = true\n\
         [[peer]]\naddress = \"10.0.0.8\"\nasn = 65001\n[[dynamic_peers]]\nrange = \"10.1.0.0/16\"\nbfd = true\n",
    ));
    assert_eq!(c.bfd, Bfd::default());
    let bfd: Vec<bool> = c.effective_peers().iter().map(|p| p.bfd).collect();
    assert_eq!(bfd, [true, false, true]);
    assert!(c.dynamic_peers[0].bfd);
}
