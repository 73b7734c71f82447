//! Raw (spanned) config -> validated [`Config`], collecting every error.
//!
//! [`Validator`] holds the typed checks and the error list; one file per group
//! of TOML sections: `global.rs` (`[bgp]`, `[graceful_restart]`, `[kernel]`,
//! `[control]`), `peers.rs` (`[mesh]`, `[[dynamic_peers]]`, `[[peer]]` and
//! their uniqueness), `policy.rs` (`[[policy]]` and its rules).

mod global;
mod peers;
mod policy;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use toml::Spanned;

use crate::error::{ConfigError, ErrorKind, Locator};
use crate::model::*;
use crate::raw::*;
use global::{validate_bfd, validate_bgp, validate_control, validate_gr, validate_kernel, validate_learn};
use peers::{check_peer_uniqueness, validate_dynamic, validate_mesh, validate_peers};
use policy::validate_policy;

/// AS_TRANS (RFC 6793 §9): a placeholder, never a real AS.
const AS_TRANS: u64 = 23456;
/// Largest TCP-MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`); RFC 2385 keys.
const MAX_PASSWORD: usize = 80;

/// Resolves the hold/keepalive pair for a session from its overrides and `[bgp]`.
///
/// A session that overrides only `hold_time` gets `hold_time / 3` as keepalive.
pub(crate) fn resolve_timers(bgp: &Bgp, hold: Option<u16>, keepalive: Option<u16>) -> (u16, u16) {
    let h = hold.unwrap_or(bgp.hold_time);
    let k = match (keepalive, hold) {
        (Some(k), _) => k,
        (None, Some(h)) => h / 3,
        (None, None) => bgp.keepalive_time,
    };
    (h, k)
}

/// `Peer_` / `Mesh_` name: the address with `.` and `:` replaced by `_`.
pub(crate) fn address_name(prefix: &str, addr: &IpAddr) -> String {
    let mut s = String::from(prefix);
    s.extend(
        addr.to_string()
            .chars()
            .map(|c| if c == '.' || c == ':' { '_' } else { c }),
    );
    s
}

