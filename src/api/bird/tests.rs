use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_proto::fsm::State;
use bgp_proto::Family;

use super::parse::{pattern_match, NetFilter, RouteArgs, Table};
use super::protocols::bird_error;
use super::routes::BgpRoute;
use super::time::{short_time, utc_parts, LocalTime};
use super::*;
use crate::registry::Recovery;

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

fn peer(name: &str, state: State) -> PeerRow {
    PeerRow {
        name: name.into(),
        address: "192.168.1.12".parse().expect("addr"),
        asn: 64512,
        local_asn: 64512,
        state,
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
        description: None,
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
        &[peer("Mesh_192_168_1_12", State::Established)],
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
    let mut p = peer("Node_192_168_1_12", State::Active);
    p.last_error = Some("connect: Connection refused (os error 111)".into());
    let mut q = peer("Mesh_192_168_1_13", State::Active);
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

/// BIRD prints a protocol's `description` first in its detail block.
#[test]
fn protocols_all_shows_the_description_first() {
    let mut p = peer("Mesh_192_168_1_12", State::Established);
    p.description = Some("rack 12 ToR".into());
    let r = render_protocols(&[p], true, &ChannelCounts::default(), at(0, 0, 2, 0)).encode();
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines[2], "1006-  Description:    rack 12 ToR");
    assert_eq!(lines[3], "   BGP state:          Established");
}

#[test]
fn protocols_all_has_birds_detail_layout() {
    let mut counts = ChannelCounts::default();
    counts
        .imported
        .insert(("Mesh_192_168_1_12".into(), Table::Master4), (1, 1));
    let r = render_protocols(
        &[peer("Mesh_192_168_1_12", State::Established)],
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
    let mut p = peer("Mesh_192_168_1_12", State::Established);
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
    let mut p = peer("Node_10_0_0_1", State::Active);
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
    s.gr = Some(Recovery {
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
    let rows = vec![peer("Mesh_192_168_1_12", State::Established)];
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
        learned: None,
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
            learned: None,
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

/// A route learned from the kernel (`[learn]`) as BIRD shows its kernel
/// protocol's learned routes.
#[test]
fn learned_routes_render_like_birds_kernel_protocol() {
    let learned = RouteRow {
        net: "10.244.9.7/32".parse().expect("net"),
        best: true,
        proto: "kernel1".into(),
        since: at(12, 0, 0, 0),
        kind: "unicast",
        bgp: None,
        learned: Some(std::sync::Arc::new(crate::messages::Learned {
            protocol: 3,
            devices: vec!["cali1234".into()],
            blackhole: false,
        })),
    };
    let all = RouteArgs {
        all: true,
        ..RouteArgs::default()
    };
    let r = render_routes(&[learned], &all, at(12, 0, 2, 0)).encode();
    assert_eq!(
        r,
        "1007-Table master4:\n \
         10.244.9.7/32        unicast [kernel1 12:00:00.000] * (10)\n \
         \tdev cali1234\n\
         1008-\tType: inherit univ\n\
         1012-\tKernel.source: 3\n\
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
