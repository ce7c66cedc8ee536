//! Tests only: how an independent parser (etherparse, not this crate's) reads a TCP frame, with the IPv4 header
//! checksum and the TCP checksum verified on the way, for unit tests that check what they emit.

use std::net::IpAddr;

/// What etherparse reads in a TCP frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Reading {
    pub src: IpAddr,
    pub syn: bool,
    pub ack: bool,
    pub ack_number: u32,
}

/// Reads `frame` with etherparse; panics unless it is TCP over IPv4 or IPv6 with valid checksums.
pub fn tcp(frame: &[u8]) -> Reading {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse reads the frame");
    let Some(TransportSlice::Tcp(t)) = p.transport else { panic!("not TCP") };
    let src = match p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.calc_header_checksum(), h.header_checksum, "IPv4 header checksum");
            let (s, d) = (ip.header().source_addr(), ip.header().destination_addr());
            let sum = t.to_header().calc_checksum_ipv4_raw(s.octets(), d.octets(), t.payload()).unwrap();
            assert_eq!(sum, t.checksum(), "TCP checksum over IPv4");
            IpAddr::V4(s)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let (s, d) = (ip.header().source_addr(), ip.header().destination_addr());
            let sum = t.to_header().calc_checksum_ipv6_raw(s.octets(), d.octets(), t.payload()).unwrap();
            assert_eq!(sum, t.checksum(), "TCP checksum over IPv6");
            IpAddr::V6(s)
        }
        _ => panic!("not IP"),
    };
    Reading { src, syn: t.syn(), ack: t.ack(), ack_number: t.acknowledgment_number() }
}
