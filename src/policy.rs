//! Import and export policy: ordered rules matching prefix, communities, AS
//! path and neighbour; actions accept/reject, set LOCAL_PREF/MED, add/remove
//! communities, prepend. Compiled once from the configuration.

use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::attributes::{Community, ExtCommunity, LargeCommunity};
use ipnetwork::IpNetwork;

use crate::route::RouteAttrs;

/// A policy's verdict after its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
}

/// One compiled rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub prefix: Option<config::PrefixMatch>,
    pub community: Option<Community>,
    pub large_community: Option<LargeCommunity>,
    pub as_path_contains: Option<u32>,
    pub origin_as: Option<u32>,
    pub neighbor: Option<IpAddr>,
    /// `None`: apply the sets and go on to the next rule.
    pub verdict: Option<Verdict>,
    pub set_local_pref: Option<u32>,
    pub set_med: Option<u32>,
    pub add_communities: Vec<Community>,
    pub remove_communities: Vec<Community>,
    pub add_large_communities: Vec<LargeCommunity>,
    pub remove_large_communities: Vec<LargeCommunity>,
    pub add_ext_communities: Vec<ExtCommunity>,
    pub prepend: u8,
}

/// One named policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub default: Verdict,
    pub rules: Vec<Rule>,
}

/// What a session runs routes through, in one direction.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Chain {
    /// No policy configured: everything passes.
    #[default]
    AcceptAll,
    /// RFC 8212: an eBGP session without explicit policy exchanges nothing.
    RejectAll,
    /// Only prefixes inside these pass (the safe import default).
    Within(Arc<Vec<IpNetwork>>),
    /// Every policy must accept; their sets accumulate.
    Policies(Vec<Arc<Policy>>),
}

/// The context a rule's neighbour match and prepends refer to.
pub struct RouteContext {
    /// The peer the route came from (import) or goes to (export).
    pub neighbor: IpAddr,
    /// Our AS on that session (for `prepend`).
    pub local_asn: u32,
}

fn within(prefix: &IpNetwork, nets: &[IpNetwork]) -> bool {
    nets.iter()
        .any(|n| n.prefix() <= prefix.prefix() && n.contains(prefix.network()) && n.is_ipv4() == prefix.is_ipv4())
}

impl Rule {
    fn matches(&self, prefix: &IpNetwork, attrs: &RouteAttrs, ctx: &RouteContext) -> bool {
        self.prefix.as_ref().is_none_or(|m| m.matches(prefix))
            && self.community.is_none_or(|c| attrs.communities.contains(&c))
            && self
                .large_community
                .is_none_or(|c| attrs.large_communities.contains(&c))
            && self.as_path_contains.is_none_or(|a| attrs.as_path.contains(a))
            && self.origin_as.is_none_or(|a| attrs.as_path.origin_as() == Some(a))
            && self.neighbor.is_none_or(|n| n == ctx.neighbor)
    }

    fn apply(&self, attrs: &mut RouteAttrs, ctx: &RouteContext) {
        if let Some(lp) = self.set_local_pref {
            attrs.local_pref = Some(lp);
        }
        if let Some(med) = self.set_med {
            attrs.med = Some(med);
        }
        attrs.communities.retain(|c| !self.remove_communities.contains(c));
        for c in &self.add_communities {
            if !attrs.communities.contains(c) {
                attrs.communities.push(*c);
            }
        }
        attrs
            .large_communities
            .retain(|c| !self.remove_large_communities.contains(c));
        for c in &self.add_large_communities {
            if !attrs.large_communities.contains(c) {
                attrs.large_communities.push(*c);
            }
        }
        for c in &self.add_ext_communities {
            if !attrs.ext_communities.contains(c) {
                attrs.ext_communities.push(*c);
            }
        }
        if self.prepend > 0 {
            attrs.as_path.prepend(ctx.local_asn, self.prepend as usize);
        }
    }
}

