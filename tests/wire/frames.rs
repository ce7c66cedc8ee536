//! Whole-frame parsing and emission: round trips per layer combination, every refusal reason, truncation, data
//! offsets, padding, VLAN, IPv6, and emit's size errors.

use crate::support::*;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use xdptcp::wire::*;

fn parse_ok(frame: &[u8]) -> FrameRepr<'_> {
    parse_frame(frame).unwrap_or_else(|e| panic!("refused with {e}: {frame:02x?}"))
}

// ---- round trips -------------------------------------------------------------------------------------------

#[test]
fn rfc9293_3_1_syn_with_all_options_round_trips_over_ipv4() {
    let repr = frame(eth(None), ipv4(), syn_tcp());
    let bytes = emit(&repr);
    assert_eq!(bytes.len(), 14 + 20 + 20 + 20);
    assert_eq!(parse_ok(&bytes), repr.canonical());
    assert_eq!(parse_ok(&bytes).tcp, syn_tcp());
}

#[test]
fn rfc8200_syn_round_trips_over_ipv6() {
    let repr = frame(eth(None), ipv6(), syn_tcp());
    let bytes = emit(&repr);
    assert_eq!(bytes.len(), 14 + 40 + 40);
    let parsed = parse_ok(&bytes);
    assert_eq!(parsed, repr.canonical());
    match parsed.ip {
        IpRepr::V6(ip) => {
            assert_eq!((ip.src, ip.dst, ip.flow_label, ip.payload_len), (CLIENT_V6, SERVER_V6, 0x12345, 40))
        }
        IpRepr::V4(_) => panic!("expected IPv6"),
    }
}

#[test]
fn ieee802_1q_tagged_syn_round_trips() {
    let repr = frame(eth(Some(0xa064)), ipv4(), syn_tcp());
    let bytes = emit(&repr);
    assert_eq!(&bytes[12..18], &[0x81, 0x00, 0xa0, 0x64, 0x08, 0x00]);
    let parsed = parse_ok(&bytes);
    assert_eq!(parsed.eth.vlan, Some(0xa064));
    assert_eq!(parsed, repr.canonical());
}

#[test]
fn rfc9293_3_1_every_kind_of_segment_round_trips() {
    let fin = TcpRepr { flags: TcpFlags::FIN | TcpFlags::ACK, ..ack_tcp(b"") };
    let rst = TcpRepr { flags: TcpFlags::RST, ack: 0, options: TcpOptions::default(), ..ack_tcp(b"") };
    let rst_ack = TcpRepr { flags: TcpFlags::RST | TcpFlags::ACK, ..rst };
    let sack = TcpRepr {
        options: TcpOptions { sack: SackBlocks::from_slice(&[(10, 20), (30, 40)]), ..ack_tcp(b"").options },
        ..ack_tcp(b"")
    };
    let all_flags = TcpRepr { flags: TcpFlags(0xfd), urgent: 7, ..ack_tcp(b"x") };
    for tcp in
        [syn_tcp(), syn_ack_tcp(), ack_tcp(b""), ack_tcp(b"GET / HTTP/1.1\r\n\r\n"), fin, rst, rst_ack, sack, all_flags]
    {
        for ip in [ipv4(), ipv6()] {
            for vlan in [None, Some(5)] {
                let repr = frame(eth(vlan), ip, tcp);
                let bytes = emit(&repr);
                assert_eq!(bytes.len(), repr.frame_len());
                let parsed = parse_ok(&bytes);
                assert_eq!(parsed, repr.canonical(), "{tcp:?}");
                assert_eq!(parsed.tcp, tcp, "fixtures are canonical already");
            }
        }
    }
}

#[test]
fn rfc9293_3_1_ack_number_reads_zero_without_ack_flag() {
    let tcp = TcpRepr { flags: TcpFlags::RST, ack: 0x1234_5678, ..ack_tcp(b"") };
    let bytes = emit(&frame(eth(None), ipv4(), tcp));
    assert_eq!(&bytes[34 + 8..34 + 12], &0x1234_5678u32.to_be_bytes(), "emit writes the field as given");
    assert_eq!(parse_ok(&bytes).tcp.ack, 0);
}

