//! Shared harness for the integration tests: network namespaces, a switched
//! L2 segment with hosts and Calico-style pods, and guards that run `ternd`,
//! BIRD 2 and GoBGP inside the namespaces and clean everything up on drop,
//! also when a test fails. Needs root; [`require`] reports `skipped: ...` otherwise.
#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

pub const TERND: &str = env!("CARGO_BIN_EXE_ternd");
pub const TERNCTL: &str = env!("CARGO_BIN_EXE_ternctl");

/// The AS every mesh in these tests uses (Calico's default).
pub const ASN: u32 = 64512;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Preconditions
// ---------------------------------------------------------------------------

/// True when the effective uid is 0 (read from /proc, no libc needed).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// True when `tool` is an executable file somewhere on PATH (or /usr/sbin, /sbin).
pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .any(|d| Path::new(d).join(tool).is_file());
    found
}

/// Checks that we are root and every tool is installed; prints
/// `skipped: TEST: WHY` and returns false otherwise (the test then returns).
pub fn require(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        println!("skipped: {test}: needs root");
        return false;
    }
    for tool in ["ip"].iter().chain(tools) {
        if !have_tool(tool) {
            println!("skipped: {test}: {tool} not installed");
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// A command that could not run or exited non-zero, with everything needed to see why.
#[derive(Debug)]
pub struct CmdFailed {
    pub command: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for CmdFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "`{}` failed ({s})", self.command)?,
            None => write!(f, "`{}` could not be started", self.command)?,
        }
        if !self.stdout.trim().is_empty() {
            write!(f, "\n--- stdout\n{}", self.stdout.trim_end())?;
        }
        if !self.stderr.trim().is_empty() {
            write!(f, "\n--- stderr\n{}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; Ok(stdout) when it exits 0.
pub fn run(cmd: &mut Command) -> Result<String, CmdFailed> {
    let command = describe(cmd);
    match cmd.stdin(Stdio::null()).output() {
        Ok(Output { status, stdout, stderr }) => {
            let stdout = String::from_utf8_lossy(&stdout).into_owned();
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            if status.success() {
                Ok(stdout)
            } else {
                Err(CmdFailed {
                    command,
                    status: Some(status),
                    stdout,
                    stderr,
                })
            }
        }
        Err(e) => Err(CmdFailed {
            command,
            status: None,
            stdout: String::new(),
            stderr: e.to_string(),
        }),
    }
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn must(cmd: &mut Command) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `prog args...` as a Command.
pub fn command(prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new(prog);
    c.args(args);
    c
}

/// Sends `signal` (e.g. "TERM", "KILL") to one process by PID.
pub fn signal(pid: u32, signal: &str) {
    // The process may have exited already; that is fine.
    let _ = run(&mut command("kill", &[&format!("-{signal}"), &pid.to_string()]));
}

/// Waits for `child` up to `timeout`, polling; None if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => return None,
            Err(_) => return None,
        }
    }
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL; always reaps it.
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal(child.id(), "TERM");
    if let Some(status) = wait_child(child, grace) {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Polls `cond` every 100 ms until it holds; returns the time it took.
/// Panics naming `what` when `timeout` passes first.
pub fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) -> Duration {
    wait_until_diag(timeout, what, cond, String::new)
}

/// [`wait_until`] that adds `diag()` (e.g. the current routes) to the panic message.
pub fn wait_until_diag(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    diag: impl FnOnce() -> String,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for: {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A directory under /tmp removed on drop (kept, with its path printed, when
/// the test is failing, so logs and configs can be inspected).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("tern-itest-{tag}-{}-{}", std::process::id(), next_id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(test failed: kept {})", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Network namespaces
// ---------------------------------------------------------------------------

/// A network namespace `tn<pid><counter><suffix>` (at most 15 characters, so
/// the name is also a valid interface name). Dropping it kills every process
/// still inside it (by PID, from `ip netns pids`) and deletes it.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(suffix: &str) -> Netns {
        let name = format!("tn{}{}{suffix}", std::process::id(), next_id());
        assert!(name.len() <= 15, "namespace name {name} too long; use a shorter suffix");
        must(&mut command("ip", &["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A Command running `prog` inside the namespace (`ip netns exec NAME prog`).
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }

    /// Runs `args` inside the namespace; Ok(stdout) on exit 0.
    pub fn try_exec(&self, args: &[&str]) -> Result<String, CmdFailed> {
        let (prog, rest) = args.split_first().expect("empty command");
        run(self.cmd(prog).args(rest))
    }

    /// Runs `args` inside the namespace, panicking with its output on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        self.try_exec(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ip -n NAME <args>` (args split on whitespace), panicking on failure.
    pub fn ip(&self, args: &str) -> String {
        must(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(args.split_whitespace()),
        )
    }

    /// `ip -n NAME <args>`, returning the failure instead of panicking.
    pub fn try_ip(&self, args: &str) -> Result<String, CmdFailed> {
        run(Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace()))
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    /// PIDs of the processes currently in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        run(&mut command("ip", &["netns", "pids", &self.name]))
            .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kernel routes matching `filter` (e.g. "proto bird"), parsed from `ip -j route show`.
    pub fn routes(&self, filter: &str) -> Vec<KernelRoute> {
        let out = self.ip(&format!("-j route show {filter}"));
        parse_routes(&out)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = self.pids();
        for pid in &pids {
            signal(*pid, "KILL");
        }
        if !pids.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Err(e) = run(&mut command("ip", &["netns", "del", &self.name])) {
            eprintln!("cleanup: {e}");
        }
    }
}

// ---------------------------------------------------------------------------
// Kernel routes
// ---------------------------------------------------------------------------

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NextHop {
    pub gateway: Option<String>,
    pub dev: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A route as iproute2 prints it with `-j` (fields absent there are None/empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KernelRoute {
    /// "unicast" when iproute2 omits the type.
    #[serde(rename = "type", default = "unicast")]
    pub kind: String,
    pub dst: String,
    pub gateway: Option<String>,
    pub dev: Option<String>,
    /// Protocol name or number; absent when the query filtered on it.
    pub protocol: Option<String>,
    pub metric: Option<u64>,
    pub scope: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    /// ECMP next hops (multipath routes).
    #[serde(default)]
    pub nexthops: Vec<NextHop>,
}

fn unicast() -> String {
    "unicast".to_string()
}

impl KernelRoute {
    pub fn is_onlink(&self) -> bool {
        self.flags.iter().any(|f| f == "onlink")
    }
}

/// Parses `ip -j route show` output; panics (showing it) when it is not that.
pub fn parse_routes(json: &str) -> Vec<KernelRoute> {
    if json.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad `ip -j route` output ({e}): {json}"))
}

/// The route for `dst` in `routes`, if any.
pub fn find<'a>(routes: &'a [KernelRoute], dst: &str) -> Option<&'a KernelRoute> {
    routes.iter().find(|r| r.dst == dst)
}

/// A human-readable list of routes, for failure messages.
pub fn show(routes: &[KernelRoute]) -> String {
    routes.iter().map(|r| format!("  {r:?}")).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------
// Topology: hosts on L2 segments, pods, tunl0
// ---------------------------------------------------------------------------

/// One Kubernetes host: a namespace whose `eth0` is on a segment.
pub struct Host {
    pub ns: Netns,
    /// 1-based host number: address 192.168.SUBNET.(10+index), pod block 10.244.index.0/26.
    pub index: u8,
    pub subnet: u8,
    pub addr: Ipv4Addr,
}

impl Host {
    /// The host's pod block, e.g. "10.244.1.0/26".
    pub fn block(&self) -> String {
        format!("10.244.{}.0/26", self.index)
    }

    /// The gateway on the host's segment (the router namespace's address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.subnet, 1)
    }

    /// Adds a veth named `tunl0` (standing in for the IPIP device, which this
    /// kernel lacks) with address 10.244.INDEX.1/32, its peer end in `other`.
    pub fn add_tunl0(&self, other: &Netns) {
        let peer = &format!("tl{}", self.index);
        must(&mut command(
            "ip",
            &[
                "link",
                "add",
                "tunl0",
                "netns",
                self.ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                other.name(),
            ],
        ));
        other.ip(&format!("link set {peer} up"));
        self.ns.ip(&format!("addr add 10.244.{}.1/32 dev tunl0", self.index));
        self.ns.ip("link set tunl0 up");
    }

    /// Adds pod number `k` (0-based) the Calico way: a namespace with `eth0`
    /// 10.244.INDEX.(2+k)/32 and a default route via 169.254.1.1, the host end
    /// `cali<INDEX><k>` with proxy ARP and a /32 route to the pod.
    pub fn add_pod(&self, k: u8) -> Pod {
        let ns = Netns::new("p");
        let addr = Ipv4Addr::new(10, 244, self.index, 2 + k);
        let cali = format!("cali{}x{k}", self.index);
        must(&mut command(
            "ip",
            &[
                "link",
                "add",
                "eth0",
                "netns",
                ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                &cali,
                "netns",
                self.ns.name(),
            ],
        ));
        ns.ip(&format!("addr add {addr}/32 dev eth0"));
        ns.ip("link set eth0 up");
        ns.ip("route add 169.254.1.1 dev eth0 scope link");
        ns.ip("route add default via 169.254.1.1 dev eth0");
        self.ns.ip(&format!("link set {cali} up"));
        self.ns.sysctl(&format!("net.ipv4.conf.{cali}.proxy_arp"), "1");
        self.ns.sysctl(&format!("net.ipv4.neigh.{cali}.proxy_delay"), "0");
        self.ns.ip(&format!("route add {addr}/32 dev {cali}"));
        Pod { ns, addr }
    }

    /// Kernel routes of this host matching `filter`.
    pub fn routes(&self, filter: &str) -> Vec<KernelRoute> {
        self.ns.routes(filter)
    }
}

/// A pod namespace with its address.
pub struct Pod {
    pub ns: Netns,
    pub addr: Ipv4Addr,
}

impl Pod {
    /// One ping to `dst` with a 2 s timeout; Ok(output) when answered.
    pub fn ping(&self, dst: Ipv4Addr) -> Result<String, CmdFailed> {
        self.ns.try_exec(&["ping", "-c", "1", "-W", "2", &dst.to_string()])
    }
}

/// Hosts on one or two L2 segments. A switch namespace holds one bridge per
/// subnet; a router namespace has 192.168.S.1 on every segment and forwards
/// between them; every host gets a default route via its segment's router.
pub struct Topology {
    // Field order is drop order: hosts first, then router and switch.
    pub hosts: Vec<Host>,
    pub router: Netns,
    pub switch: Netns,
}

impl Topology {
    /// `n` hosts on 192.168.1.0/24: 192.168.1.11, .12, ...
    pub fn single_segment(n: usize) -> Topology {
        Topology::subnets(&vec![1; n])
    }

    /// One host per entry, entry = its subnet (1 or 2), e.g. `[1, 1, 2]` puts
    /// hosts 1 and 2 on 192.168.1.0/24 and host 3 (192.168.2.13) on 192.168.2.0/24.
    pub fn subnets(subnets: &[u8]) -> Topology {
        assert!(subnets.len() < 200, "too many hosts");
        let switch = Netns::new("sw");
        let router = Netns::new("rt");
        router.sysctl("net.ipv4.ip_forward", "1");
        let mut used: Vec<u8> = subnets.to_vec();
        used.push(1);
        used.sort_unstable();
        used.dedup();
        for s in &used {
            switch.ip(&format!("link add br{s} type bridge"));
            switch.ip(&format!("link set br{s} up"));
            let sw_end = format!("r{s}");
            must(&mut command(
                "ip",
                &[
                    "link",
                    "add",
                    &format!("eth{s}"),
                    "netns",
                    router.name(),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &sw_end,
                    "netns",
                    switch.name(),
                ],
            ));
            switch.ip(&format!("link set {sw_end} master br{s} up"));
            router.ip(&format!("addr add 192.168.{s}.1/24 dev eth{s}"));
            router.ip(&format!("link set eth{s} up"));
        }
        let mut hosts = Vec::new();
        for (i, &s) in subnets.iter().enumerate() {
            let index = u8::try_from(i + 1).expect("host index");
            let ns = Netns::new(&format!("h{index}"));
            let addr = Ipv4Addr::new(192, 168, s, 10 + index);
            let sw_end = format!("h{index}");
            must(&mut command(
                "ip",
                &[
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    ns.name(),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &sw_end,
                    "netns",
                    switch.name(),
                ],
            ));
            switch.ip(&format!("link set {sw_end} master br{s} up"));
            ns.ip(&format!("addr add {addr}/24 dev eth0"));
            ns.ip("link set eth0 up");
            ns.ip(&format!("route add default via 192.168.{s}.1 dev eth0"));
            ns.sysctl("net.ipv4.ip_forward", "1");
            hosts.push(Host {
                ns,
                index,
                subnet: s,
                addr,
            });
        }
        Topology { hosts, router, switch }
    }

    /// Host number `i` (1-based).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i - 1]
    }

    /// Gives every host a `tunl0` stand-in (peer ends in the switch namespace).
    pub fn add_tunl0_everywhere(&self) {
        for h in &self.hosts {
            h.add_tunl0(&self.switch);
        }
    }
}

// ---------------------------------------------------------------------------
// ternd
// ---------------------------------------------------------------------------

/// A `[mesh]`-mode ternd config for `me` peering with `peers`, announcing
/// `block`. `extra` is appended verbatim (e.g. a `[graceful_restart]` table).
pub fn ternd_mesh_config(
    me: Ipv4Addr,
    peers: &[Ipv4Addr],
    block: &str,
    ipip: &str,
    hold_time: u16,
    extra: &str,
) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{me}"
listen = ["0.0.0.0:179"]
hold_time = {hold_time}
connect_retry_time = 1

[kernel]
ipip = "{ipip}"
tunnel_device = "tunl0"
allowed_prefixes = ["10.244.0.0/16"]

[[originate]]
prefix = "{block}"

[mesh]
peers = [{}]
{extra}
"#,
        peers.join(", ")
    )
}

/// A running `ternd` inside a namespace. Its config, control socket and log
/// live in a temp dir; on drop it gets SIGTERM (then SIGKILL) by PID, and if
/// the test is failing the log tail is printed.
pub struct Ternd {
    ns_name: String,
    label: String,
    dir: TempDir,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    restarts: u32,
}

impl Ternd {
    /// Starts ternd in `ns` with `config_toml` plus a `[control]` table
    /// pointing at a socket in the temp dir (so the config must not have one).
    pub fn start(ns: &Netns, config_toml: &str) -> Ternd {
        assert!(!config_toml.contains("[control]"), "Ternd::start adds [control] itself");
        let dir = TempDir::new("ternd");
        let socket = dir.path().join("tern.sock");
        let config = dir.write(
            "tern.toml",
            &format!("{config_toml}\n[control]\nsocket = \"{}\"\n", socket.display()),
        );
        let log = dir.path().join("ternd.log");
        let mut t = Ternd {
            ns_name: ns.name().to_string(),
            label: ns.name().to_string(),
            dir,
            config,
            socket,
            log,
            child: None,
            restarts: 0,
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns_name, TERND, "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ternd: {e}"));
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if ternd has exited (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL by PID, reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "KILL");
            let _ = c.wait();
        }
    }

    /// SIGTERM, waiting up to 10 s (then SIGKILL); returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child
            .take()
            .and_then(|mut c| stop_child(&mut c, Duration::from_secs(10)))
    }

    /// Starts ternd again with the same config, socket and log.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: ternd still running");
        self.restarts += 1;
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// `ternctl --socket SOCK <args>`; Ok(stdout) on exit 0.
    pub fn ternctl(&self, args: &[&str]) -> Result<String, CmdFailed> {
        run(Command::new(TERNCTL).arg("--socket").arg(&self.socket).args(args))
    }

    /// `ternctl show WHAT --json` parsed; None while the daemon does not answer.
    pub fn try_show(&self, what: &str) -> Option<Value> {
        let out = self.ternctl(&["show", what, "--json"]).ok()?;
        serde_json::from_str(&out).ok()
    }

    /// `ternctl show WHAT --json`, panicking with the error and log tail.
    pub fn show(&self, what: &str) -> Value {
        let out = self
            .ternctl(&["show", what, "--json"])
            .unwrap_or_else(|e| panic!("{e}\n--- ternd log tail\n{}", self.log_tail(30)));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ternctl show {what} --json: bad JSON ({e}): {out}"))
    }

    /// `show peers --json` as a list (empty while the daemon does not answer).
    pub fn peers(&self) -> Vec<Value> {
        match self.try_show("peers") {
            Some(Value::Array(v)) => v,
            _ => Vec::new(),
        }
    }

    /// How many peers report `state == "Established"`.
    pub fn established(&self) -> usize {
        self.peers().iter().filter(|p| p["state"] == "Established").count()
    }

    /// The peer with `address`, if listed.
    pub fn peer(&self, address: &str) -> Option<Value> {
        self.peers()
            .into_iter()
            .find(|p| p["address"].as_str() == Some(address))
    }

    /// Peers as one line each, for failure messages.
    pub fn peers_summary(&self) -> String {
        match self.ternctl(&["show", "peers", "--json"]) {
            Ok(s) => format!("{}: {}", self.label, s.trim()),
            Err(e) => format!("{}: {e}", self.label),
        }
    }
}

