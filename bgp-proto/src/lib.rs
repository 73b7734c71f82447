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
pub mod header;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod types;
pub mod update;
mod wire;

pub use error::{AttributeError, DecodeError, EncodeError, Reason, Treatment};
pub use header::MessageType;
pub use message::{decode, Decoded, Message};
pub use nlri::Nlri;
pub use types::{Afi, Context, Family, FamilySet, Safi};
