//! Issue 13: BFD against real neighbours in network namespaces. FRR's
//! `bfdd` (IPv4 and IPv6) and BIRD 2's `protocol bfd` bring sessions Up with ternd; and the
//! failover proof: two BIRD routers on one switch announce the same block,
//! ternd installs it via both, one router's switch port goes down (the
//! host's own link stays up), and with 100 ms × 3 the route drops that next
//! hop within a second and keeps the other; a pod on the host still reaches the block.
//!
//! ```text
//!   h1 192.168.1.11 ternd ──┐
//!   h2 192.168.1.12 ────────┼── sw: br1 (ports h1, h2, h3)
//!   h3 192.168.1.13 ────────┘
//! ```
//!
//! Needs root, bird2 and frr (skips otherwise).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_testkit::*;

const TOR_ASN: u32 = 65001;
const BLOCK: &str = "10.244.9.0/26";
/// An address in [`BLOCK`] that both routers answer for.
const ANYCAST: Ipv4Addr = Ipv4Addr::new(10, 244, 9, 1);

/// ternd with eBGP (to `TOR_ASN`) and `bfd = true` to each of `peers`,
/// `[bfd]` at 100 ms × 3.
fn ternd_config(me: Ipv4Addr, peers: &[Ipv4Addr]) -> String {
    let peers: Vec<(Ipv4Addr, u32, &str)> = peers.iter().map(|&p| (p, TOR_ASN, "bfd = true")).collect();
    let mut s = ternd_config_with_peers(me, "", "10.244.1.0/26", &peers);
    s.push_str("\n[bfd]\nmin_rx_ms = 100\nmin_tx_ms = 100\nmultiplier = 3\n");
    s
}

/// BIRD 2 as a router announcing [`BLOCK`] over eBGP with `bfd on`, its BFD
/// at 100 ms × 3 on eth0.
fn bird_router_config(me: Ipv4Addr, host: Ipv4Addr) -> String {
    let base = bird_originating(me, BLOCK);
    format!(
        r#"{base}protocol bfd {{
  interface "eth0" {{
    min rx interval 100 ms;
    min tx interval 100 ms;
    multiplier 3;
  }};
}}
protocol bgp host {{
  local {me} as {TOR_ASN};
  neighbor {host} as {ASN};
  direct;
  bfd on;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }};
}}
"#
    )
}

/// ternd's BFD sessions (`show bfd --json`).
fn bfd_sessions(tern: &Ternd) -> Vec<Value> {
    match tern.try_show("bfd") {
        Some(Value::Array(v)) => v,
        _ => Vec::new(),
    }
}

fn bfd_state(tern: &Ternd, remote: &str) -> Option<String> {
    bfd_sessions(tern)
        .into_iter()
        .find(|s| s["remote"] == remote)
        .and_then(|s| s["state"].as_str().map(str::to_string))
}

/// The gateways of `prefix` in `host`'s kernel, sorted (one, or a multipath route's).
fn gateways(host: &Host, prefix: &str) -> Vec<String> {
    let routes = host.routes(prefix);
    let Some(r) = find(&routes, prefix) else {
        return Vec::new();
    };
    let mut out: Vec<String> = match r.nexthops.is_empty() {
        true => r.gateway.clone().into_iter().collect(),
        false => r.nexthops.iter().filter_map(|n| n.gateway.clone()).collect(),
    };
    out.sort();
    out
}

