//! ICMP "too big" messages built by etherparse around frames an endpoint sent, for the in-memory core tests and
//! the BPF tests alike (no root, no AF_XDP: `cargo test --no-default-features` builds it).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::IpAddr;

use etherparse::PacketBuilder;

/// A frame from `router` (MAC `src_mac`) to `to` (MAC `dst_mac`) carrying an ICMP "too big" message that reports
/// `mtu` about `quoted_frame`, an Ethernet frame one of our endpoints sent: ICMPv4 fragmentation needed (RFC 1191)
/// or ICMPv6 packet too big (RFC 4443), quoting the first `quote` bytes of its IP packet, as a router would.
/// Built by etherparse, checksums included.
pub fn too_big(
    router: IpAddr,
    to: IpAddr,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    mtu: u32,
    quoted_frame: &[u8],
    quote: usize,
) -> Vec<u8> {
    let ip_start = if u16::from_be_bytes([quoted_frame[12], quoted_frame[13]]) == 0x8100 { 18 } else { 14 };
    let quoted = &quoted_frame[ip_start..(ip_start + quote).min(quoted_frame.len())];
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let mut out = Vec::new();
    match (router, to) {
        (IpAddr::V4(r), IpAddr::V4(t)) => {
            let kind = etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu as u16 };
            let b = eth.ipv4(r.octets(), t.octets(), 64).icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(kind));
            b.write(&mut out, quoted).expect("frame builds");
        }
        (IpAddr::V6(r), IpAddr::V6(t)) => {
            let b = eth.ipv6(r.octets(), t.octets(), 64).icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu });
            b.write(&mut out, quoted).expect("frame builds");
        }
        _ => panic!("one family"),
    }
    out
}
