//! The BIRD-compatible CLI socket and the metrics endpoint of a running ternd.
//!
//! Two ternd hosts form a mesh in network namespaces; the real `birdc` /
//! `birdcl` (what calico-node runs) talk to ternd's BIRD socket, raw replies
//! are checked byte by byte, and the layout is compared with a real BIRD 2
//! running a BGP protocol of the same name in its own namespace. The metrics
//! endpoint is scraped with curl inside the host namespace.
//! Needs root, `bird`, `birdc`, `birdcl` and `curl`; otherwise prints `skipped: ...`.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern_testkit::{
    require, run, stop_child, tail, ternd_bin, ternd_mesh_config, wait_until_diag, Bird, CmdFailed, Netns, TempDir,
    Topology, ASN,
};

const METRICS_PORT: u16 = 9473;

/// ternd in a namespace with a `[control]` table of our own (the harness's
/// `Ternd` adds one without BIRD sockets). Stopped by PID on drop.
struct BirdTernd {
    dir: TempDir,
    bird_socket: PathBuf,
    bird6_socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl BirdTernd {
    fn start(ns: &Netns, config_toml: &str) -> BirdTernd {
        let dir = TempDir::new("birdc");
        let socket = dir.path().join("tern.sock");
        let bird_socket = dir.path().join("bird.ctl");
        let bird6_socket = dir.path().join("bird6.ctl");
        let config = dir.write(
            "tern.toml",
            &format!(
                "{config_toml}\n[metrics]\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n\n[control]\nsocket = \"{}\"\nbird_socket = \"{}\"\nbird6_socket = \"{}\"\n",
                socket.display(),
                bird_socket.display(),
                bird6_socket.display()
            ),
        );
        let log = dir.path().join("ternd.log");
        let logf = std::fs::File::create(&log).expect("create ternd log");
        let child = ns
            .cmd(ternd_bin())
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log fd"))
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ternd: {e}"));
        BirdTernd {
            dir,
            bird_socket,
            bird6_socket,
            log,
            child: Some(child),
        }
    }

    fn log_tail(&self) -> String {
        format!(
            "--- ternd log ({}):\n{}",
            self.dir.path().display(),
            tail(&self.log, 40)
        )
    }
}

impl Drop for BirdTernd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// `birdc -s SOCK <words>` (the real client); Ok(stdout) on exit 0.
fn birdc(sock: &Path, cmd: &str) -> Result<String, CmdFailed> {
    run(Command::new("birdc").arg("-s").arg(sock).args(cmd.split_whitespace()))
}

/// Reads one reply: lines up to and including the first `CODE text` line.
fn read_reply(r: &mut impl BufRead) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading reply: {e}; got {out:?}"));
        assert!(n > 0, "connection closed mid-reply; got {out:?}");
        assert!(line.ends_with('\n'), "reply line without newline: {line:?}");
        line.pop();
        let b = line.as_bytes();
        let last = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b' ';
        out.push(line);
        if last {
            return out;
        }
    }
}

/// A raw CLI connection: checks the greeting, then sends commands.
struct Raw {
    rd: BufReader<UnixStream>,
    wr: UnixStream,
    greeting: String,
}

impl Raw {
    fn connect(sock: &Path) -> Raw {
        let s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let wr = s.try_clone().expect("clone");
        let mut rd = BufReader::new(s);
        let mut greeting = String::new();
        rd.read_line(&mut greeting).expect("greeting");
        Raw { rd, wr, greeting }
    }

    fn send(&mut self, cmds: &str) {
        self.wr.write_all(cmds.as_bytes()).expect("send");
    }

    fn ask(&mut self, cmd: &str) -> Vec<String> {
        self.send(&format!("{cmd}\n"));
        read_reply(&mut self.rd)
    }
}

/// Start offsets of the first `n` whitespace-separated fields of `line`.
fn field_starts(line: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if !c.is_whitespace() && prev_space {
            out.push(i);
        }
        prev_space = c.is_whitespace();
    }
    out.truncate(n);
    out
}

/// The row of protocol `name` in a raw `show protocols` reply, without the `1002-`/` ` prefix.
fn row<'a>(reply: &'a [String], name: &str) -> &'a str {
    reply
        .iter()
        .map(|l| l.strip_prefix("1002-").unwrap_or_else(|| l.get(1..).unwrap_or("")))
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in {reply:?}"))
}

/// The label part (up to and including the colon and the spaces after it) of a detail line.
fn label(line: &str) -> &str {
    match line.find(':') {
        Some(i) => {
            let rest = &line[i + 1..];
            let spaces = rest.len() - rest.trim_start().len();
            &line[..i + 1 + spaces]
        }
        None => line,
    }
}

