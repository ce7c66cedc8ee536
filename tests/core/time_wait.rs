//! TIME-WAIT: 2MSL expiry, RFC 1337 (RST ignored), the retransmitted FIN (re-acknowledged, 2MSL restarted), and
//! reuse of the tuple by a new SYN (RFC 6191: a higher sequence number, or a newer timestamp, reopens it through a
//! cookie; anything else gets an ACK). Scripted peers (fixtures) and pairs of our own endpoints in virtual time.

use crate::support;

use std::time::Duration;
use support::fixtures::{fixture, Flavour, Fx, Role, PEER_MSS, PEER_WSCALE};
use support::frames::{Seg, ACK, FIN, RST, SYN};
use support::net::{Dir, Net};
use support::recorder::{Recorder, Script};
use xdptcp::app::CloseReason;
use xdptcp::tcp::{ConnectError, State};

fn tw(role: Role, flavour: Flavour) -> Fx {
    fixture(role, State::TimeWait, flavour).expect("TIME-WAIT fixture")
}

/// A new SYN from the peer on the TIME-WAIT tuple with SYN options, `seq` and (with timestamps) `tsval`.
fn new_syn(fx: &Fx, seq: u32, tsval: Option<u32>) -> Seg {
    let mut s = fx.seg_ts(SYN, seq, 0, None);
    s.ts = tsval.map(|v| (v, 0));
    s.mss = Some(PEER_MSS);
    s.wscale = Some(PEER_WSCALE);
    s.sack_perm = true;
    s.window = 65535;
    s
}

/// Completes the handshake that `syn` started and `syn_ack` answered; returns what came back.
fn complete(fx: &mut Fx, syn: &Seg, syn_ack: &Seg) -> Vec<Seg> {
    let mut ack = fx.rig.seg(ACK, syn.seq.wrapping_add(1), syn_ack.seq.wrapping_add(1));
    if let (Some((v, _)), Some((ours, _))) = (syn.ts, syn_ack.ts) {
        ack.ts = Some((v.wrapping_add(1), ours));
    }
    fx.rig.send(&ack)
}

#[test]
fn rfc9293_3_3_2_time_wait_lasts_exactly_2msl_then_the_tuple_is_free() {
    for flavour in Flavour::ALL {
        let mut fx = tw(Role::Server, flavour);
        let entered = fx.rig.now;
        fx.rig.run_until(entered + Duration::from_secs(60) - Duration::from_nanos(1));
        assert!(fx.rig.in_time_wait(), "still held 1 ns before 2MSL");
        fx.rig.run_until(entered + Duration::from_secs(60));
        assert!(!fx.rig.in_time_wait(), "released at 2MSL");
        assert_eq!(fx.rig.ep.stats().time_wait_expired, 1);
        // A segment for the old tuple now meets the listener: a stray ACK gets <SEQ=SEG.ACK><CTL=RST>.
        let s = fx.rig.seg(ACK, fx.rcv_nxt, fx.snd_nxt);
        let out = fx.rig.send(&s);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].flags, out[0].seq), (RST, fx.snd_nxt));
    }
}

#[test]
fn rfc9293_3_3_2_time_wait_length_is_configurable() {
    use support::net::config;
    let ccfg = config(support::frames::CLIENT_MAC);
    let scfg = xdptcp::tcp::Config { time_wait: Duration::from_secs(5), ..config(support::frames::SERVER_MAC) };
    let server = Recorder::new(Script { close_on_open: true, ..Script::default() });
    let client = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::with_configs(ccfg, client, scfg, server);
    net.connect();
    net.drive();
    assert_eq!(net.server.time_wait_len(), 1, "{}", net.trace());
    net.drive_for(Duration::from_millis(4900));
    assert_eq!(net.server.time_wait_len(), 1);
    net.drive_for(Duration::from_millis(200));
    assert_eq!(net.server.time_wait_len(), 0);
}

#[test]
fn rfc1337_rst_in_time_wait_is_ignored_even_at_rcv_nxt() {
    for role in [Role::Server, Role::Client] {
        for flavour in Flavour::ALL {
            let mut fx = tw(role, flavour);
            for flags in [RST, RST | ACK] {
                let s = fx.seg_ts(flags, fx.rcv_nxt, fx.snd_nxt, None);
                assert!(fx.rig.send(&s).is_empty(), "an RST is never answered");
                assert!(fx.rig.in_time_wait(), "{role:?}: TIME-WAIT survives the RST (no assassination)");
            }
            assert_eq!(fx.rig.ep.stats().dropped[xdptcp::tcp::stats::Drop::RstInTimeWait as usize], 2);
        }
    }
}

