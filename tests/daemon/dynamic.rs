//! `[[dynamic_peers]]`: sessions admitted from a range, up to its limit.

use tern_testkit::inproc::*;

fn range(limit: u32) -> String {
    format!("[[dynamic_peers]]\nrange = \"127.0.1.0/24\"\nlimit = {limit}\n")
}

#[test]
fn a_peer_in_a_dynamic_range_is_admitted_and_named_after_its_address() {
    let node = Node::start(&range(5));
    let mut p = node.connect("127.0.1.7", ASN).expect("admitted");
    node.wait_state("Dynamic_127_0_1_7", "Established");
    let seen = read_until(&mut p, "our block", |s| s.end_of_rib);
    assert_eq!(seen.announced, vec![OWN_BLOCK.to_string()]);
}

#[test]
fn the_range_limit_refuses_one_more_peer() {
    let node = Node::start(&range(2));
    let _a = node.connect("127.0.1.1", ASN).expect("first");
    let _b = node.connect("127.0.1.2", ASN).expect("second");
    assert!(node.connect("127.0.1.3", ASN).is_err(), "the range is full");
    assert_eq!(node.peers().len(), 2);
}

#[test]
fn a_dynamic_peer_whose_session_ended_frees_its_place() {
    let node = Node::start(&range(1));
    let a = node.connect("127.0.1.1", ASN).expect("first");
    node.wait_state("Dynamic_127_0_1_1", "Established");
    drop(a);
    node.wait_until("the dynamic peer is gone", || node.peers().is_empty());
    let _b = node.connect("127.0.1.2", ASN).expect("the place is free again");
}

#[test]
fn a_dynamic_peer_routes_reach_the_kernel() {
    let node = Node::start(&range(5));
    let mut p = node.connect("127.0.1.7", ASN).expect("admitted");
    p.announce(&[net("10.244.9.0/26")], "192.168.1.19".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("installed", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.19".parse().unwrap()])
    });
}

#[test]
fn a_dynamic_peer_coming_back_after_a_graceful_restart_ends_its_own_stale_routes() {
    let gr = || tern_testkit::testpeer::ConnectOptions::graceful_restart(false);
    let node = Node::start(&range(5));
    let mut p = node.connect_with("127.0.1.7", ASN, gr()).expect("admitted");
    p.announce(
        &[net("10.244.9.0/26"), net("10.244.10.0/26")],
        "192.168.1.19".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    node.wait_until("installed", || node.kernel_gateways("10.244.10.0/26").is_some());
    drop(p);
    node.wait_until("stale", || node.routes().iter().any(|r| r.from.ends_with("(stale)")));
    let mut back = node.connect_with("127.0.1.7", ASN, gr()).expect("back");
    back.announce(&[net("10.244.9.0/26")], "192.168.1.19".parse().unwrap(), vec![])
        .expect("announce");
    back.end_of_rib().expect("EoR");
    node.wait_until("its End-of-RIB ended the stale routes", || {
        node.kernel_gateways("10.244.10.0/26").is_none()
    });
    assert!(node.kernel_gateways("10.244.9.0/26").is_some());
    assert!(node.routes().iter().all(|r| !r.from.ends_with("(stale)")));
}

/// Issue 15: a dynamic peer an operator disabled is refused when it comes
/// back (its session task ends with its session), until enabled.
#[test]
fn a_disabled_dynamic_peer_is_refused_until_enabled() {
    use tern::api::control::proto::{PeerActionReply, PeerRequest, Request};
    let node = Node::start(&range(5));
    let _p = node.connect("127.0.1.7", ASN).expect("admitted");
    node.wait_state("Dynamic_127_0_1_7", "Established");
    let act = |action| -> Result<PeerActionReply, String> {
        node.ternctl(Request::Peer {
            name: "Dynamic_127_0_1_7".into(),
            action,
        })
    };
    act(PeerRequest::Disable { message: None }).expect("disable");
    assert!(node.connect("127.0.1.7", ASN).is_err(), "refused while disabled");
    // Its task ended with the session; enabling lets it be admitted again.
    let enabled = act(PeerRequest::Enable).expect("enable");
    assert!(!enabled.disabled);
    node.wait_until("admitted again", || node.connect("127.0.1.7", ASN).is_ok());
}

#[test]
fn a_reload_applies_a_ranges_new_export_to_its_running_sessions_and_a_removed_range_ends_them() {
    let nothing = "[[policy]]\nname = \"nothing\"\ndefault = \"reject\"\n";
    let node = Node::start(&format!("{}{nothing}", range(5)));
    let mut p = node.connect("127.0.1.7", ASN).expect("admitted");
    read_until(&mut p, "our block", |s| s.end_of_rib);
    let since = node.peer("Dynamic_127_0_1_7").since_unix;

    node.reload_with(&format!("{}export = [\"nothing\"]\n{nothing}", range(5)))
        .expect("reload");
    read_until(&mut p, "our block withdrawn under the range's new export", |s| {
        s.withdrawn.contains(&OWN_BLOCK.to_string())
    });
    assert_eq!(node.peer("Dynamic_127_0_1_7").since_unix, since, "not reset");

    node.reload_with(nothing).expect("reload without the range");
    let n = p
        .expect_notification(std::time::Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION: its range is gone");
    assert_eq!(n.code, 6, "Cease");
    node.wait_until("the dynamic peer is gone", || node.peers().is_empty());
}
