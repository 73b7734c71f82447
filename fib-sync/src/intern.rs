//! Sharing of equal next-hop sets. 100k routes use a handful of distinct sets (one per
//! peer, a few ECMP combinations), so each distinct set is stored once and a route holds
//! a pointer to it instead of its own `Vec`.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A shared set as a route slot keeps it: a thin pointer (8 bytes, `Option` costs
/// nothing) to the fat `Arc<[T]>` that the public types hand out.
pub(crate) type Shared<T> = Arc<Arc<[T]>>;

/// Interner key: hashes and compares as the slice, so lookups by `&[T]` work.
struct Entry<T>(Shared<T>);

impl<T> Borrow<[T]> for Entry<T> {
    fn borrow(&self) -> &[T] {
        &self.0[..]
    }
}

impl<T: Hash> Hash for Entry<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0[..].hash(state);
    }
}

impl<T: PartialEq> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0[..] == other.0[..]
    }
}

impl<T: Eq> Eq for Entry<T> {}

/// Fewest sets kept before unused ones are dropped.
const MIN_PURGE: usize = 64;

/// A set of distinct slices; equal slices come back as the same allocation.
pub(crate) struct Interner<T> {
    sets: HashSet<Entry<T>>,
    /// Unused sets are dropped when the table reaches this size (doubling keeps it amortised).
    purge_at: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            sets: HashSet::new(),
            purge_at: MIN_PURGE,
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    /// The shared copy of `items`, made from a copy of the slice when new.
    pub(crate) fn intern(&mut self, items: &[T]) -> Shared<T> {
        match self.sets.get(items) {
            Some(e) => e.0.clone(),
            None => self.insert(Arc::from(items)),
        }
    }

    /// The shared copy of `items`; a new set reuses the caller's allocation.
    pub(crate) fn intern_arc(&mut self, items: &Arc<[T]>) -> Shared<T> {
        match self.sets.get(&items[..]) {
            Some(e) => e.0.clone(),
            None => self.insert(items.clone()),
        }
    }

    /// The shared `Arc<[T]>` equal to `items` (what the public route types carry).
    pub(crate) fn intern_fat(&mut self, items: &[T]) -> Arc<[T]> {
        Arc::clone(&self.intern(items))
    }

    fn insert(&mut self, items: Arc<[T]>) -> Shared<T> {
        if self.sets.len() >= self.purge_at {
            self.purge();
        }
        let s = Arc::new(items);
        self.sets.insert(Entry(s.clone()));
        s
    }

    /// Drop the sets nobody else holds (neither the thin nor the fat pointer).
    pub(crate) fn purge(&mut self) {
        self.sets
            .retain(|e| Arc::strong_count(&e.0) > 1 || Arc::strong_count(&*e.0) > 1);
        self.sets.shrink_to(self.sets.len() * 2);
        self.purge_at = (self.sets.len() * 2).max(MIN_PURGE);
    }

    /// Distinct sets held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_slices_share_one_allocation_and_unused_ones_go() {
        let mut i = Interner::<u32>::default();
        let a = i.intern(&[1, 2]);
        let b = i.intern_arc(&Arc::from(vec![1, 2]));
        assert!(Arc::ptr_eq(&a, &b));
        let fat = i.intern_fat(&[3]);
        assert_eq!(i.len(), 2);
        drop((a, b));
        i.purge();
        assert_eq!(i.len(), 1, "[1, 2] unused, [3] still held through its fat pointer");
        assert_eq!(&fat[..], &[3]);
        assert!(Arc::ptr_eq(&fat, &i.intern_fat(&[3])));
    }

    #[test]
    fn purge_keeps_the_table_bounded() {
        let mut i = Interner::<u32>::default();
        for n in 0..10_000u32 {
            let _ = i.intern(&[n]);
        }
        assert!(i.len() <= MIN_PURGE, "{}", i.len());
    }
}
