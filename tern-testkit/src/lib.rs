//! Test kit for tern's integration tests, examples and benchmarks (dev-only,
//! never linked into ternd): a scripted BGP peer, network namespaces, a
//! switched L2 segment with hosts and Calico-style pods, and guards that run
//! `ternd`, BIRD 2 and GoBGP inside the namespaces and clean everything up on
//! drop, also when a test fails. Needs root; [`require`] reports
//! `skipped: ...` otherwise.
//!
//! [`inproc`] runs ternd inside the test process instead (no root).
//!
//! Everything but [`testpeer`] and [`inproc`] is re-exported at the root, so
//! a namespace test says `use tern_testkit::*;`.
#![deny(unsafe_code)]

pub mod bird;
pub mod frr;
pub mod gobgp;
pub mod inproc;
pub mod netns;
pub mod observe;
pub mod process;
pub mod tempdir;
pub mod ternd;
pub mod testpeer;
pub mod topology;

use std::sync::atomic::{AtomicU32, Ordering};

pub use bird::*;
pub use frr::*;
pub use gobgp::*;
pub use netns::*;
pub use observe::*;
pub use process::*;
pub use tempdir::*;
pub use ternd::*;
pub use topology::*;

/// Policies the soft-reconfiguration tests switch peers to: `no-3` imports
/// all but 10.244.3.0/26, `med10` exports with MED 10, `nothing` exports nothing.
pub const SOFT_RECONFIG_POLICIES: &str = r#"
[[policy]]
name = "no-3"
default = "accept"
[[policy.rule]]
prefix = "10.244.3.0/26"
action = "reject"

[[policy]]
name = "med10"
default = "accept"
[[policy.rule]]
prefix = "10.244.0.0/16"
le = 32
set_med = 10
action = "accept"

[[policy]]
name = "nothing"
default = "reject"
"#;

/// The AS every mesh in these tests uses (Calico's default).
pub const ASN: u32 = 64512;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process, for names of namespaces, temp dirs, ports.
pub(crate) fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}
