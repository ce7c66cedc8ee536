//! Source tuples of the load generator: the `--src` range (one address or a CIDR) times a port range, walked in
//! a fixed order so that a tuple comes back only after every other one of its partition has been used.
//!
//! It owns the mapping from a tuple index to an (address, port) pair and the cursor of one worker's partition.
//! Until the walk has come round once, every tuple it hands out is one it never handed out before, so none can
//! be live or in TIME-WAIT in the caller's endpoint (which only ever holds tuples from here): the caller is not
//! asked, which spares a TIME-WAIT lookup per connection (a cache miss in a table of millions at 60 s TIME-WAIT).
//! From the second round on the caller says which tuples are busy, and when a few probes in a row find only busy
//! tuples the allocator gives up for this call (the caller counts that as exhaustion) instead of scanning the
//! whole space.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

/// The default source ports: everything above the well-known ports.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 1024..=65535;

/// Most addresses a range may hold (an IPv6 prefix is cut to its first 2^32 addresses).
const MAX_ADDRS: u64 = 1 << 32;

/// Busy tuples tried in a row before [`TupleAllocator::next`] gives up for one call.
pub const PROBES: u32 = 16;

/// Why a `--src` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrcError {
    #[error("{0:?} is not an IP address or CIDR (examples: 10.77.1.2, 10.77.1.0/24, fd77::/112)")]
    BadAddress(String),
    #[error("{0:?}: the prefix length must be a number from 0 to {1}")]
    BadPrefix(String, u8),
    #[error("{given} has host bits set; did you mean {network}/{len}?")]
    HostBits { given: String, network: IpAddr, len: u8 },
    #[error("{0}: unusable as a source (unspecified, in 0.0.0.0/8, loopback, multicast or broadcast)")]
    Unusable(IpAddr),
    #[error("{range} includes {block}, which no server answers as a source: pick a range outside it")]
    Spans { range: String, block: &'static str },
    #[error("source port range {0}-{1} is empty or includes port 0")]
    BadPorts(u16, u16),
    #[error("{0:?} is not a source port range: use LO-HI or one port, from 1 to 65535")]
    BadPortSyntax(String),
}

/// Blocks no source of a test may come from (a server drops such sources as martians), as (first, prefix
/// length, name): a range is refused when any of its addresses falls in one, not only its ends.
const UNUSABLE_V4: [(u32, u32, &str); 4] = [
    (0x0000_0000, 8, "0.0.0.0/8 (this network)"),
    (0x7f00_0000, 8, "127.0.0.0/8 (loopback)"),
    (0xe000_0000, 4, "224.0.0.0/4 (multicast)"),
    (0xffff_ffff, 32, "255.255.255.255 (broadcast)"),
];

/// A contiguous range of source addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrcRange {
    V4 { first: u32, count: u32 },
    V6 { first: u128, count: u64 },
}

impl SrcRange {
    /// One address.
    pub fn single(addr: IpAddr) -> Result<Self, SrcError> {
        if !usable(addr) {
            return Err(SrcError::Unusable(addr));
        }
        Ok(match addr {
            IpAddr::V4(a) => SrcRange::V4 { first: u32::from(a), count: 1 },
            IpAddr::V6(a) => SrcRange::V6 { first: u128::from(a), count: 1 },
        })
    }

