//! Start-up after a crash or upgrade: proto-bird routes left in the kernel
//! are adopted, the ones still announced are kept without a flap, and the rest
//! are swept once every peer has sent End-of-RIB. Needs root.

use std::time::Duration;

use tern_testkit::*;

#[test]
fn leftover_routes_are_adopted_then_stale_ones_swept() {
    if !require("leftover_routes_are_adopted_then_stale_ones_swept", &[]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    // What a previous ternd (or BIRD) left behind on host 1: host 2's block,
    // still valid, and a block nobody announces any more.
    h1.ns.ip(&format!(
        "route add {} via {} dev eth0 proto bird metric 32",
        h2.block(),
        h2.addr
    ));
    h1.ns.ip(&format!(
        "route add 10.244.77.0/26 via {} dev eth0 proto bird metric 32",
        h2.addr
    ));
    // A foreign route in the same range must survive the sweep.
    h1.ns.ip(&format!(
        "route add 10.244.78.0/26 via {} dev eth0 proto static",
        h2.addr
    ));
    let _t2 = Ternd::start(
        &h2.ns,
        &ternd_mesh_config(h2.addr, &[h1.addr], &h2.block(), "never", 90, ""),
    );
    let t1 = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, "")
            .replace("[kernel]\n", "[kernel]\nsweep_after = 600\n"),
    );
    wait_until(Duration::from_secs(20), "the stale leftover is swept", || {
        find(&h1.routes("proto bird"), "10.244.77.0/26").is_none()
    });
    assert!(t1.established() == 1, "swept only after the session came up");
    let kept = find(&h1.routes("proto bird"), &h2.block())
        .cloned()
        .expect("host 2's block is kept");
    assert_eq!(kept.gateway.as_deref(), Some(h2.addr.to_string().as_str()));
    assert!(
        find(&h1.routes("proto static"), "10.244.78.0/26").is_some(),
        "foreign route removed:\n{}",
        show(&h1.routes(""))
    );
    assert!(
        t1.log_text().contains("removed 1 stale kernel routes"),
        "{}",
        t1.log_tail(20)
    );
}
