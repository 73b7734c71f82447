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

#[test]
fn finding_24_the_prefix_limit_notification_names_the_family_that_tripped_it() {
    use bgp_proto::attributes::{AsPath, AttrValue, MpNextHop, Origin, PathAttribute};
    use bgp_proto::capability::Capability;
    // An import policy that takes IPv6 too (the default takes allowed_prefixes, IPv4 here).
    let node = Node::start(&format!(
        "{}[[policy]]\nname = \"all\"\ndefault = \"accept\"\n",
        limited(1, 0).replace("passive = true\n", "passive = true\nimport = [\"all\"]\n")
    ));
    let opts = tern_testkit::testpeer::ConnectOptions {
        extra_capabilities: vec![Capability::Multiprotocol(Family::IPV6_UNICAST)],
        ..Default::default()
    };
    let mut h2 = node.connect_with("127.0.0.2", ASN, opts).expect("h2");
    let nlri: Vec<bgp_proto::Nlri> = ["fd00:10:244:1::/64", "fd00:10:244:2::/64"]
        .iter()
        .map(|p| bgp_proto::Nlri::new(p.parse().unwrap()))
        .collect();
    let mut bytes = Vec::new();
    bgp_proto::update::pack_announcements(
        &h2.tx,
        Family::IPV6_UNICAST,
        MpNextHop::V6 {
            global: "fd00::12".parse().unwrap(),
            link_local: None,
        },
        &[
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![]))),
        ],
        &nlri,
        &mut bytes,
    )
    .expect("encode");
    h2.send_raw(&bytes).expect("send");
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION");
    assert_eq!((n.code, n.subcode), (6, 1));
    assert_eq!(&n.data[..3], &[0, 2, 1], "RFC 4486 §4: AFI 2 (IPv6), SAFI 1");
}

#[test]
fn finding_24_a_begin_of_route_refresh_is_not_a_request() {
    use bgp_proto::route_refresh::RefreshSubtype;
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "the initial table", |s| s.end_of_rib);
    h2.send_message(&Message::RouteRefresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: RefreshSubtype::Begin,
    }))
    .expect("BoRR");
    let before = node.peer("h2").messages_in;
    h2.keepalive().expect("keepalive");
    node.wait_until("both read", || node.peer("h2").messages_in > before);
    // A marker block announced after: anything the BoRR caused comes before it.
    let text =
        config_text(node.dir.path(), &ibgp_peer("h2", "127.0.0.2")) + "[[originate]]\nprefix = \"10.244.7.0/26\"\n";
    node.reload_raw(&text).expect("reload");
    let seen = read_until(&mut h2, "the marker", |s| s.announced.contains(&"10.244.7.0/26".into()));
    assert!(
        !seen.announced.contains(&OWN_BLOCK.to_string()),
        "RFC 7313 §5: BoRR is not answered with the table"
    );
}
