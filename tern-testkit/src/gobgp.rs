//! GoBGP as a peer: its mesh config and a guard that runs gobgpd in a
//! namespace, queried with the `gobgp` CLI.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{must, run, stop_child, wait_until_diag, CmdFailed};
use crate::tempdir::{tail, TempDir};
use crate::{next_id, ASN};

/// GoBGP's config for a mesh member `me` with `peers` (iBGP, AS [`ASN`]);
/// passive toward peers with a lower address.
pub fn gobgp_mesh_config(me: Ipv4Addr, peers: &[Ipv4Addr]) -> String {
    gobgp_config(me, peers, false)
}

/// [`gobgp_mesh_config`] with graceful restart (helper) enabled, in GoBGP
/// 3.10's TOML: `[neighbors.graceful-restart.config]` plus the per-family
/// `[neighbors.afi-safis.mp-graceful-restart.config]`.
pub fn gobgp_gr_config(me: Ipv4Addr, peers: &[Ipv4Addr]) -> String {
    gobgp_config(me, peers, true)
}

fn gobgp_config(me: Ipv4Addr, peers: &[Ipv4Addr], graceful_restart: bool) -> String {
    let mut s = format!(
        r#"[global.config]
  as = {ASN}
  router-id = "{me}"
  local-address-list = ["{me}"]
"#
    );
    let (gr, mp_gr) = if graceful_restart {
        (
            "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n",
            "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
        )
    } else {
        ("", "")
    };
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
{gr}  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
{mp_gr}"#
        ));
    }
    s
}

/// gobgpd in a namespace (API on 127.0.0.1:PORT inside it); stopped by PID on drop.
pub struct Gobgp {
    /// Held for its drop: removes the config and log afterwards.
    _dir: TempDir,
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
            _dir: dir,
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
