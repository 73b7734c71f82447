//! ternd's top level: starts kernel sync, the RIB, one task per peer,
//! listeners and the control socket; reloads on SIGHUP, stops on SIGTERM
//! (Cease to every peer, kernel routes kept for graceful restart).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bgp_proto::capability::AddPathMode;
use bgp_proto::Family;
use config::{Config, DynamicPeers, EffectivePeer};
use fib_sync::{Change, Desired, FibConfig, FibHandle, FibSync, Mode, RouteKind, RouteState, ShutdownMode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::control::Request;
use crate::peer::{PeerCmd, PeerHandle, PeerSettings};
use crate::policy::Policy;
use crate::rib::{self, KernelOp, KernelWork, NextHopMode, Originated, Query, QueryReply, Rib, RibConfig, RibMsg};

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

/// State the control socket and signal handlers share.
pub struct Shared {
    pub config_path: PathBuf,
    pub config: RwLock<Config>,
    /// Running peers by address.
    pub peers: RwLock<HashMap<IpAddr, PeerHandle>>,
    pub rib: mpsc::Sender<RibMsg>,
    pub fib: Option<FibHandle>,
    pub started: Instant,
    next_peer_id: AtomicU32,
    /// Compiled `[[policy]]`s of the running configuration.
    policies: RwLock<Vec<Arc<Policy>>>,
    /// Listening sockets (fd, IPv6?), for TCP-MD5 keys.
    listeners: RwLock<Vec<(RawFd, bool)>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Peer settings from the configuration (ids are assigned by the caller).
pub fn peer_settings(cfg: &Config, policies: &[Arc<Policy>], p: &EffectivePeer, id: u32) -> PeerSettings {
    let (import, export) = crate::policy::chains(cfg, policies, &p.import, &p.export, !p.ibgp);
    PeerSettings {
        id,
        name: p.name.clone(),
        address: p.address,
        port: p.port,
        asn: p.asn,
        local_asn: p.local_asn,
        router_id: cfg.bgp.router_id,
        passive: p.passive,
        hold_time: p.hold_time,
        keepalive_time: p.keepalive_time,
        connect_retry: Duration::from_secs(cfg.bgp.connect_retry_time.max(1) as u64),
        source_address: p.source_address,
        ttl: match p.ttl {
            config::TtlMode::Fixed(t) => Some(t),
            config::TtlMode::Gtsm { .. } => Some(255),
        },
        next_hop: match p.next_hop {
            config::NextHop::SelfAddr => NextHopMode::SelfAddress,
            config::NextHop::Keep => NextHopMode::Keep,
            config::NextHop::Auto => NextHopMode::Auto,
        },
        rr_client: p.route_reflector_client,
        families: p
            .families
            .iter()
            .map(|f| match f {
                config::Family::Ipv4 => Family::IPV4_UNICAST,
                config::Family::Ipv6 => Family::IPV6_UNICAST,
            })
            .collect(),
        add_path: match p.add_path {
            config::AddPath::None => None,
            config::AddPath::Send => Some(AddPathMode::Send),
            config::AddPath::Receive => Some(AddPathMode::Receive),
            config::AddPath::Both => Some(AddPathMode::Both),
        },
        allowas_in: p.allowas_in,
        graceful_restart: cfg
            .graceful_restart
            .enabled
            .then_some(cfg.graceful_restart.restart_time),
        hostname: hostname(),
        shutdown_message: p.shutdown_message.clone(),
        password: p.password.clone(),
        gtsm_hops: match p.ttl {
            config::TtlMode::Gtsm { hops } => Some(hops),
            config::TtlMode::Fixed(_) => None,
        },
        import,
        export,
        max_prefixes: p.max_prefixes.as_ref().map(max_prefixes),
        dynamic: false,
    }
}

fn max_prefixes(m: &config::MaxPrefixes) -> crate::peer::MaxPrefixes {
    crate::peer::MaxPrefixes {
        limit: m.limit,
        warning_percent: m.warning_percent,
        restart_after: (m.restart_after > 0).then(|| Duration::from_secs(m.restart_after as u64)),
    }
}

/// Settings for a peer accepted from a `[[dynamic_peers]]` range: passive,
/// named `Dynamic_<address>`, ending with its session.
fn dynamic_settings(
    cfg: &Config,
    policies: &[Arc<Policy>],
    d: &DynamicPeers,
    address: IpAddr,
    id: u32,
) -> PeerSettings {
    let ibgp = d.asn == cfg.bgp.asn;
    let (import, export) = crate::policy::chains(cfg, policies, &d.import, &d.export, !ibgp);
    let hold_time = d.hold_time.unwrap_or(cfg.bgp.hold_time);
    PeerSettings {
        id,
        name: format!("Dynamic_{}", address.to_string().replace(['.', ':'], "_")),
        address,
        port: 179,
        asn: d.asn,
        local_asn: cfg.bgp.asn,
        router_id: cfg.bgp.router_id,
        passive: true,
        hold_time,
        keepalive_time: d.keepalive_time.unwrap_or(if d.hold_time.is_some() {
            hold_time / 3
        } else {
            cfg.bgp.keepalive_time
        }),
        connect_retry: Duration::from_secs(cfg.bgp.connect_retry_time.max(1) as u64),
        source_address: None,
        ttl: Some(if ibgp { 64 } else { 1 }),
        next_hop: NextHopMode::Auto,
        rr_client: d.route_reflector_client,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        add_path: None,
        allowas_in: 0,
        graceful_restart: cfg
            .graceful_restart
            .enabled
            .then_some(cfg.graceful_restart.restart_time),
        hostname: hostname(),
        shutdown_message: None,
        password: d.password.clone(),
        gtsm_hops: None,
        import,
        export,
        max_prefixes: d.max_prefixes.as_ref().map(max_prefixes),
        dynamic: true,
    }
}

fn originated(cfg: &Config) -> Vec<Originated> {
    cfg.originate
        .iter()
        .map(|o| Originated {
            prefix: o.prefix,
            blackhole: o.blackhole,
            communities: o
                .communities
                .iter()
                .map(|c| bgp_proto::attributes::Community(c.0))
                .collect(),
            large_communities: o
                .large_communities
                .iter()
                .map(|c| bgp_proto::attributes::LargeCommunity {
                    global: c.global,
                    local1: c.local1,
                    local2: c.local2,
                })
                .collect(),
        })
        .collect()
}

fn fib_config(cfg: &Config) -> FibConfig {
    FibConfig {
        table: cfg.kernel.table,
        protocol: cfg.kernel.protocol,
        metric: cfg.kernel.metric,
        mode: match cfg.kernel.ipip {
            config::IpipMode::Always => Mode::IpipAlways,
            config::IpipMode::CrossSubnet => Mode::IpipCrossSubnet,
            config::IpipMode::Never => Mode::Plain,
        },
        tunnel_device: cfg.kernel.tunnel_device.clone(),
        ..FibConfig::default()
    }
}

impl Shared {
    fn start_peer(&self, cfg: &Config, p: &EffectivePeer) {
        if !p.enabled {
            return;
        }
        let id = self.next_peer_id.fetch_add(1, Ordering::Relaxed);
        let settings = peer_settings(cfg, &read(&self.policies), p, id);
        self.set_listener_key(p.address, None, settings.password.as_deref());
        let handle = crate::peer::spawn(settings, self.rib.clone());
        write(&self.peers).insert(p.address, handle);
    }

    /// Installs (or removes) the TCP-MD5 key for a peer address or range on
    /// every listening socket of its family, so its SYNs are verified.
    fn set_listener_key(&self, addr: IpAddr, prefix_len: Option<u8>, key: Option<&str>) {
        for (fd, v6) in read(&self.listeners).iter() {
            if addr.is_ipv6() && !v6 || addr.is_ipv4() && *v6 {
                continue;
            }
            if let Err(e) = crate::sockopt::set_md5(*fd, *v6, addr, prefix_len, key.map(str::as_bytes)) {
                if key.is_some() {
                    warn!("TCP-MD5 key for {addr} on a listener: {e}");
                }
            }
        }
    }

    /// A connection from an address that is not a configured peer: accepted
    /// if it falls in a `[[dynamic_peers]]` range with room left.
    fn dynamic_peer(&self, addr: IpAddr) -> Option<PeerHandle> {
        let cfg = read(&self.config).clone();
        let (index, range) = cfg
            .dynamic_peers
            .iter()
            .enumerate()
            .find(|(_, d)| d.range.contains(addr))?;
        let mut peers = write(&self.peers);
        // Forget dynamic peers whose task ended with their session.
        peers.retain(|_, h| !(h.settings.dynamic && h.cmd.is_closed()));
        let in_range = peers
            .values()
            .filter(|h| h.settings.dynamic && range.range.contains(h.settings.address))
            .count();
        if in_range >= range.limit as usize {
            warn!(
                "refused connection from {addr}: dynamic range {} is full ({} peers)",
                range.range, range.limit
            );
            return None;
        }
        let id = self.next_peer_id.fetch_add(1, Ordering::Relaxed);
        let settings = dynamic_settings(&cfg, &read(&self.policies), range, addr, id);
        info!(peer = %settings.name, "accepting dynamic peer from range {} (#{index})", range.range);
        let handle = crate::peer::spawn(settings, self.rib.clone());
        peers.insert(addr, handle.clone());
        Some(handle)
    }

    /// Re-reads the configuration and applies what changed, leaving
    /// untouched sessions alone.
    pub async fn reload(&self) {
        let new = match config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload failed, keeping the running configuration:\n{e}");
                return;
            }
        };
        let old = read(&self.config).clone();
        if old.bgp != new.bgp || old.kernel != new.kernel || old.control != new.control {
            warn!("changes to [bgp], [kernel] or [control] take effect at the next restart");
        }
        if old.originate != new.originate {
            info!("reload: originated prefixes changed");
            let _ = self.rib.send(RibMsg::Originate(originated(&new))).await;
        }
        let wanted: HashMap<IpAddr, EffectivePeer> =
            new.effective_peers().into_iter().map(|p| (p.address, p)).collect();
        let running: Vec<(IpAddr, PeerHandle)> = read(&self.peers).iter().map(|(a, h)| (*a, h.clone())).collect();
        for (addr, handle) in running {
            let keep = wanted.get(&addr).is_some_and(|p| {
                let mut want = peer_settings(&new, &crate::policy::compile(&new.policies), p, handle.settings.id);
                want.hostname = handle.settings.hostname.clone();
                p.enabled && want == handle.settings
            });
            if !keep {
                if handle.settings.dynamic {
                    continue;
                }
                info!(peer = %handle.settings.name, "reload: peer removed or changed, stopping it");
                write(&self.peers).remove(&addr);
                if handle.settings.password.is_some() {
                    self.set_listener_key(addr, None, None);
                }
                // RFC 8203: the new configuration's shutdown text, if it has one for this peer.
                let message = wanted
                    .get(&addr)
                    .and_then(|p| p.shutdown_message.clone())
                    .or_else(|| handle.settings.shutdown_message.clone());
                let _ = handle.cmd.send(PeerCmd::Stop(message)).await;
            }
        }
        *write(&self.policies) = crate::policy::compile(&new.policies);
        for (addr, p) in &wanted {
            if !read(&self.peers).contains_key(addr) && p.enabled {
                info!(peer = %p.name, "reload: starting peer");
                self.start_peer(&new, p);
            }
        }
        *write(&self.config) = new;
    }

    /// Asks the RIB task; answered between batches, given up after 5 s.
    pub(crate) async fn rib_query(&self, q: Query) -> Result<QueryReply, String> {
        let (tx, rx) = oneshot::channel();
        self.rib
            .send(RibMsg::Query(q, tx))
            .await
            .map_err(|_| "RIB task is gone")?;
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err("RIB task is gone".into()),
            Err(_) => Err("RIB did not answer within 5 s".into()),
        }
    }

    /// Answers a control request.
    pub async fn answer(&self, req: Request) -> Result<Value, String> {
        match req {
            Request::Peers => {
                let QueryReply::Summary(summary) = self.rib_query(Query::Summary).await? else {
                    return Err("unexpected RIB reply".into());
                };
                let counts: HashMap<&str, (usize, usize)> = summary
                    .peers
                    .iter()
                    .map(|p| (p.name.as_str(), (p.received, p.advertised)))
                    .collect();
                let handles: Vec<PeerHandle> = read(&self.peers).values().cloned().collect();
                let mut out: Vec<Value> = handles
                    .iter()
                    .map(|h| {
                        let st = h.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let (received, advertised) = counts.get(st.name.as_str()).copied().unwrap_or((0, 0));
                        let mut v = serde_json::to_value(&st).unwrap_or(Value::Null);
                        v["uptime_secs"] = json!(st.since.map(|s| s.elapsed().as_secs()).unwrap_or(0));
                        v["received"] = json!(received);
                        v["advertised"] = json!(advertised);
                        v["passive"] = json!(h.settings.passive);
                        v
                    })
                    .collect();
                out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok(Value::Array(out))
            }
            Request::Routes { prefix } => {
                let filter = match prefix {
                    Some(p) => Some(p.parse().map_err(|e| format!("bad prefix {p:?}: {e}"))?),
                    None => None,
                };
                let QueryReply::Routes(routes) = self.rib_query(Query::Routes(filter)).await? else {
                    return Err("unexpected RIB reply".into());
                };
                serde_json::to_value(routes).map_err(|e| e.to_string())
            }
            Request::Fib => {
                let Some(fib) = &self.fib else {
                    return Ok(json!([]));
                };
                let snapshot = fib.snapshot().await.map_err(|e| e.to_string())?;
                let mut out: Vec<Value> = snapshot
                    .iter()
                    .map(|r| {
                        let (kind, gateways, devices) = match r.installed.as_ref().map(|k| &k.kind) {
                            Some(RouteKind::Blackhole) => ("blackhole", vec![], vec![]),
                            Some(RouteKind::Unicast(hops)) => (
                                "unicast",
                                hops.iter().filter_map(|h| h.gateway.map(|g| g.to_string())).collect(),
                                hops.iter().map(|h| h.to_string()).collect(),
                            ),
                            Some(RouteKind::Other(_)) => ("other", vec![], vec![]),
                            None => match &r.desired {
                                Some(Desired::Blackhole) => ("blackhole", vec![], vec![]),
                                Some(Desired::Via(v)) => ("unicast", v.iter().map(|h| h.gateway.to_string()).collect(), vec![]),
                                None => ("none", vec![], vec![]),
                            },
                        };
                        let state = match &r.state {
                            RouteState::Installed => "installed".to_string(),
                            RouteState::Queued => "queued".to_string(),
                            RouteState::Unresolved(u) => format!("unresolved: {u}"),
                            RouteState::Conflict { protocol } => format!("conflict with proto {protocol}"),
                            RouteState::Failed { error, attempts } => format!("failed: {error:?} ({attempts} attempts)"),
                            RouteState::Stale => "stale".to_string(),
                        };
                        json!({"prefix": r.prefix.to_string(), "kind": kind, "gateways": gateways, "device": devices.join(","), "state": state})
                    })
                    .collect();
                out.sort_by(|a, b| a["prefix"].as_str().cmp(&b["prefix"].as_str()));
                Ok(Value::Array(out))
            }
            Request::Status => {
                let QueryReply::Summary(summary) = self.rib_query(Query::Summary).await? else {
                    return Err("unexpected RIB reply".into());
                };
                let cfg = read(&self.config).clone();
                let handles: Vec<PeerHandle> = read(&self.peers).values().cloned().collect();
                let established = handles
                    .iter()
                    .filter(|h| h.status.lock().unwrap_or_else(|e| e.into_inner()).state == "Established")
                    .count();
                let fib = self.fib.as_ref().map(|f| f.stats());
                Ok(json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "router_id": cfg.bgp.router_id.to_string(),
                    "asn": cfg.bgp.asn,
                    "uptime_secs": self.started.elapsed().as_secs(),
                    "converged": summary.converged,
                    "peers_established": established,
                    "peers_configured": handles.len(),
                    "prefixes": summary.prefixes,
                    "paths": summary.paths,
                    "attribute_sets": summary.attribute_sets,
                    "kernel_routes": summary.kernel_routes,
                    "fib": fib.map(|s| json!({
                        "installs": s.installs, "deletes": s.deletes, "conflicts": s.conflicts,
                        "errors": s.errors, "resyncs": s.resyncs, "restores": s.restores, "pending": s.pending,
                    })),
                }))
            }
        }
    }

    fn all_established(&self) -> bool {
        read(&self.peers)
            .values()
            .all(|h| h.status.lock().unwrap_or_else(|e| e.into_inner()).state == "Established")
    }
}

