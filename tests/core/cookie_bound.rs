//! The SYN-cookie guessing bound, counted rather than argued: a blind guess at one segment succeeds with
//! probability 8 / 2^32 = 2^-29 because exactly one MAC value is accepted per (slot parity, MSS index).
//!
//! Each test computes the analytic set of accepted values with `mint` (one per parity and MSS index whose slot
//! has a key) and counts what `check` accepts over large sets of candidates: a window of 2^24 consecutive values
//! around a valid cookie, one straddling a parity/MSS boundary, every parity/MSS variant, 2^22 random guesses,
//! shifted pairs and a rotating key ring.

use core::hash::Hash;
use xdptcp::tcp::cookie::{check, mint, CookieError, CookieKey, KeyRing, MSS_TABLE};
use xdptcp::tcp::flow::{V4Flow, V6Flow};

const MAC_BITS: u32 = 29;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;

/// A small deterministic generator (SplitMix64), so every run counts the same candidates.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn flow4(&mut self) -> V4Flow {
        let w = self.next_u64();
        let p = self.next_u32();
        V4Flow {
            local: (w as u32).to_be_bytes(),
            remote: ((w >> 32) as u32).to_be_bytes(),
            local_port: p as u16,
            remote_port: (p >> 16) as u16,
        }
    }
    fn ts_bits(&mut self) -> Option<u8> {
        let v = self.next_u32();
        (v & 1 == 1).then_some((v >> 1) as u8 & 0x1f)
    }
}

fn server_flow() -> V4Flow {
    V4Flow { local: [10, 1, 0, 1], remote: [10, 1, 7, 9], local_port: 443, remote_port: 51_234 }
}

/// Every cookie value `check` may accept for this segment at `now`, by the layout: for the slot each parity
/// selects (now, or now - 1) and that has a key, one value per MSS index. Sorted.
fn analytic_accepted<F: Hash>(keys: &KeyRing, now: u64, flow: &F, client_isn: u32, ts: Option<u8>) -> Vec<u32> {
    let mut out: Vec<u32> = [Some(now), now.checked_sub(1)]
        .into_iter()
        .flatten()
        .flat_map(|slot| MSS_TABLE.iter().filter_map(move |&mss| mint(keys, slot, flow, client_isn, mss, ts)))
        .map(|c| c.isn)
        .collect();
    out.sort_unstable();
    out
}

/// The values `check` accepts among `count` consecutive cookies starting at `start` (wrapping), sorted.
fn accepted_in_window<F: Hash>(
    keys: &KeyRing,
    now: u64,
    flow: &F,
    client_isn: u32,
    ts: Option<u8>,
    start: u32,
    count: u32,
) -> Vec<u32> {
    let mut out: Vec<u32> = (0..count)
        .map(|i| start.wrapping_add(i))
        .filter(|&c| check(keys, now, flow, client_isn, c, ts).is_ok())
        .collect();
    out.sort_unstable();
    out
}

fn in_window(value: u32, start: u32, count: u32) -> bool {
    value.wrapping_sub(start) < count
}

#[test]
fn layout_accepts_exactly_one_value_per_parity_and_mss_index() {
    let keys = KeyRing::from_seed(11, [99, 100, 101]);
    let set = analytic_accepted(&keys, 100, &server_flow(), 7, Some(0x1e));
    assert_eq!(set.len(), 8);
    let mut prefixes: Vec<u32> = set.iter().map(|c| c >> MAC_BITS).collect();
    prefixes.dedup();
    assert_eq!(prefixes, (0..8).collect::<Vec<_>>(), "one accepted value per 3-bit prefix");
    for c in set {
        let mss = MSS_TABLE[((c >> MAC_BITS) & 3) as usize];
        assert_eq!(check(&keys, 100, &server_flow(), 7, c, Some(0x1e)), Ok(mss));
    }
    // With only the current slot's key, half the prefixes point at a missing key: 4 values.
    let keys = KeyRing::from_seed(11, [100]);
    assert_eq!(analytic_accepted(&keys, 100, &server_flow(), 7, Some(0x1e)).len(), 4);
}

#[test]
fn blind_guess_window_of_2_pow_24_around_a_valid_cookie_accepts_only_the_analytic_values() {
    let keys = KeyRing::from_seed(21, [4_999, 5_000, 5_001]);
    let (now, isn, ts) = (5_000, 0x1234_5678, Some(0x07));
    let cookie = mint(&keys, now, &server_flow(), isn, 1460, ts).unwrap().isn;
    let analytic = analytic_accepted(&keys, now, &server_flow(), isn, ts);

    let count = 1u32 << 24;
    let start = cookie.wrapping_sub(count / 2);
    let accepted = accepted_in_window(&keys, now, &server_flow(), isn, ts, start, count);
    let expected: Vec<u32> = analytic.iter().copied().filter(|&c| in_window(c, start, count)).collect();
    assert!(accepted.contains(&cookie));
    assert_eq!(accepted, expected, "2^24 candidates around {cookie:#010x}");
    // The rate in the window: at most the 8 of the layout among 2^24, so far below 2^-16 per value.
    assert!(accepted.len() <= 8);
}

