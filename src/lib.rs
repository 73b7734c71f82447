//! The tern daemon: peer sessions, RIB, kernel sync, control socket.

pub mod birdcompat;
pub mod control;
pub mod daemon;
pub mod metrics;
pub mod peer;
pub mod policy;
pub mod rib;
pub mod route;
pub mod sockopt;
pub mod systemd;