    /// Parses `ADDR` or `ADDR/LEN`. In a CIDR of IPv4 the network and broadcast addresses are left out (for
    /// prefixes up to /30), in IPv6 the subnet-router anycast address (the all-zero host, up to /126); host bits
    /// must be zero.
    pub fn parse(s: &str) -> Result<Self, SrcError> {
        let s = s.trim();
        let Some((addr, len)) = s.split_once('/') else {
            let addr: IpAddr = s.parse().map_err(|_| SrcError::BadAddress(s.to_string()))?;
            return Self::single(addr);
        };
        let addr: IpAddr = addr.parse().map_err(|_| SrcError::BadAddress(s.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| SrcError::BadPrefix(s.to_string(), max))?;
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                if bits & host_mask != 0 {
                    let network = IpAddr::V4(Ipv4Addr::from(bits & !host_mask));
                    return Err(SrcError::HostBits { given: s.to_string(), network, len });
                }
                let size = u64::from(host_mask) + 1;
                let (first, count) = if len <= 30 { (bits + 1, size - 2) } else { (bits, size) };
                let range = SrcRange::V4 { first, count: count.min(MAX_ADDRS - 1) as u32 };
                range.check_usable()?;
                for (block, blen, name) in UNUSABLE_V4 {
                    if range.overlaps(&SrcRange::V4 { first: block, count: (1u64 << (32 - blen)) as u32 }) {
                        return Err(SrcError::Spans { range: s.to_string(), block: name });
                    }
                }
                Ok(range)
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let host_mask = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                if bits & host_mask != 0 {
                    let network = IpAddr::V6(Ipv6Addr::from(bits & !host_mask));
                    return Err(SrcError::HostBits { given: s.to_string(), network, len });
                }
                let size = if host_mask >= u128::from(MAX_ADDRS) { MAX_ADDRS } else { host_mask as u64 + 1 };
                let (first, count) = if len <= 126 { (bits + 1, size - 1) } else { (bits, size) };
                let range = SrcRange::V6 { first, count };
                range.check_usable()?;
                Ok(range)
            }
        }
    }

    fn check_usable(&self) -> Result<(), SrcError> {
        for a in [self.addr(0), self.addr(self.len() - 1)] {
            if !usable(a) {
                return Err(SrcError::Unusable(a));
            }
        }
        Ok(())
    }

    /// Addresses in the range (at least 1).
    pub fn len(&self) -> u64 {
        match *self {
            SrcRange::V4 { count, .. } => u64::from(count),
            SrcRange::V6 { count, .. } => count,
        }
    }

    /// Never true: a parsed range holds at least one address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_ipv4(&self) -> bool {
        matches!(self, SrcRange::V4 { .. })
    }

    /// The `i`-th address (`i` is taken modulo the length).
    #[inline]
    pub fn addr(&self, i: u64) -> IpAddr {
        match *self {
            SrcRange::V4 { first, count } => {
                IpAddr::V4(Ipv4Addr::from(first.wrapping_add((i % u64::from(count.max(1))) as u32)))
            }
            SrcRange::V6 { first, count } => {
                IpAddr::V6(Ipv6Addr::from(first.wrapping_add(u128::from(i % count.max(1)))))
            }
        }
    }

    /// Where `addr` lies in the range (the inverse of [`addr`](Self::addr)), if it does.
    #[inline]
    pub fn index_of(&self, addr: IpAddr) -> Option<u64> {
        match (*self, addr) {
            (SrcRange::V4 { first, count }, IpAddr::V4(a)) => {
                let i = u32::from(a).wrapping_sub(first);
                (i < count).then_some(u64::from(i))
            }
            (SrcRange::V6 { first, count }, IpAddr::V6(a)) => {
                let i = u128::from(a).wrapping_sub(first);
                (i < u128::from(count)).then_some(i as u64)
            }
            _ => None,
        }
    }

    /// Whether `addr` lies in the range.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (SrcRange::V4 { first, count }, IpAddr::V4(a)) => u32::from(a).wrapping_sub(first) < count,
            (SrcRange::V6 { first, count }, IpAddr::V6(a)) => u128::from(a).wrapping_sub(first) < u128::from(count),
            _ => false,
        }
    }

    /// Whether every address of the range is private (RFC 1918), shared (RFC 6598), reserved for benchmarks
    /// (RFC 2544) or unique-local (RFC 4193): the only sources a flood may spoof.
    pub fn is_private(&self) -> bool {
        let private = |a: IpAddr| match a {
            IpAddr::V4(a) => {
                let o = a.octets();
                a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) || (o[0] == 198 && (o[1] & 0xfe) == 18)
            }
            IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
        };
        // Each of those blocks is contiguous, so both ends in one block means the whole range is.
        let (lo, hi) = (self.addr(0), self.addr(self.len() - 1));
        private(lo) && private(hi) && same_block(lo, hi)
    }

    /// Whether two ranges share an address.
    pub fn overlaps(&self, other: &SrcRange) -> bool {
        match (*self, *other) {
            (SrcRange::V4 { first: a, count: n }, SrcRange::V4 { first: b, count: m }) => {
                u64::from(a) < u64::from(b) + u64::from(m) && u64::from(b) < u64::from(a) + u64::from(n)
            }
            (SrcRange::V6 { first: a, count: n }, SrcRange::V6 { first: b, count: m }) => {
                a < b.saturating_add(u128::from(m)) && b < a.saturating_add(u128::from(n))
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for SrcRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.len() == 1 {
            write!(f, "{}", self.addr(0))
        } else {
            write!(f, "{}-{} ({} addresses)", self.addr(0), self.addr(self.len() - 1), self.len())
        }
    }
}

/// Both addresses in one of the blocks of [`SrcRange::is_private`].
fn same_block(a: IpAddr, b: IpAddr) -> bool {
    let prefix = |a: IpAddr| -> u32 {
        match a {
            IpAddr::V4(a) => {
                let o = a.octets();
                match o[0] {
                    10 => 8,
                    172 => 12,
                    192 => 16,
                    100 => 10,
                    _ => 15,
                }
            }
            IpAddr::V6(_) => 7,
        }
    };
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => {
            let len = prefix(a);
            (u32::from(x) >> (32 - len)) == (u32::from(y) >> (32 - len))
        }
        (IpAddr::V6(x), IpAddr::V6(y)) => (u128::from(x) >> 121) == (u128::from(y) >> 121),
        _ => false,
    }
}

