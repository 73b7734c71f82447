//! One task per configured peer: runs the bgp-proto FSM, owns the TCP
//! connection(s), turns received UPDATEs into RIB messages and writes what
//! the RIB queued. A peer never blocks another: each has its own task,
//! reader and writer, and its outbound queue is bounded (the RIB coalesces
//! the rest, see `rib`).

mod conn;
mod inbound;
mod operator;
mod settings;
#[allow(unsafe_code)]
pub mod sockopt;
mod status;
mod task;

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::messages::{PeerCmd, RibMsg};
pub use settings::{LocalRestart, MaxPrefixes, PeerSettings, SOFT_SETTINGS};
pub use status::{PeerStatus, StatusCell};
use task::PeerTask;

/// The daemon's handle on a peer task.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    pub settings: PeerSettings,
    pub cmd: mpsc::Sender<PeerCmd>,
    pub status: StatusCell,
}

impl PeerHandle {
    /// A copy of the session's current status.
    pub fn status(&self) -> PeerStatus {
        self.status.get()
    }
}

/// Starts the task of one peer.
pub fn spawn(settings: PeerSettings, rib: mpsc::Sender<RibMsg>, local_restart: &Arc<LocalRestart>) -> PeerHandle {
    spawn_with_return(settings, rib, local_restart, None, false)
}

/// Like [`spawn`], for a peer an operator disabled: it stays down until enabled.
pub fn spawn_disabled(
    settings: PeerSettings,
    rib: mpsc::Sender<RibMsg>,
    local_restart: &Arc<LocalRestart>,
) -> PeerHandle {
    spawn_with_return(settings, rib, local_restart, None, true)
}

/// Like [`spawn`], for a dynamic peer whose task ends with its session:
/// connections that reached it as it ended go back through `returned`, to be
/// handed to a new session instead of being reset.
pub fn spawn_with_return(
    settings: PeerSettings,
    rib: mpsc::Sender<RibMsg>,
    local_restart: &Arc<LocalRestart>,
    returned: Option<mpsc::UnboundedSender<TcpStream>>,
    disabled: bool,
) -> PeerHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let status = StatusCell::default();
    let handle = PeerHandle {
        settings: settings.clone(),
        cmd: cmd_tx,
        status: status.clone(),
    };
    let mut task = PeerTask::new(settings, rib, status, local_restart.clone());
    task.disabled = disabled;
    tokio::spawn(async move {
        let unserved = task.run(cmd_rx).await;
        if let Some(returned) = returned {
            for stream in unserved {
                let _ = returned.send(stream);
            }
        }
    });
    handle
}
