//! Initial sequence numbers for active opens, RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock.
//!
//! This module owns only the ISN formula. It never reads a clock (M comes from the `now` it is given) and never
//! draws randomness (the secret comes from the runtime's OS RNG, or from a test).
//!
//! - M = `now` in units of 4 µs, truncated to 32 bits: the clock RFC 793 suggested, so it laps about every 4.8 h
//!   and a new incarnation of a tuple starts above the old one's sequence space while the old one is young.
//! - F = SipHash-2-4 under the secret over the flow key (both addresses, both ports), truncated to 32 bits: a
//!   PRF, so the ISNs of different tuples are unrelated and an off-path peer cannot predict ours from its own.

use crate::tcp::cookie::siphash_flow;
use crate::time::Instant;
use core::hash::Hash;

/// Nanoseconds per tick of M.
const TICK_NANOS: u64 = 4_000;

/// Generates active-open ISNs under one secret. `Debug` does not show the secret.
#[derive(Clone)]
pub struct IsnGenerator {
    secret: [u8; 16],
}

impl IsnGenerator {
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { secret }
    }

    /// The ISN for a connection on `flow` opened at `now`.
    #[inline]
    pub fn isn<F: Hash>(&self, now: Instant, flow: &F) -> u32 {
        // Truncation is RFC 6528's: M is a 32-bit counter that wraps.
        let m = (now.as_nanos() / TICK_NANOS) as u32;
        m.wrapping_add(self.offset(flow))
    }

    /// F(4-tuple, secret): the per-tuple offset, constant over time.
    #[inline]
    fn offset<F: Hash>(&self, flow: &F) -> u32 {
        // Truncation to 32 bits is RFC 6528's F.
        siphash_flow(&self.secret, flow, &[]) as u32
    }
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsnGenerator").field("secret", &format_args!("<redacted>")).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};

    fn flow(remote_port: u16) -> V4Flow {
        V4Flow { local: [192, 168, 1, 1], remote: [192, 168, 1, 2], local_port: 40_000, remote_port }
    }

    fn generator() -> IsnGenerator {
        IsnGenerator::new(*b"0123456789abcdef")
    }

    #[test]
    fn rfc6528_m_advances_one_per_4_microseconds() {
        let g = generator();
        let t0 = Instant::from_micros(1_000_000);
        let base = g.isn(t0, &flow(80));
        for k in [1u64, 2, 250, 1_000_000, 3_000_000_000] {
            let later = g.isn(Instant::from_nanos(t0.as_nanos() + k * 4_000), &flow(80));
            assert_eq!(later.wrapping_sub(base), k as u32, "after {k} ticks");
        }
        // Within one tick, M does not move.
        assert_eq!(g.isn(Instant::from_nanos(t0.as_nanos() + 3_999), &flow(80)), base);
    }

    #[test]
    fn rfc6528_m_is_a_32_bit_counter_that_wraps() {
        let g = generator();
        let lap = Instant::from_nanos((1u64 << 32) * 4_000);
        assert_eq!(g.isn(lap, &flow(80)), g.isn(Instant::ZERO, &flow(80)));
    }

    #[test]
    fn rfc6528_f_depends_on_the_whole_tuple() {
        let g = generator();
        let now = Instant::from_secs(5);
        let base = flow(80);
        let mut variants = Vec::new();
        for i in 0..4 {
            let mut f = base;
            f.local[i] ^= 1;
            variants.push(f);
            let mut f = base;
            f.remote[i] ^= 1;
            variants.push(f);
        }
        let mut f = base;
        f.local_port ^= 1;
        variants.push(f);
        let mut f = base;
        f.remote_port ^= 1;
        variants.push(f);
        for f in variants {
            assert_ne!(g.isn(now, &f), g.isn(now, &base), "{f:?}");
        }
    }

    #[test]
    fn rfc6528_neighbouring_tuples_get_unrelated_isns() {
        // Consecutive ports must not give consecutive (or otherwise structured) ISNs: their XOR should look
        // random, about 16 of 32 bits differing on average, and the values should not repeat.
        let g = generator();
        let now = Instant::from_secs(1);
        let isns: Vec<u32> = (1000..3000).map(|p| g.isn(now, &flow(p))).collect();
        let flips: u32 = isns.windows(2).map(|w| (w[0] ^ w[1]).count_ones()).sum();
        let mean = f64::from(flips) / (isns.len() - 1) as f64;
        assert!((15.0..17.0).contains(&mean), "mean differing bits {mean}");
        let mut sorted = isns.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), isns.len());
        let steps: std::collections::HashSet<u32> = isns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(steps.len() > 1_990, "only {} distinct steps", steps.len());
    }

    #[test]
    fn rfc6528_secret_matters() {
        let a = generator();
        let b = IsnGenerator::new(*b"0123456789abcdeg");
        let now = Instant::from_secs(9);
        let diffs: std::collections::HashSet<u32> =
            (0..100).map(|p| a.isn(now, &flow(p)).wrapping_sub(b.isn(now, &flow(p)))).collect();
        // Not a constant shift: the secret changes F per tuple, not by one offset.
        assert!(diffs.len() > 95);
        assert_ne!(a.isn(now, &flow(1)), b.isn(now, &flow(1)));
    }

    #[test]
    fn v6_flows_are_supported() {
        let g = generator();
        let f = V6Flow { local: [1; 16], remote: [2; 16], local_port: 1, remote_port: 2 };
        let mut other = f;
        other.remote[0] = 3;
        assert_ne!(g.isn(Instant::ZERO, &f), g.isn(Instant::ZERO, &other));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", generator());
        assert!(text.contains("redacted") && !text.contains("48") && !text.contains("0123"), "{text}");
    }
}
