//! Dual stack: ternd and BIRD 2 peering over IPv6 (MP-BGP, RFC 4760) with
//! IPv4 and IPv6 families, each originating an IPv6 /64 and an IPv4 /26 pod
//! block; the IPv6 blocks must reach both kernels via the other host's
//! IPv6 address. Needs root and bird2 (skips otherwise).
//!
//! The IPv6 allowed prefix is fd00:244::/32: fd00:244::/48 would not contain
//! fd00:244:1::/64 (the third group is inside the /48's fixed bits), and ternd
//! rightly refuses blocks outside allowed_prefixes.

use std::time::Duration;

use tern_testkit::*;

const TERN6: &str = "fd00:1::11";
const BIRD6: &str = "fd00:1::12";

/// `ip -6 -j route show proto bird` of a namespace, parsed.
fn routes6(ns: &Netns) -> Vec<KernelRoute> {
    parse_routes(&ns.ip("-6 -j route show proto bird"))
}

fn ternd_config(block4: &str, block6: &str) -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "192.168.1.11"
listen = ["0.0.0.0:179", "[::]:179"]
connect_retry_time = 1

[kernel]
allowed_prefixes = ["10.244.0.0/16", "fd00:244::/32"]

[[originate]]
prefix = "{block4}"

[[originate]]
prefix = "{block6}"

[[peer]]
address = "{BIRD6}"
asn = {ASN}
families = ["ipv4", "ipv6"]
"#
    )
}

fn bird_config(block4: &str, block6: &str) -> String {
    format!(
        r#"router id 192.168.1.12;
protocol device {{ scan time 2; }}
protocol static s4 {{ ipv4; route {block4} blackhole; }}
protocol static s6 {{ ipv6; route {block6} blackhole; route fd00:999::/64 blackhole; }}
protocol kernel k4 {{ ipv4 {{ export where source = RTS_BGP; }}; scan time 2; }}
protocol kernel k6 {{ ipv6 {{ export where source = RTS_BGP; }}; scan time 2; }}
protocol bgp T {{
  local {BIRD6} as {ASN};
  neighbor {TERN6} as {ASN};
  direct;
  passive on;
  ipv4 {{ import all; export all; next hop address 192.168.1.12; }};
  ipv6 {{ import all; export all; next hop self; }};
}}
"#
    )
}

/// IPv6 addresses on both hosts, ternd on host 1 and BIRD (`bird_conf`) on
/// host 2, waiting until their IPv6 session is up.
fn ipv6_session(h1: &Host, h2: &Host, bird_conf: &str) -> (Ternd, Bird) {
    for (h, a) in [(h1, TERN6), (h2, BIRD6)] {
        h.ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        h.ns.ip(&format!("-6 addr add {a}/64 dev eth0 nodad"));
    }
    let tern = Ternd::start(&h1.ns, &ternd_config("10.244.1.0/26", "fd00:244:1::/64"));
    let bird = Bird::start(&h2.ns, bird_conf);
    wait_until_diag(
        Duration::from_secs(30),
        "the IPv6 session Established on both sides",
        || tern.established() == 1 && bird.established("T"),
        || format!("{}\n{}", tern.peers_summary(), tern.log_tail(20)),
    );
    (tern, bird)
}

#[test]
fn ipv6_blocks_over_an_ipv6_session_with_bird() {
    let test = "ipv6_blocks_over_an_ipv6_session_with_bird";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let (tern, bird) = ipv6_session(h1, h2, &bird_config("10.244.2.0/26", "fd00:244:2::/64"));
    let peer = tern.peer(BIRD6).expect("peer listed");
    println!("ternd's view of the session: {peer}");
    let families: Vec<String> = peer["families"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_str().map(String::from))
        .collect();
    assert!(
        families.iter().any(|f| f.contains("ipv6")) && families.iter().any(|f| f.contains("ipv4")),
        "both families negotiated: {families:?}"
    );

    // ternd's kernel: BIRD's IPv6 block via BIRD's IPv6 address.
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installing fd00:244:2::/64 via fd00:1::12",
        || find(&routes6(&h1.ns), "fd00:244:2::/64").is_some_and(|r| r.gateway.as_deref() == Some(BIRD6)),
        || {
            format!(
                "{}\n{}\n{}",
                h1.ns.ip("-6 route show"),
                serde_json::to_string(&tern.show("routes")).unwrap_or_default(),
                tern.log_tail(20)
            )
        },
    );
    let r = find(&routes6(&h1.ns), "fd00:244:2::/64").cloned().expect("route");
    assert!(
        find(&routes6(&h1.ns), "fd00:999::/64").is_none(),
        "fd00:999::/64 (outside allowed_prefixes) installed:\n{}",
        h1.ns.ip("-6 route show")
    );
    assert_eq!((r.dev.as_deref(), r.metric), (Some("eth0"), Some(32)), "{r:?}");
    let own = find(&routes6(&h1.ns), "fd00:244:1::/64").cloned();
    assert!(
        own.as_ref().is_some_and(|o| o.kind == "blackhole"),
        "own IPv6 block blackhole: {own:?}"
    );

    // BIRD's kernel: ternd's IPv6 block via ternd's IPv6 address (next hop self).
    wait_until_diag(
        Duration::from_secs(30),
        "BIRD installing fd00:244:1::/64 via fd00:1::11",
        || find(&routes6(&h2.ns), "fd00:244:1::/64").is_some_and(|r| r.gateway.as_deref() == Some(TERN6)),
        || format!("{}\n{}", h2.ns.ip("-6 route show"), bird.birdc("show route all")),
    );
    let text = bird.birdc("show route fd00:244:1::/64 all");
    assert!(text.contains(&format!("BGP.next_hop: {TERN6}")), "BIRD's view:\n{text}");

    // The IPv4 blocks over the same IPv6 session: BIRD sends 10.244.2.0/26 with
    // the IPv4 next hop it was told to use; ternd has no IPv4 address on this
    // session, so it cannot be the next hop of its own IPv4 block.
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installing BIRD's IPv4 block via 192.168.1.12",
        || {
            find(&h1.routes("proto bird"), "10.244.2.0/26")
                .is_some_and(|r| r.gateway.as_deref() == Some("192.168.1.12"))
        },
        || format!("{}\n{}", show(&h1.routes("")), bird.birdc("show route all")),
    );
    // Without RFC 8950 on BIRD's side, ternd has no IPv4 next hop to offer on
    // an IPv6 session: its own IPv4 block is not announced there (see the
    // extended next hop test below for the case where it is negotiated).
    let sent = tern.peer(BIRD6).map(|p| p["advertised"].clone());
    println!("ternd advertised {sent:?} prefixes over the IPv6 session");
}

