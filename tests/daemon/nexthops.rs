//! Next hops and link failures: an ECMP route keeps the paths that still
//! resolve (RFC 4271 §9.1.2, review finding 2).

use bgp_proto::attributes::{AsPath, AttrValue, Origin, PathAttribute};
use tern_testkit::inproc::*;

#[test]
fn a_dual_homed_host_keeps_the_route_via_the_surviving_uplink() {
    let node = Node::start(&format!(
        "{}{}",
        ebgp_peer("tor1", "127.0.0.2", 65001),
        ebgp_peer("tor2", "127.0.0.3", 65001)
    ));
    node.kernel.add_link("eth1");
    node.kernel.add_addr("eth1", "192.168.2.11/24".parse().unwrap());
    let mut tor1 = node.connect("127.0.0.2", 65001).expect("tor1");
    let mut tor2 = node.connect("127.0.0.3", 65001).expect("tor2");
    tor1.announce(&[net("10.244.9.0/26")], "192.168.1.1".parse().unwrap(), vec![65001])
        .expect("announce");
    tor2.announce(&[net("10.244.9.0/26")], "192.168.2.1".parse().unwrap(), vec![65001])
        .expect("announce");
    let both = vec!["192.168.1.1".parse().unwrap(), "192.168.2.1".parse().unwrap()];
    node.wait_until("one multipath route via both", || {
        node.kernel_gateways("10.244.9.0/26") == Some(both.clone())
    });
    node.kernel.set_up("eth1", false);
    node.wait_until("the route stays via tor1", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.1".parse().unwrap()])
    });
    node.kernel.set_up("eth1", true);
    node.wait_until("multipath again", || {
        node.kernel_gateways("10.244.9.0/26") == Some(both.clone())
    });
}

#[test]
fn a_path_whose_next_hop_stops_resolving_gives_way_to_the_next_best() {
    let node = Node::start(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ));
    node.kernel.add_link("eth1");
    node.kernel.add_addr("eth1", "192.168.2.11/24".parse().unwrap());
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let mut h3 = node.connect("127.0.0.3", ASN).expect("h3");
    let attrs = |local_pref: u32| {
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![]))),
            PathAttribute::new(AttrValue::LocalPref(local_pref)),
        ]
    };
    // The better path (LOCAL_PREF 200) via eth1, the other via eth0.
    h2.announce_with(&[net("10.244.9.0/26")], "192.168.2.12".parse().unwrap(), &attrs(200))
        .expect("announce");
    h3.announce_with(&[net("10.244.9.0/26")], "192.168.1.13".parse().unwrap(), &attrs(100))
        .expect("announce");
    let via = |gw: &str| Some(vec![gw.parse().unwrap()]);
    node.wait_until("the better path is installed", || {
        node.kernel_gateways("10.244.9.0/26") == via("192.168.2.12")
    });
    node.kernel.set_up("eth1", false);
    node.wait_until("the next best takes over (RFC 4271 §9.1.2)", || {
        node.kernel_gateways("10.244.9.0/26") == via("192.168.1.13")
    });
    let best: Vec<String> = node.routes().into_iter().filter(|r| r.best).map(|r| r.from).collect();
    assert!(best.contains(&"h3".to_string()), "{best:?}");
    node.kernel.set_up("eth1", true);
    node.wait_until("the better path comes back", || {
        node.kernel_gateways("10.244.9.0/26") == via("192.168.2.12")
    });
}

#[test]
fn finding_21_a_next_hop_that_is_one_of_our_own_addresses_is_not_used() {
    let node = Node::start(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        ibgp_peer("h3", "127.0.0.3")
    ));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let mut h3 = node.connect("127.0.0.3", ASN).expect("h3");
    let attrs = |local_pref: u32| {
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![]))),
            PathAttribute::new(AttrValue::LocalPref(local_pref)),
        ]
    };
    // The better path names this host's own eth0 address as next hop.
    h2.announce_with(&[net("10.244.9.0/26")], "192.168.1.11".parse().unwrap(), &attrs(200))
        .expect("announce");
    h3.announce_with(&[net("10.244.9.0/26")], "192.168.1.13".parse().unwrap(), &attrs(100))
        .expect("announce");
    node.wait_until("the usable path is installed", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.13".parse().unwrap()])
    });
    let best: Vec<String> = node.routes().into_iter().filter(|r| r.best).map(|r| r.from).collect();
    assert!(best.contains(&"h3".to_string()), "RFC 4271 §6.3: {best:?}");
}

/// A static route of another protocol reaching `network` via `gateway` on eth0.
fn static_route(node: &Node, network: &str, gateway: &str) -> fib_sync::KernelRoute {
    fib_sync::KernelRoute {
        prefix: network.parse().unwrap(),
        table: fib_sync::RT_TABLE_MAIN,
        protocol: 4, // RTPROT_STATIC
        metric: 0,
        kind: fib_sync::RouteKind::unicast(vec![fib_sync::Hop {
            gateway: Some(gateway.parse().unwrap()),
            ifindex: node.kernel.ifindex("eth0").unwrap(),
            onlink: false,
        }]),
    }
}

