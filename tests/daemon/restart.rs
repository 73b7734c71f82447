//! Our own graceful restart (RFC 4724 §4.1): what a `systemctl restart` or a
//! crash of ternd does to its peers and its kernel, and the hard stop.

use std::time::Instant;

use bgp_proto::capability::{Capability, GracefulRestart};
use bgp_proto::Family;
use tern::api::control::proto::{Request, ShutdownReply};
use tern::registry::StopMode;
use tern_testkit::testpeer::{ConnectOptions, TestPeer};

use tern_testkit::inproc::*;

fn our_gr(peer: &TestPeer) -> GracefulRestart {
    peer.peer_open
        .capabilities()
        .find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g.clone()),
            _ => None,
        })
        .expect("ternd announces graceful restart")
}

fn two_peers() -> String {
    format!("{}{}", ibgp_peer("h2", "127.0.0.2"), ibgp_peer("h3", "127.0.0.3"))
}

/// h2 and h3 up with graceful restart, each with a block in the kernel.
fn mesh(node: &Node) -> (TestPeer, TestPeer) {
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    let mut h3 = node
        .connect_with("127.0.0.3", ASN, ConnectOptions::graceful_restart(false))
        .expect("h3");
    for (p, block, nh) in [
        (&mut h2, "10.244.2.0/26", "192.168.1.12"),
        (&mut h3, "10.244.3.0/26", "192.168.1.13"),
    ] {
        p.announce(&[net(block)], nh.parse().unwrap(), vec![])
            .expect("announce");
        p.end_of_rib().expect("EoR");
    }
    node.wait_until("both blocks installed", || {
        node.kernel_gateways("10.244.2.0/26").is_some() && node.kernel_gateways("10.244.3.0/26").is_some()
    });
    read_until(&mut h2, "h2's table", |s| s.end_of_rib);
    read_until(&mut h3, "h3's table", |s| s.end_of_rib);
    (h2, h3)
}

#[test]
fn a_fresh_start_announces_graceful_restart_without_the_restart_bit() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    let g = our_gr(&h2);
    assert!(!g.restarting);
    assert!(g.families.iter().all(|f| !f.forwarding_preserved));
}

#[test]
fn a_graceful_stop_closes_sessions_without_a_notification_and_keeps_the_kernel_routes() {
    let mut node = Node::start(&two_peers());
    let (mut h2, _h3) = mesh(&node);
    node.stop_with(StopMode::Graceful);
    let n = h2.expect_notification(Instant::now() + PATIENCE).expect("read");
    assert_eq!(
        n, None,
        "RFC 4724 §4: a NOTIFICATION would end graceful restart at the peer"
    );
    assert!(node.kernel_gateways("10.244.2.0/26").is_some());
    assert!(node.kernel_routes().iter().any(|r| r.prefix == net(OWN_BLOCK)));
}

