//! Which tuples this endpoint holds, published for the XDP program that answers SYNs in the kernel.
//!
//! When the steering program answers a SYN itself (a cookie SYN-ACK sent with `XDP_TX`, see bpf/steer.bpf.c),
//! it must not do so for a tuple this endpoint already holds: a SYN to a live connection is RFC 5961 §4's
//! business (a challenge ACK), and one to a TIME-WAIT entry is RFC 6191's (reopen or re-ACK). Those SYNs must
//! reach the worker. So every tuple in the connection table or in TIME-WAIT is counted in a table of byte
//! cells shared with the program: a keyed hash of the tuple picks a cell, the worker increments it when the
//! tuple arrives and decrements it when it leaves, and the program hands every SYN whose cell is nonzero to the
//! worker. Collisions only send more SYNs the slow way. A cell that reaches 255 stays there (it can no longer
//! tell how many tuples share it), which errs the same safe way.
//!
//! The cells are plain memory to the core: the runtime lends them (an mmap of a BPF array, see
//! `io::presence`); tests lend a `Vec`. The core never learns where they live.

use crate::tcp::flow::FlowKey;
use core::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Memory shared with whoever reads the cells. Each endpoint gets its own region (one per receive queue).
pub trait PresenceCells: Send + Sync {
    /// The cells; the length is a power of two.
    fn cells(&self) -> &[AtomicU8];
}

/// Cells in ordinary memory, for tests and for endpoints nobody reads.
pub struct OwnedCells(Box<[AtomicU8]>);

impl OwnedCells {
    /// `1 << log2` zeroed cells.
    pub fn new(log2: u8) -> Self {
        OwnedCells((0..1usize << log2.min(30)).map(|_| AtomicU8::new(0)).collect())
    }
}

impl PresenceCells for OwnedCells {
    fn cells(&self) -> &[AtomicU8] {
        &self.0
    }
}

