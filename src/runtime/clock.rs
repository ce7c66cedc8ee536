//! The runtime's clock: monotonic `Instant`s for the core, and the wall-clock offset that cookie slots need.

use crate::time::Instant;
use std::time::{SystemTime, UNIX_EPOCH};

/// A monotonic clock whose origin is its creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
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
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Clock { origin, wall_at_origin: wall.saturating_add_signed(skew_ns) }
    }

    /// Now, for the core. Starts at 1 s so that "zero" never means "now".
    #[inline]
    pub fn now(&self) -> Instant {
        Instant::from_nanos(1_000_000_000 + self.origin.elapsed().as_nanos() as u64)
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
}
