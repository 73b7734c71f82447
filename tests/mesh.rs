//! ternd in a full iBGP mesh of hosts in network namespaces: sessions, kernel
//! routes (plain, IPIP always, IPIP cross-subnet), pod-to-pod traffic, peer
//! loss and return, routes of other protocols left alone, unknown peers
//! refused, bad configs touching nothing. Needs root (skips otherwise).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tern_testkit::*;

/// How each learned block is expected to reach the kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ipip {
    Never,
    Always,
    CrossSubnet,
}

impl Ipip {
    fn config(self) -> &'static str {
        match self {
            Ipip::Never => "never",
            Ipip::Always => "always",
            Ipip::CrossSubnet => "cross-subnet",
        }
    }

    /// Whether a route from `me` to `peer` goes over tunl0.
    fn tunnels(self, me: &Host, peer: &Host) -> bool {
        match self {
            Ipip::Never => false,
            Ipip::Always => true,
            Ipip::CrossSubnet => me.subnet != peer.subnet,
        }
    }
}

/// Starts ternd on each host in `members` (1-based), meshed with the others.
fn start_mesh(topo: &Topology, members: &[usize], ipip: Ipip, hold: u16, extra: &str) -> Vec<Ternd> {
    members
        .iter()
        .map(|&i| {
            let me = topo.host(i);
            let peers: Vec<Ipv4Addr> = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| topo.host(j).addr)
                .collect();
            let conf = ternd_mesh_config(me.addr, &peers, &me.block(), ipip.config(), hold, extra);
            Ternd::start(&me.ns, &conf)
        })
        .collect()
}

/// Checks host `me`'s `proto bird` routes are exactly: a blackhole for its own
/// block and one route per peer block, via the peer's address on eth0 or tunl0+onlink.
fn mesh_routes_ok(me: &Host, peers: &[&Host], ipip: Ipip) -> Result<(), String> {
    let routes = me.routes("proto bird");
    let own = find(&routes, &me.block()).ok_or_else(|| format!("no route for own block {}", me.block()))?;
    if own.kind != "blackhole" || own.metric != Some(32) {
        return Err(format!("own block not a metric-32 blackhole: {own:?}"));
    }
    for p in peers {
        let r = find(&routes, &p.block()).ok_or_else(|| format!("no route for {}", p.block()))?;
        let tunnel = ipip.tunnels(me, p);
        let dev = if tunnel { "tunl0" } else { "eth0" };
        let ok = r.kind == "unicast"
            && r.gateway.as_deref() == Some(&p.addr.to_string())
            && r.dev.as_deref() == Some(dev)
            && r.is_onlink() == tunnel
            && r.metric == Some(32);
        if !ok {
            return Err(format!(
                "{} should be via {} dev {dev}{} metric 32, is {r:?}",
                p.block(),
                p.addr,
                if tunnel { " onlink" } else { "" }
            ));
        }
    }
    if routes.len() != peers.len() + 1 {
        return Err(format!("unexpected extra proto bird routes:\n{}", show(&routes)));
    }
    Ok(())
}

/// Waits until every member has the full mesh routes; returns the time taken.
fn wait_mesh_routes(topo: &Topology, members: &[usize], ipip: Ipip, timeout: Duration) -> Duration {
    let check = || -> Result<(), String> {
        for &i in members {
            let me = topo.host(i);
            let peers: Vec<&Host> = members.iter().filter(|&&j| j != i).map(|&j| topo.host(j)).collect();
            mesh_routes_ok(me, &peers, ipip).map_err(|e| format!("host {i}: {e}"))?;
        }
        Ok(())
    };
    wait_until_diag(
        timeout,
        "mesh routes in every kernel",
        || check().is_ok(),
        || check().err().unwrap_or_default(),
    )
}

/// Waits until every ternd reports `n` Established peers.
fn wait_established(ternds: &[Ternd], n: usize, timeout: Duration) -> Duration {
    wait_until_diag(
        timeout,
        &format!("{n} Established sessions on every ternd"),
        || ternds.iter().all(|t| t.established() == n),
        || ternds.iter().map(Ternd::peers_summary).collect::<Vec<_>>().join("\n"),
    )
}

fn has_block(host: &Host, block: &str) -> bool {
    find(&host.routes("proto bird"), block).is_some()
}

