//! What is running now: the configuration in force, the peer sessions, the
//! handles on the RIB and kernel sync, and graceful-restart recovery. The
//! supervisor (`daemon`) writes it; the front ends (`api`) only read it, and
//! their RIB questions are answered between batches, never blocking the RIB.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bgp_proto::fsm::State;
use config::Config;
use fib_sync::FibHandle;
use ipnetwork::IpNetwork;
use tokio::sync::{mpsc, oneshot, watch};

use crate::messages::{RibMsg, RibSummary, RouteView};
use crate::session::{PeerHandle, PeerStatus};

/// How long a front end waits for the RIB before giving up.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a RIB question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("RIB task is gone")]
    RibGone,
    #[error("RIB did not answer within {} s", QUERY_TIMEOUT.as_secs())]
    Timeout,
}

/// The daemon's running state, as the front ends see it.
pub struct Registry {
    pub config_path: PathBuf,
    config: RwLock<Arc<Config>>,
    /// Running peer sessions by address.
    peers: RwLock<HashMap<IpAddr, PeerHandle>>,
    pub rib: mpsc::Sender<RibMsg>,
    pub fib: Option<FibHandle>,
    pub started: Instant,
    /// Set once graceful-restart recovery has ended; it does not come back.
    recovery_done: AtomicBool,
    /// A stop asked for over the control socket (`ternctl shutdown`).
    stop_request: watch::Sender<Option<StopMode>>,
    /// Where `ternctl reload` asks the supervisor to reload.
    reloads: std::sync::OnceLock<mpsc::UnboundedSender<ReloadRequest>>,
    /// Peers an operator disabled, by name, with their shutdown text: they
    /// stay down across reloads until enabled (`ternctl peer disable`).
    disabled: std::sync::Mutex<HashMap<String, Option<String>>>,
    /// The BFD task, once a configuration asked for BFD (started then, kept).
    pub(crate) bfd: std::sync::OnceLock<crate::bfd::BfdHandle>,
}

/// What a reload changed (`ternctl reload` prints it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    pub peers_added: Vec<String>,
    pub peers_removed: Vec<String>,
    /// Restarted because something that needs a new OPEN changed.
    pub peers_changed: Vec<String>,
    /// Changed only in what a running session takes (policies, next-hop
    /// rule, prefix limit): re-evaluated without a reset.
    #[serde(default)]
    pub peers_reconfigured: Vec<String>,
    pub originated_changed: bool,
    pub policies_changed: bool,
    pub learn_changed: bool,
    /// `[bfd]` timers, or which peers run BFD, changed (no BGP session reset).
    #[serde(default)]
    pub bfd_changed: bool,
    /// Sections whose changes wait for the next restart.
    pub restart_needed: Vec<String>,
}

/// A reload asked for over the control socket, and where its outcome goes
/// (on a bad file: its `FILE:LINE:COLUMN` errors).
pub type ReloadRequest = oneshot::Sender<Result<ReloadReport, Vec<String>>>;

/// How the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// Graceful restart (SIGTERM, `ternctl shutdown`): sessions close without
    /// a NOTIFICATION, peers and the kernel keep our routes (RFC 4724 §4.1).
    Graceful,
    /// Out of service (`ternctl shutdown --hard`): Cease to every peer, our
    /// kernel routes removed, the next start is a fresh one.
    Hard,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Graceful-restart recovery in progress: kernel routes adopted at start are
/// kept until every peer is up and sent End-of-RIB, or the wait runs out
/// (like BIRD's `graceful restart wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Peers still to come up or send End-of-RIB (at least 1 while it runs).
    pub waiting: usize,
    pub remaining: Duration,
    /// The whole wait, seconds (`[kernel] sweep_after`).
    pub wait: u32,
}

impl Registry {
    pub fn new(config_path: PathBuf, config: Config, rib: mpsc::Sender<RibMsg>, fib: Option<FibHandle>) -> Registry {
        Registry {
            config_path,
            config: RwLock::new(Arc::new(config)),
            peers: RwLock::new(HashMap::new()),
            rib,
            fib,
            started: Instant::now(),
            recovery_done: AtomicBool::new(false),
            stop_request: watch::channel(None).0,
            reloads: std::sync::OnceLock::new(),
            disabled: std::sync::Mutex::new(HashMap::new()),
            bfd: std::sync::OnceLock::new(),
        }
    }

    /// The BFD task, if any peer ever had `bfd = true`.
    pub fn bfd(&self) -> Option<&crate::bfd::BfdHandle> {
        self.bfd.get()
    }

    /// Every BFD session as the front ends show it (empty without BFD).
    pub async fn bfd_sessions(&self) -> Vec<crate::bfd::BfdView> {
        match self.bfd() {
            Some(b) => b.sessions().await,
            None => Vec::new(),
        }
    }

