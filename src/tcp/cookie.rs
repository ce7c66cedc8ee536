//! SYN cookies: every ISN a listener sends is a MAC, so a SYN creates no state.
//!
//! This module owns the cookie format ([`mint`], [`check`]), the keys that seal it ([`KeyRing`] and its key-file
//! text) and the timestamp trick that carries a SYN's window scale and SACK-permitted to the handshake's ACK
//! ([`encode_ts_bits`], [`tsval_with_bits`]). It is pure: it never reads a clock, never draws randomness, never
//! keeps state per SYN, never allocates per packet and never panics, whatever the input.
//!
//! # Layout
//!
//! ```text
//!   31   30  29  28                                                      0
//! +----+--------+---------------------------------------------------------+
//! | p  |  mss   |                    MAC (29 bits)                        |
//! +----+--------+---------------------------------------------------------+
//!   p   = s mod 2, where s = wall time / PERIOD is the clock slot the cookie was minted in
//!   mss = index into MSS_TABLE (the client's MSS rounded down; below 536 it becomes 536, as in Linux)
//!   MAC = low 29 bits of SipHash-2-4 under the secret of slot s over
//!         flow key (both addresses, both ports, via its `Hash`) || s as u64 || client ISN | mss << 32 | ts << 40
//!         where ts = the 5 timestamp bits (0..=31) when the client sent timestamps, 0xFF when it did not
//! ```
//!
//! # Validity: at least one, at most two periods
//!
//! [`check`] at slot `now` reads the parity bit and takes `s = now` if it matches `now`'s parity, `s = now - 1`
//! otherwise. A cookie minted in slot `s` therefore validates during slots `s` and `s + 1` (between one and two
//! [`PERIOD`]s of wall time, depending on when in slot `s` it was minted) and never later: at `s + 2` the parity
//! points to slot `s + 2`, whose key differs. The check also needs the key of slot `s` in the ring, so rotation
//! is: publish the key of the next slot before it starts, keep the previous one for one period.
//!
//! # The exact pair
//!
//! Linux adds its hash to the client's ISN, so an ACK whose sequence and acknowledgment numbers both moved on by
//! the same amount still validates. Here the MAC's input holds the exact client ISN (`SEG.SEQ - 1`) and the
//! output is compared with the exact cookie (`SEG.ACK - 1`): moving either changes the MAC input or the value
//! compared, so such an ACK is, like any other guess, accepted only with probability 2^-29.
//!
//! # Blind-guess bound: p = 8 / 2^32 = 2^-29 per segment
//!
//! Fix everything an attacker controls in one segment: the flow, the client ISN, the timestamp bits and the
//! arrival slot `now`. The three top bits of the guess select one (slot, MSS index) of 2 × 4 = 8 combinations;
//! for each, exactly one value of the 29 MAC bits is accepted (the MAC is a function of the segment and the
//! combination). So exactly 8 of the 2^32 cookie values pass, fewer when a key is missing: a uniform guess
//! succeeds with p = 8 / 2^32 = 2^-29. A guess that fixes the top bits does no better: for any fixed
//! combination, the accepted MAC is 29 bits of a PRF under a secret key the attacker has not seen, so it is hit
//! with probability 2^-29 (plus SipHash's negligible PRF advantage). Cookies observed for other segments do not
//! help for the same reason. tests/core/cookie_bound.rs counts the accepted values around valid cookies to prove
//! the "exactly 8" part.
//!
//! # Timestamp bits
//!
//! When the SYN carries timestamps, the low [`TS_BITS`] bits of our SYN-ACK's TSval hold its options (bits 3..0:
//! window scale 0..=14, 15 = none; bit 4: SACK-permitted), and the client echoes them in the ACK's TSecr. They are
//! also under the MAC, so a forged TSecr cannot turn them on. Without timestamps the MAC covers 0xFF and the
//! connection runs without window scaling and SACK. Timestamp presence must match between mint and check.
//!
//! # Keys
//!
//! Production secrets come from the OS RNG in the runtime, one per slot; [`KeyRing::from_seed`] is a deterministic
//! derivation for tests and benches only. A ring can be written and read as text ([`KeyRing::to_text`],
//! `KeyRing::from_str`) for `--cookie-key-file`; servers that share keys should run the same build, as the MAC
//! hashes the flow through its derived `Hash`.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;
use siphasher::sip::SipHasher24;
use std::time::Duration;

/// The cookie clock period (about 64 s, as the issue asks).
pub const PERIOD: Duration = Duration::from_secs(64);

/// [`PERIOD`] in nanoseconds.
const PERIOD_NANOS: u64 = 64_000_000_000;
const _: () = assert!(PERIOD.as_nanos() == PERIOD_NANOS as u128);

/// The MSS values a cookie can carry, by index. A client's MSS is rounded down to the largest entry not above it.
pub const MSS_TABLE: [u16; 4] = [536, 1220, 1440, 1460];

