//! `show bfd sessions`: ternd's BFD sessions as BIRD 2 lists those of a
//! `protocol bfd` (`proto/bfd/bfd.c`, `bfd_show_sessions`): the protocol
//! name, a heading, one row per session with the transmit interval and the
//! detection timeout in seconds with milliseconds, all with code 1020. The
//! column widths are those a running BIRD 2.0.12 prints (Since is 12 wide).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::code;
use super::parse::{pattern_match, Selector};
use super::reply::Reply;
use super::time::short_time;
use crate::bfd::BfdView;

/// The name ternd's BFD answers to, as BIRD names its first unnamed `protocol bfd`.
pub const PROTOCOL: &str = "bfd1";

/// Whether the command's protocol selector picks ours.
pub fn selected(which: &Selector) -> bool {
    match which {
        Selector::Every => true,
        Selector::Name(n) => n == PROTOCOL,
        Selector::Pattern(p) => pattern_match(p, PROTOCOL),
    }
}

/// `%3u.%03u` of a number of milliseconds.
fn secs_ms(ms: u64) -> String {
    format!("{:3}.{:03}", ms / 1000, ms % 1000)
}

pub fn render_sessions(sessions: &[BfdView], now: SystemTime) -> Reply {
    let mut r = Reply::new();
    r.line(code::BFD_SESSIONS, format!("{PROTOCOL}:"));
    r.line(
        code::BFD_SESSIONS,
        format!(
            "{:<25} {:<10} {:<10} {:<12}  {:>8} {:>8}",
            "IP address", "Interface", "State", "Since", "Interval", "Timeout"
        ),
    );
    for s in sessions {
        let since = UNIX_EPOCH + Duration::from_millis(s.since_unix_ms);
        // BIRD shows 0 before the first packet was sent; ours sends at once.
        let interval = s.tx_interval_us / 1000;
        let timeout = s.detection_time_us.unwrap_or(0) / 1000;
        r.line(
            code::BFD_SESSIONS,
            format!(
                "{:<25} {:<10} {:<10} {:<12}  {}  {}",
                s.remote.to_string(),
                s.interface.as_deref().unwrap_or("---"),
                s.state,
                short_time(since, now),
                secs_ms(interval),
                secs_ms(timeout)
            ),
        );
    }
    r
}
