//! `show status`, with the graceful-restart recovery lines calico-node reads.

use std::time::SystemTime;

use super::reply::Reply;
use super::time::{secs_ms, LocalTime};
use super::{code, BIRD_VERSION};
use crate::registry::Recovery;

/// What `show status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusView {
    pub router_id: String,
    pub hostname: Option<String>,
    pub now: SystemTime,
    pub started: SystemTime,
    pub reconfigured: SystemTime,
    /// Graceful-restart recovery, while it runs (BIRD `graceful_restart_show_status`).
    pub gr: Option<Recovery>,
}

/// Renders `show status` (BIRD `cmd_show_status`).
pub fn render_status(s: &StatusView) -> Reply {
    let mut r = Reply::new();
    r.line(code::VERSION, format!("BIRD {BIRD_VERSION}"));
    r.line(code::STATUS, format!("Router ID is {}", s.router_id));
    if let Some(h) = &s.hostname {
        r.line(code::STATUS, format!("Hostname is {h}"));
    }
    r.line(
        code::STATUS,
        format!("Current server time is {}", LocalTime::of(s.now).date_time_ms()),
    );
    r.line(
        code::STATUS,
        format!("Last reboot on {}", LocalTime::of(s.started).date_time_ms()),
    );
    r.line(
        code::STATUS,
        format!(
            "Last reconfiguration on {}",
            LocalTime::of(s.reconfigured).date_time_ms()
        ),
    );
    if let Some(gr) = &s.gr {
        r.line(code::GRACEFUL_RESTART, "Graceful restart recovery in progress");
        r.line(
            code::GRACEFUL_RESTART,
            format!("  Waiting for {} channels to recover", gr.waiting),
        );
        r.line(
            code::GRACEFUL_RESTART,
            format!("  Wait timer is {}/{}", secs_ms(gr.remaining), gr.wait),
        );
    }
    r.finish(code::UP_AND_RUNNING, "Daemon is up and running");
    r
}
