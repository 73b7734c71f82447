//! Loc-RIB entries: the paths of each prefix, and the bitset indexed by
//! prefix id that every peer's Adj-RIB-Out is.

use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::messages::PeerId;
use crate::route::RouteAttrs;

/// The paths of one prefix; one fits without a heap allocation.
pub(super) type Paths = smallvec::SmallVec<[Path; 1]>;

/// A Loc-RIB entry: the prefix's paths, and a digest of what the kernel was
/// last told for it (0: nothing) — kept here rather than in a second map.
/// Its id (the bit in every peer's Adj-RIB-Out) is its slot in [`LocRib`](super::loc::LocRib).
pub(super) struct Entry {
    pub(super) prefix: IpNetwork,
    pub(super) paths: Paths,
    pub(super) kernel: u64,
    /// When a path of the prefix last changed, seconds since the RIB started
    /// (the route age views show); fits beside `prefix` at no cost.
    pub(super) changed: u32,
    /// Which path was best at the last flush (0: none); unchanged means
    /// nothing to tell the peers.
    pub(super) best: u64,
    /// Changed since the last flush (its id is in the Loc-RIB's dirty list).
    pub(super) dirty: bool,
}

// One per prefix, a million in a full table: what grows it costs 1 MB per byte.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() == 64 && std::mem::size_of::<Option<Entry>>() == 64);

impl Entry {
    pub(super) fn new(prefix: IpNetwork) -> Entry {
        Entry {
            prefix,
            paths: Paths::new(),
            kernel: 0,
            changed: 0,
            best: 0,
            dirty: false,
        }
    }
}

impl std::ops::Deref for Entry {
    type Target = Paths;
    fn deref(&self) -> &Paths {
        &self.paths
    }
}

impl std::ops::DerefMut for Entry {
    fn deref_mut(&mut self) -> &mut Paths {
        &mut self.paths
    }
}

#[derive(Clone, Debug)]
pub(super) struct Path {
    pub(super) peer: PeerId,
    pub(super) path_id: u32,
    pub(super) attrs: Arc<RouteAttrs>,
}

/// A growable bitset indexed by prefix id.
#[derive(Default)]
pub(super) struct Bits {
    pub(super) words: Vec<u64>,
    pub(super) count: usize,
}

impl Bits {
    pub(super) fn get(&self, i: u32) -> bool {
        self.words
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// The set bits from `from` on, in ascending order.
    pub(super) fn ones_from(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        let first = from as usize / 64;
        let words = self.words.get(first..).unwrap_or(&[]);
        words.iter().enumerate().flat_map(move |(k, &word)| {
            let at = first + k;
            let mut word = if k == 0 { word & (!0u64 << (from % 64)) } else { word };
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros();
                word &= word - 1;
                Some((at * 64) as u32 + bit)
            })
        })
    }

    pub(super) fn set(&mut self, i: u32, on: bool) {
        let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
        if word >= self.words.len() {
            if !on {
                return;
            }
            // Grown by an eighth (at least 4,096 bits), not doubled: every
            // peer holds two of these, and doubling left up to half of each
            // unused (issue 14: 74 MB of bitsets for 50 MB of bits at 10,000
            // reflector clients).
            let want = word + 1;
            self.words.reserve_exact(want + (want / 8).max(64) - self.words.len());
            self.words.resize(want, 0);
        }
        let was = self.words[word] & bit != 0;
        if on && !was {
            self.words[word] |= bit;
            self.count += 1;
        } else if !on && was {
            self.words[word] &= !bit;
            self.count -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn ones_from_yields_the_set_bits_from_a_start_in_ascending_order() {
        let mut bits = Bits::default();
        for i in [3, 63, 64, 65, 200, 1000] {
            bits.set(i, true);
        }
        bits.set(64, false);
        assert_eq!(bits.ones_from(0).collect::<Vec<_>>(), vec![3, 63, 65, 200, 1000]);
        assert_eq!(bits.ones_from(63).collect::<Vec<_>>(), vec![63, 65, 200, 1000]);
        assert_eq!(bits.ones_from(66).collect::<Vec<_>>(), vec![200, 1000]);
        assert_eq!(bits.ones_from(5000).count(), 0);
        assert_eq!(bits.count, 5);
    }

    #[test]
    fn a_bitset_grown_id_by_id_holds_at_most_an_eighth_or_4096_bits_more_than_it_needs() {
        let mut bits = Bits::default();
        for i in 0..20_000u32 {
            bits.set(i, true);
            let needed = i as usize / 64 + 1;
            assert!(
                bits.words.capacity() <= needed + (needed / 8).max(64),
                "{i}: {}",
                bits.words.capacity()
            );
        }
    }
}
