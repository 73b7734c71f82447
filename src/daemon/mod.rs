//! The supervisor: starts kernel sync, the RIB, one session per peer, the
//! listeners and the front ends; reloads on SIGHUP; stops on SIGTERM (Cease
//! to every peer, kernel routes kept for graceful restart). It owns no
//! protocol state: the RIB task and the session tasks do.
//!
//! [`Daemon::start`] runs the same daemon inside a test, over an in-memory
//! kernel and loopback sockets; [`run`] adds the signal loop for `ternd`.

mod kernel;
mod listener;
mod peers;
mod reload;
pub mod settings;
mod systemd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use config::Config;
use fib_sync::{FibSync, FibTask, MemoryFib, ShutdownMode};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::messages::{PeerCmd, RibMsg};
use crate::registry::Registry;
use crate::rib::Rib;
use crate::session::PeerHandle;
use peers::Supervisor;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("kernel route sync: {0}")]
    Fib(#[from] fib_sync::FibError),
    #[error("listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("control socket {0}: {1}")]
    Control(PathBuf, std::io::Error),
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
}

impl Daemon {
    /// Starts every part of the daemon and returns once it listens.
    pub async fn start(config_path: PathBuf, cfg: Config, kernel: Kernel) -> Result<Daemon, DaemonError> {
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
        let (rib_tx, rib_rx) = mpsc::channel(4096);
        let (kernel_tx, kernel_rx) = mpsc::unbounded_channel();
        let (converged_tx, converged_rx) = watch::channel(false);
        let kernel_frozen = Arc::new(AtomicBool::new(false));
        let rib = Rib::new(settings::rib_config(&cfg));
        tokio::spawn(crate::rib::run(rib, rib_rx, kernel_tx.clone(), converged_tx));
        let registry = Arc::new(Registry::new(config_path, cfg.clone(), rib_tx.clone(), fib.clone()));
        let supervisor = Arc::new(Supervisor::new(registry.clone(), &cfg));
        if let Some(fib) = &fib {
            tokio::spawn(kernel::kernel_task(fib.clone(), kernel_rx, kernel_frozen.clone()));
            tokio::spawn(kernel::sweeper(
                registry.clone(),
                kernel_tx,
                converged_rx,
                Duration::from_secs(cfg.kernel.sweep_after as u64),
            ));
        }
        let _ = rib_tx.send(RibMsg::Originate(settings::originated(&cfg))).await;
        crate::api::control::serve(cfg.control.socket.clone(), registry.clone())
            .map_err(|e| DaemonError::Control(cfg.control.socket.clone(), e))?;
        for (path, what) in [
            (&cfg.control.bird_socket, "BIRD socket"),
            (&cfg.control.bird6_socket, "BIRD6 socket"),
        ] {
            if let Some(path) = path {
                crate::api::bird::serve(path.clone(), registry.clone())
                    .map_err(|e| DaemonError::Control(path.clone(), e))?;
                info!("{what} on {}", path.display());
            }
        }
        let metrics_addr = match &cfg.metrics {
            Some(m) => Some(
                crate::api::metrics::serve(m.listen, registry.clone())
                    .await
                    .map_err(|e| DaemonError::Listen(m.listen, e))?,
            ),
            None => None,
        };
        let mut bgp_addrs = Vec::new();
        for addr in &cfg.bgp.listen {
            bgp_addrs.push(listener::listen(*addr, supervisor.clone())?);
        }
        for d in &cfg.dynamic_peers {
            if let Some(key) = &d.password {
                supervisor.set_listener_key(d.range.network(), Some(d.range.prefix()), Some(key));
            }
        }
        for p in cfg.effective_peers() {
            supervisor.start_peer(&cfg, &p);
        }
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
    pub async fn reload(&self) -> Result<(), config::ConfigErrors> {
        self.supervisor.reload().await
    }

    /// Stops (SIGTERM): kernel routes stay for graceful restart, every peer
    /// gets Cease, the control socket goes.
    pub async fn stop(self) {
        // Graceful restart: routes learned from peers stay in the kernel too,
        // so the kernel is frozen before the sessions go down.
        self.kernel_frozen.store(true, Ordering::Release);
        let registry = self.supervisor.registry.clone();
        let handles: Vec<PeerHandle> = registry.peers_mut().drain().map(|(_, h)| h).collect();
        for h in &handles {
            let _ = h.cmd.send(PeerCmd::Stop(None)).await;
        }
        // Give the NOTIFICATIONs a moment to leave; peers end their tasks once closed.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for h in &handles {
                h.cmd.closed().await;
            }
        })
        .await;
        if let Some(fib) = &registry.fib {
            if let Err(e) = fib.shutdown(ShutdownMode::KeepRoutes).await {
                warn!("kernel sync shutdown: {e}");
            }
        }
        if let Some(task) = self.fib_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        let _ = std::fs::remove_file(&registry.config().control.socket);
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
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", daemon.registry().config_path.display());
                systemd::notify("RELOADING=1");
                let _ = daemon.reload().await;
                systemd::notify("READY=1");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("stopping: Cease to every peer, kernel routes kept for graceful restart");
    systemd::notify("STOPPING=1");
    daemon.stop().await;
    Ok(())
}
