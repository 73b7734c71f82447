//! The load generator's side of the wire: which blocks a client holds,
//! and reflected UPDATEs read in place (millions of them at thousands of
//! clients: a full decode each made the generator, not the reflector, the
//! limit).

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

/// Client i's address is 10.1.0.1 + i.
pub const FIRST_CLIENT: u32 = 0x0a01_0001;
/// Client i announces K consecutive /26s starting at 10.128.0.0 + i*K*64.
pub const BLOCK_BASE: u32 = 0x0a80_0000;

/// Which blocks a client holds (one bit per block number: 1.25 KB for
/// 10,000, not a hash set's 100+ KB), and whether it has all it expects.
#[derive(Default)]
pub struct Held {
    pub blocks: BlockSet,
    pub complete: bool,
}

impl Held {
    /// Applies one UPDATE of a run with `clients` clients of `routes` blocks
    /// each; returns (blocks new to the client, announced prefixes that are
    /// not a client's block or whose next hop is not their owner's address).
    pub fn apply(
        &mut self,
        withdrawn: impl Iterator<Item = Ipv4Network>,
        next_hop: Option<Ipv4Addr>,
        announced: impl Iterator<Item = Ipv4Network>,
        (clients, routes): (u32, u32),
    ) -> (u64, u64) {
        let blocks = clients.saturating_mul(routes);
        for index in withdrawn.filter_map(|b| block_index(b, blocks)) {
            self.blocks.remove(index);
        }
        let (mut new, mut wrong) = (0, 0);
        for block in announced {
            // Anything else (a reflector's own route) is not held: it would
            // count towards completion and grow the set to its number.
            let Some(index) = block_index(block, blocks) else {
                wrong += 1;
                continue;
            };
            if next_hop != Some(Ipv4Addr::from(FIRST_CLIENT + index / routes.max(1))) {
                wrong += 1;
            }
            new += u64::from(self.blocks.insert(index));
        }
        (new, wrong)
    }
}

/// A block's number, its offset from BLOCK_BASE in /26s; None for a prefix
/// that is not one of the first `blocks` blocks.
pub fn block_index(block: Ipv4Network, blocks: u32) -> Option<u32> {
    let offset = u32::from(block.network()).checked_sub(BLOCK_BASE)?;
    (block.prefix() == 26 && offset / 64 < blocks).then_some(offset / 64)
}

/// A set of block numbers as a bitset.
#[derive(Default)]
pub struct BlockSet {
    words: Vec<u64>,
    pub len: usize,
}

impl BlockSet {
    /// Adds `i`; true when it was not there yet.
    pub fn insert(&mut self, i: u32) -> bool {
        let (w, bit) = (i as usize / 64, 1u64 << (i % 64));
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & bit == 0;
        self.words[w] |= bit;
        self.len += usize::from(new);
        new
    }

    pub fn remove(&mut self, i: u32) {
        let (w, bit) = (i as usize / 64, 1u64 << (i % 64));
        if let Some(word) = self.words.get_mut(w) {
            self.len -= usize::from(*word & bit != 0);
            *word &= !bit;
        }
    }
}

/// A plain IPv4 UPDATE (RFC 4271 §4.3) seen in place: its withdrawn routes
/// field, its NEXT_HOP and its NLRI field.
pub struct ScannedUpdate<'a> {
    pub withdrawn: &'a [u8],
    pub next_hop: Option<Ipv4Addr>,
    pub nlri: &'a [u8],
}

/// Reads an UPDATE without building it; None for any other message, or an
/// UPDATE whose lengths do not add up (then it is decoded in full).
pub fn scan_update(msg: &[u8]) -> Option<ScannedUpdate<'_>> {
    let body = msg.get(19..).filter(|_| msg.get(18) == Some(&2))?;
    let u16_at = |b: &[u8], i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize);
    let withdrawn_len = u16_at(body, 0)?;
    let withdrawn = body.get(2..2 + withdrawn_len)?;
    let rest = &body[2 + withdrawn_len..];
    let attrs_len = u16_at(rest, 0)?;
    let mut attrs = rest.get(2..2 + attrs_len)?;
    let nlri = &rest[2 + attrs_len..];
    let mut next_hop = None;
    while !attrs.is_empty() {
        let (flags, code) = (*attrs.first()?, *attrs.get(1)?);
        let (len, head) = if flags & 0x10 != 0 {
            (u16_at(attrs, 2)?, 4)
        } else {
            (*attrs.get(2)? as usize, 3)
        };
        let value = attrs.get(head..head + len)?;
        if code == 3 {
            next_hop = Some(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?));
        }
        attrs = &attrs[head + len..];
    }
    Some(ScannedUpdate {
        withdrawn,
        next_hop,
        nlri,
    })
}

