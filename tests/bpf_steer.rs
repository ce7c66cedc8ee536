//! The steering program under BPF_PROG_TEST_RUN: no interface, no socket. "Ours" is made observable by loading the
//! program with `NoXskAction::Drop`: a segment it would redirect finds no socket in the XSKMAP (test runs use
//! queue 0 and no socket is bound), so it is dropped and counted `no_xsk`, while everything else is passed and
//! counted under its own reason. A real redirect is checked in tests/netns_xsk.rs.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod icmp_frames;

use std::net::SocketAddr;

use proptest::test_runner::{Config, TestRunner};
use xdptcp::io::{IoError, NoXskAction, SteerCounters, SteerOptions, SteerProgram, XdpAction};

const PORT: u16 = 8080;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn client4() -> SocketAddr {
    addr("10.77.0.2:40000")
}
fn server4() -> SocketAddr {
    addr("10.77.0.1:8080")
}
fn client6() -> SocketAddr {
    addr("[fd77::2]:40000")
}
fn server6() -> SocketAddr {
    addr("[fd77::1]:8080")
}

/// A program that drops what is ours (so that "ours" shows in the verdict) and listens on PORT.
fn server_program() -> SteerProgram {
    let p = SteerProgram::load(SteerOptions { no_xsk_action: NoXskAction::Drop, ..Default::default() })
        .expect("the program loads");
    p.add_listen_port(PORT).unwrap();
    p
}

fn run(p: &SteerProgram, frame: &[u8]) -> XdpAction {
    p.test_run(frame).expect("test run")
}

fn counters(p: &SteerProgram) -> SteerCounters {
    p.counters().expect("counters")
}

/// Runs `frame` and checks it was passed for exactly `reason` (named as in `SteerCounters::named`).
fn assert_passed_for(p: &SteerProgram, frame: &[u8], reason: &str) {
    let before = counters(p);
    assert_eq!(run(p, frame), XdpAction::Pass, "expected a pass for {reason}");
    let d = counters(p) - before;
    let expected: Vec<(&str, u64)> =
        d.named().iter().map(|&(n, _)| (n, u64::from(n == reason || n == "passed"))).collect();
    assert_eq!(d.named().to_vec(), expected, "counter deltas for {reason}");
}

fn assert_ours(p: &SteerProgram, frame: &[u8]) {
    let before = counters(p);
    assert_eq!(run(p, frame), XdpAction::Drop, "expected ours (dropped for want of a socket)");
    let d = counters(p) - before;
    assert_eq!((d.no_xsk, d.dropped, d.passed, d.total()), (1, 1, 0, 1));
}

#[test]
fn listened_port_is_ours_on_ipv4() {
    if !common::require_root("listened_port_is_ours_on_ipv4") {
        return;
    }
    let p = server_program();
    assert_ours(&p, &common::tcp_syn(client4(), server4()));
}

#[test]
fn ours_without_a_socket_is_passed_by_default_and_counted_no_xsk() {
    if !common::require_root("ours_without_a_socket_is_passed_by_default_and_counted_no_xsk") {
        return;
    }
    let p = SteerProgram::load(SteerOptions::default()).unwrap();
    p.add_listen_port(PORT).unwrap();
    assert_passed_for(&p, &common::tcp_syn(client4(), server4()), "no_xsk");
}

#[test]
fn other_port_is_passed_as_not_ours() {
    if !common::require_root("other_port_is_passed_as_not_ours") {
        return;
    }
    let p = server_program();
    assert_passed_for(&p, &common::tcp_syn(client4(), addr("10.77.0.1:8081")), "not_ours");
    // The source port is not the listened one either way round.
    assert_passed_for(&p, &common::tcp_syn(addr("10.77.0.2:8080"), addr("10.77.0.1:9")), "not_ours");
}

