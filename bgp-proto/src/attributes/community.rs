//! Communities: standard (RFC 1997), extended (RFC 4360) and large
//! (RFC 8092), each with the text form operators write.

use std::fmt;
use std::net::Ipv4Addr;

/// A standard community (RFC 1997), shown as `ASN:VALUE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    pub const NO_PEER: Community = Community(0xFFFF_FF04);

    pub fn new(asn: u16, value: u16) -> Community {
        Community(((asn as u32) << 16) | value as u32)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Community::NO_EXPORT => f.write_str("no-export"),
            Community::NO_ADVERTISE => f.write_str("no-advertise"),
            Community::NO_EXPORT_SUBCONFED => f.write_str("no-export-subconfed"),
            Community::NO_PEER => f.write_str("no-peer"),
            Community(c) => write!(f, "{}:{}", c >> 16, c & 0xffff),
        }
    }
}

/// An extended community (RFC 4360), eight raw octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl fmt::Display for ExtCommunity {
    /// Route target / origin in the usual `rt:ASN:N` / `soo:ASN:N` form, hex otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let name = match b[1] {
            0x02 => "rt",
            0x03 => "soo",
            _ => "",
        };
        match (b[0] & 0x3f, name) {
            (0x00, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]])
            ),
            (0x01, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            (0x02, n) if !n.is_empty() => write!(
                f,
                "{n}:{}:{}",
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            _ => write!(
                f,
                "0x{:02x}{:02x}:{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
            ),
        }
    }
}

/// A large community (RFC 8092), shown as `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_text() {
        assert_eq!(Community::new(65000, 1).to_string(), "65000:1");
        assert_eq!(Community::NO_EXPORT.to_string(), "no-export");
        let lc = LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 2,
        };
        assert_eq!(lc.to_string(), "65000:1:2");
        assert_eq!(ExtCommunity([0, 2, 0xfd, 0xe8, 0, 0, 0, 1]).to_string(), "rt:65000:1");
    }
}
