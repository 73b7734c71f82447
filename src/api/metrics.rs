//! Prometheus text metrics over HTTP: `GET /metrics` on `[metrics] listen`
//! returns text exposition format 0.0.4. A tiny HTTP/1.1 responder (one
//! request per connection, then close) keeps the dependency list short; the
//! numbers come from the peers' status cells, a RIB summary and fib-sync's
//! counters, so a scrape never blocks the RIB.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::accept::AcceptBackoff;
use crate::messages::RibSummary;
use crate::registry::Registry;

/// Largest request head we read; scrapers send a few hundred bytes.
const MAX_REQUEST: usize = 8192;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The BGP states a peer can be in (RFC 4271 §8.2.2), one series each.
const STATES: [&str; 6] = ["Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"];

/// One peer's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMetrics {
    pub name: String,
    pub address: String,
    pub state: String,
    pub prefixes_received: usize,
    pub prefixes_advertised: usize,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub malformed_updates: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub peers: Vec<PeerMetrics>,
    /// None when the RIB did not answer in time.
    pub rib: Option<RibSummary>,
    /// None when kernel sync is disabled.
    pub fib: Option<fib_sync::Stats>,
    pub uptime_seconds: f64,
    /// BFD counters: sessions, sessions Up, state changes, discarded packets
    /// (None while no configuration asked for BFD).
    pub bfd: Option<(usize, usize, u64, u64)>,
}

/// A per-peer series: name, help text, how to read the value.
type PeerSeries = (&'static str, &'static str, fn(&PeerMetrics) -> u64);

