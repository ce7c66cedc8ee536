//! Out-of-order data held until the hole before it fills (RFC 9293 §3.10.7.4: segments beyond RCV.NXT are held
//! for later processing), and the SACK blocks that tell the peer what is held (RFC 2018 §3–4).
//!
//! Few connections ever hold anything, so a TCB keeps only a two-byte [`Handle`] into this pool (at most
//! [`Reassembly::MAX_SLOTS`] slots). A slot is a ring as long as the receive window (rounded up to a power of two): the byte with sequence
//! number `s` sits at `s mod len`, which is unambiguous because everything held lies in
//! [RCV.NXT, RCV.NXT + window). Slots are reused, and their number is bounded by `Config::reassembly_memory`: when
//! every one is taken, or a segment would open more than [`MAX_RANGES`] holes, the segment is dropped as it was
//! before this pool existed (counted) and the peer sends it again. Held data is SACKed, not acknowledged, so the
//! peer keeps it until RCV.NXT passes it (RFC 2018 §8); we never discard what a live connection holds.

use crate::tcp::seq::SeqNum;
use crate::wire::SackBlocks;

/// A connection's slot in the pool: two bytes of its TCB.
pub type Handle = u16;

/// The handle of "holds nothing".
pub const NONE: Handle = Handle::MAX;

/// Disjoint ranges one connection may hold at once.
pub const MAX_RANGES: usize = 8;

/// What became of a segment offered to [`Reassembly::hold`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hold {
    /// New bytes (or the FIN) are held.
    Held,
    /// Everything in it was held already.
    Duplicate,
    /// Every slot is taken: not held.
    PoolFull,
    /// It would open a hole more than the [`MAX_RANGES`] a connection may hold: not held.
    TooManyRanges,
}

#[derive(Clone, Copy, Debug, Default)]
struct Range {
    start: SeqNum,
    end: SeqNum,
    /// When this range last grew or was repeated: RFC 2018 §4 lists the newest first.
    stamp: u32,
}

#[derive(Debug)]
struct Slot {
    ring: Box<[u8]>,
    /// Sorted by start, disjoint and not touching (touching ranges are merged).
    ranges: [Range; MAX_RANGES],
    len: usize,
    /// The sequence number of a FIN that arrived ahead of RCV.NXT.
    fin: Option<SeqNum>,
    stamp: u32,
}

/// The pool of out-of-order holdings of one endpoint.
#[derive(Debug)]
pub struct Reassembly {
    slots: Vec<Slot>,
    free: Vec<Handle>,
    /// Ring length, a power of two no shorter than the receive window.
    ring_len: usize,
    max_slots: usize,
}

impl Reassembly {
    /// Slots a pool may have, whatever its memory: every handle but [`NONE`] (64 KiB rings make this 4 GiB).
    pub const MAX_SLOTS: usize = NONE as usize;

    /// A pool for a receive window of `window` bytes that spends at most `memory` bytes on rings.
    pub fn new(window: u32, memory: usize) -> Self {
        let ring_len = (window.max(1) as usize).next_power_of_two();
        Reassembly {
            slots: Vec::new(),
            free: Vec::new(),
            ring_len,
            max_slots: (memory / ring_len).min(Self::MAX_SLOTS),
        }
    }