/// The hash that picks a tuple's cell. The steering program computes the same function (`presence_hash` in
/// bpf/steer.bpf.c); tests/bpf_syn_answer.rs holds the two to each other.
///
/// Input, as the bytes appear in the SYN: the source (remote) address, the destination (local) address, then
/// the source port and the destination port, big-endian. Each 4 bytes are read as a little-endian `u32` word
/// (IPv4: three words, IPv6: nine) and mixed into a state that starts at `seed`.
#[inline]
pub fn presence_hash(seed: u64, remote: &[u8], local: &[u8], remote_port: u16, local_port: u16) -> u64 {
    const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |h: u64, w: u32| {
        let h = (h ^ u64::from(w)).wrapping_mul(MUL);
        h ^ (h >> 29)
    };
    let mut h = seed;
    for chunk in remote.chunks_exact(4).chain(local.chunks_exact(4)) {
        h = mix(h, u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    let [rp0, rp1] = remote_port.to_be_bytes();
    let [lp0, lp1] = local_port.to_be_bytes();
    h = mix(h, u32::from_le_bytes([rp0, rp1, lp0, lp1]));
    h ^ (h >> 32)
}

/// The endpoint's side: counts tuples in and out of the shared cells. The connection table and the TIME-WAIT
/// table each hold a clone and count their own entries, so a tuple moving from one to the other stays counted.
#[derive(Clone)]
pub struct Presence {
    cells: Arc<dyn PresenceCells>,
    seed: u64,
    mask: usize,
}

impl core::fmt::Debug for Presence {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Presence").field("cells", &(self.mask + 1)).finish_non_exhaustive()
    }
}

impl Presence {
    /// `cells` should hold a power-of-two number of cells (only the largest power of two it holds is used).
    pub fn new(cells: Arc<dyn PresenceCells>, seed: u64) -> Self {
        let len = cells.cells().len();
        let mask = if len == 0 { 0 } else { (1usize << (usize::BITS - 1 - len.leading_zeros())) - 1 };
        Presence { cells, seed, mask }
    }

    /// The seed of [`presence_hash`] (the steering program must be given the same).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    #[inline]
    fn cell<K: FlowKey>(&self, key: &K) -> Option<&AtomicU8> {
        self.cells.cells().get(key.presence_hash(self.seed) as usize & self.mask)
    }

    /// A tuple arrived (a connection was created, or entered TIME-WAIT).
    #[inline]
    pub fn add<K: FlowKey>(&self, key: &K) {
        if let Some(c) = self.cell(key) {
            // One writer per region (its worker): a load and a store, no read-modify-write needed.
            let v = c.load(Ordering::Relaxed);
            if v != u8::MAX {
                c.store(v + 1, Ordering::Release);
            }
        }
    }

    /// A tuple left (its connection ended, or its TIME-WAIT did).
    #[inline]
    pub fn remove<K: FlowKey>(&self, key: &K) {
        if let Some(c) = self.cell(key) {
            let v = c.load(Ordering::Relaxed);
            // A saturated cell stays: how many tuples share it is no longer known.
            if v != 0 && v != u8::MAX {
                c.store(v - 1, Ordering::Release);
            }
        }
    }

    /// Whether the cell of this tuple is nonzero (what the steering program reads).
    pub fn may_hold<K: FlowKey>(&self, key: &K) -> bool {
        self.cell(key).is_some_and(|c| c.load(Ordering::Acquire) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};

    fn presence(log2: u8) -> Presence {
        Presence::new(Arc::new(OwnedCells::new(log2)), 0x1234)
    }

    fn v4(remote: [u8; 4], remote_port: u16) -> V4Flow {
        V4Flow { local: [10, 0, 0, 1], remote, local_port: 80, remote_port }
    }

    #[test]
    fn a_tuple_is_held_between_add_and_remove() {
        let p = presence(16);
        let k = v4([10, 0, 0, 2], 40000);
        assert!(!p.may_hold(&k));
        p.add(&k);
        assert!(p.may_hold(&k));
        p.remove(&k);
        assert!(!p.may_hold(&k));
        let k6 = V6Flow { local: [1; 16], remote: [2; 16], local_port: 80, remote_port: 1 };
        p.add(&k6);
        assert!(p.may_hold(&k6));
    }

    #[test]
    fn tuples_sharing_a_cell_keep_it_until_the_last_leaves() {
        // One cell: every tuple collides.
        let p = presence(0);
        p.add(&v4([1, 1, 1, 1], 1));
        p.add(&v4([3, 3, 3, 3], 2));
        p.remove(&v4([1, 1, 1, 1], 1));
        assert!(p.may_hold(&v4([9, 9, 9, 9], 9)));
        p.remove(&v4([3, 3, 3, 3], 2));
        assert!(!p.may_hold(&v4([9, 9, 9, 9], 9)));
    }

    #[test]
    fn a_saturated_cell_never_empties() {
        let p = presence(0);
        for i in 0..300u16 {
            p.add(&v4([1, 1, 1, 1], i));
        }
        for i in 0..300u16 {
            p.remove(&v4([1, 1, 1, 1], i));
        }
        assert!(p.may_hold(&v4([1, 1, 1, 1], 0)), "255 means 'count unknown': kept");
    }

    #[test]
    fn the_hash_depends_on_every_field_and_the_seed() {
        let base = presence_hash(7, &[10, 0, 0, 2], &[10, 0, 0, 1], 40000, 80);
        assert_ne!(base, presence_hash(8, &[10, 0, 0, 2], &[10, 0, 0, 1], 40000, 80));
        assert_ne!(base, presence_hash(7, &[10, 0, 0, 3], &[10, 0, 0, 1], 40000, 80));
        assert_ne!(base, presence_hash(7, &[10, 0, 0, 2], &[10, 0, 0, 9], 40000, 80));
        assert_ne!(base, presence_hash(7, &[10, 0, 0, 2], &[10, 0, 0, 1], 40001, 80));
        assert_ne!(base, presence_hash(7, &[10, 0, 0, 2], &[10, 0, 0, 1], 40000, 81));
        // Swapping the ends is another tuple.
        assert_ne!(base, presence_hash(7, &[10, 0, 0, 1], &[10, 0, 0, 2], 80, 40000));
        assert_eq!(v4([10, 0, 0, 2], 40000).presence_hash(7), base, "a flow key hashes its wire bytes");
    }

    /// The value for one input, written out, so that a change of the function (which the steering program must
    /// follow) cannot go unnoticed.
    #[test]
    fn the_hash_of_a_known_tuple_is_pinned() {
        let mut h: u64 = 7;
        let words = [[10u8, 0, 0, 2], [10, 0, 0, 1], [0x9c, 0x40, 0, 80]];
        for w in words.map(u32::from_le_bytes) {
            h = (h ^ u64::from(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
        }
        assert_eq!(presence_hash(7, &[10, 0, 0, 2], &[10, 0, 0, 1], 40000, 80), h ^ (h >> 32));
    }
}
