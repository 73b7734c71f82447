//! One regression test per finding of the BGP correctness review
//! (`shared/review/correctness.md`), named after it.

use bgp_proto::attributes::{AsPath, AsSegment, Community, SegmentType};
use bgp_proto::Family;

use super::tests::*;
use super::*;
use crate::messages::{KernelOp, PeerId, RibMsg, RouteSource};
use crate::route::policy::Chain;

fn best(rib: &Rib, prefix: &str) -> Vec<RouteSource> {
    rib.routes(Some(prefix.parse().unwrap()))
        .iter()
        .filter(|r| r.best)
        .map(|r| r.source.clone())
        .collect()
}

fn prefixes(updates: &[bgp_proto::update::Update]) -> (Vec<String>, Vec<String>) {
    let announced = updates
        .iter()
        .flat_map(|u| u.nlri.iter().map(|n| n.prefix.to_string()))
        .collect();
    let withdrawn = updates
        .iter()
        .flat_map(|u| u.withdrawn.iter().map(|n| n.prefix.to_string()))
        .collect();
    (announced, withdrawn)
}

#[test]
fn finding_3_a_route_refresh_keeps_the_adj_rib_out_so_a_later_withdrawal_is_sent() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.1", 65001);
    let mut x = up(&mut rib, 2, "192.168.1.12", ASN);
    announce(&mut rib, 1, "10.244.5.0/26", learned("192.168.1.1", vec![65001]));
    rib.flush();
    assert!(prefixes(&received(&mut x)).0.contains(&"10.244.5.0/26".to_string()));
    rib.handle(RibMsg::RouteRefresh(PeerId(2), Family::IPV4_UNICAST));
    rib.handle(RibMsg::Withdraw {
        peer: PeerId(1),
        family: Family::IPV4_UNICAST,
        nlri: nlri("10.244.5.0/26"),
    });
    rib.flush();
    let (_, withdrawn) = prefixes(&received(&mut x));
    assert!(withdrawn.contains(&"10.244.5.0/26".to_string()), "RFC 4271 §9.2");
}

#[test]
fn finding_3_a_route_refresh_re_sends_what_was_advertised() {
    let mut rib = rib();
    originate(&mut rib, &["10.244.1.0/26"]);
    let mut x = up(&mut rib, 2, "192.168.1.12", ASN);
    rib.flush();
    received(&mut x);
    rib.handle(RibMsg::RouteRefresh(PeerId(2), Family::IPV4_UNICAST));
    rib.flush();
    assert_eq!(prefixes(&received(&mut x)).0, vec!["10.244.1.0/26".to_string()]);
    // A family the session did not negotiate is ignored (RFC 2918 §4).
    rib.handle(RibMsg::RouteRefresh(PeerId(2), Family::IPV6_UNICAST));
    rib.flush();
    assert!(received(&mut x).is_empty());
}

fn ebgp_best_after(path: AsPath) -> Vec<RouteSource> {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.1", 65001);
    let _b = up(&mut rib, 2, "192.168.1.2", 65002);
    let mut bad = learned("192.168.1.1", vec![]);
    bad.as_path = path;
    announce(&mut rib, 1, "10.244.7.0/26", bad);
    announce(&mut rib, 2, "10.244.7.0/26", learned("192.168.1.2", vec![65002, 65010]));
    rib.flush();
    best(&rib, "10.244.7.0/26")
}

#[test]
fn finding_4_an_empty_as_path_from_ebgp_is_treated_as_withdraw() {
    assert_eq!(ebgp_best_after(AsPath::default()), vec![RouteSource::Peer(PeerId(2))]);
}

#[test]
fn finding_4_enforce_first_as_rejects_a_path_not_starting_with_the_peers_as() {
    assert_eq!(
        ebgp_best_after(AsPath::sequence(vec![65099])),
        vec![RouteSource::Peer(PeerId(2))]
    );
}

#[test]
fn finding_4_confederation_segments_from_ebgp_are_treated_as_withdraw() {
    let confed = AsPath {
        segments: vec![AsSegment {
            kind: SegmentType::ConfedSequence,
            asns: vec![65001],
        }],
    };
    assert_eq!(ebgp_best_after(confed), vec![RouteSource::Peer(PeerId(2))]);
}

fn export_to_ebgp(community: Community) -> Vec<String> {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let mut tor = up(&mut rib, 2, "192.168.1.1", 65001);
    rib.flush();
    received(&mut tor);
    let mut attrs = learned("192.168.1.12", vec![]);
    attrs.communities.push(community);
    announce(&mut rib, 1, "10.244.3.0/26", attrs);
    rib.flush();
    prefixes(&received(&mut tor)).0
}