fn usable(addr: IpAddr) -> bool {
    match addr {
        // 0.0.0.0/8 whole ("this network"), as a CIDR source is judged by `UNUSABLE_V4`.
        IpAddr::V4(a) => !(a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_loopback() || a.is_multicast()),
    }
}

/// Parses `LO-HI` (or a single port) into a source port range without port 0.
pub fn parse_ports(s: &str) -> Result<RangeInclusive<u16>, SrcError> {
    let bad = || SrcError::BadPortSyntax(s.to_string());
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.trim().parse::<u16>().map_err(|_| bad())?, hi.trim().parse::<u16>().map_err(|_| bad())?),
        None => {
            let p = s.trim().parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo == 0 || lo > hi {
        return Err(SrcError::BadPorts(lo, hi));
    }
    Ok(lo..=hi)
}

/// The tuples of one worker: indices `offset, offset + stride, ...` of the space addresses × ports, where index
/// `g` is address `g % addrs` and port `lo + g / addrs` (addresses vary fastest, so consecutive connections
/// spread over the whole range).
#[derive(Clone, Debug)]
pub struct TupleAllocator {
    range: SrcRange,
    port_lo: u16,
    ports: u64,
    offset: u64,
    stride: u64,
    /// Tuples in this partition.
    size: u64,
    cursor: u64,
    /// Tuples of this round of the walk not handed out yet: while any are left, the next one cannot be busy.
    unvisited: u64,
}

impl TupleAllocator {
    /// The whole space, for one worker.
    pub fn new(range: SrcRange, ports: RangeInclusive<u16>) -> Result<Self, SrcError> {
        Self::partition(range, ports, 0, 1)
    }

    /// Partition `worker` of `workers`: disjoint from every other partition, together they cover the space.
    pub fn partition(range: SrcRange, ports: RangeInclusive<u16>, worker: u32, workers: u32) -> Result<Self, SrcError> {
        let (lo, hi) = (*ports.start(), *ports.end());
        if lo == 0 || lo > hi {
            return Err(SrcError::BadPorts(lo, hi));
        }
        let nports = u64::from(hi - lo) + 1;
        let total = range.len() * nports;
        let (offset, stride) = (u64::from(worker), u64::from(workers.max(1)));
        let size = if offset < total { (total - offset).div_ceil(stride) } else { 0 };
        Ok(TupleAllocator { range, port_lo: lo, ports: nports, offset, stride, size, cursor: 0, unvisited: size })
    }

