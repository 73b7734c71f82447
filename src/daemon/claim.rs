//! Taking this daemon's sockets before a start changes anything, so a second
//! ternd started by mistake leaves the running one alone (as BIRD's "I found
//! another BIRD running" does). Every Unix socket path is probed (one that
//! answers refuses the start), every TCP listener is bound (an address in
//! use refuses it), and only then are stale socket files replaced. The
//! graceful-restart state file and the kernel are touched after this.

use std::net::SocketAddr;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::PathBuf;

use config::Config;
use tokio::net::TcpListener;

use super::{listener, DaemonError};
use crate::api::unix::{self, PathTaken};

/// Which front end a Unix socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Front {
    Control,
    ReadOnly,
    Bird,
    Bird6,
}

impl Front {
    /// How messages name it.
    pub(super) fn what(self) -> &'static str {
        match self {
            Front::Control => "control socket",
            Front::ReadOnly => "read-only control socket",
            Front::Bird => "BIRD socket",
            Front::Bird6 => "BIRD6 socket",
        }
    }

    /// The configuration key that sets its path.
    fn key(self) -> &'static str {
        match self {
            Front::Control => "[control] socket",
            Front::ReadOnly => "[control] read_only_socket",
            Front::Bird => "[control] bird_socket",
            Front::Bird6 => "[control] bird6_socket",
        }
    }
}

/// A bound Unix socket of ours.
pub(super) struct UnixSocket {
    pub front: Front,
    pub path: PathBuf,
    pub listener: StdUnixListener,
}

/// Every listener of the daemon, bound, none accepting yet.
pub(super) struct Claimed {
    pub unix: Vec<UnixSocket>,
    /// In `[bgp] listen` order.
    pub bgp: Vec<TcpListener>,
    pub metrics: Option<TcpListener>,
}

/// What to tell the operator when a socket path is not ours to take.
pub(super) fn advice(why: &PathTaken, key: &str) -> String {
    match why {
        PathTaken::Live => format!("stop that daemon first, or set {key} to another path"),
        _ => format!("remove it, or set {key} to another path"),
    }
}

fn unix_paths(cfg: &Config) -> Vec<(Front, PathBuf)> {
    let mut paths = vec![(Front::Control, cfg.control.socket.clone())];
    paths.extend(cfg.control.bird_socket.clone().map(|p| (Front::Bird, p)));
    paths.extend(cfg.control.bird6_socket.clone().map(|p| (Front::Bird6, p)));
    paths.extend(cfg.control.read_only_socket.clone().map(|p| (Front::ReadOnly, p)));
    paths
}

/// The ternctl sockets' permissions (`[control] socket_mode`,
/// `socket_group`, `read_only_socket_mode`); the BIRD sockets keep theirs.
fn set_permissions(front: Front, path: &std::path::Path, cfg: &Config) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match front {
        Front::Control => cfg.control.socket_mode,
        Front::ReadOnly => cfg.control.read_only_socket_mode,
        Front::Bird | Front::Bird6 => return Ok(()),
    };
    if front == Front::Control {
        if let Some(group) = &cfg.control.socket_group {
            std::os::unix::fs::chown(path, None, Some(group_id(group)?))?;
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A group's id: a number as it is, a name from `/etc/group`.
fn group_id(group: &str) -> std::io::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")?;
    (groups.lines())
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&group))
        .and_then(|f| f.get(2)?.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no group {group:?} in /etc/group ([control] socket_group)")))
}

fn listen_error(addr: SocketAddr, key: &'static str, e: std::io::Error) -> DaemonError {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => DaemonError::AddrInUse { addr, key },
        _ => DaemonError::Listen(addr, e),
    }
}

/// Checks and binds every socket of `cfg`; on an error nothing was changed
/// (no file removed, no listener left open).
pub(super) async fn claim(cfg: &Config) -> Result<Claimed, DaemonError> {
    let mut found = Vec::new();
    for (front, path) in unix_paths(cfg) {
        match unix::probe(&path).await {
            Ok(f) => found.push((front, path, f)),
            Err(why) => {
                return Err(DaemonError::SocketTaken {
                    what: front.what(),
                    key: front.key(),
                    path,
                    why,
                })
            }
        }
    }
    let mut bgp = Vec::new();
    for addr in &cfg.bgp.listen {
        bgp.push(listener::bind(*addr).map_err(|e| listen_error(*addr, "[bgp] listen", e))?);
    }
    let metrics = match &cfg.metrics {
        Some(m) => Some(
            TcpListener::bind(m.listen)
                .await
                .map_err(|e| listen_error(m.listen, "[metrics] listen", e))?,
        ),
        None => None,
    };
    // Every check passed: stale socket files may go now.
    let mut bound: Vec<UnixSocket> = Vec::new();
    for (front, path, f) in found {
        match unix::bind(&path, f).and_then(|l| set_permissions(front, &path, cfg).map(|_| l)) {
            Ok(listener) => bound.push(UnixSocket { front, path, listener }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                for b in &bound {
                    let _ = std::fs::remove_file(&b.path);
                }
                return Err(DaemonError::Control { path, source: e });
            }
        }
    }
    Ok(Claimed {
        unix: bound,
        bgp,
        metrics,
    })
}
