//! The daemon's side of the worker: configuration, the handle and its commands, counters, and what a snapshot reports.

use super::*;

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
    /// A next hop on no connected subnet resolves through the table's longest-prefix
    /// route of another protocol, as BIRD's `gateway recursive` (plain-mode IPv4 and all
    /// IPv6 next hops; default true). Off: such next hops stay unresolved.
    pub recursive: bool,
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
            recursive: true,
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
pub(super) struct StatsCell {
    pub(super) installs: AtomicU64,
    pub(super) deletes: AtomicU64,
    pub(super) conflicts: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) resyncs: AtomicU64,
    pub(super) restores: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) pending: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Per-prefix state shown by `ternctl show fib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteState {
    /// The kernel has the desired route.
    Installed,
    /// Waiting to be sent to the kernel (or removed from it).
    Queued,
    /// Next hops cannot be resolved now; retried on link/address change and when a
    /// route covering the gateway changes.
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
    /// Names of the installed route's devices, one per hop (empty when unknown).
    pub devices: Vec<String>,
}

pub(super) enum Command {
    Apply(Vec<Change>),
    Sweep(oneshot::Sender<usize>),
    Snapshot(oneshot::Sender<Vec<RouteStatus>>),
    Settle(oneshot::Sender<()>),
    Paced(oneshot::Sender<()>),
    Shutdown(ShutdownMode, oneshot::Sender<()>),
    Track(Vec<crate::model::NextHop>),
    WatchNextHops(mpsc::UnboundedSender<Vec<(crate::model::NextHop, bool)>>),
    Learn(
        crate::learn::LearnFilter,
        Option<mpsc::UnboundedSender<Vec<crate::learn::LearnChange>>>,
    ),
}

/// Cheap, cloneable handle to the sync worker.
#[derive(Debug, Clone)]
pub struct FibHandle {
    pub(super) tx: mpsc::UnboundedSender<Command>,
    pub(super) stats: Arc<StatsCell>,
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

    /// Resolve once the worker has taken every change sent before and at most
    /// [`PACE_QUEUE`](super::PACE_QUEUE) prefixes wait for the kernel. A caller that
    /// awaits this between batches keeps the rest of a burst itself (the daemon's RIB
    /// as one bit a prefix) instead of in the worker's queue (18 bytes a prefix).
    pub async fn paced(&self) -> Result<(), FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Paced(tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }

    /// Resolve once everything queued so far has been tried (failures wait for retry).
    pub async fn settle(&self) -> Result<(), FibError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Settle(tx))?;
        rx.await.map_err(|_| FibError::WorkerGone)
    }

    /// Current counters.
    /// Follows whether these next hops resolve (see [`FibHandle::next_hop_changes`]).
    pub fn track_next_hops(&self, next_hops: Vec<crate::model::NextHop>) -> Result<(), FibError> {
        self.send(Command::Track(next_hops))
    }

    /// Reports of tracked next hops that stopped or started resolving (after
    /// link and address changes); a new next hop is reported only if it does
    /// not resolve. One subscriber: a second call replaces the first.
    pub fn next_hop_changes(&self) -> Result<mpsc::UnboundedReceiver<Vec<(crate::model::NextHop, bool)>>, FibError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Command::WatchNextHops(tx))?;
        Ok(rx)
    }

    /// Reports the kernel routes of other programs that `filter` takes
    /// (BIRD's kernel `learn`): the current set at once, then every change.
    /// One subscriber: a second call replaces the first.
    pub fn learn(
        &self,
        filter: crate::learn::LearnFilter,
    ) -> Result<mpsc::UnboundedReceiver<Vec<crate::learn::LearnChange>>, FibError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Command::Learn(filter, Some(tx)))?;
        Ok(rx)
    }

    /// A new filter for [`FibHandle::learn`] (reload): the differences are reported.
    pub fn set_learn_filter(&self, filter: crate::learn::LearnFilter) -> Result<(), FibError> {
        self.send(Command::Learn(filter, None))
    }

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
        let mut w = Worker::new(fib, cfg, events, cmds, stats.clone());
        w.resync().await?;
        let task = tokio::spawn(w.run());
        Ok((FibHandle { tx, stats }, task))
    }
}