/// The validation pass: typed checks of raw values, each recording an error
/// (with the value's position) instead of stopping, so every problem is reported.
struct Validator<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, msg: impl Into<String>) {
        let e = self.loc.error(ErrorKind::Invalid, Some(span), key, msg);
        self.errors.push(e);
    }

    /// An integer in `min..=max`, or `None` (error recorded).
    fn int(&mut self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        let n = *v.get_ref();
        if n < min || n > max {
            self.err(v.span(), key, format!("{n} is out of range {min}..={max}"));
            None
        } else {
            Some(n)
        }
    }

    fn opt_int<T: TryFrom<i64>>(&mut self, v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64) -> Option<T> {
        let n = self.int(v.as_ref()?, key, min, max)?;
        T::try_from(n).ok()
    }

    fn int_or<T: TryFrom<i64>>(&mut self, v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: T) -> T {
        self.opt_int(v, key, min, max).unwrap_or(default)
    }

    /// A 4-octet AS number: 1..=4294967295, not AS_TRANS (RFC 6793 §9), not 0 (RFC 7607).
    fn asn(&mut self, v: &Spanned<i64>, key: &str) -> Option<u32> {
        let n = self.int(v, key, 1, i64::from(u32::MAX))?;
        if n as u64 == AS_TRANS {
            self.err(v.span(), key, "23456 is AS_TRANS (RFC 6793), not a usable AS number");
            return None;
        }
        u32::try_from(n).ok()
    }

    fn parse<T: FromStr>(&mut self, v: &Spanned<String>, key: &str, what: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match v.get_ref().parse::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(v.span(), key, format!("`{}` is not {what}: {e}", v.get_ref()));
                None
            }
        }
    }

    fn ip(&mut self, v: &Spanned<String>, key: &str) -> Option<IpAddr> {
        self.parse(v, key, "an IP address")
    }

    /// A prefix `addr/len` whose host bits are zero.
    fn net(&mut self, v: &Spanned<String>, key: &str) -> Option<IpNetwork> {
        if !v.get_ref().contains('/') {
            self.err(
                v.span(),
                key,
                format!("`{}` is not a prefix: expected ADDRESS/LENGTH", v.get_ref()),
            );
            return None;
        }
        let n: IpNetwork = self.parse(v, key, "a prefix")?;
        if n.ip() != n.network() {
            self.err(
                v.span(),
                key,
                format!(
                    "`{}` has host bits set; did you mean {}/{}?",
                    v.get_ref(),
                    n.network(),
                    n.prefix()
                ),
            );
            return None;
        }
        Some(n)
    }

    fn keyword<T>(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        parse: fn(&str) -> Option<T>,
        names: &[&str],
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        match parse(v.get_ref()) {
            Some(x) => x,
            None => {
                self.err(
                    v.span(),
                    key,
                    format!("`{}` is not one of: {}", v.get_ref(), names.join(", ")),
                );
                default
            }
        }
    }

    fn list<T: FromStr>(&mut self, v: &Option<Vec<Spanned<String>>>, key: &str, what: &str) -> Vec<T>
    where
        T::Err: std::fmt::Display,
    {
        let mut out = Vec::new();
        for (i, s) in v.iter().flatten().enumerate() {
            if let Some(x) = self.parse(s, &format!("{key}[{i}]"), what) {
                out.push(x);
            }
        }
        out
    }

    /// A TCP-MD5 key: 1..=80 bytes (Linux `TCP_MD5SIG_MAXKEYLEN`, RFC 2385 §4).
    fn password(&mut self, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
        let v = v.as_ref()?;
        let len = v.get_ref().len();
        if len == 0 || len > MAX_PASSWORD {
            self.err(
                v.span(),
                key,
                format!("TCP-MD5 key must be 1..={MAX_PASSWORD} bytes, got {len}"),
            );
            return None;
        }
        Some(v.get_ref().clone())
    }

    /// A name usable as a protocol name in the BIRD-compatible CLI.
    fn name(&mut self, v: &Spanned<String>, key: &str) -> bool {
        let s = v.get_ref();
        let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.err(
                v.span(),
                key,
                format!("`{s}` is not a valid name: use 1..=64 of A-Z a-z 0-9 _ -"),
            );
        }
        ok
    }

    /// Hold time is 0 or at least 3 seconds (RFC 4271 §4.2).
    fn hold(&mut self, v: &Option<Spanned<i64>>, key: &str) -> Option<u16> {
        let v = v.as_ref()?;
        let n = self.int(v, key, 0, 65535)?;
        if n == 1 || n == 2 {
            self.err(
                v.span(),
                key,
                format!("hold time {n} is invalid: must be 0 or 3..=65535 (RFC 4271 §4.2)"),
            );
            return None;
        }
        u16::try_from(n).ok()
    }

    /// Keepalive must be shorter than the hold time when that is non-zero (RFC 4271 §4.4, §10).
    fn check_keepalive(&mut self, v: &Option<Spanned<i64>>, key: &str, hold: u16, keep: u16) {
        let Some(v) = v else { return };
        if hold > 0 && (keep == 0 || keep >= hold) {
            self.err(
                v.span(),
                key,
                format!("keepalive time {keep} must be in 1..{hold} (below the hold time)"),
            );
        }
    }

    fn names(&mut self, v: &Option<Vec<Spanned<String>>>) -> Vec<String> {
        v.iter().flatten().map(|s| s.get_ref().clone()).collect::<Vec<_>>()
    }

    fn policy_refs(&mut self, v: &Option<Vec<Spanned<String>>>, key: &str, known: &HashSet<String>) -> Vec<String> {
        for (i, s) in v.iter().flatten().enumerate() {
            if !known.contains(s.get_ref()) {
                self.err(
                    s.span(),
                    &format!("{key}[{i}]"),
                    format!("unknown policy `{}`: no [[policy]] has this name", s.get_ref()),
                );
            }
        }
        self.names(v)
    }

    fn max_prefixes(&mut self, v: &Option<Spanned<RawMaxPrefixes>>, key: &str) -> Option<MaxPrefixes> {
        let m = v.as_ref()?.get_ref();
        let limit = self.int(&m.limit, &format!("{key}.limit"), 1, i64::from(u32::MAX));
        let warning_percent = self.int_or(&m.warning_percent, &format!("{key}.warning_percent"), 1, 100, 75);
        let restart_after = self.int_or(
            &m.restart_after,
            &format!("{key}.restart_after"),
            0,
            i64::from(u32::MAX),
            60,
        );
        Some(MaxPrefixes {
            limit: u32::try_from(limit?).ok()?,
            warning_percent,
            restart_after,
        })
    }

    /// Route reflection needs a CLUSTER_ID and an iBGP session (RFC 4456 §7, §8).
    fn rr_client(&mut self, v: &Option<Spanned<bool>>, key: &str, cluster_id: Option<Ipv4Addr>, ibgp: bool) -> bool {
        let Some(v) = v else { return false };
        if !*v.get_ref() {
            return false;
        }
        if cluster_id.is_none() {
            self.err(
                v.span(),
                key,
                "route_reflector_client needs bgp.cluster_id to be set (RFC 4456 §7)",
            );
        }
        if !ibgp {
            self.err(
                v.span(),
                key,
                "route_reflector_client is only valid on an iBGP session (RFC 4456 §8)",
            );
        }
        true
    }
}