/// The IPv4 prefixes of a withdrawn routes or NLRI field (RFC 4271 §4.3);
/// stops at the first that does not fit.
pub fn prefixes(mut field: &[u8]) -> impl Iterator<Item = Ipv4Network> + '_ {
    std::iter::from_fn(move || {
        let len = *field.first()?;
        let octets = usize::from(len).div_ceil(8);
        let bytes = field.get(1..1 + octets)?;
        let mut addr = [0u8; 4];
        addr.get_mut(..octets)?.copy_from_slice(bytes);
        field = &field[1 + octets..];
        Ipv4Network::new(Ipv4Addr::from(addr), len).ok()
    })
}

#[cfg(test)]
mod tests {
    use bgp_proto::attributes::{AsPath, AttrValue, MpNextHop, Origin, PathAttribute};
    use bgp_proto::update::{pack_announcements, pack_withdrawals};
    use bgp_proto::{Context, Family, Nlri};
    use ipnetwork::IpNetwork;

    use super::*;

    fn block(s: &str) -> Nlri {
        Nlri::new(s.parse::<IpNetwork>().unwrap())
    }

    #[test]
    fn a_scanned_update_gives_what_the_codec_encoded() {
        let ctx = Context::default();
        let attrs = [
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![64512]))),
            PathAttribute::new(AttrValue::LocalPref(100)),
        ];
        let announced = [block("10.128.0.0/26"), block("10.128.0.64/26")];
        let mut out = Vec::new();
        let next_hop = Ipv4Addr::new(10, 1, 0, 1);
        pack_announcements(
            &ctx,
            Family::IPV4_UNICAST,
            MpNextHop::V4(next_hop),
            &attrs,
            &announced,
            &mut out,
        )
        .unwrap();
        let u = scan_update(&out).expect("an UPDATE");
        assert_eq!(u.next_hop, Some(next_hop));
        assert!(u.withdrawn.is_empty());
        let got: Vec<Ipv4Network> = prefixes(u.nlri).collect();
        assert_eq!(
            got,
            ["10.128.0.0/26".parse().unwrap(), "10.128.0.64/26".parse().unwrap()]
        );

        let mut out = Vec::new();
        pack_withdrawals(&ctx, Family::IPV4_UNICAST, &[block("10.128.1.0/24")], &mut out).unwrap();
        let u = scan_update(&out).expect("an UPDATE");
        assert_eq!(
            prefixes(u.withdrawn).collect::<Vec<_>>(),
            ["10.128.1.0/24".parse().unwrap()]
        );
        assert!(u.nlri.is_empty() && u.next_hop.is_none());
    }

    #[test]
    fn a_message_that_is_not_a_whole_update_is_left_to_the_full_decode() {
        let mut keepalive = vec![0xff; 16];
        keepalive.extend_from_slice(&[0, 19, 4]);
        assert!(scan_update(&keepalive).is_none());
        // An UPDATE whose withdrawn-routes length runs past its end.
        let mut short = vec![0xff; 16];
        short.extend_from_slice(&[0, 23, 2, 0, 9, 0, 0]);
        assert!(scan_update(&short).is_none());
    }

    #[test]
    fn held_blocks_count_new_ones_and_wrong_next_hops() {
        let mut held = Held::default();
        let two = || ["10.128.0.0/26", "10.128.0.64/26"].map(|b| b.parse::<Ipv4Network>().unwrap());
        let owner = Some(Ipv4Addr::from(FIRST_CLIENT));
        let run = (2, 2);
        assert_eq!(held.apply(std::iter::empty(), owner, two().into_iter(), run), (2, 0));
        assert_eq!(
            held.apply(std::iter::empty(), owner, two().into_iter(), run),
            (0, 0),
            "already held"
        );
        let other = Some(Ipv4Addr::from(FIRST_CLIENT + 1));
        assert_eq!(
            held.apply(two().into_iter(), other, two().into_iter().take(1), run),
            (1, 1)
        );
        assert_eq!(held.blocks.len, 1);
    }

    /// A route that is no client's block (BIRD exported its static route to
    /// the clients' subnet to every client) is counted wrong, not held.
    #[test]
    fn a_prefix_that_is_no_clients_block_is_not_held() {
        let mut held = Held::default();
        let reflector = Some(Ipv4Addr::new(10, 0, 0, 1));
        let foreign = ["10.1.0.0/16", "10.128.1.0/26", "10.128.0.0/24"].map(|b| b.parse::<Ipv4Network>().unwrap());
        assert_eq!(
            held.apply(std::iter::empty(), reflector, foreign.into_iter(), (2, 2)),
            (0, 3)
        );
        assert_eq!(held.blocks.len, 0);
    }
}
