//! Issue 12: kernel routes of other programs (`[learn]`, BIRD's kernel
//! `learn` as Calico uses it) are announced, withdrawn with their kernel
//! route, never installed back as ours, visible, and follow reloads.

use fib_sync::{Hop, KernelRoute, RouteKind};
use tern_testkit::inproc::*;

const LEARN: &str = "[learn]\nprotocols = [3, 80]\nprefixes = [\"10.244.0.0/16\"]\ninterfaces = [\"cali*\"]\n";

/// A Felix-style pod route: `PREFIX dev DEV proto PROTO`.
fn pod_route(node: &Node, prefix: &str, dev: &str, protocol: u8) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        table: 254,
        protocol,
        metric: 0,
        kind: RouteKind::unicast(vec![Hop {
            gateway: None,
            ifindex: node.kernel.ifindex(dev).expect("device"),
            onlink: false,
        }]),
    }
}

#[test]
fn a_borrowed_pod_ip_is_announced_and_withdrawn_with_its_kernel_route() {
    let node = Node::start(&format!("{}{LEARN}", ibgp_peer("h2", "127.0.0.2")));
    node.kernel.add_link("cali1");
    node.kernel.add_link("cali2");
    let borrowed = pod_route(&node, "10.244.9.7/32", "cali1", 3);
    node.kernel.add_route(borrowed.clone()).expect("borrowed pod route");
    // Inside the host's own block: covered by the block, not announced.
    node.kernel
        .add_route(pod_route(&node, "10.244.1.5/32", "cali2", 3))
        .expect("own pod route");
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    let seen = read_until(&mut h2, "the borrowed /32 and End-of-RIB", |s| {
        s.end_of_rib && s.announced.contains(&"10.244.9.7/32".to_string())
    });
    assert!(
        !seen.announced.contains(&"10.244.1.5/32".to_string()),
        "{:?}",
        seen.announced
    );
    let update = (seen.updates.iter())
        .find(|u| u.nlri.iter().any(|n| n.prefix == net("10.244.9.7/32")))
        .expect("the UPDATE");
    assert_eq!(update.next_hop(), Some("127.0.0.1".parse().unwrap()), "next hop self");

    // Visible as learned, and never put back into the kernel as ours.
    let route = node
        .routes()
        .into_iter()
        .find(|r| r.prefix == "10.244.9.7/32")
        .expect("in the RIB");
    assert_eq!(route.from, "kernel");
    let learned = route.learned.expect("learned details");
    assert_eq!((learned.protocol, learned.devices), (3, vec!["cali1".to_string()]));
    assert_eq!(node.status().learned_routes, 1);
    let bird = node.birdc("show route 10.244.9.7/32");
    assert!(bird.iter().any(|l| l.contains("[kernel1 ")), "{bird:?}");
    assert!(bird.iter().any(|l| l.contains("dev cali1")), "{bird:?}");
    let ours = |r: &KernelRoute| r.prefix == net("10.244.9.7/32") && r.protocol == 12;
    assert!(!node.kernel_routes().iter().any(ours));

    // The pod goes away: withdrawn.
    node.kernel.del_route(254, borrowed.key()).expect("delete");
    read_until(&mut h2, "the withdrawal", |s| {
        s.withdrawn.contains(&"10.244.9.7/32".to_string())
    });
    assert_eq!(node.status().learned_routes, 0);
}

#[test]
fn a_deleted_pod_interface_and_a_reload_withdraw_without_resetting_the_session() {
    let node = Node::start(&format!("{}{LEARN}", ibgp_peer("h2", "127.0.0.2")));
    node.kernel.add_link("cali1");
    node.kernel.add_link("cali2");
    node.kernel
        .add_route(pod_route(&node, "10.244.9.7/32", "cali1", 3))
        .expect("route");
    node.kernel
        .add_route(pod_route(&node, "10.244.9.8/32", "cali2", 80))
        .expect("route");
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "both /32s", |s| {
        s.end_of_rib
            && ["10.244.9.7/32", "10.244.9.8/32"]
                .iter()
                .all(|p| s.announced.contains(&p.to_string()))
    });
    // The veth is deleted: the kernel drops its IPv4 route without a word.
    node.kernel.del_link("cali1");
    read_until(&mut h2, "10.244.9.7/32 withdrawn", |s| {
        s.withdrawn.contains(&"10.244.9.7/32".to_string())
    });
    // Reload without protocol 80: its route is withdrawn, the session stays.
    let since = node.peer("h2").since_unix;
    node.reload_with(&format!(
        "{}{}",
        ibgp_peer("h2", "127.0.0.2"),
        LEARN.replace("[3, 80]", "[3]")
    ))
    .expect("reload");
    read_until(&mut h2, "10.244.9.8/32 withdrawn", |s| {
        s.withdrawn.contains(&"10.244.9.8/32".to_string())
    });
    let peer = node.peer("h2");
    assert_eq!((peer.state.as_str(), peer.since_unix), ("Established", since));
}

/// Issue 12: a burst of 30,000 pod routes is announced in few UPDATEs (they
/// share one attribute set, so each UPDATE carries as many as fit).
#[test]
fn a_burst_of_30000_pod_routes_leaves_in_few_updates() {
    let node = Node::start(&format!("{}{LEARN}", ibgp_peer("h2", "127.0.0.2")));
    let mut h2 = node.connect("127.0.0.2", ASN).expect("h2");
    read_until(&mut h2, "the initial table", |s| s.end_of_rib);
    node.kernel.add_link("cali1");
    let routes: Vec<KernelRoute> = (0..30_000u32)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x0af4_4000 + i); // 10.244.64.0 onwards
            pod_route(&node, &format!("{a}/32"), "cali1", 3)
        })
        .collect();
    for r in routes {
        node.kernel.add_route(r).expect("pod route");
    }
    let seen = read_until(&mut h2, "30,000 /32s", |s| s.announced.len() >= 30_000);
    let updates = seen.updates.iter().filter(|u| !u.nlri.is_empty()).count();
    println!("30,000 learned routes in {updates} UPDATEs");
    // 4,096-byte UPDATEs hold about 800 /32s: 38 at best; 59-60 here, as the
    // routes arrive while earlier ones are sent. One UPDATE per route or per
    // few routes (thousands) is what this guards against.
    assert!(updates <= 300, "{updates} UPDATEs");
}
