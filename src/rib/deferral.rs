//! Selection deferral after our own restart (RFC 4724 §4.1): "the Restarting
//! Speaker MUST defer route selection for an address family until it either
//! (a) receives the End-of-RIB marker from all its peers … or (b) the
//! Selection_Deferral_Timer … has expired". Until then no peer is sent our
//! table or End-of-RIB, so helpers keep the routes they had from us instead
//! of replacing them with a partial table (what makes a restarting reflector
//! safe). Peers are those up before the restart; a peer that itself
//! restarted (R bit) is not waited for and not held back (RFC 4724 §4.2).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Rib;
use crate::messages::PeerId;

/// What a restarting RIB waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferral {
    /// Peers whose End-of-RIB ends the deferral (those up before the restart).
    pub wait_for: HashSet<IpAddr>,
    /// `[graceful_restart] select_defer_time`.
    pub time: Duration,
}

/// A deferral in progress.
pub(super) struct Deferring {
    wait_for: HashSet<IpAddr>,
    pub(super) until: Instant,
}

impl Deferring {
    pub(super) fn new(d: &Deferral, now: Instant) -> Deferring {
        Deferring {
            wait_for: d.wait_for.clone(),
            until: now + d.time,
        }
    }
}

impl Rib {
    /// True while nothing may be sent to `peer`: our selection is deferred
    /// and the peer did not restart itself.
    pub(super) fn held_back(&self, peer: PeerId) -> bool {
        self.deferring.is_some()
            && !self
                .peers
                .get(&peer)
                .and_then(|p| p.info.graceful_restart.as_ref())
                .is_some_and(|gr| gr.restarting)
    }

    /// Whether the selection is still deferred.
    pub fn deferring(&self) -> bool {
        self.deferring.is_some()
    }

    /// Ends the deferral once every awaited peer is back and has sent
    /// End-of-RIB for its families (one that came back without graceful
    /// restart is not waited for), or at the deadline; then every peer gets
    /// the table and End-of-RIB.
    pub(super) fn check_deferral(&mut self, now: Instant) {
        let Some(d) = &self.deferring else { return };
        let ready = |addr: &IpAddr| {
            self.peers.values().any(|p| {
                p.info.address == *addr
                    && (p.info.graceful_restart.is_none() || p.info.families.iter().all(|f| p.eor_received.contains(f)))
            })
        };
        let timed_out = now >= d.until;
        if !timed_out && !d.wait_for.iter().all(ready) {
            return;
        }
        if timed_out {
            tracing::info!("graceful restart: selection deferral timer expired, sending routes");
        } else {
            tracing::info!("graceful restart: End-of-RIB from every peer, sending routes");
        }
        self.deferring = None;
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.send_pending(id);
        }
    }
}
