//! Rate limits for replies an attacker can provoke: GCRA in integer nanoseconds for RSTs, and a per-second budget
//! of secret size for challenge ACKs.

use crate::time::Instant;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

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

/// An endpoint-wide allowance of events per wall-clock second whose size is drawn anew every second, uniformly
/// from [`limit`/2, 3·`limit`/2], by a keyed hash: the RFC 5961 §7 global cap on challenge ACKs without the
/// off-path side channel of CVE-2016-5696. With a fixed budget an attacker drains it with its own connections,
/// sends spoofed RSTs with a guessed sequence number for a victim's tuple, and counts the challenge ACKs it can
/// still earn: one fewer for every in-window guess. Here that difference hides among `limit` + 1 equally likely
/// budget sizes (Linux's 2016 fix), so telling one guess apart takes on the order of (`limit`/`k`)² seconds of
/// draining for a victim that answers `k` challenges; the per-connection limit still applies on top.
#[derive(Clone, Debug)]
pub struct SecretBudget {
    limit: u32,
    key: [u8; 16],
    second: u64,
    left: u32,
}

impl SecretBudget {
    /// `limit` = 0 forbids everything.
    pub fn new(limit: u32, key: [u8; 16]) -> Self {
        SecretBudget { limit, key, second: u64::MAX, left: 0 }
    }

    /// The size of the budget of one second.
    fn size(&self, second: u64) -> u32 {
        if self.limit == 0 {
            return 0;
        }
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(b"xdptcp challenge budget");
        h.write_u64(second);
        let span = u64::from(self.limit) + 1;
        // In u64: one and a half times a limit above 2^32 / 1.5 (a `--challenge-acks` the command line takes)
        // does not fit a u32; such a budget is all but unlimited anyway.
        (u64::from(self.limit) / 2 + h.finish() % span).min(u64::from(u32::MAX)) as u32
    }

    /// Whether one more event may happen at `now` (and if so, counts it).
    #[inline]
    pub fn allow(&mut self, now: Instant) -> bool {
        let second = now.as_nanos() / 1_000_000_000;
        if second != self.second {
            self.second = second;
            self.left = self.size(second);
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(b: &mut SecretBudget, second: u64) -> u32 {
        let t = Instant::from_secs(second);
        (0..10_000).filter(|_| b.allow(t)).count() as u32
    }

    #[test]
    fn rfc5961_7_a_secret_budget_stays_between_half_and_one_and_a_half_times_the_limit() {
        let mut b = SecretBudget::new(1000, [7; 16]);
        let sizes: Vec<u32> = (0..2000).map(|s| per_second(&mut b, s)).collect();
        assert!(sizes.iter().all(|n| (500..=1500).contains(n)), "{sizes:?}");
        let mean = sizes.iter().map(|n| f64::from(*n)).sum::<f64>() / sizes.len() as f64;
        assert!((970.0..1030.0).contains(&mean), "mean {mean}");
        // Spread over the whole range: an observer cannot learn it from a few seconds.
        let distinct: std::collections::HashSet<u32> = sizes.iter().copied().collect();
        assert!(distinct.len() > 600, "{} distinct sizes", distinct.len());
        assert!(sizes.iter().any(|n| *n < 600) && sizes.iter().any(|n| *n > 1400));
    }

    #[test]
    fn a_secret_budget_of_the_largest_limit_does_not_overflow() {
        // Found by an audit: limit / 2 + up to limit overflowed a u32 for limits above about 2.86 billion.
        let b = SecretBudget::new(u32::MAX, [7; 16]);
        let sizes: Vec<u32> = (0..200).map(|s| b.size(s)).collect();
        assert!(sizes.iter().all(|&n| n >= u32::MAX / 2), "{sizes:?}");
        assert!(sizes.contains(&u32::MAX), "the third of the seconds above 2^32 are capped");
    }

    #[test]
    fn a_secret_budget_depends_on_the_key_and_refills_only_with_a_new_second() {
        let mut a = SecretBudget::new(1000, [1; 16]);
        let mut b = SecretBudget::new(1000, [2; 16]);
        let sa: Vec<u32> = (0..20).map(|s| per_second(&mut a, s)).collect();
        let sb: Vec<u32> = (0..20).map(|s| per_second(&mut b, s)).collect();
        assert_ne!(sa, sb);
        let mut c = SecretBudget::new(1000, [1; 16]);
        let first = per_second(&mut c, 5);
        assert_eq!(first, sa[5], "the same key and second give the same size");
        assert!(!c.allow(Instant::from_secs(5) + std::time::Duration::from_millis(999)));
        assert!(c.allow(Instant::from_secs(6)));
        assert_eq!(per_second(&mut SecretBudget::new(0, [1; 16]), 3), 0);
    }

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
