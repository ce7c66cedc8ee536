//! Fixture frames and byte-level helpers shared by the tests/wire_*.rs suites.
//!
//! Builders return Reprs and the frames our emitter makes from them; `refill_checksums` repairs both checksums
//! after a test has damaged one field on purpose, so that only the intended check can fail. It works on raw
//! offsets and never calls our parser.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use xdptcp::wire::checksum;
use xdptcp::wire::*;

pub const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
pub const SERVER_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 1);

pub fn eth(vlan: Option<u16>) -> EthernetRepr {
    EthernetRepr { dst: SERVER_MAC, src: CLIENT_MAC, vlan, ethertype: EtherType::IPV4 }
}

pub fn ipv4() -> IpRepr {
    IpRepr::V4(Ipv4Repr { src: CLIENT_V4, dst: SERVER_V4, protocol: 6, ttl: 64, tos: 0, payload_len: 0 })
}

pub fn ipv6() -> IpRepr {
    IpRepr::V6(Ipv6Repr {
        src: CLIENT_V6,
        dst: SERVER_V6,
        next_header: 6,
        hop_limit: 64,
        tclass: 0,
        flow_label: 0x12345,
        payload_len: 0,
    })
}

/// A Linux-like SYN: MSS, SACK-permitted, timestamps, window scale.
pub fn syn_tcp() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: 0x1000_0000,
        ack: 0,
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 0xdead_beef, tsecr: 0 }),
            sack: SackBlocks::default(),
        },
        payload: &[],
    }
}

pub fn syn_ack_tcp() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: 0x7000_0000,
        ack: 0x1000_0001,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65160,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 0x0102_0304, tsecr: 0xdead_beef }),
            sack: SackBlocks::default(),
        },
        ..syn_tcp()
    }
}

pub fn ack_tcp(payload: &'static [u8]) -> TcpRepr<'static> {
    TcpRepr {
        seq: 0x1000_0001,
        ack: 0x7000_0001,
        flags: if payload.is_empty() { TcpFlags::ACK } else { TcpFlags::ACK | TcpFlags::PSH },
        window: 502,
        options: TcpOptions {
            timestamps: Some(Timestamps { tsval: 0xdead_bef0, tsecr: 0x0102_0304 }),
            ..Default::default()
        },
        payload,
        ..syn_tcp()
    }
}

pub fn frame(eth: EthernetRepr, ip: IpRepr, tcp: TcpRepr<'_>) -> FrameRepr<'_> {
    let ethertype = match ip {
        IpRepr::V4(_) => EtherType::IPV4,
        IpRepr::V6(_) => EtherType::IPV6,
    };
    FrameRepr { eth: EthernetRepr { ethertype, ..eth }, ip, tcp }
}

pub fn emit(repr: &FrameRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.frame_len()];
    let n = repr.emit(&mut buf).expect("fixture fits");
    assert_eq!(n, buf.len());
    buf
}

pub fn syn_v4() -> Vec<u8> {
    emit(&frame(eth(None), ipv4(), syn_tcp()))
}

/// The IPv4 SYN of [`syn_v4`] with `opts` (a multiple of 4 bytes, at most 40) as IP options, lengths and
/// checksums made right.
pub fn syn_v4_with_ip_options(opts: &[u8]) -> Vec<u8> {
    assert!(opts.len() % 4 == 0 && opts.len() <= 40, "IPv4 options are whole words, at most 40 bytes");
    let plain = syn_v4();
    let mut bytes = plain[..34].to_vec();
    bytes.extend_from_slice(opts);
    bytes.extend_from_slice(&plain[34..]);
    bytes[14] = 0x40 | (5 + opts.len() / 4) as u8;
    let total = u16::from_be_bytes([bytes[16], bytes[17]]) + opts.len() as u16;
    bytes[16..18].copy_from_slice(&total.to_be_bytes());
    refill_checksums(&mut bytes);
    bytes
}

pub fn syn_v6() -> Vec<u8> {
    emit(&frame(eth(None), ipv6(), syn_tcp()))
}

pub fn syn_vlan() -> Vec<u8> {
    emit(&frame(eth(Some(0x0064)), ipv4(), syn_tcp()))
}

/// A 54-byte bare ACK (no options).
pub fn bare_ack_v4() -> Vec<u8> {
    let tcp = TcpRepr { options: TcpOptions::default(), ..ack_tcp(b"") };
    emit(&frame(eth(None), ipv4(), tcp))
}

/// Where the IP header starts: 14, or 18 after one tag.
pub fn ip_offset(frame: &[u8]) -> usize {
    if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    }
}