/// Bits of the cookie that carry the MAC.
pub const MAC_BITS: u32 = 29;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;
const MSS_SHIFT: u32 = MAC_BITS;
const PARITY_SHIFT: u32 = 31;
// Two index bits address the whole table, and every index they can hold is inside it.
const _: () = assert!(MSS_TABLE.len() == 1 << (PARITY_SHIFT - MSS_SHIFT));

/// What the MAC hashes for "no timestamp option": outside 0..=31, so it cannot collide with real bits.
const TS_ABSENT: u8 = 0xFF;

/// One cookie key: the secret that mints and checks cookies of one clock slot. `Debug` does not show the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CookieKey {
    pub slot: u64,
    pub secret: [u8; 16],
}

impl CookieKey {
    #[inline]
    pub const fn new(slot: u64, secret: [u8; 16]) -> Self {
        CookieKey { slot, secret }
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKey").field("slot", &self.slot).field("secret", &format_args!("<redacted>")).finish()
    }
}

/// The keys a worker may use: at most [`KeyRing::CAPACITY`], the newest slots win.
///
/// Kept sorted by slot, oldest first, empty entries last, so that two rings holding the same keys are equal
/// whatever the order they were inserted in.
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

impl SynOptions {
    /// The options a validated cookie gives back: `mss` from [`check`], window scale and SACK-permitted from the
    /// echoed timestamp bits, or neither when the handshake carried no timestamps.
    #[inline]
    pub fn from_cookie(mss: u16, ts_bits: Option<u8>) -> Self {
        let (window_scale, sack_permitted) = ts_bits.map_or((None, false), decode_ts_bits);
        SynOptions { mss, window_scale, sack_permitted }
    }

    /// The timestamp bits that carry these options through our SYN-ACK's TSval (see [`encode_ts_bits`]).
    #[inline]
    pub fn ts_bits(&self) -> u8 {
        encode_ts_bits(self.window_scale, self.sack_permitted)
    }
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
    /// When the ring is full and `key` is older than every key in it, `key` is the one dropped (newest win).
    pub fn insert(&mut self, key: CookieKey) {
        if let Some(same) = self.keys.iter_mut().flatten().find(|k| k.slot == key.slot) {
            *same = key;
            return;
        }
        let len = self.len();
        if len == Self::CAPACITY {
            // Full: the oldest (first) goes, unless the newcomer is older still.
            match self.keys.first() {
                Some(Some(oldest)) if oldest.slot < key.slot => {
                    self.keys.rotate_left(1);
                    if let Some(last) = self.keys.last_mut() {
                        *last = None;
                    }
                }
                _ => return,
            }
        }
        // Insertion sort into the sorted prefix; the free entry after it is the last one we shift into.
        let mut carry = Some(key);
        for entry in self.keys.iter_mut() {
            match (*entry, carry) {
                (_, None) => break,
                (None, c) => {
                    *entry = c;
                    break;
                }
                (Some(here), Some(c)) if c.slot < here.slot => {
                    *entry = Some(c);
                    carry = Some(here);
                }
                _ => {}
            }
        }
    }

    /// The key of `slot`, if the ring holds it.
    #[inline]
    pub fn get(&self, slot: u64) -> Option<&CookieKey> {
        self.keys.iter().flatten().find(|k| k.slot == slot)
    }

    /// Deterministic keys for tests and benches: the secret of each slot derived from `seed`.
    ///
    /// Never use it in production: anyone who knows the seed can mint cookies. The runtime draws each slot's
    /// secret from the OS RNG instead.
    pub fn from_seed(seed: u64, slots: impl IntoIterator<Item = u64>) -> Self {
        let mut ring = KeyRing::new();
        for slot in slots {
            ring.insert(CookieKey { slot, secret: seeded_secret(seed, slot) });
        }
        ring
    }

    /// Number of keys held.
    #[inline]
    pub fn len(&self) -> usize {
        self.keys.iter().flatten().count()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.iter().all(Option::is_none)
    }

    /// The keys, oldest slot first.
    pub fn iter(&self) -> impl Iterator<Item = &CookieKey> + '_ {
        self.keys.iter().flatten()
    }

    /// The ring as key-file text (see [`KeyFileError`] for the format). It holds the secrets: write it only to
    /// a file readable by the server alone, never to a log.
    pub fn to_text(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(KEY_FILE_HEADER.len() + 1 + Self::CAPACITY * 54);
        out.push_str(KEY_FILE_HEADER);
        out.push('\n');
        for key in self.iter() {
            let _ = write!(out, "{} ", key.slot);
            for byte in key.secret {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('\n');
        }
        out
    }

    /// [`KeyRing::to_text`] as bytes, for writing to a file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_text().into_bytes()
    }

    /// Reads key-file text from raw bytes, as read from a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyFileError> {
        core::str::from_utf8(bytes).map_err(|_| KeyFileError::NotUtf8)?.parse()
    }
}

