//! TCP port 179: listening sockets, and connections handed to the session
//! of the peer they come from (configured or admitted dynamically).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::SendError;
use tracing::{info, warn};

use super::peers::{write, Supervisor};
use crate::accept::AcceptBackoff;
use crate::messages::PeerCmd;

/// Binds and listens on `addr` (accepting nothing yet): done before anything
/// else at start, so a BGP port in use stops a second daemon early.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    TcpListener::from_std(std::net::TcpListener::from(sock))
}

/// Hands connections on `listener` (from [`bind`]) to their peers' sessions;
/// returns the bound address (the port is the kernel's choice when 0).
pub(super) fn serve(listener: TcpListener, supervisor: Arc<Supervisor>) -> std::io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let listener = Arc::new(listener);
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
            let ip = unmapped(remote.ip());
            hand_over(&supervisor, ip, stream).await;
        }
    });
    Ok(bound)
}

/// Hands a connection from `ip` to its peer's session. A dynamic peer's task
/// may end just then; the connection then goes to a new session.
async fn hand_over(supervisor: &Supervisor, ip: IpAddr, mut stream: TcpStream) {
    for _ in 0..3 {
        let Some(h) = supervisor.session_for(ip) else {
            warn!("refused connection from {ip}: not a configured peer");
            return;
        };
        match h.cmd.send(PeerCmd::Incoming(stream)).await {
            Ok(()) => return,
            Err(SendError(PeerCmd::Incoming(s))) => stream = s,
            Err(_) => return,
        }
    }
    warn!("dropped connection from {ip}: its session kept ending");
}

/// Connections a dynamic peer's task got as its session ended, handed on.
pub(super) async fn serve_returned(supervisor: Arc<Supervisor>, mut returned: mpsc::UnboundedReceiver<TcpStream>) {
    while let Some(stream) = returned.recv().await {
        if let Ok(remote) = stream.peer_addr() {
            hand_over(&supervisor, unmapped(remote.ip()), stream).await;
        }
    }
}

/// An IPv4 peer reaching an IPv6 socket is known by its IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}
