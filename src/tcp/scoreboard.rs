//! What the peer has SACKed of what we sent, while a loss is being repaired: the scoreboard of RFC 6675.
//!
//! A connection has one only during fast recovery, and only when SACK was negotiated and the peer's ACKs carry
//! blocks; so a TCB keeps a two-byte [`Handle`] into this pool. The pool is bounded
//! ([`Scoreboards::MAX`]); a connection that finds it full repairs its losses as before, one segment per partial
//! ACK.
//!
//! From it come the three things RFC 6675 §4 needs: which octets are lost (`IsLost`: un-SACKed, with more than
//! (DupThresh − 1)·SMSS SACKed octets above them), which to send next (`NextSeg` rule 1: the first lost octet not
//! yet retransmitted, at or above HighRxt; rule 2, new data, is the caller's; rule 3: a hole below a SACKed range
//! that is not yet counted lost), and how much is in the network (`SetPipe`); and, for RFC 6937's proportional
//! rate reduction, how much each ACK lets out: what the ACK says the peer received (DeliveredData) against what
//! this recovery has sent; and whether every retransmission of this recovery has been acknowledged, which makes
//! a partial ACK evidence that the data at SND.UNA, sent before them, was lost (the tail loss that NextSeg rule
//! 4's rescue retransmission is for, repaired on that evidence instead of blindly).
//!
//! One thing RFC 6675 cannot see: a retransmission that is lost too. HighRxt says a hole was resent, not when,
//! so the hole stays "in flight" until the timer fires. The scoreboard therefore remembers its few oldest
//! unacknowledged retransmissions with SND.NXT at the moment each went, and applies IsLost's own rule to what
//! was sent after it: more than (DupThresh − 1)·SMSS octets of that SACKed while the retransmission's hole is
//! still open says it is lost (what RFC 8985's RACK reads from its clocks, read here from the send order; Linux
//! did the same before RACK). What it does not do: detect reneging (the timer, which discards the scoreboard as
//! §5.1 allows, repairs that).

use crate::tcp::seq::SeqNum;

/// A connection's scoreboard: two bytes of its TCB.
pub type Handle = u16;

/// The handle of "no scoreboard".
pub const NONE: Handle = Handle::MAX;

/// SACKed ranges one connection remembers (a receiver reports at most four per ACK; older ones merge).
const MAX_RANGES: usize = 8;
/// RFC 6675 DupThresh.
const DUP_THRESH: u32 = 3;
/// Unacknowledged retransmissions one connection watches for loss (each one segment; later ones wait for the
/// timer as before, and a watched one that is acknowledged makes room).
const MAX_WATCHED: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
struct Range {
    start: SeqNum,
    end: SeqNum,
}

/// A retransmission of this recovery not yet acknowledged: its octets, and SND.NXT when it went.
#[derive(Clone, Copy, Debug, Default)]
struct Resent {
    start: SeqNum,
    end: SeqNum,
    /// Everything at or above this was sent after the retransmission.
    fence: SeqNum,
}

impl Resent {
    /// IsLost's rule applied to what was sent after it: more than (DupThresh − 1)·`smss` octets of that SACKed.
    fn lost(&self, ranges: &[Range], smss: u32) -> bool {
        sacked_above(ranges, self.fence) > (DUP_THRESH - 1) * smss
    }
}

#[derive(Debug, Default)]
struct Board {
    /// Sorted, disjoint, not touching, all inside (SND.UNA, SND.NXT].
    ranges: [Range; MAX_RANGES],
    len: usize,
    /// RFC 6675 HighRxt: the end of what this recovery has retransmitted.
    high_rxt: SeqNum,
    /// The end of this recovery's own retransmissions (HighRxt also moves with SND.UNA, and takes over what
    /// the recovery before resent beyond its end): past `began`, SND.UNA when the recovery began, it says this
    /// recovery has retransmitted something.
    own_rxt: SeqNum,
    began: SeqNum,
    /// SND.UNA and the SACKed octets as of the last ACK: what the next one adds to them was delivered.
    una: SeqNum,
    sacked: u32,
    /// RFC 6937: octets delivered to the peer and octets sent since the recovery began, and the flight then.
    prr_delivered: u32,
    prr_out: u32,
    recover_fs: u32,
    /// The oldest retransmissions still open, sorted by `start`, disjoint.
    watched: [Resent; MAX_WATCHED],
    watched_len: usize,
}

