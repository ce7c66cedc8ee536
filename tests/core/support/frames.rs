//! Frames for and from the core, built and parsed by etherparse — never by our own `wire` module — so that a
//! bug there cannot hide in a test.

use etherparse::{
    NetSlice, PacketBuilder, SlicedPacket, TcpHeaderSlice, TcpOptionElement, TransportSlice, VlanId, VlanSlice,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x51];
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const CLIENT_IP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
pub const SERVER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
pub const SERVER_PORT: u16 = 8080;
pub const CLIENT_PORT: u16 = 40000;

/// TCP flag bits, as on the wire.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A segment as tests describe it (and as they see replies).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Seg {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    pub ts: Option<(u32, u32)>,
    /// SACK blocks (left, right), in the order they were sent.
    pub sack: Vec<(u32, u32)>,
    pub payload: Vec<u8>,
    /// The 802.1Q VLAN id the frame carries (priority 0), if tagged.
    pub vlan: Option<u16>,
}

impl Seg {
    /// A segment from the test client to the server.
    pub fn c2s(flags: u8, seq: u32, ack: u32) -> Seg {
        Seg {
            src: Some(CLIENT_IP.into()),
            dst: Some(SERVER_IP.into()),
            sport: CLIENT_PORT,
            dport: SERVER_PORT,
            seq,
            ack,
            flags,
            window: 64240,
            ..Seg::default()
        }
    }

    pub fn with_payload(mut self, p: &[u8]) -> Seg {
        self.payload = p.to_vec();
        self
    }
    pub fn with_ts(mut self, tsval: u32, tsecr: u32) -> Seg {
        self.ts = Some((tsval, tsecr));
        self
    }
    pub fn with_window(mut self, w: u16) -> Seg {
        self.window = w;
        self
    }
    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }
    /// SEG.LEN: payload plus SYN and FIN.
    pub fn len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags & SYN != 0) + u32::from(self.flags & FIN != 0)
    }
    /// A segment from the test server to the client (the scripted peer of a client-role endpoint).
    pub fn s2c(flags: u8, seq: u32, ack: u32) -> Seg {
        Seg {
            src: Some(SERVER_IP.into()),
            dst: Some(CLIENT_IP.into()),
            sport: SERVER_PORT,
            dport: CLIENT_PORT,
            seq,
            ack,
            flags,
            window: 64240,
            ..Seg::default()
        }
    }

    pub fn flag_names(&self) -> String {
        let names = [(SYN, "SYN"), (ACK, "ACK"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH")];
        names.iter().filter(|(b, _)| self.flags & b != 0).map(|(_, n)| *n).collect::<Vec<_>>().join("|")
    }
}

/// Builds an Ethernet frame carrying `s` from `src_mac` to `dst_mac`, with correct checksums.
pub fn build(s: &Seg, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let src = s.src.unwrap_or(CLIENT_IP.into());
    let dst = s.dst.unwrap_or(SERVER_IP.into());
    let ip = match (s.vlan, src, dst) {
        (None, IpAddr::V4(a), IpAddr::V4(b)) => eth.ipv4(a.octets(), b.octets(), 64),
        (None, IpAddr::V6(a), IpAddr::V6(b)) => eth.ipv6(a.octets(), b.octets(), 64),
        (Some(v), IpAddr::V4(a), IpAddr::V4(b)) => {
            eth.single_vlan(VlanId::try_new(v).expect("12-bit VLAN id")).ipv4(a.octets(), b.octets(), 64)
        }
        (Some(v), IpAddr::V6(a), IpAddr::V6(b)) => {
            eth.single_vlan(VlanId::try_new(v).expect("12-bit VLAN id")).ipv6(a.octets(), b.octets(), 64)
        }
        _ => panic!("mixed families"),
    };
    let mut tcp = ip.tcp(s.sport, s.dport, s.seq, s.window);
    if s.flags & SYN != 0 {
        tcp = tcp.syn();
    }
    if s.flags & ACK != 0 {
        tcp = tcp.ack(s.ack);
    }
    if s.flags & FIN != 0 {
        tcp = tcp.fin();
    }
    if s.flags & RST != 0 {
        tcp = tcp.rst();
    }
    if s.flags & PSH != 0 {
        tcp = tcp.psh();
    }
    let mut opts = Vec::new();
    if let Some(m) = s.mss {
        opts.push(TcpOptionElement::MaximumSegmentSize(m));
    }
    if s.sack_perm {
        opts.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
    }
    if let Some((v, e)) = s.ts {
        opts.push(TcpOptionElement::Timestamp(v, e));
    }
    if let Some((&first, rest)) = s.sack.split_first() {
        let mut more = [None; 3];
        for (slot, &b) in more.iter_mut().zip(rest) {
            *slot = Some(b);
        }
        opts.push(TcpOptionElement::SelectiveAcknowledgement(first, more));
    }
    if let Some(w) = s.wscale {
        opts.push(TcpOptionElement::Noop);
        opts.push(TcpOptionElement::WindowScale(w));
    }
    if !opts.is_empty() {
        tcp = tcp.options(&opts).expect("options fit");
    }
    let mut out = Vec::with_capacity(tcp.size(s.payload.len()));
    tcp.write(&mut out, &s.payload).expect("frame builds");
    out
}

/// A client→server frame of `s`.
pub fn c2s_frame(s: &Seg) -> Vec<u8> {
    build(s, CLIENT_MAC, SERVER_MAC)
}

/// Parses a frame the core emitted with etherparse, checking both checksums, the Ethernet header and that the
/// segment is legal (see [`assert_legal`]), and returns the segment plus the destination MAC. Panics (failing the
/// test) on anything malformed.
pub fn parse(frame: &[u8]) -> (Seg, [u8; 6]) {
    let (s, _src, dst) = parse_macs(frame);
    (s, dst)
}

/// [`parse`], returning the source MAC too: (segment, source MAC, destination MAC).
pub fn parse_macs(frame: &[u8]) -> (Seg, [u8; 6], [u8; 6]) {
    let p = SlicedPacket::from_ethernet(frame).expect("emitted frame parses");
    let eth = match p.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e,
        other => panic!("not Ethernet II: {other:?}"),
    };
    let vlan = match &p.vlan {
        None => None,
        Some(VlanSlice::SingleVlan(v)) => {
            assert_eq!(v.priority_code_point().value(), 0, "we never set a priority of our own");
            Some(v.vlan_identifier().value())
        }
        Some(other) => panic!("we never emit two tags: {other:?}"),
    };
    let (src, dst, pseudo_ok) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let computed = h.to_header().calc_header_checksum();
            assert_eq!(computed, h.header_checksum(), "IPv4 header checksum");
            assert!(h.dont_fragment(), "we always set DF");
            (IpAddr::from(h.source_addr()), IpAddr::from(h.destination_addr()), true)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (IpAddr::from(h.source_addr()), IpAddr::from(h.destination_addr()), true)
        }
        other => panic!("not IP: {other:?}"),
    };
    assert!(pseudo_ok);
    let tcp = match &p.transport {
        Some(TransportSlice::Tcp(t)) => t.clone(),
        other => panic!("not TCP: {other:?}"),
    };
    let hdr = TcpHeaderSlice::from_slice(tcp.slice()).expect("tcp header").to_header();
    let payload = tcp.payload().to_vec();
    let expected = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => hdr.calc_checksum_ipv4_raw(a.octets(), b.octets(), &payload).unwrap(),
        (IpAddr::V6(a), IpAddr::V6(b)) => hdr.calc_checksum_ipv6_raw(a.octets(), b.octets(), &payload).unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(hdr.checksum, expected, "TCP checksum of {hdr:?}");
    let mut s = Seg {
        src: Some(src),
        dst: Some(dst),
        sport: hdr.source_port,
        dport: hdr.destination_port,
        seq: hdr.sequence_number,
        ack: if hdr.ack { hdr.acknowledgment_number } else { 0 },
        flags: u8::from(hdr.fin)
            | u8::from(hdr.syn) << 1
            | u8::from(hdr.rst) << 2
            | u8::from(hdr.psh) << 3
            | u8::from(hdr.ack) << 4,
        window: hdr.window_size,
        payload,
        vlan,
        ..Seg::default()
    };
    assert!(!hdr.urg && !hdr.ece && !hdr.cwr && !hdr.ns, "we never set URG/ECE/CWR/NS: {hdr:?}");
    for o in hdr.options_iterator() {
        match o.expect("our options are well-formed") {
            TcpOptionElement::MaximumSegmentSize(m) => s.mss = Some(m),
            TcpOptionElement::WindowScale(w) => s.wscale = Some(w),
            TcpOptionElement::SelectiveAcknowledgementPermitted => s.sack_perm = true,
            TcpOptionElement::Timestamp(v, e) => s.ts = Some((v, e)),
            TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                s.sack = core::iter::once(first).chain(rest.into_iter().flatten()).collect();
            }
            _ => {}
        }
    }
    assert_legal(&s);
    (s, eth.source(), eth.destination())
}

