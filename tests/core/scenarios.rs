//! Whole client/server lifecycles in virtual time: both endpoints are this stack, every frame re-parsed by
//! etherparse on the way.

use crate::support;

use std::time::Duration;
use support::frames::{ACK, SYN};
use support::net::{Dir, Fate, Net};
use support::recorder::{Event, Recorder, Script};
use xdptcp::app::CloseReason;
use xdptcp::sink::VecSink;
use xdptcp::tcp::{Config, State};
use xdptcp::time::Instant;

fn echo_server() -> Recorder {
    Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() })
}

/// Loses the client's data segments whose ordinals (from 1, first transmissions and retransmissions alike) are
/// in `which`.
fn lose_client_data(net: &mut Net<Recorder, Recorder>, which: &'static [usize]) {
    let mut data_segments = 0;
    net.set_filter(move |dir, _, s| {
        if dir == Dir::ClientToServer && !s.payload.is_empty() {
            data_segments += 1;
            if which.contains(&data_segments) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
}

/// The client's retransmissions of data, in order: when each went, and which full-size segment of the stream
/// (0-based) it began.
fn resent_segments(net: &Net<Recorder, Recorder>) -> Vec<(Instant, u32)> {
    let isn = net.segs(Dir::ClientToServer)[0].seq.wrapping_add(1);
    let mut seen = std::collections::HashSet::new();
    net.log
        .iter()
        .filter(|(_, d, s)| *d == Dir::ClientToServer && !s.payload.is_empty())
        .filter(|(_, _, s)| !seen.insert(s.seq))
        .map(|(t, _, s)| (*t, s.seq.wrapping_sub(isn) / 1448))
        .collect()
}

/// An upload of `data` from a client configured by `client` to a server that closes when it does, 10 ms each
/// way, with the `lost` data transmissions dropped (see [`lose_client_data`]).
fn upload_10ms(data: &[u8], lost: &'static [usize], client: impl FnOnce(&mut Config)) -> Net<Recorder, Recorder> {
    let mut ccfg = support::net::config(support::frames::CLIENT_MAC);
    client(&mut ccfg);
    let scfg = support::net::config(support::frames::SERVER_MAC);
    let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::with_configs(ccfg, client_sending(data), scfg, server);
    net.latency = Duration::from_millis(10);
    lose_client_data(&mut net, lost);
    net
}

fn client_sending(data: &[u8]) -> Recorder {
    Recorder::new(Script { on_open_send: data.to_vec(), close_on_open: true, ..Script::default() })
}

#[test]
fn rfc9293_3_5_three_way_handshake_with_cookie_isn() {
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let id = net.connect();
    net.drive();
    assert_eq!(net.client.state(id), Some(State::Established), "{}", net.trace());
    let c = net.segs(Dir::ClientToServer);
    let s = net.segs(Dir::ServerToClient);
    assert_eq!(c[0].flags, SYN);
    assert!(c[0].mss.is_some() && c[0].wscale.is_some() && c[0].ts.is_some() && c[0].sack_perm);
    assert_eq!(s[0].flags, SYN | ACK);
    assert_eq!(s[0].ack, c[0].seq.wrapping_add(1));
    // Window scale and SACK-permitted survive through the timestamp option.
    assert!(s[0].wscale.is_some() && s[0].sack_perm && s[0].ts.is_some());
    assert_eq!(c[1].flags, ACK);
    assert_eq!(c[1].ack, s[0].seq.wrapping_add(1));
    assert_eq!(net.server.live_connections(), 1);
    assert_eq!(net.server.stats().cookies_accepted, 1);
    assert_eq!(net.client.app().opened().len(), 1);
    assert_eq!(net.server.app().opened().len(), 1);
}

#[test]
fn rfc9293_3_6_client_closes_first_and_holds_time_wait() {
    let mut net = Net::new(client_sending(b"hello"), echo_server());
    let id = net.connect();
    net.drive();
    assert_eq!(net.client.app().received(id), b"hello", "{}", net.trace());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().count_closed(CloseReason::Normal), 1);
    assert_eq!(net.client.time_wait_len(), 1, "the side that closes first keeps TIME-WAIT");
    assert_eq!(net.server.time_wait_len(), 0);
    assert_eq!(net.server.live_connections(), 0);
    // 2MSL later the client forgets the tuple.
    net.drive_for(Duration::from_secs(61));
    assert_eq!(net.client.time_wait_len(), 0);
}

#[test]
fn rfc9293_3_6_server_closes_first_and_holds_time_wait() {
    let server = Recorder::new(Script { on_open_send: b"bye".to_vec(), close_on_open: true, ..Script::default() });
    let client = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    let id = net.connect();
    net.drive();
    assert_eq!(net.client.app().received(id), b"bye");
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.time_wait_len(), 1, "{}", net.trace());
    assert_eq!(net.client.time_wait_len(), 0);
    net.drive_for(Duration::from_secs(59));
    assert_eq!(net.server.time_wait_len(), 1, "TIME-WAIT lasts the full 2MSL");
    net.drive_for(Duration::from_secs(2));
    assert_eq!(net.server.time_wait_len(), 0);
}

#[test]
fn rfc9293_3_6_simultaneous_close_goes_through_closing() {
    let mut net = Net::new(Recorder::default(), Recorder::default());
    net.latency = Duration::from_millis(5);
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    // Both apps close at the same instant: the FINs cross on the wire.
    let mut cs = VecSink::new();
    let mut ss = VecSink::new();
    net.client.close(net.now, id, &mut cs);
    net.server.close(net.now, sid, &mut ss);
    net.inject(Dir::ClientToServer, cs.take());
    net.inject(Dir::ServerToClient, ss.take());
    assert_eq!(net.client.state(id), Some(State::FinWait1));
    assert_eq!(net.server.state(sid), Some(State::FinWait1));
    net.step();
    assert_eq!(net.client.state(id), Some(State::Closing), "{}", net.trace());
    assert_eq!(net.server.state(sid), Some(State::Closing), "{}", net.trace());
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal), "{}", net.trace());
    // Both sides closed actively: both keep TIME-WAIT.
    assert_eq!(net.client.time_wait_len() + net.server.time_wait_len(), 2, "{}", net.trace());
}

