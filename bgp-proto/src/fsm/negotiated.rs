//! Capability intersection: what both OPENs agreed on ([`Negotiated`]) and
//! the decode/encode [`Context`]s that follow from it.

use std::net::Ipv4Addr;

use crate::capability::{AddPathMode, Capability, ExtendedNextHop, GracefulRestart, LlgrFamily, Role};
use crate::framing::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use crate::open::Open;
use crate::types::{Context, Family, FamilySet};

/// Capability code some older routers use for route refresh (pre-RFC 2918).
const ROUTE_REFRESH_OLD: u8 = 128;

/// What both OPENs agreed on (RFC 4271 §4.2, RFC 5492 and the capability RFCs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS (from its 4-octet AS capability if present).
    pub peer_asn: u32,
    /// The peer is in another AS (eBGP).
    pub external: bool,
    pub peer_id: Ipv4Addr,
    /// min(ours, theirs); 0 means no keepalives and no hold timer.
    pub hold_time: u16,
    /// Our KEEPALIVE interval in seconds (0 when `hold_time` is 0).
    pub keepalive_time: u16,
    /// Both sent the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Multiprotocol families both announced; IPv4 unicast for a side that
    /// announced none (RFC 4760 §8).
    pub families: FamilySet,
    /// Families for which we send path identifiers (RFC 7911 §4).
    pub add_path_send: FamilySet,
    /// Families for which we receive path identifiers.
    pub add_path_receive: FamilySet,
    /// Both sent the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// The peer accepts ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// The peer supports enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability (RFC 4724), families limited to `families`.
    pub graceful_restart: Option<GracefulRestart>,
    /// Both announced graceful restart with the N bit (RFC 8538): a NOTIFICATION
    /// other than Hard Reset keeps the routes like a lost connection does.
    pub graceful_notification: bool,
    /// The peer's long-lived graceful restart families (RFC 9494), limited to `families`.
    pub llgr: Vec<LlgrFamily>,
    /// Extended next hop entries both announced (RFC 8950).
    pub extended_next_hop: Vec<ExtendedNextHop>,
    pub peer_hostname: Option<String>,
    pub peer_domain: Option<String>,
    /// The peer's BGP role (RFC 9234).
    pub peer_role: Option<Role>,
    /// The peer's OPEN as received (for `show protocols all`).
    pub peer_open: Open,
}

/// Multiprotocol families of an OPEN; IPv4 unicast if it has none (RFC 4760 §8).
fn mp_families(open: &Open) -> FamilySet {
    let set: FamilySet = open
        .understood_capabilities()
        .filter_map(|c| match c.as_ref() {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    if set.is_empty() {
        [Family::IPV4_UNICAST].into_iter().collect()
    } else {
        set
    }
}

/// ADD-PATH mode announced for `family` (first mention wins).
fn add_path_mode(open: &Open, family: Family) -> Option<AddPathMode> {
    open.understood_capabilities().find_map(|c| match c.as_ref() {
        Capability::AddPath(entries) => entries.iter().find(|(f, _)| *f == family).map(|(_, mode)| *mode),
        _ => None,
    })
}

fn has_cap(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities().any(pred)
}

fn extended_next_hops(open: &Open) -> impl Iterator<Item = &ExtendedNextHop> {
    open.capabilities()
        .filter_map(|c| match c {
            Capability::ExtendedNextHop(e) => Some(e.iter()),
            _ => None,
        })
        .flatten()
}

impl Negotiated {
    /// Computes the session parameters from our OPEN and the peer's. The
    /// keepalive interval is a third of the hold time; the FSM applies the
    /// configured one.
    pub fn new(local: &Open, peer: &Open) -> Negotiated {
        let theirs = mp_families(peer);
        let families: FamilySet = mp_families(local).iter().filter(|f| theirs.contains(*f)).collect();
        let mut add_path_send = FamilySet::new();
        let mut add_path_receive = FamilySet::new();
        for f in families.iter() {
            if let (Some(ours), Some(theirs)) = (add_path_mode(local, f), add_path_mode(peer, f)) {
                if ours.can_send() && theirs.can_receive() {
                    add_path_send.insert(f);
                }
                if ours.can_receive() && theirs.can_send() {
                    add_path_receive.insert(f);
                }
            }
        }
        let both = |pred: fn(&Capability) -> bool| has_cap(local, pred) && has_cap(peer, pred);
        // RFC 4724 §3: of several GR capabilities, the last one counts.
        let graceful_restart = peer
            .understood_capabilities()
            .filter_map(|c| match c.as_ref() {
                Capability::GracefulRestart(gr) => {
                    let mut gr = gr.clone();
                    gr.families.retain(|f| families.contains(f.family));
                    Some(gr)
                }
                _ => None,
            })
            .last();
        let llgr = peer
            .understood_capabilities()
            .filter_map(|c| match c.as_ref() {
                Capability::LongLivedGracefulRestart(e) => Some(e.clone()),
                _ => None,
            })
            .flatten()
            .filter(|e| families.contains(e.family))
            .collect();
        let extended_next_hop = extended_next_hops(local)
            .filter(|e| extended_next_hops(peer).any(|p| p == *e))
            .copied()
            .collect();
        let (peer_hostname, peer_domain) = peer
            .capabilities()
            .find_map(|c| match c {
                Capability::Fqdn { hostname, domain } => {
                    let text = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
                    Some((text(hostname), text(domain)))
                }
                _ => None,
            })
            .unwrap_or((None, None));
        let peer_role = peer.capabilities().find_map(|c| match c {
            Capability::Role(r) => Some(*r),
            _ => None,
        });
        let hold_time = local.hold_time.min(peer.hold_time);
        Negotiated {
            peer_asn: peer.asn(),
            external: peer.asn() != local.asn(),
            peer_id: peer.bgp_id,
            hold_time,
            keepalive_time: hold_time / 3,
            four_octet_as: both(|c| matches!(c, Capability::FourOctetAs(_))),
            families,
            add_path_send,
            add_path_receive,
            extended_message: both(|c| matches!(c, Capability::ExtendedMessage)),
            route_refresh: has_cap(peer, |c| {
                matches!(c, Capability::RouteRefresh)
                    || matches!(c, Capability::Unknown { code, .. } if *code == ROUTE_REFRESH_OLD)
            }),
            enhanced_route_refresh: has_cap(peer, |c| matches!(c, Capability::EnhancedRouteRefresh)),
            graceful_notification: graceful_restart.as_ref().is_some_and(|gr| gr.notification)
                && has_cap(
                    local,
                    |c| matches!(c, Capability::GracefulRestart(gr) if gr.notification),
                ),
            graceful_restart,
            llgr,
            extended_next_hop,
            peer_hostname,
            peer_domain,
            peer_role,
            peer_open: peer.clone(),
        }
    }

    fn context(&self, add_path: &FamilySet) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            max_message_len: if self.extended_message {
                MAX_EXTENDED_MESSAGE_LEN
            } else {
                MAX_MESSAGE_LEN
            },
            add_path: add_path.clone(),
            external: self.external,
        }
    }

    /// Context for decoding what the peer sends.
    pub fn rx_context(&self) -> Context {
        self.context(&self.add_path_receive)
    }

    /// Context for encoding what we send.
    pub fn tx_context(&self) -> Context {
        self.context(&self.add_path_send)
    }
}
