//! TIME-WAIT, apart from live connections: a compact table of closed connections that still guard their tuple.
//!
//! It owns the tuples in TIME-WAIT of one worker: what each remembers ([`TimeWait`]) and when its 2MSL ends. It
//! never reads a clock, allocates only to grow the ring or when its index starts a drain (a fresh table; see
//! `tcp::keyed_index`), and never drops an entry before its
//! 2MSL has fully run (expiry is checked to the nanosecond).
//!
//! Shape: every entry lives the same `lifetime` from its insert (or restart), so entries sit in a ring in
//! expiry order, oldest at the head, and expiry pops from the head. A keyed `hashbrown::HashTable<u32>` maps a
//! key (SipHash-1-3 under the table's secret) to the entry's ring position. `remove` and `restart` leave a
//! tombstone in the ring (a restarted entry moves to the tail, since its new 2MSL ends last); tombstones at the
//! head are popped at once, so the head is always live. When tombstones fill the ring it is compacted in place
//! (the index fixed up in one sequential pass), so they cannot make it grow past its bound: at most `max_len`
//! plus 1/8 of slack, which keeps each compaction's O(ring) cost amortised over at least ring/9 inserts.
//!
//! Size: a ring slot holds the key, the `TimeWait` fields, a liveness byte and the expiry as 48 bits of
//! nanoseconds (wrapping; every operation that takes `now` first drops what has expired, so all live expiries
//! lie within `lifetime` of the latest `now` and 48 bits tell them apart exactly). For IPv4 a slot is 32 bytes;
//! with the slack (at most 4 more), the index (5 bytes a bucket, 10.5 to 11.5 per entry at the bound) and the
//! compaction scratch (0.19), an entry costs at most 48 bytes at the bound. When its index runs out of room it
//! drains into a fresh one a few ring positions per insert, removal or expiry (see `KeyedIndex`), and holds
//! both meanwhile (about 5.7 bytes more per entry when it doubles at the worst bound, 11.5 when it renews a
//! table of the same size).
//!
//! An entry whose 2MSL has ended stays visible to `get` until the next call that takes `now` drops it.

use crate::tcp::flow::FlowKey;
use crate::tcp::keyed_index::KeyedIndex;
use crate::tcp::presence::Presence;
use crate::tcp::table::{flow_hash, TableFull};
use crate::time::Instant;
use siphasher::sip::SipHasher13;
use std::time::Duration;

/// What a TIME-WAIT tuple remembers: enough to re-acknowledge a FIN, refuse old duplicates and judge a new SYN.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TimeWait {
    /// Our next sequence number (after our FIN).
    pub snd_nxt: u32,
    /// The peer's next sequence number (after its FIN).
    pub rcv_nxt: u32,
    /// The peer's most recent TSval, when timestamps were in use.
    pub ts_recent: u32,
    /// Bit 0: timestamps were in use. Bits 4–7: our receive window shift (0 when scaling was not negotiated:
    /// RFC 7323 §2.2, a window field is only shifted when both sides sent the option).
    pub flags: u8,
}

impl TimeWait {
    pub const TIMESTAMPS: u8 = 1;
    const WSCALE_SHIFT: u8 = 4;

    /// The flags byte for a connection that did or did not use timestamps and shifts its window by `rcv_wscale`
    /// (at most 14, RFC 7323 §2.3).
    #[inline]
    pub fn flags_for(timestamps: bool, rcv_wscale: u8) -> u8 {
        (u8::from(timestamps) * Self::TIMESTAMPS) | (rcv_wscale.min(14) << Self::WSCALE_SHIFT)
    }

    /// The shift of our receive window field.
    #[inline]
    pub fn rcv_wscale(&self) -> u8 {
        self.flags >> Self::WSCALE_SHIFT
    }
}

/// Expiries are kept modulo 2^48 ns (about 78 hours).
const EXP_MASK: u64 = (1 << 48) - 1;
/// The longest lifetime: far below half the expiry range, so wrapped expiries compare without ambiguity.
pub const MAX_LIFETIME: Duration = Duration::from_nanos(1 << 46);

/// One ring position. Field order is the compiler's; for `V4Flow` this packs into 32 bytes.
#[derive(Clone, Copy, Debug)]
struct Slot<K> {
    key: K,
    snd_nxt: u32,
    rcv_nxt: u32,
    ts_recent: u32,
    exp_lo: u32,
    exp_hi: u16,
    flags: u8,
    /// False for a tombstone (removed or restarted; skipped by expiry).
    live: bool,
}

impl<K> Slot<K> {
    #[inline]
    fn new(key: K, tw: TimeWait, expiry: u64) -> Self {
        Slot {
            key,
            snd_nxt: tw.snd_nxt,
            rcv_nxt: tw.rcv_nxt,
            ts_recent: tw.ts_recent,
            exp_lo: expiry as u32,
            exp_hi: (expiry >> 32) as u16,
            flags: tw.flags,
            live: true,
        }
    }
    #[inline]
    fn tw(&self) -> TimeWait {
        TimeWait { snd_nxt: self.snd_nxt, rcv_nxt: self.rcv_nxt, ts_recent: self.ts_recent, flags: self.flags }
    }
    #[inline]
    fn exp48(&self) -> u64 {
        (u64::from(self.exp_hi) << 32) | u64::from(self.exp_lo)
    }
}