/// Review finding 18 (BIRD's `gateway recursive`, as Calico configures it):
/// a multihop iBGP next hop on no connected subnet is installed via the
/// gateway of the static route that reaches it, moves when that route
/// changes, and goes when it goes.
#[test]
fn finding_18_a_multihop_next_hop_resolves_through_a_static_route_and_follows_it() {
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    h2.announce(&[net("10.244.9.0/26")], "10.0.5.12".parse().unwrap(), vec![])
        .expect("announce");
    // An on-link route sent after it: once it is in, the first was decided too.
    h2.announce(&[net("10.244.10.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("the on-link route", || node.kernel_gateways("10.244.10.0/26").is_some());
    assert_eq!(node.kernel_gateways("10.244.9.0/26"), None, "no route to 10.0.5.12 yet");

    node.kernel
        .add_route(static_route(&node, "10.0.5.0/24", "192.168.1.1"))
        .unwrap();
    node.wait_until("installed via the static route's gateway", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.1".parse().unwrap()])
    });
    node.kernel
        .replace_route(static_route(&node, "10.0.5.0/24", "192.168.1.2"))
        .unwrap();
    node.wait_until("moved with the static route", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.2".parse().unwrap()])
    });
    node.kernel
        .del_route(
            fib_sync::RT_TABLE_MAIN,
            static_route(&node, "10.0.5.0/24", "192.168.1.2").key(),
        )
        .unwrap();
    node.wait_until("gone with it", || node.kernel_gateways("10.244.9.0/26").is_none());
    assert!(
        node.kernel_gateways("10.244.10.0/26").is_some(),
        "the on-link route stays"
    );
}

/// Review finding 15a: an IPv6 route whose next hop is `::` with a
/// link-local beside it, or a link-local global one, is installed
/// `via fe80::… dev <the link shared with the peer>`, and follows that link.
#[test]
fn finding_15a_a_link_local_next_hop_is_installed_on_the_peers_link() {
    use bgp_proto::attributes::{MpNextHop, MpReach};
    use bgp_proto::capability::Capability;
    use bgp_proto::update::Update;
    use bgp_proto::{Family, Message, Nlri};
    use tern_testkit::testpeer::ConnectOptions;

    let node = Node::start(&ebgp_peer("tor", "127.0.0.2", 65001));
    // The scripted peer's session runs over the loopback link.
    let lo = node.kernel.ifindex("lo").expect("lo");
    node.kernel.add_addr("lo", "127.0.0.1/8".parse().unwrap());
    let ipv6 = ConnectOptions {
        extra_capabilities: vec![Capability::Multiprotocol(Family::IPV6_UNICAST)],
        ..ConnectOptions::default()
    };
    let mut tor = node.connect_with("127.0.0.2", 65001, ipv6).expect("tor");
    let announce =
        |tor: &mut tern_testkit::testpeer::TestPeer, prefix: &str, global: &str, link_local: Option<&str>| {
            let reach = MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: global.parse().unwrap(),
                    link_local: link_local.map(|l| l.parse().unwrap()),
                },
                reserved: 0,
                nlri: vec![Nlri::new(net(prefix))],
            };
            let attributes = vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![65001]))),
                PathAttribute::new(AttrValue::MpReach(reach)),
            ];
            tor.send_message(&Message::Update(Update {
                attributes,
                ..Update::default()
            }))
            .expect("announce");
        };
    announce(&mut tor, "fd00:10:244:1::/64", "::", Some("fe80::1"));
    announce(&mut tor, "fd00:10:244:2::/64", "fe80::2", None);
    let hops = |prefix: &str| {
        let prefix = net(prefix);
        node.kernel_routes()
            .into_iter()
            .find(|r| r.prefix == prefix)
            .map(|r| match r.kind {
                fib_sync::RouteKind::Unicast(hops) => hops.iter().map(|h| (h.gateway, h.ifindex)).collect(),
                _ => Vec::new(),
            })
    };
    let on_lo = |gw: &str| Some(vec![(Some(gw.parse().unwrap()), lo)]);
    node.wait_until("both installed on the peer's link", || {
        hops("fd00:10:244:1::/64") == on_lo("fe80::1") && hops("fd00:10:244:2::/64") == on_lo("fe80::2")
    });
    node.kernel.set_up("lo", false);
    node.wait_until("gone with the link", || {
        hops("fd00:10:244:1::/64").is_none() && hops("fd00:10:244:2::/64").is_none()
    });
    node.kernel.set_up("lo", true);
    node.wait_until("back with the link", || {
        hops("fd00:10:244:1::/64") == on_lo("fe80::1") && hops("fd00:10:244:2::/64") == on_lo("fe80::2")
    });
}
