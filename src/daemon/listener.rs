//! TCP port 179: listening sockets, and connections handed to the session
//! of the peer they come from (configured or admitted dynamically).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{info, warn};

use super::peers::{write, Supervisor};
use super::DaemonError;
use crate::accept::AcceptBackoff;
use crate::messages::PeerCmd;

/// Listens on `addr` and hands connections from peers to their sessions;
/// returns the bound address (the port is the kernel's choice when 0).
pub(super) fn listen(addr: SocketAddr, supervisor: Arc<Supervisor>) -> Result<SocketAddr, DaemonError> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let setup = || -> std::io::Result<TcpListener> {
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        sock.set_nonblocking(true)?;
        TcpListener::from_std(std::net::TcpListener::from(sock))
    };
    let listener = Arc::new(setup().map_err(|e| DaemonError::Listen(addr, e))?);
    let bound = listener.local_addr().map_err(|e| DaemonError::Listen(addr, e))?;
    write(&supervisor.listeners).push(listener.clone());
    info!("listening on {bound}");
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    backoff.after_error(&bound.to_string(), &e).await;
                    continue;
                }
            };
            let ip = match remote.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
                v4 => v4,
            };
            match supervisor.session_for(ip) {
                Some(h) => {
                    let _ = h.cmd.send(PeerCmd::Incoming(stream)).await;
                }
                None => {
                    warn!("refused connection from {remote}: not a configured peer");
                    drop(stream);
                }
            }
        }
    });
    Ok(bound)
}