#[test]
fn removed_port_is_no_longer_ours() {
    if !common::require_root("removed_port_is_no_longer_ours") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client4(), server4());
    assert_ours(&p, &syn);
    p.remove_listen_port(PORT).unwrap();
    assert_passed_for(&p, &syn, "not_ours");
}

#[test]
fn udp_icmp_and_arp_are_passed() {
    if !common::require_root("udp_icmp_and_arp_are_passed") {
        return;
    }
    let p = server_program();
    let udp = common::udp_v4(client4(), server4(), common::MAC_CLIENT, common::MAC_SERVER, b"dns?");
    assert_passed_for(&p, &udp, "not_tcp");
    let mut icmp = udp.clone();
    icmp[23] = 1; // IPv4 protocol: ICMP (checksums are not the program's business)
    assert_passed_for(&p, &icmp, "not_tcp");
    let mut arp = vec![0u8; 42];
    arp[0..6].copy_from_slice(&[0xff; 6]);
    arp[6..12].copy_from_slice(&common::MAC_CLIENT);
    common::put16(&mut arp, 12, 0x0806);
    assert_passed_for(&p, &arp, "not_ip");
}

#[test]
fn ipv4_fragments_are_passed() {
    if !common::require_root("ipv4_fragments_are_passed") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client4(), server4());
    let mut first = syn.clone();
    common::put16(&mut first, 20, 0x2000); // MF set, offset 0
    assert_passed_for(&p, &first, "fragment");
    let mut later = syn.clone();
    common::put16(&mut later, 20, 0x0003); // offset 24 bytes, last fragment
    assert_passed_for(&p, &later, "fragment");
    let mut df = syn;
    common::put16(&mut df, 20, 0x4000); // DF alone is not a fragment
    assert_ours(&p, &df);
}

#[test]
fn truncated_frames_of_every_length_are_passed() {
    if !common::require_root("truncated_frames_of_every_length_are_passed") {
        return;
    }
    let p = server_program();
    p.allow_vlan(7).unwrap();
    for (family, full) in [
        ("ipv4", common::tcp_syn(client4(), server4())),
        ("ipv6", common::tcp_syn(client6(), server6())),
        ("vlan", common::tcp_segment(client4(), server4(), Some(7))),
    ] {
        assert_ours(&p, &full);
        for len in 0..full.len() {
            let before = counters(&p);
            match p.test_run(&full[..len]) {
                // The kernel refuses to run XDP on less than an Ethernet header; no driver delivers such a frame.
                Err(IoError::Bpf { .. }) if len < 14 => continue,
                Err(e) => panic!("{family} len {len}: {e}"),
                Ok(v) => assert_eq!(v, XdpAction::Pass, "{family} cut at {len} of {}", full.len()),
            }
            let d = counters(&p) - before;
            assert_eq!((d.truncated, d.passed, d.total()), (1, 1, 1), "{family} cut at {len}: {d:?}");
        }
    }
}

#[test]
fn ipv6_segments_are_steered_and_extension_headers_passed() {
    if !common::require_root("ipv6_segments_are_steered_and_extension_headers_passed") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client6(), server6());
    assert_ours(&p, &syn);
    assert_passed_for(&p, &common::tcp_syn(client6(), addr("[fd77::1]:22")), "not_ours");
    let mut hop_by_hop = syn.clone();
    hop_by_hop[20] = 0; // next header: hop-by-hop options
    assert_passed_for(&p, &hop_by_hop, "not_tcp");
    let mut fragment = syn.clone();
    fragment[20] = 44; // next header: fragment
    assert_passed_for(&p, &fragment, "fragment");
    let mut udp = syn;
    udp[20] = 17;
    assert_passed_for(&p, &udp, "not_tcp");
}

