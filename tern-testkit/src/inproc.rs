//! The daemon in-process: the real supervisor, sessions, RIB and front ends,
//! over fib-sync's in-memory kernel and loopback sockets. No root, no
//! namespaces; peers are scripted (`TestPeer`) from 127.0.0.x source
//! addresses. Waits await conditions with a deadline; nothing sleeps for a
//! timer. `tests/daemon/` is built on it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::testpeer::{ConnectOptions, TestPeer};
use crate::TempDir;
use fib_sync::{KernelRoute, MemoryKernel, RouteKind, RT_TABLE_MAIN};
use serde::de::DeserializeOwned;
use tern::api::control::proto::{FibReply, PeerReply, Request, RouteReply, StatusReply};
use tern::daemon::{Daemon, Kernel};
use tern::registry::StopMode;

/// Our AS and router id in every test.
pub const ASN: u32 = 64512;
pub const ROUTER_ID: &str = "192.168.1.11";
/// The block every node originates.
pub const OWN_BLOCK: &str = "10.244.1.0/26";
/// How long any condition may take.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The configuration every test starts from, plus `extra` TOML (peers,
/// ranges, policies). The BGP listener and metrics take kernel-chosen ports.
pub fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        r#"[bgp]
asn = {ASN}
router_id = "{ROUTER_ID}"
listen = ["127.0.0.1:0"]
connect_retry_time = 1

[kernel]
allowed_prefixes = ["10.244.0.0/16", "fd00:10:244::/48"]
sweep_after = 600

[control]
socket = "{dir}/tern.sock"
bird_socket = "{dir}/bird.ctl"

[metrics]
listen = "127.0.0.1:0"

[[originate]]
prefix = "{OWN_BLOCK}"

{extra}
"#,
        dir = dir.display()
    )
}

/// A passive iBGP peer at `address` named `name`.
pub fn ibgp_peer(name: &str, address: &str) -> String {
    format!("[[peer]]\nname = \"{name}\"\naddress = \"{address}\"\nasn = {ASN}\npassive = true\n")
}

/// A passive eBGP peer at `address` in `asn`.
pub fn ebgp_peer(name: &str, address: &str, asn: u32) -> String {
    format!("[[peer]]\nname = \"{name}\"\naddress = \"{address}\"\nasn = {asn}\npassive = true\n")
}

/// What a second node takes from the first ([`Node::try_start_sharing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    ControlSocket,
    BirdSocket,
    BgpListen,
}

/// One ternd, running in this test process.
pub struct Node {
    pub dir: TempDir,
    pub config_path: PathBuf,
    /// The host's "kernel": `eth0` is up with 192.168.1.11/24, so next hops
    /// on 192.168.1.0/24 resolve.
    pub kernel: MemoryKernel,
    rt: tokio::runtime::Runtime,
    daemon: Option<Daemon>,
}

impl Node {
    /// Starts a node whose configuration is the base plus `extra`.
    pub fn start(extra: &str) -> Node {
        Node::try_start(extra).expect("ternd starts")
    }

    pub fn try_start(extra: &str) -> Result<Node, String> {
        Node::try_start_in(TempDir::new("inproc"), extra)
    }

    /// Starts a node in `dir`, which may already hold files (stale sockets).
    pub fn try_start_in(dir: TempDir, extra: &str) -> Result<Node, String> {
        let text = config_text(dir.path(), extra);
        Node::try_start_with(dir, &text)
    }

    /// Starts a node whose `[control]` table also has `control_keys`
    /// (lines; the socket paths may use `{dir}` for the node's directory).
    pub fn start_with_control(control_keys: &str, extra: &str) -> Node {
        let dir = TempDir::new("inproc");
        let keys = control_keys.replace("{dir}", &dir.path().display().to_string());
        let text = config_text(dir.path(), extra).replace("[control]\n", &format!("[control]\n{keys}\n"));
        Node::try_start_with(dir, &text).expect("start")
    }