fn host_config(me: Ipv4Addr, other: Ipv4Addr, block: &str) -> String {
    ternd_mesh_config(me, &[other], block, "never", 30, "")
}

#[test]
fn birdc_talks_to_ternd_like_to_bird() {
    if !require(
        "birdc_talks_to_ternd_like_to_bird",
        &["bird", "birdc", "birdcl", "curl"],
    ) {
        return;
    }
    let topo = Topology::single_segment(2);
    let (h1, h2) = (topo.host(1), topo.host(2));
    let t1 = BirdTernd::start(&h1.ns, &host_config(h1.addr, h2.addr, &h1.block()));
    let t2 = BirdTernd::start(&h2.ns, &host_config(h2.addr, h1.addr, &h2.block()));
    let peer = format!("Mesh_{}", h2.addr.to_string().replace('.', "_"));

    // The real client sees the session come up.
    let took = wait_until_diag(
        Duration::from_secs(30),
        "birdc show protocols: mesh peer Established",
        || {
            birdc(&t1.bird_socket, "show protocols").is_ok_and(|out| {
                out.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() >= 6 && f[0] == peer && f[1] == "BGP" && f[3] == "up" && f[5] == "Established"
                })
            })
        },
        || format!("{}\n{}", t1.log_tail(), t2.log_tail()),
    );
    println!("mesh Established per birdc after {took:?}");
    let out = birdc(&t1.bird_socket, "show protocols").unwrap_or_else(|e| panic!("{e}"));
    assert!(out.starts_with("BIRD 2.0.12 ready.\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Name", "Proto", "Table", "State", "Since", "Info"]),
        "{out}"
    );
    // The bird6 socket lists the same protocols.
    let out6 = birdc(&t1.bird6_socket, "show protocols").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out6.lines().any(|l| l.starts_with(&peer) && l.contains("Established")),
        "{out6}"
    );

    // calico-node's liveness check: `birdcl -s SOCK show status` must start with "BIRD".
    let status = run(Command::new("birdcl")
        .arg("-s")
        .arg(&t1.bird_socket)
        .args(["show", "status"]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.starts_with("BIRD"), "{status}");
    assert!(status.contains("Daemon is up and running"), "{status}");
    assert!(status.contains(&format!("Router ID is {}", h1.addr)), "{status}");

    let all = birdc(&t1.bird_socket, &format!("show protocols all {peer}")).unwrap_or_else(|e| panic!("{e}"));
    for want in [
        "BGP state:          Established".to_string(),
        format!("Neighbor address: {}", h2.addr),
        format!("Neighbor AS:      {ASN}"),
        format!("Local AS:         {ASN}"),
        format!("Neighbor ID:      {}", h2.addr),
        "Channel ipv4".to_string(),
        "State:          UP".to_string(),
    ] {
        assert!(all.contains(&want), "missing {want:?} in:\n{all}");
    }

    // The peer's block, as BIRD lists it, with the kernel's device.
    wait_until_diag(
        Duration::from_secs(20),
        "birdc show route lists the peer's block",
        || birdc(&t1.bird_socket, "show route").is_ok_and(|o| o.contains(&h2.block())),
        || birdc(&t1.bird_socket, "show route").unwrap_or_else(|e| e.to_string()),
    );
    let routes = birdc(&t1.bird_socket, "show route").unwrap_or_else(|e| panic!("{e}"));
    let line = routes
        .lines()
        .find(|l| l.trim_start().starts_with(&h2.block()))
        .unwrap_or_else(|| panic!("{routes}"));
    assert!(
        line.contains(&format!("unicast [{peer} ")) && line.contains("] * (100/0) [i]"),
        "{routes}"
    );
    assert!(routes.contains(&format!("\tvia {} on eth0", h2.addr)), "{routes}");
    assert!(
        routes.contains(&format!("{:<20} blackhole [static1 ", h1.block())),
        "{routes}"
    );

    // Raw bytes: greeting, framing, final lines, errors, several commands per write.
    let mut raw = Raw::connect(&t1.bird_socket);
    assert_eq!(raw.greeting, "0001 BIRD 2.0.12 ready.\n");
    let protos = raw.ask("show protocols");
    assert_eq!(
        protos[0],
        "2002-Name       Proto      Table      State  Since         Info"
    );
    assert!(
        protos[1].starts_with(&format!("1002-{peer} BGP        ---        up     ")),
        "{protos:?}"
    );
    assert_eq!(protos.last().map(String::as_str), Some("0000 "));
    let st = raw.ask("show status");
    assert_eq!(st[0], "1000-BIRD 2.0.12");
    assert_eq!(st.last().map(String::as_str), Some("0013 Daemon is up and running"));
    assert_eq!(raw.ask("foo bar"), ["9001 syntax error, unexpected CF_SYM_UNDEFINED"]);
    assert_eq!(
        raw.ask("show protocols nonexist"),
        ["9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT or ALL"]
    );
    assert_eq!(raw.ask("show protocols \"Node*\""), ["8003 No protocols match"]);
    assert_eq!(raw.ask("show route for 10.99.0.1"), ["8001 Network not found"]);
    let count = raw.ask("show route count");
    assert_eq!(count.len(), 3, "{count:?}");
    assert!(
        count[0].starts_with("1007-2 of 2 routes for 2 networks in table master4"),
        "{count:?}"
    );
    assert!(count[2].starts_with("0014 Total: "), "{count:?}");
    // `quit` gets no answer (birdc handles it locally); the next command still works.
    raw.send("quit\nshow status\nshow protocols\n");
    assert_eq!(read_reply(&mut raw.rd)[0], "1000-BIRD 2.0.12");
    assert_eq!(read_reply(&mut raw.rd)[0], protos[0]);
    // An over-long line is refused, and the connection stays usable.
    raw.send(&format!("{}\nshow status\n", "a".repeat(5000)));
    assert_eq!(read_reply(&mut raw.rd), ["9000 Command too long"]);
    assert_eq!(read_reply(&mut raw.rd)[0], "1000-BIRD 2.0.12");
    let t0 = Instant::now();
    for _ in 0..200 {
        assert_eq!(raw.ask("show protocols").len(), protos.len());
    }
    println!("200 raw `show protocols` round trips: {:?}", t0.elapsed());
    // Graceful-restart recovery ends once the peer is up and sent End-of-RIB.
    wait_until_diag(
        Duration::from_secs(30),
        "show status without graceful restart recovery",
        || {
            !Raw::connect(&t1.bird_socket)
                .ask("show status")
                .iter()
                .any(|l| l.starts_with("0024"))
        },
        || t1.log_tail(),
    );

    // Real BIRD with a protocol of the same name, in a namespace of its own
    // (passive, so it sends nothing anywhere): same header, same columns.
    let bns = Netns::new("b");
    bns.ip("addr add 10.255.0.1/32 dev lo");
    let bird = Bird::start(
        &bns,
        &format!(
            "router id {};\nprotocol device {{}}\nprotocol bgp {peer} {{\n  local 10.255.0.1 as {ASN};\n  neighbor {} as {ASN};\n  passive on;\n  ipv4 {{ import all; export all; }};\n}}\n",
            h1.addr, h2.addr
        ),
    );
    let mut real = Raw::connect(&bird.socket);
    assert_eq!(real.greeting, raw.greeting, "greeting");
    let real_protos = real.ask("show protocols");
    assert_eq!(real_protos[0], protos[0], "header line");
    let (ours, theirs) = (row(&protos, &peer), row(&real_protos, &peer));
    assert_eq!(
        field_starts(ours, 6),
        field_starts(theirs, 6),
        "column positions differ:\n ours: {ours:?}\n bird: {theirs:?}"
    );
    assert_eq!(ours.split_whitespace().nth(1), theirs.split_whitespace().nth(1));
    assert_eq!(ours.split_whitespace().nth(2), theirs.split_whitespace().nth(2));
    // `show protocols all NAME`: same codes and labels for the lines both have.
    let our_all = raw.ask(&format!("show protocols all {peer}"));
    let real_all = real.ask(&format!("show protocols all {peer}"));
    assert_eq!(our_all[0], real_all[0]);
    for (ours, theirs) in our_all[2..6].iter().zip(&real_all[2..6]) {
        assert_eq!(label(ours), label(theirs), "\n{our_all:?}\n{real_all:?}");
    }
    assert_eq!(our_all.last(), real_all.last());
    assert_eq!(our_all[our_all.len() - 2], " ", "blank line ends the protocol block");
    assert_eq!(real_all[real_all.len() - 2], " ");
    // `show status`: the same line codes and labels.
    let real_st = real.ask("show status");
    let shape = |v: &[String]| -> Vec<String> {
        // Code prefix plus the label: everything up to the first digit of a value.
        v.iter()
            .map(|l| {
                let (code, text) = l.split_at(l.len().min(5));
                let label: String = text.chars().take_while(|c| !c.is_ascii_digit()).collect();
                format!("{code}{label}")
            })
            .collect()
    };
    assert_eq!(shape(&st), shape(&real_st), "\nours: {st:?}\nbird: {real_st:?}");
    // Errors are the same bytes.
    for cmd in [
        "foo bar",
        "show",
        "show status extra",
        "show route protocol nonexist",
        "show protocols \"unterminated",
        "?",
    ] {
        assert_eq!(raw.ask(cmd), real.ask(cmd), "reply to {cmd:?}");
    }

    // Metrics, scraped inside the host namespace.
    let url = format!("http://127.0.0.1:{METRICS_PORT}/metrics");
    let metrics = h1.ns.exec(&["curl", "-sS", "--max-time", "10", &url]);
    let up = format!("tern_peer_up{{peer=\"{peer}\",address=\"{}\"}} 1", h2.addr);
    assert!(metrics.lines().any(|l| l == up), "missing {up:?}:\n{metrics}");
    let state = format!(
        "tern_peer_state{{peer=\"{peer}\",address=\"{}\",state=\"Established\"}} 1",
        h2.addr
    );
    assert!(metrics.lines().any(|l| l == state), "missing {state:?}:\n{metrics}");
    let received = format!(
        "tern_peer_prefixes_received{{peer=\"{peer}\",address=\"{}\"}} 1",
        h2.addr
    );
    assert!(
        metrics.lines().any(|l| l == received),
        "missing {received:?}:\n{metrics}"
    );
    assert!(metrics.lines().any(|l| l == "tern_rib_prefixes 2"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "tern_up 1"), "{metrics}");
    assert!(
        metrics.contains("# TYPE tern_fib_installs_total counter\n"),
        "{metrics}"
    );
    let installs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tern_fib_installs_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tern_fib_installs_total:\n{metrics}"));
    assert!(installs >= 1, "the peer's block was installed: {metrics}");
    let code = h1.ns.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
        &format!("http://127.0.0.1:{METRICS_PORT}/nope"),
    ]);
    assert_eq!(code, "404");
    drop(real);
    drop(bird);
}

