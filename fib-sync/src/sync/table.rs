//! The worker's [`Slot`] per prefix at our metric, in 64 independently growing shards.
//!
//! One hash map of 100k records doubled from 64k to 128k buckets while holding both
//! (9.6 of S3's 22 MB heap peak, issue 14); a shard doubles alone, so growth holds
//! 1/64 of the table twice. IPv4 records are kept by prefix length, keyed by address:
//! with the 4-byte slot a bucket takes 8 bytes (with an `IpNetwork` key and a pointer
//! it took 48; with a packed 8-byte key and a pointer, 16).

use std::net::Ipv4Addr;

use hashbrown::HashTable;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::slot::Slot;

const SHARDS: usize = 64;

/// A shard keeps at least this many buckets of spare room after a burst.
const SHARD_SPARE: usize = 16;

fn v4_network(address: u32, length: usize) -> IpNetwork {
    let net = Ipv4Network::new(Ipv4Addr::from(address), length as u8);
    IpNetwork::V4(net.expect("IPv4 tables are kept for lengths 0 to 32"))
}

/// Records with keys of one kind, sharded by hash; no shard is allocated before
/// the first record.
struct Shards<K> {
    shards: Vec<HashTable<(K, Slot)>>,
}

impl<K> Default for Shards<K> {
    fn default() -> Self {
        Shards { shards: Vec::new() }
    }
}

/// The shard of a hash: bits the tables use neither for the bucket (low) nor the tag (top 7).
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

impl<K: Copy + Eq + std::hash::Hash> Shards<K> {
    fn get(&self, hash: u64, k: &K) -> Option<&Slot> {
        let shard = self.shards.get(shard_of(hash))?;
        shard.find(hash, |e| e.0 == *k).map(|e| &e.1)
    }

    fn get_mut(&mut self, hash: u64, k: &K) -> Option<&mut Slot> {
        let shard = self.shards.get_mut(shard_of(hash))?;
        shard.find_mut(hash, |e| e.0 == *k).map(|e| &mut e.1)
    }

