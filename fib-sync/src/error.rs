//! Typed errors of the crate.

use std::io;

/// Failures of the fib-sync machinery (not of individual route ops, see [`crate::Errno`]).
#[derive(Debug, thiserror::Error)]
pub enum FibError {
    /// Creating, binding or using a netlink socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel answered a dump request with an error.
    #[error("netlink dump failed: {0}")]
    Dump(crate::model::Errno),
    /// A dump was interrupted too many times (NLM_F_DUMP_INTR) to get a consistent view.
    #[error("netlink dump kept being interrupted")]
    DumpInterrupted,
    /// The sync worker is gone (shut down or crashed).
    #[error("fib-sync worker is not running")]
    WorkerGone,
    /// Netlink sockets need a tokio runtime with IO enabled on the calling thread.
    #[error("no tokio runtime on this thread")]
    NoRuntime,
    /// The event stream was already taken or ended.
    #[error("fib event stream unavailable")]
    NoEvents,
}