    /// Moves the cursor to the `j`-th tuple (modulo the space). Runs start at a random point of the walk, so that
    /// back-to-back runs against one server do not meet the tuples the previous run left in its TIME-WAIT.
    pub fn start_at(&mut self, j: u64) {
        self.cursor = if self.size == 0 { 0 } else { j % self.size };
        self.unvisited = self.size;
    }

    /// Tuples in this partition.
    pub fn space(&self) -> u64 {
        self.size
    }

    pub fn range(&self) -> &SrcRange {
        &self.range
    }

    /// The `j`-th tuple of this partition.
    #[inline]
    pub fn tuple(&self, j: u64) -> SocketAddr {
        let g = self.offset + self.stride * (j % self.size.max(1));
        let addrs = self.range.len();
        let port = self.port_lo + ((g / addrs) % self.ports) as u16;
        SocketAddr::new(self.range.addr(g % addrs), port)
    }

    /// Which partition of the space (which worker, of `workers` as given to [`partition`](Self::partition))
    /// owns tuple `t`; `None` outside the space. Any partition of the same space answers the same.
    #[inline]
    pub fn owner(&self, t: SocketAddr) -> Option<u32> {
        let i = self.range.index_of(t.ip())?;
        let port = u64::from(t.port().checked_sub(self.port_lo)?);
        if port >= self.ports {
            return None;
        }
        Some(((port * self.range.len() + i) % self.stride) as u32)
    }