/// The scoreboards of one endpoint's connections in recovery.
#[derive(Debug, Default)]
pub struct Scoreboards {
    boards: Vec<Board>,
    free: Vec<Handle>,
}

impl Scoreboards {
    /// Connections that may hold a scoreboard at once (about 90 bytes each).
    pub const MAX: usize = 4096;

    /// Begins a recovery for the connection whose handle is `h`: HighRxt = `snd_una`, RecoverFS = the flight.
    /// False when every scoreboard is taken.
    pub fn start(&mut self, h: &mut Handle, snd_una: SeqNum, snd_nxt: SeqNum) -> bool {
        if *h == NONE {
            match self.free.pop() {
                Some(i) => *h = i,
                None if self.boards.len() < Self::MAX => {
                    self.boards.push(Board::default());
                    *h = self.boards.len() as Handle - 1;
                }
                None => return false,
            }
        }
        self.boards[*h as usize] = Board {
            high_rxt: snd_una,
            own_rxt: snd_una,
            began: snd_una,
            una: snd_una,
            recover_fs: snd_nxt - snd_una,
            ..Board::default()
        };
        true
    }

    /// Takes in the SACK blocks of an ACK: those inside (SND.UNA, SND.NXT] join the scoreboard (others, D-SACKs
    /// among them, are ignored), and what lies at or below SND.UNA is forgotten. A block that would make more
    /// ranges than the scoreboard holds is dropped: those octets then look un-SACKed, which only costs a
    /// retransmission. Returns RFC 6937's DeliveredData: how far SND.UNA moved since the last ACK, plus the
    /// change in SACKed octets (never below zero: a peer that forgets what it SACKed delivered nothing).
    pub fn update(&mut self, h: Handle, snd_una: SeqNum, snd_nxt: SeqNum, blocks: &[(u32, u32)]) -> u32 {
        let Some(b) = self.boards.get_mut(h as usize) else { return 0 };
        let gone = b.ranges[..b.len].iter().take_while(|r| r.end <= snd_una).count();
        b.ranges.copy_within(gone..b.len, 0);
        b.len -= gone;
        if b.len > 0 && b.ranges[0].start < snd_una {
            b.ranges[0].start = snd_una;
        }
        b.high_rxt = b.high_rxt.max(snd_una);
        // Inside the flight by offsets from SND.UNA: comparisons modulo 2^32 are not transitive, and a block
        // 2^31 away passes `l > una`, `l < r` and `r <= nxt` at once (found by an audit: such blocks made the
        // SACKed octets overflow).
        let flight = snd_nxt - snd_una;
        for &(left, right) in blocks {
            let (l, r) = (SeqNum(left) - snd_una, SeqNum(right) - snd_una);
            if 0 < l && l < r && r <= flight {
                insert(b, Range { start: SeqNum(left), end: SeqNum(right) });
            }
        }
        let (ranges, len) = (b.ranges, b.len);
        let open = |w: &mut Resent| {
            w.start = w.start.max(snd_una);
            first_open(&ranges[..len], w.start, w.end).is_some()
        };
        let mut kept = 0;
        for i in 0..b.watched_len {
            let mut w = b.watched[i];
            if open(&mut w) {
                b.watched[kept] = w;
                kept += 1;
            }
        }
        b.watched_len = kept;
        let sacked: u32 = b.ranges[..b.len].iter().map(|r| r.end - r.start).sum();
        let before = u64::from(b.sacked);
        let delivered = (u64::from(snd_una - b.una.min(snd_una)) + u64::from(sacked)).saturating_sub(before);
        (b.una, b.sacked) = (b.una.max(snd_una), sacked);
        delivered.min(u64::from(u32::MAX)) as u32
    }

