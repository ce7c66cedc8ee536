//! Whole frames: Ethernet → IPv4 | IPv6 → TCP, parsed once and emitted in one pass.
//!
//! Owns the order of checks across layers and the lengths that tie them together (the IP length bounds the TCP
//! segment; the TCP part sizes the IP header on emit). It never keeps state and never allocates.

use super::ethernet::EthernetFrame;
use super::ipv4::{Ipv4Packet, PROTOCOL_TCP};
use super::ipv6::{self, Ipv6Packet};
use super::tcp::TcpPacket;
use super::{checksum, EmitError, EtherType, EthernetRepr, Ipv4Repr, Ipv6Repr, ParseError, TcpRepr};
use std::net::IpAddr;

/// The network layer of a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IpRepr {
    V4(Ipv4Repr),
    V6(Ipv6Repr),
}

impl IpRepr {
    #[inline]
    pub fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.src),
            IpRepr::V6(ip) => IpAddr::V6(ip.src),
        }
    }

    #[inline]
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.dst),
            IpRepr::V6(ip) => IpAddr::V6(ip.dst),
        }
    }

    /// 20 or 40: the header [`FrameRepr::emit`] writes.
    #[inline]
    pub const fn header_len(&self) -> usize {
        match self {
            IpRepr::V4(ip) => ip.header_len(),
            IpRepr::V6(ip) => ip.header_len(),
        }
    }

    /// The TCP pseudo-header sum for a segment of `tcp_len` bytes between these addresses.
    #[inline]
    pub fn pseudo_header(&self, tcp_len: usize) -> u16 {
        match self {
            IpRepr::V4(ip) => checksum::ipv4_pseudo_header(ip.src, ip.dst, PROTOCOL_TCP, tcp_len as u16),
            IpRepr::V6(ip) => checksum::ipv6_pseudo_header(ip.src, ip.dst, PROTOCOL_TCP, tcp_len as u32),
        }
    }

    /// The EtherType that carries this IP version.
    #[inline]
    pub const fn ethertype(&self) -> EtherType {
        match self {
            IpRepr::V4(_) => EtherType::IPV4,
            IpRepr::V6(_) => EtherType::IPV6,
        }
    }
}

/// A fully parsed TCP frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameRepr<'a> {
    pub eth: EthernetRepr,
    pub ip: IpRepr,
    pub tcp: TcpRepr<'a>,
}

/// Parses and fully validates one frame (lengths, both checksums, flags, ports).
///
/// Checks run outside in: Ethernet, then IP (version, lengths, checksum, fragments, source address, protocol),
/// then TCP (lengths, checksum, ports, flags), and the first failure names the reason. Bytes after the IP length
/// (Ethernet padding) are ignored.
pub fn parse_frame(frame: &[u8]) -> Result<FrameRepr<'_>, ParseError> {
    let (eth_frame, eth) = parse_ethernet(frame)?;
    let (ip, segment, pseudo_header) = match eth.ethertype {
        EtherType::IPV4 => {
            let packet = Ipv4Packet::new_checked(eth_frame.payload())?;
            let ip = Ipv4Repr::parse(&packet)?;
            if ip.protocol != PROTOCOL_TCP {
                return Err(ParseError::NotTcp);
            }
            let segment = packet.payload();
            let pseudo = checksum::ipv4_pseudo_header(ip.src, ip.dst, PROTOCOL_TCP, segment.len() as u16);
            (IpRepr::V4(ip), segment, pseudo)
        }
        EtherType::IPV6 => {
            let packet = Ipv6Packet::new_checked(eth_frame.payload())?;
            let ip = Ipv6Repr::parse(&packet)?;
            if ip.next_header != PROTOCOL_TCP {
                return Err(ipv6::refuse_next_header(ip.next_header));
            }
            let segment = packet.payload();
            let pseudo = checksum::ipv6_pseudo_header(ip.src, ip.dst, PROTOCOL_TCP, segment.len() as u32);
            (IpRepr::V6(ip), segment, pseudo)
        }
        _ => return Err(ParseError::NotIp),
    };
    let tcp = TcpRepr::parse(&TcpPacket::new_checked(segment)?, pseudo_header)?;
    Ok(FrameRepr { eth, ip, tcp })
}

