//! Issue 13: BFD in ternd, in-process. ternd's BFD task talks over loopback
//! UDP (TTL 255, port 3784) to a second BFD task standing in for the
//! neighbour; each test uses its own 127.0.N.x addresses.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tern::api::control::proto::{BfdReply, Request};
use tern::bfd::{BfdHandle, BfdPeer, BfdSettings, BfdTimers};
use tern_testkit::inproc::*;

/// 50 ms × 3: detection in 150 ms.
const FAST: &str = "[bfd]\nmin_rx_ms = 50\nmin_tx_ms = 50\nmultiplier = 3\n";

/// The neighbour's BFD: the daemon's own BFD task in a runtime of its own,
/// so dropping it silences the neighbour without a word (no AdminDown).
struct Neighbour {
    rt: tokio::runtime::Runtime,
    bfd: BfdHandle,
}

impl Neighbour {
    fn start(own: &str, ternd: &str) -> Neighbour {
        Neighbour::start_with(own, ternd, false)
    }

    /// With `multihop`, RFC 5883 (UDP 4784).
    fn start_with(own: &str, ternd: &str, multihop: bool) -> Neighbour {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let own: IpAddr = own.parse().expect("address");
        let timers = BfdTimers {
            min_tx: Duration::from_millis(50),
            min_rx: Duration::from_millis(50),
            multiplier: 3,
        };
        let (bfd, _notices) = rt.block_on(async { tern::bfd::spawn(BfdSettings::new(vec![own], timers)) });
        bfd.add(BfdPeer {
            name: "ternd".into(),
            remote: ternd.parse().expect("address"),
            local: Some(own),
            multihop,
        });
        Neighbour { rt, bfd }
    }

    fn sessions(&self) -> Vec<BfdReply> {
        self.rt.block_on(self.bfd.sessions())
    }

    /// Gone at once: its tasks dropped, its sockets closed, nothing sent.
    fn vanish(self) {
        self.rt.shutdown_background();
    }
}

fn bfd(node: &Node) -> Vec<BfdReply> {
    node.ternctl(Request::Bfd).expect("show bfd")
}

fn bfd_state(node: &Node) -> String {
    bfd(node).first().map(|b| b.state.clone()).unwrap_or_default()
}

/// ternd at `.1` with a BFD iBGP peer h2 at `.2`; h2's BGP connected and
/// announcing a block; the neighbour's BFD up.
fn up(net: u8) -> (Node, tern_testkit::testpeer::TestPeer, Neighbour) {
    let ternd = format!("127.0.{net}.1");
    let h2_addr = format!("127.0.{net}.2");
    let node = Node::start_on(&ternd, &format!("{FAST}{}bfd = true\n", ibgp_peer("h2", &h2_addr)));
    let mut h2 = node.connect(&h2_addr, ASN).expect("h2 connects");
    node.wait_state("h2", "Established");
    h2.announce(&[self::net("10.244.2.0/26")], "192.168.1.12".parse().unwrap(), vec![])
        .expect("announce");
    node.wait_until("h2's block is in the kernel", || {
        node.kernel_gateways("10.244.2.0/26").is_some()
    });
    let neighbour = Neighbour::start(&h2_addr, &ternd);
    node.wait_until("BFD is Up", || bfd_state(&node) == "Up");
    (node, h2, neighbour)
}

