//! Route reflection (RFC 4456) against real peers in network namespaces:
//! a ternd reflector serving ternd, BIRD, GoBGP and a scripted client; BIRD
//! reflecting for two ternd hosts; two ternd reflectors sharing a cluster id
//! surviving the loss of one. Needs root, bird2 and gobgpd (skips otherwise).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp_proto::attributes::{type_code, AttrValue};
use bgp_proto::{Decoded, Message};
use ipnetwork::IpNetwork;
use serde_json::Value;
use tern_testkit::testpeer::{in_netns, TestPeer};
use tern_testkit::*;

const CLUSTER_ID: &str = "1.1.1.1";

/// BIRD as a plain iBGP client of `rr` (passive), originating `block`,
/// exporting learned routes to the kernel.
fn bird_client_config(me: Ipv4Addr, rr: Ipv4Addr, block: &str) -> String {
    format!(
        r#"router id {me};
protocol device {{ scan time 2; }}
protocol static {{
  ipv4;
  route {block} blackhole;
}}
protocol kernel {{
  ipv4 {{ export where source = RTS_BGP; }};
  merge paths on;
  scan time 2;
}}
protocol bgp RR {{
  local {me} as {ASN};
  neighbor {rr} as {ASN};
  direct;
  passive on;
  ipv4 {{ import all; export all; next hop self; }};
}}
"#
    )
}

/// GoBGP as a passive iBGP client of `rr`.
fn gobgp_client_config(me: Ipv4Addr, rr: Ipv4Addr) -> String {
    format!(
        r#"[global.config]
  as = {ASN}
  router-id = "{me}"
  local-address-list = ["{me}"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{rr}"
    peer-as = {ASN}
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "{me}"
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}

/// One IPv4 route as a scripted client saw it on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    prefix: String,
    /// None: a withdrawal.
    next_hop: Option<Ipv4Addr>,
    originator_id: Option<Ipv4Addr>,
    cluster_list: Vec<Ipv4Addr>,
}

/// A [`TestPeer`] reading in the background, recording every prefix it
/// is sent (and sending keepalives), until dropped.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start(mut peer: TestPeer) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let error = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, e, st) = (seen.clone(), error.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut last_keepalive = Instant::now();
            while !st.load(Ordering::Relaxed) {
                if last_keepalive.elapsed() > Duration::from_secs(10) {
                    let _ = peer.keepalive();
                    last_keepalive = Instant::now();
                }
                match peer.recv(Instant::now() + Duration::from_millis(100)) {
                    Ok(Some(Decoded {
                        message: Message::Update(u),
                        ..
                    })) => {
                        let originator_id = match u.attribute(type_code::ORIGINATOR_ID) {
                            Some(AttrValue::OriginatorId(o)) => Some(*o),
                            _ => None,
                        };
                        let cluster_list = match u.attribute(type_code::CLUSTER_LIST) {
                            Some(AttrValue::ClusterList(c)) => c.clone(),
                            _ => Vec::new(),
                        };
                        let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                        for (_, n) in u.withdrawn_routes() {
                            seen.push(Seen {
                                prefix: n.prefix.to_string(),
                                next_hop: None,
                                originator_id: None,
                                cluster_list: Vec::new(),
                            });
                        }
                        for (_, n) in u.announced() {
                            seen.push(Seen {
                                prefix: n.prefix.to_string(),
                                next_hop: u.next_hop(),
                                originator_id,
                                cluster_list: cluster_list.clone(),
                            });
                        }
                    }
                    Ok(Some(Decoded {
                        message: Message::Notification(n),
                        ..
                    })) => {
                        *e.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("NOTIFICATION {}", n.describe()));
                        return;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        *e.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.to_string());
                        return;
                    }
                }
            }
        });
        Recorder {
            seen,
            error,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last thing said about `prefix`, if anything.
    fn latest(&self, prefix: &str) -> Option<Seen> {
        self.seen().into_iter().rev().find(|s| s.prefix == prefix)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects a TestPeer from inside `ns` to `to`, retrying until the daemon listens.
fn connect_in(ns: &Netns, to: SocketAddr, router_id: Ipv4Addr) -> TestPeer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let name = ns.name().to_string();
        let r = in_netns(&name, move || {
            TestPeer::connect(to, ASN, router_id, Duration::from_secs(5))
        })
        .and_then(|r| r);
        match r {
            Ok(p) => return p,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("TestPeer could not connect to {to} from {}: {e}", ns.name()),
        }
    }
}

