//! Route-reflector scale run: a reflector (ternd, then BIRD 2 for
//! comparison) in one network namespace, and in a second one a load
//! generator that opens N iBGP client sessions from N distinct source
//! addresses at once, each announcing K /26 blocks (next hop = itself) and
//! End-of-RIB. Measured: time from the first connect until every client
//! holds every other client's blocks, and the reflector's RSS and CPU time.
//! Needs root, iproute2 (and bird for the comparison).
//!
//! ```text
//! cargo build --release --bin ternd --example rr_scale
//! sudo target/release/examples/rr_scale [--clients 1000] [--routes 2] [--timeout 300]
//!                                       [--ternd PATH] [--no-bird] [--no-ternd] [--nofile N]
//!                                       [--stagger-us U]   (client i connects i*U µs after the first)
//!                                       [--routed]         (clients behind a router: one neighbour entry; automatic above 1,000)
//!                                       [--daemon-cpu C] [--load-cpu C]   (pin with taskset -c)
//! ```
//! Besides the table, one `result: {json}` line per reflector for scripts
//! (`examples/bench/s1.sh`).
//! (`rr_scale load ...` is the generator half, run by the above inside the
//! generator namespace.)

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp_proto::attributes::{AsPath, AttrValue, MpNextHop, Origin, PathAttribute};
use bgp_proto::capability::Capability;
use bgp_proto::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use bgp_proto::open::{receive_context, Open};
use bgp_proto::update::{pack_announcements, Update};
use bgp_proto::{Context, Family, Message, Nlri};
use ipnetwork::{IpNetwork, Ipv4Network};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ASN: u32 = 64512;
/// The reflector's address; clients are 10.1.0.1, 10.1.0.2, ... in the same /16.
const REFLECTOR: Ipv4Addr = Ipv4Addr::new(10, 1, 255, 254);
/// With more than [`ON_LINK_MAX`] clients (or `--routed`), the two ends of the
/// veth, a /30: each namespace routes the other's addresses through it, so
/// each has one neighbour entry, not one per client (the kernel's neighbour
/// table is limited host-wide, `gc_thresh3` 1,024 here).
const LINK_RR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LINK_GEN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Up to this many clients share the reflector's /16 on-link, as before.
const ON_LINK_MAX: usize = 1000;