#[test]
fn down_peer_and_graceful_restart_recovery_look_like_bird() {
    if !require("down_peer_and_graceful_restart_recovery_look_like_bird", &["birdc"]) {
        return;
    }
    // A host alone in its namespace: the mesh peer is unreachable (no route),
    // so no packet leaves the namespace and the session never comes up.
    let ns = Netns::new("s");
    ns.ip("addr add 10.255.0.1/32 dev lo");
    let me = Ipv4Addr::new(10, 255, 0, 1);
    let other = Ipv4Addr::new(10, 255, 0, 2);
    let t = BirdTernd::start(&ns, &host_config(me, other, "10.244.1.0/26"));
    let peer = "Mesh_10_255_0_2";
    wait_until_diag(
        Duration::from_secs(10),
        "ternd's BIRD socket",
        || t.bird_socket.exists() && birdc(&t.bird_socket, "show status").is_ok(),
        || t.log_tail(),
    );
    let mut raw = Raw::connect(&t.bird_socket);
    let protos = raw.ask("show protocols");
    let fields: Vec<&str> = row(&protos, peer).split_whitespace().collect();
    assert_eq!(fields[1..4], ["BGP", "---", "start"], "{protos:?}");
    assert!(
        ["Idle", "Connect", "Active"].contains(&fields[5]),
        "BGP state column: {protos:?}"
    );
    // calico-node reports the peer as not established.
    assert_ne!(fields[5], "Established");
    let all = raw.ask(&format!("show protocols all {peer}"));
    assert!(
        all.iter().any(|l| l.starts_with("1006-  BGP state:          ")),
        "{all:?}"
    );
    assert!(all.iter().any(|l| l == "     State:          DOWN"), "{all:?}");
    assert!(!all.iter().any(|l| l.contains("Neighbor ID")), "{all:?}");
    // Kernel routes are being kept for a peer that is not back: calico-node's
    // readiness check sees `0024` and waits.
    let st = raw.ask("show status");
    let at = st
        .iter()
        .position(|l| l == "0024-Graceful restart recovery in progress")
        .unwrap_or_else(|| panic!("no graceful restart block: {st:?}"));
    assert_eq!(st[at + 1], "   Waiting for 1 channels to recover", "{st:?}");
    assert!(st[at + 2].starts_with("   Wait timer is "), "{st:?}");
    assert_eq!(st.last().map(String::as_str), Some("0013 Daemon is up and running"));
}
