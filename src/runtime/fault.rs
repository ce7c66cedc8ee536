//! Fault injection on the AF_XDP side, for loss tests: drops received frames before the endpoint sees them and
//! sent frames before they reach the ring, each with a given probability. Deterministic for a given seed.

use crate::sink::FrameSink;

/// Loss probabilities, in parts per million.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    pub rx_ppm: u32,
    pub tx_ppm: u32,
    pub seed: u64,
}

impl Loss {
    /// The same loss `percent` in both directions.
    pub fn both(percent: f64, seed: u64) -> Loss {
        let ppm = (percent.clamp(0.0, 100.0) * 10_000.0).round() as u32;
        Loss { rx_ppm: ppm, tx_ppm: ppm, seed }
    }
}

/// A small xorshift generator: cheap, and reproducible runs from a seed.
#[derive(Clone, Debug)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed | 1)
    }
    /// True with probability `ppm` / 1e6.
    #[inline]
    pub fn roll(&mut self, ppm: u32) -> bool {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % 1_000_000) < u64::from(ppm)
    }
}

/// A sink that silently loses some frames: a lost frame is never committed, so its buffer is simply reused.
pub struct LossySink<'a, S: FrameSink> {
    pub inner: &'a mut S,
    pub dice: &'a mut Dice,
    pub ppm: u32,
    pub lost: &'a mut u64,
}

impl<S: FrameSink> FrameSink for LossySink<'_, S> {
    #[inline]
    fn buffer(&mut self) -> Option<&mut [u8]> {
        self.inner.buffer()
    }
    #[inline]
    fn commit(&mut self, len: usize) {
        if self.dice.roll(self.ppm) {
            *self.lost += 1;
        } else {
            self.inner.commit(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::VecSink;

    #[test]
    fn loses_about_the_requested_fraction() {
        let mut d = Dice::new(42);
        let lost = (0..1_000_000).filter(|_| d.roll(50_000)).count();
        assert!((48_000..52_000).contains(&lost), "{lost}");
        let mut d = Dice::new(1);
        assert_eq!((0..10_000).filter(|_| d.roll(0)).count(), 0);
        assert_eq!((0..10_000).filter(|_| d.roll(1_000_000)).count(), 10_000);
    }

    #[test]
    fn lossy_sink_commits_only_survivors() {
        let mut inner = VecSink::new();
        let mut dice = Dice::new(7);
        let mut lost = 0;
        let mut s = LossySink { inner: &mut inner, dice: &mut dice, ppm: 500_000, lost: &mut lost };
        for _ in 0..1000 {
            s.buffer().unwrap()[0] = 1;
            s.commit(60);
        }
        assert_eq!(inner.frames.len() as u64 + lost, 1000);
        assert!(lost > 400 && lost < 600);
    }
}
