//! `ternctl peer disable|enable|reset|refresh NAME` and `ternctl reload`:
//! the commands that change the running daemon.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use tern::api::control::proto::{PeerActionReply, PeerRequest, ReloadReply, Request};
use tern::api::control::request;

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Take the session down (Cease / Administrative Shutdown, with the text
    /// of --message as RFC 9003 says); it stays down, across reloads too, until enabled.
    Disable {
        name: String,
        #[arg(long)]
        message: Option<String>,
    },
    /// Let a disabled peer connect again.
    Enable { name: String },
    /// Hard reset: Cease / Administrative Reset, then connect again.
    Reset { name: String },
    /// Ask the peer for its routes again (--in, ROUTE-REFRESH) and/or send it
    /// ours again (--out); both without either flag.
    Refresh {
        name: String,
        #[arg(long = "in")]
        inbound: bool,
        #[arg(long = "out")]
        outbound: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

pub fn run_peer(socket: &Path, command: PeerCommand, json: bool) -> Result<ExitCode, String> {
    let (name, action, done) = match command {
        PeerCommand::Disable { name, message } => (name, PeerRequest::Disable { message }, "disabled"),
        PeerCommand::Enable { name } => (name, PeerRequest::Enable, "enabled"),
        PeerCommand::Reset { name } => (name, PeerRequest::Reset, "reset"),
        PeerCommand::Refresh {
            name,
            inbound,
            outbound,
        } => {
            let both = !inbound && !outbound;
            let action = PeerRequest::Refresh {
                inbound: inbound || both,
                outbound: outbound || both,
            };
            (name, action, "refreshed")
        }
    };
    let reply: PeerActionReply = runtime()?.block_on(request(socket, &Request::Peer { name, action }))?;
    if json {
        return super::print_json(&reply);
    }
    println!("{} {done}: {}", reply.name, reply.state);
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 with the file's `FILE:LINE:COLUMN` errors when it does not
/// validate (the daemon keeps running unchanged), as `systemctl reload` needs.
pub fn run_reload(socket: &Path, json: bool) -> Result<ExitCode, String> {
    let outcome: Result<ReloadReply, String> = runtime()?.block_on(request(socket, &Request::Reload));
    let report = match outcome {
        Ok(r) => r,
        Err(errors) if errors.starts_with("cannot connect") => return Err(errors),
        Err(errors) => {
            eprintln!("ternctl: the configuration was not loaded; ternd runs unchanged:");
            for e in errors.lines() {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    if json {
        return super::print_json(&report);
    }
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    println!("peers added        {}", list(&report.peers_added));
    println!("peers removed      {}", list(&report.peers_removed));
    println!("peers restarted    {}", list(&report.peers_changed));
    println!("peers reconfigured {}", list(&report.peers_reconfigured));
    println!("originated changed {}", report.originated_changed);
    println!("policies changed   {}", report.policies_changed);
    println!("[learn] changed    {}", report.learn_changed);
    println!("[bfd] changed      {}", report.bfd_changed);
    if !report.restart_needed.is_empty() {
        println!("at next restart    {}", report.restart_needed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
