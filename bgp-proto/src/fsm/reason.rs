//! Why an OPEN was refused ([`OpenError`]) and why a session ended
//! ([`DownReason`]), each with the NOTIFICATION it was reported with.

use std::fmt;
use std::net::Ipv4Addr;

use super::config::State;
use crate::capability::Role;
use crate::error::{code, DecodeError};
use crate::notification::{cease, Notification};

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

/// RFC 8538 §5: with the N bit negotiated, the Cease subcodes that mean "this
/// session is over" (Maximum Number of Prefixes, Administrative Shutdown,
/// Peer De-configured, Administrative Reset) go as a Hard Reset carrying them,
/// so the peer removes our routes instead of keeping them as stale.
pub fn hard_reset_for(n: Notification) -> Notification {
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
