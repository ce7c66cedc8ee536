//! SYN cookies: every ISN a listener sends is a MAC, so a SYN creates no state.
//!
//! CONTRACT (to be implemented; see the module docs the implementer writes for the bit layout and the proof):
//! - `mint` / `check` use SipHash-2-4 (siphasher) under the key of the clock slot over both addresses, both ports
//!   (via the flow key's `Hash`), the client's ISN, the full slot number, the MSS index and the timestamp bits.
//! - layout: 1 bit slot parity | 2 bits MSS index | 29 bits MAC  => a blind guess succeeds with p = 2^-29.
//! - a cookie minted in slot s validates during slots s and s+1 only, and only with the key of slot s.

use core::hash::Hash;
use std::time::Duration;

/// The cookie clock period (about 64 s, as the issue asks).
pub const PERIOD: Duration = Duration::from_secs(64);

/// The MSS values a cookie can carry, by index. A client's MSS is rounded down to the largest entry not above it.
pub const MSS_TABLE: [u16; 4] = [536, 1220, 1440, 1460];

/// One cookie key: the secret that mints and checks cookies of one clock slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CookieKey {
    pub slot: u64,
    pub secret: [u8; 16],
}

/// The keys a worker may use: at most [`KeyRing::CAPACITY`], the newest slots win.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: [Option<CookieKey>; KeyRing::CAPACITY],
}

/// What the client's SYN asked for, as the cookie carries it back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SynOptions {
    pub mss: u16,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
}

/// Why a cookie was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CookieError {
    /// No key is known for the slot the parity bit points to (too old, or keys not yet published).
    NoKey,
    /// The MAC does not match.
    BadMac,
}

/// A minted cookie: the ISN to send and the MSS it encodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cookie {
    pub isn: u32,
    pub mss: u16,
}

impl KeyRing {
    pub const CAPACITY: usize = 4;

    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a key, evicting the key of the oldest slot when full. A key for a slot already present replaces it.
    pub fn insert(&mut self, key: CookieKey) {
        let _ = key;
        todo!("cookie helper")
    }
    pub fn get(&self, slot: u64) -> Option<&CookieKey> {
        let _ = slot;
        todo!("cookie helper")
    }
    /// Deterministic keys for tests and benches: the secret of each slot derived from `seed`.
    pub fn from_seed(seed: u64, slots: impl IntoIterator<Item = u64>) -> Self {
        let _ = (seed, slots.into_iter());
        todo!("cookie helper")
    }
}

/// The cookie clock slot of a wall-clock time in nanoseconds since the UNIX epoch.
pub fn slot_at(wall_nanos: u64) -> u64 {
    let _ = wall_nanos;
    todo!("cookie helper")
}

/// Mints the ISN for a SYN. `ts_bits` is `Some` when the client sent timestamps (see [`encode_ts_bits`]).
/// Returns `None` when the ring has no key for `slot`.
pub fn mint<F: Hash>(
    keys: &KeyRing,
    slot: u64,
    flow: &F,
    client_isn: u32,
    client_mss: u16,
    ts_bits: Option<u8>,
) -> Option<Cookie> {
    let _ = (keys, slot, flow, client_isn, client_mss, ts_bits);
    todo!("cookie helper")
}

/// Checks the cookie of a handshake-completing ACK: `client_isn = SEG.SEQ - 1`, `cookie = SEG.ACK - 1`,
/// `ts_bits` from the low bits of TSecr when the ACK carries timestamps. Returns the MSS on success.
pub fn check<F: Hash>(
    keys: &KeyRing,
    now_slot: u64,
    flow: &F,
    client_isn: u32,
    cookie: u32,
    ts_bits: Option<u8>,
) -> Result<u16, CookieError> {
    let _ = (keys, now_slot, flow, client_isn, cookie, ts_bits);
    todo!("cookie helper")
}

/// Number of low TSval bits that carry the SYN's options.
pub const TS_BITS: u32 = 5;

/// Packs window scale and SACK-permitted into the low [`TS_BITS`] bits of our SYN-ACK's TSval.
pub fn encode_ts_bits(window_scale: Option<u8>, sack_permitted: bool) -> u8 {
    let _ = (window_scale, sack_permitted);
    todo!("cookie helper")
}

/// Inverse of [`encode_ts_bits`]: (window scale, SACK-permitted).
pub fn decode_ts_bits(bits: u8) -> (Option<u8>, bool) {
    let _ = bits;
    todo!("cookie helper")
}

/// Our SYN-ACK's TSval: the timestamp clock with its low bits replaced by `bits`, never ahead of `ts_now`.
pub fn tsval_with_bits(ts_now: u32, bits: u8) -> u32 {
    let _ = (ts_now, bits);
    todo!("cookie helper")
}
