//! The front ends: ternctl's control socket, the BIRD-compatible socket,
//! metrics; and a stop that keeps the kernel routes.

use std::io::{Read, Write};

use tern::api::control::proto::Request;

use tern_testkit::inproc::*;

fn node_with_route() -> (Node, tern_testkit::testpeer::TestPeer) {
    let node = Node::start(&ibgp_peer("Mesh_127_0_0_2", "127.0.0.2"));
    let mut peer = node.connect("127.0.0.2", ASN).expect("session");
    peer.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    peer.end_of_rib().expect("EoR");
    node.wait_until("installed", || node.kernel_gateways("10.244.2.0/26").is_some());
    (node, peer)
}

#[test]
fn show_status_counts_peers_prefixes_and_kernel_routes() {
    let (node, _peer) = node_with_route();
    node.wait_until("converged", || node.status().converged);
    let s = node.status();
    assert_eq!((s.peers_configured, s.peers_established), (1, 1));
    assert_eq!(s.prefixes, 2, "our block and the learned one");
    assert_eq!(s.kernel_routes, 2, "a blackhole and a route");
    assert_eq!(s.router_id.to_string(), ROUTER_ID);
    assert!(s.fib.is_some_and(|f| f.installs >= 2));
}

#[test]
fn show_peers_counts_received_and_advertised() {
    let (node, _peer) = node_with_route();
    node.wait_until("counted", || {
        let p = node.peer("Mesh_127_0_0_2");
        p.received == 1 && p.advertised == 1
    });
    let p = node.peer("Mesh_127_0_0_2");
    assert_eq!(p.local_address, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(p.families, vec!["ipv4-unicast".to_string()]);
    assert!(p.passive);
}

#[test]
fn show_routes_filters_by_prefix_and_marks_the_best() {
    let (node, _peer) = node_with_route();
    let routes: Vec<tern::api::control::proto::RouteReply> = node
        .ternctl(Request::Routes {
            prefix: Some("10.244.2.0/24".into()),
        })
        .expect("routes");
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].prefix, "10.244.2.0/26");
    assert!(routes[0].best);
    assert_eq!(routes[0].from, "Mesh_127_0_0_2");
    assert_eq!(routes[0].next_hop, Some("192.168.1.12".parse().unwrap()));
}

#[test]
fn show_routes_with_a_bad_prefix_is_an_error_not_an_empty_table() {
    let node = Node::start("");
    let err = node
        .ternctl::<Vec<tern::api::control::proto::RouteReply>>(Request::Routes {
            prefix: Some("10.244.2.0/99".into()),
        })
        .expect_err("bad prefix");
    assert!(err.contains("bad prefix"), "{err}");
}

#[test]
fn show_fib_names_the_output_device() {
    let (node, _peer) = node_with_route();
    node.wait_until("installed in the fib view", || {
        node.fib()
            .iter()
            .any(|r| r.prefix == "10.244.2.0/26" && r.state == "installed")
    });
    let r = node
        .fib()
        .into_iter()
        .find(|r| r.prefix == "10.244.2.0/26")
        .expect("route");
    assert_eq!(r.device, "eth0");
    assert_eq!(r.gateways, vec!["192.168.1.12".parse::<std::net::IpAddr>().unwrap()]);
    let own = node
        .fib()
        .into_iter()
        .find(|r| r.prefix == OWN_BLOCK)
        .expect("blackhole");
    assert_eq!(own.kind, "blackhole");
}

#[test]
fn a_malformed_control_request_gets_an_error_line() {
    let node = Node::start("");
    let mut s = std::os::unix::net::UnixStream::connect(node.control_socket()).expect("connect");
    s.write_all(b"{\"command\":\"dance\"}\n").expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("{\"error\":\"bad request"), "{reply}");
}

