//! ternd: the tern BGP daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tern::log::Journald;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Parser)]
#[command(name = "ternd", version, about = "BGP daemon for Kubernetes pod networking")]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, short, default_value = "/etc/tern/tern.toml")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Log filter: `target=level` directives and a default level, e.g. `info` or
    /// `tern=debug,info`; RUST_LOG also works.
    #[arg(long)]
    log_level: Option<String>,
    /// Print a manual page (roff) and exit: for packaging.
    #[arg(long, value_enum, hide = true)]
    man_page: Option<ManPage>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ManPage {
    /// ternd(8), from these command-line definitions.
    Ternd,
    /// tern.toml(5), from the annotated reference configuration.
    #[value(name = "tern.toml")]
    TernToml,
}

/// The annotated reference configuration (every key with its default).
const REFERENCE_TOML: &str = include_str!("../../examples/reference.toml");

/// Roff text shown verbatim: backslashes escaped, control characters at the
/// start of a line neutralised.
fn roff_verbatim(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn print_man_page(page: ManPage) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match page {
        ManPage::Ternd => {
            let cmd = <Args as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).section("8").render(&mut out)
        }
        ManPage::TernToml => {
            let version = env!("CARGO_PKG_VERSION");
            write!(
                out,
                ".TH TERN.TOML 5 \"\" \"tern {version}\"\n\
                 .SH NAME\ntern.toml \\- configuration of ternd, the tern BGP daemon\n\
                 .SH DESCRIPTION\nternd reads /etc/tern/tern.toml (TOML) at start, on SIGHUP and on\n\
                 .B ternctl reload.\nErrors name FILE:LINE:COLUMN and the key; a file that does not validate\n\
                 changes nothing. Below is the annotated reference: every key with its default.\n\
                 .SH REFERENCE\n.nf\n{}.fi\n.SH SEE ALSO\nternd(8), ternctl(8)\n",
                roff_verbatim(REFERENCE_TOML)
            )
        }
    }
}

/// The log filter: `--log-level`, else RUST_LOG, else `info`. Directives are
/// `target=level` and a bare default level (tracing-subscriber's `Targets`:
/// EnvFilter's span and field filters took a regex engine, a quarter of a
/// megabyte of resident code, issue 14).
fn log_filter(args: &Args) -> Result<Targets, String> {
    let (source, filter) = match (&args.log_level, std::env::var("RUST_LOG")) {
        (Some(f), _) => ("--log-level", f.clone()),
        (None, Ok(f)) => ("RUST_LOG", f),
        (None, Err(_)) => ("the default log filter", "info".to_string()),
    };
    let targets: Targets = filter
        .parse()
        .map_err(|e| format!("{source} {filter:?}: {e} (expected e.g. `info` or `tern=debug,info`)"))?;
    // netlink-packet-route warns about every kernel attribute newer than itself.
    Ok(targets.with_target("netlink_packet_route", LevelFilter::ERROR))
}

/// Logs to stderr: today's format on a terminal or file; under systemd
/// (stderr is the journal) priority-prefixed lines without a timestamp.
fn init_logging(args: &Args, filter: Targets) {
    let journal = tern::log::stderr_is_journal();
    let ansi = !journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_ansi(ansi).with_writer(std::io::stderr);
    let format = tracing_subscriber::fmt::format().without_time().with_ansi(false);
    match (args.log_format, journal) {
        (LogFormat::Human, false) => builder.finish().with(filter).init(),
        (LogFormat::Json, false) => builder.json().finish().with(filter).init(),
        (LogFormat::Human, true) => builder.event_format(Journald::new(format)).finish().with(filter).init(),
        (LogFormat::Json, true) => builder
            .json()
            .event_format(Journald::new(format.json()))
            .finish()
            .with(filter)
            .init(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(page) = args.man_page {
        return match print_man_page(page) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ternd: {e}");
                ExitCode::from(1)
            }
        };
    }
    // Checked first, so that `--check` also checks it.
    let filter = match log_filter(&args) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("ternd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return match config::load(&args.config) {
            Ok(_) => {
                println!("{}: configuration is valid", args.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    init_logging(&args, filter);
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            // One event per error: one line (and journal entry) each.
            for err in e.errors() {
                tracing::error!("{err}");
            }
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(tern::daemon::run(args.config, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        // Logged once (the log goes to stderr), not printed again.
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
