//! The Unix-socket accept loop shared by the control and BIRD sockets.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use crate::accept::AcceptBackoff;
use crate::registry::Registry;

/// Binds a Unix socket at `path` (creating its directory, replacing a stale
/// socket) and runs `handler` for every connection.
pub fn serve_unix<F, Fut>(path: PathBuf, registry: Arc<Registry>, what: &'static str, handler: F) -> std::io::Result<()>
where
    F: Fn(UnixStream, Arc<Registry>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    tokio::spawn(async move {
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
    });
    Ok(())
}