/// Hands RIB kernel changes to fib-sync, batching what piled up, and runs the
/// stale sweep in its place in the queue. Once `frozen` is set (shutdown), the
/// kernel is left exactly as it is.
async fn kernel_task(fib: FibHandle, mut rx: mpsc::UnboundedReceiver<KernelWork>, frozen: Arc<AtomicBool>) {
    let mut sweep_next = false;
    let mut since_trim = 0usize;
    while let Some(first) = rx.recv().await {
        let mut ops = Vec::new();
        match first {
            KernelWork::Ops(o) => ops = o,
            KernelWork::SweepStale => sweep_next = true,
        }
        while !sweep_next && ops.len() < 8192 {
            match rx.try_recv() {
                Ok(KernelWork::Ops(more)) => ops.extend(more),
                Ok(KernelWork::SweepStale) => sweep_next = true,
                Err(_) => break,
            }
        }
        if frozen.load(Ordering::Acquire) {
            continue;
        }
        if !ops.is_empty() {
            let changes: Vec<Change> = ops
                .into_iter()
                .map(|op| match op {
                    KernelOp::Via(p, gws) => Change::Set(p, Desired::via(gws)),
                    KernelOp::Blackhole(p) => Change::Set(p, Desired::Blackhole),
                    KernelOp::Remove(p) => Change::Remove(p),
                })
                .collect();
            since_trim += changes.len();
            if let Err(e) = fib.apply(changes).await {
                error!("kernel route sync stopped: {e}");
                return;
            }
            // After a full table, once the kernel has it: give the burst's
            // memory back to the system.
            if since_trim > 10_000 && rx.is_empty() {
                let _ = fib.settle().await;
                rib::release_free_memory();
                since_trim = 0;
            }
        }
        if std::mem::take(&mut sweep_next) {
            match fib.sweep_stale().await {
                Ok(n) => info!("removed {n} stale kernel routes left from before the start"),
                Err(e) => warn!("sweeping stale kernel routes: {e}"),
            }
        }
    }
}

