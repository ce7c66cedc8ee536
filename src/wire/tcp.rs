//! TCP header and options.
//!
//! Owns the TCP header: a zero-copy view and the normalised [`TcpRepr`] (options live in `options`). Parsing
//! verifies the checksum against a pseudo-header sum the caller supplies (so it never needs to know the IP
//! version) and never fails because of options. It holds no connection state and never judges sequence numbers.

mod options;

pub use options::kind;

use super::{checksum, ParseError};

/// The eight TCP flag bits, as on the wire (byte 13).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    #[inline]
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
    #[inline]
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    #[inline]
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    #[inline]
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    #[inline]
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    #[inline]
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

/// The timestamps option (RFC 7323).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// Up to four SACK blocks (left, right), as sequence numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SackBlocks {
    pub blocks: [(u32, u32); 4],
    pub len: u8,
}

impl SackBlocks {
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len.min(4))]
    }
}

/// The options this stack understands, normalised. Unknown options are skipped; a malformed one stops option
/// parsing there (what came before is kept), as Linux does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    /// MSS, raised to 48 when lower (and only meaningful on SYN).
    pub mss: Option<u16>,
    /// Window scale shift, clamped to 14.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<Timestamps>,
    pub sack: SackBlocks,
}

/// A normalised TCP segment: all the state machine ever sees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Meaningful only when `flags.ack()`.
    pub ack: u32,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