#[test]
fn full_mesh_of_three_converges_and_pods_talk() {
    if !require("full_mesh_of_three_converges_and_pods_talk", &["ping"]) {
        return;
    }
    let topo = Topology::single_segment(3);
    let pod1 = topo.host(1).add_pod(0);
    let pod2 = topo.host(2).add_pod(0);
    let pod3 = topo.host(3).add_pod(1);

    let start = Instant::now();
    let ternds = start_mesh(&topo, &[1, 2, 3], Ipip::Never, 90, "");
    wait_mesh_routes(&topo, &[1, 2, 3], Ipip::Never, Duration::from_secs(30));
    let converged = start.elapsed();
    println!("full mesh of 3: start to all routes installed: {converged:?}");
    wait_established(&ternds, 2, Duration::from_secs(10));

    for t in &ternds {
        let peers = t.peers();
        assert_eq!(peers.len(), 2, "show peers: {peers:?}");
        for p in &peers {
            assert_eq!(p["asn"], ASN, "peer asn: {p}");
            assert_eq!(p["state"], "Established", "peer: {p}");
        }
        let status = t.show("status");
        assert_eq!(status["asn"], ASN, "status: {status}");
        assert_eq!(status["peers_established"], 2, "status: {status}");
        assert_eq!(status["peers_configured"], 2, "status: {status}");
    }
    // ternd's own view agrees with the kernel: best paths and the FIB.
    let routes = ternds[0].show("routes");
    let fib = ternds[0].show("fib");
    for (block, nh) in [("10.244.2.0/26", "192.168.1.12"), ("10.244.3.0/26", "192.168.1.13")] {
        let best = routes
            .as_array()
            .and_then(|a| a.iter().find(|r| r["prefix"] == block && r["best"] == true))
            .unwrap_or_else(|| panic!("show routes: no best path for {block}: {routes}"));
        assert_eq!(best["next_hop"], nh, "{best}");
        let entry = fib
            .as_array()
            .and_then(|a| a.iter().find(|r| r["prefix"] == block))
            .unwrap_or_else(|| panic!("show fib lacks {block}: {fib}"));
        assert_eq!(
            (&entry["kind"], &entry["gateways"], &entry["state"]),
            (
                &serde_json::json!("unicast"),
                &serde_json::json!([nh]),
                &serde_json::json!("installed")
            ),
            "{entry}"
        );
    }
    let own = fib
        .as_array()
        .and_then(|a| a.iter().find(|r| r["prefix"] == "10.244.1.0/26"))
        .unwrap_or_else(|| panic!("show fib lacks the own block: {fib}"));
    assert_eq!(own["kind"], "blackhole", "{own}");
    wait_until_diag(
        Duration::from_secs(10),
        "show status: converged",
        || {
            ternds
                .iter()
                .all(|t| t.try_show("status").is_some_and(|s| s["converged"] == true))
        },
        || ternds[0].show("status").to_string(),
    );
    assert_eq!(ternds[0].show("status")["router_id"], "192.168.1.11");
    let peer_names: Vec<String> = ternds[0]
        .peers()
        .iter()
        .filter_map(|p| p["address"].as_str().map(str::to_string))
        .collect();
    assert!(
        peer_names.contains(&"192.168.1.12".to_string()) && peer_names.contains(&"192.168.1.13".to_string()),
        "host 1 peers: {peer_names:?}"
    );

    for dst in [pod2.addr, pod3.addr] {
        let out = pod1
            .ping(dst)
            .unwrap_or_else(|e| panic!("pod {} -> {dst}: {e}", pod1.addr));
        assert!(out.contains("1 received"), "{out}");
    }
    let out = pod3.ping(pod2.addr).unwrap_or_else(|e| panic!("pod3 -> pod2: {e}"));
    assert!(out.contains("1 received"), "{out}");
}

#[test]
fn ipip_always_routes_via_tunl0_onlink() {
    if !require("ipip_always_routes_via_tunl0_onlink", &[]) {
        return;
    }
    let topo = Topology::single_segment(3);
    topo.add_tunl0_everywhere();
    let ternds = start_mesh(&topo, &[1, 2, 3], Ipip::Always, 90, "");
    let t = wait_mesh_routes(&topo, &[1, 2, 3], Ipip::Always, Duration::from_secs(30));
    println!("ipip always: routes installed after {t:?}");
    wait_established(&ternds, 2, Duration::from_secs(10));
}

