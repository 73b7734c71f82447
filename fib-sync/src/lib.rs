//! Desired kernel routes -> netlink. Filled by the fib-sync issue.
