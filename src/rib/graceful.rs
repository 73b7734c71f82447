//! Graceful restart, receiving side (RFC 4724 §4.2): the paths of a peer
//! whose session ended without a NOTIFICATION stay, stale, under an id of
//! their own: until the restart time if the peer does not come back; once it
//! is back, until its End-of-RIB or `stale_routes_time`. Families it comes
//! back without (no GR capability, or the F bit clear) go at once.

use super::{family_of, Rib, FORCE_PURGE};
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::Map;
use crate::messages::{PeerId, PeerInfo, Retention, StaleSet};
use crate::route::{RouteAttrs, LLGR_STALE, NO_LLGR};
use bgp_proto::{Family, FamilySet};

/// The stale paths of a peer whose session ended while graceful restart was
/// negotiated; they keep forwarding until the peer's End-of-RIB or the deadline.
pub(super) struct StalePeer {
    pub(super) info: PeerInfo,
    pub(super) of: PeerId,
    pub(super) families: FamilySet,
    pub(super) deadline: std::time::Instant,
    /// The peer's session is back: the deadline is `stale_routes_time`, not the restart time.
    pub(super) reconnected: bool,
    /// Families kept after the restart time as LLGR_STALE (RFC 9494), and for how long.
    pub(super) long_lived: FamilySet,
    pub(super) long_lived_time: std::time::Duration,
    /// The restart time is over: what is left is LLGR_STALE.
    pub(super) long_lived_phase: bool,
}

