//! The kernel side is fed at its own pace: two chunks at most wait for it,
//! a change made meanwhile is handed over once in its latest form, and the
//! sweep of adopted routes comes after every change owed before it.

use std::collections::HashMap;

use bgp_proto::Family;
use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use super::kernel::KERNEL_CHUNK;
use super::tests::{announce, learned, nlri, rib, up};
use super::Rib;
use crate::messages::{KernelOp, KernelWork, PeerId, RibMsg};

const N: u32 = 10_000;

fn prefix(i: u32) -> String {
    format!("10.244.{}.{}/32", i / 256, i % 256)
}

/// A RIB with a kernel task stand-in and a ToR that announced N routes.
fn fed_rib() -> (Rib, mpsc::UnboundedReceiver<KernelWork>) {
    let mut rib = rib();
    let (tx, rx) = mpsc::unbounded_channel();
    rib.kernel_feed.sink = Some(tx);
    let _tor = up(&mut rib, 2, "192.168.1.1", 65001);
    for i in 0..N {
        announce(&mut rib, 2, &prefix(i), learned("192.168.1.1", vec![65001]));
    }
    rib.flush();
    rib.feed_kernel();
    (rib, rx)
}

fn waiting(rx: &mut mpsc::UnboundedReceiver<KernelWork>) -> Vec<KernelWork> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Takes what waits, as the kernel task does, until nothing more comes;
/// returns every message in order.
fn take_all(rib: &mut Rib, rx: &mut mpsc::UnboundedReceiver<KernelWork>) -> Vec<KernelWork> {
    let mut all = Vec::new();
    loop {
        let got = waiting(rx);
        if got.is_empty() {
            return all;
        }
        let chunks = got.iter().filter(|w| matches!(w, KernelWork::Ops(_))).count();
        all.extend(got);
        rib.handle(RibMsg::KernelTaken(chunks));
    }
}

fn ops(work: &[KernelWork]) -> Vec<KernelOp> {
    work.iter()
        .flat_map(|w| match w {
            KernelWork::Ops(ops) => ops.clone(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn the_kernel_side_is_handed_two_chunks_at_most_and_then_everything_once() {
    let (mut rib, mut rx) = fed_rib();
    let first = waiting(&mut rx);
    assert_eq!(first.len(), 2, "two chunks wait for the kernel side, the rest is owed");
    assert!(ops(&first).len() <= 2 * KERNEL_CHUNK);
    // Meanwhile: a route not handed over yet goes, one already handed over moves.
    let last = prefix(N - 1);
    rib.handle(RibMsg::Withdraw {
        peer: PeerId(2),
        family: Family::IPV4_UNICAST,
        nlri: nlri(&last),
    });
    announce(&mut rib, 2, &prefix(0), learned("192.168.1.2", vec![65001]));
    rib.flush();
    rib.feed_kernel();
    rib.handle(RibMsg::KernelTaken(2));
    let rest = take_all(&mut rib, &mut rx);
    let mut per_prefix: HashMap<IpNetwork, Vec<KernelOp>> = HashMap::new();
    for op in ops(&first).into_iter().chain(ops(&rest)) {
        let p = match &op {
            KernelOp::Via(p, _) | KernelOp::Blackhole(p) | KernelOp::Remove(p) => *p,
        };
        per_prefix.entry(p).or_default().push(op);
    }
    let last: IpNetwork = last.parse().unwrap();
    assert!(
        !per_prefix.contains_key(&last),
        "a route gone before it was handed over is never installed"
    );
    assert_eq!(per_prefix.len(), N as usize - 1);
    let moved: IpNetwork = prefix(0).parse().unwrap();
    for (p, list) in &per_prefix {
        let expected = if *p == moved { 2 } else { 1 };
        assert_eq!(list.len(), expected, "{p}: {list:?}");
    }
    let KernelOp::Via(_, gateways) = per_prefix[&moved].last().unwrap() else {
        panic!("the moved route is installed");
    };
    assert_eq!(gateways[0].addr.to_string(), "192.168.1.2");
    assert!(rib.take_kernel_ops().is_empty(), "nothing left owed");
}

#[test]
fn the_sweep_of_adopted_routes_waits_for_every_change_owed_before_it() {
    let (mut rib, mut rx) = fed_rib();
    rib.handle(RibMsg::SweepStaleKernelRoutes);
    let all = take_all(&mut rib, &mut rx);
    let sweep_at = all
        .iter()
        .position(|w| matches!(w, KernelWork::SweepStale))
        .expect("the sweep is handed over");
    assert_eq!(sweep_at, all.len() - 1, "the sweep comes last");
    assert_eq!(
        ops(&all[..sweep_at]).len(),
        N as usize,
        "every route is handed over before the sweep"
    );
}

#[test]
fn a_peer_going_takes_its_routes_out_of_the_kernel_at_the_same_pace() {
    let (mut rib, mut rx) = fed_rib();
    take_all(&mut rib, &mut rx);
    rib.handle(RibMsg::PeerDown(PeerId(2)));
    rib.flush();
    rib.feed_kernel();
    let first = waiting(&mut rx);
    assert_eq!(first.len(), 2, "two chunks of removals wait, the rest is owed");
    assert!(ops(&first).len() <= 2 * KERNEL_CHUNK);
    rib.handle(RibMsg::KernelTaken(2));
    let all: Vec<KernelOp> = ops(&first)
        .into_iter()
        .chain(ops(&take_all(&mut rib, &mut rx)))
        .collect();
    assert_eq!(all.len(), N as usize);
    assert!(all.iter().all(|op| matches!(op, KernelOp::Remove(_))));
}
