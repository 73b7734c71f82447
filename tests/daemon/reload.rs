//! SIGHUP / reload: only what changed changes.

use tern_testkit::inproc::*;
use tern_testkit::SOFT_RECONFIG_POLICIES as POLICIES;

#[test]
fn reload_adds_a_peer_without_touching_the_running_session() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let since = node.peer("h2").since_unix;
    node.reload_with(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ))
    .expect("reload");
    let _h3 = node.connect("127.0.0.3", ASN).expect("h3 accepted after the reload");
    node.wait_state("h3", "Established");
    assert_eq!(node.peer("h2").state, "Established");
    assert_eq!(node.peer("h2").since_unix, since, "h2's session was not reset");
    h2.keepalive().expect("h2 still open");
}

#[test]
fn reload_removes_a_peer_with_its_shutdown_message() {
    let extra = format!("{}shutdown_message = \"moving racks\"\n", ibgp_peer("h2", "127.0.0.2"));
    let node = Node::start(&extra);
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    node.reload_with("").expect("reload");
    let n = h2
        .expect_notification(std::time::Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, 2), "Cease / Administrative Shutdown");
    assert!(n.describe().contains("moving racks") || n.data.windows(12).any(|w| w == b"moving racks"));
    node.wait_until("h2 is gone", || node.peers().is_empty());
}

#[test]
fn reload_announces_a_new_block_and_withdraws_a_removed_one() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "the initial table", |s| s.end_of_rib);
    // The new configuration originates 10.244.3.0/26 and no longer the base block.
    let text = config_text(node.dir.path(), &ibgp_peer("h2", "127.0.0.2")).replace(OWN_BLOCK, "10.244.3.0/26");
    node.reload_raw(&text).expect("reload");
    let seen = read_until(&mut h2, "the change", |s| {
        s.announced.contains(&"10.244.3.0/26".into()) && s.withdrawn.contains(&OWN_BLOCK.into())
    });
    assert!(!seen.announced.contains(&OWN_BLOCK.to_string()));
    node.wait_until("the old blackhole is removed", || {
        node.kernel_routes().iter().all(|r| r.prefix != net(OWN_BLOCK))
    });
}

#[test]
fn a_broken_file_on_reload_changes_nothing_and_names_file_line_and_column() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let _h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let text = config_text(node.dir.path(), &ibgp_peer("h2", "127.0.0.2"))
        .replace("asn = 64512\npassive", "asn = \"x\"\npassive");
    let err = node.reload_raw(&text).expect_err("invalid");
    let shown = err.to_string();
    assert!(shown.contains("tern.toml:"), "{shown}");
    assert!(
        shown
            .split(':')
            .nth(1)
            .is_some_and(|line| line.trim().parse::<u32>().is_ok()),
        "FILE:LINE:COLUMN: {shown}"
    );
    assert_eq!(node.peer("h2").state, "Established");
    assert_eq!(node.status().peers_configured, 1);
}

fn h2_with(keys: &str) -> String {
    format!("{}{keys}{POLICIES}", ibgp_peer("h2", "127.0.0.2"))
}

fn med_of(u: &bgp_proto::update::Update) -> Option<u32> {
    match u.attribute(bgp_proto::attributes::type_code::MED) {
        Some(bgp_proto::attributes::AttrValue::Med(m)) => Some(*m),
        _ => None,
    }
}

#[test]
fn reload_changing_the_export_policy_re_sends_without_resetting_the_session() {
    let node = Node::start(&h2_with(""));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "the initial table", |s| s.end_of_rib);
    let since = node.peer("h2").since_unix;

    node.reload_with(&h2_with("export = [\"med10\"]\n")).expect("reload");
    let seen = read_until(&mut h2, "our block again with MED 10", |s| {
        s.updates
            .iter()
            .any(|u| med_of(u) == Some(10) && u.announced().any(|(_, n)| n.prefix == net(OWN_BLOCK)))
    });
    assert!(seen.withdrawn.is_empty(), "{:?}", seen.withdrawn);

    node.reload_with(&h2_with("export = [\"nothing\"]\n")).expect("reload");
    read_until(&mut h2, "our block withdrawn", |s| {
        s.withdrawn.contains(&OWN_BLOCK.to_string())
    });
    h2.keepalive().expect("h2 still open");
    assert_eq!(node.peer("h2").state, "Established");
    assert_eq!(node.peer("h2").since_unix, since, "h2's session was not reset");
}

/// Reads until the peer sends a ROUTE-REFRESH; panics on a NOTIFICATION.
fn expect_route_refresh(peer: &mut tern_testkit::testpeer::TestPeer) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        assert!(std::time::Instant::now() < deadline, "no ROUTE-REFRESH");
        match peer.recv(deadline).expect("read").map(|d| d.message) {
            Some(bgp_proto::Message::RouteRefresh(_)) => return,
            Some(bgp_proto::Message::Notification(n)) => panic!("session reset: {}", n.describe()),
            _ => {}
        }
    }
}

#[test]
fn reload_changing_the_import_policy_asks_the_peer_again_without_resetting_the_session() {
    let node = Node::start(&h2_with(""));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let theirs = [net("10.244.2.0/26"), net("10.244.3.0/26")];
    h2.announce(&theirs, "127.0.0.2".parse().unwrap(), vec![])
        .expect("announce");
    let from_h2 = |node: &Node| {
        let mut v: Vec<String> = node
            .routes()
            .into_iter()
            .filter(|r| r.from == "h2")
            .map(|r| r.prefix)
            .collect();
        v.sort();
        v
    };
    node.wait_until("both routes in the RIB", || from_h2(&node).len() == 2);
    let since = node.peer("h2").since_unix;

    node.reload_with(&h2_with("import = [\"no-3\"]\n")).expect("reload");
    expect_route_refresh(&mut h2);
    // The peer answers as RFC 2918 §4 asks: everything again.
    h2.announce(&theirs, "127.0.0.2".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("10.244.3.0/26 rejected by the new import", || {
        from_h2(&node) == ["10.244.2.0/26".to_string()]
    });
    assert_eq!(node.peer("h2").since_unix, since, "h2's session was not reset");
    h2.keepalive().expect("h2 still open");
}

#[test]
fn a_new_import_policy_resets_a_peer_without_route_refresh_with_other_configuration_change() {
    let node = Node::start(&h2_with(""));
    let opts = tern_testkit::testpeer::ConnectOptions {
        without_route_refresh: true,
        ..Default::default()
    };
    let mut h2 = node.connect_with("127.0.0.2", ASN, opts).expect("h2");
    node.wait_state("h2", "Established");
    node.reload_with(&h2_with("import = [\"no-3\"]\n")).expect("reload");
    let n = h2
        .expect_notification(std::time::Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, 6), "Cease / Other Configuration Change");
}

#[test]
fn reload_changing_the_hold_time_restarts_the_session() {
    let node = Node::start(&h2_with(""));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    node.reload_with(&h2_with("hold_time = 30\n")).expect("reload");
    let n = h2
        .expect_notification(std::time::Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION: the hold time is in the OPEN");
    assert_eq!(n.code, 6, "Cease");
}

#[test]
fn reload_changing_the_description_shows_it_without_resetting_the_session() {
    let node = Node::start(&h2_with(""));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let since = node.peer("h2").since_unix;
    node.reload_with(&h2_with("description = \"rack 12 ToR\"\n"))
        .expect("reload");
    assert_eq!(node.peer("h2").description.as_deref(), Some("rack 12 ToR"));
    assert_eq!(node.peer("h2").since_unix, since, "h2's session was not reset");
    h2.keepalive().expect("h2 still open");
}