#[test]
fn bird_show_protocols_lists_the_peer_as_established() {
    let (node, _peer) = node_with_route();
    let lines = node.birdc("show protocols");
    assert!(lines[0].starts_with("2002-Name"), "{lines:?}");
    let row = lines
        .iter()
        .find(|l| l.contains("Mesh_127_0_0_2"))
        .expect("the peer's row");
    assert!(
        row.contains("BGP") && row.contains("up") && row.contains("Established"),
        "{row}"
    );
}

#[test]
fn bird_show_status_says_up_and_running() {
    let node = Node::start("");
    let lines = node.birdc("show status");
    assert!(lines[0].starts_with("1000-BIRD"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == &format!("1011-Router ID is {ROUTER_ID}")),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("0013 Daemon is up and running"));
}

#[test]
fn bird_show_route_shows_learned_and_own_routes() {
    let (node, _peer) = node_with_route();
    let lines = node.birdc("show route");
    let learned = lines.iter().find(|l| l.contains("10.244.2.0/26")).expect("learned");
    assert!(learned.contains("unicast [Mesh_127_0_0_2"), "{learned}");
    assert!(
        lines.iter().any(|l| l.contains("via 192.168.1.12 on eth0")),
        "{lines:?}"
    );
    let own = lines.iter().find(|l| l.contains(OWN_BLOCK)).expect("own");
    assert!(own.contains("blackhole [static1"), "{own}");
}

#[test]
fn bird_socket_answers_a_syntax_error_like_bird() {
    let node = Node::start("");
    let lines = node.birdc("show nonsense");
    assert!(lines.last().is_some_and(|l| l.starts_with("9001 ")), "{lines:?}");
}

#[test]
fn metrics_show_the_peer_state_and_prefix_counts() {
    let (node, _peer) = node_with_route();
    node.wait_until("counted", || node.peer("Mesh_127_0_0_2").received == 1);
    let mut s = std::net::TcpStream::connect(node.metrics_addr()).expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.lines().any(|l| l.starts_with("tern_peer_prefixes_received{")
            && l.contains("Mesh_127_0_0_2")
            && l.ends_with(" 1")),
        "{body}"
    );
}

#[test]
fn a_stop_keeps_the_kernel_routes_for_graceful_restart_and_removes_the_control_socket() {
    let (mut node, mut peer) = node_with_route();
    node.stop();
    assert!(node.kernel_gateways("10.244.2.0/26").is_some(), "learned route kept");
    assert!(
        node.kernel_routes().iter().any(|r| r.prefix == net(OWN_BLOCK)),
        "own blackhole kept"
    );
    assert!(!node.control_socket().exists());
    assert!(
        peer.wait_closed(std::time::Instant::now() + PATIENCE),
        "the session was closed"
    );
}

/// Issue 15: `show routes ADDRESS` is a longest-match lookup (it used to
/// print an empty table); a prefix still lists itself and its more-specifics.
#[test]
fn show_routes_for_an_address_is_a_longest_match() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(
        &[net("10.244.0.0/16"), net("10.244.2.0/26")],
        "192.168.1.12".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    node.wait_until("both learned", || node.routes().len() == 3);
    let show = |what: &str| -> Vec<String> {
        let routes: Vec<tern::api::control::proto::RouteReply> = node
            .ternctl(tern::api::control::proto::Request::Routes {
                prefix: Some(what.into()),
            })
            .expect("show routes");
        routes.into_iter().map(|r| r.prefix).collect()
    };
    assert_eq!(show("10.244.2.7"), ["10.244.2.0/26"]);
    assert_eq!(show("10.244.9.9"), ["10.244.0.0/16"]);
    assert_eq!(show("10.244.1.1"), [OWN_BLOCK], "our own block");
    assert!(show("192.0.2.1").is_empty());
    assert_eq!(show("10.244.2.0/26"), ["10.244.2.0/26"]);
}

