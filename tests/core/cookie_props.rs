//! Property tests for SYN cookies, the timestamp bits, the key file and RFC 6528 ISNs: round trip, expiry,
//! wrong key and wrong pair for arbitrary flows and segments.

use proptest::prelude::*;
use xdptcp::tcp::cookie::{
    check, decode_ts_bits, encode_ts_bits, mint, mss_index, tsval_with_bits, CookieError, CookieKey, KeyRing, MSS_TABLE,
};
use xdptcp::tcp::flow::{V4Flow, V6Flow};
use xdptcp::tcp::isn::IsnGenerator;
use xdptcp::time::Instant;

fn v4_flow() -> impl Strategy<Value = V4Flow> {
    (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>())
        .prop_map(|(local, remote, local_port, remote_port)| V4Flow { local, remote, local_port, remote_port })
}

fn v6_flow() -> impl Strategy<Value = V6Flow> {
    (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>())
        .prop_map(|(local, remote, local_port, remote_port)| V6Flow { local, remote, local_port, remote_port })
}

fn ts_bits() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(0u8..32)
}

/// Slots far from both ends, so that s - 1 and s + 3 exist.
fn slot() -> impl Strategy<Value = u64> {
    1u64..u64::MAX - 4
}

fn expected_mss(client_mss: u16) -> u16 {
    MSS_TABLE[usize::from(mss_index(client_mss))]
}

