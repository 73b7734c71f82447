//! Recursive next hops against a real peer (review finding 18; BIRD's
//! `gateway recursive`, which Calico's templates use): BIRD in another subnet
//! peers iBGP multihop with ternd and announces a block with its own address
//! as next hop. ternd installs it via the gateway of the static route that
//! reaches BIRD, follows that route when it changes, and lets it go when the
//! static route goes. Needs root and bird2 (skips otherwise).
//!
//! ```text
//!   host: ternd AS 64512, eth0 172.16.1.1/29, static 10.0.5.0/24 via .2 (then .3)
//!     |
//!   router: eth0 172.16.1.2/29 + 172.16.1.3/29, eth1 10.0.5.254/24
//!     |
//!   far: BIRD AS 64512, eth0 10.0.5.12/24, default via 10.0.5.254
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use tern_testkit::*;

const HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
const FAR: Ipv4Addr = Ipv4Addr::new(10, 0, 5, 12);
/// What BIRD announces, next hop itself.
const BLOCK: &str = "10.244.9.0/26";

/// BIRD as Calico configures an iBGP peer, multihop, exporting [`BLOCK`].
fn far_bird_config() -> String {
    format!(
        r#"router id {FAR};
protocol device {{ scan time 2; }}
protocol static {{
  ipv4;
  route {BLOCK} blackhole;
}}
protocol bgp host {{
  local {FAR} as {ASN};
  neighbor {HOST} as {ASN};
  multihop;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }};
}}
"#
    )
}

fn host_config() -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{HOST}"
listen = ["0.0.0.0:179"]
connect_retry_time = 1

[kernel]
ipip = "never"
allowed_prefixes = ["10.244.0.0/16"]

[[peer]]
name = "far"
address = "{FAR}"
asn = {ASN}
families = ["ipv4"]
"#
    )
}

/// The gateway and device of ternd's route for [`BLOCK`], if any.
fn installed(host: &Host) -> Option<(Option<String>, Option<String>)> {
    find(&host.routes("proto bird"), BLOCK).map(|r| (r.gateway.clone(), r.dev.clone()))
}

#[test]
fn a_multihop_ibgp_route_is_installed_via_the_static_routes_gateway_and_follows_it() {
    let test = "a_multihop_ibgp_route_is_installed_via_the_static_routes_gateway_and_follows_it";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let host_ns = Netns::new("rh");
    let router = Netns::new("rr");
    let far = Netns::new("rf");
    veth(&host_ns, "eth0", &router, "eth0");
    veth(&router, "eth1", &far, "eth0");
    host_ns.ip(&format!("addr add {HOST}/29 dev eth0"));
    router.ip("addr add 172.16.1.2/29 dev eth0");
    router.ip("addr add 172.16.1.3/29 dev eth0");
    router.ip("addr add 10.0.5.254/24 dev eth1");
    far.ip(&format!("addr add {FAR}/24 dev eth0"));
    for (ns, devs) in [
        (&host_ns, &["eth0"][..]),
        (&router, &["eth0", "eth1"][..]),
        (&far, &["eth0"][..]),
    ] {
        for dev in devs {
            ns.ip(&format!("link set {dev} up"));
        }
    }
    router.sysctl("net.ipv4.ip_forward", "1");
    far.ip("route add default via 10.0.5.254");
    host_ns.ip("route add 10.0.5.0/24 via 172.16.1.2 proto static");
    let host = Host {
        ns: host_ns,
        index: 1,
        subnet: 0,
        addr: HOST,
    };
    let _bird = Bird::start(&far, &far_bird_config());
    let tern = Ternd::start(&host.ns, &host_config());
    let diag = || {
        format!(
            "{}\n{}\n{}",
            show(&host.routes("")),
            tern.peers_summary(),
            tern.log_tail(20)
        )
    };
    let via = |gw: &str| Some((Some(gw.to_string()), Some("eth0".to_string())));

    let took = wait_until_diag(
        Duration::from_secs(20),
        "the block installed via the static route's gateway",
        || installed(&host) == via("172.16.1.2"),
        diag,
    );
    println!("installed via 172.16.1.2 after {took:?}");

    host.ns.ip("route replace 10.0.5.0/24 via 172.16.1.3 proto static");
    let took = wait_until_diag(
        Duration::from_secs(5),
        "the block moved with the static route",
        || installed(&host) == via("172.16.1.3"),
        diag,
    );
    println!("moved to 172.16.1.3 after {took:?}");

    host.ns.ip("route del 10.0.5.0/24");
    let took = wait_until_diag(
        Duration::from_secs(5),
        "the block gone with the static route",
        || installed(&host).is_none(),
        diag,
    );
    println!("removed {took:?} after the static route went");
}