    /// The supervisor's end of `ternctl reload` (taken once).
    pub(crate) fn serve_reloads(&self) -> mpsc::UnboundedReceiver<ReloadRequest> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.reloads.set(tx);
        rx
    }

    /// Reloads the configuration file, as SIGHUP does, and says what changed.
    pub async fn reload(&self) -> Result<ReloadReport, Vec<String>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.reloads.get().is_some_and(|r| r.send(tx).is_ok());
        if !sent {
            return Err(vec!["the daemon does not take reloads now".into()]);
        }
        rx.await.map_err(|_| vec!["the reload did not finish".to_string()])?
    }

    fn disabled_peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.disabled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an operator disabled the peer `name` (and with what text).
    pub fn disabled(&self, name: &str) -> Option<Option<String>> {
        self.disabled_peers().get(name).cloned()
    }

    pub(crate) fn set_disabled(&self, name: &str, message: Option<Option<String>>) {
        match message {
            Some(m) => self.disabled_peers().insert(name.to_string(), m),
            None => self.disabled_peers().remove(name),
        };
    }

    /// The running peer called `name`.
    pub fn peer_named(&self, name: &str) -> Option<PeerHandle> {
        self.peers().into_iter().find(|h| h.settings.name == name)
    }

    /// Asks the supervisor to stop.
    pub fn request_stop(&self, mode: StopMode) {
        self.stop_request.send_replace(Some(mode));
    }

    /// Resolves when a stop is asked for, with its mode.
    pub async fn stop_requested(&self) -> StopMode {
        let mut rx = self.stop_request.subscribe();
        loop {
            if let Some(mode) = *rx.borrow_and_update() {
                return mode;
            }
            if rx.changed().await.is_err() {
                return StopMode::Graceful;
            }
        }
    }

    /// The configuration in force (a cheap snapshot).
    pub fn config(&self) -> Arc<Config> {
        read(&self.config).clone()
    }

    pub(crate) fn set_config(&self, config: Config) {
        *write(&self.config) = Arc::new(config);
    }

    /// The running peers, sorted by name. A dynamic peer whose session
    /// ended is gone (its task ends with its session).
    pub fn peers(&self) -> Vec<PeerHandle> {
        let mut v: Vec<PeerHandle> = read(&self.peers)
            .values()
            .filter(|h| !(h.settings.dynamic && h.cmd.is_closed()))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.settings.name.cmp(&b.settings.name));
        v
    }

    /// The running session for `address` (not a dynamic one that has ended).
    pub fn peer(&self, address: IpAddr) -> Option<PeerHandle> {
        read(&self.peers)
            .get(&address)
            .filter(|h| !(h.settings.dynamic && h.cmd.is_closed()))
            .cloned()
    }

    pub(crate) fn peers_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<IpAddr, PeerHandle>> {
        write(&self.peers)
    }

    /// Every running peer's session is Established.
    pub fn all_established(&self) -> bool {
        read(&self.peers)
            .values()
            .all(|h| h.status().state == State::Established)
    }

    /// Statuses of the running peers, sorted by name.
    /// The addresses of the sessions `keep` chooses by their status, read in
    /// place: nothing cloned (a reflector's heartbeat asks on every session change).
    pub fn addresses_where(&self, keep: impl Fn(&PeerStatus) -> bool) -> Vec<IpAddr> {
        read(&self.peers)
            .values()
            .filter(|h| !(h.settings.dynamic && h.cmd.is_closed()))
            .filter(|h| h.status.with(&keep))
            .map(|h| h.settings.address)
            .collect()
    }

    pub fn statuses(&self) -> Vec<(PeerHandle, PeerStatus)> {
        self.peers()
            .into_iter()
            .map(|h| {
                let st = h.status();
                (h, st)
            })
            .collect()
    }

    async fn ask<T>(&self, msg: impl FnOnce(oneshot::Sender<T>) -> RibMsg) -> Result<T, QueryError> {
        let (tx, rx) = oneshot::channel();
        self.rib.send(msg(tx)).await.map_err(|_| QueryError::RibGone)?;
        match tokio::time::timeout(QUERY_TIMEOUT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(QueryError::RibGone),
            Err(_) => Err(QueryError::Timeout),
        }
    }

    /// Table sizes, per-peer counts and convergence.
    pub async fn rib_summary(&self) -> Result<RibSummary, QueryError> {
        self.ask(RibMsg::Summary).await
    }

    /// Every path within `filter` (all without one).
    pub async fn rib_routes(&self, filter: Option<IpNetwork>) -> Result<Vec<RouteView>, QueryError> {
        self.ask(|tx| RibMsg::Routes(filter, tx)).await
    }

    /// The best paths of what `peer` was sent.
    pub async fn rib_advertised(&self, peer: crate::messages::PeerId) -> Result<Vec<RouteView>, QueryError> {
        self.ask(|tx| RibMsg::Advertised(peer, tx)).await
    }

    /// The paths of the longest prefix containing `addr`.
    pub async fn rib_longest_match(&self, addr: IpAddr) -> Result<Vec<RouteView>, QueryError> {
        self.ask(|tx| RibMsg::LongestMatch(addr, tx)).await
    }

    /// Graceful-restart recovery, while it runs (`None` once over or when
    /// there is none: graceful restart off, or no kernel sync).
    pub async fn recovery(&self) -> Option<Recovery> {
        let cfg = self.config();
        if !cfg.graceful_restart.enabled || self.fib.is_none() || self.recovery_done.load(Ordering::Relaxed) {
            return None;
        }
        let elapsed = self.started.elapsed();
        let window = Duration::from_secs(u64::from(cfg.kernel.sweep_after));
        if elapsed >= window {
            self.recovery_done.store(true, Ordering::Relaxed);
            return None;
        }
        let not_up = read(&self.peers)
            .values()
            .filter(|h| h.status().state != State::Established)
            .count();
        let summary = self.rib_summary().await;
        let converged = summary.as_ref().is_ok_and(|s| s.converged && !s.deferring);
        if not_up == 0 && converged {
            self.recovery_done.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Recovery {
            waiting: not_up.max(1),
            remaining: window.saturating_sub(elapsed),
            wait: cfg.kernel.sweep_after,
        })
    }
}