/// Validates the whole file: every section, then the references between them.
pub(crate) fn validate(raw: &RawConfig, loc: &Locator<'_>) -> Result<Config, Vec<ConfigError>> {
    let mut v = Validator {
        loc,
        errors: Vec::new(),
    };
    let Some(rb) = raw.bgp.as_ref() else {
        v.err(0..0, "bgp", "missing required table [bgp] (asn, router_id)");
        return Err(v.errors);
    };
    let bgp = validate_bgp(&mut v, rb.get_ref());
    let graceful_restart = validate_gr(&mut v, raw.graceful_restart.as_ref());
    let kernel = validate_kernel(&mut v, raw.kernel.as_ref(), u32::from(graceful_restart.restart_time));

    let mut originate = Vec::new();
    for (i, o) in raw.originate.iter().flatten().enumerate() {
        let o = o.get_ref();
        let k = format!("originate[{i}]");
        let prefix = v.net(&o.prefix, &format!("{k}.prefix"));
        let communities = v.list(&o.communities, &format!("{k}.communities"), "a standard community");
        let large_communities = v.list(
            &o.large_communities,
            &format!("{k}.large_communities"),
            "a large community",
        );
        if let Some(prefix) = prefix {
            originate.push(Originate {
                prefix,
                blackhole: o.blackhole.unwrap_or(true),
                communities,
                large_communities,
            });
        }
    }

    let learn = validate_learn(&mut v, raw.learn.as_ref(), kernel.protocol);
    let control = validate_control(&mut v, raw.control.as_ref());
    let metrics = raw.metrics.as_ref().and_then(|m| {
        let listen = v.parse(&m.get_ref().listen, "metrics.listen", "a socket address")?;
        Some(Metrics { listen })
    });

    // Policy names first: peers refer to them.
    let mut policy_names = HashSet::new();
    for (i, p) in raw.policy.iter().flatten().enumerate() {
        let name = &p.get_ref().name;
        if v.name(name, &format!("policy[{i}].name")) && !policy_names.insert(name.get_ref().clone()) {
            v.err(
                name.span(),
                &format!("policy[{i}].name"),
                format!("duplicate policy name `{}`", name.get_ref()),
            );
        }
    }

    let bfd = validate_bfd(&mut v, raw.bfd.as_ref());
    let mesh = raw.mesh.as_ref().map(|m| validate_mesh(&mut v, m.get_ref(), &bgp));
    let dynamic_peers = validate_dynamic(&mut v, raw, &bgp, &policy_names);
    let peers = validate_peers(&mut v, raw, &bgp, &policy_names);
    check_peer_uniqueness(&mut v, raw, mesh.as_ref());

    let mut policies = Vec::new();
    for (i, p) in raw.policy.iter().flatten().enumerate() {
        policies.push(validate_policy(&mut v, p.get_ref(), &format!("policy[{i}]")));
    }

    if v.errors.is_empty() {
        Ok(Config {
            bgp,
            graceful_restart,
            kernel,
            originate,
            learn,
            control,
            metrics,
            bfd,
            mesh,
            dynamic_peers,
            peers,
            policies,
        })
    } else {
        Err(v.errors)
    }
}
