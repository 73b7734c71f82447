//! FRR's `bfdd` as a BFD neighbour: a guard that runs it standalone (no
//! zebra, no watchfrr) in a namespace, with its config, vty socket, pid file
//! and log in a temp dir, queried with `vtysh --vty_socket DIR -d bfdd`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::{run, stop_child, wait_until_diag, CmdFailed};
use crate::tempdir::{tail, TempDir};

/// Where Debian's frr package puts the daemon.
pub const BFDD: &str = "/usr/lib/frr/bfdd";

/// True when FRR's bfdd and vtysh are installed.
pub fn have_bfdd() -> bool {
    Path::new(BFDD).is_file() && crate::process::have_tool("vtysh")
}

/// `bfdd.conf` with single-hop peers `(peer, local address)` and their intervals (ms).
pub fn bfdd_config(peers: &[(&str, &str)], interval_ms: u32, multiplier: u8) -> String {
    let mut s = String::from("bfd\n");
    for (peer, local) in peers {
        s.push_str(&format!(
            " peer {peer} local-address {local}\n  receive-interval {interval_ms}\n  transmit-interval {interval_ms}\n  detect-multiplier {multiplier}\n !\n"
        ));
    }
    s.push_str("!\n");
    s
}

/// A running bfdd, stopped by PID on drop.
pub struct Bfdd {
    dir: TempDir,
    ns_name: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Bfdd {
    /// Starts bfdd in `ns` with `config`. It runs as the `frr` user (FRR
    /// refuses a user outside its `frrvty` group), so its directory is open to it.
    pub fn start(ns: &Netns, config: &str) -> Bfdd {
        let dir = TempDir::new("bfdd");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod bfdd dir");
        let conf = dir.write("bfdd.conf", config);
        let log = dir.path().join("bfdd.log");
        let out = fs::File::create(dir.path().join("bfdd.out")).expect("bfdd.out");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), BFDD, "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("bfdd.pid"))
            .arg("--vty_socket")
            .arg(dir.path())
            .arg("-z")
            .arg(dir.path().join("zserv.api"))
            .arg("--bfdctl")
            .arg(dir.path().join("bfdd.sock"))
            .args(["-u", "frr", "-g", "frr", "-P", "0", "--log"])
            .arg(format!("file:{}", log.display()))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bfdd: {e}"));
        let b = Bfdd {
            dir,
            ns_name: ns.name().to_string(),
            log,
            child: Some(child),
        };
        wait_until_diag(
            Duration::from_secs(10),
            "bfdd's vty socket",
            || b.vtysh("show bfd peers").is_ok(),
            || b.log_tail(),
        );
        b
    }

    /// One vtysh command against this bfdd.
    pub fn vtysh(&self, cmd: &str) -> Result<String, CmdFailed> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns_name, "vtysh", "--vty_socket"])
            .arg(self.dir.path())
            .args(["-d", "bfdd", "-c", cmd]))
    }

    /// The status bfdd reports for its session with `peer` (`up`, `down`, `init`, …).
    pub fn peer_status(&self, peer: &str) -> Option<String> {
        let text = self.vtysh("show bfd peers json").ok()?;
        let peers: Value = serde_json::from_str(&text).ok()?;
        peers
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .and_then(|p| p["status"].as_str().map(str::to_string))
    }

    pub fn log_tail(&self) -> String {
        format!(
            "--- bfdd in {} log:\n{}\n{}",
            self.ns_name,
            tail(&self.log, 30),
            tail(&self.dir.path().join("bfdd.out"), 10)
        )
    }
}

impl Drop for Bfdd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}
