//! Hand-written RFC clause tests on the per-state fixtures, each with its expectation spelled out here (not taken
//! from the model the matrix uses, so the two check each other), plus option negotiation outcomes and VLAN replies.

use crate::support;

use std::time::Duration;
use support::fixtures::{fixture, Flavour, Fx, Role, IN_FLIGHT};
use support::frames::{Seg, ACK, FIN, PSH, RST, SYN};
use support::peer::{PeerConn, SynOpts};
use support::recorder::{Event, Recorder, Script};
use support::rig::Rig;
use xdptcp::app::CloseReason;
use xdptcp::tcp::cookie::{encode_ts_bits, mint, slot_at};
use xdptcp::tcp::flow::{FlowKey, V4Flow};
use xdptcp::tcp::State;
use xdptcp::wire::ParseError;

const SYNCHRONIZED: [State; 6] =
    [State::Established, State::FinWait1, State::FinWait2, State::CloseWait, State::Closing, State::LastAck];

fn each_fixture(states: &[State], mut f: impl FnMut(Fx)) {
    for &state in states {
        for role in [Role::Server, Role::Client] {
            for flavour in Flavour::ALL {
                if let Some(fx) = fixture(role, state, flavour) {
                    f(fx);
                }
            }
        }
    }
}

/// What one segment did.
#[derive(Debug, PartialEq, Eq)]
enum Did {
    Nothing,
    Ack { seq: u32, ack: u32 },
    Challenge { seq: u32, ack: u32 },
    Rst { seq: u32 },
    Closed(CloseReason),
}

fn send(fx: &mut Fx, s: &Seg) -> Did {
    let before = fx.rig.ep.stats().challenge_acks;
    let out = fx.rig.send(s);
    let challenged = fx.rig.ep.stats().challenge_acks - before;
    let closed = fx.new_events().iter().find_map(|e| match e {
        Event::Closed(_, r) => Some(*r),
        _ => None,
    });
    match (out.as_slice(), closed) {
        ([], Some(r)) => Did::Closed(r),
        ([], None) => Did::Nothing,
        ([r], _) if r.flags == ACK && challenged == 1 => Did::Challenge { seq: r.seq, ack: r.ack },
        ([r], _) if r.flags == ACK => Did::Ack { seq: r.seq, ack: r.ack },
        ([r], _) if r.flags == RST => Did::Rst { seq: r.seq },
        (other, _) => panic!("unexpected replies {other:?}"),
    }
}

#[test]
fn rfc5961_3_2_rst_resets_only_at_rcv_nxt_challenges_in_window_and_is_dropped_outside() {
    each_fixture(&SYNCHRONIZED, |fx| {
        let (n, w) = (fx.rcv_nxt, fx.rcv_wnd);
        let challenge = Did::Challenge { seq: fx.snd_nxt, ack: fx.rcv_nxt };
        let table = [
            (n.wrapping_sub(1), Did::Nothing),
            (n, Did::Closed(CloseReason::Reset)),
            (n.wrapping_add(1), challenge),
            (n.wrapping_add(w - 1), Did::Challenge { seq: fx.snd_nxt, ack: fx.rcv_nxt }),
            (n.wrapping_add(w), Did::Nothing),
        ];
        for (seq, want) in table {
            let mut fx = fixture(fx.role, fx.state, fx.flavour).unwrap();
            let s = fx.seg_ts(RST, seq, 0, None);
            assert_eq!(send(&mut fx, &s), want, "{:?} {:?} RST at {seq} (RCV.NXT {n})", fx.role, fx.state);
        }
    });
}

/// Sends `s` (a SYN) and checks RFC 5961 §4.2's answer: a challenge ACK, and nothing else changes.
fn syn_gets_a_challenge_ack(fx: &mut Fx, mut s: Seg) {
    s.mss = Some(1460);
    let want = Did::Challenge { seq: fx.snd_nxt, ack: fx.rcv_nxt };
    assert_eq!(send(fx, &s), want, "{:?} {:?} {s:?}", fx.role, fx.state);
    assert_eq!(fx.observed_state(), fx.state);
    assert!(fx.new_events().is_empty());
}

