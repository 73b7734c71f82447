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

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_proto::capability::AddPathMode;
use bgp_proto::Family;
use ipnetwork::IpNetwork;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::daemon::Shared;
use crate::peer::PeerHandle;
use crate::rib::{Query, QueryReply, RibSummary, RouteView};

/// The BIRD version we claim to be; calico-node checks the reply starts with `BIRD`.
pub const BIRD_VERSION: &str = "2.0.12";

/// Longest command line accepted; longer ones get `9000 Command too long`.
const MAX_LINE: usize = 4096;

/// How long a command may wait for the RIB or the kernel sync before failing.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reply codes BIRD uses (`doc/reply_codes` in BIRD's source tree).
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
    pub const ROUTE_ATTRIBUTES: u16 = 1012;
    pub const TABLE_HEADING: u16 = 2002;
    pub const RUNTIME_ERROR: u16 = 8000;
    pub const NETWORK_NOT_FOUND: u16 = 8001;
    pub const NO_PROTOCOLS_MATCH: u16 = 8003;
    pub const COMMAND_TOO_LONG: u16 = 9000;
    pub const SYNTAX_ERROR: u16 = 9001;
}

// ---------------------------------------------------------------------------
// Reply framing
// ---------------------------------------------------------------------------

/// One reply: continuation lines, then an optional final line (`0000 ` if none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    lines: Vec<(u16, String)>,
    last: Option<(u16, String)>,
}

impl Reply {
    pub fn new() -> Reply {
        Reply::default()
    }

    /// A reply that is a single final line, e.g. `9001 syntax error, ...`.
    pub fn single(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            lines: Vec::new(),
            last: Some((code, text.into())),
        }
    }

    /// Adds a line that more lines follow.
    pub fn line(&mut self, code: u16, text: impl Into<String>) {
        self.lines.push((code, text.into()));
    }

    /// Sets the final line (instead of `0000 `).
    pub fn finish(&mut self, code: u16, text: impl Into<String>) {
        self.last = Some((code, text.into()));
    }

    /// The bytes BIRD would send: a line repeating the previous line's code
    /// starts with a space instead of `CODE-` (BIRD `nest/cli.c`, `cli_printf`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut prev: Option<u16> = None;
        for (c, text) in &self.lines {
            if prev == Some(*c) {
                let _ = writeln!(out, " {text}");
            } else {
                let _ = writeln!(out, "{c:04}-{text}");
            }
            prev = Some(*c);
        }
        match &self.last {
            Some((c, text)) => {
                let _ = writeln!(out, "{c:04} {text}");
            }
            None => out.push_str("0000 \n"),
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Command parsing
// ---------------------------------------------------------------------------

/// A command line BIRD would reject; rendered as `9001 <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// What bison reports: the token class found and, if few, those accepted.
    #[error("syntax error, unexpected {unexpected}{}", expecting_text(.expecting))]
    Unexpected {
        /// Token class found (`END`, `CF_SYM_UNDEFINED`, `TEXT`, ...).
        unexpected: String,
        /// Token classes the grammar would have accepted.
        expecting: Vec<&'static str>,
    },
    /// A `"` without its closing `"` (BIRD's lexer error).
    #[error("Unterminated string")]
    UnterminatedString,
}

fn expecting_text(e: &[&'static str]) -> String {
    if e.is_empty() {
        String::new()
    } else {
        format!(", expecting {}", e.join(" or "))
    }
}

/// Which protocols `show protocols` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Every,
    /// A protocol name (a BIRD symbol, must exist).
    Name(String),
    /// A quoted shell-style pattern (`*`, `?`).
    Pattern(String),
}

/// Which routing table (`master4`, `master6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Master4,
    Master6,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Master4 => "master4",
            Table::Master6 => "master6",
        }
    }

    fn of(net: &IpNetwork) -> Table {
        match net {
            IpNetwork::V4(_) => Table::Master4,
            IpNetwork::V6(_) => Table::Master6,
        }
    }

    fn from_name(s: &str) -> Option<Table> {
        match s {
            "master4" => Some(Table::Master4),
            "master6" => Some(Table::Master6),
            _ => None,
        }
    }
}

/// Which prefixes `show route` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFilter {
    /// `show route PREFIX`: exactly this prefix.
    Exact(IpNetwork),
    /// `show route for ADDR|PREFIX`: the longest prefix covering it.
    For(IpNetwork),
}

/// Arguments of `show route`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteArgs {
    pub all: bool,
    pub count: bool,
    pub primary: bool,
    pub net: Option<NetFilter>,
    pub protocol: Option<String>,
    pub table: Option<Table>,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ShowProtocols {
        all: bool,
        which: Selector,
    },
    ShowStatus,
    ShowRoute(RouteArgs),
    /// `help`, `quit`, `exit`: client-side commands BIRD's server answers with nothing.
    Silent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
}

/// Splits a line into words and quoted strings; `#` starts a comment.
fn tokenize(line: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                s.push(c);
            }
            if !closed {
                return Err(SyntaxError::UnterminatedString);
            }
            out.push(Token::Text(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '#' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(Token::Word(s));
        }
    }
    Ok(out)
}

/// Keywords of BIRD's grammar we may meet in argument positions, so errors
/// name them the way bison does.
const KEYWORDS: &[&str] = &[
    "all",
    "count",
    "stats",
    "primary",
    "for",
    "table",
    "protocol",
    "filter",
    "where",
    "export",
    "preexport",
    "noexport",
    "import",
    "exported",
    "filtered",
    "show",
    "status",
    "protocols",
    "route",
    "help",
    "quit",
    "exit",
];

/// The bison token class of `t`, for error messages.
fn token_class(t: Option<&Token>, symbols: &dyn Fn(&str) -> bool) -> String {
    match t {
        None => "END".into(),
        Some(Token::Text(_)) => "TEXT".into(),
        Some(Token::Word(w)) => {
            if KEYWORDS.contains(&w.as_str()) {
                w.to_uppercase()
            } else if w.parse::<u64>().is_ok() {
                "NUM".into()
            } else if w.parse::<std::net::Ipv4Addr>().is_ok() {
                "IP4".into()
            } else if w.parse::<std::net::Ipv6Addr>().is_ok() {
                "IP6".into()
            } else if w.contains('/') && w.parse::<IpNetwork>().is_ok() {
                "NET".into()
            } else if w.len() == 1 && !w.chars().all(|c| c.is_alphanumeric() || c == '_') {
                format!("'{w}'")
            } else if symbols(w) {
                "CF_SYM_KNOWN".into()
            } else {
                "CF_SYM_UNDEFINED".into()
            }
        }
    }
}

