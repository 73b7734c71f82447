//! RFC 7606 revised UPDATE error handling: one test per attribute rule, each
//! asserting the exact treatment or the NOTIFICATION code/subcode and offset.

use bgp_proto::attributes::{type_code as t, AttrValue};
use bgp_proto::{decode, Context, Decoded, Family, Message, Reason, Treatment};

const WK: u8 = 0x40; // well-known transitive
const ON: u8 = 0x80; // optional non-transitive
const OT: u8 = 0xc0; // optional transitive

const ORIGIN_IGP: (u8, u8, &[u8]) = (WK, t::ORIGIN, &[0]);
const AS_PATH: (u8, u8, &[u8]) = (WK, t::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9]);
const NEXT_HOP: (u8, u8, &[u8]) = (WK, t::NEXT_HOP, &[192, 168, 1, 12]);
/// 10.244.2.0/26
const NLRI: &[u8] = &[26, 10, 244, 2, 0];

/// Builds a whole UPDATE message from (flags, type, value) attributes.
fn update(withdrawn: &[u8], attrs: &[(u8, u8, &[u8])], nlri: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    for (flags, ty, v) in attrs {
        a.push(*flags);
        a.push(*ty);
        if flags & 0x10 != 0 {
            a.extend_from_slice(&(v.len() as u16).to_be_bytes());
        } else {
            a.push(v.len() as u8);
        }
        a.extend_from_slice(v);
    }
    raw_update(withdrawn, &a, nlri)
}

fn raw_update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 0, 2]);
    m.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    m.extend_from_slice(withdrawn);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    let len = m.len() as u16;
    m[16..18].copy_from_slice(&len.to_be_bytes());
    m
}

/// A valid announcement with `extra` replacing/adding attributes after the mandatory ones.
fn with(extra: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut attrs = vec![ORIGIN_IGP, AS_PATH, NEXT_HOP];
    attrs.extend_from_slice(extra);
    update(&[], &attrs, NLRI)
}

fn ok(msg: &[u8]) -> Decoded {
    decode(msg, &Context::default()).expect("must not reset the session")
}

fn treatment(msg: &[u8]) -> Treatment {
    ok(msg).treatment
}

fn reset(msg: &[u8]) -> ((u8, u8), usize) {
    let err = decode(msg, &Context::default()).expect_err("must reset the session");
    (err.notification_code(), err.offset)
}

fn update_of(d: &Decoded) -> &bgp_proto::update::Update {
    match &d.message {
        Message::Update(u) => u,
        other => panic!("not an update: {other:?}"),
    }
}

/// Offset of the first attribute in an UPDATE without withdrawn routes.
const ATTRS_AT: usize = 19 + 2 + 2;

#[test]
fn valid_update_has_no_treatment() {
    let d = ok(&with(&[]));
    assert_eq!(d.treatment, Treatment::None);
    assert_eq!(update_of(&d).nlri.len(), 1);
}

#[test]
fn origin_bad_length_and_value_treat_as_withdraw() {
    let d = ok(&update(&[], &[(WK, t::ORIGIN, &[0, 0]), AS_PATH, NEXT_HOP], NLRI));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors[0].reason, Reason::AttributeLength(t::ORIGIN));
    assert_eq!(d.errors[0].offset, ATTRS_AT);
    let d = ok(&update(&[], &[(WK, t::ORIGIN, &[3]), AS_PATH, NEXT_HOP], NLRI));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors[0].reason, Reason::InvalidOrigin(3));
}

#[test]
fn treat_as_withdraw_moves_routes_to_withdrawn() {
    let msg = update(&[], &[(WK, t::ORIGIN, &[9]), AS_PATH, NEXT_HOP], NLRI);
    let parsed = bgp_proto::update::Update::decode(&msg[19..], &Context::default()).unwrap();
    assert!(parsed.announced().is_empty());
    assert_eq!(parsed.withdrawn().len(), 1);
    assert_eq!(parsed.withdrawn()[0].1.prefix.to_string(), "10.244.2.0/26");
}

#[test]
fn as_path_malformed_treat_as_withdraw() {
    for bad in [&[7u8, 1, 0, 0, 0, 1][..], &[2, 0], &[2, 2, 0, 0, 0, 1], &[2]] {
        let d = ok(&update(&[], &[ORIGIN_IGP, (WK, t::AS_PATH, bad), NEXT_HOP], NLRI));
        assert_eq!(d.treatment, Treatment::TreatAsWithdraw, "{bad:?}");
        assert_eq!(d.errors[0].reason.notification_code(), (3, 11));
    }
}

