//! ternd, the tern BGP daemon, as a library (the `ternd` and `ternctl`
//! binaries and the tests use it).
//!
//! Tasks and data flow (one owner per state; arrows are channels):
//!
//! ```text
//!   bin/ternd ──> daemon (supervisor: start, reload, stop; owns no protocol state)
//!                   │ spawns
//!   TCP/179 ──> session task per peer ──RibMsg──> RIB task ──KernelWork──> kernel task ──> fib-sync ──> netlink
//!   (reader, writer)  <──PeerOut queue (UPDATE bytes, back-pressure)──┘      │
//!                                                                           └─ converged ──> sweeper
//!   api: ternctl socket, BIRD socket, metrics ──read──> registry (status cells, RIB queries between batches)
//! ```
//!
//! Modules, top to bottom; each uses only those below it:
//! - [`daemon`]: the supervisor, config → runtime settings, listeners, reload, kernel bridge.
//! - [`api`]: read-only front ends (ternctl control socket, BIRD-compatible socket, metrics).
//! - [`registry`]: what is running now, and the read-only queries the front ends make.
//! - [`session`]: one BGP session per peer, driving the sans-IO FSM of `bgp-proto`.
//! - [`rib`]: the RIB task (decision, import/export, Adj-RIB-Out, encoding, graceful restart, kernel changes).
//! - [`bfd`]: the BFD task (UDP sockets, every session's `tern-bfd` state machine).
//! - [`messages`]: every message between tasks.
//! - [`route`]: what a route is (attributes) and the policy language over it.
//! - `accept`, [`sys`]: accept-loop backoff; the few libc calls.

mod accept;
pub mod api;
pub mod bfd;
pub mod daemon;
pub mod log;
pub mod messages;
pub mod registry;
pub mod rib;
pub mod route;
pub mod session;
#[allow(unsafe_code)]
pub mod sys;
