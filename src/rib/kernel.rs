//! Best paths to kernel changes: only prefixes inside `allowed_prefixes`,
//! blackholes for originated blocks, nothing sent twice.
//!
//! The kernel side is fed at its own pace: a flush only marks the prefixes
//! whose route may have changed (a bit per prefix id), and their changes are
//! worked out when the kernel side takes the next chunk. A full table no
//! longer waits as a table-sized list of routes in a channel (S3: 10 MB at
//! 100k routes, issue 14), and a prefix that changes twice meanwhile is
//! handed over once.

use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use super::bits::Bits;
use super::table::Path;
use super::Rib;
use crate::messages::{Gateways, KernelOp, KernelWork, LOCAL};

/// Kernel changes handed over per chunk. Two chunks of 4,096 ops (~100
/// bytes each) in flight held 0.85 MB at S3's peak; with 1,024 the 100k routes
/// went in no slower (0.54-0.56 s, against 0.61-0.64 s).
pub(super) const KERNEL_CHUNK: usize = 1024;

/// Chunks handed over and not yet taken: one being applied while the next
/// waits keeps the kernel side busy without letting changes pile up.
const KERNEL_IN_FLIGHT: usize = 2;

/// What the kernel side is owed and how much of it is on the way.
#[derive(Default)]
pub(super) struct KernelFeed {
    /// Prefixes gone from the Loc-RIB (their ids are free again) whose
    /// kernel route must go.
    removals: Vec<IpNetwork>,
    /// Ids of prefixes whose kernel route may have to change.
    pending: Bits,
    /// No pending id is below this.
    pending_from: u32,
    in_flight: usize,
    /// Routes adopted at start are to be swept once everything before is handed over.
    sweep_due: bool,
    /// The daemon's kernel task; without one, changes wait for `take_kernel_ops`.
    pub(super) sink: Option<mpsc::UnboundedSender<KernelWork>>,
}

impl Rib {
    /// Notes that the route of the prefix with id `id` may have changed
    /// (`selected` is its new best path, `None` if it is about to go).
    pub(super) fn update_kernel(&mut self, id: u32, prefix: &IpNetwork, selected: Option<&(Path, Gateways)>) {
        if !self.cfg.kernel {
            return;
        }
        if selected.is_some() {
            self.kernel_feed.pending.set(id, true);
            self.kernel_feed.pending_from = self.kernel_feed.pending_from.min(id);
            return;
        }
        // No path: the id is released within this flush, so the removal
        // cannot wait for the id.
        self.kernel_feed.pending.set(id, false);
        if let Some(entry) = self.loc.by_id_mut(id) {
            if entry.in_kernel {
                entry.in_kernel = false;
                self.kernel_feed.removals.push(*prefix);
            }
        }
    }

    /// The kernel change the prefix with id `id` needs now, if any; records
    /// it as handed over.
    fn kernel_op(&mut self, id: u32) -> Option<KernelOp> {
        let prefix = self.loc.prefix_of(id)?;
        let selected = self.select_id(id);
        let allowed = self
            .cfg
            .allowed_prefixes
            .iter()
            .any(|a| a.contains(prefix.ip()) && a.prefix() <= prefix.prefix());
        let want = match &selected {
            Some((best, _)) if best.peer == LOCAL => self
                .originated
                .get(&prefix)
                .filter(|o| o.blackhole)
                .map(|_| KernelOp::Blackhole(prefix)),
            Some((_, gateways)) if allowed && !gateways.is_empty() => Some(KernelOp::Via(prefix, gateways.clone())),
            _ => None,
        };
        let entry = self.loc.by_id_mut(id)?;
        match want {
            // Possibly what the kernel already has: fib-sync drops a `Set`
            // equal to what it holds.
            Some(w) => {
                entry.in_kernel = true;
                Some(w)
            }
            None if entry.in_kernel => {
                entry.in_kernel = false;
                Some(KernelOp::Remove(prefix))
            }
            _ => None,
        }
    }

    /// The next changes for the kernel, at most `max`: removals of gone
    /// prefixes first (in the order they went), then pending prefixes.
    fn next_kernel_chunk(&mut self, max: usize) -> Vec<KernelOp> {
        let feed = &mut self.kernel_feed;
        let removals = feed.removals.len().min(max);
        let mut ops: Vec<KernelOp> = feed.removals.drain(..removals).map(KernelOp::Remove).collect();
        let ids: Vec<u32> = feed.pending.ones_from(feed.pending_from).take(max - removals).collect();
        for &id in &ids {
            feed.pending.set(id, false);
        }
        feed.pending_from = match ids.last() {
            Some(&last) if feed.pending.count > 0 => last + 1,
            _ => 0,
        };
        ops.extend(ids.into_iter().filter_map(|id| self.kernel_op(id)));
        ops
    }

    /// Every kernel change owed, without waiting for the kernel side.
    pub fn take_kernel_ops(&mut self) -> Vec<KernelOp> {
        self.next_kernel_chunk(usize::MAX)
    }

    /// Hands the kernel task chunks while fewer than [`KERNEL_IN_FLIGHT`]
    /// are untaken, then the sweep of adopted routes once nothing is owed.
    pub(super) fn feed_kernel(&mut self) {
        let Some(sink) = self.kernel_feed.sink.clone() else {
            return;
        };
        while self.kernel_feed.in_flight < KERNEL_IN_FLIGHT
            && (self.kernel_feed.pending.count > 0 || !self.kernel_feed.removals.is_empty())
        {
            let ops = self.next_kernel_chunk(KERNEL_CHUNK);
            if ops.is_empty() {
                continue;
            }
            if sink.send(KernelWork::Ops(ops)).is_err() {
                tracing::warn!("kernel sync task is gone; routes are no longer installed");
                self.kernel_feed.sink = None;
                return;
            }
            self.kernel_feed.in_flight += 1;
        }
        let owed = self.kernel_feed.pending.count > 0 || !self.kernel_feed.removals.is_empty();
        if self.kernel_feed.sweep_due && !owed {
            self.kernel_feed.sweep_due = false;
            let _ = sink.send(KernelWork::SweepStale);
        }
    }

    /// The kernel task took `chunks` hand-overs: feed it the next ones.
    pub(super) fn kernel_taken(&mut self, chunks: usize) {
        self.kernel_feed.in_flight = self.kernel_feed.in_flight.saturating_sub(chunks);
        self.feed_kernel();
    }

    /// Routes adopted at start and not re-learned are to go: after every
    /// change owed to the kernel so far, so a re-learned route is never swept.
    pub(super) fn sweep_stale_kernel_routes(&mut self) {
        self.kernel_feed.sweep_due = true;
        self.feed_kernel();
    }
}
