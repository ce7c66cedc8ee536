//! ICMP "too big" on live connections, in virtual time (RFC 1191 §6.3, RFC 8201 §5.2, RFC 5927 §4.1): the
//! messages are built by etherparse around frames the endpoint sent, and every reply is re-parsed by it.

use crate::icmp_frames;
use crate::support;

use std::net::Ipv4Addr;
use support::frames::{self, Seg, ACK, CLIENT_MAC, FIN, SERVER_IP, SERVER_MAC};
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Recorder, Script};
use support::rig::Rig;
use xdptcp::sink::VecSink;
use xdptcp::tcp::stats::Drop;
use xdptcp::wire::ParseError;

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);
/// Payload per segment beside the timestamps (MSS 1460).
const FULL: usize = 1448;

/// A server whose app sent `n` bytes (all 3s) on open to a peer that has acknowledged none of them; returns the
/// data segments that left at once.
fn server_in_flight(n: usize) -> (Rig<Recorder>, PeerConn, Vec<Seg>) {
    let app = Recorder::new(Script { on_open_send: vec![3; n], ..Script::default() });
    let mut rig = Rig::server_with(support::net::config(SERVER_MAC), app);
    let p = PeerConn::open_to_server_with(&mut rig, SynOpts::FULL, 65535);
    let data: Vec<Seg> = p.log[1..].iter().filter(|s| !s.payload.is_empty()).cloned().collect();
    let lens: Vec<usize> = data.iter().map(|s| s.payload.len()).collect();
    assert!(lens.len() >= 2 && lens[..lens.len() - 1].iter().all(|&n| n == FULL), "{lens:?}");
    (rig, p, data)
}

/// A router's "fragmentation needed" about segment `s` of the server, quoting its IP header and 8 bytes.
fn too_big_about(s: &Seg, mtu: u32) -> Vec<u8> {
    let frame = frames::build(s, SERVER_MAC, CLIENT_MAC);
    icmp_frames::too_big(ROUTER.into(), SERVER_IP.into(), CLIENT_MAC, SERVER_MAC, mtu, &frame, 28)
}

fn unmatched(rig: &Rig<Recorder>) -> u64 {
    rig.ep.stats().dropped[Drop::IcmpUnmatched as usize]
}

#[test]
fn rfc1191_too_big_about_the_flight_lowers_the_mss_and_sends_the_flight_again_in_smaller_segments() {
    let (mut rig, mut p, data) = server_in_flight(40_000);
    let flight: usize = data.iter().map(|s| s.payload.len()).sum();
    let out = rig.send_raw(&too_big_about(&data[1], 1000));
    // MTU 1000: an MSS of 960, 948 bytes of payload beside the timestamps.
    assert!(out.iter().all(|s| s.flags & ACK != 0 && s.payload.len() <= 948 && s.payload.iter().all(|&b| b == 3)));
    assert_eq!(out[0].seq, data[0].seq, "again from SND.UNA");
    for w in out.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(w[0].payload.len() as u32), "contiguous");
    }
    let again: usize = out.iter().map(|s| s.payload.len()).sum();
    assert_eq!(again, flight, "the whole flight went again (it fits the congestion window)");
    let s = rig.ep.stats();
    assert_eq!((s.icmp_too_big, s.path_mtu_lowered, s.retransmits), (1, 1, out.len() as u64));
    // A later message with a larger MTU never raises it.
    assert!(rig.send_raw(&too_big_about(&data[0], 1400)).is_empty());
    assert_eq!(rig.ep.stats().path_mtu_lowered, 1);
    // New data after the peer's ACK leaves in the smaller segments too.
    p.take(&out);
    let more = p.ack_now(&mut rig);
    let lens: Vec<usize> = more.iter().map(|s| s.payload.len()).collect();
    assert!(lens.iter().any(|&n| n > 0) && lens.iter().all(|&n| n <= 948), "{lens:?}");
}

/// With our FIN in flight behind the data, the resent flight carries it once, on its last segment, at its own
/// sequence number; with only the FIN in flight, one FIN goes again.
#[test]
fn rfc1191_the_resent_flight_ends_with_our_fin_once() {
    let app = Recorder::new(Script { on_open_send: vec![3; 3000], close_on_open: true, ..Script::default() });
    let mut rig = Rig::server_with(support::net::config(SERVER_MAC), app);
    let mut p = PeerConn::open_to_server_with(&mut rig, SynOpts::FULL, 65535);
    let sent: Vec<Seg> = p.log[1..].to_vec();
    let last = sent.last().unwrap();
    assert!(last.flags & FIN != 0, "data and FIN left at once");
    let fin_seq = last.seq.wrapping_add(last.payload.len() as u32);
    let out = rig.send_raw(&too_big_about(&sent[0], 1000));
    let fins: Vec<&Seg> = out.iter().filter(|s| s.flags & FIN != 0).collect();
    assert_eq!(fins.len(), 1, "one FIN in {} segments", out.len());
    assert_eq!(fins[0].seq.wrapping_add(fins[0].payload.len() as u32), fin_seq, "at its own place");
    assert_eq!(out.iter().map(|s| s.payload.len()).sum::<usize>(), 3000);
    // The peer takes the data but not the FIN: only the FIN is in flight, and a message about it resends it once.
    p.take(&out);
    let data_end = fin_seq;
    let mut ack = p.seg(&rig, ACK);
    ack.ack = data_end;
    p.send_seg(&mut rig, &ack);
    let fin_only = Seg { seq: fin_seq, payload: Vec::new(), ..last.clone() };
    let again = rig.send_raw(&too_big_about(&fin_only, 800));
    assert_eq!(again.len(), 1, "{} segments", again.len());
    assert!(again[0].flags & FIN != 0 && again[0].seq == fin_seq && again[0].payload.is_empty());
}

