//! The index of the connection and TIME-WAIT tables: keyed hashes to the owner's `u32` positions, grown without
//! a pause.
//!
//! It owns a hashbrown `HashTable<u32>` of positions (slab handles, ring positions). The owner keeps the entries
//! and their keys; the index never sees a key, only the hash the owner computed and a predicate that compares
//! the key stored at a position.
//!
//! Growth is incremental. A hashbrown table that runs out of room reallocates and rehashes every entry at once,
//! and rehashing here means reading each entry's key from the owner's storage (a cache miss) and running
//! SipHash over it: measured on a 2-vCPU VM, a worker stalled about 170 ms when its TIME-WAIT index went from
//! 2^20 to 2^21 buckets, far longer than its receive ring lasts at that rate. Instead, when a genuine growth is
//! due, the full table becomes `old` and a table twice as large takes the inserts; each insert then moves the
//! entries of the next [`DRAIN_STEP`] owner positions across ([`KeyedIndex::drain_step`]). Lookups and
//! removals look in both tables while `old` drains (removals and expiries step the drain too). The step is
//! large enough that `old` empties long before the new table fills: the owner's positions number at most
//! about four times the old table's capacity, so the walk ends within a quarter of that capacity in inserts,
//! and the new table has room for as many inserts as the old one held. Should it fill anyway, hashbrown grows
//! it the usual way, which is correct, just not smooth (`early_fills` counts it; tests hold it at zero).
//!
//! Churn without growth is a different matter: hashbrown marks some erased buckets DELETED, and once those
//! have used up its growth budget the next insert would rehash in place (at most half full) or double the
//! table (otherwise), though no entry was added, which breaks the memory budget. When that moment comes with
//! at least 1/16 of headroom, the index rebuilds itself in place instead (same allocation, O(len), amortised
//! over at least capacity/16 inserts). Measured ad hoc on the 2-core KVM guest this was built on: a rebuild
//! takes about 2 ms per 100 k entries and 40 ms per 1 M; under remove+insert churn one comes every ~10 x len
//! pairs at 49 % bucket load (1 000 entries in 2 048 buckets), every ~0.4 x len pairs at 76-78 % load. Keep
//! the bound near or below half the buckets (1 M entries fill 2^21 buckets to 48 %) to make them rare.

use hashbrown::HashTable;

/// Owner positions visited per insert while an old table drains.
pub(crate) const DRAIN_STEP: u32 = 16;

pub(crate) struct KeyedIndex {
    table: HashTable<u32>,
    /// The table being emptied into `table` after a growth, if any.
    drain: Option<Drain>,
    /// hashbrown's capacity of `table` when no bucket is DELETED (7/8 of the buckets); only grows.
    full_cap: usize,
    /// In-place rebuilds so far (a statistic; tests use it to prove the path runs).
    pub(crate) rebuilds: u64,
    /// Growths so far, each drained incrementally (a statistic, as `rebuilds`).
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
        KeyedIndex { table: HashTable::new(), drain: None, full_cap: 0, rebuilds: 0, growths: 0, early_fills: 0 }
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

    /// Inserts `value` (not present yet) under `hash`. `rehash` gives the hash of any position held; `live`
    /// yields every position the index must hold once `value` is in (`value` itself may be among them or not),
    /// for an in-place rebuild.
    #[inline]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        value: u32,
        rehash: impl Fn(&u32) -> u64,
        live: impl Iterator<Item = u32>,
    ) {
        let no_growth_left = self.table.len() == self.table.capacity();
        if no_growth_left {
            if self.drain.is_none() {
                self.make_room(&rehash, live.filter(|&v| v != value));
            } else {
                self.early_fills += 1;
            }
        }
        self.table.insert_unique(hash, value, &rehash);
        if no_growth_left {
            // hashbrown may have rehashed or resized: either way no bucket is DELETED now.
            self.full_cap = self.full_cap.max(self.table.capacity());
        }
    }

    #[cold]
    fn make_room(&mut self, rehash: &impl Fn(&u32) -> u64, live: impl Iterator<Item = u32>) {
        let want = self.table.len() + 1;
        let full = self.full_cap;
        // At most half full: hashbrown rehashes in place by itself. Within the last 1/16: a genuine growth,
        // drained step by step. In between: rebuild in place.
        if want > full / 2 && want + full / 16 <= full && full >= 16 {
            self.rebuilds += 1;
            self.table.clear();
            for v in live {
                self.table.insert_unique(rehash(&v), v, rehash);
            }
        } else if want + full / 16 > full && !self.table.is_empty() {
            self.growths += 1;
            let bigger = HashTable::with_capacity((self.table.capacity() * 2).max(8));
            let old = core::mem::replace(&mut self.table, bigger);
            self.full_cap = self.table.capacity();
            self.drain = Some(Drain { old, next: 0 });
        }
    }

    /// Moves the entries of the next [`DRAIN_STEP`] owner positions from the draining table, if one is. The
    /// owner's positions run from 0 below `end`; `hash_at(p)` is the hash of the entry at position `p`, `None`
    /// when it holds none. When the walk has passed `end` and the old table is empty, it is freed; were it not
    /// empty (the owner moved entries without [`restart_drain`](Self::restart_drain)), the walk starts over.
    #[inline]
    pub(crate) fn drain_step(&mut self, end: u32, hash_at: impl Fn(u32) -> Option<u64>) {
        let Some(d) = &mut self.drain else { return };
        let stop = d.next.saturating_add(DRAIN_STEP).min(end);
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
