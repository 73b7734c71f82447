//! systemd `Type=notify` support (sd_notify protocol): READY, STATUS,
//! STOPPING and WATCHDOG datagrams to `$NOTIFY_SOCKET`, if set.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends `state` (e.g. "READY=1\nSTATUS=...") if running under systemd.
pub fn notify(state: &str) {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let (Ok(addr), Ok(sock)) = (addr, UnixDatagram::unbound()) else {
        return;
    };
    if let Err(e) = sock.send_to_addr(state.as_bytes(), &addr) {
        tracing::warn!("sd_notify to {path}: {e}");
    }
}

/// The watchdog interval systemd asked for, halved as sd_watchdog_enabled advises.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2))
}