#[test]
fn bfd_comes_up_and_a_silent_neighbour_takes_bgp_down_at_once() {
    let (node, mut h2, neighbour) = up(41);
    let b = &bfd(&node)[0];
    assert_eq!((b.peer.as_str(), b.remote.to_string().as_str()), ("h2", "127.0.41.2"));
    assert_eq!(b.local.map(|a| a.to_string()).as_deref(), Some("127.0.41.1"));
    assert!(!b.multihop, "127.0.41.2 is on lo's 127.0.0.0/8: single hop");
    assert_eq!((b.tx_interval_us, b.rx_interval_us), (50_000, 50_000), "{b:?}");
    assert_eq!(b.detection_time_us, Some(150_000));
    // `show bfd --json` field names are an interface too (see api.rs).
    let json = serde_json::to_value(b).expect("json");
    let mut fields: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, BFD_FIELDS);
    assert_eq!(node.peer("h2").bfd.as_deref(), Some("Up"));
    assert_eq!(neighbour.sessions()[0].state, "Up");
    let metrics = http_get(&node, "/metrics");
    assert!(metrics.contains("tern_bfd_sessions_up 1"), "{metrics}");
    // BIRD 2's `show bfd sessions` (proto/bfd/bfd.c), code 1020.
    let lines = node.birdc("show bfd sessions");
    assert_eq!(lines[0], "1020-bfd1:", "{lines:#?}");
    assert_eq!(
        lines[1],
        " IP address                Interface  State      Since         Interval  Timeout"
    );
    assert!(
        lines[2].starts_with(" 127.0.41.2                lo         Up         "),
        "{lines:#?}"
    );
    assert!(lines[2].ends_with("    0.050    0.150"), "{lines:#?}");
    assert_eq!(lines[3], "0000 ");

    // The neighbour goes silent: BFD's detection time (150 ms), not BGP's
    // hold time (90 s), ends the session and takes its routes away.
    let gone = Instant::now();
    neighbour.vanish();
    let n = h2
        .expect_notification(Instant::now() + PATIENCE)
        .expect("read")
        .expect("a NOTIFICATION when BFD goes down");
    assert_eq!(n.code, 6, "Cease: {n:?}");
    node.wait_until("h2's block left the kernel", || {
        node.kernel_gateways("10.244.2.0/26").is_none()
    });
    assert!(gone.elapsed() < Duration::from_secs(5), "took {:?}", gone.elapsed());
    let b = &bfd(&node)[0];
    assert_eq!(b.state, "Down");
    assert_eq!(b.diagnostic, "control detection time expired");
    let p = node.peer("h2");
    assert!(p.last_error.as_ref().is_some_and(|e| e.contains("BFD")), "{p:?}");
    let metrics = http_get(&node, "/metrics");
    assert!(metrics.contains("tern_bfd_sessions_up 0"), "{metrics}");

    // BGP comes back normally (BFD still Down: no flap, see daemon/bfd.rs).
    // (After the FSM's idle hold time: connections before it are refused.)
    let mut again = None;
    node.wait_until("h2 is served again", || {
        again = node.connect("127.0.41.2", ASN).ok();
        again.is_some()
    });
    node.wait_state("h2", "Established");
}

#[test]
fn a_neighbours_admin_down_leaves_bgp_up() {
    let (node, mut h2, neighbour) = up(42);
    // RFC 5882 §3.2: AdminDown is not a path failure.
    neighbour.rt.block_on(neighbour.bfd.stop());
    node.wait_until("BFD is Down", || bfd_state(&node) == "Down");
    assert_eq!(bfd(&node)[0].diagnostic, "neighbor signaled session down");
    // The Up -> Down notice would have been handled before this answer.
    let deadline = Instant::now() + Duration::from_millis(300);
    assert!(!h2.wait_closed(deadline), "the BGP session stays up");
    assert_eq!(node.peer("h2").state, "Established");
    assert!(node.kernel_gateways("10.244.2.0/26").is_some());
}

