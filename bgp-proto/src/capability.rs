//! BGP capabilities (RFC 5492) carried in OPEN optional parameter type 2.
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//! A capability whose value does not re-encode to the very same bytes (an
//! unknown code, a reserved bit set, an odd length) is kept as raw bytes, so a
//! received OPEN always re-encodes identically.

use crate::types::{Afi, Family, Safi};

/// Capability codes (IANA "Capability Codes").
pub mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const ROLE: u8 = 9;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// ADD-PATH Send/Receive field (RFC 7911 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive,
    Send,
    Both,
}

impl AddPathMode {
    fn from_u8(v: u8) -> Option<AddPathMode> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }

    pub fn can_send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }

    pub fn can_receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddPathMode::Receive => "receive",
            AddPathMode::Send => "send",
            AddPathMode::Both => "send/receive",
        }
    }
}

/// One family in the graceful restart capability (RFC 4724 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// Bit 0x80: forwarding state was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// Graceful restart capability (RFC 4724 §3; N bit from RFC 8538).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// N bit (RFC 8538): the sender supports graceful NOTIFICATION.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

/// One family in the long-lived graceful restart capability (RFC 9494 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlgrFamily {
    pub family: Family,
    /// F bit: forwarding state preserved.
    pub forwarding_preserved: bool,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

/// Extended next hop capability entry (RFC 8950 §3): NLRI of `family` may
/// carry next hops of `next_hop_afi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedNextHop {
    pub family: Family,
    pub next_hop_afi: Afi,
}

/// BGP role (RFC 9234 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Provider,
    RouteServer,
    RouteServerClient,
    Customer,
    Peer,
}

impl Role {
    fn from_u8(v: u8) -> Option<Role> {
        Some(match v {
            0 => Role::Provider,
            1 => Role::RouteServer,
            2 => Role::RouteServerClient,
            3 => Role::Customer,
            4 => Role::Peer,
            _ => return None,
        })
    }

    fn to_u8(self) -> u8 {
        match self {
            Role::Provider => 0,
            Role::RouteServer => 1,
            Role::RouteServerClient => 2,
            Role::Customer => 3,
            Role::Peer => 4,
        }
    }

    /// The role the other side must have for the pair to be valid (RFC 9234 §4.2 table).
    pub fn expected_peer_role(self) -> Role {
        match self {
            Role::Provider => Role::Customer,
            Role::Customer => Role::Provider,
            Role::RouteServer => Role::RouteServerClient,
            Role::RouteServerClient => Role::RouteServer,
            Role::Peer => Role::Peer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::RouteServer => "rs",
            Role::RouteServerClient => "rs-client",
            Role::Customer => "customer",
            Role::Peer => "peer",
        }
    }
}