    /// The next tuple for which `busy` says no, trying at most [`PROBES`] tuples; `None` when they were all
    /// busy (or the partition is empty). The cursor moves past every tuple tried. `busy` is only asked about
    /// tuples handed out before, in an earlier round of the walk (see the module's notes).
    #[inline]
    pub fn next(&mut self, mut busy: impl FnMut(SocketAddr) -> bool) -> Option<SocketAddr> {
        if self.size == 0 {
            return None;
        }
        for _ in 0..PROBES {
            let t = self.tuple(self.cursor);
            self.cursor += 1;
            if self.cursor == self.size {
                self.cursor = 0;
            }
            if self.unvisited > 0 {
                self.unvisited -= 1;
                return Some(t);
            }
            if !busy(t) {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_v4_skips_network_and_broadcast() {
        let r = SrcRange::parse("10.77.1.0/24").unwrap();
        assert_eq!(r.len(), 254);
        assert_eq!(r.addr(0), v4("10.77.1.1"));
        assert_eq!(r.addr(253), v4("10.77.1.254"));
        assert!(r.contains(v4("10.77.1.7")) && !r.contains(v4("10.77.1.0")) && !r.contains(v4("10.77.1.255")));
        assert_eq!(SrcRange::parse("10.77.1.0/31").unwrap().len(), 2);
        assert_eq!(SrcRange::parse("10.77.1.9/32").unwrap().len(), 1);
        assert_eq!(SrcRange::parse(" 10.77.1.9 ").unwrap(), SrcRange::V4 { first: 0x0a4d_0109, count: 1 });
        assert_eq!(SrcRange::parse("10.0.0.0/8").unwrap().len(), (1 << 24) - 2);
    }

    #[test]
    fn cidr_v6_skips_the_anycast_address_and_is_capped() {
        let r = SrcRange::parse("fd77::1:0/112").unwrap();
        assert_eq!(r.len(), 65535);
        assert_eq!(r.addr(0), "fd77::1:1".parse::<IpAddr>().unwrap());
        assert_eq!(SrcRange::parse("fd77::/64").unwrap().len(), MAX_ADDRS - 1);
        assert!(!r.is_ipv4() && r.contains("fd77::1:ffff".parse().unwrap()));
    }

    #[test]
    fn bad_src_values_are_named_errors() {
        assert!(matches!(SrcRange::parse("10.77.1"), Err(SrcError::BadAddress(_))));
        assert!(matches!(SrcRange::parse("nonsense/24"), Err(SrcError::BadAddress(_))));
        assert!(matches!(SrcRange::parse(""), Err(SrcError::BadAddress(_))));
        assert!(matches!(SrcRange::parse("10.77.1.0/33"), Err(SrcError::BadPrefix(_, 32))));
        assert!(matches!(SrcRange::parse("10.77.1.0/x"), Err(SrcError::BadPrefix(_, 32))));
        assert!(matches!(SrcRange::parse("fd77::/129"), Err(SrcError::BadPrefix(_, 128))));
        match SrcRange::parse("10.77.1.5/24") {
            Err(e @ SrcError::HostBits { .. }) => assert!(e.to_string().contains("10.77.1.0/24"), "{e}"),
            other => panic!("{other:?}"),
        }
        for s in ["0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::1", "127.0.0.0/24"] {
            assert!(matches!(SrcRange::parse(s), Err(SrcError::Unusable(_))), "{s}");
        }
    }

    #[test]
    fn a_range_with_loopback_multicast_or_this_network_inside_it_is_refused_not_only_at_its_ends() {
        // Found by an audit: 0.0.0.0/0 and 128.0.0.0/1 were taken (both ends usable), and a share of the
        // connections then came from 0/8, 127/8 or 224/4 sources that no server answers.
        for (s, block) in [
            ("0.0.0.0/0", "0.0.0.0/8"),
            ("0.0.0.0/4", "0.0.0.0/8"),
            ("0.0.0.0/8", "0.0.0.0/8"),
            ("128.0.0.0/1", "224.0.0.0/4"),
            ("192.0.0.0/2", "224.0.0.0/4"),
        ] {
            match SrcRange::parse(s) {
                Err(e) => assert!(e.to_string().contains(block), "{s}: {e}"),
                Ok(r) => panic!("{s} accepted: {r}"),
            }
        }
        for s in ["1.0.0.0/8", "128.0.0.0/2", "126.0.0.0/8", "223.255.255.0/24", "240.0.0.0/4", "10.0.0.0/8"] {
            assert!(SrcRange::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn only_private_benchmark_and_unique_local_ranges_count_as_private() {
        for s in ["10.77.1.0/24", "172.16.0.0/12", "192.168.3.4", "100.64.0.0/10", "198.18.0.0/15", "fd77::/112"] {
            assert!(SrcRange::parse(s).unwrap().is_private(), "{s}");
        }
        for s in ["8.8.8.8", "8.0.0.0/7", "128.0.0.0/2", "2001:db8::/32", "198.16.0.0/13", "172.0.0.0/8"] {
            assert!(!SrcRange::parse(s).unwrap().is_private(), "{s}");
        }
    }

    #[test]
    fn port_ranges_parse_and_refuse_zero_or_reversed() {
        assert_eq!(parse_ports("1024-65535").unwrap(), 1024..=65535);
        assert_eq!(parse_ports("8000").unwrap(), 8000..=8000);
        assert!(parse_ports("0-10").is_err());
        assert!(parse_ports("10-9").is_err());
        assert!(parse_ports("a-b").is_err());
        assert!(parse_ports("70000").is_err());
        // Not "0-0", which nobody wrote: the error quotes the value given.
        for bad in ["a-b", "1-65536", "5-", "-5", ""] {
            let e = parse_ports(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")) && !e.contains("0-0"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn ranges_overlap_only_when_they_share_an_address() {
        let a = SrcRange::parse("10.77.1.0/24").unwrap();
        let b = SrcRange::parse("10.77.2.0/24").unwrap();
        let c = SrcRange::parse("10.77.1.200").unwrap();
        assert!(!a.overlaps(&b) && a.overlaps(&c) && c.overlaps(&a));
        assert!(!a.overlaps(&SrcRange::parse("fd77::/120").unwrap()));
    }

    #[test]
    fn the_walk_visits_every_tuple_once_before_repeating() {
        let r = SrcRange::parse("10.77.1.0/30").unwrap(); // 2 addresses
        let mut a = TupleAllocator::new(r, 5000..=5002).unwrap();
        assert_eq!(a.space(), 6);
        let first: Vec<_> = (0..6).map(|_| a.next(|_| false).unwrap()).collect();
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), 6);
        assert_eq!(first[0], "10.77.1.1:5000".parse().unwrap());
        assert_eq!(first[1], "10.77.1.2:5000".parse().unwrap(), "addresses vary fastest");
        assert_eq!(a.next(|_| false), Some(first[0]), "then the walk starts over");
        a.start_at(9);
        assert_eq!(a.next(|_| false), Some(first[3]), "start_at wraps around the space");
    }

    #[test]
    fn partitions_are_disjoint_and_cover_the_space() {
        let r = SrcRange::parse("10.77.1.0/29").unwrap(); // 6 addresses
        let mut all = HashSet::new();
        let mut total = 0;
        for w in 0..3 {
            let mut a = TupleAllocator::partition(r, 7000..=7006, w, 3).unwrap();
            total += a.space();
            for _ in 0..a.space() {
                assert!(all.insert(a.next(|_| false).unwrap()), "tuple shared between partitions");
            }
        }
        assert_eq!(total, 42);
        assert_eq!(all.len(), 42);
    }

    #[test]
    fn the_first_round_asks_nothing_and_start_at_begins_a_new_round() {
        let r = SrcRange::parse("10.77.1.0/30").unwrap();
        let mut a = TupleAllocator::new(r, 7000..=7002).unwrap();
        a.start_at(5);
        let mut seen = HashSet::new();
        for _ in 0..a.space() {
            assert!(seen.insert(a.next(|_| panic!("asked in the first round")).unwrap()));
        }
        let mut asked = 0;
        assert!(a
            .next(|t| {
                asked += 1;
                seen.contains(&t)
            })
            .is_none());
        assert_eq!(asked, PROBES, "from the second round on, every tuple is checked");
        a.start_at(0);
        assert!(a.next(|_| panic!("a new walk starts a new first round")).is_some());
    }

    #[test]
    fn every_tuple_of_a_partition_is_owned_by_that_partition() {
        let r = SrcRange::parse("10.77.1.0/29").unwrap();
        for workers in [1, 2, 3, 5] {
            for w in 0..workers {
                let mut a = TupleAllocator::partition(r, 7000..=7010, w, workers).unwrap();
                let other = TupleAllocator::partition(r, 7000..=7010, (w + 1) % workers, workers).unwrap();
                for _ in 0..a.space() {
                    let t = a.next(|_| false).unwrap();
                    assert_eq!((a.owner(t), other.owner(t)), (Some(w), Some(w)), "{t} of {w}/{workers}");
                }
            }
        }
        let a = TupleAllocator::partition(r, 7000..=7010, 0, 2).unwrap();
        for outside in ["10.77.1.9:7000", "10.77.1.1:6999", "10.77.1.1:7011", "[fd77::1]:7000"] {
            assert_eq!(a.owner(outside.parse().unwrap()), None, "{outside}");
        }
    }

    #[test]
    fn busy_tuples_are_skipped_and_a_full_space_gives_up_without_spinning() {
        let r = SrcRange::parse("10.77.1.9").unwrap();
        let mut a = TupleAllocator::new(r, 6000..=6099).unwrap();
        for _ in 0..100 {
            a.next(|_| panic!("a tuple never handed out cannot be busy: the first round asks nothing")).unwrap();
        }
        let busy: HashSet<u16> = (6000..6050).collect();
        let t = a.next(|t| busy.contains(&t.port()));
        assert_eq!(t, None, "the first PROBES tuples are all busy: give up for this call");
        let mut calls = 0;
        let t = loop {
            calls += 1;
            if let Some(t) = a.next(|t| busy.contains(&t.port())) {
                break t;
            }
        };
        assert_eq!(t.port(), 6050);
        assert_eq!(calls, 3, "16 + 16 + 16 busy tuples skipped over three more calls");
        let mut probes = 0;
        assert_eq!(
            a.next(|_| {
                probes += 1;
                true
            }),
            None
        );
        assert_eq!(probes, PROBES);
    }
}