    /// RFC 6937 §3, on an ACK of the recovery that brought `delivered` octets (see [`Scoreboards::update`]), with
    /// `pipe` octets in the network and the recovery's target `ssthresh`: how many octets may go out now
    /// (`sndcnt`; cwnd = pipe + sndcnt). While pipe is above ssthresh, sends follow deliveries in proportion
    /// ssthresh / RecoverFS, so the flight shrinks smoothly to ssthresh over the round trip instead of stopping;
    /// once heavy losses bring it below, slow start's pace (PRR-SSRB: what was delivered and not yet matched by a
    /// send, or this ACK's delivery, plus one segment) refills it up to ssthresh, no further.
    pub fn prr_quota(&mut self, h: Handle, delivered: u32, pipe: u32, ssthresh: u32, smss: u32) -> u32 {
        let Some(b) = self.boards.get_mut(h as usize) else { return 0 };
        b.prr_delivered = b.prr_delivered.saturating_add(delivered);
        if pipe > ssthresh {
            let target = (u64::from(b.prr_delivered) * u64::from(ssthresh)).div_ceil(u64::from(b.recover_fs.max(1)));
            target.saturating_sub(u64::from(b.prr_out)).min(u64::from(u32::MAX)) as u32
        } else {
            let limit = b.prr_delivered.saturating_sub(b.prr_out).max(delivered).saturating_add(smss);
            (ssthresh - pipe).min(limit)
        }
    }

    /// SACKed octets above SND.UNA as of the last ACK.
    pub fn sacked(&self, h: Handle) -> u32 {
        self.boards.get(h as usize).map_or(0, |b| b.sacked)
    }

    /// Notes `n` octets of new data sent in this recovery: RFC 6937's prr_out (retransmissions count through
    /// [`Scoreboards::retransmitted`]).
    pub fn prr_sent(&mut self, h: Handle, n: u32) {
        if let Some(b) = self.boards.get_mut(h as usize) {
            b.prr_out = b.prr_out.saturating_add(n);
        }
    }

    /// The recovery's HighRxt.
    pub fn high_rxt(&self, h: Handle) -> Option<SeqNum> {
        self.boards.get(h as usize).map(|b| b.high_rxt)
    }

    /// Whether this recovery has retransmitted something and `snd_una` covers all of it: every octet below the
    /// recovery point was sent before any of those retransmissions.
    pub fn all_resent_acked(&self, h: Handle, snd_una: SeqNum) -> bool {
        self.boards.get(h as usize).is_some_and(|b| b.began < b.own_rxt && b.own_rxt <= snd_una)
    }

    /// Notes that the octets up to `end` were retransmitted by the recovery before this one (and are in flight
    /// again): HighRxt, but not this recovery's own.
    pub fn resent_before(&mut self, h: Handle, end: SeqNum) {
        if let Some(b) = self.boards.get_mut(h as usize) {
            b.high_rxt = b.high_rxt.max(end);
        }
    }

    /// Notes that the octets from `start` to `end` have been retransmitted in this recovery, when everything
    /// below `snd_nxt` had been sent: they count as sent for RFC 6937 (prr_out), a watched retransmission there is
    /// watched again from now on, and a new one is watched if there is room.
    pub fn retransmitted(&mut self, h: Handle, start: SeqNum, end: SeqNum, snd_nxt: SeqNum) {
        let Some(b) = self.boards.get_mut(h as usize) else { return };
        b.prr_out = b.prr_out.saturating_add(end - start);
        b.high_rxt = b.high_rxt.max(end);
        b.own_rxt = b.own_rxt.max(end);
        let watched = &mut b.watched[..b.watched_len];
        // (What such a resend covers beyond the watched one, if anything, is not watched: they stay disjoint.)
        if let Some(w) = watched.iter_mut().find(|w| w.start <= start && start < w.end) {
            w.fence = snd_nxt;
            return;
        }
        if b.watched_len == MAX_WATCHED || start >= end {
            return;
        }
        // Kept sorted and disjoint: one that runs into the next watched one is cut where that one begins.
        let at = watched.iter().take_while(|w| w.start < start).count();
        let end = watched.get(at).map_or(end, |next| end.min(next.start));
        b.watched.copy_within(at..b.watched_len, at + 1);
        b.watched[at] = Resent { start, end, fence: snd_nxt };
        b.watched_len += 1;
    }

