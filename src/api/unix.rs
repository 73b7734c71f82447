//! The Unix-socket accept loop shared by the control and BIRD sockets, and
//! the check that a socket path is not another daemon's before we take it.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::accept::AcceptBackoff;
use crate::registry::Registry;

/// What is at a socket path we mean to bind, found without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketPath {
    /// Nothing there.
    Free,
    /// A socket nobody listens on (a crashed daemon's): replaced on bind.
    Stale,
}

/// Why a socket path cannot be ours.
#[derive(Debug, thiserror::Error)]
pub enum PathTaken {
    #[error("a running daemon answers on it")]
    Live,
    #[error("it exists and is not a socket")]
    NotASocket,
    #[error("cannot tell whether a daemon answers on it: {0}")]
    Unknown(std::io::Error),
}

/// Looks at `path` without touching it: a connect that is accepted means a
/// running daemon owns it; one refused means a stale socket file.
pub async fn probe(path: &Path) -> Result<SocketPath, PathTaken> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SocketPath::Free),
        Err(e) => return Err(PathTaken::Unknown(e)),
        Ok(m) if !m.file_type().is_socket() => return Err(PathTaken::NotASocket),
        Ok(_) => {}
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(PathTaken::Live),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(SocketPath::Stale),
        // Gone between the two looks: free.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SocketPath::Free),
        Err(e) => Err(PathTaken::Unknown(e)),
    }
}

/// Binds `path` as [`probe`] found it (creating its directory, removing a
/// stale socket file first).
pub fn bind(path: &Path, found: SocketPath) -> std::io::Result<StdUnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if found == SocketPath::Stale {
        std::fs::remove_file(path)?;
    }
    let listener = StdUnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Runs `handler` for every connection to a socket bound by [`bind`]; the
/// accept loop's handle, aborted (closing the socket) when the daemon stops.
pub fn serve_unix<F, Fut>(
    listener: StdUnixListener,
    registry: Arc<Registry>,
    what: &'static str,
    handler: F,
) -> std::io::Result<JoinHandle<()>>
where
    F: Fn(UnixStream, Arc<Registry>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = UnixListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let fut = handler(stream, registry.clone());
                    tokio::spawn(async move {
                        if let Err(e) = fut.await {
                            tracing::debug!("{what} client: {e}");
                        }
                    });
                }
                Err(e) => backoff.after_error(what, &e).await,
            }
        }
    }))
}
