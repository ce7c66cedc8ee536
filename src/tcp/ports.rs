//! The set of local ports we listen on: a 65 536-bit bitmap, one load and one mask per lookup.

/// A set of TCP ports.
#[derive(Clone)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet { bits: Box::new([0; 1024]) }
    }
}

impl core::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl PortSet {
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }
    pub fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }
    pub fn remove(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] &= !(1 << (port & 63));
    }
    pub fn clear(&mut self) {
        self.bits.fill(0);
    }
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|p| self.contains(*p))
    }
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_remove() {
        let mut s = PortSet::default();
        for p in [0u16, 1, 63, 64, 8080, 65535] {
            assert!(!s.contains(p));
            s.insert(p);
            assert!(s.contains(p));
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 1, 63, 64, 8080, 65535]);
        s.remove(8080);
        assert!(!s.contains(8080) && s.contains(65535));
    }
}