#[test]
fn next_hop_bad_length_or_address_treat_as_withdraw() {
    assert_eq!(
        treatment(&update(
            &[],
            &[ORIGIN_IGP, AS_PATH, (WK, t::NEXT_HOP, &[1, 2, 3, 4, 5])],
            NLRI
        )),
        Treatment::TreatAsWithdraw
    );
    for addr in [[0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255]] {
        let d = ok(&update(&[], &[ORIGIN_IGP, AS_PATH, (WK, t::NEXT_HOP, &addr)], NLRI));
        assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
        assert_eq!(d.errors[0].reason.notification_code(), (3, 8));
    }
}

#[test]
fn med_and_local_pref_bad_length_treat_as_withdraw() {
    assert_eq!(
        treatment(&with(&[(ON, t::MED, &[0, 0, 1])])),
        Treatment::TreatAsWithdraw
    );
    assert_eq!(
        treatment(&with(&[(WK, t::LOCAL_PREF, &[0, 100])])),
        Treatment::TreatAsWithdraw
    );
}

#[test]
fn atomic_aggregate_with_value_is_discarded() {
    let d = ok(&with(&[(WK, t::ATOMIC_AGGREGATE, &[1])]));
    assert_eq!(d.treatment, Treatment::AttributeDiscard);
    let u = update_of(&d);
    assert!(u.attribute(t::ATOMIC_AGGREGATE).is_none());
    assert_eq!(u.nlri.len(), 1, "routes are kept");
}

#[test]
fn aggregator_bad_length_is_discarded() {
    // 4-octet session: AGGREGATOR must be 8 octets.
    let d = ok(&with(&[(OT, t::AGGREGATOR, &[0, 0, 0xfd, 0xe9, 10, 0, 0])]));
    assert_eq!(d.treatment, Treatment::AttributeDiscard);
    // 2-octet session: 6 octets are right.
    let as_path_2: (u8, u8, &[u8]) = (WK, t::AS_PATH, &[2, 1, 0xfd, 0xe9]);
    let msg = update(
        &[],
        &[
            ORIGIN_IGP,
            as_path_2,
            NEXT_HOP,
            (OT, t::AGGREGATOR, &[0xfd, 0xe9, 10, 0, 0, 1]),
        ],
        NLRI,
    );
    let d = decode(&msg, &Context::legacy()).unwrap();
    assert_eq!(d.treatment, Treatment::None);
    assert_eq!(
        treatment(&with(&[(OT, t::AS4_AGGREGATOR, &[1, 2, 3])])),
        Treatment::AttributeDiscard
    );
}

#[test]
fn communities_bad_length_treat_as_withdraw() {
    assert_eq!(
        treatment(&with(&[(OT, t::COMMUNITIES, &[0, 1, 0])])),
        Treatment::TreatAsWithdraw
    );
    assert_eq!(
        treatment(&with(&[(OT, t::COMMUNITIES, &[])])),
        Treatment::TreatAsWithdraw
    );
    assert_eq!(
        treatment(&with(&[(OT, t::EXTENDED_COMMUNITIES, &[0; 7])])),
        Treatment::TreatAsWithdraw
    );
}

#[test]
fn large_communities_bad_length_treat_as_withdraw() {
    // RFC 8092 §6.
    assert_eq!(
        treatment(&with(&[(OT, t::LARGE_COMMUNITIES, &[0; 13])])),
        Treatment::TreatAsWithdraw
    );
    let d = ok(&with(&[(
        OT,
        t::LARGE_COMMUNITIES,
        &[0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 0, 0, 2],
    )]));
    assert_eq!(d.treatment, Treatment::None);
}

#[test]
fn originator_id_and_cluster_list_bad_length_treat_as_withdraw() {
    assert_eq!(
        treatment(&with(&[(ON, t::ORIGINATOR_ID, &[1, 2, 3])])),
        Treatment::TreatAsWithdraw
    );
    assert_eq!(
        treatment(&with(&[(ON, t::CLUSTER_LIST, &[1, 2, 3, 4, 5, 6])])),
        Treatment::TreatAsWithdraw
    );
    assert_eq!(
        treatment(&with(&[(ON, t::CLUSTER_LIST, &[])])),
        Treatment::TreatAsWithdraw
    );
}

