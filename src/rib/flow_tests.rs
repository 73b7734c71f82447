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
