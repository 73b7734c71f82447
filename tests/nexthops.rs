//! Routes that survive link failures: a dual-homed host keeps its routes
//! when one uplink dies. The host runs ternd with eBGP sessions to two
//! top-of-rack routers (BIRD 2, both AS 65001) that announce the same
//! `10.244.9.0/26`; the paths tie through RFC 4271 §9.1.2.2 (same LOCAL_PREF,
//! AS path length, ORIGIN, neighbouring AS, both eBGP) so ternd installs one
//! ECMP kernel route via both ToRs. When one uplink fails, the route must keep
//! the next hop that still resolves (RFC 4271 §9.1.2: a route whose NEXT_HOP
//! is unresolvable is not usable) — replaced in place, never deleted — and a
//! pod behind the host keeps reaching the server behind the ToRs.
//!
//! Topology (every namespace made by the test; `sw` holds one bridge per segment):
//!
//! ```text
//!   pod (10.244.1.x/32, Calico-style cali veth)
//!    |
//!   host: ternd AS 64512, originates 10.244.1.0/26
//!    eth0 172.16.1.1/30 --[sw br1]-- tor1 eth0 172.16.1.2/30   BIRD AS 65001
//!    eth1 172.16.2.1/30 --[sw br2]-- tor2 eth0 172.16.2.2/30   BIRD AS 65001
//!                                    tor1 eth1 10.244.9.2/26 --[sw br9]-- server 10.244.9.1/26
//!                                    tor2 eth1 10.244.9.3/26 --[sw br9]
//! ```
//!
//! Both ToRs forward 10.244.1.0/26 back to the host over their own uplink;
//! the server returns everything via tor1, so replies never depend on the
//! uplink the tests break (tor2's).
//!
//! Evidence is gathered while the failure happens: `ping -i 0.01` from a pod
//! (per-sequence replies), `ip -o monitor route` in the host (any `Deleted`
//! line for the block is a flap), and the kernel route sampled every few ms.
//! Needs root, bird2 and ping (skips otherwise).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_testkit::*;

const TOR_ASN: u32 = 65001;
/// What both ToRs announce; the server's segment.
const BLOCK: &str = "10.244.9.0/26";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 244, 9, 1);
/// The host's pod block (host index 1).
const POD_BLOCK: &str = "10.244.1.0/26";
const HOST_ETH0: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
const TOR1: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
const HOST_ETH1: Ipv4Addr = Ipv4Addr::new(172, 16, 2, 1);
const TOR2: Ipv4Addr = Ipv4Addr::new(172, 16, 2, 2);

// ---------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------

/// BIRD as a ToR: eBGP to the host over its uplink, announcing [`BLOCK`]
/// (a static route, no kernel protocol: the ToR's kernel forwarding is set up
/// by the test) with `next hop self`.
fn tor_bird_config(me: Ipv4Addr, host: Ipv4Addr, hold: u16) -> String {
    let keepalive = (hold / 3).max(1);
    format!(
        r#"router id {me};
protocol device {{ scan time 2; }}
protocol static {{
  ipv4;
  route {BLOCK} blackhole;
}}
protocol bgp host {{
  local {me} as {TOR_ASN};
  neighbor {host} as {ASN};
  direct;
  hold time {hold};
  keepalive time {keepalive};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }};
}}
"#
    )
}

/// ternd on the host: eBGP to both ToRs with hold time `hold`.
fn host_config(hold: u16) -> String {
    let keepalive = (hold / 3).max(1);
    let peer = |name: &str, addr: Ipv4Addr| {
        format!(
            r#"
[[peer]]
name = "{name}"
address = "{addr}"
asn = {TOR_ASN}
hold_time = {hold}
keepalive_time = {keepalive}
families = ["ipv4"]
"#
        )
    };
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{HOST_ETH0}"
listen = ["0.0.0.0:179"]
connect_retry_time = 1

[kernel]
ipip = "never"
allowed_prefixes = ["10.244.0.0/16"]

[[originate]]
prefix = "{POD_BLOCK}"
{}{}"#,
        peer("tor1", TOR1),
        peer("tor2", TOR2)
    )
}