    /// Starts a node whose BGP listener (and so its BFD sockets) is on
    /// `ip` (a 127.0.0.x address of its own), the base configuration plus `extra`.
    pub fn start_on(ip: &str, extra: &str) -> Node {
        let dir = TempDir::new("inproc");
        let text = config_text(dir.path(), extra).replacen(
            r#"listen = ["127.0.0.1:0"]"#,
            &format!(r#"listen = ["{ip}:0"]"#),
            1,
        );
        Node::try_start_with(dir, &text).expect("start")
    }

    /// Starts a second node with the base configuration, its sockets in
    /// [`Node::second_dir`], except for `shared`, which it takes from this node.
    pub fn try_start_sharing(&self, shared: Shared) -> Result<Node, String> {
        let dir = self.second_dir();
        let text = config_text(&dir, "");
        let path = |p: PathBuf| p.display().to_string();
        let (mine, theirs) = match shared {
            Shared::ControlSocket => (path(dir.join("tern.sock")), path(self.control_socket())),
            Shared::BirdSocket => (path(dir.join("bird.ctl")), path(self.bird_socket())),
            Shared::BgpListen => (
                r#"listen = ["127.0.0.1:0"]"#.to_string(),
                format!(r#"listen = ["{}"]"#, self.bgp_addr()),
            ),
        };
        assert!(text.contains(&mine), "the base configuration has {mine}");
        let text = text.replace(&mine, &theirs);
        Node::try_start_with(TempDir::new("inproc-second"), &text)
    }

    /// Where a second node ([`Node::try_start_sharing`]) keeps its own
    /// sockets: inside this node's directory, so a test can look at what a
    /// refused start left there.
    pub fn second_dir(&self) -> PathBuf {
        self.dir.path().join("second")
    }

    /// Starts a node in `dir` whose whole configuration is `text`.
    fn try_start_with(dir: TempDir, text: &str) -> Result<Node, String> {
        let config_path = dir.path().join("tern.toml");
        std::fs::write(&config_path, text).map_err(|e| e.to_string())?;
        let kernel = MemoryKernel::new();
        kernel.add_link("eth0");
        kernel.add_addr("eth0", "192.168.1.11/24".parse().expect("net"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut node = Node {
            dir,
            config_path,
            kernel,
            rt,
            daemon: None,
        };
        node.start_daemon()?;
        Ok(node)
    }

    /// Starts ternd over this node's directory and kernel (which keeps its
    /// routes across restarts, as a real one does).
    fn start_daemon(&mut self) -> Result<(), String> {
        let cfg = config::load(&self.config_path).map_err(|e| e.to_string())?;
        let fib = Kernel::Memory(self.kernel.fib());
        let daemon = self
            .rt
            .block_on(Daemon::start(self.config_path.clone(), cfg, fib))
            .map_err(|e| e.to_string())?;
        self.daemon = Some(daemon);
        Ok(())
    }

    /// Stops ternd (`mode`) and starts it again, as `systemctl restart` does.
    pub fn restart(&mut self, mode: StopMode) {
        self.stop_with(mode);
        self.start_daemon().expect("ternd starts again");
    }

    /// Ends ternd the way `kill -9` does — every task gone at once, sockets
    /// closed, nothing written — and starts it again over the same kernel.
    pub fn crash_and_start(&mut self) {
        let daemon = self.daemon.take();
        let fresh = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let old = std::mem::replace(&mut self.rt, fresh);
        drop(daemon);
        old.shutdown_timeout(Duration::from_secs(1));
        self.start_daemon().expect("ternd starts again");
    }

    /// The graceful-restart state file ternd keeps beside its control socket.
    pub fn state_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ternd.state")).unwrap_or_default()
    }

    /// Waits for a stop asked over the control socket, and returns its mode.
    pub fn stop_requested(&self) -> StopMode {
        self.block_on(async {
            tokio::time::timeout(PATIENCE, self.daemon().stop_requested())
                .await
                .expect("a stop request")
        })
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon running")
    }

    /// Where ternd accepts BGP connections.
    pub fn bgp_addr(&self) -> SocketAddr {
        self.daemon().bgp_addrs()[0]
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.daemon().metrics_addr().expect("metrics served")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("tern.sock")
    }

    pub fn bird_socket(&self) -> PathBuf {
        self.dir.path().join("bird.ctl")
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A typed ternctl request over the control socket.
    pub fn ternctl<T: DeserializeOwned>(&self, req: Request) -> Result<T, String> {
        self.block_on(tern::api::control::request(&self.control_socket(), &req))
    }

    pub fn peers(&self) -> Vec<PeerReply> {
        self.ternctl(Request::Peers).expect("show peers")
    }

    pub fn peer(&self, name: &str) -> PeerReply {
        self.peers()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    pub fn routes(&self) -> Vec<RouteReply> {
        self.ternctl(Request::Routes { prefix: None }).expect("show routes")
    }

    pub fn fib(&self) -> Vec<FibReply> {
        self.ternctl(Request::Fib).expect("show fib")
    }

    pub fn status(&self) -> StatusReply {
        self.ternctl(Request::Status).expect("show status")
    }

    /// Our routes in the in-memory kernel's main table.
    pub fn kernel_routes(&self) -> Vec<KernelRoute> {
        self.kernel
            .routes(RT_TABLE_MAIN)
            .into_iter()
            .filter(|r| r.protocol == fib_sync::RTPROT_BIRD)
            .collect()
    }

    /// The gateways of our kernel route for `prefix`, if there is one.
    pub fn kernel_gateways(&self, prefix: &str) -> Option<Vec<IpAddr>> {
        let prefix: ipnetwork::IpNetwork = prefix.parse().expect("prefix");
        self.kernel_routes()
            .into_iter()
            .find(|r| r.prefix == prefix)
            .map(|r| match r.kind {
                RouteKind::Unicast(hops) => hops.iter().filter_map(|h| h.gateway).collect(),
                _ => Vec::new(),
            })
    }

    /// Waits until `cond` holds, or panics with `what` after [`PATIENCE`].
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the named peer is in `state`.
    pub fn wait_state(&self, name: &str, state: &str) {
        self.wait_until(&format!("{name} is {state}"), || self.peer(name).state == state);
    }

    /// Rewrites the configuration (base plus `extra`) and reloads, as SIGHUP does.
    pub fn reload_with(&self, extra: &str) -> Result<(), config::ConfigErrors> {
        self.write_config(extra);
        self.block_on(self.daemon().reload()).map(|_| ())
    }

    /// Writes the configuration file with `extra`, without reloading.
    pub fn write_config(&self, extra: &str) {
        std::fs::write(&self.config_path, config_text(self.dir.path(), extra)).expect("write config");
    }

    /// Writes `text` as the whole configuration file and reloads.
    pub fn reload_raw(&self, text: &str) -> Result<(), config::ConfigErrors> {
        std::fs::write(&self.config_path, text).expect("write config");
        self.block_on(self.daemon().reload()).map(|_| ())
    }

    /// Connects a scripted peer from `from` (127.0.0.x) in `asn`.
    pub fn connect(&self, from: &str, asn: u32) -> std::io::Result<TestPeer> {
        self.connect_with(from, asn, ConnectOptions::default())
    }

    pub fn connect_with(&self, from: &str, asn: u32, mut opts: ConnectOptions) -> std::io::Result<TestPeer> {
        let ip: IpAddr = from.parse().expect("address");
        opts.local = Some(ip);
        let router_id = match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::new(10, 255, 0, 1),
        };
        TestPeer::connect_with(self.bgp_addr(), asn, router_id, PATIENCE, &opts)
    }

    /// One BIRD CLI command over the BIRD-compatible socket; the reply lines.
    pub fn birdc(&self, command: &str) -> Vec<String> {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::os::unix::net::UnixStream::connect(self.bird_socket()).expect("bird socket");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut hello = String::new();
        r.read_line(&mut hello).expect("greeting");
        assert!(hello.starts_with("0001 BIRD"), "greeting {hello:?}");
        writeln!(s, "{command}").expect("send");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).expect("reply") == 0 {
                break;
            }
            let line = line.trim_end_matches('\n').to_string();
            // A line `DDDD text` (space after four digits) ends the reply.
            let last = line.len() >= 5 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit) && &line[4..5] == " ";
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    }

    /// Stops the daemon as SIGTERM does.
    pub fn stop(&mut self) {
        self.stop_with(StopMode::Graceful);
    }

    pub fn stop_with(&mut self, mode: StopMode) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.stop(mode));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Prefixes of the UPDATEs a scripted peer receives until `cond` holds on
/// what it has seen (announced, withdrawn), or the deadline.
pub struct Seen {
    pub announced: Vec<String>,
    pub withdrawn: Vec<String>,
    pub end_of_rib: bool,
    pub updates: Vec<bgp_proto::update::Update>,
}

/// Reads what `peer` is sent until `done` says enough.
pub fn read_until(peer: &mut TestPeer, what: &str, mut done: impl FnMut(&Seen) -> bool) -> Seen {
    let mut seen = Seen {
        announced: Vec::new(),
        withdrawn: Vec::new(),
        end_of_rib: false,
        updates: Vec::new(),
    };
    let deadline = Instant::now() + PATIENCE;
    while !done(&seen) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        match peer.recv(deadline) {
            Ok(Some(d)) => {
                if let bgp_proto::Message::Update(u) = d.message {
                    if u.as_end_of_rib().is_some() {
                        seen.end_of_rib = true;
                    }
                    seen.announced.extend(u.announced().map(|(_, n)| n.prefix.to_string()));
                    seen.withdrawn
                        .extend(u.withdrawn_routes().map(|(_, n)| n.prefix.to_string()));
                    seen.updates.push(u);
                }
            }
            Ok(None) => {}
            Err(e) => panic!("while waiting until {what}: {e}"),
        }
    }
    seen
}

/// A /26 as `IpNetwork`.
pub fn net(s: &str) -> ipnetwork::IpNetwork {
    s.parse().expect("prefix")
}
