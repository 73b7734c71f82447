//! The export and encoding caches outlive a flush: what they hand out must
//! stay right when a source peer's session changes or a later peer speaks
//! another encoding.

use bgp_proto::update::Update;
use bgp_proto::{Context, Family};

use super::tests::*;
use super::*;
use crate::messages::{PeerId, RibMsg};

fn announced(updates: &[Update]) -> Vec<String> {
    updates
        .iter()
        .flat_map(|u| u.nlri.iter().map(|n| n.prefix.to_string()))
        .collect()
}

#[test]
fn a_peer_back_without_the_client_role_is_not_reflected_from_a_cached_export() {
    let mut rib = rib();
    rib.cfg.cluster_id = Some("1.1.1.1".parse().unwrap());
    let client = |rib: &mut Rib, id: u32, addr: &str, rr_client: bool| {
        let (mut info, out, rx) = peer(id, addr, ASN, 64);
        info.rr_client = rr_client;
        rib.handle(RibMsg::PeerUp(info, out));
        rx
    };
    let _s = client(&mut rib, 1, "192.168.1.12", true);
    let _t = client(&mut rib, 2, "192.168.1.13", true);
    let mut n = client(&mut rib, 3, "192.168.1.14", false);
    // S and T send the same attribute set (interned once), so T's path keeps
    // it, and any export cached for it, alive while S is away.
    let shared = learned("192.168.1.20", vec![]);
    announce(&mut rib, 2, "10.244.2.0/26", shared.clone());
    announce(&mut rib, 1, "10.244.1.0/26", shared.clone());
    rib.flush();
    let first = announced(&received(&mut n));
    assert!(
        first.contains(&"10.244.1.0/26".to_string()),
        "a client's route reaches a non-client"
    );
    rib.handle(RibMsg::PeerDown(PeerId(1)));
    rib.flush();
    received(&mut n);
    // S returns as a non-client: RFC 4456 §6, its routes go to clients only.
    let _s = client(&mut rib, 1, "192.168.1.12", false);
    announce(&mut rib, 1, "10.244.1.0/26", shared);
    rib.flush();
    let again = announced(&received(&mut n));
    assert!(
        !again.contains(&"10.244.1.0/26".to_string()),
        "a non-client's route reflected to a non-client: {again:?}"
    );
}

#[test]
fn a_later_peer_with_two_octet_as_numbers_gets_its_own_encoding_of_a_cached_group() {
    let mut rib = rib();
    let _tor = up(&mut rib, 1, "192.168.1.1", 65001);
    let mut four = up(&mut rib, 2, "192.168.1.12", ASN);
    announce(&mut rib, 1, "10.244.9.0/26", learned("192.168.1.1", vec![65001]));
    rib.flush();
    let sent = received(&mut four);
    assert_eq!(announced(&sent), vec!["10.244.9.0/26"]);
    // A second iBGP peer (same export) comes up later, without 4-octet AS.
    let two_octet = Context {
        four_octet_as: false,
        ..Context::default()
    };
    let (mut info, out, mut two) = peer(3, "192.168.1.13", ASN, 64);
    info.tx = two_octet.clone();
    rib.handle(RibMsg::PeerUp(info, out));
    rib.flush();
    let sent = received_with(&mut two, &two_octet);
    let with_nlri: Vec<&Update> = sent.iter().filter(|u| !u.nlri.is_empty()).collect();
    assert_eq!(with_nlri.len(), 1, "{sent:?}");
    let attrs = crate::route::RouteAttrs::from_update(with_nlri[0], Family::IPV4_UNICAST, false);
    assert_eq!(attrs.as_path, bgp_proto::attributes::AsPath::sequence(vec![65001]));
}

mod policies {
    use std::sync::Arc;

    use bgp_proto::attributes::AttrValue;
    use bgp_proto::{Family, Nlri};

    use super::super::tests::*;
    use crate::messages::{PeerId, RibMsg};
    use crate::route::policy::{Chain, Policy, Rule, Verdict};

    /// Accepts only prefixes inside 10.244.0.0/16.
    fn pod_blocks_only() -> Chain {
        Chain::Policies(vec![Arc::new(Policy {
            name: "pods".into(),
            default: Verdict::Reject,
            rules: vec![Rule {
                prefix: Some(config::PrefixMatch {
                    prefix: "10.244.0.0/16".parse().unwrap(),
                    ge: 16,
                    le: 32,
                }),
                verdict: Some(Verdict::Accept),
                ..Rule::default()
            }],
        })])
    }

