//! `[[policy]]` tables and their rules.

use super::Validator;
use crate::model::*;
use crate::raw::*;
use crate::types::*;

pub(super) fn validate_policy(v: &mut Validator<'_>, p: &RawPolicy, k: &str) -> Policy {
    let default = v.keyword(
        &p.default,
        &format!("{k}.default"),
        PolicyDefault::parse_keyword,
        PolicyDefault::NAMES,
        PolicyDefault::Reject,
    );
    let mut rules = Vec::new();
    for (i, r) in p.rule.iter().flatten().enumerate() {
        rules.push(validate_rule(v, r.get_ref(), &format!("{k}.rule[{i}]")));
    }
    Policy {
        name: p.name.get_ref().clone(),
        default,
        rules,
    }
}

pub(super) fn validate_rule(v: &mut Validator<'_>, r: &RawRule, k: &str) -> Rule {
    let key = |f: &str| format!("{k}.{f}");
    let prefix = match &r.prefix {
        Some(p) => v.net(p, &key("prefix")).and_then(|net| {
            // prefix length <= ge <= le <= address length
            let len = i64::from(net.prefix());
            let max: i64 = if net.is_ipv4() { 32 } else { 128 };
            let ge = match &r.ge {
                Some(g) => v.int(g, &key("ge"), len, max)?,
                None => len,
            };
            let le = match &r.le {
                Some(l) => v.int(l, &key("le"), ge, max)?,
                None if r.ge.is_some() => max,
                None => ge,
            };
            Some(PrefixMatch {
                prefix: net,
                ge: u8::try_from(ge).ok()?,
                le: u8::try_from(le).ok()?,
            })
        }),
        None => {
            for (f, val) in [("ge", &r.ge), ("le", &r.le)] {
                if let Some(val) = val {
                    v.err(val.span(), &key(f), format!("`{f}` needs `prefix` in the same rule"));
                }
            }
            None
        }
    };
    let community = r
        .community
        .as_ref()
        .and_then(|c| v.parse(c, &key("community"), "a standard community"));
    let large_community = r
        .large_community
        .as_ref()
        .and_then(|c| v.parse(c, &key("large_community"), "a large community"));
    let as_max = i64::from(u32::MAX);
    let as_path_contains = v.opt_int(&r.as_path_contains, &key("as_path_contains"), 1, as_max);
    let origin_as = v.opt_int(&r.origin_as, &key("origin_as"), 1, as_max);
    let neighbor = r.neighbor.as_ref().and_then(|n| v.ip(n, &key("neighbor")));
    let action = v.keyword(
        &r.action,
        &key("action"),
        RuleAction::parse_keyword,
        RuleAction::NAMES,
        RuleAction::Accept,
    );
    Rule {
        prefix,
        community,
        large_community,
        as_path_contains,
        origin_as,
        neighbor,
        action,
        set_local_pref: v.opt_int(&r.set_local_pref, &key("set_local_pref"), 0, as_max),
        set_med: v.opt_int(&r.set_med, &key("set_med"), 0, as_max),
        add_communities: v.list(&r.add_communities, &key("add_communities"), "a standard community"),
        remove_communities: v.list(
            &r.remove_communities,
            &key("remove_communities"),
            "a standard community",
        ),
        add_large_communities: v.list(
            &r.add_large_communities,
            &key("add_large_communities"),
            "a large community",
        ),
        remove_large_communities: v.list(
            &r.remove_large_communities,
            &key("remove_large_communities"),
            "a large community",
        ),
        add_ext_communities: v.list(
            &r.add_ext_communities,
            &key("add_ext_communities"),
            "an extended community",
        ),
        prepend: v.int_or(&r.prepend, &key("prepend"), 0, 10, 0),
    }
}
