//! Congestion control against a scripted peer and between two endpoints, in virtual time: the RFC 6928 initial
//! window, RFC 5681 §3.1 slow start and congestion avoidance, the collapse to one segment after a retransmission
//! timeout, the halving on fast retransmit (§3.2), and a long transfer through a lossy wire. The windows are seen
//! only from the outside: how many bytes each ACK lets out. Every frame is built or re-parsed by etherparse.

use crate::support;

use std::time::Duration;
use support::frames::{Seg, ACK, SERVER_MAC};
use support::net::{config, Dir, Fate, Net};
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Recorder, Script};
use support::rig::Rig;
use xdptcp::app::CloseReason;
use xdptcp::tcp::{Config, State};

/// The 60 KB response of the black-box report.
const RESPONSE: usize = 60_000;
/// The peer's window: field 65535, scaled by 2 — far above anything the congestion window allows.
const BIG_WINDOW: u16 = 65535;
/// SMSS with timestamps (MSS 1460 less 12 bytes of option).
const SMSS: u32 = 1448;

/// A server whose app sends [`RESPONSE`] bytes on open, and a peer that opened a connection to it with a wide
/// window; returns the rig, the peer and the burst sent in answer to the handshake's ACK.
fn server_sending(opts: SynOpts) -> (Rig, PeerConn, Vec<Seg>) {
    let app = Recorder::new(Script { on_open_send: vec![7; RESPONSE], ..Script::default() });
    // These tests watch the windows through full-sized segments, and timeouts as RFC 5681 and 6298 have them;
    // the MSS fallback after a second timeout (black-hole detection) has its own test below, and the tail loss
    // probe that comes before a timeout on a connection with SACK has its own in scenarios.
    let cfg = Config { black_hole_detection: false, tail_loss_probes: false, ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, app);
    let p = PeerConn::open_to_server_with(&mut rig, opts, BIG_WINDOW);
    let burst = p.log[1..].to_vec();
    (rig, p, burst)
}

fn bytes(segs: &[Seg]) -> u32 {
    segs.iter().map(|s| s.payload.len() as u32).sum()
}

/// What each of the peer's ACKs let out, in bytes.
fn released(r: &[(u32, Vec<Seg>)]) -> Vec<u32> {
    r.iter().map(|(_, out)| bytes(out)).collect()
}

#[test]
fn rfc5681_3_1_initial_window_is_ten_segments_then_nothing_until_the_rto_then_one_segment() {
    // RFC 6928: IW = min(10·SMSS, max(2·SMSS, 14600)) — 10 × 1448 with timestamps, 10 × 1460 without.
    for (opts, smss) in [(SynOpts::FULL, 1448u32), (SynOpts::NO_TS, 1460)] {
        let (mut rig, p, burst) = server_sending(opts);
        let first = p.iss.wrapping_add(1);
        assert_eq!(burst.len(), 10, "{opts:?}");
        assert!(burst.iter().all(|s| s.payload.len() as u32 == smss), "{opts:?}");
        assert_eq!(bytes(&burst), 10 * smss, "exactly IW bytes out, though the peer's window is far wider");
        assert_eq!(burst[0].seq, first);
        // The peer never answers: nothing more until the retransmission timer, which resends the first segment
        // alone (the loss window, one segment), again on each backed-off timeout, and never new data.
        let t0 = rig.now;
        let later = rig.advance(Duration::from_secs(20));
        assert!(later.len() >= 3, "{opts:?}: {} retransmissions", later.len());
        for (i, (at, s)) in later.iter().enumerate() {
            assert_eq!((s.seq, s.payload.len() as u32), (first, smss), "{opts:?} retransmission {i}");
            assert!(i == 0 || *at > later[i - 1].0, "one segment per timeout");
        }
        let rto = later[0].0 - t0;
        assert!(rto >= Duration::from_millis(200), "the first retransmission waits for the RTO: {rto:?}");
        assert_eq!(rig.ep.stats().retransmits as usize, later.len());
    }
}

#[test]
fn rfc5681_3_1_slow_start_grows_cwnd_by_one_segment_per_ack() {
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    // A receiver acknowledging every segment: each ACK frees one segment and grows cwnd by one SMSS, so two
    // segments go out per ACK and the window doubles in a round trip (10 → 20).
    let round2 = p.ack_each(&mut rig, &burst);
    assert_eq!(released(&round2), vec![2 * SMSS; 10]);
    let second: Vec<Seg> = round2.into_iter().flat_map(|(_, o)| o).collect();
    assert_eq!(second.len(), 20);
    let end = second.last().map(|s| s.seq.wrapping_add(s.len())).unwrap();
    let flight = end.wrapping_sub(p.iss.wrapping_add(1) + 10 * SMSS);
    assert_eq!(flight, 20 * SMSS);
}