#[test]
fn rfc9293_3_5_simultaneous_open_goes_through_syn_received() {
    // Two clients that connect to each other at the same time, with no listener.
    use support::frames::{CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC};
    use xdptcp::sink::VecSink;
    use xdptcp::wire::MacAddr;
    let mut net = Net::new(Recorder::default(), Recorder::default());
    net.server.unlisten(support::frames::SERVER_PORT);
    let mut cs = VecSink::new();
    let mut ss = VecSink::new();
    let a = net
        .client
        .connect(net.now, (CLIENT_IP, 5000).into(), (SERVER_IP, 6000).into(), MacAddr(SERVER_MAC), 0, &mut cs)
        .unwrap();
    let b = net
        .server
        .connect(net.now, (SERVER_IP, 6000).into(), (CLIENT_IP, 5000).into(), MacAddr(CLIENT_MAC), 0, &mut ss)
        .unwrap();
    // Deliver both SYNs crossing.
    let syn_a = cs.take().pop().unwrap();
    let syn_b = ss.take().pop().unwrap();
    net.server.handle_frame(net.now, &syn_a, &mut ss);
    net.client.handle_frame(net.now, &syn_b, &mut cs);
    assert_eq!(net.client.state(a), Some(State::SynReceived));
    assert_eq!(net.server.state(b), Some(State::SynReceived));
    // Exchange the SYN-ACKs.
    let sa_b = ss.take();
    let sa_a = cs.take();
    for f in sa_b {
        net.client.handle_frame(net.now, &f, &mut cs);
    }
    for f in sa_a {
        net.server.handle_frame(net.now, &f, &mut ss);
    }
    assert_eq!(net.client.state(a), Some(State::Established));
    assert_eq!(net.server.state(b), Some(State::Established));
}

