//! ternd in one iBGP mesh (AS 64512) with real BIRD 2 and GoBGP peers, all in
//! network namespaces on one L2 segment, configured the way Calico configures
//! BIRD. Needs root, bird2 and gobgpd (skips otherwise).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tern_testkit::*;

const TERN_ADDR: &str = "192.168.1.11";
const BIRD_ADDR: &str = "192.168.1.12";
const GOBGP_ADDR: &str = "192.168.1.13";

/// True when `gobgp global rib -a ipv4` text shows `prefix` with next hop `nh`.
fn gobgp_has(rib: &str, prefix: &str, nh: &str) -> bool {
    rib.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.contains(&prefix) && words.contains(&nh)
    })
}

#[test]
fn ternd_bird_gobgp_mixed_mesh() {
    if !require(
        "ternd_bird_gobgp_mixed_mesh",
        &["bird", "birdc", "gobgpd", "gobgp", "ping"],
    ) {
        return;
    }
    let topo = Topology::single_segment(3);
    let (h1, h2, h3) = (topo.host(1), topo.host(2), topo.host(3));
    let pod1 = h1.add_pod(0);
    let pod2 = h2.add_pod(0);
    let addr = |s: &str| -> Ipv4Addr { s.parse().expect("address") };

    let start = Instant::now();
    // ternd (.11) is the lowest address: it connects to both others.
    let tern = Ternd::start(
        &h1.ns,
        &ternd_mesh_config(
            h1.addr,
            &[addr(BIRD_ADDR), addr(GOBGP_ADDR)],
            "10.244.1.0/26",
            "never",
            90,
            "",
        ),
    );
    // BIRD (.12): passive toward .11, active toward .13.
    let bird = Bird::start(
        &h2.ns,
        &bird_mesh_config(h2.addr, &[addr(TERN_ADDR), addr(GOBGP_ADDR)], "10.244.2.0/26"),
    );
    // GoBGP (.13): passive toward both.
    let gobgp = Gobgp::start(&h3.ns, &gobgp_mesh_config(h3.addr, &[addr(TERN_ADDR), addr(BIRD_ADDR)]));
    gobgp.gobgp(&[
        "global",
        "rib",
        "add",
        "10.244.3.0/26",
        "-a",
        "ipv4",
        "nexthop",
        GOBGP_ADDR,
    ]);

    wait_until_diag(
        Duration::from_secs(60),
        "all six session ends Established",
        || {
            tern.established() == 2
                && bird.established("Mesh_192_168_1_11")
                && bird.established("Mesh_192_168_1_13")
                && gobgp.established(TERN_ADDR)
                && gobgp.established(BIRD_ADDR)
        },
        || tern.peers_summary(),
    );
    println!(
        "mixed mesh: all sessions Established {:?} after ternd started",
        start.elapsed()
    );
    for p in tern.peers() {
        assert_eq!(p["state"], "Established", "{p}");
        assert_eq!(p["asn"], ASN, "{p}");
    }

    // ternd's kernel: BIRD's and GoBGP's blocks via their addresses.
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installing 10.244.2.0/26 via .12 and 10.244.3.0/26 via .13",
        || {
            let r = h1.routes("proto bird");
            find(&r, "10.244.2.0/26").is_some_and(|x| x.gateway.as_deref() == Some(BIRD_ADDR))
                && find(&r, "10.244.3.0/26").is_some_and(|x| x.gateway.as_deref() == Some(GOBGP_ADDR))
        },
        || show(&h1.routes("")),
    );
    let r = h1.routes("proto bird");
    for (block, nh) in [("10.244.2.0/26", BIRD_ADDR), ("10.244.3.0/26", GOBGP_ADDR)] {
        let x = find(&r, block).expect("route");
        assert_eq!(
            (x.kind.as_str(), x.dev.as_deref(), x.metric),
            ("unicast", Some("eth0"), Some(32)),
            "{block} via {nh}: {x:?}"
        );
    }
    let own = find(&r, "10.244.1.0/26").expect("own blackhole");
    assert_eq!(own.kind, "blackhole", "{own:?}");

    // BIRD's kernel: ternd's block via .11, installed by BIRD as proto bird.
    wait_until_diag(
        Duration::from_secs(30),
        "BIRD installing 10.244.1.0/26 via .11",
        || find(&h2.routes("proto bird"), "10.244.1.0/26").is_some_and(|x| x.gateway.as_deref() == Some(TERN_ADDR)),
        || format!("{}\n{}", show(&h2.routes("")), bird.birdc("show route all")),
    );
    let bird_route = bird.birdc("show route 10.244.1.0/26 all");
    assert!(
        bird_route.contains("Mesh_192_168_1_11") && bird_route.contains("BGP.local_pref: 100"),
        "BIRD's view of ternd's route:\n{bird_route}"
    );

    // GoBGP's RIB: ternd's block with ternd as next hop.
    wait_until_diag(
        Duration::from_secs(30),
        "GoBGP RIB holding 10.244.1.0/26 via .11",
        || {
            gobgp
                .try_gobgp(&["global", "rib", "-a", "ipv4"])
                .is_ok_and(|rib| gobgp_has(&rib, "10.244.1.0/26", TERN_ADDR))
        },
        || gobgp.gobgp(&["global", "rib", "-a", "ipv4"]),
    );
    println!("mixed mesh: start to all routes everywhere: {:?}", start.elapsed());

    // Traffic: ternd-routed host <-> BIRD-routed host.
    for (from, to) in [(&pod1, &pod2), (&pod2, &pod1)] {
        let out = from
            .ping(to.addr)
            .unwrap_or_else(|e| panic!("pod {} -> {}: {e}", from.addr, to.addr));
        assert!(out.contains("1 received"), "{out}");
    }

    // A withdrawal from GoBGP reaches ternd's kernel.
    gobgp.gobgp(&["global", "rib", "del", "10.244.3.0/26", "-a", "ipv4"]);
    wait_until_diag(
        Duration::from_secs(30),
        "ternd removing 10.244.3.0/26 after GoBGP withdrew it",
        || find(&h1.routes("proto bird"), "10.244.3.0/26").is_none(),
        || show(&h1.routes("")),
    );
}