/// The dual-homed host, its ToRs and the server. Field order is drop order:
/// daemons first, then pods and namespaces.
struct DualHomed {
    tern: Ternd,
    _bird1: Bird,
    _bird2: Bird,
    pods: Vec<Pod>,
    host: Host,
    _tor1: Netns,
    _tor2: Netns,
    _server: Netns,
    switch: Netns,
}

impl DualHomed {
    /// Builds the topology, starts BIRD on both ToRs and ternd on the host
    /// (BGP hold time `hold` on both sides), and waits until ternd installed
    /// one multipath route for [`BLOCK`] via both ToRs.
    fn start(hold: u16) -> DualHomed {
        let switch = Netns::new("sw");
        for br in ["br1", "br2", "br9"] {
            switch.ip(&format!("link add {br} type bridge"));
            switch.ip(&format!("link set {br} up"));
        }
        let host_ns = Netns::new("h");
        let tor1 = Netns::new("t1");
        let tor2 = Netns::new("t2");
        let server = Netns::new("sv");
        // (namespace, its interface, its address, switch port, bridge)
        let ports: [(&Netns, &str, String, &str, &str); 7] = [
            (&host_ns, "eth0", format!("{HOST_ETH0}/30"), "u1h", "br1"),
            (&tor1, "eth0", format!("{TOR1}/30"), "u1t", "br1"),
            (&host_ns, "eth1", format!("{HOST_ETH1}/30"), "u2h", "br2"),
            (&tor2, "eth0", format!("{TOR2}/30"), "u2t", "br2"),
            (&tor1, "eth1", "10.244.9.2/26".into(), "s9a", "br9"),
            (&tor2, "eth1", "10.244.9.3/26".into(), "s9b", "br9"),
            (&server, "eth0", format!("{SERVER}/26"), "s9s", "br9"),
        ];
        for (ns, dev, addr, port, br) in &ports {
            veth(ns, dev, &switch, port);
            switch.ip(&format!("link set {port} master {br} up"));
            ns.ip(&format!("addr add {addr} dev {dev}"));
            ns.ip(&format!("link set {dev} up"));
        }
        for ns in [&host_ns, &tor1, &tor2] {
            ns.sysctl("net.ipv4.ip_forward", "1");
        }
        // Each ToR sends the pod block back over its own uplink; the server
        // answers via tor1 only, whatever happens to tor2.
        tor1.ip(&format!("route add {POD_BLOCK} via {HOST_ETH0}"));
        tor2.ip(&format!("route add {POD_BLOCK} via {HOST_ETH1}"));
        server.ip(&format!("route add {POD_BLOCK} via 10.244.9.2"));
        // Pods reach the host through proxy ARP for 169.254.1.1, which answers
        // only when the host has a route for it; Calico hosts have a default
        // route, this one has none (a static default via a ToR would hide a
        // lost route), so a /32 stands in.
        host_ns.ip("route add 169.254.1.1/32 dev lo");

        let host = Host {
            ns: host_ns,
            index: 1,
            subnet: 0,
            addr: HOST_ETH0,
        };
        let bird1 = Bird::start(&tor1, &tor_bird_config(TOR1, HOST_ETH0, hold));
        let bird2 = Bird::start(&tor2, &tor_bird_config(TOR2, HOST_ETH1, hold));
        let tern = Ternd::start(&host.ns, &host_config(hold));
        let t = DualHomed {
            tern,
            _bird1: bird1,
            _bird2: bird2,
            pods: Vec::new(),
            host,
            _tor1: tor1,
            _tor2: tor2,
            _server: server,
            switch,
        };
        let took = wait_until_diag(
            Duration::from_secs(20),
            "ternd installing one multipath route for 10.244.9.0/26 via both ToRs",
            || t.state() == RouteState::Both,
            || t.diag(),
        );
        let r = t.route().expect("route");
        assert_eq!(r.metric, Some(32), "metric of ternd's route: {r:?}");
        println!("multipath route via {TOR1} and {TOR2} after {took:?}: {r:?}");
        t
    }

    fn route(&self) -> Option<KernelRoute> {
        find(&self.host.routes("proto bird"), BLOCK).cloned()
    }

    fn state(&self) -> RouteState {
        RouteState::of(self.route().as_ref())
    }