#[test]
fn rfc5961_4_2_syn_in_a_synchronized_state_gets_a_challenge_ack_and_changes_nothing() {
    each_fixture(&SYNCHRONIZED, |mut fx| {
        let s = fx.seg(SYN, fx.rcv_nxt, 0);
        syn_gets_a_challenge_ack(&mut fx, s);
    });
}

#[test]
fn rfc5961_4_2_a_syn_without_timestamps_on_a_connection_that_has_them_still_gets_a_challenge_ack() {
    // Found by a review: RFC 7323 §3.2's drop of segments without timestamps took these SYNs too, so a peer that
    // restarted without timestamps never learnt that the old connection was open here.
    each_fixture(&SYNCHRONIZED, |mut fx| {
        if fx.flavour.ts {
            let s = fx.seg_ts(SYN, fx.rcv_nxt.wrapping_add(12_345), 0, None);
            syn_gets_a_challenge_ack(&mut fx, s);
        }
    });
}

#[test]
fn rfc7323_2_2_a_simultaneous_open_syn_ack_carries_window_scale_only_if_the_peers_syn_did() {
    // Found by a review: our SYN-ACK in a simultaneous open always carried it.
    for peer_wscale in [None, Some(7)] {
        let mut rig = Rig::client();
        let (_, syn) = rig.connect();
        let mut s = rig.seg(SYN, 0x1000_0000, 0);
        (s.mss, s.wscale) = (Some(1460), peer_wscale);
        let out = rig.send(&s);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].flags, out[0].seq), (SYN | ACK, syn.seq), "{out:?}");
        assert_eq!(out[0].wscale.is_some(), peer_wscale.is_some(), "peer's SYN with {peer_wscale:?}: {out:?}");
    }
}

#[test]
fn rfc5961_5_2_ack_must_lie_in_snd_una_minus_max_snd_wnd_to_snd_nxt() {
    // ESTABLISHED with 100 bytes in flight: SND.NXT = SND.UNA + 100.
    each_fixture(&[State::Established], |fx| {
        let (una, nxt, max) = (fx.snd_una, fx.snd_nxt, fx.max_snd_wnd);
        assert_eq!(nxt.wrapping_sub(una), IN_FLIGHT as u32);
        let challenge = || Did::Challenge { seq: nxt, ack: fx.rcv_nxt };
        let table = [
            (una.wrapping_sub(max).wrapping_sub(1), challenge()),
            (una.wrapping_sub(max), Did::Nothing),
            (una.wrapping_sub(1), Did::Nothing),
            (una, Did::Nothing),
            (una.wrapping_add(50), Did::Nothing),
            (nxt, Did::Nothing),
            (nxt.wrapping_add(1), challenge()),
            (nxt.wrapping_add(1 << 30), challenge()),
        ];
        for (ack, want) in table {
            let mut fx = fixture(fx.role, fx.state, fx.flavour).unwrap();
            let s = fx.seg(ACK, fx.rcv_nxt, ack);
            assert_eq!(send(&mut fx, &s), want, "{:?} ACK {ack} (SND.UNA {una}, SND.NXT {nxt}, MAX {max})", fx.role);
        }
    });
    // An acceptable ACK of everything stops the retransmissions; an unacceptable one does not count as one.
    let mut fx = fixture(Role::Server, State::Established, Flavour::TS).unwrap();
    let s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt);
    send(&mut fx, &s);
    assert!(fx.rig.advance(Duration::from_secs(30)).is_empty(), "nothing left to retransmit");
    let mut fx = fixture(Role::Server, State::Established, Flavour::TS).unwrap();
    let s = fx.seg(ACK, fx.rcv_nxt, fx.snd_nxt.wrapping_add(1));
    send(&mut fx, &s);
    let out = fx.rig.advance(Duration::from_secs(2));
    assert!(out.iter().any(|(_, s)| s.payload.len() == IN_FLIGHT), "the data is still retransmitted");
}