#[test]
fn blind_guess_window_across_a_parity_mss_boundary_accepts_only_the_analytic_values() {
    let keys = KeyRing::from_seed(22, [70, 71]);
    let (now, isn, ts) = (71, 0xFFFF_FFFF, None);
    let cookie = mint(&keys, now, &server_flow(), isn, 1300, ts).unwrap().isn;
    let analytic = analytic_accepted(&keys, now, &server_flow(), isn, ts);
    // 2^22 values centred on the first value of the next prefix: the top of this prefix, the bottom of the next.
    let count = 1u32 << 22;
    let boundary = (cookie | MAC_MASK).wrapping_add(1);
    let start = boundary.wrapping_sub(count / 2);
    let accepted = accepted_in_window(&keys, now, &server_flow(), isn, ts, start, count);
    let expected: Vec<u32> = analytic.iter().copied().filter(|&c| in_window(c, start, count)).collect();
    assert_eq!(accepted, expected, "2^22 candidates around {boundary:#010x}");
}

#[test]
fn every_parity_and_mss_variant_of_a_valid_cookie_is_refused_unless_analytic() {
    let mut rng = SplitMix(31);
    let mut accepted_total = 0;
    for round in 0..64u64 {
        let now = 1_000 + round;
        let keys = KeyRing::from_seed(rng.next_u64(), [now - 1, now]);
        let flow = rng.flow4();
        let (isn, ts) = (rng.next_u32(), rng.ts_bits());
        let mss = MSS_TABLE[(round % 4) as usize];
        let cookie = mint(&keys, now, &flow, isn, mss, ts).unwrap().isn;
        let analytic = analytic_accepted(&keys, now, &flow, isn, ts);
        let mac = cookie & MAC_MASK;
        let accepted: Vec<u32> = (0..8u32)
            .map(|prefix| prefix << MAC_BITS | mac)
            .filter(|&c| check(&keys, now, &flow, isn, c, ts).is_ok())
            .collect();
        for c in &accepted {
            assert!(analytic.contains(c));
        }
        assert!(accepted.contains(&cookie));
        accepted_total += accepted.len();
    }
    // Each of the 7 other variants is accepted only if its prefix's MAC happens to equal this one (2^-29 each).
    assert_eq!(accepted_total, 64);
}

#[test]
fn random_guesses_are_accepted_at_the_rate_2_pow_minus_29() {
    const GUESSES: u32 = 1 << 22;
    let mut rng = SplitMix(0xB11D);
    let mut keys = KeyRing::new();
    let mut now = 0;
    let mut accepts = 0u32;
    // Matches of the low k MAC bits with the one value the guess's prefix allows, for k = 8, 12, 16: they must
    // fall as 2^-k, the trend whose end (k = 29) is the bound the full check enforces.
    let mut partial = [0u32; 3];
    for i in 0..GUESSES {
        if i % 1024 == 0 {
            now = 1 + (rng.next_u64() >> 8);
            keys = KeyRing::from_seed(rng.next_u64(), [now - 1, now]);
        }
        let flow = rng.flow4();
        let (isn, ts, guess) = (rng.next_u32(), rng.ts_bits(), rng.next_u32());
        let verdict = check(&keys, now, &flow, isn, guess, ts);
        let parity = u64::from(guess >> 31);
        let slot = if now % 2 == parity { now } else { now - 1 };
        let mss = MSS_TABLE[((guess >> MAC_BITS) & 3) as usize];
        let allowed = mint(&keys, slot, &flow, isn, mss, ts).unwrap().isn;
        assert_eq!(verdict.is_ok(), guess == allowed, "check and the layout disagree on {guess:#010x}");
        if verdict.is_err() {
            assert_eq!(verdict, Err(CookieError::BadMac));
        }
        accepts += u32::from(verdict.is_ok());
        for (n, k) in partial.iter_mut().zip([8u32, 12, 16]) {
            *n += u32::from((guess ^ allowed) & ((1 << k) - 1) == 0);
        }
    }
    // Expected accepts: 2^22 * 2^-29 = 2^-7. Two or more would have probability about 3e-5 at the bound; a MAC
    // checked on 20 bits would expect 4.
    println!("2^22 random guesses: {accepts} accepted; low 8/12/16 MAC bits matched {partial:?}");
    assert!(accepts <= 1, "{accepts} blind guesses accepted out of 2^22");
    for (n, k) in partial.into_iter().zip([8u32, 12, 16]) {
        let mean = f64::from(GUESSES) / f64::from(1u32 << k);
        let tolerance = 6.0 * mean.sqrt();
        assert!((f64::from(n) - mean).abs() <= tolerance, "low {k} bits matched {n} times, expected {mean}");
    }
}

