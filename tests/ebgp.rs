//! eBGP toward a top-of-rack router and session protection, in network
//! namespaces: GoBGP as the ToR over TCP-MD5 (RFC 2385) and GTSM (RFC 5082)
//! with an export policy and the allowed-prefixes import filter; the prefix
//! limit (RFC 4486 Cease 6/1 and restart); RFC 7606 treatment of malformed
//! UPDATEs. Needs root, gobgpd and tcpdump (skips otherwise).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use serde_json::Value;
use tern_testkit::testpeer::{blocks, in_netns, ConnectOptions, TestPeer};
use tern_testkit::*;

const TOR_ASN: u32 = 65001;
const PASSWORD: &str = "tor-s3cret";

/// GoBGP as the ToR (AS 65001) with one eBGP neighbor `host` (AS 64512),
/// TCP-MD5 `password` and GTSM (accept only TTL 255).
fn tor_config(me: Ipv4Addr, host: Ipv4Addr, password: &str) -> String {
    format!(
        r#"[global.config]
  as = {TOR_ASN}
  router-id = "{me}"
  local-address-list = ["{me}"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{host}"
    peer-as = {ASN}
    auth-password = "{password}"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    local-address = "{me}"
  [neighbors.ttl-security.config]
    enabled = true
    ttl-min = 255
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}

/// The host's config: eBGP to the ToR with MD5, GTSM, and an export policy
/// that prepends twice and adds community 64512:100 to pod blocks.
fn host_config(me: Ipv4Addr, tor: Ipv4Addr, block: &str) -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{me}"
listen = ["0.0.0.0:179"]
connect_retry_time = 1

[kernel]
allowed_prefixes = ["10.244.0.0/16"]

[[originate]]
prefix = "{block}"

[[peer]]
name = "tor1"
address = "{tor}"
asn = {TOR_ASN}
password = "{PASSWORD}"
ttl_security = true
hold_time = 9
families = ["ipv4"]
export = ["tor-export"]

[[policy]]
name = "tor-export"
default = "reject"

[[policy.rule]]
prefix = "10.244.0.0/16"
ge = 26
le = 26
action = "accept"
add_communities = ["64512:100"]
prepend = 2
"#
    )
}

/// GoBGP's path for `prefix` in `global rib -j`: (AS path numbers, communities as "A:B").
fn tor_view(g: &Gobgp, prefix: &str) -> Option<(Vec<u64>, Vec<String>)> {
    let out = g.try_gobgp(&["global", "rib", "-a", "ipv4", "-j"]).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let path = v.get(prefix)?.as_array()?.first()?.clone();
    let attrs = path["attrs"].as_array()?.clone();
    let mut as_path = Vec::new();
    let mut communities = Vec::new();
    for a in attrs {
        match a["type"].as_u64() {
            Some(2) => {
                for seg in a["as_paths"].as_array().cloned().unwrap_or_default() {
                    as_path.extend(
                        seg["asns"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Value::as_u64),
                    );
                }
            }
            Some(8) => {
                communities.extend(
                    a["communities"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|c| format!("{}:{}", c >> 16, c & 0xffff)),
                );
            }
            _ => {}
        }
    }
    Some((as_path, communities))
}

