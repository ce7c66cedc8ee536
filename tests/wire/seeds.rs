//! The fuzz seed corpora under fuzz/corpus/seed_*: real frames and option lists made by our emitter. This test
//! proves the committed files are exactly what the fixtures produce and that each seed is valid; run it with
//! `XDPTCP_WRITE_SEEDS=1` to (re)write them.

use crate::support::*;
use std::path::PathBuf;
use xdptcp::wire::*;

fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let fin = TcpRepr { flags: TcpFlags::FIN | TcpFlags::ACK, ..ack_tcp(b"") };
    let rst = TcpRepr { flags: TcpFlags::RST, ack: 0, options: TcpOptions::default(), ..ack_tcp(b"") };
    let sack = TcpRepr {
        options: TcpOptions {
            sack: SackBlocks::from_slice(&[(100, 200), (300, 400), (500, 600)]),
            ..ack_tcp(b"").options
        },
        ..ack_tcp(b"")
    };
    let syn_ack = TcpRepr { src_port: 80, dst_port: 40000, ..syn_ack_tcp() };
    let reply_eth = EthernetRepr { dst: CLIENT_MAC, src: SERVER_MAC, ..eth(None) };
    let reply_ip =
        IpRepr::V4(Ipv4Repr { src: SERVER_V4, dst: CLIENT_V4, protocol: 6, ttl: 64, tos: 0, payload_len: 0 });
    let mut padded_ack = bare_ack_v4();
    padded_ack.resize(60, 0);
    vec![
        ("syn_all_options_v4.bin", syn_v4()),
        ("syn_ack_v4.bin", emit(&frame(reply_eth, reply_ip, syn_ack))),
        ("ack_with_data_v4.bin", emit(&frame(eth(None), ipv4(), ack_tcp(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")))),
        ("ack_sack_v4.bin", emit(&frame(eth(None), ipv4(), sack))),
        ("bare_ack_padded_v4.bin", padded_ack),
        ("fin_v4.bin", emit(&frame(eth(None), ipv4(), fin))),
        ("rst_v4.bin", emit(&frame(eth(None), ipv4(), rst))),
        ("syn_v6.bin", syn_v6()),
        ("ack_with_data_v6.bin", emit(&frame(eth(None), ipv6(), ack_tcp(b"hello")))),
        ("syn_vlan_v4.bin", syn_vlan()),
        // A record route: the IPv4 options walk, one mutation away from a source route or a bad length.
        ("syn_record_route_v4.bin", syn_v4_with_ip_options(&[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
    ]
}

/// First byte selects SYN (odd) or not, the rest is the option space (the tcp_options target's input format).
fn option_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let syn = syn_tcp().options;
    let est = TcpOptions { sack: SackBlocks::from_slice(&[(1, 2), (3, 4), (5, 6)]), ..ack_tcp(b"").options };
    let with = |selector: u8, o: TcpOptions, is_syn: bool| {
        let mut buf = vec![selector; 41];
        let n = o.emit(&mut buf[1..], is_syn);
        buf.truncate(1 + n);
        buf
    };
    vec![
        ("syn_linux.bin", with(1, syn, true)),
        ("established_ts_sack.bin", with(0, est, false)),
        ("odd_layout.bin", vec![1, 1, 3, 3, 14, 2, 4, 0, 10, 4, 2, 30, 4, 0, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0]),
    ]
}

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name)
}

fn check_or_write(dir: &str, seeds: &[(&'static str, Vec<u8>)]) {
    let dir = corpus_dir(dir);
    let write = std::env::var_os("XDPTCP_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&committed, bytes, "{} is stale: rerun with XDPTCP_WRITE_SEEDS=1", path.display());
    }
}

#[test]
fn fuzz_seed_frames_are_valid_and_committed() {
    let seeds = frame_seeds();
    for (name, bytes) in &seeds {
        let parsed = parse_frame(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed, parsed.canonical(), "{name}");
    }
    check_or_write("seed_parse_frame", &seeds);
}

/// ICMP "too big" messages about one of our segments (IPv4 and IPv6), for the ICMP parser the parse_frame target
/// reaches through frames that are not TCP. Built by etherparse.
fn icmp_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let quoted = |f: &[u8], n: usize| f[14..14 + n].to_vec();
    let ours4 = emit(&frame(eth(None), ipv4(), ack_tcp(b"data")));
    let ours6 = emit(&frame(eth(None), ipv6(), ack_tcp(b"data")));
    let mut v4 = Vec::new();
    let kind = etherparse::Icmpv4Type::DestinationUnreachable(
        etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1280 },
    );
    etherparse::PacketBuilder::ethernet2(SERVER_MAC.0, CLIENT_MAC.0)
        .ipv4([10, 77, 0, 254], CLIENT_V4.octets(), 64)
        .icmpv4(kind)
        .write(&mut v4, &quoted(&ours4, 28))
        .unwrap();
    let mut v6 = Vec::new();
    etherparse::PacketBuilder::ethernet2(SERVER_MAC.0, CLIENT_MAC.0)
        .ipv6([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe], CLIENT_V6.octets(), 64)
        .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut v6, &quoted(&ours6, 48))
        .unwrap();
    vec![("icmp_too_big_v4.bin", v4), ("icmp_too_big_v6.bin", v6)]
}

#[test]
fn fuzz_seed_icmp_messages_are_valid_and_committed() {
    let seeds = icmp_seeds();
    for (name, bytes) in &seeds {
        assert_eq!(parse_frame(bytes).err(), Some(ParseError::NotTcp), "{name}");
        let t = icmp::parse_too_big(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.mtu, 1280, "{name}");
    }
    check_or_write("seed_parse_frame", &seeds);
}

#[test]
fn fuzz_seed_option_lists_are_committed() {
    let seeds = option_seeds();
    for (name, bytes) in &seeds {
        assert!(bytes.len() <= 41, "{name}");
    }
    let parsed = TcpOptions::parse(&seeds[2].1[1..], true);
    assert_eq!((parsed.mss, parsed.window_scale, parsed.sack_permitted), (Some(48), Some(14), true));
    check_or_write("seed_tcp_options", &seeds);
}