#[test]
fn rfc5927_4_1_too_big_is_believed_only_for_a_sequence_number_in_flight() {
    let (mut rig, _p, data) = server_in_flight(20_000);
    let last = data.last().unwrap();
    let before_una = Seg { seq: data[0].seq.wrapping_sub(1), ..data[0].clone() };
    let at_snd_nxt = Seg { seq: last.seq.wrapping_add(last.payload.len() as u32), ..last.clone() };
    let far = Seg { seq: data[0].seq.wrapping_add(1 << 30), ..data[0].clone() };
    let other_port = Seg { sport: 9999, ..data[0].clone() };
    for (i, s) in [before_una, at_snd_nxt, far, other_port].iter().enumerate() {
        assert!(rig.send_raw(&too_big_about(s, 1000)).is_empty(), "case {i}");
        assert_eq!(unmatched(&rig), i as u64 + 1, "case {i}");
    }
    // No MTU (a router older than RFC 1191): not believed either.
    assert!(rig.send_raw(&too_big_about(&data[0], 0)).is_empty());
    assert_eq!(unmatched(&rig), 5);
    assert_eq!(rig.ep.stats().path_mtu_lowered, 0);
    // The flight's own first byte is.
    assert!(!rig.send_raw(&too_big_about(&data[0], 1200)).is_empty());
    assert_eq!(rig.ep.stats().path_mtu_lowered, 1);
}

#[test]
fn rfc1191_an_mtu_below_552_lowers_the_mss_only_to_512() {
    let (mut rig, _p, data) = server_in_flight(5_000);
    let out = rig.send_raw(&too_big_about(&data[0], 68));
    assert!(!out.is_empty());
    // 552 − 40 = 512 of MSS, 500 beside the timestamps.
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert!(lens.iter().all(|&n| n <= 500) && lens.contains(&500), "{lens:?}");
}

#[test]
fn a_too_big_message_with_a_bad_checksum_or_a_cut_quote_is_counted_malformed() {
    let (mut rig, _p, data) = server_in_flight(5_000);
    let mut bad = too_big_about(&data[0], 1000);
    let n = bad.len();
    bad[n - 1] ^= 0xff; // inside the quote: the ICMP checksum no longer holds
    assert!(rig.send_raw(&bad).is_empty());
    let frame = frames::build(&data[0], SERVER_MAC, CLIENT_MAC);
    let cut = icmp_frames::too_big(ROUTER.into(), SERVER_IP.into(), CLIENT_MAC, SERVER_MAC, 1000, &frame, 24);
    assert!(rig.send_raw(&cut).is_empty());
    let s = rig.ep.stats();
    assert_eq!(s.malformed[ParseError::BadIcmp.index()], 2);
    assert_eq!((s.icmp_too_big, s.path_mtu_lowered), (0, 0));
}

/// With one worker per receive queue, the message may reach a worker that does not hold the connection: that
/// one keeps it for the others (`Config::forward_unmatched_icmp`), and the one that holds it applies it.
#[test]
fn a_too_big_message_on_another_workers_queue_is_forwarded_and_applied_where_the_connection_lives() {
    let (mut holder, _p, data) = server_in_flight(20_000);
    let msg = too_big_about(&data[0], 1000);
    let mut cfg = support::net::config(SERVER_MAC);
    cfg.forward_unmatched_icmp = true;
    let mut other = Rig::server_with(cfg, Recorder::new(Script::default()));
    assert!(other.send_raw(&msg).is_empty());
    let kept: Vec<Vec<u8>> = other.ep.forwarded_icmp().collect();
    assert_eq!(kept, vec![msg.clone()], "kept as it came");
    let s = other.ep.stats();
    assert_eq!((s.icmp_too_big, s.icmp_forwarded, unmatched(&other)), (1, 1, 0));
    assert_eq!(other.ep.forwarded_icmp().count(), 0, "taken once");

    let mut sink = VecSink::new();
    holder.ep.handle_forwarded_icmp(holder.now, &kept[0], &mut sink);
    let out = holder.collect(sink);
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert!(!lens.is_empty() && lens.iter().all(|&n| n <= 948), "{lens:?}");
    let s = holder.ep.stats();
    assert_eq!((s.icmp_forwarded_in, s.icmp_too_big, s.path_mtu_lowered), (1, 0, 1));

    // A forwarded message that quotes nothing here is neither forwarded again nor counted unmatched (another
    // worker holds the connection, or none does).
    let mut sink = VecSink::new();
    other.ep.handle_forwarded_icmp(other.now, &msg, &mut sink);
    assert!(sink.take().is_empty());
    assert_eq!(other.ep.forwarded_icmp().count(), 0);
    assert_eq!((other.ep.stats().icmp_forwarded, unmatched(&other)), (1, 0));

    // A lone endpoint (the default) counts such a message unmatched.
    let mut lone = Rig::server_with(support::net::config(SERVER_MAC), Recorder::new(Script::default()));
    assert!(lone.send_raw(&msg).is_empty());
    assert_eq!((lone.ep.forwarded_icmp().count(), unmatched(&lone)), (0, 1));
}
