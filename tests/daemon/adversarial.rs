//! What a bad or misconfigured peer sends that BIRD and GoBGP never do, over
//! the wire to the whole daemon (the scripted peer sends it): each is refused
//! or contained and nothing else is lost (review findings 4, 6, 9, 14, 5).

use bgp_proto::attributes::{
    AsPath, AsSegment, AttrValue, Community, MpNextHop, MpReach, MpUnreach, Origin, PathAttribute, SegmentType,
};
use bgp_proto::capability::Capability;
use bgp_proto::update::Update;
use bgp_proto::{Afi, Family, Message, Nlri, Safi};
use tern_testkit::inproc::*;
use tern_testkit::testpeer::{ConnectOptions, TestPeer};

fn attrs(path: AsPath, communities: Vec<Community>) -> Vec<PathAttribute> {
    let mut a = vec![
        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(path)),
    ];
    if !communities.is_empty() {
        a.push(PathAttribute::new(AttrValue::Communities(communities)));
    }
    a
}

fn send(peer: &mut TestPeer, prefix: &str, next_hop: &str, attributes: &[PathAttribute]) {
    peer.announce_with(&[net(prefix)], next_hop.parse().unwrap(), attributes)
        .expect("announce");
}

/// Waits until every message `peer` sent so far has been read by the node.
fn settled(node: &Node, name: &str, peer: &mut TestPeer) {
    let before = node.peer(name).messages_in;
    peer.keepalive().expect("keepalive");
    node.wait_until("all read", || node.peer(name).messages_in > before);
}

#[test]
fn ebgp_paths_with_a_wrong_first_as_an_empty_path_or_confed_segments_are_refused() {
    let node = Node::start(&ebgp_peer("tor", "127.0.0.2", 65001));
    let mut tor = node.connect("127.0.0.2", 65001).expect("tor");
    let confed = AsPath {
        segments: vec![AsSegment {
            kind: SegmentType::ConfedSequence,
            asns: vec![65001],
        }],
    };
    send(
        &mut tor,
        "10.244.20.0/26",
        "192.168.1.1",
        &attrs(AsPath::sequence(vec![65099]), vec![]),
    );
    send(
        &mut tor,
        "10.244.21.0/26",
        "192.168.1.1",
        &attrs(AsPath::default(), vec![]),
    );
    send(&mut tor, "10.244.22.0/26", "192.168.1.1", &attrs(confed, vec![]));
    send(
        &mut tor,
        "10.244.23.0/26",
        "192.168.1.1",
        &attrs(AsPath::sequence(vec![65001]), vec![]),
    );
    node.wait_until("the valid one is installed", || {
        node.kernel_gateways("10.244.23.0/26").is_some()
    });
    settled(&node, "tor", &mut tor);
    for p in ["10.244.20.0/26", "10.244.21.0/26", "10.244.22.0/26"] {
        assert!(node.kernel_gateways(p).is_none(), "{p} refused");
        assert!(node.routes().iter().all(|r| r.prefix != p), "{p} not in the RIB");
    }
    assert_eq!(node.peer("tor").state, "Established", "treat-as-withdraw, no reset");
}

#[test]
fn no_export_subconfed_is_not_passed_to_an_ebgp_peer() {
    let node = Node::start(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ebgp_peer("tor", "127.0.0.3", 65001)
    ));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let mut tor = node.connect("127.0.0.3", 65001).expect("tor");
    read_until(&mut tor, "tor's initial table", |s| s.end_of_rib);
    send(
        &mut h2,
        "10.244.3.0/26",
        "192.168.1.12",
        &attrs(AsPath::default(), vec![Community::NO_EXPORT_SUBCONFED]),
    );
    send(
        &mut h2,
        "10.244.4.0/26",
        "192.168.1.12",
        &attrs(AsPath::default(), vec![]),
    );
    let seen = read_until(&mut tor, "the plain route", |s| {
        s.announced.contains(&"10.244.4.0/26".into())
    });
    assert!(!seen.announced.contains(&"10.244.3.0/26".to_string()), "RFC 1997");
}