/// What no segment we emit may ever be: SYN with FIN or RST, RST with data, data without ACK, options that only
/// belong on a SYN (MSS, window scale, SACK-permitted) on anything else.
pub fn assert_legal(s: &Seg) {
    let f = |b| s.flags & b != 0;
    assert!(!(f(SYN) && f(FIN)), "SYN+FIN emitted: {s:?}");
    assert!(!(f(SYN) && f(RST)), "SYN+RST emitted: {s:?}");
    assert!(!f(RST) || s.payload.is_empty(), "RST with data emitted: {s:?}");
    assert!(f(ACK) || f(RST) || s.flags == SYN, "a segment without ACK that is neither SYN nor RST: {s:?}");
    if !f(SYN) {
        assert!(s.mss.is_none() && s.wscale.is_none() && !s.sack_perm, "SYN-only options on {s:?}");
    }
    if f(RST) {
        assert!(s.ts.is_none(), "RST with timestamps (RFC 7323 §5.2 recommends none): {s:?}");
    }
    // RFC 2018 §3: SACK blocks only on ACKs, each a non-empty range, never on SYN or RST.
    if !s.sack.is_empty() {
        assert!(f(ACK) && !f(SYN) && !f(RST), "SACK blocks on {s:?}");
        assert!(s.sack.iter().all(|&(l, r)| (r.wrapping_sub(l) as i32) > 0), "empty or inverted SACK block: {s:?}");
        // RFC 2883 §4: only the first block may report a duplicate (a D-SACK), below the ACK or within the
        // second block; every other block lies above the ACK.
        let above = |&(l, _): &(u32, u32)| (l.wrapping_sub(s.ack) as i32) > 0;
        let within = |(l, r): (u32, u32), (l2, r2): (u32, u32)| {
            (l.wrapping_sub(l2) as i32) >= 0 && (r2.wrapping_sub(r) as i32) >= 0
        };
        let dsack = !above(&s.sack[0]) || s.sack.get(1).is_some_and(|&second| within(s.sack[0], second));
        let (first, rest) = if dsack { (1, &s.sack[1..]) } else { (0, &s.sack[..]) };
        assert!(rest.iter().all(above), "a SACK block at or below ACK after block {first}: {s:?}");
        if dsack && !above(&s.sack[0]) {
            assert!((s.ack.wrapping_sub(s.sack[0].1) as i32) >= 0, "a D-SACK block across the ACK: {s:?}");
        }
    }
}
