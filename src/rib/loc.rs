//! Loc-RIB storage: entries in a slab indexed by prefix id, found by prefix
//! through a hash table that holds only the ids (4 bytes and a control byte
//! per bucket). A map from prefix to entry kept a whole 72-byte entry per
//! bucket and, its buckets doubling past 7/8 full, ~150 bytes per prefix at
//! a million (issue 14); this holds the same in ~70. (Keeping 32 bits of each
//! hash beside the id spared the growing table reading the slab at random,
//! for 12 MB more peak RSS at a million; instead the index grows by walking
//! the slab in order, see `grow_index`.)

use hashbrown::HashTable;
use ipnetwork::IpNetwork;

use super::table::Entry;

/// Every prefix the RIB holds a path for (or still has to withdraw).
#[derive(Default)]
pub(super) struct LocRib {
    /// Prefix ids, hashed by their entry's prefix.
    index: HashTable<u32>,
    /// Entries by prefix id; `None` is a free id.
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Ids of the entries marked since the last flush, each once.
    dirty: Vec<u32>,
    hasher: ahash::RandomState,
    len: usize,
}

impl LocRib {
    fn hash(&self, prefix: &IpNetwork) -> u64 {
        self.hasher.hash_one(prefix)
    }

    /// The id of `prefix`'s entry: its bit in every peer's Adj-RIB-Out bitset.
    pub(super) fn id_of(&self, prefix: &IpNetwork) -> Option<u32> {
        let slots = &self.slots;
        let found = self.index.find(self.hash(prefix), |&id| {
            slots[id as usize].as_ref().is_some_and(|e| e.prefix == *prefix)
        });
        found.copied()
    }

    pub(super) fn get(&self, prefix: &IpNetwork) -> Option<&Entry> {
        self.by_id(self.id_of(prefix)?)
    }

    pub(super) fn get_mut(&mut self, prefix: &IpNetwork) -> Option<&mut Entry> {
        self.by_id_mut(self.id_of(prefix)?)
    }

    /// The entry with id `id`: no hashing, one memory access.
    pub(super) fn by_id(&self, id: u32) -> Option<&Entry> {
        self.slots.get(id as usize)?.as_ref()
    }

