//! RFC 8985 §7 tail loss probes, in virtual time. A loss at the end of a flight brings no duplicate ACKs to
//! start a fast retransmit; a probe about two round trips after the last ACK (one segment: new data, or the last
//! one again) draws the ACK that shows it, instead of waiting for the RTO and its collapse of cwnd. The ACKs
//! after a probe that resent the last segment tell whether it repaired a loss (cwnd is halved, as a fast
//! recovery would have done) or was not needed (nothing changes). Every frame is built or re-parsed by
//! etherparse.

use crate::support;

use std::time::Duration;
use support::frames::{Seg, ACK, CLIENT_MAC, SERVER_MAC};
use support::net::{config, Dir, Fate, Net};
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Recorder, Script};
use support::rig::Rig;
use xdptcp::app::CloseReason;
use xdptcp::tcp::Config;
use xdptcp::time::Instant;

/// SMSS with timestamps (MSS 1460 less 12 bytes of option).
const SMSS: u32 = 1448;

fn end(s: &Seg) -> u32 {
    s.seq.wrapping_add(s.len())
}

/// A client that uploads `segments` full segments (its FIN on the last) at 10 ms each way, losing the data
/// segments numbered in `lost` (from 1) on their first sending; driven to the end.
fn upload_losing(segments: u32, lost: std::ops::RangeInclusive<usize>, probes: bool) -> Net<Recorder, Recorder> {
    let data: Vec<u8> = (0..segments * SMSS).map(|i| (i % 251) as u8).collect();
    let client = Recorder::new(Script { on_open_send: data, close_on_open: true, ..Script::default() });
    let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let ccfg = Config { tail_loss_probes: probes, ..config(CLIENT_MAC) };
    let mut net = Net::with_configs(ccfg, client, config(SERVER_MAC), server);
    net.latency = Duration::from_millis(10);
    let mut data_segments = 0;
    net.set_filter(move |dir, _, s| {
        if dir == Dir::ClientToServer && !s.payload.is_empty() {
            data_segments += 1;
            if lost.contains(&data_segments) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    net
}

/// The client's data segments, first sendings and retransmissions, with when they left.
fn client_data(net: &Net<Recorder, Recorder>) -> Vec<(Instant, Seg)> {
    net.log
        .iter()
        .filter(|(_, d, s)| *d == Dir::ClientToServer && !s.payload.is_empty())
        .map(|(t, _, s)| (*t, s.clone()))
        .collect()
}

#[test]
fn rfc8985_7_3_a_lost_tail_is_probed_two_round_trips_after_the_last_ack_not_left_to_the_rto() {
    let mut runs = Vec::new();
    for probes in [true, false] {
        // Five segments, the last two lost.
        let net = upload_losing(5, 4..=5, probes);
        let data = client_data(&net);
        assert_eq!(data.len(), 7, "five sent, the lost two again: {}", net.trace());
        let repaired = data[6].0.saturating_since(data[0].0);
        runs.push((data[5].1.seq, data[4].1.seq, repaired, net.client.stats().tail_loss_probes));
    }
    let (probe_seq, last_seq, with, probes) = runs[0];
    // The third segment's ACK is back at 20 ms with two segments and the FIN in flight: PTO = 2·SRTT + 2 ms.
    // The probe resends the last segment; the peer SACKs it, and that one duplicate ACK with two segments in
    // flight is enough for an early retransmit (RFC 5827) of the fourth.
    assert_eq!((probe_seq, probes), (last_seq, 1), "the probe is the last segment, sent again");
    // (82 ms: the ACK of the third at 20, the probe at 62, its SACK back at 82, the fourth at once.)
    assert!(with <= Duration::from_millis(100), "both holes repaired {with:?} after the first send");
    let (_, _, without, probes) = runs[1];
    assert_eq!(probes, 0);
    assert!(without >= Duration::from_millis(200), "without probes the RTO repairs it: {without:?}");
}

/// A server that sends `segments` full segments on open, over a connection with `opts` and a wide window
/// (probes as `probes`), and a peer that then acknowledges the first `acked` of them. Returns the rig, the peer
/// and the segments.
fn server_sending(segments: u32, acked: usize, opts: SynOpts, probes: bool) -> (Rig, PeerConn, Vec<Seg>) {
    let app = Recorder::new(Script { on_open_send: vec![7; (segments * SMSS) as usize], ..Script::default() });
    let mut rig = Rig::server_with(Config { tail_loss_probes: probes, ..config(SERVER_MAC) }, app);
    let mut p = PeerConn::open_to_server_with(&mut rig, opts, 65535);
    let burst = p.log[1..].to_vec();
    assert_eq!(burst.len(), segments as usize, "{burst:?}");
    let a = ack_of(&mut p, &rig, end(&burst[acked - 1]), &[]);
    assert!(rig.send(&a).is_empty());
    (rig, p, burst)
}

/// The peer's ACK of everything before `ack`, with SACK blocks `sack`.
fn ack_of(p: &mut PeerConn, rig: &Rig, ack: u32, sack: &[(u32, u32)]) -> Seg {
    let mut a = p.seg(rig, ACK);
    a.ack = ack;
    a.sack = sack.to_vec();
    a
}

/// A server that sends three segments on open, to a peer that acknowledges the first two only (the third is
/// lost, or its ACK late).
fn server_missing_the_last_of_three() -> (Rig, PeerConn, Vec<Seg>) {
    server_sending(3, 2, SynOpts::FULL, true)
}

/// The server's lone segment in flight is probed when its RTO would have fired (PTO = 2·SRTT + the 200 ms a
/// receiver may delay its ACK, capped by the RTO): the same segment goes, but as a probe, which keeps cwnd.
/// Returns what the probe sent.
fn probe_of_the_lone_segment(rig: &mut Rig, burst: &[Seg]) -> Seg {
    let t0 = rig.now;
    let out = rig.advance(Duration::from_millis(250));
    assert_eq!(out.len(), 1, "{out:?}");
    let (at, probe) = out[0].clone();
    assert_eq!((probe.seq, probe.payload.len() as u32), (burst[2].seq, SMSS));
    assert_eq!(at - t0, Duration::from_millis(200), "PTO capped by the RTO (200 ms, the floor)");
    let s = rig.ep.stats();
    assert_eq!((s.tail_loss_probes, s.retransmits, s.tail_loss_repairs), (1, 1, 0));
    probe
}

/// After the probe's episode, the app sends twenty segments and the peer acknowledges all it was sent then;
/// returns how many segments that first ACK let out (what cwnd has room for).
fn released_after(rig: &mut Rig, p: &mut PeerConn) -> usize {
    let id = rig.ep.app().opened()[0];
    let (taken, first) = rig.act(id, |c| c.send(&[9; 20 * SMSS as usize]));
    assert_eq!(taken, Some(20 * SMSS as usize));
    assert!(!first.is_empty());
    let a = ack_of(p, rig, end(&first[0]), &[]);
    rig.send(&a).len()
}

#[test]
fn rfc8985_7_4_2_a_probe_that_repaired_a_loss_halves_cwnd_once_data_beyond_it_is_acknowledged() {
    let (mut rig, mut p, burst) = server_missing_the_last_of_three();
    probe_of_the_lone_segment(&mut rig, &burst);
    // The probe's copy arrives (the first never did): the ACK reaches its end exactly, which cannot tell a
    // repair from a late ACK; no duplicate follows.
    let a = ack_of(&mut p, &rig, end(&burst[2]), &[]);
    assert!(rig.send(&a).is_empty());
    // cwnd was 12 segments (10, one more per ACK of new data); the ACK of data sent after the probe ends the
    // episode as a repair: ssthresh = cwnd = 6, and with eleven in flight this ACK releases nothing.
    assert_eq!(released_after(&mut rig, &mut p), 0);
    assert_eq!(rig.ep.stats().tail_loss_repairs, 1);
}

#[test]
fn rfc8985_7_4_1_a_probe_whose_duplicate_the_peer_reports_costs_no_window() {
    // The peer had the third segment: its ACK was late. Told so by a duplicate ACK at the probe's end, plain
    // (a peer without D-SACK) or with a D-SACK block for the probe's copy, the sender keeps cwnd: the ACK of
    // data sent afterwards releases two segments, by slow start (12 + 1 segments, eleven in flight).
    for dsack in [false, true] {
        let (mut rig, mut p, burst) = server_missing_the_last_of_three();
        probe_of_the_lone_segment(&mut rig, &burst);
        let a = ack_of(&mut p, &rig, end(&burst[2]), &[]);
        assert!(rig.send(&a).is_empty());
        let block: &[(u32, u32)] = if dsack { &[(burst[2].seq, end(&burst[2]))] } else { &[] };
        let dup = ack_of(&mut p, &rig, end(&burst[2]), block);
        assert!(rig.send(&dup).is_empty());
        assert_eq!(released_after(&mut rig, &mut p), 2, "dsack {dsack}");
        assert_eq!(rig.ep.stats().tail_loss_repairs, 0, "dsack {dsack}");
    }
}

#[test]
fn rfc8985_7_2_no_probe_without_sack_nor_when_turned_off() {
    // Without SACK the probe's ACK could not say what arrived: the RTO alone, with its collapse of cwnd.
    for (opts, probes) in [(SynOpts { sack: false, ..SynOpts::FULL }, true), (SynOpts::FULL, false)] {
        let (mut rig, _p, burst) = server_sending(3, 2, opts, probes);
        let out = rig.advance(Duration::from_millis(250));
        assert_eq!(out.len(), 1, "{opts:?}: {out:?}");
        assert_eq!(out[0].1.seq, burst[2].seq);
        assert_eq!(rig.ep.stats().tail_loss_probes, 0, "{opts:?}: a timeout, not a probe");
    }
}

#[test]
fn rfc8985_7_2_no_probe_once_the_peer_has_sacked_past_a_hole_and_the_rto_keeps_its_time() {
    // Five segments; the peer acknowledges the first and SACKs the last two in two duplicate ACKs (the second
    // and third were lost). A probe would resend the fifth, which arrived; with four in flight and two
    // duplicates neither a fast nor an early retransmit starts, so the RTO repairs it, due 200 ms after the
    // last ACK of new data, as before probes existed (the PTO armed at that ACK lapsed with the duplicates).
    let (mut rig, mut p, burst) = server_sending(5, 1, SynOpts::FULL, true);
    let t_ack = rig.now;
    for last in [3, 4] {
        rig.now += Duration::from_millis(1);
        let d = ack_of(&mut p, &rig, end(&burst[0]), &[(burst[3].seq, end(&burst[last]))]);
        assert!(rig.send(&d).is_empty(), "duplicate {last}");
    }
    let out = rig.advance(Duration::from_millis(300));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1.seq, burst[1].seq, "the timer resends from SND.UNA");
    assert_eq!(out[0].0 - t_ack, Duration::from_millis(200));
    assert_eq!(rig.ep.stats().tail_loss_probes, 0);
}

#[test]
fn rfc8985_7_2_a_probe_scheduled_before_a_fast_retransmit_does_not_fire_as_a_timeout_during_the_recovery() {
    // Ten segments out; the peer acknowledges the first, then three duplicate ACKs SACK the third to the fifth:
    // a fast retransmit of the second begins a recovery. The probe timeout armed at the first ACK (4 ms here)
    // is still the timer's deadline: when it comes it must find the recovery and wait out the RTO, not act as
    // a timeout (which would resend the second segment again and collapse cwnd to one segment).
    let (mut rig, mut p, burst) = server_sending(10, 1, SynOpts::FULL, true);
    let mut resent = Vec::new();
    for last in [2, 3, 4] {
        let d = ack_of(&mut p, &rig, end(&burst[0]), &[(burst[2].seq, end(&burst[last]))]);
        resent.extend(rig.send(&d));
    }
    assert_eq!(resent.first().map(|s| s.seq), Some(burst[1].seq), "the fast retransmit: {resent:?}");
    assert_eq!(rig.ep.stats().retransmits, 1);
    let later = rig.advance(Duration::from_millis(100));
    assert!(later.is_empty(), "nothing until the RTO: {later:?}");
    assert_eq!((rig.ep.stats().retransmits, rig.ep.stats().tail_loss_probes), (1, 0));
}

#[test]
fn rfc8985_7_3_a_probe_that_finds_no_free_buffer_gives_way_to_the_rto() {
    // Three segments out, the first acknowledged: two in flight, so the probe is due 2·SRTT + 2 ms later. When it
    // comes no transmit buffer is free, and nothing goes; the timer is then the RTO's (which resends from SND.UNA
    // and, repeated, gives up on the peer), not another probe timeout, and another, for as long as buffers
    // lack.
    let (mut rig, _p, burst) = server_sending(3, 1, SynOpts::FULL, true);
    let t_ack = rig.now;
    let pto = rig.ep.poll_timeout().expect("the probe timeout");
    // (SRTT from the handshake's timestamp echo, which the cookie's bits may overstate by up to 32 ms.)
    assert!(pto - t_ack < Duration::from_millis(50), "{:?}", pto - t_ack);
    rig.now = pto;
    let mut full = xdptcp::sink::BatchSink::with_capacity(0);
    rig.ep.handle_timeout(pto, &mut full);
    assert!(full.is_empty());
    let out = rig.advance(Duration::from_millis(300));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1.seq, burst[1].seq, "the RTO's retransmission, from SND.UNA: {out:?}");
    assert!(out[0].0 - pto >= Duration::from_millis(200), "{:?}", out[0].0 - pto);
    assert_eq!(rig.ep.stats().tail_loss_probes, 0);
}

#[test]
fn rfc8985_7_4_the_probes_sack_past_a_hole_starts_the_recovery_a_tail_of_three_cannot_start_by_duplicates() {
    // A six-segment upload (its FIN on the last) loses its last three on their first sending. The probe resends
    // the sixth, which the peer SACKs: one duplicate ACK, three segments missing below it, so neither three
    // duplicates nor an early retransmit can come. Sent a probe timeout after them, the missing ones are lost
    // (RACK's reading): the recovery starts on that ACK and resends them within a round trip, where the timer
    // took over 200 ms.
    let mut runs = Vec::new();
    for probes in [true, false] {
        let net = upload_losing(6, 4..=6, probes);
        let data = client_data(&net);
        let repaired = data.last().unwrap().0.saturating_since(data[0].0);
        runs.push((data.len(), repaired, net.client.stats().retransmits));
    }
    let (segments, with, retransmits) = runs[0];
    // Six sent, the probe (the sixth again), then the fourth and fifth: each lost segment once, no more.
    assert_eq!((segments, retransmits), (9, 3), "{runs:?}");
    assert!(with <= Duration::from_millis(120), "{with:?}");
    assert!(runs[1].1 >= Duration::from_millis(200), "{runs:?}");
}