#[test]
fn rfc5961_5_2_data_with_an_unacceptable_ack_is_not_delivered() {
    each_fixture(&[State::Established], |mut fx| {
        let mut s = fx.seg(ACK | PSH, fx.rcv_nxt, fx.snd_nxt.wrapping_add(1));
        s.payload = b"injected".to_vec();
        assert_eq!(send(&mut fx, &s), Did::Challenge { seq: fx.snd_nxt, ack: fx.rcv_nxt });
        assert!(fx.new_events().is_empty(), "no byte reached the app");
    });
}

#[test]
fn rfc7323_3_2_a_segment_without_timestamps_is_dropped_once_they_are_on_but_an_rst_is_not() {
    for role in [Role::Server, Role::Client] {
        let mut fx = fixture(role, State::Established, Flavour::TS).unwrap();
        let mut s = fx.seg_ts(ACK | PSH, fx.rcv_nxt, fx.snd_nxt, None);
        s.payload = b"no timestamps".to_vec();
        assert_eq!(send(&mut fx, &s), Did::Nothing);
        assert!(fx.new_events().is_empty());
        let s = fx.seg_ts(RST, fx.rcv_nxt, 0, None);
        assert_eq!(send(&mut fx, &s), Did::Closed(CloseReason::Reset));
    }
}

#[test]
fn rfc7323_5_3_paws_drops_an_old_timestamp_and_acknowledges() {
    for role in [Role::Server, Role::Client] {
        // One tick older, and 2^31 + 1 "ahead" (which is older modulo 2^32).
        for tsval in [|r: u32| r.wrapping_sub(1), |r: u32| r.wrapping_add(0x8000_0001)] {
            let mut fx = fixture(role, State::Established, Flavour::TS).unwrap();
            let mut s = fx.seg_ts(ACK | PSH, fx.rcv_nxt, fx.snd_nxt, Some(tsval(fx.ts_recent)));
            s.payload = b"old duplicate".to_vec();
            let out = fx.rig.send(&s);
            assert_eq!(out.len(), 1);
            assert_eq!((out[0].flags, out[0].seq, out[0].ack), (ACK, fx.snd_nxt, fx.rcv_nxt));
            assert_eq!(out[0].ts.map(|t| t.1), Some(fx.ts_recent), "TS.Recent is not moved by the old segment");
            assert!(fx.new_events().is_empty());
            assert_eq!(fx.rig.ep.stats().dropped[xdptcp::tcp::stats::Drop::Paws as usize], 1);
        }
    }
}

#[test]
fn rfc7323_4_3_ts_recent_moves_only_for_segments_at_or_before_rcv_nxt() {
    let mut fx = fixture(Role::Client, State::Established, Flavour::TS).unwrap();
    // Out of order (beyond RCV.NXT): the duplicate ACK echoes the old TS.Recent.
    let mut s = fx.seg(ACK | PSH, fx.rcv_nxt.wrapping_add(10), fx.snd_una);
    s.payload = b"later".to_vec();
    let out = fx.rig.send(&s);
    assert_eq!(out[0].ts.map(|t| t.1), Some(fx.ts_recent));
    // In order: echoed at once.
    let mut s = fx.seg(ACK | PSH, fx.rcv_nxt, fx.snd_una);
    s.payload = b"now".to_vec();
    let tsval = s.ts.unwrap().0;
    let out = fx.rig.send(&s);
    assert_eq!((out[0].ack, out[0].ts.map(|t| t.1)), (fx.rcv_nxt.wrapping_add(3), Some(tsval)));
}

#[test]
fn rfc9293_3_10_7_1_a_closed_port_answers_with_the_prescribed_rst() {
    let mut fx = fixture(Role::Server, State::Closed, Flavour::NO_TS_WRAP).unwrap();
    let s = fx.rig.seg(SYN, 1000, 0);
    let out = fx.rig.send(&s);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (RST | ACK, 0, 1001), "<SEQ=0><ACK=SEG.SEQ+SEG.LEN>");
    let mut s = fx.rig.seg(ACK | PSH, 1000, 777);
    s.payload = vec![1; 10];
    let out = fx.rig.send(&s);
    assert_eq!((out[0].flags, out[0].seq), (RST, 777), "<SEQ=SEG.ACK><CTL=RST>");
    let mut s = fx.rig.seg(FIN, 1000, 0);
    s.payload = vec![1; 10];
    let out = fx.rig.send(&s);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (RST | ACK, 0, 1011), "data and FIN count in SEG.LEN");
    assert!(fx.rig.send(&fx.rig.seg(RST | ACK, 1000, 5)).is_empty());
}