/// Decides when routes adopted at start are swept: once every peer is up and
/// has sent End-of-RIB, or after `[kernel] sweep_after` seconds.
async fn sweeper(
    shared: Arc<Shared>,
    kernel: mpsc::UnboundedSender<KernelWork>,
    mut converged: watch::Receiver<bool>,
    after: Duration,
) {
    let deadline = tokio::time::sleep(after);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            changed = converged.changed() => {
                if changed.is_err() {
                    return;
                }
                if *converged.borrow() && shared.all_established() {
                    break;
                }
            }
        }
    }
    let _ = kernel.send(KernelWork::SweepStale);
}

/// Listens on `addr` and hands connections from configured peers to their tasks.
fn listen(addr: SocketAddr, shared: Arc<Shared>) -> Result<(), DaemonError> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(|e| DaemonError::Listen(addr, e))?;
    let setup = || -> std::io::Result<TcpListener> {
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        sock.set_nonblocking(true)?;
        TcpListener::from_std(std::net::TcpListener::from(sock.try_clone()?))
    };
    let listener = setup().map_err(|e| DaemonError::Listen(addr, e))?;
    write(&shared.listeners).push((listener.as_raw_fd(), addr.is_ipv6()));
    info!("listening on {addr}");
    tokio::spawn(async move {
        let mut last_accept_warning: Option<Instant> = None;
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors or memory: the pending connection stays
                    // queued, so back off instead of spinning on the same error.
                    let now = Instant::now();
                    if last_accept_warning.is_none_or(|t: Instant| now.duration_since(t) > Duration::from_secs(10)) {
                        warn!("accept on {addr}: {e} (retrying)");
                        last_accept_warning = Some(now);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let ip = match remote.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
                v4 => v4,
            };
            let known = read(&shared.peers).get(&ip).cloned();
            let handle = known.or_else(|| shared.dynamic_peer(ip));
            match handle {
                Some(h) => {
                    let _ = h.cmd.send(PeerCmd::Incoming(stream)).await;
                }
                None => {
                    warn!("refused connection from {remote}: not a configured peer");
                    drop(stream);
                }
            }
        }
    });
    Ok(())
}