    /// A retransmission of this recovery that is lost too, by IsLost's rule applied to what was sent after it
    /// (more than (DupThresh − 1)·`smss` octets of that SACKed while its octets are not): the oldest such, as
    /// the first of its octets still open and how many follow before a SACKed range or its end.
    pub fn lost_retransmission(&self, h: Handle, smss: u32) -> Option<(SeqNum, u32)> {
        let b = self.boards.get(h as usize)?;
        let ranges = &b.ranges[..b.len];
        b.watched[..b.watched_len]
            .iter()
            .filter(|w| w.lost(ranges, smss))
            .find_map(|w| first_open(ranges, w.start, w.end))
    }

    /// NextSeg rule 1: the first lost octet at or above HighRxt (and SND.UNA), and how many un-SACKed octets
    /// follow it before the next SACKed range.
    pub fn next_lost(&self, h: Handle, snd_una: SeqNum, smss: u32) -> Option<(SeqNum, u32)> {
        let b = self.boards.get(h as usize)?;
        let lost_below = lost_below(b, snd_una, smss);
        let mut at = b.high_rxt.max(snd_una);
        for r in &b.ranges[..b.len] {
            if at < r.start {
                return (at < lost_below).then(|| (at, r.start.min(lost_below) - at));
            }
            at = at.max(r.end);
        }
        None
    }

    /// NextSeg rule 3, once rules 1 and 2 have nothing: the first un-SACKed octet at or above HighRxt (and
    /// SND.UNA) that lies below some SACKed range, lost or not yet, and how many un-SACKed octets follow it.
    pub fn next_hole(&self, h: Handle, snd_una: SeqNum) -> Option<(SeqNum, u32)> {
        let b = self.boards.get(h as usize)?;
        let mut at = b.high_rxt.max(snd_una);
        for r in &b.ranges[..b.len] {
            if at < r.start {
                return Some((at, r.start - at));
            }
            at = at.max(r.end);
        }
        None
    }

    /// SetPipe: the octets between SND.UNA and SND.NXT the network still holds by this scoreboard's reckoning.
    /// Each un-SACKed octet counts once if it is not lost, and once more if it has been retransmitted.
    pub fn pipe(&self, h: Handle, snd_una: SeqNum, snd_nxt: SeqNum, smss: u32) -> u32 {
        let Some(b) = self.boards.get(h as usize) else { return snd_nxt - snd_una };
        let lost_below = lost_below(b, snd_una, smss);
        let mut pipe = 0;
        let mut at = snd_una;
        let holes = b.ranges[..b.len].iter().map(|r| (r.start, r.end)).chain(core::iter::once((snd_nxt, snd_nxt)));
        for (start, end) in holes {
            if at < start {
                let not_lost = start - at.max(lost_below).min(start);
                let resent = b.high_rxt.min(start).max(at) - at;
                pipe += not_lost + resent;
            }
            at = at.max(end);
        }
        // A retransmission found lost is no longer in the network either (it was counted once, as resent).
        let ranges = &b.ranges[..b.len];
        let lost_again: u32 = b.watched[..b.watched_len]
            .iter()
            .filter(|w| w.lost(ranges, smss))
            .map(|w| (w.end - w.start) - sacked_within(ranges, w.start, w.end))
            .sum();
        pipe.saturating_sub(lost_again)
    }

    /// Frees the scoreboard of `h` (if any) and sets `h` to [`NONE`].
    pub fn release(&mut self, h: &mut Handle) {
        if (*h as usize) < self.boards.len() {
            self.free.push(*h);
        }
        *h = NONE;
    }