#[test]
fn finding_6_no_export_subconfed_is_not_sent_to_ebgp() {
    assert!(export_to_ebgp(Community::NO_EXPORT_SUBCONFED).is_empty(), "RFC 1997");
    assert_eq!(
        export_to_ebgp(Community::new(65000, 1)),
        vec!["10.244.3.0/26".to_string()]
    );
}

#[test]
fn finding_9_attribute_churn_does_not_pile_up_interned_sets() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.1", 65001);
    let _b = up(&mut rib, 2, "192.168.1.12", ASN);
    for med in 0..20_000u32 {
        let mut attrs = learned("192.168.1.1", vec![65001]);
        attrs.med = Some(med);
        announce(&mut rib, 1, "10.244.9.0/26", attrs);
        rib.flush();
    }
    let sets = rib.summary().attribute_sets;
    assert!(
        sets < 3_000,
        "{sets} attribute sets after 20,000 MED changes of one route"
    );
}

#[test]
fn finding_10_med_elimination_does_not_depend_on_arrival_order() {
    // P1: AS 65001 MED 100; P2: AS 65002 MED 0; P3: AS 65001 MED 50 (the review's example).
    let paths = [
        (1u32, "10.0.0.1", 65001u32, 100u32),
        (2, "10.0.0.2", 65002, 0),
        (3, "10.0.0.3", 65001, 50),
    ];
    for order in [[0usize, 1, 2], [1, 2, 0], [2, 0, 1]] {
        let mut rib = rib();
        for (id, addr, asn, _) in paths {
            let _ = up(&mut rib, id, addr, asn);
        }
        for i in order {
            let (id, addr, asn, med) = paths[i];
            let mut attrs = learned(addr, vec![asn]);
            attrs.med = Some(med);
            announce(&mut rib, id, "10.244.4.0/26", attrs);
        }
        rib.flush();
        // P1 is eliminated by P3's MED; P2 beats P3 on router id.
        assert_eq!(
            best(&rib, "10.244.4.0/26"),
            vec![RouteSource::Peer(PeerId(2))],
            "order {order:?}"
        );
    }
}

#[test]
fn finding_15_an_ipv6_next_hop_is_not_sent_to_a_peer_without_rfc8950() {
    let mut rib = rib();
    let (mut tor, out, _rx) = peer(1, "fd00::1", 65001, 64);
    tor.local_address = "fd00::11".parse().unwrap();
    tor.ipv4_via_ipv6 = true;
    rib.handle(RibMsg::PeerUp(tor, out));
    let (mut client, out, mut rx) = peer(2, "192.168.1.12", ASN, 64);
    client.next_hop = crate::messages::NextHopMode::Keep;
    rib.handle(RibMsg::PeerUp(client, out));
    rib.flush();
    received(&mut rx);
    announce(&mut rib, 1, "10.244.6.0/26", learned("fd00::1", vec![65001]));
    rib.flush();
    let sent = received(&mut rx);
    let u = sent.iter().find(|u| !u.nlri.is_empty()).expect("sent");
    assert_eq!(
        u.next_hop(),
        Some("192.168.1.11".parse().unwrap()),
        "next hop self, IPv4"
    );
}

/// RFC 2545 §3: a next hop of `::` (with a link-local beside it) or a
/// link-local global next hop means nothing on another link, so a route
/// passed on with next hop "keep" gets next hop self instead.
#[test]
fn finding_15_a_link_local_next_hop_is_not_passed_to_another_link() {
    use bgp_proto::attributes::MpNextHop;
    let v6 = |id: u32, addr: &str, asn: u32| {
        let (mut info, out, rx) = peer(id, addr, asn, 64);
        info.local_address = "fd00::11".parse().unwrap();
        info.families = [Family::IPV6_UNICAST].into_iter().collect();
        info.next_hop = crate::messages::NextHopMode::Keep;
        (info, out, rx)
    };
    let mut rib = rib();
    let (tor, out, _tor_rx) = v6(1, "fd00::1", 65001);
    rib.handle(RibMsg::PeerUp(tor, out));
    let (client, out, mut rx) = v6(2, "fd00::12", ASN);
    rib.handle(RibMsg::PeerUp(client, out));
    rib.flush();
    received(&mut rx);
    for (prefix, global) in [("fd00:10:244:6::/64", "::"), ("fd00:10:244:7::/64", "fe80::2")] {
        let mut attrs = learned(global, vec![65001]);
        attrs.link_local = Some("fe80::1".parse().unwrap());
        rib.handle(RibMsg::Announce {
            peer: PeerId(1),
            family: Family::IPV6_UNICAST,
            attrs,
            nlri: nlri(prefix),
        });
    }
    rib.flush();
    let sent = received(&mut rx);
    let mut next_hops: Vec<_> = (sent.iter().filter_map(|u| u.mp_reach()))
        .flat_map(|m| m.nlri.iter().map(|n| (n.prefix.to_string(), m.next_hop)))
        .collect();
    next_hops.sort_by(|a, b| a.0.cmp(&b.0));
    let self_only = MpNextHop::V6 {
        global: "fd00::11".parse().unwrap(),
        link_local: None,
    };
    let expected = [("fd00:10:244:6::/64", self_only), ("fd00:10:244:7::/64", self_only)];
    assert_eq!(next_hops, expected.map(|(p, n)| (p.to_string(), n)), "{sent:?}");
}

