//! Allocation and batching tests of the worker.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv4Addr;

use super::*;
use crate::memory::{MemoryFib, MemoryKernel};
use crate::model::{NextHop, RouteKind};

/// Counts allocations made by the current thread (the worker runs on the test's
/// thread here), so a test can assert that a code path allocates nothing.
struct PerThread;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static COUNT: PerThread = PerThread;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

fn kernel() -> MemoryKernel {
    let k = MemoryKernel::new();
    k.add_link("eth0");
    k.add_addr("eth0", "192.168.1.11/24".parse().unwrap());
    k
}

async fn worker(k: &MemoryKernel) -> (Worker<MemoryFib>, mpsc::UnboundedSender<Command>) {
    let mut fib = k.fib();
    let events = fib.take_events().unwrap();
    let (tx, cmds) = mpsc::unbounded_channel();
    let mut w = Worker::new(fib, FibConfig::default(), events, cmds, Arc::default());
    w.resync().await.unwrap();
    while !w.dirty.is_empty() {
        w.process_batch().await.unwrap();
    }
    (w, tx)
}

fn prefixes(n: u32) -> Vec<IpNetwork> {
    (0..n)
        .map(|i| IpNetwork::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)).into(), 26).unwrap())
        .collect()
}

/// A kernel and a worker that was just told to install `n` routes via one gateway.
async fn told_to_install(
    n: u32,
) -> (
    MemoryKernel,
    Worker<MemoryFib>,
    mpsc::UnboundedSender<Command>,
    Vec<IpNetwork>,
) {
    let k = kernel();
    let (mut w, tx) = worker(&k).await;
    let gw = "192.168.1.12".parse().unwrap();
    let all = prefixes(n);
    let cmd = Command::Apply(all.iter().map(|p| Change::Set(*p, Desired::via([gw]))).collect());
    assert!(!w.command(cmd).await);
    (k, w, tx, all)
}

