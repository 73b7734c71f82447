//! Convergence: every established peer has sent End-of-RIB for each of its
//! families. Kept as a count of the End-of-RIBs still owed, which must follow
//! peers coming, going (also gracefully) and coming back.

use bgp_proto::Family;

use super::tests::{down_graceful, peer, rib, up, up_gr, ASN};
use crate::messages::{PeerId, RibMsg};

fn end_of_rib(rib: &mut super::Rib, id: u32, family: Family) {
    rib.handle(RibMsg::EndOfRib(PeerId(id), family));
}

#[test]
fn converged_follows_the_end_of_ribs_owed() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let _b = up(&mut rib, 2, "192.168.1.13", ASN);
    assert!(!rib.converged());
    end_of_rib(&mut rib, 1, Family::IPV4_UNICAST);
    assert!(!rib.converged(), "B has not sent its End-of-RIB");
    // One for a family B did not negotiate, and a repeat of A's, change nothing.
    end_of_rib(&mut rib, 2, Family::IPV6_UNICAST);
    end_of_rib(&mut rib, 1, Family::IPV4_UNICAST);
    assert!(!rib.converged());
    // B goes before sending it: nothing is owed any more.
    rib.handle(RibMsg::PeerDown(PeerId(2)));
    assert!(rib.converged());
    // B is back: it owes one again, then sends it.
    let _b = up(&mut rib, 2, "192.168.1.13", ASN);
    assert!(!rib.converged());
    end_of_rib(&mut rib, 2, Family::IPV4_UNICAST);
    assert!(rib.converged());
}

#[test]
fn a_peer_gone_gracefully_or_replaced_owes_nothing_for_its_old_session() {
    let mut rib = rib();
    let _a = up(&mut rib, 1, "192.168.1.12", ASN);
    let _c = up_gr(&mut rib, 3, "192.168.1.14");
    end_of_rib(&mut rib, 1, Family::IPV4_UNICAST);
    assert!(!rib.converged());
    // C restarts before its End-of-RIB: its old session owes nothing.
    down_graceful(&mut rib, 3);
    end_of_rib(&mut rib, 1, Family::IPV4_UNICAST);
    assert!(rib.converged(), "only the gone session owed one");
    // A session that replaces a live one (same id) takes over what is owed.
    let (info, out, _rx) = peer(1, "192.168.1.12", ASN, 64);
    rib.handle(RibMsg::PeerUp(info, out));
    assert!(!rib.converged());
    end_of_rib(&mut rib, 1, Family::IPV4_UNICAST);
    assert!(rib.converged());
}