/// Parses one command line. `protocols` are the protocol names that exist
/// (BIRD's grammar only accepts known symbols where a protocol is expected).
pub fn parse(line: &str, protocols: &[String]) -> Result<Command, SyntaxError> {
    let is_symbol = |w: &str| protocols.iter().any(|p| p == w) || Table::from_name(w).is_some();
    let is_proto = |w: &str| protocols.iter().any(|p| p == w);
    let toks = tokenize(line)?;
    let err = |i: usize, expecting: Vec<&'static str>| SyntaxError::Unexpected {
        unexpected: token_class(toks.get(i), &is_symbol),
        expecting,
    };
    let word = |i: usize| match toks.get(i) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    match word(0) {
        Some("help" | "quit" | "exit") => return Ok(Command::Silent),
        Some("show") => {}
        _ => return Err(err(0, vec![])),
    }
    match word(1) {
        Some("status") => {
            if toks.len() > 2 {
                return Err(err(2, vec!["END"]));
            }
            Ok(Command::ShowStatus)
        }
        Some("protocols") => {
            let mut i = 2;
            let all = word(i) == Some("all");
            if all {
                i += 1;
            }
            let which = match toks.get(i) {
                None => Selector::Every,
                Some(Token::Text(p)) => Selector::Pattern(p.clone()),
                Some(Token::Word(w)) if is_proto(w) => Selector::Name(w.clone()),
                Some(_) => {
                    let mut e = vec!["END", "CF_SYM_KNOWN", "TEXT"];
                    if !all {
                        e.push("ALL");
                    }
                    return Err(err(i, e));
                }
            };
            if which != Selector::Every && toks.len() > i + 1 {
                return Err(err(i + 1, vec!["END"]));
            }
            Ok(Command::ShowProtocols { all, which })
        }
        Some("route") => parse_route(&toks, 2, &is_proto, &err).map(Command::ShowRoute),
        _ => Err(err(1, vec![])),
    }
}

fn parse_route(
    toks: &[Token],
    mut i: usize,
    is_proto: &dyn Fn(&str) -> bool,
    err: &dyn Fn(usize, Vec<&'static str>) -> SyntaxError,
) -> Result<RouteArgs, SyntaxError> {
    let mut a = RouteArgs::default();
    while let Some(t) = toks.get(i) {
        let Token::Word(w) = t else {
            return Err(err(i, vec![]));
        };
        match w.as_str() {
            "all" => a.all = true,
            "count" | "stats" => a.count = true,
            "primary" => a.primary = true,
            "for" => {
                i += 1;
                let net = match toks.get(i) {
                    Some(Token::Word(w)) => parse_net(w, true),
                    _ => None,
                };
                a.net = Some(NetFilter::For(net.ok_or_else(|| err(i, vec![]))?));
            }
            "protocol" => {
                i += 1;
                match toks.get(i) {
                    Some(Token::Word(w)) if is_proto(w) => a.protocol = Some(w.clone()),
                    _ => return Err(err(i, vec!["CF_SYM_KNOWN"])),
                }
            }
            "table" => {
                i += 1;
                match toks.get(i) {
                    Some(Token::Word(w)) if Table::from_name(w).is_some() => a.table = Table::from_name(w),
                    _ => return Err(err(i, vec!["CF_SYM_KNOWN", "ALL"])),
                }
            }
            other => match parse_net(other, false) {
                Some(n) => a.net = Some(NetFilter::Exact(n)),
                None => return Err(err(i, vec![])),
            },
        }
        i += 1;
    }
    Ok(a)
}

/// `10.0.0.0/8`, or (when `host_ok`) a bare address taken as a host prefix.
fn parse_net(s: &str, host_ok: bool) -> Option<IpNetwork> {
    if s.contains('/') {
        let n: IpNetwork = s.parse().ok()?;
        // Host bits must be zero, as BIRD's parser insists.
        (n.network() == n.ip()).then_some(n)
    } else if host_ok {
        let a: IpAddr = s.parse().ok()?;
        Some(IpNetwork::from(a))
    } else {
        None
    }
}

/// Shell-style match with `*` and `?`, as BIRD's `patmatch`.
pub fn pattern_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

// ---------------------------------------------------------------------------
// Time formats
// ---------------------------------------------------------------------------

/// A wall-clock time broken down in the daemon's local time zone (BIRD
/// prints local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl LocalTime {
    pub fn of(t: SystemTime) -> LocalTime {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let millis = d.subsec_millis();
        local_parts(secs).unwrap_or_else(|| utc_parts(secs)).with_millis(millis)
    }

    fn with_millis(mut self, millis: u32) -> LocalTime {
        self.millis = millis;
        self
    }

    /// `%T.%3f`: `19:47:48.079`.
    pub fn time_ms(&self) -> String {
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            self.hour, self.minute, self.second, self.millis
        )
    }

    /// `%F`: `2024-01-31`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `%F %T.%3f`: `2024-01-31 19:47:48.079`.
    pub fn date_time_ms(&self) -> String {
        format!("{} {}", self.date(), self.time_ms())
    }
}

fn local_parts(secs: i64) -> Option<LocalTime> {
    // time_t is 32 bits on some targets, so the conversion is not always a no-op.
    #[allow(clippy::useless_conversion)]
    let t: libc::time_t = secs.try_into().ok()?;
    // SAFETY: `tm` is plain old data; localtime_r only writes into it and
    // returns null on failure, which we check.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: u32::try_from(tm.tm_mon + 1).ok()?,
        day: u32::try_from(tm.tm_mday).ok()?,
        hour: u32::try_from(tm.tm_hour).ok()?,
        minute: u32::try_from(tm.tm_min).ok()?,
        second: u32::try_from(tm.tm_sec).ok()?,
        millis: 0,
    })
}

/// UTC civil time from Unix seconds (Howard Hinnant's days-to-civil algorithm).
fn utc_parts(secs: i64) -> LocalTime {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    LocalTime {
        year,
        month: month as u32,
        day: day as u32,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        millis: 0,
    }
}

/// BIRD's default protocol/route time format (`iso short ms`): the time of
/// day when less than 20 hours ago, else the date.
pub fn short_time(t: SystemTime, now: SystemTime) -> String {
    let lt = LocalTime::of(t);
    match now.duration_since(t) {
        Ok(age) if age >= Duration::from_secs(20 * 3600) => lt.date(),
        _ => lt.time_ms(),
    }
}

/// `%t`: seconds with three decimals.
fn secs_ms(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// The wall-clock time an [`std::time::Instant`] in the past corresponds to.
fn wall_clock(elapsed: Duration, now: SystemTime) -> SystemTime {
    now.checked_sub(elapsed).unwrap_or(UNIX_EPOCH)
}

// ---------------------------------------------------------------------------
// Protocols
// ---------------------------------------------------------------------------

/// One BGP peer as the BIRD views need it (a snapshot of its status cell).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    pub local_asn: u32,
    /// RFC 4271 §8.2.2 state name (`Established`, `Active`, ...).
    pub state: String,
    /// When the state was entered.
    pub since: SystemTime,
    pub passive: bool,
    pub last_error: Option<String>,
    pub hold_time: Option<u16>,
    pub keepalive_time: u16,
    pub neighbor_id: Option<String>,
    pub local_address: Option<String>,
    /// Families we offer.
    pub families: Vec<Family>,
    /// Families negotiated on the session (`ipv4-unicast`, ...).
    pub negotiated: Vec<String>,
    pub graceful_restart: Option<u16>,
    pub add_path: Option<AddPathMode>,
    pub hostname: Option<String>,
    pub rr_client: bool,
    pub received: usize,
    pub advertised: usize,
}

impl PeerRow {
    fn up(&self) -> bool {
        self.state == "Established"
    }

    /// BIRD's `bgp_state_dsc`: the FSM state, `Passive` for a passive peer waiting.
    fn state_dsc(&self) -> &str {
        if self.passive && self.state == "Active" {
            "Passive"
        } else {
            &self.state
        }
    }

