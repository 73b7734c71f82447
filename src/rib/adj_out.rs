//! Each peer's Adj-RIB-Out: one bit per prefix id (what was announced), a
//! queue of prefix ids re-evaluated when encoded (so repeated changes
//! coalesce), the lazy initial-table dump, the backlog of encoded bytes that
//! did not fit the session's queue, and End-of-RIB.

use std::collections::VecDeque;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;

use bgp_proto::update::Update;
use bgp_proto::{Family, FamilySet, Message};
use bytes::Bytes;
use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use super::bits::Bits;
use super::decision::best_digest;
use super::encode::EncodeCache;
use super::{family_of, ExportCache, Rib, DUMP_SLICE};
use crate::messages::{PeerId, PeerInfo, PeerOut, PeerPolicy, OUT_BUDGET};
use crate::route::RouteAttrs;

impl PeerState {
    /// The End-of-RIBs the peer still owes (one per negotiated family).
    pub(super) fn eor_owed(&self) -> usize {
        (self.info.families.iter())
            .filter(|f| !self.eor_received.contains(*f))
            .count()
    }
}

pub(super) struct PeerState {
    pub(super) info: PeerInfo,
    pub(super) out: PeerOut,
    /// See [`export_class`].
    pub(super) export_class: u64,
    /// Adj-RIB-Out as one bit per prefix id: announced (or queued to be).
    /// What was sent follows from the Loc-RIB, so a reflector with thousands
    /// of clients keeps bits, not copies of routes.
    pub(super) advertised: Bits,
    /// Prefixes whose best path changed since they were last sent, sent in
    /// prefix-id order and re-evaluated when encoded, so repeated changes
    /// coalesce. A bit per prefix id, not a list: at 5,000 reflector clients
    /// per-peer lists of the same ids were a quarter of the daemon's memory.
    pub(super) queued: Bits,
    /// No id below this is queued (where the scan for the next slice starts).
    pub(super) queued_from: u32,
    /// Advertised prefixes that left the Loc-RIB (their ids may be reused).
    pub(super) withdraw: Vec<IpNetwork>,
    /// The initial table (or a route refresh) is sent lazily, in prefix-id
    /// order from here, as the peer's queue drains.
    pub(super) dump_next: Option<u32>,
    /// Families a ROUTE-REFRESH asked for: the dump re-sends what was
    /// already advertised too (the Adj-RIB-Out bits stay, so a withdrawal
    /// due meanwhile is still sent).
    pub(super) resend: FamilySet,
    /// Encoded messages that did not fit the queue.
    pub(super) backlog: VecDeque<Bytes>,
    /// Families whose End-of-RIB we still owe after the initial table.
    pub(super) eor_due: FamilySet,
    pub(super) eor_received: FamilySet,
    pub(super) received: usize,
    /// The prefix limit tripped: further announcements are ignored until the session resets.
    pub(super) limit_tripped: bool,
    pub(super) limit_warned: bool,
    /// Routes the import policy rejected, per family, since the session came up.
    pub(super) filtered: Vec<(Family, u64)>,
}