fn listen_flow() -> V4Flow {
    V4Flow::new(support::frames::SERVER_IP, support::frames::SERVER_PORT, support::frames::CLIENT_IP, 40_000)
}

#[test]
fn rfc9293_3_10_7_2_listen_answers_a_syn_with_the_exact_cookie_and_keeps_nothing() {
    for ts in [true, false] {
        let mut rig = Rig::server();
        let mut syn = rig.seg(SYN, 123_456, 0);
        syn.mss = Some(1300);
        syn.wscale = Some(5);
        syn.sack_perm = true;
        if ts {
            syn.ts = Some((99, 0));
        }
        let out = rig.send(&syn);
        assert_eq!(out.len(), 1);
        let sa = &out[0];
        let bits = ts.then(|| encode_ts_bits(Some(5), true));
        let slot = slot_at(rig.now.as_nanos());
        let cookie = mint(rig.ep.cookie_keys(), slot, &listen_flow(), 123_456, 1300, bits).unwrap();
        assert_eq!((sa.flags, sa.seq, sa.ack), (SYN | ACK, cookie.isn, 123_457), "ISN = the cookie MAC");
        assert_eq!(cookie.mss, 1220, "1300 is carried as the table's 1220");
        assert_eq!(sa.mss, Some(1460), "we announce our own MSS");
        // Never scaled (RFC 7323 §2.2), and a multiple of the scale's granule so the first scaled window equals it.
        assert_eq!(sa.window, rig.ep.config().syn_window(), "a SYN-ACK's window is never scaled");
        assert_eq!(sa.window, 65408);
        // Window scale and SACK only ride through the timestamp option.
        assert_eq!(
            (sa.wscale, sa.sack_perm, sa.ts.is_some()),
            if ts { (Some(7), true, true) } else { (None, false, false) }
        );
        if let (Some(b), Some((tsval, tsecr))) = (bits, sa.ts) {
            assert_eq!((tsval & 0x1f) as u8, b, "the low TSval bits carry wscale and SACK");
            assert_eq!(tsecr, 99);
        }
        assert_eq!(rig.ep.live_connections(), 0, "no state for a SYN");
        assert_eq!(rig.ep.stats().cookies_sent, 1);
    }
}

#[test]
fn rfc9293_3_10_7_2_only_the_exact_pair_completes_the_handshake() {
    let handshake = |shift: u32, flags: u8| -> (Vec<Seg>, usize) {
        let mut rig = Rig::server();
        let syn = rig.seg(SYN, 5_000, 0);
        let sa = rig.send(&syn).remove(0);
        let mut a = rig.seg(flags, 5_001u32.wrapping_add(shift), sa.seq.wrapping_add(1).wrapping_add(shift));
        if flags & PSH != 0 {
            a.payload = b"x".to_vec();
        }
        let out = rig.send(&a);
        (out, rig.ep.live_connections())
    };
    // Seq and ack moved on by the same amount: a Linux additive cookie would take it; ours must not.
    for shift in [1, 5, 1000] {
        let (out, live) = handshake(shift, ACK);
        assert_eq!((live, out.len(), out[0].flags), (0, 1, RST), "shifted by {shift}");
    }
    assert_eq!(handshake(0, ACK).1, 1, "ACK");
    assert_eq!(handshake(0, ACK | PSH).1, 1, "ACK + data");
    assert_eq!(handshake(0, ACK | FIN).1, 1, "ACK + FIN");
    let (out, live) = handshake(0, ACK | RST);
    assert_eq!((live, out.len()), (0, 0), "ACK + RST never completes and is never answered");
    let (out, live) = handshake(0, ACK | SYN);
    assert_eq!((live, out[0].flags), (0, RST), "ACK + SYN never completes: RST <SEQ=SEG.ACK>");
}