/// Escapes a label value: backslash, double quote and newline (exposition format 0.0.4).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let labels = |p: &PeerMetrics| format!("peer=\"{}\",address=\"{}\"", escape(&p.name), escape(&p.address));

    family(&mut out, "tern_up", "gauge", "1 while ternd is running.");
    out.push_str("tern_up 1\n");
    family(&mut out, "tern_uptime_seconds", "gauge", "Seconds since ternd started.");
    let _ = writeln!(out, "tern_uptime_seconds {:.3}", s.uptime_seconds);

    family(
        &mut out,
        "tern_peer_up",
        "gauge",
        "1 when the BGP session is Established.",
    );
    for p in &s.peers {
        let _ = writeln!(
            out,
            "tern_peer_up{{{}}} {}",
            labels(p),
            u8::from(p.state == "Established")
        );
    }
    family(
        &mut out,
        "tern_peer_state",
        "gauge",
        "BGP FSM state of the session (RFC 4271 section 8.2.2); 1 for the current state.",
    );
    for p in &s.peers {
        for st in STATES {
            let _ = writeln!(
                out,
                "tern_peer_state{{{},state=\"{st}\"}} {}",
                labels(p),
                u8::from(p.state == st)
            );
        }
    }
    let gauges: [PeerSeries; 2] = [
        (
            "tern_peer_prefixes_received",
            "Prefixes currently accepted from the peer (Adj-RIB-In).",
            |p| p.prefixes_received as u64,
        ),
        (
            "tern_peer_prefixes_advertised",
            "Prefixes currently advertised to the peer (Adj-RIB-Out).",
            |p| p.prefixes_advertised as u64,
        ),
    ];
    for (name, help, get) in gauges {
        family(&mut out, name, "gauge", help);
        for p in &s.peers {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(p), get(p));
        }
    }
    let counters: [PeerSeries; 4] = [
        (
            "tern_peer_messages_received_total",
            "BGP messages received from the peer.",
            |p| p.messages_received,
        ),
        ("tern_peer_messages_sent_total", "BGP messages sent to the peer.", |p| {
            p.messages_sent
        }),
        (
            "tern_peer_updates_received_total",
            "UPDATE messages received from the peer.",
            |p| p.updates_received,
        ),
        (
            "tern_peer_malformed_updates_total",
            "UPDATEs with attribute errors handled per RFC 7606.",
            |p| p.malformed_updates,
        ),
    ];
    for (name, help, get) in counters {
        family(&mut out, name, "counter", help);
        for p in &s.peers {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(p), get(p));
        }
    }

    if let Some(rib) = &s.rib {
        let rib_gauges = [
            ("tern_rib_prefixes", "Prefixes in the Loc-RIB.", rib.prefixes),
            ("tern_rib_paths", "Paths (all peers) in the Loc-RIB.", rib.paths),
            (
                "tern_rib_attribute_sets",
                "Distinct interned path attribute sets.",
                rib.attribute_sets,
            ),
            (
                "tern_rib_kernel_routes",
                "Routes the RIB wants in the kernel.",
                rib.kernel_routes,
            ),
            (
                "tern_rib_learned_routes",
                "Kernel routes of other programs announced ([learn]).",
                rib.learned,
            ),
            (
                "tern_rib_stale_paths",
                "Paths kept as stale for peers in graceful restart (RFC 4724).",
                rib.stale.iter().map(|s| s.paths).sum(),
            ),
        ];
        for (name, help, v) in rib_gauges {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
    }

    if let Some(f) = &s.fib {
        let fib_counters = [
            (
                "tern_fib_installs_total",
                "Kernel route adds/replaces that succeeded.",
                f.installs,
            ),
            (
                "tern_fib_deletes_total",
                "Kernel route deletes that succeeded.",
                f.deletes,
            ),
            (
                "tern_fib_conflicts_total",
                "Times a wanted route was blocked by a route of another protocol.",
                f.conflicts,
            ),
            ("tern_fib_errors_total", "Kernel errors on route operations.", f.errors),
        ];
        for (name, help, v) in fib_counters {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        family(
            &mut out,
            "tern_fib_pending",
            "gauge",
            "Kernel routes not yet as wanted (queued, unresolved, conflicting or failing).",
        );
        let _ = writeln!(out, "tern_fib_pending {}", f.pending);
    }

    if let Some((sessions, up, changes, discarded)) = s.bfd {
        let bfd = [
            (
                "tern_bfd_sessions",
                "gauge",
                "BFD sessions configured.",
                sessions as u64,
            ),
            ("tern_bfd_sessions_up", "gauge", "BFD sessions in state Up.", up as u64),
            (
                "tern_bfd_state_changes_total",
                "counter",
                "BFD session state changes (RFC 5880 §6.2).",
                changes,
            ),
            (
                "tern_bfd_discarded_packets_total",
                "counter",
                "BFD packets discarded: wrong TTL (RFC 5881 §5), invalid (RFC 5880 §6.8.6), or for no session.",
                discarded,
            ),
        ];
        for (name, kind, help, v) in bfd {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
    }
    out
}

/// Collects a snapshot from the running daemon.
pub async fn snapshot(registry: &Registry) -> Snapshot {
    let rib = registry.rib_summary().await.ok();
    let peers = registry
        .statuses()
        .into_iter()
        .map(|(h, st)| {
            let (received, advertised) = rib.as_ref().map_or((0, 0), |r| r.counts(h.settings.id));
            PeerMetrics {
                name: h.settings.name.clone(),
                address: h.settings.address.to_string(),
                state: st.state.as_str().to_string(),
                prefixes_received: received,
                prefixes_advertised: advertised,
                messages_received: st.messages_in,
                messages_sent: st.messages_out,
                updates_received: st.updates_in,
                malformed_updates: st.malformed_updates,
            }
        })
        .collect();
    Snapshot {
        peers,
        rib,
        fib: registry.fib.as_ref().map(|f| f.stats()),
        uptime_seconds: registry.started.elapsed().as_secs_f64(),
        bfd: registry.bfd().map(|b| b.counters.read()),
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head`: HEAD, headers only).
    Metrics {
        head: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Routes a request head (`METHOD PATH HTTP/x.y`, headers ignored).
pub fn route(head: &[u8]) -> Route {
    let text = String::from_utf8_lossy(head);
    let Some(first) = text.lines().next() else {
        return Route::BadRequest;
    };
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Route::BadRequest;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head: false },
        ("HEAD", "/metrics") => Route::Metrics { head: true },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

fn response(status: &str, content_type: &str, body: &str, head_only: bool, extra: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Reads until the blank line ending the request head; None if the client
/// closed, dawdled or sent too much.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Some(buf);
        }
        if let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            buf.truncate(end);
            return Some(buf);
        }
        if buf.len() > MAX_REQUEST {
            return Some(Vec::new());
        }
    }
}

async fn client(mut stream: TcpStream, registry: Arc<Registry>) -> std::io::Result<()> {
    let Some(head) = read_head(&mut stream).await else {
        return Ok(());
    };
    let reply = match route(&head) {
        Route::Metrics { head } => {
            let body = render(&snapshot(&registry).await);
            response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body, head, "")
        }
        Route::NotFound => response("404 Not Found", "text/plain", "not found; try /metrics\n", false, ""),
        Route::MethodNotAllowed => response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
            false,
            "Allow: GET, HEAD\r\n",
        ),
        Route::BadRequest => response("400 Bad Request", "text/plain", "bad request\n", false, ""),
    };
    stream.write_all(&reply).await?;
    stream.shutdown().await
}

/// Spawns the task serving `GET /metrics` on `listener` and returns the
/// bound address (the port is the kernel's choice when 0).
pub fn serve(listener: TcpListener, registry: Arc<Registry>) -> std::io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    info!("metrics on http://{bound}/metrics");
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        if let Err(e) = client(stream, registry).await {
                            debug!("metrics client: {e}");
                        }
                    });
                }
                Err(e) => backoff.after_error("metrics", &e).await,
            }
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{PeerCounts, PeerId};

    fn sample() -> Snapshot {
        Snapshot {
            peers: vec![
                PeerMetrics {
                    name: "Mesh_192_168_1_12".into(),
                    address: "192.168.1.12".into(),
                    state: "Established".into(),
                    prefixes_received: 3,
                    prefixes_advertised: 1,
                    messages_received: 42,
                    messages_sent: 40,
                    updates_received: 5,
                    malformed_updates: 0,
                },
                PeerMetrics {
                    name: "tor\"1\\\n".into(),
                    address: "192.168.1.1".into(),
                    state: "Active".into(),
                    prefixes_received: 0,
                    prefixes_advertised: 0,
                    messages_received: 0,
                    messages_sent: 0,
                    updates_received: 0,
                    malformed_updates: 7,
                },
            ],
            rib: Some(RibSummary {
                prefixes: 4,
                paths: 5,
                attribute_sets: 2,
                kernel_routes: 3,
                learned: 2,
                peers: vec![PeerCounts {
                    peer: PeerId(1),
                    received: 3,
                    advertised: 1,
                    families: vec![],
                }],
                stale: vec![],
                converged: true,
                deferring: false,
            }),
            fib: Some(fib_sync::Stats {
                installs: 9,
                deletes: 2,
                conflicts: 1,
                errors: 0,
                resyncs: 1,
                restores: 0,
                events: 10,
                pending: 1,
            }),
            uptime_seconds: 12.5,
            bfd: Some((2, 1, 3, 0)),
        }
    }

    /// The value of the sample line `series` (name plus labels, exactly).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .map(str::to_string)
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let t = render(&sample());
        for (name, kind) in [
            ("tern_up", "gauge"),
            ("tern_uptime_seconds", "gauge"),
            ("tern_peer_up", "gauge"),
            ("tern_peer_state", "gauge"),
            ("tern_peer_prefixes_received", "gauge"),
            ("tern_peer_prefixes_advertised", "gauge"),
            ("tern_peer_messages_received_total", "counter"),
            ("tern_peer_messages_sent_total", "counter"),
            ("tern_peer_malformed_updates_total", "counter"),
            ("tern_rib_prefixes", "gauge"),
            ("tern_rib_paths", "gauge"),
            ("tern_rib_attribute_sets", "gauge"),
            ("tern_fib_installs_total", "counter"),
            ("tern_fib_deletes_total", "counter"),
            ("tern_fib_conflicts_total", "counter"),
            ("tern_fib_errors_total", "counter"),
            ("tern_fib_pending", "gauge"),
        ] {
            let typed = format!("# TYPE {name} {kind}");
            assert!(t.lines().any(|l| l == typed), "{typed:?} missing:\n{t}");
            assert_eq!(t.matches(&format!("# TYPE {name} ")).count(), 1, "{name} typed once");
            assert_eq!(t.matches(&format!("# HELP {name} ")).count(), 1, "{name} helped once");
        }
        assert!(t.ends_with('\n'));
    }

    #[test]
    fn values_come_from_the_snapshot() {
        let t = render(&sample());
        let m = "peer=\"Mesh_192_168_1_12\",address=\"192.168.1.12\"";
        assert_eq!(value(&t, "tern_up").as_deref(), Some("1"));
        assert_eq!(value(&t, "tern_rib_learned_routes").as_deref(), Some("2"));
        assert_eq!(value(&t, "tern_uptime_seconds").as_deref(), Some("12.500"));
        assert_eq!(value(&t, &format!("tern_peer_up{{{m}}}")).as_deref(), Some("1"));
        assert_eq!(
            value(&t, &format!("tern_peer_state{{{m},state=\"Established\"}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&t, &format!("tern_peer_state{{{m},state=\"Idle\"}}")).as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&t, &format!("tern_peer_prefixes_received{{{m}}}")).as_deref(),
            Some("3")
        );
        assert_eq!(
            value(&t, &format!("tern_peer_prefixes_advertised{{{m}}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&t, &format!("tern_peer_messages_received_total{{{m}}}")).as_deref(),
            Some("42")
        );
        assert_eq!(
            value(&t, &format!("tern_peer_messages_sent_total{{{m}}}")).as_deref(),
            Some("40")
        );
        assert_eq!(value(&t, "tern_rib_prefixes").as_deref(), Some("4"));
        assert_eq!(value(&t, "tern_rib_paths").as_deref(), Some("5"));
        assert_eq!(value(&t, "tern_rib_attribute_sets").as_deref(), Some("2"));
        assert_eq!(value(&t, "tern_fib_installs_total").as_deref(), Some("9"));
        assert_eq!(value(&t, "tern_fib_deletes_total").as_deref(), Some("2"));
        assert_eq!(value(&t, "tern_fib_conflicts_total").as_deref(), Some("1"));
        assert_eq!(value(&t, "tern_fib_errors_total").as_deref(), Some("0"));
        assert_eq!(value(&t, "tern_fib_pending").as_deref(), Some("1"));
        // Exactly one state series per peer is 1.
        let ones = t
            .lines()
            .filter(|l| l.starts_with("tern_peer_state{") && l.ends_with(" 1"))
            .count();
        assert_eq!(ones, 2);
    }

    #[test]
    fn label_values_are_escaped() {
        let t = render(&sample());
        let l = "peer=\"tor\\\"1\\\\\\n\",address=\"192.168.1.1\"";
        assert_eq!(value(&t, &format!("tern_peer_up{{{l}}}")).as_deref(), Some("0"));
        assert_eq!(
            value(&t, &format!("tern_peer_malformed_updates_total{{{l}}}")).as_deref(),
            Some("7")
        );
        // No raw newline inside any sample line: every line is a comment or `name{..} value`.
        for line in t.lines() {
            assert!(
                line.starts_with('#') || line.starts_with("tern_"),
                "stray line {line:?}"
            );
        }
    }

    #[test]
    fn missing_rib_and_fib_omit_their_families() {
        let mut s = sample();
        s.rib = None;
        s.fib = None;
        let t = render(&s);
        assert!(!t.contains("tern_rib_"));
        assert!(!t.contains("tern_fib_"));
        assert!(t.contains("tern_up 1\n"));
    }

    #[test]
    fn requests_are_routed() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Route::Metrics { head: false }
        );
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0"), Route::Metrics { head: false });
        assert_eq!(route(b"HEAD /metrics HTTP/1.1"), Route::Metrics { head: true });
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(b"garbage"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3"), Route::BadRequest);
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response("200 OK", "text/plain", "abc", false, "")).expect("utf8");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 3\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nabc"));
        let h = String::from_utf8(response("200 OK", "text/plain", "abc", true, "")).expect("utf8");
        assert!(h.ends_with("\r\n\r\n"));
    }
}