#[test]
fn rfc5681_3_1_a_stretch_ack_grows_slow_start_by_one_segment_only() {
    // Equation 2: cwnd += min(N, SMSS). One ACK for the whole initial window opens it by one segment: 11 go out.
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    assert_eq!(bytes(&burst), 10 * SMSS);
    let out = p.ack_now(&mut rig);
    assert_eq!((out.len(), bytes(&out)), (11, 11 * SMSS));
}

#[test]
fn rfc5681_3_1_timeout_collapses_cwnd_to_one_segment_and_ssthresh_to_half_the_flight() {
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    let first = p.iss.wrapping_add(1);
    // The peer got the initial window but its ACKs were lost. Two timeouts pass: the first resends the first
    // segment alone (cwnd = 1 SMSS) and sets ssthresh = max(FlightSize / 2, 2·SMSS) = 5 segments; the second,
    // of the same data, must not halve it again.
    let rtx = rig.advance(Duration::from_millis(700));
    assert_eq!(rtx.len(), 2, "two timeouts in 700 ms (200 ms, then 400 ms): {rtx:?}");
    assert!(rtx.iter().all(|(_, s)| s.seq == first && s.payload.len() as u32 == SMSS));
    assert_eq!(bytes(&burst), 10 * SMSS);
    // Now an ACK of everything: slow start from one segment (cwnd 1 → 2 SMSS: two segments out).
    let out = p.ack_now(&mut rig);
    assert_eq!(out.len(), 2, "cwnd after the timeout was one segment: {}", bytes(&out));
    // Per-segment ACKs: two segments per ACK while cwnd < ssthresh, then one (congestion avoidance) once cwnd
    // reaches 5 segments = half the 10-segment flight at the timeout.
    let mut per_ack = Vec::new();
    let mut next = out;
    for _ in 0..3 {
        let r = p.ack_each(&mut rig, &next);
        per_ack.extend(r.iter().map(|(_, o)| o.len()));
        next = r.into_iter().flat_map(|(_, o)| o).collect();
    }
    // cwnd 2 → 3 → 4 → 5 segments by slow start (2 out per ACK); at 5 = ssthresh it grows by SMSS²/cwnd per ACK
    // (1 out per ACK, until the fractions add up to a whole segment).
    assert_eq!(per_ack[..3], [2, 2, 2], "{per_ack:?}");
    assert_eq!(per_ack[3..7], [1, 1, 1, 1], "{per_ack:?}");
}

#[test]
fn rfc5681_3_2_fast_retransmit_halves_the_window() {
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    let first = p.iss.wrapping_add(1);
    assert_eq!(burst.len(), 10);
    // The first segment is lost; the next three each draw a duplicate ACK. The third makes us resend the first
    // segment at once — and only it: ssthresh = cwnd = 5 segments, below the 10 in flight.
    p.ack = first;
    let mut out = Vec::new();
    for _ in 0..3 {
        out.extend(p.ack_now(&mut rig));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].seq, out[0].payload.len() as u32), (first, SMSS));
    assert_eq!(rig.ep.stats().retransmits, 1);
    // The retransmission fills the hole: the peer acknowledges all ten. Congestion avoidance from cwnd = 5
    // segments lets 5 out (where slow start from the initial window would have let 11).
    p.ack = first.wrapping_add(10 * SMSS);
    let out = p.ack_now(&mut rig);
    assert_eq!((out.len(), bytes(&out)), (5, 5 * SMSS));
}

#[test]
fn rfc5681_3_1_initial_window_is_one_segment_when_the_syn_was_retransmitted() {
    let app = Recorder::new(Script { on_open_send: vec![7; RESPONSE], ..Script::default() });
    let mut rig = Rig::client_with(config(support::frames::CLIENT_MAC), app);
    let (id, _syn) = rig.connect();
    let again = rig.advance(Duration::from_millis(1100));
    assert_eq!(again.len(), 1, "the SYN went again after 1 s");
    let syn = again[0].1.clone();
    let p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::FULL);
    assert_eq!(rig.ep.state(id), Some(State::Established));
    let data: Vec<&Seg> = p.log.iter().filter(|s| !s.payload.is_empty()).collect();
    assert_eq!(data.len(), 1, "one segment after a lost SYN (RFC 5681 §3.1): {}", data.len());
    assert_eq!(data[0].payload.len() as u32, SMSS);
}

