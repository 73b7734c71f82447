//! Issue 15: commands that change things — `ternctl peer
//! disable|enable|reset|refresh NAME` and `ternctl reload` — over the
//! control socket, as ternctl sends them.

use std::time::Instant;

use bgp_proto::notification::cease;
use bgp_proto::Message;
use tern::api::control::proto::{PeerActionReply, PeerRequest, ReloadReply, Request};
use tern_testkit::inproc::*;

fn act(node: &Node, name: &str, action: PeerRequest) -> Result<PeerActionReply, String> {
    node.ternctl(Request::Peer {
        name: name.into(),
        action,
    })
}

#[test]
fn a_disabled_peer_stays_down_across_reloads_until_enabled() {
    let h2_conf = ibgp_peer("h2", "127.0.0.2");
    let node = Node::start(&h2_conf);
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let disable = PeerRequest::Disable {
        message: Some("maintenance".into()),
    };
    let reply = act(&node, "h2", disable).expect("disable");
    assert!(reply.disabled, "{reply:?}");
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, cease::ADMINISTRATIVE_SHUTDOWN));
    assert_eq!(n.shutdown_message(), Some("maintenance"), "RFC 9003 text");
    // Knocking again gets nowhere, also after a reload that restarts h2's session.
    assert!(node.connect("127.0.0.2", ASN).is_err(), "a disabled peer is not served");
    node.reload_with(&h2_conf.replace("passive = true", "passive = true\nhold_time = 30"))
        .expect("reload");
    let peer = node.peer("h2");
    assert!(peer.disabled && peer.state == "Idle", "{peer:?}");
    assert!(
        node.connect("127.0.0.2", ASN).is_err(),
        "still disabled after the reload"
    );
    act(&node, "h2", PeerRequest::Enable).expect("enable");
    let _h2 = node.connect("127.0.0.2", ASN).expect("h2 again");
    node.wait_state("h2", "Established");
    assert!(!node.peer("h2").disabled);
    let again = act(&node, "h2", PeerRequest::Enable);
    assert!(again.is_err_and(|e| e.contains("not disabled")));
    let nobody = act(&node, "h9", PeerRequest::Reset);
    assert!(nobody.is_err_and(|e| e.contains("no peer named")));
}

#[test]
fn reset_and_refresh_in_and_out() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "our block and End-of-RIB", |s| s.end_of_rib);
    // --in: a ROUTE-REFRESH for the session's family (RFC 2918 §3).
    act(
        &node,
        "h2",
        PeerRequest::Refresh {
            inbound: true,
            outbound: false,
        },
    )
    .expect("refresh --in");
    let deadline = Instant::now() + PATIENCE;
    let refresh = loop {
        match h2.recv(deadline).expect("read").map(|d| d.message) {
            Some(Message::RouteRefresh(rr)) => break rr,
            Some(_) => {}
            None => panic!("no ROUTE-REFRESH"),
        }
    };
    assert_eq!(refresh.family, bgp_proto::Family::IPV4_UNICAST);
    // --out: our routes again.
    act(
        &node,
        "h2",
        PeerRequest::Refresh {
            inbound: false,
            outbound: true,
        },
    )
    .expect("refresh --out");
    read_until(&mut h2, "our block again", |s| {
        s.announced.contains(&OWN_BLOCK.to_string())
    });
    // Reset: Cease / Administrative Reset (RFC 4486), and the peer may come back.
    act(&node, "h2", PeerRequest::Reset).expect("reset");
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, cease::ADMINISTRATIVE_RESET));
    // After the FSM's idle hold time it takes the peer again.
    let mut again = None;
    node.wait_until("h2 connected again", || {
        again = node.connect("127.0.0.2", ASN).ok();
        again.is_some()
    });
    node.wait_state("h2", "Established");
}

#[test]
fn reload_reports_what_changed_and_a_bad_file_changes_nothing() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let _h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let since = node.peer("h2").since_unix;
    node.write_config(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ));
    let report: ReloadReply = node.ternctl(Request::Reload).expect("reload");
    assert_eq!(report.peers_added, vec!["h3".to_string()]);
    assert!(
        report.peers_removed.is_empty() && report.peers_changed.is_empty(),
        "{report:?}"
    );
    node.write_config("[[peer]]\nname = \"h2\"\naddress = \"not an address\"\nasn = 64512\n");
    let refused: Result<ReloadReply, String> = node.ternctl(Request::Reload);
    let errors = refused.expect_err("a bad file is refused");
    assert!(
        errors.contains("tern.toml:") && errors.contains("not an address"),
        "{errors}"
    );
    let peer = node.peer("h2");
    assert_eq!(
        (peer.state.as_str(), peer.since_unix),
        ("Established", since),
        "unchanged"
    );
    assert_eq!(node.peers().len(), 2, "h3 still configured");
}

/// Issue 15: the ternctl socket's mode is configurable, and a read-only
/// socket answers `show …` but refuses whatever changes the daemon.
#[test]
fn the_control_socket_mode_and_a_read_only_socket() {
    use std::os::unix::fs::PermissionsExt;
    let node = Node::start_with_control(
        "socket_mode = \"0600\"\nread_only_socket = \"{dir}/ro.sock\"\nread_only_socket_mode = \"0644\"",
        &ibgp_peer("h2", "127.0.0.2"),
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("socket").permissions().mode() & 0o777;
    let read_only = node.dir.path().join("ro.sock");
    assert_eq!((mode(&node.control_socket()), mode(&read_only)), (0o600, 0o644));
    let ask = |req: Request| -> Result<serde_json::Value, String> {
        node.block_on(tern::api::control::request(&read_only, &req))
    };
    assert!(ask(Request::Status).is_ok(), "reading is allowed");
    for req in [
        Request::Reload,
        Request::Shutdown { hard: true },
        Request::Peer {
            name: "h2".into(),
            action: PeerRequest::Reset,
        },
    ] {
        let refused = ask(req).expect_err("changing is not");
        assert!(refused.contains("read-only"), "{refused}");
    }
    assert_eq!(node.status().peers_configured, 1, "still running, unchanged");
}

#[test]
fn show_peer_counts_accepted_filtered_and_advertised_routes_per_family() {
    let keys = "import = [\"no-3\"]\n[[policy]]\nname = \"no-3\"\ndefault = \"accept\"\n[[policy.rule]]\nprefix = \"10.244.3.0/26\"\naction = \"reject\"\n";
    let node = Node::start(&format!("{}{keys}", ibgp_peer("h2", "127.0.0.2")));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "our block", |s| s.end_of_rib);
    let theirs = [net("10.244.2.0/26"), net("10.244.3.0/26"), net("10.244.4.0/26")];
    h2.announce(&theirs, "127.0.0.2".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("two accepted", || {
        node.peer("h2").family_counts.first().is_some_and(|c| c.accepted == 2)
    });
    let counts = node.peer("h2").family_counts;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0].family, "ipv4-unicast");
    assert_eq!(
        (counts[0].accepted, counts[0].filtered, counts[0].advertised),
        (2, 1, 1)
    );
}