/// Runs the daemon until SIGTERM or SIGINT.
/// Raises the open-file limit to its hard maximum: a reflector holds one
/// socket per client (5,000 clients need more than the usual soft 1,024).
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let old = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!("open-file limit raised from {old} to {}", lim.rlim_max);
            }
        }
    }
}

pub async fn run(config_path: PathBuf, cfg: Config) -> Result<(), DaemonError> {
    raise_nofile_limit();
    let (fib, fib_task) = if cfg.kernel.enabled {
        let (handle, task) = FibSync::start(fib_config(&cfg)).await?;
        (Some(handle), Some(task))
    } else {
        (None, None)
    };
    let (rib_tx, rib_rx) = mpsc::channel(4096);
    let (kernel_tx, kernel_rx) = mpsc::unbounded_channel();
    let kernel_tx_sweep = kernel_tx.clone();
    let (converged_tx, converged_rx) = watch::channel(false);
    let kernel_frozen = Arc::new(AtomicBool::new(false));
    let rib = Rib::new(RibConfig {
        local_asn: cfg.bgp.asn,
        router_id: cfg.bgp.router_id,
        cluster_id: cfg.bgp.cluster_id,
        allowed_prefixes: cfg.kernel.allowed_prefixes.clone(),
        kernel: cfg.kernel.enabled,
    });
    tokio::spawn(rib::run(rib, rib_rx, kernel_tx, converged_tx));
    let shared = Arc::new(Shared {
        config_path,
        config: RwLock::new(cfg.clone()),
        peers: RwLock::new(HashMap::new()),
        rib: rib_tx.clone(),
        fib: fib.clone(),
        started: Instant::now(),
        next_peer_id: AtomicU32::new(1),
        policies: RwLock::new(crate::policy::compile(&cfg.policies)),
        listeners: RwLock::new(Vec::new()),
    });
    if let Some(fib) = &fib {
        tokio::spawn(kernel_task(fib.clone(), kernel_rx, kernel_frozen.clone()));
        tokio::spawn(sweeper(
            shared.clone(),
            kernel_tx_sweep,
            converged_rx,
            Duration::from_secs(cfg.kernel.sweep_after as u64),
        ));
    }
    let _ = rib_tx.send(RibMsg::Originate(originated(&cfg))).await;
    crate::control::serve(cfg.control.socket.clone(), shared.clone())
        .await
        .map_err(|e| DaemonError::Control(cfg.control.socket.clone(), e))?;
    for (path, what) in [
        (&cfg.control.bird_socket, "BIRD socket"),
        (&cfg.control.bird6_socket, "BIRD6 socket"),
    ] {
        if let Some(path) = path {
            crate::birdcompat::serve(path.clone(), shared.clone())
                .await
                .map_err(|e| DaemonError::Control(path.clone(), e))?;
            info!("{what} on {}", path.display());
        }
    }
    if let Some(m) = &cfg.metrics {
        crate::metrics::serve(m.listen, shared.clone())
            .await
            .map_err(|e| DaemonError::Listen(m.listen, e))?;
    }
    for addr in &cfg.bgp.listen {
        listen(*addr, shared.clone())?;
    }
    for d in &cfg.dynamic_peers {
        if let Some(key) = &d.password {
            shared.set_listener_key(d.range.network(), Some(d.range.prefix()), Some(key));
        }
    }
    for p in cfg.effective_peers() {
        shared.start_peer(&cfg, &p);
    }
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    info!(
        "ternd {} running: AS {} router id {}, {} peers",
        env!("CARGO_PKG_VERSION"),
        cfg.bgp.asn,
        cfg.bgp.router_id,
        read(&shared.peers).len()
    );
    crate::systemd::notify("READY=1\nSTATUS=running");
    if let Some(every) = crate::systemd::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::systemd::notify("WATCHDOG=1");
            }
        });
    }
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", shared.config_path.display());
                crate::systemd::notify("RELOADING=1");
                shared.reload().await;
                crate::systemd::notify("READY=1");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("stopping: Cease to every peer, kernel routes kept for graceful restart");
    crate::systemd::notify("STOPPING=1");
    // Graceful restart: routes learned from peers stay in the kernel too,
    // so the kernel is frozen before the sessions go down.
    kernel_frozen.store(true, Ordering::Release);
    let handles: Vec<PeerHandle> = write(&shared.peers).drain().map(|(_, h)| h).collect();
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
    if let Some(fib) = &fib {
        if let Err(e) = fib.shutdown(ShutdownMode::KeepRoutes).await {
            warn!("kernel sync shutdown: {e}");
        }
    }
    if let Some(task) = fib_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let _ = std::fs::remove_file(&read(&shared.config).control.socket);
    Ok(())
}