#[test]
fn one_allowed_vlan_tag_is_parsed_two_are_not() {
    if !common::require_root("one_allowed_vlan_tag_is_parsed_two_are_not") {
        return;
    }
    let p = server_program();
    p.allow_vlan(100).unwrap();
    assert_ours(&p, &common::tcp_segment(client4(), server4(), Some(100)));
    assert_ours(&p, &common::tcp_segment(client6(), server6(), Some(100)));
    let mut qinq = common::tcp_segment(client4(), server4(), Some(100));
    // Put a second tag inside the first: 802.1ad outer, 802.1Q inner.
    qinq.splice(16..16, [0x81, 0x00, 0x00, 0x64]);
    common::put16(&mut qinq, 12, 0x88a8);
    assert_passed_for(&p, &qinq, "not_ip");
    // Stacked tags are refused before the outer VID is looked at, allowed or not.
    let mut other_outer = qinq;
    common::put16(&mut other_outer, 14, 200);
    assert_passed_for(&p, &other_outer, "not_ip");
}

#[test]
fn tagged_segments_are_passed_as_vlan_not_allowed_until_their_vid_is_allowed() {
    if !common::require_root("tagged_segments_are_passed_as_vlan_not_allowed_until_their_vid_is_allowed") {
        return;
    }
    let p = server_program();
    let v4 = common::tcp_segment(client4(), server4(), Some(10));
    let v6 = common::tcp_segment(client6(), server6(), Some(10));
    // By default no VLAN is ours, even to a listened port: the kernel gets the frame and, without a VLAN 10
    // device, drops it as it would without xdptcp.
    assert_passed_for(&p, &v4, "vlan_not_allowed");
    assert_passed_for(&p, &v6, "vlan_not_allowed");
    // Whatever the frame carries behind the tag.
    let mut arp = v4.clone();
    common::put16(&mut arp, 16, 0x0806);
    assert_passed_for(&p, &arp, "vlan_not_allowed");

    p.allow_vlan(10).unwrap();
    assert_ours(&p, &v4);
    assert_ours(&p, &v6);
    assert_passed_for(&p, &arp, "not_ip");
    // Only the VID counts: priority and DEI bits are not part of it.
    let mut prio = v4.clone();
    common::put16(&mut prio, 14, 0xb000 | 10); // PCP 5, DEI 1, VID 10
    assert_ours(&p, &prio);
    // An 802.1ad (service) tag alone stays the kernel's even with its VID allowed: the stack reads 802.1Q tags
    // only (its parser refuses 0x88a8), so steering it would only turn a frame the kernel may serve into a drop.
    let mut ad = v4.clone();
    common::put16(&mut ad, 12, 0x88a8);
    assert_passed_for(&p, &ad, "not_ip");
    // Other VIDs stay out, the neighbours of 10 included.
    for vid in [9, 11, 10 | 0x100, 4094, 4095] {
        let mut other = v4.clone();
        common::put16(&mut other, 14, vid);
        assert_passed_for(&p, &other, "vlan_not_allowed");
    }

    p.disallow_vlan(10).unwrap();
    assert_passed_for(&p, &v4, "vlan_not_allowed");
    assert_passed_for(&p, &v6, "vlan_not_allowed");
    // 0 is the priority tag (always allowed) and 4095 is reserved: neither goes in the map.
    assert!(matches!(p.allow_vlan(0), Err(IoError::Invalid(_))));
    assert!(matches!(p.allow_vlan(4095), Err(IoError::Invalid(_))));
}

#[test]
fn priority_tagged_vid_0_is_steered_as_untagged() {
    if !common::require_root("priority_tagged_vid_0_is_steered_as_untagged") {
        return;
    }
    // No VLAN allowed: VID 0 means "no VLAN, this priority" (802.1Q), and Linux answers it on the interface itself.
    let p = server_program();
    assert_ours(&p, &common::tcp_segment(client4(), server4(), Some(0)));
    assert_ours(&p, &common::tcp_segment(client6(), server6(), Some(0)));
    let mut prio = common::tcp_segment(client4(), server4(), Some(0));
    common::put16(&mut prio, 14, 0xe000); // PCP 7
    assert_ours(&p, &prio);
    assert_passed_for(&p, &common::tcp_segment(client4(), addr("10.77.0.1:8081"), Some(0)), "not_ours");
}