impl Rib {
    /// Recomputes every changed prefix, updates the kernel and each peer's
    /// Adj-RIB-Out, and sends what fits in the peers' queues.
    pub fn flush(&mut self) -> usize {
        // In prefix-id order, which is (ids being handed out as prefixes first
        // arrive) the order they came in, not the set's hash order: prefixes
        // of one received UPDATE stay together in the peers' queues and leave
        // together (a hash order spread each attribute set over ~6 UPDATEs).
        let dirty = self.loc.take_dirty();
        let changed = dirty.len();
        self.encode_cache = EncodeCache::default();
        self.shared.clear();
        let now = self.clock();
        // Prefixes whose best path changed, with the best path's peer (12
        // bytes each: a full table's flush held 2 MB of wider entries), and
        // those with no path left, by prefix (their ids are released here).
        let mut news: Vec<(u32, Option<PeerId>)> = Vec::new();
        let mut gone_ids: Vec<(u32, IpNetwork)> = Vec::new();
        for entry_id in dirty {
            let Some(prefix) = self.loc.prefix_of(entry_id) else {
                continue;
            };
            let selected = self.select_id(entry_id);
            self.update_kernel(entry_id, &prefix, selected.as_ref());
            let digest = selected.as_ref().map_or(0, |(best, _)| best_digest(best));
            let Some(entry) = self.loc.by_id_mut(entry_id) else {
                continue;
            };
            entry.changed = now;
            let gone = entry.paths.is_empty();
            if entry.best != digest {
                entry.best = digest;
                match gone {
                    true => gone_ids.push((entry_id, prefix)),
                    false => news.push((entry_id, selected.map(|(best, _)| best.peer))),
                }
            }
            if gone {
                // No path, no best: every peer's bit is cleared below (the
                // id is not handed out again within this flush).
                self.loc.remove(&prefix);
            }
        }
        // Peer by peer (not prefix by prefix): one map lookup per peer.
        for (&id, p) in self.peers.iter_mut() {
            for &(entry_id, prefix) in &gone_ids {
                // The id is released: withdraw by prefix, not by id.
                if p.advertised.get(entry_id) {
                    p.advertised.set(entry_id, false);
                    p.withdraw.push(prefix);
                }
            }
            for &(entry_id, best_peer) in &news {
                if !p.advertised.get(entry_id)
                    && (best_peer == Some(id) || p.dump_next.is_some_and(|next| entry_id >= next))
                {
                    // Its own route, never sent to it: nothing to tell it. Or
                    // the table dump under way has yet to reach the prefix:
                    // the dump sends it (queued as well, it would be
                    // evaluated in a hand-over of its own, then skipped).
                } else {
                    p.queued.set(entry_id, true);
                    p.queued_from = p.queued_from.min(entry_id);
                }
            }
        }
        let peer_ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in peer_ids {
            self.send_pending(id);
        }
        // Purge once about half the sets may be unused (at least 1,024 releases).
        if self.released_since_purge > (self.interned.len() / 2).max(1024) {
            self.purge_interned();
        }
        changed
    }

    /// Feeds a peer's queue until it is full: first changes not yet encoded,
    /// then the next slice of the initial table, then End-of-RIB.
    pub(super) fn send_pending(&mut self, id: PeerId) {
        if self.held_back(id) {
            return;
        }
        loop {
            if !self.drain_backlog_only(id) {
                return;
            }
            let Some(p) = self.peers.get_mut(&id) else { return };
            if !p.withdraw.is_empty() {
                let changes = std::mem::take(&mut p.withdraw)
                    .into_iter()
                    .map(|prefix| (prefix, None))
                    .collect();
                self.encode_changes(id, changes);
            } else if p.queued.count > 0 {
                // The next slice in id order; it ends inside an attribute set
                // only at twice its size (see `same_set`).
                let mut ids: Vec<u32> = Vec::with_capacity(DUMP_SLICE.min(p.queued.count));
                for i in p.queued.ones_from(p.queued_from) {
                    let full = ids.len() >= DUMP_SLICE;
                    if ids.len() >= 2 * DUMP_SLICE || full && !ids.last().is_some_and(|&l| same_set(&self.loc, l, i)) {
                        break;
                    }
                    ids.push(i);
                }
                let Some(&last) = ids.last() else {
                    // Not expected (no id below `queued_from` is queued, and
                    // the count says some are): scan again from the start.
                    p.queued_from = 0;
                    continue;
                };
                for &i in &ids {
                    p.queued.set(i, false);
                }
                p.queued_from = last + 1;
                self.hand_over(id, &ids, false);
            } else if let Some(start) = p.dump_next {
                self.dump_slice(id, start);
            } else if !p.eor_due.is_empty() {
                for family in std::mem::take(&mut p.eor_due).iter() {
                    if let Ok(b) = Message::Update(Update::end_of_rib(family)).to_bytes(&p.info.tx) {
                        p.backlog.push_back(Bytes::from(b));
                    }
                }
            } else {
                self.drain_backlog_only(id);
                return;
            }
        }
    }

