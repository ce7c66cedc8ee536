//! The state of one address family: live connections, their timers, and TIME-WAIT.

use crate::tcp::api::ConnId;
use crate::tcp::config::Config;
use crate::tcp::conn::Tcb;
use crate::tcp::flow::FlowKey;
use crate::tcp::replay::ReplayFilter;
use crate::tcp::table::ConnTable;
use crate::tcp::time_wait::TimeWaitTable;
use crate::tcp::timer::TimerWheel;
use crate::time::Instant;

pub struct Flows<K: FlowKey> {
    pub table: ConnTable<K, Tcb>,
    pub wheel: TimerWheel,
    pub tw: TimeWaitTable<K>,
    /// Cookie ACKs that opened a connection already (see [`ReplayFilter`]).
    pub replay: ReplayFilter,
}

impl<K: FlowKey> Flows<K> {
    pub fn new(cfg: &Config, start: Instant) -> Self {
        // Keys derived from the one secret, distinct per family and structure. The connection table and
        // TIME-WAIT share theirs, so that a segment's tuple is hashed once for both lookups (and once for a
        // connect's check and insert); keeping them apart would buy nothing against hash flooding, which needs
        // the key either way.
        let mut k_table = cfg.hash_secret;
        k_table[0] ^= 0x01 ^ u8::from(K::V6);
        let mut k_replay = cfg.hash_secret;
        k_replay[0] ^= 0x04 ^ u8::from(K::V6);
        Flows {
            table: ConnTable::new(cfg.max_conns, k_table),
            wheel: TimerWheel::new(cfg.timer_tick, cfg.timer_slots, start),
            tw: TimeWaitTable::new(cfg.max_time_wait, cfg.time_wait, k_table),
            replay: ReplayFilter::new(cfg.cookie_replay_entries, k_replay),
        }
    }

    #[inline]
    pub fn id(&self, handle: u32) -> ConnId {
        ConnId::new(K::V6, handle)
    }

    /// The earliest instant anything of this family needs attention.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.wheel.next_deadline(), self.tw.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