    /// The Info column: state padded to 14, then the last error as BIRD words it.
    fn info(&self) -> String {
        format!("{:<14}{}", self.state_dsc(), bird_error(self.last_error.as_deref()))
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Our last-error text as BIRD's error class + message (`Socket: Connection
/// refused`, `Received: ...`, `BGP Error: Hold timer expired`); empty for a
/// manual shutdown, which BIRD does not show either.
pub fn bird_error(e: Option<&str>) -> String {
    let Some(e) = e.map(str::trim).filter(|e| !e.is_empty()) else {
        return String::new();
    };
    let strip_os = |s: &str| match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    };
    if let Some(rest) = e.strip_prefix("connect: ") {
        let rest = strip_os(rest);
        let rest = if rest == "connect timed out" {
            "Connection timed out".to_string()
        } else {
            rest
        };
        format!("Socket: {}", capitalize(&rest))
    } else if e == "connection closed" {
        "Socket: Connection closed".into()
    } else if let Some(rest) = e.strip_prefix("received NOTIFICATION ") {
        format!("Received: {rest}")
    } else if e.starts_with("administrative shutdown") {
        String::new()
    } else {
        let head = e.split(", sent NOTIFICATION").next().unwrap_or(e);
        format!("BGP Error: {}", capitalize(head.trim_end_matches(',')))
    }
}

/// The `show protocols` header, `%-10s %-10s %-10s %-6s %-12s  %s` as in BIRD.
fn protocol_line(name: &str, proto: &str, table: &str, state: &str, since: &str, info: &str) -> String {
    format!("{name:<10} {proto:<10} {table:<10} {state:<6} {since:<12}  {info}")
}

/// BIRD's address-family name of a BGP family (`ipv4`, `ipv6`).
fn af_name(f: &Family) -> String {
    match f.to_string().as_str() {
        "ipv4-unicast" => "ipv4".into(),
        "ipv6-unicast" => "ipv6".into(),
        other => other.into(),
    }
}

fn negotiated_af(s: &str) -> String {
    match s {
        "ipv4-unicast" => "ipv4".into(),
        "ipv6-unicast" => "ipv6".into(),
        other => other.into(),
    }
}

/// Route counts for the channel lines of `show protocols all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// (peer, table) -> (paths imported, of them preferred).
    pub imported: HashMap<(String, Table), (usize, usize)>,
    /// Best paths per table.
    pub best: HashMap<Table, usize>,
}

impl ChannelCounts {
    /// Paths exported to `p` in `table`. The RIB counts a peer's Adj-RIB-Out
    /// over all families, so with several channels the total is spread over
    /// them in order, each taking at most the best paths of its table that
    /// did not come from the peer (exact whenever everything eligible is
    /// exported, an estimate otherwise); the channels always sum to the total.
    fn exported(&self, p: &PeerRow, table: Table, channels: &[Table]) -> usize {
        if channels.len() <= 1 {
            return p.advertised;
        }
        let eligible = |t: &Table| {
            let best = self.best.get(t).copied().unwrap_or(0);
            let own = self.imported.get(&(p.name.clone(), *t)).map_or(0, |c| c.1);
            best.saturating_sub(own)
        };
        let mut left = p.advertised;
        for (i, t) in channels.iter().enumerate() {
            let n = if i + 1 == channels.len() {
                left
            } else {
                eligible(t).min(left)
            };
            if *t == table {
                return n;
            }
            left -= n;
        }
        0
    }
}

/// Renders `show protocols [all]` for `rows` (already selected).
pub fn render_protocols(rows: &[PeerRow], all: bool, counts: &ChannelCounts, now: SystemTime) -> Reply {
    let mut r = Reply::new();
    r.line(
        code::TABLE_HEADING,
        protocol_line("Name", "Proto", "Table", "State", "Since", "Info"),
    );
    for p in rows {
        let state = if p.up() { "up" } else { "start" };
        r.line(
            code::PROTOCOL_LIST,
            protocol_line(&p.name, "BGP", "---", state, &short_time(p.since, now), &p.info()),
        );
        if all {
            for l in protocol_details(p, counts) {
                r.line(code::PROTOCOL_DETAILS, l);
            }
            r.line(code::PROTOCOL_DETAILS, "");
        }
    }
    r
}

fn af_list(label: &str, afs: &[String]) -> String {
    let mut s = label.to_string();
    for a in afs {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// The BGP block of `show protocols all NAME` (BIRD `bgp_show_proto_info`).
fn protocol_details(p: &PeerRow, counts: &ChannelCounts) -> Vec<String> {
    let mut l = vec![
        format!("  BGP state:          {}", p.state_dsc()),
        format!("    Neighbor address: {}", p.address),
        format!("    Neighbor AS:      {}", p.asn),
        format!("    Local AS:         {}", p.local_asn),
    ];
    let ours: Vec<String> = p.families.iter().map(af_name).collect();
    if p.up() {
        l.push(format!(
            "    Neighbor ID:      {}",
            p.neighbor_id.as_deref().unwrap_or("0.0.0.0")
        ));
        l.push("    Local capabilities".into());
        l.push("      Multiprotocol".into());
        l.push(af_list("        AF announced:", &ours));
        l.push("      Route refresh".into());
        l.push("      Extended message".into());
        if let Some(t) = p.graceful_restart {
            l.push("      Graceful restart".into());
            l.push(format!("        Restart time: {t}"));
            l.push(af_list("        AF supported:", &ours));
            l.push("        AF preserved:".into());
        }
        l.push("      4-octet AS numbers".into());
        if let Some(mode) = p.add_path {
            let rx = matches!(mode, AddPathMode::Receive | AddPathMode::Both);
            let tx = matches!(mode, AddPathMode::Send | AddPathMode::Both);
            l.push("      ADD-PATH".into());
            l.push(af_list("        RX:", if rx { &ours } else { &[] }));
            l.push(af_list("        TX:", if tx { &ours } else { &[] }));
        }
        if let Some(h) = &p.hostname {
            l.push(format!("      Hostname: {h}"));
        }
        l.push("    Neighbor capabilities".into());
        let theirs: Vec<String> = p.negotiated.iter().map(|s| negotiated_af(s)).collect();
        l.push("      Multiprotocol".into());
        l.push(af_list("        AF announced:", &theirs));
        let mut session = if p.asn == p.local_asn { "internal" } else { "external" }.to_string();
        if p.rr_client {
            session.push_str(" route-reflector");
        }
        l.push(format!("    Session:          {session}"));
        l.push(format!(
            "    Source address:   {}",
            p.local_address.as_deref().unwrap_or("0.0.0.0")
        ));
        // The remaining time of the timers is not tracked outside the peer
        // task; BIRD's `%t/%u` shape is kept with `-` for the unknown part.
        let hold = p.hold_time.unwrap_or(0);
        let keepalive = if hold == 0 { 0 } else { p.keepalive_time.min(hold / 3) };
        l.push(format!("    Hold timer:       -/{hold}"));
        l.push(format!("    Keepalive timer:  -/{keepalive}"));
    }
    let err = bird_error(p.last_error.as_deref());
    if !err.is_empty() {
        l.push(format!("    Last error:       {err}"));
    }
    let table_of = |af: &str| if af == "ipv6" { Table::Master6 } else { Table::Master4 };
    let up_channels: Vec<Table> = p
        .families
        .iter()
        .map(af_name)
        .filter(|af| p.up() && p.negotiated.iter().any(|n| negotiated_af(n) == *af))
        .map(|af| table_of(&af))
        .collect();
    for f in &p.families {
        let af = af_name(f);
        let table = table_of(&af);
        let up = up_channels.contains(&table);
        l.push(format!("  Channel {af}"));
        l.push(format!("    State:          {}", if up { "UP" } else { "DOWN" }));
        l.push(format!("    Table:          {}", table.name()));
        l.push("    Preference:     100".into());
        l.push("    Input filter:   ACCEPT".into());
        l.push("    Output filter:  ACCEPT".into());
        if up {
            let (imported, preferred) = counts.imported.get(&(p.name.clone(), table)).copied().unwrap_or((0, 0));
            let exported = counts.exported(p, table, &up_channels);
            l.push(format!(
                "    Routes:         {imported} imported, {exported} exported, {preferred} preferred"
            ));
            if let Some(a) = &p.local_address {
                let v6 = a.contains(':');
                if v6 == (table == Table::Master6) {
                    l.push(format!("    BGP Next hop:   {a}"));
                }
            }
        }
    }
    l
}

/// Picks the rows `which` names; `None` when a pattern matches nothing.
pub fn select<'a>(rows: &'a [PeerRow], which: &Selector) -> Option<Vec<&'a PeerRow>> {
    let out: Vec<&PeerRow> = rows
        .iter()
        .filter(|r| match which {
            Selector::Every => true,
            Selector::Name(n) => &r.name == n,
            Selector::Pattern(p) => pattern_match(p, &r.name),
        })
        .collect();
    match which {
        Selector::Pattern(_) if out.is_empty() => None,
        _ => Some(out),
    }
}

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

