//! Kernel errors on route ops: reported per route and in stats, retried with backoff
//! (in-memory kernel with injected errnos; tokio's paused clock, so no real waiting).

use std::time::Duration;

use fib_sync::{Desired, Errno, FibConfig, FibSync, MemoryKernel, RouteKind, RouteState, ShutdownMode};
use ipnetwork::IpNetwork;

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn failed_op_is_reported_then_retried_with_backoff() {
    let k = MemoryKernel::new();
    k.add_link("eth0");
    k.add_addr("eth0", net("192.168.1.11/24"));
    let (h, _task) = FibSync::start_with(
        k.fib(),
        FibConfig {
            retry_base: Duration::from_secs(1),
            ..FibConfig::default()
        },
    )
    .await
    .unwrap();
    let p = net("10.244.2.0/26");
    for errno in [libc::EPERM, libc::ENOBUFS, libc::EINVAL] {
        k.inject_error(p, Some(errno));
        h.set_route(p, Desired::via(["192.168.1.12".parse().unwrap()]))
            .await
            .unwrap();
        h.settle().await.unwrap();
        let snap = h.snapshot().await.unwrap();
        assert!(
            matches!(snap[0].state, RouteState::Failed { error: Errno(e), attempts } if e == errno && attempts >= 1),
            "{snap:?}"
        );
        assert!(k.routes(254).is_empty());
        let before = k.requests();
        // Backoff: after the first delay the op is tried again (clock auto-advances).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        h.settle().await.unwrap();
        assert!(k.requests() > before, "retried after backoff");
        k.inject_error(p, None);
        // Attempts double the delay; 70 s covers the cap of 60 s.
        tokio::time::sleep(Duration::from_secs(70)).await;
        h.settle().await.unwrap();
        let routes = k.routes(254);
        assert_eq!(routes.len(), 1, "installed once the error cleared");
        assert!(matches!(routes[0].kind, RouteKind::Unicast(_)));
        assert_eq!(h.snapshot().await.unwrap()[0].state, RouteState::Installed);
        h.remove_route(p).await.unwrap();
        h.settle().await.unwrap();
        assert!(k.routes(254).is_empty());
    }
    assert!(h.stats().errors >= 6, "{:?}", h.stats());
    h.shutdown(ShutdownMode::RemoveOwned).await.unwrap();
}

#[tokio::test]
async fn dropped_handles_stop_the_worker_keeping_routes() {
    let k = MemoryKernel::new();
    k.add_link("eth0");
    k.add_addr("eth0", net("192.168.1.11/24"));
    let (h, task) = FibSync::start_with(k.fib(), FibConfig::default()).await.unwrap();
    h.set_route(net("10.244.1.0/26"), Desired::Blackhole).await.unwrap();
    h.settle().await.unwrap();
    drop(h);
    task.await.unwrap().unwrap();
    assert_eq!(k.routes(254).len(), 1);
}

#[tokio::test]
async fn host_bits_are_cleared_and_bad_input_does_not_panic() {
    let k = MemoryKernel::new();
    let (h, _task) = FibSync::start_with(k.fib(), FibConfig::default()).await.unwrap();
    h.set_route(net("10.244.1.7/26"), Desired::Blackhole).await.unwrap();
    // No next hops, wrong family: unresolvable, reported, not sent.
    h.set_route(net("10.244.2.0/26"), Desired::Via(Vec::new().into()))
        .await
        .unwrap();
    h.set_route(net("10.244.3.0/26"), Desired::via(["fd00::1".parse().unwrap()]))
        .await
        .unwrap();
    h.settle().await.unwrap();
    let routes = k.routes(254);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].prefix, net("10.244.1.0/26"));
    let snap = h.snapshot().await.unwrap();
    assert_eq!(
        snap.iter()
            .filter(|s| matches!(s.state, RouteState::Unresolved(_)))
            .count(),
        2
    );
}