/// `ternctl show routes --json` paths for `prefix`.
fn paths_for(t: &Ternd, prefix: &str) -> Vec<Value> {
    match t.try_show("routes") {
        Some(Value::Array(v)) => v.into_iter().filter(|r| r["prefix"] == prefix).collect(),
        _ => Vec::new(),
    }
}

/// The kernel route for `dst` is a unicast route via exactly `gw`.
fn via(host: &Host, dst: &str, gw: Ipv4Addr) -> bool {
    find(&host.routes("proto bird"), dst).is_some_and(|r| {
        r.kind == "unicast" && r.gateway.as_deref() == Some(gw.to_string().as_str()) && r.nexthops.is_empty()
    })
}

/// GoBGP's `global rib -j` paths for `prefix`: (next hop, originator id, cluster list).
fn gobgp_paths(g: &Gobgp, prefix: &str) -> Vec<(Option<String>, Option<String>, Vec<String>)> {
    let Ok(out) = g.try_gobgp(&["global", "rib", "-a", "ipv4", "-j"]) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let Some(paths) = v.get(prefix).and_then(Value::as_array) else {
        return Vec::new();
    };
    paths
        .iter()
        .map(|p| {
            let attrs = p["attrs"].as_array().cloned().unwrap_or_default();
            let by_type = |t: u64| attrs.iter().find(|a| a["type"].as_u64() == Some(t)).cloned();
            let nh = by_type(3).and_then(|a| a["nexthop"].as_str().map(String::from));
            let orig = by_type(9).and_then(|a| a["value"].as_str().map(String::from));
            let cl = by_type(10)
                .and_then(|a| a["value"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
            (nh, orig, cl)
        })
        .collect()
}

#[test]
fn ternd_reflects_for_ternd_bird_gobgp_and_scripted_clients() {
    let test = "ternd_reflects_for_ternd_bird_gobgp_and_scripted_clients";
    if !require(test, &["bird", "birdc", "gobgpd", "gobgp"]) {
        return;
    }
    let topo = Topology::single_segment(5);
    let (rr, tc, bc, gc, sc) = (topo.host(1), topo.host(2), topo.host(3), topo.host(4), topo.host(5));
    let client = "route_reflector_client = true";
    let passive_client = "route_reflector_client = true\npassive = true";
    let start = Instant::now();
    let reflector = Ternd::start(
        &rr.ns,
        &ternd_peers_config(
            rr.addr,
            &format!("cluster_id = \"{CLUSTER_ID}\""),
            &rr.block(),
            &[
                (tc.addr, client),
                (bc.addr, client),
                (gc.addr, client),
                (sc.addr, passive_client),
            ],
        ),
    );
    let tern_client = Ternd::start(&tc.ns, &ternd_peers_config(tc.addr, "", &tc.block(), &[(rr.addr, "")]));
    let bird = Bird::start(&bc.ns, &bird_client_config(bc.addr, rr.addr, &bc.block()));
    let gobgp = Gobgp::start(&gc.ns, &gobgp_client_config(gc.addr, rr.addr));
    gobgp.gobgp(&[
        "global",
        "rib",
        "add",
        &gc.block(),
        "-a",
        "ipv4",
        "nexthop",
        &gc.addr.to_string(),
    ]);
    let mut scripted = connect_in(&sc.ns, SocketAddr::new(rr.addr.into(), 179), sc.addr);
    let own: IpNetwork = sc.block().parse().expect("block");
    scripted.announce(&[own], sc.addr, vec![]).expect("announce");
    scripted.end_of_rib().expect("End-of-RIB");
    let recorder = Recorder::start(scripted);

    wait_until_diag(
        Duration::from_secs(60),
        "the reflector's four client sessions Established",
        || reflector.established() == 4 && bird.established("RR") && gobgp.established(&rr.addr.to_string()),
        || format!("{}\n{}", reflector.peers_summary(), tern_client.peers_summary()),
    );
    println!("reflector: 4 clients Established after {:?}", start.elapsed());

    // Every block and who originated it; the reflector's own block has it as next hop.
    let blocks: Vec<(&Host, String)> = [rr, tc, bc, gc, sc].iter().map(|h| (*h, h.block())).collect();

    // ternd client's kernel: every other block via its originating host.
    wait_until_diag(
        Duration::from_secs(30),
        "ternd client installing every other block via its originator",
        || {
            blocks
                .iter()
                .filter(|(h, _)| h.index != tc.index)
                .all(|(h, b)| via(tc, b, h.addr))
        },
        || format!("{}\n{}", show(&tc.routes("")), tern_client.log_tail(20)),
    );
    // BIRD client's kernel likewise.
    wait_until_diag(
        Duration::from_secs(30),
        "BIRD client installing every other block via its originator",
        || {
            blocks
                .iter()
                .filter(|(h, _)| h.index != bc.index)
                .all(|(h, b)| via(bc, b, h.addr))
        },
        || format!("{}\n{}", show(&bc.routes("")), bird.birdc("show route all")),
    );
    // GoBGP's RIB.
    wait_until_diag(
        Duration::from_secs(30),
        "GoBGP client holding every other block via its originator",
        || {
            blocks.iter().filter(|(h, _)| h.index != gc.index).all(|(h, b)| {
                gobgp_paths(&gobgp, b)
                    .iter()
                    .any(|(nh, _, _)| nh.as_deref() == Some(h.addr.to_string().as_str()))
            })
        },
        || gobgp.gobgp(&["global", "rib", "-a", "ipv4", "-j"]),
    );
    // The scripted client on the wire.
    wait_until_diag(
        Duration::from_secs(30),
        "scripted client receiving every other block via its originator",
        || {
            blocks
                .iter()
                .filter(|(h, _)| h.index != sc.index)
                .all(|(h, b)| recorder.latest(b).is_some_and(|s| s.next_hop == Some(h.addr)))
        },
        || format!("{:?}\nerror: {:?}", recorder.seen(), recorder.error()),
    );
    println!("reflector: every client has every block after {:?}", start.elapsed());

    // RFC 4456 §8 attributes, as each client sees them.
    let cluster: Ipv4Addr = CLUSTER_ID.parse().expect("cluster id");
    for (h, b) in &blocks {
        let reflected = h.index != rr.index;
        // Wire view (scripted client).
        if h.index != sc.index {
            let s = recorder.latest(b).expect("seen");
            let want = if reflected {
                (Some(h.addr), vec![cluster])
            } else {
                (None, vec![])
            };
            assert_eq!(
                (s.originator_id, s.cluster_list.clone()),
                want,
                "scripted client's view of {b}: {s:?}"
            );
        }
        // BIRD's view.
        if h.index != bc.index {
            let text = bird.birdc(&format!("show route {b} all"));
            if reflected {
                assert!(
                    text.contains(&format!("BGP.originator_id: {}", h.addr))
                        && text.contains(&format!("BGP.cluster_list: {CLUSTER_ID}")),
                    "BIRD's view of {b} lacks ORIGINATOR_ID {} / CLUSTER_LIST {CLUSTER_ID}:\n{text}",
                    h.addr
                );
            } else {
                assert!(
                    !text.contains("BGP.originator_id") && !text.contains("BGP.cluster_list"),
                    "the reflector's own {b} must not carry RR attributes:\n{text}"
                );
            }
        }
        // GoBGP's view.
        if h.index != gc.index {
            let paths = gobgp_paths(&gobgp, b);
            assert_eq!(paths.len(), 1, "GoBGP paths for {b}: {paths:?}");
            let (_, orig, cl) = &paths[0];
            if reflected {
                assert_eq!(
                    (orig.clone(), cl.clone()),
                    (Some(h.addr.to_string()), vec![CLUSTER_ID.to_string()]),
                    "GoBGP's view of {b}"
                );
            } else {
                assert_eq!((orig.clone(), cl.len()), (None, 0), "GoBGP's view of {b}");
            }
        }
        // ternd client's view.
        if h.index != tc.index {
            let paths = paths_for(&tern_client, b);
            assert_eq!(paths.len(), 1, "ternd client's paths for {b}: {paths:?}");
            let p = &paths[0];
            let want_orig = if reflected {
                Value::from(h.addr.to_string())
            } else {
                Value::Null
            };
            let want_cl = if reflected {
                vec![Value::from(CLUSTER_ID)]
            } else {
                vec![]
            };
            assert_eq!(
                (
                    &p["originator_id"],
                    p["cluster_list"].as_array().cloned().unwrap_or_default()
                ),
                (&want_orig, want_cl),
                "ternd client's view of {b}: {p}"
            );
        }
    }

    // A client's own routes never come back to it.
    assert!(
        recorder.seen().iter().all(|s| s.prefix != sc.block()),
        "the reflector sent the scripted client its own block: {:?}",
        recorder.seen()
    );
    let own_paths = paths_for(&tern_client, &tc.block());
    assert!(
        own_paths.len() == 1 && own_paths[0]["from"] == "local",
        "ternd client holds a path for its own block from someone else: {own_paths:?}"
    );
    let bird_own = bird.birdc(&format!("show route {} all", bc.block()));
    assert!(
        !bird_own.contains("BGP.")
            && bird_own.matches("blackhole").count() + bird_own.matches("unreachable").count() >= 1,
        "BIRD holds a BGP path for its own block:\n{bird_own}"
    );
    let gobgp_own = gobgp_paths(&gobgp, &gc.block());
    assert_eq!(gobgp_own.len(), 1, "GoBGP paths for its own block: {gobgp_own:?}");
    // The reflector's Adj-RIB-Out per client: every block but the client's own.
    for p in reflector.peers() {
        assert_eq!(
            p["advertised"],
            blocks.len() - 1,
            "reflector advertised to {}: {p}",
            p["name"]
        );
        assert_eq!(p["received"], 1, "reflector received from {}: {p}", p["name"]);
    }
    assert_eq!(recorder.error(), None, "scripted client's session");

    // A withdrawal from one client is reflected to the others.
    gobgp.gobgp(&["global", "rib", "del", &gc.block(), "-a", "ipv4"]);
    wait_until_diag(
        Duration::from_secs(30),
        "GoBGP's block withdrawn everywhere",
        || {
            find(&tc.routes("proto bird"), &gc.block()).is_none()
                && find(&bc.routes("proto bird"), &gc.block()).is_none()
                && recorder.latest(&gc.block()).is_some_and(|s| s.next_hop.is_none())
        },
        || format!("{}\n{}", show(&tc.routes("")), show(&bc.routes(""))),
    );
}

/// BIRD's reflector config for `clients` (direct iBGP, `rr client`).
fn bird_reflector_config(me: Ipv4Addr, clients: &[Ipv4Addr]) -> String {
    let mut s = format!("router id {me};\nprotocol device {{ scan time 2; }}\n");
    for c in clients {
        s.push_str(&format!(
            r#"protocol bgp C_{} {{
  local {me} as {ASN};
  neighbor {c} as {ASN};
  direct;
  rr client;
  rr cluster id {CLUSTER_ID};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 {{ import all; export all; }};
}}
"#,
            c.to_string().replace('.', "_")
        ));
    }
    s
}

