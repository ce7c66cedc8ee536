//! Sequence numbers: 32-bit, compared modulo 2^32 (RFC 9293 §3.4).
//!
//! `a < b` means "b is ahead of a by less than 2^31". That order is not transitive across the whole space, so
//! the state machine only ever compares numbers that lie within one window of each other.

use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance from `other` to `self`: positive when `self` is ahead.
    #[inline]
    pub const fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self <= x < self + len`, computed without wrapping trouble.
    #[inline]
    pub const fn window_contains(self, len: u32, x: SeqNum) -> bool {
        x.0.wrapping_sub(self.0) < len
    }

    /// `lo <= self <= hi` modulo 2^32, assuming `hi` is not behind `lo`.
    #[inline]
    pub const fn between_inclusive(self, lo: SeqNum, hi: SeqNum) -> bool {
        self.0.wrapping_sub(lo.0) <= hi.0.wrapping_sub(lo.0)
    }

    #[inline]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.diff(other) >= 0 {
            self
        } else {
            other
        }
    }

    #[inline]
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.diff(other) <= 0 {
            self
        } else {
            other
        }
    }
}

impl core::fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    /// The forward distance from `rhs` to `self`, modulo 2^32. Callers check order first.
    #[inline]
    fn sub(self, rhs: SeqNum) -> u32 {
        self.0.wrapping_sub(rhs.0)
    }
}

impl PartialOrd for SeqNum {
    #[inline]
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc9293_3_4_comparison_wraps_around() {
        assert!(SeqNum(u32::MAX) < SeqNum(0));
        assert!(SeqNum(0) > SeqNum(u32::MAX - 10));
        assert_eq!(SeqNum(5) - SeqNum(u32::MAX), 6);
        assert_eq!(SeqNum(u32::MAX) + 2, SeqNum(1));
    }

    #[test]
    fn window_contains_is_half_open() {
        let base = SeqNum(u32::MAX - 1);
        assert!(base.window_contains(4, SeqNum(u32::MAX - 1)));
        assert!(base.window_contains(4, SeqNum(1)));
        assert!(!base.window_contains(4, SeqNum(2)));
        assert!(!base.window_contains(0, base));
        assert!(!base.window_contains(4, SeqNum(u32::MAX - 2)));
    }

    proptest! {
        #[test]
        fn order_matches_offset_sign(a: u32, d in 1u32..(1 << 31)) {
            let x = SeqNum(a);
            let y = x + d;
            prop_assert!(x < y);
            prop_assert!(y > x);
            prop_assert_eq!(y - x, d);
            prop_assert_eq!(x.max(y), y);
            prop_assert_eq!(x.min(y), x);
            prop_assert!(x.window_contains(d + 1, y) || d == u32::MAX);
            prop_assert!(!x.window_contains(d, y));
            prop_assert!(y.between_inclusive(x, y));
            prop_assert!(x.between_inclusive(x, y));
        }

        #[test]
        fn add_then_sub_round_trips(a: u32, d: u32) {
            prop_assert_eq!((SeqNum(a) + d) - d, SeqNum(a));
            prop_assert_eq!((SeqNum(a) + d) - SeqNum(a), d);
        }
    }
}
