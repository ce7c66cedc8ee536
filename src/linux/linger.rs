//! The connections the Linux reference server has finished with but not closed yet. Linux's close() answers
//! with a reset, not a FIN, when the receive queue holds unread bytes (or when bytes arrive after it), where
//! `xdptcp serve` acknowledges and discards them and closes with its FIN. So the server shuts down its side
//! (its FIN goes), reads and discards until the peer's FIN, and only then closes.
//!
//! What this must never do is hold a descriptor for a peer that never closes: each connection lingers at most
//! [`LINGER_FOR`], and all of them give way at once when accept runs out of descriptors. This module only keeps
//! the deadlines; the server owns the sockets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a finished connection waits for the peer's FIN. Long enough for bytes already in flight (many
/// round trips on any path the bench uses), short enough that a peer that never closes gives its descriptor back
/// soon; after it, close() may reset, which is then the peer's doing.
pub const LINGER_FOR: Duration = Duration::from_secs(2);

/// Lingering connections in the order they began, which is their deadlines' order (all wait the same time).
#[derive(Debug, Default)]
pub struct Lingering {
    queue: VecDeque<(Instant, usize, u64)>,
    /// The last ticket handed out (0 is never one).
    last: u64,
}

impl Lingering {
    /// Starts the clock for the connection in `slot`. The ticket returned tells it apart from a later connection
    /// in the same slot: the connection keeps it, and [`Lingering::expired`] hands it back.
    pub fn start(&mut self, now: Instant, slot: usize) -> u64 {
        self.last += 1;
        self.queue.push_back((now + LINGER_FOR, slot, self.last));
        self.last
    }

    /// The next connection whose time is up at `now`, as (slot, ticket). The slot may hold another connection by
    /// then, or none: close it only if the tickets match.
    pub fn expired(&mut self, now: Instant) -> Option<(usize, u64)> {
        match self.queue.front() {
            Some(&(deadline, slot, ticket)) if deadline <= now => {
                self.queue.pop_front();
                Some((slot, ticket))
            }
            _ => None,
        }
    }

    /// Every connection still waiting, as (slot, ticket), the queue emptied.
    pub fn all(&mut self) -> Vec<(usize, u64)> {
        self.queue.drain(..).map(|(_, slot, ticket)| (slot, ticket)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_expires_after_linger_for_and_its_ticket_names_it_not_its_slot() {
        let t0 = Instant::now();
        let mut l = Lingering::default();
        let a = l.start(t0, 3);
        let b = l.start(t0 + Duration::from_millis(1), 3); // the slot reused by a later connection
        assert_ne!(a, b);
        assert_eq!(l.expired(t0 + LINGER_FOR - Duration::from_nanos(1)), None, "not before its time");
        assert_eq!(l.expired(t0 + LINGER_FOR), Some((3, a)));
        assert_eq!(l.expired(t0 + LINGER_FOR), None, "the later one waits its own time");
        assert_eq!(l.all(), vec![(3, b)]);
        assert!(l.is_empty());
    }
}
