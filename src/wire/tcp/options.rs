//! TCP options: the tolerant parse (Linux's rules) and the canonical emission (Linux's layout).
//!
//! Owns option bytes only; it never fails on bad input (a malformed option ends the walk) and never looks at
//! the rest of the header.

use super::{SackBlocks, TcpOptions, Timestamps, MAX_WINDOW_SCALE, MIN_MSS};

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

impl TcpOptions {
    /// Reads an option list. Never fails: parsing stops at EOL, and at the first malformed option (length below
    /// 2, running past the option space, or the wrong length for a kind listed here), keeping what came before.
    /// Unknown kinds with a sane length are skipped. A repeated option overrides the earlier one.
    ///
    /// Linux stops on the first two kinds of damage too; for a known kind with the wrong length it skips the
    /// option instead. Stopping there is stricter and loses nothing a correct peer sends.
    ///
    /// The result is normalised to what [`TcpOptions::emit`] writes for the same kind of segment, so that parse
    /// and emit round-trip: on a SYN, MSS, window scale, SACK-permitted and timestamps are kept (a SYN has nothing
    /// to selectively acknowledge); on any other segment only timestamps and SACK blocks are, since the others
    /// mean nothing after the handshake (RFC 9293 §3.7.1, RFC 7323 §2.2, RFC 2018 §2).
    #[inline]
    pub fn parse(bytes: &[u8], syn: bool) -> TcpOptions {
        // Fast paths, inlined, for what nearly every segment after the handshake carries: nothing, or Linux's
        // `NOP NOP TS`. Both give exactly what the general loop would.
        match bytes {
            [] => TcpOptions::default(),
            [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, ts @ ..] if ts.len() == 8 => {
                TcpOptions { timestamps: Timestamps::parse(ts), ..TcpOptions::default() }
            }
            _ => Self::parse_any(bytes, syn),
        }
    }

    /// The general option walk behind [`TcpOptions::parse`].
    #[inline(never)]
    fn parse_any(bytes: &[u8], syn: bool) -> TcpOptions {
        let mut opts = TcpOptions::default();
        let mut rest = bytes;
        while let Some((&code, after_code)) = rest.split_first() {
            if code == kind::EOL {
                break;
            }
            if code == kind::NOP {
                rest = after_code;
                continue;
            }
            let Some(&len) = after_code.first() else { break };
            let len = usize::from(len);
            if len < 2 || len > rest.len() {
                break;
            }
            let (option, tail) = rest.split_at(len);
            let data = &option[2..];
            match code {
                kind::MSS if len == 4 => opts.mss = data.first_chunk().map(|b| u16::from_be_bytes(*b).max(MIN_MSS)),
                kind::WINDOW_SCALE if len == 3 => opts.window_scale = data.first().map(|&s| s.min(MAX_WINDOW_SCALE)),
                kind::SACK_PERMITTED if len == 2 => opts.sack_permitted = true,
                kind::SACK if matches!(len, 10 | 18 | 26 | 34) => opts.sack = SackBlocks::parse(data),
                kind::TIMESTAMPS if len == 10 => opts.timestamps = Timestamps::parse(data),
                // A kind we know, with a length it can never have.
                kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMPS => break,
                _ => {}
            }
            rest = tail;
        }
        opts.normalized(syn)
    }

    /// Keeps only the options that [`TcpOptions::emit`] writes for this kind of segment.
    #[inline]
    pub fn normalized(self, syn: bool) -> TcpOptions {
        if syn {
            TcpOptions { sack: SackBlocks::default(), ..self }
        } else {
            TcpOptions { mss: None, window_scale: None, sack_permitted: false, ..self }
        }
    }

    /// What parsing the output of [`TcpOptions::emit`] gives back: [`TcpOptions::normalized`], MSS raised and
    /// window scale clamped, SACK blocks cut to those that fit, unused block slots zeroed.
    #[inline]
    pub fn canonical(self, syn: bool) -> TcpOptions {
        let blocks = self.emitted_sack_blocks();
        let opts = TcpOptions {
            mss: self.mss.map(|mss| mss.max(MIN_MSS)),
            window_scale: self.window_scale.map(|shift| shift.min(MAX_WINDOW_SCALE)),
            sack: SackBlocks::from_slice(&self.sack.blocks[..blocks]),
            ..self
        };
        opts.normalized(syn)
    }

    /// SACK blocks that fit beside the timestamps in 40 bytes: four alone, three with timestamps.
    #[inline]
    fn emitted_sack_blocks(&self) -> usize {
        let room = if self.timestamps.is_some() { 3 } else { 4 };
        usize::from(self.sack.len).min(room)
    }

