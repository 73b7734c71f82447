//! The sync worker: one desired-state map, a dirty set drained in batches, kernel events
//! folded in as they come, and a cheap handle for the daemon.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipnetwork::IpNetwork;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::FibError;
use crate::fib::{Fib, FibEvent, OpResult};
use crate::model::{
    normalize, Change, Desired, Errno, KernelRoute, LinkTable, Op, RouteKey, RTPROT_BIRD, RT_TABLE_MAIN,
};
use crate::netlink::{NetlinkFib, DEFAULT_BATCH};
use crate::reconcile::{desired_route, reconcile_key, Actual, Blocked, OwnRoute, RouteParams};
use crate::resolve::{Mode, Unresolved};

/// Crate configuration: where our routes live and how next hops resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibConfig {
    /// Routing table (default 254, main).
    pub table: u32,
    /// Protocol number marking our routes (default 12, "bird").
    pub protocol: u8,
    /// Metric of our routes (default 32).
    pub metric: u32,
    /// Next-hop resolution mode.
    pub mode: Mode,
    /// Tunnel device for IPIP modes (default "tunl0").
    pub tunnel_device: String,
    /// Requests per netlink batch, and a tenth of the keys reconciled per worker round.
    pub batch_size: usize,
    /// First retry delay after a kernel error; doubles per attempt.
    pub retry_base: Duration,
    /// Retry delay cap.
    pub retry_max: Duration,
    /// Optional slow safety resync (dump + reconcile); `None` = events only.
    pub safety_resync: Option<Duration>,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            table: RT_TABLE_MAIN,
            protocol: RTPROT_BIRD,
            metric: 32,
            mode: Mode::Plain,
            tunnel_device: "tunl0".to_string(),
            batch_size: DEFAULT_BATCH,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            safety_resync: None,
        }
    }
}

/// What to do with our routes when stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Leave them (graceful restart: the next start adopts them as stale).
    KeepRoutes,
    /// Delete every route we own.
    RemoveOwned,
}