/// Graceful-restart recovery still running (BIRD `graceful_restart_show_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrRecovery {
    pub waiting: usize,
    pub remaining: Duration,
    pub wait: u32,
}

/// What `show status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusView {
    pub router_id: String,
    pub hostname: Option<String>,
    pub now: SystemTime,
    pub started: SystemTime,
    pub reconfigured: SystemTime,
    pub gr: Option<GrRecovery>,
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

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

/// One path as `show route` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRow {
    pub net: IpNetwork,
    pub best: bool,
    /// Protocol name: the peer, or `static1` for our own blocks.
    pub proto: String,
    pub since: SystemTime,
    /// `unicast` or `blackhole`.
    pub kind: &'static str,
    pub bgp: Option<BgpRoute>,
}

/// The BGP part of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRoute {
    pub next_hop: Option<String>,
    /// The peer's address, shown as `from` when it differs from the next hop.
    pub from: Option<IpAddr>,
    pub device: Option<String>,
    pub as_path: String,
    pub origin: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
}

/// `[AS65001i]`: the origin AS (last of the path) and the origin as one letter.
fn origin_info(b: &BgpRoute) -> String {
    let last = b
        .as_path
        .split(|c: char| c.is_whitespace() || "{}()[]".contains(c))
        .rfind(|s| !s.is_empty());
    let o = match b.origin.as_str() {
        "IGP" => 'i',
        "EGP" => 'e',
        _ => '?',
    };
    match last {
        Some(a) => format!("[AS{a}{o}]"),
        None => format!("[{o}]"),
    }
}

/// `(a,b)` for a community written `a:b`; large ones `(a, b, c)`.
fn bird_community(c: &str, large: bool) -> String {
    let parts: Vec<&str> = c.split(':').collect();
    if parts.len() >= 2 && parts.iter().all(|p| p.parse::<u32>().is_ok()) {
        if large {
            format!("({})", parts.join(", "))
        } else {
            format!("({})", parts.join(","))
        }
    } else {
        c.to_string()
    }
}

fn route_lines(r: &mut Reply, rt: &RouteRow, first_of_net: bool, all: bool, now: SystemTime) {
    let net = if first_of_net {
        rt.net.to_string()
    } else {
        String::new()
    };
    let star = if rt.best { " *" } else { "" };
    let time = short_time(rt.since, now);
    match &rt.bgp {
        Some(b) => {
            let from = match (b.from, &b.next_hop) {
                (Some(f), Some(nh)) if f.to_string() != *nh => format!(" from {f}"),
                _ => String::new(),
            };
            r.line(
                code::ROUTE_LIST,
                format!(
                    "{net:<20} {} [{} {time}{from}]{star} (100/0) {}",
                    rt.kind,
                    rt.proto,
                    origin_info(b)
                ),
            );
            if let Some(nh) = &b.next_hop {
                match &b.device {
                    Some(d) => r.line(code::ROUTE_LIST, format!("\tvia {nh} on {d}")),
                    None => r.line(code::ROUTE_LIST, format!("\tvia {nh}")),
                }
            }
            if all {
                r.line(code::ROUTE_DETAILS, "\tType: BGP univ");
                r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.origin: {}", b.origin));
                r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.as_path: {}", b.as_path));
                if let Some(nh) = &b.next_hop {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.next_hop: {nh}"));
                }
                if let Some(m) = b.med {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.med: {m}"));
                }
                if let Some(lp) = b.local_pref {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.local_pref: {lp}"));
                }
                if !b.communities.is_empty() {
                    let c: Vec<String> = b.communities.iter().map(|c| bird_community(c, false)).collect();
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.community: {}", c.join(" ")));
                }
                if let Some(o) = &b.originator_id {
                    r.line(code::ROUTE_ATTRIBUTES, format!("\tBGP.originator_id: {o}"));
                }
                if !b.cluster_list.is_empty() {
                    r.line(
                        code::ROUTE_ATTRIBUTES,
                        format!("\tBGP.cluster_list: {}", b.cluster_list.join(" ")),
                    );
                }
                if !b.large_communities.is_empty() {
                    let c: Vec<String> = b.large_communities.iter().map(|c| bird_community(c, true)).collect();
                    r.line(
                        code::ROUTE_ATTRIBUTES,
                        format!("\tBGP.large_community: {}", c.join(" ")),
                    );
                }
            }
        }
        None => {
            r.line(
                code::ROUTE_LIST,
                format!("{net:<20} {} [{} {time}]{star} (200)", rt.kind, rt.proto),
            );
            if all {
                r.line(code::ROUTE_DETAILS, "\tType: static univ");
            }
        }
    }
}

/// Does `rt` pass the filters other than the table?
fn route_matches(rt: &RouteRow, a: &RouteArgs) -> bool {
    (!a.primary || rt.best) && a.protocol.as_ref().is_none_or(|p| *p == rt.proto)
}

