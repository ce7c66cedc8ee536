//! IPv6 without extension headers.
//!
//! Owns the fixed IPv6 header: a zero-copy view and its Repr. It never follows extension headers (the caller
//! refuses them by name) and never looks inside the payload.

use super::ParseError;
use std::net::Ipv6Addr;

/// A parsed IPv6 header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    /// Traffic class.
    pub tclass: u8,
    /// Low 20 bits significant.
    pub flow_label: u32,
    pub payload_len: u16,
}

type Field = core::ops::Range<usize>;

mod field {
    use super::Field;
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// True for the next-header values that announce an IPv6 extension header (IANA "IPv6 Extension Header Types":
/// hop-by-hop, routing, fragment, ESP, AH, destination options, mobility, HIP, shim6, and the two experimental
/// values).
#[inline]
pub const fn is_extension_header(next_header: u8) -> bool {
    matches!(next_header, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

/// Why a packet whose next header is not the protocol a parser wants is refused: extension headers are not
/// followed, anything else is simply another protocol.
#[inline]
pub fn refuse_next_header(next_header: u8) -> ParseError {
    if is_extension_header(next_header) {
        ParseError::Ipv6ExtensionHeader
    } else {
        ParseError::NotTcp
    }
}

/// True for addresses that are no host's unicast address, so never the source (nor, from the wire, the
/// destination) of a TCP segment: unspecified, loopback, multicast (RFC 4291 §2.5.2, §2.5.3, §2.7) and
/// IPv4-mapped (§2.5.5.2: they stand for IPv4 peers inside a host's API and never appear on the wire; Linux drops
/// them on input too).
#[inline]
pub fn is_not_unicast(addr: Ipv6Addr) -> bool {
    addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.to_ipv4_mapped().is_some()
}

/// A zero-copy view of an IPv6 packet.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer. For buffers sized by the caller.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`Ipv6Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the version and that header and payload fit the buffer. The buffer may be longer (Ethernet padding);
    /// the payload ends at the payload length. After this succeeds, every getter is in bounds.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TruncatedIp);
        }
        if self.version() != 6 {
            return Err(ParseError::BadIpVersion);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(ParseError::BadIpLength);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn first_word(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.first_word() & FLOW_LABEL_MASK
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PAYLOAD_LEN])
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_u128(&self.buffer.as_ref()[field::SRC]))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_u128(&self.buffer.as_ref()[field::DST]))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload, ending at the payload length (trailing padding excluded), borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Writes version 6, the traffic class and the low 20 bits of `flow_label`.
    #[inline]
    pub fn set_version_tclass_flow(&mut self, tclass: u8, flow_label: u32) {
        let word = (6 << 28) | (u32::from(tclass) << 20) | (flow_label & FLOW_LABEL_MASK);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    #[inline]
    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next_header;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// The bytes after the fixed header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

impl Ipv6Repr {
    /// Reads a packet that passed [`Ipv6Packet::new_checked`] and refuses impossible source addresses. The next
    /// header is returned for the caller to judge.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr, ParseError> {
        let src = packet.src_addr();
        if is_not_unicast(src) {
            return Err(ParseError::BadSourceAddress);
        }
        Ok(Ipv6Repr {
            src,
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            tclass: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: packet.payload_len(),
        })
    }

    /// Always 40.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header; the buffer must hold at least 40 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version_tclass_flow(self.tclass, self.flow_label);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
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

#[inline(always)]
fn read_u128(bytes: &[u8]) -> u128 {
    <[u8; 16]>::try_from(bytes).map_or(0, u128::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            next_header: 6,
            hop_limit: 64,
            tclass: 0xb8,
            flow_label: 0xabcde,
            payload_len: 4,
        }
    }

    fn packet() -> Vec<u8> {
        let mut buf = vec![0u8; 44];
        repr().emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        buf[40..].copy_from_slice(b"data");
        buf
    }

    #[test]
    fn rfc8200_3_header_fields_round_trip() {
        let buf = packet();
        assert_eq!(&buf[..8], &[0x6b, 0x8a, 0xbc, 0xde, 0, 4, 6, 64]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"data");
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn rfc8200_3_flow_label_keeps_low_20_bits() {
        let mut r = repr();
        r.flow_label = 0xfff0_0001;
        let mut buf = [0u8; 44];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(Ipv6Packet::new_checked(&buf[..]).unwrap().flow_label(), 1);
        assert_eq!(Ipv6Packet::new_checked(&buf[..]).unwrap().traffic_class(), 0xb8);
    }

    #[test]
    fn rfc8200_3_payload_length_bounds_the_payload() {
        let mut buf = packet();
        buf.extend_from_slice(&[0; 10]);
        assert_eq!(Ipv6Packet::new_checked(&buf[..]).unwrap().payload(), b"data");
        assert_eq!(Ipv6Packet::new_checked(&packet()[..43]).err(), Some(ParseError::BadIpLength));
        for len in 0..HEADER_LEN {
            assert_eq!(Ipv6Packet::new_checked(&packet()[..len]).err(), Some(ParseError::TruncatedIp));
        }
    }

    #[test]
    fn rfc8200_3_version_is_checked() {
        let mut buf = packet();
        buf[0] = 0x4b;
        assert_eq!(Ipv6Packet::new_checked(&buf[..]).err(), Some(ParseError::BadIpVersion));
    }

    #[test]
    fn rfc4291_impossible_sources_are_refused() {
        for src in ["::", "::1", "ff02::1", "ff05::1:3", "::ffff:10.77.0.50", "::ffff:0.0.0.0"] {
            let mut buf = packet();
            Ipv6Packet::new_unchecked(&mut buf[..]).set_src_addr(src.parse().unwrap());
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Ipv6Repr::parse(&p), Err(ParseError::BadSourceAddress), "{src}");
        }
    }

    #[test]
    fn rfc8200_4_extension_header_numbers() {
        for nh in [0u8, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254] {
            assert!(is_extension_header(nh));
        }
        for nh in [6u8, 17, 58, 59, 1, 255] {
            assert!(!is_extension_header(nh));
        }
    }
}
