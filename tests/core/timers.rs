//! Timers against a scripted peer, in virtual time: RFC 6298 retransmission (1 s initial RTO, SRTT/RTTVAR, exponential
//! backoff, Karn, the 3 s fallback after a retransmitted SYN), the retry limits (SYN: TimedOut; data: RST then
//! TimedOut), zero-window probing (RFC 9293 §3.8.6.1) and the FIN-WAIT-2 timeout.

use crate::support;

use std::time::Duration;
use support::fixtures::{fixture, Flavour, Role};
use support::frames::{Seg, ACK, FIN, RST, SYN};
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Recorder, Script};
use support::rig::Rig;
use xdptcp::app::CloseReason;
use xdptcp::tcp::{Config, ConnId, State};
use xdptcp::time::Instant;

/// The endpoints here time out as RFC 6298 says, with no RFC 8985 tail loss probe first: a lone segment would
/// otherwise go again at 2·SRTT + 200 ms when that comes before the RTO (scenarios.rs tests the probe).
fn timers_config(mac: [u8; 6]) -> Config {
    Config { tail_loss_probes: false, ..support::net::config(mac) }
}

fn timers_client() -> Rig {
    Rig::client_with(timers_config(support::frames::CLIENT_MAC), Recorder::default())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The instants (relative to `t0`) at which segments matching `pred` went out.
fn times(log: &[(Instant, Seg)], t0: Instant, pred: impl Fn(&Seg) -> bool) -> Vec<Duration> {
    log.iter().filter(|(_, s)| pred(s)).map(|(t, _)| *t - t0).collect()
}

#[test]
fn rfc6298_5_syn_is_retried_with_doubling_rto_then_the_connection_times_out() {
    let mut rig = timers_client();
    let t0 = rig.now;
    let (id, _syn) = rig.connect();
    // RFC 9293 §3.8.3: a SYN is retransmitted for at least 3 minutes (R2) before the open is given up.
    rig.advance(Duration::from_secs(180) - Duration::from_millis(1));
    assert_eq!(rig.ep.app().closed(id), None, "still trying at 3 minutes");
    rig.advance(Duration::from_secs(120));
    let syns = times(&rig.log, t0, |s| s.flags == SYN);
    // Default: 7 retries, initial RTO 1 s, doubling, capped at 60 s; given up at 183 s.
    let want: Vec<Duration> = [0u64, 1, 3, 7, 15, 31, 63, 123].iter().map(|s| Duration::from_secs(*s)).collect();
    assert_eq!(syns, want);
    assert_eq!(rig.ep.app().closed(id), Some(CloseReason::TimedOut));
    assert!(rig.log.iter().all(|(_, s)| s.flags & RST == 0), "nothing to reset: the peer never answered");
    let closed_at = rig.ep.app().events.len();
    assert!(closed_at > 0);
    assert_eq!(rig.ep.live_connections(), 0);
    assert_eq!(rig.ep.stats().conns_timed_out, 1);
}

#[test]
fn rfc6298_2_1_first_data_retransmission_after_the_1s_initial_rto_then_backoff_then_rst() {
    // A cookie-opened connection without timestamps has no RTT sample: RTO = 1 s. The peer then vanishes.
    let app = Recorder::new(Script { on_open_send: b"hello".to_vec(), ..Script::default() });
    let mut rig = Rig::server_with(timers_config(support::frames::SERVER_MAC), app);
    let p = PeerConn::open_to_server(&mut rig, SynOpts::NO_TS);
    let t0 = rig.now;
    assert_eq!(p.received, b"hello");
    rig.advance(Duration::from_secs(2000));
    let data = times(&rig.log, t0, |s| s.payload == b"hello");
    // Sent at 0, then at 1, 3, 7, 15, 31, 63 (RTO 1,2,4,...,32,60), then every 60 s (max RTO): 15 retries.
    let mut want = vec![Duration::ZERO];
    let mut t = 0.0;
    let mut rto = 1.0f64;
    for _ in 0..15 {
        t += rto;
        want.push(secs(t));
        rto = (rto * 2.0).min(60.0);
    }
    assert_eq!(data, want);
    let rst = times(&rig.log, t0, |s| s.flags == RST);
    assert_eq!(rst, vec![secs(t + 60.0)], "after the last retry an RST, one RTO later");
    let last = rig.log.last().unwrap().1.clone();
    assert_eq!(last.seq, p.ack, "RST <SEQ=SND.NXT> (the peer took the 5 bytes, so that is what it acknowledges)");
    let id = rig.ep.app().opened()[0];
    assert_eq!(rig.ep.app().closed(id), Some(CloseReason::TimedOut));
}

#[test]
fn rfc7323_4_cookie_handshake_with_timestamps_gives_the_first_rtt_sample() {
    // With timestamps, the ACK completing a cookie handshake echoes our SYN-ACK's TSval: the listener, which timed
    // nothing, takes its RTT sample from it. A 300 ms handshake gives RTO = 3 × 300 ms (+ at most 32 ms: the cookie
    // bits may set the SYN-ACK's TSval back that much).
    let app = Recorder::new(Script { on_open_send: b"hello".to_vec(), ..Script::default() });
    let mut rig = Rig::server_with(timers_config(support::frames::SERVER_MAC), app);
    let mut syn = rig.seg(SYN, 0x0bad_0000, 0);
    syn.ts = Some((1, 0));
    syn.wscale = Some(2);
    let sa = rig.send(&syn).remove(0);
    rig.now += Duration::from_millis(300);
    let mut ack = rig.seg(ACK, 0x0bad_0001, sa.seq.wrapping_add(1));
    ack.ts = Some((2, sa.ts.unwrap().0));
    let out = rig.send(&ack);
    assert_eq!(out[0].payload, b"hello");
    let t0 = rig.now;
    rig.advance(Duration::from_secs(2));
    let data = times(&rig.log, t0, |s| s.payload == b"hello");
    // 3 x the 300 ms sample, up to 3 x 331 ms (the cookie's TSval may stand up to 31 ms in the past, which the
    // echo then adds), and strictly below the 1 s initial RTO that no sample at all would leave.
    assert!(data[1] >= Duration::from_millis(900) && data[1] < Duration::from_millis(1000), "{data:?}");
}

/// A client-role connection whose handshake took `rtt`: SYN at t0, SYN-ACK at t0 + rtt.
fn client_with_rtt(rtt: Duration) -> (Rig, ConnId, PeerConn) {
    let mut rig = timers_client();
    let (id, syn) = rig.connect();
    rig.now += rtt;
    let p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::FULL);
    assert_eq!(rig.ep.state(id), Some(State::Established));
    (rig, id, p)
}

