//! Property tests: every valid Repr we emit is read identically by an independent parser (etherparse) with
//! correct checksums and parses back to itself; arbitrary and mutated bytes never panic, and whatever parses
//! survives emit and re-parse.

use crate::support::*;
use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TcpOptionElement, TransportHeader, VlanHeader};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use xdptcp::wire::*;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

/// A source MAC is never a group address (IEEE 802.3 §3.2.3): the parser refuses one, so only unicast is valid.
fn unicast_mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(|mut m| {
        m[0] &= !1;
        MacAddr(m)
    })
}

fn good_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from).prop_filter("valid TCP source", |a| {
        // RFC 1122 §3.2.1.3: not "this network" (0/8), loopback, multicast, nor reserved class E (240/4).
        !(a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.octets()[0] >= 240)
    })
}

fn good_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from).prop_filter("valid TCP source", |a| {
        !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.segments()[..6] == [0, 0, 0, 0, 0, 0xffff])
    })
}

fn ip() -> impl Strategy<Value = IpRepr> {
    prop_oneof![
        (good_v4(), any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(src, dst, ttl, tos)| IpRepr::V4(Ipv4Repr {
            src,
            dst: Ipv4Addr::from(dst),
            protocol: 6,
            ttl,
            tos,
            payload_len: 0
        })),
        (good_v6(), any::<u128>(), any::<u8>(), any::<u8>(), 0u32..(1 << 20)).prop_map(
            |(src, dst, hop_limit, tclass, flow_label)| IpRepr::V6(Ipv6Repr {
                src,
                dst: Ipv6Addr::from(dst),
                next_header: 6,
                hop_limit,
                tclass,
                flow_label,
                payload_len: 0,
            })
        ),
    ]
}

/// Options as a parser would return them for this kind of segment.
fn options(syn: bool) -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(48u16..),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(move |(mss, window_scale, sack_permitted, ts, blocks)| {
            let timestamps = ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr });
            let room = if timestamps.is_some() { 3 } else { 4 };
            let sack = SackBlocks::from_slice(&blocks[..blocks.len().min(room)]);
            TcpOptions { mss, window_scale, sack_permitted, timestamps, sack }.normalized(syn)
        })
}

/// A valid TCP Repr with no payload; tests borrow their own payload into it.
fn tcp() -> impl Strategy<Value = TcpRepr<'static>> {
    (1u16.., 1u16.., any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>(), any::<u16>())
        .prop_filter_map("SYN with FIN or RST", |(src_port, dst_port, seq, ack, flags, window, urgent)| {
            let flags = TcpFlags(flags);
            (!(flags.syn() && (flags.fin() || flags.rst())))
                .then_some((src_port, dst_port, seq, ack, flags, window, urgent))
        })
        .prop_flat_map(|(src_port, dst_port, seq, ack, flags, window, urgent)| {
            options(flags.syn()).prop_map(move |options| TcpRepr {
                src_port,
                dst_port,
                seq,
                ack: if flags.ack() { ack } else { 0 },
                flags,
                window,
                urgent,
                options,
                payload: &[],
            })
        })
}