#[test]
fn bird_reflects_for_two_ternd_clients() {
    let test = "bird_reflects_for_two_ternd_clients";
    if !require(test, &["bird", "birdc", "ping"]) {
        return;
    }
    let topo = Topology::single_segment(3);
    let (rr, a, b) = (topo.host(1), topo.host(2), topo.host(3));
    let pod_a = a.add_pod(0);
    let pod_b = b.add_pod(0);
    let bird = Bird::start(&rr.ns, &bird_reflector_config(rr.addr, &[a.addr, b.addr]));
    let ta = Ternd::start(&a.ns, &ternd_peers_config(a.addr, "", &a.block(), &[(rr.addr, "")]));
    let tb = Ternd::start(&b.ns, &ternd_peers_config(b.addr, "", &b.block(), &[(rr.addr, "")]));
    wait_until_diag(
        Duration::from_secs(60),
        "both clients Established with BIRD",
        || ta.established() == 1 && tb.established() == 1,
        || format!("{}\n{}", ta.peers_summary(), tb.peers_summary()),
    );
    for (me, other) in [(a, b), (b, a)] {
        wait_until_diag(
            Duration::from_secs(30),
            &format!(
                "host {} installing {} via {} (not via BIRD)",
                me.index,
                other.block(),
                other.addr
            ),
            || via(me, &other.block(), other.addr),
            || format!("{}\n{}", show(&me.routes("")), bird.birdc("show route all")),
        );
    }
    for (t, other) in [(&ta, b), (&tb, a)] {
        let paths = paths_for(t, &other.block());
        assert_eq!(paths.len(), 1, "{paths:?}");
        assert_eq!(paths[0]["originator_id"], other.addr.to_string(), "{}", paths[0]);
        assert_eq!(
            paths[0]["cluster_list"],
            serde_json::json!([CLUSTER_ID]),
            "{}",
            paths[0]
        );
    }
    for (from, to) in [(&pod_a, &pod_b), (&pod_b, &pod_a)] {
        from.ping(to.addr)
            .unwrap_or_else(|e| panic!("pod {} -> {}: {e}", from.addr, to.addr));
    }
}