/// Sends `n` bytes from the app now; returns the instant of the first retransmission (the peer stays silent).
fn first_retransmission(rig: &mut Rig, id: ConnId, n: usize) -> Duration {
    let t = rig.now;
    let data = vec![7u8; n];
    let (taken, out) = rig.act(id, |c| c.send(&data));
    assert_eq!(taken, Some(n));
    assert_eq!(out.len(), 1);
    let seq = out[0].seq;
    let mut until = t;
    loop {
        until += Duration::from_millis(50);
        let more = rig.run_until(until);
        if let Some((at, _)) = more.iter().find(|(_, s)| s.seq == seq && !s.payload.is_empty()) {
            return *at - t;
        }
        assert!(until - t < Duration::from_secs(100), "no retransmission");
    }
}

#[test]
fn rfc6298_2_2_rto_is_srtt_plus_four_rttvar_from_the_handshake_sample() {
    // First sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR = 3 R.
    for (rtt_ms, rto_ms) in [(100u64, 300u64), (400, 1200), (1000, 3000)] {
        let (mut rig, id, _p) = client_with_rtt(Duration::from_millis(rtt_ms));
        let got = first_retransmission(&mut rig, id, 10);
        // The check runs every 50 ms; the timer must fire at the RTO, not before.
        assert!(got >= Duration::from_millis(rto_ms) && got < Duration::from_millis(rto_ms + 50), "{rtt_ms}: {got:?}");
    }
}

#[test]
fn design_rto_floor_is_the_configured_minimum_200_ms_as_in_linux_not_rfc6298_2_4s_one_second() {
    let (mut rig, id, _p) = client_with_rtt(Duration::from_micros(100));
    let got = first_retransmission(&mut rig, id, 10);
    assert!(got >= Duration::from_millis(200) && got < Duration::from_millis(250), "{got:?}");
}

