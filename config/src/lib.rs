//! TOML -> validated Config. Filled by the daemon issue.