#[test]
fn rfc791_3_1_emit_writes_df_ident_zero_ttl_and_no_options() {
    let ip = IpRepr::V4(Ipv4Repr { ttl: 17, tos: 0x2e, protocol: 99, payload_len: 9999, ..ipv4_repr() });
    let bytes = emit(&frame(eth(None), ip, ack_tcp(b"abc")));
    let ip = &bytes[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ip[1], 0x2e);
    assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, bytes.len() - 14, "total length from the TCP part");
    assert_eq!(&ip[4..8], &[0, 0, 0x40, 0], "identification 0, DF, offset 0");
    assert_eq!(ip[8], 17);
    assert_eq!(ip[9], 6, "protocol is TCP whatever the Repr said");
    assert!(xdptcp::wire::checksum::verify(ip));
}

fn ipv4_repr() -> Ipv4Repr {
    match ipv4() {
        IpRepr::V4(ip) => ip,
        IpRepr::V6(_) => unreachable!(),
    }
}

fn ipv6_repr() -> Ipv6Repr {
    match ipv6() {
        IpRepr::V6(ip) => ip,
        IpRepr::V4(_) => unreachable!(),
    }
}

#[test]
fn rfc791_3_1_header_options_are_skipped() {
    // 8 bytes of IP options (NOP, NOP, NOP, EOL, padding), then a record route, in a valid SYN.
    let plain = syn_v4();
    let bytes = syn_v4_with_ip_options(&[1, 1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(bytes[14], 0x47);
    assert_eq!(parse_ok(&bytes), parse_ok(&plain));
    assert_eq!(parse_ok(&syn_v4_with_ip_options(&[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0])), parse_ok(&plain));
}

#[test]
fn rfc1122_3_3_5_source_routed_and_malformed_ip_options_are_refused_by_name() {
    for kind in [131u8, 137] {
        let routed = syn_v4_with_ip_options(&[1, kind, 7, 4, 10, 1, 2, 3]);
        assert_eq!(parse_frame(&routed).err(), Some(ParseError::SourceRoute), "option {kind}");
    }
    for bad in [[68u8, 1, 0, 0], [7, 5, 4, 0], [1, 1, 1, 68]] {
        let frame = syn_v4_with_ip_options(&bad);
        assert_eq!(parse_frame(&frame).err(), Some(ParseError::BadIpOptions), "options {bad:?}");
    }
}

#[test]
fn ieee802_3_trailing_padding_after_the_ip_packet_is_ignored() {
    let ack = bare_ack_v4();
    assert_eq!(ack.len(), 54);
    for pad in [0xaa, 0x00, 0xff] {
        let mut padded = ack.clone();
        padded.resize(60, pad);
        assert_eq!(parse_ok(&padded), parse_ok(&ack));
        assert!(parse_ok(&padded).tcp.payload.is_empty());
    }
    let data = emit(&frame(eth(None), ipv6(), ack_tcp(b"hi")));
    let mut padded = data.clone();
    padded.extend_from_slice(&[0x55; 9]);
    assert_eq!(parse_ok(&padded), parse_ok(&data));
    assert_eq!(parse_ok(&padded).tcp.payload, b"hi");
}

#[test]
fn emit_writes_only_frame_len_bytes_into_a_larger_buffer() {
    let repr = frame(eth(None), ipv4(), ack_tcp(b"hello"));
    let mut buf = [0xcc; 256];
    let n = repr.emit(&mut buf).unwrap();
    assert_eq!(n, repr.frame_len());
    assert!(buf[n..].iter().all(|&b| b == 0xcc));
    assert_eq!(parse_ok(&buf[..n]), repr.canonical());
    // Parsing the whole buffer treats the rest as Ethernet padding.
    assert_eq!(parse_ok(&buf), repr.canonical());
}

#[test]
fn emit_refuses_every_buffer_shorter_than_the_frame() {
    for repr in [frame(eth(Some(1)), ipv6(), syn_tcp()), frame(eth(None), ipv4(), ack_tcp(b"xyz"))] {
        let need = repr.frame_len();
        for have in 0..need {
            let mut buf = vec![0u8; have];
            assert_eq!(repr.emit(&mut buf), Err(EmitError::BufferTooSmall { need, have }));
        }
    }
}

#[test]
fn emit_refuses_a_payload_beyond_one_ip_packet() {
    static BIG: [u8; 65_536] = [0; 65_536];
    // IPv4: 20 + 20 + payload must fit in 65535.
    let fits = frame(eth(None), ipv4(), TcpRepr { options: TcpOptions::default(), ..ack_tcp(&BIG[..65_495]) });
    assert_eq!(emit(&fits).len(), 14 + 65_535);
    let over = frame(eth(None), ipv4(), TcpRepr { options: TcpOptions::default(), ..ack_tcp(&BIG[..65_496]) });
    let mut buf = vec![0u8; 70_000];
    assert_eq!(over.emit(&mut buf), Err(EmitError::PayloadTooLong(65_496)));
    // IPv6: only the 20 + payload counts.
    let fits = frame(eth(None), ipv6(), TcpRepr { options: TcpOptions::default(), ..ack_tcp(&BIG[..65_515]) });
    assert_eq!(emit(&fits).len(), 14 + 40 + 65_535);
    let over = frame(eth(None), ipv6(), TcpRepr { options: TcpOptions::default(), ..ack_tcp(&BIG[..65_516]) });
    assert_eq!(over.emit(&mut buf), Err(EmitError::PayloadTooLong(65_516)));
}

// ---- every refusal reason ----------------------------------------------------------------------------------

/// Each crafted frame and the one reason it must be refused with.
fn crafted() -> Vec<(&'static str, Vec<u8>, ParseError)> {
    let mut cases: Vec<(&'static str, Vec<u8>, ParseError)> = Vec::new();
    let syn = syn_v4();
    let syn6 = syn_v6();
    let vlan = syn_vlan();
    let mut push = |name, bytes, err| cases.push((name, bytes, err));

    push("13-byte frame", syn[..13].to_vec(), ParseError::TruncatedEthernet);
    push("tag cut short", vlan[..17].to_vec(), ParseError::TruncatedEthernet);

    let mut arp = syn.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    push("ARP", arp, ParseError::NotIp);
    let mut qinq = vlan.clone();
    qinq[16..18].copy_from_slice(&[0x81, 0x00]);
    push("second 802.1Q tag", qinq, ParseError::NotIp);
    let mut qinq_ad = vlan.clone();
    qinq_ad[16..18].copy_from_slice(&[0x88, 0xa8]);
    push("802.1ad inside 802.1Q", qinq_ad, ParseError::NotIp);
    let mut stag = syn.clone();
    stag[12..14].copy_from_slice(&[0x88, 0xa8]);
    push("802.1ad outer tag", stag, ParseError::NotIp);

    push("19 bytes of IPv4", syn[..14 + 19].to_vec(), ParseError::TruncatedIp);
    push("39 bytes of IPv6", syn6[..14 + 39].to_vec(), ParseError::TruncatedIp);
    let mut ihl_long = syn.clone();
    ihl_long.truncate(14 + 40);
    ihl_long[14] = 0x4f; // 60-byte header in 40 bytes
    push("IHL past the frame", ihl_long, ParseError::TruncatedIp);

    let mut v5 = syn.clone();
    v5[14] = 0x55;
    push("IPv4 version 5", v5, ParseError::BadIpVersion);
    let mut v6_in_v4 = syn6.clone();
    v6_in_v4[12..14].copy_from_slice(&[0x08, 0x00]);
    push("IPv6 packet under the IPv4 EtherType", v6_in_v4, ParseError::BadIpVersion);
    let mut v4_in_v6 = syn.clone();
    v4_in_v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    v4_in_v6.resize(14 + 60, 0);
    push("IPv4 packet under the IPv6 EtherType", v4_in_v6, ParseError::BadIpVersion);

    let mut ihl4 = syn.clone();
    ihl4[14] = 0x44;
    push("IHL 4", ihl4, ParseError::BadIhl);

    let mut total_long = syn.clone();
    set_ip_payload_len(&mut total_long, 41);
    refill_checksums_ip_only(&mut total_long);
    push("IPv4 total length past the frame", total_long, ParseError::BadIpLength);
    let mut total_short = syn.clone();
    total_short[16..18].copy_from_slice(&19u16.to_be_bytes());
    push("IPv4 total length below the header", total_short, ParseError::BadIpLength);
    let mut payload6_long = syn6.clone();
    set_ip_payload_len(&mut payload6_long, 41);
    push("IPv6 payload length past the frame", payload6_long, ParseError::BadIpLength);

    let mut ip_sum = syn.clone();
    ip_sum[14 + 8] = 63; // TTL changed, checksum not
    push("IPv4 header checksum", ip_sum, ParseError::BadIpChecksum);

    let mut mf = syn.clone();
    mf[14 + 6] = 0x20;
    refill_checksums(&mut mf);
    push("more fragments", mf, ParseError::Fragment);
    let mut offset = syn.clone();
    offset[14 + 6..14 + 8].copy_from_slice(&[0x40, 0x01]);
    refill_checksums(&mut offset);
    push("fragment offset 8 with DF", offset, ParseError::Fragment);
    push(
        "IP option length past the header",
        syn_v4_with_ip_options(&[7, 9, 4, 0, 0, 0, 0, 0]),
        ParseError::BadIpOptions,
    );
    push("loose source route", syn_v4_with_ip_options(&[131, 7, 4, 10, 1, 2, 3, 0]), ParseError::SourceRoute);

    for nh in [0u8, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254] {
        let mut ext = syn6.clone();
        ext[14 + 6] = nh;
        push("IPv6 extension header", ext, ParseError::Ipv6ExtensionHeader);
    }

    let mut udp = syn.clone();
    udp[14 + 9] = 17;
    refill_checksums(&mut udp);
    push("IPv4 UDP", udp, ParseError::NotTcp);
    let mut icmp6 = syn6.clone();
    icmp6[14 + 6] = 58;
    push("IPv6 ICMPv6", icmp6, ParseError::NotTcp);
    let mut no_next = syn6.clone();
    no_next[14 + 6] = 59;
    push("IPv6 no next header", no_next, ParseError::NotTcp);

    let mut short_tcp = syn.clone();
    short_tcp.truncate(14 + 20 + 19);
    set_ip_payload_len(&mut short_tcp, 19);
    refill_checksums_ip_only(&mut short_tcp);
    push("19-byte TCP segment", short_tcp, ParseError::TruncatedTcp);
    let mut short_tcp6 = syn6.clone();
    short_tcp6.truncate(14 + 40);
    set_ip_payload_len(&mut short_tcp6, 0);
    push("empty IPv6 payload", short_tcp6, ParseError::TruncatedTcp);

    let mut doff4 = syn.clone();
    doff4[34 + 12] = 0x40;
    refill_checksums(&mut doff4);
    push("data offset 4", doff4, ParseError::BadDataOffset);
    let mut doff_past = bare_ack_v4();
    doff_past[34 + 12] = 0x60;
    refill_checksums(&mut doff_past);
    push("data offset past the segment", doff_past, ParseError::BadDataOffset);

    let mut tcp_sum = syn.clone();
    tcp_sum[34 + 14] ^= 0x01; // window changed, checksum not
    push("TCP checksum", tcp_sum, ParseError::BadTcpChecksum);
    let mut tcp_sum6 = syn6.clone();
    tcp_sum6[54 + 4] ^= 0x80;
    push("TCP checksum over IPv6", tcp_sum6, ParseError::BadTcpChecksum);
    let mut pseudo = syn.clone();
    pseudo[14 + 19] ^= 0x01; // destination address changed: only the pseudo-header sees it
    refill_checksums_ip_only(&mut pseudo);
    push("TCP checksum covers the IPv4 pseudo-header", pseudo, ParseError::BadTcpChecksum);
    let mut pseudo6 = syn6.clone();
    pseudo6[14 + 39] ^= 0x01;
    push("TCP checksum covers the IPv6 pseudo-header", pseudo6, ParseError::BadTcpChecksum);

    for flags in [0x03u8, 0x06, 0x07, 0x13, 0x16, 0xff] {
        let mut bad = syn.clone();
        bad[34 + 13] = flags;
        refill_checksums(&mut bad);
        push("SYN with FIN or RST", bad, ParseError::BadFlags);
    }

    for at in [34, 36] {
        let mut zero = syn.clone();
        zero[at..at + 2].copy_from_slice(&[0, 0]);
        refill_checksums(&mut zero);
        push("port 0", zero, ParseError::ZeroPort);
    }

    for src in [[0, 0, 0, 0], [127, 0, 0, 1], [127, 255, 0, 9], [224, 0, 0, 251], [239, 1, 2, 3], [255, 255, 255, 255]]
    {
        let mut bad = syn.clone();
        bad[26..30].copy_from_slice(&src);
        refill_checksums(&mut bad);
        push("impossible IPv4 source", bad, ParseError::BadSourceAddress);
    }
    for src in [Ipv6Addr::UNSPECIFIED, Ipv6Addr::LOCALHOST, "ff02::1".parse().unwrap(), "ff0e::1".parse().unwrap()] {
        let mut bad = syn6.clone();
        bad[22..38].copy_from_slice(&src.octets());
        refill_checksums(&mut bad);
        push("impossible IPv6 source", bad, ParseError::BadSourceAddress);
    }
    for mac in [[0x01, 0, 0x5e, 0, 0, 1], [0xff; 6], [0x33, 0x33, 0, 0, 0, 1]] {
        let mut bad = syn.clone();
        bad[6..12].copy_from_slice(&mac);
        push("group source MAC", bad, ParseError::BadSourceAddress);
    }

    // ICMP "too big" (read by `icmp::parse_too_big` once `parse_frame` says not TCP): quoting a segment cut before
    // its sequence number, and one whose checksum fails.
    let too_big = |quote: &[u8]| {
        let kind = etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        );
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(CLIENT_MAC.0, SERVER_MAC.0)
            .ipv4([10, 0, 0, 254], SERVER_V4.octets(), 64)
            .icmpv4(kind)
            .write(&mut out, quote)
            .unwrap();
        out
    };
    push("ICMP quote cut short", too_big(&syn[14..14 + 24]), ParseError::BadIcmp);
    let mut corrupt = too_big(&syn[14..14 + 28]);
    let n = corrupt.len();
    corrupt[n - 1] ^= 0x01;
    push("ICMP checksum", corrupt, ParseError::BadIcmp);
    cases
}

/// What the endpoint makes of a frame: `parse_frame`'s verdict, or for what is not TCP the ICMP parser's.
fn refusal(bytes: &[u8]) -> Option<ParseError> {
    match parse_frame(bytes) {
        Err(ParseError::NotTcp) => icmp::parse_too_big(bytes).err(),
        r => r.err(),
    }
}

/// Fixes only the IPv4 header checksum (for frames whose TCP part is already too broken to checksum).
fn refill_checksums_ip_only(frame: &mut [u8]) {
    let ip = ip_offset(frame);
    let ihl = usize::from(frame[ip] & 0x0f) * 4;
    frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let c = xdptcp::wire::checksum::checksum(&frame[ip..ip + ihl]);
    frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn every_parse_error_reason_is_produced_by_a_crafted_frame() {
    let mut seen = HashSet::new();
    for (name, bytes, expected) in crafted() {
        assert_eq!(refusal(&bytes), Some(expected), "{name}: {bytes:02x?}");
        seen.insert(expected);
    }
    for reason in ParseError::ALL {
        assert!(seen.contains(&reason), "no crafted frame produces {reason}");
        assert_eq!(ParseError::ALL[reason.index()], reason);
    }
    let names: HashSet<_> = ParseError::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(names.len(), ParseError::ALL.len(), "names are distinct");
}

#[test]
fn rfc9293_3_1_syn_fin_and_syn_rst_are_refused_but_other_combinations_parse() {
    for flags in 0..=255u8 {
        let mut bytes = syn_v4();
        bytes[34 + 13] = flags;
        refill_checksums(&mut bytes);
        let f = TcpFlags(flags);
        let result = parse_frame(&bytes);
        if f.syn() && (f.fin() || f.rst()) {
            assert_eq!(result.err(), Some(ParseError::BadFlags), "{f:?}");
        } else {
            assert_eq!(result.unwrap().tcp.flags, f);
        }
    }
}

#[test]
fn rfc1122_unicast_sources_parse() {
    // A subnet's directed broadcast (192.168.1.255) cannot be told from a host by its bits alone; class E
    // (240/4) can, and is refused (see the IPv4 parser's own tests).
    for src in [[10, 0, 0, 1], [1, 1, 1, 1], [223, 255, 255, 254], [192, 168, 1, 255], [1, 0, 0, 0]] {
        let mut bytes = syn_v4();
        bytes[26..30].copy_from_slice(&src);
        refill_checksums(&mut bytes);
        match parse_ok(&bytes).ip {
            IpRepr::V4(ip) => assert_eq!(ip.src, Ipv4Addr::from(src)),
            IpRepr::V6(_) => unreachable!(),
        }
    }
}

#[test]
fn every_truncation_of_a_valid_frame_is_refused_without_panic() {
    for bytes in [syn_v4(), syn_v6(), syn_vlan(), emit(&frame(eth(None), ipv4(), ack_tcp(b"some data")))] {
        assert!(parse_frame(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert!(parse_frame(&bytes[..len]).is_err(), "accepted {len} of {} bytes", bytes.len());
        }
    }
}

#[test]
fn rfc9293_3_1_data_offset_from_0_to_15_against_every_segment_length() {
    let base = bare_ack_v4();
    for extra in 0..=64usize {
        let seg_len = 20 + extra;
        for doff in 0..=15u8 {
            let mut bytes = base[..34 + 20].to_vec();
            // NOPs as options and as data: any split between them is well formed.
            bytes.resize(34 + seg_len, 1);
            bytes[34 + 12] = doff << 4;
            set_ip_payload_len(&mut bytes, seg_len);
            refill_checksums(&mut bytes);
            let header_len = usize::from(doff) * 4;
            let result = parse_frame(&bytes);
            if doff < 5 || header_len > seg_len {
                assert_eq!(result.err(), Some(ParseError::BadDataOffset), "doff {doff}, segment {seg_len}");
            } else {
                let tcp = result.unwrap().tcp;
                assert_eq!(tcp.payload.len(), seg_len - header_len, "doff {doff}, segment {seg_len}");
                assert_eq!(tcp.options, TcpOptions::default());
            }
        }
    }
}

#[test]
fn rfc8200_payload_length_bounds_the_segment() {
    // A valid IPv6 ACK with data, then the payload length cut by 1..: the segment shrinks, the checksum breaks.
    let bytes = emit(&frame(eth(None), ipv6(), ack_tcp(b"0123456789")));
    for cut in 1..=10 {
        let mut short = bytes.clone();
        let len = bytes.len() - 54 - cut;
        set_ip_payload_len(&mut short, len);
        assert_eq!(parse_frame(&short).err(), Some(ParseError::BadTcpChecksum));
        refill_checksums(&mut short);
        assert_eq!(parse_ok(&short).tcp.payload, &b"0123456789"[..10 - cut]);
    }
}

#[test]
fn rfc8200_flow_label_and_traffic_class_survive() {
    let ip = IpRepr::V6(Ipv6Repr { tclass: 0xb9, flow_label: 0xfffff, hop_limit: 1, ..ipv6_repr() });
    let parsed = parse_ok(&emit(&frame(eth(None), ip, ack_tcp(b"")))).ip;
    match parsed {
        IpRepr::V6(ip) => assert_eq!((ip.tclass, ip.flow_label, ip.hop_limit), (0xb9, 0xfffff, 1)),
        IpRepr::V4(_) => unreachable!(),
    }
}