#[test]
fn ipip_cross_subnet_tunnels_only_to_other_subnets() {
    if !require("ipip_cross_subnet_tunnels_only_to_other_subnets", &[]) {
        return;
    }
    // Hosts 1 and 2 on 192.168.1.0/24, host 3 (192.168.2.13) behind the router.
    let topo = Topology::subnets(&[1, 1, 2]);
    topo.add_tunl0_everywhere();
    let ternds = start_mesh(&topo, &[1, 2, 3], Ipip::CrossSubnet, 90, "");
    let t = wait_mesh_routes(&topo, &[1, 2, 3], Ipip::CrossSubnet, Duration::from_secs(30));
    println!("ipip cross-subnet: routes installed after {t:?}");
    wait_established(&ternds, 2, Duration::from_secs(10));
    // Spelled out for the reader: the same-subnet route is plain, the other is tunnelled.
    let r1 = topo.host(1).routes("proto bird");
    let same = find(&r1, "10.244.2.0/26").expect("10.244.2.0/26 on host 1");
    assert_eq!(
        (same.dev.as_deref(), same.is_onlink()),
        (Some("eth0"), false),
        "{same:?}"
    );
    let other = find(&r1, "10.244.3.0/26").expect("10.244.3.0/26 on host 1");
    assert_eq!(
        (other.gateway.as_deref(), other.dev.as_deref(), other.is_onlink()),
        (Some("192.168.2.13"), Some("tunl0"), true),
        "{other:?}"
    );
}

/// Graceful restart off: a dead peer's routes must go at once, not be kept stale.
const NO_GR: &str = "\n[graceful_restart]\nenabled = false\n";

#[test]
fn killed_peer_block_leaves_and_returns() {
    if !require("killed_peer_block_leaves_and_returns", &[]) {
        return;
    }
    let topo = Topology::single_segment(3);
    let mut ternds = start_mesh(&topo, &[1, 2, 3], Ipip::Never, 9, NO_GR);
    wait_mesh_routes(&topo, &[1, 2, 3], Ipip::Never, Duration::from_secs(30));
    wait_established(&ternds, 2, Duration::from_secs(10));

    ternds[2].kill9();
    let gone = wait_until_diag(
        Duration::from_secs(15),
        "10.244.3.0/26 removed from hosts 1 and 2 after SIGKILL of host 3's ternd",
        || !has_block(topo.host(1), "10.244.3.0/26") && !has_block(topo.host(2), "10.244.3.0/26"),
        || {
            format!(
                "host1:\n{}\nhost2:\n{}",
                show(&topo.host(1).routes("")),
                show(&topo.host(2).routes(""))
            )
        },
    );
    println!("peer SIGKILLed (hold time 9 s): its block left both kernels after {gone:?}");
    // The survivors keep each other.
    mesh_routes_ok(topo.host(1), &[topo.host(2)], Ipip::Never)
        .unwrap_or_else(|e| panic!("host 1 after peer loss: {e}"));
    mesh_routes_ok(topo.host(2), &[topo.host(1)], Ipip::Never)
        .unwrap_or_else(|e| panic!("host 2 after peer loss: {e}"));
    let p = ternds[0].peer("192.168.1.13").expect("peer .13 still listed on host 1");
    assert_ne!(p["state"], "Established", "{p}");

    ternds[2].restart();
    let back = wait_mesh_routes(&topo, &[1, 2, 3], Ipip::Never, Duration::from_secs(30));
    println!("peer restarted: full mesh routes back after {back:?}");
    wait_established(&ternds, 2, Duration::from_secs(10));
}

#[test]
fn routes_of_other_protocols_are_never_touched() {
    if !require("routes_of_other_protocols_are_never_touched", &[]) {
        return;
    }
    let topo = Topology::single_segment(3);
    let h1 = topo.host(1);
    h1.ns.ip("route add 10.99.0.0/24 via 192.168.1.1 proto static");
    h1.ns.ip("route add 10.98.0.0/24 via 192.168.1.1 proto 186");
    // Inside allowed_prefixes, and the very prefix ternd will install (other metric).
    h1.ns.ip("route add 10.244.9.0/26 via 192.168.1.1 proto static");
    h1.ns
        .ip("route add 10.244.2.0/26 via 192.168.1.1 proto static metric 100");
    // Routes the kernel makes itself are left out: an IPv6 link-local
    // address (and its local route) may appear late, after the link came up.
    let foreign = || -> Vec<KernelRoute> {
        h1.routes("table all")
            .into_iter()
            .filter(|r| !matches!(r.protocol.as_deref(), Some("bird") | Some("kernel")))
            .collect()
    };
    let before = foreign();
    assert!(find(&before, "10.98.0.0/24").is_some(), "setup: {}", show(&before));

    let mut ternds = start_mesh(&topo, &[1, 2, 3], Ipip::Never, 9, NO_GR);
    wait_mesh_routes(&topo, &[1, 2, 3], Ipip::Never, Duration::from_secs(30));
    assert_eq!(foreign(), before, "after convergence");

    ternds[1].kill9();
    wait_until(Duration::from_secs(15), "host 2's block gone from host 1", || {
        !has_block(h1, "10.244.2.0/26")
    });
    assert_eq!(foreign(), before, "after peer loss");

    let status = ternds[0].stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "ternd exit after SIGTERM: {status:?}\n{}",
        ternds[0].log_tail(20)
    );
    assert_eq!(foreign(), before, "after ternd stopped");
    // SIGTERM keeps our own routes for graceful restart.
    let kept = h1.routes("proto bird");
    assert!(
        find(&kept, "10.244.3.0/26").is_some(),
        "routes after SIGTERM:\n{}",
        show(&kept)
    );
    assert!(
        find(&kept, "10.244.1.0/26").is_some(),
        "routes after SIGTERM:\n{}",
        show(&kept)
    );
}

