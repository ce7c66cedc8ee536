//! A rate limiter for replies an attacker can provoke (RSTs, challenge ACKs): GCRA in integer nanoseconds.

use crate::time::Instant;

/// Allows `rate` events per second on average, in bursts of up to `burst`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    interval_ns: u64,
    tolerance_ns: u64,
    /// Theoretical arrival time of the next conforming event.
    tat_ns: u64,
}

impl RateLimiter {
    /// `rate` = 0 forbids everything.
    pub fn new(rate: u32, burst: u32) -> Self {
        let interval_ns = if rate == 0 { u64::MAX } else { 1_000_000_000 / u64::from(rate) };
        RateLimiter { interval_ns, tolerance_ns: interval_ns.saturating_mul(u64::from(burst.max(1) - 1)), tat_ns: 0 }
    }

    /// Whether one more event may happen at `now` (and if so, counts it).
    #[inline]
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.interval_ns == u64::MAX {
            return false;
        }
        let now = now.as_nanos();
        let tat = self.tat_ns.max(now);
        if tat - now > self.tolerance_ns {
            return false;
        }
        self.tat_ns = tat + self.interval_ns;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let mut r = RateLimiter::new(1000, 10);
        let t = Instant::from_secs(5);
        assert_eq!((0..100).filter(|_| r.allow(t)).count(), 10);
        // One more per millisecond afterwards.
        assert!(r.allow(t + std::time::Duration::from_millis(1)));
        assert!(!r.allow(t + std::time::Duration::from_millis(1)));
        // Over one second at most rate + burst events pass.
        let mut r = RateLimiter::new(1000, 10);
        let passed = (0..1_000_000u64).filter(|i| r.allow(Instant::from_micros(*i))).count();
        assert!((1000..=1010).contains(&passed), "{passed}");
    }

    #[test]
    fn zero_rate_allows_nothing() {
        let mut r = RateLimiter::new(0, 5);
        assert!(!r.allow(Instant::from_secs(1)));
    }
}
