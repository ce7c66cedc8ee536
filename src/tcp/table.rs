//! The per-worker connection table: a slab of entries indexed by a keyed hash of the 4-tuple.
//!
//! It owns the connections of one worker and the keyed hash shared with the TIME-WAIT table (`flow_hash`); the
//! index itself is a `KeyedIndex` (`tcp::keyed_index`), which grows without a pause. Once the slab has grown to
//! its working size it allocates only when the index starts a drain (a fresh table; see there), never iterates in hash order for callers (handles
//! are slab positions), and never hashes with a key a peer could know: the index is hashed with SipHash-1-3
//! under a per-table secret, so no peer can aim tuples at one bucket.
//!
//! Layout: the slab is a `Vec` of entries, each holding the key once next to the value; a free slot threads the
//! free list through itself, so the free list costs no memory of its own. The index holds slab positions only
//! (4 bytes plus one control byte per bucket, and the old table's buckets too while one drains).
//!
//! Handles are dense `u32` slab positions, reused (last freed, first reused) after removal. A handle that is not
//! live is a caller bug: the accessors that take one panic with a clear message in that case (never undefined
//! behaviour, never another connection's data); `try_get`/`try_get_mut`/`contains` are the non-panicking forms.

use crate::tcp::flow::FlowKey;
use crate::tcp::keyed_index::KeyedIndex;
use crate::tcp::presence::Presence;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::IpAddr;

/// The table is at its bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("table full")]
pub struct TableFull;

/// The keyed hash of a flow: SipHash-1-3 under the table's secret over both addresses and both ports.
///
/// The fields are fed as whole integers (not through the derived `Hash`, which adds length prefixes and one
/// call per field): an IPv4 key is one 8-byte word and one 4-byte word, so one SipHash block plus the final one.
/// Always inlined: the address-family match then folds away and the hasher state stays in registers.
#[inline(always)]
pub(crate) fn flow_hash<K: FlowKey>(sip: &SipHasher13, key: &K) -> u64 {
    let mut h = *sip;
    match (key.local_addr().into(), key.remote_addr().into()) {
        (IpAddr::V4(l), IpAddr::V4(r)) => h.write_u64((u64::from(l.to_bits()) << 32) | u64::from(r.to_bits())),
        (l, r) => {
            h.write_u128(ip_bits(l));
            h.write_u128(ip_bits(r));
        }
    }
    h.write_u32((u32::from(key.local_port()) << 16) | u32::from(key.remote_port()));
    h.finish()
}

/// An address as 128 bits (IPv4 zero-extended; only reached for mixed families, which no key type produces).
#[inline(always)]
fn ip_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// One slab position: a live entry, or a link of the free list.
enum Slot<K, V> {
    Live { key: K, value: V },
    Free { next: u32 },
}

/// End of the free list.
const NONE: u32 = u32::MAX;

/// Connections by 4-tuple. `V` is the connection state.
pub struct ConnTable<K: FlowKey, V> {
    slab: Vec<Slot<K, V>>,
    index: KeyedIndex,
    sip: SipHasher13,
    free_head: u32,
    len: usize,
    max_len: usize,
    /// Tuples published to the steering program, if it answers SYNs (see [`crate::tcp::presence`]).
    presence: Option<Presence>,
}

#[cold]
#[inline(never)]
#[track_caller]
fn dead_handle(handle: u32) -> ! {
    panic!("ConnTable: handle {handle} is not live (used after remove, or never issued): a caller bug")
}

impl<K: FlowKey, V> ConnTable<K, V> {
    /// A table that holds at most `max_len` entries; `hash_key` keys the index hash.
    ///
    /// `max_len` is clamped so that every handle fits in a `u32` below `u32::MAX`.
    pub fn new(max_len: usize, hash_key: [u8; 16]) -> Self {
        ConnTable {
            slab: Vec::new(),
            index: KeyedIndex::new(),
            sip: SipHasher13::new_with_key(&hash_key),
            free_head: NONE,
            len: 0,
            max_len: max_len.min(NONE as usize),
            presence: None,
        }
    }