#[test]
fn rfc9293_3_10_7_4_retransmitted_fin_is_reacknowledged_and_2msl_restarts() {
    for flavour in Flavour::ALL {
        let mut fx = tw(Role::Client, flavour);
        let entered = fx.rig.now;
        fx.rig.run_until(entered + Duration::from_secs(40));
        // Our last ACK was lost: the peer sends its FIN again.
        let fin = fx.seg(FIN | ACK, fx.rcv_nxt.wrapping_sub(1), fx.snd_nxt);
        let out = fx.rig.send(&fin);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].flags, out[0].seq, out[0].ack), (ACK, fx.snd_nxt, fx.rcv_nxt));
        if flavour.ts {
            assert_eq!(out[0].ts.map(|t| t.1), fin.ts.map(|t| t.0), "the ACK echoes the retransmission's TSval");
        }
        fx.rig.run_until(entered + Duration::from_secs(99));
        assert!(fx.rig.in_time_wait(), "2MSL restarted at the retransmitted FIN");
        fx.rig.run_until(entered + Duration::from_secs(100));
        assert!(!fx.rig.in_time_wait(), "and ends 2MSL after it");
    }
}

#[test]
fn rfc7323_2_2_time_wait_acks_shift_the_window_only_when_scaling_was_negotiated() {
    // A server without timestamps cannot carry window scale in its cookie, so that connection is unscaled;
    // every other fixture negotiates a shift. The TIME-WAIT entry's ACKs must say what the connection said.
    for role in [Role::Client, Role::Server] {
        for flavour in Flavour::ALL {
            let mut fx = tw(role, flavour);
            let fin = fx.seg(FIN | ACK, fx.rcv_nxt.wrapping_sub(1), fx.snd_nxt);
            let out = fx.rig.send(&fin);
            assert_eq!(out.len(), 1, "{role:?} {flavour:?}: {out:?}");
            assert_eq!(out[0].flags, ACK);
            assert_eq!(out[0].window, fx.wnd_field, "{role:?} {flavour:?}: the connection's own window field");
            let unscaled = role == Role::Server && !flavour.ts;
            assert_eq!(out[0].window == 65535, unscaled, "{role:?} {flavour:?}: {}", out[0].window);
        }
    }
}

#[test]
fn rfc6191_higher_sequence_syn_reopens_time_wait_through_a_cookie() {
    let mut fx = tw(Role::Server, Flavour::NO_TS_WRAP);
    let syn = new_syn(&fx, fx.rcv_nxt.wrapping_add(100_000), None);
    let out = fx.rig.send(&syn);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].ack), (SYN | ACK, syn.seq.wrapping_add(1)), "a cookie SYN-ACK");
    assert!(fx.rig.in_time_wait(), "the entry stays until the cookie proves the SYN genuine");
    let out = complete(&mut fx, &syn, &out[0].clone());
    assert!(out.is_empty(), "{out:?}");
    assert!(!fx.rig.in_time_wait(), "reopened");
    assert_eq!(fx.rig.ep.stats().time_wait_reopened, 1);
    let id = *fx.app().opened().last().unwrap();
    assert_eq!(fx.rig.ep.state(id), Some(State::Established));
}

#[test]
fn rfc6191_newer_timestamp_reopens_time_wait_even_with_a_lower_sequence_number() {
    let mut fx = tw(Role::Server, Flavour::TS);
    let syn = new_syn(&fx, fx.rcv_nxt.wrapping_sub(100_000), Some(fx.ts_recent.wrapping_add(1000)));
    let out = fx.rig.send(&syn);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].ack), (SYN | ACK, syn.seq.wrapping_add(1)), "{out:?}");
    let out = complete(&mut fx, &syn, &out[0].clone());
    assert!(out.is_empty(), "{out:?}");
    assert!(!fx.rig.in_time_wait(), "the cookie ACK of a SYN admitted by its timestamp reopens the tuple");
    assert_eq!(fx.rig.ep.stats().time_wait_reopened, 1);
    let id = *fx.app().opened().last().unwrap();
    assert_eq!(fx.rig.ep.state(id), Some(State::Established));
}

#[test]
fn rfc6191_2_an_equal_timestamp_with_a_higher_sequence_number_reopens_time_wait() {
    // Found by a review: a reconnection within one tick of the peer's timestamp clock was refused (challenge ACK,
    // and about a second lost to the SYN's retransmission); RFC 6191 §2 takes it on its sequence number.
    let mut fx = tw(Role::Server, Flavour::TS);
    let syn = new_syn(&fx, fx.rcv_nxt.wrapping_add(100_000), Some(fx.ts_recent));
    let out = fx.rig.send(&syn);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].ack), (SYN | ACK, syn.seq.wrapping_add(1)), "{out:?}");
    let out = complete(&mut fx, &syn, &out[0].clone());
    assert!(out.is_empty(), "{out:?}");
    assert!(!fx.rig.in_time_wait());
    assert_eq!(fx.rig.ep.stats().time_wait_reopened, 1);
    // The same timestamp with a lower sequence number is an old duplicate: a challenge ACK.
    let mut fx = tw(Role::Server, Flavour::TS);
    let syn = new_syn(&fx, fx.rcv_nxt.wrapping_sub(100_000), Some(fx.ts_recent));
    let out = fx.rig.send(&syn);
    assert_eq!((out.len(), out[0].flags), (1, ACK), "{out:?}");
    assert!(fx.rig.in_time_wait());
}

