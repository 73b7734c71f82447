//! Graceful restart, receiving side (RFC 4724 §4.2): the paths of a peer
//! whose session ended without a NOTIFICATION stay, stale, under an id of
//! their own until the peer's End-of-RIB or the restart time.

use super::{family_of, Rib, FORCE_PURGE};
use crate::messages::{PeerId, PeerInfo};
use bgp_proto::{Family, FamilySet};

/// The stale paths of a peer whose session ended while graceful restart was
/// negotiated; they keep forwarding until the peer's End-of-RIB or the deadline.
pub(super) struct StalePeer {
    pub(super) info: PeerInfo,
    pub(super) of: PeerId,
    pub(super) families: FamilySet,
    pub(super) deadline: std::time::Instant,
}

impl Rib {
    /// When the earliest stale set runs out.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        self.stale_peers.values().map(|g| g.deadline).min()
    }

    /// Drops stale paths whose restart time is over (RFC 4724 §4.2).
    pub fn expire(&mut self, now: std::time::Instant) {
        let expired: Vec<PeerId> = self
            .stale_peers
            .iter()
            .filter(|(_, g)| g.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(g) = self.stale_peers.remove(&id) {
                tracing::info!(peer = %g.info.name, "graceful restart: restart time over, removing stale routes");
            }
            self.remove_paths(id, None);
        }
    }

    /// Removes the paths of `id` (only of `families` when given).
    pub(super) fn remove_paths(&mut self, id: PeerId, families: Option<&FamilySet>) {
        for (prefix, paths) in self.loc.iter_mut() {
            if families.is_some_and(|f| !f.contains(family_of(prefix))) {
                continue;
            }
            let before = paths.len();
            paths.retain(|p| p.peer != id);
            if paths.len() != before {
                self.dirty.insert(*prefix);
            }
        }
        self.released_since_purge += FORCE_PURGE;
    }

    /// The session of a peer that announced graceful restart ended without a
    /// NOTIFICATION: its routes of `families` stay (stale) for `restart_time`.
    pub(super) fn peer_down_graceful(&mut self, id: PeerId, families: FamilySet, restart_time: std::time::Duration) {
        let Some(state) = self.peers.remove(&id) else {
            return;
        };
        let stale_id = self.next_stale_id;
        self.next_stale_id = PeerId(self.next_stale_id.0 - 1);
        tracing::info!(peer = %state.info.name, "graceful restart: keeping its routes as stale for {restart_time:?}");
        for (prefix, paths) in self.loc.iter_mut() {
            let keep = families.contains(family_of(prefix));
            let before = paths.len();
            paths.retain(|p| p.peer != id || keep);
            for p in paths.iter_mut().filter(|p| p.peer == id) {
                p.peer = stale_id;
            }
            if paths.len() != before {
                self.dirty.insert(*prefix);
            }
        }
        self.stale_peers.insert(
            stale_id,
            StalePeer {
                info: state.info,
                of: id,
                families,
                deadline: std::time::Instant::now() + restart_time,
            },
        );
        self.check_converged();
    }

    /// RFC 4724 §4.2: the restarted peer's End-of-RIB for `family` ends the
    /// stale paths of that family.
    pub(super) fn end_stale_family(&mut self, peer: PeerId, family: Family) {
        let stale: Vec<PeerId> = self
            .stale_peers
            .iter()
            .filter(|(_, s)| s.of == peer && s.families.contains(family))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let only: FamilySet = [family].into_iter().collect();
            self.remove_paths(id, Some(&only));
            if let Some(s) = self.stale_peers.get_mut(&id) {
                s.families = s.families.iter().filter(|f| *f != family).collect();
                if s.families.is_empty() {
                    self.stale_peers.remove(&id);
                }
            }
        }
    }
}