mod wire;
use wire::{prefixes, scan_update, Held, BLOCK_BASE, FIRST_CLIENT};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("load") {
        load_main(&args[1..])
    } else {
        run_main(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rr_scale: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` from `args`, parsed, or `default`.
fn opt<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, Error> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a valid value").into()),
        None => Ok(default),
    }
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

// ---------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------

fn sh(prog: &str, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(prog).args(args).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(format!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace deleted (after killing what runs in it, by PID) on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Result<Netns, Error> {
        sh("ip", &["netns", "add", &name])?;
        let ns = Netns(name);
        sh("ip", &["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(pids) = sh("ip", &["netns", "pids", &self.0]) {
            for pid in pids.split_whitespace() {
                let _ = sh("kill", &["-KILL", pid]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while sh("ip", &["netns", "pids", &self.0]).is_ok_and(|p| !p.trim().is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = sh("ip", &["netns", "del", &self.0]);
    }
}

/// A child process killed (by PID) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reflector RSS (current and peak, KiB) and CPU seconds (user + system) from /proc.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    rss_kib: u64,
    hwm_kib: u64,
    cpu_secs: f64,
}

fn usage(pid: u32) -> Result<Usage, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Usage {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        cpu_secs: (ticks(11) + ticks(12)) as f64 / hz,
    })
}

/// What one run measured.
struct Outcome {
    reflector: &'static str,
    report: Value,
    idle: Usage,
    converged: Usage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ternd,
    Bird,
}

fn ternd_config(clients: usize, socket: &Path) -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{REFLECTOR}"
listen = ["0.0.0.0:179"]
cluster_id = "1.1.1.1"

[kernel]
enabled = false

[[dynamic_peers]]
range = "10.1.0.0/16"
limit = {}
route_reflector_client = true

[control]
socket = "{}"
"#,
        (clients * 2).max(2000),
        socket.display()
    )
}

fn bird_config(routed: bool) -> String {
    // The clients' next hops resolve through this when the veth is routed.
    let route = match routed {
        true => format!("protocol static {{ ipv4; route 10.1.0.0/16 via {LINK_GEN}; }}"),
        false => String::new(),
    };
    format!(
        r#"log stderr {{ warning, error, fatal, bug }};
router id {REFLECTOR};
protocol device {{ }}
{route}
protocol bgp rr_clients {{
  local {REFLECTOR} as {ASN};
  neighbor range 10.1.0.0/16 as {ASN};
  dynamic name "c";
  dynamic name digits 4;
  rr client;
  rr cluster id 1.1.1.1;
  passive on;
  ipv4 {{ import all; export where source = RTS_BGP; }};
}}
"#
    )
}

/// Prefixes `cmd` with `taskset -c CPU` when `name` (`--daemon-cpu`,
/// `--load-cpu`) is given; taskset execs, so the PID stays the program's.
fn pin(cmd: &mut Command, args: &[String], name: &str) -> Result<(), Error> {
    if flag(args, name) {
        let cpu: String = opt(args, name, String::new())?;
        cmd.args(["taskset", "-c", &cpu]);
    }
    Ok(())
}

/// Sets up the two namespaces, starts the reflector, runs the generator.
fn run_once(kind: Kind, args: &[String], dir: &Path, ternd: &Path) -> Result<Outcome, Error> {
    let clients: usize = opt(args, "--clients", 1000)?;
    let routes: u32 = opt(args, "--routes", 2)?;
    let timeout: u64 = opt(args, "--timeout", 300)?;
    let stagger_us: u64 = opt(args, "--stagger-us", 0)?;
    let nofile: Option<u64> = match args.iter().any(|a| a == "--nofile") {
        true => Some(opt(args, "--nofile", 0)?),
        false => None,
    };
    if clients == 0 || clients > 60_000 {
        return Err("--clients must be 1..=60000".into());
    }
    let tag = match kind {
        Kind::Ternd => "t",
        Kind::Bird => "b",
    };
    let pid = std::process::id();
    let rr = Netns::new(format!("rrs{pid}{tag}r"))?;
    let gen = Netns::new(format!("rrs{pid}{tag}g"))?;
    sh(
        "ip",
        &[
            "link", "add", "rr0", "netns", &rr.0, "type", "veth", "peer", "name", "gen0", "netns", &gen.0,
        ],
    )?;
    let routed = clients > ON_LINK_MAX || flag(args, "--routed");
    let rr_setup = match routed {
        true => vec![
            format!("addr add {REFLECTOR}/32 dev rr0"),
            format!("addr add {LINK_RR}/30 dev rr0"),
            "link set rr0 up".to_string(),
            format!("route add 10.1.0.0/16 via {LINK_GEN} dev rr0"),
        ],
        false => vec![
            format!("addr add {REFLECTOR}/16 dev rr0"),
            "link set rr0 up".to_string(),
        ],
    };
    for cmd in rr_setup {
        sh(
            "ip",
            &[&["-n", &rr.0][..], &cmd.split(' ').collect::<Vec<_>>()].concat(),
        )?;
    }
    // All client addresses on the generator's interface, in one batch.
    let (mut batch, client_len) = match routed {
        true => (
            format!(
                "addr add {LINK_GEN}/30 dev gen0\nlink set gen0 up\nroute add {REFLECTOR}/32 via {LINK_RR} dev gen0\n"
            ),
            32,
        ),
        false => ("link set gen0 up\n".to_string(), 16),
    };
    for i in 0..clients as u32 {
        let client = Ipv4Addr::from(FIRST_CLIENT + i);
        batch.push_str(&format!("addr add {client}/{client_len} dev gen0\n"));
    }
    let mut ipb = Command::new("ip")
        .args(["-n", &gen.0, "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()?;
    ipb.stdin.take().ok_or("ip -batch stdin")?.write_all(batch.as_bytes())?;
    if !ipb.wait()?.success() {
        return Err("adding client addresses failed".into());
    }

    let log = std::fs::File::create(dir.join(format!("{tag}-reflector.log")))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &rr.0]);
    pin(&mut cmd, args, "--daemon-cpu")?;
    if let Some(n) = nofile {
        cmd.args(["prlimit", &format!("--nofile={n}:{n}")]);
    }
    match kind {
        Kind::Ternd => {
            let conf = dir.join("ternd.toml");
            std::fs::write(&conf, ternd_config(clients, &dir.join("ternd.sock")))?;
            cmd.arg(ternd).arg("--config").arg(&conf);
        }
        Kind::Bird => {
            let conf = dir.join("bird.conf");
            std::fs::write(&conf, bird_config(routed))?;
            cmd.args(["bird", "-f", "-c"])
                .arg(&conf)
                .arg("-s")
                .arg(dir.join("bird.ctl"))
                .arg("-P")
                .arg(dir.join("bird.pid"));
        }
    }
    let reflector = Proc(cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?);
    // `ip netns exec` and prlimit exec the daemon: same PID.
    let rpid = reflector.0.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sh("ip", &["netns", "exec", &rr.0, "ss", "-Hltn", "sport", "=", ":179"])?.contains("179") {
        if Instant::now() > deadline {
            return Err("the reflector is not listening on port 179".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let idle = usage(rpid)?;

    let exe = std::env::current_exe()?;
    let mut gen_cmd = Command::new("ip");
    gen_cmd.args(["netns", "exec", &gen.0]);
    pin(&mut gen_cmd, args, "--load-cpu")?;
    let mut gen_child = Proc(
        gen_cmd
            .arg(&exe)
            .args([
                "load",
                "--connect",
                &format!("{REFLECTOR}:179"),
                "--clients",
                &clients.to_string(),
                "--routes",
                &routes.to_string(),
                "--timeout",
                &timeout.to_string(),
                "--stagger-us",
                &stagger_us.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let stdout = gen_child.0.stdout.take().ok_or("generator stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    // Sampled while every session is still up.
    let converged = usage(rpid)?;
    drop(gen_child.0.stdin.take());
    let report: Value = serde_json::from_str(line.trim()).map_err(|e| format!("generator said {line:?}: {e}"))?;
    Ok(Outcome {
        reflector: match kind {
            Kind::Ternd => "ternd",
            Kind::Bird => "BIRD 2",
        },
        report,
        idle,
        converged,
    })
}

fn run_main(args: &[String]) -> Result<(), Error> {
    let ternd: PathBuf = match args.iter().position(|a| a == "--ternd") {
        Some(i) => args.get(i + 1).ok_or("--ternd needs a path")?.into(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("ternd"))
            .ok_or("cannot locate ternd; pass --ternd PATH")?,
    };
    let dir = std::env::temp_dir().join(format!("rr-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut kinds = Vec::new();
    if !flag(args, "--no-ternd") {
        kinds.push(Kind::Ternd);
    }
    if !flag(args, "--no-bird") {
        kinds.push(Kind::Bird);
    }
    let mut outcomes = Vec::new();
    for kind in kinds {
        match run_once(kind, args, &dir, &ternd) {
            Ok(o) => {
                println!("{}: {}", o.reflector, o.report);
                outcomes.push(o);
            }
            Err(e) => eprintln!("run failed: {e} (logs in {})", dir.display()),
        }
    }
    println!();
    println!(
        "{:<9} {:>7} {:>7} {:>11} {:>14} {:>10} {:>10} {:>9} {:>8}",
        "reflector", "clients", "routes", "all up (s)", "converged (s)", "received", "RSS (MiB)", "peak MiB", "CPU (s)"
    );
    for o in &outcomes {
        let r = &o.report;
        let secs = |k: &str| {
            r[k].as_f64()
                .map(|ms| format!("{:.2}", ms / 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<9} {:>7} {:>7} {:>11} {:>14} {:>10} {:>10.1} {:>9.1} {:>8.2}",
            o.reflector,
            r["clients"].to_string(),
            r["routes_per_client"].to_string(),
            secs("all_established_ms"),
            secs("converged_ms"),
            r["received_total"].to_string(),
            o.converged.rss_kib as f64 / 1024.0,
            o.converged.hwm_kib as f64 / 1024.0,
            o.converged.cpu_secs - o.idle.cpu_secs,
        );
    }
    println!(
        "(CPU: reflector user+system seconds from listening to convergence; logs in {})",
        dir.display()
    );
    for o in &outcomes {
        let line = json!({
            "reflector": o.reflector,
            "clients": o.report["clients"],
            "converged_s": o.report["converged_ms"].as_f64().map(|ms| ms / 1000.0),
            "cpu_s": o.converged.cpu_secs - o.idle.cpu_secs,
            "peak_kib": o.converged.hwm_kib,
        });
        println!("result: {line}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------

/// Progress shared by the client tasks.
struct Progress {
    start: Instant,
    clients: usize,
    expect: usize,
    established: AtomicUsize,
    done: AtomicUsize,
    received_total: AtomicU64,
    wrong_next_hop: AtomicU64,
    failures: AtomicU64,
    /// The first few connection errors, for the report.
    errors: Mutex<Vec<String>>,
    all_established: Mutex<Option<Duration>>,
    converged: Mutex<Option<Duration>>,
    finished: tokio::sync::Notify,
}

fn load_main(args: &[String]) -> Result<(), Error> {
    let to: SocketAddr = opt(args, "--connect", SocketAddr::from((REFLECTOR, 179)))?;
    let clients: usize = opt(args, "--clients", 1000)?;
    let routes: u32 = opt(args, "--routes", 2)?;
    let timeout: u64 = opt(args, "--timeout", 300)?;
    let stagger_us: u64 = opt(args, "--stagger-us", 0)?;
    // One core for the generator: the other is left to the reflector.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let p = Arc::new(Progress {
            start: Instant::now(),
            clients,
            expect: routes as usize * (clients - 1),
            established: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            received_total: AtomicU64::new(0),
            wrong_next_hop: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            all_established: Mutex::new(None),
            converged: Mutex::new(None),
            finished: tokio::sync::Notify::new(),
        });
        let mut tasks = Vec::with_capacity(clients);
        for i in 0..clients {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                let deadline = p.start + Duration::from_secs(timeout);
                // Optional ramp: client i starts i * stagger_us after the first.
                tokio::time::sleep(Duration::from_micros(stagger_us * i as u64)).await;
                loop {
                    match client(i as u32, to, routes, &p).await {
                        Ok(()) => return,
                        Err(e) => {
                            p.failures.fetch_add(1, Ordering::Relaxed);
                            {
                                let mut errors = p.errors.lock().unwrap_or_else(|e| e.into_inner());
                                if errors.len() < 5 {
                                    errors.push(format!("client {i}: {e}"));
                                }
                            }
                            if Instant::now() > deadline {
                                eprintln!("client {i}: {e}");
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }));
        }
        if p.expect == 0 {
            p.finished.notify_one();
        }
        let _ = tokio::time::timeout(Duration::from_secs(timeout), p.finished.notified()).await;
        let ms = |d: &Mutex<Option<Duration>>| {
            d.lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|d| d.as_secs_f64() * 1000.0)
        };
        let report = json!({
            "clients": clients,
            "routes_per_client": routes,
            "expected_per_client": p.expect,
            "established": p.established.load(Ordering::Relaxed),
            "complete_clients": p.done.load(Ordering::Relaxed),
            "all_established_ms": ms(&p.all_established),
            "converged_ms": ms(&p.converged),
            "received_total": p.received_total.load(Ordering::Relaxed),
            "wrong_next_hop": p.wrong_next_hop.load(Ordering::Relaxed),
            "connection_failures": p.failures.load(Ordering::Relaxed),
            "first_errors": p.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        });
        println!("{report}");
        let _ = std::io::stdout().flush();
        // Keep the sessions up until the orchestrator has sampled the reflector.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
        })
        .await;
        for t in tasks {
            t.abort();
        }
    });
    Ok(())
}

/// The blocks client `i` announces.
fn blocks_of(i: u32, routes: u32) -> Vec<Nlri> {
    (0..routes)
        .filter_map(|k| Ipv4Network::new(Ipv4Addr::from(BLOCK_BASE + (i * routes + k) * 64), 26).ok())
        .map(|n| Nlri::new(IpNetwork::V4(n)))
        .collect()
}

/// Adds one UPDATE's counts (new blocks, wrong next hops) to the totals and
/// reports the client complete once it holds every other client's blocks.
fn report(p: &Progress, held: &mut Held, (new, wrong): (u64, u64)) {
    p.wrong_next_hop.fetch_add(wrong, Ordering::Relaxed);
    p.received_total.fetch_add(new, Ordering::Relaxed);
    if !held.complete && held.blocks.len >= p.expect {
        held.complete = true;
        if p.done.fetch_add(1, Ordering::Relaxed) + 1 == p.clients {
            *p.converged.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.start.elapsed());
            p.finished.notify_one();
        }
    }
}

/// One client session: connect from its own address, OPEN, announce, then
/// count what is reflected to it, answering keepalives.
async fn client(i: u32, to: SocketAddr, routes: u32, p: &Progress) -> Result<(), Error> {
    let me = Ipv4Addr::from(FIRST_CLIENT + i);
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from((me, 0)))?;
    let mut stream = sock.connect(to).await?;
    stream.set_nodelay(true)?;
    let open = Open::new(
        ASN,
        90,
        me,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(ASN),
        ],
    );
    stream
        .write_all(&Message::Open(open.clone()).to_bytes(&Context::default())?)
        .await?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut rx = Context::default();
    let mut up = false;
    let mut held = Held::default();
    let mut keepalive = tokio::time::interval(Duration::from_secs(30));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Messages are read in place and the buffer compacted once per read
        // (draining each message off the front moved the rest every time:
        // the generator, not the reflector, limited 5,000 clients).
        let mut at = 0;
        while let Some(n) = next_message_len(&buf[at..], MAX_EXTENDED_MESSAGE_LEN)? {
            let msg = &buf[at..at + n];
            at += n;
            // The reflected UPDATEs (millions) are read in place; anything
            // else, or an UPDATE this cannot read, is decoded in full.
            if let Some(u) = scan_update(msg) {
                let counted = held.apply(
                    prefixes(u.withdrawn),
                    u.next_hop,
                    prefixes(u.nlri),
                    (p.clients as u32, routes),
                );
                report(p, &mut held, counted);
                continue;
            }
            match bgp_proto::decode(msg, &rx)?.message {
                Message::Open(theirs) => {
                    rx = receive_context(&theirs, &open);
                    let tx = receive_context(&open, &theirs);
                    stream.write_all(&Message::Keepalive.to_bytes(&tx)?).await?;
                    // Announce right away; the reflector processes it once Established.
                    let attrs = [
                        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                        PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![]))),
                        PathAttribute::new(AttrValue::LocalPref(100)),
                    ];
                    let mut out = Vec::new();
                    pack_announcements(
                        &tx,
                        Family::IPV4_UNICAST,
                        MpNextHop::V4(me),
                        &attrs,
                        &blocks_of(i, routes),
                        &mut out,
                    )?;
                    Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))
                        .to_bytes(&tx)
                        .map(|b| out.extend(b))?;
                    stream.write_all(&out).await?;
                }
                Message::Keepalive if !up => {
                    up = true;
                    if p.established.fetch_add(1, Ordering::Relaxed) + 1 == p.clients {
                        *p.all_established.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.start.elapsed());
                    }
                }
                Message::Update(u) => {
                    let v4 = |(_, n): (Family, &Nlri)| match n.prefix {
                        IpNetwork::V4(v4) => Some(v4),
                        IpNetwork::V6(_) => None,
                    };
                    let withdrawn = u.withdrawn_routes().filter_map(v4);
                    let counted = held.apply(
                        withdrawn,
                        u.next_hop(),
                        u.announced().filter_map(v4),
                        (p.clients as u32, routes),
                    );
                    report(p, &mut held, counted);
                }
                Message::Notification(n) => return Err(format!("NOTIFICATION {}", n.describe()).into()),
                _ => {}
            }
        }
        buf.drain(..at);
        tokio::select! {
            r = stream.read(&mut chunk) => match r? {
                0 => return Err("closed by the reflector".into()),
                n => buf.extend_from_slice(&chunk[..n]),
            },
            _ = keepalive.tick() => {
                if up {
                    stream.write_all(&Message::Keepalive.to_bytes(&rx)?).await?;
                }
            }
        }
    }
}
