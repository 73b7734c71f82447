//! Bidirectional Forwarding Detection (BFD) for tern: the RFC 5880 Control
//! packet codec and the per-session state machine, in asynchronous mode.
//!
//! BFD tells a client (here BGP) within a fraction of a second that the
//! forwarding path to a neighbour is gone, far sooner than a BGP hold timer.
//!
//! The crate is sans-IO: no sockets, no tokio, no clock, no global
//! randomness. The caller decodes UDP payloads with [`decode`], feeds them to
//! [`Session::receive`] with the current [`std::time::Instant`], asks
//! [`Session::poll_transmit`] for packets to send, sleeps until
//! [`Session::next_deadline`] and then calls [`Session::on_timer`]. Jitter
//! comes from a caller-chosen [`RandomSource`]. So every timing rule can be
//! tested exactly with a fake clock, and the daemon decides how to do I/O
//! (RFC 5881 single-hop and RFC 5883 multihop constants are in [`udp`]).
//!
//! Not supported: authentication (packets with the A bit are discarded, RFC
//! 5880 §6.8.6), the Echo function, and local Demand mode (a remote asking
//! for Demand mode is honoured, §6.8.7).
//!
//! No input makes [`decode`] or a [`Session`] panic; `fuzzing.rs` holds the
//! entry point that checks it, run by cargo-fuzz (`fuzz/`, target
//! `bfd_control`) and, on stable, by `tests/fuzz_corpus.rs`.

#[doc(hidden)]
pub mod fuzzing;
pub mod packet;
pub mod session;
pub mod timers;

pub use packet::{check, decode, encode, ControlPacket, DecodeError, Diagnostic, State};
pub use session::{ConfigError, Discard, Event, Session, SessionConfig};
pub use timers::{jittered, jittered_with_slack, RandomSource, XorShift64, SLOW_TX_INTERVAL};

/// UDP transport constants for the daemon (RFC 5881, RFC 5883).
pub mod udp {
    use std::ops::RangeInclusive;

    /// Destination port of single-hop Control packets (RFC 5881 §4).
    pub const SINGLE_HOP_PORT: u16 = 3784;
    /// Destination port of single-hop Echo packets (RFC 5881 §4); unused, no Echo.
    pub const ECHO_PORT: u16 = 3785;
    /// Destination port of multihop Control packets (RFC 5883 §5).
    pub const MULTIHOP_PORT: u16 = 4784;
    /// Source ports the sender must pick from (RFC 5881 §4): 49152–65535.
    pub const SOURCE_PORTS: RangeInclusive<u16> = 49152..=65535;
    /// TTL / hop limit a single-hop packet is sent with and must arrive with
    /// (RFC 5881 §5, GTSM): anything lower came from off-link and is dropped.
    pub const SINGLE_HOP_TTL: u8 = 255;
}