    fn diag(&self) -> String {
        format!(
            "host routes:\n{}\n{}\n--- ternd log tail\n{}",
            show(&self.host.routes("")),
            self.tern.peers_summary(),
            self.tern.log_tail(20)
        )
    }

    /// A pod on the host (not one of `taken`) whose flow to the server the
    /// kernel hashes onto `dev` (eth0: tor1, eth1: tor2): an existing one or
    /// a new one, up to 16 new pods.
    fn pod_via(&mut self, dev: &str, taken: &[usize]) -> usize {
        if let Some(i) = (0..self.pods.len()).find(|i| !taken.contains(i) && self.hashed_onto(*i) == dev) {
            return i;
        }
        for _ in 0..16 {
            let k = u8::try_from(self.pods.len()).expect("pod count");
            self.pods.push(self.host.add_pod(k));
            if self.hashed_onto(self.pods.len() - 1) == dev {
                return self.pods.len() - 1;
            }
        }
        panic!("no pod among 16 is hashed onto {dev}:\n{}", self.diag());
    }

    /// The uplink the kernel forwards pod `i`'s packets to the server on
    /// (`ip route get SERVER from POD iif caliX`).
    fn hashed_onto(&self, i: usize) -> String {
        let out = self.host.ns.ip(&format!(
            "-j route get {SERVER} from {} iif cali1x{i}",
            self.pods[i].addr
        ));
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("route get ({e}): {out}"));
        v[0]["dev"].as_str().unwrap_or_default().to_string()
    }

    /// Packets the host sent on `dev`.
    fn tx_packets(&self, dev: &str) -> u64 {
        let out = self.host.ns.ip(&format!("-s -j link show {dev}"));
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("link show ({e}): {out}"));
        v[0]["stats64"]["tx"]["packets"].as_u64().expect("tx packets")
    }

    fn peer_state(&self, addr: Ipv4Addr) -> String {
        self.tern
            .peer(&addr.to_string())
            .map(|p| p["state"].as_str().unwrap_or("?").to_string())
            .unwrap_or_else(|| "not listed".into())
    }
}

/// What the kernel holds for [`BLOCK`], as far as the tests care.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteState {
    Missing,
    /// One multipath route via tor1 and tor2, no next hop dead.
    Both,
    /// A single-path route via tor1.
    Tor1Only,
    /// Anything else, e.g. a next hop the kernel marked dead.
    Other(String),
}

impl RouteState {
    fn of(r: Option<&KernelRoute>) -> RouteState {
        let Some(r) = r else { return RouteState::Missing };
        let (tor1, tor2) = (TOR1.to_string(), TOR2.to_string());
        let hops: Vec<(Option<&str>, Option<&str>, bool)> = r
            .nexthops
            .iter()
            .map(|h| {
                (
                    h.gateway.as_deref(),
                    h.dev.as_deref(),
                    h.flags.iter().any(|f| f == "dead"),
                )
            })
            .collect();
        if hops.len() == 2
            && hops.contains(&(Some(tor1.as_str()), Some("eth0"), false))
            && hops.contains(&(Some(tor2.as_str()), Some("eth1"), false))
        {
            return RouteState::Both;
        }
        if r.nexthops.is_empty() && r.gateway.as_deref() == Some(tor1.as_str()) && r.dev.as_deref() == Some("eth0") {
            return RouteState::Tor1Only;
        }
        RouteState::Other(format!("{r:?}"))
    }
}

