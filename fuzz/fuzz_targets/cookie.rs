//! Cookie validation and the key file: any bytes as a key file never panic; any (flow, ISN, cookie, slot,
//! timestamp bits) checks without panicking; a minted cookie always validates in its slot and the next, and a
//! cookie changed in any bit of its MAC never does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use xdptcp::tcp::cookie::{self, KeyRing};
use xdptcp::tcp::flow::{FlowKey, V4Flow};

fn u32_at(d: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i + k).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    // Any bytes as a key file.
    let _ = KeyRing::from_bytes(data);
    let flow = V4Flow::new(
        Ipv4Addr::from(u32_at(data, 0)),
        (u32_at(data, 4) as u16).max(1),
        Ipv4Addr::from(u32_at(data, 8)),
        (u32_at(data, 12) as u16).max(1),
    );
    let isn = u32_at(data, 16);
    let slot = u64::from(u32_at(data, 20)) + 1;
    let mss = u32_at(data, 24) as u16;
    let ts = data.get(28).map(|b| b & 0x1f).filter(|_| data.get(29).is_some_and(|b| b & 1 == 1));
    let keys = KeyRing::from_seed(u64::from(u32_at(data, 30)), [slot - 1, slot, slot + 1]);
    // Arbitrary checks never panic.
    let _ = cookie::check(&keys, slot, &flow, isn, u32_at(data, 34), ts);
    let _ = cookie::check(&keys, 0, &flow, isn, u32_at(data, 34), ts);
    let _ = cookie::check(&keys, u64::MAX, &flow, isn, u32_at(data, 34), ts);
    // Minted cookies validate in their slot and the next one, with the MSS they carry.
    let c = cookie::mint(&keys, slot, &flow, isn, mss, ts).expect("the ring has the slot's key");
    assert_eq!(cookie::check(&keys, slot, &flow, isn, c.isn, ts), Ok(c.mss));
    assert_eq!(cookie::check(&keys, slot + 1, &flow, isn, c.isn, ts), Ok(c.mss));
    // Flipping any MAC bit refuses it.
    let bit = u32_at(data, 38) % cookie::MAC_BITS;
    assert!(cookie::check(&keys, slot, &flow, isn, c.isn ^ (1 << bit), ts).is_err());
    // So does a different client ISN.
    assert!(cookie::check(&keys, slot, &flow, isn.wrapping_add(1), c.isn, ts).is_err());
});