impl Drop for Ternd {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- ternd in {} ({}), log tail:\n{}\n---",
                self.label,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// BIRD 2
// ---------------------------------------------------------------------------

/// BIRD's Calico-style config for a mesh host: a static blackhole for `block`,
/// kernel export of everything with `proto bird`, one BGP session per peer,
/// passive toward peers with a lower address (the higher address of a pair is passive).
pub fn bird_mesh_config(me: Ipv4Addr, peers: &[Ipv4Addr], block: &str) -> String {
    let mut s = format!(
        r#"router id {me};
protocol device {{ scan time 2; }}
protocol static {{
  ipv4;
  route {block} blackhole;
}}
protocol kernel {{
  ipv4 {{ export all; }};
  merge paths on;
  scan time 2;
}}
"#
    );
    for p in peers {
        let name = format!("Mesh_{}", p.to_string().replace('.', "_"));
        let passive = if me > *p { "  passive on;\n" } else { "" };
        s.push_str(&format!(
            r#"protocol bgp {name} {{
  local {me} as {ASN};
  neighbor {p} as {ASN};
  direct;
{passive}  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 {{ import all; export all; next hop self; }};
}}
"#
        ));
    }
    s
}

/// A BIRD 2 daemon in a namespace with its own config, control socket and
/// pid file in a temp dir; stopped by PID on drop.
pub struct Bird {
    dir: TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    label: String,
}