    /// Bytes [`TcpOptions::emit`] writes: always a multiple of 4, at most 40.
    #[inline]
    pub fn emitted_len(&self, syn: bool) -> usize {
        if syn {
            let middle = match (self.sack_permitted, self.timestamps.is_some()) {
                (_, true) => 12,
                (true, false) => 4,
                (false, false) => 0,
            };
            4 * usize::from(self.mss.is_some()) + middle + 4 * usize::from(self.window_scale.is_some())
        } else {
            let blocks = self.emitted_sack_blocks();
            12 * usize::from(self.timestamps.is_some()) + if blocks > 0 { 4 + 8 * blocks } else { 0 }
        }
    }

    /// Writes the options in Linux's order and layout, so that our segments look like a Linux host's.
    ///
    /// On a SYN: MSS; then SACK-permitted and timestamps sharing one word (`SACK_PERM TS`), or `NOP NOP TS`, or
    /// `NOP NOP SACK_PERM`; then `NOP WS`. On other segments: `NOP NOP TS`, then `NOP NOP SACK` with as many blocks
    /// as fit (the first ones, which RFC 2018 §4 says must be the most recent). `buf` must hold at least
    /// [`TcpOptions::emitted_len`] bytes; returns that length.
    #[inline]
    pub fn emit(&self, buf: &mut [u8], syn: bool) -> usize {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if syn {
            if let Some(mss) = self.mss {
                let [hi, lo] = mss.to_be_bytes();
                put(&[kind::MSS, 4, hi, lo]);
            }
            match (self.sack_permitted, self.timestamps) {
                (sack_permitted, Some(ts)) => {
                    let lead = if sack_permitted { [kind::SACK_PERMITTED, 2] } else { [kind::NOP, kind::NOP] };
                    put(&timestamps_word(lead, ts));
                }
                (true, None) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
                (false, None) => {}
            }
            if let Some(shift) = self.window_scale {
                put(&[kind::NOP, kind::WINDOW_SCALE, 3, shift]);
            }
        } else {
            if let Some(ts) = self.timestamps {
                put(&timestamps_word([kind::NOP, kind::NOP], ts));
            }
            let blocks = self.emitted_sack_blocks();
            if blocks > 0 {
                put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * blocks) as u8]);
                for &(left, right) in &self.sack.blocks[..blocks] {
                    put(&left.to_be_bytes());
                    put(&right.to_be_bytes());
                }
            }
        }
        at
    }
}

/// Two lead bytes, then the 10-byte timestamps option: 12 bytes.
#[inline]
fn timestamps_word(lead: [u8; 2], ts: Timestamps) -> [u8; 12] {
    let mut word = [0u8; 12];
    word[..2].copy_from_slice(&lead);
    word[2] = kind::TIMESTAMPS;
    word[3] = 10;
    word[4..8].copy_from_slice(&ts.tsval.to_be_bytes());
    word[8..12].copy_from_slice(&ts.tsecr.to_be_bytes());
    word
}

impl Timestamps {
    /// Reads TSval and TSecr from the 8 data bytes of the option.
    #[inline]
    fn parse(data: &[u8]) -> Option<Timestamps> {
        let (tsval, rest) = data.split_first_chunk::<4>()?;
        let tsecr = rest.first_chunk::<4>()?;
        Some(Timestamps { tsval: u32::from_be_bytes(*tsval), tsecr: u32::from_be_bytes(*tsecr) })
    }
}

impl SackBlocks {
    /// Reads the data of a SACK option: whole 8-byte blocks, at most four (RFC 2018 §3).
    #[inline]
    fn parse(data: &[u8]) -> SackBlocks {
        let mut sack = SackBlocks::default();
        for (slot, block) in sack.blocks.iter_mut().zip(data.chunks_exact(8)) {
            let (left, right) = block.split_at(4);
            *slot = (read_u32(left), read_u32(right));
            sack.len += 1;
        }
        sack
    }

    /// Builds a block list from up to four (left, right) pairs; more are ignored.
    pub fn from_slice(blocks: &[(u32, u32)]) -> SackBlocks {
        let mut sack = SackBlocks::default();
        for (slot, &block) in sack.blocks.iter_mut().zip(blocks) {
            *slot = block;
            sack.len += 1;
        }
        sack
    }
}

#[inline(always)]
fn read_u32(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn option_fast_paths_agree_with_the_general_walk(tsval: u32, tsecr: u32, syn: bool,
                                                         bytes in proptest::collection::vec(0u8..12, 0..=40)) {
            let mut linux = vec![kind::NOP, kind::NOP, kind::TIMESTAMPS, 10];
            linux.extend_from_slice(&tsval.to_be_bytes());
            linux.extend_from_slice(&tsecr.to_be_bytes());
            for input in [&[][..], &linux[..], &linux[..11], &bytes[..]] {
                proptest::prop_assert_eq!(TcpOptions::parse(input, syn), TcpOptions::parse_any(input, syn));
            }
            proptest::prop_assert_eq!(TcpOptions::parse(&linux, syn).timestamps, Some(Timestamps { tsval, tsecr }));
        }
    }
}
