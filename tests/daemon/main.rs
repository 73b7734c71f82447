//! Daemon-level tests that need no root: ternd runs in the test process
//! over an in-memory kernel, scripted peers talk to it over loopback TCP.

mod adversarial;
mod api;
mod bfd;
mod dynamic;
mod graceful;
mod instance;
mod learn;
mod limits;
mod nexthops;
mod operate;
mod packing;
mod reload;
mod restart;
mod sessions;
