//! ternctl: inspect a running ternd and decode BGP messages.

use std::path::PathBuf;
use std::process::ExitCode;

use bgp_proto::{Context, Family};
use clap::{Args, Parser, Subcommand};
use tern::decode::{decode_all, parse_hex, split_stream, Input};

#[derive(Parser)]
#[command(
    name = "ternctl",
    version,
    about = "Inspect ternd and decode BGP messages"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretty-print BGP messages from hex, a raw byte file or a pcap.
    Decode(DecodeArgs),
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
    match cli.command {
        Command::Decode(args) => match run_decode(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("ternctl: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_decode(args: DecodeArgs) -> Result<ExitCode, String> {
    let inputs: Vec<Input> = if let Some(hex) = &args.hex {
        split_stream(&parse_hex(hex)?)
    } else if let Some(path) = &args.pcap {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let capture =
            tern::pcap::read_capture(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
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
    let mut ctx = Context::default();
    ctx.four_octet_as = !args.as2;
    if args.add_path {
        ctx.add_path = [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .into_iter()
            .collect();
    }
    let outcomes = decode_all(&inputs, &ctx);
    if args.json {
        let all: Vec<_> = outcomes.iter().map(|o| o.json.clone()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?
        );
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