#[test]
fn bfd_comes_up_with_frr_bfdd() {
    if !require("bfd_comes_up_with_frr_bfdd", &["vtysh"]) {
        return;
    }
    if !have_bfdd() {
        println!("skipped: bfd_comes_up_with_frr_bfdd: {BFDD} not installed (Debian package frr)");
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    // IPv6 too: fd00:77::11 and ::12 on the same segment.
    h1.ns.ip("addr add fd00:77::11/64 dev eth0 nodad");
    h2.ns.ip("addr add fd00:77::12/64 dev eth0 nodad");
    let (a1, a2) = (h1.addr.to_string(), h2.addr.to_string());
    let (v6_1, v6_2) = ("fd00:77::11", "fd00:77::12");
    let peers = [(h2.addr, TOR_ASN, "bfd = true")];
    let mut config = ternd_config_with_peers(h1.addr, "", "10.244.1.0/26", &peers);
    config.push_str(&format!(
        "\n[[peer]]\naddress = \"{v6_2}\"\nasn = {TOR_ASN}\nbfd = true\n"
    ));
    config.push_str("\n[bfd]\nmin_rx_ms = 100\nmin_tx_ms = 100\nmultiplier = 3\n");
    let tern = Ternd::start(&h1.ns, &config);
    let bfdd = Bfdd::start(&h2.ns, &bfdd_config(&[(&a1, &a2), (v6_1, v6_2)], 100, 3));
    let took = wait_until_diag(
        Duration::from_secs(15),
        "BFD Up on both ends (ternd and FRR bfdd), IPv4 and IPv6",
        || {
            [&a2, v6_2].iter().all(|r| bfd_state(&tern, r).as_deref() == Some("Up"))
                && [&a1, v6_1].iter().all(|p| bfdd.peer_status(p).as_deref() == Some("up"))
        },
        || {
            format!(
                "{:?}\n{}",
                bfd_sessions(&tern),
                bfdd.vtysh("show bfd peers").unwrap_or_default()
            )
        },
    );
    println!("ternd <-> FRR bfdd: Up after {took:?}");
    let table = tern.ternctl(&["show", "bfd"]).expect("ternctl show bfd");
    println!("{table}");
    assert!(
        table.starts_with("PEER") && table.lines().filter(|l| l.contains(" Up ")).count() == 2,
        "{table}"
    );
    let peers = tern.ternctl(&["show", "peers"]).expect("ternctl show peers");
    assert!(peers.lines().next().is_some_and(|h| h.contains("BFD")), "{peers}");
    let s = bfd_sessions(&tern)
        .into_iter()
        .find(|s| s["remote"] == a2)
        .expect("IPv4 session");
    assert_eq!(
        (s["tx_interval_us"].as_u64(), s["detection_time_us"].as_u64()),
        (Some(100_000), Some(300_000)),
        "{s}"
    );
    assert_eq!(s["multihop"], false);
    // bfdd stops: its AdminDown (RFC 5882 §3.2) or its silence takes ours down.
    drop(bfdd);
    wait_until(Duration::from_secs(5), "ternd's sessions leave Up", || {
        [&a2, v6_2].iter().all(|r| bfd_state(&tern, r).as_deref() != Some("Up"))
    });
}

#[test]
fn bfd_failover_drops_a_dead_routers_next_hop_within_a_second() {
    if !require(
        "bfd_failover_drops_a_dead_routers_next_hop_within_a_second",
        &["bird", "birdc"],
    ) {
        return;
    }
    let topo = Topology::single_segment(3);
    let (h1, h2, h3) = (topo.host(1), topo.host(2), topo.host(3));
    // A pod on the ternd host; both routers answer for 10.244.9.1 (anycast)
    // and route the host's pod block back to it.
    let pod = h1.add_pod(0);
    for r in [h2, h3] {
        r.ns.ip(&format!("addr add {ANYCAST}/32 dev lo"));
        r.ns.ip(&format!("route add 10.244.1.0/26 via {}", h1.addr));
    }
    let tern = Ternd::start(&h1.ns, &ternd_config(h1.addr, &[h2.addr, h3.addr]));
    let bird2 = Bird::start(&h2.ns, &bird_router_config(h2.addr, h1.addr));
    let bird3 = Bird::start(&h3.ns, &bird_router_config(h3.addr, h1.addr));
    let both = vec![h2.addr.to_string(), h3.addr.to_string()];
    wait_until_diag(
        Duration::from_secs(30),
        "a multipath route via both routers and BFD Up with both BIRDs",
        || {
            gateways(h1, BLOCK) == both
                && both.iter().all(|r| bfd_state(&tern, r).as_deref() == Some("Up"))
                && [&bird2, &bird3].iter().all(|b| {
                    b.try_birdc("show bfd sessions")
                        .is_ok_and(|s| s.lines().any(|l| l.contains(&h1.addr.to_string()) && l.contains("Up")))
                })
        },
        || {
            format!(
                "{}\n{:?}\n{:?}",
                tern.peers_summary(),
                bfd_sessions(&tern),
                gateways(h1, BLOCK)
            )
        },
    );
    println!("BIRD sessions:\n{}", bird2.birdc("show bfd sessions"));
    pod.ping(ANYCAST)
        .unwrap_or_else(|e| panic!("pod cannot reach {ANYCAST}: {e}"));

    // h2 vanishes from the switch; the host's eth0 stays up, so only BFD can tell.
    let down = Instant::now();
    topo.switch.ip("link set h2 down");
    let deadline = down + Duration::from_secs(10);
    let only_h3 = vec![h3.addr.to_string()];
    loop {
        let gw = gateways(h1, BLOCK);
        if gw == only_h3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {gw:?} after 10 s\n{}",
            tern.peers_summary()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = down.elapsed();
    println!("failover: {BLOCK} lost {} after {took:?}, kept {}", h2.addr, h3.addr);
    assert!(took < Duration::from_secs(1), "took {took:?} (100 ms × 3 detection)");
    let s = bfd_sessions(&tern)
        .into_iter()
        .find(|s| s["remote"] == h2.addr.to_string())
        .expect("h2's session");
    assert_eq!(s["state"], "Down");
    assert_eq!(s["diagnostic"], "control detection time expired");
    assert_eq!(bfd_state(&tern, &h3.addr.to_string()).as_deref(), Some("Up"));
    // The pod still reaches the block, through the router that is left.
    pod.ping(ANYCAST)
        .unwrap_or_else(|e| panic!("pod cannot reach {ANYCAST} after the failover: {e}"));
}