#[test]
fn impossible_headers_are_passed_as_bad_header() {
    if !common::require_root("impossible_headers_are_passed_as_bad_header") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client4(), server4());
    let mut ihl4 = syn.clone();
    ihl4[14] = 0x44;
    assert_passed_for(&p, &ihl4, "bad_header");
    let mut v6_in_v4 = syn.clone();
    v6_in_v4[14] = 0x65;
    assert_passed_for(&p, &v6_in_v4, "bad_header");
    let mut doff4 = syn.clone();
    doff4[46] = 0x40; // TCP data offset 4
    assert_passed_for(&p, &doff4, "bad_header");
    let mut short_total = syn.clone();
    common::put16(&mut short_total, 16, 30); // IPv4 total length shorter than IP + TCP headers
    assert_passed_for(&p, &short_total, "bad_header");
    let mut v4_in_v6 = common::tcp_syn(client6(), server6());
    v4_in_v6[14] = 0x45;
    assert_passed_for(&p, &v4_in_v6, "bad_header");
}

#[test]
fn ipv4_options_are_skipped() {
    if !common::require_root("ipv4_options_are_skipped") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client4(), server4());
    // Insert one 4-byte IPv4 option (NOPs) and fix IHL and total length; the program does not check the IP sum.
    let mut with_opts = syn.clone();
    with_opts.splice(34..34, [1, 1, 1, 1]);
    with_opts[14] = 0x46;
    let total = u16::from_be_bytes([syn[16], syn[17]]) + 4;
    common::put16(&mut with_opts, 16, total);
    assert_ours(&p, &with_opts);
}

#[test]
fn targets_make_replies_from_a_remote_ours() {
    if !common::require_root("targets_make_replies_from_a_remote_ours") {
        return;
    }
    let p = SteerProgram::load(SteerOptions { no_xsk_action: NoXskAction::Drop, ..Default::default() }).unwrap();
    let server = addr("10.77.0.1:80");
    let server6 = addr("[fd77::1]:443");
    // A reply from the server to our ephemeral port: not ours until the server is a target.
    let reply = common::tcp_syn(server, addr("10.77.0.2:50123"));
    assert_passed_for(&p, &reply, "not_ours");
    p.add_target(server).unwrap();
    p.add_target(server6).unwrap();
    assert_ours(&p, &reply);
    assert_ours(&p, &common::tcp_syn(server6, addr("[fd77::2]:50123")));
    assert_passed_for(&p, &common::tcp_syn(addr("10.77.0.1:81"), addr("10.77.0.2:50123")), "not_ours");
    assert_passed_for(&p, &common::tcp_syn(addr("10.77.0.3:80"), addr("10.77.0.2:50123")), "not_ours");
    p.remove_target(server).unwrap();
    assert_passed_for(&p, &reply, "not_ours");
}

#[test]
fn restricted_local_addresses_limit_what_is_ours() {
    if !common::require_root("restricted_local_addresses_limit_what_is_ours") {
        return;
    }
    let unrestricted = server_program();
    assert!(matches!(unrestricted.restrict_local_addr("10.77.0.1".parse().unwrap()), Err(IoError::Invalid(_))));
    let p = SteerProgram::load(SteerOptions {
        no_xsk_action: NoXskAction::Drop,
        restrict_local: true,
        ..Default::default()
    })
    .unwrap();
    p.add_listen_port(PORT).unwrap();
    assert_passed_for(&p, &common::tcp_syn(client4(), server4()), "not_local");
    p.restrict_local_addr("10.77.0.1".parse().unwrap()).unwrap();
    p.restrict_local_addr("fd77::1".parse().unwrap()).unwrap();
    assert_ours(&p, &common::tcp_syn(client4(), server4()));
    assert_ours(&p, &common::tcp_syn(client6(), server6()));
    assert_passed_for(&p, &common::tcp_syn(client4(), addr("10.77.0.9:8080")), "not_local");
}