pub struct TimeWaitTable<K: FlowKey> {
    /// Ring storage. Positions `0..cap` are the ring; the Vec fills up to `cap` on the first lap.
    ring: Vec<Slot<K>>,
    cap: usize,
    /// Position of the oldest slot; live whenever `used > 0`.
    head: usize,
    /// Slots from the head, tombstones included.
    used: usize,
    live: usize,
    index: KeyedIndex,
    sip: SipHasher13,
    max_len: usize,
    /// The ring may exceed `max_len` by this much slack for tombstones, so compaction always frees enough.
    hard_cap: usize,
    lifetime_ns: u64,
    /// The latest `now` seen (time never runs backwards here).
    last_now: u64,
    /// Entries dropped as expired by `insert`/`restart`, reported by the next `expire`.
    pending_expired: usize,
    /// Compaction scratch, one word per 64 ring slots: which offsets from the head are live, and how many live
    /// slots precede each word.
    live_bits: Vec<u64>,
    ranks: Vec<u32>,
    /// Tuples published to the steering program, if it answers SYNs (see [`crate::tcp::presence`]).
    presence: Option<Presence>,
    /// Growths that had to re-lay the ring (a statistic; tests use it).
    relayouts: u64,
}

impl<K: FlowKey> TimeWaitTable<K> {
    /// A table of at most `max_len` entries, each living `lifetime` (clamped to [`MAX_LIFETIME`]).
    pub fn new(max_len: usize, lifetime: Duration, hash_key: [u8; 16]) -> Self {
        let max_len = max_len.min(u32::MAX as usize / 2);
        TimeWaitTable {
            ring: Vec::new(),
            cap: 0,
            head: 0,
            used: 0,
            live: 0,
            index: KeyedIndex::new(),
            sip: SipHasher13::new_with_key(&hash_key),
            max_len,
            hard_cap: max_len + (max_len / 8).max(1),
            lifetime_ns: u64::try_from(lifetime.min(MAX_LIFETIME).as_nanos()).unwrap_or(0),
            last_now: 0,
            pending_expired: 0,
            live_bits: Vec::new(),
            ranks: Vec::new(),
            presence: None,
            relayouts: 0,
        }
    }

    /// Counts every key of this table, from now on, in `presence` (set it while the table is empty).
    pub fn set_presence(&mut self, presence: Option<Presence>) {
        debug_assert!(self.is_empty(), "TimeWaitTable::set_presence on a table holding entries");
        self.presence = presence;
    }

