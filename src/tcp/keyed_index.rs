//! The index of the connection and TIME-WAIT tables: keyed hashes to the owner's `u32` positions, grown without
//! a pause.
//!
//! It owns a hashbrown `HashTable<u32>` of positions (slab handles, ring positions). The owner keeps the entries
//! and their keys; the index never sees a key, only the hash the owner computed and a predicate that compares
//! the key stored at a position.
//!
//! No insert pays for the whole table. A hashbrown table that runs out of room either rehashes in place (when
//! erased entries left DELETED markers that used up its growth budget) or reallocates at twice the size, and
//! either way rehashes every entry at once; rehashing here means reading each entry's key from the owner's
//! storage (a cache miss) and running SipHash over it. Measured on a 2-vCPU VM, a worker stalled about 170 ms
//! when its TIME-WAIT index went from 2^20 to 2^21 buckets, and an in-place rebuild costs about 40 ms per
//! million entries, coming every ~0.4 x len remove+insert pairs at 76-78 % bucket load (every ~10 x len at
//! 49 %): far longer than a receive ring lasts at those rates.
//!
//! Instead, when `table` has no room left, it becomes `old` and a fresh table takes the inserts: twice as large
//! when the entries fill all but 1/16 of the capacity (a genuine growth), the same size otherwise (DELETED
//! markers only; the steady state of a table at its bound under churn). Each insert, removal and expiry then
//! moves the entries of the next few owner positions across ([`KeyedIndex::drain_step`]): at least
//! [`DRAIN_STEP`], more when the new table's free room is short for the positions left, so that `old` always
//! empties before the new table fills. Lookups and removals look in both tables while `old` drains. The cost
//! is memory: while it drains, the index holds both tables (the old one's buckets on top of the new one's).
//! Should the new table fill anyway, hashbrown grows it the usual way, which is correct, just not smooth
//! (`early_fills` counts it; tests hold it at zero).
//!
//! What one operation still pays: the insert that starts a drain allocates the fresh table, whose control bytes
//! hashbrown writes at once (one byte per bucket: 8 MiB for the 2^23 buckets of the largest TIME-WAIT bound, a
//! memset and its page faults, not measured apart), and the removal that ends one frees the old table. Under
//! churn at a bound that happens once per same-size renewal.

use hashbrown::HashTable;

/// The fewest owner positions visited per insert, removal or expiry while an old table drains.
pub(crate) const DRAIN_STEP: u32 = 16;

pub(crate) struct KeyedIndex {
    table: HashTable<u32>,
    /// The table being emptied into `table`, if any.
    drain: Option<Drain>,
    /// hashbrown's capacity of `table` when no bucket is DELETED (7/8 of the buckets).
    full_cap: usize,
    /// Drains into a table of the same size so far (a statistic; tests use it to prove the path runs).
    pub(crate) same_size_drains: u64,
    /// Drains into a table twice as large so far (a statistic, as `same_size_drains`).
    pub(crate) growths: u64,
    /// Times the new table filled before the old one had drained, so that hashbrown grew it at once (the
    /// design says never; tests hold it to that).
    pub(crate) early_fills: u64,
}

struct Drain {
    old: HashTable<u32>,
    /// The next owner position to visit.
    next: u32,
}

impl KeyedIndex {
    pub(crate) fn new() -> Self {
        KeyedIndex {
            table: HashTable::new(),
            drain: None,
            full_cap: 0,
            same_size_drains: 0,
            growths: 0,
            early_fills: 0,
        }
    }

