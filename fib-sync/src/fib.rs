//! The kernel interface the sync worker drives: a trait with an in-memory and a netlink
//! implementation that pass the same behavioural tests.

use std::future::Future;

use ipnetwork::IpNetwork;
use tokio::sync::mpsc;

use crate::error::FibError;
use crate::model::{Errno, KernelRoute, Link, Op};

/// A change the kernel reports (netlink multicast in the real thing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibEvent {
    /// `RTM_NEWROUTE`: a route was added or replaced.
    RouteAdded(KernelRoute),
    /// `RTM_DELROUTE`.
    RouteDeleted(KernelRoute),
    /// `RTM_NEWLINK`: a link appeared or changed.
    LinkChanged {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        name: String,
        /// `IFF_UP`.
        up: bool,
    },
    /// `RTM_DELLINK`.
    LinkDeleted {
        /// Interface index.
        ifindex: u32,
    },
    /// `RTM_NEWADDR`.
    AddrAdded {
        /// Interface index.
        ifindex: u32,
        /// Address with prefix length.
        addr: IpNetwork,
    },
    /// `RTM_DELADDR`.
    AddrDeleted {
        /// Interface index.
        ifindex: u32,
        /// Address with prefix length.
        addr: IpNetwork,
    },
    /// Notifications were lost (ENOBUFS on the socket): the state must be re-dumped.
    Overrun,
}

/// Result of one op: `Err` carries the kernel's errno.
pub type OpResult = Result<(), Errno>;

/// A kernel routing table that can be dumped, changed in batches, and watched.
pub trait Fib: Send + 'static {
    /// The event stream; handed out once (later calls return `None`).
    fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<FibEvent>>;

    /// All links with their addresses.
    fn dump_links(&mut self) -> impl Future<Output = Result<Vec<Link>, FibError>> + Send;

    /// All routes (any protocol, both families) in `table`.
    fn dump_routes(&mut self, table: u32) -> impl Future<Output = Result<Vec<KernelRoute>, FibError>> + Send;

    /// Apply ops, many in flight; one result per op, in order. `Err(FibError)` only when
    /// the transport itself failed (results then unknown).
    fn apply(&mut self, ops: &[Op]) -> impl Future<Output = Result<Vec<OpResult>, FibError>> + Send;
}