/// RFC 8950: with extended next hop negotiated on the IPv6 session, IPv4
/// blocks travel with IPv6 next hops both ways and are installed as
/// `via inet6 …` routes in both kernels.
#[test]
fn ipv4_blocks_over_ipv6_next_hops_with_bird() {
    let test = "ipv4_blocks_over_ipv6_next_hops_with_bird";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let bird_conf = bird_config("10.244.2.0/26", "fd00:244:2::/64").replace(
        "ipv4 { import all; export all; next hop address 192.168.1.12; };",
        "ipv4 { import all; export all; extended next hop on; next hop self; };",
    );
    assert!(
        bird_conf.contains("extended next hop on"),
        "config rewrite failed:\n{bird_conf}"
    );
    let (tern, bird) = ipv6_session(h1, h2, &bird_conf);
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installing 10.244.2.0/26 via inet6 fd00:1::12",
        || {
            h1.ns
                .ip("-4 route show 10.244.2.0/26")
                .contains(&format!("via inet6 {BIRD6} dev eth0"))
        },
        || format!("{}\n{}", h1.ns.ip("-4 route show"), tern.log_tail(20)),
    );
    wait_until_diag(
        Duration::from_secs(30),
        "BIRD installing 10.244.1.0/26 via inet6 fd00:1::11",
        || {
            h2.ns
                .ip("-4 route show 10.244.1.0/26")
                .contains(&format!("via inet6 {TERN6}"))
        },
        || format!("{}\n{}", h2.ns.ip("-4 route show"), bird.birdc("show route all")),
    );
    let text = bird.birdc("show route 10.244.1.0/26 all");
    assert!(text.contains(&format!("BGP.next_hop: {TERN6}")), "BIRD's view:\n{text}");
}

/// Review finding 15a with a real peer: BIRD announces its IPv6 block with
/// its link-local address as the only next hop (set by its export filter);
/// ternd installs it `via fe80::12 dev eth0`, the link it shares with BIRD
/// (before the fix: "link-local gateway fe80::12 needs a device", not installed).
#[test]
fn a_link_local_next_hop_from_bird_is_installed_on_the_shared_link() {
    let test = "a_link_local_next_hop_from_bird_is_installed_on_the_shared_link";
    if !require(test, &["bird", "birdc"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    h2.ns.ip("-6 addr add fe80::12/64 dev eth0 nodad");
    let bird_conf = bird_config("10.244.2.0/26", "fd00:244:2::/64").replace(
        "ipv6 { import all; export all; next hop self; };",
        "ipv6 { import all; export filter { if net = fd00:244:2::/64 then bgp_next_hop = fe80::12; accept; }; };",
    );
    assert!(bird_conf.contains("fe80::12"), "config rewrite failed:\n{bird_conf}");
    let (tern, bird) = ipv6_session(h1, h2, &bird_conf);
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installing fd00:244:2::/64 via fe80::12 dev eth0",
        || {
            h1.ns
                .ip("-6 route show fd00:244:2::/64")
                .contains("via fe80::12 dev eth0 proto bird")
        },
        || {
            format!(
                "{}\n{}\n{}\n{}",
                h1.ns.ip("-6 route show"),
                serde_json::to_string(&tern.show("routes")).unwrap_or_default(),
                bird.birdc("show route export T all"),
                tern.log_tail(20)
            )
        },
    );
}
