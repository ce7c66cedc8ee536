//! A hashed timing wheel: one timer per connection handle, O(1) arm and cancel.
//!
//! It owns the deadlines of one worker's connections, keyed by the handles of the connection table. It never
//! reads a clock (the caller passes `now`), never allocates per arm once its arrays cover the handles in use,
//! and never expires a timer early or late: deadlines are kept at full nanosecond precision and checked
//! exactly, whatever the tick.
//!
//! Shape: two levels of `slots` circular doubly-linked lists. Level 0 has one slot per tick of the current
//! block (`slots` consecutive ticks aligned on `slots`); level 1 has one slot per block. A deadline in the
//! current block is filed in level 0 at its tick; a later one in level 1 at its block, and moves down to level 0
//! once, when the cursor enters that block. So a timer two minutes out is touched three times at most (arm,
//! move, expire) rather than once per revolution of level 0; only deadlines beyond `slots` blocks (about 4.7
//! hours at 1 ms and 4096 slots) wait in level 1 for their round.
//!
//! Every list node lives in one array indexed by node id: ids `0..slots` are the level-0 sentinels,
//! `slots..2*slots` the level-1 sentinels, `2*slots + h` is handle `h`. A node costs 16 bytes (two links and the
//! deadline) and unlinking needs no knowledge of its slot. A sentinel's deadline field holds a lower bound of
//! its slot's deadlines (exact after each visit), which lets `expire` skip a slot without walking it and
//! `next_deadline` answer without walking any list. A bitmap of non-empty slots lets both skip empty slots a
//! word at a time.
//!
//! `next_deadline` is asked on every turn of a worker's loop, far more often than timers fire, and answering it
//! means scanning the bitmap from the cursor on (a few hundred words when the wheel holds few timers). So its
//! answer is kept: `arm` lowers the kept answer to a new deadline when that is earlier, `cancel` leaves it (an
//! early answer only costs one `expire` that finds nothing), and `expire` drops it, to be found again on the
//! next ask. The answer stays never later than the earliest armed deadline.
//!
//! Ticks: deadline `d` belongs to tick `floor((d - start) / tick)`, or to the cursor's tick (that of the latest
//! `expire`) when that tick is already past; such an overdue timer sits in the cursor's slot.

use crate::time::Instant;
use std::cell::Cell;
use std::time::Duration;

/// No link: the node is not armed.
const NIL: u32 = u32::MAX;

/// How many non-empty slots `next_deadline` inspects before settling for a slot's start as its answer.
const NEXT_DEADLINE_SCAN: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Node {
    next: u32,
    prev: u32,
    /// A handle's deadline in ns; for a sentinel, a lower bound of its slot's deadlines (`u64::MAX` when empty).
    deadline: u64,
}

const UNARMED: Node = Node { next: NIL, prev: NIL, deadline: 0 };

pub struct TimerWheel {
    nodes: Vec<Node>,
    /// One bit per sentinel (level 0, then level 1): set when its list is not empty.
    bitmap: Vec<u64>,
    /// Slots per level, a power of two; `bits` is its log2 and `mask` is `slots - 1`.
    slots: u32,
    bits: u32,
    mask: u64,
    tick_ns: u64,
    start_ns: u64,
    /// The tick of the latest `expire`: every timer due before it has been expired.
    cursor: u64,
    len: usize,
    /// `next_deadline`'s kept answer (ns): at most every armed deadline; `None` when it must be found again.
    kept: Cell<Option<u64>>,
}

