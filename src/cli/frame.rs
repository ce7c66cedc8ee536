//! The synthetic frame of the ceiling bench: Ethernet + IPv4 + TCP (ACK) + zero padding, checksums filled in.
//!
//! Built once per run, then copied into every TX frame. Independent of `wire` on purpose: the ceiling measures the
//! rings, not the stack.

use std::net::Ipv4Addr;

/// Smallest frame: Ethernet (14) + IPv4 (20) + TCP (20).
pub const MIN_FRAME: usize = 54;
/// Largest frame: a 1500-byte IP packet.
pub const MAX_FRAME: usize = 1514;

/// The two ends of the synthetic flow.
#[derive(Clone, Copy, Debug)]
pub struct FlowSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
}

/// A frame of exactly `len` bytes (clamped to [`MIN_FRAME`]..=[`MAX_FRAME`]).
pub fn tcp_frame(flow: &FlowSpec, len: usize) -> Vec<u8> {
    let len = len.clamp(MIN_FRAME, MAX_FRAME);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&flow.dst_mac);
    f[6..12].copy_from_slice(&flow.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    {
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = 6; // TCP
        ip[12..16].copy_from_slice(&flow.src_ip.octets());
        ip[16..20].copy_from_slice(&flow.dst_ip.octets());
        let sum = checksum(0, ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    {
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&flow.src_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&flow.dst_port.to_be_bytes());
        tcp[4..8].copy_from_slice(&1u32.to_be_bytes()); // seq
        tcp[8..12].copy_from_slice(&1u32.to_be_bytes()); // ack
        tcp[12] = 5 << 4; // data offset
        tcp[13] = 0x10; // ACK
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    }
    let tcp_len = ip_len - 20;
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&flow.src_ip.octets());
    pseudo[4..8].copy_from_slice(&flow.dst_ip.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&tcp_len.to_be_bytes());
    let sum = checksum(sum_words(0, &pseudo), &f[34..]);
    f[50..52].copy_from_slice(&sum.to_be_bytes());
    f
}

fn sum_words(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Internet checksum of `bytes`, starting from a partial sum.
fn checksum(start: u32, bytes: &[u8]) -> u16 {
    let mut acc = sum_words(start, bytes);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Swaps destination and source MAC: the reflector's whole job. `None` for a frame too short to have them.
#[inline]
pub fn swap_macs(frame: &mut [u8]) -> Option<usize> {
    let len = frame.len();
    let (dst, rest) = frame.split_at_mut_checked(6)?;
    let src = rest.get_mut(..6)?;
    dst.swap_with_slice(src);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn flow() -> FlowSpec {
        FlowSpec {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(10, 77, 0, 2),
            dst_ip: Ipv4Addr::new(10, 77, 0, 1),
            src_port: 40000,
            dst_port: 7777,
        }
    }

    #[test]
    fn frame_parses_with_valid_checksums_at_every_length() {
        for len in [0, 54, 60, 64, 65, 128, 1514, 9000] {
            let f = tcp_frame(&flow(), len);
            assert_eq!(f.len(), len.clamp(MIN_FRAME, MAX_FRAME));
            let p = SlicedPacket::from_ethernet(&f).expect("parses");
            let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not IPv4") };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not TCP") };
            assert_eq!(tcp.destination_port(), 7777);
            let expect = tcp.to_header().calc_checksum_ipv4(&h, tcp.payload()).unwrap();
            assert_eq!(tcp.checksum(), expect, "len {len}");
        }
    }

    #[test]
    fn swap_macs_swaps_and_refuses_short_frames() {
        let mut f = tcp_frame(&flow(), 64);
        assert_eq!(swap_macs(&mut f), Some(64));
        assert_eq!(&f[0..6], &flow().src_mac);
        assert_eq!(&f[6..12], &flow().dst_mac);
        assert_eq!(swap_macs(&mut [0u8; 11]), None);
    }
}