    /// Counts every key of this table, from now on, in `presence` (set it while the table is empty).
    pub fn set_presence(&mut self, presence: Option<Presence>) {
        debug_assert!(self.is_empty(), "ConnTable::set_presence on a table holding entries");
        self.presence = presence;
    }

    /// Pre-sizes the slab and the index for `n` entries (clamped to `max_len`), so that filling the table up
    /// to `n` allocates nothing.
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.max_len);
        self.slab.reserve_exact(n.saturating_sub(self.slab.len()));
        let (slab, sip) = (&self.slab, &self.sip);
        self.index.reserve(n.saturating_sub(self.len), |&i| rehash_slot(slab, sip, i));
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The keyed hash of `key` in this table (SipHash-1-3, about 7 ns). Tables built with the same `hash_key`
    /// (a [`ConnTable`] and a [`TimeWaitTable`](crate::tcp::time_wait::TimeWaitTable) alike) give the same
    /// value, so a caller that looks a segment's tuple up in several tables, or finds then inserts, can hash
    /// once and use the `*_hashed` forms.
    #[inline]
    pub fn hash(&self, key: &K) -> u64 {
        flow_hash(&self.sip, key)
    }

    /// The handle of the entry for `key`.
    #[inline]
    pub fn find(&self, key: &K) -> Option<u32> {
        self.find_hashed(self.hash(key), key)
    }

    /// [`find`](Self::find) with `hash` = [`hash`](Self::hash)`(key)` already computed. A wrong hash finds
    /// nothing (debug builds assert it).
    #[inline]
    pub fn find_hashed(&self, hash: u64, key: &K) -> Option<u32> {
        debug_assert_eq!(hash, self.hash(key), "ConnTable: hash from another key or secret");
        let slab = &self.slab;
        self.index.find(hash, |&i| live_key(slab, i) == Some(key))
    }

    /// Inserts an entry whose key is not present yet; returns its handle.
    ///
    /// Inserting a key that is present is a caller bug: debug builds panic; release builds replace the value in
    /// place (dropping the old one) and return the existing handle, so the table stays consistent.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Result<u32, TableFull> {
        self.insert_hashed(self.hash(&key), key, value)
    }

    /// [`insert`](Self::insert) with `hash` = [`hash`](Self::hash)`(key)` already computed. The hash must be
    /// right (debug builds assert it): under a wrong one the entry could not be found, nor its index entry
    /// removed with it.
    pub fn insert_hashed(&mut self, hash: u64, key: K, value: V) -> Result<u32, TableFull> {
        if let Some(h) = self.find_hashed(hash, &key) {
            debug_assert!(false, "ConnTable::insert: key {key:?} is already present (handle {h})");
            *self.get_mut(h) = value;
            return Ok(h);
        }
        if self.len >= self.max_len {
            return Err(TableFull);
        }
        let handle = match self.free_head {
            NONE => {
                self.grow_slab();
                let h = self.slab.len() as u32;
                self.slab.push(Slot::Live { key, value });
                h
            }
            h => {
                let slot = &mut self.slab[h as usize];
                self.free_head = match slot {
                    Slot::Free { next } => *next,
                    Slot::Live { .. } => unreachable!("free list points at a live slot"),
                };
                *slot = Slot::Live { key, value };
                h
            }
        };
        self.len += 1;
        if let Some(p) = &self.presence {
            p.add(&key);
        }
        let (slab, sip) = (&self.slab, &self.sip);
        self.index.insert(hash, handle, |&i| rehash_slot(slab, sip, i));
        self.drain_step();
        Ok(handle)
    }

    /// Moves a few more entries out of a draining index, if one is (see `KeyedIndex::drain_step`).
    #[inline]
    fn drain_step(&mut self) {
        let (slab, sip) = (&self.slab, &self.sip);
        self.index.drain_step(slab.len() as u32, |i| live_key(slab, i).map(|k| flow_hash(sip, k)));
    }

    /// Grows the slab by doubling, but never past `max_len` entries (the bound is also the memory budget).
    #[inline]
    fn grow_slab(&mut self) {
        let cap = self.slab.capacity();
        if self.slab.len() == cap {
            let extra = cap.max(16).min(self.max_len.saturating_sub(cap)).max(1);
            self.slab.reserve_exact(extra);
        }
    }

    /// Removes the entry at a live handle. Panics when `handle` is not live (a caller bug).
    pub fn remove(&mut self, handle: u32) -> (K, V) {
        let hash = match self.slab.get(handle as usize) {
            Some(Slot::Live { key, .. }) => self.hash(key),
            _ => dead_handle(handle),
        };
        let found = self.index.remove(hash, handle);
        debug_assert!(found, "ConnTable: live handle {handle} missing from the index");
        let old = core::mem::replace(&mut self.slab[handle as usize], Slot::Free { next: self.free_head });
        self.free_head = handle;
        self.drain_step();
        self.len -= 1;
        match old {
            Slot::Live { key, value } => {
                if let Some(p) = &self.presence {
                    p.remove(&key);
                }
                (key, value)
            }
            Slot::Free { .. } => unreachable!(),
        }
    }

    /// Whether `handle` names a live entry.
    #[inline]
    pub fn contains(&self, handle: u32) -> bool {
        matches!(self.slab.get(handle as usize), Some(Slot::Live { .. }))
    }

    /// Panics when `handle` is not live (a caller bug).
    #[inline]
    #[track_caller]
    pub fn key(&self, handle: u32) -> &K {
        match self.slab.get(handle as usize) {
            Some(Slot::Live { key, .. }) => key,
            _ => dead_handle(handle),
        }
    }

    /// Panics when `handle` is not live (a caller bug).
    #[inline]
    #[track_caller]
    pub fn get(&self, handle: u32) -> &V {
        match self.try_get(handle) {
            Some(v) => v,
            None => dead_handle(handle),
        }
    }

    /// Panics when `handle` is not live (a caller bug).
    #[inline]
    #[track_caller]
    pub fn get_mut(&mut self, handle: u32) -> &mut V {
        match self.try_get_mut(handle) {
            Some(v) => v,
            None => dead_handle(handle),
        }
    }

    /// The value at `handle`, `None` when it is not live.
    #[inline]
    pub fn try_get(&self, handle: u32) -> Option<&V> {
        match self.slab.get(handle as usize) {
            Some(Slot::Live { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// The value at `handle`, mutable; `None` when it is not live.
    #[inline]
    pub fn try_get_mut(&mut self, handle: u32) -> Option<&mut V> {
        match self.slab.get_mut(handle as usize) {
            Some(Slot::Live { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// Key and value at a live handle, the value mutable. Panics when `handle` is not live (a caller bug).
    #[inline]
    #[track_caller]
    pub fn entry_mut(&mut self, handle: u32) -> (&K, &mut V) {
        match self.slab.get_mut(handle as usize) {
            Some(Slot::Live { key, value }) => (key, value),
            _ => dead_handle(handle),
        }
    }

    /// Live handles, in no particular order (in fact ascending, which is not a promise).
    pub fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab.iter().enumerate().filter(|(_, s)| matches!(s, Slot::Live { .. })).map(|(i, _)| i as u32)
    }

    /// One more than the largest handle ever issued.
    #[inline]
    pub fn handle_bound(&self) -> u32 {
        self.slab.len() as u32
    }

    /// Heap bytes held (slab, free list, index), for the memory bench.
    ///
    /// The free list lives inside free slab slots, so it adds nothing; the index counts its buckets and its
    /// control bytes.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * core::mem::size_of::<Slot<K, V>>() + self.index.allocation_size()
    }

    /// Bytes of one slab entry (key, value and the free-list tag), for the memory bench.
    pub const fn entry_bytes() -> usize {
        core::mem::size_of::<Slot<K, V>>()
    }
}

#[inline]
fn live_key<K, V>(slab: &[Slot<K, V>], i: u32) -> Option<&K> {
    match slab.get(i as usize) {
        Some(Slot::Live { key, .. }) => Some(key),
        _ => None,
    }
}

/// The hash of the key at slab position `i`, for hashbrown's rehashing (only live positions are in the index).
#[inline]
fn rehash_slot<K: FlowKey, V>(slab: &[Slot<K, V>], sip: &SipHasher13, i: u32) -> u64 {
    match live_key(slab, i) {
        Some(k) => flow_hash(sip, k),
        None => unreachable!("index holds a free slab position"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};
    use proptest::prelude::*;
    use std::collections::HashMap;

    const KEY_A: [u8; 16] = *b"0123456789abcdef";
    const KEY_B: [u8; 16] = *b"fedcba9876543210";

    fn v4(i: u32) -> V4Flow {
        let r = i.to_be_bytes();
        V4Flow { local: [10, 0, 0, 1], remote: [10, r[1], r[2], r[3]], local_port: 80, remote_port: (i >> 8) as u16 }
    }

    fn v6(i: u32) -> V6Flow {
        let mut remote = [0u8; 16];
        remote[0] = 0xfd;
        remote[12..].copy_from_slice(&i.to_be_bytes());
        V6Flow { local: [0xfd; 16], remote, local_port: 443, remote_port: 1024 + (i % 50_000) as u16 }
    }

    /// A 72-byte, 8-aligned stand-in for the TCB.
    type Tcb = [u64; 9];

    #[test]
    fn insert_find_remove_and_handle_reuse() {
        let mut t: ConnTable<V4Flow, u32> = ConnTable::new(8, KEY_A);
        assert!(t.is_empty());
        let a = t.insert(v4(1), 100).unwrap();
        let b = t.insert(v4(2), 200).unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(t.find(&v4(1)), Some(a));
        assert_eq!(t.find(&v4(2)), Some(b));
        assert_eq!(t.find(&v4(3)), None);
        assert_eq!(*t.get(a), 100);
        *t.get_mut(b) += 1;
        let (k, v) = t.entry_mut(b);
        assert_eq!((*k, *v), (v4(2), 201));
        assert_eq!(t.key(a), &v4(1));
        assert_eq!(t.remove(a), (v4(1), 100));
        assert!(!t.contains(a));
        assert_eq!(t.find(&v4(1)), None);
        assert_eq!(t.len(), 1);
        // The freed handle is the next one issued; the bound does not move.
        let c = t.insert(v4(3), 300).unwrap();
        assert_eq!(c, a);
        assert_eq!(t.handle_bound(), 2);
        assert_eq!(t.find(&v4(3)), Some(c));
        assert_eq!(t.find(&v4(2)), Some(b));
        let mut hs: Vec<u32> = t.handles().collect();
        hs.sort_unstable();
        assert_eq!(hs, vec![a, b]);
    }

    #[test]
    fn one_hash_serves_tables_sharing_a_secret() {
        let mut t: ConnTable<V4Flow, u8> = ConnTable::new(4, KEY_A);
        let tw: crate::tcp::time_wait::TimeWaitTable<V4Flow> =
            crate::tcp::time_wait::TimeWaitTable::new(4, core::time::Duration::from_secs(60), KEY_A);
        let k = v4(9);
        let hash = t.hash(&k);
        assert_eq!(hash, tw.hash(&k));
        assert_eq!(t.find_hashed(hash, &k), None);
        assert_eq!(tw.get_hashed(hash, &k), None);
        let h = t.insert_hashed(hash, k, 1).unwrap();
        assert_eq!(t.find_hashed(hash, &k), Some(h));
        assert_eq!(t.find(&k), Some(h));
        assert_eq!(t.remove(h), (k, 1));
    }

    #[test]
    fn bounded_capacity_refuses_when_full_and_accepts_after_remove() {
        let mut t: ConnTable<V4Flow, ()> = ConnTable::new(3, KEY_A);
        for i in 0..3 {
            t.insert(v4(i), ()).unwrap();
        }
        assert_eq!(t.insert(v4(3), ()), Err(TableFull));
        assert_eq!(t.len(), 3);
        let h = t.find(&v4(1)).unwrap();
        t.remove(h);
        assert_eq!(t.insert(v4(3), ()), Ok(h));
        assert_eq!(t.insert(v4(4), ()), Err(TableFull));
        // The slab never grows past the bound.
        assert!(t.handle_bound() <= 3);
    }

    #[test]
    fn zero_bound_table_refuses_everything() {
        let mut t: ConnTable<V4Flow, ()> = ConnTable::new(0, KEY_A);
        assert_eq!(t.insert(v4(0), ()), Err(TableFull));
        assert_eq!(t.memory_bytes(), 0);
    }

    #[test]
    #[should_panic(expected = "is not live")]
    fn dead_handle_access_panics_with_a_clear_message() {
        let mut t: ConnTable<V4Flow, u8> = ConnTable::new(4, KEY_A);
        let h = t.insert(v4(1), 1).unwrap();
        t.remove(h);
        let _ = t.get(h);
    }

    #[test]
    #[should_panic(expected = "is not live")]
    fn never_issued_handle_panics_on_remove() {
        let mut t: ConnTable<V4Flow, u8> = ConnTable::new(4, KEY_A);
        t.remove(7);
    }

    #[test]
    fn try_accessors_do_not_panic_on_dead_handles() {
        let mut t: ConnTable<V4Flow, u8> = ConnTable::new(4, KEY_A);
        let h = t.insert(v4(1), 1).unwrap();
        t.remove(h);
        assert_eq!(t.try_get(h), None);
        assert_eq!(t.try_get_mut(h), None);
        assert_eq!(t.try_get(u32::MAX), None);
    }

    #[test]
    fn many_keys_with_churn_match_a_hashmap_model() {
        let mut t: ConnTable<V6Flow, u32> = ConnTable::new(50_000, KEY_A);
        let mut model: HashMap<V6Flow, (u32, u32)> = HashMap::new();
        for i in 0..50_000u32 {
            let h = t.insert(v6(i), i).unwrap();
            model.insert(v6(i), (h, i));
        }
        // Remove every third, then refill with fresh keys into the freed handles.
        for i in (0..50_000u32).step_by(3) {
            let (h, v) = model.remove(&v6(i)).unwrap();
            assert_eq!(t.remove(h), (v6(i), v));
        }
        for i in 50_000..60_000u32 {
            let h = t.insert(v6(i), i).unwrap();
            model.insert(v6(i), (h, i));
        }
        assert_eq!(t.len(), model.len());
        assert_eq!(t.index.len(), t.len());
        for i in 0..60_000u32 {
            let got = t.find(&v6(i));
            assert_eq!(got, model.get(&v6(i)).map(|&(h, _)| h), "key {i}");
            if let Some(h) = got {
                assert_eq!(*t.get(h), i);
                assert_eq!(t.key(h), &v6(i));
            }
        }
        assert!(t.handle_bound() as usize <= 50_000);
    }

    #[test]
    fn keyed_hash_differs_between_secrets() {
        let sa = SipHasher13::new_with_key(&KEY_A);
        let sb = SipHasher13::new_with_key(&KEY_B);
        let same = (0..10_000).filter(|&i| flow_hash(&sa, &v4(i)) == flow_hash(&sb, &v4(i))).count();
        assert_eq!(same, 0);
        // Every field moves the hash.
        let k = v4(5);
        let h = flow_hash(&sa, &k);
        assert_ne!(h, flow_hash(&sa, &V4Flow { local_port: 81, ..k }));
        assert_ne!(h, flow_hash(&sa, &V4Flow { remote_port: k.remote_port ^ 1, ..k }));
        assert_ne!(h, flow_hash(&sa, &V4Flow { local: [10, 0, 0, 2], ..k }));
        assert_ne!(h, flow_hash(&sa, &V4Flow { remote: [10, 9, 9, 9], ..k }));
    }

    /// A peer that learned which tuples share a bucket under one secret gains nothing under another: tuples
    /// colliding on 10 low hash bits (one bucket of a 1024-bucket table) under secret A spread out under B.
    #[test]
    fn bucket_collisions_under_one_secret_do_not_carry_over_to_another() {
        let sa = SipHasher13::new_with_key(&KEY_A);
        let sb = SipHasher13::new_with_key(&KEY_B);
        let target = flow_hash(&sa, &v4(0)) & 1023;
        let colliding: Vec<V4Flow> =
            (0..200_000).map(v4).filter(|k| flow_hash(&sa, k) & 1023 == target).take(64).collect();
        assert_eq!(colliding.len(), 64);
        let mut buckets: Vec<u64> = colliding.iter().map(|k| flow_hash(&sb, k) & 1023).collect();
        buckets.sort_unstable();
        buckets.dedup();
        // 64 balls in 1024 bins: about 62 distinct bins expected; far from one.
        assert!(buckets.len() > 48, "only {} distinct buckets", buckets.len());
        // And the table still works with them (the index compares keys, not hashes).
        let mut t: ConnTable<V4Flow, usize> = ConnTable::new(64, KEY_A);
        for (i, k) in colliding.iter().enumerate() {
            t.insert(*k, i).unwrap();
        }
        for (i, k) in colliding.iter().enumerate() {
            assert_eq!(*t.get(t.find(k).unwrap()), i);
        }
    }

    #[test]
    fn entry_for_v4_and_a_72_byte_tcb_is_88_bytes() {
        assert_eq!(core::mem::size_of::<Tcb>(), 72);
        // 12-byte key + 72-byte value; the free-list tag fits in the key's padding.
        assert_eq!(ConnTable::<V4Flow, Tcb>::entry_bytes(), 88);
    }

    /// Bytes per connection, table and index included, at a working size of 1 M connections reserved up front:
    /// the entry (88) plus about 10.5 bytes of index (2^21 buckets of 5 bytes for 1 M entries).
    #[test]
    fn memory_per_v4_connection_with_72_byte_tcb_is_within_budget() {
        let n = 1_000_000u32;
        let mut t: ConnTable<V4Flow, Tcb> = ConnTable::new(n as usize, KEY_A);
        t.reserve(n as usize);
        let reserved = t.memory_bytes();
        for i in 0..n {
            t.insert(v4(i), [u64::from(i); 9]).unwrap();
        }
        assert_eq!(t.memory_bytes(), reserved, "filling a reserved table allocated");
        let per = t.memory_bytes() as f64 / f64::from(n);
        // 72 of TCB + at most 28 of table overhead (key 12, tag 4, index ~10.5).
        assert!(per <= 100.0, "{per} bytes per connection");
        // Churn at the bound: the index must not double (see KeyedIndex). It may hold a second table of its own
        // size while one drains, and is back to its size once that has drained.
        let mut i = 0;
        while i < n || t.index.draining() {
            let h = t.find(&v4(i)).unwrap();
            t.remove(h);
            t.insert(v4(i + n), [0; 9]).unwrap();
            i += 1;
        }
        assert_eq!(t.index.early_fills, 0);
        assert_eq!(t.memory_bytes(), reserved, "churn at the bound kept more than it started with");
    }

    /// At 78% of the buckets, churn turns erased buckets into DELETED markers until hashbrown has no growth
    /// left; it would then rehash in place or double the index, all in one insert. The index drains into a
    /// fresh table of the same size instead, a few positions per operation: nothing lost, never doubled, and
    /// back to its size once drained.
    #[test]
    fn churn_at_high_load_drains_into_an_index_of_the_same_size() {
        let n = 1_600u32;
        let mut t: ConnTable<V4Flow, u32> = ConnTable::new(n as usize, KEY_A);
        t.reserve(n as usize);
        let mem = t.memory_bytes();
        for i in 0..n {
            t.insert(v4(i), i).unwrap();
        }
        let mut next = n;
        let mut round = 0;
        while round < 200_000 || t.index.draining() {
            let victim = v4(next - n);
            let h = t.find(&victim).unwrap();
            assert_eq!(t.remove(h).1, next - n);
            t.insert(v4(next), next).unwrap();
            next += 1;
            round += 1;
        }
        assert!(t.index.same_size_drains > 0, "the same-size drain never ran");
        assert_eq!((t.index.growths, t.index.early_fills), (0, 0), "the index grew under churn alone");
        assert_eq!(t.index.len(), t.len(), "index and slab disagree");
        assert_eq!(t.memory_bytes(), mem);
        for i in next - n..next {
            assert_eq!(t.try_get(t.find(&v4(i)).unwrap()), Some(&i));
        }
        assert_eq!(t.find(&v4(next - n - 1)), None);
    }

    /// An unreserved table grows its index by draining the old one a few positions per insert (see
    /// `keyed_index`), never by rehashing every entry in one insert: every growth drained before the new table
    /// filled, and mid-drain (removals and reused handles included) every entry is found in one table or the
    /// other.
    #[test]
    fn unreserved_growth_drains_the_old_index_step_by_step() {
        let n = 200_000u32;
        let mut t: ConnTable<V4Flow, u32> = ConnTable::new(n as usize, KEY_A);
        let mut checked_mid_drain = 0;
        for i in 0..n {
            t.insert(v4(i), i).unwrap();
            // A quarter of the entries leave again, so handles are reused while the index drains.
            if i % 4 == 0 && i >= 8 {
                let h = t.find(&v4(i - 8)).unwrap();
                assert_eq!(t.remove(h).1, i - 8);
            }
            if t.index.draining() && i % 97 == 0 {
                checked_mid_drain += 1;
                for j in [i, i - i / 3, i / 2 + 1, 1] {
                    let expect = (j % 4 != 0 || j + 8 > i).then_some(j);
                    assert_eq!(t.find(&v4(j)).map(|h| *t.get(h)), expect, "entry {j} after insert {i}");
                }
            }
        }
        assert!(t.index.growths >= 12, "{} growths", t.index.growths);
        assert!(checked_mid_drain > 10, "{checked_mid_drain}");
        assert_eq!(t.index.early_fills, 0, "a new index filled before the old one had drained");
        assert_eq!(t.index.len(), t.len());
        for j in 0..n {
            let expect = (j % 4 != 0 || j + 8 >= n).then_some(j);
            assert_eq!(t.find(&v4(j)).map(|h| *t.get(h)), expect, "entry {j}");
        }
    }

    #[test]
    fn unreserved_growth_stops_at_the_bound() {
        let n = 100_000usize;
        let mut t: ConnTable<V4Flow, Tcb> = ConnTable::new(n, KEY_A);
        for i in 0..n as u32 {
            t.insert(v4(i), [0; 9]).unwrap();
        }
        // Doubling is clamped to the bound: the slab holds exactly max_len entries.
        assert_eq!(t.memory_bytes() - t.index.allocation_size(), n * 88);
    }

    proptest! {
        /// Against a map of key -> (handle, value): the same lookups, values and refusals; handles stay dense
        /// (below the bound) and unique; the index holds exactly the live entries.
        #[test]
        fn matches_a_hashmap_model(
            max_len in 0usize..40,
            ops in proptest::collection::vec((0u8..3, 0u32..60, any::<u32>()), 1..500),
        ) {
            let mut t: ConnTable<V4Flow, u32> = ConnTable::new(max_len, KEY_B);
            let mut model: HashMap<u32, (u32, u32)> = HashMap::new();
            for (op, k, v) in ops {
                match op {
                    0 => {
                        if model.contains_key(&k) {
                            continue;
                        }
                        match t.insert(v4(k), v) {
                            Ok(h) => {
                                prop_assert!(model.len() < max_len);
                                prop_assert!(model.values().all(|&(mh, _)| mh != h));
                                model.insert(k, (h, v));
                            }
                            Err(TableFull) => prop_assert_eq!(model.len(), max_len),
                        }
                    }
                    1 => {
                        if let Some((h, mv)) = model.remove(&k) {
                            prop_assert_eq!(t.remove(h), (v4(k), mv));
                        }
                    }
                    _ => {
                        let got = t.find(&v4(k));
                        prop_assert_eq!(got, model.get(&k).map(|&(h, _)| h));
                        if let Some(h) = got {
                            *t.get_mut(h) = v;
                            model.insert(k, (h, v));
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert_eq!(t.index.len(), model.len());
                prop_assert!(t.handle_bound() as usize <= max_len);
            }
            let mut live: Vec<u32> = t.handles().collect();
            let mut want: Vec<u32> = model.values().map(|&(h, _)| h).collect();
            live.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(live, want);
            for (k, (h, v)) in &model {
                prop_assert_eq!(t.key(*h), &v4(*k));
                prop_assert_eq!(*t.get(*h), *v);
            }
        }
    }
}