impl TimerWheel {
    /// `slots` (per level) is rounded up to a power of two, at least 64; `start` is the wheel's origin. A zero
    /// `tick` is taken as 1 ns.
    pub fn new(tick: Duration, slots: usize, start: Instant) -> Self {
        let slots = slots.clamp(64, 1 << 24).next_power_of_two();
        let mut nodes = Vec::with_capacity(2 * slots);
        for s in 0..2 * slots as u32 {
            nodes.push(Node { next: s, prev: s, deadline: u64::MAX });
        }
        TimerWheel {
            nodes,
            bitmap: vec![0; 2 * slots / 64],
            slots: slots as u32,
            bits: slots.trailing_zeros(),
            mask: slots as u64 - 1,
            tick_ns: u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX).max(1),
            start_ns: start.as_nanos(),
            cursor: 0,
            len: 0,
            kept: Cell::new(None),
        }
    }

    /// Sizes the per-handle arrays for handles `0..handles`, so that arming them allocates nothing.
    pub fn reserve(&mut self, handles: usize) {
        let want = (self.first_handle() + handles).min(NIL as usize);
        if want > self.nodes.len() {
            self.nodes.reserve_exact(want - self.nodes.len());
            self.nodes.resize(want, UNARMED);
        }
    }

    #[inline]
    fn first_handle(&self) -> usize {
        2 * self.slots as usize
    }

    #[inline]
    fn tick_of(&self, ns: u64) -> u64 {
        ns.saturating_sub(self.start_ns) / self.tick_ns
    }

    /// When `tick` begins.
    #[inline]
    fn tick_start(&self, tick: u64) -> u64 {
        self.start_ns.saturating_add(tick.saturating_mul(self.tick_ns))
    }

    /// Arms (or re-arms, replacing the old deadline) the timer of `handle`.
    ///
    /// Handles must be below `u32::MAX - 2 * slots` (a connection table's handles are far below): a larger one
    /// is a caller bug and panics.
    pub fn arm(&mut self, handle: u32, deadline: Instant) {
        let id = self.first_handle() + handle as usize;
        assert!(id < NIL as usize, "TimerWheel: handle {handle} out of range");
        if id >= self.nodes.len() {
            self.grow(id);
        }
        if self.nodes[id].prev == NIL {
            self.len += 1;
        } else {
            self.unlink(id as u32);
        }
        let d = deadline.as_nanos();
        // With no other timer armed, `d` is the exact answer; otherwise an earlier `d` lowers the kept one.
        match self.kept.get() {
            _ if self.len == 1 => self.kept.set(Some(d)),
            Some(k) => self.kept.set(Some(k.min(d))),
            None => {}
        }
        let tick = self.tick_of(d).max(self.cursor);
        self.file(id as u32, tick, d);
    }

    /// Links node `id` (deadline `d`, due at `tick` >= cursor) at the tail of its slot: level 0 when `tick` is in
    /// the cursor's block, level 1 otherwise. Tail insertion keeps each slot in arming order (determinism).
    #[inline]
    fn file(&mut self, id: u32, tick: u64, d: u64) {
        let s = if tick >> self.bits == self.cursor >> self.bits {
            (tick & self.mask) as u32
        } else {
            self.slots + ((tick >> self.bits) & self.mask) as u32
        };
        let tail = self.nodes[s as usize].prev;
        self.nodes[id as usize] = Node { next: s, prev: tail, deadline: d };
        self.nodes[tail as usize].next = id;
        let sentinel = &mut self.nodes[s as usize];
        sentinel.prev = id;
        sentinel.deadline = sentinel.deadline.min(d);
        self.bitmap[(s / 64) as usize] |= 1 << (s % 64);
    }

    /// Grows the node array to cover node `id`, doubling so that growth is rare.
    #[cold]
    fn grow(&mut self, id: usize) {
        let handles = self.nodes.len() - self.first_handle();
        let want = (id + 1).max(self.first_handle() + handles * 2).min(NIL as usize);
        self.nodes.reserve_exact(want - self.nodes.len());
        self.nodes.resize(want, UNARMED);
    }

    /// Takes an armed node out of its list, clearing its slot's bit when the list becomes empty.
    #[inline]
    fn unlink(&mut self, id: u32) {
        let Node { next, prev, .. } = self.nodes[id as usize];
        self.nodes[prev as usize].next = next;
        self.nodes[next as usize].prev = prev;
        self.nodes[id as usize] = UNARMED;
        // Only a sentinel can be both neighbours of a node: then the node was alone in its slot.
        if prev == next && (prev as usize) < self.first_handle() {
            self.nodes[prev as usize].deadline = u64::MAX;
            self.bitmap[(prev / 64) as usize] &= !(1 << (prev % 64));
        }
    }

    /// Disarms the timer of `handle`; a no-op when it is not armed.
    #[inline]
    pub fn cancel(&mut self, handle: u32) {
        let id = self.first_handle() + handle as usize;
        if self.nodes.get(id).is_some_and(|n| n.prev != NIL) {
            self.unlink(id as u32);
            self.len -= 1;
        }
    }

    #[inline]
    pub fn deadline(&self, handle: u32) -> Option<Instant> {
        match self.nodes.get(self.first_handle() + handle as usize) {
            Some(n) if n.prev != NIL => Some(Instant::from_nanos(n.deadline)),
            _ => None,
        }
    }

    /// Disarms and appends to `out` every handle whose deadline is <= `now`, in a deterministic order (ticks
    /// in order; within a tick, arming order, or cascading order for timers that came down from level 1).
    ///
    /// Work: the level-0 slots of the elapsed ticks (at most `slots`, empty ones skipped a bitmap word at a
    /// time) and one level-1 slot per block entered. A gap of more than `slots` blocks sweeps both levels once.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<u32>) {
        let now_ns = now.as_nanos();
        let now_tick = self.tick_of(now_ns);
        self.kept.set(None);
        if self.len > 0 {
            if now_tick <= self.cursor {
                // Same tick (or time running backwards, to be total): only the cursor slot can hold due timers.
                self.expire_level0(self.cursor, self.cursor, now_ns, out);
            } else if (now_tick >> self.bits) - (self.cursor >> self.bits) > u64::from(self.slots) {
                self.sweep(now_tick, now_ns, out);
            } else {
                while self.cursor >> self.bits < now_tick >> self.bits && self.len > 0 {
                    let block_end = self.cursor | self.mask;
                    self.expire_level0(self.cursor, block_end, now_ns, out);
                    self.cursor = block_end + 1;
                    self.cascade(now_ns, out);
                }
                if self.len > 0 {
                    self.expire_level0(self.cursor, now_tick, now_ns, out);
                }
            }
        }
        self.cursor = self.cursor.max(now_tick);
    }

    /// Expires what is due in the level-0 slots of ticks `from..=to` (both in the cursor's block).
    fn expire_level0(&mut self, from: u64, to: u64, now_ns: u64, out: &mut Vec<u32>) {
        let first = (from & self.mask) as usize;
        let span = (to - from) as usize + 1;
        let mut off = 0;
        while let Some(o) = self.next_nonempty(0, first, off, span) {
            self.walk(((first + o) & self.mask as usize) as u32, now_ns, out, false);
            off = o + 1;
        }
    }

    /// The cursor has just entered a block: brings that block's level-1 timers down to level 0 (those already
    /// due are expired on the way).
    fn cascade(&mut self, now_ns: u64, out: &mut Vec<u32>) {
        let s = self.slots + ((self.cursor >> self.bits) & self.mask) as u32;
        // Timers of this block are due before the next block starts; a bound past that means later rounds only.
        let block_end = self.tick_start(self.cursor + u64::from(self.slots));
        if self.nodes[s as usize].deadline < block_end {
            self.walk(s, now_ns, out, true);
        }
    }

    /// Walks slot `s`: expires what is due; with `refile`, moves what belongs to the cursor's block down to
    /// level 0; leaves the rest, and makes the slot's bound exact.
    fn walk(&mut self, s: u32, now_ns: u64, out: &mut Vec<u32>, refile: bool) {
        if !refile && self.nodes[s as usize].deadline > now_ns {
            return;
        }
        let first_handle = self.first_handle() as u32;
        let mut lowest = u64::MAX;
        let mut id = self.nodes[s as usize].next;
        while id != s {
            let node = self.nodes[id as usize];
            if node.deadline <= now_ns {
                self.unlink(id);
                self.len -= 1;
                out.push(id - first_handle);
            } else if refile && self.tick_of(node.deadline) >> self.bits == self.cursor >> self.bits {
                self.unlink(id);
                self.file(id, self.tick_of(node.deadline), node.deadline);
            } else {
                lowest = lowest.min(node.deadline);
            }
            id = node.next;
        }
        // Exact again (u64::MAX if the walk emptied the slot, as `unlink` also set).
        self.nodes[s as usize].deadline = lowest;
    }

    /// After a gap longer than level 1 covers: everything in level 0 is overdue; level 1 is walked in full.
    #[cold]
    fn sweep(&mut self, now_tick: u64, now_ns: u64, out: &mut Vec<u32>) {
        let slots = self.slots as usize;
        let mut off = 0;
        while let Some(o) = self.next_nonempty(0, 0, off, slots) {
            self.walk(o as u32, now_ns, out, false);
            off = o + 1;
        }
        self.cursor = now_tick;
        let mut off = 0;
        while let Some(o) = self.next_nonempty(slots, 0, off, slots) {
            self.walk((slots + o) as u32, now_ns, out, true);
            off = o + 1;
        }
    }

    /// The smallest offset `o` in `from..span` such that sentinel `base + (first + o) % slots` is not empty.
    #[inline]
    fn next_nonempty(&self, base: usize, first: usize, from: usize, span: usize) -> Option<usize> {
        let mut off = from;
        while off < span {
            let pos = base + ((first + off) & self.mask as usize);
            let bit = pos % 64;
            let word = self.bitmap[pos / 64] >> bit;
            if word != 0 {
                let o = off + word.trailing_zeros() as usize;
                return (o < span).then_some(o);
            }
            off += 64 - bit;
        }
        None
    }

    /// When `expire` should next be called: never later than the earliest armed deadline (it is that deadline
    /// when the first slots in time order hold no stale bound), possibly earlier (a timer cancelled since the
    /// answer was found, a slot whose earliest timer was cancelled, or a level-1 slot holding later rounds);
    /// `None` when nothing is armed. Cheap when asked again before the next `expire` (the answer is kept).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        let ns = match self.kept.get() {
            Some(k) => k,
            None => {
                let found = self.find_next_deadline();
                self.kept.set(Some(found));
                found
            }
        };
        Some(Instant::from_nanos(ns))
    }

    /// `next_deadline` the long way (the wheel holds at least one timer): the earliest bound of the first
    /// non-empty slots in time order.
    fn find_next_deadline(&self) -> u64 {
        let slots = self.slots as usize;
        let mut lowest = u64::MAX;
        let mut visited = 0;
        // Candidates in time order: level-0 slots from the cursor to the end of its block, then level-1 slots
        // from the next block on. Everything in a candidate or after it is due no earlier than the candidate's
        // start, save overdue timers, which sit in the cursor's slot, the first candidate.
        let block = self.cursor >> self.bits;
        let first0 = (self.cursor & self.mask) as usize;
        let first1 = ((block + 1) & self.mask) as usize;
        let levels = [(0, first0, slots - first0, 0u64), (slots, first1, slots, self.bits.into())];
        for (base, first, span, shift) in levels {
            let mut off = 0;
            while let Some(o) = self.next_nonempty(base, first, off, span) {
                let start = if base == 0 {
                    self.tick_start(self.cursor + o as u64)
                } else {
                    self.tick_start((block + 1 + o as u64) << shift)
                };
                if lowest <= start {
                    return lowest;
                }
                if visited == NEXT_DEADLINE_SCAN {
                    return lowest.min(start);
                }
                lowest = lowest.min(self.nodes[base + ((first + o) & self.mask as usize)].deadline);
                visited += 1;
                off = o + 1;
            }
        }
        lowest
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held: 16 per handle and per slot of each level, plus the bitmap.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node>() + self.bitmap.capacity() * 8
    }

    /// Bytes per handle, for the memory bench.
    pub const fn bytes_per_handle() -> usize {
        core::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const MS: u64 = 1_000_000;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    fn wheel() -> TimerWheel {
        TimerWheel::new(Duration::from_millis(1), 4096, Instant::ZERO)
    }

    fn expire(w: &mut TimerWheel, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        w.expire(now, &mut out);
        out
    }

    #[test]
    fn kept_answer_follows_an_earlier_arm_and_is_found_again_after_expire() {
        let mut w = wheel();
        w.arm(1, at_ms(500));
        w.arm(2, at_ms(900));
        assert_eq!(w.next_deadline(), Some(at_ms(500)));
        // Kept, then lowered by an earlier arm without a scan.
        w.arm(3, at_ms(40));
        assert_eq!(w.next_deadline(), Some(at_ms(40)));
        // A cancel leaves the answer early (never late); the expire it calls for finds nothing and the answer is
        // found again.
        w.cancel(3);
        let early = w.next_deadline().unwrap();
        assert!(early <= at_ms(500));
        assert!(expire(&mut w, early).is_empty());
        assert_eq!(w.next_deadline(), Some(at_ms(500)));
        // Re-arming the only timer left answers exactly, whatever was kept.
        w.cancel(2);
        w.arm(1, at_ms(700));
        assert_eq!(w.next_deadline(), Some(at_ms(700)));
        assert_eq!(expire(&mut w, at_ms(700)), vec![1]);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn arm_cancel_rearm() {
        let mut w = wheel();
        assert_eq!(w.next_deadline(), None);
        w.arm(3, at_ms(10));
        w.arm(5, at_ms(20));
        assert_eq!(w.len(), 2);
        assert_eq!(w.deadline(3), Some(at_ms(10)));
        assert_eq!(w.next_deadline(), Some(at_ms(10)));
        w.cancel(3);
        w.cancel(3);
        w.cancel(1000);
        assert_eq!(w.len(), 1);
        assert_eq!(w.deadline(3), None);
        // Re-arming replaces: the old deadline never fires.
        w.arm(5, at_ms(30));
        w.arm(5, at_ms(7));
        assert_eq!(w.len(), 1);
        assert_eq!(expire(&mut w, at_ms(25)), vec![5]);
        assert!(w.is_empty());
        assert_eq!(expire(&mut w, at_ms(40)), Vec::<u32>::new());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn expiry_is_exact_at_sub_tick_boundaries() {
        let mut w = wheel();
        let d = Instant::from_nanos(5 * MS + 500_000);
        w.arm(1, d);
        assert!(w.next_deadline().unwrap() <= d);
        assert!(expire(&mut w, Instant::from_nanos(d.as_nanos() - 1)).is_empty());
        assert_eq!(w.deadline(1), Some(d));
        assert_eq!(expire(&mut w, d), vec![1]);
        // A deadline exactly on a tick edge.
        w.arm(2, at_ms(9));
        assert!(expire(&mut w, Instant::from_nanos(9 * MS - 1)).is_empty());
        assert_eq!(expire(&mut w, at_ms(9)), vec![2]);
    }

    #[test]
    fn deadline_in_the_past_fires_on_the_next_expire() {
        let mut w = wheel();
        expire(&mut w, at_ms(100));
        w.arm(4, at_ms(50));
        w.arm(6, Instant::from_nanos(100 * MS + 10));
        assert_eq!(w.next_deadline(), Some(at_ms(50)));
        assert_eq!(expire(&mut w, at_ms(100)), vec![4]);
        assert_eq!(expire(&mut w, Instant::from_nanos(100 * MS + 10)), vec![6]);
    }

    #[test]
    fn timers_beyond_one_revolution_wait_for_their_round() {
        let mut w = TimerWheel::new(Duration::from_millis(1), 64, Instant::ZERO);
        // Same slot (tick 5 mod 64), rounds 0, 1 and 3.
        w.arm(1, at_ms(5));
        w.arm(2, at_ms(69));
        w.arm(3, at_ms(197));
        let mut fired = Vec::new();
        for ms in 0..=200 {
            for h in expire(&mut w, at_ms(ms)) {
                fired.push((h, ms));
            }
        }
        assert_eq!(fired, vec![(1, 5), (2, 69), (3, 197)]);
    }

    /// With 64 slots a level-1 slot spans 64 ticks and level 1 covers 4096: deadlines past that wait for their
    /// round in level 1; deadlines in between come down to level 0 once and fire on time.
    #[test]
    fn timers_across_both_levels_and_beyond_fire_on_time() {
        let mut w = TimerWheel::new(Duration::from_millis(1), 64, Instant::ZERO);
        let deadlines = [3u64, 63, 64, 65, 127, 128, 1_000, 4_095, 4_096, 4_160, 9_000, 20_000];
        for (h, &d) in deadlines.iter().enumerate() {
            w.arm(h as u32, at_ms(d));
        }
        let mut fired = Vec::new();
        for ms in 0..=20_000 {
            if let Some(n) = w.next_deadline() {
                assert!(n.as_nanos() <= deadlines.iter().filter(|&&d| d >= ms).min().unwrap() * MS);
            }
            for h in expire(&mut w, at_ms(ms)) {
                fired.push((h, ms));
            }
        }
        let want: Vec<(u32, u64)> = deadlines.iter().enumerate().map(|(h, &d)| (h as u32, d)).collect();
        assert_eq!(fired, want);
    }

    #[test]
    fn next_deadline_is_exact_for_a_lone_far_timer() {
        let mut w = wheel();
        w.arm(9, at_ms(119_999));
        assert_eq!(w.next_deadline(), Some(at_ms(119_999)));
        assert!(expire(&mut w, at_ms(119_998)).is_empty());
        assert_eq!(w.next_deadline(), Some(at_ms(119_999)));
        assert_eq!(expire(&mut w, at_ms(119_999)), vec![9]);
    }

    #[test]
    fn long_gap_expires_everything_due_once_and_keeps_the_rest() {
        let mut w = wheel();
        for h in 0..10_000u32 {
            w.arm(h, at_ms(u64::from(h) * 13 % 120_000 + 1));
        }
        // Jump 1 hour in one call: everything is due.
        let out = expire(&mut w, at_ms(3_600_000));
        assert_eq!(out.len(), 10_000);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10_000);
        assert!(w.is_empty());
        // After the gap the cursor is at the new time: a timer 1 ms later fires 1 ms later.
        w.arm(7, at_ms(3_600_001));
        assert!(expire(&mut w, at_ms(3_600_000)).is_empty());
        assert_eq!(expire(&mut w, at_ms(3_600_001)), vec![7]);
    }

    #[test]
    fn long_gap_keeps_timers_still_in_the_future() {
        let mut w = TimerWheel::new(Duration::from_millis(1), 64, Instant::ZERO);
        w.arm(1, at_ms(1_000));
        w.arm(2, at_ms(5_000));
        w.arm(3, at_ms(5_001));
        assert_eq!(expire(&mut w, at_ms(4_999)), vec![1]);
        assert_eq!(w.next_deadline(), Some(at_ms(5_000)));
        assert_eq!(expire(&mut w, at_ms(5_000)), vec![2]);
        assert_eq!(expire(&mut w, at_ms(5_001)), vec![3]);
    }

    #[test]
    fn expire_order_is_deterministic() {
        let run = || {
            let mut w = TimerWheel::new(Duration::from_millis(1), 64, Instant::ZERO);
            for h in 0..500u32 {
                w.arm(h, at_ms(u64::from(h.wrapping_mul(2_654_435_761) % 300)));
            }
            for h in (0..500u32).step_by(7) {
                w.cancel(h);
            }
            expire(&mut w, at_ms(1_000))
        };
        let a = run();
        assert_eq!(a, run());
        assert_eq!(a.len(), 500 - 72);
    }

    #[test]
    fn large_counts_with_many_small_advances() {
        let mut w = wheel();
        let n = 200_000u32;
        w.reserve(n as usize);
        let mem = w.memory_bytes();
        for h in 0..n {
            w.arm(h, Instant::from_nanos(u64::from(h) * 1_237_333 % (120_000 * MS)));
        }
        assert_eq!(w.memory_bytes(), mem, "arming reserved handles allocated");
        let mut seen = vec![false; n as usize];
        let mut out = Vec::new();
        let mut now = 0;
        while !w.is_empty() {
            let prev = now;
            now = (now + 250_000).max(w.next_deadline().unwrap().as_nanos());
            out.clear();
            w.expire(Instant::from_nanos(now), &mut out);
            for &h in &out {
                let d = u64::from(h) * 1_237_333 % (120_000 * MS);
                // Not late (it was not due at the previous call, or it is the first call) and not early.
                assert!(d <= now && (d > prev || prev == 0), "{h} due {d} fired at {now}, previous call {prev}");
                assert!(!seen[h as usize]);
                seen[h as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn memory_is_16_bytes_per_handle_plus_the_wheel() {
        let mut w = wheel();
        let base = w.memory_bytes();
        assert_eq!(base, 2 * 4096 * 16 + 2 * 4096 / 8);
        w.reserve(1_000_000);
        assert_eq!(w.memory_bytes() - base, 1_000_000 * 16);
        assert_eq!(TimerWheel::bytes_per_handle(), 16);
    }

    #[test]
    fn origin_and_slot_rounding() {
        let mut w = TimerWheel::new(Duration::from_millis(1), 100, at_ms(1_000));
        assert_eq!(w.memory_bytes(), 2 * 128 * 16 + 2 * 16);
        // Before the origin: due at once.
        w.arm(0, at_ms(10));
        assert_eq!(expire(&mut w, at_ms(10)), vec![0]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Arm(u32, u64),
        Cancel(u32),
        Advance(u64),
    }

    fn op(max_delta: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..48u32, 0..max_delta).prop_map(|(h, d)| Op::Arm(h, d)),
            1 => (0..48u32).prop_map(Op::Cancel),
            3 => prop_oneof![0..2 * MS, 0..max_delta, 0..20 * max_delta].prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Against a model (a map of deadlines): the same handles expire at every step, deadlines read back
        /// exactly, and `next_deadline` is never later than the earliest deadline.
        #[test]
        fn matches_a_btreemap_model(
            slots in prop_oneof![Just(64usize), Just(128), Just(4096)],
            tick in prop_oneof![Just(1_000u64), Just(MS), Just(7 * MS + 3)],
            ops in proptest::collection::vec(op(300 * MS), 1..300),
        ) {
            let start = 5 * MS;
            let mut w = TimerWheel::new(Duration::from_nanos(tick), slots, Instant::from_nanos(start));
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Arm(h, delta) => {
                        // Deadlines from a little in the past to far ahead.
                        let d = (now + delta).saturating_sub(2 * MS);
                        w.arm(h, Instant::from_nanos(d));
                        model.insert(h, d);
                    }
                    Op::Cancel(h) => {
                        w.cancel(h);
                        model.remove(&h);
                    }
                    Op::Advance(dt) => {
                        now += dt;
                        let mut got = Vec::new();
                        w.expire(Instant::from_nanos(now), &mut got);
                        got.sort_unstable();
                        let want: Vec<u32> = model.iter().filter(|&(_, &d)| d <= now).map(|(&h, _)| h).collect();
                        model.retain(|_, d| *d > now);
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                let earliest = model.values().min().copied();
                match (w.next_deadline(), earliest) {
                    (None, None) => {}
                    (Some(n), Some(e)) => prop_assert!(n.as_nanos() <= e, "next {} > earliest {}", n.as_nanos(), e),
                    (n, e) => prop_assert!(false, "next {:?} vs earliest {:?}", n, e),
                }
                for (&h, &d) in &model {
                    prop_assert_eq!(w.deadline(h), Some(Instant::from_nanos(d)));
                }
            }
        }
    }
}