/// A deterministic, roughly 1-in-`n` frame loss on both directions, sparing the client's first two frames: the
/// segment that completes the cookie handshake must arrive before the rest of the client's first flight, or the
/// listener answers those with RSTs (a stateless listener knows nothing of them; that is the SYN-cookie design,
/// not congestion control, and `scenarios` covers losing it when it travels alone).
fn lossy(n: u64) -> impl FnMut(Dir, usize, &Seg) -> Fate {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    move |dir, i, _| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % n == 0 && !(dir == Dir::ClientToServer && i < 2) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }
}

#[test]
fn rfc5681_a_long_transfer_completes_through_a_lossy_wire() {
    // Four 50 KB requests, each echoed in full before the next: 200 KB each way, through 1-in-30 loss.
    let requests: Vec<Vec<u8>> = (0..4u32).map(|r| (0..50_000u32).map(|i| (i * 7 + r) as u8).collect()).collect();
    let client = Recorder::new(Script { exchanges: requests.clone(), reply_len: 50_000, ..Script::default() });
    let server = Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    net.latency = Duration::from_millis(5);
    net.set_filter(lossy(30));
    let id = net.connect();
    net.drive_for(Duration::from_secs(600));
    let got = net.client.app().received(id);
    let want: Vec<u8> = requests.concat();
    assert!(
        got == want,
        "received {} of {} bytes\n{}",
        got.len(),
        want.len(),
        net.trace().lines().take(60).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal));
    assert_eq!(net.server.app().count_closed(CloseReason::Normal), 1);
    let lost = net.client.stats().retransmits + net.server.stats().retransmits;
    assert!(lost > 0, "the wire did lose frames");
    // The first flight of each side is bounded by the initial window.
    for dir in [Dir::ClientToServer, Dir::ServerToClient] {
        let segs = net.segs(dir);
        let t_first = net.log.iter().find(|(_, d, s)| *d == dir && !s.payload.is_empty()).map(|x| x.0).unwrap();
        let first_flight: usize = net
            .log
            .iter()
            .filter(|(t, d, s)| *d == dir && *t == t_first && !s.payload.is_empty())
            .map(|(_, _, s)| s.payload.len())
            .sum();
        assert!(first_flight <= 10 * SMSS as usize, "{dir:?}: {first_flight} bytes at once ({} segs)", segs.len());
    }
}

#[test]
fn rfc4821_full_stop_timeouts_of_full_sized_segments_fall_back_to_smaller_ones() {
    // ICMP "fragmentation needed" goes to the kernel, so a path MTU below our segments shows only as timeouts.
    // After the second timeout of the same data the MSS drops to 1024 (IPv4), after the fourth to 536, and the
    // data goes on in segments of that size once the peer answers.
    let app = Recorder::new(Script { on_open_send: vec![7; RESPONSE], ..Script::default() });
    // Timeouts alone: no tail loss probe before the first.
    let mut rig = Rig::server_with(Config { tail_loss_probes: false, ..config(SERVER_MAC) }, app);
    let mut p = PeerConn::open_to_server_with(&mut rig, SynOpts::FULL, BIG_WINDOW);
    let first = p.iss.wrapping_add(1);
    let rtx = rig.advance(Duration::from_secs(8));
    let sizes: Vec<usize> = rtx.iter().map(|(_, s)| s.payload.len()).collect();
    assert!(rtx.iter().all(|(_, s)| s.seq == first), "always the first unacknowledged byte");
    // 200, 400, 800, 1600, 3200 ms of backoff: five timeouts in 8 s (12 bytes of every MSS are timestamps).
    assert_eq!(sizes[..5], [1448, 1012, 1012, 524, 524], "{sizes:?}");
    assert_eq!(rig.ep.stats().mss_black_hole_fallbacks, 2);
    // The small segment gets through: what follows is cut at the new MSS.
    p.ack = first.wrapping_add(524);
    let out = p.ack_now(&mut rig);
    assert!(!out.is_empty() && out.iter().all(|s| s.payload.len() <= 524), "{out:?}");
}

/// Sends [`RESPONSE`] bytes from the server's app now; returns what went out at once.
fn app_sends(rig: &mut Rig) -> Vec<Seg> {
    let id = rig.ep.app().opened()[0];
    let (taken, out) = rig.act(id, |c| c.send(&[8; RESPONSE]));
    assert_eq!(taken, Some(RESPONSE), "the send queue takes the whole response");
    out
}

