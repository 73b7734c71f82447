//! ternctl: inspect a running ternd and decode BGP messages.

mod change;
mod decode;

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_proto::{Context, Family};
use clap::{Args, CommandFactory, Parser, Subcommand};
use tern::api::control::proto::{BfdReply, FibReply, PeerReply, Request, RouteReply, ShutdownReply, StatusReply};
use tern::api::control::request;

use decode::{decode_all, parse_hex, split_stream, Input};

#[derive(Parser)]
#[command(name = "ternctl", version, about = "Inspect ternd and decode BGP messages")]
struct Cli {
    /// ternd's control socket (`[control] socket` in its configuration).
    #[arg(long, global = true, default_value = "/run/tern/tern.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the daemon's state.
    Show {
        #[command(subcommand)]
        what: Show,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Pretty-print BGP messages from hex, a raw byte file or a pcap.
    Decode(DecodeArgs),
    /// Stop ternd. By default gracefully, as SIGTERM: peers and the kernel keep
    /// this host's routes for a restart (RFC 4724). `--hard` takes the host out
    /// of service: Cease to every peer, its kernel routes removed.
    Shutdown {
        #[arg(long)]
        hard: bool,
    },
    /// Change one peer: disable, enable, reset, refresh.
    Peer {
        #[command(subcommand)]
        command: change::PeerCommand,
        /// Print JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Re-read the configuration file, as SIGHUP does, and print what changed;
    /// exit 1 with its FILE:LINE:COLUMN errors if it does not validate.
    Reload {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, …) for ternctl.
    Completions { shell: clap_complete::Shell },
    /// Print ternctl(8) (roff) and exit: for packaging.
    #[command(hide = true)]
    ManPage,
}

#[derive(Subcommand)]
enum Show {
    /// Sessions: state, uptime, prefixes received and advertised, last error.
    Peers,
    /// One peer in detail: capabilities, timers, counters, last error and NOTIFICATION.
    Peer { name: String },
    /// Routes in the RIB (all paths; `*` marks the best): within PREFIX, or for ADDRESS the longest prefix containing it.
    Routes {
        prefix: Option<String>,
        /// Only the routes received from this peer (or, with --advertised, sent to it).
        #[arg(long, conflicts_with = "prefix")]
        peer: Option<String>,
        /// With --peer: the routes received from it (the default).
        #[arg(long, requires = "peer", conflicts_with = "advertised")]
        received: bool,
        /// With --peer: the best paths of the routes advertised to it.
        #[arg(long, requires = "peer")]
        advertised: bool,
    },
    /// Routes tern keeps in the kernel and their state.
    Fib,
    /// Daemon summary.
    Status,
    /// BFD sessions: state, negotiated intervals, detection time, last diagnostic.
    Bfd,
}

#[derive(Args)]
struct DecodeArgs {
    /// Messages as hex (whitespace and ':' allowed).
    #[arg(long, conflicts_with_all = ["pcap", "file"])]
    hex: Option<String>,
    /// Every BGP message in TCP port-179 payloads of this capture (pcap or pcapng).
    #[arg(long, conflicts_with = "file")]
    pcap: Option<PathBuf>,
    /// A file of raw BGP messages, back to back.
    file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Decode AS numbers as 2 octets (peer without the 4-octet AS capability).
    #[arg(long)]
    as2: bool,
    /// NLRI carry ADD-PATH path identifiers (IPv4 and IPv6 unicast).
    #[arg(long)]
    add_path: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => run_decode(args),
        Command::Show { what, json } => run_show(&cli.socket, what, json),
        Command::Shutdown { hard } => run_shutdown(&cli.socket, hard),
        Command::Peer { command, json } => change::run_peer(&cli.socket, command, json),
        Command::Reload { json } => change::run_reload(&cli.socket, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ternctl", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::ManPage => clap_mangen::Man::new(Cli::command())
            .section("8")
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ternctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_show(socket: &std::path::Path, what: Show, json: bool) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match what {
        Show::Peers => {
            let peers: Vec<PeerReply> = runtime.block_on(request(socket, &Request::Peers))?;
            if json {
                return print_json(&peers);
            }
            table(
                &[
                    "NAME",
                    "ADDRESS",
                    "ASN",
                    "STATE",
                    "SINCE",
                    "RECEIVED",
                    "ADVERTISED",
                    "BFD",
                    "LAST ERROR",
                ],
                peers
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.address.to_string(),
                            p.asn.to_string(),
                            p.state.clone(),
                            duration(p.uptime_secs),
                            p.received.to_string(),
                            p.advertised.to_string(),
                            opt(&p.bfd),
                            opt(&p.last_error),
                        ]
                    })
                    .collect(),
            );
        }
        Show::Peer { name } => {
            let peers: Vec<PeerReply> = runtime.block_on(request(socket, &Request::Peers))?;
            let peer = (peers.into_iter())
                .find(|p| p.name == name)
                .ok_or_else(|| format!("no peer named {name:?} (see `ternctl show peers`)"))?;
            if json {
                return print_json(&peer);
            }
            print_peer(&peer);
        }
        Show::Routes {
            prefix,
            peer,
            received: _,
            advertised,
        } => {
            let req = match peer {
                Some(name) => Request::PeerRoutes { name, advertised },
                None => Request::Routes { prefix },
            };
            let routes: Vec<RouteReply> = runtime.block_on(request(socket, &req))?;
            if json {
                return print_json(&routes);
            }
            table(
                &[
                    "",
                    "PREFIX",
                    "NEXT HOP",
                    "FROM",
                    "AS PATH",
                    "LOCPREF",
                    "MED",
                    "AGE",
                    "COMMUNITIES",
                ],
                routes
                    .iter()
                    .map(|r| {
                        let comms: Vec<String> = r.communities.iter().chain(&r.large_communities).cloned().collect();
                        vec![
                            if r.best { "*".into() } else { String::new() },
                            r.prefix.clone(),
                            opt(&r.next_hop),
                            // A learned route: "kernel (proto 3, cali1234)".
                            match &r.learned {
                                Some(l) if l.blackhole => format!("{} (proto {}, blackhole)", r.from, l.protocol),
                                Some(l) => format!("{} (proto {}, {})", r.from, l.protocol, l.devices.join(",")),
                                None => r.from.clone(),
                            },
                            r.as_path.clone(),
                            opt(&r.local_pref),
                            opt(&r.med),
                            duration(r.age_secs),
                            comms.join(" "),
                        ]
                    })
                    .collect(),
            );
        }
        Show::Bfd => {
            let sessions: Vec<BfdReply> = runtime.block_on(request(socket, &Request::Bfd))?;
            if json {
                return print_json(&sessions);
            }
            let ms = |us: u64| format!("{}", us as f64 / 1000.0);
            table(
                &[
                    "PEER",
                    "REMOTE",
                    "LOCAL",
                    "INTERFACE",
                    "STATE",
                    "TX MS",
                    "RX MS",
                    "DETECT MS",
                    "DIAGNOSTIC",
                    "SINCE",
                ],
                sessions
                    .iter()
                    .map(|b| {
                        vec![
                            b.peer.clone(),
                            b.remote.to_string(),
                            b.local.map_or("-".into(), |a| a.to_string()),
                            opt(&b.interface),
                            b.state.clone(),
                            ms(b.tx_interval_us),
                            ms(b.rx_interval_us),
                            b.detection_time_us.map_or("-".into(), ms),
                            b.diagnostic.clone(),
                            duration(b.since_secs),
                        ]
                    })
                    .collect(),
            );
        }
        Show::Fib => {
            let routes: Vec<FibReply> = runtime.block_on(request(socket, &Request::Fib))?;
            if json {
                return print_json(&routes);
            }
            table(
                &["PREFIX", "KIND", "VIA", "STATE"],
                routes
                    .iter()
                    .map(|r| {
                        let via = if r.device.is_empty() {
                            r.gateways.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(" ")
                        } else {
                            r.device.clone()
                        };
                        vec![r.prefix.clone(), r.kind.clone(), via, r.state.clone()]
                    })
                    .collect(),
            );
        }
        Show::Status => {
            let status: StatusReply = runtime.block_on(request(socket, &Request::Status))?;
            if json {
                return print_json(&status);
            }
            let rows = [
                ("version", status.version.clone()),
                ("router_id", status.router_id.to_string()),
                ("asn", status.asn.to_string()),
                ("uptime", duration(status.uptime_secs)),
                ("converged", status.converged.to_string()),
                ("peers_established", status.peers_established.to_string()),
                ("peers_configured", status.peers_configured.to_string()),
                ("prefixes", status.prefixes.to_string()),
                ("paths", status.paths.to_string()),
                ("attribute_sets", status.attribute_sets.to_string()),
                ("kernel_routes", status.kernel_routes.to_string()),
                ("learned_routes", status.learned_routes.to_string()),
                ("selection_deferred", status.selection_deferred.to_string()),
            ];
            for (k, v) in rows {
                println!("{k:<18} {v}");
            }
            if let Some(f) = &status.fib {
                println!(
                    "{:<18} installs {} deletes {} conflicts {} errors {} resyncs {} restores {} pending {}",
                    "fib", f.installs, f.deletes, f.conflicts, f.errors, f.resyncs, f.restores, f.pending
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_shutdown(socket: &std::path::Path, hard: bool) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let reply: ShutdownReply = runtime.block_on(request(socket, &Request::Shutdown { hard }))?;
    println!("ternd is stopping ({})", reply.mode);
    Ok(ExitCode::SUCCESS)
}

/// `show peer NAME`: one `key value` line each, capabilities one per line.
fn print_peer(p: &PeerReply) {
    let rows = [
        ("name", p.name.clone()),
        ("address", p.address.to_string()),
        ("asn", p.asn.to_string()),
        ("description", opt(&p.description)),
        (
            "state",
            if p.disabled {
                format!("{} (disabled)", p.state)
            } else {
                p.state.clone()
            },
        ),
        ("since", duration(p.uptime_secs)),
        ("local_address", opt(&p.local_address)),
        ("router_id", opt(&p.peer_router_id)),
        ("hostname", opt(&p.peer_hostname)),
        ("hold_time", opt(&p.hold_time)),
        ("keepalive_time", opt(&p.keepalive_time)),
        ("bfd", opt(&p.bfd)),
        ("families", p.families.join(", ")),
        ("received", p.received.to_string()),
        ("advertised", p.advertised.to_string()),
        ("messages", format!("{} in, {} out", p.messages_in, p.messages_out)),
        ("updates_in", p.updates_in.to_string()),
        ("malformed_updates", p.malformed_updates.to_string()),
        ("last_error", opt(&p.last_error)),
        ("last_notification", opt(&p.last_notification)),
    ];
    for (k, v) in rows {
        println!("{k:<18} {v}");
    }
    for c in &p.family_counts {
        println!(
            "{:<18} {}: {} accepted, {} filtered, {} advertised",
            "routes", c.family, c.accepted, c.filtered, c.advertised
        );
    }
    for c in &p.capabilities {
        println!("{:<18} {c}", "capability");
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<ExitCode, String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

/// An optional value, `-` when absent.
fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Prints aligned columns.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn run_decode(args: DecodeArgs) -> Result<ExitCode, String> {
    let inputs: Vec<Input> = if let Some(hex) = &args.hex {
        split_stream(&parse_hex(hex)?)
    } else if let Some(path) = &args.pcap {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let capture = bgp_capture::read_capture(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for w in &capture.warnings {
            eprintln!("ternctl: {}: {w}", path.display());
        }
        capture
            .messages
            .into_iter()
            .map(|m| Input {
                bytes: m.bytes,
                flow: Some((m.src, m.dst)),
            })
            .collect()
    } else if let Some(path) = &args.file {
        split_stream(&std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
    } else {
        return Err("give --hex HEX, --pcap FILE or a FILE of raw messages".into());
    };
    let ctx = Context {
        four_octet_as: !args.as2,
        add_path: if args.add_path {
            [Family::IPV4_UNICAST, Family::IPV6_UNICAST].into_iter().collect()
        } else {
            Default::default()
        },
        ..Context::default()
    };
    let outcomes = decode_all(&inputs, &ctx);
    if args.json {
        let all: Vec<_> = outcomes.iter().map(|o| o.json.clone()).collect();
        println!("{}", serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?);
    } else {
        for o in &outcomes {
            print!("{}", o.text);
        }
    }
    // A message that would reset the session makes the command fail.
    Ok(if outcomes.iter().any(|o| o.resets_session) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