proptest! {
    #![proptest_config(crate::regressions::config(256))]
    #[test]
    fn cookie_round_trips_in_its_slot_and_the_next(
        flow in v4_flow(), isn in any::<u32>(), mss in any::<u16>(), ts in ts_bits(), s in slot(), seed in any::<u64>()
    ) {
        let keys = KeyRing::from_seed(seed, [s - 1, s, s + 1]);
        let c = mint(&keys, s, &flow, isn, mss, ts).unwrap();
        prop_assert_eq!(c.mss, expected_mss(mss));
        prop_assert!(c.mss <= mss || c.mss == MSS_TABLE[0]);
        prop_assert_eq!(check(&keys, s, &flow, isn, c.isn, ts), Ok(c.mss));
        prop_assert_eq!(check(&keys, s + 1, &flow, isn, c.isn, ts), Ok(c.mss));
    }

    #[test]
    fn cookie_round_trips_for_v6_flows(
        flow in v6_flow(), isn in any::<u32>(), mss in any::<u16>(), ts in ts_bits(), s in slot(), seed in any::<u64>()
    ) {
        let keys = KeyRing::from_seed(seed, [s, s + 1]);
        let c = mint(&keys, s, &flow, isn, mss, ts).unwrap();
        prop_assert_eq!(check(&keys, s, &flow, isn, c.isn, ts), Ok(expected_mss(mss)));
        prop_assert_eq!(check(&keys, s + 1, &flow, isn, c.isn, ts), Ok(expected_mss(mss)));
    }

    #[test]
    fn cookie_expires_after_two_slots(
        flow in v4_flow(), isn in any::<u32>(), mss in any::<u16>(), ts in ts_bits(), s in slot(), seed in any::<u64>()
    ) {
        let keys = KeyRing::from_seed(seed, [s, s + 1]);
        let c = mint(&keys, s, &flow, isn, mss, ts).unwrap();
        // The parity points at s + 2 (then s + 2 again from s + 3): no key yet, or a key that is not s's.
        prop_assert_eq!(check(&keys, s + 2, &flow, isn, c.isn, ts), Err(CookieError::NoKey));
        prop_assert_eq!(check(&keys, s + 3, &flow, isn, c.isn, ts), Err(CookieError::NoKey));
        let rotated = KeyRing::from_seed(seed, [s, s + 1, s + 2, s + 3]);
        prop_assert_eq!(check(&rotated, s + 2, &flow, isn, c.isn, ts), Err(CookieError::BadMac));
        prop_assert_eq!(check(&rotated, s + 3, &flow, isn, c.isn, ts), Err(CookieError::BadMac));
        // Nor before it was minted: at s - 1 the parity points at s - 2.
        prop_assert_eq!(check(&keys, s - 1, &flow, isn, c.isn, ts), Err(CookieError::NoKey));
    }

    #[test]
    fn cookie_refuses_a_wrong_key(
        flow in v4_flow(), isn in any::<u32>(), mss in any::<u16>(), ts in ts_bits(), s in slot(),
        seed in any::<u64>(), other_seed in any::<u64>()
    ) {
        prop_assume!(seed != other_seed);
        let keys = KeyRing::from_seed(seed, [s - 1, s]);
        let wrong = KeyRing::from_seed(other_seed, [s - 1, s]);
        let c = mint(&keys, s, &flow, isn, mss, ts).unwrap();
        prop_assert_eq!(check(&wrong, s, &flow, isn, c.isn, ts), Err(CookieError::BadMac));
    }

    #[test]
    fn cookie_refuses_a_wrong_pair(
        flow in v4_flow(), isn in any::<u32>(), mss in any::<u16>(), ts in ts_bits(), s in slot(),
        seed in any::<u64>(), k in 1u32..=u32::MAX
    ) {
        let keys = KeyRing::from_seed(seed, [s - 1, s]);
        let c = mint(&keys, s, &flow, isn, mss, ts).unwrap();
        // seq and ack moved on by the same k, as Linux's additive cookie would accept; then each alone.
        prop_assert!(check(&keys, s, &flow, isn.wrapping_add(k), c.isn.wrapping_add(k), ts).is_err());
        prop_assert!(check(&keys, s, &flow, isn.wrapping_sub(k), c.isn.wrapping_sub(k), ts).is_err());
        prop_assert!(check(&keys, s, &flow, isn.wrapping_add(k), c.isn, ts).is_err());
        prop_assert!(check(&keys, s, &flow, isn, c.isn.wrapping_add(k), ts).is_err());
    }

    #[test]
    fn cookie_refuses_other_flows_and_ts_bits(
        flow in v4_flow(), other in v4_flow(), isn in any::<u32>(), ts in ts_bits(), other_ts in ts_bits(),
        s in slot(), seed in any::<u64>()
    ) {
        let keys = KeyRing::from_seed(seed, [s]);
        let c = mint(&keys, s, &flow, isn, 1460, ts).unwrap();
        if other != flow {
            prop_assert_eq!(check(&keys, s, &other, isn, c.isn, ts), Err(CookieError::BadMac));
        }
        if other_ts != ts {
            prop_assert_eq!(check(&keys, s, &flow, isn, c.isn, other_ts), Err(CookieError::BadMac));
        }
    }

    #[test]
    fn check_never_panics(
        flow in v4_flow(), isn in any::<u32>(), cookie in any::<u32>(), ts in proptest::option::of(any::<u8>()),
        now in any::<u64>(), slots in proptest::collection::vec(any::<u64>(), 0..6), seed in any::<u64>()
    ) {
        let keys = KeyRing::from_seed(seed, slots);
        let _ = check(&keys, now, &flow, isn, cookie, ts);
        let _ = mint(&keys, now, &flow, isn, cookie as u16, ts);
    }

    #[test]
    fn ts_bits_round_trip(ws in proptest::option::of(0u8..=14), sack in any::<bool>()) {
        let bits = encode_ts_bits(ws, sack);
        prop_assert!(bits < 32);
        prop_assert_eq!(decode_ts_bits(bits), (ws, sack));
    }

    #[test]
    fn tsval_with_bits_keeps_bits_and_never_runs_ahead(ts_now in any::<u32>(), bits in 0u8..32) {
        let tsval = tsval_with_bits(ts_now, bits);
        prop_assert_eq!(tsval & 0x1f, u32::from(bits));
        // In sequence-space terms tsval <= ts_now, and at most one lap of the low bits behind.
        prop_assert!(ts_now.wrapping_sub(tsval) < 32);
        // What the core passes to `check` from the echoed TSecr is what was encoded.
        prop_assert_eq!(tsval as u8 & 0x1f, bits);
    }

    #[test]
    fn key_file_round_trips(keys in proptest::collection::vec((any::<u64>(), any::<[u8; 16]>()), 0..=4)) {
        let mut ring = KeyRing::new();
        for (slot, secret) in keys {
            ring.insert(CookieKey { slot, secret });
        }
        prop_assert_eq!(ring.to_text().parse::<KeyRing>(), Ok(ring.clone()));
        prop_assert_eq!(KeyRing::from_bytes(&ring.to_bytes()), Ok(ring));
    }

    #[test]
    fn key_file_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), text in "\\PC{0,200}") {
        let _ = KeyRing::from_bytes(&bytes);
        let _ = text.parse::<KeyRing>();
        let _ = format!("xdptcp-cookie-keys v1\n{text}").parse::<KeyRing>();
    }

    #[test]
    fn rfc6528_isn_advances_with_the_4_microsecond_clock(
        flow in v4_flow(), secret in any::<[u8; 16]>(), t in 0u64..1 << 60, ticks in 0u64..1 << 40
    ) {
        let g = IsnGenerator::new(secret);
        let later = Instant::from_nanos(t + ticks * 4_000);
        prop_assert_eq!(g.isn(later, &flow).wrapping_sub(g.isn(Instant::from_nanos(t), &flow)), ticks as u32);
    }
}
