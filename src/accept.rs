//! The one rule every accept loop follows (BGP listeners, the control and
//! BIRD sockets, metrics): after an error — out of descriptors or memory —
//! the pending connection stays queued, so back off instead of spinning, and
//! warn at most every 10 s.

use std::time::{Duration, Instant};

/// Pause after a failed accept.
const BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate-limited warning and pause after accept errors.
#[derive(Default)]
pub(crate) struct AcceptBackoff {
    last_warning: Option<Instant>,
}

impl AcceptBackoff {
    pub(crate) async fn after_error(&mut self, what: &str, e: &std::io::Error) {
        let now = Instant::now();
        if self.last_warning.is_none_or(|t| now.duration_since(t) > WARN_EVERY) {
            tracing::warn!("accept on {what}: {e} (retrying)");
            self.last_warning = Some(now);
        }
        tokio::time::sleep(BACKOFF).await;
    }
}