#[test]
fn design_syn_with_fin_is_refused_by_the_parser() {
    each_fixture(&[State::Listen, State::Established, State::TimeWait, State::SynSent], |mut fx| {
        let s = fx.seg(SYN | FIN, fx.rcv_nxt, 0);
        assert!(fx.rig.send(&s).is_empty());
        assert_eq!(fx.rig.ep.stats().malformed[ParseError::BadFlags.index()], 1);
        assert_eq!(fx.observed_state(), fx.state);
    });
}

#[test]
fn rfc9293_3_10_7_4_fin_wait_1_a_fin_that_acknowledges_ours_goes_straight_to_time_wait() {
    each_fixture(&[State::FinWait1], |mut fx| {
        let s = fx.seg(FIN | ACK, fx.rcv_nxt, fx.snd_nxt);
        assert_eq!(send(&mut fx, &s), Did::Ack { seq: fx.snd_nxt, ack: fx.rcv_nxt.wrapping_add(1) });
        assert_eq!(fx.observed_state(), State::TimeWait);
        let ev: Vec<_> = fx.new_events().to_vec();
        assert!(matches!(ev.as_slice(), [Event::PeerClose(_), Event::Closed(_, CloseReason::Normal)]), "{ev:?}");
    });
}

#[test]
fn rfc9293_3_10_7_4_a_partly_old_segment_delivers_only_its_new_bytes() {
    each_fixture(&[State::Established, State::FinWait1, State::FinWait2], |mut fx| {
        let mut s = fx.seg(ACK | PSH, fx.rcv_nxt.wrapping_sub(3), fx.snd_una);
        s.payload = b"oldNEW".to_vec();
        // The three old bytes are not the peer's real ones: they must be ignored, not delivered.
        assert_eq!(send(&mut fx, &s), Did::Ack { seq: fx.snd_nxt, ack: fx.rcv_nxt.wrapping_add(3) });
        let ev: Vec<_> = fx.new_events().to_vec();
        assert!(matches!(ev.as_slice(), [Event::Data(_, d)] if d == b"NEW"), "{ev:?}");
    });
}