#[test]
fn a_reload_changes_bfd_timers_without_touching_bgp() {
    let (node, mut h2, neighbour) = up(43);
    let since = node.peer("h2").since_unix;
    let text = std::fs::read_to_string(&node.config_path).expect("config");
    node.reload_raw(&text.replace("min_tx_ms = 50", "min_tx_ms = 80"))
        .expect("reload");
    // A Poll Sequence (RFC 5880 §6.8.3): the neighbour now receives at 80 ms.
    node.wait_until("the new interval is in force", || {
        bfd(&node)[0].tx_interval_us == 80_000 && neighbour.sessions()[0].rx_interval_us == 80_000
    });
    assert_eq!(bfd_state(&node), "Up");
    assert!(!h2.wait_closed(Instant::now() + Duration::from_millis(100)));
    let peer = node.peer("h2");
    assert_eq!((peer.state.as_str(), peer.since_unix), ("Established", since));
    // bfd = false: the session ends with AdminDown; BGP stays.
    node.reload_raw(&text.replace("bfd = true\n", "")).expect("reload");
    node.wait_until("no BFD session", || bfd(&node).is_empty());
    assert_eq!(node.peer("h2").state, "Established");
    assert_eq!(node.peer("h2").bfd, None);
    // And back on: a new session comes Up, BGP still untouched.
    node.reload_raw(&text).expect("reload");
    node.wait_until("BFD is Up again", || bfd_state(&node) == "Up");
    assert!(!h2.wait_closed(Instant::now() + Duration::from_millis(100)));
    assert_eq!(node.peer("h2").since_unix, since);
}

#[test]
fn multihop_ebgp_runs_rfc_5883_and_a_graceful_stop_says_admin_down() {
    let peer = ebgp_peer("tor", "127.0.44.2", 65001);
    let node = Node::start_on("127.0.44.1", &format!("{FAST}{peer}multihop = 2\nbfd = true\n"));
    let neighbour = Neighbour::start_with("127.0.44.2", "127.0.44.1", true);
    node.wait_until("BFD is Up", || bfd_state(&node) == "Up");
    assert!(bfd(&node)[0].multihop, "eBGP multihop 2: RFC 5883");
    assert_eq!(neighbour.sessions()[0].state, "Up");
    // A graceful stop (SIGTERM) sends AdminDown: the neighbour must not
    // take it for a path failure (RFC 5882 §3.2).
    let mut node = node;
    node.stop();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = &neighbour.sessions()[0];
        if s.state == "Down" {
            assert_eq!(s.diagnostic, "neighbor signaled session down", "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "neighbour still {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_dynamic_peer_gets_a_bfd_session_while_its_bgp_session_lasts() {
    let range = "[[dynamic_peers]]\nrange = \"127.0.45.0/24\"\nbfd = true\n";
    let node = Node::start_on("127.0.45.1", &format!("{FAST}{range}"));
    assert!(bfd(&node).is_empty(), "no session before a peer is admitted");
    let h2 = node.connect("127.0.45.2", ASN).expect("h2 admitted");
    let neighbour = Neighbour::start("127.0.45.2", "127.0.45.1");
    node.wait_until("BFD is Up", || bfd_state(&node) == "Up");
    assert_eq!(
        bfd(&node)[0].local.map(|a| a.to_string()).as_deref(),
        Some("127.0.45.1")
    );
    assert_eq!(neighbour.sessions()[0].state, "Up");
    // A reload that turns BFD off for the range ends the session, and on again starts it.
    let text = std::fs::read_to_string(&node.config_path).expect("config");
    node.reload_raw(&text.replace("bfd = true\n", "")).expect("reload");
    node.wait_until("no BFD session", || bfd(&node).is_empty());
    node.reload_raw(&text).expect("reload");
    node.wait_until("BFD is Up again", || bfd_state(&node) == "Up");
    // Its BGP session ends: the dynamic peer is gone, and its BFD session with it.
    drop(h2);
    node.wait_until("no BFD session", || bfd(&node).is_empty());
}

/// `ternctl show bfd --json`: one object per session with these fields.
const BFD_FIELDS: &[&str] = &[
    "detection_time_us",
    "diagnostic",
    "interface",
    "local",
    "local_discriminator",
    "multihop",
    "multiplier",
    "peer",
    "remote",
    "remote_discriminator",
    "remote_multiplier",
    "remote_state",
    "rx_interval_us",
    "since_secs",
    "since_unix",
    "since_unix_ms",
    "state",
    "tx_interval_us",
];

/// GET `path` from the node's metrics endpoint.
fn http_get(node: &Node, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(node.metrics_addr()).expect("metrics");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}