#[test]
fn finding_22_an_ebgp_route_is_not_passed_to_another_ebgp_peer_by_default() {
    let mut rib = rib();
    let _r1 = up(&mut rib, 1, "192.168.1.1", 65001);
    let mut r2 = up(&mut rib, 2, "192.168.2.1", 65002);
    rib.flush();
    received(&mut r2);
    announce(&mut rib, 1, "10.244.9.0/26", learned("192.168.1.1", vec![65001]));
    rib.flush();
    assert!(
        received(&mut r2).is_empty(),
        "the host is no transit between its upstreams"
    );
}

#[test]
fn finding_23_a_path_with_our_global_as_is_a_loop_on_a_local_as_session() {
    let mut rib = rib();
    let (mut info, out, _rx) = peer(1, "192.168.1.1", 65001, 64);
    info.local_asn = 65000;
    rib.handle(RibMsg::PeerUp(info, out));
    announce(&mut rib, 1, "10.244.8.0/26", learned("192.168.1.1", vec![65001, ASN]));
    rib.flush();
    assert!(rib.take_kernel_ops().is_empty());
    assert!(rib.routes(None).is_empty());
}

#[test]
fn finding_24_an_export_policy_cannot_send_local_pref_to_ebgp() {
    use crate::route::policy::{Policy, Rule, Verdict};
    let mut rib = rib();
    let (mut tor, out, mut rx) = peer(2, "192.168.1.1", 65001, 64);
    tor.export = Chain::Policies(vec![std::sync::Arc::new(Policy {
        name: "set-lp".into(),
        default: Verdict::Accept,
        rules: vec![Rule {
            set_local_pref: Some(500),
            ..Rule::default()
        }],
    })]);
    rib.handle(RibMsg::PeerUp(tor, out));
    originate(&mut rib, &["10.244.1.0/26"]);
    rib.flush();
    let sent = received(&mut rx);
    let u = sent.iter().find(|u| !u.nlri.is_empty()).expect("sent");
    assert!(
        !u.attributes
            .iter()
            .any(|a| matches!(a.value, bgp_proto::attributes::AttrValue::LocalPref(_))),
        "RFC 4271 §5.1.5"
    );
}

#[test]
fn kernel_ops_follow_the_new_decision() {
    // Sanity: a withdrawn best path hands the kernel to the next one.
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let _b = up(&mut rib, 2, "192.168.1.13", ASN);
    let mut short = learned("192.168.1.12", vec![]);
    short.local_pref = Some(200);
    announce(&mut rib, 1, "10.244.2.0/26", short);
    announce(&mut rib, 2, "10.244.2.0/26", learned("192.168.1.13", vec![]));
    rib.flush();
    rib.take_kernel_ops();
    rib.handle(RibMsg::PeerDown(PeerId(1)));
    rib.flush();
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(
            "10.244.2.0/26".parse().unwrap(),
            crate::messages::Gateways::from_elem("192.168.1.13".parse().unwrap(), 1)
        )]
    );
}

#[test]
fn finding_5_a_route_too_big_for_the_peer_is_withdrawn_not_dropped() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.1", 65001);
    let mut b = up(&mut rib, 2, "192.168.1.12", ASN);
    let mut small = learned("192.168.1.1", vec![65001]);
    small.communities.push(Community::new(65001, 1));
    announce(&mut rib, 1, "10.244.5.0/26", small);
    rib.flush();
    assert!(prefixes(&received(&mut b)).0.contains(&"10.244.5.0/26".to_string()));
    // 1,100 communities: 4,400 octets, more than a 4,096-octet message holds.
    let mut big = learned("192.168.1.1", vec![65001]);
    big.communities = (0..1_100u16).map(|i| Community::new(65001, i)).collect();
    announce(&mut rib, 1, "10.244.5.0/26", big);
    rib.flush();
    let (announced, withdrawn) = prefixes(&received(&mut b));
    assert!(announced.is_empty());
    assert_eq!(
        withdrawn,
        vec!["10.244.5.0/26".to_string()],
        "RFC 8654 §4: withdrawn from service"
    );
    assert_eq!(rib.summary().counts(PeerId(2)).1, 0, "not counted as advertised");
}