#[test]
fn rfc6298_5_lost_syn_is_retransmitted_after_one_second() {
    let mut net = Net::new(client_sending(b"x"), echo_server());
    net.set_filter(|dir, i, _| if dir == Dir::ClientToServer && i == 0 { Fate::Drop } else { Fate::Deliver });
    let id = net.connect();
    net.drive_for(Duration::from_secs(3));
    let c = net.segs(Dir::ClientToServer);
    assert_eq!(c[0].flags, SYN);
    assert_eq!(c[1].flags, SYN);
    let t: Vec<_> =
        net.log.iter().filter(|(_, d, s)| *d == Dir::ClientToServer && s.flags == SYN).map(|x| x.0).collect();
    assert_eq!(t[1] - t[0], Duration::from_secs(1));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
}

/// Loses each individual segment of an echo lifecycle in turn; every lifecycle must still complete, with the
/// stream intact, and leave no state behind after 2MSL.
#[test]
fn rfc6298_loss_of_every_individual_segment_is_recovered() {
    let baseline = {
        let mut net = Net::new(client_sending(b"ping"), echo_server());
        net.connect();
        net.drive_for(Duration::from_secs(1));
        net.log.len()
    };
    // SYN, SYN-ACK, ACK+data+FIN, ACK+echo+FIN, ACK: five segments when FINs ride on data.
    assert!(baseline >= 5, "a lifecycle is at least 5 segments, got {baseline}");
    for lose in 0..baseline {
        let mut net = Net::new(client_sending(b"ping"), echo_server());
        let mut k = 0usize;
        net.set_filter(move |_, _, _| {
            k += 1;
            if k - 1 == lose {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        let id = net.connect();
        net.drive_for(Duration::from_secs(30));
        assert_eq!(net.client.app().received(id), b"ping", "losing segment {lose}:\n{}", net.trace());
        assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "losing segment {lose}:\n{}", net.trace());
        assert_eq!(net.server.app().count_closed(CloseReason::Normal), 1, "losing {lose}:\n{}", net.trace());
        net.drive_for(Duration::from_secs(200));
        assert_eq!(net.client.live_connections() + net.server.live_connections(), 0);
        assert_eq!(net.client.time_wait_len() + net.server.time_wait_len(), 0, "losing {lose}");
    }
}

#[test]
fn rfc9293_3_10_7_4_reordered_data_is_never_delivered_out_of_order() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut net = Net::new(client_sending(&data), echo_server());
    // Delay the 2nd and 5th client segments so later ones overtake them.
    net.set_filter(|dir, i, _| {
        if dir == Dir::ClientToServer && (i == 3 || i == 6) {
            Fate::Delay(std::time::Duration::from_millis(2))
        } else {
            Fate::Deliver
        }
    });
    let id = net.connect();
    net.drive_for(Duration::from_secs(20));
    let got = net.client.app().received(id);
    assert!(got == data, "received {} of {} bytes\n{}", got.len(), data.len(), net.trace());
}

#[test]
fn rfc9293_3_6_half_close_lets_the_peer_keep_sending() {
    // The client closes at once; the server keeps sending after the client's FIN, then closes.
    let client = Recorder::new(Script { close_on_open: true, ..Script::default() });
    let mut net = Net::new(client, Recorder::default());
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    assert_eq!(net.server.state(sid), Some(State::CloseWait), "{}", net.trace());
    assert_eq!(net.client.state(id), Some(State::FinWait2), "{}", net.trace());
    let mut ss = VecSink::new();
    net.server.send(net.now, sid, b"late data", &mut ss);
    net.inject(Dir::ServerToClient, ss.take());
    net.drive();
    assert_eq!(net.client.app().received(id), b"late data", "{}", net.trace());
    assert_eq!(net.client.state(id), Some(State::FinWait2));
    net.server.close(net.now, sid, &mut ss);
    net.inject(Dir::ServerToClient, ss.take());
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal), "{}", net.trace());
    assert!(net.client.app().events.iter().any(|e| matches!(e, Event::PeerClose(_))));
    assert_eq!(net.client.time_wait_len(), 1);
}

