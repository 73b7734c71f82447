//! RFC 4271 §8 session finite state machine, sans-IO.
//!
//! The caller owns sockets and timers; the FSM only decides. Every input is an
//! [`Event`] plus the current time, every output an [`Action`]:
//!
//! ```text
//!   TCP / decoded messages / timer expiries --Event--> Fsm::handle(event, now)
//!                                                           |
//!   Connect, SendOpen, StartTimer(Hold(c), 90s), Established, ... <--Vec<Action>
//! ```
//!
//! The FSM tracks up to two TCP connections at once (one we initiated, one the
//! peer initiated) so that a connection collision (RFC 4271 §6.8) is resolved
//! by BGP identifier. Timers that belong to a connection carry its [`ConnId`];
//! a timer expiry that arrives after the timer was stopped or re-armed is
//! recognised by its deadline and ignored, so callers need not worry about
//! races between their timer wheel and [`Action::StopTimer`].
//!
//! Randomness (RFC 4271 §10 jitter) comes from a small xorshift generator
//! seeded by [`FsmConfig::jitter_seed`], so a run is reproducible.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::capability::{AddPathMode, Capability, ExtendedNextHop, GracefulRestart, LlgrFamily, Role};
use crate::error::{code, DecodeError};
use crate::framing::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use crate::notification::{cease, Notification};
use crate::open::{Open, AS_TRANS};
use crate::types::{Context, Family, FamilySet};

/// Hold timer while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large
/// value", suggested 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// How early a timer expiry may be reported and still count: callers' timer
/// wheels round, and a stale expiry is always far earlier than the new deadline.
const TIMER_SLACK: Duration = Duration::from_millis(100);

/// Capability code some older routers use for route refresh (pre-RFC 2918).
const ROUTE_REFRESH_OLD: u8 = 128;

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
    fn fsm_error_subcode(self) -> u8 {
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

/// Identifies a TCP connection. Outgoing ids come from the FSM (in
/// [`Action::Connect`]); incoming ones from [`Fsm::new_conn_id`], so they never clash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We connected to the peer.
    Outgoing,
    /// The peer connected to us.
    Incoming,
}

/// A timer the caller runs on the FSM's behalf. Per-connection timers carry
/// the connection, because during a collision two connections each have their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    /// RFC 4271 §8.1.1 IdleHoldTimer: backoff before an automatic restart.
    IdleHold,
    Hold(ConnId),
    Keepalive(ConnId),
    DelayOpen(ConnId),
}

impl Timer {
    /// The event to feed back when this timer fires.
    pub fn expiry_event(self) -> Event {
        match self {
            Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
            Timer::IdleHold => Event::IdleHoldTimerExpires,
            Timer::Hold(c) => Event::HoldTimerExpires(c),
            Timer::Keepalive(c) => Event::KeepaliveTimerExpires(c),
            Timer::DelayOpen(c) => Event::DelayOpenTimerExpires(c),
        }
    }
}

/// Inputs to the FSM, numbered as in RFC 4271 §8.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Event 1: ManualStart (operator). Also clears the restart backoff.
    ManualStart,
    /// Event 2: ManualStop. Sends Cease/Administrative Shutdown; no automatic restart.
    ManualStop,
    /// Event 2 with an RFC 9003 shutdown communication in the Cease.
    ManualStopWithMessage(String),
    /// Event 3: AutomaticStart (Event 5, passive, when `FsmConfig::passive`).
    AutomaticStart,
    /// Event 8: AutomaticStop. Sends the given NOTIFICATION (e.g. Cease 6/1
    /// maximum prefixes) and restarts after the idle hold backoff.
    AutomaticStop(Notification),
    /// Event 9: ConnectRetryTimer_Expires.
    ConnectRetryTimerExpires,
    /// Event 10: HoldTimer_Expires.
    HoldTimerExpires(ConnId),
    /// Event 11: KeepaliveTimer_Expires.
    KeepaliveTimerExpires(ConnId),
    /// Event 12: DelayOpenTimer_Expires.
    DelayOpenTimerExpires(ConnId),
    /// Event 13: IdleHoldTimer_Expires.
    IdleHoldTimerExpires,
    /// Event 16: Tcp_CR_Acked — our outgoing connection is up.
    TcpCrAcked(ConnId),
    /// Event 17: TcpConnectionConfirmed — the peer connected to us.
    TcpConnectionConfirmed(ConnId),
    /// Event 18: TcpConnectionFails (also: closed by the peer).
    TcpConnectionFails(ConnId),
    /// Events 19/20: BGPOpen (20 when the DelayOpen timer runs).
    BgpOpen(ConnId, Open),
    /// Event 21: BGPHeaderErr.
    BgpHeaderErr(ConnId, DecodeError),
    /// Event 22: BGPOpenMsgErr.
    BgpOpenMsgErr(ConnId, DecodeError),
    /// Events 24/25: NotifMsgVerErr / NotifMsg.
    NotifMsg(ConnId, Notification),
    /// Event 26: KeepAliveMsg.
    KeepAliveMsg(ConnId),
    /// Event 27: UpdateMsg.
    UpdateMsg(ConnId),
    /// Event 28: UpdateMsgErr (an UPDATE that must reset the session).
    UpdateMsgErr(ConnId, DecodeError),
    /// A ROUTE-REFRESH (RFC 2918; no RFC 4271 number): counts as liveness like Event 27.
    RouteRefreshMsg(ConnId),
}

/// Outputs: what the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open an outgoing TCP connection to the peer under this id.
    Connect(ConnId),
    SendOpen(ConnId, Open),
    SendKeepalive(ConnId),
    SendNotification(ConnId, Notification),
    /// Close the connection (after flushing what was queued on it).
    CloseConnection(ConnId),
    /// (Re)start a timer: it fires `Duration` from the `now` of this call.
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// The session is up on this connection: exchange routes with these parameters.
    Established(ConnId, Box<Negotiated>),
    /// The session went to Idle (from Established, or a failed attempt):
    /// drop the peer's routes.
    SessionDown {
        reason: DownReason,
    },
}

/// Why an OPEN was refused (RFC 4271 §6.2, RFC 6793, RFC 6286, RFC 9234).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported BGP version {0}")]
    Version(u8),
    #[error("peer AS {got}, expected {expected}")]
    BadPeerAs { expected: u32, got: u32 },
    #[error("4-octet AS {asn} does not match {my_as} in the 2-octet AS field")]
    InconsistentAs { asn: u32, my_as: u16 },
    #[error("BGP identifier {0} is not valid")]
    InvalidBgpId(Ipv4Addr),
    #[error("peer uses our BGP identifier {0} on an iBGP session")]
    SameBgpId(Ipv4Addr),
    #[error("unacceptable hold time {0}")]
    HoldTime(u16),
    #[error("role mismatch: we are {}, peer is {}", .local.as_str(), .peer.map_or("unset", Role::as_str))]
    RoleMismatch { local: Role, peer: Option<Role> },
    #[error("peer sent conflicting roles")]
    ConflictingRoles,
}

impl OpenError {
    /// The NOTIFICATION this refusal is reported with.
    pub fn notification(&self) -> Notification {
        match self {
            // RFC 4271 §6.2: the data is the largest supported version, 2 octets.
            OpenError::Version(_) => Notification {
                code: code::OPEN_MESSAGE,
                subcode: 1,
                data: vec![0, 4],
            },
            OpenError::BadPeerAs { .. } | OpenError::InconsistentAs { .. } => Notification::new(code::OPEN_MESSAGE, 2),
            OpenError::InvalidBgpId(_) | OpenError::SameBgpId(_) => Notification::new(code::OPEN_MESSAGE, 3),
            OpenError::HoldTime(_) => Notification::new(code::OPEN_MESSAGE, 6),
            OpenError::RoleMismatch { .. } | OpenError::ConflictingRoles => Notification::new(code::OPEN_MESSAGE, 11),
        }
    }
}

/// Why a session (or an attempt at one) ended; `Display` is the log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// ManualStop, with the RFC 9003 text if one was given.
    ManualStop(Option<String>),
    /// AutomaticStop with the NOTIFICATION that was sent.
    AutomaticStop(Notification),
    /// No KEEPALIVE/UPDATE within the hold time; 4/0 sent.
    HoldTimerExpired,
    /// The TCP connection failed or was closed by the peer.
    ConnectionClosed,
    NotificationReceived(Notification),
    /// A message failed to decode; `to_notification()` of it was sent.
    InvalidMessage(DecodeError),
    /// The peer's OPEN was refused; `notification()` of it was sent.
    OpenRejected(OpenError),
    /// A message not allowed in `state` arrived; FSM Error 5/x sent (RFC 6608).
    UnexpectedMessage {
        state: State,
        message: &'static str,
    },
}

impl DownReason {
    /// The NOTIFICATION we sent, if any.
    pub fn notification_sent(&self) -> Option<Notification> {
        match self {
            DownReason::ManualStop(Some(m)) => Some(Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, m)),
            DownReason::ManualStop(None) => Some(Notification::new(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN)),
            DownReason::AutomaticStop(n) => Some(n.clone()),
            DownReason::HoldTimerExpired => Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0)),
            DownReason::ConnectionClosed | DownReason::NotificationReceived(_) => None,
            DownReason::InvalidMessage(e) => Some(e.to_notification()),
            DownReason::OpenRejected(e) => Some(e.notification()),
            DownReason::UnexpectedMessage { state, .. } => {
                Some(Notification::new(code::FSM, state.fsm_error_subcode()))
            }
        }
    }
}

/// ": text" for a shutdown communication, " data 0a0b.." for other data.
fn notification_detail(n: &Notification) -> String {
    match n.shutdown_message() {
        Some("") => String::new(),
        Some(text) => format!(": {text}"),
        None if n.data.is_empty() => String::new(),
        None => {
            let hex: String = n.data.iter().take(32).map(|b| format!("{b:02x}")).collect();
            let more = if n.data.len() > 32 { ".." } else { "" };
            format!(" data {hex}{more}")
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sent = self
            .notification_sent()
            .map(|n| format!("sent NOTIFICATION {}", n.describe()))
            .unwrap_or_default();
        match self {
            DownReason::ManualStop(None) => write!(f, "administrative shutdown, {sent}"),
            DownReason::ManualStop(Some(m)) if m.is_empty() => {
                write!(f, "administrative shutdown, {sent}")
            }
            DownReason::ManualStop(Some(m)) => {
                write!(f, "administrative shutdown, {sent}: {m}")
            }
            DownReason::AutomaticStop(n) => {
                write!(f, "stopped, {sent}{}", notification_detail(n))
            }
            DownReason::HoldTimerExpired => write!(f, "hold timer expired, {sent}"),
            DownReason::ConnectionClosed => f.write_str("connection closed"),
            DownReason::NotificationReceived(n) => {
                write!(f, "received NOTIFICATION {}{}", n.describe(), notification_detail(n))
            }
            DownReason::InvalidMessage(e) => write!(f, "{e}, {sent}"),
            DownReason::OpenRejected(e) => write!(f, "rejected OPEN: {e}, {sent}"),
            DownReason::UnexpectedMessage { state, message } => {
                write!(f, "unexpected {message} in {state}, {sent}")
            }
        }
    }
}

/// What both OPENs agreed on (RFC 4271 §4.2, RFC 5492 and the capability RFCs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS (from its 4-octet AS capability if present).
    pub peer_asn: u32,
    pub peer_id: Ipv4Addr,
    /// min(ours, theirs); 0 means no keepalives and no hold timer.
    pub hold_time: u16,
    /// Our KEEPALIVE interval in seconds (0 when `hold_time` is 0).
    pub keepalive_time: u16,
    /// Both sent the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Multiprotocol families both announced; IPv4 unicast for a side that
    /// announced none (RFC 4760 §8).
    pub families: FamilySet,
    /// Families for which we send path identifiers (RFC 7911 §4).
    pub add_path_send: FamilySet,
    /// Families for which we receive path identifiers.
    pub add_path_receive: FamilySet,
    /// Both sent the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// The peer accepts ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// The peer supports enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability (RFC 4724), families limited to `families`.
    pub graceful_restart: Option<GracefulRestart>,
    /// Both announced graceful restart with the N bit (RFC 8538): a NOTIFICATION
    /// other than Hard Reset keeps the routes like a lost connection does.
    pub graceful_notification: bool,
    /// The peer's long-lived graceful restart families (RFC 9494), limited to `families`.
    pub llgr: Vec<LlgrFamily>,
    /// Extended next hop entries both announced (RFC 8950).
    pub extended_next_hop: Vec<ExtendedNextHop>,
    pub peer_hostname: Option<String>,
    pub peer_domain: Option<String>,
    /// The peer's BGP role (RFC 9234).
    pub peer_role: Option<Role>,
    /// The peer's OPEN as received (for `show protocols all`).
    pub peer_open: Open,
}