/// Renders `show route ...` over every path in `routes`.
pub fn render_routes(routes: &[RouteRow], a: &RouteArgs, now: SystemTime) -> Reply {
    // Group by table, then prefix (sorted), best path first.
    let mut tables: BTreeMap<Table, BTreeMap<IpNetwork, Vec<&RouteRow>>> = BTreeMap::new();
    for rt in routes {
        tables
            .entry(Table::of(&rt.net))
            .or_default()
            .entry(rt.net)
            .or_default()
            .push(rt);
    }
    for nets in tables.values_mut() {
        for paths in nets.values_mut() {
            paths.sort_by_key(|p| !p.best);
        }
    }
    // Prefix selection: exact, or the longest prefix covering the target.
    let wanted: Option<IpNetwork> = match a.net {
        None => None,
        Some(NetFilter::Exact(n)) => {
            let found = tables.get(&Table::of(&n)).is_some_and(|t| t.contains_key(&n));
            if !found {
                return Reply::single(code::NETWORK_NOT_FOUND, "Network not found");
            }
            Some(n)
        }
        Some(NetFilter::For(target)) => {
            let best = tables.get(&Table::of(&target)).and_then(|t| {
                t.keys()
                    .filter(|n| n.prefix() <= target.prefix() && n.contains(target.network()))
                    .max_by_key(|n| n.prefix())
                    .copied()
            });
            match best {
                Some(n) => Some(n),
                None => return Reply::single(code::NETWORK_NOT_FOUND, "Network not found"),
            }
        }
    };
    let shown_tables: Vec<Table> = match (a.table, wanted) {
        (Some(t), _) => vec![t],
        (None, Some(n)) => vec![Table::of(&n)],
        (None, None) => vec![Table::Master4, Table::Master6],
    };
    let mut r = Reply::new();
    if a.count {
        let mut total = (0usize, 0usize, 0usize);
        let mut listed = 0;
        for t in &shown_tables {
            let nets = tables.get(t);
            let all_paths: usize = nets.map(|n| n.values().map(Vec::len).sum()).unwrap_or(0);
            let all_nets = nets.map(BTreeMap::len).unwrap_or(0);
            let shown: usize = nets
                .map(|n| {
                    n.iter()
                        .filter(|(net, _)| wanted.is_none_or(|w| w == **net))
                        .map(|(_, p)| p.iter().filter(|rt| route_matches(rt, a)).count())
                        .sum()
                })
                .unwrap_or(0);
            // A protocol filter only looks at the tables the protocol feeds.
            if a.protocol.is_some() && a.table.is_none() && shown == 0 && *t == Table::Master6 {
                continue;
            }
            r.line(
                code::ROUTE_LIST,
                format!(
                    "{shown} of {all_paths} routes for {all_nets} networks in table {}",
                    t.name()
                ),
            );
            total = (total.0 + shown, total.1 + all_paths, total.2 + all_nets);
            listed += 1;
        }
        if listed > 1 {
            r.finish(
                code::ROUTE_COUNT_TOTAL,
                format!(
                    "Total: {} of {} routes for {} networks in {listed} tables",
                    total.0, total.1, total.2
                ),
            );
        }
        return r;
    }
    for t in &shown_tables {
        let Some(nets) = tables.get(t) else {
            if a.table.is_some() {
                r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
            }
            continue;
        };
        let mut header = a.table.is_some();
        if header {
            r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
        }
        for (net, paths) in nets {
            if wanted.is_some_and(|w| w != *net) {
                continue;
            }
            let mut first = true;
            for rt in paths.iter().filter(|rt| route_matches(rt, a)) {
                if !header {
                    r.line(code::ROUTE_LIST, format!("Table {}:", t.name()));
                    header = true;
                }
                route_lines(&mut r, rt, first, a.all, now);
                first = false;
            }
        }
    }
    r
}

// ---------------------------------------------------------------------------
// Snapshots of the daemon
// ---------------------------------------------------------------------------

/// Asks the RIB task a question (replies between batches, never blocking it).
pub(crate) async fn rib_query(shared: &Shared, q: Query) -> Option<QueryReply> {
    shared.rib_query(q).await.ok()
}

pub(crate) async fn rib_summary(shared: &Shared) -> Option<RibSummary> {
    match rib_query(shared, Query::Summary).await? {
        QueryReply::Summary(s) => Some(s),
        QueryReply::Routes(_) => None,
    }
}

async fn rib_routes(shared: &Shared) -> Option<Vec<RouteView>> {
    match rib_query(shared, Query::Routes(None)).await? {
        QueryReply::Routes(r) => Some(r),
        QueryReply::Summary(_) => None,
    }
}

/// The running peers' handles, sorted by name.
pub(crate) fn peer_handles(shared: &Shared) -> Vec<PeerHandle> {
    let mut v: Vec<PeerHandle> = shared
        .peers
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    v.sort_by(|a, b| a.settings.name.cmp(&b.settings.name));
    v
}

fn peer_rows(handles: &[PeerHandle], summary: Option<&RibSummary>, now: SystemTime) -> Vec<PeerRow> {
    handles
        .iter()
        .map(|h| {
            let st = h.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let s = &h.settings;
            let (received, advertised) = summary
                .and_then(|sm| sm.peers.iter().find(|p| p.name == st.name))
                .map(|p| (p.received, p.advertised))
                .unwrap_or((0, 0));
            let since = match st.since {
                Some(i) => wall_clock(i.elapsed(), now),
                None => UNIX_EPOCH + Duration::from_secs(st.since_unix),
            };
            PeerRow {
                name: s.name.clone(),
                address: s.address,
                asn: s.asn,
                local_asn: s.local_asn,
                state: st.state.clone(),
                since,
                passive: s.passive,
                last_error: st.last_error.clone(),
                hold_time: st.hold_time,
                keepalive_time: s.keepalive_time,
                neighbor_id: st.peer_router_id.clone(),
                local_address: st.local_address.clone(),
                families: s.families.clone(),
                negotiated: st.families.clone(),
                graceful_restart: s.graceful_restart,
                add_path: s.add_path,
                hostname: s.hostname.clone(),
                rr_client: s.rr_client,
                received,
                advertised,
            }
        })
        .collect()
}

/// Interface name of `ifindex` in the daemon's network namespace.
fn if_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer is IF_NAMESIZE bytes, as if_indextoname requires;
    // it returns null on failure and a NUL-terminated name otherwise.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    let bytes: Vec<u8> = buf.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8(bytes).ok()
}

/// Devices of installed kernel routes: (prefix, gateway) -> interface name.
async fn route_devices(shared: &Shared) -> HashMap<(IpNetwork, IpAddr), String> {
    let mut out = HashMap::new();
    let Some(fib) = &shared.fib else {
        return out;
    };
    let Ok(Ok(snapshot)) = tokio::time::timeout(QUERY_TIMEOUT, fib.snapshot()).await else {
        return out;
    };
    for r in snapshot {
        if let Some(fib_sync::RouteKind::Unicast(hops)) = r.installed.as_ref().map(|k| &k.kind) {
            for h in hops.iter() {
                if let (Some(gw), Some(name)) = (h.gateway, if_name(h.ifindex)) {
                    out.insert((r.prefix, gw), name);
                }
            }
        }
    }
    out
}

fn route_rows(
    views: &[RouteView],
    peers: &[PeerRow],
    devices: &HashMap<(IpNetwork, IpAddr), String>,
    blackholes: &[IpNetwork],
    started: SystemTime,
) -> Vec<RouteRow> {
    views
        .iter()
        .filter_map(|v| {
            let net: IpNetwork = v.prefix.parse().ok()?;
            let peer = peers.iter().find(|p| p.name == v.from);
            let Some(peer) = peer else {
                return Some(RouteRow {
                    net,
                    best: v.best,
                    proto: "static1".into(),
                    since: started,
                    kind: if blackholes.contains(&net) {
                        "blackhole"
                    } else {
                        "unicast"
                    },
                    bgp: None,
                });
            };
            let device = v
                .next_hop
                .as_ref()
                .and_then(|nh| nh.parse::<IpAddr>().ok())
                .and_then(|nh| devices.get(&(net, nh)).cloned());
            Some(RouteRow {
                net,
                best: v.best,
                proto: peer.name.clone(),
                since: peer.since,
                kind: "unicast",
                bgp: Some(BgpRoute {
                    next_hop: v.next_hop.clone(),
                    from: Some(peer.address),
                    device,
                    as_path: v.as_path.clone(),
                    origin: v.origin.clone(),
                    local_pref: v.local_pref,
                    med: v.med,
                    communities: v.communities.clone(),
                    large_communities: v.large_communities.clone(),
                    originator_id: v.originator_id.clone(),
                    cluster_list: v.cluster_list.clone(),
                }),
            })
        })
        .collect()
}