async fn drain(w: &mut Worker<MemoryFib>) {
    while !w.dirty.is_empty() || !w.dirty_other.is_empty() {
        w.process_batch().await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn echo_of_our_own_install_allocates_nothing() {
    let k = kernel();
    let (mut w, _tx) = worker(&k).await;
    while w.events.try_recv().is_ok() {}
    let gw = "192.168.1.12".parse().unwrap();
    for p in prefixes(1000) {
        w.set(p, Desired::via([gw]));
    }
    drain(&mut w).await;
    assert_eq!(k.routes(254).len(), 1000);
    let mut echoes = Vec::new();
    while let Ok(e) = w.events.try_recv() {
        echoes.push(e);
    }
    assert_eq!(echoes.len(), 1000, "one RTM_NEWROUTE per install");
    let before = allocs();
    for e in echoes.drain(..) {
        w.event(e);
    }
    assert_eq!(allocs() - before, 0, "handling our own echoes allocated");
    assert!(w.dirty.is_empty(), "an echo of what we installed needs no work");
    // A route of ours that differs from what we installed is not an echo.
    let mut other = k.routes(254)[0].clone();
    other.kind = RouteKind::Blackhole;
    w.event(FibEvent::RouteAdded(other));
    assert_eq!(w.dirty.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn routes_share_hop_sets_and_a_burst_leaves_no_big_buffers() {
    let (k, mut w, _tx, all) = told_to_install(20_000).await;
    drain(&mut w).await;
    w.trim();
    assert_eq!(k.routes(254).len(), 20_000);
    // One desired set and one resolved set for all 20k routes.
    let mut sets = std::collections::HashSet::new();
    for s in w.routes.values() {
        match (s.desired(&w.res.states), s.own_kind(&w.res.states)) {
            (Some(Desired::Via(d)), Some(RouteKind::Unicast(h))) => {
                sets.insert((
                    Arc::as_ptr(&d) as *const u8 as usize,
                    Arc::as_ptr(&h) as *const u8 as usize,
                ));
            }
            other => panic!("unexpected slot {other:?}"),
        }
    }
    assert_eq!(sets.len(), 1, "every route points at the same two sets");
    assert_eq!(w.dirty.q.capacity(), 0, "dirty queue released after the burst");
    let cmd = Command::Apply(all.iter().map(|p| Change::Remove(*p)).collect());
    assert!(!w.command(cmd).await);
    drain(&mut w).await;
    w.trim();
    assert!(k.routes(254).is_empty());
    assert!(w.routes.is_empty(), "records of removed routes are gone");
    assert!(w.routes.capacity() <= SPARE, "table shrank: {}", w.routes.capacity());
    w.res.states.collect(w.routes.values());
    assert_eq!(w.res.states.len(), 0, "no state is kept for routes that are gone");
}

#[test]
fn a_burst_is_sent_spread_over_the_address_space() {
    let mut q = DirtyQueue::default();
    let mut res = Resolver::default();
    let mut slots: Vec<Slot> = (0..4).map(|_| Slot::default()).collect();
    let ps = prefixes(4);
    for (p, s) in ps.iter().zip(slots.iter_mut()) {
        mark(&mut q, *p, s, &mut res);
    }
    q.spread(8);
    assert_eq!(q.pop(), Some(ps[0]), "small queues keep arrival order");
    q.spread(2);
    // Bit-reversed: .128 (bit 7 -> bit 24) sorts before .64 (bit 6 -> bit 25), then .192.
    assert_eq!([q.pop(), q.pop(), q.pop()], [Some(ps[2]), Some(ps[1]), Some(ps[3])]);
    assert_eq!(q.pop(), None);
}

#[tokio::test]
async fn tracked_next_hops_report_when_they_do_not_resolve() {
    let k = kernel();
    let (mut w, _tx) = worker(&k).await;
    let (sub, mut reports) = mpsc::unbounded_channel();
    w.watch_next_hops(sub);
    let hop = |s: &str| NextHop::via(s.parse().unwrap());
    let own = hop("192.168.1.11");
    let on_link = hop("192.168.1.13");
    let off_link = hop("192.168.9.1");
    // A link-local next hop from a peer on a link we do not have yet.
    let link_local = NextHop::link_local("fe80::9".parse().unwrap(), "192.168.9.12".parse().unwrap());
    w.track(vec![own.clone(), on_link, off_link.clone(), link_local.clone()]);
    let mut first = reports.try_recv().expect("a report");
    first.sort();
    assert_eq!(
        first,
        vec![(own, false), (off_link.clone(), false), (link_local.clone(), false)],
        "our own address, and no route"
    );
    k.add_link("eth1");
    k.add_addr("eth1", "192.168.9.11/24".parse().unwrap());
    while let Ok(e) = w.events.try_recv() {
        w.event(e);
    }
    let mut second = reports.try_recv().expect("a report");
    second.sort();
    assert_eq!(second, vec![(off_link, true), (link_local, true)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_route_event_re_resolves_only_routes_whose_next_hop_cover_changed() {
    use crate::model::Hop;
    let k = kernel();
    let eth0 = k.ifindex("eth0").unwrap();
    let foreign = |prefix: &str, gateway: Option<&str>| KernelRoute {
        prefix: prefix.parse().unwrap(),
        table: 254,
        protocol: 4,
        metric: 0,
        kind: RouteKind::unicast(vec![Hop {
            gateway: gateway.map(|g| g.parse().unwrap()),
            ifindex: eth0,
            onlink: false,
        }]),
    };
    k.add_route(foreign("10.0.0.0/8", Some("192.168.1.1"))).unwrap();
    let (mut w, _tx) = worker(&k).await;
    let all = prefixes(3000);
    let gws = ["10.1.2.3", "10.9.9.9", "192.168.1.12"];
    for (i, p) in all.iter().enumerate() {
        w.set(*p, Desired::via([gws[i % 3].parse().unwrap()]));
    }
    drain(&mut w).await;
    while w.events.try_recv().is_ok() {}
    assert_eq!(k.routes(254).len(), 3001);
    assert_eq!(w.res.gateways.len(), 3, "one entry per next hop, not per route");
    // 30k pod routes inside the /8, none of them a next hop: nothing to re-resolve.
    for i in 0..30_000u32 {
        let a = Ipv4Addr::from(0x0ac8_0000 + i);
        k.add_route(foreign(&format!("{a}/32"), None)).unwrap();
    }
    while let Ok(e) = w.events.try_recv() {
        w.event(e);
    }
    assert!(w.dirty.is_empty(), "{} queued", w.dirty.len());
    assert_eq!(w.res.covers.len(), 30_001);
    // A /16 covering one next hop: exactly the 1000 routes via it are queued.
    k.add_route(foreign("10.1.0.0/16", Some("192.168.1.2"))).unwrap();
    while let Ok(e) = w.events.try_recv() {
        w.event(e);
    }
    assert_eq!(w.dirty.len(), 1000);
    drain(&mut w).await;
    let via = |gw: &str| {
        k.routes(254)
            .iter()
            .filter(|r| r.protocol == 12)
            .filter(|r| matches!(&r.kind, RouteKind::Unicast(h) if h[0].gateway == Some(gw.parse().unwrap())))
            .count()
    };
    assert_eq!(
        (via("192.168.1.2"), via("192.168.1.1"), via("192.168.1.12")),
        (1000, 1000, 1000)
    );
}

/// A next hop the RIB asked about resolves once a route of another protocol
/// covers it, and stops when that route goes, though no route of ours uses it
/// (the RIB left its path out, so only the tracking can bring it back).
#[tokio::test(flavor = "current_thread")]
async fn a_tracked_next_hop_follows_the_route_that_covers_it() {
    use crate::model::Hop;
    let k = kernel();
    let eth0 = k.ifindex("eth0").unwrap();
    let (mut w, _tx) = worker(&k).await;
    let (sub, mut reports) = mpsc::unbounded_channel();
    w.watch_next_hops(sub);
    let multihop = NextHop::via("10.0.5.1".parse().unwrap());
    w.track(vec![multihop.clone()]);
    assert_eq!(reports.try_recv().expect("a report"), vec![(multihop.clone(), false)]);
    let static_route = KernelRoute {
        prefix: "10.0.5.0/24".parse().unwrap(),
        table: 254,
        protocol: 4,
        metric: 0,
        kind: RouteKind::unicast(vec![Hop {
            gateway: Some("192.168.1.1".parse().unwrap()),
            ifindex: eth0,
            onlink: false,
        }]),
    };
    k.add_route(static_route.clone()).unwrap();
    while let Ok(e) = w.events.try_recv() {
        w.event(e);
    }
    assert_eq!(reports.try_recv().expect("a report"), vec![(multihop.clone(), true)]);
    k.del_route(254, static_route.key()).unwrap();
    while let Ok(e) = w.events.try_recv() {
        w.event(e);
    }
    assert_eq!(reports.try_recv().expect("a report"), vec![(multihop, false)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_paced_caller_is_answered_once_the_queue_is_short() {
    let burst = 2 * PACE_QUEUE;
    let (k, mut w, _tx, _) = told_to_install(burst as u32).await;
    let (tx, mut rx) = oneshot::channel();
    assert!(!w.command(Command::Paced(tx)).await);
    // Not answered while the queue is longer, answered at the first look after.
    let mut checks = Vec::new();
    loop {
        w.release_pacers();
        let answered = rx.try_recv().is_ok();
        checks.push((w.dirty.len(), answered));
        if answered || w.dirty.is_empty() {
            break;
        }
        w.process_batch().await.unwrap();
    }
    let (last, answered) = *checks.last().unwrap();
    assert!(answered && last <= PACE_QUEUE, "{checks:?}");
    assert!(
        checks[..checks.len() - 1].iter().all(|&(n, a)| !a && n > PACE_QUEUE),
        "{checks:?}"
    );
    assert!(checks.len() > 1, "the burst was longer than the bound");
    drain(&mut w).await;
    assert_eq!(k.routes(254).len(), burst);
}

/// The RIB hands over a prefix's route whenever the prefix changed, also
/// when its route did not (it keeps no copy): an equal `Set` must cost no
/// kernel request and leave nothing to do.
#[tokio::test(flavor = "current_thread")]
async fn a_set_equal_to_what_is_held_is_dropped() {
    let (k, mut w, _tx, all) = told_to_install(100).await;
    drain(&mut w).await;
    while w.events.try_recv().is_ok() {}
    let requests = k.requests();
    let gw = "192.168.1.12".parse().unwrap();
    let again = Command::Apply(all.iter().map(|p| Change::Set(*p, Desired::via([gw]))).collect());
    assert!(!w.command(again).await);
    assert!(w.dirty.is_empty(), "an unchanged route is not marked");
    drain(&mut w).await;
    assert_eq!(k.requests(), requests, "no kernel request for unchanged routes");
    // A different gateway is a change.
    let other = "192.168.1.13".parse().unwrap();
    assert!(
        !w.command(Command::Apply(vec![Change::Set(all[0], Desired::via([other]))]))
            .await
    );
    assert_eq!(w.dirty.len(), 1);
}

/// Slots do not count references to their states: the worker's collection must
/// find the states of routes that are gone and free them.
#[tokio::test(flavor = "current_thread")]
async fn states_of_routes_that_are_gone_are_collected() {
    let k = kernel();
    let (mut w, _tx) = worker(&k).await;
    let all = prefixes(500);
    for (i, p) in all.iter().enumerate() {
        // 250 gateways on eth0's subnet: 250 distinct wishes.
        let gw = Ipv4Addr::from(0xc0a8_0100 + 2 + (i as u32 % 250));
        w.set(*p, Desired::via([gw.into()]));
    }
    drain(&mut w).await;
    assert_eq!(k.routes(254).len(), 500);
    assert!(w.res.states.len() >= 250, "{}", w.res.states.len());
    for p in &all {
        w.remove(*p);
    }
    drain(&mut w).await;
    assert!(k.routes(254).is_empty());
    w.collect_states();
    assert_eq!(w.res.states.len(), 0);
}
