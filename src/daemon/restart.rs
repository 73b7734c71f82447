//! Our own graceful restart across processes (RFC 4724 §4.1). A small state
//! file next to the control socket says that a ternd ran, when it last said
//! so, and which peers had graceful-restart sessions with it. A ternd that
//! starts within the restart time of that moment is restarting: its OPENs
//! carry the R bit (and F for families whose kernel routes it found in
//! place), and it defers route selection until those peers' End-of-RIB.
//! A graceful stop rewrites the file; a hard stop removes it; a crash leaves
//! the last heartbeat.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_proto::fsm::State;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::registry::Registry;
use crate::session::LocalRestart;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateFile {
    /// When a ternd last wrote it, seconds since the Unix epoch.
    written_unix: u64,
    /// Peers with an Established graceful-restart session then.
    peers: Vec<IpAddr>,
}

/// The state file of a configuration: `ternd.state` beside the control socket.
pub(super) fn path(cfg: &config::Config) -> PathBuf {
    let dir = cfg.control.socket.parent().unwrap_or(Path::new("/run/tern"));
    dir.join("ternd.state")
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The peers to wait for if the previous ternd ran until less than
/// `restart_time` before `now`; `None` for a fresh start.
pub(super) fn previous(path: &Path, restart_time: Duration, now: SystemTime) -> Option<Vec<IpAddr>> {
    let text = std::fs::read_to_string(path).ok()?;
    let state: StateFile = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            warn!(
                "{}: unreadable graceful-restart state ({e}); starting fresh",
                path.display()
            );
            return None;
        }
    };
    let age = unix(now).saturating_sub(state.written_unix);
    (age <= restart_time.as_secs()).then_some(state.peers)
}

/// Writes the file (a temporary file renamed over it: never half written).
pub(super) fn write(path: &Path, peers: &[IpAddr], now: SystemTime) -> std::io::Result<()> {
    let state = StateFile {
        written_unix: unix(now),
        peers: peers.to_vec(),
    };
    let text = serde_json::to_string(&state).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// A hard stop: the next start is a fresh one.
pub(super) fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Peers with an Established session that negotiated graceful restart.
pub(super) fn graceful_peers(registry: &Registry) -> Vec<IpAddr> {
    registry.addresses_where(|st| st.state == State::Established && st.graceful_restart)
}

/// How often the heartbeat looks whether the graceful-restart peers changed
/// (besides being told when a session comes up or goes).
const PEERS_CHECK: Duration = Duration::from_secs(1);

/// The heartbeat looks at most this often: sessions come and go in bursts
/// (1,000 reflector clients dialling at once), and looking on each change
/// was half the reflector's CPU.
const PEERS_SETTLE: Duration = Duration::from_millis(100);

/// Keeps the file current, so a crash leaves a recent moment and the peers
/// it had: rewritten as soon as a session comes up or goes, and every
/// `every` to refresh the moment.
pub(super) async fn heartbeat(registry: Arc<Registry>, path: PathBuf, every: Duration, sessions: Arc<LocalRestart>) {
    let mut tick = tokio::time::interval(PEERS_CHECK.min(every));
    let mut written: Option<(Vec<IpAddr>, std::time::Instant)> = None;
    let mut looked: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sessions.sessions_changed() => {}
        }
        if let Some(at) = looked {
            tokio::time::sleep_until(at + PEERS_SETTLE).await;
        }
        looked = Some(tokio::time::Instant::now());
        let mut peers = graceful_peers(&registry);
        peers.sort();
        let due = written
            .as_ref()
            .is_none_or(|(before, at)| *before != peers || at.elapsed() >= every);
        if !due {
            continue;
        }
        match write(&path, &peers, SystemTime::now()) {
            Ok(()) => written = Some((peers, std::time::Instant::now())),
            Err(e) => warn!("{}: cannot write graceful-restart state: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tern-restart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("ternd.state")
    }

    #[test]
    fn a_recent_state_file_means_restarting_and_names_the_peers() {
        let p = tmp("recent");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let peers: Vec<IpAddr> = vec!["192.168.1.12".parse().unwrap()];
        write(&p, &peers, t0).unwrap();
        let later = t0 + Duration::from_secs(100);
        assert_eq!(previous(&p, Duration::from_secs(120), later), Some(peers));
        assert_eq!(previous(&p, Duration::from_secs(60), later), None, "too old");
        remove(&p);
        assert_eq!(
            previous(&p, Duration::from_secs(120), later),
            None,
            "hard stop: fresh start"
        );
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn a_garbled_state_file_is_a_fresh_start() {
        let p = tmp("garbled");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(previous(&p, Duration::from_secs(120), SystemTime::now()), None);
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }
}
