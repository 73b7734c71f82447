//! The bridge from the RIB to fib-sync: RIB kernel changes batched into
//! fib-sync changes, the one-time sweep of routes adopted at start queued in
//! its place, and the decision of when that sweep happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fib_sync::{Change, Desired, FibHandle, LearnChange, LearnFilter, NextHop};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::messages::{Gateway, KernelOp, KernelWork, Learned, RibMsg};
use crate::registry::Registry;
use crate::sys::release_free_memory;

impl From<KernelOp> for Change {
    fn from(op: KernelOp) -> Change {
        match op {
            KernelOp::Via(p, gws) => Change::Set(p, Desired::via_hops(gws.into_iter().map(next_hop))),
            KernelOp::Blackhole(p) => Change::Set(p, Desired::Blackhole),
            KernelOp::Remove(p) => Change::Remove(p),
        }
    }
}

/// A RIB gateway as fib-sync's next hop: a link-local one is resolved on
/// the link shared with the peer it came from.
fn next_hop(gw: Gateway) -> NextHop {
    match gw.link_of {
        Some(peer) => NextHop::link_local(gw.addr, peer),
        None => NextHop::via(gw.addr),
    }
}

/// Hands RIB kernel changes to fib-sync, batching what piled up, tells the
/// RIB each chunk was taken (it hands over the next ones only then), and runs
/// the stale sweep in its place in the queue. Once `frozen` is set
/// (shutdown), the kernel is left exactly as it is.
pub(super) async fn kernel_task(
    fib: FibHandle,
    mut rx: mpsc::UnboundedReceiver<KernelWork>,
    rib: mpsc::Sender<RibMsg>,
    frozen: Arc<AtomicBool>,
) {
    let mut sweep_next = false;
    let mut since_trim = 0usize;
    while let Some(first) = rx.recv().await {
        // Each chunk becomes fib-sync changes as it is taken: a batch of 8,192
        // RIB ops (~100 bytes each) and its changes were held at once before.
        let mut changes: Vec<Change> = Vec::new();
        let mut track = Vec::new();
        let mut chunks = 0;
        match first {
            KernelWork::Ops(o) => {
                changes = o.into_iter().map(Change::from).collect();
                chunks += 1;
            }
            KernelWork::SweepStale => sweep_next = true,
            KernelWork::Track(nhs) => track = nhs,
        }
        while !sweep_next && changes.len() < 8192 {
            match rx.try_recv() {
                Ok(KernelWork::Ops(more)) => {
                    changes.extend(more.into_iter().map(Change::from));
                    chunks += 1;
                }
                Ok(KernelWork::SweepStale) => sweep_next = true,
                Ok(KernelWork::Track(more)) => track.extend(more),
                Err(_) => break,
            }
        }
        if !track.is_empty() && fib.track_next_hops(track.into_iter().map(next_hop).collect()).is_err() {
            error!("kernel route sync stopped");
            return;
        }
        if frozen.load(Ordering::Acquire) {
            continue;
        }
        if !changes.is_empty() {
            since_trim += changes.len();
            // Paced: the rest of a burst waits in the RIB (a bit a prefix), not
            // in fib-sync's queue (18 bytes a prefix).
            let taken = match fib.apply(changes).await {
                Ok(()) => fib.paced().await,
                Err(e) => Err(e),
            };
            if let Err(e) = taken {
                error!("kernel route sync stopped: {e}");
                return;
            }
            if chunks > 0 && rib.send(RibMsg::KernelTaken(chunks)).await.is_err() {
                return;
            }
            // After a full table, once the kernel has it: give the burst's
            // memory back to the system.
            if since_trim > 10_000 && rx.is_empty() {
                let _ = fib.settle().await;
                release_free_memory();
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

/// Hands the kernel side's reports of next hops that stopped or started
/// resolving to the RIB (RFC 4271 §9.1.2).
pub(super) async fn next_hop_reports(fib: FibHandle, rib: mpsc::Sender<RibMsg>) {
    let Ok(mut reports) = fib.next_hop_changes() else {
        return;
    };
    while let Some(changes) = reports.recv().await {
        let changes = changes
            .into_iter()
            .map(|(hop, ok)| {
                let gateway = Gateway {
                    addr: hop.gateway,
                    link_of: hop.link_of,
                };
                (gateway, ok)
            })
            .collect();
        if rib.send(RibMsg::NextHops(changes)).await.is_err() {
            return;
        }
    }
}

/// Hands the kernel routes of other programs that `[learn]` takes to the
/// RIB, which announces them: the current set first, then every change.
pub(super) async fn learned_reports(fib: FibHandle, filter: LearnFilter, rib: mpsc::Sender<RibMsg>) {
    let Ok(mut reports) = fib.learn(filter) else {
        return;
    };
    while let Some(mut changes) = reports.recv().await {
        // What piled up while the RIB was busy goes as one message.
        while let Ok(more) = reports.try_recv() {
            changes.extend(more);
        }
        let changes = changes
            .into_iter()
            .map(|c| match c {
                LearnChange::Set(r) => {
                    let learned = Learned {
                        protocol: r.protocol,
                        devices: r.devices,
                        blackhole: r.blackhole,
                    };
                    (r.prefix, Some(learned))
                }
                LearnChange::Remove(prefix) => (prefix, None),
            })
            .collect();
        if rib.send(RibMsg::Learn(changes)).await.is_err() {
            return;
        }
    }
}

/// Decides when routes adopted at start are swept: once every peer is up and
/// has sent End-of-RIB, or after `[kernel] sweep_after` seconds. The RIB
/// queues the sweep behind the kernel changes it still owes.
pub(super) async fn sweeper(
    registry: Arc<Registry>,
    rib: mpsc::Sender<RibMsg>,
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
                if *converged.borrow() && registry.all_established() {
                    break;
                }
            }
        }
    }
    let _ = rib.send(RibMsg::SweepStaleKernelRoutes).await;
}
