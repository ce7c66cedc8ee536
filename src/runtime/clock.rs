//! The runtime's clock: monotonic `Instant`s for the core, and the wall-clock offset that cookie slots need.

use crate::io::monotonic_ns;
use crate::time::Instant;
use std::time::{SystemTime, UNIX_EPOCH};

/// A monotonic clock whose origin is its creation.
///
/// It reads CLOCK_MONOTONIC itself, the clock of `bpf_ktime_get_ns()`, so that the steering program can compute
/// the very `Instant` a worker would see ([`Clock::instant_minus_ktime`]) when it answers SYNs for it.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// CLOCK_MONOTONIC nanoseconds at the origin.
    origin_ns: u64,
    /// The same moment for `std` (only deadlines for poll and sleep use it).
    origin: std::time::Instant,
    /// Wall-clock nanoseconds since the UNIX epoch at the origin.
    wall_at_origin: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self::with_wall_skew(0)
    }

    /// A clock whose wall-clock view is shifted by `skew_ns` (tests move a cookie slot boundary close).
    pub fn with_wall_skew(skew_ns: i64) -> Self {
        let origin = std::time::Instant::now();
        let origin_ns = monotonic_ns();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Clock { origin_ns, origin, wall_at_origin: wall.saturating_add_signed(skew_ns) }
    }

    /// Now, for the core. Starts at 1 s so that "zero" never means "now".
    #[inline]
    pub fn now(&self) -> Instant {
        Instant::from_nanos(1_000_000_000 + monotonic_ns().saturating_sub(self.origin_ns))
    }

    /// What to add (wrapping) to a CLOCK_MONOTONIC reading in nanoseconds to get this clock's `Instant`.
    pub fn instant_minus_ktime(&self) -> u64 {
        1_000_000_000u64.wrapping_sub(self.origin_ns)
    }

    /// What [`crate::tcp::Config::wall_clock_offset`] must be for endpoints driven by this clock.
    pub fn wall_clock_offset(&self) -> u64 {
        self.wall_at_origin.saturating_sub(1_000_000_000)
    }

    /// Wall-clock nanoseconds since the UNIX epoch corresponding to `t`.
    pub fn wall_nanos(&self, t: Instant) -> u64 {
        t.as_nanos().wrapping_add(self.wall_clock_offset())
    }

    /// The `std` instant corresponding to `t` (for deadlines of poll and sleep).
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.origin + std::time::Duration::from_nanos(t.as_nanos().saturating_sub(1_000_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_monotonic_and_maps_to_wall_time() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let diff = wall.abs_diff(c.wall_nanos(c.now()));
        assert!(diff < 1_000_000_000, "wall clock mapping off by {diff} ns");
    }

    #[test]
    fn a_monotonic_reading_maps_to_the_instant_now_gives() {
        let c = Clock::new();
        let before = c.now();
        let mapped = monotonic_ns().wrapping_add(c.instant_minus_ktime());
        let after = c.now();
        assert!(before.as_nanos() <= mapped && mapped <= after.as_nanos());
    }
}