    pub(super) fn by_id_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    /// The entry of `prefix` and its id, created empty (with a new id) if there is none.
    pub(super) fn get_or_insert(&mut self, prefix: IpNetwork) -> (u32, &mut Entry) {
        let id = match self.id_of(&prefix) {
            Some(id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        self.slots.push(None);
                        (self.slots.len() - 1) as u32
                    }
                };
                if self.index.len() == self.index.capacity() {
                    self.grow_index();
                }
                self.slots[id as usize] = Some(Entry::new(prefix));
                let hash = self.hash(&prefix);
                let (hasher, slots) = (&self.hasher, &self.slots);
                self.index.insert_unique(hash, id, |&i| {
                    slots[i as usize].as_ref().map_or(0, |e| hasher.hash_one(e.prefix))
                });
                self.len += 1;
                id
            }
        };
        (
            id,
            self.slots[id as usize].as_mut().expect("an indexed id has an entry"),
        )
    }

    /// Doubles the index by walking the slab in id order. Left to itself,
    /// the table rehashes bucket by bucket, reading each id's entry at
    /// random across the slab: a quarter of a full table's CPU (S2).
    fn grow_index(&mut self) {
        let mut index = HashTable::with_capacity((self.index.capacity() * 2).max(16));
        let (hasher, slots) = (&self.hasher, &self.slots);
        let rehash = |&i: &u32| slots[i as usize].as_ref().map_or(0, |e| hasher.hash_one(e.prefix));
        for (id, slot) in slots.iter().enumerate() {
            if let Some(e) = slot {
                index.insert_unique(hasher.hash_one(e.prefix), id as u32, rehash);
            }
        }
        self.index = index;
    }

    /// Removes `prefix`'s entry; its id is free for the next new prefix.
    pub(super) fn remove(&mut self, prefix: &IpNetwork) -> Option<Entry> {
        let hash = self.hash(prefix);
        let slots = &self.slots;
        let found = self.index.find_entry(hash, |&id| {
            slots[id as usize].as_ref().is_some_and(|e| e.prefix == *prefix)
        });
        let (id, _) = found.ok()?.remove();
        self.free.push(id);
        self.len -= 1;
        self.slots[id as usize].take()
    }

    /// Marks `prefix`'s entry for the next flush (none: nothing to do).
    pub(super) fn mark_dirty(&mut self, prefix: &IpNetwork) {
        if let Some(id) = self.id_of(prefix) {
            self.mark_id(id);
        }
    }

    /// Marks the entry with id `id` for the next flush.
    pub(super) fn mark_id(&mut self, id: u32) {
        if let Some(e) = self.by_id_mut(id).filter(|e| !e.dirty) {
            e.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Calls `change` on every entry and marks those it says it changed.
    pub(super) fn change_each(&mut self, mut change: impl FnMut(&mut Entry) -> bool) {
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if let Some(e) = slot.as_mut() {
                if change(e) && !e.dirty {
                    e.dirty = true;
                    self.dirty.push(id as u32);
                }
            }
        }
    }

    /// The marked ids in id order — the order their prefixes first arrived —
    /// with the marks cleared; the list's memory is released after a burst.
    pub(super) fn take_dirty(&mut self) -> Vec<u32> {
        let mut ids = std::mem::take(&mut self.dirty);
        for &id in &ids {
            if let Some(e) = self.slots[id as usize].as_mut() {
                e.dirty = false;
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// One more than the highest id in use (or used before): ids are below it.
    pub(super) fn id_bound(&self) -> usize {
        self.slots.len()
    }

    /// The prefix whose entry has id `id`.
    pub(super) fn prefix_of(&self, id: u32) -> Option<IpNetwork> {
        self.by_id(id).map(|e| e.prefix)
    }

    /// Every entry with its id, in id order (the order prefixes arrived).
    pub(super) fn with_ids(&self) -> impl Iterator<Item = (u32, &Entry)> {
        (self.slots.iter().enumerate()).filter_map(|(id, e)| Some((id as u32, e.as_ref()?)))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&IpNetwork, &Entry)> {
        self.values().map(|e| (&e.prefix, e))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &IpNetwork> {
        self.values().map(|e| &e.prefix)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }
}

impl std::ops::Index<&IpNetwork> for LocRib {
    type Output = Entry;
    fn index(&self, prefix: &IpNetwork) -> &Entry {
        self.get(prefix).expect("no Loc-RIB entry for the prefix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn entries_are_found_by_prefix_and_ids_are_reused() {
        let mut loc = LocRib::default();
        for i in 0..1000u32 {
            loc.get_or_insert(p(&format!("10.{}.{}.0/24", i / 256, i % 256)));
        }
        loc.get_or_insert(p("2001:db8::/64"));
        assert_eq!(loc.len(), 1001);
        assert_eq!(loc.id_of(&p("10.0.5.0/24")), Some(5));
        assert_eq!(loc.id_of(&p("10.0.5.0/25")), None);
        assert_eq!(loc.prefix_of(1000), Some(p("2001:db8::/64")));
        assert!(loc.remove(&p("10.0.5.0/24")).is_some());
        assert!(loc.remove(&p("10.0.5.0/24")).is_none());
        assert_eq!((loc.get(&p("10.0.5.0/24")).is_none(), loc.len()), (true, 1000));
        assert_eq!(loc.prefix_of(5), None);
        // The freed id goes to the next new prefix; the others keep theirs.
        loc.get_or_insert(p("192.168.0.0/16"));
        assert_eq!(loc.id_of(&p("192.168.0.0/16")), Some(5));
        assert_eq!(loc.id_of(&p("10.3.231.0/24")), Some(999));
        assert_eq!(loc.keys().count(), 1001);
        assert_eq!(loc.id_bound(), 1001);
        let ids: Vec<u32> = loc.with_ids().map(|(id, _)| id).take(3).collect();
        assert_eq!(ids, [0, 1, 2]);
    }
}
