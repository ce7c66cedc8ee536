//! ICMP messages that say a segment of ours did not fit the path: ICMPv4 destination unreachable, fragmentation
//! needed (RFC 792, RFC 1191 §4) and ICMPv6 packet too big (RFC 4443 §3.2, RFC 8201). They are the only ICMP the
//! steering program gives the stack, and only when they quote a TCP segment of ours; every other ICMP message
//! stays the kernel's.
//!
//! The quoted packet is cut short (RFC 792 quotes its IP header and 8 bytes, RFC 4443 as much as fits), so its
//! IP header is read by hand: its total length says how long the original was, not how much is here.

use crate::wire::checksum;
use crate::wire::ethernet::{EtherType, EthernetRepr};
use crate::wire::frame::parse_ethernet;
use crate::wire::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::wire::ParseError;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTOCOL_ICMP: u8 = 1;
pub const PROTOCOL_ICMPV6: u8 = 58;
const ICMP_DEST_UNREACHABLE: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// Type, code, checksum and the four bytes that hold the MTU.
const ICMP_HEADER_LEN: usize = 8;
/// Of the quoted TCP header: ports and sequence number.
const QUOTED_TCP_LEN: usize = 8;

/// The TCP segment an ICMP message quotes, as we sent it: our address and port are its source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
}

/// A "too big" message, normalised: who sent it (a router, or the peer), to which of our addresses, the MTU it
/// reports (0 from an ICMPv4 router older than RFC 1191), and the segment it quotes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TooBigRepr {
    pub eth: EthernetRepr,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub mtu: u32,
    pub quoted: Quoted,
}

/// Parses a frame carrying an ICMP "too big" message about a TCP segment. A frame that is not ICMP, or is ICMP of
/// another kind, is [`ParseError::NotTcp`] (what [`crate::wire::parse_frame`] calls it); a truncated message, a
/// bad checksum or a quote that is not of a TCP segment of the same family is [`ParseError::BadIcmp`].
pub fn parse_too_big(frame: &[u8]) -> Result<TooBigRepr, ParseError> {
    let (eth_frame, eth) = parse_ethernet(frame)?;
    match eth.ethertype {
        EtherType::IPV4 => {
            let packet = Ipv4Packet::new_checked(eth_frame.payload())?;
            let ip = Ipv4Repr::parse(&packet)?;
            if ip.protocol != PROTOCOL_ICMP {
                return Err(ParseError::NotTcp);
            }
            let msg = packet.payload();
            if msg.len() < ICMP_HEADER_LEN {
                return Err(ParseError::BadIcmp);
            }
            if msg[0] != ICMP_DEST_UNREACHABLE || msg[1] != ICMP_FRAG_NEEDED {
                return Err(ParseError::NotTcp);
            }
            if !checksum::verify(msg) {
                return Err(ParseError::BadIcmp);
            }
            // RFC 1191 §4: the next-hop MTU in the low 16 bits of the second word.
            let mtu = u32::from(u16::from_be_bytes([msg[6], msg[7]]));
            let quoted = quoted_v4(&msg[ICMP_HEADER_LEN..])?;
            Ok(TooBigRepr { eth, src: ip.src.into(), dst: ip.dst.into(), mtu, quoted })
        }
        EtherType::IPV6 => {
            let packet = Ipv6Packet::new_checked(eth_frame.payload())?;
            let ip = Ipv6Repr::parse(&packet)?;
            if ip.next_header != PROTOCOL_ICMPV6 {
                return Err(ipv6::refuse_next_header(ip.next_header));
            }
            let msg = packet.payload();
            if msg.len() < ICMP_HEADER_LEN {
                return Err(ParseError::BadIcmp);
            }
            if msg[0] != ICMPV6_PACKET_TOO_BIG || msg[1] != 0 {
                return Err(ParseError::NotTcp);
            }
            let pseudo = checksum::ipv6_pseudo_header(ip.src, ip.dst, PROTOCOL_ICMPV6, msg.len() as u32);
            if !checksum::verify_with(pseudo, msg) {
                return Err(ParseError::BadIcmp);
            }
            let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
            let quoted = quoted_v6(&msg[ICMP_HEADER_LEN..])?;
            Ok(TooBigRepr { eth, src: ip.src.into(), dst: ip.dst.into(), mtu, quoted })
        }
        _ => Err(ParseError::NotIp),
    }
}

/// The IPv4 header and first 8 bytes of TCP an ICMPv4 message quotes.
fn quoted_v4(q: &[u8]) -> Result<Quoted, ParseError> {
    let ver_ihl = *q.first().ok_or(ParseError::BadIcmp)?;
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < ipv4::HEADER_LEN || q.len() < ihl + QUOTED_TCP_LEN {
        return Err(ParseError::BadIcmp);
    }
    if q[9] != ipv4::PROTOCOL_TCP {
        return Err(ParseError::BadIcmp);
    }
    let src = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
    let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
    Ok(quoted_tcp(src.into(), dst.into(), &q[ihl..]))
}