/// Pings `dst` from `pod` `count` times, 0.1 s apart, in the background.
fn ping_series(pod: &Pod, dst: Ipv4Addr, count: u32) -> std::process::Child {
    pod.ns
        .cmd("ping")
        .args(["-n", "-c", &count.to_string(), "-i", "0.1", "-W", "1", &dst.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ping")
}

#[test]
fn redundant_reflectors_survive_losing_one() {
    if require("redundant_reflectors_survive_losing_one", &["ping"]) {
        redundant_reflectors(true);
    }
}

#[test]
fn redundant_reflectors_survive_losing_one_without_graceful_restart() {
    if require(
        "redundant_reflectors_survive_losing_one_without_graceful_restart",
        &["ping"],
    ) {
        redundant_reflectors(false);
    }
}

/// Two reflectors (same cluster id), two clients with pods; SIGKILL one
/// reflector while pods ping each other. With graceful restart the clients keep
/// the dead reflector's paths as stale; without, they fall back to the other
/// reflector's identical paths. Either way the kernel routes must not move.
fn redundant_reflectors(graceful_restart: bool) {
    let topo = Topology::single_segment(4);
    let (r1, r2, c1, c2) = (topo.host(1), topo.host(2), topo.host(3), topo.host(4));
    let pod1 = c1.add_pod(0);
    let pod2 = c2.add_pod(0);
    let cluster = format!("cluster_id = \"{CLUSTER_ID}\"");
    let client = "route_reflector_client = true";
    // The reflectors peer with each other as non-clients, as Calico's do.
    let mut rr1 = Ternd::start(
        &r1.ns,
        &ternd_peers_config(
            r1.addr,
            &cluster,
            &r1.block(),
            &[(r2.addr, ""), (c1.addr, client), (c2.addr, client)],
        ),
    );
    let rr2 = Ternd::start(
        &r2.ns,
        &ternd_peers_config(
            r2.addr,
            &cluster,
            &r2.block(),
            &[(r1.addr, ""), (c1.addr, client), (c2.addr, client)],
        ),
    );
    let gr = if graceful_restart {
        ""
    } else {
        "\n[graceful_restart]\nenabled = false\n"
    };
    let client_conf = |h: &Host| {
        format!(
            "{}{gr}",
            ternd_peers_config(h.addr, "", &h.block(), &[(r1.addr, ""), (r2.addr, "")])
        )
    };
    let t1 = Ternd::start(&c1.ns, &client_conf(c1));
    let t2 = Ternd::start(&c2.ns, &client_conf(c2));
    wait_until_diag(
        Duration::from_secs(60),
        "all sessions Established",
        || rr1.established() == 3 && rr2.established() == 3 && t1.established() == 2 && t2.established() == 2,
        || {
            [&rr1, &rr2, &t1, &t2]
                .iter()
                .map(|t| t.peers_summary())
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let expect = |me: &Host, t: &Ternd| -> Result<(), String> {
        for (other, gw) in [(c1, c1.addr), (c2, c2.addr), (r1, r1.addr), (r2, r2.addr)] {
            if other.index == me.index {
                continue;
            }
            if !via(me, &other.block(), gw) {
                return Err(format!(
                    "host {}: {} not via {gw}\n{}\n{}",
                    me.index,
                    other.block(),
                    show(&me.routes("proto bird")),
                    t.peers_summary()
                ));
            }
        }
        Ok(())
    };
    for (me, t) in [(c1, &t1), (c2, &t2)] {
        wait_until_diag(
            Duration::from_secs(30),
            &format!("client {} holding every block via its originator", me.index),
            || expect(me, t).is_ok(),
            || expect(me, t).err().unwrap_or_default(),
        );
    }
    // Each client has the other client's block from both reflectors.
    for (t, other) in [(&t1, c2), (&t2, c1)] {
        let paths = paths_for(t, &other.block());
        assert_eq!(paths.len(), 2, "two reflected paths expected: {paths:?}");
    }
    pod1.ping(pod2.addr).expect("pod ping before the failure");

    // Pings run across the failure; SIGKILL (no NOTIFICATION, no GR).
    let mut p12 = ping_series(&pod1, pod2.addr, 40);
    let mut p21 = ping_series(&pod2, pod1.addr, 40);
    rr1.kill9();
    let killed = Instant::now();
    wait_until_diag(
        Duration::from_secs(30),
        "both clients noticing reflector 1 is gone",
        || {
            [&t1, &t2].iter().all(|t| {
                t.peer(&r1.addr.to_string())
                    .is_some_and(|p| p["state"] != "Established")
            })
        },
        || format!("{}\n{}", t1.peers_summary(), t2.peers_summary()),
    );
    println!("clients saw reflector 1 go down {:?} after SIGKILL", killed.elapsed());
    // While the pings run, the routes between the clients must stay put.
    let mut checks = 0;
    while p12.try_wait().ok().flatten().is_none() {
        assert!(
            via(c1, &c2.block(), c2.addr) && via(c2, &c1.block(), c1.addr),
            "client routes changed after losing a reflector:\n{}\n{}",
            show(&c1.routes("proto bird")),
            show(&c2.routes("proto bird"))
        );
        checks += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checks > 0, "no route checks ran while pinging");
    for (name, child) in [("pod1->pod2", &mut p12), ("pod2->pod1", &mut p21)] {
        let status = wait_child(child, Duration::from_secs(30)).expect("ping finished");
        let out = child.wait_with_output_lossy();
        assert!(
            status.success() && out.contains("40 received"),
            "{name} lost packets across the reflector failure:\n{out}"
        );
    }
    // The surviving reflector still serves both clients; reflector 1's path is
    // either kept stale (graceful restart, RFC 4724 §4.2) or gone.
    let r2_name = format!("Peer_{}", r2.addr.to_string().replace('.', "_"));
    let r1_name = format!("Peer_{}", r1.addr.to_string().replace('.', "_"));
    for (t, other) in [(&t1, c2), (&t2, c1)] {
        let paths = paths_for(t, &other.block());
        assert!(
            paths.iter().any(|p| p["from"] == r2_name.as_str()),
            "no live path via reflector 2: {paths:?}"
        );
        let from_r1: Vec<&Value> = paths
            .iter()
            .filter(|p| p["from"].as_str().is_some_and(|f| f.starts_with(&r1_name)))
            .collect();
        if graceful_restart {
            assert!(
                from_r1.len() == 1 && from_r1[0]["from"] == format!("{r1_name} (stale)").as_str(),
                "reflector 1's path should be kept as stale: {paths:?}"
            );
            if from_r1[0]["best"] == true {
                println!(
                    "note: the stale path via reflector 1 is still preferred over the live one via reflector 2 for {}",
                    other.block()
                );
            }
        } else {
            assert!(from_r1.is_empty(), "reflector 1's path should be gone: {paths:?}");
        }
    }
}

/// Output of a finished child, stdout then stderr, lossy.
trait OutputLossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl OutputLossy for std::process::Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