/// Issue 15: routes received from one peer, and what it was sent.
#[test]
fn show_routes_received_from_and_advertised_to_one_peer() {
    use tern::api::control::proto::RouteReply;
    let node = Node::start(&format!(
        "{}{}",
        ebgp_peer("tor1", "127.0.0.2", 65001),
        ibgp_peer("h3", "127.0.0.3")
    ));
    let mut tor1 = node.connect("127.0.0.2", 65001).expect("tor1");
    let mut h3 = node.connect("127.0.0.3", ASN).expect("h3");
    read_until(&mut tor1, "tor1's table", |s| s.end_of_rib);
    tor1.announce(&[net("10.244.9.0/26")], "192.168.1.1".parse().unwrap(), vec![65001])
        .expect("announce");
    read_until(&mut h3, "tor1's route passed on", |s| {
        s.announced.contains(&"10.244.9.0/26".to_string())
    });
    let show = |name: &str, advertised: bool| -> Vec<String> {
        let routes: Vec<RouteReply> = node
            .ternctl(tern::api::control::proto::Request::PeerRoutes {
                name: name.into(),
                advertised,
            })
            .expect("show routes --peer");
        routes.into_iter().map(|r| r.prefix).collect()
    };
    assert_eq!(show("tor1", false), ["10.244.9.0/26"]);
    assert!(show("h3", false).is_empty());
    let mut to_h3 = show("h3", true);
    to_h3.sort();
    assert_eq!(to_h3, [OWN_BLOCK, "10.244.9.0/26"]);
    assert_eq!(show("tor1", true), [OWN_BLOCK], "not its own route back");
}

/// The JSON field names of `ternctl show … --json` are an interface: scripts
/// and monitoring read them. Renaming or removing one must be a decision,
/// so they are pinned here (adding one means adding it here too).
#[test]
fn json_field_names_of_the_show_commands_are_stable() {
    use serde_json::Value;
    use tern::api::control::proto::Request;
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("the route is installed", || {
        node.kernel_gateways("10.244.2.0/26").is_some()
    });
    let keys = |v: &Value| -> Vec<String> {
        let object = match v {
            Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let mut k: Vec<String> = object
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let ask = |req| node.ternctl::<Value>(req).expect("answer");
    let routes = ask(Request::Routes { prefix: None });
    for (what, value, expected) in [
        ("show peers", ask(Request::Peers), PEER_FIELDS),
        ("show routes", routes, ROUTE_FIELDS),
        ("show status", ask(Request::Status), STATUS_FIELDS),
        ("show fib", ask(Request::Fib), FIB_FIELDS),
    ] {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(keys(&value), expected, "{what}: {value}");
    }
}

const PEER_FIELDS: &[&str] = &[
    "address",
    "advertised",
    "asn",
    "bfd",
    "capabilities",
    "description",
    "disabled",
    "families",
    "family_counts",
    "graceful_restart",
    "hold_time",
    "keepalive_time",
    "last_error",
    "last_notification",
    "local_address",
    "malformed_updates",
    "messages_in",
    "messages_out",
    "name",
    "passive",
    "peer_hostname",
    "peer_router_id",
    "received",
    "since_unix",
    "state",
    "updates_in",
    "uptime_secs",
];
/// (`learned` appears too, on routes learned from the kernel.)
const ROUTE_FIELDS: &[&str] = &[
    "age_secs",
    "as_path",
    "best",
    "cluster_list",
    "communities",
    "from",
    "large_communities",
    "local_pref",
    "med",
    "next_hop",
    "origin",
    "originator_id",
    "path_id",
    "prefix",
];
const STATUS_FIELDS: &[&str] = &[
    "asn",
    "attribute_sets",
    "converged",
    "fib",
    "kernel_routes",
    "learned_routes",
    "paths",
    "peers_configured",
    "peers_established",
    "prefixes",
    "router_id",
    "selection_deferred",
    "uptime_secs",
    "version",
];
const FIB_FIELDS: &[&str] = &["device", "gateways", "kind", "prefix", "state"];
