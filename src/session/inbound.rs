//! A decoded UPDATE turned into RIB messages: End-of-RIB, withdrawals, then
//! one announcement per family. Pure, so the RFC rules it applies are tested
//! without a session.

use std::collections::BTreeMap;

use bgp_proto::update::Update;
use bgp_proto::{Family, FamilySet, Nlri, Treatment};

use crate::messages::{PeerId, RibMsg};
use crate::route::RouteAttrs;

/// What the RIB is told about one UPDATE from `peer`. `treatment` is the
/// RFC 7606 outcome of its decoding (treat-as-withdraw turns announcements
/// into withdrawals); `ebgp` drops a received LOCAL_PREF, ORIGINATOR_ID and
/// CLUSTER_LIST (RFC 7606 §7.5, §7.9, §7.10); `four_octet_as` decides AS4_PATH merging (RFC 6793).
pub(crate) fn update_messages(
    peer: PeerId,
    update: &Update,
    treatment: Treatment,
    four_octet_as: bool,
    ebgp: bool,
    families: &FamilySet,
) -> Vec<RibMsg> {
    // RFC 4724 §2: End-of-RIB is judged on the message as received; an UPDATE
    // left empty by an RFC 7606 treatment is not one.
    if let Some(family) = update.as_end_of_rib().filter(|_| treatment == Treatment::None) {
        return if families.contains(family) {
            vec![RibMsg::EndOfRib(peer, family)]
        } else {
            Vec::new()
        };
    }
    // NLRI of a family the session did not negotiate (IPv6 on an IPv4-only
    // session, multicast) are ignored, never mixed with unicast (finding 14).
    let mut withdrawn: BTreeMap<Family, Vec<Nlri>> = BTreeMap::new();
    for (f, n) in update.withdrawn_routes().filter(|(f, _)| families.contains(*f)) {
        withdrawn.entry(f).or_default().push(*n);
    }
    let mut announced: BTreeMap<Family, Vec<Nlri>> = BTreeMap::new();
    for (f, n) in update.announced().filter(|(f, _)| families.contains(*f)) {
        let target = if treatment == Treatment::TreatAsWithdraw {
            &mut withdrawn
        } else {
            &mut announced
        };
        target.entry(f).or_default().push(*n);
    }
    let mut out: Vec<RibMsg> = withdrawn
        .into_iter()
        .map(|(family, nlri)| RibMsg::Withdraw { peer, family, nlri })
        .collect();
    for (family, nlri) in announced {
        let mut attrs = RouteAttrs::from_update(update, family, four_octet_as);
        if ebgp {
            // RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID and
            // CLUSTER_LIST from an external peer are discarded.
            attrs.local_pref = None;
            attrs.originator_id = None;
            attrs.cluster_list.clear();
        }
        out.push(RibMsg::Announce {
            peer,
            family,
            attrs,
            nlri,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::attributes::{AsPath, AttrValue, Origin, PathAttribute};

    fn update(withdrawn: &[&str], announced: &[&str]) -> Update {
        Update {
            withdrawn: withdrawn.iter().map(|p| Nlri::new(p.parse().unwrap())).collect(),
            nlri: announced.iter().map(|p| Nlri::new(p.parse().unwrap())).collect(),
            attributes: vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![65001]))),
                PathAttribute::new(AttrValue::NextHop("192.168.1.1".parse().unwrap())),
                PathAttribute::new(AttrValue::LocalPref(300)),
            ],
        }
    }

    fn peer() -> PeerId {
        PeerId(7)
    }

    fn v4() -> FamilySet {
        [Family::IPV4_UNICAST].into_iter().collect()
    }

    #[test]
    fn finding_14_nlri_of_a_family_not_negotiated_are_ignored() {
        use bgp_proto::attributes::{MpNextHop, MpReach, MpUnreach};
        let mut u = update(&[], &[]);
        u.attributes.push(PathAttribute::new(AttrValue::MpReach(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "fd00::1".parse().unwrap(),
                link_local: None,
            },
            reserved: 0,
            nlri: vec![Nlri::new("fd00:10:244::/64".parse().unwrap())],
        })));
        assert!(update_messages(peer(), &u, Treatment::None, true, false, &v4()).is_empty());
        let multicast = bgp_proto::Family::new(bgp_proto::Afi::IPV4, bgp_proto::Safi(2));
        let mut w = Update::default();
        w.attributes.push(PathAttribute::new(AttrValue::MpUnreach(MpUnreach {
            family: multicast,
            withdrawn: vec![Nlri::new("10.244.4.0/26".parse().unwrap())],
        })));
        assert!(
            update_messages(peer(), &w, Treatment::None, true, false, &v4()).is_empty(),
            "SAFI 2 never withdraws unicast"
        );
    }

    #[test]
    fn finding_11_originator_id_and_cluster_list_from_ebgp_are_discarded() {
        let mut u = update(&[], &["10.244.8.0/26"]);
        u.attributes.push(PathAttribute::new(AttrValue::OriginatorId(
            "192.168.1.12".parse().unwrap(),
        )));
        u.attributes
            .push(PathAttribute::new(AttrValue::ClusterList(vec!["1.1.1.1"
                .parse()
                .unwrap()])));
        let msgs = update_messages(peer(), &u, Treatment::None, true, true, &v4());
        assert!(matches!(&msgs[0], RibMsg::Announce { attrs, .. }
            if attrs.originator_id.is_none() && attrs.cluster_list.is_empty()));
        let ibgp = update_messages(peer(), &u, Treatment::None, true, false, &v4());
        assert!(matches!(&ibgp[0], RibMsg::Announce { attrs, .. } if attrs.originator_id.is_some()));
    }

    #[test]
    fn end_of_rib_is_reported_alone() {
        let msgs = update_messages(
            peer(),
            &Update::end_of_rib(Family::IPV4_UNICAST),
            Treatment::None,
            true,
            false,
            &v4(),
        );
        assert!(matches!(msgs.as_slice(), [RibMsg::EndOfRib(p, f)] if *p == peer() && *f == Family::IPV4_UNICAST));
    }

    #[test]
    fn an_update_emptied_by_attribute_discard_is_not_an_end_of_rib() {
        let msgs = update_messages(
            peer(),
            &Update::end_of_rib(Family::IPV4_UNICAST),
            Treatment::AttributeDiscard,
            true,
            false,
            &v4(),
        );
        assert!(msgs.is_empty(), "RFC 4724 §2 / review finding 16");
    }

    #[test]
    fn withdrawals_come_before_announcements() {
        let msgs = update_messages(
            peer(),
            &update(&["10.0.1.0/24"], &["10.0.2.0/24"]),
            Treatment::None,
            true,
            false,
            &v4(),
        );
        assert!(matches!(&msgs[0], RibMsg::Withdraw { nlri, .. } if nlri.len() == 1));
        assert!(
            matches!(&msgs[1], RibMsg::Announce { nlri, attrs, .. } if nlri.len() == 1 && attrs.local_pref == Some(300))
        );
        assert_eq!(msgs.len(), 2);
    }

    #[test]
    fn treat_as_withdraw_turns_announcements_into_withdrawals() {
        let msgs = update_messages(
            peer(),
            &update(&[], &["10.0.2.0/24", "10.0.3.0/24"]),
            Treatment::TreatAsWithdraw,
            true,
            false,
            &v4(),
        );
        assert_eq!(msgs.len(), 1);
        assert!(matches!(&msgs[0], RibMsg::Withdraw { nlri, .. } if nlri.len() == 2));
    }

    #[test]
    fn local_pref_from_an_external_peer_is_dropped() {
        let msgs = update_messages(
            peer(),
            &update(&[], &["10.0.2.0/24"]),
            Treatment::None,
            true,
            true,
            &v4(),
        );
        assert!(matches!(&msgs[0], RibMsg::Announce { attrs, .. } if attrs.local_pref.is_none()));
    }
}