/// Counters the daemon can show; monotonic except `pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful route adds/replaces.
    pub installs: u64,
    /// Successful route deletes.
    pub deletes: u64,
    /// Times a desired route was found blocked by a foreign route.
    pub conflicts: u64,
    /// Kernel errors on route ops (each also shown per route in the snapshot).
    pub errors: u64,
    /// Full dump+reconcile passes (start, ENOBUFS, link loss, EEXIST).
    pub resyncs: u64,
    /// Owned routes removed by someone else and put back.
    pub restores: u64,
    /// Kernel notifications processed.
    pub events: u64,
    /// Keys not yet as desired: queued, unresolvable, conflicting or failing.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct StatsCell {
    installs: AtomicU64,
    deletes: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    resyncs: AtomicU64,
    restores: AtomicU64,
    events: AtomicU64,
    pending: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Per-prefix state shown by `ternctl show fib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteState {
    /// The kernel has the desired route.
    Installed,
    /// Waiting to be sent to the kernel (or removed from it).
    Queued,
    /// Next hops cannot be resolved now; retried on link/address change.
    Unresolved(Unresolved),
    /// A route of another protocol holds the key; retried when it goes.
    Conflict {
        /// Protocol of the foreign route.
        protocol: u8,
    },
    /// The kernel refused the last attempt; retried with backoff.
    Failed {
        /// Kernel error.
        error: Errno,
        /// Attempts so far.
        attempts: u32,
    },
    /// Adopted at start, not re-desired; removed by `sweep_stale`.
    Stale,
}

/// One line of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    /// Destination.
    pub prefix: IpNetwork,
    /// What the caller asked for, if anything.
    pub desired: Option<Desired>,
    /// Our route in the kernel for this prefix at our metric, if any.
    pub installed: Option<KernelRoute>,
    /// Where it stands.
    pub state: RouteState,
}

enum Command {
    Apply(Vec<Change>),
    Sweep(oneshot::Sender<usize>),
    Snapshot(oneshot::Sender<Vec<RouteStatus>>),
    Settle(oneshot::Sender<()>),
    Shutdown(ShutdownMode, oneshot::Sender<()>),
}

/// Cheap, cloneable handle to the sync worker.
#[derive(Debug, Clone)]
pub struct FibHandle {
    tx: mpsc::UnboundedSender<Command>,
    stats: Arc<StatsCell>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl FibHandle {
    fn send(&self, c: Command) -> Result<(), FibError> {
        self.tx.send(c).map_err(|_| FibError::WorkerGone)
    }

    /// Queue a batch of changes; they are coalesced into the desired state and applied
    /// in netlink batches (a prefix changed twice is sent once).
    pub async fn apply(&self, changes: Vec<Change>) -> Result<(), FibError> {
        self.send(Command::Apply(changes))
    }

    /// Desire a route for `prefix`.
    pub async fn set_route(&self, prefix: IpNetwork, desired: Desired) -> Result<(), FibError> {
        self.apply(vec![Change::Set(prefix, desired)]).await
    }

    /// Stop desiring `prefix`; our kernel route for it is deleted.
    pub async fn remove_route(&self, prefix: IpNetwork) -> Result<(), FibError> {
        self.apply(vec![Change::Remove(prefix)]).await
    }

    /// Delete adopted (stale) routes that were not re-desired; returns how many were queued.
    pub async fn sweep_stale(&self) -> Result<usize, FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Sweep(tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }

    /// Status of every desired or owned prefix.
    pub async fn snapshot(&self) -> Result<Vec<RouteStatus>, FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Snapshot(tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }

    /// Resolve once everything queued so far has been tried (failures wait for retry).
    pub async fn settle(&self) -> Result<(), FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Settle(tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let s = &self.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            installs: g(&s.installs),
            deletes: g(&s.deletes),
            conflicts: g(&s.conflicts),
            errors: g(&s.errors),
            resyncs: g(&s.resyncs),
            restores: g(&s.restores),
            events: g(&s.events),
            pending: g(&s.pending),
        }
    }

    /// Stop the worker, keeping or removing our routes; resolves when done.
    pub async fn shutdown(&self, mode: ShutdownMode) -> Result<(), FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Shutdown(mode, tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }
}

/// Entry point: starts the worker over a kernel.
#[derive(Debug)]
pub struct FibSync;

/// The worker task; its result says why it stopped.
pub type FibTask = JoinHandle<Result<(), FibError>>;

impl FibSync {
    /// Start over the kernel of the calling thread's network namespace (netlink).
    pub async fn start(cfg: FibConfig) -> Result<(FibHandle, FibTask), FibError> {
        let fib = NetlinkFib::new(cfg.table, cfg.batch_size)?;
        Self::start_with(fib, cfg).await
    }

    /// Start over any [`Fib`]: dumps links and routes (adopting ours as stale), then
    /// spawns the worker.
    pub async fn start_with<F: Fib>(mut fib: F, cfg: FibConfig) -> Result<(FibHandle, FibTask), FibError> {
        let events = fib.take_events().ok_or(FibError::NoEvents)?;
        let (tx, cmds) = mpsc::unbounded_channel();
        let stats = Arc::new(StatsCell::default());
        let mut w = Worker {
            params: RouteParams {
                table: cfg.table,
                protocol: cfg.protocol,
                metric: cfg.metric,
                mode: cfg.mode,
            },
            cfg,
            fib,
            events,
            events_open: true,
            cmds,
            desired: HashMap::new(),
            hints: HashMap::new(),
            actual: Actual::default(),
            links: LinkTable::default(),
            dirty: HashSet::new(),
            blocked: HashMap::new(),
            failed: HashMap::new(),
            retries: BinaryHeap::new(),
            resync_needed: false,
            settle: Vec::new(),
            stats: stats.clone(),
        };
        w.resync().await?;
        let task = tokio::spawn(w.run());
        Ok((FibHandle { tx, stats }, task))
    }
}

#[derive(Debug, Clone, Copy)]
struct Failure {
    error: Errno,
    attempts: u32,
}

struct Worker<F> {
    cfg: FibConfig,
    params: RouteParams,
    fib: F,
    events: mpsc::UnboundedReceiver<FibEvent>,
    events_open: bool,
    cmds: mpsc::UnboundedReceiver<Command>,
    desired: HashMap<IpNetwork, Desired>,
    /// Device names used as next-hop hints, with use counts (their link events matter).
    hints: HashMap<String, usize>,
    actual: Actual,
    links: LinkTable,
    dirty: HashSet<RouteKey>,
    blocked: HashMap<IpNetwork, Blocked>,
    failed: HashMap<RouteKey, Failure>,
    retries: BinaryHeap<Reverse<(Instant, RouteKey)>>,
    resync_needed: bool,
    settle: Vec<oneshot::Sender<()>>,
    stats: Arc<StatsCell>,
}

fn is_v6_link_local(n: &IpNetwork) -> bool {
    matches!(n, IpNetwork::V6(v6) if (v6.ip().segments()[0] & 0xffc0) == 0xfe80)
}

fn hint_names(d: &Desired) -> impl Iterator<Item = &String> {
    let hops: &[crate::model::NextHop] = match d {
        Desired::Via(h) => h,
        Desired::Blackhole => &[],
    };
    hops.iter().filter_map(|h| h.device.as_ref())
}

impl<F: Fib> Worker<F> {
    fn key(&self, prefix: IpNetwork) -> RouteKey {
        RouteKey {
            prefix,
            metric: self.cfg.metric,
        }
    }

    async fn run(mut self) -> Result<(), FibError> {
        let mut next_safety = self.cfg.safety_resync.map(|d| Instant::now() + d);
        loop {
            while let Ok(c) = self.cmds.try_recv() {
                if self.command(c).await {
                    return Ok(());
                }
            }
            while let Ok(e) = self.events.try_recv() {
                self.event(e);
            }
            if self.resync_needed {
                if let Err(e) = self.resync().await {
                    tracing::error!("fib resync failed: {e}; retrying");
                    bump(&self.stats.errors, 1);
                    tokio::time::sleep(self.cfg.retry_base).await;
                    continue;
                }
            }
            self.due_retries(Instant::now());
            if !self.dirty.is_empty() {
                self.process_batch().await?;
                continue;
            }
            self.update_pending();
            for w in self.settle.drain(..) {
                let _ = w.send(());
            }
            let next_retry = self.retries.peek().map(|Reverse((t, _))| *t);
            tokio::select! {
                c = self.cmds.recv() => match c {
                    Some(c) => if self.command(c).await { return Ok(()) },
                    // Every handle dropped: stop, keeping routes.
                    None => return Ok(()),
                },
                e = self.events.recv(), if self.events_open => match e {
                    Some(e) => self.event(e),
                    None => {
                        tracing::error!("kernel event stream ended; fib-sync no longer repairs routes");
                        self.events_open = false;
                    }
                },
                _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now)), if next_retry.is_some() => {}
                _ = tokio::time::sleep_until(next_safety.unwrap_or_else(Instant::now)), if next_safety.is_some() => {
                    self.resync_needed = true;
                    next_safety = self.cfg.safety_resync.map(|d| Instant::now() + d);
                }
            }
        }
    }

    fn update_pending(&self) {
        let n = self.dirty.len() + self.blocked.len() + self.failed.len();
        self.stats.pending.store(n as u64, Ordering::Relaxed);
    }

    fn due_retries(&mut self, now: Instant) {
        while let Some(Reverse((t, k))) = self.retries.peek().copied() {
            if t > now {
                break;
            }
            self.retries.pop();
            if self.failed.contains_key(&k) {
                self.dirty.insert(k);
            }
        }
    }

    /// Returns true when the worker must stop.
    async fn command(&mut self, c: Command) -> bool {
        match c {
            Command::Apply(changes) => {
                for ch in changes {
                    match ch {
                        Change::Set(p, d) => self.set(normalize(p), d),
                        Change::Remove(p) => self.remove(normalize(p)),
                    }
                }
            }
            Command::Sweep(reply) => {
                let mut n = 0;
                for (k, o) in self.actual.own.iter_mut() {
                    if o.stale {
                        o.stale = false;
                        let desired = k.metric == self.cfg.metric && self.desired.contains_key(&k.prefix);
                        if !desired {
                            self.dirty.insert(*k);
                            n += 1;
                        }
                    }
                }
                let _ = reply.send(n);
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Settle(reply) => self.settle.push(reply),
            Command::Shutdown(mode, reply) => {
                if mode == ShutdownMode::RemoveOwned {
                    let ops: Vec<Op> = self.actual.own.values().map(|o| Op::Delete(o.route.clone())).collect();
                    match self.fib.apply(&ops).await {
                        Ok(results) => self.handle_results(&ops, results),
                        Err(e) => tracing::error!("removing routes at shutdown failed: {e}"),
                    }
                }
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    fn set(&mut self, prefix: IpNetwork, d: Desired) {
        let key = self.key(prefix);
        if let Some(o) = self.actual.own.get_mut(&key) {
            o.stale = false;
        }
        if self.desired.get(&prefix) == Some(&d) {
            return;
        }
        for h in hint_names(&d) {
            *self.hints.entry(h.clone()).or_default() += 1;
        }
        if let Some(old) = self.desired.insert(prefix, d) {
            self.unhint(&old);
        }
        self.dirty.insert(key);
    }

    fn remove(&mut self, prefix: IpNetwork) {
        if let Some(old) = self.desired.remove(&prefix) {
            self.unhint(&old);
            self.blocked.remove(&prefix);
            self.dirty.insert(self.key(prefix));
        }
    }

    fn unhint(&mut self, d: &Desired) {
        for h in hint_names(d) {
            if let Some(c) = self.hints.get_mut(h) {
                *c -= 1;
                if *c == 0 {
                    self.hints.remove(h);
                }
            }
        }
    }

    fn mark_all_desired(&mut self) {
        let m = self.cfg.metric;
        self.dirty
            .extend(self.desired.keys().map(|p| RouteKey { prefix: *p, metric: m }));
    }

    fn link_matters(&self, name: &str, has_addrs: bool) -> bool {
        has_addrs || name == self.cfg.tunnel_device || self.hints.contains_key(name)
    }

    fn event(&mut self, e: FibEvent) {
        bump(&self.stats.events, 1);
        let proto = self.cfg.protocol;
        match e {
            FibEvent::RouteAdded(r) | FibEvent::RouteDeleted(r) if r.table != self.cfg.table => {}
            FibEvent::RouteAdded(r) => {
                let key = r.key();
                let known = if r.protocol == proto {
                    self.actual.own.get(&key).is_some_and(|o| o.route == r)
                } else {
                    self.actual.foreign.get(&key) == Some(&r.protocol) && !self.actual.own.contains_key(&key)
                };
                if !known {
                    if r.protocol != proto && key.metric != self.cfg.metric {
                        return;
                    }
                    self.actual.learn(r, proto, true);
                    self.dirty.insert(key);
                }
            }
            FibEvent::RouteDeleted(r) => {
                let key = r.key();
                if r.protocol == proto {
                    if let Some(o) = self.actual.own.remove(&key) {
                        let wanted = key.metric == self.cfg.metric && self.desired.contains_key(&key.prefix);
                        if wanted && !o.stale {
                            tracing::info!(prefix = %key.prefix, "owned route removed by someone else; restoring");
                            bump(&self.stats.restores, 1);
                        }
                        self.dirty.insert(key);
                    }
                } else if self.actual.foreign.get(&key) == Some(&r.protocol) {
                    self.actual.foreign.remove(&key);
                    self.dirty.insert(key);
                }
            }
            FibEvent::LinkChanged { ifindex, name, up } => {
                let before = self.links.get(ifindex).map(|l| (l.up, !l.addrs.is_empty()));
                let old_name = self.links.get(ifindex).map(|l| l.name.clone());
                if self.links.upsert(ifindex, &name, up) {
                    let has_addrs = self.links.get(ifindex).is_some_and(|l| !l.addrs.is_empty());
                    let renamed_relevant = old_name.is_some_and(|n| self.link_matters(&n, false));
                    if self.link_matters(&name, has_addrs) || renamed_relevant {
                        self.mark_all_desired();
                        // IPv4 routes via a device going down vanish without notification.
                        if matches!(before, Some((true, _))) && !up {
                            self.resync_needed = true;
                        }
                    }
                }
            }
            FibEvent::LinkDeleted { ifindex } => {
                if let Some(l) = self.links.remove(ifindex) {
                    if self.link_matters(&l.name, !l.addrs.is_empty()) {
                        self.mark_all_desired();
                        self.resync_needed = true;
                    }
                }
            }
            FibEvent::AddrAdded { ifindex, addr } => {
                if !is_v6_link_local(&addr) && self.links.add_addr(ifindex, addr) {
                    self.mark_all_desired();
                }
            }
            FibEvent::AddrDeleted { ifindex, addr } => {
                if !is_v6_link_local(&addr) && self.links.del_addr(ifindex, addr) {
                    self.mark_all_desired();
                    self.resync_needed = true;
                }
            }
            FibEvent::Overrun => self.resync_needed = true,
        }
    }

    /// Dump links and our table, rebuild the actual view (new own routes are adopted as
    /// stale), and reconcile everything.
    async fn resync(&mut self) -> Result<(), FibError> {
        self.resync_needed = false;
        // Events queued before the dump are superseded by it.
        while self.events.try_recv().is_ok() {}
        let links = self.fib.dump_links().await?;
        let routes = self.fib.dump_routes(self.cfg.table).await?;
        self.links = LinkTable::from_links(links.into_iter().map(|mut l| {
            l.addrs.retain(|a| !is_v6_link_local(a));
            l
        }));
        let mut actual = Actual::default();
        for r in routes {
            let key = r.key();
            if r.protocol == self.cfg.protocol {
                let stale = self.actual.own.get(&key).map(|o| o.stale).unwrap_or(true);
                actual.own.insert(key, OwnRoute { route: r, stale });
            } else if key.metric == self.cfg.metric {
                actual.foreign.insert(key, r.protocol);
            }
        }
        self.dirty.extend(self.actual.own.keys().copied());
        self.actual = actual;
        self.dirty.extend(self.actual.own.keys().copied());
        self.dirty.extend(self.actual.foreign.keys().copied());
        self.mark_all_desired();
        // Keys in backoff wait for their retry time, so a failing op cannot loop via resyncs.
        let failed = &self.failed;
        self.dirty.retain(|k| !failed.contains_key(k));
        bump(&self.stats.resyncs, 1);
        Ok(())
    }

    async fn process_batch(&mut self) -> Result<(), FibError> {
        let n = self.cfg.batch_size.max(1) * 16;
        let keys: Vec<RouteKey> = self.dirty.iter().take(n).copied().collect();
        let mut ops = Vec::with_capacity(keys.len());
        for k in keys {
            self.dirty.remove(&k);
            let want = if k.metric == self.cfg.metric {
                self.desired
                    .get(&k.prefix)
                    .map(|d| desired_route(k.prefix, d, &self.params, &self.cfg.tunnel_device, &self.links))
            } else {
                None
            };
            let d = reconcile_key(k, want.as_ref(), &self.actual);
            match d.blocked {
                Some(b) => {
                    if self.blocked.get(&k.prefix) != Some(&b) {
                        match &b {
                            Blocked::Conflict(p) => {
                                tracing::warn!(prefix = %k.prefix, protocol = p, "route held by another protocol; not overwriting");
                                bump(&self.stats.conflicts, 1);
                            }
                            Blocked::Unresolved(u) => {
                                tracing::warn!(prefix = %k.prefix, "route not installable: {u}");
                            }
                        }
                        self.blocked.insert(k.prefix, b);
                    }
                    self.failed.remove(&k);
                }
                None => {
                    if k.metric == self.cfg.metric {
                        self.blocked.remove(&k.prefix);
                    }
                    if d.op.is_none() {
                        self.failed.remove(&k);
                    }
                }
            }
            ops.extend(d.op);
        }
        if ops.is_empty() {
            return Ok(());
        }
        match self.fib.apply(&ops).await {
            Ok(results) => self.handle_results(&ops, results),
            Err(e) => {
                tracing::error!("netlink request socket failed: {e}; resyncing");
                bump(&self.stats.errors, 1);
                self.resync_needed = true;
            }
        }
        Ok(())
    }

    fn handle_results(&mut self, ops: &[Op], results: Vec<OpResult>) {
        let now = Instant::now();
        for (op, res) in ops.iter().zip(results) {
            let key = op.route().key();
            match (op, res) {
                (Op::Add(r) | Op::Replace(r), Ok(())) => {
                    bump(&self.stats.installs, 1);
                    self.failed.remove(&key);
                    self.actual.foreign.remove(&key);
                    self.actual.own.insert(
                        key,
                        OwnRoute {
                            route: r.clone(),
                            stale: false,
                        },
                    );
                }
                (Op::Delete(_), Ok(())) | (Op::Delete(_), Err(Errno(libc::ESRCH))) => {
                    bump(&self.stats.deletes, 1);
                    self.failed.remove(&key);
                    self.actual.own.remove(&key);
                }
                (_, Err(e)) => {
                    bump(&self.stats.errors, 1);
                    if e.0 == libc::EEXIST || e.0 == libc::ENOBUFS {
                        // Someone holds a key we thought free, or acks were lost: re-learn.
                        self.resync_needed = true;
                    }
                    let attempts = self.failed.get(&key).map_or(0, |f| f.attempts) + 1;
                    tracing::warn!(prefix = %key.prefix, error = %e, attempts, "route op failed: {op:?}");
                    self.failed.insert(key, Failure { error: e, attempts });
                    let exp = self
                        .cfg
                        .retry_base
                        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
                    self.retries.push(Reverse((now + exp.min(self.cfg.retry_max), key)));
                }
            }
        }
        self.update_pending();
    }

    fn snapshot(&self) -> Vec<RouteStatus> {
        let mut keys: Vec<RouteKey> = self.desired.keys().map(|p| self.key(*p)).collect();
        keys.extend(
            self.actual
                .own
                .keys()
                .filter(|k| k.metric != self.cfg.metric || !self.desired.contains_key(&k.prefix)),
        );
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let desired = if k.metric == self.cfg.metric {
                    self.desired.get(&k.prefix).cloned()
                } else {
                    None
                };
                let own = self.actual.own.get(&k);
                let state = if let (Some(b), true) = (self.blocked.get(&k.prefix), desired.is_some()) {
                    match b {
                        Blocked::Conflict(p) => RouteState::Conflict { protocol: *p },
                        Blocked::Unresolved(u) => RouteState::Unresolved(u.clone()),
                    }
                } else if let Some(f) = self.failed.get(&k) {
                    RouteState::Failed {
                        error: f.error,
                        attempts: f.attempts,
                    }
                } else if let Some(d) = &desired {
                    let want = desired_route(k.prefix, d, &self.params, &self.cfg.tunnel_device, &self.links);
                    match (own, want) {
                        (Some(o), Ok(w)) if o.route == w => RouteState::Installed,
                        _ => RouteState::Queued,
                    }
                } else if own.is_some_and(|o| o.stale) {
                    RouteState::Stale
                } else {
                    RouteState::Queued
                };
                RouteStatus {
                    prefix: k.prefix,
                    desired,
                    installed: own.map(|o| o.route.clone()),
                    state,
                }
            })
            .collect()
    }
}
