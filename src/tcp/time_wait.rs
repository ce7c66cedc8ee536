//! TIME-WAIT, apart from live connections: a compact table of closed connections that still guard their tuple.
//!
//! CONTRACT (to be implemented): entries live in a ring in expiry order (every entry lives the same 2MSL), indexed
//! by a keyed hashbrown::HashTable<u32>; at most 48 bytes per entry all included; O(1) insert, lookup, remove
//! and expiry; no allocation once grown.

use crate::tcp::flow::FlowKey;
use crate::tcp::table::TableFull;
use crate::time::Instant;
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
    /// Bit 0: timestamps were in use.
    pub flags: u8,
}

impl TimeWait {
    pub const TIMESTAMPS: u8 = 1;
}

pub struct TimeWaitTable<K: FlowKey> {
    _todo: core::marker::PhantomData<K>,
}

impl<K: FlowKey> TimeWaitTable<K> {
    pub fn new(max_len: usize, lifetime: Duration, hash_key: [u8; 16]) -> Self {
        let _ = (max_len, lifetime, hash_key);
        todo!("tables helper")
    }
    /// Enters `key` into TIME-WAIT until `now + lifetime` (replacing any entry for it).
    pub fn insert(&mut self, now: Instant, key: K, tw: TimeWait) -> Result<(), TableFull> {
        let _ = (now, key, tw);
        todo!()
    }
    pub fn get(&self, key: &K) -> Option<TimeWait> {
        let _ = key;
        todo!()
    }
    /// Restarts the 2MSL of an entry (a retransmitted FIN was re-acknowledged), updating its contents.
    pub fn restart(&mut self, now: Instant, key: &K, tw: TimeWait) -> bool {
        let _ = (now, key, tw);
        todo!()
    }
    pub fn remove(&mut self, key: &K) -> Option<TimeWait> {
        let _ = key;
        todo!()
    }
    /// Drops every entry whose 2MSL has ended; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let _ = now;
        todo!()
    }
    pub fn next_deadline(&self) -> Option<Instant> {
        todo!()
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn lifetime(&self) -> Duration {
        todo!()
    }
    pub fn memory_bytes(&self) -> usize {
        todo!()
    }
}