    fn get_or_insert_with(&mut self, s: &ahash::RandomState, hash: u64, k: K, new: impl FnOnce() -> Slot) -> &mut Slot {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| HashTable::new()).collect();
        }
        let entry = self.shards[shard_of(hash)].entry(hash, |e| e.0 == k, |e| s.hash_one(e.0));
        &mut entry.or_insert_with(|| (k, new())).into_mut().1
    }

    fn remove(&mut self, hash: u64, k: &K) -> Option<Slot> {
        let found = self.shards.get_mut(shard_of(hash))?.find_entry(hash, |e| e.0 == *k);
        found.ok().map(|e| e.remove().0 .1)
    }

    fn len(&self) -> usize {
        self.shards.iter().map(HashTable::len).sum()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.shards.iter().map(HashTable::capacity).sum()
    }

    fn shrink(&mut self, s: &ahash::RandomState) {
        for t in &mut self.shards {
            if t.capacity() > SHARD_SPARE && t.len() < t.capacity() / 4 {
                t.shrink_to(t.len() * 2, |e| s.hash_one(e.0));
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(K, Slot)> {
        self.shards.iter().flat_map(|t| t.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut (K, Slot)> {
        self.shards.iter_mut().flat_map(|t| t.iter_mut())
    }
}

/// Every prefix at our metric the worker knows of, with its [`Slot`].
pub(crate) struct RouteTable {
    hasher: ahash::RandomState,
    /// IPv4 records by prefix length (the index), keyed by network address.
    v4: [Shards<u32>; 33],
    v6: Shards<Ipv6Network>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            hasher: ahash::RandomState::default(),
            v4: std::array::from_fn(|_| Shards::default()),
            v6: Shards::default(),
        }
    }
}

impl RouteTable {
    pub(crate) fn len(&self) -> usize {
        self.v4.iter().map(Shards::len).sum::<usize>() + self.v6.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets allocated, used or not.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.v4.iter().map(Shards::capacity).sum::<usize>() + self.v6.capacity()
    }

    pub(crate) fn get(&self, p: &IpNetwork) -> Option<&Slot> {
        match p {
            IpNetwork::V4(n) => {
                let k = u32::from(n.network());
                self.v4[usize::from(n.prefix())].get(self.hasher.hash_one(k), &k)
            }
            IpNetwork::V6(n) => self.v6.get(self.hasher.hash_one(n), n),
        }
    }

    pub(crate) fn get_mut(&mut self, p: &IpNetwork) -> Option<&mut Slot> {
        match p {
            IpNetwork::V4(n) => {
                let k = u32::from(n.network());
                self.v4[usize::from(n.prefix())].get_mut(self.hasher.hash_one(k), &k)
            }
            IpNetwork::V6(n) => self.v6.get_mut(self.hasher.hash_one(n), n),
        }
    }

    /// The slot of `p`, made with `new` if there is none.
    pub(crate) fn get_or_insert_with(&mut self, p: IpNetwork, new: impl FnOnce() -> Slot) -> &mut Slot {
        let s = &self.hasher;
        match p {
            IpNetwork::V4(n) => {
                let k = u32::from(n.network());
                self.v4[usize::from(n.prefix())].get_or_insert_with(s, s.hash_one(k), k, new)
            }
            IpNetwork::V6(n) => self.v6.get_or_insert_with(s, s.hash_one(n), n, new),
        }
    }

    /// The slot of `p`, empty if there was none.
    pub(crate) fn slot(&mut self, p: IpNetwork) -> &mut Slot {
        self.get_or_insert_with(p, Slot::default)
    }

    pub(crate) fn remove(&mut self, p: &IpNetwork) -> Option<Slot> {
        match p {
            IpNetwork::V4(n) => {
                let k = u32::from(n.network());
                self.v4[usize::from(n.prefix())].remove(self.hasher.hash_one(k), &k)
            }
            IpNetwork::V6(n) => self.v6.remove(self.hasher.hash_one(n), n),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpNetwork, &Slot)> {
        let v4 = (self.v4.iter().enumerate()).flat_map(|(len, t)| t.iter().map(move |(a, s)| (v4_network(*a, len), s)));
        let v6 = self.v6.iter().map(|(n, s)| (IpNetwork::V6(*n), s));
        v4.chain(v6)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (IpNetwork, &mut Slot)> {
        let v4 = (self.v4.iter_mut().enumerate())
            .flat_map(|(len, t)| t.iter_mut().map(move |(a, s)| (v4_network(*a, len), s)));
        let v6 = self.v6.iter_mut().map(|(n, s)| (IpNetwork::V6(*n), s));
        v4.chain(v6)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Slot> {
        let v4 = self.v4.iter().flat_map(|t| t.iter().map(|(_, s)| s));
        v4.chain(self.v6.iter().map(|(_, s)| s))
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.iter_mut().map(|(_, s)| s)
    }

    /// Give back most of a shard's memory once it is far below its capacity (after a
    /// mass removal), so a burst does not pin its peak forever.
    pub(crate) fn shrink(&mut self) {
        for t in &mut self.v4 {
            t.shrink(&self.hasher);
        }
        self.v6.shrink(&self.hasher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn finds_what_it_holds_by_family_and_length() {
        let mut t = RouteTable::default();
        let mut res = crate::slot::Resolver::default();
        for p in [
            "10.0.0.0/26",
            "10.0.0.0/24",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "fd00::/64",
            "fd00::/48",
        ] {
            t.slot(net(p)).set_flags(&mut res, |f| f.stale = true);
        }
        assert_eq!(t.len(), 6);
        assert!(t.get(&net("10.0.0.0/26")).is_some_and(|s| s.flags(&res.states).stale));
        assert!(t.get(&net("10.0.0.0/25")).is_none(), "same address, other length");
        assert!(t.get(&net("fd00::/56")).is_none());
        let mut seen: Vec<String> = t.iter().map(|(p, _)| p.to_string()).collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "0.0.0.0/0",
                "10.0.0.0/24",
                "10.0.0.0/26",
                "255.255.255.255/32",
                "fd00::/48",
                "fd00::/64"
            ]
        );
        assert!(t.remove(&net("255.255.255.255/32")).is_some());
        assert!(t.remove(&net("255.255.255.255/32")).is_none());
        assert!(t.get(&net("255.255.255.255/32")).is_none());
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn a_mass_removal_gives_the_memory_back() {
        let mut t = RouteTable::default();
        let nets: Vec<IpNetwork> = (0..20_000u32)
            .map(|i| IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)), 26).unwrap()))
            .collect();
        for n in &nets {
            t.slot(*n);
        }
        assert_eq!(t.len(), nets.len());
        // Spread over the shards: none holds more than twice its share.
        let biggest = t.v4[26].shards.iter().map(HashTable::len).max().unwrap();
        assert!(biggest < 2 * nets.len() / SHARDS, "largest shard {biggest}");
        for n in &nets {
            assert!(t.remove(n).is_some());
        }
        t.shrink();
        assert!(t.is_empty());
        assert!(t.capacity() <= SHARDS * SHARD_SPARE, "capacity {}", t.capacity());
    }
}