/// The first line of a key file: names the format and its version.
pub const KEY_FILE_HEADER: &str = "xdptcp-cookie-keys v1";

/// Why key-file text was refused.
///
/// The format: the line [`KEY_FILE_HEADER`], then at most [`KeyRing::CAPACITY`] lines `<slot> <secret>`, the
/// slot in decimal, the secret as 32 hexadecimal digits, separated by spaces or tabs. Blank lines and lines
/// starting with `#` are ignored anywhere; `\r\n` line ends are accepted. Line numbers count from 1.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file is not UTF-8 text")]
    NotUtf8,
    #[error("key file does not start with the line `{KEY_FILE_HEADER}`")]
    MissingHeader,
    #[error("line {line}: the slot is not a decimal number below 2^64")]
    BadSlot { line: usize },
    #[error("line {line}: the secret is not 32 hexadecimal digits")]
    BadSecret { line: usize },
    #[error("line {line}: expected `<slot> <secret>` and nothing more")]
    BadLine { line: usize },
    #[error("line {line}: slot {slot} appears twice")]
    DuplicateSlot { line: usize, slot: u64 },
    #[error("line {line}: more than {} keys", KeyRing::CAPACITY)]
    TooManyKeys { line: usize },
}

impl FromStr for KeyRing {
    type Err = KeyFileError;

    fn from_str(text: &str) -> Result<Self, KeyFileError> {
        let mut ring = KeyRing::new();
        let mut seen_header = false;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !seen_header {
                if line != KEY_FILE_HEADER {
                    return Err(KeyFileError::MissingHeader);
                }
                seen_header = true;
                continue;
            }
            let mut fields = line.split_ascii_whitespace();
            let (Some(slot), Some(secret), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(KeyFileError::BadLine { line: line_no });
            };
            let slot = parse_slot(slot).ok_or(KeyFileError::BadSlot { line: line_no })?;
            let secret = parse_secret(secret).ok_or(KeyFileError::BadSecret { line: line_no })?;
            if ring.get(slot).is_some() {
                return Err(KeyFileError::DuplicateSlot { line: line_no, slot });
            }
            if ring.len() == KeyRing::CAPACITY {
                return Err(KeyFileError::TooManyKeys { line: line_no });
            }
            ring.insert(CookieKey { slot, secret });
        }
        if seen_header {
            Ok(ring)
        } else {
            Err(KeyFileError::MissingHeader)
        }
    }
}

/// Digits only: `u64::from_str` would also take a leading `+`, which the format does not allow.
fn parse_slot(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_secret(s: &str) -> Option<[u8; 16]> {
    let digits = s.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut secret = [0u8; 16];
    for (i, byte) in secret.iter_mut().enumerate() {
        let hi = hex_value(*digits.get(2 * i)?)?;
        let lo = hex_value(*digits.get(2 * i + 1)?)?;
        *byte = hi << 4 | lo;
    }
    Some(secret)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|v| u8::try_from(v).ok())
}

/// The test-and-bench secret of `slot`: SipHash-2-4-128 keyed by the seed (and a constant naming this use).
fn seeded_secret(seed: u64, slot: u64) -> [u8; 16] {
    const DOMAIN: u64 = u64::from_le_bytes(*b"xdp-ckey");
    let mut h = siphasher::sip128::SipHasher24::new_with_keys(seed, DOMAIN);
    h.write_u64(slot);
    let out = siphasher::sip128::Hasher128::finish128(&h);
    let mut secret = [0u8; 16];
    let (lo, hi) = secret.split_at_mut(8);
    lo.copy_from_slice(&out.h1.to_le_bytes());
    hi.copy_from_slice(&out.h2.to_le_bytes());
    secret
}

/// The cookie clock slot of a wall-clock time in nanoseconds since the UNIX epoch.
#[inline]
pub fn slot_at(wall_nanos: u64) -> u64 {
    wall_nanos / PERIOD_NANOS
}

/// The index in [`MSS_TABLE`] of a client's MSS: the largest entry not above it, 0 when all are above it.
#[inline]
pub fn mss_index(client_mss: u16) -> u8 {
    let idx = MSS_TABLE.iter().rposition(|&m| m <= client_mss).unwrap_or(0);
    // At most 3 (the table has four entries), so the conversion never fails.
    u8::try_from(idx).unwrap_or(0)
}

/// What the MAC hashes for the timestamp bits: the 5 bits themselves, or [`TS_ABSENT`].
#[inline]
fn ts_word(ts_bits: Option<u8>) -> u8 {
    match ts_bits {
        Some(bits) => bits & TS_MASK,
        None => TS_ABSENT,
    }
}