    /// Sends the next slice of the table to a peer that is being dumped to.
    pub(super) fn dump_slice(&mut self, id: PeerId, start: u32) {
        let bound = self.loc.id_bound();
        let mut end = (start as usize + DUMP_SLICE).min(bound);
        while end < bound.min(start as usize + 2 * DUMP_SLICE) && same_set(&self.loc, end as u32 - 1, end as u32) {
            end += 1;
        }
        let ids: Vec<u32> = (start..end as u32).collect();
        let Some(p) = self.peers.get_mut(&id) else { return };
        p.dump_next = (end < self.loc.id_bound()).then_some(end as u32);
        let resend = if p.dump_next.is_none() {
            std::mem::take(&mut p.resend)
        } else {
            p.resend.clone()
        };
        let (again, rest): (Vec<u32>, Vec<u32>) = ids
            .into_iter()
            .partition(|i| (self.loc.prefix_of(*i)).is_some_and(|pr| resend.contains(family_of(&pr))));
        if again.is_empty() {
            self.hand_over(id, &rest, true);
            return;
        }
        let mut changes = self.evaluate(id, &again, false);
        changes.extend(self.evaluate(id, &rest, true));
        self.encode_changes(id, changes);
    }

    /// RFC 2918 §4 / RFC 7313: the peer asked for our routes of `family`
    /// again. Ignored for a family the session did not negotiate.
    pub(super) fn route_refresh(&mut self, peer: PeerId, family: Family) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if !p.info.families.contains(family) {
            return;
        }
        p.resend.insert(family);
        p.dump_next = Some(0);
    }

    /// Soft reconfiguration: the session's policies, next-hop rule or prefix
    /// limit changed. When what it is sent may differ, every family is
    /// re-evaluated (announced anew, or withdrawn where the new export
    /// rejects it). A changed import arrives as the peer's routes again.
    pub(super) fn peer_policy(&mut self, peer: PeerId, policy: PeerPolicy) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let export_changed = p.info.export != policy.export || p.info.next_hop != policy.next_hop;
        p.info.import = policy.import;
        p.info.export = policy.export;
        p.info.next_hop = policy.next_hop;
        p.info.max_prefixes = policy.max_prefixes;
        if export_changed {
            p.export_class = super::export::export_class(&p.info);
            self.export_cache = ExportCache::default();
            let families = p.info.families.clone();
            for family in families.iter() {
                p.resend.insert(family);
            }
            p.dump_next = Some(0);
            self.send_pending(peer);
        }
    }

    /// What a peer must be told about these prefixes now: an announcement of
    /// the current export, or a withdrawal of what it was sent. A dump
    /// (`skip_advertised`) only adds what the peer does not have yet.
    pub(super) fn evaluate(
        &mut self,
        id: PeerId,
        ids: &[u32],
        skip_advertised: bool,
    ) -> Vec<(IpNetwork, Option<Arc<RouteAttrs>>)> {
        let evaluated = self.evaluate_only(id, ids, skip_advertised);
        self.mark_advertised(id, &evaluated.now_advertised);
        evaluated.changes
    }

    /// Sets the peer's Adj-RIB-Out bits as `evaluate` decided.
    pub(super) fn mark_advertised(&mut self, id: PeerId, now_advertised: &[(u32, bool)]) {
        if let Some(p) = self.peers.get_mut(&id) {
            for &(index, on) in now_advertised {
                p.advertised.set(index, on);
            }
        }
    }

    /// [`Rib::evaluate`] without touching the peer's bits.
    pub(super) fn evaluate_only(&mut self, id: PeerId, ids: &[u32], skip_advertised: bool) -> Evaluated {
        let Some(p) = self.peers.get(&id) else {
            return Evaluated::default();
        };
        // What the peer has, read once: the exports below need the RIB mutably.
        let class = p.export_class;
        let advertised: Vec<bool> = ids.iter().map(|&i| p.advertised.get(i)).collect();
        let mut changes = Vec::with_capacity(ids.len());
        let mut now_advertised: Vec<(u32, bool)> = Vec::with_capacity(ids.len());
        let mut owners: Vec<PeerId> = Vec::new();
        // Neighbouring prefixes mostly have one path with the same set (one
        // UPDATE's worth): its export is reused, unless the peer's export
        // looks at each prefix (class 0).
        type Key = (PeerId, usize, bool);
        let mut last: Option<(Key, Option<Arc<RouteAttrs>>)> = None;
        for (&index, &was) in ids.iter().zip(&advertised) {
            if skip_advertised && was {
                continue;
            }
            let Some(entry) = self.loc.by_id(index) else {
                continue;
            };
            let prefix = entry.prefix;
            let key: Option<Key> = match &entry.paths[..] {
                [only] if class != 0 => Some((only.peer, Arc::as_ptr(&only.attrs) as usize, prefix.is_ipv4())),
                _ => None,
            };
            let exported = match (&key, &last) {
                (Some(k), Some((last_key, result))) if k == last_key => result.clone(),
                _ => {
                    let result = match self.best_id(index) {
                        Some(best) => {
                            if owners.last() != Some(&best.peer) {
                                owners.push(best.peer);
                            }
                            self.export_cached(id, &prefix, &best)
                        }
                        None => None,
                    };
                    if let Some(k) = key {
                        last = Some((k, result.clone()));
                    }
                    result
                }
            };
            match exported {
                Some(attrs) => {
                    now_advertised.push((index, true));
                    changes.push((prefix, Some(attrs)));
                }
                None if was => {
                    now_advertised.push((index, false));
                    changes.push((prefix, None));
                }
                None => {}
            }
        }
        Evaluated {
            changes,
            now_advertised,
            owners,
        }
    }

    /// Moves encoded bytes into the peer's channel; false once it is full or
    /// holds [`OUT_BUDGET`] unsent bytes (the writer then reports Writable).
    pub(super) fn drain_backlog_only(&mut self, id: PeerId) -> bool {
        let Some(p) = self.peers.get_mut(&id) else { return false };
        let flow = &p.out.flow;
        loop {
            if flow.unsent.load(AtomicOrdering::SeqCst) >= OUT_BUDGET {
                flow.want_writable.store(true, AtomicOrdering::SeqCst);
                // The writer may have written everything in between and not
                // seen the flag: look again (pairs with its SeqCst sub-then-swap).
                if flow.unsent.load(AtomicOrdering::SeqCst) >= OUT_BUDGET {
                    return false;
                }
                flow.want_writable.store(false, AtomicOrdering::SeqCst);
            }
            let Some(b) = p.backlog.pop_front() else { return true };
            let len = b.len();
            match p.out.queue.try_send(b) {
                Ok(()) => {
                    flow.unsent.fetch_add(len, AtomicOrdering::SeqCst);
                }
                Err(mpsc::error::TrySendError::Full(b)) => {
                    p.backlog.push_front(b);
                    flow.want_writable.store(true, AtomicOrdering::Release);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    p.backlog.clear();
                    return false;
                }
            }
        }
    }

    /// The peer's queue has room: carry on where it stopped.
    pub(super) fn drain_backlog(&mut self, id: PeerId) {
        self.send_pending(id);
    }
}

/// What a peer is to be told about some prefixes, before its bits are set.
#[derive(Default)]
pub(super) struct Evaluated {
    pub(super) changes: Vec<(IpNetwork, Option<Arc<RouteAttrs>>)>,
    /// The Adj-RIB-Out bits to set.
    pub(super) now_advertised: Vec<(u32, bool)>,
    /// The peers whose paths were best among these prefixes: the same
    /// hand-over fits another peer only if it is none of them (a peer is
    /// not sent its own routes).
    pub(super) owners: Vec<PeerId>,
}

/// Whether the prefixes with ids `a` and `b` have the same first path's
/// attribute set: a slice of a peer's queue ends between two such only when
/// it must (twice its size), so a set is not split over two UPDATEs for
/// nothing (issue 14: 10,938 UPDATEs for a 10,000-set table).
fn same_set(loc: &super::loc::LocRib, a: u32, b: u32) -> bool {
    let first = |id| loc.by_id(id).and_then(|e| e.first());
    first(a)
        .zip(first(b))
        .is_some_and(|(x, y)| Arc::ptr_eq(&x.attrs, &y.attrs))
}
