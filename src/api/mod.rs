//! Read-only front ends: the ternctl control socket, the BIRD-compatible
//! CLI socket calico-node's health checks use, and Prometheus metrics. They
//! read the [`crate::registry::Registry`] and never block the RIB.

pub mod bird;
pub mod control;
pub mod metrics;
pub mod unix;
