//! Prefix limits (RFC 4486) and route refresh (RFC 2918).

use std::time::Instant;

use bgp_proto::route_refresh::RouteRefresh;
use bgp_proto::{Family, Message};
use tern_testkit::testpeer::blocks;

use tern_testkit::inproc::*;

fn limited(limit: u32, restart_after: u32) -> String {
    format!(
        "{}[peer.max_prefixes]\nlimit = {limit}\nrestart_after = {restart_after}\n",
        ibgp_peer("h2", "127.0.0.2")
    )
}

#[test]
fn over_the_prefix_limit_the_session_gets_cease_1_with_family_and_limit() {
    let node = Node::start(&limited(3, 0));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(
        &blocks("10.244.16.0".parse().unwrap(), 4),
        "192.168.1.12".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!(
        (n.code, n.subcode),
        (6, 1),
        "Cease / Maximum Number of Prefixes Reached"
    );
    assert_eq!(n.data, vec![0, 1, 1, 0, 0, 0, 3], "RFC 4486 §4: AFI 1, SAFI 1, limit 3");
    node.wait_until("its routes are gone", || {
        node.routes().iter().all(|r| !r.prefix.starts_with("10.244.16."))
    });
    let err = node.peer("h2").last_error.unwrap_or_default();
    assert!(err.contains("maximum number of prefixes (3)"), "{err}");
}

#[test]
fn after_the_prefix_limit_the_peer_stays_down_without_restart_after() {
    let node = Node::start(&limited(1, 0));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(
        &blocks("10.244.16.0".parse().unwrap(), 2),
        "192.168.1.12".parse().unwrap(),
        vec![],
    )
    .expect("announce");
    h2.expect_notification(Instant::now() + PATIENCE).expect("read");
    node.wait_until("h2 is Idle", || node.peer("h2").state == "Idle");
    assert!(node.connect("127.0.0.2", ASN).is_err(), "held down: no new session");
}

#[test]
fn a_route_refresh_gets_the_whole_table_again() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "the initial table", |s| s.end_of_rib);
    h2.send_message(&Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST)))
        .expect("refresh");
    let seen = read_until(&mut h2, "the table again", |s| !s.announced.is_empty());
    assert_eq!(seen.announced, vec![OWN_BLOCK.to_string()]);
}