/// Samples the route every 5 ms from `start` until `want` (returning when it
/// was first seen) or `limit`; every distinct state seen on the way is
/// recorded in `seen` with its time.
fn sample_until(
    t: &DualHomed,
    start: Instant,
    want: &RouteState,
    limit: Duration,
    seen: &mut Vec<(Duration, RouteState)>,
) -> Option<Duration> {
    loop {
        let s = t.state();
        let at = start.elapsed();
        if seen.last().map(|(_, l)| l) != Some(&s) {
            seen.push((at, s.clone()));
        }
        if &s == want {
            return Some(at);
        }
        if at > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn show_seen(seen: &[(Duration, RouteState)]) -> String {
    seen.iter()
        .map(|(at, s)| format!("  +{:.1} ms {s:?}", at.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Breaks: `ip link set eth1 down` on the host (tor2's uplink; the kernel
/// sees it at once), later `up` again. BGP hold time 30 s, so nothing but the
/// link notification can explain a change within the second.
/// Asserts: within 1 s the ECMP route is a single path via tor1, never
/// absent in any sample and never `Deleted` in `ip monitor`; a pod whose
/// flow was hashed onto tor2 loses no ping; after `up` the route is
/// multipath via both again.
#[test]
fn uplink_down_keeps_the_other_next_hop() {
    let test = "uplink_down_keeps_the_other_next_hop";
    if !require(test, &["bird", "birdc", "ping"]) {
        return;
    }
    let mut t = DualHomed::start(30);
    let p = t.pod_via("eth1", &[]);
    let pod = &t.pods[p];
    let monitor = RouteMonitor::start(&t.host.ns, "host");
    let ping = Pinger::start(pod, SERVER, "0.01");

    // The flow really crosses tor2's uplink before the failure.
    let tx0 = t.tx_packets("eth1");
    let mut replies = ping.wait_more_than(ping.replies(), 50);
    let via_eth1 = t.tx_packets("eth1") - tx0;
    println!("{}: {via_eth1} packets out of eth1 during 50 replies", ping.what);
    assert!(via_eth1 >= 40, "the pod's flow does not use eth1 ({via_eth1} packets)");

    // Down: the route must become tor1-only within a second.
    let mut seen = Vec::new();
    let start = Instant::now();
    t.host.ns.ip("link set eth1 down");
    let down = sample_until(&t, start, &RouteState::Tor1Only, Duration::from_secs(5), &mut seen);
    println!("after `ip link set eth1 down`:\n{}", show_seen(&seen));
    let down = down.unwrap_or_else(|| panic!("the route never became tor1-only:\n{}", t.diag()));
    println!(
        "single path via tor1 after {:.1} ms; ternd's tor2 session: {}",
        down.as_secs_f64() * 1000.0,
        t.peer_state(TOR2)
    );
    assert!(
        !seen.iter().any(|(_, s)| *s == RouteState::Missing),
        "the route was absent in a sample:\n{}",
        show_seen(&seen)
    );
    assert!(down <= Duration::from_secs(1), "single path only after {down:?}");
    // Pings keep flowing on tor1's path meanwhile (half a second of them).
    replies = ping.wait_more_than(replies, 50);
    assert_eq!(t.state(), RouteState::Tor1Only, "{}", t.diag());

    // Up: both next hops come back.
    let mut seen = Vec::new();
    let start = Instant::now();
    t.host.ns.ip("link set eth1 up");
    let up = sample_until(&t, start, &RouteState::Both, Duration::from_secs(10), &mut seen);
    println!("after `ip link set eth1 up`:\n{}", show_seen(&seen));
    let up = up.unwrap_or_else(|| panic!("the multipath route did not come back:\n{}", t.diag()));
    println!(
        "multipath via both again after {:.1} ms; ternd's tor2 session: {}",
        up.as_secs_f64() * 1000.0,
        t.peer_state(TOR2)
    );
    assert!(
        !seen.iter().any(|(_, s)| *s == RouteState::Missing),
        "the route was absent in a sample:\n{}",
        show_seen(&seen)
    );
    let tx1 = t.tx_packets("eth1");
    ping.wait_more_than(replies, 50);
    println!(
        "{} packets out of eth1 during the last 50 replies",
        t.tx_packets("eth1") - tx1
    );

    let report = ping.stop();
    let deleted = monitor.deletions(BLOCK);
    println!("{}", monitor.show(BLOCK));
    assert!(
        deleted.is_empty(),
        "the kernel route was deleted:\n{}",
        monitor.show(BLOCK)
    );
    assert!(report.lost.is_empty(), "pings lost: {report:?}");
    let answered = report.received + u32::from(report.in_flight.is_some());
    assert_eq!(answered, report.transmitted, "{report:?}");
}

/// Breaks: tor2's port on its uplink bridge goes down (the host's eth1
/// stays up, so the kernel and ternd see nothing until the BGP hold timer,
/// 3 s, expires), later up again.
/// Asserts: the route keeps both next hops while the link looks up and
/// becomes tor1-only once the hold timer expired (never absent, never
/// `Deleted`); a pod hashed onto tor1 loses no ping at all; a pod hashed
/// onto tor2 is answered again once the route is tor1-only (its loss is
/// reported); after the port returns and the session re-establishes, the
/// route is multipath via both again.
#[test]
fn silent_tor_failure_falls_back_at_hold_timer() {
    let test = "silent_tor_failure_falls_back_at_hold_timer";
    if !require(test, &["bird", "birdc", "ping"]) {
        return;
    }
    const HOLD: u16 = 3;
    let mut t = DualHomed::start(HOLD);
    let a = t.pod_via("eth0", &[]);
    let b = t.pod_via("eth1", &[a]);
    let monitor = RouteMonitor::start(&t.host.ns, "host");
    let ping_a = Pinger::start(&t.pods[a], SERVER, "0.01");
    let ping_b = Pinger::start(&t.pods[b], SERVER, "0.01");

    let mut seen = Vec::new();
    let start = Instant::now();
    t.switch.ip("link set u2t down");
    let fallback = sample_until(
        &t,
        start,
        &RouteState::Tor1Only,
        Duration::from_secs(u64::from(HOLD) + 5),
        &mut seen,
    );
    println!("after tor2's bridge port went down:\n{}", show_seen(&seen));
    let fallback = fallback.unwrap_or_else(|| panic!("the route never became tor1-only:\n{}", t.diag()));
    println!(
        "single path via tor1 after {:.1} ms (hold time {HOLD} s); ternd's tor2 session: {}",
        fallback.as_secs_f64() * 1000.0,
        t.peer_state(TOR2)
    );
    let eth1 = t.host.ns.ip("-j link show eth1");
    assert!(eth1.contains("\"LOWER_UP\""), "eth1 should look up on the host: {eth1}");
    assert_eq!(
        seen.first().map(|(_, s)| s),
        Some(&RouteState::Both),
        "changed before the hold timer:\n{}",
        show_seen(&seen)
    );
    assert!(
        !seen.iter().any(|(_, s)| *s == RouteState::Missing),
        "the route was absent in a sample:\n{}",
        show_seen(&seen)
    );
    // The hold timer runs from the last KEEPALIVE (every HOLD/3 s), so it
    // expires between about HOLD - HOLD/3 and HOLD seconds after the failure.
    let hold = Duration::from_secs(u64::from(HOLD));
    assert!(
        fallback >= hold / 2 && fallback <= hold + Duration::from_secs(1),
        "tor1-only after {fallback:?}, not when the {hold:?} hold timer expired:\n{}",
        show_seen(&seen)
    );
    // The pod on tor2's path is answered again (via tor1).
    let rb = ping_b.wait_more_than(ping_b.replies(), 50);

    let mut seen = Vec::new();
    let start = Instant::now();
    t.switch.ip("link set u2t up");
    let back = sample_until(&t, start, &RouteState::Both, Duration::from_secs(20), &mut seen);
    println!("after tor2's bridge port came back:\n{}", show_seen(&seen));
    let back = back.unwrap_or_else(|| panic!("the multipath route did not come back:\n{}", t.diag()));
    println!("multipath via both again after {:.1} ms", back.as_secs_f64() * 1000.0);
    ping_b.wait_more_than(rb, 50);
    ping_a.wait_more_than(ping_a.replies(), 50);

    let report_b = ping_b.stop();
    let report_a = ping_a.stop();
    let deleted = monitor.deletions(BLOCK);
    println!("{}", monitor.show(BLOCK));
    assert!(
        deleted.is_empty(),
        "the kernel route was deleted:\n{}",
        monitor.show(BLOCK)
    );
    assert!(report_a.lost.is_empty(), "pings lost on tor1's path: {report_a:?}");
    println!(
        "tor2's path lost {} of {} pings while the hold timer ran: no reply for {:.1} ms (the route changed after {:.1} ms)",
        report_b.lost.len(),
        report_b.transmitted,
        report_b.max_gap.as_secs_f64() * 1000.0,
        fallback.as_secs_f64() * 1000.0
    );
    // Its outage ends with the fallback (within a second of it), not later.
    assert!(
        report_b.max_gap <= fallback + Duration::from_secs(1),
        "tor2's path was out longer than the hold timer: {report_b:?}"
    );
}