#[test]
fn ipv6_nlri_on_an_ipv4_only_session_and_multicast_withdrawals_are_ignored() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2 (IPv4 unicast only)");
    send(
        &mut h2,
        "10.244.4.0/26",
        "192.168.1.12",
        &attrs(AsPath::default(), vec![]),
    );
    node.wait_until("installed", || node.kernel_gateways("10.244.4.0/26").is_some());
    let mut v6 = attrs(AsPath::default(), vec![]);
    v6.push(PathAttribute::new(AttrValue::MpReach(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: MpNextHop::V6 {
            global: "fd00::12".parse().unwrap(),
            link_local: None,
        },
        reserved: 0,
        nlri: vec![Nlri::new("fd00:10:244:1::/64".parse().unwrap())],
    })));
    h2.send_message(&Message::Update(Update {
        attributes: v6,
        ..Update::default()
    }))
    .expect("IPv6 on an IPv4-only session");
    h2.send_message(&Message::Update(Update {
        attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach {
            family: Family::new(Afi::IPV4, Safi(2)),
            withdrawn: vec![Nlri::new(net("10.244.4.0/26"))],
        }))],
        ..Update::default()
    }))
    .expect("multicast withdrawal");
    settled(&node, "h2", &mut h2);
    assert!(
        node.routes().iter().all(|r| !r.prefix.starts_with("fd00")),
        "finding 14"
    );
    assert!(
        node.kernel_gateways("10.244.4.0/26").is_some(),
        "SAFI 2 never withdraws unicast"
    );
}

#[test]
fn a_route_too_big_for_a_peer_is_withdrawn_from_it() {
    let node = Node::start(&format!(
        "{}{}",
        ebgp_peer("tor", "127.0.0.2", 65001),
        ibgp_peer("h3", "127.0.0.3")
    ));
    let extended = ConnectOptions {
        extra_capabilities: vec![Capability::ExtendedMessage],
        ..ConnectOptions::default()
    };
    let mut tor = node
        .connect_with("127.0.0.2", 65001, extended)
        .expect("tor, extended messages");
    let mut h3 = node.connect("127.0.0.3", ASN).expect("h3, 4,096-octet messages");
    read_until(&mut h3, "h3's initial table", |s| s.end_of_rib);
    let path = || AsPath::sequence(vec![65001]);
    send(
        &mut tor,
        "10.244.5.0/26",
        "192.168.1.1",
        &attrs(path(), vec![Community::new(65001, 1)]),
    );
    read_until(&mut h3, "the small version", |s| {
        s.announced.contains(&"10.244.5.0/26".into())
    });
    let many: Vec<Community> = (0..1_100u16).map(|i| Community::new(65001, i)).collect();
    send(&mut tor, "10.244.5.0/26", "192.168.1.1", &attrs(path(), many));
    let seen = read_until(&mut h3, "the withdrawal", |s| {
        s.withdrawn.contains(&"10.244.5.0/26".into())
    });
    assert!(seen.announced.is_empty(), "RFC 8654 §4");
    assert_eq!(node.peer("h3").state, "Established");
}

#[test]
fn one_prefix_re_announced_100_000_times_leaves_no_attribute_sets_behind() {
    let node = Node::start(&ebgp_peer("tor", "127.0.0.2", 65001));
    let mut tor = node.connect("127.0.0.2", 65001).expect("tor");
    send(
        &mut tor,
        "10.244.9.0/26",
        "192.168.1.1",
        &attrs(AsPath::sequence(vec![65001]), vec![]),
    );
    node.wait_until("installed", || node.kernel_gateways("10.244.9.0/26").is_some());
    settled(&node, "tor", &mut tor);
    let baseline = node.status().attribute_sets;
    for med in 0..100_000u32 {
        let mut a = attrs(AsPath::sequence(vec![65001]), vec![]);
        a.push(PathAttribute::new(AttrValue::Med(med)));
        send(&mut tor, "10.244.9.0/26", "192.168.1.1", &a);
    }
    settled(&node, "tor", &mut tor);
    node.wait_until("attribute sets back to the baseline", || {
        node.status().attribute_sets <= baseline + 1
    });
    assert_eq!(node.status().prefixes, 2, "our block and the churned one");
}