#[test]
fn tor_over_md5_and_gtsm_with_policy() {
    let test = "tor_over_md5_and_gtsm_with_policy";
    if !require(test, &["gobgpd", "gobgp", "tcpdump"]) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (host, torh) = (topo.host(1), topo.host(2));
    // Watch the first BGP segments from both sides: GTSM means TTL 255, MD5 an option.
    let dump = torh
        .ns
        .cmd("tcpdump")
        .args([
            "-i", "eth0", "-n", "-v", "-l", "-M", PASSWORD, "-c", "8", "tcp", "port", "179",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpdump");
    let mut dump = KillOnDrop(dump);
    // tcpdump says "listening on eth0" once the capture is open.
    let mut banner = String::new();
    if let Some(err) = dump.0.stderr.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(err), &mut banner);
    }
    assert!(banner.contains("listening on"), "tcpdump did not start: {banner}");

    let tern = Ternd::start(&host.ns, &host_config(host.addr, torh.addr, &host.block()));
    let tor = Gobgp::start(&torh.ns, &tor_config(torh.addr, host.addr, PASSWORD));
    let tor_addr = torh.addr.to_string();
    wait_until_diag(
        Duration::from_secs(30),
        "eBGP session with the ToR Established",
        || tern.established() == 1 && tor.established(&host.addr.to_string()),
        || format!("{}\n{}", tern.peers_summary(), tern.log_tail(20)),
    );
    let peer = tern.peer(&tor_addr).expect("tor1 listed");
    assert_eq!(
        (peer["name"].as_str(), peer["asn"].as_u64()),
        (Some("tor1"), Some(TOR_ASN as u64)),
        "{peer}"
    );

    // The ToR sees our block: AS path 64512 x3 (prepend 2), community 64512:100.
    wait_until_diag(
        Duration::from_secs(20),
        "the ToR holding our block",
        || tor_view(&tor, &host.block()).is_some(),
        || tor.gobgp(&["global", "rib", "-a", "ipv4"]),
    );
    let (as_path, communities) = tor_view(&tor, &host.block()).expect("path");
    println!(
        "ToR's view of {}: AS path {as_path:?}, communities {communities:?}",
        host.block()
    );
    assert_eq!(as_path, vec![ASN as u64; 3], "AS path at the ToR");
    assert_eq!(communities, vec!["64512:100".to_string()], "communities at the ToR");

    // The ToR announces a default route, the host subnet and a pod-range /26.
    for p in ["0.0.0.0/0", "192.168.1.0/24", "10.244.9.0/26"] {
        tor.gobgp(&["global", "rib", "add", p, "-a", "ipv4", "nexthop", &tor_addr]);
    }
    wait_until_diag(
        Duration::from_secs(20),
        "10.244.9.0/26 (inside allowed_prefixes) installed via the ToR",
        || {
            find(&host.routes("proto bird"), "10.244.9.0/26")
                .is_some_and(|r| r.gateway.as_deref() == Some(tor_addr.as_str()))
        },
        || format!("{}\n{}", show(&host.routes("")), tern.log_tail(20)),
    );
    let routes = host.routes("proto bird");
    for p in ["0.0.0.0/0", "default", "192.168.1.0/24"] {
        assert!(
            find(&routes, p).is_none(),
            "{p} (outside allowed_prefixes) reached the kernel:\n{}",
            show(&routes)
        );
    }
    let all = host.routes("");
    assert!(
        all.iter()
            .filter(|r| r.dst == "default")
            .all(|r| r.gateway.as_deref() == Some("192.168.1.1")),
        "the host's own default route was replaced:\n{}",
        show(&all)
    );
    // Only our block was exported (the learned /26 is not sent back, the policy rejects the rest).
    let sent = tern.peer(&tor_addr).expect("tor1");
    assert_eq!(sent["advertised"], 1, "{sent}");

    // On the wire: every BGP segment either way has TTL 255 and an MD5 signature.
    let status = wait_child(&mut dump.0, Duration::from_secs(20));
    let mut text = String::new();
    if let Some(mut o) = dump.0.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    assert!(status.is_some(), "tcpdump did not see 8 BGP segments:\n{text}");
    let headers: Vec<&str> = text.lines().filter(|l| l.contains(" IP (")).collect();
    assert!(headers.len() >= 8, "tcpdump output:\n{text}");
    assert!(
        headers.iter().all(|l| l.contains("ttl 255")),
        "a BGP segment without TTL 255:\n{text}"
    );
    println!("first BGP segments at the ToR:\n{text}");
    let md5 = text
        .lines()
        .filter(|l| l.contains("md5valid") || l.contains("md5 valid"))
        .count();
    assert!(md5 >= 8, "BGP segments without a valid MD5 signature:\n{text}");

    // A ToR with the wrong password gets no session.
    drop(tor);
    wait_until_diag(
        Duration::from_secs(30),
        "ternd noticing the ToR went away",
        || tern.peer(&tor_addr).is_some_and(|p| p["state"] != "Established"),
        || tern.peers_summary(),
    );
    let wrong = Gobgp::start(&torh.ns, &tor_config(torh.addr, host.addr, "not-the-password"));
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(6) {
        let state = tern.peer(&tor_addr).map(|p| p["state"].clone());
        assert!(
            state.as_ref().is_some_and(|s| s != "Established") && !wrong.established(&host.addr.to_string()),
            "session came up with a wrong TCP-MD5 password: {state:?}\n{}",
            tern.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("wrong password: no session for {:?}", watch.elapsed());
    drop(wrong);

    // GTSM is enforced by ternd: with the right key, a peer sending TTL 255
    // gets a session, the same peer sending TTL 64 does not.
    let to = SocketAddr::new(IpAddr::V4(host.addr), 179);
    let probe = |ttl: u8| {
        let opts = ConnectOptions {
            ttl: Some(ttl),
            md5_key: Some(PASSWORD.as_bytes().to_vec()),
            ..ConnectOptions::default()
        };
        let id = torh.addr;
        in_netns(torh.ns.name(), move || {
            TestPeer::connect_with(to, TOR_ASN, id, Duration::from_secs(3), &opts)
        })
        .and_then(|r| r)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let ok = loop {
        match probe(255) {
            Ok(p) => break p,
            Err(e) if Instant::now() >= deadline => panic!("GTSM: no session with TTL 255: {e}\n{}", tern.log_tail(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    wait_until_diag(
        Duration::from_secs(5),
        "ternd Established with the TTL-255 probe",
        || tern.established() == 1,
        || tern.peers_summary(),
    );
    drop(ok);
    wait_until_diag(
        Duration::from_secs(10),
        "ternd seeing the TTL-255 probe close and accepting connections again (Connect/Active)",
        || {
            tern.peer(&tor_addr)
                .is_some_and(|p| p["state"] == "Connect" || p["state"] == "Active")
        },
        || tern.peers_summary(),
    );
    // With TTL 64 ternd must never reach Established. (TestPeer::connect may
    // still return Ok if our OPEN slipped in before ternd set IP_MINTTL on the
    // accepted socket; only ternd's state decides.)
    let low = probe(64);
    println!(
        "GTSM: TTL 64 probe: {}",
        match &low {
            Ok(_) => "OPEN answered (reached ternd before IP_MINTTL was set)".to_string(),
            Err(e) => format!("refused ({e})"),
        }
    );
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            tern.established(),
            0,
            "GTSM: Established with TTL 64\n{}",
            tern.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(low);
}

/// Kills (by PID) and reaps a child when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A host config with one passive peer `peer` (AS `asn`) and `extra` keys for it.
fn single_peer_config(me: Ipv4Addr, peer: Ipv4Addr, asn: u32, extra: &str) -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{me}"
listen = ["0.0.0.0:179"]
connect_retry_time = 1

[kernel]
allowed_prefixes = ["10.244.0.0/16"]

[[originate]]
prefix = "10.244.1.0/26"

[[peer]]
address = "{peer}"
asn = {asn}
passive = true
families = ["ipv4"]
{extra}
"#
    )
}

/// Connects a TestPeer from `ns` to `to` once (no retry).
fn try_connect(ns: &Netns, to: SocketAddr, asn: u32, id: Ipv4Addr) -> std::io::Result<TestPeer> {
    let name = ns.name().to_string();
    in_netns(&name, move || TestPeer::connect(to, asn, id, Duration::from_secs(3))).and_then(|r| r)
}

/// Connects, retrying every 100 ms until `timeout`.
fn connect_retrying(ns: &Netns, to: SocketAddr, asn: u32, id: Ipv4Addr, timeout: Duration) -> TestPeer {
    let deadline = Instant::now() + timeout;
    loop {
        match try_connect(ns, to, asn, id) {
            Ok(p) => return p,
            Err(e) if Instant::now() >= deadline => panic!("no session with {to} within {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn max_prefixes_ceases_and_restarts() {
    let test = "max_prefixes_ceases_and_restarts";
    if !require(test, &[]) {
        return;
    }
    const PEER_ASN: u32 = 65002;
    let topo = Topology::single_segment(2);
    let (host, tp) = (topo.host(1), topo.host(2));
    let tern = Ternd::start(
        &host.ns,
        &single_peer_config(
            host.addr,
            tp.addr,
            PEER_ASN,
            "[peer.max_prefixes]\nlimit = 5\nwarning_percent = 60\nrestart_after = 2",
        ),
    );
    let to = SocketAddr::new(IpAddr::V4(host.addr), 179);
    let mut peer = connect_retrying(&tp.ns, to, PEER_ASN, tp.addr, Duration::from_secs(20));
    let prefixes: Vec<IpNetwork> = blocks(Ipv4Addr::new(10, 244, 100, 0), 10);
    peer.announce(&prefixes, tp.addr, vec![PEER_ASN]).expect("announce");
    let sent = Instant::now();
    let n = peer
        .expect_notification(Instant::now() + Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("waiting for the Cease: {e}\n{}", tern.log_tail(20)))
        .unwrap_or_else(|| panic!("connection closed without a NOTIFICATION\n{}", tern.log_tail(20)));
    assert_eq!(
        (n.code, n.subcode),
        (6, 1),
        "expected Cease / Maximum Number of Prefixes Reached, got {}",
        n.describe()
    );
    // RFC 4486 §4: AFI (2), SAFI (1), the limit (4).
    assert_eq!(n.data, vec![0, 1, 1, 0, 0, 0, 5], "NOTIFICATION data");
    assert!(
        peer.wait_closed(Instant::now() + Duration::from_secs(5)),
        "connection still open after the Cease"
    );
    let p = tern.peer(&tp.addr.to_string()).expect("peer listed");
    assert_ne!(p["state"], "Established", "{p}");
    assert!(
        p["last_error"].as_str().is_some_and(|e| e.contains("prefixes")),
        "last_error should name the prefix limit: {p}"
    );
    // The routes of the torn-down session leave the kernel.
    wait_until_diag(
        Duration::from_secs(10),
        "routes of the over-limit peer removed",
        || {
            host.routes("proto bird")
                .iter()
                .all(|r| !r.dst.starts_with("10.244.10"))
        },
        || show(&host.routes("proto bird")),
    );
    let log = tern.log_text();
    assert!(
        log.contains("of the limit of 5") || log.contains("over the limit of 5"),
        "no warning logged:\n{log}"
    );

    // Reconnecting works again after restart_after (2 s), not before.
    let mut refused_early = 0;
    let again = loop {
        match try_connect(&tp.ns, to, PEER_ASN, tp.addr) {
            Ok(p) => break p,
            Err(_) => {
                refused_early += 1;
                assert!(
                    sent.elapsed() < Duration::from_secs(15),
                    "no new session 15 s after the Cease\n{}",
                    tern.log_tail(20)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let after = sent.elapsed();
    println!(
        "max_prefixes: new session {after:?} after the over-limit UPDATE ({refused_early} attempts refused before)"
    );
    assert!(
        after >= Duration::from_millis(1800),
        "session accepted during the 2 s hold-down ({after:?})"
    );
    // The new session works: a few prefixes (under the limit) are installed.
    let mut again = again;
    again
        .announce(&prefixes[..3], tp.addr, vec![PEER_ASN])
        .expect("announce");
    wait_until_diag(
        Duration::from_secs(10),
        "3 prefixes of the new session installed",
        || {
            let r = host.routes("proto bird");
            prefixes[..3].iter().all(|p| find(&r, &p.to_string()).is_some())
        },
        || format!("{}\n{}", show(&host.routes("")), tern.log_tail(20)),
    );
    assert_eq!(tern.peer(&tp.addr.to_string()).expect("peer")["state"], "Established");
}

/// An UPDATE announcing 10.244.7.0/26 from AS `asn` via `nh`, with ORIGIN
/// `origin` and NLRI prefix length `plen` (both possibly invalid), hand-built.
fn raw_update(asn: u32, nh: Ipv4Addr, origin: u8, plen: u8) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, origin];
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]);
    attrs.extend_from_slice(&asn.to_be_bytes());
    attrs.extend_from_slice(&[0x40, 3, 4]);
    attrs.extend_from_slice(&nh.octets());
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.push(plen);
    body.extend_from_slice(&[10, 244, 7, 0]);
    if plen > 32 {
        body.push(0);
    }
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    msg.push(2);
    msg.extend_from_slice(&body);
    msg
}

#[test]
fn malformed_updates_get_rfc7606_treatment() {
    let test = "malformed_updates_get_rfc7606_treatment";
    if !require(test, &[]) {
        return;
    }
    const PEER_ASN: u32 = 65002;
    let topo = Topology::single_segment(2);
    let (host, tp) = (topo.host(1), topo.host(2));
    let tern = Ternd::start(&host.ns, &single_peer_config(host.addr, tp.addr, PEER_ASN, ""));
    let to = SocketAddr::new(IpAddr::V4(host.addr), 179);
    let mut peer = connect_retrying(&tp.ns, to, PEER_ASN, tp.addr, Duration::from_secs(20));
    let tp_addr = tp.addr.to_string();

    // A well-formed announcement first (ORIGIN IGP, /26).
    peer.send_raw(&raw_update(PEER_ASN, tp.addr, 0, 26)).expect("send");
    wait_until_diag(
        Duration::from_secs(10),
        "10.244.7.0/26 installed",
        || {
            find(&host.routes("proto bird"), "10.244.7.0/26")
                .is_some_and(|r| r.gateway.as_deref() == Some(tp_addr.as_str()))
        },
        || format!("{}\n{}", show(&host.routes("")), tern.log_tail(20)),
    );

    // RFC 7606 §7.1: a bad ORIGIN value is treat-as-withdraw.
    peer.send_raw(&raw_update(PEER_ASN, tp.addr, 5, 26)).expect("send");
    wait_until_diag(
        Duration::from_secs(10),
        "10.244.7.0/26 withdrawn after the UPDATE with ORIGIN 5",
        || find(&host.routes("proto bird"), "10.244.7.0/26").is_none(),
        || format!("{}\n{}", show(&host.routes("")), tern.log_tail(20)),
    );
    // The session stays up: a keepalive round trip still works and nothing came back.
    peer.keepalive().expect("keepalive");
    match peer.recv(Instant::now() + Duration::from_millis(500)) {
        Ok(None) => {}
        Ok(Some(d)) => assert!(
            !matches!(d.message, bgp_proto::Message::Notification(_)),
            "NOTIFICATION after a treat-as-withdraw error: {:?}",
            d.message
        ),
        Err(e) => panic!(
            "session closed after a treat-as-withdraw error: {e}\n{}",
            tern.log_tail(20)
        ),
    }
    let p = tern.peer(&tp_addr).expect("peer");
    assert_eq!(p["state"], "Established", "{p}");
    assert_eq!(p["malformed_updates"], 1, "{p}");

    // The route can come back; then RFC 7606 §5.3: a bad NLRI length resets with 3/10.
    peer.send_raw(&raw_update(PEER_ASN, tp.addr, 0, 26)).expect("send");
    wait_until(Duration::from_secs(10), "10.244.7.0/26 installed again", || {
        find(&host.routes("proto bird"), "10.244.7.0/26").is_some()
    });
    peer.send_raw(&raw_update(PEER_ASN, tp.addr, 0, 33)).expect("send");
    let n = peer
        .expect_notification(Instant::now() + Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("waiting for the NOTIFICATION: {e}\n{}", tern.log_tail(20)))
        .unwrap_or_else(|| panic!("closed without a NOTIFICATION\n{}", tern.log_tail(20)));
    assert_eq!(
        (n.code, n.subcode),
        (3, 10),
        "expected UPDATE Message Error / Invalid Network Field, got {}",
        n.describe()
    );
    assert!(
        peer.wait_closed(Instant::now() + Duration::from_secs(5)),
        "connection open after 3/10"
    );
    wait_until_diag(
        Duration::from_secs(10),
        "ternd's peer leaving Established and its route leaving the kernel",
        || {
            tern.peer(&tp_addr).is_some_and(|p| p["state"] != "Established")
                && find(&host.routes("proto bird"), "10.244.7.0/26").is_none()
        },
        || format!("{}\n{}", tern.peers_summary(), show(&host.routes(""))),
    );
}