    /// Scoreboards in use now.
    pub fn in_use(&self) -> usize {
        self.boards.len() - self.free.len()
    }
}

/// IsLost(s) holds for every un-SACKed octet s below the returned sequence number: the start of the highest
/// range whose octets, with those of every range above it, exceed (DupThresh − 1)·SMSS.
fn lost_below(b: &Board, snd_una: SeqNum, smss: u32) -> SeqNum {
    let mut sacked = 0u32;
    for r in b.ranges[..b.len].iter().rev() {
        sacked += r.end - r.start;
        if sacked > (DUP_THRESH - 1) * smss {
            return r.start;
        }
    }
    snd_una
}

/// SACKed octets at or above `fence`.
fn sacked_above(ranges: &[Range], fence: SeqNum) -> u32 {
    ranges.iter().filter(|r| r.end > fence).map(|r| r.end - r.start.max(fence)).sum()
}

/// SACKed octets from `start` to `end`.
fn sacked_within(ranges: &[Range], start: SeqNum, end: SeqNum) -> u32 {
    ranges.iter().filter(|r| r.start < end && r.end > start).map(|r| r.end.min(end) - r.start.max(start)).sum()
}

/// The first octet from `start` to `end` that no SACKed range covers, and how many un-SACKed octets follow it
/// there.
fn first_open(ranges: &[Range], start: SeqNum, end: SeqNum) -> Option<(SeqNum, u32)> {
    let mut at = start;
    for r in ranges {
        if at >= end || r.start >= end {
            break;
        }
        if at < r.start {
            return Some((at, r.start - at));
        }
        at = at.max(r.end);
    }
    (at < end).then(|| (at, end - at))
}

