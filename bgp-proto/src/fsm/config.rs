//! What the FSM is configured with ([`FsmConfig`]) and the session state it
//! reports ([`State`], RFC 4271 §8.2.2).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::capability::{Capability, Role};
use crate::types::Family;

/// Session parameters for one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub local_id: Ipv4Addr,
    /// Hold time we offer: 0 (no keepalives, no hold timer) or >= 3 seconds.
    /// 1 and 2 are invalid (RFC 4271 §4.2) and are raised to 3.
    pub hold_time: u16,
    /// Keepalive interval for our offered hold time; scaled down in proportion
    /// when a lower hold time is negotiated. `None` (or 0): a third of the hold time.
    pub keepalive_time: Option<u16>,
    pub connect_retry_time: Duration,
    /// RFC 4271 §8.1.1 DelayOpen: wait this long after TCP is up before sending OPEN.
    pub delay_open: Option<Duration>,
    /// Never initiate TCP; only accept (RFC 4271 §8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    /// Capabilities sent in our OPEN. The FSM appends `Role(role)` if `role`
    /// is set and no Role capability is present; everything else (FourOctetAs,
    /// Multiprotocol, ...) is the caller's choice.
    pub capabilities: Vec<Capability>,
    /// Seed for RFC 4271 §10 jitter (timers scaled by a factor in [0.75, 1.0]).
    /// Mix in the peer's address so that the sessions of one daemon do not
    /// jitter in lockstep.
    pub jitter_seed: u64,
    /// Wait before an automatic restart after a failure; doubles per
    /// consecutive failure up to `max_idle_hold_time` (RFC 4271 §8.1.1
    /// DampPeerOscillations). The count is forgotten once a session has stayed
    /// Established for at least `max_idle_hold_time`.
    pub idle_hold_time: Duration,
    pub max_idle_hold_time: Duration,
    /// Our BGP role (RFC 9234).
    pub role: Option<Role>,
    /// RFC 9234 §4.2 strict mode: reject a peer that sends no Role capability.
    pub strict_role: bool,
}

impl FsmConfig {
    /// A configuration with the usual defaults: hold 90 s, connect retry 120 s
    /// (RFC 4271 §10), idle hold 5 s doubling up to 120 s, and the capabilities
    /// IPv4 unicast, route refresh and 4-octet AS.
    pub fn new(local_asn: u32, peer_asn: u32, local_id: Ipv4Addr) -> FsmConfig {
        FsmConfig {
            local_asn,
            peer_asn,
            local_id,
            hold_time: 90,
            keepalive_time: None,
            connect_retry_time: Duration::from_secs(120),
            delay_open: None,
            passive: false,
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(local_asn),
            ],
            jitter_seed: u64::from(u32::from(local_id)) ^ 0x5eed,
            idle_hold_time: Duration::from_secs(5),
            max_idle_hold_time: Duration::from_secs(120),
            role: None,
            strict_role: false,
        }
    }
}

/// Session state (RFC 4271 §8.2.2). With two connections, the state of the
/// more advanced one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }

    /// FSM Error subcode for an unexpected message in this state (RFC 6608 §3).
    pub(super) fn fsm_error_subcode(self) -> u8 {
        match self {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            State::Established => 3,
            _ => 0,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