/// Multiprotocol families of an OPEN; IPv4 unicast if it has none (RFC 4760 §8).
fn mp_families(open: &Open) -> FamilySet {
    let set: FamilySet = open
        .capabilities()
        .filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    if set.is_empty() {
        [Family::IPV4_UNICAST].into_iter().collect()
    } else {
        set
    }
}

/// ADD-PATH mode announced for `family` (first mention wins).
fn add_path_mode(open: &Open, family: Family) -> Option<AddPathMode> {
    open.capabilities().find_map(|c| match c {
        Capability::AddPath(entries) => entries.iter().find(|(f, _)| *f == family).map(|(_, mode)| *mode),
        _ => None,
    })
}

fn has_cap(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities().any(pred)
}

fn extended_next_hops(open: &Open) -> impl Iterator<Item = &ExtendedNextHop> {
    open.capabilities()
        .filter_map(|c| match c {
            Capability::ExtendedNextHop(e) => Some(e.iter()),
            _ => None,
        })
        .flatten()
}

impl Negotiated {
    /// Computes the session parameters from our OPEN and the peer's. The
    /// keepalive interval is a third of the hold time; the FSM applies the
    /// configured one.
    pub fn new(local: &Open, peer: &Open) -> Negotiated {
        let theirs = mp_families(peer);
        let families: FamilySet = mp_families(local).iter().filter(|f| theirs.contains(*f)).collect();
        let mut add_path_send = FamilySet::new();
        let mut add_path_receive = FamilySet::new();
        for f in families.iter() {
            if let (Some(ours), Some(theirs)) = (add_path_mode(local, f), add_path_mode(peer, f)) {
                if ours.can_send() && theirs.can_receive() {
                    add_path_send.insert(f);
                }
                if ours.can_receive() && theirs.can_send() {
                    add_path_receive.insert(f);
                }
            }
        }
        let both = |pred: fn(&Capability) -> bool| has_cap(local, pred) && has_cap(peer, pred);
        let graceful_restart = peer.capabilities().find_map(|c| match c {
            Capability::GracefulRestart(gr) => {
                let mut gr = gr.clone();
                gr.families.retain(|f| families.contains(f.family));
                Some(gr)
            }
            _ => None,
        });
        let llgr = peer
            .capabilities()
            .filter_map(|c| match c {
                Capability::LongLivedGracefulRestart(e) => Some(e.iter()),
                _ => None,
            })
            .flatten()
            .filter(|e| families.contains(e.family))
            .copied()
            .collect();
        let extended_next_hop = extended_next_hops(local)
            .filter(|e| extended_next_hops(peer).any(|p| p == *e))
            .copied()
            .collect();
        let (peer_hostname, peer_domain) = peer
            .capabilities()
            .find_map(|c| match c {
                Capability::Fqdn { hostname, domain } => {
                    let text = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
                    Some((text(hostname), text(domain)))
                }
                _ => None,
            })
            .unwrap_or((None, None));
        let peer_role = peer.capabilities().find_map(|c| match c {
            Capability::Role(r) => Some(*r),
            _ => None,
        });
        let hold_time = local.hold_time.min(peer.hold_time);
        Negotiated {
            peer_asn: peer.asn(),
            peer_id: peer.bgp_id,
            hold_time,
            keepalive_time: hold_time / 3,
            four_octet_as: both(|c| matches!(c, Capability::FourOctetAs(_))),
            families,
            add_path_send,
            add_path_receive,
            extended_message: both(|c| matches!(c, Capability::ExtendedMessage)),
            route_refresh: has_cap(peer, |c| {
                matches!(c, Capability::RouteRefresh)
                    || matches!(c, Capability::Unknown { code, .. } if *code == ROUTE_REFRESH_OLD)
            }),
            enhanced_route_refresh: has_cap(peer, |c| matches!(c, Capability::EnhancedRouteRefresh)),
            graceful_notification: graceful_restart.as_ref().is_some_and(|gr| gr.notification)
                && has_cap(
                    local,
                    |c| matches!(c, Capability::GracefulRestart(gr) if gr.notification),
                ),
            graceful_restart,
            llgr,
            extended_next_hop,
            peer_hostname,
            peer_domain,
            peer_role,
            peer_open: peer.clone(),
        }
    }

    fn context(&self, add_path: &FamilySet) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            max_message_len: if self.extended_message {
                MAX_EXTENDED_MESSAGE_LEN
            } else {
                MAX_MESSAGE_LEN
            },
            add_path: add_path.clone(),
        }
    }

    /// Context for decoding what the peer sends.
    pub fn rx_context(&self) -> Context {
        self.context(&self.add_path_receive)
    }

    /// Context for encoding what we send.
    pub fn tx_context(&self) -> Context {
        self.context(&self.add_path_send)
    }
}

/// xorshift64* (Vigna): tiny, deterministic, good enough for timer jitter.
#[derive(Clone, Debug)]
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Jitter {
        // The all-zero state is a fixed point of xorshift.
        Jitter(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `d` scaled by a random factor in [0.75, 1.0) (RFC 4271 §10), in exact
    /// integer arithmetic so no duration can overflow.
    fn scale(&mut self, d: Duration) -> Duration {
        // factor = k / 2^32 with k in [3 * 2^30, 2^32).
        let k = (3u128 << 30) + u128::from(self.next_u64() >> 34);
        let nanos = (d.as_nanos() * k) >> 32;
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }
}

/// Whether the FSM may run a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Idle until a start event.
    Stopped,
    /// Idle, automatic restart when the IdleHold timer fires.
    Waiting,
    /// Trying to establish or established.
    Running,
}

/// How far one connection got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Outgoing TCP connect in progress.
    Connecting,
    /// TCP up, DelayOpen timer running, our OPEN not sent yet.
    DelayOpen,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Debug)]
struct Conn {
    id: ConnId,
    dir: Direction,
    phase: Phase,
    /// Set once the peer's OPEN was accepted on this connection.
    negotiated: Option<Negotiated>,
}

impl Conn {
    fn state(&self) -> State {
        match (self.phase, self.dir) {
            (Phase::Connecting, _) | (Phase::DelayOpen, Direction::Outgoing) => State::Connect,
            (Phase::DelayOpen, Direction::Incoming) => State::Active,
            (Phase::OpenSent, _) => State::OpenSent,
            (Phase::OpenConfirm, _) => State::OpenConfirm,
            (Phase::Established, _) => State::Established,
        }
    }

    /// Our OPEN went out on this connection, so a NOTIFICATION makes sense.
    fn open_sent(&self) -> bool {
        self.phase >= Phase::OpenSent
    }
}

/// RFC 8538 §5: with the N bit negotiated, the Cease subcodes that mean "this
/// session is over" (Maximum Number of Prefixes, Administrative Shutdown,
/// Peer De-configured, Administrative Reset) go as a Hard Reset carrying them,
/// so the peer removes our routes instead of keeping them as stale.
fn hard_reset_for(n: Notification) -> Notification {
    let ends_session = n.code == code::CEASE
        && matches!(
            n.subcode,
            cease::MAX_PREFIXES
                | cease::ADMINISTRATIVE_SHUTDOWN
                | cease::PEER_DECONFIGURED
                | cease::ADMINISTRATIVE_RESET
        );
    if !ends_session {
        return n;
    }
    let mut data = vec![n.code, n.subcode];
    data.extend_from_slice(&n.data);
    Notification {
        code: code::CEASE,
        subcode: cease::HARD_RESET,
        data,
    }
}

/// Where a failed connection leaves the session when it was the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Keep listening and retry after ConnectRetry (RFC 4271 §8.2.2 OpenSent, Event 18).
    Active,
    /// Idle, automatic restart after the IdleHold backoff.
    Idle,
}

/// The BGP session state machine for one peer.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    local_open: Open,
    mode: Mode,
    conns: Vec<Conn>,
    /// Armed timers and their deadlines (`None`: beyond what `Instant` can hold).
    timers: Vec<(Timer, Option<Instant>)>,
    jitter: Jitter,
    next_conn: u64,
    /// Consecutive failures, for the IdleHold backoff.
    failures: u32,
    established_since: Option<Instant>,
    last_error: Option<DownReason>,
}

impl Fsm {
    /// A stopped (Idle) FSM; feed it [`Event::ManualStart`] or [`Event::AutomaticStart`].
    pub fn new(mut cfg: FsmConfig) -> Fsm {
        if cfg.hold_time == 1 || cfg.hold_time == 2 {
            cfg.hold_time = 3;
        }
        let mut capabilities = cfg.capabilities.clone();
        if let Some(role) = cfg.role {
            if !capabilities.iter().any(|c| matches!(c, Capability::Role(_))) {
                capabilities.push(Capability::Role(role));
            }
        }
        let local_open = Open::new(cfg.local_asn, cfg.hold_time, cfg.local_id, capabilities);
        Fsm {
            jitter: Jitter::new(cfg.jitter_seed),
            cfg,
            local_open,
            mode: Mode::Stopped,
            conns: Vec::new(),
            timers: Vec::new(),
            next_conn: 1,
            failures: 0,
            established_since: None,
            last_error: None,
        }
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    /// Replaces the capabilities of the OPENs sent from now on (a connection
    /// that already sent its OPEN keeps what it sent). Some are live state:
    /// the graceful-restart R and F bits change once a restart is over.
    pub fn set_capabilities(&mut self, capabilities: Vec<Capability>) {
        self.cfg.capabilities = capabilities;
        let mut caps = self.cfg.capabilities.clone();
        if let Some(role) = self.cfg.role {
            if !caps.iter().any(|c| matches!(c, Capability::Role(_))) {
                caps.push(Capability::Role(role));
            }
        }
        self.local_open = Open::new(self.cfg.local_asn, self.cfg.hold_time, self.cfg.local_id, caps);
    }

    /// The OPEN we send.
    pub fn local_open(&self) -> &Open {
        &self.local_open
    }

    /// Session state: Idle when stopped or waiting to restart, otherwise that
    /// of the most advanced connection.
    pub fn state(&self) -> State {
        if self.mode != Mode::Running {
            return State::Idle;
        }
        self.conns
            .iter()
            .max_by_key(|c| (c.phase, c.dir == Direction::Outgoing))
            .map_or(State::Active, Conn::state)
    }

    /// State of one connection, if the FSM still tracks it.
    pub fn connection_state(&self, id: ConnId) -> Option<State> {
        self.conn(id).map(Conn::state)
    }

    /// The connection the session is established on.
    pub fn established_conn(&self) -> Option<ConnId> {
        self.conns.iter().find(|c| c.phase == Phase::Established).map(|c| c.id)
    }

    /// Negotiated parameters of the established connection, or of one in
    /// OpenConfirm (the peer's OPEN accepted, KEEPALIVE pending).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns
            .iter()
            .filter(|c| c.phase >= Phase::OpenConfirm)
            .max_by_key(|c| c.phase)
            .and_then(|c| c.negotiated.as_ref())
    }

