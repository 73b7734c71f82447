//! Issue 12 with a real peer: a borrowed pod IP on the ternd host (a cali
//! veth with a /32 `proto boot` route outside the host's block, as Felix
//! writes it) reaches BIRD as a /32 via the ternd host and is pingable from
//! a pod on BIRD's host; the /32s inside the host's block are not
//! announced; deleting the route withdraws it. Needs root and bird2.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tern_testkit::*;

const LEARN: &str = r#"
[learn]
protocols = [3, 80]
prefixes = ["10.244.0.0/16"]
interfaces = ["cali*"]
"#;

#[test]
fn a_borrowed_pod_ip_reaches_bird_and_leaves_with_its_route() {
    let test = "a_borrowed_pod_ip_reaches_bird_and_leaves_with_its_route";
    if !require(test, &["bird", "birdc", "ping"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let own_pod = h1.add_pod(0);
    let borrowed = h1.add_pod_at(Ipv4Addr::new(10, 244, 3, 7), "calib0rrow");
    let bird_pod = h2.add_pod(0);
    let tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 9, LEARN),
    );
    let bird = Bird::start(&h2.ns, &bird_mesh_config(h2.addr, &[h1.addr], &h2.block()));
    let diag = || {
        format!(
            "{}\n{}\n{}",
            show(&h2.routes("")),
            bird.birdc("show route all"),
            tern.log_tail(20)
        )
    };
    // `ip -j route` names a host route by its address alone.
    wait_until_diag(
        Duration::from_secs(30),
        "BIRD installing 10.244.3.7/32 via the ternd host",
        || find(&h2.routes("proto bird"), "10.244.3.7").is_some_and(|r| r.gateway.as_deref() == Some("192.168.1.11")),
        diag,
    );
    assert!(
        find(&h2.routes(""), &own_pod.addr.to_string()).is_none(),
        "a /32 inside the host's block is covered by the block:\n{}",
        diag()
    );
    wait_until_diag(
        Duration::from_secs(30),
        "the pod on BIRD's host reaching the borrowed pod IP",
        || bird_pod.ping(borrowed.addr).is_ok(),
        diag,
    );
    let learned = tern.show("routes");
    println!("ternd's view: {learned}");
    assert!(
        learned.as_array().is_some_and(|rs| rs
            .iter()
            .any(|r| r["prefix"] == "10.244.3.7/32" && r["from"] == "kernel" && r["learned"]["protocol"] == 3)),
        "{learned}"
    );

    let monitor = RouteMonitor::start(&h2.ns, "bird host");
    let deleted = Instant::now();
    h1.ns.ip("route del 10.244.3.7/32");
    wait_until_diag(
        Duration::from_secs(10),
        "BIRD's kernel losing 10.244.3.7/32",
        || find(&h2.routes(""), "10.244.3.7").is_none(),
        diag,
    );
    let took = deleted.elapsed();
    println!(
        "withdrawn from BIRD's kernel {took:?} after the route was deleted on the ternd host\n{}",
        monitor.show("10.244.3.7")
    );
    // The issue's bound: event-driven, no scan interval in between.
    assert!(took < Duration::from_secs(1), "withdrawal took {took:?}");
}
