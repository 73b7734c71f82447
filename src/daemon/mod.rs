//! The supervisor: starts kernel sync, the RIB, one session per peer, the
//! listeners and the front ends; reloads on SIGHUP; stops on SIGTERM (Cease
//! to every peer, kernel routes kept for graceful restart). It owns no
//! protocol state: the RIB task and the session tasks do.
//!
//! [`Daemon::start`] runs the same daemon inside a test, over an in-memory
//! kernel and loopback sockets; [`run`] adds the signal loop for `ternd`.

mod bfd;
mod claim;
mod kernel;
mod listener;
mod peers;
mod reload;
mod restart;
pub mod settings;
mod systemd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::Family;
use config::Config;
use fib_sync::{FibHandle, FibSync, FibTask, MemoryFib, RouteState, ShutdownMode};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::messages::{PeerCmd, RibMsg};
use crate::registry::{Registry, StopMode};
use crate::rib::{Deferral, Rib, RibOutputs};
use crate::session::{LocalRestart, PeerHandle};
use peers::Supervisor;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("kernel route sync: {0}")]
    Fib(#[from] fib_sync::FibError),
    #[error("listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot listen on {addr}: address in use (is another ternd or BGP daemon running?); stop it first, or change {key}")]
    AddrInUse { addr: SocketAddr, key: &'static str },
    #[error("{what} {}: {why}; {}", path.display(), claim::advice(why, key))]
    SocketTaken {
        what: &'static str,
        key: &'static str,
        path: PathBuf,
        why: crate::api::unix::PathTaken,
    },
    #[error("socket {}: {source}", path.display())]
    Control { path: PathBuf, source: std::io::Error },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Which kernel the daemon installs routes into.
pub enum Kernel {
    /// The kernel of the daemon's network namespace, over netlink.
    Netlink,
    /// An in-memory kernel (tests: no root, no namespace).
    Memory(MemoryFib),
}

/// A running daemon.
pub struct Daemon {
    supervisor: Arc<Supervisor>,
    kernel_frozen: Arc<AtomicBool>,
    fib_task: Option<FibTask>,
    bgp_addrs: Vec<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    /// Where our graceful-restart state is kept (see `restart`).
    state_path: PathBuf,
    /// Keeps that file current while running; stopped before the last write.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// The control and BIRD sockets: their accept loops and paths, closed
    /// and removed on stop, so the next start finds them free.
    unix_sockets: Vec<(tokio::task::JoinHandle<()>, PathBuf)>,
}

/// Families of the routes fib-sync adopted at start: the forwarding state a
/// previous ternd left in the kernel (the F bits of RFC 4724 §3).
async fn adopted_families(fib: &FibHandle) -> Vec<Family> {
    let Ok(routes) = fib.snapshot().await else {
        return Vec::new();
    };
    let mut families: Vec<Family> = routes
        .iter()
        .filter(|r| r.state == RouteState::Stale)
        .map(|r| match r.prefix {
            ipnetwork::IpNetwork::V4(_) => Family::IPV4_UNICAST,
            ipnetwork::IpNetwork::V6(_) => Family::IPV6_UNICAST,
        })
        .collect();
    families.sort();
    families.dedup();
    families
}

impl Daemon {
    /// Starts every part of the daemon and returns once it listens.
    /// Refuses, changing nothing, when a socket of `cfg` belongs to a
    /// running daemon (see `claim`).
    pub async fn start(config_path: PathBuf, cfg: Config, kernel: Kernel) -> Result<Daemon, DaemonError> {
        let claimed = claim::claim(&cfg).await?;
        crate::sys::raise_nofile_limit();
        let (fib, fib_task) = if cfg.kernel.enabled {
            let fib_cfg = settings::fib_config(&cfg);
            let (handle, task) = match kernel {
                Kernel::Netlink => FibSync::start(fib_cfg).await?,
                Kernel::Memory(fib) => FibSync::start_with(fib, fib_cfg).await?,
            };
            (Some(handle), Some(task))
        } else {
            (None, None)
        };
        // Our own graceful restart (RFC 4724 §4.1): restarting if a ternd ran
        // here within the restart time; then defer selection for its peers.
        let state_path = restart::path(&cfg);
        let gr = &cfg.graceful_restart;
        let previous = if gr.enabled {
            restart::previous(
                &state_path,
                Duration::from_secs(u64::from(gr.restart_time)),
                std::time::SystemTime::now(),
            )
        } else {
            None
        };
        let forwarding = match (&fib, &previous) {
            (Some(fib), Some(_)) => adopted_families(fib).await,
            _ => Vec::new(),
        };
        if let Some(peers) = &previous {
            info!(
                "graceful restart: restarting (forwarding state kept for [{}]); deferring route selection for {} peers",
                forwarding.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", "),
                peers.len()
            );
        }
        let local_restart = Arc::new(LocalRestart::new(previous.is_some(), forwarding));
        let mut rib_config = settings::rib_config(&cfg);
        rib_config.deferral = previous.map(|peers| Deferral {
            wait_for: peers.into_iter().collect(),
            time: settings::select_defer_time(&cfg),
        });
        let (rib_tx, rib_rx) = mpsc::channel(4096);
        let (kernel_tx, kernel_rx) = mpsc::unbounded_channel();
        let (converged_tx, converged_rx) = watch::channel(false);
        let (deferring_tx, mut deferring_rx) = watch::channel(rib_config.deferral.is_some());
        let kernel_frozen = Arc::new(AtomicBool::new(false));
        let rib = Rib::new(rib_config);
        let outputs = RibOutputs {
            kernel: kernel_tx,
            converged: converged_tx,
            deferring: deferring_tx,
        };
        tokio::spawn(crate::rib::run(rib, rib_rx, outputs));
        // Once selection is done, later OPENs no longer say we restarted.
        let finished = local_restart.clone();
        tokio::spawn(async move {
            while *deferring_rx.borrow_and_update() {
                if deferring_rx.changed().await.is_err() {
                    return;
                }
            }
            finished.finished();
        });
        let registry = Arc::new(Registry::new(config_path, cfg.clone(), rib_tx.clone(), fib.clone()));
        let (supervisor, returned) = Supervisor::new(registry.clone(), &cfg, local_restart);
        let supervisor = Arc::new(supervisor);
        // `ternctl reload`: one at a time, as SIGHUP's.
        let mut reloads = registry.serve_reloads();
        let reloader = supervisor.clone();
        tokio::spawn(async move {
            while let Some(reply) = reloads.recv().await {
                let outcome = reloader.reload().await;
                let _ = reply.send(outcome.map_err(|e| e.errors().iter().map(|e| e.to_string()).collect()));
            }
        });
        tokio::spawn(listener::serve_returned(supervisor.clone(), returned));
        if let Some(fib) = &fib {
            tokio::spawn(kernel::kernel_task(
                fib.clone(),
                kernel_rx,
                rib_tx.clone(),
                kernel_frozen.clone(),
            ));
            tokio::spawn(kernel::next_hop_reports(fib.clone(), rib_tx.clone()));
            tokio::spawn(kernel::learned_reports(
                fib.clone(),
                settings::learn_filter(&cfg.learn),
                rib_tx.clone(),
            ));
            tokio::spawn(kernel::sweeper(
                registry.clone(),
                rib_tx.clone(),
                converged_rx,
                Duration::from_secs(cfg.kernel.sweep_after as u64),
            ));
        }
        let _ = rib_tx.send(RibMsg::Originate(settings::originated(&cfg))).await;
        let mut unix_sockets = Vec::new();
        for sock in claimed.unix {
            let served = match sock.front {
                claim::Front::Control => crate::api::control::serve(sock.listener, registry.clone()),
                claim::Front::ReadOnly => crate::api::control::serve_read_only(sock.listener, registry.clone()),
                claim::Front::Bird | claim::Front::Bird6 => crate::api::bird::serve(sock.listener, registry.clone()),
            };
            let task = served.map_err(|source| DaemonError::Control {
                path: sock.path.clone(),
                source,
            })?;
            info!("{} on {}", sock.front.what(), sock.path.display());
            unix_sockets.push((task, sock.path));
        }
        let metrics_addr = match (claimed.metrics, &cfg.metrics) {
            (Some(l), Some(m)) => {
                Some(crate::api::metrics::serve(l, registry.clone()).map_err(|e| DaemonError::Listen(m.listen, e))?)
            }
            _ => None,
        };
        let mut bgp_addrs = Vec::new();
        for (l, addr) in claimed.bgp.into_iter().zip(&cfg.bgp.listen) {
            bgp_addrs.push(listener::serve(l, supervisor.clone()).map_err(|e| DaemonError::Listen(*addr, e))?);
        }
        for d in &cfg.dynamic_peers {
            if let Some(key) = &d.password {
                supervisor.set_listener_key(d.range.network(), Some(d.range.prefix()), Some(key));
            }
        }
        supervisor.set_listener_min_ttl(&cfg);
        for p in cfg.effective_peers() {
            supervisor.start_peer(&cfg, &p);
        }
        let heartbeat = gr.enabled.then(|| {
            tokio::spawn(restart::heartbeat(
                registry.clone(),
                state_path.clone(),
                settings::state_heartbeat(&cfg),
                supervisor.local_restart.clone(),
            ))
        });
        info!(
            "ternd {} running: AS {} router id {}, {} peers",
            env!("CARGO_PKG_VERSION"),
            cfg.bgp.asn,
            cfg.bgp.router_id,
            registry.peers().len()
        );
        Ok(Daemon {
            supervisor,
            kernel_frozen,
            fib_task,
            bgp_addrs,
            metrics_addr,
            state_path,
            heartbeat,
            unix_sockets,
        })
    }

    /// What the front ends read.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.supervisor.registry
    }

    /// The bound BGP listening addresses, in `[bgp] listen` order.
    pub fn bgp_addrs(&self) -> &[SocketAddr] {
        &self.bgp_addrs
    }

    /// The bound metrics address, if metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Re-reads the configuration file and applies what changed (SIGHUP).
    pub async fn reload(&self) -> Result<crate::registry::ReloadReport, config::ConfigErrors> {
        self.supervisor.reload().await
    }

    /// Resolves when a stop is asked for over the control socket.
    pub async fn stop_requested(&self) -> StopMode {
        self.supervisor.registry.stop_requested().await
    }

    /// Stops. Graceful (SIGTERM): the state file names the peers to wait for
    /// next time, sessions close without a NOTIFICATION, the kernel keeps
    /// every route. Hard: Cease to every peer, our kernel routes removed, the
    /// state file too. Either way the control and BIRD sockets go.
    pub async fn stop(self, mode: StopMode) {
        let registry = self.supervisor.registry.clone();
        let cfg = registry.config();
        // Sessions closing must not rewrite the state file after the last write.
        if let Some(h) = &self.heartbeat {
            h.abort();
        }
        if mode == StopMode::Graceful {
            // Routes learned from peers stay in the kernel too, so the kernel
            // is frozen before the sessions go down.
            self.kernel_frozen.store(true, Ordering::Release);
            if cfg.graceful_restart.enabled {
                let peers = restart::graceful_peers(&registry);
                if let Err(e) = restart::write(&self.state_path, &peers, std::time::SystemTime::now()) {
                    warn!(
                        "{}: cannot write graceful-restart state: {e}",
                        self.state_path.display()
                    );
                }
            }
        } else {
            restart::remove(&self.state_path);
        }
        // AdminDown first: peers must not take it for a path failure (RFC 5882 §3.2).
        if let Some(bfd) = registry.bfd() {
            bfd.stop().await;
        }
        let handles: Vec<PeerHandle> = registry.peers_mut().drain().map(|(_, h)| h).collect();
        for h in &handles {
            let cmd = match mode {
                StopMode::Graceful => PeerCmd::CloseForRestart,
                StopMode::Hard => PeerCmd::Stop(None),
            };
            let _ = h.cmd.send(cmd).await;
        }
        // Give the NOTIFICATIONs a moment to leave; peers end their tasks once closed.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for h in &handles {
                h.cmd.closed().await;
            }
        })
        .await;
        if let Some(fib) = &registry.fib {
            let keep = match mode {
                StopMode::Graceful => ShutdownMode::KeepRoutes,
                StopMode::Hard => ShutdownMode::RemoveOwned,
            };
            if let Err(e) = fib.shutdown(keep).await {
                warn!("kernel sync shutdown: {e}");
            }
        }
        if let Some(task) = self.fib_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        if mode == StopMode::Hard {
            restart::remove(&self.state_path);
        }
        for (task, path) in &self.unix_sockets {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs `ternd`: starts the daemon over the kernel's routing table, then
/// reloads on SIGHUP and stops on SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, cfg: Config) -> Result<(), DaemonError> {
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let daemon = Daemon::start(config_path, cfg, Kernel::Netlink).await?;
    systemd::notify("READY=1\nSTATUS=running");
    if let Some(every) = systemd::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                systemd::notify("WATCHDOG=1");
            }
        });
    }
    let mode = loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", daemon.registry().config_path.display());
                systemd::notify("RELOADING=1");
                let _ = daemon.reload().await;
                systemd::notify("READY=1");
            }
            _ = term.recv() => break StopMode::Graceful,
            _ = int.recv() => break StopMode::Graceful,
            mode = daemon.stop_requested() => break mode,
        }
    };
    match mode {
        StopMode::Graceful => info!("stopping for a graceful restart: peers and the kernel keep our routes"),
        StopMode::Hard => info!("stopping for good: Cease to every peer, our kernel routes removed"),
    }
    systemd::notify("STOPPING=1");
    daemon.stop(mode).await;
    Ok(())
}
