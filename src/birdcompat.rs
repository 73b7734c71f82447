//! BIRD-compatible CLI socket for calico-node's health checks (being written).

use std::path::PathBuf;
use std::sync::Arc;

use crate::daemon::Shared;

/// Serves the BIRD CLI subset on `path` until the process ends.
pub async fn serve(path: PathBuf, shared: Arc<Shared>) -> std::io::Result<()> {
    let _ = (path, shared);
    Ok(())
}