/// Checks one emitted frame with etherparse, field by field, checksums included.
fn cross_check(bytes: &[u8], repr: &FrameRepr<'_>) -> Result<(), TestCaseError> {
    let headers = PacketHeaders::from_ethernet_slice(bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let Some(LinkHeader::Ethernet2(eth)) = &headers.link else { return Err(TestCaseError::fail("no Ethernet")) };
    prop_assert_eq!(eth.destination, repr.eth.dst.0);
    prop_assert_eq!(eth.source, repr.eth.src.0);
    match (&headers.vlan, repr.eth.vlan) {
        (None, None) => {}
        (Some(VlanHeader::Single(tag)), Some(tci)) => {
            let theirs = (u16::from(tag.pcp.value()) << 13)
                | (u16::from(tag.drop_eligible_indicator) << 12)
                | tag.vlan_id.value();
            prop_assert_eq!(theirs, tci);
        }
        (theirs, ours) => return Err(TestCaseError::fail(format!("vlan {theirs:?} vs {ours:?}"))),
    }
    let Some(TransportHeader::Tcp(t)) = &headers.transport else { return Err(TestCaseError::fail("no TCP")) };
    let payload = headers.payload.slice();
    prop_assert_eq!(payload, repr.tcp.payload);
    match (&headers.net, &repr.ip) {
        (Some(NetHeaders::Ipv4(h, _)), IpRepr::V4(ip)) => {
            prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
            prop_assert_eq!(h.source, ip.src.octets());
            prop_assert_eq!(h.destination, ip.dst.octets());
            prop_assert_eq!(h.time_to_live, ip.ttl);
            prop_assert_eq!((h.dscp.value() << 2) | h.ecn.value(), ip.tos);
            prop_assert!(h.dont_fragment && !h.more_fragments && h.fragment_offset.value() == 0);
            prop_assert_eq!(h.identification, 0);
            prop_assert_eq!(h.protocol.0, 6);
            prop_assert_eq!(usize::from(h.total_len), 20 + repr.tcp.segment_len());
            prop_assert_eq!(t.checksum, t.calc_checksum_ipv4(h, payload).unwrap());
        }
        (Some(NetHeaders::Ipv6(h, _)), IpRepr::V6(ip)) => {
            prop_assert_eq!(h.source, ip.src.octets());
            prop_assert_eq!(h.destination, ip.dst.octets());
            prop_assert_eq!(h.hop_limit, ip.hop_limit);
            prop_assert_eq!(h.traffic_class, ip.tclass);
            prop_assert_eq!(h.flow_label.value(), ip.flow_label);
            prop_assert_eq!(h.next_header.0, 6);
            prop_assert_eq!(usize::from(h.payload_length), repr.tcp.segment_len());
            prop_assert_eq!(t.checksum, t.calc_checksum_ipv6(h, payload).unwrap());
        }
        (net, ip) => return Err(TestCaseError::fail(format!("net {net:?} vs {ip:?}"))),
    }
    prop_assert_eq!(t.source_port, repr.tcp.src_port);
    prop_assert_eq!(t.destination_port, repr.tcp.dst_port);
    prop_assert_eq!(t.sequence_number, repr.tcp.seq);
    prop_assert_eq!(t.acknowledgment_number, repr.tcp.ack);
    let f = repr.tcp.flags;
    prop_assert_eq!(
        [t.fin, t.syn, t.rst, t.psh, t.ack, t.urg, t.ece, t.cwr],
        [f.fin(), f.syn(), f.rst(), f.psh(), f.ack(), f.0 & 0x20 != 0, f.0 & 0x40 != 0, f.0 & 0x80 != 0]
    );
    prop_assert!(!t.ns);
    prop_assert_eq!(t.window_size, repr.tcp.window);
    prop_assert_eq!(t.urgent_pointer, repr.tcp.urgent);
    prop_assert_eq!(t.header_len() % 4, 0);
    prop_assert_eq!(t.header_len(), repr.tcp.header_len());

    // Their reading of our options.
    let mut theirs = TcpOptions::default();
    for element in t.options_iterator() {
        match element.map_err(|e| TestCaseError::fail(format!("{e:?}")))? {
            TcpOptionElement::Noop => {}
            TcpOptionElement::MaximumSegmentSize(mss) => theirs.mss = Some(mss),
            TcpOptionElement::WindowScale(ws) => theirs.window_scale = Some(ws),
            TcpOptionElement::SelectiveAcknowledgementPermitted => theirs.sack_permitted = true,
            TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                let blocks: Vec<(u32, u32)> = std::iter::once(first).chain(rest.iter().flatten().copied()).collect();
                theirs.sack = SackBlocks::from_slice(&blocks);
            }
            TcpOptionElement::Timestamp(tsval, tsecr) => theirs.timestamps = Some(Timestamps { tsval, tsecr }),
        }
    }
    prop_assert_eq!(theirs, repr.tcp.options);
    Ok(())
}