    /// Pre-sizes ring and index for `n` entries (clamped to the bound plus tombstone slack), so that reaching
    /// `n` entries allocates nothing. Under removals and restarts the ring may still grow once, by at most 1/8,
    /// unless `n` already covers `max_len * 9 / 8`.
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.hard_cap);
        if n > self.cap {
            self.grow(n);
        }
        let (ring, sip) = (&self.ring, &self.sip);
        self.index.reserve(n.min(self.max_len).saturating_sub(self.live), |&p| rehash(ring, sip, p));
    }

    /// The keyed hash of `key` in this table; the same as a [`ConnTable`](crate::tcp::table::ConnTable)'s built
    /// with the same `hash_key`, so one computation can serve both (see the `*_hashed` forms).
    #[inline]
    pub fn hash(&self, key: &K) -> u64 {
        flow_hash(&self.sip, key)
    }

    /// Enters `key` into TIME-WAIT until `now + lifetime` (replacing any entry for it).
    #[inline]
    pub fn insert(&mut self, now: Instant, key: K, tw: TimeWait) -> Result<(), TableFull> {
        self.insert_hashed(now, self.hash(&key), key, tw)
    }

    /// [`insert`](Self::insert) with `hash` = [`hash`](Self::hash)`(key)` already computed. The hash must be
    /// right (debug builds assert it).
    pub fn insert_hashed(&mut self, now: Instant, hash: u64, key: K, tw: TimeWait) -> Result<(), TableFull> {
        debug_assert_eq!(hash, self.hash(&key), "TimeWaitTable: hash from another key or secret");
        self.advance(now);
        let present = self.find(hash, &key).is_some();
        if !present && self.live >= self.max_len {
            return Err(TableFull);
        }
        if self.used == self.cap {
            self.make_room()?;
        }
        if present {
            self.move_to_tail(hash, Slot::new(key, tw, self.expiry()));
            return Ok(());
        }
        let pos = self.append(Slot::new(key, tw, self.expiry()));
        self.live += 1;
        if let Some(p) = &self.presence {
            p.add(&key);
        }
        let Self { ring, index, sip, .. } = self;
        let (ring, sip) = (&*ring, &*sip);
        index.insert(hash, pos as u32, |&p| rehash(ring, sip, p));
        self.drain_step();
        Ok(())
    }

    #[inline]
    pub fn get(&self, key: &K) -> Option<TimeWait> {
        self.get_hashed(self.hash(key), key)
    }

    /// [`get`](Self::get) with `hash` = [`hash`](Self::hash)`(key)` already computed. A wrong hash finds
    /// nothing (debug builds assert it).
    #[inline]
    pub fn get_hashed(&self, hash: u64, key: &K) -> Option<TimeWait> {
        debug_assert_eq!(hash, self.hash(key), "TimeWaitTable: hash from another key or secret");
        let p = self.find(hash, key)?;
        self.ring.get(p as usize).map(Slot::tw)
    }

    /// Restarts the 2MSL of an entry (a retransmitted FIN was re-acknowledged), updating its contents.
    /// False when `key` is not (or no longer, at `now`) in TIME-WAIT.
    pub fn restart(&mut self, now: Instant, key: &K, tw: TimeWait) -> bool {
        self.advance(now);
        let hash = flow_hash(&self.sip, key);
        if self.find(hash, key).is_none() {
            return false;
        }
        // Never fails here: a full ring at its hard cap holds at least one tombstone.
        if self.used == self.cap && self.make_room().is_err() {
            return false;
        }
        self.move_to_tail(hash, Slot::new(*key, tw, self.expiry()));
        true
    }

    pub fn remove(&mut self, key: &K) -> Option<TimeWait> {
        let hash = flow_hash(&self.sip, key);
        let Self { ring, index, .. } = self;
        let p = index.remove_where(hash, |&p| ring.get(p as usize).is_some_and(|s| s.key == *key))?;
        let slot = &mut ring[p as usize];
        slot.live = false;
        let tw = slot.tw();
        self.live -= 1;
        if let Some(p) = &self.presence {
            p.remove(key);
        }
        self.skip_tombstones();
        self.drain_step();
        Some(tw)
    }

    /// Drops every entry whose 2MSL has ended; returns how many (including those that an `insert` or `restart`
    /// at a later `now` already dropped).
    pub fn expire(&mut self, now: Instant) -> usize {
        self.advance(now);
        self.drain_step();
        core::mem::take(&mut self.pending_expired)
    }

    /// When the oldest entry's 2MSL ends (exactly), `None` when the table is empty.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.oldest().map(|(_, at)| at)
    }

    /// The oldest entry and when it expires.
    pub fn oldest(&self) -> Option<(&K, Instant)> {
        if self.used == 0 {
            return None;
        }
        let slot = self.ring.get(self.head)?;
        Some((&slot.key, Instant::from_nanos(self.absolute(slot.exp48()))))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline]
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    #[inline]
    pub fn lifetime(&self) -> Duration {
        Duration::from_nanos(self.lifetime_ns)
    }

    /// Heap bytes held (ring, index and compaction scratch), for the memory bench.
    pub fn memory_bytes(&self) -> usize {
        self.ring.capacity() * core::mem::size_of::<Slot<K>>()
            + self.index.allocation_size()
            + self.live_bits.capacity() * 8
            + self.ranks.capacity() * 4
    }

    /// Bytes of one ring slot, for the memory bench.
    pub const fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<K>>()
    }

    // ---- internals ----

    /// Moves a few more entries out of a draining index, if one is (see [`KeyedIndex::drain_step`]).
    #[inline]
    fn drain_step(&mut self) {
        let Self { ring, index, sip, .. } = self;
        index
            .drain_step(ring.len() as u32, |p| ring.get(p as usize).filter(|s| s.live).map(|s| flow_hash(sip, &s.key)));
    }

    #[inline]
    fn find(&self, hash: u64, key: &K) -> Option<u32> {
        let ring = &self.ring;
        self.index.find(hash, |&p| ring.get(p as usize).is_some_and(|s| s.key == *key))
    }

    /// The expiry of an entry entered at the latest `now`, as kept in a slot (48 bits).
    #[inline]
    fn expiry(&self) -> u64 {
        self.last_now.saturating_add(self.lifetime_ns) & EXP_MASK
    }

    /// The full expiry of a 48-bit one, taken as the value nearest the latest `now`.
    #[inline]
    fn absolute(&self, exp48: u64) -> u64 {
        absolute(self.last_now, exp48)
    }

    /// Moves time on to `now` and drops what has expired, oldest first.
    ///
    /// Expiries are read against the previous `now`, within `lifetime` of which they all lie, however long
    /// the gap since; what survives lies within `lifetime` of the new one.
    fn advance(&mut self, now: Instant) {
        let reference = self.last_now;
        let now = reference.max(now.as_nanos());
        while self.used > 0 {
            let slot = self.ring[self.head];
            debug_assert!(slot.live, "TIME-WAIT ring head is a tombstone");
            if absolute(reference, slot.exp48()) > now {
                break;
            }
            let found = self.index.remove(flow_hash(&self.sip, &slot.key), self.head as u32);
            debug_assert!(found, "TIME-WAIT entry missing from the index");
            self.ring[self.head].live = false;
            self.live -= 1;
            if let Some(p) = &self.presence {
                p.remove(&slot.key);
            }
            self.pending_expired += 1;
            self.pop_head();
            self.skip_tombstones();
        }
        self.last_now = now;
    }

    #[inline]
    fn pop_head(&mut self) {
        self.head = if self.head + 1 >= self.cap { 0 } else { self.head + 1 };
        self.used -= 1;
    }

    #[inline]
    fn skip_tombstones(&mut self) {
        while self.used > 0 && !self.ring[self.head].live {
            self.pop_head();
        }
    }

    /// Writes `slot` at the tail (there must be room) and returns its position.
    #[inline]
    fn append(&mut self, slot: Slot<K>) -> usize {
        debug_assert!(self.used < self.cap);
        let mut pos = self.head + self.used;
        if pos >= self.cap {
            pos -= self.cap;
        }
        if pos == self.ring.len() {
            self.ring.push(slot);
        } else {
            self.ring[pos] = slot;
        }
        self.used += 1;
        pos
    }

    /// Re-enters a present key at the tail with `slot`, leaving a tombstone where it was.
    fn move_to_tail(&mut self, hash: u64, slot: Slot<K>) {
        let key = slot.key;
        let pos = self.append(slot);
        let Self { ring, index, sip, .. } = self;
        let (ring_ref, sip) = (&*ring, &*sip);
        let eq = |&p: &u32| p as usize != pos && ring_ref[p as usize].key == key;
        let old = match index.repoint(hash, eq, pos as u32, |&p| rehash(ring_ref, sip, p)) {
            Some(p) => p,
            None => unreachable!("move_to_tail of an absent key"),
        };
        ring[old as usize].live = false;
        self.skip_tombstones();
    }

    /// Frees at least one ring slot: compacts tombstones away, or grows the ring (doubling up to `max_len`, then
    /// once to the hard cap). Compaction frees at least 1/9 of the ring, so its O(ring) cost is amortised.
    #[cold]
    fn make_room(&mut self) -> Result<(), TableFull> {
        let tombstones = self.used - self.live;
        if tombstones > 0 && (tombstones >= self.cap / 4 || self.cap >= self.hard_cap) {
            self.compact();
        } else if self.cap < self.max_len {
            self.grow((self.cap * 2).max(16).min(self.max_len));
        } else if self.cap < self.hard_cap {
            self.grow(self.hard_cap);
        }
        if self.used < self.cap {
            Ok(())
        } else {
            Err(TableFull)
        }
    }

    /// Slides live slots towards the head over the tombstones, in order, then re-points the index.
    ///
    /// The index is fixed in one sequential pass over its buckets (no hashing, no random access into it): a
    /// slot's new offset from the head is its rank among live slots, read from a bitmap of the live offsets and
    /// a running count per 64 of them, both kept allocated beside the ring.
    fn compact(&mut self) {
        let Self { ring, index, cap, head, used, live_bits, ranks, .. } = self;
        let (cap, head) = (*cap, *head);
        let at = |off: usize| if head + off >= cap { head + off - cap } else { head + off };
        let mut kept = 0usize;
        for word in 0..used.div_ceil(64) {
            let mut bits = 0u64;
            for i in 0..64.min(*used - word * 64) {
                let from = at(word * 64 + i);
                if ring[from].live {
                    bits |= 1 << i;
                    let to = at(kept);
                    if to != from {
                        ring[to] = ring[from];
                    }
                    kept += 1;
                }
            }
            live_bits[word] = bits;
            ranks[word] = (kept - bits.count_ones() as usize) as u32;
        }
        for p in index.positions_mut() {
            let old = *p as usize;
            let off = if old >= head { old - head } else { old + cap - head };
            let below = live_bits[off / 64] & ((1u64 << (off % 64)) - 1);
            *p = at(ranks[off / 64] as usize + below.count_ones() as usize) as u32;
        }
        index.restart_drain();
        *used = kept;
    }

    /// Grows the ring to `new_cap` slots. When nothing wraps (the head at position 0, as all through a table's
    /// first filling, before anything expires), every slot keeps its position: the `Vec` grows where it is (a
    /// large one by `mremap`, without copying) and the index needs no fix-up. Otherwise the ring is re-laid from
    /// position 0 in a new allocation and the index re-pointed, an O(ring) pass.
    #[cold]
    fn grow(&mut self, new_cap: usize) {
        if self.head == 0 {
            self.ring.reserve_exact(new_cap.saturating_sub(self.ring.len()));
        } else {
            self.relayouts += 1;
            let mut ring = Vec::with_capacity(new_cap);
            ring.extend(positions(self.head, self.used, self.cap).map(|p| self.ring[p as usize]));
            let (head, cap) = (self.head, self.cap);
            for p in self.index.positions_mut() {
                let old = *p as usize;
                *p = (if old >= head { old - head } else { old + cap - head }) as u32;
            }
            self.index.restart_drain();
            self.ring = ring;
        }
        self.cap = new_cap;
        self.head = 0;
        let words = new_cap.div_ceil(64);
        self.live_bits.reserve_exact(words.saturating_sub(self.live_bits.len()));
        self.live_bits.resize(words, 0);
        self.ranks.reserve_exact(words.saturating_sub(self.ranks.len()));
        self.ranks.resize(words, 0);
    }
}

