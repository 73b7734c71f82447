//! The sync worker: one compact record per prefix (desired + ours in the kernel + foreign
//! holder + flags), a dirty queue drained in batches, kernel events folded in as they
//! come, and a cheap handle for the daemon.
//!
//! `handle` is the daemon's side (config, handle, counters, snapshot types);
//! the worker's parts: `dirty` (the reconcile queue), `events` (kernel
//! notifications, resync), `batch` (reconcile and results), `snapshot`.

mod batch;
mod dirty;
mod events;
mod handle;
mod learn;
mod snapshot;
mod table;
#[cfg(test)]
#[allow(unsafe_code)] // a counting global allocator for the allocation tests
mod tests;
mod tracked;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
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
    normalize, Change, Desired, Errno, KernelRoute, LinkTable, Op, RouteKey, RouteKind, RTPROT_BIRD, RT_TABLE_MAIN,
};
use crate::netlink::{NetlinkFib, DEFAULT_BATCH};
use crate::reconcile::{decide, Blocked, OwnRoute, RouteParams};
use crate::resolve::{recurses, Mode, Unresolved};
use crate::slot::{route, Block, Resolver, Slot, Want};

use dirty::DirtyQueue;
use handle::{bump, Command, StatsCell};
pub use handle::{FibConfig, FibHandle, FibSync, FibTask, RouteState, RouteStatus, ShutdownMode, Stats};
use table::RouteTable;

#[derive(Debug, Clone, Copy)]
struct Failure {
    error: Errno,
    attempts: u32,
}

/// Transient queues keep at most this much spare capacity after a burst.
const SPARE: usize = 1024;

/// Prefixes waiting for the kernel at most when [`FibHandle::paced`] returns:
/// enough netlink batches that the kernel side does not wait for the RIB between
/// chunks (at 4,096 S3 took 0.57 to 0.89 s; at 16,384, 0.56 to 0.64 s).
pub(crate) const PACE_QUEUE: usize = 16384;

struct Worker<F> {
    cfg: FibConfig,
    params: RouteParams,
    fib: F,
    events: mpsc::UnboundedReceiver<FibEvent>,
    events_open: bool,
    cmds: mpsc::UnboundedReceiver<Command>,
    /// Every prefix at our metric that is desired, ours in the kernel, or held by a
    /// foreign route: one compact record each.
    routes: RouteTable,
    /// Our routes at another metric (adopted from an earlier configuration; rare).
    other_own: HashMap<RouteKey, OwnRoute>,
    /// Links, interned next-hop sets and cached resolutions.
    res: Resolver,
    /// Device names used as next-hop hints, with use counts (their link events matter).
    hints: HashMap<String, usize>,
    /// Next hops whose resolvability the daemon follows.
    tracked: tracked::TrackedNextHops,
    /// Kernel routes of other programs the daemon announces.
    learning: learn::Learning,
    /// Prefixes (at our metric) waiting to be reconciled; each slot with `dirty` set is
    /// here exactly once.
    dirty: DirtyQueue,
    /// Keys at another metric waiting to be reconciled.
    dirty_other: HashSet<RouteKey>,
    /// Slots whose last decision was "blocked".
    blocked: usize,
    failed: HashMap<RouteKey, Failure>,
    retries: BinaryHeap<Reverse<(Instant, RouteKey)>>,
    resync_needed: bool,
    settle: Vec<oneshot::Sender<()>>,
    /// Callers of [`FibHandle::paced`] waiting for the queue to shrink.
    pacers: Vec<oneshot::Sender<()>>,
    stats: Arc<StatsCell>,
}

fn is_v6_link_local(n: &IpNetwork) -> bool {
    matches!(n, IpNetwork::V6(v6) if (v6.ip().segments()[0] & 0xffc0) == 0xfe80)
}

/// Queue a slot for reconciliation (once).
fn mark(dirty: &mut DirtyQueue, prefix: IpNetwork, slot: &mut Slot, res: &mut Resolver) {
    if !slot.flags(&res.states).dirty {
        slot.set_flags(res, |f| f.dirty = true);
        dirty.q.push_back(prefix);
        dirty.unsorted += 1;
    }
}

/// Give back most of a map's memory once it is far below its capacity (after a mass
/// removal), so a burst does not pin its peak forever.
fn shrink_map<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > SPARE && m.len() < m.capacity() / 4 {
        m.shrink_to(m.len() * 2);
    }
}

