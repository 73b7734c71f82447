//! Policies compiled from the configuration, run on routes.

use bgp_proto::attributes::{AsPath, Community};
use ipnetwork::IpNetwork;

use super::*;
use crate::route::policy::RouteContext;
use crate::route::RouteAttrs;

fn attrs() -> RouteAttrs {
    let mut a = RouteAttrs::local(vec![Community::new(65000, 1)], vec![]);
    a.as_path = AsPath::sequence(vec![65001, 65002]);
    a
}

fn ctx() -> RouteContext {
    RouteContext {
        neighbor: "192.168.1.1".parse().unwrap(),
        local_asn: 64512,
    }
}

fn rule() -> Rule {
    Rule {
        prefix: None,
        community: None,
        large_community: None,
        as_path_contains: None,
        origin_as: None,
        neighbor: None,
        verdict: Some(Verdict::Accept),
        set_local_pref: None,
        set_med: None,
        add_communities: vec![],
        remove_communities: vec![],
        add_large_communities: vec![],
        remove_large_communities: vec![],
        add_ext_communities: vec![],
        prepend: 0,
    }
}

fn chain(default: Verdict, rules: Vec<Rule>) -> Chain {
    Chain::Policies(vec![Arc::new(Policy {
        name: "p".into(),
        default,
        rules,
    })])
}

#[test]
fn first_deciding_rule_wins_and_sets_accumulate() {
    let c = chain(
        Verdict::Reject,
        vec![
            Rule {
                origin_as: Some(65002),
                set_local_pref: Some(200),
                verdict: None,
                ..rule()
            },
            Rule {
                community: Some(Community::new(65000, 1)),
                add_communities: vec![Community::new(65000, 9)],
                remove_communities: vec![Community::new(65000, 1)],
                prepend: 2,
                ..rule()
            },
        ],
    );
    let p: IpNetwork = "10.244.1.0/26".parse().unwrap();
    let out = c.run(&p, &attrs(), &ctx()).expect("accepted").expect("changed");
    assert_eq!(out.local_pref, Some(200));
    assert_eq!(out.communities, vec![Community::new(65000, 9)]);
    assert_eq!(out.as_path.to_string(), "64512 64512 65001 65002");
}

#[test]
fn prefix_ranges_neighbour_and_default() {
    let c = chain(
        Verdict::Reject,
        vec![Rule {
            prefix: Some(config::PrefixMatch {
                prefix: "10.244.0.0/16".parse().unwrap(),
                ge: 24,
                le: 28,
            }),
            neighbor: Some("192.168.1.1".parse().unwrap()),
            ..rule()
        }],
    );
    let ok: IpNetwork = "10.244.1.0/26".parse().unwrap();
    let too_long: IpNetwork = "10.244.1.0/30".parse().unwrap();
    let outside: IpNetwork = "10.99.0.0/26".parse().unwrap();
    assert_eq!(c.run(&ok, &attrs(), &ctx()), Some(None));
    assert_eq!(c.run(&too_long, &attrs(), &ctx()), None);
    assert_eq!(c.run(&outside, &attrs(), &ctx()), None);
    let other = RouteContext {
        neighbor: "192.168.1.2".parse().unwrap(),
        local_asn: 64512,
    };
    assert_eq!(c.run(&ok, &attrs(), &other), None);
}

#[test]
fn safe_default_import_keeps_to_allowed_prefixes() {
    let c = Chain::Within(Arc::new(vec!["10.244.0.0/16".parse().unwrap()]));
    assert_eq!(c.run(&"10.244.3.0/26".parse().unwrap(), &attrs(), &ctx()), Some(None));
    assert_eq!(c.run(&"0.0.0.0/0".parse().unwrap(), &attrs(), &ctx()), None);
    assert_eq!(c.run(&"10.0.0.0/8".parse().unwrap(), &attrs(), &ctx()), None);
    assert_eq!(
        Chain::RejectAll.run(&"10.244.3.0/26".parse().unwrap(), &attrs(), &ctx()),
        None
    );
}
