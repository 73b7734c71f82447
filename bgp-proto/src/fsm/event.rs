//! The FSM's vocabulary with its caller: connections ([`ConnId`],
//! [`Direction`]), inputs ([`Event`], numbered as in RFC 4271 §8.1), outputs
//! ([`Action`]) and the timers it keeps ([`Timer`]).

use super::negotiated::Negotiated;
use super::reason::DownReason;
use crate::error::DecodeError;
use crate::notification::Notification;
use crate::open::Open;

/// Identifies a TCP connection. Outgoing ids come from the FSM (in
/// [`Action::Connect`]); incoming ones from [`Fsm::new_conn_id`](super::Fsm::new_conn_id), so they never clash.
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

/// A timer the FSM keeps; the caller learns the next deadline from
/// [`Fsm::next_timer`](super::Fsm::next_timer) and feeds back
/// [`expiry_event`](Timer::expiry_event). Per-connection timers carry the
/// connection, because during a collision two connections each have their own.
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
    /// The session is up on this connection: exchange routes with these parameters.
    Established(ConnId, Box<Negotiated>),
    /// The session went to Idle (from Established, or a failed attempt):
    /// drop the peer's routes.
    SessionDown {
        reason: DownReason,
    },
}
