//! Ethernet II with at most one 802.1Q tag.
//!
//! Owns the link-layer header: a zero-copy view and its Repr. It never looks past the EtherType, and never
//! accepts a second tag (QinQ): the XDP program does not steer those to us either.

use super::ParseError;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// The EtherTypes this stack cares about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// A parsed Ethernet header. `ethertype` is the inner one when a tag is present.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EthernetRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The 802.1Q tag control information (PCP, DEI, VID) when the frame carried one tag.
    pub vlan: Option<u16>,
    pub ethertype: EtherType,
}

type Field = core::ops::Range<usize>;

mod field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    /// Present only when ETHERTYPE is 0x8100.
    pub const TCI: Field = 14..16;
    pub const INNER_ETHERTYPE: Field = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = 18;
/// The 802.1ad service tag (QinQ outer tag); refused like a second 802.1Q tag.
const ETHERTYPE_QINQ: u16 = 0x88a8;

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The group bit: multicast or broadcast.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }
}

/// Why a MAC address string did not parse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("expected a MAC address as six hex octets separated by ':' or '-'")]
pub struct MacAddrParseError;

impl core::str::FromStr for MacAddr {
    type Err = MacAddrParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for slot in &mut out {
            let part = parts.next().ok_or(MacAddrParseError)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacAddrParseError);
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| MacAddrParseError)?;
        }
        if parts.next().is_some() {
            return Err(MacAddrParseError);
        }
        Ok(MacAddr(out))
    }
}

/// A zero-copy view of an Ethernet II header and what follows it.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer. For buffers sized by the caller.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that the whole header, tag included, is present.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// After this succeeds, every getter is in bounds.
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.is_tagged() && len < TAGGED_HEADER_LEN) {
            return Err(ParseError::TruncatedEthernet);
        }
        Ok(())
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(read6(&self.buffer.as_ref()[field::DST]))
    }

    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(read6(&self.buffer.as_ref()[field::SRC]))
    }

    /// The first EtherType: 0x8100 when the frame carries a tag.
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType(read_u16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// True when the frame carries an 802.1Q tag. Needs only 14 bytes.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        // Reads through `get` so that `check_len` itself never panics.
        self.buffer.as_ref().get(field::ETHERTYPE).is_some_and(|b| read_u16(b) == EtherType::VLAN.0)
    }

    /// The tag control information when tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        self.is_tagged().then(|| read_u16(&self.buffer.as_ref()[field::TCI]))
    }

    /// The EtherType of the payload: after the tag when there is one.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            EtherType(read_u16(&self.buffer.as_ref()[field::INNER_ETHERTYPE]))
        } else {
            self.outer_ethertype()
        }
    }

    /// 14, or 18 when tagged.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the header (IP packet and any trailing padding), borrowed for the buffer's lifetime.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let header_len = self.header_len();
        &self.buffer.as_ref()[header_len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Writes the first EtherType (0x8100 to mark a tag).
    #[inline]
    pub fn set_outer_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.0.to_be_bytes());
    }

    /// Writes the tag control information; the outer EtherType must already say 0x8100.
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Writes the EtherType after the tag; the outer EtherType must already say 0x8100.
    #[inline]
    pub fn set_inner_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::INNER_ETHERTYPE].copy_from_slice(&ethertype.0.to_be_bytes());
    }

    /// Everything after the header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[header_len..]
    }
}

impl EthernetRepr {
    /// Reads the header. A second tag (0x8100 or 0x88a8 after the first) is refused as [`ParseError::NotIp`];
    /// any other EtherType is returned for the caller to judge.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, ParseError> {
        let ethertype = frame.ethertype();
        let vlan = frame.vlan_tci();
        if vlan.is_some() && (ethertype == EtherType::VLAN || ethertype.0 == ETHERTYPE_QINQ) {
            return Err(ParseError::NotIp);
        }
        Ok(EthernetRepr { dst: frame.dst_addr(), src: frame.src_addr(), vlan, ethertype })
    }

    /// 14, or 18 with a tag.
    #[inline]
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header (and tag); the buffer must hold at least [`EthernetRepr::header_len`] bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        match self.vlan {
            Some(tci) => {
                frame.set_outer_ethertype(EtherType::VLAN);
                frame.set_vlan_tci(tci);
                frame.set_inner_ethertype(self.ethertype);
            }
            None => frame.set_outer_ethertype(self.ethertype),
        }
    }
}

#[inline(always)]
fn read_u16(bytes: &[u8]) -> u16 {
    <[u8; 2]>::try_from(bytes).map_or(0, u16::from_be_bytes)
}

#[inline(always)]
fn read6(bytes: &[u8]) -> [u8; 6] {
    <[u8; 6]>::try_from(bytes).unwrap_or_default()
}

impl core::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0x45, 0x00];
    const TAGGED: [u8; 20] =
        [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0x20, 0x64, 0x86, 0xdd, 0x60, 0x00];

    #[test]
    fn ieee802_3_untagged_header_fields() {
        let frame = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(repr.dst, MacAddr([0x02, 0, 0, 0, 0, 0x01]));
        assert_eq!(repr.src, MacAddr([0x02, 0, 0, 0, 0, 0x02]));
        assert_eq!(repr.vlan, None);
        assert_eq!(repr.ethertype, EtherType::IPV4);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn ieee802_1q_single_tag_is_read_and_skipped() {
        let frame = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(repr.vlan, Some(0x2064));
        assert_eq!(repr.ethertype, EtherType::IPV6);
        assert_eq!(frame.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn ieee802_1q_second_tag_is_not_ip() {
        for second in [0x8100u16, 0x88a8] {
            let mut bytes = TAGGED;
            bytes[16..18].copy_from_slice(&second.to_be_bytes());
            let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
            assert_eq!(EthernetRepr::parse(&frame), Err(ParseError::NotIp));
        }
    }

    #[test]
    fn ieee802_3_short_headers_are_truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&UNTAGGED[..len]).err(), Some(ParseError::TruncatedEthernet));
        }
        for len in 0..TAGGED_HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&TAGGED[..len]).err(), Some(ParseError::TruncatedEthernet));
        }
        assert!(EthernetFrame::new_checked(&TAGGED[..TAGGED_HEADER_LEN]).is_ok());
    }

    #[test]
    fn ieee802_3_emit_then_parse_round_trips() {
        for vlan in [None, Some(0xe00a)] {
            let repr = EthernetRepr {
                dst: MacAddr([1, 2, 3, 4, 5, 6]),
                src: MacAddr([7, 8, 9, 10, 11, 12]),
                vlan,
                ethertype: EtherType::IPV4,
            };
            let mut buf = [0u8; 18];
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            repr.emit(&mut frame);
            let frame = EthernetFrame::new_checked(&buf[..repr.header_len()]).unwrap();
            assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        }
    }

    #[test]
    fn mac_addr_text_round_trips() {
        let mac: MacAddr = "02:0A:ff:00:10:9c".parse().unwrap();
        assert_eq!(mac, MacAddr([0x02, 0x0a, 0xff, 0x00, 0x10, 0x9c]));
        assert_eq!(mac.to_string(), "02:0a:ff:00:10:9c");
        assert_eq!("02-0a-ff-00-10-9c".parse::<MacAddr>(), Ok(mac));
        for bad in [
            "",
            "02:0a:ff:00:10",
            "02:0a:ff:00:10:9c:00",
            "02:0a:ff:00:10:9g",
            "002:0a:ff:00:10:9c",
            "::::::",
            "+2:0a:ff:00:10:9c",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(!mac.is_multicast());
    }
}
