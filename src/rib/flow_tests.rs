//! A peer's queue holds at most [`OUT_BUDGET`] unsent bytes (give or take
//! the last hand-over); the rest waits as prefix ids and follows once the
//! writer reports room, none of it lost.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::tests::{announce, learned, peer, received_from_chunk, rib, up, ASN};
use crate::messages::{PeerId, RibMsg, OUT_BUDGET};

#[test]
fn a_slow_peer_is_handed_at_most_the_budget_and_gets_everything_once_it_writes() {
    let mut rib = rib();
    // A channel with room for far more messages than the budget allows bytes.
    let (info, out, mut rx) = peer(1, "192.168.1.12", ASN, 1 << 16);
    let flow = out.flow.clone();
    rib.handle(RibMsg::PeerUp(info, out));
    let _tor = up(&mut rib, 2, "192.168.1.1", 65001);
    // 4,000 prefixes with a MED each: an UPDATE each, about 250 KB in all.
    const N: u32 = 4000;
    for i in 0..N {
        let mut attrs = learned("192.168.1.1", vec![65001]);
        attrs.med = Some(i);
        announce(&mut rib, 2, &format!("10.{}.{}.0/24", 100 + i / 256, i % 256), attrs);
    }
    rib.flush();
    let mut got = HashSet::new();
    let mut hand_overs = 0;
    loop {
        let chunks: Vec<bytes::Bytes> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        if chunks.is_empty() {
            break;
        }
        let before_last: usize = chunks[..chunks.len() - 1].iter().map(|c| c.len()).sum();
        assert!(
            before_last < OUT_BUDGET,
            "{before_last} bytes unsent before the last hand-over"
        );
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        for chunk in &chunks {
            got.extend(
                received_from_chunk(chunk)
                    .iter()
                    .flat_map(|u| u.nlri.iter().map(|n| n.prefix)),
            );
        }
        // The writer wrote it all: room again, reported if the RIB asked.
        flow.unsent.fetch_sub(total, Ordering::SeqCst);
        if flow.want_writable.swap(false, Ordering::SeqCst) {
            rib.handle(RibMsg::Writable(PeerId(1)));
        }
        hand_overs += 1;
    }
    assert_eq!(got.len(), N as usize, "every prefix arrived");
    assert!(hand_overs > 2, "the table went over in {hand_overs} hand-overs");
}

/// A prefix that appears while a peer's table dump is under way, past where
/// the dump has got to, is left to the dump rather than queued as well; a
/// prefix the peer was already sent that changes is queued. In the end every
/// prefix arrived once, the changed one again in its new form.
#[test]
fn a_prefix_ahead_of_a_dump_under_way_is_left_to_the_dump() {
    use bgp_proto::attributes::AttrValue;
    use ipnetwork::IpNetwork;
    use std::collections::HashMap;

    let mut rib = rib();
    let _tor = up(&mut rib, 2, "192.168.1.1", 65001);
    let prefix = |i: u32| format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
    let with_med = |med: u32| {
        let mut a = learned("192.168.1.1", vec![65001]);
        a.med = Some(med);
        a
    };
    const N: u32 = 4000;
    for i in 0..N {
        announce(&mut rib, 2, &prefix(i), with_med(i));
    }
    rib.flush();
    let (info, out, mut rx) = peer(1, "192.168.1.12", ASN, 1 << 16);
    let flow = out.flow.clone();
    rib.handle(RibMsg::PeerUp(info, out));
    rib.flush();
    let next = rib.peers[&PeerId(1)].dump_next.expect("the dump stopped at the budget");
    assert!(next > 0 && next < N, "dump at {next}");
    announce(&mut rib, 2, &prefix(N), with_med(N));
    announce(&mut rib, 2, &prefix(0), with_med(99_999));
    rib.flush();
    assert_eq!(
        rib.peers[&PeerId(1)].queued.count,
        1,
        "only the change to a prefix sent already is queued"
    );
    let mut meds: HashMap<IpNetwork, Vec<u32>> = HashMap::new();
    loop {
        let chunks: Vec<bytes::Bytes> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        if chunks.is_empty() {
            break;
        }
        for chunk in &chunks {
            for u in received_from_chunk(chunk) {
                let med = u.attributes.iter().find_map(|a| match a.value {
                    AttrValue::Med(m) => Some(m),
                    _ => None,
                });
                for n in &u.nlri {
                    meds.entry(n.prefix).or_default().push(med.expect("MED passed on"));
                }
            }
        }
        flow.unsent
            .fetch_sub(chunks.iter().map(|c| c.len()).sum(), Ordering::SeqCst);
        if flow.want_writable.swap(false, Ordering::SeqCst) {
            rib.handle(RibMsg::Writable(PeerId(1)));
        }
    }
    assert_eq!(meds.len(), N as usize + 1, "every prefix arrived");
    for i in 1..=N {
        let got = &meds[&prefix(i).parse::<IpNetwork>().unwrap()];
        assert_eq!(got, &vec![i], "{}", prefix(i));
    }
    assert_eq!(meds[&prefix(0).parse::<IpNetwork>().unwrap()], vec![0, 99_999]);
}
