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