/// One lost segment in a burst: the server holds the nine behind it (RFC 9293 §3.10.7.4) and SACKs them in its
/// duplicate ACKs (RFC 2018); once fast retransmit repairs the hole, one ACK covers everything. Dropped instead,
/// each of them would be sent again, one per partial ACK.
#[test]
fn rfc2018_a_lost_segment_is_the_only_one_sent_again_the_rest_are_held_and_sacked() {
    let data: Vec<u8> = (0..14_000u32).map(|i| (i % 251) as u8).collect();
    let lose_the_second = |reassembly_memory: usize| {
        let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
        let mut scfg = support::net::config(support::frames::SERVER_MAC);
        scfg.reassembly_memory = reassembly_memory;
        let ccfg = support::net::config(support::frames::CLIENT_MAC);
        let mut net = Net::with_configs(ccfg, client_sending(&data), scfg, server);
        lose_client_data(&mut net, &[2]);
        net
    };
    // The same loss with the pool off: everything behind the hole is dropped and sent again.
    let mut net = lose_the_second(0);
    net.connect();
    net.drive_for(Duration::from_secs(5));
    assert!(net.client.stats().retransmits >= 8, "{}", net.trace());
    assert_eq!(net.server.stats().out_of_order_held, 0);

    let mut net = lose_the_second(Config::default().reassembly_memory);
    let id = net.connect();
    // Well inside the first RTO (1 s): only fast retransmit can have repaired the loss by then.
    net.drive_for(Duration::from_millis(500));
    let sid = net.server.app().opened()[0];
    assert!(net.server.app().received(sid) == data, "the stream is whole and in order\n{}", net.trace());
    assert_eq!(net.client.stats().retransmits, 1, "only the lost segment went again\n{}", net.trace());
    let held = net.server.stats().out_of_order_held;
    assert!(held >= 8, "the segments behind the hole were held: {held}");
    assert_eq!(net.server.stats().out_of_order_delivered_bytes, data.len() as u64 - 1448 * 2, "{}", net.trace());
    let server_acks = net.segs(Dir::ServerToClient);
    let sacks: Vec<_> = server_acks.iter().filter(|s| !s.sack.is_empty()).collect();
    assert!(sacks.len() >= 3, "the duplicate ACKs carry SACK blocks: {sacks:?}");
    assert!(sacks.iter().all(|s| s.sack.len() <= 3), "three blocks at most beside timestamps: {sacks:?}");
    net.drive_for(Duration::from_secs(5));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().count_closed(CloseReason::Normal), 1);
}

/// Three segments lost from one window of a 40 KB upload, 10 ms each way. With SACK the sender keeps a
/// scoreboard (RFC 6675) and sends all three again while the duplicate ACKs of that window arrive; without it
/// one goes per partial ACK, a round trip each. Both streams arrive whole, with exactly three retransmissions.
#[test]
fn rfc6675_several_losses_in_one_window_are_repaired_in_one_round_trip_with_sack() {
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let run = |sack: bool| {
        let mut net = upload_10ms(&data, &[2, 4, 6], |c| c.sack = sack);
        let id = net.connect();
        net.drive_for(Duration::from_secs(10));
        let sid = net.server.app().opened()[0];
        assert!(net.server.app().received(sid) == data, "sack {sack}: the stream is whole\n{}", net.trace());
        assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "sack {sack}");
        let log = &net.log;
        let syn = log.iter().find(|(_, d, s)| *d == Dir::ClientToServer && s.flags & SYN != 0).unwrap().2.clone();
        let end = syn.seq.wrapping_add(1 + data.len() as u32);
        let first_data = log.iter().find(|(_, d, s)| *d == Dir::ClientToServer && !s.payload.is_empty()).unwrap().0;
        let acks_all = |s: &support::frames::Seg| s.flags & ACK != 0 && (s.ack.wrapping_sub(end) as i32) >= 0;
        let all_acked = log.iter().find(|(_, d, s)| *d == Dir::ServerToClient && acks_all(s)).unwrap().0;
        (all_acked.saturating_since(first_data), net.client.stats())
    };
    let (with, s) = run(true);
    let (without, n) = run(false);
    eprintln!("all acknowledged {with:?} after the first data segment with SACK, {without:?} without");
    assert_eq!((s.retransmits, s.sack_recoveries, s.sack_retransmits), (3, 1, 2), "with SACK: {s:?}");
    assert_eq!((n.retransmits, n.sack_recoveries), (3, 0), "without SACK: {n:?}");
    // Two partial-ACK round trips (20 ms each) saved, less what ordering costs.
    assert!(with + Duration::from_millis(30) <= without, "with SACK {with:?}, without {without:?}");
}

