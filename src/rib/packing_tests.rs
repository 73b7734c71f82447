//! Issue 14: prefixes that share an attribute set leave in as few UPDATEs as
//! fit — a full table passes through with about as many UPDATEs as it came in.

use std::sync::Arc;

use super::tests::{learned, peer, received, rib};
use crate::messages::{PeerId, RibMsg};
use crate::route::policy::{Chain, Policy, Verdict};

/// `sets` attribute sets of `per_set` /24s each, from eBGP peer 1 (AS 65001)
/// to eBGP peer 2 (AS 65002, export by an accept-all policy): the UPDATEs
/// peer 2 is sent, End-of-RIB left out. With `late`, peer 2 comes up after
/// the table is in, so it gets it by the initial dump, not the change queue.
fn pass_through(sets: u32, per_set: u32, late: bool) -> usize {
    let mut rib = rib();
    let accept_all = Arc::new(Policy {
        name: "all".into(),
        default: Verdict::Accept,
        rules: vec![],
    });
    let (mut from, out, _rx1) = peer(1, "192.168.1.1", 65001, 1 << 16);
    from.import = Chain::Policies(vec![accept_all.clone()]);
    rib.handle(RibMsg::PeerUp(from, out));
    if late {
        announce_sets(&mut rib, sets, per_set);
        rib.flush();
    }
    let (mut to, out, mut rx) = peer(2, "192.168.2.1", 65002, 1 << 16);
    to.export = Chain::Policies(vec![accept_all]);
    rib.handle(RibMsg::PeerUp(to, out));
    rib.flush();
    if !late {
        let _ = received(&mut rx);
        announce_sets(&mut rib, sets, per_set);
        rib.flush();
    }
    let updates = received(&mut rx);
    let prefixes: usize = updates.iter().map(|u| u.nlri.len()).sum();
    assert_eq!(prefixes, (sets * per_set) as usize, "every prefix is passed on");
    updates.iter().filter(|u| u.as_end_of_rib().is_none()).count()
}

/// `sets` attribute sets of `per_set` /24s each from peer 1, told apart by a
/// community (a MED would not reach an eBGP peer, and the sets would merge).
fn announce_sets(rib: &mut super::Rib, sets: u32, per_set: u32) {
    for s in 0..sets {
        let mut attrs = learned("192.168.1.1", vec![65001]);
        attrs
            .communities
            .push(bgp_proto::attributes::Community((65001 << 16) | s));
        let nlri = (0..per_set)
            .map(|i| {
                let n = s * per_set + i;
                bgp_proto::Nlri::new(format!("10.{}.{}.0/24", n / 256, n % 256).parse().unwrap())
            })
            .collect();
        rib.handle(RibMsg::Announce {
            peer: PeerId(1),
            family: bgp_proto::Family::IPV4_UNICAST,
            attrs,
            nlri,
        });
    }
}

#[test]
fn each_attribute_set_of_a_full_table_leaves_in_one_update_where_it_fits() {
    // 30 sets of 100 prefixes, 3,000 prefixes over several slices of the
    // peer's queue: no slice ends inside a set, so 30 UPDATEs.
    const { assert!(3000 > 2 * super::DUMP_SLICE) };
    assert_eq!(pass_through(30, 100, false), 30, "UPDATEs for 30 attribute sets");
}

#[test]
fn a_table_sent_to_a_peer_that_comes_up_later_keeps_its_sets_together() {
    // The initial dump walks the table in slices of prefix ids: same rule.
    assert_eq!(pass_through(30, 100, true), 30, "UPDATEs for 30 attribute sets");
}