/// The 29-bit MAC: one SipHash-2-4 over the flow and two fixed-width words.
#[inline]
fn mac<F: Hash>(key: &CookieKey, flow: &F, client_isn: u32, mss_idx: u8, ts: u8) -> u32 {
    let tail = u64::from(client_isn) | u64::from(mss_idx) << 32 | u64::from(ts) << 40;
    // Truncation is the point: the low 29 bits are the MAC.
    (siphash_flow(&key.secret, flow, &[key.slot, tail]) as u32) & MAC_MASK
}

/// SipHash-2-4 under `secret` of what `flow`'s `Hash` writes followed by `words` (little-endian): the one hash
/// that cookies and ISNs pay for.
#[inline]
pub(crate) fn siphash_flow<F: Hash>(secret: &[u8; 16], flow: &F, words: &[u64]) -> u64 {
    let mut g = Gather { buf: [0; GATHER_CAP], len: 0, stream: SipHasher24::new_with_key(secret), spilled: false };
    flow.hash(&mut g);
    for &w in words {
        g.write_u64(w);
    }
    g.finish()
}

/// Room for an IPv6 flow's `Hash` output (52 bytes with its length prefixes) and a few words.
const GATHER_CAP: usize = 96;

/// A `Hasher` that gathers small writes on the stack so that SipHash then runs once over whole words; feeding a
/// streaming SipHash each 2- and 4-byte write costs about a fifth more. What does not fit spills into the
/// streaming hasher, which yields the same value: SipHash is defined over the byte string, and both paths write
/// integers as their little-endian bytes.
struct Gather {
    buf: [u8; GATHER_CAP],
    len: usize,
    stream: SipHasher24,
    spilled: bool,
}

impl Hasher for Gather {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if !self.spilled {
            let end = self.len.saturating_add(bytes.len());
            if let Some(dst) = self.buf.get_mut(self.len..end) {
                dst.copy_from_slice(bytes);
                self.len = end;
                return;
            }
            self.stream.write(self.buf.get(..self.len).unwrap_or_default());
            self.spilled = true;
        }
        self.stream.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write(&[v]);
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.write(&v.to_le_bytes());
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write(&v.to_le_bytes());
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write(&v.to_le_bytes());
    }
    #[inline]
    fn finish(&self) -> u64 {
        if self.spilled {
            self.stream.finish()
        } else {
            // Nothing was streamed yet, so this is SipHash of the gathered bytes alone.
            self.stream.hash(self.buf.get(..self.len).unwrap_or_default())
        }
    }
}

/// Mints the ISN for a SYN. `ts_bits` is `Some` when the client sent timestamps (see [`encode_ts_bits`]).
/// Returns `None` when the ring has no key for `slot`.
#[inline]
pub fn mint<F: Hash>(
    keys: &KeyRing,
    slot: u64,
    flow: &F,
    client_isn: u32,
    client_mss: u16,
    ts_bits: Option<u8>,
) -> Option<Cookie> {
    let key = keys.get(slot)?;
    let idx = mss_index(client_mss);
    let mac = mac(key, flow, client_isn, idx, ts_word(ts_bits));
    let parity = (slot & 1) as u32;
    let isn = parity << PARITY_SHIFT | u32::from(idx) << MSS_SHIFT | mac;
    Some(Cookie { isn, mss: mss_for_index(idx) })
}

/// Checks the cookie of a handshake-completing ACK: `client_isn = SEG.SEQ - 1`, `cookie = SEG.ACK - 1`,
/// `ts_bits` from the low bits of TSecr when the ACK carries timestamps. Returns the MSS on success.
#[inline]
pub fn check<F: Hash>(
    keys: &KeyRing,
    now_slot: u64,
    flow: &F,
    client_isn: u32,
    cookie: u32,
    ts_bits: Option<u8>,
) -> Result<u16, CookieError> {
    let parity = u64::from(cookie >> PARITY_SHIFT);
    let slot = if now_slot & 1 == parity { Some(now_slot) } else { now_slot.checked_sub(1) };
    let key = slot.and_then(|s| keys.get(s)).ok_or(CookieError::NoKey)?;
    // Masked to two bits, so always a valid index.
    let idx = ((cookie >> MSS_SHIFT) & 0b11) as u8;
    let expected = mac(key, flow, client_isn, idx, ts_word(ts_bits));
    // One XOR and one test of the whole word: the time taken does not depend on where the values differ.
    let diff = expected ^ (cookie & MAC_MASK);
    if diff == 0 {
        Ok(mss_for_index(idx))
    } else {
        Err(CookieError::BadMac)
    }
}

#[inline]
fn mss_for_index(idx: u8) -> u16 {
    MSS_TABLE.get(usize::from(idx)).copied().unwrap_or(MSS_TABLE[0])
}