impl Rib {
    /// When the earliest stale set runs out.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        let deferral = self.deferring.as_ref().map(|d| d.until);
        self.stale_peers.values().map(|g| g.deadline).chain(deferral).min()
    }

    /// At a stale set's deadline: after the restart time of a peer that is
    /// not back, its long-lived families become LLGR_STALE (RFC 9494 §4.2);
    /// otherwise its stale paths go (RFC 4724 §4.2).
    pub fn expire(&mut self, now: std::time::Instant) {
        self.check_deferral(now);
        let expired: Vec<PeerId> = self
            .stale_peers
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let long_lived = self
                .stale_peers
                .get(&id)
                .filter(|s| !s.reconnected && !s.long_lived_phase && !s.long_lived.is_empty())
                .map(|s| (s.long_lived.clone(), s.long_lived_time));
            match long_lived {
                Some((families, time)) => self.enter_long_lived(id, families, now + time),
                None => {
                    if let Some(g) = self.stale_peers.remove(&id) {
                        tracing::info!(peer = %g.info.name, "graceful restart: time over, removing stale routes");
                    }
                    self.remove_paths(id, None);
                }
            }
        }
    }

    /// RFC 9494 §4.2: paths of `families` stay, marked with the LLGR_STALE
    /// community, until `deadline`; those with NO_LLGR and those of other
    /// families go now.
    fn enter_long_lived(&mut self, id: PeerId, families: FamilySet, deadline: std::time::Instant) {
        let mut marked: Map<usize, Arc<RouteAttrs>> = Map::default();
        let mut removed = 0usize;
        let prefixes: Vec<IpNetwork> = self.loc.keys().copied().collect();
        for prefix in prefixes {
            let keep_family = families.contains(family_of(&prefix));
            let Some(paths) = self.loc.get(&prefix) else { continue };
            if !paths.iter().any(|p| p.peer == id) {
                continue;
            }
            let mut new_paths = paths.paths.clone();
            new_paths.retain(|p| p.peer != id || (keep_family && !p.attrs.communities.contains(&NO_LLGR)));
            removed += paths.len() - new_paths.len();
            for p in new_paths.iter_mut().filter(|p| p.peer == id) {
                let key = Arc::as_ptr(&p.attrs) as usize;
                let stale = match marked.get(&key) {
                    Some(a) => a.clone(),
                    None => {
                        let mut a = (*p.attrs).clone();
                        if !a.communities.contains(&LLGR_STALE) {
                            a.communities.push(LLGR_STALE);
                        }
                        let a = self.intern(a);
                        marked.insert(key, a.clone());
                        a
                    }
                };
                p.attrs = stale;
            }
            if let Some(entry) = self.loc.get_mut(&prefix) {
                entry.paths = new_paths;
            }
            self.loc.mark_dirty(&prefix);
        }
        if removed > 0 || !marked.is_empty() {
            self.released_since_purge += FORCE_PURGE;
        }
        if let Some(s) = self.stale_peers.get_mut(&id) {
            tracing::info!(peer = %s.info.name, "long-lived graceful restart: routes kept as LLGR_STALE");
            s.long_lived_phase = true;
            s.families = families;
            s.deadline = deadline;
        }
    }

    /// Removes the paths of `id` (only of `families` when given).
    pub(super) fn remove_paths(&mut self, id: PeerId, families: Option<&FamilySet>) {
        self.loc.change_each(|entry| {
            if families.is_some_and(|f| !f.contains(family_of(&entry.prefix))) {
                return false;
            }
            let before = entry.len();
            entry.retain(|p| p.peer != id);
            entry.len() != before
        });
        self.released_since_purge += FORCE_PURGE;
    }

    /// The session of a peer that announced graceful restart ended without a
    /// NOTIFICATION: its routes of `families` stay (stale) for `restart_time`.
    pub(super) fn peer_down_graceful(&mut self, id: PeerId, retention: Retention) {
        let Retention {
            families,
            restart_time,
            long_lived,
            long_lived_time,
        } = retention;
        self.forget_exports_of(id);
        let Some(state) = self.peers.remove(&id) else {
            return;
        };
        self.eor_owed -= state.eor_owed();
        // RFC 4724 §4.2: "To deal with possible consecutive restarts, a route
        // (from the peer) previously marked as stale MUST be deleted."
        self.drop_stale_of(id, None);
        let stale_id = self.next_stale_id;
        self.next_stale_id = PeerId(self.next_stale_id.0 - 1);
        tracing::info!(peer = %state.info.name, "graceful restart: keeping its routes as stale for {restart_time:?}");
        self.loc.change_each(|entry| {
            let keep = families.contains(family_of(&entry.prefix));
            let before = entry.len();
            entry.retain(|p| p.peer != id || keep);
            for p in entry.iter_mut().filter(|p| p.peer == id) {
                p.peer = stale_id;
            }
            entry.len() != before
        });
        self.stale_peers.insert(
            stale_id,
            StalePeer {
                info: state.info,
                of: id,
                families,
                deadline: std::time::Instant::now() + restart_time,
                reconnected: false,
                long_lived,
                long_lived_time,
                long_lived_phase: false,
            },
        );
        self.check_converged();
    }

    /// RFC 4724 §4.2: the restarted peer's End-of-RIB for `family` ends the
    /// stale paths of that family.
    pub(super) fn end_stale_family(&mut self, peer: PeerId, family: Family) {
        let only: FamilySet = [family].into_iter().collect();
        self.drop_stale_of(peer, Some(&only));
    }

    /// The peer of some stale paths is back (RFC 4724 §4.2): the restart timer
    /// stops; families it did not preserve forwarding state for (F bit clear,
    /// family missing, or no GR capability at all) lose their stale paths now;
    /// the rest wait for its End-of-RIB, at most `stale_routes_time`.
    pub(super) fn stale_peer_back(&mut self, info: &PeerInfo) {
        let preserved = info.graceful_restart.as_ref().map(|gr| gr.forwarding.clone());
        let gone: Vec<Family> = self
            .stale_peers
            .values()
            .filter(|s| s.of == info.id)
            .flat_map(|s| s.families.iter())
            .filter(|f| !preserved.as_ref().is_some_and(|p| p.contains(*f)))
            .collect();
        for family in gone {
            tracing::info!(peer = %info.name, "graceful restart: {family} not preserved in the new session, removing its stale routes");
            let only: FamilySet = [family].into_iter().collect();
            self.drop_stale_of(info.id, Some(&only));
        }
        let deadline = std::time::Instant::now() + self.cfg.stale_routes_time;
        for s in self
            .stale_peers
            .values_mut()
            .filter(|s| s.of == info.id && !s.reconnected)
        {
            s.reconnected = true;
            s.deadline = deadline;
        }
    }

    /// Deletes the stale paths kept for `peer` (of `families`, or all).
    fn drop_stale_of(&mut self, peer: PeerId, families: Option<&FamilySet>) {
        let ids: Vec<PeerId> = self
            .stale_peers
            .iter()
            .filter(|(_, s)| s.of == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove_paths(id, families);
            if let Some(s) = self.stale_peers.get_mut(&id) {
                s.families = match families {
                    Some(f) => s.families.iter().filter(|x| !f.contains(*x)).collect(),
                    None => FamilySet::new(),
                };
                if s.families.is_empty() {
                    self.stale_peers.remove(&id);
                }
            }
        }
    }

    /// Stale paths kept per peer, for the front ends.
    pub(super) fn stale_sets(&self, now: std::time::Instant) -> Vec<StaleSet> {
        let mut out: Vec<StaleSet> = Vec::new();
        for (id, s) in &self.stale_peers {
            let paths = self
                .loc
                .values()
                .map(|p| p.iter().filter(|p| p.peer == *id).count())
                .sum();
            out.push(StaleSet {
                peer: s.of,
                paths,
                remaining: s.deadline.saturating_duration_since(now),
                reconnected: s.reconnected,
            });
        }
        out.sort_by_key(|s| s.peer);
        out
    }
}
