//! Where a connection's frames go: the peer's MAC address and 802.1Q VLAN, kept once per endpoint for all the
//! connections that share them, as Linux's sockets point at a route and neighbour entry rather than copy them.
//!
//! Behind a router, or from one load generator, every connection has the same next hop; eight bytes of MAC and
//! VLAN in each TCB would be the same eight bytes a million times. A TCB keeps a two-byte [`Hop`] instead, which
//! keeps an established connection within its memory budget. A hop is counted by the live connections that use
//! it; one no connection uses stays known (so the next connection from it costs no insert) until a new hop
//! needs its place. Only completed handshakes and our own connects create hops, so a SYN flood from spoofed MACs
//! adds none; a table full of hops in use refuses the connection that would need one more (counted).

use crate::wire::MacAddr;
use hashbrown::HashTable;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// A connection's next hop in the pool: two bytes of its TCB.
pub type Hop = u16;

/// A peer's link-layer address: its MAC and the VLAN its frames carry, if any.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NextHop {
    pub mac: MacAddr,
    pub vlan: Option<u16>,
}

struct Entry {
    hop: NextHop,
    /// Live connections using it.
    users: u32,
}

/// The next hops of one endpoint's live connections.
pub struct NextHops {
    entries: Vec<Entry>,
    /// Positions in `entries`, by the keyed hash of their hop (a hop's MAC is the peer's choice).
    index: HashTable<Hop>,
    sip: SipHasher13,
    /// The hop acquired last: nearly every connection shares it, and it is checked before hashing.
    last: Hop,
    /// Entries no live connection uses.
    unused: usize,
}

impl NextHops {
    /// Distinct next hops at once: every [`Hop`] value.
    pub const MAX: usize = Hop::MAX as usize + 1;

    /// An empty pool; `hash_key` keys its index.
    pub fn new(hash_key: [u8; 16]) -> Self {
        NextHops {
            entries: Vec::new(),
            index: HashTable::new(),
            sip: SipHasher13::new_with_key(&hash_key),
            last: 0,
            unused: 0,
        }
    }

    /// The hop of `mac` and `vlan` for one more connection, or None when all [`NextHops::MAX`] are in use.
    pub fn acquire(&mut self, mac: MacAddr, vlan: Option<u16>) -> Option<Hop> {
        let hop = NextHop { mac, vlan };
        let found = match self.entries.get(self.last as usize) {
            Some(e) if e.hop == hop => Some(self.last),
            _ => {
                let entries = &self.entries;
                self.index.find(self.hash(&hop), |&i| entries[i as usize].hop == hop).copied()
            }
        };
        let i = match found {
            Some(i) => i,
            None => self.insert(hop)?,
        };
        let e = &mut self.entries[i as usize];
        if e.users == 0 {
            self.unused -= 1;
        }
        e.users += 1;
        self.last = i;
        Some(i)
    }

    /// One connection less uses `hop`.
    pub fn release(&mut self, hop: Hop) {
        let e = &mut self.entries[hop as usize];
        debug_assert!(e.users > 0, "NextHops::release of hop {hop}, which no connection uses");
        e.users = e.users.saturating_sub(1);
        if e.users == 0 {
            self.unused += 1;
        }
    }

    /// The MAC and VLAN of `hop`.
    #[inline]
    pub fn get(&self, hop: Hop) -> NextHop {
        self.entries[hop as usize].hop
    }

    /// Next hops known (in use or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<Entry>() + self.index.allocation_size()
    }

    /// A new entry for `hop` (not yet known), with no users: appended, or in place of one nobody uses once the
    /// pool is full.
    fn insert(&mut self, hop: NextHop) -> Option<Hop> {
        let i = if self.entries.len() < Self::MAX {
            self.entries.push(Entry { hop, users: 0 });
            self.unused += 1;
            (self.entries.len() - 1) as Hop
        } else {
            if self.unused == 0 {
                return None;
            }
            // Rare (65 536 distinct peers' MACs seen), so a scan rather than a free list kept on every release.
            let i = self.entries.iter().position(|e| e.users == 0)? as Hop;
            let old = self.entries[i as usize].hop;
            let hash = self.hash(&old);
            if let Ok(slot) = self.index.find_entry(hash, |&j| j == i) {
                slot.remove();
            }
            self.entries[i as usize].hop = hop;
            i
        };
        let hash = self.hash(&hop);
        let Self { entries, index, sip, .. } = self;
        index.insert_unique(hash, i, |&j| hash_with(sip, &entries[j as usize].hop));
        Some(i)
    }

    #[inline]
    fn hash(&self, hop: &NextHop) -> u64 {
        hash_with(&self.sip, hop)
    }
}

#[inline]
fn hash_with(sip: &SipHasher13, hop: &NextHop) -> u64 {
    let mut h = *sip;
    let [a, b, c, d, e, f] = hop.mac.0;
    h.write_u64(u64::from_le_bytes([a, b, c, d, e, f, 0, 0]) | (u64::from(hop.vlan.map_or(0, |v| v | 0x8000)) << 48));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u32) -> MacAddr {
        let b = i.to_be_bytes();
        MacAddr([0x02, 0, b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn connections_of_one_peer_share_its_hop_and_vlans_are_apart() {
        let mut p = NextHops::new([7; 16]);
        let a = p.acquire(mac(1), None).unwrap();
        assert_eq!(p.acquire(mac(1), None), Some(a));
        let tagged = p.acquire(mac(1), Some(10)).unwrap();
        let other = p.acquire(mac(2), Some(10)).unwrap();
        assert!(a != tagged && tagged != other && a != other);
        assert_eq!(p.get(tagged), NextHop { mac: mac(1), vlan: Some(10) });
        assert_eq!(p.get(a), NextHop { mac: mac(1), vlan: None });
        // Looked up by hash, not only through the last-acquired shortcut.
        assert_eq!(p.acquire(mac(1), None), Some(a));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn a_hop_nobody_uses_stays_known_until_its_place_is_needed() {
        let mut p = NextHops::new([7; 16]);
        let a = p.acquire(mac(1), None).unwrap();
        p.release(a);
        assert_eq!(p.acquire(mac(1), None), Some(a), "known hops cost no insert");
        p.release(a);
        for i in 2..=NextHops::MAX as u32 {
            p.acquire(mac(i), None).unwrap();
        }
        assert_eq!(p.len(), NextHops::MAX);
        // Full: the one unused entry gives its place; then nothing is left to give.
        let b = p.acquire(mac(0x10_dead), None).unwrap();
        assert_eq!(b, a);
        assert_eq!(p.get(b).mac, mac(0x10_dead));
        assert_eq!(p.acquire(mac(0x10_beef), None), None, "every hop in use: refused");
        // The evicted hop is gone from the index: asking for it again needs a place too.
        assert_eq!(p.acquire(mac(1), None), None);
        p.release(b);
        assert_eq!(p.acquire(mac(1), None), Some(a));
        assert_eq!(p.acquire(mac(0x10_dead), None), None);
    }
}
