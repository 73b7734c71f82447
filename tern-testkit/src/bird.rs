//! BIRD 2 as a peer: its Calico-style mesh config and a guard that runs it in
//! a namespace.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{must, run, stop_child, wait_until_diag, CmdFailed};
use crate::tempdir::{tail, TempDir};
use crate::ASN;

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
    /// Held for its drop: removes the config, socket, pid file and log afterwards.
    _dir: TempDir,
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
            _dir: dir,
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