#[test]
fn rfc6191_older_syn_gets_an_ack_and_leaves_time_wait_alone() {
    // Lower sequence number without timestamps; older timestamp with them (whatever the sequence number).
    let cases = [(Flavour::NO_TS_WRAP, -1000i64, None), (Flavour::TS, 100_000, Some(-1i64))];
    for (flavour, dseq, dts) in cases {
        let mut fx = tw(Role::Server, flavour);
        let ts = dts.map(|d| fx.ts_recent.wrapping_add(d as u32));
        let syn = new_syn(&fx, fx.rcv_nxt.wrapping_add(dseq as u32), ts);
        let out = fx.rig.send(&syn);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].flags, out[0].seq, out[0].ack), (ACK, fx.snd_nxt, fx.rcv_nxt), "{flavour:?}");
        assert_eq!(fx.rig.ep.stats().challenge_acks, 1);
        assert!(fx.rig.in_time_wait());
    }
}

#[test]
fn rfc6191_time_wait_of_a_client_endpoint_is_never_reopened_by_a_syn() {
    // Nobody listens on a client's port: a SYN to its TIME-WAIT tuple only gets a challenge ACK.
    let mut fx = tw(Role::Client, Flavour::TS);
    let syn = new_syn(&fx, fx.rcv_nxt.wrapping_add(100_000), Some(fx.ts_recent.wrapping_add(1000)));
    let out = fx.rig.send(&syn);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, ACK);
    assert!(fx.rig.in_time_wait());
    // And connect() refuses the tuple while it is held.
    let mut sink = xdptcp::sink::VecSink::new();
    let e = fx.rig.ep.connect(
        fx.rig.now,
        fx.rig.ends.local,
        fx.rig.ends.peer,
        xdptcp::wire::MacAddr(fx.rig.ends.peer_mac),
        0,
        &mut sink,
    );
    assert_eq!(e, Err(ConnectError::InTimeWait));
}

/// `connect_fresh` skips the TIME-WAIT lookup on the caller's word; debug builds still check that word, so a
/// caller that breaks it (and would reopen a tuple its 2MSL still guards) is caught in tests.
#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "is in TIME-WAIT")]
fn rfc9293_time_wait_connect_fresh_on_a_held_tuple_is_a_caller_bug_caught_in_debug() {
    let mut fx = tw(Role::Client, Flavour::TS);
    assert!(fx.rig.in_time_wait());
    let mut sink = xdptcp::sink::VecSink::new();
    let _ = fx.rig.ep.connect_fresh(
        fx.rig.now,
        fx.rig.ends.local,
        fx.rig.ends.peer,
        xdptcp::wire::MacAddr(fx.rig.ends.peer_mac),
        0,
        &mut sink,
    );
}

#[test]
fn rfc6191_a_client_reconnecting_soon_reopens_the_servers_time_wait() {
    // The server closes first and holds TIME-WAIT; the client connects again from the same port one second later.
    // RFC 6528's clock has moved its ISN far past the old connection's, so the server reopens the tuple.
    for ts in [true, false] {
        let mut ccfg = support::net::config(support::frames::CLIENT_MAC);
        ccfg.timestamps = ts;
        let scfg = support::net::config(support::frames::SERVER_MAC);
        let server = Recorder::new(Script { on_open_send: b"bye".to_vec(), close_on_open: true, ..Script::default() });
        let client = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
        let mut net = Net::with_configs(ccfg, client, scfg, server);
        let first = net.connect();
        net.drive();
        assert_eq!(net.client.app().closed(first), Some(CloseReason::Normal));
        assert_eq!(net.server.time_wait_len(), 1);
        net.drive_for(Duration::from_secs(1));
        // Connection ids are reused once closed: forget the first connection's events.
        net.client.app_mut().events.clear();
        let second = net.connect();
        net.drive();
        assert_eq!(net.client.app().received(second), b"bye", "{}", net.trace());
        assert_eq!(net.client.app().closed(second), Some(CloseReason::Normal), "{}", net.trace());
        assert_eq!(net.server.stats().time_wait_reopened, 1, "ts={ts}\n{}", net.trace());
        assert_eq!(net.server.app().count_closed(CloseReason::Normal), 2);
        assert_eq!(net.server.time_wait_len(), 1, "the second connection holds TIME-WAIT in turn");
        let syns: Vec<_> = net.segs(Dir::ClientToServer).into_iter().filter(|s| s.flags == SYN).collect();
        assert_eq!(syns.len(), 2, "no SYN retransmission was needed:\n{}", net.trace());
    }
}