/// Number of low TSval bits that carry the SYN's options.
pub const TS_BITS: u32 = 5;
const TS_MASK: u8 = (1 << TS_BITS) - 1;
/// Window-scale field value meaning "the SYN had no window scale option".
const TS_WSCALE_ABSENT: u8 = 0x0F;
const TS_SACK: u8 = 0x10;
/// Largest window scale (RFC 7323 §2.3); larger values are treated as this one.
const MAX_WINDOW_SCALE: u8 = 14;

/// Packs window scale and SACK-permitted into the low [`TS_BITS`] bits of our SYN-ACK's TSval.
/// A window scale above 14 is clamped to 14, as RFC 7323 prescribes.
#[inline]
pub fn encode_ts_bits(window_scale: Option<u8>, sack_permitted: bool) -> u8 {
    let ws = match window_scale {
        Some(ws) => ws.min(MAX_WINDOW_SCALE),
        None => TS_WSCALE_ABSENT,
    };
    ws | if sack_permitted { TS_SACK } else { 0 }
}

/// Inverse of [`encode_ts_bits`]: (window scale, SACK-permitted). Bits above the low [`TS_BITS`] are ignored.
#[inline]
pub fn decode_ts_bits(bits: u8) -> (Option<u8>, bool) {
    let ws = bits & TS_WSCALE_ABSENT;
    let ws = if ws == TS_WSCALE_ABSENT { None } else { Some(ws) };
    (ws, bits & TS_SACK != 0)
}