#[test]
fn rfc6298_2_3_later_samples_are_smoothed_into_the_rto() {
    // Handshake RTT 100 ms (SRTT 100, RTTVAR 50); then a data segment acknowledged after 200 ms:
    // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5 ms, SRTT = 7/8·100 + 1/8·200 = 112.5 ms → RTO 362.5 ms.
    let (mut rig, id, mut p) = client_with_rtt(Duration::from_millis(100));
    let (_, out) = rig.act(id, |c| c.send(b"abc"));
    p.take(&out);
    rig.now += Duration::from_millis(200);
    assert!(p.ack_now(&mut rig).is_empty());
    let got = first_retransmission(&mut rig, id, 10);
    assert!(got >= Duration::from_micros(362_500) && got < Duration::from_micros(412_500), "{got:?}");
}

/// RTT 100 ms (RTO 300 ms); a segment retransmitted once at 300 ms and acknowledged 5 s after its first sending.
fn client_after_an_acknowledged_retransmission() -> (Rig, ConnId, PeerConn) {
    let (mut rig, id, mut p) = client_with_rtt(Duration::from_millis(100));
    let (_, out) = rig.act(id, |c| c.send(b"abc"));
    p.take(&out);
    rig.advance(Duration::from_millis(400));
    assert_eq!(rig.ep.stats().retransmits, 1);
    rig.now += Duration::from_millis(4600);
    p.ack_now(&mut rig);
    (rig, id, p)
}

#[test]
fn rfc6298_3_karn_no_sample_from_a_retransmitted_segment_and_the_backoff_is_kept() {
    // The late ACK must not teach the estimator a 5 s RTT (an RTO of 15 s), and it gives no sample, so the
    // doubled RTO stays for the next segment (Karn; RFC 6298 §5 after 5.7: only a new measurement collapses
    // it): 600 ms.
    let (mut rig, id, _p) = client_after_an_acknowledged_retransmission();
    let got = first_retransmission(&mut rig, id, 10);
    assert!(got >= Duration::from_millis(600) && got < Duration::from_millis(650), "{got:?}");
}

#[test]
fn rfc6298_5_a_new_measurement_collapses_the_backed_off_rto() {
    // As above, but the segment after the retransmitted one is acknowledged in 100 ms, before its (600 ms)
    // timer: that is a sample, and the RTO is computed afresh from SRTT 100 ms and RTTVAR 37.5 ms: 250 ms.
    let (mut rig, id, mut p) = client_after_an_acknowledged_retransmission();
    let (_, out) = rig.act(id, |c| c.send(b"def"));
    p.take(&out);
    rig.now += Duration::from_millis(100);
    assert!(p.ack_now(&mut rig).is_empty());
    assert_eq!(rig.ep.stats().retransmits, 1, "the timed segment was not retransmitted");
    let got = first_retransmission(&mut rig, id, 10);
    assert!(got >= Duration::from_millis(250) && got < Duration::from_millis(300), "{got:?}");
}

#[test]
fn rfc6298_5_7_rto_is_three_seconds_after_a_retransmitted_syn() {
    // The first SYN is lost: the SYN-ACK answers the retransmission, so no RTT sample can be taken (Karn), and
    // RFC 6298 §5.7 says the RTO MUST then be re-initialised to 3 s when data transmission begins.
    let mut rig = timers_client();
    let (id, _) = rig.connect();
    let out = rig.advance(Duration::from_millis(1100));
    let syn = out.iter().find(|(_, s)| s.flags == SYN).expect("SYN retransmitted").1.clone();
    rig.now += Duration::from_millis(50);
    let _p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::FULL);
    assert_eq!(rig.ep.state(id), Some(State::Established));
    let got = first_retransmission(&mut rig, id, 10);
    assert!(got >= Duration::from_secs(3) && got < Duration::from_millis(3050), "{got:?}");
}

/// A client whose app sends a request from `on_open`, as the load generator does: its data leaves in the same
/// call that takes the SYN-ACK, while the SYN's timer would still be armed.
fn client_sending_on_open() -> Rig {
    let script = Script { on_open_send: b"GET".to_vec(), ..Script::default() };
    Rig::client_with(timers_config(support::frames::CLIENT_MAC), Recorder::new(script))
}

/// When the data sent from `on_open` (at `t`) is first retransmitted, the peer staying silent.
fn first_data_retransmission(rig: &mut Rig, t: Instant) -> Duration {
    let out = rig.advance(Duration::from_secs(10));
    let (at, _) = out.iter().find(|(_, s)| !s.payload.is_empty()).expect("the request was retransmitted");
    *at - t
}