#[test]
fn finding_2_a_path_whose_next_hop_does_not_resolve_is_left_out_of_selection() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let _b = up(&mut rib, 2, "192.168.1.13", ASN);
    let mut better = learned("192.168.2.12", vec![]);
    better.local_pref = Some(200);
    announce(&mut rib, 1, "10.244.9.0/26", better);
    announce(&mut rib, 2, "10.244.9.0/26", learned("192.168.1.13", vec![]));
    rib.flush();
    assert_eq!(
        rib.take_new_next_hops().len(),
        2,
        "the kernel side is asked about both next hops"
    );
    assert_eq!(best(&rib, "10.244.9.0/26"), vec![RouteSource::Peer(PeerId(1))]);
    rib.take_kernel_ops();
    rib.handle(RibMsg::NextHops(vec![("192.168.2.12".parse().unwrap(), false)]));
    rib.flush();
    assert_eq!(best(&rib, "10.244.9.0/26"), vec![RouteSource::Peer(PeerId(2))]);
    assert_eq!(
        rib.take_kernel_ops(),
        vec![KernelOp::Via(
            "10.244.9.0/26".parse().unwrap(),
            crate::messages::Gateways::from_elem("192.168.1.13".parse().unwrap(), 1)
        )]
    );
    rib.handle(RibMsg::NextHops(vec![("192.168.2.12".parse().unwrap(), true)]));
    rib.flush();
    assert_eq!(best(&rib, "10.244.9.0/26"), vec![RouteSource::Peer(PeerId(1))]);
}

/// Finding 24 (stale-route echo): a restarting client's own routes, kept
/// stale under another id, are not reflected back to it when it returns
/// (BIRD never sends a route to the protocol it came from).
#[test]
fn finding_24_a_returning_peer_is_not_sent_its_own_stale_routes() {
    let mut rib = rib();
    rib.cfg.cluster_id = Some("1.1.1.1".parse().unwrap());
    let client = |rib: &mut Rib, id: u32, addr: &str| {
        let (mut info, out, rx) = peer(id, addr, ASN, 64);
        info.rr_client = true;
        info.graceful_restart = Some(crate::messages::PeerGracefulRestart {
            forwarding: [Family::IPV4_UNICAST].into_iter().collect(),
            restarting: false,
            long_lived: false,
        });
        rib.handle(RibMsg::PeerUp(info, out));
        rx
    };
    let _c1 = client(&mut rib, 1, "192.168.1.12");
    let mut c2 = client(&mut rib, 2, "192.168.1.13");
    announce(&mut rib, 1, "10.244.2.0/26", learned("192.168.1.12", vec![]));
    rib.flush();
    let (to_c2, _) = prefixes(&received(&mut c2));
    assert_eq!(to_c2, vec!["10.244.2.0/26"], "reflected to the other client");
    down_graceful(&mut rib, 1);
    let mut c1 = client(&mut rib, 1, "192.168.1.12");
    rib.flush();
    let (to_c1, _) = prefixes(&received(&mut c1));
    assert!(to_c1.is_empty(), "its own stale route was echoed back: {to_c1:?}");
    let (to_c2, withdrawn) = prefixes(&received(&mut c2));
    assert!(
        to_c2.is_empty() && withdrawn.is_empty(),
        "the other client keeps the route untouched"
    );
}

/// Review finding 24 asks whether the prefix limit should count ADD-PATH
/// paths or prefixes. It counts paths, as BIRD's `import limit` (one route
/// per path) and FRR's `maximum-prefix` (one count per path) do: two paths
/// of one prefix reach a limit of one.
#[test]
fn finding_24_the_prefix_limit_counts_add_path_paths_as_bird_and_frr_do() {
    let mut rib = rib();
    let (mut info, mut out, _rx) = peer(1, "192.168.1.12", ASN, 64);
    info.max_prefixes = Some(crate::messages::PrefixLimit { limit: 1, warning: 1 });
    let (signals, mut signalled) = tokio::sync::mpsc::unbounded_channel();
    out.signals = signals;
    rib.handle(RibMsg::PeerUp(info, out));
    let paths = [1, 2].map(|id| bgp_proto::Nlri {
        path_id: Some(id),
        ..bgp_proto::Nlri::new("10.244.5.0/26".parse().unwrap())
    });
    rib.handle(RibMsg::Announce {
        peer: PeerId(1),
        family: Family::IPV4_UNICAST,
        attrs: learned("192.168.1.12", vec![]),
        nlri: paths[..1].to_vec(),
    });
    assert!(signalled.try_recv().is_err(), "one path: at the limit, not over it");
    rib.handle(RibMsg::Announce {
        peer: PeerId(1),
        family: Family::IPV4_UNICAST,
        attrs: learned("192.168.1.12", vec![]),
        nlri: paths[1..].to_vec(),
    });
    assert!(
        matches!(
            signalled.try_recv(),
            Ok(crate::messages::PeerSignal::MaxPrefixes { limit: 1, .. })
        ),
        "the second path of the same prefix trips the limit"
    );
}
