//! `ternd` run inside a namespace (config, control socket and log in a temp
//! dir), queried through `ternctl`, and the `[mesh]` config the tests share.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::{run, signal, stop_child, CmdFailed};
use crate::tempdir::{tail, TempDir};
use crate::ASN;

/// Path of the tern package's binary `name`: `CARGO_BIN_EXE_<name>` when cargo
/// set it for this run, else next to the running test or example
/// (`target/<profile>/`), where cargo builds the binaries before integration tests.
fn tern_bin(name: &str) -> String {
    if let Ok(path) = std::env::var(format!("CARGO_BIN_EXE_{name}")) {
        return path;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("locating {name}: current_exe: {e}"));
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join(name).to_string_lossy().into_owned()
}

/// The `ternd` binary of this build.
pub fn ternd_bin() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| tern_bin("ternd"))
}

/// The `ternctl` binary of this build.
pub fn ternctl_bin() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| tern_bin("ternctl"))
}

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
    /// Held for its drop: removes the config, socket and log afterwards.
    _dir: TempDir,
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
            _dir: dir,
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
            .args(["netns", "exec", &self.ns_name, ternd_bin(), "--config"])
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
        run(Command::new(ternctl_bin()).arg("--socket").arg(&self.socket).args(args))
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

/// A ternd config with explicit `[[peer]]`s (`(address, extra keys)`),
/// all in AS [`crate::ASN`], originating `block`. `bgp_extra` goes into `[bgp]` (e.g. a cluster id).
pub fn ternd_peers_config(me: Ipv4Addr, bgp_extra: &str, block: &str, peers: &[(Ipv4Addr, &str)]) -> String {
    let peers: Vec<(Ipv4Addr, u32, &str)> = peers.iter().map(|&(a, extra)| (a, crate::ASN, extra)).collect();
    ternd_config_with_peers(me, bgp_extra, block, &peers)
}

/// [`ternd_peers_config`] with each peer's AS given: `(address, asn, extra keys)`.
pub fn ternd_config_with_peers(me: Ipv4Addr, bgp_extra: &str, block: &str, peers: &[(Ipv4Addr, u32, &str)]) -> String {
    let asn = crate::ASN;
    let mut s = format!(
        r#"[bgp]
asn = {asn}
router_id = "{me}"
listen = ["0.0.0.0:179"]
connect_retry_time = 1
{bgp_extra}

[kernel]
allowed_prefixes = ["10.244.0.0/16"]

[[originate]]
prefix = "{block}"
"#
    );
    for (addr, peer_asn, extra) in peers {
        s.push_str(&format!(
            "\n[[peer]]\naddress = \"{addr}\"\nasn = {peer_asn}\nfamilies = [\"ipv4\"]\n{extra}\n"
        ));
    }
    s
}
