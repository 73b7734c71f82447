//! BFD in the daemon: one task owns the UDP sockets and every session's
//! `tern-bfd` state machine, feeds it packets and `now`, and tells the
//! supervisor when a session that was Up fails, so the BGP session goes down
//! at once (RFC 5882 §4.3). RFC 5881 single-hop (UDP 3784, TTL 255 sent and
//! required) and RFC 5883 multihop (UDP 4784), IPv4 and IPv6.
//!
//! ```text
//!   rx sockets (per port, family, bind address) --> BFD task (reads them itself)
//!   BFD task: sessions by discriminator, timer heap --> per-session tx socket
//!            --> BfdNotice (Up / path failure) --> supervisor --> PeerCmd::BfdDown
//! ```
//!
//! The task itself is [`task`]; the socket calls are [`socket`].

#[allow(unsafe_code)]
mod socket;
mod task;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use task::spawn;

/// One BFD session the daemon wants: with the BGP peer at `remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdPeer {
    /// The BGP peer's name, for views and logs.
    pub name: String,
    pub remote: IpAddr,
    /// Our address on the session (the BGP session's source); None lets the
    /// kernel pick the route's source address.
    pub local: Option<IpAddr>,
    /// RFC 5883 multihop (UDP 4784, any TTL accepted) instead of RFC 5881.
    pub multihop: bool,
}

/// The `[bfd]` timers (RFC 5880 §6.8.1 `bfd.DesiredMinTxInterval`,
/// `bfd.RequiredMinRxInterval`, `bfd.DetectMult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdTimers {
    pub min_tx: Duration,
    pub min_rx: Duration,
    pub multiplier: u8,
}

impl From<&config::Bfd> for BfdTimers {
    fn from(b: &config::Bfd) -> BfdTimers {
        BfdTimers {
            min_tx: Duration::from_millis(u64::from(b.min_tx_ms)),
            min_rx: Duration::from_millis(u64::from(b.min_rx_ms)),
            multiplier: b.multiplier,
        }
    }
}

/// Where the task listens: the addresses to bind (unspecified = every
/// address of that family), and the UDP ports (RFC 5881 §4, RFC 5883 §5;
/// tests may choose others).
#[derive(Clone, Debug)]
pub struct BfdSettings {
    pub bind: Vec<IpAddr>,
    pub single_hop_port: u16,
    pub multihop_port: u16,
    pub timers: BfdTimers,
}

impl BfdSettings {
    /// The standard ports, listening on `bind`.
    pub fn new(bind: Vec<IpAddr>, timers: BfdTimers) -> BfdSettings {
        BfdSettings {
            bind,
            single_hop_port: bfd::udp::SINGLE_HOP_PORT,
            multihop_port: bfd::udp::MULTIHOP_PORT,
            timers,
        }
    }
}

/// What the BGP side learns of a session (RFC 5882 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BfdNotice {
    /// The session came Up.
    Up { name: String, remote: IpAddr },
    /// A session that was Up went Down for a reason that is a path failure
    /// (detection time expired, or the neighbour signalled Down; not its
    /// AdminDown, RFC 5882 §3.2): the BGP session must go down now.
    PathDown {
        name: String,
        remote: IpAddr,
        diag: bfd::Diagnostic,
    },
}

/// One session as the front ends show it (`ternctl show bfd`, BIRD's `show bfd sessions`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BfdView {
    pub peer: String,
    pub remote: IpAddr,
    pub local: Option<IpAddr>,
    /// The interface its packets arrive on, once heard.
    #[serde(default)]
    pub interface: Option<String>,
    pub multihop: bool,
    pub state: String,
    pub remote_state: String,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Negotiated transmit interval, µs (before jitter).
    pub tx_interval_us: u64,
    /// The interval the remote sends at (its Desired Min TX and our Required Min RX), µs.
    pub rx_interval_us: u64,
    /// Detection time in force, µs; None until the remote is heard.
    pub detection_time_us: Option<u64>,
    pub multiplier: u8,
    pub remote_multiplier: u8,
    /// Why our state last changed (RFC 5880 §4.1 Diag), as text.
    pub diagnostic: String,
    /// Seconds since the state last changed.
    pub since_secs: u64,
    /// The same moment, seconds since the Unix epoch.
    pub since_unix: u64,
    /// The same moment, milliseconds since the Unix epoch.
    #[serde(default)]
    pub since_unix_ms: u64,
}

/// Counters the metrics endpoint reads without asking the task.
#[derive(Debug, Default)]
pub struct BfdCounters {
    pub sessions: AtomicUsize,
    pub up: AtomicUsize,
    pub state_changes: AtomicU64,
    /// Packets dropped before a session saw them (bad TTL, undecodable, no session).
    pub discarded: AtomicU64,
}

impl BfdCounters {
    pub fn read(&self) -> (usize, usize, u64, u64) {
        (
            self.sessions.load(Ordering::Relaxed),
            self.up.load(Ordering::Relaxed),
            self.state_changes.load(Ordering::Relaxed),
            self.discarded.load(Ordering::Relaxed),
        )
    }
}

pub(crate) enum BfdCmd {
    /// Adds the session, or changes its addresses (a new session then).
    Add(BfdPeer),
    Remove(IpAddr),
    SetTimers(BfdTimers),
    Sessions(oneshot::Sender<Vec<BfdView>>),
    /// AdminDown to every session (RFC 5880 §6.8.16, so peers keep BGP up,
    /// RFC 5882 §3.2), sent once, then the task ends.
    Stop(oneshot::Sender<()>),
}

/// The daemon's handle on the BFD task.
#[derive(Clone, Debug)]
pub struct BfdHandle {
    cmd: mpsc::UnboundedSender<BfdCmd>,
    pub counters: Arc<BfdCounters>,
}

impl std::fmt::Debug for BfdCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BfdCmd")
    }
}

impl BfdHandle {
    pub fn add(&self, peer: BfdPeer) {
        let _ = self.cmd.send(BfdCmd::Add(peer));
    }

    pub fn remove(&self, remote: IpAddr) {
        let _ = self.cmd.send(BfdCmd::Remove(remote));
    }

    /// New `[bfd]` timers for every session: a Poll Sequence each (RFC 5880 §6.8.3).
    pub fn set_timers(&self, timers: BfdTimers) {
        let _ = self.cmd.send(BfdCmd::SetTimers(timers));
    }

    /// Every session's view; empty if the task is gone or does not answer in time.
    pub async fn sessions(&self) -> Vec<BfdView> {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(BfdCmd::Sessions(tx)).is_err() {
            return Vec::new();
        }
        tokio::time::timeout(Duration::from_secs(2), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Sends AdminDown on every session and ends the task.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(BfdCmd::Stop(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }
}

/// The receiving half of [`BfdNotice`]s, for the supervisor.
pub type BfdNotices = mpsc::UnboundedReceiver<BfdNotice>;
