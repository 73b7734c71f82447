//! NLRI prefixes (RFC 4271 §4.3) with optional ADD-PATH path identifiers (RFC 7911 §3).
//!
//! ```text
//! +--------------------------------+
//! | Path Identifier (4 octets)     |   only when ADD-PATH is negotiated
//! +--------------------------------+
//! | Length (1 octet, in bits)      |
//! +--------------------------------+
//! | Prefix (ceil(Length/8) octets) |
//! +--------------------------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::error::Reason;

/// One route key: a prefix and, with ADD-PATH, its path identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNetwork,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNetwork) -> Nlri {
        Nlri { prefix, path_id: None }
    }

    pub fn with_path_id(prefix: IpNetwork, path_id: u32) -> Nlri {
        Nlri {
            prefix,
            path_id: Some(path_id),
        }
    }

    /// Bytes this NLRI takes on the wire.
    pub fn wire_len(&self, add_path: bool) -> usize {
        (if add_path { 4 } else { 0 }) + 1 + (self.prefix.prefix() as usize).div_ceil(8)
    }

    /// Appends the wire form. With `add_path`, a missing path id is sent as 0.
    pub fn encode(&self, add_path: bool, out: &mut Vec<u8>) {
        if add_path {
            out.extend_from_slice(&self.path_id.unwrap_or(0).to_be_bytes());
        }
        let len = self.prefix.prefix();
        let n = (len as usize).div_ceil(8);
        out.push(len);
        match self.prefix {
            IpNetwork::V4(p) => out.extend_from_slice(&p.ip().octets()[..n]),
            IpNetwork::V6(p) => out.extend_from_slice(&p.ip().octets()[..n]),
        }
    }
}

/// Which address family a run of prefixes belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    V4,
    V6,
}

/// Decodes a run of prefixes filling `buf` completely, appending to `out`.
/// On error returns the reason and the offset inside `buf` of the bad entry
/// (RFC 7606 §5.3: a prefix longer than the address, or one that overruns the field).
pub(crate) fn decode_prefixes(
    mut buf: &[u8],
    kind: AddressKind,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), (Reason, usize)> {
    let total = buf.len();
    while !buf.is_empty() {
        let at = total - buf.len();
        let path_id = if add_path {
            let Some((id, rest)) = buf.split_first_chunk::<4>() else {
                return Err((Reason::InvalidNetworkField("path identifier overruns"), at));
            };
            buf = rest;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let Some((&len, rest)) = buf.split_first() else {
            return Err((Reason::InvalidNetworkField("prefix length missing"), at));
        };
        let n = (len as usize).div_ceil(8);
        let Some(bytes) = rest.get(..n) else {
            return Err((Reason::InvalidNetworkField("prefix overruns"), at));
        };
        let prefix = match kind {
            AddressKind::V4 => {
                if len > 32 {
                    return Err((Reason::InvalidNetworkField("IPv4 prefix length over 32"), at));
                }
                let mut octets = [0u8; 4];
                octets[..n].copy_from_slice(bytes);
                let bits = u32::from_be_bytes(octets) & mask_v4(len);
                match Ipv4Network::new(Ipv4Addr::from(bits), len) {
                    Ok(p) => IpNetwork::V4(p),
                    Err(_) => return Err((Reason::InvalidNetworkField("IPv4 prefix"), at)),
                }
            }
            AddressKind::V6 => {
                if len > 128 {
                    return Err((Reason::InvalidNetworkField("IPv6 prefix length over 128"), at));
                }
                let mut octets = [0u8; 16];
                octets[..n].copy_from_slice(bytes);
                let bits = u128::from_be_bytes(octets) & mask_v6(len);
                match Ipv6Network::new(Ipv6Addr::from(bits), len) {
                    Ok(p) => IpNetwork::V6(p),
                    Err(_) => return Err((Reason::InvalidNetworkField("IPv6 prefix"), at)),
                }
            }
        };
        out.push(Nlri { prefix, path_id });
        buf = &rest[n..];
    }
    Ok(())
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - len as u32).unwrap_or(0)
}

fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - len as u32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(buf: &[u8], kind: AddressKind, add_path: bool) -> Result<Vec<Nlri>, (Reason, usize)> {
        let mut out = Vec::new();
        decode_prefixes(buf, kind, add_path, &mut out).map(|_| out)
    }

    #[test]
    fn v4_prefixes_and_default_route() {
        let got = decode(&[26, 10, 244, 2, 64, 0, 24, 192, 168, 1], AddressKind::V4, false).unwrap();
        let want: Vec<Nlri> = ["10.244.2.64/26", "0.0.0.0/0", "192.168.1.0/24"]
            .iter()
            .map(|s| Nlri::new(s.parse().unwrap()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn host_bits_are_masked() {
        let got = decode(&[24, 10, 0, 1, 0x7f], AddressKind::V4, false);
        assert!(got.is_err(), "trailing byte is a truncated prefix");
        let got = decode(&[23, 10, 0, 1], AddressKind::V4, false).unwrap();
        assert_eq!(got[0].prefix, "10.0.0.0/23".parse::<IpNetwork>().unwrap());
    }

    #[test]
    fn add_path_and_v6() {
        let mut buf = vec![0, 0, 0, 7, 64];
        buf.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 1]);
        let got = decode(&buf, AddressKind::V6, true).unwrap();
        assert_eq!(got, vec![Nlri::with_path_id("fd00:0:0:1::/64".parse().unwrap(), 7)]);
        let mut re = Vec::new();
        got[0].encode(true, &mut re);
        assert_eq!(re, buf);
    }

    #[test]
    fn errors_carry_offsets() {
        assert_eq!(
            decode(&[8, 10, 33, 1, 2, 3, 4, 5], AddressKind::V4, false),
            Err((Reason::InvalidNetworkField("IPv4 prefix length over 32"), 2))
        );
        assert_eq!(
            decode(&[8, 10, 16, 1], AddressKind::V4, false),
            Err((Reason::InvalidNetworkField("prefix overruns"), 2))
        );
        assert_eq!(
            decode(&[0, 0, 1], AddressKind::V4, true),
            Err((Reason::InvalidNetworkField("path identifier overruns"), 0))
        );
    }
}
