//! What the front ends see of a session: a status cell the session task
//! writes and `ternctl`, the BIRD socket and metrics read.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bgp_proto::fsm::State;
use bgp_proto::Family;

/// A session's state and counters (the settings are in [`super::PeerSettings`]).
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub state: State,
    /// When the current state began.
    pub since: Instant,
    /// The same moment as seconds since the Unix epoch.
    pub since_unix: u64,
    pub last_error: Option<String>,
    /// Negotiated hold time (RFC 4271 §4.2), once Established.
    pub hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    /// The peer's host name (FQDN capability), if it sent one.
    pub peer_hostname: Option<String>,
    /// Families negotiated on the session.
    pub families: Vec<Family>,
    /// Both sides announced graceful restart on the session (RFC 4724).
    pub graceful_restart: bool,
    pub local_address: Option<IpAddr>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    /// UPDATEs that got an RFC 7606 treatment.
    pub malformed_updates: u64,
    /// Disabled by an operator (`ternctl peer disable`).
    pub disabled: bool,
}

impl Default for PeerStatus {
    fn default() -> PeerStatus {
        PeerStatus {
            state: State::Idle,
            since: Instant::now(),
            since_unix: unix_now(),
            last_error: None,
            hold_time: None,
            peer_router_id: None,
            peer_hostname: None,
            families: Vec::new(),
            graceful_restart: false,
            local_address: None,
            messages_in: 0,
            messages_out: 0,
            updates_in: 0,
            malformed_updates: 0,
            disabled: false,
        }
    }
}

impl PeerStatus {
    /// Moves to `state`, restarting the clock only when it changes.
    pub(crate) fn set_state(&mut self, state: State) {
        if self.state != state {
            self.state = state;
            self.since = Instant::now();
            self.since_unix = unix_now();
        }
    }
}

/// The shared cell: the session task writes, everyone else reads copies.
#[derive(Clone, Debug, Default)]
pub struct StatusCell(Arc<Mutex<PeerStatus>>);

impl StatusCell {
    /// A copy of the current status.
    pub fn get(&self) -> PeerStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut PeerStatus) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