/// RFC 7606 §7.5, §7.9, §7.10: from an external peer these attributes are
/// not used, so a malformed one is dropped and the route stays.
#[test]
fn local_pref_originator_id_cluster_list_from_external_peer_are_discarded() {
    let external = Context {
        external: true,
        ..Context::default()
    };
    for bad in [
        (WK, t::LOCAL_PREF, &[0, 100][..]),
        (ON, t::ORIGINATOR_ID, &[1, 2, 3][..]),
        (ON, t::CLUSTER_LIST, &[1, 2, 3, 4, 5, 6][..]),
    ] {
        let d = decode(&with(&[bad]), &external).expect("must not reset the session");
        assert_eq!(d.treatment, Treatment::AttributeDiscard, "type {}", bad.1);
        let u = update_of(&d);
        assert_eq!(u.nlri.len(), 1, "the route is kept");
        assert!(
            u.attributes.iter().all(|a| a.type_code() != bad.1),
            "the malformed attribute is gone"
        );
    }
    // MED has no such exception.
    let d = decode(&with(&[(ON, t::MED, &[0, 0, 1])]), &external).unwrap();
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
}

#[test]
fn otc_bad_length_treat_as_withdraw() {
    // RFC 9234 §5.
    assert_eq!(
        treatment(&with(&[(OT, t::OTC, &[0, 0, 1])])),
        Treatment::TreatAsWithdraw
    );
}

#[test]
fn as4_path_malformed_is_discarded() {
    assert_eq!(
        treatment(&with(&[(OT, t::AS4_PATH, &[2, 2, 0, 0])])),
        Treatment::AttributeDiscard
    );
}

#[test]
fn flags_conflict_treat_as_withdraw() {
    // ORIGIN sent as optional.
    let d = ok(&update(&[], &[(OT, t::ORIGIN, &[0]), AS_PATH, NEXT_HOP], NLRI));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors[0].reason.notification_code(), (3, 4));
}

#[test]
fn missing_mandatory_treat_as_withdraw() {
    let d = ok(&update(&[], &[AS_PATH, NEXT_HOP], NLRI));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors[0].reason, Reason::MissingWellKnown(t::ORIGIN));
    let d = ok(&update(&[], &[ORIGIN_IGP, AS_PATH], NLRI));
    assert_eq!(d.errors[0].reason, Reason::MissingWellKnown(t::NEXT_HOP));
    // A pure withdrawal needs no attributes.
    assert_eq!(treatment(&update(NLRI, &[], &[])), Treatment::None);
}

#[test]
fn duplicate_attribute_keeps_first() {
    let d = ok(&with(&[
        (OT, t::COMMUNITIES, &[0xfd, 0xe8, 0, 1]),
        (OT, t::COMMUNITIES, &[0xfd, 0xe8, 0, 2]),
    ]));
    assert_eq!(d.treatment, Treatment::AttributeDiscard);
    let u = update_of(&d);
    match u.attribute(t::COMMUNITIES) {
        Some(AttrValue::Communities(c)) => assert_eq!(c[0].to_string(), "65000:1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn strongest_treatment_wins() {
    let d = ok(&with(&[(WK, t::ATOMIC_AGGREGATE, &[1]), (ON, t::MED, &[1])]));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors.len(), 2);
}

#[test]
fn attribute_overrunning_total_length_after_the_mp_attributes_is_treat_as_withdraw() {
    // An MP_UNREACH_NLRI (IPv4, nothing withdrawn) first, then a COMMUNITIES
    // header claiming 8 octets with only 4 left in the attribute block.
    let mut attrs = vec![ON, t::MP_UNREACH_NLRI, 3, 0, 1, 1];
    for (f, ty, v) in [ORIGIN_IGP, AS_PATH, NEXT_HOP] {
        attrs.extend_from_slice(&[f, ty, v.len() as u8]);
        attrs.extend_from_slice(v);
    }
    let at = attrs.len();
    attrs.extend_from_slice(&[OT, t::COMMUNITIES, 8, 0, 0, 0, 1]);
    let d = ok(&raw_update(&[], &attrs, NLRI));
    assert_eq!(d.treatment, Treatment::TreatAsWithdraw);
    assert_eq!(d.errors[0].offset, ATTRS_AT + at);
    // Fewer than three octets left.
    let mut short = attrs[..at].to_vec();
    short.extend_from_slice(&[OT, 8]);
    assert_eq!(treatment(&raw_update(&[], &short, NLRI)), Treatment::TreatAsWithdraw);
}

#[test]
fn finding_13_an_overrun_before_any_mp_attribute_resets_the_session() {
    // ORIGIN claiming 200 octets: whatever follows (an MP_REACH_NLRI?) cannot
    // be parsed, so treat-as-withdraw cannot cover it (RFC 7606 §3 j).
    let mut attrs = vec![WK, t::ORIGIN, 200, 0];
    attrs.extend_from_slice(&[ON, t::MP_REACH_NLRI, 5, 0, 2, 1, 0, 0]);
    assert_eq!(reset(&raw_update(&[], &attrs, &[])), ((3, 1), ATTRS_AT));
}

#[test]
fn mp_reach_malformed_next_hop_disables_family() {
    // IPv6 unicast with a 5-octet next hop.
    let mp: &[u8] = &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0, 64, 0xfd, 0, 0, 0, 0, 0, 0, 0];
    let d = ok(&update(&[], &[(ON, t::MP_REACH_NLRI, mp), ORIGIN_IGP, AS_PATH], &[]));
    assert_eq!(d.treatment, Treatment::AfiSafiDisable(Family::IPV6_UNICAST));
}