#[test]
fn rfc9293_3_10_7_4_out_of_order_data_is_held_acked_at_once_with_sack_and_delivered_when_the_hole_fills() {
    let mut sacked = 0;
    each_fixture(&[State::Established], |mut fx| {
        let n = fx.rcv_nxt;
        let mut later = fx.seg(ACK | PSH, n.wrapping_add(4), fx.snd_una);
        later.payload = b"5678".to_vec();
        let out = fx.rig.send(&later);
        // RFC 5681 §4.2: a duplicate ACK at once; RFC 2018 §4: its first block is the segment just held.
        assert!(
            matches!(out.as_slice(), [a] if a.flags == ACK && a.ack == n),
            "{:?} {:?}: {out:?}",
            fx.role,
            fx.flavour
        );
        if !out[0].sack.is_empty() {
            assert_eq!(out[0].sack, vec![(n.wrapping_add(4), n.wrapping_add(8))], "{:?} {:?}", fx.role, fx.flavour);
            sacked += 1;
        }
        assert!(fx.new_events().is_empty(), "nothing is delivered ahead of the hole");
        let mut first = fx.seg(ACK | PSH, n, fx.snd_una);
        first.payload = b"1234".to_vec();
        let out = fx.rig.send(&first);
        assert!(
            matches!(out.as_slice(), [a] if a.flags == ACK && a.ack == n.wrapping_add(8) && a.sack.is_empty()),
            "the ACK covers the held bytes too, and nothing is held any more: {out:?}"
        );
        let data: Vec<u8> = fx
            .new_events()
            .iter()
            .filter_map(|e| match e {
                Event::Data(_, d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"12345678", "in order, once each");
    });
    assert!(sacked > 0, "no fixture negotiated SACK");
}

// --- Negotiation outcomes -------------------------------------------------------------------------------------

/// A server whose app sends `n` bytes on open; returns what it sent at once (the peer window and the initial
/// congestion window permitting).
fn server_burst(opts: SynOpts, peer_window: u16, n: usize) -> (Vec<Seg>, PeerConn) {
    let (_, burst, p) = server_burst_rig(opts, peer_window, n);
    (burst, p)
}

fn server_burst_rig(opts: SynOpts, peer_window: u16, n: usize) -> (Rig, Vec<Seg>, PeerConn) {
    let app = Recorder::new(Script { on_open_send: vec![3; n], ..Script::default() });
    let mut rig = Rig::server_with(support::net::config(support::frames::SERVER_MAC), app);
    let p = PeerConn::open_to_server_with(&mut rig, opts, peer_window);
    let burst = p.log[1..].to_vec();
    (rig, burst, p)
}

#[test]
fn rfc7323_a_client_without_timestamps_gets_no_window_scaling_and_no_sack() {
    let (burst, p) = server_burst(SynOpts::NO_TS, 1000, 5000);
    let sa = &p.log[0];
    assert_eq!((sa.wscale, sa.sack_perm, sa.ts), (None, false, None), "{sa:?}");
    // Unscaled both ways: our window field is 65535, and the peer's 1000 means 1000 bytes.
    let sent: usize = burst.iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, 1000, "{burst:?}");
    assert!(burst.iter().all(|s| s.window == 65535 && s.ts.is_none()));
}

#[test]
fn rfc7323_2_with_timestamps_window_scale_and_sack_survive_the_cookie() {
    let opts = SynOpts { mss: Some(1460), wscale: Some(14), sack: true, ts: true };
    let (mut rig, burst, mut p) = server_burst_rig(opts, 2, 60_000);
    let sa = &p.log[0];
    assert_eq!((sa.wscale, sa.sack_perm), (Some(7), true));
    // The peer's field 2 << 14 = 32768 bytes; our field is 65535 >> 7 = 511. The first burst is the initial
    // congestion window, 10 segments (RFC 6928), which an unscaled window of 2 bytes would not have allowed.
    let sent: usize = burst.iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, 10 * 1448);
    // Slow start opens the congestion window past the peer's (an ACK per segment, two rounds): then the flight
    // stays at 22 full segments, and the 912 bytes of window left wait: sender-side silly window avoidance
    // (RFC 9293 §3.8.6.2.1) — until the app's last, partial segment, which may go.
    let flat = |r: &[(u32, Vec<Seg>)]| r.iter().flat_map(|(_, o)| o.clone()).collect::<Vec<Seg>>();
    let flights = |r: &[(u32, Vec<Seg>)]| -> Vec<u32> {
        r.iter().filter_map(|(a, o)| o.iter().map(|s| s.seq.wrapping_add(s.len()).wrapping_sub(*a)).max()).collect()
    };
    let r2 = p.ack_each(&mut rig, &burst);
    let second = flat(&r2);
    let r3 = p.ack_each(&mut rig, &second);
    let third = flat(&r3);
    assert_eq!(flights(&r2).last(), Some(&(20 * 1448)), "slow start: cwnd 20 segments after 10 ACKs");
    let f3 = flights(&r3);
    assert_eq!(f3[2..8], [22 * 1448; 6], "then the peer's window: {f3:?}");
    assert!(f3.iter().all(|f| *f <= 32_768), "{f3:?}");
    let all: Vec<&Seg> = burst.iter().chain(&second).chain(&third).collect();
    assert!(all.iter().all(|s| s.window == 511 && s.ts.is_some()));
    assert!(all.iter().all(|s| s.payload.len() <= 1460 - 12), "MSS less the timestamp option");
}

#[test]
fn rfc7323_2_2_no_window_scale_offered_means_none_announced() {
    let opts = SynOpts { mss: Some(1460), wscale: None, sack: false, ts: true };
    let (burst, p) = server_burst(opts, 8192, 100);
    let sa = &p.log[0];
    assert_eq!((sa.wscale, sa.sack_perm, sa.ts.is_some()), (None, false, true));
    assert!(burst.iter().all(|s| s.window == 65535));
}

#[test]
fn rfc9293_3_7_1_mss_from_the_cookie_table_and_the_536_default() {
    for (mss, want) in [(Some(1300u16), 1220usize), (None, 536), (Some(9000), 1460), (Some(100), 536)] {
        let opts = SynOpts { mss, wscale: None, sack: false, ts: false };
        let (burst, _) = server_burst(opts, 65535, 5000);
        let largest = burst.iter().map(|s| s.payload.len()).max().unwrap();
        assert_eq!(largest, want, "client MSS {mss:?}");
    }
}

