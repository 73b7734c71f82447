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