/// Our SYN-ACK's TSval: the timestamp clock with its low bits replaced by `bits`, never ahead of `ts_now`.
///
/// When the replacement would run ahead, one lap of 2^[`TS_BITS`] ticks is taken off (wrapping), so the result
/// is at most 31 ticks behind `ts_now` and the peer never sees our timestamp clock go backwards later.
#[inline]
pub fn tsval_with_bits(ts_now: u32, bits: u8) -> u32 {
    let mask = u32::from(TS_MASK);
    let low = u32::from(bits) & mask;
    let tsval = (ts_now & !mask) | low;
    if low > ts_now & mask {
        tsval.wrapping_sub(1 << TS_BITS)
    } else {
        tsval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::flow::{V4Flow, V6Flow};

    const SEED: u64 = 0x5eed_c00c;
    const S: u64 = 1_000_001;

    fn flow4() -> V4Flow {
        V4Flow { local: [10, 0, 0, 1], remote: [10, 0, 0, 2], local_port: 80, remote_port: 40_000 }
    }

    fn ring() -> KeyRing {
        KeyRing::from_seed(SEED, [S - 1, S, S + 1])
    }

    #[test]
    fn layout_puts_parity_mss_and_mac_where_documented() {
        let keys = ring();
        for (slot, mss, idx) in [(S, 1460u16, 3u32), (S + 1, 536, 0), (S, 1300, 1), (S + 1, 1459, 2)] {
            let c = mint(&keys, slot, &flow4(), 7, mss, None).unwrap();
            assert_eq!(c.isn >> 31, (slot & 1) as u32);
            assert_eq!((c.isn >> 29) & 3, idx);
            let key = keys.get(slot).unwrap();
            assert_eq!(c.isn & MAC_MASK, mac(key, &flow4(), 7, idx as u8, TS_ABSENT));
        }
    }

    /// A flow type longer than the gather buffer, to take the spill path.
    #[derive(Clone, Copy, Hash)]
    struct Huge([u8; 200], u16);

    fn streamed<F: Hash>(secret: &[u8; 16], flow: &F, words: &[u64]) -> u64 {
        let mut h = SipHasher24::new_with_key(secret);
        flow.hash(&mut h);
        for &w in words {
            h.write_u64(w);
        }
        h.finish()
    }

    #[test]
    fn gathered_hash_equals_streamed_siphash_on_both_paths() {
        let secret = *b"fedcba9876543210";
        let words = [u64::MAX, 0x0102_0304_0506_0708];
        let v6 = V6Flow { local: [9; 16], remote: [8; 16], local_port: 1, remote_port: 2 };
        let huge = Huge(core::array::from_fn(|i| i as u8), 77);
        assert_eq!(siphash_flow(&secret, &flow4(), &words), streamed(&secret, &flow4(), &words));
        assert_eq!(siphash_flow(&secret, &v6, &words), streamed(&secret, &v6, &words));
        assert_eq!(siphash_flow(&secret, &huge, &words), streamed(&secret, &huge, &words));
        assert_eq!(siphash_flow(&secret, &huge, &[]), streamed(&secret, &huge, &[]));
        // A huge flow still depends on its last bytes after the spill.
        let mut other = huge;
        other.1 = 78;
        assert_ne!(siphash_flow(&secret, &huge, &words), siphash_flow(&secret, &other, &words));
    }

    #[test]
    fn mss_rounds_down_to_the_table_and_up_to_its_first_entry() {
        assert_eq!(mss_index(0), 0);
        assert_eq!(mss_index(535), 0);
        assert_eq!(mss_index(536), 0);
        assert_eq!(mss_index(1219), 0);
        assert_eq!(mss_index(1220), 1);
        assert_eq!(mss_index(1439), 1);
        assert_eq!(mss_index(1440), 2);
        assert_eq!(mss_index(1459), 2);
        assert_eq!(mss_index(1460), 3);
        assert_eq!(mss_index(u16::MAX), 3);
        for mss in 0..=u16::MAX {
            let chosen = MSS_TABLE[usize::from(mss_index(mss))];
            assert!(chosen <= mss || chosen == MSS_TABLE[0], "mss {mss} -> {chosen}");
            assert!(MSS_TABLE.iter().all(|&m| m > mss || m <= chosen), "mss {mss} -> {chosen} is not the largest");
        }
    }

    #[test]
    fn slot_is_wall_time_over_64_seconds() {
        assert_eq!(slot_at(0), 0);
        assert_eq!(slot_at(63_999_999_999), 0);
        assert_eq!(slot_at(64_000_000_000), 1);
        assert_eq!(slot_at(u64::MAX), u64::MAX / 64_000_000_000);
    }

    #[test]
    fn cookie_validates_in_its_slot_and_the_next_only() {
        let mut keys = ring();
        let c = mint(&keys, S, &flow4(), 99, 1460, Some(3)).unwrap();
        assert_eq!(check(&keys, S, &flow4(), 99, c.isn, Some(3)), Ok(1460));
        assert_eq!(check(&keys, S + 1, &flow4(), 99, c.isn, Some(3)), Ok(1460));
        // At S+2 the parity points at slot S+2: no key, and with a key its MAC differs.
        assert_eq!(check(&keys, S + 2, &flow4(), 99, c.isn, Some(3)), Err(CookieError::NoKey));
        keys.insert(CookieKey::new(S + 2, [0x42; 16]));
        assert_eq!(check(&keys, S + 2, &flow4(), 99, c.isn, Some(3)), Err(CookieError::BadMac));
        // Before its slot the parity points at S-2.
        assert_eq!(check(&keys, S - 1, &flow4(), 99, c.isn, Some(3)), Err(CookieError::NoKey));
    }

    #[test]
    fn slot_number_is_under_the_mac_even_when_a_secret_is_reused() {
        // A key file that repeats a secret must not let a cookie of slot S live on at S + 2.
        let mut keys = KeyRing::new();
        keys.insert(CookieKey::new(S, [7; 16]));
        keys.insert(CookieKey::new(S + 2, [7; 16]));
        let c = mint(&keys, S, &flow4(), 99, 1460, None).unwrap();
        assert_eq!(check(&keys, S, &flow4(), 99, c.isn, None), Ok(1460));
        assert_eq!(check(&keys, S + 2, &flow4(), 99, c.isn, None), Err(CookieError::BadMac));
    }

    #[test]
    fn check_at_slot_zero_with_odd_parity_is_no_key_not_overflow() {
        let keys = KeyRing::from_seed(SEED, [0, u64::MAX]);
        assert_eq!(check(&keys, 0, &flow4(), 1, 1 << 31, None), Err(CookieError::NoKey));
        let c = mint(&keys, u64::MAX, &flow4(), 1, 1460, None).unwrap();
        assert_eq!(check(&keys, u64::MAX, &flow4(), 1, c.isn, None), Ok(1460));
    }

    #[test]
    fn mint_without_the_slot_key_is_none() {
        assert_eq!(mint(&ring(), S + 5, &flow4(), 1, 1460, None), None);
        assert_eq!(mint(&KeyRing::new(), 0, &flow4(), 1, 1460, None), None);
    }

    #[test]
    fn every_input_of_the_mac_matters() {
        let keys = ring();
        let c = mint(&keys, S, &flow4(), 1000, 1440, Some(0x12)).unwrap();
        assert_eq!(check(&keys, S, &flow4(), 1000, c.isn, Some(0x12)), Ok(1440));
        let mut other = flow4();
        other.remote_port ^= 1;
        assert_eq!(check(&keys, S, &other, 1000, c.isn, Some(0x12)), Err(CookieError::BadMac));
        let mut other = flow4();
        other.local[3] ^= 1;
        assert_eq!(check(&keys, S, &other, 1000, c.isn, Some(0x12)), Err(CookieError::BadMac));
        assert_eq!(check(&keys, S, &flow4(), 1001, c.isn, Some(0x12)), Err(CookieError::BadMac));
        assert_eq!(check(&keys, S, &flow4(), 1000, c.isn, Some(0x13)), Err(CookieError::BadMac));
        assert_eq!(check(&keys, S, &flow4(), 1000, c.isn, None), Err(CookieError::BadMac));
        let other_mss = c.isn ^ (1 << 29);
        assert_eq!(check(&keys, S, &flow4(), 1000, other_mss, Some(0x12)), Err(CookieError::BadMac));
        let wrong_keys = KeyRing::from_seed(SEED + 1, [S - 1, S, S + 1]);
        assert_eq!(check(&wrong_keys, S, &flow4(), 1000, c.isn, Some(0x12)), Err(CookieError::BadMac));
    }

    #[test]
    fn timestamp_bits_above_five_are_ignored_on_both_sides() {
        let keys = ring();
        let c = mint(&keys, S, &flow4(), 5, 1460, Some(0xE7)).unwrap();
        assert_eq!(check(&keys, S, &flow4(), 5, c.isn, Some(0x07)), Ok(1460));
    }

    #[test]
    fn v6_flows_mint_and_check() {
        let keys = ring();
        let flow = V6Flow { local: [1; 16], remote: [2; 16], local_port: 443, remote_port: 5000 };
        let c = mint(&keys, S + 1, &flow, 0xFFFF_FFFF, 1220, None).unwrap();
        assert_eq!(c.mss, 1220);
        assert_eq!(check(&keys, S + 1, &flow, 0xFFFF_FFFF, c.isn, None), Ok(1220));
        let mut other = flow;
        other.remote[15] = 3;
        assert_eq!(check(&keys, S + 1, &other, 0xFFFF_FFFF, c.isn, None), Err(CookieError::BadMac));
    }

    #[test]
    fn ring_replaces_same_slot_and_evicts_oldest() {
        let mut r = KeyRing::new();
        assert!(r.is_empty());
        for slot in [5, 3, 7, 4] {
            r.insert(CookieKey::new(slot, [slot as u8; 16]));
        }
        assert_eq!(r.len(), 4);
        assert_eq!(r.iter().map(|k| k.slot).collect::<Vec<_>>(), [3, 4, 5, 7]);
        r.insert(CookieKey::new(5, [0xAA; 16]));
        assert_eq!(r.len(), 4);
        assert_eq!(r.get(5).unwrap().secret, [0xAA; 16]);
        r.insert(CookieKey::new(8, [8; 16]));
        assert_eq!(r.iter().map(|k| k.slot).collect::<Vec<_>>(), [4, 5, 7, 8]);
        assert!(r.get(3).is_none());
        // Older than everything in a full ring: dropped, the newest slots win.
        r.insert(CookieKey::new(1, [1; 16]));
        assert_eq!(r.iter().map(|k| k.slot).collect::<Vec<_>>(), [4, 5, 7, 8]);
        r.insert(CookieKey::new(6, [6; 16]));
        assert_eq!(r.iter().map(|k| k.slot).collect::<Vec<_>>(), [5, 6, 7, 8]);
    }

    #[test]
    fn ring_equality_ignores_insertion_order() {
        let a = KeyRing::from_seed(1, [10, 11, 12]);
        let b = KeyRing::from_seed(1, [12, 10, 11]);
        assert_eq!(a, b);
        assert_eq!(KeyRing::from_seed(1, 0..100), KeyRing::from_seed(1, [96, 97, 98, 99]));
    }

    #[test]
    fn seeded_secrets_are_deterministic_and_distinct() {
        let a = KeyRing::from_seed(7, [1, 2]);
        assert_eq!(a, KeyRing::from_seed(7, [1, 2]));
        assert_ne!(a.get(1).unwrap().secret, a.get(2).unwrap().secret);
        assert_ne!(a.get(1).unwrap().secret, KeyRing::from_seed(8, [1]).get(1).unwrap().secret);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = CookieKey::new(9, [0xAB; 16]);
        let mut ring = KeyRing::new();
        ring.insert(key);
        for text in [format!("{key:?}"), format!("{key:#?}"), format!("{ring:?}")] {
            assert!(text.contains("redacted"), "{text}");
            assert!(!text.contains("171") && !text.to_lowercase().contains("ab"), "{text}");
        }
    }

    #[test]
    fn key_file_round_trips() {
        for ring in [KeyRing::new(), KeyRing::from_seed(3, [0]), KeyRing::from_seed(3, [u64::MAX - 3, 17, 99, 1])] {
            let text = ring.to_text();
            assert_eq!(text.parse::<KeyRing>(), Ok(ring.clone()));
            assert_eq!(KeyRing::from_bytes(&ring.to_bytes()), Ok(ring));
        }
    }

    #[test]
    fn key_file_accepts_comments_blank_lines_crlf_and_upper_case() {
        let text = "# keys for the test rig\r\n\r\nxdptcp-cookie-keys v1\r\n  12\t000102030405060708090A0B0C0D0E0F  \r\n# end\r\n";
        let ring: KeyRing = text.parse().unwrap();
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.get(12).unwrap().secret, core::array::from_fn(|i| i as u8));
    }

    #[test]
    fn key_file_rejects_malformed_input() {
        let h = KEY_FILE_HEADER;
        let good = "00112233445566778899aabbccddeeff";
        let cases: Vec<(String, KeyFileError)> = vec![
            (String::new(), KeyFileError::MissingHeader),
            ("# only a comment\n".into(), KeyFileError::MissingHeader),
            (format!("1 {good}\n"), KeyFileError::MissingHeader),
            ("xdptcp-cookie-keys v2\n".into(), KeyFileError::MissingHeader),
            (format!("{h}\n1\n"), KeyFileError::BadLine { line: 2 }),
            (format!("{h}\n1 {good} 3\n"), KeyFileError::BadLine { line: 2 }),
            (format!("{h}\n\n+1 {good}\n"), KeyFileError::BadSlot { line: 3 }),
            (format!("{h}\n-1 {good}\n"), KeyFileError::BadSlot { line: 2 }),
            (format!("{h}\n18446744073709551616 {good}\n"), KeyFileError::BadSlot { line: 2 }),
            (format!("{h}\nx {good}\n"), KeyFileError::BadSlot { line: 2 }),
            (format!("{h}\n1 {}\n", &good[..30]), KeyFileError::BadSecret { line: 2 }),
            (format!("{h}\n1 {good}00\n"), KeyFileError::BadSecret { line: 2 }),
            (format!("{h}\n1 0g112233445566778899aabbccddeeff\n"), KeyFileError::BadSecret { line: 2 }),
            (format!("{h}\n1 +0112233445566778899aabbccddeeff\n"), KeyFileError::BadSecret { line: 2 }),
            (format!("{h}\n1 é112233445566778899aabbccddeeff\n"), KeyFileError::BadSecret { line: 2 }),
            (format!("{h}\n1 {good}\n1 {good}\n"), KeyFileError::DuplicateSlot { line: 3, slot: 1 }),
            (format!("{h}\n1 {good}\n2 {good}\n3 {good}\n4 {good}\n5 {good}\n"), KeyFileError::TooManyKeys { line: 6 }),
        ];
        for (text, err) in cases {
            assert_eq!(text.parse::<KeyRing>(), Err(err), "{text:?}");
        }
        assert_eq!(KeyRing::from_bytes(b"xdptcp-cookie-keys v1\n\xff\n"), Err(KeyFileError::NotUtf8));
        assert_eq!(KeyRing::from_bytes(format!("{h}\n").as_bytes()), Ok(KeyRing::new()));
    }

    #[test]
    fn ts_bits_round_trip_for_every_valid_input() {
        for sack in [false, true] {
            for ws in (0..=14).map(Some).chain([None]) {
                let bits = encode_ts_bits(ws, sack);
                assert!(bits < 32);
                assert_eq!(decode_ts_bits(bits), (ws, sack));
            }
        }
        assert_eq!(encode_ts_bits(Some(15), true), encode_ts_bits(Some(14), true));
        assert_eq!(encode_ts_bits(Some(255), false), 14);
        // Every 5-bit value decodes, and re-encoding it gives it back.
        for bits in 0..32u8 {
            let (ws, sack) = decode_ts_bits(bits);
            assert_eq!(encode_ts_bits(ws, sack), bits);
        }
    }

    #[test]
    fn syn_options_survive_only_through_timestamps() {
        let syn = SynOptions { mss: 1460, window_scale: Some(7), sack_permitted: true };
        let keys = ring();
        let bits = syn.ts_bits();
        let tsval = tsval_with_bits(0x1234_5600, bits);
        let c = mint(&keys, S, &flow4(), 1, syn.mss, Some(bits)).unwrap();
        // The ACK echoes our TSval in TSecr; the core hands its low bits to `check`.
        let echoed = Some(tsval as u8 & 0x1f);
        let mss = check(&keys, S, &flow4(), 1, c.isn, echoed).unwrap();
        assert_eq!(SynOptions::from_cookie(mss, echoed), syn);
        assert_eq!(
            SynOptions::from_cookie(1220, None),
            SynOptions { mss: 1220, window_scale: None, sack_permitted: false }
        );
    }

    #[test]
    fn tsval_keeps_bits_and_never_runs_ahead() {
        let samples = (0..200u32).chain(u32::MAX - 40..=u32::MAX).chain([0x8000_0000, 12345]);
        for ts_now in samples {
            for bits in 0..32u8 {
                let v = tsval_with_bits(ts_now, bits);
                assert_eq!(v & 31, u32::from(bits));
                let behind = ts_now.wrapping_sub(v);
                assert!(behind < 32, "ts_now {ts_now:#x} bits {bits} -> {v:#x}");
            }
        }
    }
}
