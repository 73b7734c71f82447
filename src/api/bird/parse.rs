//! The command grammar calico-node and operators use, with BIRD's error
//! wording for what it does not understand.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

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

    pub(super) fn of(net: &IpNetwork) -> Table {
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
    /// `show bfd sessions [bfd1|"PATTERN"]`: ternd's one BFD "protocol".
    ShowBfdSessions {
        which: Selector,
    },
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
    "bfd",
    "sessions",
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
        Some("bfd") => {
            if word(2) != Some("sessions") {
                return Err(err(2, vec!["SESSIONS"]));
            }
            let which = match toks.get(3) {
                None => Selector::Every,
                Some(Token::Text(p)) => Selector::Pattern(p.clone()),
                Some(Token::Word(w)) if w == super::bfd::PROTOCOL => Selector::Name(w.clone()),
                Some(_) => return Err(err(3, vec!["END", "CF_SYM_KNOWN", "TEXT"])),
            };
            if toks.len() > 4 {
                return Err(err(4, vec!["END"]));
            }
            Ok(Command::ShowBfdSessions { which })
        }
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