#[test]
fn counters_account_for_every_frame_whatever_the_bytes() {
    if !common::require_root("counters_account_for_every_frame_whatever_the_bytes") {
        return;
    }
    let p = server_program();
    let syn = common::tcp_syn(client4(), server4());
    let runs = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config { cases: 512, ..Config::default() });
    // Random bytes, and the SYN with random bytes flipped: the verdict is only ever PASS or DROP, and every run
    // shows up in exactly one outcome counter and (unless redirected) one reason counter.
    let strategy = (proptest::collection::vec(proptest::num::u8::ANY, 14..120), 0usize..80, proptest::bool::ANY);
    runner
        .run(&strategy, |(noise, at, mutate)| {
            let frame = if mutate {
                let mut f = syn.clone();
                for (i, b) in noise.iter().take(3).enumerate() {
                    let idx = (at + i * 7) % f.len();
                    f[idx] ^= b;
                }
                f
            } else {
                noise
            };
            let v = p.test_run(&frame).expect("test run");
            runs.set(runs.get() + 1);
            proptest::prop_assert!(matches!(v, XdpAction::Pass | XdpAction::Drop), "verdict {:?}", v);
            Ok(())
        })
        .unwrap();
    let c = counters(&p);
    assert_eq!(c.total(), runs.get());
    assert_eq!(c.passed + c.dropped, c.reasons());
    // No socket, and SYN answering is off unless a queue is enabled (tests/bpf_syn_answer.rs).
    assert_eq!((c.redirected, c.answered, c.syn_held), (0, 0, 0));
}

#[test]
fn icmp_too_big_about_our_segments_is_ours_and_other_icmp_is_passed() {
    if !common::require_root("icmp_too_big_about_our_segments_is_ours_and_other_icmp_is_passed") {
        return;
    }
    let p = server_program();
    let router4: std::net::IpAddr = "10.77.0.254".parse().unwrap();
    let router6: std::net::IpAddr = "fd77::fe".parse().unwrap();
    let too_big = |router, sent: &[u8], to: SocketAddr, mtu, quote| {
        icmp_frames::too_big(router, to.ip(), common::MAC_CLIENT, common::MAC_SERVER, mtu, sent, quote)
    };
    // Segments the server sent from its listened port, quoted as routers quote them (IPv4: header and 8 bytes).
    for (router, sent, quote) in
        [(router4, common::tcp_syn(server4(), client4()), 28), (router6, common::tcp_syn(server6(), client6()), 48)]
    {
        let to = if router.is_ipv4() { server4() } else { server6() };
        let before = counters(&p);
        assert_ours(&p, &too_big(router, &sent, to, 1280, quote));
        assert_eq!((counters(&p) - before).icmp_too_big, 1);
    }
    // About a segment from a port nobody listens on, or about a quote cut before its ports: the kernel's.
    let other = common::tcp_syn(addr("10.77.0.1:9"), client4());
    assert_passed_for(&p, &too_big(router4, &other, server4(), 1280, 28), "not_tcp");
    let sent = common::tcp_syn(server4(), client4());
    assert_passed_for(&p, &too_big(router4, &sent, server4(), 1280, 24), "not_tcp");
    // A quoted UDP datagram from the same port number is not TCP.
    let udp = common::udp_v4(server4(), client4(), common::MAC_SERVER, common::MAC_CLIENT, b"dns?");
    assert_passed_for(&p, &too_big(router4, &udp, server4(), 1280, 28), "not_tcp");
    // Client role: a segment to a target, quoted back.
    let target = addr("10.77.0.9:80");
    let to_target = common::tcp_syn(addr("10.77.0.2:50123"), target);
    let msg = too_big(router4, &to_target, addr("10.77.0.2:50123"), 1280, 28);
    assert_passed_for(&p, &msg, "not_tcp");
    p.add_target(target).unwrap();
    assert_ours(&p, &msg);
}
