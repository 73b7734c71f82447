//! Issue 14: prefixes that share an attribute set leave in as few UPDATEs as
//! fit — a full table passes through with about as many UPDATEs as it came in.

use std::sync::Arc;

use super::tests::{learned, peer, received, rib};
use crate::messages::{PeerId, RibMsg};
use crate::route::policy::{Chain, Policy, Verdict};

/// `sets` attribute sets of `per_set` /24s each, from eBGP peer 1 (AS 65001)
/// to eBGP peer 2 (AS 65002, export by an accept-all policy): the UPDATEs
/// peer 2 is sent, End-of-RIB left out.
fn pass_through(sets: u32, per_set: u32) -> usize {
    let mut rib = rib();
    let accept_all = Arc::new(Policy {
        name: "all".into(),
        default: Verdict::Accept,
        rules: vec![],
    });
    let (mut from, out, _rx1) = peer(1, "192.168.1.1", 65001, 1 << 16);
    from.import = Chain::Policies(vec![accept_all.clone()]);
    rib.handle(RibMsg::PeerUp(from, out));
    let (mut to, out, mut rx) = peer(2, "192.168.2.1", 65002, 1 << 16);
    to.export = Chain::Policies(vec![accept_all]);
    rib.handle(RibMsg::PeerUp(to, out));
    rib.flush();
    let _ = received(&mut rx);
    for s in 0..sets {
        let mut attrs = learned("192.168.1.1", vec![65001]);
        attrs.med = Some(s);
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
    rib.flush();
    let updates = received(&mut rx);
    let prefixes: usize = updates.iter().map(|u| u.nlri.len()).sum();
    assert_eq!(prefixes, (sets * per_set) as usize, "every prefix is passed on");
    updates.iter().filter(|u| u.as_end_of_rib().is_none()).count()
}

#[test]
fn each_attribute_set_of_a_full_table_leaves_in_one_update_where_it_fits() {
    // 30 sets of 100 prefixes: 30 UPDATEs, plus at most one per slice of the
    // peer's queue that cuts a set in two.
    let sent = pass_through(30, 100);
    assert!(
        sent <= 30 + 3000 / super::DUMP_SLICE + 1,
        "{sent} UPDATEs for 30 attribute sets"
    );
}
