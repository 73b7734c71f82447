//! `show protocols [all]`: one line per BGP peer, and BIRD's detail block.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use bgp_proto::capability::AddPathMode;
use bgp_proto::fsm::State;
use bgp_proto::Family;

use super::code;
use super::parse::{pattern_match, Selector, Table};
use super::reply::Reply;
use super::time::short_time;

/// One BGP peer as the BIRD views need it (a snapshot of its status cell).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    pub local_asn: u32,
    /// RFC 4271 §8.2.2 state.
    pub state: State,
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
    /// `show protocols all`'s `Description:` line.
    pub description: Option<String>,
    pub received: usize,
    pub advertised: usize,
}

impl PeerRow {
    fn up(&self) -> bool {
        self.state == State::Established
    }

    /// BIRD's `bgp_state_dsc`: the FSM state, `Passive` for a passive peer waiting.
    fn state_dsc(&self) -> &str {
        if self.passive && self.state == State::Active {
            "Passive"
        } else {
            self.state.as_str()
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
    let mut l: Vec<String> = (p.description.iter())
        .map(|d| format!("  Description:    {d}"))
        .collect();
    l.extend([
        format!("  BGP state:          {}", p.state_dsc()),
        format!("    Neighbor address: {}", p.address),
        format!("    Neighbor AS:      {}", p.asn),
        format!("    Local AS:         {}", p.local_asn),
    ]);
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
