//! Typed decode errors, each mapping to the NOTIFICATION it must cause, the
//! RFC 7606 treatments for malformed UPDATE attributes, and encode errors.
//!
//! A leaf below the message modules: turning a [`DecodeError`] into a
//! NOTIFICATION is `impl From<&DecodeError> for Notification`, in
//! `notification.rs`, so this file does not import the messages.

use crate::framing::FrameError;
use crate::types::Family;

/// NOTIFICATION error codes (RFC 4271 §4.5).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Why a message could not be decoded. Each variant maps to exactly one
/// NOTIFICATION code/subcode (see [`Reason::notification_code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    // --- Message Header Error (1), RFC 4271 §6.1 ---
    #[error("connection not synchronized (marker not all ones)")]
    BadMarker,
    #[error("bad message length {0}")]
    BadLength(u16),
    #[error("bad message type {0}")]
    BadType(u8),
    // --- OPEN Message Error (2), RFC 4271 §6.2 ---
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    #[error("bad peer AS {0}")]
    BadPeerAs(u32),
    #[error("bad BGP identifier {0}")]
    BadBgpId(std::net::Ipv4Addr),
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("unacceptable hold time {0}")]
    UnacceptableHoldTime(u16),
    #[error("unsupported capability")]
    UnsupportedCapability,
    #[error("malformed OPEN: {0}")]
    MalformedOpen(&'static str),
    // --- UPDATE Message Error (3), RFC 4271 §6.3 ---
    #[error("malformed attribute list: {0}")]
    MalformedAttributeList(&'static str),
    #[error("unrecognized well-known attribute {0}")]
    UnrecognizedWellKnown(u8),
    #[error("missing well-known attribute {0}")]
    MissingWellKnown(u8),
    #[error("attribute flags error (type {0})")]
    AttributeFlags(u8),
    #[error("attribute length error (type {0})")]
    AttributeLength(u8),
    #[error("invalid ORIGIN value {0}")]
    InvalidOrigin(u8),
    #[error("invalid NEXT_HOP {0}")]
    InvalidNextHop(std::net::IpAddr),
    #[error("optional attribute error (type {0}): {1}")]
    OptionalAttribute(u8, &'static str),
    #[error("invalid network field: {0}")]
    InvalidNetworkField(&'static str),
    #[error("malformed AS_PATH: {0}")]
    MalformedAsPath(&'static str),
    // --- ROUTE-REFRESH Message Error (7), RFC 7313 §5 ---
    #[error("invalid ROUTE-REFRESH message length {0}")]
    RouteRefreshLength(u16),
    // --- other message bodies ---
    #[error("truncated {0}")]
    Truncated(&'static str),
}

impl Reason {
    /// The NOTIFICATION (code, subcode) this problem must be reported with.
    pub fn notification_code(&self) -> (u8, u8) {
        use Reason::*;
        match self {
            BadMarker => (1, 1),
            BadLength(_) => (1, 2),
            BadType(_) => (1, 3),
            UnsupportedVersion(_) => (2, 1),
            BadPeerAs(_) => (2, 2),
            BadBgpId(_) => (2, 3),
            UnsupportedOptionalParameter(_) => (2, 4),
            UnacceptableHoldTime(_) => (2, 6),
            UnsupportedCapability => (2, 7),
            // RFC 4271 §6.2: a malformed OPEN without a specific subcode uses subcode 0.
            MalformedOpen(_) => (2, 0),
            MalformedAttributeList(_) => (3, 1),
            UnrecognizedWellKnown(_) => (3, 2),
            MissingWellKnown(_) => (3, 3),
            AttributeFlags(_) => (3, 4),
            AttributeLength(_) => (3, 5),
            InvalidOrigin(_) => (3, 6),
            InvalidNextHop(_) => (3, 8),
            OptionalAttribute(..) => (3, 9),
            InvalidNetworkField(_) => (3, 10),
            MalformedAsPath(_) => (3, 11),
            RouteRefreshLength(_) => (7, 1),
            // A body shorter than its fixed part: the message length is wrong.
            Truncated(_) => (1, 2),
        }
    }
}

/// A message that cannot be accepted: the session must be reset with the
/// NOTIFICATION given by `reason`, carrying `data`. `offset` is the byte
/// offset from the start of the message (header included) where decoding failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at offset {offset}")]
pub struct DecodeError {
    pub reason: Reason,
    pub offset: usize,
    /// NOTIFICATION data field (RFC 4271 §6: e.g. the erroneous attribute).
    pub data: Vec<u8>,
}

impl DecodeError {
    pub fn new(reason: Reason, offset: usize) -> DecodeError {
        DecodeError {
            reason,
            offset,
            data: Vec::new(),
        }
    }

    pub fn with_data(mut self, data: Vec<u8>) -> DecodeError {
        self.data = data;
        self
    }

    /// NOTIFICATION (code, subcode) to send.
    pub fn notification_code(&self) -> (u8, u8) {
        self.reason.notification_code()
    }
}

/// A stream that cannot be framed fails like a header that cannot be decoded:
/// same [`Reason`] and offset as `decode` gives, and for a bad length
/// the length field as data (RFC 4271 §6.1).
impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> DecodeError {
        match e {
            FrameError::BadMarker => DecodeError::new(Reason::BadMarker, 0),
            FrameError::BadLength(len) => {
                DecodeError::new(Reason::BadLength(len), 16).with_data(len.to_be_bytes().to_vec())
            }
        }
    }
}

/// RFC 7606 §2: how an UPDATE with malformed attributes is handled, from
/// weakest to strongest (§3 h: when several apply, the strongest wins).
/// Session reset is not a treatment: it is a [`DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Treatment {
    /// Nothing wrong.
    None,
    /// The malformed attribute was dropped; the routes are used (§2 "attribute discard").
    AttributeDiscard,
    /// Every route in the UPDATE is withdrawn (§2 "treat-as-withdraw").
    TreatAsWithdraw,
    /// The whole family must be disabled on this session (§2 "AFI/SAFI disable").
    AfiSafiDisable(Family),
}

impl Treatment {
    /// The stronger of two treatments (RFC 7606 §3 h).
    pub fn max(self, other: Treatment) -> Treatment {
        if other > self {
            other
        } else {
            self
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Treatment::None => "none",
            Treatment::AttributeDiscard => "attribute-discard",
            Treatment::TreatAsWithdraw => "treat-as-withdraw",
            Treatment::AfiSafiDisable(_) => "afi-safi-disable",
        }
    }
}

/// One malformed attribute that did not reset the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeError {
    /// Attribute type code.
    pub type_code: u8,
    /// Offset of the attribute's flags byte from the start of the message.
    pub offset: usize,
    pub reason: Reason,
    pub treatment: Treatment,
}

/// Why a message could not be encoded. Encoding never truncates silently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the maximum of {max}")]
    MessageTooLong { len: usize, max: usize },
    #[error("attribute {0} is longer than 65535 octets")]
    AttributeTooLong(u8),
    #[error("the shared attributes leave no room for a single prefix")]
    AttributesTooLarge,
    #[error("IPv4 unicast in the NLRI field needs an IPv4 next hop")]
    NextHopFamily,
    #[error("capability {0} is longer than 255 octets")]
    CapabilityTooLong(u8),
}
