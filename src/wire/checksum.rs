//! The Internet checksum (RFC 1071), its pseudo-headers, and incremental update (RFC 1624).
//!
//! Owns the arithmetic only: it never decides whether a packet is acceptable. Sums are returned folded to 16 bits
//! and *not* complemented, so they can be combined with [`add`]; [`finish`] turns a sum into the field value.
//! All values are in network-order numeric terms (`0x4500` for the bytes `45 00`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 64-bit end-around-carry accumulator to 16 bits.
#[inline]
fn fold(acc: u64) -> u16 {
    // 2^16 ≡ 1 (mod 2^16 − 1), so adding the halves keeps the ones' complement value; four rounds are enough to
    // bring any u64 down to 16 bits.
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds `word` to `acc` with end-around carry, which keeps the sum exact modulo 2^64 − 1 for any input length.
#[inline(always)]
fn add_carry(acc: u64, word: u64) -> u64 {
    let (sum, carry) = acc.overflowing_add(word);
    // Cannot overflow: when carry is set, sum <= 2^64 − 2.
    sum + u64::from(carry)
}

/// The ones' complement sum of `data` as 16-bit big-endian words, the last odd byte padded with zero.
///
/// Reads eight bytes at a time in native order: the ones' complement sum commutes with byte swapping (RFC 1071
/// §2(B)), so the result only needs one swap at the end. Works for any length and any alignment.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // Two accumulators over 16-byte blocks halve the carry chain on long payloads.
    let mut blocks = data.chunks_exact(16);
    let (mut even, mut odd) = (0u64, 0u64);
    for block in &mut blocks {
        let (lo, hi) = block.split_at(8);
        even = add_carry(even, load(lo));
        odd = add_carry(odd, load(hi));
    }
    let mut acc = add_carry(even, odd);
    let mut rest = blocks.remainder();
    if rest.len() >= 8 {
        let (word, tail) = rest.split_at(8);
        acc = add_carry(acc, load(word));
        rest = tail;
    }
    // Up to seven bytes left. Narrower native loads keep each byte at its offset, so the 16-bit lanes stay
    // aligned; a lone final byte becomes the high octet of a zero-padded word, as RFC 1071 asks.
    if let Some((quad, tail)) = rest.split_first_chunk::<4>() {
        acc = add_carry(acc, u64::from(u32::from_ne_bytes(*quad)));
        rest = tail;
    }
    if let Some((pair, tail)) = rest.split_first_chunk::<2>() {
        acc = add_carry(acc, u64::from(u16::from_ne_bytes(*pair)));
        rest = tail;
    }
    if let Some(&last) = rest.first() {
        acc = add_carry(acc, u64::from(u16::from_ne_bytes([last, 0])));
    }
    u16::from_be_bytes(fold(acc).to_ne_bytes())
}

/// Eight bytes in native order. Callers pass exactly eight; anything else reads as zero rather than panicking.
#[inline(always)]
fn load(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_ne_bytes)
}

/// Ones' complement addition of two folded sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let (s, carry) = a.overflowing_add(b);
    s + u16::from(carry)
}

/// Turns a sum into the value of a checksum field.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The checksum field value for `data` alone (as for an IPv4 header whose checksum field is zero).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// True when `data`, checksum field included, sums to all ones.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// True when the pseudo-header sum plus `data`, checksum field included, sums to all ones.
#[inline]
pub fn verify_with(pseudo_header: u16, data: &[u8]) -> bool {
    add(pseudo_header, sum(data)) == 0xffff
}

/// The sum of the IPv4 pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol, upper-layer length.
#[inline]
pub fn ipv4_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = src.to_bits();
    let d = dst.to_bits();
    let acc = u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit length, zero, next header.
#[inline]
pub fn ipv6_pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let s = src.to_bits();
    let d = dst.to_bits();
    let mut acc = u64::from(next_header) + u64::from(length >> 16) + u64::from(length & 0xffff);
    for half in [s >> 64, s & u128::from(u64::MAX), d >> 64, d & u128::from(u64::MAX)] {
        // Each 64-bit half is four 16-bit words; splitting into 32-bit halves keeps the additions carry-free.
        let half = half as u64;
        acc += (half >> 32) + (half & 0xffff_ffff);
    }
    fold(acc)
}

/// RFC 1624 eqn. 3: the new checksum field after a 16-bit word changed from `old` to `new`,
/// `HC' = ~(~HC + ~m + m')`, without touching the rest of the data.
#[inline]
pub fn update(field: u16, old: u16, new: u16) -> u16 {
    !add(add(!field, !old), new)
}