#[test]
fn unknown_address_is_refused() {
    if !require("unknown_address_is_refused", &["bash", "timeout"]) {
        return;
    }
    // Hosts 1 and 2 form the mesh; host 3 (192.168.1.13) is not in it.
    let topo = Topology::single_segment(3);
    let ternds = start_mesh(&topo, &[1, 2], Ipip::Never, 90, "");
    wait_established(&ternds, 1, Duration::from_secs(30));

    // Opens TCP to 179 and holds it until ternd closes it (or 5 s pass).
    let _ = topo.host(3).ns.try_exec(&[
        "timeout",
        "5",
        "bash",
        "-c",
        "exec 3<>/dev/tcp/192.168.1.11/179 && cat <&3 >/dev/null",
    ]);
    let refusal = |log: &str| -> Option<String> {
        const WORDS: [&str; 6] = ["refus", "reject", "unknown", "not configured", "unconfigured", "denied"];
        log.lines()
            .find(|l| {
                let l = l.to_lowercase();
                l.contains("192.168.1.13") && WORDS.iter().any(|w| l.contains(w))
            })
            .map(str::to_string)
    };
    wait_until_diag(
        Duration::from_secs(10),
        "ternd on host 1 logging that it refused 192.168.1.13",
        || refusal(&ternds[0].log_text()).is_some(),
        || ternds[0].log_tail(30),
    );
    let line = refusal(&ternds[0].log_text()).unwrap_or_default();
    println!("ternd logged: {line}");
    let peers = ternds[0].peers();
    assert_eq!(peers.len(), 1, "show peers: {peers:?}");
    assert!(ternds[0].peer("192.168.1.13").is_none(), "intruder listed: {peers:?}");
    assert_eq!(ternds[0].established(), 1);
    assert_eq!(ternds[0].show("status")["peers_established"], 1);
}

#[test]
fn bad_config_exits_and_touches_nothing() {
    if !require("bad_config_exits_and_touches_nothing", &[]) {
        return;
    }
    let ns = Netns::new("bad");
    ns.ip("link add eth0 type veth peer name eth1");
    ns.ip("addr add 192.168.1.11/24 dev eth0");
    ns.ip("link set eth0 up");
    ns.ip("link set eth1 up");
    ns.ip("route add blackhole 10.244.7.0/26 proto bird metric 32");
    let snapshot = || (ns.ip("-j route show table all"), ns.ip("-j link show"));
    let before = snapshot();

    let dir = TempDir::new("bad");
    let text = format!(
        "{}\n[control]\nsocket = \"{}\"\n",
        ternd_mesh_config(
            Ipv4Addr::new(192, 168, 1, 11),
            &[Ipv4Addr::new(192, 168, 1, 12)],
            "10.244.1.0/26",
            "sometimes",
            90,
            ""
        ),
        dir.path().join("tern.sock").display()
    );
    let line = text.lines().position(|l| l.contains("sometimes")).expect("ipip line") + 1;
    let path = dir.write("bad.toml", &text);
    let mut child = ns
        .cmd(ternd_bin())
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ternd");
    let status = wait_child(&mut child, Duration::from_secs(10));
    if status.is_none() {
        stop_child(&mut child, Duration::from_secs(1));
        panic!("ternd with a bad config did not exit");
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.is_some_and(|s| s.success()), "exit status {status:?}");
    let want = format!("bad.toml:{line}:");
    assert!(stderr.contains(&want), "stderr does not name {want}COLUMN:\n{stderr}");
    assert_eq!(snapshot(), before, "the namespace changed");
    assert!(!dir.path().join("tern.sock").exists(), "control socket created");
}