#[test]
fn rfc7323_client_role_follows_what_the_syn_ack_offers() {
    for (opts, window_field, ts) in [
        (SynOpts { mss: Some(536), wscale: None, sack: false, ts: false }, 65535u16, false),
        (SynOpts { mss: Some(536), wscale: Some(3), sack: true, ts: true }, 511, true),
    ] {
        let mut rig = Rig::client();
        let (id, syn) = rig.connect();
        let p = PeerConn::accept_from_client(&mut rig, &syn, opts);
        let ack = p.log.last().unwrap().clone();
        assert_eq!((ack.window, ack.ts.is_some()), (window_field, ts), "{opts:?}");
        let (_, out) = rig.act(id, |c| c.send(&[1; 3000]));
        assert!(out.iter().all(|s| s.payload.len() <= 536 - if ts { 12 } else { 0 }), "{out:?}");
        assert!(out.iter().all(|s| s.ts.is_some() == ts));
    }
}

#[test]
fn ieee802_1q_a_tagged_peer_gets_tagged_replies() {
    let mut rig = Rig::server();
    rig.ends.vlan = Some(100);
    let mut p = PeerConn::open_to_server(&mut rig, SynOpts::FULL);
    p.talk(&mut rig, b"tagged");
    assert!(p.log.iter().all(|s| s.vlan == Some(100)), "{:?}", p.log);
    // The RST of a closed port and a failed cookie are tagged too (Rig::collect checks every frame's tag).
    let mut s = rig.seg(ACK, 1, 2);
    s.dport = 9;
    assert_eq!(rig.send(&s)[0].vlan, Some(100));
    rig.peer_port(40_999);
    let s = rig.seg(ACK, 1, 2);
    assert_eq!(rig.send(&s)[0].vlan, Some(100));
    // A client endpoint's frames are untagged (connect takes no tag).
    let mut c = Rig::client();
    let (_, syn) = c.connect();
    assert_eq!(syn.vlan, None);
}

/// RFC 9293 §3.10.7.4: the send window is updated only from a segment with SND.UNA =< SEG.ACK. A reordered
/// older segment (its ACK behind SND.UNA, still inside the RFC 5961 range) that arrives after a newer one must
/// not put back the window it carried: here the peer shrank its window from 32 000 to 4 000 bytes, and the
/// stale segment would have let 10 000 bytes go out past the peer's right edge.
#[test]
fn rfc9293_3_10_7_4_a_reordered_older_ack_does_not_update_the_send_window() {
    let mut rig = Rig::client();
    let (id, syn) = rig.connect();
    let mut p = PeerConn::accept_from_client(&mut rig, &syn, SynOpts::NO_TS); // peer window scale 2
    let (_, out) = rig.act(id, |c| c.send(&[1u8; 3000]));
    let iss = syn.seq.wrapping_add(1);
    assert_eq!(out.iter().map(|s| s.payload.len()).sum::<usize>(), 3000);
    // Two data segments from the peer that are both ahead of our RCV.NXT (the one before them was lost):
    // B, older, acknowledges the first 1460 bytes with a window of 8000·4; C, newer, all 3000 with 1000·4.
    let mut b = rig.seg(ACK | PSH, p.seq.wrapping_add(100), iss.wrapping_add(1460));
    b.window = 8000;
    b.payload = vec![2; 10];
    let mut c = rig.seg(ACK | PSH, p.seq.wrapping_add(200), iss.wrapping_add(3000));
    c.window = 1000;
    c.payload = vec![3; 10];
    p.send_seg(&mut rig, &c);
    p.send_seg(&mut rig, &b);
    let (taken, out) = rig.act(id, |c| c.send(&[4u8; 10_000]));
    assert_eq!(taken, Some(10_000), "the send queue takes it all");
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    let sent: usize = lens.iter().sum();
    assert!(sent > 0 && sent <= 4000, "only what the peer's newest window allows leaves: {lens:?}");
}