/// [`update`] for a 32-bit value (two adjacent, 16-bit aligned words such as a sequence number or an address).
#[inline]
pub fn update_u32(field: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!field)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 written as plainly as possible: big-endian byte pairs, a wide accumulator, fold at the end.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = u64::from(data[i]) << 8;
            let lo = data.get(i + 1).map_or(0, |&b| u64::from(b));
            acc += hi | lo;
            i += 2;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    fn equivalent(a: u16, b: u16) -> bool {
        // +0 and −0 are the same number in ones' complement.
        a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
    }

    #[test]
    fn rfc1071_3_numerical_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(reference_sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn rfc1071_odd_length_pads_last_byte_as_high_octet() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x00, 0x01, 0xab]), 0xab01);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn rfc1071_known_ipv4_header_verifies() {
        // A header from a real capture, checksum 0xb861.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert!(verify(&header));
        let mut zeroed = header;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn rfc1071_all_ones_carries_wrap_around() {
        let data = vec![0xff; 4099];
        assert_eq!(sum(&data), reference_sum(&data));
    }

    #[test]
    fn rfc9293_3_1_pseudo_headers_match_byte_layout() {
        let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 254, 200));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s4.octets());
        bytes.extend_from_slice(&d4.octets());
        bytes.extend_from_slice(&[0, 6, 0x05, 0xdc]);
        assert_eq!(ipv4_pseudo_header(s4, d4, 6, 1500), reference_sum(&bytes));

        let s6: Ipv6Addr = "2001:db8::ffff:1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:ffff:ffff:ffff".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&d6.octets());
        bytes.extend_from_slice(&70_000u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(ipv6_pseudo_header(s6, d6, 6, 70_000), reference_sum(&bytes));
    }

    proptest! {
        #[test]
        fn rfc1071_fast_sum_equals_byte_pair_reference(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                                        start in 0usize..8) {
            // Every alignment: sum a sub-slice starting at each offset.
            let start = start.min(data.len());
            let slice = &data[start..];
            prop_assert_eq!(sum(slice), reference_sum(slice));
        }

        #[test]
        fn rfc1071_sums_of_even_length_parts_combine(a in proptest::collection::vec(any::<u8>(), 0..64),
                                                     b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut a = a;
            if a.len() % 2 == 1 { a.pop(); }
            let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            prop_assert!(equivalent(add(sum(&a), sum(&b)), sum(&whole)));
        }

        #[test]
        fn rfc1071_checksum_then_verify(data in proptest::collection::vec(any::<u8>(), 2..256), at in any::<usize>()) {
            // Put the checksum at any even offset, as a header would.
            let mut data = data;
            if data.len() % 2 == 1 { data.push(0); }
            let at = (at % (data.len() / 2)) * 2;
            data[at] = 0;
            data[at + 1] = 0;
            let c = checksum(&data);
            data[at..at + 2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify(&data));
        }

        #[test]
        fn rfc1624_incremental_update_equals_recomputation(
            data in proptest::collection::vec(any::<u8>(), 4..128),
            at in any::<usize>(),
            new in any::<u16>(),
        ) {
            let mut data = data;
            if data.len() % 2 == 1 { data.push(0); }
            let at = (at % (data.len() / 2)) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let after = checksum(&data);
            let incremental = update(before, old, new);
            if data.iter().all(|&b| b == 0) {
                // Only all-zero data has two valid encodings (RFC 1624 §3): accept either zero.
                prop_assert!(equivalent(incremental, after));
            } else {
                prop_assert_eq!(incremental, after);
            }
        }

        #[test]
        fn rfc1624_incremental_update_of_32_bit_field(
            data in proptest::collection::vec(any::<u8>(), 8..128),
            at in any::<usize>(),
            new in any::<u32>(),
        ) {
            let mut data = data;
            if data.len() % 2 == 1 { data.push(0); }
            let at = (at % (data.len() / 2 - 1)) * 2;
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let after = checksum(&data);
            let incremental = update_u32(before, old, new);
            if data.iter().all(|&b| b == 0) {
                prop_assert!(equivalent(incremental, after));
            } else {
                prop_assert_eq!(incremental, after);
            }
        }

        #[test]
        fn rfc9293_3_1_pseudo_header_sums_equal_reference(s in any::<u32>(), d in any::<u32>(), p in any::<u8>(),
                                                         len in any::<u16>(), s6 in any::<u128>(), d6 in any::<u128>(),
                                                         len6 in any::<u32>()) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&s.to_be_bytes());
            bytes.extend_from_slice(&d.to_be_bytes());
            bytes.extend_from_slice(&[0, p]);
            bytes.extend_from_slice(&len.to_be_bytes());
            prop_assert!(equivalent(ipv4_pseudo_header(Ipv4Addr::from(s), Ipv4Addr::from(d), p, len),
                                    reference_sum(&bytes)));
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&s6.to_be_bytes());
            bytes.extend_from_slice(&d6.to_be_bytes());
            bytes.extend_from_slice(&len6.to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, p]);
            prop_assert!(equivalent(ipv6_pseudo_header(Ipv6Addr::from(s6), Ipv6Addr::from(d6), p, len6),
                                    reference_sum(&bytes)));
        }
    }
}
