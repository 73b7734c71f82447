//! Import and export policy: ordered rules matching prefix, communities, AS
//! path and neighbour; actions accept/reject, set LOCAL_PREF/MED, add/remove
//! communities, prepend. Compiled once from the configuration.

use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::attributes::{Community, ExtCommunity, LargeCommunity};
use ipnetwork::IpNetwork;

use super::RouteAttrs;

/// A policy's verdict after its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
}

/// One compiled rule.
#[derive(Clone, Debug, PartialEq, Default)]
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
    /// Whether the verdict or the changes can depend on the prefix: if not,
    /// one run serves every prefix with the same attributes (an UPDATE's
    /// NLRI on import, a shared export class).
    pub fn looks_at_prefix(&self) -> bool {
        match self {
            Chain::AcceptAll | Chain::RejectAll => false,
            Chain::Within(_) => true,
            Chain::Policies(list) => list.iter().any(|p| p.rules.iter().any(|r| r.prefix.is_some())),
        }
    }

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