/// Per-peer, per-table counts of imported and preferred (best) paths.
fn channel_counts(views: &[RouteView]) -> ChannelCounts {
    let mut out = ChannelCounts::default();
    for v in views {
        let Ok(net) = v.prefix.parse::<IpNetwork>() else {
            continue;
        };
        let table = Table::of(&net);
        let e = out.imported.entry((v.from.clone(), table)).or_default();
        e.0 += 1;
        if v.best {
            e.1 += 1;
            *out.best.entry(table).or_default() += 1;
        }
    }
    out
}

/// Set once graceful-restart recovery has ended; it does not come back.
static GR_DONE: AtomicBool = AtomicBool::new(false);

async fn status_view(shared: &Shared) -> StatusView {
    let now = SystemTime::now();
    let cfg = shared.config.read().unwrap_or_else(|e| e.into_inner()).clone();
    let elapsed = shared.started.elapsed();
    let started = wall_clock(elapsed, now);
    let window = Duration::from_secs(u64::from(cfg.kernel.sweep_after));
    let mut gr = None;
    // Recovery: kernel routes adopted at start are kept until every peer is
    // up and sent End-of-RIB, or `[kernel] sweep_after` passes (the sweeper's
    // rule in daemon.rs), like BIRD's `graceful restart wait`.
    if cfg.graceful_restart.enabled && shared.fib.is_some() && !GR_DONE.load(Ordering::Relaxed) {
        if elapsed >= window {
            GR_DONE.store(true, Ordering::Relaxed);
        } else {
            let handles = peer_handles(shared);
            let not_up = handles
                .iter()
                .filter(|h| h.status.lock().unwrap_or_else(|e| e.into_inner()).state != "Established")
                .count();
            let converged = rib_summary(shared).await.is_some_and(|s| s.converged);
            if not_up == 0 && converged {
                GR_DONE.store(true, Ordering::Relaxed);
            } else {
                gr = Some(GrRecovery {
                    waiting: not_up.max(1),
                    remaining: window.saturating_sub(elapsed),
                    wait: cfg.kernel.sweep_after,
                });
            }
        }
    }
    StatusView {
        router_id: cfg.bgp.router_id.to_string(),
        hostname: hostname(),
        now,
        started,
        reconfigured: started,
        gr,
    }
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Runs one command line against the daemon; `None` when BIRD sends nothing.
pub async fn execute(line: &str, shared: &Shared) -> Option<Reply> {
    let handles = peer_handles(shared);
    let names: Vec<String> = handles.iter().map(|h| h.settings.name.clone()).collect();
    let cmd = match parse(line, &names) {
        Ok(c) => c,
        Err(e) => return Some(Reply::single(code::SYNTAX_ERROR, e.to_string())),
    };
    let now = SystemTime::now();
    Some(match cmd {
        Command::Silent => return None,
        Command::ShowStatus => render_status(&status_view(shared).await),
        Command::ShowProtocols { all, which } => {
            // Plain `show protocols` (the health check) never waits for the RIB.
            let (summary, counts) = if all {
                let s = rib_summary(shared).await;
                let c = rib_routes(shared).await.map(|v| channel_counts(&v)).unwrap_or_default();
                (s, c)
            } else {
                (None, ChannelCounts::default())
            };
            let rows = peer_rows(&handles, summary.as_ref(), now);
            match select(&rows, &which) {
                Some(sel) => {
                    let sel: Vec<PeerRow> = sel.into_iter().cloned().collect();
                    render_protocols(&sel, all, &counts, now)
                }
                None => Reply::single(code::NO_PROTOCOLS_MATCH, "No protocols match"),
            }
        }
        Command::ShowRoute(args) => {
            let Some(views) = rib_routes(shared).await else {
                return Some(Reply::single(code::RUNTIME_ERROR, "Routing table is not available"));
            };
            let rows = peer_rows(&handles, None, now);
            let devices = route_devices(shared).await;
            let blackholes: Vec<IpNetwork> = shared
                .config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .originate
                .iter()
                .filter(|o| o.blackhole)
                .map(|o| o.prefix)
                .collect();
            let started = wall_clock(shared.started.elapsed(), now);
            let routes = route_rows(&views, &rows, &devices, &blackholes, started);
            render_routes(&routes, &args, now)
        }
    })
}

// ---------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------

/// Binds the BIRD CLI socket at `path` (replacing a stale one), spawns the
/// task serving it and returns.
pub async fn serve(path: PathBuf, shared: Arc<Shared>) -> std::io::Result<()> {
    crate::control::serve_unix(path, shared, "BIRD socket", client)
}

async fn client(stream: UnixStream, shared: Arc<Shared>) -> std::io::Result<()> {
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
        if let Some(reply) = execute(line, &shared).await {
            wr.write_all(reply.encode().as_bytes()).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn names() -> Vec<String> {
        vec!["Mesh_192_168_1_12".into(), "Node_10_0_0_1".into()]
    }

    fn at(h: u32, m: u32, s: u32, ms: u32) -> SystemTime {
        // A local wall-clock time today, whatever the time zone.
        let now = SystemTime::now();
        let lt = LocalTime::of(now);
        let today_secs = i64::from(lt.hour * 3600 + lt.minute * 60 + lt.second);
        let want = i64::from(h * 3600 + m * 60 + s);
        let base = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) - today_secs;
        UNIX_EPOCH + Duration::from_secs((base + want) as u64) + Duration::from_millis(u64::from(ms))
    }

    fn peer(name: &str, state: &str) -> PeerRow {
        PeerRow {
            name: name.into(),
            address: "192.168.1.12".parse().expect("addr"),
            asn: 64512,
            local_asn: 64512,
            state: state.into(),
            since: at(0, 0, 1, 123),
            passive: false,
            last_error: None,
            hold_time: Some(240),
            keepalive_time: 80,
            neighbor_id: Some("192.168.1.12".into()),
            local_address: Some("192.168.1.11".into()),
            families: vec![Family::IPV4_UNICAST],
            negotiated: vec!["ipv4-unicast".into()],
            graceful_restart: None,
            add_path: None,
            hostname: None,
            rr_client: false,
            received: 1,
            advertised: 1,
        }
    }

    #[test]
    fn framing_uses_space_for_repeated_codes_and_0000_at_the_end() {
        let mut r = Reply::new();
        r.line(2002, "head");
        r.line(1002, "a");
        r.line(1002, "b");
        r.line(1006, "");
        r.line(1002, "c");
        assert_eq!(r.encode(), "2002-head\n1002-a\n b\n1006-\n1002-c\n0000 \n");
        r.finish(13, "Daemon is up and running");
        assert!(r.encode().ends_with("1002-c\n0013 Daemon is up and running\n"));
        assert_eq!(
            Reply::single(8001, "Network not found").encode(),
            "8001 Network not found\n"
        );
    }

    #[test]
    fn protocols_table_matches_bird_columns() {
        // Captured from BIRD 2.0.12 (`show protocols`), times aside.
        let now = at(0, 0, 2, 0);
        let r = render_protocols(
            &[peer("Mesh_192_168_1_12", "Established")],
            false,
            &ChannelCounts::default(),
            now,
        );
        assert_eq!(
            r.encode(),
            "2002-Name       Proto      Table      State  Since         Info\n\
             1002-Mesh_192_168_1_12 BGP        ---        up     00:00:01.123  Established   \n\
             0000 \n"
        );
        let mut p = peer("Node_192_168_1_12", "Active");
        p.last_error = Some("connect: Connection refused (os error 111)".into());
        let mut q = peer("Mesh_192_168_1_13", "Active");
        q.passive = true;
        let r = render_protocols(&[p, q], false, &ChannelCounts::default(), now).encode();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(
            lines[1],
            "1002-Node_192_168_1_12 BGP        ---        start  00:00:01.123  Active        Socket: Connection refused"
        );
        assert_eq!(
            lines[2],
            " Mesh_192_168_1_13 BGP        ---        start  00:00:01.123  Passive       "
        );
    }

    #[test]
    fn old_states_show_the_date() {
        let now = SystemTime::now();
        let then = now - Duration::from_secs(21 * 3600);
        assert_eq!(short_time(then, now), LocalTime::of(then).date());
        assert_eq!(short_time(now, now).len(), "12:00:00.000".len());
    }

    #[test]
    fn protocols_all_has_birds_detail_layout() {
        let mut counts = ChannelCounts::default();
        counts
            .imported
            .insert(("Mesh_192_168_1_12".into(), Table::Master4), (1, 1));
        let r = render_protocols(
            &[peer("Mesh_192_168_1_12", "Established")],
            true,
            &counts,
            at(0, 0, 2, 0),
        )
        .encode();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[2], "1006-  BGP state:          Established");
        assert_eq!(lines[3], "     Neighbor address: 192.168.1.12");
        assert_eq!(lines[4], "     Neighbor AS:      64512");
        assert_eq!(lines[5], "     Local AS:         64512");
        assert_eq!(lines[6], "     Neighbor ID:      192.168.1.12");
        assert!(lines.contains(&"   Channel ipv4"), "{r}");
        assert!(lines.contains(&"     State:          UP"), "{r}");
        assert!(
            lines.contains(&"     Routes:         1 imported, 1 exported, 1 preferred"),
            "{r}"
        );
        assert!(lines.contains(&"     BGP Next hop:   192.168.1.11"), "{r}");
        assert_eq!(lines[lines.len() - 2], " ");
        assert_eq!(lines[lines.len() - 1], "0000 ");
    }

    #[test]
    fn dual_stack_exports_are_split_over_the_channels() {
        let mut p = peer("Mesh_192_168_1_12", "Established");
        p.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        p.negotiated = vec!["ipv4-unicast".into(), "ipv6-unicast".into()];
        p.advertised = 3;
        let mut counts = ChannelCounts::default();
        // v4: 3 best paths, 1 of them from this peer; v6: 1 best path.
        counts.imported.insert((p.name.clone(), Table::Master4), (1, 1));
        counts.best.insert(Table::Master4, 3);
        counts.best.insert(Table::Master6, 1);
        let r = render_protocols(&[p], true, &counts, SystemTime::now()).encode();
        assert!(
            r.contains("   Channel ipv4\n     State:          UP\n     Table:          master4\n     Preference:     100\n     Input filter:   ACCEPT\n     Output filter:  ACCEPT\n     Routes:         1 imported, 2 exported, 1 preferred\n"),
            "{r}"
        );
        assert!(
            r.contains("     Routes:         0 imported, 1 exported, 0 preferred\n"),
            "{r}"
        );
    }

    #[test]
    fn down_peer_details_show_last_error_and_no_session() {
        let mut p = peer("Node_10_0_0_1", "Active");
        p.last_error = Some("connect: Connection refused (os error 111)".into());
        let r = render_protocols(&[p], true, &ChannelCounts::default(), SystemTime::now()).encode();
        assert!(
            r.contains("\n     Last error:       Socket: Connection refused\n"),
            "{r}"
        );
        assert!(r.contains("\n     State:          DOWN\n"), "{r}");
        assert!(!r.contains("Neighbor ID"), "{r}");
        assert!(!r.contains("Routes:"), "{r}");
    }

    #[test]
    fn errors_are_worded_like_bird() {
        assert_eq!(bird_error(None), "");
        assert_eq!(bird_error(Some("connection closed")), "Socket: Connection closed");
        assert_eq!(
            bird_error(Some("connect: connect timed out")),
            "Socket: Connection timed out"
        );
        assert_eq!(
            bird_error(Some(
                "hold timer expired, sent NOTIFICATION 4/0 (Hold Timer Expired / -)"
            )),
            "BGP Error: Hold timer expired"
        );
        assert_eq!(
            bird_error(Some("received NOTIFICATION 6/2 (Cease / Administrative Shutdown)")),
            "Received: 6/2 (Cease / Administrative Shutdown)"
        );
        assert_eq!(bird_error(Some("administrative shutdown, sent NOTIFICATION 6/2")), "");
    }

    #[test]
    fn status_reply_ends_with_0013_and_shows_gr_only_when_active() {
        let t = SystemTime::now();
        let mut s = StatusView {
            router_id: "192.168.1.11".into(),
            hostname: Some("node1".into()),
            now: t,
            started: t,
            reconfigured: t,
            gr: None,
        };
        let r = render_status(&s).encode();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[0], "1000-BIRD 2.0.12");
        assert_eq!(lines[1], "1011-Router ID is 192.168.1.11");
        assert_eq!(lines[2], " Hostname is node1");
        assert!(lines[3].starts_with(" Current server time is "));
        assert!(lines[4].starts_with(" Last reboot on "));
        assert!(lines[5].starts_with(" Last reconfiguration on "));
        assert_eq!(lines[6], "0013 Daemon is up and running");
        assert_eq!(lines.len(), 7);
        assert!(!r.contains("Graceful"));
        s.gr = Some(GrRecovery {
            waiting: 2,
            remaining: Duration::from_millis(215_500),
            wait: 240,
        });
        let r = render_status(&s).encode();
        assert!(
            r.contains(
                "0024-Graceful restart recovery in progress\n   Waiting for 2 channels to recover\n   Wait timer is 215.500/240\n0013 "
            ),
            "{r}"
        );
    }

    #[test]
    fn parses_the_commands_calico_and_operators_use() {
        let n = names();
        assert_eq!(
            parse("show protocols", &n),
            Ok(Command::ShowProtocols {
                all: false,
                which: Selector::Every
            })
        );
        assert_eq!(
            parse("show protocols all Mesh_192_168_1_12", &n),
            Ok(Command::ShowProtocols {
                all: true,
                which: Selector::Name("Mesh_192_168_1_12".into())
            })
        );
        assert_eq!(
            parse("show protocols \"Mesh*\"", &n),
            Ok(Command::ShowProtocols {
                all: false,
                which: Selector::Pattern("Mesh*".into())
            })
        );
        assert_eq!(parse("show status", &n), Ok(Command::ShowStatus));
        assert_eq!(parse("quit", &n), Ok(Command::Silent));
        let Ok(Command::ShowRoute(a)) = parse("show route all for 10.244.2.1 protocol Node_10_0_0_1", &n) else {
            panic!("show route did not parse");
        };
        assert!(a.all);
        assert_eq!(a.protocol.as_deref(), Some("Node_10_0_0_1"));
        assert_eq!(a.net, Some(NetFilter::For("10.244.2.1/32".parse().expect("net"))));
    }

    #[test]
    fn syntax_errors_match_bird() {
        // Each expected text was captured from BIRD 2.0.12.
        let n = names();
        let e = |l: &str| parse(l, &n).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e("foo bar"), "syntax error, unexpected CF_SYM_UNDEFINED");
        assert_eq!(e(""), "syntax error, unexpected END");
        assert_eq!(e("show"), "syntax error, unexpected END");
        assert_eq!(e("show foo"), "syntax error, unexpected CF_SYM_UNDEFINED");
        assert_eq!(e("SHOW STATUS"), "syntax error, unexpected CF_SYM_UNDEFINED");
        assert_eq!(e("?"), "syntax error, unexpected '?'");
        assert_eq!(
            e("show protocols nonexist"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT or ALL"
        );
        assert_eq!(
            e("show protocols all nonexist"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT"
        );
        assert_eq!(
            e("show protocols all Mesh_192_168_1_12 extra"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting END"
        );
        assert_eq!(
            e("show status extra"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting END"
        );
        assert_eq!(
            e("show route protocol nonexist"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN"
        );
        assert_eq!(
            e("show route table foo"),
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or ALL"
        );
        assert_eq!(e("show route foo"), "syntax error, unexpected CF_SYM_UNDEFINED");
        assert_eq!(e("show protocols \"unterminated"), "Unterminated string");
        assert_eq!(parse("show status # comment", &n), Ok(Command::ShowStatus));
    }

    #[test]
    fn patterns_match_like_birds_patmatch() {
        assert!(pattern_match("Mesh*", "Mesh_192_168_1_12"));
        assert!(pattern_match("*_12", "Mesh_192_168_1_12"));
        assert!(pattern_match("M?sh*1?", "Mesh_192_168_1_12"));
        assert!(!pattern_match("Node*", "Mesh_192_168_1_12"));
        assert!(!pattern_match("Mesh", "Mesh_192_168_1_12"));
        assert!(pattern_match("*", ""));
        let rows = vec![peer("Mesh_192_168_1_12", "Established")];
        assert!(select(&rows, &Selector::Pattern("none*".into())).is_none());
        assert_eq!(
            select(&rows, &Selector::Pattern("Mesh*".into())).map(|v| v.len()),
            Some(1)
        );
    }

    fn bgp_route(net: &str, best: bool, proto: &str, nh: &str) -> RouteRow {
        RouteRow {
            net: net.parse().expect("net"),
            best,
            proto: proto.into(),
            since: at(12, 0, 1, 123),
            kind: "unicast",
            bgp: Some(BgpRoute {
                next_hop: Some(nh.into()),
                from: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 12))),
                device: Some("eth0".into()),
                as_path: String::new(),
                origin: "IGP".into(),
                local_pref: Some(100),
                med: None,
                communities: vec![],
                large_communities: vec![],
                originator_id: None,
                cluster_list: vec![],
            }),
        }
    }

    fn routes() -> Vec<RouteRow> {
        vec![
            RouteRow {
                net: "10.244.1.0/26".parse().expect("net"),
                best: true,
                proto: "static1".into(),
                since: at(12, 0, 0, 0),
                kind: "blackhole",
                bgp: None,
            },
            bgp_route("10.244.2.0/26", true, "Mesh_192_168_1_12", "192.168.1.12"),
            bgp_route("10.244.2.0/26", false, "Mesh_192_168_1_13", "192.168.1.13"),
        ]
    }

    #[test]
    fn routes_render_like_bird() {
        let now = at(12, 0, 2, 0);
        let r = render_routes(&routes(), &RouteArgs::default(), now).encode();
        assert_eq!(
            r,
            "1007-Table master4:\n \
             10.244.1.0/26        blackhole [static1 12:00:00.000] * (200)\n \
             10.244.2.0/26        unicast [Mesh_192_168_1_12 12:00:01.123] * (100/0) [i]\n \
             \tvia 192.168.1.12 on eth0\n                      \
             unicast [Mesh_192_168_1_13 12:00:01.123 from 192.168.1.12] (100/0) [i]\n \
             \tvia 192.168.1.13 on eth0\n\
             0000 \n"
        );
    }

    #[test]
    fn route_filters_and_counts() {
        let now = SystemTime::now();
        let rs = routes();
        let for_addr = RouteArgs {
            net: Some(NetFilter::For("10.244.2.7/32".parse().expect("net"))),
            primary: true,
            ..RouteArgs::default()
        };
        let r = render_routes(&rs, &for_addr, now).encode();
        assert!(r.contains("Mesh_192_168_1_12"), "{r}");
        assert!(!r.contains("Mesh_192_168_1_13"), "{r}");
        let missing = RouteArgs {
            net: Some(NetFilter::Exact("10.244.0.0/16".parse().expect("net"))),
            ..RouteArgs::default()
        };
        assert_eq!(render_routes(&rs, &missing, now).encode(), "8001 Network not found\n");
        let count = RouteArgs {
            count: true,
            ..RouteArgs::default()
        };
        assert_eq!(
            render_routes(&rs, &count, now).encode(),
            "1007-3 of 3 routes for 2 networks in table master4\n \
             0 of 0 routes for 0 networks in table master6\n\
             0014 Total: 3 of 3 routes for 2 networks in 2 tables\n"
        );
        let by_proto = RouteArgs {
            count: true,
            protocol: Some("Mesh_192_168_1_12".into()),
            ..RouteArgs::default()
        };
        assert_eq!(
            render_routes(&rs, &by_proto, now).encode(),
            "1007-1 of 3 routes for 2 networks in table master4\n0000 \n"
        );
        let none = RouteArgs {
            protocol: Some("Mesh_192_168_1_99".into()),
            ..RouteArgs::default()
        };
        assert_eq!(render_routes(&rs, &none, now).encode(), "0000 \n");
        let t6 = RouteArgs {
            table: Some(Table::Master6),
            ..RouteArgs::default()
        };
        assert_eq!(render_routes(&rs, &t6, now).encode(), "1007-Table master6:\n0000 \n");
    }

    #[test]
    fn route_all_lists_bgp_attributes() {
        let mut rs = routes();
        if let Some(b) = rs[1].bgp.as_mut() {
            b.as_path = "65001 65002".into();
            b.communities = vec!["64512:100".into()];
            b.large_communities = vec!["64512:1:2".into()];
        }
        let a = RouteArgs {
            all: true,
            primary: true,
            ..RouteArgs::default()
        };
        let r = render_routes(&rs, &a, SystemTime::now()).encode();
        assert!(r.contains("* (100/0) [AS65002i]\n"), "{r}");
        assert!(
            r.contains("1008-\tType: BGP univ\n1012-\tBGP.origin: IGP\n \tBGP.as_path: 65001 65002\n"),
            "{r}"
        );
        assert!(r.contains(" \tBGP.community: (64512,100)\n"), "{r}");
        assert!(r.contains(" \tBGP.large_community: (64512, 1, 2)\n"), "{r}");
        assert!(r.contains("1008-\tType: static univ\n"), "{r}");
    }

    #[test]
    fn utc_fallback_converts_civil_dates() {
        let t = utc_parts(1_700_000_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2023, 11, 14, 22, 13, 20)
        );
        let t = utc_parts(951_782_400); // 2000-02-29 00:00:00
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
    }
}
