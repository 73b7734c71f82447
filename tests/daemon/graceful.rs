//! Graceful restart, receiving side (RFC 4724 §4.2): a restarting peer's
//! routes stay, stale, until its End-of-RIB.

use bgp_proto::capability::Capability;
use bgp_proto::update::Update;
use bgp_proto::{Family, Message};
use tern_testkit::testpeer::{ConnectOptions, TestPeer};

use tern_testkit::inproc::*;

/// `peer` announces two blocks; returns once both are in the kernel.
fn announce_two(node: &Node, peer: &mut TestPeer) {
    peer.announce(
        &[net("10.244.2.0/26"), net("10.244.3.0/26")],
        "192.168.1.12".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    node.wait_until("installed", || {
        node.kernel_gateways("10.244.2.0/26").is_some() && node.kernel_gateways("10.244.3.0/26").is_some()
    });
}

#[test]
fn a_graceful_restart_peer_that_drops_the_connection_keeps_its_routes_as_stale() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    announce_two(&node, &mut h2);
    drop(h2);
    node.wait_until("h2 left Established", || node.peer("h2").state != "Established");
    node.wait_until("its paths are stale", || {
        node.routes()
            .iter()
            .any(|r| r.prefix == "10.244.2.0/26" && r.from == "h2 (stale)")
    });
    assert!(
        node.kernel_gateways("10.244.2.0/26").is_some(),
        "stale routes keep forwarding"
    );
    assert!(node.kernel_gateways("10.244.3.0/26").is_some());
}

#[test]
fn stale_routes_not_announced_again_go_at_the_peers_end_of_rib() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let mut again = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("back");
    again
        .announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce one");
    node.wait_until("the re-announced route is live", || {
        node.routes()
            .iter()
            .any(|r| r.prefix == "10.244.2.0/26" && r.from == "h2")
    });
    assert!(
        node.kernel_gateways("10.244.3.0/26").is_some(),
        "the other stays until End-of-RIB, not before"
    );
    again.end_of_rib().expect("EoR");
    node.wait_until("the route not re-announced is gone", || {
        node.kernel_gateways("10.244.3.0/26").is_none()
    });
    assert!(node.kernel_gateways("10.244.2.0/26").is_some());
    assert!(node.routes().iter().all(|r| !r.from.ends_with("(stale)")));
}

#[test]
fn a_peer_without_graceful_restart_loses_its_routes_at_once() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    announce_two(&node, &mut h2);
    drop(h2);
    node.wait_until("gone", || node.kernel_gateways("10.244.3.0/26").is_none());
    assert!(node.routes().iter().all(|r| !r.from.ends_with("(stale)")));
}

#[test]
fn a_notification_ends_graceful_restart_and_the_routes_go() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    announce_two(&node, &mut h2);
    h2.send_message(&Message::Notification(bgp_proto::notification::Notification {
        code: 6,
        subcode: 2,
        data: Vec::new(),
    }))
    .expect("notify");
    node.wait_until("gone (RFC 4724 §4: a NOTIFICATION ends GR)", || {
        node.kernel_gateways("10.244.3.0/26").is_none()
    });
}

#[test]
fn a_stale_route_shows_under_its_peer_in_the_bird_socket() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    announce_two(&node, &mut h2);
    drop(h2);
    node.wait_until("stale", || node.routes().iter().any(|r| r.from == "h2 (stale)"));
    let lines = node.birdc("show route");
    let at = lines
        .iter()
        .position(|l| l.contains("10.244.2.0/26"))
        .unwrap_or_else(|| panic!("no row: {lines:?}"));
    assert!(
        lines[at].contains("[h2 "),
        "stale path under its peer's protocol, not static1: {lines:?}"
    );
    assert!(
        lines[at + 1].contains("via 192.168.1.12"),
        "with its next hop: {lines:?}"
    );
}

#[test]
fn an_empty_update_is_not_an_end_of_rib_when_it_carries_withdrawals() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let mut again = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("back");
    // A withdrawal of something else is an UPDATE, not End-of-RIB: both stale routes stay.
    again
        .send_message(&Message::Update(Update {
            withdrawn: vec![bgp_proto::Nlri::new(net("10.244.99.0/26"))],
            ..Default::default()
        }))
        .expect("withdraw");
    again.keepalive().expect("keepalive");
    let before = node.peer("h2").messages_in;
    again.keepalive().expect("keepalive");
    node.wait_until("both messages were read", || node.peer("h2").messages_in > before);
    assert!(node.kernel_gateways("10.244.2.0/26").is_some());
    assert!(node.kernel_gateways("10.244.3.0/26").is_some());
}

/// Drops `h2`'s session after it announced two blocks with graceful restart, and
/// waits until the node keeps them as stale and is ready for a new connection.
fn restarting_peer(node: &Node) {
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    announce_two(node, &mut h2);
    drop(h2);
    node.wait_until("stale", || node.routes().iter().any(|r| r.from == "h2 (stale)"));
    node.wait_state("h2", "Active");
}

#[test]
fn a_peer_back_without_graceful_restart_loses_its_stale_routes_at_once() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let _again = node.connect("127.0.0.2", ASN).expect("back, no GR capability");
    node.wait_until("stale routes removed at Established (RFC 4724 §4.2)", || {
        node.kernel_gateways("10.244.3.0/26").is_none() && node.kernel_gateways("10.244.2.0/26").is_none()
    });
}

