//! A memory of the cookie ACKs that opened connections, so that a copy of one arriving after its connection has
//! gone (a network duplicate, or a capture replayed by someone who can spoof the client) does not open the
//! connection again and re-run whatever its first data asked for.
//!
//! A cookie validates for one to two [`crate::tcp::cookie::PERIOD`]s (64–128 s) and a stateless listener holds
//! nothing per handshake, so without this the same ACK opens a fresh connection every time it arrives in that
//! window (Linux has the same hole, narrowed by accepting cookies only shortly after its SYN queue overflowed;
//! here every passive ISN is a cookie). The handshake's ACK is identified by the flow, the client's ISN and our
//! ISN (the cookie itself, which already depends on the clock slot), hashed under a secret key: the low bits
//! choose an entry, 32 other bits are its fingerprint.
//!
//! It is a fixed-size, direct-mapped table: a newer handshake landing on the same entry overwrites the older
//! fingerprint, so the memory fades rather than grows. A record survives `t` seconds at `r` accepted handshakes
//! per second with probability about `exp(-r·t/entries)`: with the default 2^20 entries (4 MiB, allocated as
//! zero pages the kernel maps only once written) a replay two minutes later is refused with probability 0.89 at
//! 1 000 new connections a second and 0.18 at 15 000; at hundreds of thousands a second, for the last few
//! seconds only. It never refuses a fresh handshake except on a fingerprint collision: 2^-32 per handshake.

use core::hash::{Hash, Hasher};
use siphasher::sip::SipHasher13;

/// Where a handshake lands in the filter, and what it leaves there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    slot: usize,
    fingerprint: u32,
}

pub struct ReplayFilter {
    /// Fingerprints, 0 = empty. Empty (no allocation) when the filter is off.
    slots: Vec<u32>,
    mask: usize,
    sip: SipHasher13,
}

impl ReplayFilter {
    /// A filter of `entries` rounded down to a power of two (0: off, every lookup says "new").
    pub fn new(entries: usize, hash_key: [u8; 16]) -> Self {
        let n = if entries == 0 { 0 } else { 1usize << entries.min(1 << 30).ilog2() };
        ReplayFilter { slots: vec![0; n], mask: n.saturating_sub(1), sip: SipHasher13::new_with_key(&hash_key) }
    }

    /// The mark of the handshake ACK of `flow` with client ISN `irs` and our ISN `iss`.
    #[inline]
    pub fn mark<K: Hash>(&self, flow: &K, irs: u32, iss: u32) -> Mark {
        let mut h = self.sip;
        flow.hash(&mut h);
        h.write_u64(u64::from(irs) << 32 | u64::from(iss));
        let v = h.finish();
        Mark { slot: v as usize & self.mask, fingerprint: ((v >> 32) as u32).max(1) }
    }

    /// Whether a handshake with this mark has opened a connection (and is still remembered).
    #[inline]
    pub fn contains(&self, m: Mark) -> bool {
        self.slots.get(m.slot) == Some(&m.fingerprint)
    }

    /// Remembers that the handshake with this mark opened a connection.
    #[inline]
    pub fn insert(&mut self, m: Mark) {
        if let Some(slot) = self.slots.get_mut(m.slot) {
            *slot = m.fingerprint;
        }
    }

    /// Bytes reserved (the pages actually touched are fewer until the filter has filled).
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ReplayFilter {
        /// Looks up and records in one step: true if the handshake was not remembered.
        fn first_time<K: Hash>(&mut self, flow: &K, irs: u32, iss: u32) -> bool {
            let m = self.mark(flow, irs, iss);
            let new = !self.contains(m);
            self.insert(m);
            new
        }
    }

    #[test]
    fn a_handshake_is_new_once_and_a_replay_is_recognised() {
        let mut f = ReplayFilter::new(1 << 10, [7; 16]);
        assert!(f.first_time(&("10.0.0.2", 40000u16), 1000, 0xdead_beef));
        assert!(!f.first_time(&("10.0.0.2", 40000u16), 1000, 0xdead_beef), "the same ACK again");
        assert!(f.first_time(&("10.0.0.2", 40000u16), 1001, 0xdead_beef), "another client ISN");
        assert!(f.first_time(&("10.0.0.2", 40000u16), 1000, 0xdead_bef0), "another cookie");
        assert!(f.first_time(&("10.0.0.2", 40001u16), 1000, 0xdead_beef), "another flow");
    }

    #[test]
    fn off_means_every_handshake_is_new() {
        let mut f = ReplayFilter::new(0, [7; 16]);
        assert!(f.first_time(&1u8, 1, 2) && f.first_time(&1u8, 1, 2));
        assert_eq!(f.memory_bytes(), 0);
    }

    #[test]
    fn size_is_rounded_down_to_a_power_of_two() {
        assert_eq!(ReplayFilter::new(1000, [0; 16]).memory_bytes(), 512 * 4);
        assert_eq!(ReplayFilter::new(1, [0; 16]).memory_bytes(), 4);
    }

    #[test]
    fn fresh_handshakes_are_not_refused_when_the_table_is_full() {
        // 64 k distinct handshakes through 1 k entries: each is new (a collision would need 32 equal bits), and
        // the most recent ones are still remembered.
        let mut f = ReplayFilter::new(1 << 10, [3; 16]);
        for i in 0..65_536u32 {
            assert!(f.first_time(&i, i.wrapping_mul(2_654_435_761), !i), "handshake {i}");
        }
        let remembered = (65_536 - 64..65_536u32).filter(|&i| !f.first_time(&i, i.wrapping_mul(2_654_435_761), !i));
        assert!(remembered.count() >= 56, "most of the last 64 survive in 1024 entries");
    }
}
