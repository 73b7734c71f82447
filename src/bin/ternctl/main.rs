//! ternctl: inspect a running ternd and decode BGP messages.

mod decode;

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_proto::{Context, Family};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use tern::control::{request, Request};

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
}

#[derive(Subcommand)]
enum Show {
    /// Sessions: state, uptime, prefixes received and advertised, last error.
    Peers,
    /// Routes in the RIB (all paths; `*` marks the best), optionally within PREFIX.
    Routes { prefix: Option<String> },
    /// Routes tern keeps in the kernel and their state.
    Fib,
    /// Daemon summary.
    Status,
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
    let req = match &what {
        Show::Peers => Request::Peers,
        Show::Routes { prefix } => Request::Routes { prefix: prefix.clone() },
        Show::Fib => Request::Fib,
        Show::Status => Request::Status,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let value = runtime.block_on(request(socket, &req))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let s = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    match what {
        Show::Peers => table(
            &[
                "NAME",
                "ADDRESS",
                "ASN",
                "STATE",
                "SINCE",
                "RECEIVED",
                "ADVERTISED",
                "LAST ERROR",
            ],
            rows(&value)
                .iter()
                .map(|p| {
                    vec![
                        s(&p["name"]),
                        s(&p["address"]),
                        s(&p["asn"]),
                        s(&p["state"]),
                        duration(p["uptime_secs"].as_u64().unwrap_or(0)),
                        s(&p["received"]),
                        s(&p["advertised"]),
                        s(&p["last_error"]),
                    ]
                })
                .collect(),
        ),
        Show::Routes { .. } => table(
            &[
                "",
                "PREFIX",
                "NEXT HOP",
                "FROM",
                "AS PATH",
                "LOCPREF",
                "MED",
                "COMMUNITIES",
            ],
            rows(&value)
                .iter()
                .map(|r| {
                    let mut comms = s(&r["communities"]);
                    let large = s(&r["large_communities"]);
                    if !large.is_empty() {
                        comms = format!("{comms} {large}").trim().to_string();
                    }
                    vec![
                        if r["best"].as_bool() == Some(true) {
                            "*".into()
                        } else {
                            String::new()
                        },
                        s(&r["prefix"]),
                        s(&r["next_hop"]),
                        s(&r["from"]),
                        s(&r["as_path"]),
                        s(&r["local_pref"]),
                        s(&r["med"]),
                        comms,
                    ]
                })
                .collect(),
        ),
        Show::Fib => table(
            &["PREFIX", "KIND", "VIA", "STATE"],
            rows(&value)
                .iter()
                .map(|r| {
                    let via = if s(&r["device"]).is_empty() {
                        s(&r["gateways"])
                    } else {
                        s(&r["device"])
                    };
                    vec![s(&r["prefix"]), s(&r["kind"]), via, s(&r["state"])]
                })
                .collect(),
        ),
        Show::Status => {
            if let Value::Object(map) = &value {
                for (k, v) in map {
                    println!("{k:<18} {}", s(v));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
