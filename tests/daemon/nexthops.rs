//! Next hops and link failures: an ECMP route keeps the paths that still
//! resolve (RFC 4271 §9.1.2, review finding 2).

use tern_testkit::inproc::*;

#[test]
fn a_dual_homed_host_keeps_the_route_via_the_surviving_uplink() {
    let node = Node::start(&format!(
        "{}{}",
        ebgp_peer("tor1", "127.0.0.2", 65001),
        ebgp_peer("tor2", "127.0.0.3", 65001)
    ));
    node.kernel.add_link("eth1");
    node.kernel.add_addr("eth1", "192.168.2.11/24".parse().unwrap());
    let mut tor1 = node.connect("127.0.0.2", 65001).expect("tor1");
    let mut tor2 = node.connect("127.0.0.3", 65001).expect("tor2");
    tor1.announce(&[net("10.244.9.0/26")], "192.168.1.1".parse().unwrap(), vec![65001])
        .expect("announce");
    tor2.announce(&[net("10.244.9.0/26")], "192.168.2.1".parse().unwrap(), vec![65001])
        .expect("announce");
    let both = vec!["192.168.1.1".parse().unwrap(), "192.168.2.1".parse().unwrap()];
    node.wait_until("one multipath route via both", || {
        node.kernel_gateways("10.244.9.0/26") == Some(both.clone())
    });
    node.kernel.set_up("eth1", false);
    node.wait_until("the route stays via tor1", || {
        node.kernel_gateways("10.244.9.0/26") == Some(vec!["192.168.1.1".parse().unwrap()])
    });
    node.kernel.set_up("eth1", true);
    node.wait_until("multipath again", || {
        node.kernel_gateways("10.244.9.0/26") == Some(both.clone())
    });
}
