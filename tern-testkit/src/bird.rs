//! BIRD 2 as a peer: its Calico-style mesh config and a guard that runs it in
//! a namespace.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{must, run, signal, stop_child, wait_until_diag, CmdFailed};
use crate::tempdir::{tail, TempDir};
use crate::ASN;

/// The start of a BIRD config: router id `me`, the device protocol, and
/// `block` as a static blackhole to announce.
pub fn bird_originating(me: Ipv4Addr, block: &str) -> String {
    format!(
        r#"router id {me};
protocol device {{ scan time 2; }}
protocol static {{
  ipv4;
  route {block} blackhole;
}}
"#
    )
}

/// BIRD's Calico-style config for a mesh host: a static blackhole for `block`,
/// kernel export of everything with `proto bird`, one BGP session per peer,
/// passive toward peers with a lower address (the higher address of a pair is passive).
pub fn bird_mesh_config(me: Ipv4Addr, peers: &[Ipv4Addr], block: &str) -> String {
    let mut s = bird_originating(me, block);
    s.push_str(
        r#"protocol kernel {
  ipv4 { export all; };
  merge paths on;
  scan time 2;
}
"#,
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
/// pid file in a temp dir; can be killed (SIGKILL) and started again (with
/// `-R`, graceful-restart recovery, as Calico runs it); stopped by PID on drop.
pub struct Bird {
    dir: TempDir,
    ns_name: String,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Bird {
    pub fn start(ns: &Netns, config: &str) -> Bird {
        let dir = TempDir::new("bird");
        let mut b = Bird {
            socket: dir.path().join("bird.ctl"),
            log: dir.path().join("bird.log"),
            dir,
            ns_name: ns.name().to_string(),
            child: None,
        };
        b.restart(config, false);
        b
    }

    /// Writes `config` and starts BIRD with it (it must not be running);
    /// `recovery` adds `-R`.
    pub fn restart(&mut self, config: &str, recovery: bool) {
        assert!(self.child.is_none(), "BIRD still running");
        let conf = self.dir.write("bird.conf", config);
        must(Command::new("bird").arg("-p").arg("-c").arg(&conf));
        let logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open bird log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name, "bird", "-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&self.socket)
            .arg("-P")
            .arg(self.dir.path().join("bird.pid"));
        if recovery {
            cmd.arg("-R");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup"))
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bird: {e}"));
        self.child = Some(child);
        wait_until_diag(
            Duration::from_secs(10),
            "BIRD control socket",
            || self.try_birdc("show status").is_ok(),
            || self.log_tail(),
        );
    }

    /// SIGKILL by PID, reaped: no NOTIFICATION, kernel routes left as they are.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "KILL");
            let _ = c.wait();
        }
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
            .is_ok_and(|s| s.contains("Established"))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        format!("--- bird in {} log:\n{}", self.ns_name, tail(&self.log, 30))
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