impl Policy {
    fn run(&self, prefix: &IpNetwork, attrs: &mut RouteAttrs, ctx: &RouteContext) -> Verdict {
        for rule in &self.rules {
            if rule.matches(prefix, attrs, ctx) {
                rule.apply(attrs, ctx);
                if let Some(v) = rule.verdict {
                    return v;
                }
            }
        }
        self.default
    }
}

impl Chain {
    /// Runs the route through the chain; `Some` with the (possibly changed)
    /// attributes if it passes. Attributes are only copied when a rule changes them.
    pub fn run(&self, prefix: &IpNetwork, attrs: &RouteAttrs, ctx: &RouteContext) -> Option<Option<RouteAttrs>> {
        match self {
            Chain::AcceptAll => Some(None),
            Chain::RejectAll => None,
            Chain::Within(nets) => within(prefix, nets).then_some(None),
            Chain::Policies(list) => {
                let mut out = attrs.clone();
                for p in list {
                    if p.run(prefix, &mut out, ctx) == Verdict::Reject {
                        return None;
                    }
                }
                Some((out != *attrs).then_some(out))
            }
        }
    }
}

/// Compiles the configuration's policies.
pub fn compile(policies: &[config::Policy]) -> Vec<Arc<Policy>> {
    policies
        .iter()
        .map(|p| {
            Arc::new(Policy {
                name: p.name.clone(),
                default: match p.default {
                    config::PolicyDefault::Accept => Verdict::Accept,
                    config::PolicyDefault::Reject => Verdict::Reject,
                },
                rules: p
                    .rules
                    .iter()
                    .map(|r| Rule {
                        prefix: r.prefix.clone(),
                        community: r.community.map(|c| Community(c.0)),
                        large_community: r.large_community.map(large),
                        as_path_contains: r.as_path_contains,
                        origin_as: r.origin_as,
                        neighbor: r.neighbor,
                        verdict: match r.action {
                            config::RuleAction::Accept => Some(Verdict::Accept),
                            config::RuleAction::Reject => Some(Verdict::Reject),
                            config::RuleAction::Next => None,
                        },
                        set_local_pref: r.set_local_pref,
                        set_med: r.set_med,
                        add_communities: r.add_communities.iter().map(|c| Community(c.0)).collect(),
                        remove_communities: r.remove_communities.iter().map(|c| Community(c.0)).collect(),
                        add_large_communities: r.add_large_communities.iter().map(|c| large(*c)).collect(),
                        remove_large_communities: r.remove_large_communities.iter().map(|c| large(*c)).collect(),
                        add_ext_communities: r
                            .add_ext_communities
                            .iter()
                            .map(|c| ExtCommunity(c.to_bytes()))
                            .collect(),
                        prepend: r.prepend,
                    })
                    .collect(),
            })
        })
        .collect()
}

fn large(c: config::LargeCommunity) -> LargeCommunity {
    LargeCommunity {
        global: c.global,
        local1: c.local1,
        local2: c.local2,
    }
}

/// The import and export chains of a session: named policies if given;
/// otherwise RFC 8212 (if enabled, for eBGP) or the safe defaults — import
/// only `allowed_prefixes` (when any are set), export everything.
pub fn chains(
    cfg: &config::Config,
    compiled: &[Arc<Policy>],
    import: &[String],
    export: &[String],
    ebgp: bool,
) -> (Chain, Chain) {
    let named = |names: &[String]| {
        Chain::Policies(
            names
                .iter()
                .filter_map(|n| compiled.iter().find(|p| &p.name == n).cloned())
                .collect(),
        )
    };
    let rfc8212 = cfg.bgp.rfc8212 && ebgp;
    let import = if !import.is_empty() {
        named(import)
    } else if rfc8212 {
        Chain::RejectAll
    } else if cfg.kernel.allowed_prefixes.is_empty() {
        Chain::AcceptAll
    } else {
        Chain::Within(Arc::new(cfg.kernel.allowed_prefixes.clone()))
    };
    let export = if !export.is_empty() {
        named(export)
    } else if rfc8212 {
        Chain::RejectAll
    } else {
        Chain::AcceptAll
    };
    (import, export)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::attributes::AsPath;

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
}