#[test]
fn rfc6582_3_2_a_full_ack_ends_the_recovery_and_data_sent_during_it_is_never_resent() {
    // 400 KB through 10 ms each way, two data segments lost in one window. Once the retransmissions fill both
    // holes, the ACK that covers everything sent before the loss ends the recovery; the new data sent meanwhile
    // is still in flight and must not be sent again (an earlier version kept repairing until the flight emptied
    // and, without SACK, resent 231 of the 277 segments).
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let min_segments = data.len().div_ceil(1448);
    for sack in [false, true] {
        for lost in [&[20usize, 40][..], &[30, 60], &[100, 130]] {
            let lost: &'static [usize] = Box::leak(lost.to_vec().into_boxed_slice());
            let mut net = upload_10ms(&data, lost, |c| (c.sack, c.send_buffer) = (sack, 1 << 20));
            let id = net.connect();
            net.drive_for(Duration::from_secs(10));
            let sid = net.server.app().opened()[0];
            assert!(net.server.app().received(sid) == data, "sack {sack}, lost {lost:?}: the stream is whole");
            assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "sack {sack}, lost {lost:?}");
            let s = net.client.stats();
            let sent = net.segs(Dir::ClientToServer).iter().filter(|s| !s.payload.is_empty()).count();
            assert_eq!(s.retransmits, 2, "sack {sack}, lost {lost:?}: only the two lost segments go again");
            assert_eq!(sent, min_segments + 2, "sack {sack}, lost {lost:?}");
        }
    }
}

#[test]
fn syn_cookies_a_lost_handshake_ack_carrying_data_gets_the_segments_after_it_reset() {
    // The documented cost of a listener that keeps no state before the handshake's ACK (README, Known limits):
    // our client puts its first data in that ACK; when it is lost, the segments after it cannot be checked
    // against a cookie (the cookie covers the client's ISN, which only SEG.SEQ − 1 of the first ACK gives), so
    // each is answered with RST (RFC 9293 §3.10.7.2, an ACK in LISTEN) and the client is reset, as a Linux
    // listener under SYN cookies does. A pure ACK first would avoid it at the cost of one more frame.
    let data = vec![9u8; 20_000];
    let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client_sending(&data), server);
    net.latency = Duration::from_millis(10);
    lose_client_data(&mut net, &[1]);
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    assert!(net.server.app().opened().is_empty(), "{}", net.trace());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Reset), "{}", net.trace());
    assert!(net.server.stats().rsts_sent > 0);
}

