//! SIGHUP / reload: only what changed changes.

use tern_testkit::inproc::*;

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