/// Where the TCP header starts, and where the TCP segment ends (per the IP length fields).
pub fn tcp_bounds(frame: &[u8]) -> (usize, usize) {
    let ip = ip_offset(frame);
    if frame[ip] >> 4 == 4 {
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]));
        (ip + ihl, ip + total)
    } else {
        let payload = usize::from(u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]));
        (ip + 40, ip + 40 + payload)
    }
}

/// Recomputes the IPv4 header checksum (if IPv4) and the TCP checksum from the frame's own length fields, whatever
/// else is wrong with it. Protocol 6 is assumed for the pseudo-header.
pub fn refill_checksums(frame: &mut [u8]) {
    let ip = ip_offset(frame);
    let v4 = frame[ip] >> 4 == 4;
    if v4 {
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&frame[ip..ip + ihl]);
        frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    }
    let (start, end) = tcp_bounds(frame);
    let len = end - start;
    let pseudo = if v4 {
        let src = Ipv4Addr::from(<[u8; 4]>::try_from(&frame[ip + 12..ip + 16]).unwrap());
        let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&frame[ip + 16..ip + 20]).unwrap());
        checksum::ipv4_pseudo_header(src, dst, 6, len as u16)
    } else {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[ip + 8..ip + 24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[ip + 24..ip + 40]).unwrap());
        checksum::ipv6_pseudo_header(src, dst, 6, len as u32)
    };
    frame[start + 16..start + 18].copy_from_slice(&[0, 0]);
    let c = checksum::finish(checksum::add(pseudo, checksum::sum(&frame[start..end])));
    frame[start + 16..start + 18].copy_from_slice(&c.to_be_bytes());
}

/// Replaces the TCP options of a frame with `options` (padded with EOL to a multiple of 4, at most 40 bytes),
/// fixing the data offset and IP lengths, then both checksums.
pub fn with_raw_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    assert!(options.len() <= 40);
    let (start, end) = tcp_bounds(frame);
    let old_header = usize::from(frame[start + 12] >> 4) * 4;
    let padded = options.len().div_ceil(4) * 4;
    let mut out = frame[..start + 20].to_vec();
    out.extend_from_slice(options);
    out.resize(start + 20 + padded, 0);
    out.extend_from_slice(&frame[start + old_header..end]);
    out[start + 12] = (((20 + padded) / 4) as u8) << 4;
    let seg_len = out.len() - start;
    set_ip_payload_len(&mut out, seg_len);
    refill_checksums(&mut out);
    out
}

/// Rewrites the IP length field so that the IP payload is `len` bytes.
pub fn set_ip_payload_len(frame: &mut [u8], len: usize) {
    let ip = ip_offset(frame);
    if frame[ip] >> 4 == 4 {
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        frame[ip + 2..ip + 4].copy_from_slice(&((ihl + len) as u16).to_be_bytes());
    } else {
        frame[ip + 4..ip + 6].copy_from_slice(&(len as u16).to_be_bytes());
    }
}

/// The TCP options a frame carries, parsed by our parser (the frame must be valid).
pub fn parsed_options(frame: &[u8]) -> TcpOptions {
    parse_frame(frame).expect("valid frame").tcp.options
}