#[test]
fn rfc6298_5_3_the_syn_ack_restarts_the_timer_for_data_sent_on_open() {
    // RTT 600 ms: the SYN's 1 s timer would fire 400 ms after the request leaves, while the handshake's sample
    // gives an RTO of 1.8 s (3 R). The request is retransmitted after that RTO, not when the SYN's timer was due.
    let mut rig = client_sending_on_open();
    let (id, syn) = rig.connect();
    rig.now += Duration::from_millis(600);
    let t = rig.now;
    let _p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::FULL);
    assert_eq!(rig.ep.state(id), Some(State::Established));
    assert!(rig.log.iter().any(|(at, s)| *at == t && s.payload == b"GET"), "the request left on open: {:?}", rig.log);
    let got = first_data_retransmission(&mut rig, t);
    assert!(got >= secs(1.8) && got < secs(1.85), "{got:?}");
}

#[test]
fn rfc6298_5_7_data_sent_on_open_after_a_lost_syn_waits_the_full_three_seconds() {
    // The first SYN is lost and retried at 1 s (its next deadline 3 s); the SYN-ACK comes at 1.05 s. The request
    // sent then must wait the 3 s of §5.7, not the 1.95 s left on the SYN's backed-off timer.
    let mut rig = client_sending_on_open();
    let (id, _) = rig.connect();
    let out = rig.advance(Duration::from_millis(1000));
    let syn = out.iter().find(|(_, s)| s.flags == SYN).expect("SYN retransmitted").1.clone();
    rig.now += Duration::from_millis(50);
    let t = rig.now;
    let _p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::FULL);
    assert_eq!(rig.ep.state(id), Some(State::Established));
    let got = first_data_retransmission(&mut rig, t);
    assert!(got >= secs(3.0) && got < secs(3.05), "{got:?}");
}

#[test]
fn rfc9293_3_8_6_1_zero_window_is_probed_and_the_connection_lives_while_the_peer_answers() {
    // The peer closes its window and keeps answering probes with a zero window for 30 minutes (far more than the
    // retry budget), then opens it: every byte must arrive (RFC 9293 MUST-66: as long as the receiver answers the
    // probes, the sender must keep the connection open).
    for flavour in Flavour::ALL {
        let mut fx = fixture(Role::Server, State::Established, flavour).unwrap();
        let id = fx.id.unwrap();
        // Acknowledge the 100 bytes in flight with a zero window.
        let mut s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt);
        s.window = 0;
        assert!(fx.exchange(&s).is_empty());
        fx.snd_una = fx.snd_nxt;
        let (taken, out) = fx.rig.act(id, |c| c.send(b"waiting for the window"));
        assert_eq!(taken, Some(22));
        assert!(out.is_empty(), "nothing may enter a zero window: {out:?}");
        let t0 = fx.rig.now;
        let mut probes = Vec::new();
        while fx.rig.now - t0 < Duration::from_secs(1800) {
            let next = fx.rig.ep.poll_timeout().expect("the persist timer is armed");
            let out = fx.rig.run_until(next);
            for (at, seg) in out {
                assert_eq!(seg.flags & RST, 0, "{flavour:?}: gave up after {} answered probes: {seg:?}", probes.len());
                assert!(seg.payload.len() <= 1, "a probe carries at most one byte: {seg:?}");
                assert_eq!(seg.seq, fx.snd_una, "{seg:?}");
                probes.push(at);
                // The peer does not take the byte and answers with the same zero window.
                let mut a = fx.seg(ACK, fx.rcv_nxt, fx.snd_una);
                a.window = 0;
                fx.exchange(&a);
            }
            assert_eq!(fx.rig.ep.state(id), Some(State::Established), "{flavour:?} after {} probes", probes.len());
        }
        assert!(probes.len() > 16, "probing went on: {} probes", probes.len());
        // Intervals grow (exponential backoff) up to the maximum RTO.
        let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert!(*gaps.last().unwrap() <= Duration::from_secs(60), "{gaps:?}");
        // The window opens: the data goes out.
        let mut a = fx.seg(ACK, fx.rcv_nxt, fx.snd_una);
        a.window = 8192;
        let out = fx.exchange(&a);
        let sent: Vec<u8> = out.iter().flat_map(|s| s.payload.clone()).collect();
        assert!(sent.ends_with(b"for the window") && !sent.is_empty(), "{out:?}");
    }
}

