//! The per-worker connection table: a slab of entries indexed by a keyed hash of the 4-tuple.
//!
//! CONTRACT (to be implemented): hashbrown::HashTable<u32> as the index (key stored once, in the slab), hashed
//! with SipHash-1-3 under a per-table secret so that no peer can aim at one bucket; bounded by `max_len`;
//! handles are dense slab indices reused after removal; no allocation once the slab and index have grown to
//! their working size.

use crate::tcp::flow::FlowKey;

/// The table is at its bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("table full")]
pub struct TableFull;

/// Connections by 4-tuple. `V` is the connection state.
pub struct ConnTable<K: FlowKey, V> {
    _todo: core::marker::PhantomData<(K, V)>,
}

impl<K: FlowKey, V> ConnTable<K, V> {
    /// A table that holds at most `max_len` entries; `hash_key` keys the index hash.
    pub fn new(max_len: usize, hash_key: [u8; 16]) -> Self {
        let _ = (max_len, hash_key);
        todo!("tables helper")
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn max_len(&self) -> usize {
        todo!()
    }
    /// The handle of the entry for `key`.
    pub fn find(&self, key: &K) -> Option<u32> {
        let _ = key;
        todo!()
    }
    /// Inserts an entry whose key is not present yet; returns its handle.
    pub fn insert(&mut self, key: K, value: V) -> Result<u32, TableFull> {
        let _ = (key, value);
        todo!()
    }
    /// Removes the entry at a live handle.
    pub fn remove(&mut self, handle: u32) -> (K, V) {
        let _ = handle;
        todo!()
    }
    pub fn key(&self, handle: u32) -> &K {
        let _ = handle;
        todo!()
    }
    pub fn get(&self, handle: u32) -> &V {
        let _ = handle;
        todo!()
    }
    pub fn get_mut(&mut self, handle: u32) -> &mut V {
        let _ = handle;
        todo!()
    }
    /// Key and value at a live handle, the value mutable.
    pub fn entry_mut(&mut self, handle: u32) -> (&K, &mut V) {
        let _ = handle;
        todo!()
    }
    /// Live handles, in no particular order.
    pub fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        core::iter::empty()
    }
    /// Whether `handle` names a live entry (any u32 is safe to ask about).
    pub fn contains(&self, handle: u32) -> bool {
        let _ = handle;
        todo!()
    }
    /// One more than the largest handle ever issued.
    pub fn handle_bound(&self) -> u32 {
        todo!()
    }
    /// Heap bytes held (slab, free list, index), for the memory bench.
    pub fn memory_bytes(&self) -> usize {
        todo!()
    }
}
