//! A hashed timing wheel: one timer per connection handle, O(1) arm and cancel.
//!
//! CONTRACT (to be implemented): intrusive doubly-linked slot lists kept in arrays indexed by handle (no
//! allocation per arm once grown); a bitmap of non-empty slots for `next_deadline`; `expire` yields exactly the
//! handles whose deadline is <= now, whatever the tick rounding.

use crate::time::Instant;
use std::time::Duration;

pub struct TimerWheel {
    _todo: (),
}

impl TimerWheel {
    /// `slots` is rounded up to a power of two; `start` is the wheel's origin.
    pub fn new(tick: Duration, slots: usize, start: Instant) -> Self {
        let _ = (tick, slots, start);
        todo!("tables helper")
    }
    /// Arms (or re-arms, replacing the old deadline) the timer of `handle`.
    pub fn arm(&mut self, handle: u32, deadline: Instant) {
        let _ = (handle, deadline);
        todo!()
    }
    /// Disarms the timer of `handle`; a no-op when it is not armed.
    pub fn cancel(&mut self, handle: u32) {
        let _ = handle;
        todo!()
    }
    pub fn deadline(&self, handle: u32) -> Option<Instant> {
        let _ = handle;
        todo!()
    }
    /// Disarms and appends to `out` every handle whose deadline is <= `now`, in a deterministic order.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<u32>) {
        let _ = (now, out);
        todo!()
    }
    /// When `expire` should next be called: never later than the earliest armed deadline (rounded up to the tick
    /// at most), `None` when nothing is armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        todo!()
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn memory_bytes(&self) -> usize {
        todo!()
    }
}
