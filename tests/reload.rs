//! SIGHUP reload: originated prefixes are added and withdrawn without
//! resetting the sessions; a broken file on reload changes nothing. Needs root.

use std::time::Duration;

use tern_testkit::*;

fn has_route(host: &Host, dst: &str) -> bool {
    find(&host.routes("proto bird"), dst).is_some()
}

#[test]
fn sighup_changes_originated_prefixes_without_session_reset() {
    if !require("sighup_changes_originated_prefixes_without_session_reset", &[]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let base1 = ternd_mesh_config(h1.addr, &[h2.addr], &h1.block(), "never", 90, "");
    let t1 = Ternd::start(&h1.ns, &base1);
    let t2 = Ternd::start(
        &h2.ns,
        &ternd_mesh_config(h2.addr, &[h1.addr], &h2.block(), "never", 90, ""),
    );
    wait_until(Duration::from_secs(20), "h2 learns h1's block", || {
        has_route(h2, &h1.block())
    });
    let since = |t: &Ternd| t.peers()[0]["since_unix"].clone();
    let (s1, s2) = (since(&t1), since(&t2));
    assert_eq!(t2.peers()[0]["state"], "Established");

    // Add a second block.
    let added = format!("{base1}\n[[originate]]\nprefix = \"10.244.11.0/26\"\n");
    std::fs::write(
        &t1.config,
        format!("{added}\n[control]\nsocket = \"{}\"\n", t1.socket.display()),
    )
    .unwrap();
    signal(t1.pid().unwrap(), "HUP");
    wait_until(Duration::from_secs(10), "h2 learns the added block", || {
        has_route(h2, "10.244.11.0/26")
    });
    assert!(has_route(h1, "10.244.11.0/26"), "h1 blackholes its new block");

    // Withdraw the first block.
    let only_new = added.replace(&format!("[[originate]]\nprefix = \"{}\"\n", h1.block()), "");
    assert_ne!(only_new, added, "the test must really remove a block");
    std::fs::write(
        &t1.config,
        format!("{only_new}\n[control]\nsocket = \"{}\"\n", t1.socket.display()),
    )
    .unwrap();
    signal(t1.pid().unwrap(), "HUP");
    wait_until(Duration::from_secs(10), "h2 drops the removed block", || {
        !has_route(h2, &h1.block())
    });
    wait_until(Duration::from_secs(10), "h1 removes its blackhole", || {
        !has_route(h1, &h1.block())
    });

    // A broken file: logged, nothing changes.
    std::fs::write(&t1.config, "[bgp]\nasn = \"not a number\"\n").unwrap();
    signal(t1.pid().unwrap(), "HUP");
    wait_until(Duration::from_secs(10), "the reload error is logged", || {
        t1.log_text().contains("reload failed")
    });
    assert!(has_route(h2, "10.244.11.0/26"));

    // Sessions never reset.
    assert_eq!(t2.peers()[0]["state"], "Established");
    assert_eq!((since(&t1), since(&t2)), (s1, s2), "sessions were reset by the reload");
}

#[test]
fn disabling_a_peer_on_reload_sends_the_shutdown_message() {
    if !require("disabling_a_peer_on_reload_sends_the_shutdown_message", &[]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let peer = |enabled: bool| {
        format!(
            "[[peer]]\nname = \"Node_2\"\naddress = \"{}\"\nasn = 64512\nenabled = {enabled}\nshutdown_message = \"maintenance window\"\n",
            h2.addr
        )
    };
    let conf = |enabled: bool| {
        ternd_mesh_config(h1.addr, &[], &h1.block(), "never", 90, "").replace("[mesh]\npeers = []\n", "")
            + &peer(enabled)
    };
    let t1 = Ternd::start(&h1.ns, &conf(true));
    let t2 = Ternd::start(
        &h2.ns,
        &ternd_mesh_config(h2.addr, &[h1.addr], &h2.block(), "never", 90, ""),
    );
    wait_until(Duration::from_secs(20), "session up", || t2.established() == 1);
    std::fs::write(
        &t1.config,
        format!("{}\n[control]\nsocket = \"{}\"\n", conf(false), t1.socket.display()),
    )
    .unwrap();
    signal(t1.pid().unwrap(), "HUP");
    wait_until(Duration::from_secs(10), "h2 hears the shutdown communication", || {
        t2.peers()[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("maintenance window"))
    });
    assert!(t1.peers().is_empty(), "the disabled peer is gone from h1");
}

/// The peer keys that switch to [`SOFT_RECONFIG_POLICIES`].
const NEW_POLICIES: &str = "import = [\"no-3\"]\nexport = [\"med10\"]";

/// Writes `conf` as ternd's file and runs `ternctl reload`, which must report
/// the peer reconfigured (not restarted).
fn reload_to_soft_policies(t1: &Ternd, conf: &str) {
    std::fs::write(
        &t1.config,
        format!("{conf}\n[control]\nsocket = \"{}\"\n", t1.socket.display()),
    )
    .unwrap();
    let report = t1.ternctl(&["reload"]).expect("ternctl reload");
    println!("{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("peers reconfigured") && l.contains("Peer_")),
        "{report}"
    );
}

/// The peer's 10.244.3.0/26 leaves h1's kernel (asked for again with
/// ROUTE-REFRESH and rejected by the new import); 10.244.2.0/26 stays.
fn expect_the_new_import(h1: &Host, t1: &Ternd) {
    wait_until_diag(
        Duration::from_secs(10),
        "10.244.3.0/26 leaves ternd's kernel (ROUTE-REFRESH under the new import)",
        || !has_route(h1, "10.244.3.0/26"),
        || t1.log_tail(20),
    );
    assert!(has_route(h1, "10.244.2.0/26"), "the other block stays");
}

#[test]
fn reload_with_new_policies_keeps_the_bird_session_and_re_evaluates_both_ways() {
    if !require(
        "reload_with_new_policies_keeps_the_bird_session_and_re_evaluates_both_ways",
        &["bird", "birdc"],
    ) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let conf = |peer_keys: &str| {
        ternd_peers_config(h1.addr, "", &h1.block(), &[(h2.addr, peer_keys)]) + SOFT_RECONFIG_POLICIES
    };
    let t1 = Ternd::start(&h1.ns, &conf(""));
    let bird_conf = bird_mesh_config(h2.addr, &[h1.addr], "10.244.2.0/26").replace(
        "route 10.244.2.0/26 blackhole;",
        "route 10.244.2.0/26 blackhole;\n  route 10.244.3.0/26 blackhole;",
    );
    let bird = Bird::start(&h2.ns, &bird_conf);
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installs both of BIRD's blocks and BIRD has ternd's",
        || has_route(h1, "10.244.2.0/26") && has_route(h1, "10.244.3.0/26") && has_route(h2, &h1.block()),
        || t1.peers_summary(),
    );
    let since = t1.peers()[0]["since_unix"].clone();
    let bird_since = bird_protocol_since(&bird);

    reload_to_soft_policies(&t1, &conf(NEW_POLICIES));
    expect_the_new_import(h1, &t1);
    let block = h1.block();
    wait_until_diag(
        Duration::from_secs(10),
        "BIRD sees ternd's block with MED 10 (the new export)",
        || bird.birdc(&format!("show route {block} all")).contains("BGP.med: 10"),
        || bird.birdc(&format!("show route {block} all")),
    );
    assert_eq!(t1.peers()[0]["since_unix"], since, "ternd's session was reset");
    assert_eq!(bird_protocol_since(&bird), bird_since, "BIRD's session was reset");
}

/// The "Since" column of BIRD's BGP protocol (its last state change).
fn bird_protocol_since(bird: &Bird) -> String {
    let out = bird.birdc("show protocols");
    let line = out
        .lines()
        .find(|l| l.starts_with("Mesh_"))
        .unwrap_or_else(|| panic!("no BGP protocol in {out}"));
    assert!(line.contains("Established"), "{line}");
    line.split_whitespace().nth(4).unwrap_or_default().to_string()
}

/// The `uptime` GoBGP records for its session with `addr` (when it last
/// became Established): unchanged means the session was not reset.
fn gobgp_session_uptime(gobgp: &Gobgp, addr: &str) -> serde_json::Value {
    let out = gobgp.gobgp(&["neighbor", addr, "-j"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let uptime = v["timers"]["state"]["uptime"].clone();
    assert!(!uptime.is_null(), "no uptime in {out}");
    uptime
}

#[test]
fn reload_with_new_policies_keeps_the_gobgp_session_and_re_evaluates_both_ways() {
    if !require(
        "reload_with_new_policies_keeps_the_gobgp_session_and_re_evaluates_both_ways",
        &["gobgpd", "gobgp"],
    ) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let conf = |peer_keys: &str| {
        ternd_peers_config(h1.addr, "", &h1.block(), &[(h2.addr, peer_keys)]) + SOFT_RECONFIG_POLICIES
    };
    let t1 = Ternd::start(&h1.ns, &conf(""));
    let gobgp = Gobgp::start(&h2.ns, &gobgp_mesh_config(h2.addr, &[h1.addr]));
    let gw = h2.addr.to_string();
    for block in ["10.244.2.0/26", "10.244.3.0/26"] {
        gobgp.gobgp(&["global", "rib", "add", block, "-a", "ipv4", "nexthop", &gw]);
    }
    let block = h1.block();
    let ternd_addr = h1.addr.to_string();
    let gobgp_rib = |prefix: &str| {
        gobgp
            .try_gobgp(&["global", "rib", "-a", "ipv4", prefix])
            .unwrap_or_default()
    };
    wait_until_diag(
        Duration::from_secs(30),
        "ternd installs both of GoBGP's blocks and GoBGP has ternd's",
        || has_route(h1, "10.244.2.0/26") && has_route(h1, "10.244.3.0/26") && gobgp_rib(&block).contains(&block),
        || t1.peers_summary(),
    );
    let since = t1.peers()[0]["since_unix"].clone();
    let gobgp_since = gobgp_session_uptime(&gobgp, &ternd_addr);

    reload_to_soft_policies(&t1, &conf(NEW_POLICIES));
    expect_the_new_import(h1, &t1);
    wait_until_diag(
        Duration::from_secs(10),
        "GoBGP sees ternd's block with MED 10 (the new export)",
        || gobgp_rib(&block).contains("{Med: 10}"),
        || gobgp_rib(&block),
    );
    assert_eq!(t1.peers()[0]["since_unix"], since, "ternd's session was reset");
    assert_eq!(
        gobgp_session_uptime(&gobgp, &ternd_addr),
        gobgp_since,
        "GoBGP's session was reset"
    );
}