/// Parse, emit, parse again: the second parse must be the canonical form of the first.
fn assert_reemits(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(first) = parse_frame(bytes) {
        prop_assert_eq!(first.tcp, first.tcp.canonical(), "parsed TCP Reprs are canonical");
        let mut buf = vec![0u8; first.frame_len()];
        let n = first.emit(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(n, buf.len());
        let second = parse_frame(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(second, first.canonical());
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::regressions::config(2048))]

    #[test]
    fn rfc9293_3_1_emitted_frames_read_the_same_in_etherparse_and_parse_back(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        dst in mac(),
        src in unicast_mac(),
        vlan in proptest::option::of(any::<u16>()),
        ip in ip(),
        tcp in tcp(),
    ) {
        let tcp = TcpRepr { payload: &payload, ..tcp };
        let repr = frame(EthernetRepr { dst, src, vlan, ethertype: EtherType::IPV4 }, ip, tcp);
        let bytes = emit(&repr);
        prop_assert_eq!(bytes.len(), repr.frame_len());
        cross_check(&bytes, &repr)?;
        let parsed = parse_frame(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, repr.canonical());
        prop_assert_eq!(parsed.tcp, tcp, "valid Reprs are canonical");
    }

    #[test]
    fn any_repr_parses_back_as_its_canonical_form(
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        ip in ip(),
        flags in any::<u8>().prop_filter("SYN+FIN/RST", |f| { let f = TcpFlags(*f); !(f.syn() && (f.fin() || f.rst())) }),
        ack in any::<u32>(),
        mss in proptest::option::of(any::<u16>()),
        ws in proptest::option::of(any::<u8>()),
        sack_permitted in any::<bool>(),
        ts in proptest::option::of(any::<(u32, u32)>()),
        blocks in any::<[(u32, u32); 4]>(),
        sack_len in 0u8..8,
        flow_label in any::<u32>(),
    ) {
        // Unnormalised options (handshake options on any segment, out-of-range values, too many blocks).
        let ip = match ip {
            IpRepr::V6(v6) => IpRepr::V6(Ipv6Repr { flow_label, next_header: 17, payload_len: 3, ..v6 }),
            IpRepr::V4(v4) => IpRepr::V4(Ipv4Repr { protocol: 17, payload_len: 3, ..v4 }),
        };
        // Slots past `len` hold junk and `len` may claim more than four: canonical() must clean both up.
        let sack = SackBlocks { blocks, len: sack_len };
        let options = TcpOptions {
            mss, window_scale: ws, sack_permitted,
            timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            sack,
        };
        let tcp = TcpRepr { flags: TcpFlags(flags), ack, options, payload: &payload, ..syn_tcp() };
        let repr = frame(eth(None), ip, tcp);
        let bytes = emit(&repr);
        prop_assert_eq!(parse_frame(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?, repr.canonical());
    }

    #[test]
    fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        assert_reemits(&bytes)?;
    }

    #[test]
    fn byte_soup_behind_valid_headers_never_panics(
        ethertype in prop_oneof![Just([0x08u8, 0x00]), Just([0x86, 0xdd]), Just([0x81, 0x00])],
        rest in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = syn_v4()[..12].to_vec();
        bytes.extend_from_slice(&ethertype);
        bytes.extend_from_slice(&rest);
        assert_reemits(&bytes)?;
    }

    #[test]
    fn mutated_valid_frames_never_panic_and_reemit(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
        extend in proptest::collection::vec(any::<u8>(), 0..8),
        fix in any::<bool>(),
    ) {
        let mut bytes = match which {
            0 => syn_v4(),
            1 => syn_v6(),
            2 => syn_vlan(),
            3 => bare_ack_v4(),
            _ => emit(&frame(eth(None), ipv6(), ack_tcp(b"payload bytes"))),
        };
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        bytes.extend_from_slice(&extend);
        // With checksums repaired, the mutation reaches the checks past them; guard the helper's own indexing.
        if fix && repairable(&bytes) {
            refill_checksums(&mut bytes);
        }
        assert_reemits(&bytes)?;
    }

    #[test]
    fn tcp_options_soup_never_panics_and_reemits(bytes in proptest::collection::vec(any::<u8>(), 0..=40),
                                                 syn in any::<bool>()) {
        let first = TcpOptions::parse(&bytes, syn);
        prop_assert_eq!(first, first.canonical(syn));
        let mut buf = [0u8; 40];
        let n = first.emit(&mut buf, syn);
        prop_assert_eq!(n, first.emitted_len(syn));
        prop_assert_eq!(TcpOptions::parse(&buf[..n], syn), first);
    }
}

/// True when `refill_checksums` can run on these bytes without indexing out of range.
fn repairable(bytes: &[u8]) -> bool {
    if bytes.len() < 14 {
        return false;
    }
    let ip = ip_offset(bytes);
    let Some(&first) = bytes.get(ip) else { return false };
    let header_ok = match first >> 4 {
        4 => bytes.len() >= ip + 20 && first & 0x0f >= 5 && bytes.len() >= ip + usize::from(first & 0x0f) * 4,
        _ => bytes.len() >= ip + 40,
    };
    if !header_ok {
        return false;
    }
    let (start, end) = tcp_bounds(bytes);
    start + 20 <= end && end <= bytes.len()
}
