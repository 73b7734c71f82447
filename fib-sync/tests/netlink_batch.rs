//! One netlink batch asks only its last request for an acknowledgement: a
//! request that fails in the middle or at the end is still reported as
//! failed, and the others as done (root; a namespace of its own).

mod common;

use common::in_netns;
use fib_sync::{Errno, Fib, Hop, KernelRoute, Op, RouteKind};

fn via(prefix: &str, gateway: &str, ifindex: u32) -> KernelRoute {
    KernelRoute {
        prefix: prefix.parse().unwrap(),
        table: 254,
        protocol: 12,
        metric: 32,
        kind: RouteKind::unicast(vec![Hop {
            gateway: Some(gateway.parse().unwrap()),
            ifindex,
            onlink: false,
        }]),
    }
}

#[test]
fn failures_inside_and_at_the_end_of_a_batch_are_reported_per_request() {
    in_netns(|k| async move {
        k.ip("link add t0 type veth peer name t0p");
        k.ip("link set t0 up");
        k.ip("link set t0p up");
        k.ip("addr add 192.168.9.1/24 dev t0");
        let ifindex: u32 = k
            .ip("-o link show t0")
            .split(':')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut fib = fib_sync::NetlinkFib::new(254, 512).expect("netlink fib");
        let ok = |i: u32| Op::Add(via(&format!("10.9.{i}.0/24"), "192.168.9.2", ifindex));
        // Not on the link: the kernel refuses it (ENETUNREACH).
        let unreachable = |i: u32| Op::Add(via(&format!("10.8.{i}.0/24"), "172.31.0.1", ifindex));
        let mut ops: Vec<Op> = (0..5).map(ok).collect();
        ops.insert(2, unreachable(0));
        // A second Add of a route that now exists: EEXIST, last in the batch.
        ops.push(ok(0));
        let results = fib.apply(&ops).await.expect("netlink transport");
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, vec![2, 6], "{results:?}");
        assert_eq!(results[6], Err(Errno(libc::EEXIST)));
        let installed = k.ip("-4 route show proto 12");
        assert_eq!(installed.lines().count(), 5, "{installed}");
        // The last request succeeding acknowledges the batch before it.
        let results = fib.apply(&[unreachable(1), ok(7)]).await.expect("netlink transport");
        assert!(results[0].is_err() && results[1].is_ok(), "{results:?}");
    });
}