#[test]
fn after_a_graceful_restart_the_open_carries_r_and_f_and_routes_wait_for_every_peers_end_of_rib() {
    let mut node = Node::start(&two_peers());
    let (h2, h3) = mesh(&node);
    // ternd stops first; its peers see the connections go only then.
    node.restart(StopMode::Graceful);
    drop((h2, h3));
    assert!(node.status().selection_deferred);
    assert!(
        node.kernel_gateways("10.244.2.0/26").is_some(),
        "forwarding kept across the restart"
    );
    let mut h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2 back");
    let g = our_gr(&h2);
    assert!(g.restarting, "RFC 4724 §4.1: R bit after a restart");
    assert!(
        g.families
            .iter()
            .any(|f| f.family == Family::IPV4_UNICAST && f.forwarding_preserved),
        "F bit: our kernel routes were kept"
    );
    h2.announce(&[net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    h2.end_of_rib().expect("EoR");
    let before = node.peer("h2").messages_in;
    h2.keepalive().expect("keepalive");
    node.wait_until("h2's End-of-RIB was read", || node.peer("h2").messages_in > before);
    assert!(
        node.status().selection_deferred,
        "still waiting for h3, which was up before the restart"
    );
    let mut h3 = node
        .connect_with("127.0.0.3", ASN, ConnectOptions::graceful_restart(false))
        .expect("h3 back");
    h3.announce(&[net("10.244.3.0/26")], "192.168.1.13".parse().unwrap(), vec![])
        .expect("announce");
    h3.end_of_rib().expect("EoR");
    let seen = read_until(&mut h2, "our table and End-of-RIB", |s| s.end_of_rib);
    assert_eq!(
        seen.announced,
        vec![OWN_BLOCK.to_string()],
        "nothing before the deferral ended"
    );
    assert!(!node.status().selection_deferred);
    assert!(node.kernel_gateways("10.244.3.0/26").is_some());
    // Selection done: a later session no longer says we restarted.
    drop(h2);
    node.wait_state("h2", "Active");
    let h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2 again");
    assert!(!our_gr(&h2).restarting);
}

#[test]
fn a_hard_stop_sends_cease_removes_our_kernel_routes_and_the_next_start_is_fresh() {
    let mut node = Node::start(&two_peers());
    let (mut h2, _h3) = mesh(&node);
    node.stop_with(StopMode::Hard);
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, 2), "Cease / Administrative Shutdown");
    assert!(node.kernel_routes().is_empty(), "every route of ours removed");
    node.restart(StopMode::Graceful);
    assert!(!node.status().selection_deferred, "no restart state: a fresh start");
    let h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2");
    assert!(!our_gr(&h2).restarting);
}

#[test]
fn ternctl_shutdown_asks_for_a_graceful_or_a_hard_stop() {
    let node = Node::start("");
    let reply: ShutdownReply = node.ternctl(Request::Shutdown { hard: false }).expect("shutdown");
    assert_eq!(reply.mode, "graceful");
    assert_eq!(node.stop_requested(), StopMode::Graceful);
    let node = Node::start("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ternctl"))
        .arg("--socket")
        .arg(node.control_socket())
        .args(["shutdown", "--hard"])
        .output()
        .expect("ternctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ternd is stopping (hard)");
    assert_eq!(node.stop_requested(), StopMode::Hard);
}

#[test]
fn bird_show_status_reports_the_recovery_while_selection_is_deferred() {
    let mut node = Node::start(&two_peers());
    let (h2, h3) = mesh(&node);
    // ternd stops first; its peers see the connections go only then.
    node.restart(StopMode::Graceful);
    drop((h2, h3));
    let lines = node.birdc("show status");
    assert!(
        lines.iter().any(|l| l == "0024-Graceful restart recovery in progress"),
        "calico-node's readiness check reads this: {lines:?}"
    );
    // BIRD continues a reply code's lines with a leading space.
    assert!(
        lines.iter().any(|l| l == "   Waiting for 2 channels to recover"),
        "{lines:?}"
    );
}

#[test]
fn a_crash_soon_after_the_sessions_came_up_is_still_a_restart_for_those_peers() {
    let mut node = Node::start(&two_peers());
    let (h2, h3) = mesh(&node);
    // Within a second of the sessions coming up, not at the next heartbeat.
    node.wait_until("the state file names both peers", || {
        let s = node.state_file();
        s.contains("127.0.0.2") && s.contains("127.0.0.3")
    });
    // ternd dies first (its peers see the connections go only then).
    node.crash_and_start();
    drop((h2, h3));
    assert!(node.status().selection_deferred);
    let h2 = node
        .connect_with("127.0.0.2", ASN, ConnectOptions::graceful_restart(false))
        .expect("h2 back");
    let g = our_gr(&h2);
    assert!(g.restarting, "R bit after a crash");
    assert!(
        g.families
            .iter()
            .any(|f| f.family == Family::IPV4_UNICAST && f.forwarding_preserved),
        "F bit for IPv4: the kernel kept our routes"
    );
}