#[test]
fn exact_pair_ack_with_seq_and_ack_moved_by_the_same_amount_never_validates() {
    let keys = KeyRing::from_seed(41, [7, 8]);
    let mut rng = SplitMix(42);
    let mut accepted = 0u32;
    for _ in 0..4 {
        let flow = rng.flow4();
        let (isn, ts) = (rng.next_u32(), rng.ts_bits());
        let cookie = mint(&keys, 8, &flow, isn, 1460, ts).unwrap().isn;
        assert!(check(&keys, 8, &flow, isn, cookie, ts).is_ok());
        let shifts = (1..=1u32 << 14).flat_map(|k| [k, k.wrapping_neg()]).chain((0..1 << 12).map(|_| rng.next_u32()));
        for k in shifts.filter(|&k| k != 0) {
            // Both moved on by k (as in a later segment of the same stream), and each moved alone.
            for (seq, ack) in [(k, k), (k, 0), (0, k)] {
                accepted +=
                    u32::from(check(&keys, 8, &flow, isn.wrapping_add(seq), cookie.wrapping_add(ack), ts).is_ok());
            }
        }
    }
    assert_eq!(accepted, 0, "a shifted pair validated");
}

#[test]
fn key_rotation_cookie_of_slot_s_validates_during_s_and_s_plus_1_only() {
    // The runtime's rotation: at slot t it publishes the key of t + 1; the ring keeps the newest four.
    let start = 1_000_000u64;
    let mut keys = KeyRing::from_seed(51, [start - 1, start]);
    let mut minted: Vec<(u64, V4Flow, u32, Option<u8>, u32)> = Vec::new();
    let mut rng = SplitMix(52);
    for t in start..start + 24 {
        keys.insert(CookieKey { slot: t + 1, secret: KeyRing::from_seed(51, [t + 1]).get(t + 1).unwrap().secret });
        let flow = rng.flow4();
        let (isn, ts) = (rng.next_u32(), rng.ts_bits());
        minted.push((t, flow, isn, ts, mint(&keys, t, &flow, isn, 1440, ts).unwrap().isn));
        for &(m, flow, isn, ts, cookie) in &minted {
            let verdict = check(&keys, t, &flow, isn, cookie, ts);
            if t - m <= 1 {
                assert_eq!(verdict, Ok(1440), "minted at {m}, checked at {t}");
            } else {
                assert!(verdict.is_err(), "minted at {m}, accepted at {t}");
            }
        }
    }
}

#[test]
fn key_rotation_refuses_wrong_key_flow_isn_ts_bits_and_mss() {
    let s = 77_777u64;
    let keys = KeyRing::from_seed(61, [s - 1, s, s + 1]);
    let flow = server_flow();
    let (isn, ts) = (0xDEAD_BEEF, Some(0x15));
    let cookie = mint(&keys, s, &flow, isn, 1220, ts).unwrap().isn;
    assert_eq!(check(&keys, s, &flow, isn, cookie, ts), Ok(1220));
    assert_eq!(check(&keys, s + 1, &flow, isn, cookie, ts), Ok(1220));
    assert_eq!(check(&keys, s + 2, &flow, isn, cookie, ts), Err(CookieError::NoKey));
    let mut later = keys.clone();
    later.insert(CookieKey { slot: s + 2, secret: [0x5A; 16] });
    assert_eq!(check(&later, s + 2, &flow, isn, cookie, ts), Err(CookieError::BadMac));
    assert_eq!(check(&later, s + 3, &flow, isn, cookie, ts), Err(CookieError::BadMac));

    let wrong = KeyRing::from_seed(62, [s - 1, s, s + 1]);
    assert_eq!(check(&wrong, s, &flow, isn, cookie, ts), Err(CookieError::BadMac));
    let mut other_flow = flow;
    other_flow.remote_port += 1;
    assert_eq!(check(&keys, s, &other_flow, isn, cookie, ts), Err(CookieError::BadMac));
    let v6 = V6Flow { local: [0; 16], remote: [0; 16], local_port: 443, remote_port: 51_234 };
    assert!(check(&keys, s, &v6, isn, cookie, ts).is_err());
    assert_eq!(check(&keys, s, &flow, isn ^ 1, cookie, ts), Err(CookieError::BadMac));
    assert_eq!(check(&keys, s, &flow, isn, cookie, Some(0x14)), Err(CookieError::BadMac));
    assert_eq!(check(&keys, s, &flow, isn, cookie, None), Err(CookieError::BadMac));
    for other_idx in [0u32, 2, 3] {
        let variant = (cookie & !(3 << MAC_BITS)) | other_idx << MAC_BITS;
        assert_eq!(check(&keys, s, &flow, isn, variant, ts), Err(CookieError::BadMac));
    }
}
