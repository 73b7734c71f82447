//! BGP-4 wire codec and session state machine.
//!
//! Pure: no tokio, no sockets, no clock. Callers feed bytes and events in and
//! get messages and actions out.

pub mod framing;