/// A capability, typed where tern understands it, raw bytes otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
    Multiprotocol(Family),
    /// RFC 2918.
    RouteRefresh,
    /// RFC 8950.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// RFC 8654.
    ExtendedMessage,
    /// RFC 9234.
    Role(Role),
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793: the sender's real AS number.
    FourOctetAs(u32),
    /// RFC 7911.
    AddPath(Vec<(Family, AddPathMode)>),
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// RFC 9494.
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    /// draft-walton-bgp-hostname-capability: host and domain name.
    Fqdn { hostname: Vec<u8>, domain: Vec<u8> },
    /// Anything else, byte for byte.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    /// Capability code on the wire.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::Role(_) => code::ROLE,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart(_) => code::LONG_LIVED_GRACEFUL_RESTART,
            Capability::Fqdn { .. } => code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// What a capability means: an [`Capability::Unknown`] kept only because
    /// it would not re-encode identically (reserved bits set, an unknown
    /// ADD-PATH mode) is read with those ignored, as RFC 4724 §3 and RFC 4760
    /// §8 ask of a receiver (review finding 19); others as they are.
    pub fn understood(&self) -> std::borrow::Cow<'_, Capability> {
        match self {
            Capability::Unknown { code, value } => match Self::decode_typed(*code, value) {
                Some(typed) => std::borrow::Cow::Owned(typed),
                None => std::borrow::Cow::Borrowed(self),
            },
            typed => std::borrow::Cow::Borrowed(typed),
        }
    }

    /// Decodes one capability value. Never fails: what is not understood,
    /// or would not re-encode identically, becomes [`Capability::Unknown`]
    /// (so captures re-encode byte for byte; see [`Capability::understood`]).
    pub fn decode(code: u8, value: &[u8]) -> Capability {
        let typed = Self::decode_typed(code, value);
        match typed {
            Some(cap) if cap.encode_value() == value => cap,
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        }
    }

    fn decode_typed(code: u8, v: &[u8]) -> Option<Capability> {
        let u16_at = |i: usize| u16::from_be_bytes([v[i], v[i + 1]]);
        Some(match code {
            code::MULTIPROTOCOL if v.len() == 4 => Capability::Multiprotocol(Family::new(Afi(u16_at(0)), Safi(v[3]))),
            code::ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            code::EXTENDED_NEXT_HOP if v.len() % 6 == 0 => Capability::ExtendedNextHop(
                v.chunks_exact(6)
                    .map(|c| {
                        let safi = u16::from_be_bytes([c[2], c[3]]);
                        Some(ExtendedNextHop {
                            family: Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(u8::try_from(safi).ok()?)),
                            next_hop_afi: Afi(u16::from_be_bytes([c[4], c[5]])),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?,
            ),
            code::EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            code::ROLE if v.len() == 1 => Capability::Role(Role::from_u8(v[0])?),
            code::GRACEFUL_RESTART if v.len() >= 2 && (v.len() - 2) % 4 == 0 => {
                let head = u16_at(0);
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    notification: head & 0x4000 != 0,
                    restart_time: head & 0x0fff,
                    families: v[2..]
                        .chunks_exact(4)
                        .map(|c| GracefulRestartFamily {
                            family: Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(c[2])),
                            forwarding_preserved: c[3] & 0x80 != 0,
                        })
                        .collect(),
                })
            }
            code::FOUR_OCTET_AS if v.len() == 4 => {
                Capability::FourOctetAs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            }
            // An entry with an unknown send/receive value is left out, not the capability.
            code::ADD_PATH if v.len() % 4 == 0 => Capability::AddPath(
                v.chunks_exact(4)
                    .filter_map(|c| {
                        Some((
                            Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(c[2])),
                            AddPathMode::from_u8(c[3])?,
                        ))
                    })
                    .collect(),
            ),
            code::ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            code::LONG_LIVED_GRACEFUL_RESTART if v.len() % 7 == 0 => Capability::LongLivedGracefulRestart(
                v.chunks_exact(7)
                    .map(|c| LlgrFamily {
                        family: Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(c[2])),
                        forwarding_preserved: c[3] & 0x80 != 0,
                        stale_time: u32::from_be_bytes([0, c[4], c[5], c[6]]),
                    })
                    .collect(),
            ),
            code::FQDN if !v.is_empty() => {
                let host_len = v[0] as usize;
                let host = v.get(1..1 + host_len)?;
                let dom_len = *v.get(1 + host_len)? as usize;
                let dom = v.get(2 + host_len..2 + host_len + dom_len)?;
                Capability::Fqdn {
                    hostname: host.to_vec(),
                    domain: dom.to_vec(),
                }
            }
            _ => return None,
        })
    }

    /// The capability value bytes (without code and length).
    pub fn encode_value(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let push_family = |v: &mut Vec<u8>, f: &Family| {
            v.extend_from_slice(&f.afi.0.to_be_bytes());
            v.push(f.safi.0);
        };
        match self {
            Capability::Multiprotocol(f) => {
                v.extend_from_slice(&f.afi.0.to_be_bytes());
                v.push(0);
                v.push(f.safi.0);
            }
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    v.extend_from_slice(&e.family.afi.0.to_be_bytes());
                    v.extend_from_slice(&(e.family.safi.0 as u16).to_be_bytes());
                    v.extend_from_slice(&e.next_hop_afi.0.to_be_bytes());
                }
            }
            Capability::Role(r) => v.push(r.to_u8()),
            Capability::GracefulRestart(gr) => {
                let mut head = gr.restart_time & 0x0fff;
                if gr.restarting {
                    head |= 0x8000;
                }
                if gr.notification {
                    head |= 0x4000;
                }
                v.extend_from_slice(&head.to_be_bytes());
                for f in &gr.families {
                    push_family(&mut v, &f.family);
                    v.push(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => v.extend_from_slice(&asn.to_be_bytes()),
            Capability::AddPath(entries) => {
                for (f, mode) in entries {
                    push_family(&mut v, f);
                    v.push(mode.to_u8());
                }
            }
            Capability::LongLivedGracefulRestart(entries) => {
                for e in entries {
                    push_family(&mut v, &e.family);
                    v.push(if e.forwarding_preserved { 0x80 } else { 0 });
                    v.extend_from_slice(&e.stale_time.to_be_bytes()[1..]);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                let host = &hostname[..hostname.len().min(255)];
                let dom = &domain[..domain.len().min(255)];
                v.push(host.len() as u8);
                v.extend_from_slice(host);
                v.push(dom.len() as u8);
                v.extend_from_slice(dom);
            }
            Capability::Unknown { value, .. } => v.extend_from_slice(value),
        }
        v
    }

    /// Human-readable form, as `ternctl decode` shows it.
    pub fn describe(&self) -> String {
        match self {
            Capability::Multiprotocol(f) => format!("multiprotocol {f}"),
            Capability::RouteRefresh => "route-refresh".into(),
            Capability::ExtendedNextHop(e) => format!(
                "extended-next-hop {}",
                e.iter()
                    .map(|e| format!("{} via afi{}", e.family, e.next_hop_afi.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Capability::ExtendedMessage => "extended-message".into(),
            Capability::Role(r) => format!("role {}", r.as_str()),
            Capability::GracefulRestart(gr) => format!(
                "graceful-restart time {}s{}{} [{}]",
                gr.restart_time,
                if gr.restarting { " restarting" } else { "" },
                if gr.notification { " notification" } else { "" },
                gr.families
                    .iter()
                    .map(|f| format!("{}{}", f.family, if f.forwarding_preserved { " F" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Capability::FourOctetAs(asn) => format!("4-octet-as {asn}"),
            Capability::AddPath(e) => format!(
                "add-path {}",
                e.iter()
                    .map(|(f, m)| format!("{f} {}", m.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Capability::EnhancedRouteRefresh => "enhanced-route-refresh".into(),
            Capability::LongLivedGracefulRestart(e) => format!(
                "long-lived-graceful-restart [{}]",
                e.iter()
                    .map(|e| format!(
                        "{} stale {}s{}",
                        e.family,
                        e.stale_time,
                        if e.forwarding_preserved { " F" } else { "" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Capability::Fqdn { hostname, domain } => format!(
                "fqdn {}{}{}",
                String::from_utf8_lossy(hostname),
                if domain.is_empty() { "" } else { "." },
                String::from_utf8_lossy(domain)
            ),
            Capability::Unknown { code, value } => {
                format!("capability {code} ({} bytes)", value.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cap: Capability) {
        let bytes = cap.encode_value();
        assert_eq!(Capability::decode(cap.code(), &bytes), cap);
    }

    #[test]
    fn typed_capabilities_round_trip() {
        round_trip(Capability::Multiprotocol(Family::IPV6_UNICAST));
        round_trip(Capability::RouteRefresh);
        round_trip(Capability::EnhancedRouteRefresh);
        round_trip(Capability::ExtendedMessage);
        round_trip(Capability::FourOctetAs(4_200_000_001));
        round_trip(Capability::Role(Role::Customer));
        round_trip(Capability::ExtendedNextHop(vec![ExtendedNextHop {
            family: Family::IPV4_UNICAST,
            next_hop_afi: Afi::IPV6,
        }]));
        round_trip(Capability::GracefulRestart(GracefulRestart {
            restarting: true,
            notification: true,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        }));
        round_trip(Capability::AddPath(vec![(Family::IPV4_UNICAST, AddPathMode::Both)]));
        round_trip(Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: Family::IPV6_UNICAST,
            forwarding_preserved: false,
            stale_time: 0x00ab_cdef,
        }]));
        round_trip(Capability::Fqdn {
            hostname: b"node-1".to_vec(),
            domain: b"cluster.local".to_vec(),
        });
    }

    #[test]
    fn odd_values_stay_raw() {
        // Multiprotocol with a non-zero reserved byte would not re-encode identically.
        assert_eq!(
            Capability::decode(1, &[0, 1, 7, 1]),
            Capability::Unknown {
                code: 1,
                value: vec![0, 1, 7, 1]
            }
        );
        // Route refresh with a value; add-path with a bad mode; truncated FQDN.
        assert!(matches!(Capability::decode(2, &[1]), Capability::Unknown { .. }));
        assert!(matches!(
            Capability::decode(69, &[0, 1, 1, 9]),
            Capability::Unknown { .. }
        ));
        assert!(matches!(Capability::decode(73, &[5, b'a']), Capability::Unknown { .. }));
    }
}