    /// One UPDATE from peer 1 with a pod block first, then another prefix.
    fn announce_both(rib: &mut super::Rib) {
        rib.handle(RibMsg::Announce {
            peer: PeerId(1),
            family: Family::IPV4_UNICAST,
            attrs: learned("192.168.1.1", vec![65001]),
            nlri: ["10.244.1.0/26", "192.168.100.0/24"]
                .iter()
                .map(|p| Nlri::new(p.parse().unwrap()))
                .collect(),
        });
        rib.flush();
    }

    #[test]
    fn an_import_policy_on_prefixes_judges_each_nlri_of_an_update() {
        let mut rib = rib();
        let (mut tor, out, _rx) = peer(1, "192.168.1.1", 65001, 64);
        tor.import = pod_blocks_only();
        rib.handle(RibMsg::PeerUp(tor, out));
        announce_both(&mut rib);
        assert_eq!(rib.routes(Some("10.244.1.0/26".parse().unwrap())).len(), 1);
        assert!(
            rib.routes(Some("192.168.100.0/24".parse().unwrap())).is_empty(),
            "rejected by prefix"
        );
    }

    #[test]
    fn an_export_policy_on_prefixes_judges_each_prefix_of_a_shared_set() {
        let mut rib = rib();
        let _tor = up(&mut rib, 1, "192.168.1.1", 65001);
        let (mut host, out, mut rx) = peer(2, "192.168.1.12", ASN, 64);
        host.export = pod_blocks_only();
        rib.handle(RibMsg::PeerUp(host, out));
        announce_both(&mut rib);
        let sent: Vec<String> = received(&mut rx)
            .iter()
            .flat_map(|u| u.nlri.iter().map(|n| n.prefix.to_string()))
            .collect();
        assert_eq!(sent, vec!["10.244.1.0/26"]);
    }

    #[test]
    fn an_export_policy_on_the_neighbour_is_not_shared_with_another_peer() {
        let mut rib = rib();
        let _tor = up(&mut rib, 1, "192.168.1.1", 65001);
        let med_for_h2 = Chain::Policies(vec![Arc::new(Policy {
            name: "med-h2".into(),
            default: Verdict::Accept,
            rules: vec![Rule {
                neighbor: Some("192.168.1.12".parse().unwrap()),
                set_med: Some(77),
                ..Rule::default()
            }],
        })]);
        let mut rxs = Vec::new();
        for (id, addr) in [(2, "192.168.1.12"), (3, "192.168.1.13")] {
            let (mut host, out, rx) = peer(id, addr, ASN, 64);
            host.export = med_for_h2.clone();
            rib.handle(RibMsg::PeerUp(host, out));
            rxs.push(rx);
        }
        announce(&mut rib, 1, "10.244.1.0/26", learned("192.168.1.1", vec![65001]));
        rib.flush();
        let med = |rx: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>| {
            received(rx)
                .iter()
                .filter(|u| !u.nlri.is_empty())
                .flat_map(|u| u.attributes.iter())
                .find_map(|a| match a.value {
                    AttrValue::Med(m) => Some(m),
                    _ => None,
                })
        };
        assert_eq!(med(&mut rxs[0]), Some(77), "h2 matches the rule");
        assert_eq!(med(&mut rxs[1]), None, "h3 does not");
    }
}

#[test]
fn a_shared_hand_over_does_not_send_a_client_its_own_route() {
    let mut rib = rib();
    rib.cfg.cluster_id = Some("1.1.1.1".parse().unwrap());
    let mut client = |id: u32, addr: &str| {
        let (mut info, out, rx) = peer(id, addr, ASN, 64);
        info.rr_client = true;
        rib.handle(RibMsg::PeerUp(info, out));
        rx
    };
    let (mut a, _b, mut c) = (
        client(1, "192.168.1.12"),
        client(2, "192.168.1.13"),
        client(3, "192.168.1.14"),
    );
    announce(&mut rib, 2, "10.244.2.0/26", learned("192.168.1.13", vec![]));
    rib.flush();
    assert_eq!(announced(&received(&mut a)), vec!["10.244.2.0/26"]);
    assert_eq!(announced(&received(&mut c)), vec!["10.244.2.0/26"]);
    // A's own path wins: A and C hold the same slice with the same bits,
    // but A must hear a withdrawal and C the new route.
    let mut better = learned("192.168.1.12", vec![]);
    better.local_pref = Some(200);
    announce(&mut rib, 1, "10.244.2.0/26", better);
    rib.flush();
    let to_a = received(&mut a);
    assert!(announced(&to_a).is_empty(), "A is sent its own route: {to_a:?}");
    assert!(to_a.iter().any(|u| !u.withdrawn.is_empty()), "A hears the withdrawal");
    let to_c = received(&mut c);
    assert_eq!(announced(&to_c), vec!["10.244.2.0/26"]);
    assert_eq!(to_c[0].next_hop(), Some("192.168.1.12".parse().unwrap()));
}
