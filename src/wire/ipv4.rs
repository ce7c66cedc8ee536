//! IPv4 (options checked and skipped; source routes and fragments refused).
//!
//! Owns the IPv4 header: a zero-copy view and its Repr. Parsing checks the header checksum, walks the options
//! (refusing malformed ones and source routes, as Linux does) and refuses fragments and impossible source
//! addresses; emitting always writes a 20-byte header with DF set. It never looks inside the payload.

use super::{checksum, ParseError};
use std::net::Ipv4Addr;

/// A parsed IPv4 header. Options, if any, are checked and skipped; a reply never carries them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Upper-layer protocol (6 for TCP).
    pub protocol: u8,
    pub ttl: u8,
    /// DSCP and ECN, the second byte of the header.
    pub tos: u8,
    /// Length of the payload (total length minus header length).
    pub payload_len: u16,
}

type Field = core::ops::Range<usize>;

mod field {
    use super::Field;
    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags (reserved, DF, MF) in the top three bits, fragment offset in 8-byte units below.
    pub const FLAGS_FRAG: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

/// Length of a header without options: what [`Ipv4Repr::emit`] writes.
pub const HEADER_LEN: usize = 20;
/// The IP protocol number of TCP.
pub const PROTOCOL_TCP: u8 = 6;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer. For buffers sized by the caller.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv4Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the version and that the header and the total length fit the buffer. The buffer may be longer
    /// than the total length (Ethernet padding); the payload ends at the total length. After this succeeds,
    /// every getter is in bounds.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedIp);
        }
        if self.version() != 4 {
            return Err(ParseError::BadIpVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(ParseError::BadIhl);
        }
        if len < header_len {
            return Err(ParseError::TruncatedIp);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(ParseError::BadIpLength);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLAGS_FRAG]) & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLAGS_FRAG]) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(&self.buffer.as_ref()[field::FLAGS_FRAG]) & FRAG_OFFSET_MASK) << 3
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(&self.buffer.as_ref()[field::SRC]))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(&self.buffer.as_ref()[field::DST]))
    }

    /// True when the header, options included, sums to all ones (RFC 791 §3.1).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The options between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload, ending at the total length (trailing padding excluded), borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Writes version 4 and the header length in bytes (a multiple of 4, at most 60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Writes the flags and the fragment offset (in bytes, a multiple of 8) together.
    #[inline]
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        let mut value = (frag_offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            value |= FLAG_DF;
        }
        if more_frags {
            value |= FLAG_MF;
        }
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    #[inline]
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum over the header length the packet declares.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    /// The bytes after the header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[header_len..]
    }
}

/// Option types of a loose and a strict source route (RFC 791 §3.1: copied flag, class 0, numbers 3 and 9).
const OPT_LSRR: u8 = 131;
const OPT_SSRR: u8 = 137;

/// Walks the options the way Linux's `ip_options_compile` does: end of list and no-operation are one byte, every
/// other option has a length byte of at least 2 that stays inside the header. A source route is refused even
/// when well formed; every other option (record route, timestamps, security labels …) is skipped unread.
#[inline]
fn check_options(mut opts: &[u8]) -> Result<(), ParseError> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return Ok(()),
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(ParseError::BadIpOptions)?);
                if len < 2 || len > opts.len() {
                    return Err(ParseError::BadIpOptions);
                }
                if kind == OPT_LSRR || kind == OPT_SSRR {
                    return Err(ParseError::SourceRoute);
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(())
}

/// True for addresses that are no host's unicast address, so never the source (nor, from the wire, the
/// destination) of a TCP segment: "this network" 0/8, loopback, multicast, the reserved class E 240/4 and the
/// limited broadcast within it (RFC 1122 §3.2.1.3, RFC 1112 §4, RFC 9293 §3.9.1.1). A kernel would find no
/// route back to a class E source; we answer by MAC and so must refuse it ourselves.
#[inline]
pub fn is_not_unicast(addr: Ipv4Addr) -> bool {
    let first = addr.octets()[0];
    first == 0 || addr.is_loopback() || addr.is_multicast() || first >= 240
}