/// The Ethernet layer of a frame we may answer: lengths checked, and a group (multicast or broadcast) source MAC
/// refused, since it is never a host's and replying to it would flood the segment.
pub fn parse_ethernet(frame: &[u8]) -> Result<(EthernetFrame<&[u8]>, EthernetRepr), ParseError> {
    let eth_frame = EthernetFrame::new_checked(frame)?;
    let eth = EthernetRepr::parse(&eth_frame)?;
    if eth.src.is_multicast() {
        return Err(ParseError::BadSourceAddress);
    }
    Ok((eth_frame, eth))
}

impl FrameRepr<'_> {
    /// Bytes [`FrameRepr::emit`] writes: Ethernet (+ tag) + IP header + TCP header with options + payload.
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.eth.header_len() + self.ip.header_len() + self.tcp.segment_len()
    }

    /// What [`parse_frame`] gives back for the bytes [`FrameRepr::emit`] writes from this Repr: the EtherType,
    /// IP protocol and IP payload length derived from the TCP part, the IPv6 flow label cut to 20 bits, and the TCP
    /// part made [`TcpRepr::canonical`]. Parse, emit and parse again yields `first.canonical()`.
    pub fn canonical(&self) -> Self {
        let tcp = self.tcp.canonical();
        let tcp_len = tcp.segment_len() as u16;
        let ip = match self.ip {
            IpRepr::V4(ip) => IpRepr::V4(Ipv4Repr { protocol: PROTOCOL_TCP, payload_len: tcp_len, ..ip }),
            IpRepr::V6(ip) => IpRepr::V6(Ipv6Repr {
                next_header: PROTOCOL_TCP,
                payload_len: tcp_len,
                flow_label: ip.flow_label & 0x000f_ffff,
                ..ip
            }),
        };
        FrameRepr { eth: EthernetRepr { ethertype: self.ip.ethertype(), ..self.eth }, ip, tcp }
    }

    /// Writes the frame into `buf` and returns its length. IP lengths are derived from the TCP part (the
    /// `payload_len` fields are ignored), IPv4 is emitted without options with DF set, and both checksums are
    /// computed.
    ///
    /// The EtherType and the IP protocol / next header are derived as well (from the IP version, and TCP), so a
    /// Repr can never say one thing and carry another.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let tcp_len = self.tcp.segment_len();
        let ip_header_len = self.ip.header_len();
        // IPv4 counts its header in the 16-bit total length; IPv6 counts only the payload.
        let ip_limit = match self.ip {
            IpRepr::V4(_) => usize::from(u16::MAX) - ip_header_len,
            IpRepr::V6(_) => usize::from(u16::MAX),
        };
        if tcp_len > ip_limit {
            return Err(EmitError::PayloadTooLong(self.tcp.payload.len()));
        }
        let eth_len = self.eth.header_len();
        let need = eth_len + ip_header_len + tcp_len;
        let have = buf.len();
        let Some(buf) = buf.get_mut(..need) else {
            return Err(EmitError::BufferTooSmall { need, have });
        };

        let (eth_buf, rest) = buf.split_at_mut(eth_len);
        let eth = EthernetRepr { ethertype: self.ip.ethertype(), ..self.eth };
        eth.emit(&mut EthernetFrame::new_unchecked(eth_buf));

        let (ip_buf, tcp_buf) = rest.split_at_mut(ip_header_len);
        match self.ip {
            IpRepr::V4(ip) => {
                let ip = Ipv4Repr { protocol: PROTOCOL_TCP, payload_len: tcp_len as u16, ..ip };
                ip.emit(&mut Ipv4Packet::new_unchecked(ip_buf));
            }
            IpRepr::V6(ip) => {
                let ip = Ipv6Repr { next_header: PROTOCOL_TCP, payload_len: tcp_len as u16, ..ip };
                ip.emit(&mut Ipv6Packet::new_unchecked(ip_buf));
            }
        }
        self.tcp.emit(&mut TcpPacket::new_unchecked(tcp_buf), self.ip.pseudo_header(tcp_len));
        Ok(need)
    }
}
