//! BGP-4 wire codec and session state machine.
//!
//! Pure: no tokio, no sockets, no clock. Callers feed bytes and events in and
//! get messages and actions out. Negotiated session state travels in a
//! [`Context`] that drives both decoding and encoding.

pub mod attributes;
pub mod capability;
pub mod error;
pub mod framing;
pub mod fsm;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod types;
pub mod update;
mod wire;

pub use error::{AttributeError, DecodeError, Reason, Treatment};
pub use message::{decode, Decoded, Message, MessageType};
pub use nlri::Nlri;
pub use types::{Afi, Context, Family, FamilySet, Safi};

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