impl Bird {
    pub fn start(ns: &Netns, config: &str) -> Bird {
        let dir = TempDir::new("bird");
        let conf = dir.write("bird.conf", config);
        must(Command::new("bird").arg("-p").arg("-c").arg(&conf));
        let socket = dir.path().join("bird.ctl");
        let log = dir.path().join("bird.log");
        let logf = fs::File::create(&log).expect("create bird log");
        let child = ns
            .cmd("bird")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.path().join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup"))
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bird: {e}"));
        let b = Bird {
            dir,
            socket,
            log,
            child: Some(child),
            label: ns.name().to_string(),
        };
        wait_until_diag(
            Duration::from_secs(10),
            "BIRD control socket",
            || b.try_birdc("show status").is_ok(),
            || b.log_tail(),
        );
        b
    }

    /// `birdc -s SOCK <cmd>` (cmd split on whitespace).
    pub fn try_birdc(&self, cmd: &str) -> Result<String, CmdFailed> {
        run(Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .args(cmd.split_whitespace()))
    }

    pub fn birdc(&self, cmd: &str) -> String {
        self.try_birdc(cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// True when BGP protocol `name` is Established.
    pub fn established(&self, name: &str) -> bool {
        self.try_birdc(&format!("show protocols {name}"))
            .map(|s| s.contains("Established"))
            .unwrap_or(false)
    }

    pub fn log_tail(&self) -> String {
        format!("--- bird in {} log:\n{}", self.label, tail(&self.log, 30))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}\n--- birdc show protocols:\n{}",
                self.log_tail(),
                self.try_birdc("show protocols all").unwrap_or_else(|e| e.to_string())
            );
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

// ---------------------------------------------------------------------------
// GoBGP
// ---------------------------------------------------------------------------

/// GoBGP's config for a mesh member `me` with `peers` (iBGP, AS [`ASN`]);
/// passive toward peers with a lower address.
pub fn gobgp_mesh_config(me: Ipv4Addr, peers: &[Ipv4Addr]) -> String {
    let mut s = format!(
        r#"[global.config]
  as = {ASN}
  router-id = "{me}"
  local-address-list = ["{me}"]
"#
    );
    for p in peers {
        let passive = me > *p;
        s.push_str(&format!(
            r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{p}"
    peer-as = {ASN}
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "{me}"
    passive-mode = {passive}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
        ));
    }
    s
}

/// gobgpd in a namespace (API on 127.0.0.1:PORT inside it); stopped by PID on drop.
pub struct Gobgp {
    dir: TempDir,
    ns_name: String,
    port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Gobgp {
    pub fn start(ns: &Netns, config_toml: &str) -> Gobgp {
        let dir = TempDir::new("gobgp");
        let conf = dir.write("gobgpd.toml", config_toml);
        must(Command::new("gobgpd").args(["-d", "-t", "toml", "-f"]).arg(&conf));
        // Inside its own namespace the API port cannot clash; still unique per test.
        let port = 50051 + u16::try_from(next_id() % 1000).expect("port");
        let log = dir.path().join("gobgpd.log");
        let logf = fs::File::create(&log).expect("create gobgpd log");
        let child = ns
            .cmd("gobgpd")
            .args(["-t", "toml", "-f"])
            .arg(&conf)
            .args([
                "--api-hosts",
                &format!("127.0.0.1:{port}"),
                "--pprof-disable",
                "-l",
                "info",
            ])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup"))
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn gobgpd: {e}"));
        let g = Gobgp {
            dir,
            ns_name: ns.name().to_string(),
            port,
            log,
            child: Some(child),
        };
        wait_until_diag(
            Duration::from_secs(15),
            "gobgpd API",
            || g.try_gobgp(&["global"]).is_ok(),
            || tail(&g.log, 30),
        );
        g
    }

    /// `gobgp -p PORT <args>` inside the namespace.
    pub fn try_gobgp(&self, args: &[&str]) -> Result<String, CmdFailed> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns_name, "gobgp", "-p"])
            .arg(self.port.to_string())
            .args(args))
    }

    pub fn gobgp(&self, args: &[&str]) -> String {
        self.try_gobgp(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// True when the session with `addr` is Established.
    pub fn established(&self, addr: &str) -> bool {
        self.try_gobgp(&["neighbor"])
            .map(|s| {
                s.lines().any(|l| {
                    let mut w = l.split_whitespace();
                    w.next() == Some(addr) && l.contains("Establ")
                })
            })
            .unwrap_or(false)
    }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- gobgpd in {} log:\n{}\n--- gobgp neighbor:\n{}",
                self.ns_name,
                tail(&self.log, 30),
                self.try_gobgp(&["neighbor"]).unwrap_or_else(|e| e.to_string())
            );
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}