#[test]
fn rfc9293_3_8_6_1_probe_retries_are_bounded_when_the_peer_vanishes() {
    // Zero window, then silence: probes back off and the connection is finally reset and times out.
    let mut fx = fixture(Role::Client, State::Established, Flavour::TS).unwrap();
    let id = fx.id.unwrap();
    let mut s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt);
    s.window = 0;
    fx.exchange(&s);
    fx.rig.act(id, |c| c.send(b"x"));
    fx.rig.advance(Duration::from_secs(3600));
    assert_eq!(fx.app().closed(id), Some(CloseReason::TimedOut));
    assert_eq!(fx.rig.log.last().map(|l| l.1.flags), Some(RST));
}

#[test]
fn linux_fin_timeout_fin_wait_2_times_out_when_the_peer_never_closes() {
    for role in [Role::Server, Role::Client] {
        let mut fx = fixture(role, State::FinWait2, Flavour::TS).unwrap();
        let id = fx.id.unwrap();
        let t0 = fx.rig.now;
        fx.rig.run_until(t0 + Duration::from_secs(59));
        assert_eq!(fx.rig.ep.state(id), Some(State::FinWait2));
        // Data from the peer proves it alive and restarts the timeout.
        let s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt).clone();
        let mut d = s;
        d.payload = b"late".to_vec();
        let out = fx.exchange(&d);
        assert_eq!(out.len(), 1);
        fx.rig.run_until(t0 + Duration::from_secs(118));
        assert_eq!(fx.rig.ep.state(id), Some(State::FinWait2));
        fx.rig.run_until(t0 + Duration::from_secs(120));
        assert_eq!(fx.app().closed(id), Some(CloseReason::TimedOut), "{role:?}");
        assert!(!fx.rig.in_time_wait());
    }
}

#[test]
fn rfc6298_5_fin_is_retransmitted_and_last_ack_gives_up_with_rst() {
    let mut fx = fixture(Role::Server, State::LastAck, Flavour::NO_TS_WRAP).unwrap();
    let id = fx.id.unwrap();
    let t0 = fx.rig.now;
    fx.rig.advance(Duration::from_secs(2000));
    // The fixture's FIN went out at t0 (it is in the log); then 15 retransmissions (the data RTT was ~0, so the
    // RTO starts at the 200 ms minimum), doubling up to 60 s.
    let fins = times(&fx.rig.log, t0, |s| s.flags & FIN != 0);
    assert_eq!(fins.len(), 16, "the FIN and 15 retransmissions: {fins:?}");
    let gaps: Vec<Duration> = fins.windows(2).map(|w| w[1] - w[0]).collect();
    let mut want = Vec::new();
    let mut rto = 0.2f64;
    for _ in 0..15 {
        want.push(secs(rto));
        rto = (rto * 2.0).min(60.0);
    }
    assert_eq!(gaps, want);
    assert_eq!(fx.app().closed(id), Some(CloseReason::TimedOut));
    let rst = fx.rig.log.last().unwrap().1.clone();
    assert_eq!((rst.flags, rst.seq), (RST, fx.snd_nxt));
}

#[test]
fn rfc6298_5_syn_received_retransmits_its_syn_ack_then_gives_up_with_rst() {
    let mut fx = fixture(Role::Client, State::SynReceived, Flavour::TS).unwrap();
    let id = fx.id.unwrap();
    let t0 = fx.rig.now;
    fx.rig.advance(Duration::from_secs(300));
    let syn_acks = times(&fx.rig.log, t0, |s| s.flags == SYN | ACK);
    // The fixture's SYN-ACK at t0 (relative 0), then retries as for a SYN (for at least 3 minutes).
    let want: Vec<Duration> = [0u64, 1, 3, 7, 15, 31, 63, 123].iter().map(|s| Duration::from_secs(*s)).collect();
    assert_eq!(syn_acks, want);
    let rst = fx.rig.log.last().unwrap().1.clone();
    assert_eq!((rst.flags, rst.seq), (RST, fx.snd_nxt), "RST <SEQ=SND.NXT> when SYN-RECEIVED gives up");
    assert_eq!(fx.app().closed(id), Some(CloseReason::TimedOut));
}