/// The full expiry of a 48-bit one, taken as the value nearest `reference` (they must lie within 2^47 ns).
#[inline]
fn absolute(reference: u64, exp48: u64) -> u64 {
    let diff = exp48.wrapping_sub(reference) & EXP_MASK;
    if diff < 1 << 47 {
        reference.saturating_add(diff)
    } else {
        reference.saturating_sub((1 << 48) - diff)
    }
}

/// The ring positions of `used` slots from `head`.
#[inline]
fn positions(head: usize, used: usize, cap: usize) -> impl Iterator<Item = u32> {
    (0..used).map(move |i| {
        let p = head + i;
        (if p >= cap { p - cap } else { p }) as u32
    })
}

#[inline]
fn rehash<K: FlowKey>(ring: &[Slot<K>], sip: &SipHasher13, p: u32) -> u64 {
    match ring.get(p as usize) {
        Some(s) => flow_hash(sip, &s.key),
        None => unreachable!("index holds a position outside the ring"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};
    use proptest::prelude::*;
    use std::collections::HashMap;

    const KEY: [u8; 16] = *b"time-wait secret";
    const MSL2: Duration = Duration::from_secs(60);

    fn v4(i: u32) -> V4Flow {
        let r = i.to_be_bytes();
        V4Flow { local: [10, 0, 0, 1], remote: [10, r[1], r[2], r[3]], local_port: 80, remote_port: (i >> 8) as u16 }
    }

    fn tw(n: u32) -> TimeWait {
        TimeWait { snd_nxt: n, rcv_nxt: n.wrapping_mul(3), ts_recent: n ^ 0x5555, flags: (n & 1) as u8 }
    }

    fn s(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn insert_get_remove_restart_replace() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(16, MSL2, KEY);
        assert_eq!(t.lifetime(), MSL2);
        t.insert(s(1), v4(1), tw(1)).unwrap();
        t.insert(s(2), v4(2), tw(2)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&v4(1)), Some(tw(1)));
        assert_eq!(t.get(&v4(3)), None);
        assert_eq!(t.next_deadline(), Some(s(61)));
        // Restart: new contents, new 2MSL, moved behind v4(2).
        assert!(t.restart(s(10), &v4(1), tw(11)));
        assert_eq!(t.get(&v4(1)), Some(tw(11)));
        assert_eq!(t.next_deadline(), Some(s(62)));
        assert!(!t.restart(s(10), &v4(3), tw(3)));
        // Replace through insert.
        t.insert(s(20), v4(2), tw(22)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&v4(2)), Some(tw(22)));
        assert_eq!(t.oldest(), Some((&v4(1), s(70))));
        assert_eq!(t.remove(&v4(1)), Some(tw(11)));
        assert_eq!(t.remove(&v4(1)), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(s(80)));
        assert_eq!(t.remove(&v4(2)), Some(tw(22)));
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn rfc9293_time_wait_lasts_exactly_2msl() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(16, MSL2, KEY);
        let entered = Instant::from_nanos(1_234_567_891);
        t.insert(entered, v4(1), tw(1)).unwrap();
        let end = entered + MSL2;
        assert_eq!(t.next_deadline(), Some(end));
        assert_eq!(t.expire(Instant::from_nanos(end.as_nanos() - 1)), 0);
        assert_eq!(t.get(&v4(1)), Some(tw(1)));
        assert_eq!(t.expire(end), 1);
        assert_eq!(t.get(&v4(1)), None);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn rfc9293_restart_of_2msl_on_retransmitted_fin_postpones_expiry() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(16, MSL2, KEY);
        t.insert(s(0), v4(1), tw(1)).unwrap();
        assert!(t.restart(s(59), &v4(1), tw(1)));
        assert_eq!(t.expire(s(60)), 0);
        assert_eq!(t.expire(s(119) - Duration::from_nanos(1)), 0);
        assert_eq!(t.expire(s(119)), 1);
        // An entry whose 2MSL already ended cannot be restarted.
        t.insert(s(200), v4(2), tw(2)).unwrap();
        assert!(!t.restart(s(260), &v4(2), tw(2)));
        assert_eq!(t.expire(s(260)), 1);
    }

    #[test]
    fn expiry_is_fifo() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(16, MSL2, KEY);
        for i in 0..5 {
            t.insert(s(u64::from(i)), v4(i), tw(i)).unwrap();
        }
        for i in 0..5 {
            assert_eq!(t.oldest().map(|(k, _)| *k), Some(v4(i)));
            assert_eq!(t.expire(s(60 + u64::from(i))), 1);
            assert_eq!(t.get(&v4(i)), None);
            assert_eq!(t.len() as u32, 4 - i);
        }
        // Several at once.
        for i in 0..5 {
            t.insert(s(100), v4(i), tw(i)).unwrap();
        }
        assert_eq!(t.expire(s(1_000)), 5);
    }

    #[test]
    fn tombstones_are_skipped_by_expiry_and_next_deadline() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(16, MSL2, KEY);
        for i in 0..4 {
            t.insert(s(u64::from(i)), v4(i), tw(i)).unwrap();
        }
        t.remove(&v4(0));
        t.remove(&v4(2));
        assert_eq!(t.next_deadline(), Some(s(61)));
        assert_eq!(t.expire(s(62)), 1);
        assert_eq!(t.next_deadline(), Some(s(63)));
        assert_eq!(t.expire(s(63)), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_capacity_counts_on_the_caller() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(3, MSL2, KEY);
        for i in 0..3 {
            t.insert(s(1), v4(i), tw(i)).unwrap();
        }
        assert_eq!(t.insert(s(2), v4(9), tw(9)), Err(TableFull));
        // Replacing a present key is not an overflow.
        t.insert(s(2), v4(1), tw(10)).unwrap();
        // Once the oldest expire, room comes back, even without an explicit expire call.
        assert_eq!(t.insert(s(61), v4(9), tw(9)), Ok(()));
        assert_eq!(t.len(), 2);
        assert_eq!(t.expire(s(61)), 2);
        let mut z: TimeWaitTable<V4Flow> = TimeWaitTable::new(0, MSL2, KEY);
        assert_eq!(z.insert(s(0), v4(0), tw(0)), Err(TableFull));
    }

    /// Removing and restarting forever (a port reused at once, FINs retransmitted) never grows the ring past
    /// its bound: tombstones are compacted away.
    #[test]
    fn tombstones_cannot_grow_the_ring() {
        let max = 1_000;
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(max, MSL2, KEY);
        for i in 0..max as u32 {
            t.insert(s(0), v4(i), tw(i)).unwrap();
        }
        let grown = t.memory_bytes();
        for round in 0..200u32 {
            for i in 0..max as u32 {
                if i % 2 == 0 {
                    assert!(t.restart(s(1), &v4(i), tw(i + round)));
                } else {
                    t.remove(&v4(i));
                    t.insert(s(1), v4(i), tw(i + round)).unwrap();
                }
            }
        }
        assert!(t.cap <= t.hard_cap);
        assert!(t.memory_bytes() <= grown + grown / 8 + 64, "{} vs {}", t.memory_bytes(), grown);
        assert_eq!(t.len(), max);
        for i in 0..max as u32 {
            assert_eq!(t.get(&v4(i)), Some(tw(i + 199)));
        }
    }

    /// An unreserved table grows its index by draining the old one a few ring positions per insert, while
    /// entries are removed (tombstones, compactions), restarted (moved to the tail) and expire, and the ring
    /// itself grows: every growth drained before the new index filled, and every entry stays findable.
    #[test]
    fn unreserved_growth_drains_the_old_index_step_by_step() {
        let n = 300_000u32;
        let life = Duration::from_secs(10);
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(n as usize, life, KEY);
        let mut model: HashMap<u32, (TimeWait, u64)> = HashMap::new();
        let mut now_ms = 0u64;
        for i in 0..n {
            now_ms = u64::from(i) / 30; // 30 inserts a millisecond: entries from 10 s back expire.
            let now = Instant::from_nanos(now_ms * 1_000_000);
            t.insert(now, v4(i), tw(i)).unwrap();
            model.insert(i, (tw(i), now_ms + 10_000));
            if i % 5 == 0 && i >= 10 {
                let gone = t.remove(&v4(i - 10));
                assert_eq!(gone, model.remove(&(i - 10)).filter(|e| e.1 > now_ms).map(|e| e.0), "remove {}", i - 10);
            }
            if i % 11 == 0 && i >= 20 {
                let k = i - 20;
                let alive = model.get(&k).is_some_and(|e| e.1 > now_ms);
                assert_eq!(t.restart(now, &v4(k), tw(k + 1)), alive, "restart {k}");
                if alive {
                    model.insert(k, (tw(k + 1), now_ms + 10_000));
                }
            }
            if t.index.draining() && i % 101 == 0 {
                for j in [i, i - i / 5, i / 2, 3] {
                    let expect = model.get(&j).filter(|e| e.1 > now_ms).map(|e| e.0);
                    assert_eq!(t.get(&v4(j)), expect, "entry {j} after insert {i}");
                }
            }
        }
        assert!(t.index.growths >= 12, "{} growths", t.index.growths);
        assert_eq!(t.index.early_fills, 0, "a new index filled before the old one had drained");
        t.expire(Instant::from_nanos(now_ms * 1_000_000));
        assert_eq!(t.index.len(), t.len());
        model.retain(|_, e| e.1 > now_ms);
        assert_eq!(t.len(), model.len());
        for (k, (v, _)) in &model {
            assert_eq!(t.get(&v4(*k)), Some(*v), "entry {k}");
        }
    }

    /// Filling a table from empty before anything expires grows the ring where it is: no growth re-lays it (nor
    /// re-points the index); once entries have expired and the head has moved, a growth does.
    #[test]
    fn first_filling_grows_the_ring_in_place() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(1 << 20, MSL2, KEY);
        for i in 0..100_000 {
            t.insert(s(0), v4(i), tw(i)).unwrap();
        }
        let cap = t.cap;
        assert!(cap >= 100_000);
        assert_eq!(t.relayouts, 0, "the first filling re-laid the ring");
        // All of those expire; one more than a ringful then follows them, from where the head has moved to.
        let n = cap as u32 + 1;
        for i in 100_000..100_000 + n {
            t.insert(s(61), v4(i), tw(i)).unwrap();
        }
        assert_eq!(t.cap, 2 * cap);
        assert_eq!(t.relayouts, 1, "a growth with the head away from 0 re-lays the ring");
        assert_eq!(t.len(), n as usize);
        for i in (100_000..100_000 + n).step_by(997).chain([100_000 + n - 1]) {
            assert_eq!(t.get(&v4(i)), Some(tw(i)), "entry {i}");
        }
        assert_eq!(t.get(&v4(99_999)), None, "expired at 60 s");
    }

    /// At 78% of the index buckets, churn exhausts hashbrown's growth budget with DELETED markers; the index
    /// drains into a fresh one of the same size instead of doubling, and the ring compacts its tombstones: once
    /// the drain is done, the table holds exactly what it held before.
    #[test]
    fn churn_at_high_load_ends_at_the_memory_it_started_with() {
        let n = 1_600u32;
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(n as usize, MSL2, KEY);
        t.reserve(n as usize * 9 / 8);
        let mem = t.memory_bytes();
        for i in 0..n {
            t.insert(s(0), v4(i), tw(i)).unwrap();
        }
        let mut next = n;
        let mut round = 0;
        while round < 200_000 || t.index.draining() {
            assert_eq!(t.remove(&v4(next - n)), Some(tw(next - n)));
            t.insert(s(1), v4(next), tw(next)).unwrap();
            next += 1;
            round += 1;
        }
        assert!(t.index.same_size_drains > 0, "the same-size drain never ran");
        assert_eq!((t.index.growths, t.index.early_fills), (0, 0), "the index grew under churn alone");
        assert_eq!(t.index.len(), t.len(), "index and ring disagree");
        assert_eq!(t.memory_bytes(), mem);
        for i in next - n..next {
            assert_eq!(t.get(&v4(i)), Some(tw(i)));
        }
        assert_eq!(t.len(), n as usize);
    }

    #[test]
    fn v4_slot_is_32_bytes_and_v6_slot_56() {
        assert_eq!(TimeWaitTable::<V4Flow>::slot_bytes(), 32);
        assert_eq!(TimeWaitTable::<V6Flow>::slot_bytes(), 56);
    }

    /// The bench floor: at most 48 bytes per TIME-WAIT entry, all included, at 1 M IPv4 entries, whether grown
    /// by use or reserved, and still after heavy churn (tombstones, restarts, removals) at the bound.
    #[test]
    fn memory_per_v4_entry_is_at_most_48_bytes_at_1m() {
        let n = 1_000_000u32;
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(n as usize, MSL2, KEY);
        for i in 0..n {
            t.insert(Instant::from_micros(u64::from(i)), v4(i), tw(i)).unwrap();
        }
        let per = t.memory_bytes() as f64 / t.len() as f64;
        assert!(per <= 48.0, "grown: {per} bytes per entry");
        let mut r: TimeWaitTable<V4Flow> = TimeWaitTable::new(n as usize, MSL2, KEY);
        r.reserve(n as usize);
        let reserved = r.memory_bytes();
        for i in 0..n {
            r.insert(s(1), v4(i), tw(i)).unwrap();
        }
        assert_eq!(r.memory_bytes(), reserved, "filling a reserved table allocated");
        assert!(reserved as f64 / f64::from(n) <= 48.0);
        // Churn at the bound: half the tuples reused (removed then re-entered), a quarter restarted.
        for i in 0..n {
            let k = v4(i);
            match i % 4 {
                0 | 1 => {
                    t.remove(&k);
                    t.insert(s(2), k, tw(i)).unwrap();
                }
                2 => assert!(t.restart(s(2), &k, tw(i))),
                _ => {}
            }
        }
        let per = t.memory_bytes() as f64 / t.len() as f64;
        assert!(per <= 48.0, "after churn: {per} bytes per entry");
    }

    /// The least favourable bound for the index: one entry past 7/8 of a power of two makes hashbrown double
    /// (11.4 bytes of index per entry), and one tombstone in a full ring grows it to its slack. Still <= 48 once
    /// the old index has drained (about 5.7 more while it drains).
    #[test]
    fn memory_per_v4_entry_is_at_most_48_bytes_at_the_worst_bound() {
        let n = (1 << 20) / 8 * 7 + 1;
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(n as usize, MSL2, KEY);
        for i in 0..n {
            t.insert(s(0), v4(i), tw(i)).unwrap();
        }
        t.remove(&v4(7));
        t.insert(s(1), v4(7), tw(7)).unwrap();
        assert_eq!(t.cap, t.hard_cap);
        // The index has just doubled: until the old half drains, both are held.
        assert!(t.index.draining());
        let per = t.memory_bytes() as f64 / t.len() as f64;
        assert!(per <= 54.0, "{per} bytes per entry while the old index drains");
        while t.index.draining() {
            t.expire(s(1));
        }
        let per = t.memory_bytes() as f64 / t.len() as f64;
        assert!(per <= 48.0, "{per} bytes per entry");
        assert!(per > 47.0, "{per}: not the worst case this test means to build");
    }

    #[test]
    fn long_idle_gaps_and_clock_far_from_origin() {
        let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(8, MSL2, KEY);
        // Far past the 48-bit expiry range (about 78 h) from the origin: expiries wrap and still compare right.
        let base = Instant::from_secs(400 * 3600);
        t.insert(base, v4(1), tw(1)).unwrap();
        assert_eq!(t.next_deadline(), Some(base + MSL2));
        assert_eq!(t.expire(base + MSL2 - Duration::from_nanos(1)), 0);
        // A gap of days before the next call.
        let later = base + Duration::from_secs(5 * 24 * 3600);
        t.insert(later, v4(2), tw(2)).unwrap();
        assert_eq!(t.get(&v4(1)), None);
        assert_eq!(t.next_deadline(), Some(later + MSL2));
        assert_eq!(t.expire(later), 1);
        // Time running backwards is taken as the latest time seen.
        t.insert(base, v4(3), tw(3)).unwrap();
        assert_eq!(t.oldest(), Some((&v4(2), later + MSL2)));
        assert_eq!(t.expire(later + MSL2), 2);
    }

    #[test]
    fn lifetime_is_clamped() {
        let t: TimeWaitTable<V4Flow> = TimeWaitTable::new(8, Duration::from_secs(u64::MAX), KEY);
        assert_eq!(t.lifetime(), MAX_LIFETIME);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32, u32),
        Restart(u32, u32),
        Remove(u32),
        Get(u32),
        Expire,
        Advance(u64),
    }

    fn op(life: u64, keys: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            1 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Restart(k, v)),
            2 => (0..keys).prop_map(Op::Remove),
            2 => (0..keys).prop_map(Op::Get),
            1 => Just(Op::Expire),
            3 => prop_oneof![Just(0), Just(1), 0..life / 4, 0..2 * life, Just(200 * 3_600_000_000_000)]
                .prop_map(Op::Advance),
        ]
    }

    #[derive(Default)]
    struct Model {
        map: HashMap<u32, (TimeWait, u64)>,
        pending: usize,
    }

    impl Model {
        fn advance(&mut self, now: u64) {
            let before = self.map.len();
            self.map.retain(|_, (_, e)| *e > now);
            self.pending += before - self.map.len();
        }
    }

    proptest! {
        /// Against a map of key → (contents, expiry) in virtual time: the same contents, the same sizes, the
        /// same expiry counts, the same refusals when full, and the exact next deadline.
        #[test]
        fn matches_a_hashmap_model(
            (max_len, ops) in prop_oneof![
                (0usize..12, proptest::collection::vec(op(60_000_000_000, 24), 1..400)),
                // Rings of several bitmap words, compacted across the wrap-around.
                (100usize..300, proptest::collection::vec(op(60_000_000_000, 400), 1..3_000)),
            ],
            life in prop_oneof![Just(1_000u64), Just(60_000_000_000)],
        ) {
            let mut t: TimeWaitTable<V4Flow> = TimeWaitTable::new(max_len, Duration::from_nanos(life), KEY);
            let mut m = Model::default();
            let mut now = 7u64;
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        m.advance(now);
                        let got = t.insert(Instant::from_nanos(now), v4(k), tw(v));
                        if m.map.contains_key(&k) || m.map.len() < max_len {
                            m.map.insert(k, (tw(v), now + life));
                            prop_assert_eq!(got, Ok(()));
                        } else {
                            prop_assert_eq!(got, Err(TableFull));
                        }
                    }
                    Op::Restart(k, v) => {
                        m.advance(now);
                        let got = t.restart(Instant::from_nanos(now), &v4(k), tw(v));
                        let want = m.map.contains_key(&k);
                        if want {
                            m.map.insert(k, (tw(v), now + life));
                        }
                        prop_assert_eq!(got, want);
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(t.remove(&v4(k)), m.map.remove(&k).map(|(tw, _)| tw));
                    }
                    Op::Get(k) => {
                        prop_assert_eq!(t.get(&v4(k)), m.map.get(&k).map(|&(tw, _)| tw));
                    }
                    Op::Expire => {
                        m.advance(now);
                        prop_assert_eq!(t.expire(Instant::from_nanos(now)), core::mem::take(&mut m.pending));
                    }
                    Op::Advance(dt) => now += dt,
                }
                prop_assert_eq!(t.len(), m.map.len());
                prop_assert_eq!(t.index.len(), t.len());
                let earliest = m.map.values().map(|&(_, e)| e).min();
                prop_assert_eq!(t.next_deadline().map(Instant::as_nanos), earliest);
                prop_assert!(t.cap <= t.hard_cap);
            }
            for (k, (tw, _)) in &m.map {
                prop_assert_eq!(t.get(&v4(*k)), Some(*tw));
            }
        }
    }
}