#[test]
fn mp_reach_too_short_resets_session() {
    let msg = update(&[], &[(ON, t::MP_REACH_NLRI, &[0, 2]), ORIGIN_IGP, AS_PATH], &[]);
    assert_eq!(reset(&msg), ((3, 9), ATTRS_AT));
}

#[test]
fn mp_unreach_bad_prefix_disables_family() {
    let d = ok(&update(&[], &[(ON, t::MP_UNREACH_NLRI, &[0, 2, 1, 129, 0])], &[]));
    assert_eq!(d.treatment, Treatment::AfiSafiDisable(Family::IPV6_UNICAST));
}

#[test]
fn repeated_mp_reach_resets_session() {
    let mp: &[u8] = &[0, 2, 1, 16, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let msg = update(
        &[],
        &[
            (ON, t::MP_REACH_NLRI, mp),
            (ON, t::MP_REACH_NLRI, mp),
            ORIGIN_IGP,
            AS_PATH,
        ],
        &[],
    );
    let (code, offset) = reset(&msg);
    assert_eq!(code, (3, 1));
    assert_eq!(offset, ATTRS_AT + 3 + mp.len());
}

#[test]
fn unrecognized_well_known_resets_session() {
    assert_eq!(reset(&with(&[(WK, 99, &[1])])).0, (3, 2));
}

#[test]
fn unknown_optional_is_kept() {
    let d = ok(&with(&[(OT, 99, &[1, 2, 3])]));
    assert_eq!(d.treatment, Treatment::None);
    assert!(matches!(update_of(&d).attribute(99), Some(AttrValue::Raw { data, .. }) if data == &[1, 2, 3]));
}

#[test]
fn bad_nlri_resets_session_with_offset() {
    let msg = update(
        &[],
        &[ORIGIN_IGP, AS_PATH, NEXT_HOP],
        &[24, 10, 0, 0, 33, 1, 2, 3, 4, 5],
    );
    let (code, offset) = reset(&msg);
    assert_eq!(code, (3, 10));
    assert_eq!(offset, msg.len() - 6);
}

#[test]
fn lengths_that_do_not_add_up_reset_session() {
    let mut msg = with(&[]);
    msg[19] = 0xff; // withdrawn routes length far beyond the message
    assert_eq!(reset(&msg), ((3, 1), 19));
    let mut msg = with(&[]);
    msg[22] = 0xff; // total path attribute length beyond the message
    assert_eq!(reset(&msg).0, (3, 1));
}

#[test]
fn header_errors() {
    let mut msg = with(&[]);
    msg[0] = 0;
    assert_eq!(reset(&msg), ((1, 1), 0));
    let mut msg = with(&[]);
    msg[18] = 9;
    assert_eq!(reset(&msg), ((1, 3), 18));
    let keepalive_too_long = {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&[0, 20, 4, 0]);
        m
    };
    let err = decode(&keepalive_too_long, &Context::default()).unwrap_err();
    assert_eq!(err.notification_code(), (1, 2));
    assert_eq!(err.data, vec![0, 20]);
}