impl<F: Fib> Worker<F> {
    fn new(
        fib: F,
        cfg: FibConfig,
        events: mpsc::UnboundedReceiver<FibEvent>,
        cmds: mpsc::UnboundedReceiver<Command>,
        stats: Arc<StatsCell>,
    ) -> Self {
        let recursive = cfg.recursive;
        Worker {
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
            routes: RouteTable::default(),
            other_own: HashMap::new(),
            res: Resolver::new(recursive),
            hints: HashMap::new(),
            tracked: tracked::TrackedNextHops::default(),
            learning: learn::Learning::default(),
            dirty: DirtyQueue::default(),
            dirty_other: HashSet::new(),
            blocked: 0,
            failed: HashMap::new(),
            retries: BinaryHeap::new(),
            resync_needed: false,
            settle: Vec::new(),
            pacers: Vec::new(),
            stats,
        }
    }

    async fn run(mut self) -> Result<(), FibError> {
        let mut next_safety = self.cfg.safety_resync.map(|d| Instant::now() + d);
        loop {
            self.collect_states();
            while let Ok(c) = self.cmds.try_recv() {
                if self.command(c).await {
                    return Ok(());
                }
            }
            self.release_pacers();
            while let Ok(e) = self.events.try_recv() {
                self.event(e);
            }
            self.flush_learned();
            if self.resync_needed {
                if let Err(e) = self.resync().await {
                    tracing::error!("fib resync failed: {e}; retrying");
                    bump(&self.stats.errors, 1);
                    tokio::time::sleep(self.cfg.retry_base).await;
                    continue;
                }
            }
            self.due_retries(Instant::now());
            if !self.dirty.is_empty() || !self.dirty_other.is_empty() {
                self.process_batch().await?;
                continue;
            }
            self.trim();
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
                    Some(e) => {
                        self.event(e);
                        // More usually follow: they are reported together at the loop's top.
                    }
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

    /// Frees the states no slot names any more, once enough new ones came since
    /// the last time (slots do not count their references).
    fn collect_states(&mut self) {
        if self.res.states.due() {
            self.res.states.collect(self.routes.values());
        }
    }

    /// Answers the callers of [`FibHandle::paced`] once the queue is short enough.
    fn release_pacers(&mut self) {
        if self.dirty.len() <= PACE_QUEUE {
            for w in self.pacers.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// Idle: release what a burst left behind (queue buffers, oversized tables).
    fn trim(&mut self) {
        self.dirty.trim();
        self.routes.shrink();
        shrink_map(&mut self.failed);
        if self.retries.capacity() > SPARE && self.retries.len() < self.retries.capacity() / 4 {
            self.retries.shrink_to(self.retries.len() * 2);
        }
    }

    fn update_pending(&self) {
        let n = self.dirty.len() + self.dirty_other.len() + self.blocked + self.failed.len();
        self.stats.pending.store(n as u64, Ordering::Relaxed);
    }

    /// Queue one key for reconciliation.
    fn mark_key(&mut self, key: RouteKey) {
        if key.metric == self.cfg.metric {
            let slot = self.routes.slot(key.prefix);
            mark(&mut self.dirty, key.prefix, slot, &mut self.res);
        } else {
            self.dirty_other.insert(key);
        }
    }

    fn due_retries(&mut self, now: Instant) {
        while let Some(Reverse((t, k))) = self.retries.peek().copied() {
            if t > now {
                break;
            }
            self.retries.pop();
            if self.failed.contains_key(&k) {
                self.mark_key(k);
            }
        }
    }

    /// Returns true when the worker must stop.
    async fn command(&mut self, c: Command) -> bool {
        match c {
            Command::Apply(changes) => {
                if changes.len() > SPARE {
                    self.dirty.reserve(changes.len());
                }
                for ch in changes {
                    match ch {
                        Change::Set(p, d) => self.set(normalize(p), d),
                        Change::Remove(p) => self.remove(normalize(p)),
                    }
                }
            }
            Command::Sweep(reply) => {
                let mut n = 0;
                for (p, slot) in self.routes.iter_mut() {
                    if slot.owned(&self.res.states) && slot.flags(&self.res.states).stale {
                        slot.set_flags(&mut self.res, |f| f.stale = false);
                        if !slot.wanted(&self.res.states) {
                            mark(&mut self.dirty, p, slot, &mut self.res);
                            n += 1;
                        }
                    }
                }
                for (k, o) in self.other_own.iter_mut() {
                    if o.stale {
                        o.stale = false;
                        self.dirty_other.insert(*k);
                        n += 1;
                    }
                }
                let _ = reply.send(n);
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Settle(reply) => self.settle.push(reply),
            Command::Paced(reply) => self.pacers.push(reply),
            Command::Track(next_hops) => self.track(next_hops),
            Command::WatchNextHops(subscriber) => self.watch_next_hops(subscriber),
            Command::Learn(filter, subscriber) => {
                if let Err(e) = self.set_learn(filter, subscriber).await {
                    tracing::error!("reading the routing table for [learn]: {e}; retrying at the next resync");
                    self.resync_needed = true;
                }
            }
            Command::Shutdown(mode, reply) => {
                if mode == ShutdownMode::RemoveOwned {
                    self.remove_all_owned().await;
                }
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    /// Delete every route we own, a batch at a time.
    async fn remove_all_owned(&mut self) {
        let mut keys: Vec<RouteKey> = self
            .routes
            .iter()
            .filter(|(_, s)| s.owned(&self.res.states))
            .map(|(p, _)| RouteKey {
                prefix: p,
                metric: self.cfg.metric,
            })
            .collect();
        keys.extend(self.other_own.keys().copied());
        for chunk in keys.chunks(self.cfg.batch_size.max(1) * 16) {
            let ops: Vec<Op> = chunk
                .iter()
                .filter_map(|k| self.own_route(*k))
                .map(Op::Delete)
                .collect();
            match self.fib.apply(&ops).await {
                Ok(results) => self.handle_results(&ops, results),
                Err(e) => {
                    tracing::error!("removing routes at shutdown failed: {e}");
                    return;
                }
            }
        }
    }

    /// Our route for a key, as the kernel has it.
    fn own_route(&self, k: RouteKey) -> Option<KernelRoute> {
        if k.metric == self.cfg.metric {
            let kind = self.routes.get(&k.prefix)?.own_kind(&self.res.states)?;
            Some(route(k.prefix, kind, &self.params))
        } else {
            self.other_own.get(&k).map(|o| o.route.clone())
        }
    }

    fn set(&mut self, prefix: IpNetwork, d: Desired) {
        let (want, hops) = match &d {
            Desired::Blackhole => (Want::Blackhole, None),
            Desired::Via(h) => (Want::Via, Some(self.res.intern_desired(h))),
        };
        let slot = self.routes.slot(prefix);
        if slot.owned(&self.res.states) {
            slot.set_flags(&mut self.res, |f| f.stale = false);
        }
        let old = slot.desired(&self.res.states);
        if !slot.set_want(want, hops, &mut self.res) {
            return;
        }
        mark(&mut self.dirty, prefix, slot, &mut self.res);
        // New first: a gateway kept from the old set keeps its cover.
        self.count_hops(&d, true);
        if let Some(old) = old {
            self.count_hops(&old, false);
        }
    }

    fn remove(&mut self, prefix: IpNetwork) {
        let Some(slot) = self.routes.get_mut(&prefix) else {
            return;
        };
        let Some(old) = slot.desired(&self.res.states) else {
            return;
        };
        slot.set_want(Want::Nothing, None, &mut self.res);
        if slot.flags(&self.res.states).block != Block::No {
            slot.set_flags(&mut self.res, |f| f.block = Block::No);
            self.blocked -= 1;
        }
        mark(&mut self.dirty, prefix, slot, &mut self.res);
        self.count_hops(&old, false);
    }

    /// Count (or uncount) the device hints and the recursively resolved gateways of a
    /// desired route: their link and route events concern us.
    fn count_hops(&mut self, d: &Desired, add: bool) {
        let Desired::Via(hops) = d else {
            return;
        };
        for h in hops.iter() {
            match &h.device {
                Some(dev) if add => *self.hints.entry(dev.clone()).or_default() += 1,
                Some(dev) => {
                    if let Some(c) = self.hints.get_mut(dev) {
                        *c -= 1;
                        if *c == 0 {
                            self.hints.remove(dev);
                        }
                    }
                }
                None if !self.res.recursive || !recurses(h.gateway, self.cfg.mode) => {}
                None if add => {
                    if self.res.gateways.add(h.gateway, &self.res.covers) {
                        // Resolved while nobody followed its cover (e.g. before
                        // the RIB left the path out): forget that answer.
                        self.res.links_changed();
                    }
                }
                None => self.res.gateways.remove(h.gateway),
            }
        }
    }

    fn mark_all_desired(&mut self) {
        for (p, slot) in self.routes.iter_mut() {
            if slot.wanted(&self.res.states) {
                mark(&mut self.dirty, p, slot, &mut self.res);
            }
        }
    }
}
