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
    /// When the session last came up or went down: connect retries of a
    /// down peer do not move it (as BIRD's and FRR's up/down time).
    pub since: Instant,
    /// The same moment as seconds since the Unix epoch.
    pub since_unix: u64,
    pub last_error: Option<String>,
    /// The last NOTIFICATION sent or received and why, kept while retries
    /// set `last_error` (a connect error does not hide why the session ended).
    pub last_notification: Option<String>,
    /// Negotiated hold time (RFC 4271 §4.2), once Established.
    pub hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    /// The peer's host name (FQDN capability), if it sent one.
    pub peer_hostname: Option<String>,
    /// Families negotiated on the session.
    pub families: Vec<Family>,
    /// Capabilities both sides use on the session, readable (`show peer NAME`).
    pub capabilities: Vec<String>,
    /// Our KEEPALIVE interval on the session, seconds.
    pub keepalive_time: Option<u16>,
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
            last_notification: None,
            hold_time: None,
            peer_router_id: None,
            peer_hostname: None,
            families: Vec::new(),
            capabilities: Vec::new(),
            keepalive_time: None,
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
    /// Moves to `state`; the clock restarts when the session comes up or goes down.
    pub(crate) fn set_state(&mut self, state: State) {
        if (self.state == State::Established) != (state == State::Established) {
            self.since = Instant::now();
            self.since_unix = unix_now();
        }
        self.state = state;
    }
}

/// The capabilities a session runs with, as `show peer NAME` lists them.
pub(crate) fn capability_names(n: &bgp_proto::fsm::Negotiated) -> Vec<String> {
    let mut out = Vec::new();
    let mut flag = |on: bool, name: &str| {
        if on {
            out.push(name.to_string());
        }
    };
    flag(n.four_octet_as, "4-octet AS (RFC 6793)");
    flag(n.route_refresh, "route refresh (RFC 2918)");
    flag(n.enhanced_route_refresh, "enhanced route refresh (RFC 7313)");
    flag(n.extended_message, "extended message (RFC 8654)");
    flag(n.graceful_restart.is_some(), "graceful restart (RFC 4724)");
    flag(n.graceful_notification, "graceful restart notification (RFC 8538)");
    flag(!n.llgr.is_empty(), "long-lived graceful restart (RFC 9494)");
    flag(!n.extended_next_hop.is_empty(), "extended next hop (RFC 8950)");
    out.extend(n.add_path_send.iter().map(|f| format!("ADD-PATH send {f} (RFC 7911)")));
    out.extend(
        n.add_path_receive
            .iter()
            .map(|f| format!("ADD-PATH receive {f} (RFC 7911)")),
    );
    if let Some(role) = n.peer_role {
        out.push(format!("role: peer is {} (RFC 9234)", role.as_str()));
    }
    out
}

/// The shared cell: the session task writes, everyone else reads copies.
#[derive(Clone, Debug, Default)]
pub struct StatusCell(Arc<Mutex<PeerStatus>>);

impl StatusCell {
    /// A copy of the current status.
    pub fn get(&self) -> PeerStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the current status in place, without copying it.
    pub fn with<R>(&self, f: impl FnOnce(&PeerStatus) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: a down peer's connect retries (Idle, Connect, Active, …) do
    /// not move SINCE; coming up and going down do.
    #[test]
    fn since_moves_only_when_the_session_comes_up_or_goes_down() {
        let mut st = PeerStatus::default();
        let start = st.since;
        for s in [State::Connect, State::Active, State::OpenSent, State::OpenConfirm] {
            st.set_state(s);
            assert_eq!(st.since, start, "{s:?}");
        }
        st.set_state(State::Established);
        let up = st.since;
        assert!(up >= start);
        st.set_state(State::Idle);
        let down = st.since;
        assert!(down >= up);
        for s in [State::Connect, State::Idle, State::Active, State::Idle] {
            st.set_state(s);
            assert_eq!((st.since, st.state), (down, s));
        }
    }
}
