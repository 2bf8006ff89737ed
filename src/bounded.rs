//! A map with a fixed upper bound on its entries, for the per-replica caches that hold one
//! entry per authorization server (the store cache, the key ring, the discovery documents).
//! With thousands of servers a cache that grows with every server ever asked for is a memory
//! leak, and one that empties itself when full drops every hot entry at once.
//!
//! Two generations, each of at most `capacity / 2` entries: inserts go to the young one; when
//! it is full it becomes the old one and the previous old one is dropped. Lookups read both.
//! So the map never holds more than `capacity` entries, an entry inserted within the last
//! `capacity / 2` inserts is always kept, and every operation is O(1): an approximation of
//! least-recently-inserted eviction without a linked list. Entries that are read stay hot by
//! being re-inserted when they are reloaded (a miss), which is what every cache here does.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub struct BoundedMap<K, V> {
    /// Entries per generation: half the capacity (at least 1).
    half: usize,
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// A map that holds at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            half: (capacity / 2).max(1),
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// Insert or replace; may drop the oldest generation to stay within the bound.
    pub fn insert(&mut self, key: K, value: V) {
        self.old.remove(&key);
        if !self.young.contains_key(&key) && self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let young = self.young.remove(key);
        let old = self.old.remove(key);
        young.or(old)
    }

    /// Keep only the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.young.retain(|k, v| keep(k, v));
        self.old.retain(|k, v| keep(k, v));
    }

    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries it ever holds.
    pub fn capacity(&self) -> usize {
        self.half * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut map = BoundedMap::new(10);
        for i in 0..1000 {
            map.insert(i, i);
            assert!(map.len() <= 10);
        }
        // The last half-capacity inserts are always there.
        for i in 995..1000 {
            assert_eq!(map.get(&i), Some(&i));
        }
    }

    #[test]
    fn replacing_an_entry_does_not_evict_others() {
        let mut map = BoundedMap::new(4);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3);
        map.insert("b", 4);
        assert_eq!(
            (map.get("a"), map.get("b"), map.len()),
            (Some(&3), Some(&4), 2)
        );
        map.insert("c", 5);
        map.insert("a", 6);
        assert_eq!(
            (map.get("a"), map.get("b"), map.get("c")),
            (Some(&6), Some(&4), Some(&5))
        );
        assert_eq!(map.remove("b"), Some(4));
        assert_eq!(map.len(), 2);
    }
}