#[test]
fn syn_cookies_with_the_handshake_ack_alone_a_lost_first_segment_costs_only_its_retransmission() {
    // The same loss with `handshake_ack_alone`, as kernel clients do: the pure ACK opens the connection at the
    // listener, the first data segment is resent on the duplicate ACKs, and the stream arrives whole. If the ACK
    // is lost instead, the first data segment (at the same sequence number) opens it. (If both are lost, the
    // segments after them are reset as before: a kernel client meets the same at a Linux listener under cookies.)
    let data = vec![9u8; 20_000];
    for (lost_ack, lost_data) in [(false, true), (true, false)] {
        let mut ccfg = support::net::config(support::frames::CLIENT_MAC);
        ccfg.handshake_ack_alone = true;
        let scfg = support::net::config(support::frames::SERVER_MAC);
        let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
        let mut net = Net::with_configs(ccfg, client_sending(&data), scfg, server);
        net.latency = Duration::from_millis(10);
        let (mut acks, mut data_segments) = (0, 0);
        net.set_filter(move |dir, _, s| {
            if dir != Dir::ClientToServer || s.flags & SYN != 0 {
                return Fate::Deliver;
            }
            let lose = if s.payload.is_empty() {
                acks += 1;
                lost_ack && acks == 1
            } else {
                data_segments += 1;
                lost_data && data_segments == 1
            };
            if lose {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        let id = net.connect();
        net.drive_for(Duration::from_secs(5));
        let case = format!("ACK lost {lost_ack}, first data lost {lost_data}");
        assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{case}: {}", net.trace());
        let sid = net.server.app().opened()[0];
        assert!(net.server.app().received(sid) == data, "{case}");
        let c = net.segs(Dir::ClientToServer);
        assert!(c[1].flags == ACK && c[1].payload.is_empty(), "{case}: the handshake's ACK goes alone");
        assert_eq!(c[2].seq, c[1].seq, "{case}: the first data segment starts where the ACK stood");
        assert_eq!(net.server.stats().rsts_sent, 0, "{case}");
    }
}

#[test]
fn rfc6675_nextseg_rule_3_a_hole_near_the_tail_goes_in_the_same_round_trip_as_the_first() {
    // An upload of exactly the initial window (ten segments, all sent at once) at 10 ms each way loses its 3rd
    // and 9th segments. Only one segment is SACKed above the second hole, too few to call it lost (DupThresh),
    // and there is no new data to send: rule 3 sends it as soon as the scoreboard shows it, in the round trip
    // of the first, instead of a round trip later on the partial ACK.
    let data: Vec<u8> = (0..10 * 1448u32).map(|i| (i % 251) as u8).collect();
    let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client_sending(&data), server);
    net.latency = Duration::from_millis(10);
    lose_client_data(&mut net, &[3, 9]);
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    let sid = net.server.app().opened()[0];
    assert!(net.server.app().received(sid) == data);
    let resent = resent_segments(&net);
    assert_eq!(resent.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 8], "{resent:?}");
    let gap = resent[1].0.saturating_since(resent[0].0);
    assert!(gap < Duration::from_millis(20), "the second hole went {gap:?} after the first, a round trip or more");
    assert_eq!(net.client.stats().retransmits, 2);
}

#[test]
fn rfc6582_3_2_a_partial_ack_that_covers_every_retransmission_resends_the_tail_sent_before_them() {
    // An upload of exactly the initial window loses its 3rd segment and its last (with the FIN). The SACKs of
    // the 4th to 9th start a recovery that resends the 3rd; the ACK of that retransmission stops at the last
    // segment and SACKs nothing: sent before the retransmission, on a path that keeps order, it would have
    // been acknowledged with it, so it is lost. Without SACK, RFC 6582 resends it on that partial ACK; with SACK
    // the scoreboard has nothing above it to call it lost by, and it used to wait for the retransmission
    // timer, 200 ms and more. Both now finish within a few round trips, the last segment resent once.
    let data: Vec<u8> = (0..10 * 1448u32).map(|i| (i % 251) as u8).collect();
    for sack in [true, false] {
        let mut net = upload_10ms(&data, &[3, 10], |c| c.sack = sack);
        let id = net.connect();
        net.drive_for(Duration::from_secs(5));
        assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "sack {sack}: {}", net.trace());
        let sid = net.server.app().opened()[0];
        assert!(net.server.app().received(sid) == data, "sack {sack}");
        let resent = resent_segments(&net);
        assert_eq!(resent.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 9], "sack {sack}: {resent:?}");
        let gap = resent[1].0.saturating_since(resent[0].0);
        assert!(gap <= Duration::from_millis(25), "sack {sack}: the tail went {gap:?} after the first repair");
        assert_eq!(net.client.stats().retransmits, 2, "sack {sack}");
    }
}