    /// Connections holding data now.
    pub fn in_use(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Bytes of rings allocated (they are kept for reuse).
    pub fn allocation_size(&self) -> usize {
        self.slots.len() * (self.ring_len + core::mem::size_of::<Slot>())
            + self.free.capacity() * core::mem::size_of::<Handle>()
    }

    /// Holds `data`, which starts at `seq` beyond `rcv_nxt`, and a FIN after it when `fin`. Bytes at or beyond
    /// `right` (the right edge of the window we advertised) are not held, nor then is the FIN; nor is anything
    /// past a FIN held earlier. Allocates a slot for `h` if it has none.
    pub fn hold(
        &mut self,
        h: &mut Handle,
        rcv_nxt: SeqNum,
        right: SeqNum,
        seq: SeqNum,
        data: &[u8],
        fin: bool,
    ) -> Hold {
        debug_assert!(seq > rcv_nxt);
        let mut end = seq + data.len() as u32;
        let mut fin = fin;
        // Never beyond the window we offered, nor beyond what the ring can tell apart.
        let limit = right.min(rcv_nxt + self.ring_len as u32);
        if end > limit {
            end = limit;
            fin = false;
        }
        if let Some(f) = self.slot(*h).and_then(|s| s.fin) {
            if end > f {
                end = f;
            }
            fin = false; // The first FIN stands; a peer that moves it is not believed.
        }
        if end <= seq && !fin {
            return Hold::Duplicate; // Nothing left to hold (all of it beyond the window or past the FIN).
        }
        if *h == NONE {
            match self.allocate() {
                Some(i) => *h = i,
                None => return Hold::PoolFull,
            }
        }
        let ring_len = self.ring_len;
        let slot = &mut self.slots[*h as usize];
        slot.stamp = slot.stamp.wrapping_add(1);
        let stamp = slot.stamp;
        let outcome = if end > seq {
            match merge(&slot.ranges[..slot.len], Range { start: seq, end, stamp }) {
                Some((ranges, n, grew)) => {
                    slot.ranges = ranges;
                    slot.len = n;
                    write_ring(&mut slot.ring, ring_len, seq, &data[..(end - seq) as usize]);
                    if grew {
                        Hold::Held
                    } else {
                        Hold::Duplicate
                    }
                }
                None => Hold::TooManyRanges,
            }
        } else {
            Hold::Duplicate
        };
        if fin && outcome != Hold::TooManyRanges {
            slot.fin = Some(end);
            return Hold::Held;
        }
        if slot.len == 0 && slot.fin.is_none() {
            self.release(h); // A new slot that ended up holding nothing.
        }
        outcome
    }

    /// Forgets what lies before `rcv_nxt` and frees the slot once nothing is left: no range, and no FIN still
    /// ahead (a FIN at `rcv_nxt` is still to be taken).
    pub fn settle(&mut self, h: &mut Handle, rcv_nxt: SeqNum) {
        let Some(slot) = self.slots.get_mut(*h as usize) else { return };
        let gone = slot.ranges[..slot.len].iter().take_while(|r| r.end <= rcv_nxt).count();
        slot.ranges.copy_within(gone..slot.len, 0);
        slot.len -= gone;
        if slot.len > 0 && slot.ranges[0].start < rcv_nxt {
            slot.ranges[0].start = rcv_nxt;
        }
        let fin_pending = slot.fin.is_some_and(|f| f >= rcv_nxt);
        if slot.len == 0 && !fin_pending {
            self.release(h);
        }
    }

    /// The held bytes that start exactly at `rcv_nxt` (after [`Reassembly::settle`]), in ring order: one slice,
    /// or two where the ring wraps.
    pub fn ready(&self, h: Handle, rcv_nxt: SeqNum) -> (&[u8], &[u8]) {
        let Some(slot) = self.slot(h) else { return (&[], &[]) };
        match slot.ranges[..slot.len].first() {
            Some(r) if r.start == rcv_nxt => {
                let at = (r.start.0 as usize) & (self.ring_len - 1);
                let n = (r.end - r.start) as usize;
                let first = n.min(self.ring_len - at);
                (&slot.ring[at..at + first], &slot.ring[..n - first])
            }
            _ => (&[], &[]),
        }
    }

    /// The sequence number of a FIN held ahead of RCV.NXT.
    pub fn fin(&self, h: Handle) -> Option<SeqNum> {
        self.slot(h).and_then(|s| s.fin)
    }

    /// The SACK blocks for an ACK of `rcv_nxt`: the ranges held beyond it, the most recently received first
    /// (RFC 2018 §4). Bytes held at RCV.NXT itself, which the app has not taken yet, are not a block: they are
    /// neither acknowledged nor out of order. The emitter keeps as many blocks as fit beside the other options.
    pub fn sack_blocks(&self, h: Handle, rcv_nxt: SeqNum) -> SackBlocks {
        let mut out = SackBlocks::default();
        let Some(slot) = self.slot(h) else { return out };
        let mut ranges = slot.ranges;
        let skip = usize::from(slot.len > 0 && ranges[0].start <= rcv_nxt);
        let held = &mut ranges[skip..slot.len];
        // Newest first: the distance back from the slot's stamp, so a wrapped counter still orders correctly.
        held.sort_unstable_by_key(|r| slot.stamp.wrapping_sub(r.stamp));
        for (o, r) in out.blocks.iter_mut().zip(held.iter()) {
            *o = (r.start.0, r.end.0);
            out.len += 1;
        }
        out
    }

    /// Frees the slot of `h` (if any) and sets `h` to [`NONE`].
    pub fn release(&mut self, h: &mut Handle) {
        if let Some(slot) = self.slots.get_mut(*h as usize) {
            slot.len = 0;
            slot.fin = None;
            self.free.push(*h);
        }
        *h = NONE;
    }

    fn slot(&self, h: Handle) -> Option<&Slot> {
        self.slots.get(h as usize)
    }

    fn allocate(&mut self) -> Option<Handle> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.slots.len() >= self.max_slots {
            return None;
        }
        self.slots.push(Slot {
            ring: vec![0; self.ring_len].into_boxed_slice(),
            ranges: [Range::default(); MAX_RANGES],
            len: 0,
            fin: None,
            stamp: 0,
        });
        Some(self.slots.len() as Handle - 1)
    }
}