/// Adds `new` to the sorted ranges of `b`, merging what it overlaps or touches; dropped if there is no room.
fn insert(b: &mut Board, mut new: Range) {
    let mut out = [Range::default(); MAX_RANGES];
    let mut n = 0;
    let mut placed = false;
    for &r in &b.ranges[..b.len] {
        let item = if r.end < new.start {
            r
        } else if new.end < r.start {
            if !placed {
                if n == MAX_RANGES {
                    return;
                }
                out[n] = new;
                n += 1;
                placed = true;
            }
            r
        } else {
            new.start = new.start.min(r.start);
            new.end = new.end.max(r.end);
            continue;
        };
        if n == MAX_RANGES {
            return;
        }
        out[n] = item;
        n += 1;
    }
    if !placed {
        if n == MAX_RANGES {
            return;
        }
        out[n] = new;
        n += 1;
    }
    b.ranges = out;
    b.len = n;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 100;

    fn board(una: u32, nxt: u32, blocks: &[(u32, u32)]) -> (Scoreboards, Handle) {
        let mut s = Scoreboards::default();
        let mut h = NONE;
        assert!(s.start(&mut h, SeqNum(una), SeqNum(nxt)));
        s.update(h, SeqNum(una), SeqNum(nxt), blocks);
        (s, h)
    }

    #[test]
    fn rfc6675_islost_needs_more_than_two_segments_sacked_above() {
        // Flight 0..1000 in segments of 100; 100..200 lost, 200..400 SACKed: only two segments above it.
        let (s, h) = board(0, 1000, &[(200, 400)]);
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), None, "not lost yet");
        // A third SACKed segment above: 0..200 (un-SACKed) is lost now, and NextSeg starts at SND.UNA.
        let (s, h) = board(0, 1000, &[(200, 400), (500, 600)]);
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), Some((SeqNum(0), 200)));
    }

    #[test]
    fn rfc6675_nextseg_skips_sacked_and_retransmitted_octets() {
        let (mut s, h) = board(0, 1000, &[(100, 200), (300, 400), (500, 900)]);
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), Some((SeqNum(0), 100)));
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(1000));
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), Some((SeqNum(200), 100)), "the next hole");
        s.retransmitted(h, SeqNum(200), SeqNum(300), SeqNum(1000));
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), Some((SeqNum(400), 100)));
        s.retransmitted(h, SeqNum(400), SeqNum(500), SeqNum(1000));
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), None, "above the highest SACKed range nothing is lost");
    }

    #[test]
    fn rfc6675_nextseg_rule_3_offers_a_hole_not_yet_lost_below_a_sacked_range() {
        // 100..200 SACKed alone: the hole below it is not lost (one segment above), but rule 3 offers it.
        let (mut s, h) = board(0, 1000, &[(100, 200)]);
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), None);
        assert_eq!(s.next_hole(h, SeqNum(0)), Some((SeqNum(0), 100)));
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(1000));
        assert_eq!(s.next_hole(h, SeqNum(0)), None, "above the highest SACKed range there is no hole");
    }

    #[test]
    fn rfc6675_setpipe_counts_what_is_neither_sacked_nor_lost_and_what_was_resent() {
        let (mut s, h) = board(0, 1000, &[(100, 200), (300, 400), (500, 900)]);
        // Lost: 0..100, 200..300, 400..500 (over 200 octets SACKed above each); in flight: 900..1000.
        assert_eq!(s.pipe(h, SeqNum(0), SeqNum(1000), MSS), 100);
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(1000));
        s.retransmitted(h, SeqNum(200), SeqNum(300), SeqNum(1000));
        // 0..100 and 200..300 resent (counted once each, lost); 900..1000 still out.
        assert_eq!(s.pipe(h, SeqNum(0), SeqNum(1000), MSS), 300);
    }

    #[test]
    fn rfc6937_delivered_data_is_the_advance_of_snd_una_plus_the_change_in_sacked_octets() {
        let mut s = Scoreboards::default();
        let mut h = NONE;
        assert!(s.start(&mut h, SeqNum(0), SeqNum(1000)));
        assert_eq!(s.update(h, SeqNum(0), SeqNum(1000), &[(200, 400)]), 200);
        assert_eq!(s.update(h, SeqNum(0), SeqNum(1000), &[(200, 500)]), 100, "only the octets newly SACKed");
        assert_eq!(s.update(h, SeqNum(0), SeqNum(1000), &[(200, 500)]), 0, "a repeated block delivers nothing");
        // SND.UNA jumps to 500 over the SACKed range: 500 octets acknowledged, 300 of which were counted before.
        assert_eq!(s.update(h, SeqNum(500), SeqNum(1000), &[]), 200);
    }

    #[test]
    fn rfc6937_sndcnt_follows_deliveries_in_proportion_above_ssthresh_and_like_slow_start_below() {
        let mut s = Scoreboards::default();
        let mut h = NONE;
        // RecoverFS 2000, ssthresh 1000: one octet out for every two delivered while pipe stays above ssthresh.
        assert!(s.start(&mut h, SeqNum(0), SeqNum(2000)));
        s.prr_sent(h, MSS); // the fast retransmit
        assert_eq!(s.prr_quota(h, 300, 1700, 1000, MSS), 50, "ceil(300 · 1000 / 2000) - 100");
        s.prr_sent(h, 50);
        assert_eq!(s.prr_quota(h, 100, 1650, 1000, MSS), 50);
        assert_eq!(s.prr_quota(h, 0, 1650, 1000, MSS), 50, "unchanged until something is sent");
        // Heavy losses took pipe below ssthresh: PRR-SSRB refills up to ssthresh, at most what was delivered and
        // not yet sent (here 400 - 150), or this ACK's delivery, plus one segment.
        assert_eq!(s.prr_quota(h, 0, 500, 1000, MSS), 350);
        assert_eq!(s.prr_quota(h, 0, 950, 1000, MSS), 50, "never past ssthresh");
    }

    #[test]
    fn blocks_outside_the_flight_are_ignored_and_what_is_acknowledged_is_forgotten() {
        let (mut s, h) = board(1000, 2000, &[(900, 1100), (1500, 2100), (1200, 1100), (1300, 1400)]);
        assert_eq!(s.pipe(h, SeqNum(1000), SeqNum(2000), MSS), 900, "only 1300..1400 is SACKed");
        s.update(h, SeqNum(1350), SeqNum(2000), &[(1400, 1600)]);
        // SND.UNA moved to 1350: 1350..1400 stays SACKed, 1400..1600 joins it, and 1600..2000 is what is out.
        assert_eq!(s.pipe(h, SeqNum(1350), SeqNum(2000), MSS), 400);
    }

    #[test]
    fn blocks_half_the_sequence_space_away_are_not_inside_the_flight() {
        // Each of these passes `l > una`, `l < r` and `r <= nxt` in sequence-number order, which is not
        // transitive; together they used to overflow the count of SACKed octets (a panic in a debug build).
        let (una, nxt) = (1_000u32, 1_100u32);
        let far = una.wrapping_add(1 << 31);
        let blocks = [(una + 1, una + 3), (nxt + 1, una.wrapping_add((1 << 31) + 100)), (far - 1, una.wrapping_sub(2))];
        let (s, h) = board(una, nxt, &blocks);
        assert_eq!(s.sacked(h), 2, "only the block inside the flight");
        assert_eq!(s.pipe(h, SeqNum(una), SeqNum(nxt), MSS), 98);
    }

    #[test]
    fn sequence_numbers_wrap_and_ranges_merge() {
        let una = u32::MAX - 150;
        let (mut s, h) = board(una, 850, &[(u32::MAX - 50, 50), (100, 200)]);
        s.update(h, SeqNum(una), SeqNum(850), &[(50, 100), (300, 400)]);
        // SACKed: MAX-50..200 merged (251 octets) and 300..400; the 100 octets from SND.UNA are lost.
        assert_eq!(s.next_lost(h, SeqNum(una), MSS), Some((SeqNum(una), 100)));
    }

    #[test]
    fn only_this_recoverys_own_retransmissions_count_as_acknowledged() {
        let (mut sb, h) = board(1000, 9000, &[]);
        assert!(!sb.all_resent_acked(h, SeqNum(3000)), "nothing retransmitted yet");
        // What the recovery before resent is HighRxt, but not this recovery's: data below the recovery point
        // may have been sent after it.
        sb.resent_before(h, SeqNum(2000));
        assert_eq!(sb.high_rxt(h), Some(SeqNum(2000)));
        assert!(!sb.all_resent_acked(h, SeqNum(3000)));
        sb.update(h, SeqNum(3000), SeqNum(9000), &[]);
        assert!(!sb.all_resent_acked(h, SeqNum(3000)), "HighRxt moving with SND.UNA is no retransmission");
        sb.retransmitted(h, SeqNum(3000), SeqNum(4000), SeqNum(9000));
        assert!(!sb.all_resent_acked(h, SeqNum(3999)), "not yet all acknowledged");
        assert!(sb.all_resent_acked(h, SeqNum(4000)));
    }

    #[test]
    fn a_retransmission_is_lost_once_more_than_two_segments_sent_after_it_are_sacked() {
        // 0..100 lost and resent when SND.NXT was 1000; new data 1000..1400 goes after it.
        let (mut s, h) = board(0, 1000, &[(100, 400)]);
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(1000));
        assert_eq!(s.pipe(h, SeqNum(0), SeqNum(1000), MSS), 700, "100..400 SACKed; 0..100 resent; 400..1000 out");
        s.update(h, SeqNum(0), SeqNum(1400), &[(100, 400), (1000, 1200)]);
        assert_eq!(s.lost_retransmission(h, MSS), None, "two segments sent after it SACKed: not yet");
        s.update(h, SeqNum(0), SeqNum(1400), &[(100, 400), (1000, 1300)]);
        assert_eq!(s.lost_retransmission(h, MSS), Some((SeqNum(0), 100)), "three: lost too");
        // It is out of the network: the pipe no longer counts it. Sent again, it is watched from the new SND.NXT.
        let pipe = s.pipe(h, SeqNum(0), SeqNum(1400), MSS);
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(1400));
        assert_eq!(s.lost_retransmission(h, MSS), None);
        assert_eq!(s.pipe(h, SeqNum(0), SeqNum(1400), MSS), pipe + 100);
        assert_eq!(s.next_lost(h, SeqNum(0), MSS), Some((SeqNum(400), 600)), "HighRxt did not move back");
        // Acknowledged, it is forgotten.
        s.update(h, SeqNum(400), SeqNum(1400), &[(1000, 1300)]);
        assert_eq!(s.lost_retransmission(h, MSS), None);
    }

    #[test]
    fn a_sacked_retransmission_is_not_lost_and_later_ones_are_judged_by_their_own_fence() {
        let (mut s, h) = board(0, 2000, &[(100, 200), (300, 400), (500, 600), (700, 800)]);
        s.retransmitted(h, SeqNum(0), SeqNum(100), SeqNum(2000));
        s.retransmitted(h, SeqNum(200), SeqNum(300), SeqNum(2000));
        s.retransmitted(h, SeqNum(400), SeqNum(500), SeqNum(2200));
        // What was sent after the first two (2000..2400) is SACKed, and so is the second: the first is lost;
        // the third went later, and only 200 octets sent after it are SACKed.
        s.update(h, SeqNum(0), SeqNum(2400), &[(200, 300), (2000, 2400)]);
        assert_eq!(s.lost_retransmission(h, MSS), Some((SeqNum(0), 100)));
        s.update(h, SeqNum(400), SeqNum(2400), &[(2000, 2400)]);
        assert_eq!(s.lost_retransmission(h, MSS), None);
        s.update(h, SeqNum(400), SeqNum(2500), &[(2000, 2500)]);
        assert_eq!(s.lost_retransmission(h, MSS), Some((SeqNum(400), 100)));
    }

    #[test]
    fn at_most_four_retransmissions_are_watched_and_an_acknowledged_one_makes_room() {
        let (mut s, h) = board(0, 2000, &[(1900, 2000)]);
        for i in 0..6 {
            s.retransmitted(h, SeqNum(i * 100), SeqNum(i * 100 + 100), SeqNum(2000 + i * 100));
        }
        // Everything sent after the fourth is SACKed (2300..2600): the four watched are lost, the fifth and
        // sixth, not watched, are not said to be.
        s.update(h, SeqNum(0), SeqNum(2600), &[(2300, 2600)]);
        assert_eq!(s.lost_retransmission(h, MSS), Some((SeqNum(0), 100)));
        s.update(h, SeqNum(400), SeqNum(2600), &[]);
        assert_eq!(s.lost_retransmission(h, MSS), None, "the four are acknowledged; the others not watched");
        s.retransmitted(h, SeqNum(400), SeqNum(500), SeqNum(2600));
        s.update(h, SeqNum(400), SeqNum(3000), &[(2600, 2900)]);
        assert_eq!(s.lost_retransmission(h, MSS), Some((SeqNum(400), 100)), "room again");
    }

    #[test]
    fn the_pool_is_bounded_and_reuses_what_is_freed() {
        let mut s = Scoreboards::default();
        let mut hs: Vec<Handle> = (0..Scoreboards::MAX).map(|_| NONE).collect();
        for h in &mut hs {
            assert!(s.start(h, SeqNum(0), SeqNum(10)));
        }
        let mut extra = NONE;
        assert!(!s.start(&mut extra, SeqNum(0), SeqNum(10)));
        s.release(&mut hs[7]);
        assert!(s.start(&mut extra, SeqNum(0), SeqNum(10)));
        assert_eq!(s.in_use(), Scoreboards::MAX);
        // A connection restarting recovery reuses its own scoreboard.
        let before = hs[3];
        assert!(s.start(&mut hs[3], SeqNum(5), SeqNum(20)));
        assert_eq!(hs[3], before);
    }
}
