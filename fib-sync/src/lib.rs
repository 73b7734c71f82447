//! Desired kernel routes -> netlink, owning only routes of its own protocol.
//!
//! The caller (the daemon's RIB) says which prefixes should go where; the crate resolves
//! next hops to devices (plain, IPIP always, IPIP cross-subnet; off-subnet next hops
//! through the table's other routes, as BIRD's `gateway recursive`), diffs the wanted state
//! against the kernel (`reconcile`, pure), and applies the ops in netlink batches. Kernel
//! notifications keep the view current: owned routes removed by others are restored,
//! routes wait for missing devices and go in when they appear, foreign routes are never
//! touched. Knows nothing about BGP.

mod cover;
pub mod error;
pub mod fib;
mod intern;
pub mod learn;
mod linkmsg;
pub mod memory;
pub mod model;
#[allow(unsafe_code)] // the netlink socket: setsockopt, socket filter, AsyncFd
pub mod netlink;
mod nlmsg;
pub mod reconcile;
pub mod resolve;
mod slot;
pub mod sync;

pub use error::FibError;
pub use fib::{Fib, FibEvent, OpResult};
pub use learn::{LearnChange, LearnFilter, LearnedRoute};
pub use memory::{MemoryFib, MemoryKernel};
pub use model::{
    Change, Desired, Errno, Hop, KernelRoute, Link, LinkTable, NextHop, Op, RouteKey, RouteKind, RTPROT_BIRD,
    RT_TABLE_MAIN,
};
pub use netlink::NetlinkFib;
pub use reconcile::{reconcile, Actual, Blocked};
pub use resolve::{resolve_hop, Mode, Unresolved};
pub use sync::{FibConfig, FibHandle, FibSync, FibTask, RouteState, RouteStatus, ShutdownMode, Stats};
