//! Network namespaces that clean up after themselves, and kernel routes read
//! back with `ip -j route show`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::next_id;
use crate::process::{command, must, run, signal, CmdFailed};

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

/// A veth pair between two namespaces: `a_name` in `a`, `b_name` in `b`
/// (`ip link add A netns NA type veth peer name B netns NB`).
pub fn veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) {
    must(&mut command(
        "ip",
        &[
            "link",
            "add",
            a_name,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_name,
            "netns",
            b.name(),
        ],
    ));
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
