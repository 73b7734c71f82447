//! BIRD-compatible CLI socket for calico-node's health checks.
//!
//! Speaks the line protocol of BIRD 2's control socket (what `birdc`/`birdcl`
//! use): the server greets with `0001 BIRD 2.0.12 ready.`, the client sends one
//! command per line, every reply line is `CODE-text` (more follows), ` text`
//! (more follows, same code as the line before) or `CODE text` (last line);
//! a reply without a final line of its own ends with `0000 `.
//!
//! The subset served is what calico-node and operators use: `show protocols
//! [all] [NAME|"PATTERN"]`, `show status`, `show route [all] [count] [primary]
//! [for ADDR] [PREFIX] [protocol NAME] [table master4|master6]`. Columns,
//! reply codes and error lines were taken from a running BIRD 2.0.12. Only BGP
//! protocols are listed: calico-node's parser skips every other protocol.

mod bfd;
mod parse;
mod protocols;
mod reply;
mod routes;
mod snapshot;
mod status;
#[cfg(test)]
mod tests;
#[allow(unsafe_code)] // localtime_r
mod time;

use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::Arc;
use std::time::SystemTime;

use ipnetwork::IpNetwork;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::unix::serve_unix;
use crate::registry::Registry;
pub use parse::{parse, Command, Selector, SyntaxError};
pub use protocols::{render_protocols, select, ChannelCounts, PeerRow};
pub use reply::Reply;
pub use routes::{render_routes, RouteRow};
use snapshot::{channel_counts, peer_rows, route_devices, route_rows, status_view};
pub use status::{render_status, StatusView};
use time::wall_clock;

/// The BIRD version we claim to be; calico-node checks the reply starts with `BIRD`.
pub const BIRD_VERSION: &str = "2.0.12";

/// Longest command line accepted; longer ones get `9000 Command too long`.
const MAX_LINE: usize = 4096;

pub mod code {
    pub const WELCOME: u16 = 1;
    pub const END: u16 = 0;
    pub const UP_AND_RUNNING: u16 = 13;
    pub const ROUTE_COUNT_TOTAL: u16 = 14;
    pub const GRACEFUL_RESTART: u16 = 24;
    pub const VERSION: u16 = 1000;
    pub const PROTOCOL_LIST: u16 = 1002;
    pub const PROTOCOL_DETAILS: u16 = 1006;
    pub const ROUTE_LIST: u16 = 1007;
    pub const ROUTE_DETAILS: u16 = 1008;
    pub const STATUS: u16 = 1011;
    pub const BFD_SESSIONS: u16 = 1020;
    pub const ROUTE_ATTRIBUTES: u16 = 1012;
    pub const TABLE_HEADING: u16 = 2002;
    pub const RUNTIME_ERROR: u16 = 8000;
    pub const NETWORK_NOT_FOUND: u16 = 8001;
    pub const NO_PROTOCOLS_MATCH: u16 = 8003;
    pub const COMMAND_TOO_LONG: u16 = 9000;
    pub const SYNTAX_ERROR: u16 = 9001;
}

/// Runs one command line against the daemon; `None` when BIRD sends nothing.
pub async fn execute(line: &str, registry: &Registry) -> Option<Reply> {
    let handles = registry.peers();
    let names: Vec<String> = handles.iter().map(|h| h.settings.name.clone()).collect();
    let cmd = match parse(line, &names) {
        Ok(c) => c,
        Err(e) => return Some(Reply::single(code::SYNTAX_ERROR, e.to_string())),
    };
    let now = SystemTime::now();
    Some(match cmd {
        Command::Silent => return None,
        Command::ShowStatus => render_status(&status_view(registry).await),
        Command::ShowBfdSessions { which } => match registry.bfd() {
            Some(b) if bfd::selected(&which) => bfd::render_sessions(&b.sessions().await, now),
            _ => Reply::single(code::NO_PROTOCOLS_MATCH, "No protocols match"),
        },
        Command::ShowProtocols { all, which } => {
            // Plain `show protocols` (the health check) never waits for the RIB.
            let summary = if all { registry.rib_summary().await.ok() } else { None };
            let rows = peer_rows(&handles, summary.as_ref(), now);
            let counts = if all {
                let views = registry.rib_routes(None).await.unwrap_or_default();
                channel_counts(&views, &rows)
            } else {
                ChannelCounts::default()
            };
            let rows: Vec<PeerRow> = rows.into_iter().map(|(_, row)| row).collect();
            match select(&rows, &which) {
                Some(sel) => {
                    let sel: Vec<PeerRow> = sel.into_iter().cloned().collect();
                    render_protocols(&sel, all, &counts, now)
                }
                None => Reply::single(code::NO_PROTOCOLS_MATCH, "No protocols match"),
            }
        }
        Command::ShowRoute(args) => {
            let Ok(views) = registry.rib_routes(None).await else {
                return Some(Reply::single(code::RUNTIME_ERROR, "Routing table is not available"));
            };
            let rows = peer_rows(&handles, None, now);
            let devices = route_devices(registry).await;
            let blackholes: Vec<IpNetwork> = registry
                .config()
                .originate
                .iter()
                .filter(|o| o.blackhole)
                .map(|o| o.prefix)
                .collect();
            let started = wall_clock(registry.started.elapsed(), now);
            let routes = route_rows(&views, &rows, &devices, &blackholes, started);
            render_routes(&routes, &args, now)
        }
    })
}

/// Spawns the task serving the BIRD CLI socket (bound by `unix::bind`).
pub fn serve(listener: StdUnixListener, registry: Arc<Registry>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_unix(listener, registry, "BIRD socket", client)
}

async fn client(stream: UnixStream, registry: Arc<Registry>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    wr.write_all(format!("0001 BIRD {BIRD_VERSION} ready.\n").as_bytes())
        .await?;
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = (&mut rd).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') {
            if buf.len() <= MAX_LINE {
                // The client went away in the middle of a line.
                return Ok(());
            }
            wr.write_all(format!("{:04} Command too long\n", code::COMMAND_TOO_LONG).as_bytes())
                .await?;
            // Drop the rest of the line.
            loop {
                buf.clear();
                let n = (&mut rd).take(MAX_LINE as u64).read_until(b'\n', &mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                if buf.last() == Some(&b'\n') {
                    break;
                }
            }
            continue;
        }
        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]);
        let line = line.trim_end_matches('\r');
        if let Some(reply) = execute(line, &registry).await {
            wr.write_all(reply.encode().as_bytes()).await?;
        }
    }
}