/// The IPv6 header and first bytes of TCP an ICMPv6 message quotes (no extension headers: we never send any).
fn quoted_v6(q: &[u8]) -> Result<Quoted, ParseError> {
    if q.len() < ipv6::HEADER_LEN + QUOTED_TCP_LEN || q[0] >> 4 != 6 || q[6] != ipv4::PROTOCOL_TCP {
        return Err(ParseError::BadIcmp);
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&q[at..at + 16]);
        Ipv6Addr::from(a)
    };
    Ok(quoted_tcp(addr(8).into(), addr(24).into(), &q[ipv6::HEADER_LEN..]))
}

fn quoted_tcp(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> Quoted {
    Quoted {
        src,
        dst,
        src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, PacketBuilder};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// The IP packet of a TCP segment from `src` to `dst` (ports 8080 → 40000, seq 77).
    fn segment(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(A, B);
        let mut out = Vec::new();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64).tcp(8080, 40000, 77, 1000).ack(5),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64).tcp(8080, 40000, 77, 1000).ack(5),
            _ => unreachable!(),
        }
        .write(&mut out, &[9; 100])
        .unwrap();
        out.split_off(14)
    }

    fn v4_message(mtu: u16, quote: &[u8]) -> Vec<u8> {
        let kind = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu });
        let mut out = Vec::new();
        PacketBuilder::ethernet2(B, A)
            .ipv4([10, 0, 0, 254], [10, 0, 0, 1], 64)
            .icmpv4(kind)
            .write(&mut out, quote)
            .unwrap();
        out
    }

    fn v6_message(mtu: u32, quote: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let router = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xfe).octets();
        let us = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets();
        PacketBuilder::ethernet2(B, A)
            .ipv6(router, us, 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu })
            .write(&mut out, quote)
            .unwrap();
        out
    }

    #[test]
    fn rfc1191_4_fragmentation_needed_gives_the_mtu_and_the_quoted_segment() {
        let (us, peer) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let t = parse_too_big(&v4_message(1400, &segment(us.into(), peer.into())[..28])).unwrap();
        assert_eq!((t.mtu, t.src, t.dst), (1400, IpAddr::from([10, 0, 0, 254]), IpAddr::from(us)));
        assert_eq!(t.quoted, Quoted { src: us.into(), dst: peer.into(), src_port: 8080, dst_port: 40000, seq: 77 });
        // A longer quote (RFC 1812 routers send more) reads the same.
        assert_eq!(parse_too_big(&v4_message(1400, &segment(us.into(), peer.into()))).unwrap(), t);
    }

    #[test]
    fn rfc4443_3_2_packet_too_big_gives_the_mtu_and_the_quoted_segment() {
        let us = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
        let peer = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
        let t = parse_too_big(&v6_message(1280, &segment(us.into(), peer.into())[..48])).unwrap();
        assert_eq!(t.mtu, 1280);
        assert_eq!(t.quoted, Quoted { src: us.into(), dst: peer.into(), src_port: 8080, dst_port: 40000, seq: 77 });
    }

    #[test]
    fn other_icmp_and_cut_or_corrupt_messages_are_refused_by_name() {
        let (us, peer) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let seg = segment(us, peer);
        // Echo request: not ours to read.
        let mut echo = Vec::new();
        PacketBuilder::ethernet2(B, A)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut echo, b"ping")
            .unwrap();
        assert_eq!(parse_too_big(&echo), Err(ParseError::NotTcp));
        // A quote cut before the ports and sequence number, at every length.
        for cut in 0..28 {
            assert_eq!(parse_too_big(&v4_message(1400, &seg[..cut])), Err(ParseError::BadIcmp), "cut at {cut}");
        }
        // A corrupt checksum.
        let mut bad = v4_message(1400, &seg[..28]);
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(parse_too_big(&bad), Err(ParseError::BadIcmp));
        // A quoted UDP datagram, or an IPv6 packet quoted in ICMPv4.
        let mut udp = seg[..28].to_vec();
        udp[9] = 17;
        assert_eq!(parse_too_big(&v4_message(1400, &udp)), Err(ParseError::BadIcmp));
        let v6 = segment(Ipv6Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into());
        assert_eq!(parse_too_big(&v4_message(1400, &v6[..48])), Err(ParseError::BadIcmp));
        // Every truncation of a whole message is refused without a panic.
        let whole = v6_message(1280, &segment(Ipv6Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into())[..60]);
        for len in 0..whole.len() {
            assert!(parse_too_big(&whole[..len]).is_err(), "length {len}");
        }
    }
}