impl Ipv4Repr {
    /// Reads a packet that passed [`Ipv4Packet::new_checked`]: verifies the header checksum, refuses fragments,
    /// malformed options, source routes and impossible source addresses. Any protocol is returned for the caller
    /// to judge; other options are skipped.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, ParseError> {
        if !packet.verify_checksum() {
            return Err(ParseError::BadIpChecksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(ParseError::Fragment);
        }
        check_options(packet.options())?;
        let src = packet.src_addr();
        if is_not_unicast(src) {
            return Err(ParseError::BadSourceAddress);
        }
        let payload_len = usize::from(packet.total_len()).saturating_sub(packet.header_len());
        Ok(Ipv4Repr {
            src,
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            payload_len: payload_len as u16,
        })
    }

    /// Always 20: a reply never carries options.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header for `payload_len` bytes of payload (which must be at most 65515; larger values
    /// saturate the total length) with identification 0, DF set and a correct checksum. The buffer must hold at
    /// least 20 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        let total_len = self.payload_len.saturating_add(HEADER_LEN as u16);
        let mut header = [0u8; HEADER_LEN];
        header[field::VER_IHL] = 0x45;
        header[field::TOS] = self.tos;
        header[field::LENGTH].copy_from_slice(&total_len.to_be_bytes());
        // Identification stays 0: with DF set it identifies nothing (RFC 6864 §4.1).
        header[field::FLAGS_FRAG].copy_from_slice(&FLAG_DF.to_be_bytes());
        header[field::TTL] = self.ttl;
        header[field::PROTOCOL] = self.protocol;
        header[field::SRC].copy_from_slice(&self.src.octets());
        header[field::DST].copy_from_slice(&self.dst.octets());
        let value = checksum::checksum(&header);
        header[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
        packet.buffer.as_mut()[..HEADER_LEN].copy_from_slice(&header);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(10, 0, 0, 1),
            protocol: PROTOCOL_TCP,
            ttl: 64,
            tos: 0x10,
            payload_len: 4,
        }
    }

    fn packet() -> Vec<u8> {
        let mut buf = vec![0u8; 24];
        repr().emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        buf[20..].copy_from_slice(b"data");
        buf
    }

    fn refill(buf: &mut [u8]) {
        Ipv4Packet::new_unchecked(buf).fill_checksum();
    }

    #[test]
    fn rfc791_3_1_emit_writes_df_ident_zero_and_checksum() {
        let buf = packet();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags() && p.frag_offset() == 0);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), b"data");
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn rfc791_3_1_options_are_skipped() {
        let mut buf = vec![0u8; 28];
        buf[..20].copy_from_slice(&packet()[..20]);
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&28u16.to_be_bytes());
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        buf[24..].copy_from_slice(b"data");
        refill(&mut buf);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), b"data");
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
    }

    /// A packet with `opts` (a multiple of 4 bytes) between the header and "data", checksum right.
    fn with_options(opts: &[u8]) -> Vec<u8> {
        let header = 20 + opts.len();
        let mut buf = vec![0u8; header + 4];
        buf[..20].copy_from_slice(&packet()[..20]);
        buf[0] = 0x40 | (header / 4) as u8;
        buf[2..4].copy_from_slice(&((header + 4) as u16).to_be_bytes());
        buf[20..header].copy_from_slice(opts);
        buf[header..].copy_from_slice(b"data");
        refill(&mut buf);
        buf
    }

    fn parse_with_options(opts: &[u8]) -> Result<Ipv4Repr, ParseError> {
        let buf = with_options(opts);
        Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap())
    }

    #[test]
    fn rfc791_3_1_record_route_timestamp_and_unknown_options_are_skipped() {
        // Record route (7), a timestamp (68), an unknown option (30) and the end of the list.
        assert_eq!(parse_with_options(&[7, 7, 4, 0, 0, 0, 0, 1]), Ok(repr()));
        assert_eq!(parse_with_options(&[68, 4, 5, 0]), Ok(repr()));
        assert_eq!(parse_with_options(&[1, 30, 3, 9, 0, 0xff, 0xff, 0xff]), Ok(repr()), "nothing after EOL is read");
    }

    #[test]
    fn rfc1122_3_3_5_source_routed_packets_are_dropped_as_linux_does() {
        for kind in [OPT_LSRR, OPT_SSRR] {
            assert_eq!(parse_with_options(&[kind, 7, 4, 10, 0, 0, 9, 0]), Err(ParseError::SourceRoute));
            assert_eq!(parse_with_options(&[1, 1, 1, 0, kind, 7, 8, 10, 0, 0, 9, 0]).ok(), Some(repr()), "after EOL");
            assert_eq!(parse_with_options(&[1, kind, 7, 4, 10, 0, 0, 9]), Err(ParseError::SourceRoute));
        }
    }

    #[test]
    fn rfc791_3_1_options_that_do_not_parse_are_refused() {
        // A length below 2, a length past the header, and an option cut before its length byte.
        assert_eq!(parse_with_options(&[68, 1, 0, 0]), Err(ParseError::BadIpOptions));
        assert_eq!(parse_with_options(&[68, 0, 0, 0]), Err(ParseError::BadIpOptions));
        assert_eq!(parse_with_options(&[7, 9, 4, 0, 0, 0, 0, 0]), Err(ParseError::BadIpOptions));
        assert_eq!(parse_with_options(&[1, 1, 1, 7]), Err(ParseError::BadIpOptions));
    }

    #[test]
    fn rfc791_3_1_total_length_bounds_the_payload() {
        let mut buf = packet();
        buf.extend_from_slice(&[0xee; 6]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"data");

        let mut long = packet();
        long[2..4].copy_from_slice(&25u16.to_be_bytes());
        refill(&mut long);
        assert_eq!(Ipv4Packet::new_checked(&long[..]).err(), Some(ParseError::BadIpLength));

        let mut short = packet();
        short[2..4].copy_from_slice(&19u16.to_be_bytes());
        refill(&mut short);
        assert_eq!(Ipv4Packet::new_checked(&short[..]).err(), Some(ParseError::BadIpLength));
    }

    #[test]
    fn rfc791_3_1_version_and_ihl_are_checked() {
        let mut buf = packet();
        buf[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).err(), Some(ParseError::BadIpVersion));
        for ihl in 0..5u8 {
            buf[0] = 0x40 | ihl;
            assert_eq!(Ipv4Packet::new_checked(&buf[..]).err(), Some(ParseError::BadIhl));
        }
        buf[0] = 0x47; // 28-byte header in a 24-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).err(), Some(ParseError::TruncatedIp));
        for len in 0..20 {
            assert_eq!(Ipv4Packet::new_checked(&packet()[..len]).err(), Some(ParseError::TruncatedIp));
        }
    }

    #[test]
    fn rfc791_3_1_bad_header_checksum_is_refused() {
        let mut buf = packet();
        buf[8] ^= 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Err(ParseError::BadIpChecksum));
    }

    #[test]
    fn rfc791_3_2_fragments_are_refused() {
        for (mf, offset) in [(true, 0), (false, 8), (true, 1480)] {
            let mut buf = packet();
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            p.set_flags_and_frag_offset(false, mf, offset);
            p.fill_checksum();
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Ipv4Repr::parse(&p), Err(ParseError::Fragment), "mf={mf} offset={offset}");
        }
    }

    #[test]
    fn rfc1122_3_2_1_3_impossible_sources_are_refused() {
        for src in [
            [0, 0, 0, 0],
            [0, 1, 2, 3],
            [127, 0, 0, 1],
            [224, 0, 0, 1],
            [239, 255, 255, 250],
            [240, 0, 0, 1],
            [254, 1, 2, 3],
            [255, 255, 255, 255],
        ] {
            let mut buf = packet();
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            p.set_src_addr(Ipv4Addr::from(src));
            p.fill_checksum();
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Ipv4Repr::parse(&p), Err(ParseError::BadSourceAddress), "{src:?}");
        }
    }
}
