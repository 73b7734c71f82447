//! A decoded UPDATE turned into RIB messages: End-of-RIB, withdrawals, then
//! one announcement per family. Pure, so the RFC rules it applies are tested
//! without a session.

use std::collections::BTreeMap;

use bgp_proto::update::Update;
use bgp_proto::{Family, Nlri, Treatment};

use crate::messages::{PeerId, RibMsg};
use crate::route::RouteAttrs;

/// What the RIB is told about one UPDATE from `peer`. `treatment` is the
/// RFC 7606 outcome of its decoding (treat-as-withdraw turns announcements
/// into withdrawals); `ebgp` drops a received LOCAL_PREF (RFC 7606 §7.5,
/// RFC 4271 §5.1.5); `four_octet_as` decides AS4_PATH merging (RFC 6793).
pub(crate) fn update_messages(
    peer: PeerId,
    update: &Update,
    treatment: Treatment,
    four_octet_as: bool,
    ebgp: bool,
) -> Vec<RibMsg> {
    // RFC 4724 §2: End-of-RIB is judged on the message as received; an UPDATE
    // left empty by an RFC 7606 treatment is not one.
    if let Some(family) = update.as_end_of_rib().filter(|_| treatment == Treatment::None) {
        return vec![RibMsg::EndOfRib(peer, family)];
    }
    let mut withdrawn: BTreeMap<Family, Vec<Nlri>> = BTreeMap::new();
    for (f, n) in update.withdrawn_routes() {
        withdrawn.entry(f).or_default().push(*n);
    }
    let mut announced: BTreeMap<Family, Vec<Nlri>> = BTreeMap::new();
    for (f, n) in update.announced() {
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
            attrs.local_pref = None;
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

    #[test]
    fn end_of_rib_is_reported_alone() {
        let msgs = update_messages(
            peer(),
            &Update::end_of_rib(Family::IPV4_UNICAST),
            Treatment::None,
            true,
            false,
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
        );
        assert_eq!(msgs.len(), 1);
        assert!(matches!(&msgs[0], RibMsg::Withdraw { nlri, .. } if nlri.len() == 2));
    }

    #[test]
    fn local_pref_from_an_external_peer_is_dropped() {
        let msgs = update_messages(peer(), &update(&[], &["10.0.2.0/24"]), Treatment::None, true, true);
        assert!(matches!(&msgs[0], RibMsg::Announce { attrs, .. } if attrs.local_pref.is_none()));
    }
}