#[test]
fn rfc5827_early_retransmit_repairs_a_loss_near_the_tail_without_waiting_for_the_timer() {
    // A 30 KB upload at 10 ms each way loses its third segment from the end, after an earlier recovery has
    // ended: only two segments follow it, so only two duplicate ACKs come. With fewer than four segments in
    // flight and nothing left to send, two suffice (RFC 5827): the repair takes a round trip, not an RTO.
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let segments = data.len().div_ceil(1448);
    let isn_of = |net: &Net<Recorder, Recorder>| net.segs(Dir::ClientToServer)[0].seq.wrapping_add(1);
    let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client_sending(&data), server);
    net.latency = Duration::from_millis(10);
    // The 5th data segment, then (counting its retransmission) the third from the end.
    let third_from_end: &'static [usize] = Box::leak(vec![5, segments - 1].into_boxed_slice());
    lose_client_data(&mut net, third_from_end);
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    let isn = isn_of(&net);
    let data_segs: Vec<_> =
        net.log.iter().filter(|(_, d, s)| *d == Dir::ClientToServer && !s.payload.is_empty()).collect();
    let tail = (segments as u32 - 3) * 1448;
    let sent: Vec<Instant> =
        data_segs.iter().filter(|(_, _, s)| s.seq.wrapping_sub(isn) == tail).map(|(t, _, _)| *t).collect();
    assert_eq!(sent.len(), 2, "sent once, lost, sent again: {sent:?}");
    let repair = sent[1].saturating_since(sent[0]);
    assert!(repair <= Duration::from_millis(40), "repaired after {repair:?}: the timer's work, not the ACKs'");
    assert_eq!(net.client.stats().retransmits, 2);
}

#[test]
fn rfc6675_a_lost_retransmission_is_sent_again_once_data_sent_after_it_is_sacked() {
    // A 400 KB upload at 10 ms each way loses one segment and then its fast retransmission. Segments sent after
    // that retransmission arrive and are SACKed while its hole stays open: by the same rule that calls an
    // original segment lost (more than DupThresh − 1 segments SACKed above it, RFC 6675's IsLost, applied to
    // what was sent after it), the retransmission is lost, and it goes again about a round trip after it went
    // (RFC 8985's RACK reads the same from its clocks). HighRxt alone cannot say it, and the repair used to wait
    // for the retransmission timer, a minimum of 200 ms, which also collapses cwnd to one segment.
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    // Losses early and mid-transfer, with data left to send after the retransmission (near the end of the
    // stream there is none, nothing can show the retransmission lost, and the timer repairs it, as before).
    for lost_segment in [30u32, 31, 45, 100] {
        let mut ccfg = support::net::config(support::frames::CLIENT_MAC);
        ccfg.send_buffer = 1 << 20;
        // A receive window of 1 MiB: with the default 64 KB a hole at its left edge leaves no room for data
        // sent after the retransmission, nothing can show it lost, and only the timer repairs it (as in Linux).
        let mut scfg = support::net::config(support::frames::SERVER_MAC);
        scfg.rcv_wnd = 1 << 20;
        let server = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
        let mut net = Net::with_configs(ccfg, client_sending(&data), scfg, server);
        net.latency = Duration::from_millis(10);
        let (mut isn, mut copies) = (None, 0);
        net.set_filter(move |dir, _, s| {
            if dir == Dir::ClientToServer && s.flags & SYN != 0 {
                isn = Some(s.seq.wrapping_add(1));
            }
            let at = isn.map(|i| s.seq.wrapping_sub(i));
            if dir == Dir::ClientToServer && !s.payload.is_empty() && at == Some(lost_segment * 1448) {
                copies += 1;
                if copies <= 2 {
                    return Fate::Drop;
                }
            }
            Fate::Deliver
        });
        let id = net.connect();
        net.drive_for(Duration::from_secs(10));
        assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "segment {lost_segment}");
        let sid = net.server.app().opened()[0];
        assert!(net.server.app().received(sid) == data, "segment {lost_segment}: the stream is whole");
        let isn = net.segs(Dir::ClientToServer)[0].seq.wrapping_add(1);
        let sent: Vec<Instant> = net
            .log
            .iter()
            .filter(|(_, d, s)| *d == Dir::ClientToServer && !s.payload.is_empty())
            .filter(|(_, _, s)| s.seq.wrapping_sub(isn) == lost_segment * 1448)
            .map(|(t, _, _)| *t)
            .collect();
        assert_eq!(sent.len(), 3, "segment {lost_segment}: sent, resent, resent again: {sent:?}");
        let again = sent[2].saturating_since(sent[1]);
        assert!(again <= Duration::from_millis(30), "segment {lost_segment}: resent again after {again:?}");
        let s = net.client.stats();
        assert_eq!((s.retransmits, s.sack_recoveries), (2, 1), "segment {lost_segment}: one recovery, {s:?}");
    }
}