/// The server sent its whole first response and the peer acknowledged every segment at once, so the congestion
/// window grew far past the initial window; returns the rig and the peer with nothing in flight.
fn server_after_a_grown_window() -> (Rig, PeerConn) {
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    let mut next = burst;
    while !next.is_empty() {
        next = p.ack_each(&mut rig, &next).into_iter().flat_map(|(_, o)| o).collect();
    }
    assert_eq!(p.received.len(), RESPONSE);
    (rig, p)
}

#[test]
fn rfc5681_4_1_a_connection_idle_longer_than_the_rto_restarts_from_the_initial_window() {
    // The RTO here is the 200 ms floor (the RTT samples are all zero in virtual time); one second idle exceeds it.
    let (mut rig, _p) = server_after_a_grown_window();
    rig.advance(Duration::from_secs(1));
    let burst = app_sends(&mut rig);
    assert_eq!((burst.len(), bytes(&burst)), (10, 10 * SMSS), "RW = min(IW, cwnd): ten segments, not the grown window");
    assert_eq!(rig.ep.stats().cwnd_restarts, 1);
}

#[test]
fn rfc5681_4_1_a_connection_idle_shorter_than_the_rto_keeps_its_window() {
    let (mut rig, _p) = server_after_a_grown_window();
    rig.advance(Duration::from_millis(100));
    let burst = app_sends(&mut rig);
    // Slow start grew cwnd by one segment per ACK of the 42-segment first response: 52 segments now.
    assert!(burst.len() > 40, "the grown window is kept: {} segments", burst.len());
    assert_eq!(bytes(&burst) as usize, RESPONSE.min(burst.len() * SMSS as usize));
    assert_eq!(rig.ep.stats().cwnd_restarts, 0);
}

#[test]
fn rfc6937_during_recovery_new_data_follows_what_is_delivered_in_proportion_ssthresh_to_the_flight() {
    let (mut rig, mut p, burst) = server_sending(SynOpts::FULL);
    let round2: Vec<Seg> = p.ack_each(&mut rig, &burst).into_iter().flat_map(|(_, o)| o).collect();
    assert_eq!(round2.len(), 20, "slow start: twenty segments in flight");
    // The first of them is lost; the peer SACKs the nineteen others one by one, each in a duplicate ACK.
    let una = round2[0].seq;
    let end = |s: &Seg| s.seq.wrapping_add(s.len());
    let mut per_ack = Vec::new();
    for s in &round2[1..] {
        let mut a = p.seg(&rig, ACK);
        a.ack = una;
        a.sack = vec![(round2[1].seq, end(s))];
        per_ack.push(rig.send(&a));
    }
    // The third starts the recovery: ssthresh = 10 segments, RecoverFS = 20. The lost segment goes again, and from
    // then on sends follow deliveries at ssthresh / RecoverFS: one new segment for every two delivered, so the
    // flight shrinks from 20 to 10 over the round trip instead of stopping (RFC 6937 §3), and never in a burst.
    assert!(per_ack[..2].iter().all(|o| o.is_empty()), "{per_ack:?}");
    assert_eq!(per_ack[2][0].seq, una, "the fast retransmit comes first");
    assert!(per_ack.iter().all(|o| o.len() <= 2), "{per_ack:?}");
    let new: Vec<&Seg> = per_ack.iter().flatten().filter(|s| s.seq != una).collect();
    let counts: Vec<usize> = per_ack[2..].iter().map(|o| o.iter().filter(|s| s.seq != una).count()).collect();
    // In the last three the flight (pipe) has come down to ssthresh, and PRR-SSRB keeps it there: a segment out
    // for each one delivered.
    assert_eq!(counts, [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1], "new segments per duplicate ACK");
    assert_eq!(new.len(), 9, "prr_out reaches ceil(19 × 10 / 20) = 10 segments with the retransmission");
    for (i, s) in new.iter().enumerate() {
        assert_eq!((s.seq, s.payload.len() as u32), (end(&round2[19]).wrapping_add(i as u32 * SMSS), SMSS));
    }
    // The retransmission arrives: the ACK covers everything sent before the loss, the recovery ends with
    // cwnd = ssthresh, and with nine segments in flight one more may go.
    let mut a = p.seg(&rig, ACK);
    a.ack = end(&round2[19]);
    let out = rig.send(&a);
    assert_eq!(out.len(), 1, "{out:?}");
    let s = rig.ep.stats();
    assert_eq!((s.sack_recoveries, s.retransmits), (1, 1));
}
