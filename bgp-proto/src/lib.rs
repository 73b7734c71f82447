//! BGP-4 wire codec and session state machine.
//!
//! Pure: no tokio, no sockets, no clock. Callers feed bytes and events in and
//! get messages and actions out. Negotiated session state travels in a
//! [`Context`] that drives both decoding and encoding.
//!
//! No input makes [`decode`] or [`framing::next_message_len`] panic: every
//! malformed message is a [`DecodeError`] or [`framing::FrameError`].
//! `fuzzing.rs` holds the entry points that check it, run by cargo-fuzz
//! (`fuzz/`) and, on stable, over the corpus by `tests/fuzz_corpus.rs`.
//!
//! No `unsafe` anywhere in this crate (`forbid` below).

#![forbid(unsafe_code)]

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