#[test]
fn a_peer_back_with_the_forwarding_bit_clear_loses_its_stale_routes_at_once() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let mut opts = ConnectOptions::graceful_restart(false);
    if let Capability::GracefulRestart(gr) = &mut opts.extra_capabilities[0] {
        gr.families[0].forwarding_preserved = false;
    }
    let _again = node.connect_with("127.0.0.2", ASN, opts).expect("back, F=0");
    node.wait_until("stale routes removed", || {
        node.kernel_gateways("10.244.3.0/26").is_none()
    });
}

#[test]
fn show_peers_tells_the_graceful_restart_state_and_stale_count() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let gr = node.peer("h2").graceful_restart.expect("in graceful restart");
    assert_eq!(gr.state, "restarting");
    assert_eq!(gr.stale_routes, 2);
    assert!(gr.remaining_secs <= 120 && gr.remaining_secs > 60, "{gr:?}");
    let _again = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("back");
    node.wait_until("waiting for End-of-RIB", || {
        node.peer("h2")
            .graceful_restart
            .is_some_and(|g| g.state == "waiting for End-of-RIB" && g.remaining_secs > 120)
    });
}

#[test]
fn an_update_emptied_by_attribute_discard_does_not_end_the_stale_routes() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    restarting_peer(&node);
    let mut again = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("back");
    // UPDATE with only ATOMIC_AGGREGATE of length 1: discarded (RFC 7606 §7.6), leaving nothing.
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&[0, 27, 2, 0, 0, 0, 4, 0x40, 6, 1, 0]);
    again.send_raw(&msg).expect("send");
    let before = node.peer("h2").messages_in;
    again.keepalive().expect("keepalive");
    node.wait_until("both read", || node.peer("h2").messages_in > before);
    assert!(
        node.kernel_gateways("10.244.2.0/26").is_some(),
        "not an End-of-RIB (finding 16)"
    );
    assert!(node.kernel_gateways("10.244.3.0/26").is_some());
}

/// Graceful restart with the N bit (RFC 8538).
fn notify(peer: &mut TestPeer, subcode: u8, data: Vec<u8>) {
    peer.send_message(&Message::Notification(bgp_proto::notification::Notification {
        code: 6,
        subcode,
        data,
    }))
    .expect("notify");
}

#[test]
fn with_the_n_bit_a_notification_keeps_the_peers_routes_as_stale() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(true))
        .expect("h2");
    announce_two(&node, &mut h2);
    notify(&mut h2, 2, Vec::new());
    node.wait_until("stale (RFC 8538 §3)", || {
        node.routes().iter().any(|r| r.from == "h2 (stale)")
    });
    assert!(node.kernel_gateways("10.244.3.0/26").is_some());
}

#[test]
fn a_hard_reset_from_the_peer_removes_its_routes() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(true))
        .expect("h2");
    announce_two(&node, &mut h2);
    notify(&mut h2, 9, vec![6, 2]);
    node.wait_until("gone", || node.kernel_gateways("10.244.3.0/26").is_none());
}

#[test]
fn with_the_n_bit_removing_the_peer_sends_a_hard_reset() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(true))
        .expect("h2");
    node.wait_state("h2", "Established");
    node.reload_with("").expect("reload");
    let n = h2
        .expect_notification(std::time::Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!(
        (n.code, n.subcode),
        (6, 9),
        "Cease / Hard Reset: the peer must not keep our routes"
    );
    assert_eq!(&n.data[..2], &[6, 2], "carrying Administrative Shutdown");
}

#[test]
fn a_graceful_restart_peer_reconnecting_while_established_replaces_the_old_session() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut old = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    announce_two(&node, &mut old);
    // The peer restarted without the old connection closing (RFC 4724 §4.2).
    let mut new = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("the new session is kept");
    assert!(
        old.wait_closed(std::time::Instant::now() + PATIENCE),
        "the old one is closed"
    );
    node.wait_state("h2", "Established");
    assert!(
        node.kernel_gateways("10.244.3.0/26").is_some(),
        "its routes stay (stale)"
    );
    new.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    new.end_of_rib().expect("EoR");
    node.wait_until("End-of-RIB removed what was not re-announced", || {
        node.kernel_gateways("10.244.3.0/26").is_none()
    });
    assert!(node.kernel_gateways("10.244.2.0/26").is_some());
}

#[test]
fn long_lived_graceful_restart_keeps_routes_as_llgr_stale_after_the_restart_time() {
    use bgp_proto::capability::LlgrFamily;
    let node = Node::start(&format!(
        "[graceful_restart]\nlong_lived_stale_time = 3600\n{}",
        ibgp_peer("h2", "127.0.0.2")
    ));
    let mut opts = ConnectOptions::graceful_restart(false);
    if let Capability::GracefulRestart(gr) = &mut opts.extra_capabilities[0] {
        gr.restart_time = 0; // straight to the long-lived phase
    }
    opts.extra_capabilities
        .push(Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
            stale_time: 3600,
        }]));
    let mut h2 = node.connect_with("127.0.0.2", ASN, opts).expect("h2");
    assert!(
        h2.peer_open
            .capabilities()
            .any(|c| matches!(c, Capability::LongLivedGracefulRestart(f) if f[0].stale_time == 3600)),
        "ternd announces LLGR (RFC 9494)"
    );
    announce_two(&node, &mut h2);
    drop(h2);
    node.wait_until("LLGR_STALE (65535:6)", || {
        node.routes()
            .iter()
            .any(|r| r.prefix == "10.244.3.0/26" && r.communities.contains(&"65535:6".to_string()))
    });
    assert!(node.kernel_gateways("10.244.3.0/26").is_some(), "still forwarding");
}