/// `held` with `new` added: ranges it overlaps or touches are merged into it. None when that would make more
/// than [`MAX_RANGES`]. The flag says whether any byte was new.
fn merge(held: &[Range], mut new: Range) -> Option<([Range; MAX_RANGES], usize, bool)> {
    let mut out = [Range::default(); MAX_RANGES];
    let mut n = 0;
    let mut placed = false;
    let mut covered = 0u32; // Bytes of `new` that were held already.
    let len = new.end - new.start;
    let mut push = |r: Range, n: &mut usize| -> Option<()> {
        *out.get_mut(*n)? = r;
        *n += 1;
        Some(())
    };
    for &r in held {
        if r.end < new.start {
            push(r, &mut n)?;
        } else if new.end < r.start {
            if !placed {
                push(new, &mut n)?;
                placed = true;
            }
            push(r, &mut n)?;
        } else {
            let lo = r.start.max(new.start);
            let hi = r.end.min(new.end);
            if hi > lo {
                covered += hi - lo;
            }
            new.start = new.start.min(r.start);
            new.end = new.end.max(r.end);
        }
    }
    if !placed {
        push(new, &mut n)?;
    }
    Some((out, n, covered < len))
}

/// Copies `data` into the ring at the place of sequence number `seq`.
fn write_ring(ring: &mut [u8], ring_len: usize, seq: SeqNum, data: &[u8]) {
    let at = (seq.0 as usize) & (ring_len - 1);
    let first = data.len().min(ring_len - at);
    ring[at..at + first].copy_from_slice(&data[..first]);
    ring[..data.len() - first].copy_from_slice(&data[first..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Reassembly {
        Reassembly::new(1000, 1 << 20) // rings of 1024 bytes
    }

    fn bytes(p: &Reassembly, h: Handle, at: SeqNum) -> Vec<u8> {
        let (a, b) = p.ready(h, at);
        [a, b].concat()
    }

    #[test]
    fn rfc9293_3_10_7_4_held_bytes_come_back_once_the_hole_fills() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(100);
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(110), b"klmno", false), Hold::Held);
        assert_ne!(h, NONE);
        assert!(bytes(&p, h, nxt).is_empty(), "a hole remains before the held bytes");
        // The hole [100, 110) is filled by in-order delivery elsewhere; what was held is now ready.
        p.settle(&mut h, SeqNum(110));
        assert_eq!(bytes(&p, h, SeqNum(110)), b"klmno");
        p.settle(&mut h, SeqNum(115));
        assert_eq!(h, NONE, "an emptied slot is freed");
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn ranges_merge_when_they_overlap_or_touch_and_duplicates_are_told_apart() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(0);
        let right = nxt + 1000;
        assert_eq!(p.hold(&mut h, nxt, right, SeqNum(10), b"0123456789", false), Hold::Held);
        assert_eq!(p.hold(&mut h, nxt, right, SeqNum(30), b"abcde", false), Hold::Held);
        assert_eq!(p.hold(&mut h, nxt, right, SeqNum(12), b"234", false), Hold::Duplicate);
        assert_eq!(p.sack_blocks(h, nxt).as_slice(), &[(10, 20), (30, 35)], "a repeated range is listed first");
        assert_eq!(p.hold(&mut h, nxt, right, SeqNum(20), b"ABCDEFGHIJ", false), Hold::Held);
        assert_eq!(p.sack_blocks(h, nxt).as_slice(), &[(10, 35)], "touching ranges become one");
        p.settle(&mut h, SeqNum(10));
        assert!(p.sack_blocks(h, SeqNum(10)).as_slice().is_empty(), "bytes held at RCV.NXT are no SACK block");
        assert_eq!(bytes(&p, h, SeqNum(10)), b"0123456789ABCDEFGHIJabcde");
    }

    #[test]
    fn rfc2018_4_the_newest_block_comes_first() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(0);
        for start in [10u32, 30, 50, 70, 90] {
            assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(start), b"xx", false), Hold::Held);
        }
        assert_eq!(p.sack_blocks(h, nxt).as_slice(), &[(90, 92), (70, 72), (50, 52), (30, 32)]);
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(32), b"y", false), Hold::Held);
        assert_eq!(p.sack_blocks(h, nxt).as_slice()[0], (30, 33), "the block holding the newest segment leads");
    }

    #[test]
    fn a_ring_that_wraps_gives_its_bytes_in_order() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(1000); // 1000 mod 1024: a 30-byte range wraps the ring
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(1010), &[7u8; 30], false), Hold::Held);
        p.settle(&mut h, SeqNum(1010));
        let (a, b) = p.ready(h, SeqNum(1010));
        assert_eq!((a.len(), b.len()), (14, 16));
        assert!(a.iter().chain(b).all(|&x| x == 7));
    }

    #[test]
    fn sequence_numbers_wrap_around_zero() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(u32::MAX - 4);
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(2), b"abc", false), Hold::Held);
        p.settle(&mut h, SeqNum(2));
        assert_eq!(bytes(&p, h, SeqNum(2)), b"abc");
    }

    #[test]
    fn nothing_is_held_beyond_the_window_nor_past_a_held_fin() {
        let mut p = pool();
        let mut h = NONE;
        let nxt = SeqNum(0);
        // Crosses the right edge at 20: its tail and its FIN are not held.
        assert_eq!(p.hold(&mut h, nxt, SeqNum(20), SeqNum(15), b"0123456789", true), Hold::Held);
        assert_eq!(p.fin(h), None);
        assert_eq!(p.sack_blocks(h, nxt).as_slice(), &[(15, 20)]);
        let mut g = NONE;
        assert_eq!(p.hold(&mut g, nxt, SeqNum(100), SeqNum(5), b"ab", true), Hold::Held);
        assert_eq!(p.fin(g), Some(SeqNum(7)));
        assert_eq!(p.hold(&mut g, nxt, SeqNum(100), SeqNum(6), b"bcdef", true), Hold::Duplicate, "past the FIN");
        assert_eq!(p.fin(g), Some(SeqNum(7)), "the first FIN stands");
        assert_eq!(p.hold(&mut g, nxt, SeqNum(100), SeqNum(50), b"zz", false), Hold::Duplicate);
        // The FIN keeps the slot until RCV.NXT passes it.
        p.settle(&mut g, SeqNum(7));
        assert_ne!(g, NONE);
        p.settle(&mut g, SeqNum(8));
        assert_eq!(g, NONE);
    }

    #[test]
    fn a_lone_fin_ahead_of_the_hole_is_held() {
        let mut p = pool();
        let mut h = NONE;
        assert_eq!(p.hold(&mut h, SeqNum(0), SeqNum(100), SeqNum(40), b"", true), Hold::Held);
        assert_eq!(p.fin(h), Some(SeqNum(40)));
        assert!(p.sack_blocks(h, SeqNum(0)).as_slice().is_empty(), "a FIN alone is no SACK block");
    }

    #[test]
    fn holes_are_bounded_per_connection_and_slots_per_pool() {
        let mut p = Reassembly::new(1000, 2048); // two slots
        let mut h = NONE;
        let nxt = SeqNum(0);
        for i in 0..MAX_RANGES as u32 {
            assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(10 + 10 * i), b"x", false), Hold::Held);
        }
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(500), b"x", false), Hold::TooManyRanges);
        assert_eq!(p.hold(&mut h, nxt, nxt + 1000, SeqNum(11), b"y", false), Hold::Held, "growing one is fine");
        let mut g = NONE;
        assert_eq!(p.hold(&mut g, nxt, nxt + 1000, SeqNum(5), b"x", false), Hold::Held);
        let mut k = NONE;
        assert_eq!(p.hold(&mut k, nxt, nxt + 1000, SeqNum(5), b"x", false), Hold::PoolFull);
        assert_eq!(k, NONE);
        p.release(&mut g);
        assert_eq!(p.hold(&mut k, nxt, nxt + 1000, SeqNum(5), b"x", false), Hold::Held, "freed slots are reused");
        assert_eq!(p.in_use(), 2);
        assert_eq!(
            Reassembly::new(65535, 0).hold(&mut NONE.clone(), nxt, nxt + 9, SeqNum(1), b"x", false),
            Hold::PoolFull
        );
    }

    use proptest::prelude::*;

    /// The sender's stream: the byte at sequence number `s`, so that anything held can be checked against it.
    fn byte_at(s: SeqNum) -> u8 {
        (s.0.wrapping_mul(2_654_435_761) >> 24) as u8
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A segment `ahead` bytes beyond RCV.NXT, `len` long.
        Arrive { ahead: u32, len: u16, fin: bool },
        /// In-order bytes arrive and the app takes `n` of them (then whatever held bytes follow, as input does).
        InOrder { n: u16, drain: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u32..1200, 0u16..300, proptest::bool::weighted(0.05))
                .prop_map(|(ahead, len, fin)| Op::Arrive { ahead, len, fin }),
            1 => (0u16..400, any::<bool>()).prop_map(|(n, drain)| Op::InOrder { n, drain }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Whatever arrives in whatever order, the pool hands back only the sender's own bytes, in sequence, and
        /// its SACK blocks describe exactly bytes it holds beyond RCV.NXT.
        #[test]
        fn held_bytes_are_the_senders_in_order_and_sack_blocks_tell_the_truth(
            start in any::<u32>(),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            const WINDOW: u32 = 1000;
            let mut p = Reassembly::new(WINDOW, 4096);
            let mut h = NONE;
            let mut nxt = SeqNum(start);
            let mut fin_seen: Option<SeqNum> = None;
            for op in ops {
                match op {
                    Op::Arrive { ahead, len, fin } => {
                        let seq = nxt + ahead;
                        let data: Vec<u8> = (0..u32::from(len)).map(|i| byte_at(seq + i)).collect();
                        // A sender never moves its FIN: one stream, one FIN at most.
                        let fin = fin && fin_seen.is_none_or(|f| f == seq + u32::from(len));
                        let r = p.hold(&mut h, nxt, nxt + WINDOW, seq, &data, fin);
                        if r == Hold::Held && fin && seq + u32::from(len) <= nxt + WINDOW {
                            fin_seen = Some(seq + u32::from(len));
                        }
                        if r == Hold::Held || r == Hold::Duplicate {
                            // Everything of it inside the window (and before a FIN) is held now.
                            let end = (seq + u32::from(len)).min(nxt + WINDOW);
                            let end = p.fin(h).map_or(end, |f| end.min(f));
                            // (Bytes held at RCV.NXT itself, which the app has not taken, are ready, not SACKed.)
                            let blocks = p.sack_blocks(h, nxt);
                            let (a, b) = p.ready(h, nxt);
                            let ready_end = nxt + (a.len() + b.len()) as u32;
                            let mut s = seq;
                            while s < end {
                                let sacked = blocks.as_slice().iter().any(|&(l, r)| SeqNum(l) <= s && s < SeqNum(r));
                                prop_assert!(sacked || s < ready_end,
                                    "byte {:?} of a held segment is in no block {:?} nor ready", s, blocks);
                                s += 1;
                            }
                        }
                    }
                    Op::InOrder { n, drain } => {
                        // The app takes n in-order bytes (they came from the sender, as the pool's must).
                        nxt += u32::from(n);
                        p.settle(&mut h, nxt);
                        if drain {
                            loop {
                                let (a, _) = p.ready(h, nxt);
                                if a.is_empty() {
                                    break;
                                }
                                for (i, &b) in a.iter().enumerate() {
                                    prop_assert_eq!(b, byte_at(nxt + i as u32), "held byte at {:?}", nxt + i as u32);
                                }
                                nxt += a.len() as u32;
                                p.settle(&mut h, nxt);
                            }
                        }
                    }
                }
                // The blocks: non-empty, disjoint, beyond RCV.NXT, inside the window, at most four.
                let blocks = p.sack_blocks(h, nxt);
                let b = blocks.as_slice();
                prop_assert!(b.len() <= 4);
                for (i, &(l, r)) in b.iter().enumerate() {
                    prop_assert!(SeqNum(l) < SeqNum(r) && SeqNum(l) > nxt && SeqNum(r) <= nxt + WINDOW, "{:?} at {:?}", b, nxt);
                    for &(l2, r2) in &b[i + 1..] {
                        prop_assert!(SeqNum(r) < SeqNum(l2) || SeqNum(r2) < SeqNum(l), "overlapping or touching {:?}", b);
                    }
                }
                prop_assert!(p.in_use() <= 1);
                if h == NONE {
                    prop_assert_eq!(p.in_use(), 0, "a freed handle leaves no slot taken");
                }
            }
            p.release(&mut h);
            prop_assert_eq!(p.in_use(), 0);
        }
    }
}
