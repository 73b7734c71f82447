//! Small value types parsed from config strings: communities and keyword enums.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Why a community-like string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Wrong number of `:`-separated parts or an unknown name.
    #[error("expected {0}")]
    Format(&'static str),
    /// A part is not a number or does not fit its field.
    #[error("`{part}` is not a number in 0..={max}")]
    Range {
        /// The offending part.
        part: String,
        /// Largest allowed value.
        max: u64,
    },
}

fn num(part: &str, max: u64) -> Result<u64, ValueError> {
    match part.parse::<u64>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(ValueError::Range {
            part: part.to_string(),
            max,
        }),
    }
}

/// A standard community (RFC 1997): 16-bit AS, 16-bit value; shown as `A:B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT (RFC 1997).
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE (RFC 1997).
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (RFC 1997).
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// NOPEER (RFC 3765).
    pub const NO_PEER: Community = Community(0xFFFF_FF04);
}

impl FromStr for Community {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        const EXPECTED: &str =
            "a community `A:B` (each 0..=65535) or one of no-export, no-advertise, no-export-subconfed, no-peer";
        match s {
            "no-export" => return Ok(Self::NO_EXPORT),
            "no-advertise" => return Ok(Self::NO_ADVERTISE),
            "no-export-subconfed" => return Ok(Self::NO_EXPORT_SUBCONFED),
            "no-peer" => return Ok(Self::NO_PEER),
            _ => {}
        }
        let (a, b) = s.split_once(':').ok_or(ValueError::Format(EXPECTED))?;
        if b.contains(':') {
            return Err(ValueError::Format(EXPECTED));
        }
        let a = num(a, 0xFFFF)? as u32;
        let b = num(b, 0xFFFF)? as u32;
        Ok(Community(a << 16 | b))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A large community (RFC 8092): three 32-bit fields; shown as `A:B:C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an ASN).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl FromStr for LargeCommunity {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        const EXPECTED: &str = "a large community `A:B:C` (each 0..=4294967295)";
        let parts: Vec<&str> = s.split(':').collect();
        let [g, l1, l2] = parts[..] else {
            return Err(ValueError::Format(EXPECTED));
        };
        let max = u64::from(u32::MAX);
        Ok(LargeCommunity {
            global: num(g, max)? as u32,
            local1: num(l1, max)? as u32,
            local2: num(l2, max)? as u32,
        })
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl Serialize for LargeCommunity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Extended-community sub-type (RFC 4360 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtKind {
    /// Route Target, sub-type 0x02 (`rt:`).
    RouteTarget,
    /// Route Origin / Site of Origin, sub-type 0x03 (`soo:`).
    RouteOrigin,
}

/// An extended community of the two kinds the config accepts (RFC 4360 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtCommunity {
    /// Two-Octet AS Specific (type 0x00): 2-octet ASN, 4-octet local value.
    As2 {
        /// `rt` or `soo`.
        kind: ExtKind,
        /// Global administrator (16-bit ASN).
        asn: u16,
        /// Local administrator.
        local: u32,
    },
    /// IPv4 Address Specific (type 0x01): IPv4 address, 2-octet local value.
    Ipv4 {
        /// `rt` or `soo`.
        kind: ExtKind,
        /// Global administrator (an IPv4 address).
        addr: Ipv4Addr,
        /// Local administrator.
        local: u16,
    },
}

impl ExtCommunity {
    /// The 8 wire octets (RFC 4360 §2, §3.1, §3.2).
    pub fn to_bytes(&self) -> [u8; 8] {
        let sub = |k: &ExtKind| match k {
            ExtKind::RouteTarget => 0x02,
            ExtKind::RouteOrigin => 0x03,
        };
        let mut b = [0u8; 8];
        match self {
            ExtCommunity::As2 { kind, asn, local } => {
                b[0] = 0x00;
                b[1] = sub(kind);
                b[2..4].copy_from_slice(&asn.to_be_bytes());
                b[4..8].copy_from_slice(&local.to_be_bytes());
            }
            ExtCommunity::Ipv4 { kind, addr, local } => {
                b[0] = 0x01;
                b[1] = sub(kind);
                b[2..6].copy_from_slice(&addr.octets());
                b[6..8].copy_from_slice(&local.to_be_bytes());
            }
        }
        b
    }
}

impl FromStr for ExtCommunity {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        const EXPECTED: &str = "`rt:ASN:N` or `soo:ASN:N` (16-bit ASN, 32-bit N) or `rt:IPv4:N` (16-bit N)";
        let parts: Vec<&str> = s.split(':').collect();
        let [k, g, l] = parts[..] else {
            return Err(ValueError::Format(EXPECTED));
        };
        let kind = match k {
            "rt" => ExtKind::RouteTarget,
            "soo" => ExtKind::RouteOrigin,
            _ => return Err(ValueError::Format(EXPECTED)),
        };
        if let Ok(addr) = g.parse::<Ipv4Addr>() {
            let local = num(l, 0xFFFF)? as u16;
            return Ok(ExtCommunity::Ipv4 { kind, addr, local });
        }
        let asn = num(g, 0xFFFF)? as u16;
        let local = num(l, u64::from(u32::MAX))? as u32;
        Ok(ExtCommunity::As2 { kind, asn, local })
    }
}

impl fmt::Display for ExtCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = |k: &ExtKind| match k {
            ExtKind::RouteTarget => "rt",
            ExtKind::RouteOrigin => "soo",
        };
        match self {
            ExtCommunity::As2 { kind, asn, local } => write!(f, "{}:{asn}:{local}", k(kind)),
            ExtCommunity::Ipv4 { kind, addr, local } => write!(f, "{}:{addr}:{local}", k(kind)),
        }
    }
}

impl Serialize for ExtCommunity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Declares a keyword enum: parsed from / serialized as fixed strings.
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// All accepted spellings, for error messages.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            /// The config spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }

            pub(crate) fn parse_keyword(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$var),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

keyword_enum! {
    /// When learned routes go through the IPIP tunnel device (Calico `ipipMode`).
    IpipMode {
        /// Always via the tunnel device, `onlink`.
        Always = "always",
        /// Via the tunnel only when the next hop is outside the host interface's subnet.
        CrossSubnet = "cross-subnet",
        /// Never: plain routes via the next hop.
        Never = "never",
    }
}

keyword_enum! {
    /// Next-hop handling on export.
    NextHop {
        /// Always set our own address as next hop.
        SelfAddr = "self",
        /// Never change the next hop.
        Keep = "keep",
        /// RFC 4271 default: self towards eBGP, unchanged towards iBGP.
        Auto = "auto",
    }
}

keyword_enum! {
    /// ADD-PATH direction (RFC 7911).
    AddPath {
        /// No ADD-PATH.
        None = "none",
        /// We send several paths.
        Send = "send",
        /// We receive several paths.
        Receive = "receive",
        /// Both directions.
        Both = "both",
    }
}

keyword_enum! {
    /// An address family (unicast SAFI) negotiated with a peer.
    Family {
        /// IPv4 unicast.
        Ipv4 = "ipv4",
        /// IPv6 unicast.
        Ipv6 = "ipv6",
    }
}

keyword_enum! {
    /// What a policy does when no rule decides.
    PolicyDefault {
        /// Accept the route.
        Accept = "accept",
        /// Reject the route.
        Reject = "reject",
    }
}

keyword_enum! {
    /// What a matching policy rule does after applying its `set_*` actions.
    RuleAction {
        /// Accept and stop.
        Accept = "accept",
        /// Reject and stop.
        Reject = "reject",
        /// Keep the changes and continue with the next rule.
        Next = "next",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_parse_and_show() {
        assert_eq!("65000:100".parse(), Ok(Community(65000 << 16 | 100)));
        assert_eq!(Community(65000 << 16 | 100).to_string(), "65000:100");
        assert_eq!("no-export".parse(), Ok(Community::NO_EXPORT));
        assert_eq!(Community::NO_PEER.to_string(), "65535:65284");
        assert!("65536:1".parse::<Community>().is_err());
        assert!("1:2:3".parse::<Community>().is_err());
        assert!("1".parse::<Community>().is_err());
        assert!("-1:2".parse::<Community>().is_err());
        assert!("a:b".parse::<Community>().is_err());
    }

    #[test]
    fn large_community_parse_and_show() {
        let c: LargeCommunity = "4294967295:1:2".parse().unwrap();
        assert_eq!(
            c,
            LargeCommunity {
                global: u32::MAX,
                local1: 1,
                local2: 2
            }
        );
        assert_eq!(c.to_string(), "4294967295:1:2");
        assert!("4294967296:1:2".parse::<LargeCommunity>().is_err());
        assert!("1:2".parse::<LargeCommunity>().is_err());
    }

    #[test]
    fn ext_community_bytes() {
        let rt: ExtCommunity = "rt:65000:1".parse().unwrap();
        assert_eq!(rt.to_bytes(), [0x00, 0x02, 0xFD, 0xE8, 0, 0, 0, 1]);
        assert_eq!(rt.to_string(), "rt:65000:1");
        let soo: ExtCommunity = "soo:10.0.0.1:7".parse().unwrap();
        assert_eq!(soo.to_bytes(), [0x01, 0x03, 10, 0, 0, 1, 0, 7]);
        assert_eq!(soo.to_string(), "soo:10.0.0.1:7");
        assert!("rt:65536:1".parse::<ExtCommunity>().is_err());
        assert!("rt:10.0.0.1:65536".parse::<ExtCommunity>().is_err());
        assert!("xx:1:1".parse::<ExtCommunity>().is_err());
        assert!("rt:1".parse::<ExtCommunity>().is_err());
    }

    #[test]
    fn keywords() {
        assert_eq!(IpipMode::parse_keyword("cross-subnet"), Some(IpipMode::CrossSubnet));
        assert_eq!(IpipMode::parse_keyword("Cross-Subnet"), None);
        assert_eq!(NextHop::SelfAddr.as_str(), "self");
    }
}