type Field = core::ops::Range<usize>;

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    /// Data offset in the high nibble (32-bit words); the low nibble is reserved (RFC 9293 §3.1).
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Room for options: 40 bytes.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Smallest MSS accepted; lower announced values are raised to it (Linux's floor too).
pub const MIN_MSS: u16 = 48;
/// Largest window shift (RFC 7323 §2.3); larger announced values are clamped to it.
pub const MAX_WINDOW_SCALE: u8 = 14;

/// A zero-copy view of a TCP segment. The buffer must be exactly the segment (the IP payload), since the
/// checksum covers all of it.
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer. For buffers sized by the caller.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`TcpPacket::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header is there and that the data offset is at least 5 and within the segment.
    /// After this succeeds, every getter is in bounds.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedTcp);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(ParseError::BadDataOffset);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ])
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK])
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WINDOW])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option bytes between the fixed header and the data.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// True when the pseudo-header sum plus the whole segment sums to all ones (RFC 9293 §3.1).
    #[inline]
    pub fn verify_checksum(&self, pseudo_header: u16) -> bool {
        checksum::verify_with(pseudo_header, self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The data after the header, borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let header_len = self.header_len();
        &self.buffer.as_ref()[header_len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }

    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }

    #[inline]
    pub fn set_seq_number(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    }

    #[inline]
    pub fn set_ack_number(&mut self, ack: u32) {
        self.buffer.as_mut()[field::ACK].copy_from_slice(&ack.to_be_bytes());
    }

    /// Writes the data offset for a header of `header_len` bytes (a multiple of 4, 20 to 60) and clears the
    /// reserved bits.
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
    }

    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    #[inline]
    pub fn set_window_len(&mut self, window: u16) {
        self.buffer.as_mut()[field::WINDOW].copy_from_slice(&window.to_be_bytes());
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub fn set_urgent_at(&mut self, urgent: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&urgent.to_be_bytes());
    }

    /// The option bytes, as long as the data offset says.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The bytes after the header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Computes and writes the checksum over the whole buffer plus the pseudo-header sum.
    #[inline]
    pub fn fill_checksum(&mut self, pseudo_header: u16) {
        self.set_checksum(0);
        let value = checksum::finish(checksum::add(pseudo_header, checksum::sum(self.buffer.as_ref())));
        self.set_checksum(value);
    }
}

impl TcpRepr<'_> {
    /// Header bytes [`TcpRepr::emit`] writes: 20 plus the options, a multiple of 4.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.emitted_len(self.flags.syn())
    }

    /// Header plus payload: the IP payload length.
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment occupies: the data, plus one each for SYN and FIN.
    #[inline]
    pub fn sequence_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// What parsing the output of [`TcpRepr::emit`] gives back: the acknowledgment number zeroed without ACK and
    /// the options made [`TcpOptions::canonical`]. A Repr from [`TcpRepr::parse`] is already canonical.
    #[inline]
    pub fn canonical(&self) -> Self {
        TcpRepr {
            ack: if self.flags.ack() { self.ack } else { 0 },
            options: self.options.canonical(self.flags.syn()),
            ..*self
        }
    }

    /// Writes the header, options and payload, and the checksum in the same pass. `packet` must hold at least
    /// [`TcpRepr::segment_len`] bytes, and `pseudo_header` must be the pseudo-header sum for that length (see
    /// [`crate::wire::IpRepr::pseudo_header`]).
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, pseudo_header: u16) {
        let syn = self.flags.syn();
        let header_len = self.header_len();
        let buf = packet.buffer.as_mut();
        let (header, payload) = buf.split_at_mut(header_len);
        header[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        header[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        header[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        header[field::ACK].copy_from_slice(&self.ack.to_be_bytes());
        header[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
        header[field::FLAGS] = self.flags.0;
        header[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
        header[field::URGENT].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.emit(&mut header[HEADER_LEN..], syn);
        payload[..self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum_in_place(pseudo_header, header_len + self.payload.len());
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Checksums the first `len` bytes, whose checksum field is already zero.
    #[inline]
    fn fill_checksum_in_place(&mut self, pseudo_header: u16, len: usize) {
        let sum = checksum::sum(&self.buffer.as_ref()[..len]);
        self.set_checksum(checksum::finish(checksum::add(pseudo_header, sum)));
    }
}

impl<'a> TcpRepr<'a> {
    /// Reads a segment that passed [`TcpPacket::new_checked`]. Refuses a wrong checksum (over `pseudo_header`, the
    /// pseudo-header sum for this segment's length), a zero port, and SYN with FIN or RST. The acknowledgment
    /// number reads as 0 when ACK is clear, and options are normalised as [`TcpOptions::parse`] says.
    // Always inlined: returned through memory, the Repr is re-read in wide loads that stall store forwarding.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        pseudo_header: u16,
    ) -> Result<TcpRepr<'a>, ParseError> {
        if !packet.verify_checksum(pseudo_header) {
            return Err(ParseError::BadTcpChecksum);
        }
        let (src_port, dst_port) = (packet.src_port(), packet.dst_port());
        if src_port == 0 || dst_port == 0 {
            return Err(ParseError::ZeroPort);
        }
        let flags = packet.flags();
        if flags.syn() && (flags.fin() || flags.rst()) {
            return Err(ParseError::BadFlags);
        }
        Ok(TcpRepr {
            src_port,
            dst_port,
            seq: packet.seq_number(),
            ack: if flags.ack() { packet.ack_number() } else { 0 },
            flags,
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options: TcpOptions::parse(packet.options(), flags.syn()),
            payload: packet.payload(),
        })
    }
}

#[inline(always)]
fn read_u16(bytes: &[u8]) -> u16 {
    <[u8; 2]>::try_from(bytes).map_or(0, u16::from_be_bytes)
}

#[inline(always)]
fn read_u32(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_be_bytes)
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.0 == 0 {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN from a Linux capture shape: ports 40000 → 80, MSS 1460, SACK_PERM+TS, NOP WS 7.
    fn syn_bytes() -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..2].copy_from_slice(&40000u16.to_be_bytes());
        b[2..4].copy_from_slice(&80u16.to_be_bytes());
        b[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        b[12] = 0xa0;
        b[13] = 0x02;
        b[14..16].copy_from_slice(&64240u16.to_be_bytes());
        b[20..40].copy_from_slice(&[2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7]);
        b
    }

    #[test]
    fn rfc9293_3_1_getters_read_the_named_fields() {
        let bytes = syn_bytes();
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x0102_0304, 0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.options().len(), 20);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn rfc9293_3_1_setters_write_the_named_fields() {
        let mut bytes = [0u8; 24];
        let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(3);
        p.set_ack_number(4);
        p.set_header_len(24);
        p.set_flags(TcpFlags::ACK | TcpFlags::FIN);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        p.fill_checksum(0x1234);
        assert!(p.verify_checksum(0x1234));
        assert!(!p.verify_checksum(0x1235));
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()), (1, 2, 3, 4));
        assert_eq!((p.header_len(), p.flags(), p.window_len(), p.urgent_at()), (24, TcpFlags(0x11), 5, 6));
    }

    #[test]
    fn rfc9293_3_1_length_checks() {
        let bytes = syn_bytes();
        for len in 0..HEADER_LEN {
            assert_eq!(TcpPacket::new_checked(&bytes[..len]).err(), Some(ParseError::TruncatedTcp));
        }
        for len in HEADER_LEN..40 {
            assert_eq!(TcpPacket::new_checked(&bytes[..len]).err(), Some(ParseError::BadDataOffset));
        }
        let mut low = bytes;
        low[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&low[..]).err(), Some(ParseError::BadDataOffset));
    }

    #[test]
    fn rfc9293_3_1_parse_checks_checksum_ports_and_flags() {
        let mut bytes = syn_bytes();
        TcpPacket::new_unchecked(&mut bytes[..]).fill_checksum(7);
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        let repr = TcpRepr::parse(&p, 7).unwrap();
        assert_eq!(repr.options.mss, Some(1460));
        assert_eq!(repr.options.window_scale, Some(7));
        assert!(repr.options.sack_permitted);
        assert_eq!(repr.options.timestamps, Some(Timestamps { tsval: 9, tsecr: 0 }));
        assert_eq!(repr.sequence_len(), 1);
        assert_eq!(TcpRepr::parse(&p, 8), Err(ParseError::BadTcpChecksum));

        let mut rebuilt = [0u8; 40];
        repr.emit(&mut TcpPacket::new_unchecked(&mut rebuilt[..]), 7);
        assert_eq!(rebuilt, bytes, "Linux layout reproduced byte for byte");
    }

    #[test]
    fn tcp_flags_debug_names_each_bit() {
        assert_eq!(format!("{:?}", TcpFlags::SYN | TcpFlags::ACK), "SYN|ACK");
        assert_eq!(format!("{:?}", TcpFlags::NONE), "NONE");
        assert_eq!(format!("{:?}", TcpFlags(0xff)), "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR");
    }
}