    /// Why the session last went down or failed.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    pub fn established_since(&self) -> Option<Instant> {
        self.established_since
    }

    /// A fresh connection id, for an incoming connection the caller accepted.
    pub fn new_conn_id(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        id
    }

    /// Armed timers with their deadlines, for callers that poll instead of
    /// following StartTimer/StopTimer.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        self.timers.iter().filter_map(|(t, d)| d.map(|d| (*t, d)))
    }

    /// The timer due first.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers().min_by_key(|(_, d)| *d)
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::ManualStart => self.manual_start(now, &mut out),
            Event::AutomaticStart => {
                // RFC 4271 §8.2.2 Idle: AutomaticStart is ignored while the
                // IdleHoldTimer runs (DampPeerOscillations).
                if self.mode == Mode::Stopped {
                    self.start(now, &mut out);
                }
            }
            Event::ManualStop => self.manual_stop(None, now, &mut out),
            Event::ManualStopWithMessage(m) => self.manual_stop(Some(m), now, &mut out),
            Event::AutomaticStop(n) => self.automatic_stop(n, now, &mut out),
            Event::IdleHoldTimerExpires => {
                if self.take_timer(Timer::IdleHold, now) && self.mode == Mode::Waiting {
                    self.start(now, &mut out);
                }
            }
            Event::ConnectRetryTimerExpires => self.connect_retry_expires(now, &mut out),
            Event::HoldTimerExpires(id) => {
                if self.take_timer(Timer::Hold(id), now) && self.conn(id).is_some() {
                    let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0);
                    let reason = DownReason::HoldTimerExpired;
                    self.conn_failed(id, Some(n), reason, After::Idle, now, &mut out);
                }
            }
            Event::KeepaliveTimerExpires(id) => self.keepalive_expires(id, now, &mut out),
            Event::DelayOpenTimerExpires(id) => {
                if self.take_timer(Timer::DelayOpen(id), now) && self.phase(id) == Some(Phase::DelayOpen) {
                    self.send_open(id, now, &mut out);
                }
            }
            Event::TcpCrAcked(id) => match self.conn(id) {
                Some(c) if c.dir == Direction::Outgoing && c.phase == Phase::Connecting => {
                    self.tcp_up(id, now, &mut out)
                }
                Some(_) => {}
                // A connect we abandoned completed anyway: make sure it is closed.
                None => out.push(Action::CloseConnection(id)),
            },
            Event::TcpConnectionConfirmed(id) => self.incoming(id, now, &mut out),
            Event::TcpConnectionFails(id) => {
                if let Some(c) = self.conn(id) {
                    // RFC 4271 §8.2.2: OpenConfirm and Established fall to Idle;
                    // Connect, Active and OpenSent keep listening (Active).
                    let after = if c.phase >= Phase::OpenConfirm {
                        After::Idle
                    } else {
                        After::Active
                    };
                    self.conn_failed(id, None, DownReason::ConnectionClosed, after, now, &mut out);
                }
            }
            Event::BgpOpen(id, open) => match self.phase(id) {
                Some(Phase::DelayOpen | Phase::OpenSent) => self.open_received(id, open, now, &mut out),
                Some(Phase::OpenConfirm | Phase::Established) => self.unexpected(id, "OPEN", now, &mut out),
                Some(Phase::Connecting) | None => {}
            },
            Event::BgpHeaderErr(id, err) | Event::BgpOpenMsgErr(id, err) => self.decode_failed(id, err, now, &mut out),
            Event::UpdateMsgErr(id, err) => match self.phase(id) {
                Some(Phase::Established) => self.decode_failed(id, err, now, &mut out),
                _ => self.unexpected(id, "UPDATE", now, &mut out),
            },
            Event::NotifMsg(id, n) => {
                if self.phase(id).is_some_and(|p| p > Phase::Connecting) {
                    let reason = DownReason::NotificationReceived(n);
                    self.conn_failed(id, None, reason, After::Idle, now, &mut out);
                }
            }
            Event::KeepAliveMsg(id) => match self.phase(id) {
                Some(Phase::OpenConfirm) => self.establish(id, now, &mut out),
                Some(Phase::Established) => self.restart_hold(id, now, &mut out),
                _ => self.unexpected(id, "KEEPALIVE", now, &mut out),
            },
            Event::UpdateMsg(id) => match self.phase(id) {
                Some(Phase::Established) => self.restart_hold(id, now, &mut out),
                _ => self.unexpected(id, "UPDATE", now, &mut out),
            },
            Event::RouteRefreshMsg(id) => match self.phase(id) {
                Some(Phase::Established) => self.restart_hold(id, now, &mut out),
                _ => self.unexpected(id, "ROUTE-REFRESH", now, &mut out),
            },
        }
        out
    }

    // ----- connections -----

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn phase(&self, id: ConnId) -> Option<Phase> {
        self.conn(id).map(|c| c.phase)
    }

    fn set_phase(&mut self, id: ConnId, phase: Phase) {
        if let Some(c) = self.conn_mut(id) {
            c.phase = phase;
        }
    }

    /// Removes a connection: NOTIFICATION (if given), its timers stopped, closed.
    /// Closes, without a NOTIFICATION, every connection matching `pred`.
    fn close_where(&mut self, pred: impl Fn(&Conn) -> bool, out: &mut Vec<Action>) {
        let ids: Vec<ConnId> = self.conns.iter().filter(|c| pred(c)).map(|c| c.id).collect();
        for id in ids {
            self.close_conn(id, None, out);
        }
    }

    fn close_conn(&mut self, id: ConnId, notification: Option<Notification>, out: &mut Vec<Action>) -> Option<Conn> {
        let pos = self.conns.iter().position(|c| c.id == id)?;
        let conn = self.conns.remove(pos);
        if let Some(n) = notification {
            let graceful = conn.negotiated.as_ref().is_some_and(|n| n.graceful_notification);
            out.push(Action::SendNotification(
                id,
                if graceful { hard_reset_for(n) } else { n },
            ));
        }
        for t in [Timer::Hold(id), Timer::Keepalive(id), Timer::DelayOpen(id)] {
            self.stop_timer(t, out);
        }
        out.push(Action::CloseConnection(id));
        Some(conn)
    }

    /// A connection failed. If it was the last one, the session goes to
    /// Active or Idle as the RFC 4271 §8.2.2 transition for the event says;
    /// otherwise the session carries on with the other connection.
    fn conn_failed(
        &mut self,
        id: ConnId,
        notification: Option<Notification>,
        reason: DownReason,
        after: After,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.close_conn(id, notification, out).is_none() || !self.conns.is_empty() {
            return;
        }
        match after {
            After::Idle => self.enter_idle(reason, true, now, out),
            After::Active => {
                self.last_error = Some(reason);
                if !self.cfg.passive && !self.is_armed(Timer::ConnectRetry) {
                    let d = self.jitter.scale(self.cfg.connect_retry_time);
                    self.start_timer(Timer::ConnectRetry, d, now, out);
                }
            }
        }
    }

    /// Idle from a running session; connections must already be closed.
    fn enter_idle(&mut self, reason: DownReason, restart: bool, now: Instant, out: &mut Vec<Action>) {
        let established_at = self.established_since.take();
        self.stop_timer(Timer::ConnectRetry, out);
        out.push(Action::SessionDown { reason: reason.clone() });
        self.last_error = Some(reason);
        if restart {
            // A session that stayed up long enough was not oscillating.
            if established_at.is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.max_idle_hold_time) {
                self.failures = 0;
            }
            self.failures = self.failures.saturating_add(1);
            let d = self.jitter.scale(self.idle_hold_base());
            self.start_timer(Timer::IdleHold, d, now, out);
            self.mode = Mode::Waiting;
        } else {
            self.stop_timer(Timer::IdleHold, out);
            self.mode = Mode::Stopped;
        }
    }

    /// Backoff before the next automatic restart, before jitter:
    /// idle_hold_time * 2^(failures - 1), at most max_idle_hold_time.
    fn idle_hold_base(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        self.cfg
            .idle_hold_time
            .saturating_mul(1u32 << doublings)
            .min(self.cfg.max_idle_hold_time)
    }

    // ----- transitions -----

    fn manual_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.mode {
            Mode::Running => {}
            Mode::Waiting | Mode::Stopped => {
                self.stop_timer(Timer::IdleHold, out);
                self.failures = 0;
                self.start(now, out);
            }
        }
    }

    /// Idle -> Connect (active) or Active (passive), RFC 4271 §8.2.2 Idle Events 1, 3-5.
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.mode = Mode::Running;
        if !self.cfg.passive {
            self.connect(now, out);
        }
    }

    /// Starts ConnectRetry and an outgoing connection.
    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        let id = self.new_conn_id();
        let d = self.jitter.scale(self.cfg.connect_retry_time);
        self.start_timer(Timer::ConnectRetry, d, now, out);
        self.conns.push(Conn {
            id,
            dir: Direction::Outgoing,
            phase: Phase::Connecting,
            negotiated: None,
        });
        out.push(Action::Connect(id));
    }

    /// RFC 4271 §8.2.2 Connect/Active Event 9: drop the pending attempt, try again.
    fn connect_retry_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.take_timer(Timer::ConnectRetry, now) || self.mode != Mode::Running || self.cfg.passive {
            return;
        }
        self.close_where(|c| c.phase == Phase::Connecting, out);
        // With a connection past TCP setup the timer is not supposed to run.
        if self.conns.is_empty() {
            self.connect(now, out);
        }
    }

    /// TCP is up on `id` (Events 16/17): send OPEN, or wait for DelayOpen.
    fn tcp_up(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        self.stop_timer(Timer::ConnectRetry, out);
        match self.cfg.delay_open {
            Some(d) => {
                self.set_phase(id, Phase::DelayOpen);
                self.start_timer(Timer::DelayOpen(id), d, now, out);
            }
            None => self.send_open(id, now, out),
        }
    }

    /// Sends our OPEN and waits for the peer's (OpenSent, hold timer large).
    fn send_open(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendOpen(id, self.local_open.clone()));
        self.start_timer(Timer::Hold(id), OPEN_HOLD_TIME, now, out);
        self.set_phase(id, Phase::OpenSent);
    }

    /// Event 17: the peer connected to us.
    fn incoming(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        if self.conn(id).is_some() {
            // Reused id: a caller bug; the existing connection is not touched.
            return;
        }
        if self.mode != Mode::Running {
            // RFC 4271 §8.2.2 Idle: incoming connections are refused.
            out.push(Action::CloseConnection(id));
            return;
        }
        if let Some(old) = self.conns.iter().find(|c| c.phase == Phase::Established) {
            if old.negotiated.as_ref().is_some_and(|n| n.graceful_restart.is_some()) {
                // RFC 4724 §4.2: from a peer that announced graceful restart, a
                // new connection means the old TCP session is gone: "the
                // previous TCP session MUST be closed, and the new one retained".
                let old = old.id;
                self.close_conn(old, None, out);
                self.established_since = None;
                out.push(Action::SessionDown {
                    reason: DownReason::ConnectionClosed,
                });
                self.last_error = Some(DownReason::ConnectionClosed);
            } else {
                // RFC 4271 §6.8: a collision with an Established connection closes the new one.
                let n = Notification::new(code::CEASE, cease::CONNECTION_COLLISION);
                out.push(Action::SendNotification(id, n));
                out.push(Action::CloseConnection(id));
                return;
            }
        }
        // One connection per direction. An earlier incoming connection that
        // never produced an OPEN (a half-open leftover of a restarted peer, or
        // a probe that cannot pass GTSM) gives way to the new one, so it
        // cannot lock the peer out until the OpenSent hold time runs out.
        self.close_where(|c| c.dir == Direction::Incoming && c.negotiated.is_none(), out);
        if self.conns.iter().any(|c| c.dir == Direction::Incoming) {
            // The first incoming connection that sent an OPEN is kept.
            out.push(Action::CloseConnection(id));
            return;
        }
        // RFC 4271 §8.2.2 Connect, Event 17: our own attempt is abandoned.
        self.close_where(|c| c.phase == Phase::Connecting, out);
        self.conns.push(Conn {
            id,
            dir: Direction::Incoming,
            phase: Phase::Connecting,
            negotiated: None,
        });
        self.tcp_up(id, now, out);
    }

    /// RFC 4271 §6.2 OPEN checks beyond what `Open::decode` does.
    fn validate_open(&self, open: &Open) -> Result<(), OpenError> {
        if open.version != 4 {
            return Err(OpenError::Version(open.version));
        }
        let asn = open.asn();
        if asn != self.cfg.peer_asn {
            return Err(OpenError::BadPeerAs {
                expected: self.cfg.peer_asn,
                got: asn,
            });
        }
        // RFC 6793 §4.1: a 4-octet-capable speaker puts its AS in the 2-octet
        // field if it fits, AS_TRANS otherwise.
        if open.capabilities().any(|c| matches!(c, Capability::FourOctetAs(_))) {
            let expected = u16::try_from(asn).unwrap_or(AS_TRANS);
            if open.my_as != expected {
                return Err(OpenError::InconsistentAs { asn, my_as: open.my_as });
            }
        }
        // RFC 4271 §6.2: hold times of one or two seconds are unacceptable.
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(OpenError::HoldTime(open.hold_time));
        }
        // RFC 6286 §2.2: non-zero, and unique within an AS.
        if open.bgp_id.is_unspecified() {
            return Err(OpenError::InvalidBgpId(open.bgp_id));
        }
        if self.cfg.local_asn == self.cfg.peer_asn && open.bgp_id == self.cfg.local_id {
            return Err(OpenError::SameBgpId(open.bgp_id));
        }
        // RFC 9234 §4.2: roles must pair; a peer sending different roles is refused.
        let mut roles = open.capabilities().filter_map(|c| match c {
            Capability::Role(r) => Some(*r),
            _ => None,
        });
        let peer = roles.next();
        if roles.any(|r| Some(r) != peer) {
            return Err(OpenError::ConflictingRoles);
        }
        if let Some(local) = self.cfg.role {
            let ok = match peer {
                Some(p) => p == local.expected_peer_role(),
                None => !self.cfg.strict_role,
            };
            if !ok {
                return Err(OpenError::RoleMismatch { local, peer });
            }
        }
        Ok(())
    }

    /// Keepalive interval for a negotiated hold time.
    fn keepalive_for(&self, hold: u16) -> u16 {
        if hold == 0 {
            return 0;
        }
        let ours = self.cfg.hold_time;
        match self.cfg.keepalive_time {
            Some(k) if k > 0 && k < ours => {
                let scaled = u32::from(k) * u32::from(hold) / u32::from(ours);
                u16::try_from(scaled).unwrap_or(hold / 3).max(1)
            }
            _ => (hold / 3).max(1),
        }
    }

    /// Events 19/20 in OpenSent (or Connect/Active with DelayOpen running).
    fn open_received(&mut self, id: ConnId, open: Open, now: Instant, out: &mut Vec<Action>) {
        if let Err(e) = self.validate_open(&open) {
            let n = e.notification();
            let reason = DownReason::OpenRejected(e);
            self.conn_failed(id, Some(n), reason, After::Idle, now, out);
            return;
        }
        let Some(this) = self.conn(id).map(|c| c.dir) else {
            return;
        };
        // RFC 4271 §6.8: compare with every connection in OpenConfirm.
        let rival = self
            .conns
            .iter()
            .find(|c| c.id != id && c.phase == Phase::OpenConfirm)
            .map(|c| (c.id, c.dir));
        if let Some((other, other_dir)) = rival {
            let loser = self.collision_loser(open.bgp_id, (id, this), (other, other_dir));
            let n = Notification::new(code::CEASE, cease::CONNECTION_COLLISION);
            self.close_conn(loser, Some(n), out);
            if loser == id {
                return;
            }
        }
        let mut negotiated = Negotiated::new(&self.local_open, &open);
        negotiated.keepalive_time = self.keepalive_for(negotiated.hold_time);
        if self.phase(id) == Some(Phase::DelayOpen) {
            // Event 20: the peer's OPEN ends the delay; ours goes out now.
            self.stop_timer(Timer::DelayOpen(id), out);
            out.push(Action::SendOpen(id, self.local_open.clone()));
        }
        out.push(Action::SendKeepalive(id));
        if negotiated.hold_time > 0 {
            let k = Duration::from_secs(u64::from(negotiated.keepalive_time));
            let k = self.jitter.scale(k);
            self.start_timer(Timer::Keepalive(id), k, now, out);
            let h = Duration::from_secs(u64::from(negotiated.hold_time));
            self.start_timer(Timer::Hold(id), h, now, out);
        } else {
            // RFC 4271 §4.2: hold time zero, no hold timer and no keepalives.
            self.stop_timer(Timer::Hold(id), out);
        }
        if let Some(c) = self.conn_mut(id) {
            c.phase = Phase::OpenConfirm;
            c.negotiated = Some(negotiated);
        }
    }

    /// RFC 4271 §6.8 (with RFC 6286 §2.3 for equal identifiers): which of two
    /// colliding connections is closed.
    fn collision_loser(&self, remote_id: Ipv4Addr, a: (ConnId, Direction), b: (ConnId, Direction)) -> ConnId {
        let local = u32::from(self.cfg.local_id);
        let remote = u32::from(remote_id);
        let close_ours = if local != remote {
            local < remote
        } else {
            // Equal identifiers: the connection of the larger AS survives.
            self.cfg.local_asn < self.cfg.peer_asn
        };
        let doomed = if close_ours {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        if a.1 == doomed {
            a.0
        } else {
            b.0
        }
    }

    /// OpenConfirm, Event 26: the session is up (RFC 4271 §8.2.2).
    fn establish(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        let Some(negotiated) = self.conn(id).and_then(|c| c.negotiated.clone()) else {
            return;
        };
        if negotiated.hold_time > 0 {
            let h = Duration::from_secs(u64::from(negotiated.hold_time));
            self.start_timer(Timer::Hold(id), h, now, out);
        }
        // RFC 4271 §6.8: once Established, any other connection is a collision that loses.
        let others: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| (c.id, c.open_sent()))
            .collect();
        for (other, open_sent) in others {
            let n = open_sent.then(|| Notification::new(code::CEASE, cease::CONNECTION_COLLISION));
            self.close_conn(other, n, out);
        }
        self.set_phase(id, Phase::Established);
        self.established_since = Some(now);
        out.push(Action::Established(id, Box::new(negotiated)));
    }

    /// Established, Events 26/27: the peer is alive.
    fn restart_hold(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        let hold = self
            .conn(id)
            .and_then(|c| c.negotiated.as_ref())
            .map_or(0, |n| n.hold_time);
        if hold > 0 {
            let h = Duration::from_secs(u64::from(hold));
            self.start_timer(Timer::Hold(id), h, now, out);
        }
    }

    fn keepalive_expires(&mut self, id: ConnId, now: Instant, out: &mut Vec<Action>) {
        if !self.take_timer(Timer::Keepalive(id), now) {
            return;
        }
        let Some(keepalive) = self
            .conn(id)
            .filter(|c| c.phase >= Phase::OpenConfirm)
            .and_then(|c| c.negotiated.as_ref())
            .map(|n| n.keepalive_time)
        else {
            return;
        };
        out.push(Action::SendKeepalive(id));
        if keepalive > 0 {
            let k = self.jitter.scale(Duration::from_secs(u64::from(keepalive)));
            self.start_timer(Timer::Keepalive(id), k, now, out);
        }
    }

    /// Events 21, 22, 28: the decode error's NOTIFICATION, then Idle.
    fn decode_failed(&mut self, id: ConnId, err: DecodeError, now: Instant, out: &mut Vec<Action>) {
        if self.phase(id).is_some_and(|p| p > Phase::Connecting) {
            let n = err.to_notification();
            let reason = DownReason::InvalidMessage(err);
            self.conn_failed(id, Some(n), reason, After::Idle, now, out);
        }
    }

    /// A message the state does not allow: FSM Error with the RFC 6608 subcode.
    fn unexpected(&mut self, id: ConnId, message: &'static str, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.conn(id) else {
            return;
        };
        if conn.phase == Phase::Connecting {
            return;
        }
        let state = conn.state();
        let n = Notification::new(code::FSM, state.fsm_error_subcode());
        let reason = DownReason::UnexpectedMessage { state, message };
        self.conn_failed(id, Some(n), reason, After::Idle, now, out);
    }

    /// Event 2: Cease/Administrative Shutdown on every connection that got our OPEN.
    fn manual_stop(&mut self, message: Option<String>, now: Instant, out: &mut Vec<Action>) {
        self.failures = 0;
        if self.mode != Mode::Running {
            self.stop_timer(Timer::IdleHold, out);
            self.mode = Mode::Stopped;
            return;
        }
        let n = match &message {
            Some(m) => Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, m),
            None => Notification::new(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN),
        };
        self.close_all(&n, out);
        self.enter_idle(DownReason::ManualStop(message), false, now, out);
    }

    /// Event 8: like ManualStop with the caller's NOTIFICATION, then restart after backoff.
    fn automatic_stop(&mut self, n: Notification, now: Instant, out: &mut Vec<Action>) {
        if self.mode != Mode::Running {
            return;
        }
        self.close_all(&n, out);
        self.enter_idle(DownReason::AutomaticStop(n), true, now, out);
    }

    fn close_all(&mut self, n: &Notification, out: &mut Vec<Action>) {
        let all: Vec<(ConnId, bool)> = self.conns.iter().map(|c| (c.id, c.open_sent())).collect();
        for (id, open_sent) in all {
            self.close_conn(id, open_sent.then(|| n.clone()), out);
        }
    }

    // ----- timers -----

    fn is_armed(&self, t: Timer) -> bool {
        self.timers.iter().any(|(x, _)| *x == t)
    }

    fn start_timer(&mut self, t: Timer, d: Duration, now: Instant, out: &mut Vec<Action>) {
        let deadline = now.checked_add(d);
        match self.timers.iter_mut().find(|(x, _)| *x == t) {
            Some(entry) => entry.1 = deadline,
            None => self.timers.push((t, deadline)),
        }
        out.push(Action::StartTimer(t, d));
    }

    fn stop_timer(&mut self, t: Timer, out: &mut Vec<Action>) {
        if let Some(pos) = self.timers.iter().position(|(x, _)| *x == t) {
            self.timers.remove(pos);
            out.push(Action::StopTimer(t));
        }
    }

    /// Disarms `t` if it is armed and due; false for a stale expiry (stopped
    /// or re-armed since), which the caller's event must not act on.
    fn take_timer(&mut self, t: Timer, now: Instant) -> bool {
        let Some(pos) = self.timers.iter().position(|(x, _)| *x == t) else {
            return false;
        };
        let due = match (self.timers[pos].1, now.checked_add(TIMER_SLACK)) {
            (Some(deadline), Some(late)) => deadline <= late,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if due {
            self.timers.remove(pos);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::GracefulRestartFamily;
    use crate::error::Reason;
    use crate::types::{Afi, Safi};

    const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
    const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 12);
    const SEED: u64 = 42;
    const C1: ConnId = ConnId(1);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Fake clock: a base instant plus offsets.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Clock {
            Clock(Instant::now())
        }
        fn at(&self, s: u64) -> Instant {
            self.0 + secs(s)
        }
        fn at_ms(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn ibgp() -> FsmConfig {
        let mut cfg = FsmConfig::new(64512, 64512, LOCAL_ID);
        cfg.jitter_seed = SEED;
        cfg
    }

    fn peer_open(asn: u32, id: Ipv4Addr, hold: u16) -> Open {
        Open::new(
            asn,
            hold,
            id,
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(asn),
            ],
        )
    }

    /// True when `d` lies in [0.75, 1.0] x `base` (RFC 4271 §10 jitter).
    fn jittered(d: Duration, base: Duration) -> bool {
        d * 4 >= base * 3 && d <= base
    }

    fn start_duration(action: &Action, timer: Timer) -> Duration {
        match action {
            Action::StartTimer(t, d) if *t == timer => *d,
            other => panic!("expected StartTimer({timer:?}), got {other:?}"),
        }
    }

    fn notification(code: u8, subcode: u8) -> Notification {
        Notification::new(code, subcode)
    }

    /// Drives a fresh FSM to OpenConfirm on C1 with the peer's OPEN `open`.
    fn to_open_confirm(cfg: FsmConfig, clock: &Clock, open: Open) -> Fsm {
        let mut f = Fsm::new(cfg);
        f.handle(Event::ManualStart, clock.at(0));
        f.handle(Event::TcpCrAcked(C1), clock.at(1));
        f.handle(Event::BgpOpen(C1, open), clock.at(1));
        assert_eq!(f.state(), State::OpenConfirm);
        f
    }

    /// Drives a fresh FSM to Established on C1 at second 2.
    fn established(cfg: FsmConfig, clock: &Clock) -> Fsm {
        let peer = peer_open(cfg.peer_asn, PEER_ID, 90);
        let mut f = to_open_confirm(cfg, clock, peer);
        f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        assert_eq!(f.state(), State::Established);
        f
    }

    #[test]
    fn active_start_connects() {
        let clock = Clock::new();
        let mut f = Fsm::new(ibgp());
        let mut j = Jitter::new(SEED);
        assert_eq!(f.state(), State::Idle);
        let a = f.handle(Event::ManualStart, clock.at(0));
        let retry = j.scale(secs(120));
        assert_eq!(
            a,
            vec![Action::StartTimer(Timer::ConnectRetry, retry), Action::Connect(C1)]
        );
        assert!(jittered(retry, secs(120)));
        assert_eq!(f.state(), State::Connect);
        assert_eq!(f.next_timer(), Some((Timer::ConnectRetry, clock.at(0) + retry)));
        // A second start changes nothing.
        assert_eq!(f.handle(Event::AutomaticStart, clock.at(1)), vec![]);
        assert_eq!(f.handle(Event::ManualStart, clock.at(1)), vec![]);
    }

    #[test]
    fn passive_start_waits_for_the_peer() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.passive = true;
        let mut f = Fsm::new(cfg);
        assert_eq!(f.handle(Event::AutomaticStart, clock.at(0)), vec![]);
        assert_eq!(f.state(), State::Active);
        assert_eq!(f.next_timer(), None);
        let c = f.new_conn_id();
        let a = f.handle(Event::TcpConnectionConfirmed(c), clock.at(3));
        assert_eq!(
            a,
            vec![
                Action::SendOpen(c, f.local_open().clone()),
                Action::StartTimer(Timer::Hold(c), OPEN_HOLD_TIME)
            ]
        );
        assert_eq!(f.state(), State::OpenSent);
        // TCP lost in OpenSent: back to Active, and a passive peer never connects.
        let a = f.handle(Event::TcpConnectionFails(c), clock.at(4));
        assert_eq!(a, vec![Action::StopTimer(Timer::Hold(c)), Action::CloseConnection(c)]);
        assert_eq!(f.state(), State::Active);
        assert_eq!(f.handle(Event::ConnectRetryTimerExpires, clock.at(500)), vec![]);
    }

    #[test]
    fn happy_path_to_established() {
        let clock = Clock::new();
        let mut f = Fsm::new(ibgp());
        let mut j = Jitter::new(SEED);
        let retry = j.scale(secs(120));
        assert_eq!(
            f.handle(Event::ManualStart, clock.at(0)),
            vec![Action::StartTimer(Timer::ConnectRetry, retry), Action::Connect(C1)]
        );
        let ours = f.local_open().clone();
        assert_eq!(ours.my_as, 64512);
        assert_eq!(ours.hold_time, 90);
        assert_eq!(ours.bgp_id, LOCAL_ID);
        assert_eq!(
            f.handle(Event::TcpCrAcked(C1), clock.at(1)),
            vec![
                Action::StopTimer(Timer::ConnectRetry),
                Action::SendOpen(C1, ours),
                Action::StartTimer(Timer::Hold(C1), secs(240)),
            ]
        );
        assert_eq!(f.state(), State::OpenSent);
        let keepalive = j.scale(secs(30));
        assert_eq!(
            f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 90)), clock.at(2)),
            vec![
                Action::SendKeepalive(C1),
                Action::StartTimer(Timer::Keepalive(C1), keepalive),
                Action::StartTimer(Timer::Hold(C1), secs(90)),
            ]
        );
        assert!(jittered(keepalive, secs(30)));
        assert_eq!(f.state(), State::OpenConfirm);
        assert_eq!(f.negotiated().map(|n| n.hold_time), Some(90));
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], Action::StartTimer(Timer::Hold(C1), secs(90)));
        let Action::Established(id, n) = &a[1] else {
            panic!("expected Established, got {:?}", a[1]);
        };
        assert_eq!(*id, C1);
        assert_eq!(n.peer_asn, 64512);
        assert_eq!(n.peer_id, PEER_ID);
        assert_eq!((n.hold_time, n.keepalive_time), (90, 30));
        assert!(n.four_octet_as && n.route_refresh);
        assert_eq!(f.state(), State::Established);
        assert_eq!(f.established_since(), Some(clock.at(3)));
        assert_eq!(f.established_conn(), Some(C1));
        assert_eq!(f.negotiated(), Some(&**n));
        // Established: KEEPALIVE, UPDATE and ROUTE-REFRESH restart the hold timer.
        for e in [
            Event::KeepAliveMsg(C1),
            Event::UpdateMsg(C1),
            Event::RouteRefreshMsg(C1),
        ] {
            assert_eq!(
                f.handle(e, clock.at(10)),
                vec![Action::StartTimer(Timer::Hold(C1), secs(90))]
            );
        }
    }

    #[test]
    fn delay_open_sends_open_when_the_timer_fires() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.delay_open = Some(secs(5));
        let mut f = Fsm::new(cfg);
        f.handle(Event::ManualStart, clock.at(0));
        assert_eq!(
            f.handle(Event::TcpCrAcked(C1), clock.at(1)),
            vec![
                Action::StopTimer(Timer::ConnectRetry),
                Action::StartTimer(Timer::DelayOpen(C1), secs(5)),
            ]
        );
        assert_eq!(f.state(), State::Connect);
        // Early (stale) expiry is ignored.
        assert_eq!(f.handle(Event::DelayOpenTimerExpires(C1), clock.at(2)), vec![]);
        assert_eq!(
            f.handle(Event::DelayOpenTimerExpires(C1), clock.at(6)),
            vec![
                Action::SendOpen(C1, f.local_open().clone()),
                Action::StartTimer(Timer::Hold(C1), OPEN_HOLD_TIME),
            ]
        );
        assert_eq!(f.state(), State::OpenSent);
    }

    #[test]
    fn delay_open_answers_an_early_open_at_once() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.delay_open = Some(secs(5));
        cfg.passive = true;
        let mut f = Fsm::new(cfg);
        f.handle(Event::ManualStart, clock.at(0));
        let c = f.new_conn_id();
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(c), clock.at(1)),
            vec![Action::StartTimer(Timer::DelayOpen(c), secs(5))]
        );
        assert_eq!(f.state(), State::Active);
        let mut j = Jitter::new(SEED);
        let a = f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(2));
        assert_eq!(
            a,
            vec![
                Action::StopTimer(Timer::DelayOpen(c)),
                Action::SendOpen(c, f.local_open().clone()),
                Action::SendKeepalive(c),
                Action::StartTimer(Timer::Keepalive(c), j.scale(secs(30))),
                Action::StartTimer(Timer::Hold(c), secs(90)),
            ]
        );
        assert_eq!(f.state(), State::OpenConfirm);
        // The timer was stopped; its expiry must not send a second OPEN.
        assert_eq!(f.handle(Event::DelayOpenTimerExpires(c), clock.at(6)), vec![]);
    }

    #[test]
    fn keepalive_before_open_with_delay_open_is_an_fsm_error() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.delay_open = Some(secs(5));
        let mut f = Fsm::new(cfg);
        f.handle(Event::ManualStart, clock.at(0));
        f.handle(Event::TcpCrAcked(C1), clock.at(1));
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        assert_eq!(a[0], Action::SendNotification(C1, notification(5, 0)));
        assert_eq!(a[1], Action::StopTimer(Timer::DelayOpen(C1)));
        assert_eq!(a[2], Action::CloseConnection(C1));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn hold_timer_expiry_in_established() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        // A KEEPALIVE at 50 s moves the deadline to 140 s; the old expiry is stale.
        assert_eq!(
            f.handle(Event::KeepAliveMsg(C1), clock.at(50)),
            vec![Action::StartTimer(Timer::Hold(C1), secs(90))]
        );
        assert_eq!(f.handle(Event::HoldTimerExpires(C1), clock.at(92)), vec![]);
        assert_eq!(f.state(), State::Established);
        let a = f.handle(Event::HoldTimerExpires(C1), clock.at(140));
        assert_eq!(a.len(), 5, "{a:?}");
        assert_eq!(
            a[..4],
            [
                Action::SendNotification(C1, notification(4, 0)),
                Action::StopTimer(Timer::Keepalive(C1)),
                Action::CloseConnection(C1),
                Action::SessionDown {
                    reason: DownReason::HoldTimerExpired
                },
            ]
        );
        assert!(jittered(start_duration(&a[4], Timer::IdleHold), secs(5)));
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.last_error(), Some(&DownReason::HoldTimerExpired));
        assert_eq!(f.established_since(), None);
        assert_eq!(f.negotiated(), None);
    }

    #[test]
    fn keepalive_timer_rearms_with_jitter() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let mut seen = Vec::new();
        for _ in 0..200 {
            let (t, deadline) = f
                .timers()
                .find(|(t, _)| *t == Timer::Keepalive(C1))
                .expect("keepalive timer armed");
            let a = f.handle(t.expiry_event(), deadline);
            assert_eq!(a.len(), 2);
            assert_eq!(a[0], Action::SendKeepalive(C1));
            let d = start_duration(&a[1], Timer::Keepalive(C1));
            assert!(jittered(d, secs(30)), "{d:?}");
            seen.push(d);
            f.handle(Event::KeepAliveMsg(C1), deadline);
        }
        seen.sort();
        assert!(seen[0] < secs(24) && seen[199] > secs(29), "{seen:?}");
        // Stale expiry right after a re-arm does nothing.
        let (_, deadline) = f.timers().find(|(t, _)| *t == Timer::Keepalive(C1)).expect("armed");
        assert_eq!(f.handle(Event::KeepaliveTimerExpires(C1), deadline - secs(5)), vec![]);
    }

    #[test]
    fn hold_time_negotiation() {
        let clock = Clock::new();
        // Ours 90, theirs 30: 30, keepalive 10.
        let mut f = Fsm::new(ibgp());
        let mut j = Jitter::new(SEED);
        j.scale(secs(120));
        f.handle(Event::ManualStart, clock.at(0));
        f.handle(Event::TcpCrAcked(C1), clock.at(0));
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 30)), clock.at(1));
        assert_eq!(
            a,
            vec![
                Action::SendKeepalive(C1),
                Action::StartTimer(Timer::Keepalive(C1), j.scale(secs(10))),
                Action::StartTimer(Timer::Hold(C1), secs(30)),
            ]
        );
        let n = f.negotiated().expect("negotiated");
        assert_eq!((n.hold_time, n.keepalive_time), (30, 10));

        // A configured keepalive is scaled to the lower hold time: 20 * 30 / 90.
        let mut cfg = ibgp();
        cfg.keepalive_time = Some(20);
        let f = to_open_confirm(cfg, &clock, peer_open(64512, PEER_ID, 30));
        assert_eq!(f.negotiated().map(|n| n.keepalive_time), Some(6));

        // Theirs 0: no hold timer, no keepalives.
        let mut f = Fsm::new(ibgp());
        f.handle(Event::ManualStart, clock.at(0));
        f.handle(Event::TcpCrAcked(C1), clock.at(0));
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 0)), clock.at(1));
        assert_eq!(a, vec![Action::SendKeepalive(C1), Action::StopTimer(Timer::Hold(C1))]);
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        assert_eq!(a.len(), 1);
        assert!(matches!(&a[0], Action::Established(C1, n) if n.hold_time == 0 && n.keepalive_time == 0));
        assert_eq!(f.handle(Event::UpdateMsg(C1), clock.at(3)), vec![]);
        assert_eq!(f.timers().count(), 0);

        // Ours 0, theirs 90: 0 as well.
        let mut cfg = ibgp();
        cfg.hold_time = 0;
        let f = to_open_confirm(cfg, &clock, peer_open(64512, PEER_ID, 90));
        assert_eq!(f.negotiated().map(|n| n.hold_time), Some(0));
        assert_eq!(f.timers().count(), 0);
    }

    /// Asserts the actions of an OPEN refused in OpenSent on C1.
    fn assert_open_refused(a: &[Action], code: (u8, u8), error: OpenError) {
        assert_eq!(a.len(), 5, "{a:?}");
        assert_eq!(
            a[..4],
            [
                Action::SendNotification(C1, notification(code.0, code.1)),
                Action::StopTimer(Timer::Hold(C1)),
                Action::CloseConnection(C1),
                Action::SessionDown {
                    reason: DownReason::OpenRejected(error)
                },
            ]
        );
        start_duration(&a[4], Timer::IdleHold);
    }

    fn open_sent(cfg: FsmConfig, clock: &Clock) -> Fsm {
        let mut f = Fsm::new(cfg);
        f.handle(Event::ManualStart, clock.at(0));
        f.handle(Event::TcpCrAcked(C1), clock.at(1));
        assert_eq!(f.state(), State::OpenSent);
        f
    }

    #[test]
    fn bad_peer_as() {
        let clock = Clock::new();
        let mut f = open_sent(ibgp(), &clock);
        let a = f.handle(Event::BgpOpen(C1, peer_open(65000, PEER_ID, 90)), clock.at(2));
        assert_open_refused(
            &a,
            (2, 2),
            OpenError::BadPeerAs {
                expected: 64512,
                got: 65000,
            },
        );
        assert_eq!(f.state(), State::Idle);

        // 4-octet capability disagreeing with the 2-octet field.
        let mut f = open_sent(ibgp(), &clock);
        let mut open = peer_open(64512, PEER_ID, 90);
        open.my_as = AS_TRANS;
        let a = f.handle(Event::BgpOpen(C1, open), clock.at(2));
        assert_open_refused(
            &a,
            (2, 2),
            OpenError::InconsistentAs {
                asn: 64512,
                my_as: AS_TRANS,
            },
        );

        // A 4-octet AS peer with AS_TRANS is fine; with another 2-octet value not.
        let mut cfg = ibgp();
        cfg.peer_asn = 4_200_000_001;
        let f = to_open_confirm(cfg.clone(), &clock, peer_open(4_200_000_001, PEER_ID, 90));
        assert_eq!(f.negotiated().map(|n| n.peer_asn), Some(4_200_000_001));
        let mut f = open_sent(cfg, &clock);
        let mut open = peer_open(4_200_000_001, PEER_ID, 90);
        open.my_as = 65000;
        let a = f.handle(Event::BgpOpen(C1, open), clock.at(2));
        assert_open_refused(
            &a,
            (2, 2),
            OpenError::InconsistentAs {
                asn: 4_200_000_001,
                my_as: 65000,
            },
        );
    }

    #[test]
    fn bad_bgp_identifier_on_ibgp_only() {
        let clock = Clock::new();
        let mut f = open_sent(ibgp(), &clock);
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOCAL_ID, 90)), clock.at(2));
        assert_open_refused(&a, (2, 3), OpenError::SameBgpId(LOCAL_ID));
        // RFC 6286 §2.2: on eBGP the same identifier is allowed.
        let mut cfg = ibgp();
        cfg.peer_asn = 65001;
        let f = to_open_confirm(cfg, &clock, peer_open(65001, LOCAL_ID, 90));
        assert_eq!(f.state(), State::OpenConfirm);
        // Zero identifier and hold time 2 (OPENs built by hand, not decoded).
        let mut f = open_sent(ibgp(), &clock);
        let a = f.handle(
            Event::BgpOpen(C1, peer_open(64512, Ipv4Addr::UNSPECIFIED, 90)),
            clock.at(2),
        );
        assert_open_refused(&a, (2, 3), OpenError::InvalidBgpId(Ipv4Addr::UNSPECIFIED));
        let mut f = open_sent(ibgp(), &clock);
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 2)), clock.at(2));
        assert_open_refused(&a, (2, 6), OpenError::HoldTime(2));
    }

    #[test]
    fn role_checks() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.peer_asn = 65001;
        cfg.role = Some(Role::Customer);
        let with_role = |role: Option<Role>| {
            let mut open = peer_open(65001, PEER_ID, 90);
            open.capability_groups[0].extend(role.map(Capability::Role));
            open
        };
        assert!(Fsm::new(cfg.clone())
            .local_open()
            .capabilities()
            .any(|c| *c == Capability::Role(Role::Customer)));
        let f = to_open_confirm(cfg.clone(), &clock, with_role(Some(Role::Provider)));
        assert_eq!(f.negotiated().and_then(|n| n.peer_role), Some(Role::Provider));
        let f = to_open_confirm(cfg.clone(), &clock, with_role(None));
        assert_eq!(f.negotiated().and_then(|n| n.peer_role), None);
        let mut f = open_sent(cfg.clone(), &clock);
        let a = f.handle(Event::BgpOpen(C1, with_role(Some(Role::Peer))), clock.at(2));
        assert_open_refused(
            &a,
            (2, 11),
            OpenError::RoleMismatch {
                local: Role::Customer,
                peer: Some(Role::Peer),
            },
        );
        cfg.strict_role = true;
        let mut f = open_sent(cfg, &clock);
        let a = f.handle(Event::BgpOpen(C1, with_role(None)), clock.at(2));
        assert_open_refused(
            &a,
            (2, 11),
            OpenError::RoleMismatch {
                local: Role::Customer,
                peer: None,
            },
        );
    }

    #[test]
    fn unexpected_messages_are_fsm_errors() {
        let clock = Clock::new();
        for (event, message) in [
            (Event::UpdateMsg(C1), "UPDATE"),
            (Event::KeepAliveMsg(C1), "KEEPALIVE"),
            (Event::RouteRefreshMsg(C1), "ROUTE-REFRESH"),
        ] {
            let mut f = open_sent(ibgp(), &clock);
            let a = f.handle(event, clock.at(2));
            assert_eq!(a.len(), 5, "{a:?}");
            assert_eq!(
                a[..4],
                [
                    Action::SendNotification(C1, notification(5, 1)),
                    Action::StopTimer(Timer::Hold(C1)),
                    Action::CloseConnection(C1),
                    Action::SessionDown {
                        reason: DownReason::UnexpectedMessage {
                            state: State::OpenSent,
                            message
                        }
                    },
                ]
            );
            assert_eq!(f.state(), State::Idle);
        }
        // UPDATE in OpenConfirm: 5/2.
        let mut f = to_open_confirm(ibgp(), &clock, peer_open(64512, PEER_ID, 90));
        let a = f.handle(Event::UpdateMsg(C1), clock.at(2));
        assert_eq!(a[0], Action::SendNotification(C1, notification(5, 2)));
        assert_eq!(
            a[1..4],
            [
                Action::StopTimer(Timer::Hold(C1)),
                Action::StopTimer(Timer::Keepalive(C1)),
                Action::CloseConnection(C1)
            ]
        );
        // OPEN in Established: 5/3.
        let mut f = established(ibgp(), &clock);
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, PEER_ID, 90)), clock.at(3));
        assert_eq!(a[0], Action::SendNotification(C1, notification(5, 3)));
        assert!(matches!(
            &a[4],
            Action::SessionDown {
                reason: DownReason::UnexpectedMessage {
                    state: State::Established,
                    message: "OPEN"
                }
            }
        ));
    }

    #[test]
    fn decode_errors_send_their_notification() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let err = DecodeError::new(Reason::MalformedAttributeList("overrun"), 23);
        let a = f.handle(Event::UpdateMsgErr(C1, err.clone()), clock.at(3));
        assert_eq!(a[0], Action::SendNotification(C1, notification(3, 1)));
        assert_eq!(
            a[4],
            Action::SessionDown {
                reason: DownReason::InvalidMessage(err)
            }
        );
        let mut f = open_sent(ibgp(), &clock);
        let err = DecodeError::new(Reason::BadMarker, 0);
        let a = f.handle(Event::BgpHeaderErr(C1, err), clock.at(3));
        assert_eq!(a[0], Action::SendNotification(C1, notification(1, 1)));
        assert_eq!(f.state(), State::Idle);
        let mut f = open_sent(ibgp(), &clock);
        let err = DecodeError::new(Reason::UnsupportedOptionalParameter(3), 29);
        let a = f.handle(Event::BgpOpenMsgErr(C1, err), clock.at(3));
        assert_eq!(a[0], Action::SendNotification(C1, notification(2, 4)));
    }

    #[test]
    fn notification_received_backs_off_doubling_and_capped() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.idle_hold_time = secs(5);
        cfg.max_idle_hold_time = secs(30);
        let mut f = Fsm::new(cfg);
        let mut now = 0;
        let connect_id = |a: &[Action]| {
            a.iter()
                .find_map(|x| match x {
                    Action::Connect(c) => Some(*c),
                    _ => None,
                })
                .expect("Connect action")
        };
        let mut c = connect_id(&f.handle(Event::ManualStart, clock.at(now)));
        let cease = Notification::new(code::CEASE, cease::CONNECTION_REJECTED);
        for base in [5, 10, 20, 30, 30, 30] {
            f.handle(Event::TcpCrAcked(c), clock.at(now));
            f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(now));
            let a = f.handle(Event::NotifMsg(c, cease.clone()), clock.at(now));
            assert_eq!(a.len(), 5, "{a:?}");
            assert_eq!(
                a[..4],
                [
                    Action::StopTimer(Timer::Hold(c)),
                    Action::StopTimer(Timer::Keepalive(c)),
                    Action::CloseConnection(c),
                    Action::SessionDown {
                        reason: DownReason::NotificationReceived(cease.clone())
                    },
                ]
            );
            let d = start_duration(&a[4], Timer::IdleHold);
            assert!(jittered(d, secs(base)), "{d:?} for {base}");
            assert_eq!(f.state(), State::Idle);
            // Automatic starts and early expiries are ignored while the backoff runs.
            assert_eq!(f.handle(Event::AutomaticStart, clock.at(now)), vec![]);
            assert_eq!(f.handle(Event::IdleHoldTimerExpires, clock.at(now)), vec![]);
            assert_eq!(f.state(), State::Idle);
            now += base;
            let a = f.handle(Event::IdleHoldTimerExpires, clock.at(now));
            assert_eq!(a.len(), 2, "{a:?}");
            assert!(matches!(a[0], Action::StartTimer(Timer::ConnectRetry, _)));
            c = connect_id(&a);
            assert_eq!(f.state(), State::Connect);
        }
        // A session that stays up at least max_idle_hold_time resets the backoff.
        f.handle(Event::TcpCrAcked(c), clock.at(now));
        f.handle(Event::BgpOpen(c, peer_open(64512, PEER_ID, 90)), clock.at(now));
        f.handle(Event::KeepAliveMsg(c), clock.at(now));
        assert_eq!(f.state(), State::Established);
        let a = f.handle(Event::TcpConnectionFails(c), clock.at(now + 31));
        assert_eq!(
            a[3],
            Action::SessionDown {
                reason: DownReason::ConnectionClosed
            }
        );
        assert!(jittered(start_duration(&a[4], Timer::IdleHold), secs(5)));
        // ManualStart skips the wait and clears the count.
        let a = f.handle(Event::ManualStart, clock.at(now + 32));
        assert_eq!(a[0], Action::StopTimer(Timer::IdleHold));
        assert_eq!(f.state(), State::Connect);
    }

    #[test]
    fn manual_stop_from_established_sends_shutdown_text() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let a = f.handle(Event::ManualStopWithMessage("maintenance".into()), clock.at(10));
        let sent = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(sent.shutdown_message(), Some("maintenance"));
        assert_eq!(
            a,
            vec![
                Action::SendNotification(C1, sent),
                Action::StopTimer(Timer::Hold(C1)),
                Action::StopTimer(Timer::Keepalive(C1)),
                Action::CloseConnection(C1),
                Action::SessionDown {
                    reason: DownReason::ManualStop(Some("maintenance".into()))
                },
            ]
        );
        assert_eq!(f.state(), State::Idle);
        // No automatic restart: nothing armed, automatic events ignored.
        assert_eq!(f.timers().count(), 0);
        assert_eq!(f.handle(Event::IdleHoldTimerExpires, clock.at(500)), vec![]);
        assert_eq!(f.state(), State::Idle);
        // Without text: a bare 6/2. From Connect: no NOTIFICATION (no OPEN sent).
        let mut f = established(ibgp(), &clock);
        let a = f.handle(Event::ManualStop, clock.at(10));
        assert_eq!(a[0], Action::SendNotification(C1, notification(6, 2)));
        let mut f = Fsm::new(ibgp());
        f.handle(Event::ManualStart, clock.at(0));
        assert_eq!(
            f.handle(Event::ManualStop, clock.at(1)),
            vec![
                Action::CloseConnection(C1),
                Action::StopTimer(Timer::ConnectRetry),
                Action::SessionDown {
                    reason: DownReason::ManualStop(None)
                },
            ]
        );
        // Stopping a stopped FSM does nothing.
        assert_eq!(f.handle(Event::ManualStop, clock.at(2)), vec![]);
    }

    #[test]
    fn automatic_stop_restarts_after_backoff() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let n = Notification::new(code::CEASE, cease::MAX_PREFIXES);
        let a = f.handle(Event::AutomaticStop(n.clone()), clock.at(10));
        assert_eq!(a[0], Action::SendNotification(C1, n.clone()));
        assert_eq!(
            a[4],
            Action::SessionDown {
                reason: DownReason::AutomaticStop(n)
            }
        );
        assert!(jittered(start_duration(&a[5], Timer::IdleHold), secs(5)));
    }

    #[test]
    fn down_reason_log_lines() {
        let n = Notification::shutdown(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(
            DownReason::NotificationReceived(n).to_string(),
            "received NOTIFICATION 6/2 (Cease / Administrative Shutdown): maintenance"
        );
        assert_eq!(
            DownReason::HoldTimerExpired.to_string(),
            "hold timer expired, sent NOTIFICATION 4/0 (Hold Timer Expired / Unspecific)"
        );
        assert_eq!(
            DownReason::OpenRejected(OpenError::BadPeerAs {
                expected: 64512,
                got: 65000
            })
            .to_string(),
            "rejected OPEN: peer AS 65000, expected 64512, sent NOTIFICATION 2/2 (OPEN Message Error / Bad Peer AS)"
        );
        assert_eq!(
            DownReason::UnexpectedMessage {
                state: State::OpenSent,
                message: "UPDATE"
            }
            .to_string(),
            "unexpected UPDATE in OpenSent, sent NOTIFICATION 5/1 (Finite State Machine Error / Unexpected Message in OpenSent State)"
        );
        assert_eq!(
            DownReason::NotificationReceived(Notification {
                code: 3,
                subcode: 1,
                data: vec![0xde, 0xad]
            })
            .to_string(),
            "received NOTIFICATION 3/1 (UPDATE Message Error / Malformed Attribute List) data dead"
        );
        assert_eq!(
            DownReason::ManualStop(Some("bye".into())).to_string(),
            "administrative shutdown, sent NOTIFICATION 6/2 (Cease / Administrative Shutdown): bye"
        );
    }

    /// Both sides connect: C1 is ours (OpenSent), the peer's comes in as the
    /// returned id (OpenSent too).
    fn two_connections(local_id: Ipv4Addr, clock: &Clock) -> (Fsm, ConnId) {
        let mut cfg = ibgp();
        cfg.local_id = local_id;
        let mut f = open_sent(cfg, clock);
        let c2 = f.new_conn_id();
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1)),
            vec![
                Action::SendOpen(c2, f.local_open().clone()),
                Action::StartTimer(Timer::Hold(c2), OPEN_HOLD_TIME)
            ]
        );
        assert_eq!(f.connection_state(C1), Some(State::OpenSent));
        assert_eq!(f.connection_state(c2), Some(State::OpenSent));
        (f, c2)
    }

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn collision_local_id_higher_closes_incoming() {
        let clock = Clock::new();
        let collision = notification(6, 7);
        // OPEN on ours first, then on theirs: the incoming one (just opened) loses.
        let (mut f, c2) = two_connections(HIGH, &clock);
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
        assert_eq!(a[0], Action::SendKeepalive(C1));
        assert_eq!(f.connection_state(C1), Some(State::OpenConfirm));
        let a = f.handle(Event::BgpOpen(c2, peer_open(64512, LOW, 90)), clock.at(2));
        assert_eq!(
            a,
            vec![
                Action::SendNotification(c2, collision.clone()),
                Action::StopTimer(Timer::Hold(c2)),
                Action::CloseConnection(c2),
            ]
        );
        assert_eq!(f.connection_state(c2), None);
        assert_eq!(f.state(), State::OpenConfirm);
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
        assert!(matches!(a[1], Action::Established(C1, _)));

        // OPEN on theirs first (OpenConfirm), then ours: the incoming one is closed
        // and ours proceeds to OpenConfirm.
        let (mut f, c2) = two_connections(HIGH, &clock);
        f.handle(Event::BgpOpen(c2, peer_open(64512, LOW, 90)), clock.at(2));
        assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
        let a = f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
        assert_eq!(a.len(), 7, "{a:?}");
        assert_eq!(
            a[..5],
            [
                Action::SendNotification(c2, collision),
                Action::StopTimer(Timer::Hold(c2)),
                Action::StopTimer(Timer::Keepalive(c2)),
                Action::CloseConnection(c2),
                Action::SendKeepalive(C1),
            ]
        );
        assert_eq!(a[6], Action::StartTimer(Timer::Hold(C1), secs(90)));
        assert_eq!(f.connection_state(C1), Some(State::OpenConfirm));
        // A late stale timer for the closed connection is ignored.
        assert_eq!(f.handle(Event::HoldTimerExpires(c2), clock.at(999)), vec![]);
    }

    #[test]
    fn collision_local_id_lower_closes_outgoing() {
        let clock = Clock::new();
        let (mut f, c2) = two_connections(LOW, &clock);
        f.handle(Event::BgpOpen(C1, peer_open(64512, HIGH, 90)), clock.at(2));
        let a = f.handle(Event::BgpOpen(c2, peer_open(64512, HIGH, 90)), clock.at(2));
        assert_eq!(a.len(), 7, "{a:?}");
        assert_eq!(
            a[..5],
            [
                Action::SendNotification(C1, notification(6, 7)),
                Action::StopTimer(Timer::Hold(C1)),
                Action::StopTimer(Timer::Keepalive(C1)),
                Action::CloseConnection(C1),
                Action::SendKeepalive(c2),
            ]
        );
        start_duration(&a[5], Timer::Keepalive(c2));
        assert_eq!(a[6], Action::StartTimer(Timer::Hold(c2), secs(90)));
        let a = f.handle(Event::KeepAliveMsg(c2), clock.at(3));
        assert_eq!(a[0], Action::StartTimer(Timer::Hold(c2), secs(90)));
        assert!(matches!(&a[1], Action::Established(c, n) if *c == c2 && n.peer_id == HIGH));
        assert_eq!(f.established_conn(), Some(c2));
        assert_eq!(f.state(), State::Established);
    }

    #[test]
    fn collision_with_equal_ids_keeps_the_larger_as() {
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.local_id = LOW;
        cfg.peer_asn = 65001; // eBGP, our 64512 is smaller: ours loses.
        let mut f = open_sent(cfg, &clock);
        let c2 = f.new_conn_id();
        f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1));
        f.handle(Event::BgpOpen(c2, peer_open(65001, LOW, 90)), clock.at(2));
        let a = f.handle(Event::BgpOpen(C1, peer_open(65001, LOW, 90)), clock.at(2));
        assert_eq!(
            a,
            vec![
                Action::SendNotification(C1, notification(6, 7)),
                Action::StopTimer(Timer::Hold(C1)),
                Action::CloseConnection(C1),
            ]
        );
        assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
    }

    #[test]
    fn established_closes_the_other_connection() {
        let clock = Clock::new();
        let (mut f, c2) = two_connections(HIGH, &clock);
        f.handle(Event::BgpOpen(C1, peer_open(64512, LOW, 90)), clock.at(2));
        // c2 still waits for the peer's OPEN when C1 comes up.
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(3));
        assert_eq!(
            a[..4],
            [
                Action::StartTimer(Timer::Hold(C1), secs(90)),
                Action::SendNotification(c2, notification(6, 7)),
                Action::StopTimer(Timer::Hold(c2)),
                Action::CloseConnection(c2),
            ]
        );
        assert!(matches!(a[4], Action::Established(C1, _)));
        assert_eq!(f.connection_state(c2), None);
    }

    #[test]
    fn a_silent_incoming_connection_gives_way_to_a_new_one() {
        let clock = Clock::new();
        let mut f = Fsm::new(FsmConfig {
            passive: true,
            ..ibgp()
        });
        f.handle(Event::ManualStart, clock.at(0));
        let first = f.new_conn_id();
        f.handle(Event::TcpConnectionConfirmed(first), clock.at(1));
        assert_eq!(f.connection_state(first), Some(State::OpenSent));
        // The peer never sends an OPEN on it; a second connection arrives.
        let second = f.new_conn_id();
        let a = f.handle(Event::TcpConnectionConfirmed(second), clock.at(2));
        assert!(a.contains(&Action::CloseConnection(first)), "{a:?}");
        assert!(
            a.iter().any(|x| matches!(x, Action::SendOpen(c, _) if *c == second)),
            "{a:?}"
        );
        assert_eq!(f.connection_state(first), None);
        assert_eq!(f.connection_state(second), Some(State::OpenSent));
    }

    #[test]
    fn incoming_while_established_is_closed() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let c3 = f.new_conn_id();
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(c3), clock.at(5)),
            vec![
                Action::SendNotification(c3, notification(6, 7)),
                Action::CloseConnection(c3),
            ]
        );
        assert_eq!(f.state(), State::Established);
        assert_eq!(f.established_conn(), Some(C1));
        assert_eq!(f.connection_state(c3), None);
    }

    #[test]
    fn incoming_while_connecting_replaces_our_attempt() {
        let clock = Clock::new();
        let mut f = Fsm::new(ibgp());
        f.handle(Event::ManualStart, clock.at(0));
        let c2 = f.new_conn_id();
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(c2), clock.at(1)),
            vec![
                Action::CloseConnection(C1),
                Action::StopTimer(Timer::ConnectRetry),
                Action::SendOpen(c2, f.local_open().clone()),
                Action::StartTimer(Timer::Hold(c2), OPEN_HOLD_TIME),
            ]
        );
        assert_eq!(f.state(), State::OpenSent);
        // Our abandoned connect completing late is closed.
        assert_eq!(
            f.handle(Event::TcpCrAcked(C1), clock.at(2)),
            vec![Action::CloseConnection(C1)]
        );
        // Once the incoming connection has carried the peer's OPEN, a second
        // incoming connection is refused.
        f.handle(Event::BgpOpen(c2, peer_open(64512, PEER_ID, 90)), clock.at(2));
        assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
        let c3 = f.new_conn_id();
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(c3), clock.at(2)),
            vec![Action::CloseConnection(c3)]
        );
        assert_eq!(f.connection_state(c2), Some(State::OpenConfirm));
    }

    #[test]
    fn idle_refuses_incoming() {
        let clock = Clock::new();
        let mut f = Fsm::new(ibgp());
        assert_eq!(
            f.handle(Event::TcpConnectionConfirmed(ConnId(77)), clock.at(0)),
            vec![Action::CloseConnection(ConnId(77))]
        );
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn connect_failure_and_retry() {
        let clock = Clock::new();
        let mut f = Fsm::new(ibgp());
        f.handle(Event::ManualStart, clock.at(0));
        assert_eq!(
            f.handle(Event::TcpConnectionFails(C1), clock.at(1)),
            vec![Action::CloseConnection(C1)]
        );
        assert_eq!(f.state(), State::Active);
        let (t, deadline) = f.next_timer().expect("connect retry armed");
        assert_eq!(t, Timer::ConnectRetry);
        // Reported up to the slack early still counts (timer wheels round).
        let a = f.handle(Event::ConnectRetryTimerExpires, deadline - TIMER_SLACK);
        assert_eq!(a.len(), 2);
        assert!(jittered(start_duration(&a[0], Timer::ConnectRetry), secs(120)));
        assert_eq!(a[1], Action::Connect(ConnId(2)));
        assert_eq!(f.state(), State::Connect);
        // No answer at all: the attempt is dropped and a new one made.
        let (_, deadline) = f.next_timer().expect("armed");
        let a = f.handle(Event::ConnectRetryTimerExpires, deadline);
        assert_eq!(a[0], Action::CloseConnection(ConnId(2)));
        assert_eq!(a[2], Action::Connect(ConnId(3)));
        // TCP lost in OpenSent: Active with ConnectRetry restarted.
        f.handle(Event::TcpCrAcked(ConnId(3)), clock.at(300));
        let a = f.handle(Event::TcpConnectionFails(ConnId(3)), clock.at(301));
        assert_eq!(
            a[..2],
            [
                Action::StopTimer(Timer::Hold(ConnId(3))),
                Action::CloseConnection(ConnId(3))
            ]
        );
        start_duration(&a[2], Timer::ConnectRetry);
        assert_eq!(f.state(), State::Active);
        assert_eq!(f.last_error(), Some(&DownReason::ConnectionClosed));
    }

    #[test]
    fn negotiation_from_realistic_opens() {
        let v4 = Family::IPV4_UNICAST;
        let v6 = Family::IPV6_UNICAST;
        let v4_multicast = Family::new(Afi::IPV4, Safi::MULTICAST);
        let ours = Open::new(
            64512,
            90,
            LOCAL_ID,
            vec![
                Capability::Multiprotocol(v4),
                Capability::Multiprotocol(v6),
                Capability::RouteRefresh,
                Capability::ExtendedMessage,
                Capability::FourOctetAs(64512),
                Capability::AddPath(vec![(v4, AddPathMode::Both), (v6, AddPathMode::Both)]),
                Capability::GracefulRestart(GracefulRestart {
                    restarting: false,
                    notification: true,
                    restart_time: 120,
                    families: vec![GracefulRestartFamily {
                        family: v4,
                        forwarding_preserved: false,
                    }],
                }),
                Capability::ExtendedNextHop(vec![ExtendedNextHop {
                    family: v4,
                    next_hop_afi: Afi::IPV6,
                }]),
            ],
        );
        // A BIRD-like peer: one parameter per capability.
        let mut theirs = Open::new(4_200_000_001, 240, PEER_ID, vec![]);
        theirs.capability_groups = vec![
            Capability::Multiprotocol(v4),
            Capability::Multiprotocol(v6),
            Capability::Multiprotocol(v4_multicast),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(4_200_000_001),
            Capability::AddPath(vec![(v4, AddPathMode::Receive), (v6, AddPathMode::Send)]),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: true,
                restart_time: 90,
                families: vec![
                    GracefulRestartFamily {
                        family: v4,
                        forwarding_preserved: true,
                    },
                    GracefulRestartFamily {
                        family: v6,
                        forwarding_preserved: false,
                    },
                    GracefulRestartFamily {
                        family: v4_multicast,
                        forwarding_preserved: true,
                    },
                ],
            }),
            Capability::LongLivedGracefulRestart(vec![LlgrFamily {
                family: v6,
                forwarding_preserved: false,
                stale_time: 3600,
            }]),
            Capability::ExtendedNextHop(vec![
                ExtendedNextHop {
                    family: v4,
                    next_hop_afi: Afi::IPV6,
                },
                ExtendedNextHop {
                    family: v4_multicast,
                    next_hop_afi: Afi::IPV6,
                },
            ]),
            Capability::Fqdn {
                hostname: b"node-2".to_vec(),
                domain: b"cluster.local".to_vec(),
            },
        ]
        .into_iter()
        .map(|c| vec![c])
        .collect();
        // Through the wire codec, so the capabilities are what a decoder yields.
        let mut body = Vec::new();
        theirs.encode_body(&mut body).unwrap();
        let theirs = Open::decode(&body).expect("valid OPEN");
        let n = Negotiated::new(&ours, &theirs);
        assert_eq!(n.peer_asn, 4_200_000_001);
        assert_eq!(n.peer_id, PEER_ID);
        assert_eq!((n.hold_time, n.keepalive_time), (90, 30));
        assert!(n.four_octet_as && n.extended_message);
        assert!(n.route_refresh && n.enhanced_route_refresh);
        assert_eq!(n.families.iter().collect::<Vec<_>>(), vec![v4, v6]);
        assert_eq!(n.add_path_send.iter().collect::<Vec<_>>(), vec![v4]);
        assert_eq!(n.add_path_receive.iter().collect::<Vec<_>>(), vec![v6]);
        let gr = n.graceful_restart.as_ref().expect("peer sent GR");
        assert!(gr.restarting && gr.notification);
        assert_eq!(gr.restart_time, 90);
        assert_eq!(
            gr.families,
            vec![
                GracefulRestartFamily {
                    family: v4,
                    forwarding_preserved: true
                },
                GracefulRestartFamily {
                    family: v6,
                    forwarding_preserved: false
                },
            ]
        );
        assert_eq!(
            n.llgr,
            vec![LlgrFamily {
                family: v6,
                forwarding_preserved: false,
                stale_time: 3600
            }]
        );
        assert_eq!(
            n.extended_next_hop,
            vec![ExtendedNextHop {
                family: v4,
                next_hop_afi: Afi::IPV6
            }]
        );
        assert_eq!(n.peer_hostname.as_deref(), Some("node-2"));
        assert_eq!(n.peer_domain.as_deref(), Some("cluster.local"));
        assert_eq!(n.peer_role, None);
        assert_eq!(
            n.rx_context(),
            Context {
                four_octet_as: true,
                max_message_len: 65535,
                add_path: [v6].into_iter().collect(),
            }
        );
        assert_eq!(
            n.tx_context(),
            Context {
                four_octet_as: true,
                max_message_len: 65535,
                add_path: [v4].into_iter().collect(),
            }
        );

        // A legacy peer with no capabilities: IPv4 unicast only, 2-octet AS,
        // 4096-byte messages, no refresh (RFC 4760 §8, RFC 6793).
        let legacy = Open::new(65001, 180, PEER_ID, vec![]);
        let n = Negotiated::new(&ours, &legacy);
        assert_eq!(n.families.iter().collect::<Vec<_>>(), vec![v4]);
        assert_eq!(n.hold_time, 90);
        assert!(!n.four_octet_as && !n.extended_message && !n.route_refresh);
        assert_eq!(n.graceful_restart, None);
        assert_eq!(n.rx_context(), Context::legacy());
        assert_eq!(n.tx_context(), Context::legacy());
        // Pre-standard route refresh (code 128) counts.
        let old = Open::new(
            65001,
            180,
            PEER_ID,
            vec![Capability::Unknown {
                code: 128,
                value: vec![],
            }],
        );
        assert!(Negotiated::new(&ours, &old).route_refresh);

        // The same through the FSM: the Established action carries it.
        let clock = Clock::new();
        let mut cfg = ibgp();
        cfg.peer_asn = 4_200_000_001;
        cfg.capabilities = ours.capabilities().cloned().collect();
        let mut f = to_open_confirm(cfg, &clock, theirs);
        let a = f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        let Action::Established(_, n) = &a[1] else {
            panic!("{a:?}");
        };
        assert_eq!(n.add_path_send.iter().collect::<Vec<_>>(), vec![v4]);
        assert_eq!(n.hold_time, 90);
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        for seed in [0, 1, SEED, u64::MAX] {
            let mut j = Jitter::new(seed);
            let draws: Vec<Duration> = (0..10_000).map(|_| j.scale(secs(100))).collect();
            assert!(draws.iter().all(|d| jittered(*d, secs(100))));
            assert!(draws.iter().min() < Some(&secs(76)));
            assert!(draws.iter().max() > Some(&secs(99)));
        }
        assert_eq!(Jitter::new(0).scale(Duration::ZERO), Duration::ZERO);
        assert!(Jitter::new(5).scale(Duration::MAX) <= Duration::MAX);
        // Same seed, same actions; another seed, other durations.
        let clock = Clock::new();
        let run = |seed| {
            let mut cfg = ibgp();
            cfg.jitter_seed = seed;
            Fsm::new(cfg).handle(Event::ManualStart, clock.at(0))
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn stale_and_unknown_events_are_ignored() {
        let clock = Clock::new();
        let mut f = established(ibgp(), &clock);
        let other = ConnId(99);
        for e in [
            Event::KeepAliveMsg(other),
            Event::UpdateMsg(other),
            Event::NotifMsg(other, notification(6, 2)),
            Event::TcpConnectionFails(other),
            Event::HoldTimerExpires(other),
            Event::DelayOpenTimerExpires(C1),
            Event::ConnectRetryTimerExpires,
            Event::IdleHoldTimerExpires,
            Event::ManualStart,
        ] {
            assert_eq!(f.handle(e.clone(), clock.at(5)), vec![], "{e:?}");
        }
        assert_eq!(f.state(), State::Established);
    }

    /// Random event sequences: nothing panics and the invariants hold.
    #[test]
    fn random_events_keep_invariants() {
        let clock = Clock::new();
        let (mut established, mut collisions, mut failures) = (0, 0, 0);
        for seed in 1..40u64 {
            let mut cfg = ibgp();
            cfg.jitter_seed = seed;
            cfg.passive = seed % 5 == 1;
            cfg.delay_open = (seed % 3 == 1).then(|| secs(2));
            cfg.hold_time = if seed % 7 == 1 { 0 } else { 9 };
            let mut f = Fsm::new(cfg);
            let mut rng = Jitter::new(seed * 7919);
            let mut ms = 0u64;
            let mut open_ids = vec![ConnId(1)];
            for _ in 0..3000 {
                ms += rng.next_u64() % 3000;
                let now = clock.at_ms(ms);
                // Mostly a live connection (sometimes a dead or unknown one).
                let c = if !f.conns.is_empty() && rng.next_u64() & 7 != 0 {
                    f.conns[(rng.next_u64() % f.conns.len() as u64) as usize].id
                } else {
                    open_ids[(rng.next_u64() % open_ids.len() as u64) as usize]
                };
                let peer_id = if rng.next_u64() & 1 == 0 { LOW } else { HIGH };
                // Half the time, what a well-behaved peer would do next.
                let polite = match f.conn(c).map(|x| (x.phase, x.dir)) {
                    Some((Phase::Connecting, Direction::Outgoing)) => Some(Event::TcpCrAcked(c)),
                    Some((Phase::DelayOpen | Phase::OpenSent, _)) => {
                        Some(Event::BgpOpen(c, peer_open(64512, peer_id, 9)))
                    }
                    Some((Phase::OpenConfirm | Phase::Established, _)) => Some(Event::KeepAliveMsg(c)),
                    _ => None,
                };
                let event = match rng.next_u64() % 40 {
                    20..=39 if polite.is_some() => polite.unwrap_or(Event::ManualStart),
                    0 => Event::ManualStart,
                    1 => Event::AutomaticStart,
                    2 if rng.next_u64() & 7 == 0 => Event::ManualStop,
                    3 => {
                        let id = f.new_conn_id();
                        open_ids.push(id);
                        Event::TcpConnectionConfirmed(id)
                    }
                    4 => Event::TcpCrAcked(c),
                    5 if rng.next_u64() & 3 == 0 => Event::TcpConnectionFails(c),
                    6..=8 => Event::BgpOpen(c, peer_open(64512, peer_id, 9)),
                    9..=11 => Event::KeepAliveMsg(c),
                    12 => Event::UpdateMsg(c),
                    13 if rng.next_u64() & 7 == 0 => Event::NotifMsg(c, notification(6, 4)),
                    _ => match f.next_timer() {
                        Some((t, deadline)) => {
                            ms = ms.max(deadline.duration_since(clock.0).as_millis() as u64);
                            t.expiry_event()
                        }
                        None => Event::AutomaticStart,
                    },
                };
                let now = now.max(clock.at_ms(ms));
                for a in f.handle(event, now) {
                    match a {
                        Action::Connect(id) => open_ids.push(id),
                        Action::Established(..) => established += 1,
                        Action::SendNotification(_, n) if (n.code, n.subcode) == (6, 7) => collisions += 1,
                        Action::SessionDown { .. } => failures += 1,
                        _ => {}
                    }
                }
                let incoming = f.conns.iter().filter(|c| c.dir == Direction::Incoming);
                let outgoing = f.conns.iter().filter(|c| c.dir == Direction::Outgoing);
                assert!(incoming.count() <= 1 && outgoing.count() <= 1);
                if f.established_conn().is_some() {
                    assert_eq!(f.conns.len(), 1);
                    assert_eq!(f.state(), State::Established);
                    assert!(f.established_since().is_some());
                }
                if f.mode != Mode::Running {
                    assert!(f.conns.is_empty());
                }
                assert_eq!(f.is_armed(Timer::IdleHold), f.mode == Mode::Waiting, "{f:?}");
                // Timers only for live connections.
                for (t, _) in f.timers() {
                    if let Timer::Hold(id) | Timer::Keepalive(id) | Timer::DelayOpen(id) = t {
                        assert!(f.conn(id).is_some(), "{t:?} for a closed connection");
                    }
                }
            }
        }
        // The walk must reach the interesting places, or it proves little.
        assert!(
            established > 1000 && collisions > 200 && failures > 1000,
            "{established} {collisions} {failures}"
        );
    }

    /// A GR capability for IPv4 with the N bit as given (RFC 4724, RFC 8538).
    fn gr(notification: bool) -> Capability {
        Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        })
    }

    /// Established on C1 with both sides announcing GR (with the N bit as given).
    fn established_with_gr(notification: bool, clock: &Clock) -> Fsm {
        let mut cfg = ibgp();
        cfg.capabilities.push(gr(notification));
        let mut open = peer_open(cfg.peer_asn, PEER_ID, 90);
        open.capability_groups.push(vec![gr(notification)]);
        let mut f = to_open_confirm(cfg, clock, open);
        f.handle(Event::KeepAliveMsg(C1), clock.at(2));
        assert_eq!(f.state(), State::Established);
        f
    }

    #[test]
    fn a_new_connection_from_a_graceful_restart_peer_replaces_the_established_one() {
        let clock = Clock::new();
        let mut f = established_with_gr(false, &clock);
        let c3 = f.new_conn_id();
        let a = f.handle(Event::TcpConnectionConfirmed(c3), clock.at(5));
        // RFC 4724 §4.2: the old session is closed (no NOTIFICATION), the new one kept.
        assert!(a.contains(&Action::CloseConnection(C1)), "{a:?}");
        assert!(a.contains(&Action::SessionDown {
            reason: DownReason::ConnectionClosed
        }));
        assert!(!a.iter().any(|x| matches!(x, Action::SendNotification(..))), "{a:?}");
        assert!(a.contains(&Action::SendOpen(c3, f.local_open().clone())));
        assert_eq!(f.established_conn(), None);
        assert!(f.connection_state(c3).is_some());
    }

    #[test]
    fn with_the_n_bit_an_administrative_stop_is_sent_as_a_hard_reset() {
        let clock = Clock::new();
        let mut f = established_with_gr(true, &clock);
        assert!(f.negotiated().is_some_and(|n| n.graceful_notification));
        let a = f.handle(Event::ManualStop, clock.at(5));
        let sent = a.iter().find_map(|x| match x {
            Action::SendNotification(_, n) => Some(n.clone()),
            _ => None,
        });
        // RFC 8538 §5: Cease / Hard Reset carrying Cease / Administrative Shutdown.
        assert_eq!(
            sent,
            Some(Notification {
                code: 6,
                subcode: 9,
                data: vec![6, 2]
            })
        );
    }

    #[test]
    fn without_the_n_bit_an_administrative_stop_is_a_plain_cease() {
        let clock = Clock::new();
        let mut f = established_with_gr(false, &clock);
        assert!(f.negotiated().is_some_and(|n| !n.graceful_notification));
        let a = f.handle(Event::ManualStop, clock.at(5));
        assert!(a.contains(&Action::SendNotification(C1, notification(6, 2))), "{a:?}");
    }
}