    /// Entries held, in both tables.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len() + self.drain.as_ref().map_or(0, |d| d.old.len())
    }

    /// Whether an old table is still draining.
    #[cfg(test)]
    pub(crate) fn draining(&self) -> bool {
        self.drain.is_some()
    }

    /// Room for `additional` more entries without any growth (a drain in progress is left to its steps).
    pub(crate) fn reserve(&mut self, additional: usize, rehash: impl Fn(&u32) -> u64) {
        self.table.reserve(additional, rehash);
        self.full_cap = self.full_cap.max(self.table.capacity());
    }

    /// The position under `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl Fn(&u32) -> bool) -> Option<u32> {
        if let Some(&v) = self.table.find(hash, &eq) {
            return Some(v);
        }
        self.drain.as_ref().and_then(|d| d.old.find(hash, &eq)).copied()
    }

    /// Re-points the entry under `hash` for which `eq` holds at `value`; returns the position it had. An entry
    /// still in the draining table moves to the new one (`rehash` as for [`insert`](Self::insert)).
    #[inline]
    pub(crate) fn repoint(
        &mut self,
        hash: u64,
        eq: impl Fn(&u32) -> bool,
        value: u32,
        rehash: impl Fn(&u32) -> u64,
    ) -> Option<u32> {
        if let Some(p) = self.table.find_mut(hash, &eq) {
            return Some(core::mem::replace(p, value));
        }
        let d = self.drain.as_mut()?;
        let (was, _) = d.old.find_entry(hash, &eq).ok()?.remove();
        self.table.insert_unique(hash, value, rehash);
        Some(was)
    }

    /// Removes the entry under `hash` for which `eq` holds; returns its position.
    #[inline]
    pub(crate) fn remove_where(&mut self, hash: u64, eq: impl Fn(&u32) -> bool) -> Option<u32> {
        if let Ok(e) = self.table.find_entry(hash, &eq) {
            return Some(e.remove().0);
        }
        let d = self.drain.as_mut()?;
        d.old.find_entry(hash, &eq).ok().map(|e| e.remove().0)
    }

    /// Removes the entry holding exactly `value` under `hash`; false when there is none.
    #[inline]
    pub(crate) fn remove(&mut self, hash: u64, value: u32) -> bool {
        self.remove_where(hash, |&v| v == value).is_some()
    }

    /// Every position held, mutable, for an owner that moves its entries (both tables while one drains). The
    /// owner must then call [`restart_drain`](Self::restart_drain).
    pub(crate) fn positions_mut(&mut self) -> impl Iterator<Item = &mut u32> {
        let old = self.drain.as_mut().map(|d| d.old.iter_mut());
        self.table.iter_mut().chain(old.into_iter().flatten())
    }

    /// After the owner moved its entries: the drain visits every position again.
    pub(crate) fn restart_drain(&mut self) {
        if let Some(d) = &mut self.drain {
            d.next = 0;
        }
    }

    /// Inserts `value` (not present yet) under `hash`; `rehash` gives the hash of any position held (for
    /// hashbrown, should the new table of a drain ever fill).
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, value: u32, rehash: impl Fn(&u32) -> u64) {
        if self.table.len() == self.table.capacity() {
            if self.drain.is_none() {
                self.start_drain();
            } else {
                self.early_fills += 1;
            }
        }
        self.table.insert_unique(hash, value, &rehash);
        self.full_cap = self.full_cap.max(self.table.capacity());
    }

    /// `table` has no room left: it becomes the draining `old`, and a fresh table, twice as large or the same
    /// size (see the module notes), takes over.
    #[cold]
    fn start_drain(&mut self) {
        let want = self.table.len() + 1;
        let full = self.full_cap.max(self.table.capacity());
        let cap = if want + full / 16 > full {
            self.growths += 1;
            (full * 2).max(8)
        } else {
            self.same_size_drains += 1;
            full
        };
        let old = core::mem::replace(&mut self.table, HashTable::with_capacity(cap));
        self.full_cap = self.table.capacity();
        if !old.is_empty() {
            self.drain = Some(Drain { old, next: 0 });
        }
    }

    /// Moves the entries of the next owner positions from the draining table, if one is: [`DRAIN_STEP`] of
    /// them, or as many as it takes to end the walk before the new table's free room runs out at one insert a
    /// call. The owner's positions run from 0 below `end`; `hash_at(p)` is the hash of the entry at position
    /// `p`, `None` when it holds none. When the walk has passed `end` and the old table is empty, it is freed;
    /// were it not empty (the owner moved entries without [`restart_drain`](Self::restart_drain)), the walk
    /// starts over.
    #[inline]
    pub(crate) fn drain_step(&mut self, end: u32, hash_at: impl Fn(u32) -> Option<u64>) {
        let Some(d) = &mut self.drain else { return };
        // Room the old table's entries do not already claim: every call may add one entry.
        let room = self.table.capacity().saturating_sub(self.table.len() + d.old.len());
        let left = end.saturating_sub(d.next);
        let step = DRAIN_STEP.max(left.div_ceil(u32::try_from(room).unwrap_or(u32::MAX).max(1)));
        let stop = d.next.saturating_add(step).min(end);
        // Only positions holding entries are in the tables, so hashbrown (should the new table ever have to
        // grow) only asks for hashes `hash_at` has.
        let rehash = |&v: &u32| hash_at(v).unwrap_or_else(|| unreachable!("index holds an empty position {v}"));
        for p in d.next..stop {
            let Some(hash) = hash_at(p) else { continue };
            if let Ok(e) = d.old.find_entry(hash, |&v| v == p) {
                e.remove();
                self.table.insert_unique(hash, p, rehash);
            }
        }
        d.next = stop;
        if stop >= end {
            if d.old.is_empty() {
                self.drain = None;
            } else {
                debug_assert!(false, "KeyedIndex: {} entries left after a full drain walk", d.old.len());
                d.next = 0;
            }
        }
    }

    #[inline]
    pub(crate) fn allocation_size(&self) -> usize {
        self.table.allocation_size() + self.drain.as_ref().map_or(0, |d| d.old.allocation_size())
    }
}
