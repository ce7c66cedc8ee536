//! Admission and defence: cookie key rotation across clock slots with handshakes in flight, a full connection
//! table (new connections refused with RST and counted, existing ones unharmed, cookies still answered), and the
//! rate limits on challenge ACKs (per connection and for the endpoint) and on RSTs.

use crate::support;

use std::time::Duration;
use support::fixtures::{fixture, Flavour, Role};
use support::frames::{Seg, ACK, RST, SERVER_MAC, SYN};
use support::net::{config, Net};
use support::peer::{PeerConn, SynOpts};
use support::recorder::Recorder;
use support::rig::{Rig, T0};
use xdptcp::app::CloseReason;
use xdptcp::tcp::cookie::{slot_at, KeyRing, PERIOD};
use xdptcp::tcp::stats::Drop;
use xdptcp::tcp::{Config, State};
use xdptcp::time::Instant;

const SEED: u64 = 0x0c00_c1e5;

/// The start of cookie slot `s` (the test endpoints' wall clock offset is zero).
fn slot_start(s: u64) -> Instant {
    Instant::from_nanos(s * PERIOD.as_nanos() as u64)
}

/// A server whose key ring holds exactly `slots`.
fn server_with_keys(slots: &[u64]) -> Rig {
    let mut rig = Rig::server();
    rig.ep.set_cookie_keys(KeyRing::from_seed(SEED, slots.iter().copied()));
    rig
}

/// A SYN from client port `port` at the rig's time; returns (syn, syn-ack).
fn syn(rig: &mut Rig, port: u16, isn: u32) -> (Seg, Option<Seg>) {
    rig.peer_port(port);
    let mut s = rig.seg(SYN, isn, 0);
    s.mss = Some(1460);
    let out = rig.send(&s);
    (s, out.into_iter().next())
}

/// The ACK completing `syn` / `syn_ack`, sent from `port`; returns the replies.
fn ack(rig: &mut Rig, port: u16, syn: &Seg, syn_ack: &Seg) -> Vec<Seg> {
    rig.peer_port(port);
    let s = rig.seg(ACK, syn.seq.wrapping_add(1), syn_ack.seq.wrapping_add(1));
    rig.send(&s)
}

#[test]
fn cookie_minted_in_slot_s_validates_in_s_plus_1_and_not_in_s_plus_2() {
    let s = slot_at(T0.as_nanos()) + 2;
    for (arrival, accepted) in
        [(slot_start(s) + Duration::from_secs(63), true), (slot_start(s + 1) + Duration::from_secs(63), true)]
            .into_iter()
            .chain([(slot_start(s + 2), false), (slot_start(s + 2) + Duration::from_secs(30), false)])
    {
        // Keys as the runtime keeps them: every slot from s on is published, none is dropped.
        let mut rig = server_with_keys(&[s, s + 1, s + 2, s + 3]);
        rig.now = slot_start(s) + Duration::from_millis(10);
        let (syn_seg, sa) = syn(&mut rig, 40_000, 77);
        let sa = sa.expect("SYN-ACK");
        rig.now = arrival;
        let out = ack(&mut rig, 40_000, &syn_seg, &sa);
        let opened = rig.ep.live_connections() == 1;
        assert_eq!(
            opened,
            accepted,
            "cookie of slot {s} arriving at {:?} (slot {})",
            arrival,
            slot_at(arrival.as_nanos())
        );
        if !accepted {
            assert_eq!(out.len(), 1);
            assert_eq!((out[0].flags, out[0].seq), (RST, sa.seq.wrapping_add(1)), "<SEQ=SEG.ACK><CTL=RST>");
            assert_eq!(rig.ep.stats().cookies_rejected, 1);
        }
    }
}

#[test]
fn key_rotation_across_slot_boundaries_keeps_handshakes_in_flight_alive() {
    // The runtime's rotation: in slot n the ring holds n − 1, n and n + 1 (the next key is published before its
    // slot starts; the previous one stays one period). Handshakes straddle each boundary.
    let s = slot_at(T0.as_nanos()) + 1;
    let mut rig = server_with_keys(&[s - 1, s, s + 1]);
    let mut port = 41_000;
    let mut accepted = 0;
    for n in s..s + 4 {
        // Minted 1 ms before the boundary into slot n + 1 ...
        rig.now = slot_start(n + 1) - Duration::from_millis(1);
        let (a, sa) = syn(&mut rig, port, 1000 + n as u32);
        let sa = sa.expect("SYN-ACK in slot n");
        // ... the ring rotates at the boundary ...
        rig.now = slot_start(n + 1);
        rig.ep.set_cookie_keys(KeyRing::from_seed(SEED, [n, n + 1, n + 2]));
        // ... and the ACK arrives 2 ms later, in slot n + 1.
        rig.now += Duration::from_millis(2);
        let out = ack(&mut rig, port, &a, &sa);
        assert!(out.is_empty(), "slot {n}: {out:?}");
        accepted += 1;
        assert_eq!(rig.ep.live_connections(), accepted, "handshake across the boundary into slot {}", n + 1);
        port += 1;
    }
    // A cookie whose slot's key left the ring does not validate: minted in s + 3, rotated twice more.
    rig.now = slot_start(s + 4) + Duration::from_secs(1);
    let (a, sa) = syn(&mut rig, port, 5);
    let sa = sa.unwrap();
    rig.now = slot_start(s + 5) + Duration::from_secs(1);
    rig.ep.set_cookie_keys(KeyRing::from_seed(SEED, [s + 5, s + 6]));
    let out = ack(&mut rig, port, &a, &sa);
    assert_eq!(out.first().map(|o| o.flags), Some(RST), "the previous slot's key was dropped too early");
}

#[test]
fn key_rotation_with_two_of_our_endpoints_and_a_slow_path() {
    // A 1.5 s one-way delay straddling a slot boundary: SYN and SYN-ACK in slot s, the ACK in slot s + 1.
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let s = slot_at(net.now.as_nanos());
    let boundary = slot_start(s + 1);
    net.drive_for(boundary - net.now - Duration::from_millis(2000));
    net.latency = Duration::from_millis(1500);
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    assert_eq!(net.client.state(id), Some(State::Established), "{}", net.trace());
    assert_eq!(net.server.live_connections(), 1, "{}", net.trace());
    let acks: Vec<Instant> = net.log.iter().filter(|(_, _, s)| s.flags == ACK).map(|(t, _, _)| *t).collect();
    assert!(slot_at(acks[0].as_nanos() + 1_500_000_000) == s + 1, "the ACK arrives in the next slot");
}

#[test]
fn table_full_refuses_new_connections_with_rst_and_keeps_answering_cookies() {
    let cfg = Config { max_conns: 2, ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let mut peers = Vec::new();
    for port in [40_001u16, 40_002] {
        rig.peer_port(port);
        peers.push((port, PeerConn::open_to_server(&mut rig, SynOpts::FULL)));
    }
    assert_eq!(rig.ep.live_connections(), 2);
    // A third client: its SYN is still answered with a cookie, its ACK is refused with <SEQ=SEG.ACK><CTL=RST>.
    let (a, sa) = syn(&mut rig, 40_003, 9);
    let sa = sa.expect("cookies are answered while the table is full");
    let out = ack(&mut rig, 40_003, &a, &sa);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq), (RST, sa.seq.wrapping_add(1)));
    let st = rig.ep.stats();
    assert_eq!((st.conns_refused_full, st.live_conns, st.cookies_sent), (1, 2, 3));
    // The existing connections are unharmed.
    for (port, p) in peers.iter_mut() {
        rig.peer_port(*port);
        let out = p.send(&mut rig, b"still here");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ack, p.seq, "data on an existing connection is acknowledged");
    }
    let got: Vec<Vec<u8>> = rig.ep.app().opened().iter().map(|id| rig.ep.app().received(*id)).collect();
    assert_eq!(got, vec![b"still here".to_vec(), b"still here".to_vec()]);
    // One leaves (reset by its peer): the third client's retransmitted ACK now gets in.
    rig.peer_port(40_001);
    let (_, p) = &peers[0];
    let rst = rig.seg(RST, p.seq, 0);
    assert!(rig.send(&rst).is_empty());
    assert_eq!(rig.ep.live_connections(), 1);
    let out = ack(&mut rig, 40_003, &a, &sa);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(rig.ep.live_connections(), 2);
}

#[test]
fn table_full_between_two_of_our_endpoints_resets_the_refused_client() {
    let ccfg = config(support::frames::CLIENT_MAC);
    let scfg = Config { max_conns: 2, ..config(SERVER_MAC) };
    let mut net = Net::with_configs(ccfg, Recorder::default(), scfg, Recorder::default());
    let ids: Vec<_> = (0..3).map(|i| net.connect_from(40_100 + i)).collect();
    net.drive_for(Duration::from_secs(1));
    assert_eq!(net.server.live_connections(), 2, "{}", net.trace());
    assert_eq!(net.server.stats().conns_refused_full, 1);
    let reset: Vec<_> = ids.iter().filter(|id| net.client.app().closed(**id) == Some(CloseReason::Reset)).collect();
    assert_eq!(reset.len(), 1, "the refused client sees an RST at RCV.NXT and closes\n{}", net.trace());
    assert_eq!(net.client.live_connections(), 2);
    // Connect() on the client side is bounded the same way.
    let ccfg = Config { max_conns: 1, ..config(support::frames::CLIENT_MAC) };
    let mut net = Net::with_configs(ccfg, Recorder::default(), config(SERVER_MAC), Recorder::default());
    net.connect_from(40_200);
    let mut sink = xdptcp::sink::VecSink::new();
    let e = net.client.connect(
        net.now,
        (support::frames::CLIENT_IP, 40_201).into(),
        (support::frames::SERVER_IP, support::frames::SERVER_PORT).into(),
        xdptcp::wire::MacAddr(SERVER_MAC),
        0,
        &mut sink,
    );
    assert_eq!(e, Err(xdptcp::tcp::ConnectError::TableFull));
}

#[test]
fn rfc5961_7_challenge_acks_are_limited_per_connection() {
    // Default: 5 per connection per second.
    let mut fx = fixture(Role::Server, State::Established, Flavour::TS).unwrap();
    let mut sent = 0;
    for i in 0..20u32 {
        let s = fx.seg_ts(RST, fx.rcv_nxt.wrapping_add(1 + i), 0, None);
        sent += fx.rig.send(&s).len();
    }
    assert_eq!(sent, 5);
    let st = fx.rig.ep.stats();
    assert_eq!((st.challenge_acks, st.challenge_acks_rate_limited), (5, 15));
    // The next second allows five more; the connection is alive throughout.
    fx.rig.now += Duration::from_secs(1);
    let mut sent = 0;
    for i in 0..20u32 {
        let s = fx.seg_ts(RST, fx.rcv_nxt.wrapping_add(1 + i), 0, None);
        sent += fx.rig.send(&s).len();
    }
    assert_eq!(sent, 5);
    assert_eq!(fx.rig.ep.state(fx.id.unwrap()), Some(State::Established));
}

#[test]
fn rfc5961_7_challenge_acks_are_limited_for_the_whole_endpoint_by_a_secret_budget_per_second() {
    // About 20 per second for the endpoint (each second's budget drawn in secret from 10..=30), 5 per
    // connection: forty connections, each provoked five times a second, ask for 200 a second.
    let cfg = Config { challenge_acks_per_sec: Some(20), ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let mut peers = Vec::new();
    for port in 0..40u16 {
        rig.peer_port(41_000 + port);
        peers.push(PeerConn::open_to_server(&mut rig, SynOpts::NO_TS));
    }
    let provoke = |rig: &mut Rig, peers: &mut Vec<PeerConn>| -> usize {
        peers.iter_mut().enumerate().map(|(i, p)| in_window_syn(rig, 41_000 + i as u16, p)).sum()
    };
    let mut sizes = Vec::new();
    for _second in 0..30 {
        let answered: usize = (0..5).map(|_| provoke(&mut rig, &mut peers)).sum();
        assert_eq!(provoke(&mut rig, &mut peers), 0, "the second's budget or every connection's is spent");
        sizes.push(answered);
        rig.now += Duration::from_secs(1);
    }
    assert!(sizes.iter().all(|n| (10..=30).contains(n)), "{sizes:?}");
    let distinct: std::collections::HashSet<usize> = sizes.iter().copied().collect();
    assert!(distinct.len() >= 5, "the budget changes from second to second: {sizes:?}");
    let st = rig.ep.stats();
    assert_eq!(st.challenge_acks as usize, sizes.iter().sum::<usize>());
    assert_eq!(st.challenge_acks + st.challenge_acks_rate_limited, 30 * 6 * 40);
}

/// Sends `p` an in-window SYN from `port` (RFC 5961 §4: a challenge ACK is due); returns the segments it drew.
fn in_window_syn(rig: &mut Rig, port: u16, p: &mut PeerConn) -> usize {
    rig.peer_port(port);
    let mut s = p.seg(rig, SYN);
    s.seq = p.seq.wrapping_add(5);
    rig.send(&s).len()
}

/// The off-path attack of CVE-2016-5696 against RFC 5961 §7's endpoint-wide budget, `pairs` times in virtual
/// time: each trial is one second in which the victim gets five RSTs inside its window (`inside`: each costs a
/// challenge ACK) or far outside it (dropped, free), and then the attacker's 8 connections provoke five challenge
/// ACKs each (an in-window SYN), more than any second's budget holds, so they see what the victim's guesses left
/// of it. Returns the mean number of challenge ACKs the attacker saw after in-window guesses and after others.
fn side_channel(cap: Option<u32>, pairs: u32) -> (f64, f64) {
    let cfg = Config { challenge_acks_per_sec: cap, ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let mut conns: Vec<(u16, PeerConn)> = Vec::new();
    for i in 0..9u16 {
        let port = 42_000 + i;
        rig.peer_port(port);
        conns.push((port, PeerConn::open_to_server(&mut rig, SynOpts::NO_TS)));
    }
    let (victim, attacker) = conns.split_first_mut().unwrap();
    let (mut inside_sum, mut outside_sum) = (0usize, 0usize);
    for t in 0..2 * pairs {
        let inside = t % 2 == 0;
        rig.peer_port(victim.0);
        for i in 0..5 {
            let mut rst = victim.1.seg(&rig, RST);
            rst.seq = victim.1.seq.wrapping_add(if inside { 100 + i } else { 1 << 30 });
            rig.send(&rst);
        }
        let mut seen = 0;
        for (port, p) in attacker.iter_mut() {
            seen += (0..5).map(|_| in_window_syn(&mut rig, *port, p)).sum::<usize>();
        }
        if inside {
            inside_sum += seen;
        } else {
            outside_sum += seen;
        }
        rig.now += Duration::from_secs(1);
    }
    assert_eq!(rig.ep.live_connections(), 9, "no guess closed a connection");
    (inside_sum as f64 / f64::from(pairs), outside_sum as f64 / f64::from(pairs))
}

#[test]
fn cve_2016_5696_without_an_endpoint_wide_budget_a_victims_guesses_cost_the_attacker_nothing() {
    // The default: each connection has its own five a second and nothing is shared, so the attacker sees all
    // 40 whatever the victim was sent. The same attack against an endpoint-wide budget (secret, 10..=30 a
    // second) shows the channel the default closes: after in-window guesses the attacker sees five fewer on
    // average (the secret size only adds noise, about 6 per second, which the mean over 300 seconds removes).
    let (inside, outside) = side_channel(None, 300);
    assert_eq!((inside, outside), (40.0, 40.0));
    let (inside, outside) = side_channel(Some(20), 300);
    eprintln!("endpoint-wide budget: the attacker saw {inside:.2} after in-window guesses, {outside:.2} after others");
    assert!(outside - inside > 3.0, "the endpoint-wide budget leaks, and this attack must see it");
}

#[test]
fn rsts_for_unknown_tuples_and_bad_cookies_are_limited_for_the_whole_endpoint() {
    // 100 per second (bursts of 10).
    let cfg = Config { rst_per_sec: 100, ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let mut answered = 0;
    for i in 0..50u32 {
        rig.peer_port(42_000 + i as u16);
        // Half to a closed port, half bad cookies to the listener.
        let mut s = rig.seg(ACK, i, 1_000_000 + i);
        if i % 2 == 0 {
            s.dport = 9;
        }
        answered += rig.send(&s).len();
    }
    assert_eq!(answered, 10);
    let st = rig.ep.stats();
    assert_eq!((st.rsts_sent, st.rsts_rate_limited), (10, 40));
    rig.now += Duration::from_secs(1);
    let s = rig.seg(ACK, 1, 2);
    assert_eq!(rig.send(&s).len(), 1, "a second later RSTs flow again");
}

#[test]
fn rfc9293_3_10_7_1_an_rst_is_never_answered_even_when_rsts_are_allowed() {
    let mut rig = Rig::server();
    for flags in [RST, RST | ACK] {
        for dport in [support::frames::SERVER_PORT, 9] {
            let mut s = rig.seg(flags, 5, 6);
            s.dport = dport;
            assert!(rig.send(&s).is_empty());
        }
    }
    assert_eq!(rig.ep.stats().rsts_sent, 0);
}

#[test]
fn no_cookie_key_means_no_syn_ack() {
    let mut rig = Rig::server();
    rig.ep.set_cookie_keys(KeyRing::new());
    let (_, sa) = syn(&mut rig, 40_000, 1);
    assert!(sa.is_none());
    assert_eq!(rig.ep.stats().dropped[xdptcp::tcp::stats::Drop::NoCookieKey as usize], 1);
    // A drain (stop_listening) answers SYNs with RST instead.
    let mut rig = Rig::server();
    rig.ep.stop_listening();
    let (_, r) = syn(&mut rig, 40_000, 1);
    assert_eq!(r.map(|r| r.flags), Some(RST | ACK));
}

#[test]
fn rfc9293_3_10_7_4_retransmitted_data_is_acknowledged_whatever_the_challenge_ack_budget() {
    // When our ACK is lost, the peer retransmits data we already hold; only our ACK lets it progress. Such ACKs
    // answer segments that occupy sequence space (never sent in reply to an ACK, so no ACK war can start) and are
    // not RFC 5961 challenge ACKs: the challenge budget (here about 20/s; 5 per connection) must not
    // silence them.
    let cfg = Config { challenge_acks_per_sec: Some(20), ..config(SERVER_MAC) };
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let mut peers = Vec::new();
    for port in 0..10u16 {
        rig.peer_port(43_000 + port);
        let mut p = PeerConn::open_to_server(&mut rig, SynOpts::FULL);
        p.send(&mut rig, b"abc");
        peers.push(p);
    }
    let mut acks = 0;
    for _round in 0..8 {
        for (i, p) in peers.iter_mut().enumerate() {
            rig.peer_port(43_000 + i as u16);
            // The same 3 bytes again (the peer never saw our ACK).
            let mut s = p.seg(&rig, ACK | support::frames::PSH);
            s.seq = p.seq.wrapping_sub(3);
            s.payload = b"abc".to_vec();
            let out = rig.send(&s);
            acks += out.iter().filter(|o| o.flags == ACK && o.ack == p.seq).count();
        }
    }
    assert_eq!(acks, 80, "every duplicate is acknowledged");
    let got: Vec<Vec<u8>> = rig.ep.app().opened().iter().map(|id| rig.ep.app().received(*id)).collect();
    assert!(got.iter().all(|g| g == b"abc"), "duplicates are never delivered twice");
    // The challenge budget (at least 10 this second) is intact: the ten in-window RSTs are all challenged.
    let mut challenged = 0;
    for (i, p) in peers.iter_mut().enumerate() {
        rig.peer_port(43_000 + i as u16);
        let s = rig.seg(RST, p.seq.wrapping_add(7), 0);
        challenged += rig.send(&s).len();
    }
    assert_eq!(challenged, 10);
}

#[test]
fn rfc9293_3_10_7_4_a_retransmitted_fin_in_time_wait_is_acknowledged_whatever_the_challenge_ack_budget() {
    let cfg = Config { challenge_acks_per_sec: Some(20), ..config(SERVER_MAC) };
    let app = Recorder::new(support::recorder::Script { close_on_open: true, ..Default::default() });
    let mut rig = Rig::server_with(cfg, app);
    let mut peers = Vec::new();
    for port in 0..10u16 {
        rig.peer_port(44_000 + port);
        let mut p = PeerConn::open_to_server(&mut rig, SynOpts::FULL);
        p.ack_now(&mut rig);
        p.close(&mut rig);
        assert!(rig.in_time_wait(), "the server closed first");
        peers.push(p);
    }
    let mut acks = 0;
    for (i, p) in peers.iter_mut().enumerate() {
        rig.peer_port(44_000 + i as u16);
        for _ in 0..3 {
            let mut s = p.seg(&rig, support::frames::FIN | ACK);
            s.seq = p.seq.wrapping_sub(1);
            acks += rig.send(&s).iter().filter(|o| o.flags == ACK && o.ack == p.seq).count();
        }
    }
    assert_eq!(acks, 30, "our lost last ACK is sent again each time the FIN comes back");
}

#[test]
fn rsts_provoked_on_a_connection_are_limited_for_the_whole_endpoint_too() {
    // SYN-SENT and SYN-RECEIVED answer an unacceptable ACK with <SEQ=SEG.ACK><CTL=RST>: an off-path attacker who
    // knows the tuple can provoke those at will, so they share the endpoint's RST budget (100/s, bursts of 10).
    for simultaneous in [false, true] {
        let cfg = Config { rst_per_sec: 100, ..config(support::frames::CLIENT_MAC) };
        let mut rig = Rig::client_with(cfg, Recorder::default());
        let (id, _syn) = rig.connect();
        if simultaneous {
            let s = rig.seg(SYN, 777, 0);
            assert_eq!(rig.send(&s)[0].flags, SYN | ACK);
            assert_eq!(rig.ep.state(id), Some(State::SynReceived));
        }
        let mut rsts = 0;
        for i in 0..50u32 {
            let s = rig.seg(ACK, 778, 9_999 + i);
            rsts += rig.send(&s).iter().filter(|o| o.flags == RST).count();
        }
        assert_eq!(rsts, 10, "simultaneous={simultaneous}");
        assert_eq!(rig.ep.stats().rsts_rate_limited, 40);
    }
}

/// A handshake whose ACK carries the client's first data (a request), then the client's exact RST: the server
/// holds nothing of the connection afterwards. Returns the rig, the ACK and the SYN-ACK's sequence number.
fn opened_with_data_then_reset(cfg: Config) -> (Rig<Recorder>, Seg, u32) {
    let mut rig = Rig::server_with(cfg, Recorder::default());
    let syn = rig.seg(SYN, 1000, 0);
    let sa = rig.send(&syn).remove(0);
    let ack = rig.seg(ACK, 1001, sa.seq.wrapping_add(1)).with_payload(b"GET / HTTP/1.1\r\n\r\n");
    rig.send(&ack);
    let id = rig.ep.app().opened()[0];
    assert_eq!(rig.ep.app().received(id), b"GET / HTTP/1.1\r\n\r\n");
    let rst = rig.seg(RST, 1001 + 18, 0);
    rig.send(&rst);
    assert_eq!(rig.ep.live_connections(), 0, "the exact RST closed it");
    (rig, ack, sa.seq)
}

#[test]
fn rfc4987_3_6_a_replayed_handshake_ack_does_not_reopen_its_connection_within_the_cookies_lifetime() {
    // Cookies keep no state per handshake, so without a memory of used cookies a copy of the ACK that opened a
    // connection (a network duplicate, or a capture replayed by someone who can spoof the client) would validate
    // again for the rest of the cookie's 64–128 s and run the request again (found by a black-box probe: an HTTP
    // request re-served 1 s, 10 s, 60 s and 120 s later). The replay filter refuses it like any segment of a dead
    // connection: an RST at SEG.ACK, nothing opened, counted.
    let (mut rig, ack, _) = opened_with_data_then_reset(config(SERVER_MAC));
    for after in [1, 10, 30, 60] {
        rig.now = T0 + Duration::from_secs(after);
        let out = rig.send(&ack);
        assert_eq!(out.len(), 1, "{after} s: {out:?}");
        assert_eq!((out[0].flags, out[0].seq), (RST, ack.ack), "{after} s");
        assert_eq!(rig.ep.live_connections(), 0, "{after} s");
    }
    assert_eq!(rig.ep.app().opened().len(), 1, "opened once, never again");
    let stats = rig.ep.stats();
    assert_eq!(stats.dropped[Drop::CookieReplayed as usize], 4);
    assert_eq!((stats.cookies_accepted, stats.cookies_rejected), (1, 0));
    // A new handshake on the same tuple (a new client ISN, so a new cookie) is served as usual.
    let syn = rig.seg(SYN, 50_000, 0);
    let sa = rig.send(&syn).remove(0);
    assert!(rig.send(&rig.seg(ACK, 50_001, sa.seq.wrapping_add(1))).is_empty());
    assert_eq!(rig.ep.live_connections(), 1);
}

#[test]
fn design_without_the_replay_filter_a_late_duplicate_recreates_the_connection_and_the_limits_bound_it() {
    // With the filter off (`cookie_replay_entries: 0`), or once a busy server's filter has forgotten the record,
    // a duplicate of the opening ACK re-creates the connection ("a ghost", found by the endpoint fuzz target;
    // Linux shares this under SYN cookies). A desynchronised ghost then trades ACKs with its peer (each finds the
    // other's numbers unacceptable); the per-connection challenge-ACK limit ends the exchange, as this test checks.
    let off = Config { cookie_replay_entries: 0, ..config(SERVER_MAC) };
    let (mut rig, ack, _) = opened_with_data_then_reset(off.clone());
    rig.now += Duration::from_secs(5);
    rig.send(&ack);
    assert_eq!(rig.ep.live_connections(), 1, "without the filter the connection is back");
    let mut rig = Rig::server_with(off, Recorder::default());
    let syn = rig.seg(SYN, 1000, 0);
    let sa = rig.send(&syn).remove(0);
    let ack = rig.seg(ACK, 1001, sa.seq.wrapping_add(1));
    assert!(rig.send(&ack).is_empty());
    let id = rig.ep.app().opened()[0];
    let (_, out) = rig.act(id, |c| {
        c.send(b"lost in flight");
        c.abort();
    });
    assert_eq!(out.last().map(|s| s.flags), Some(RST));
    assert_eq!(rig.ep.live_connections(), 0);
    // The client never saw the data; the RST (at our SND.NXT) is in its window but not at RCV.NXT, so it sends a
    // challenge ACK — byte for byte the handshake's ACK.
    rig.now += Duration::from_secs(5);
    assert!(rig.send(&ack).is_empty());
    assert_eq!(rig.ep.live_connections(), 1, "the connection is back");
    // The client, meanwhile, got the 14 bytes: it acknowledges them, beyond the ghost's SND.NXT. The ghost's
    // challenge ACKs and the client's duplicate ACKs answer each other until the limits stop them.
    let mut from_client = rig.seg(ACK, 1001, sa.seq.wrapping_add(15));
    let mut exchanged = 0;
    for _ in 0..100 {
        let out = rig.send(&from_client);
        let Some(reply) = out.first() else { break };
        exchanged += 1;
        // The client finds SEG.SEQ below its RCV.NXT: it answers with its own ACK again.
        from_client = rig.seg(ACK, reply.ack, sa.seq.wrapping_add(15));
    }
    assert_eq!(exchanged, 5, "bounded by challenge_acks_per_conn");
    assert_eq!(rig.ep.state(rig.ep.app().opened()[1]), Some(State::Established));
}

/// RFC 9293 MUST-57: a SYN addressed to a broadcast or multicast address is silently discarded. Like Linux, so is
/// any segment that is not unicast to us: to an Ethernet group address or another host's MAC, or to an IP
/// address no host has (multicast, broadcast, unspecified, loopback). Nothing answers, not even an RST.
#[test]
fn rfc9293_must_57_segments_not_unicast_to_us_are_discarded_unanswered() {
    use std::net::IpAddr;
    use support::frames::{build, CLIENT_MAC};
    let mut rig = Rig::server();
    let seg =
        |dst: Option<IpAddr>, flags: u8| Seg { dst, ..Seg::c2s(flags, 1000, if flags & ACK != 0 { 5 } else { 0 }) };
    let group_macs = [[0xff; 6], [0x01, 0x00, 0x5e, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 0x99]];
    let mut sent = 0;
    for mac in group_macs {
        for flags in [SYN, ACK, RST] {
            assert!(rig.send_raw(&build(&seg(None, flags), CLIENT_MAC, mac)).is_empty(), "{mac:x?} {flags:#x}");
            sent += 1;
        }
    }
    let bad_ips: [IpAddr; 7] = [
        "255.255.255.255".parse().unwrap(),
        "224.0.0.1".parse().unwrap(),
        "0.0.0.0".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        "ff02::1".parse().unwrap(),
        "::".parse().unwrap(),
        "::1".parse().unwrap(),
    ];
    for ip in bad_ips {
        let mut s = seg(Some(ip), SYN);
        if ip.is_ipv6() {
            s.src = Some("fd00::2".parse().unwrap());
        }
        assert!(rig.send_raw(&build(&s, CLIENT_MAC, SERVER_MAC)).is_empty(), "{ip}");
        sent += 1;
    }
    // LAND: from the address it is sent to, port to the same port.
    let land =
        Seg { src: Some(support::frames::SERVER_IP.into()), sport: support::frames::SERVER_PORT, ..seg(None, SYN) };
    assert!(rig.send_raw(&build(&land, CLIENT_MAC, SERVER_MAC)).is_empty(), "LAND");
    sent += 1;
    let st = rig.ep.stats();
    assert_eq!(st.dropped[xdptcp::tcp::stats::Drop::NotUnicast as usize], sent);
    assert_eq!((st.syns_received, st.rsts_sent, st.cookies_sent), (0, 0, 0));
    // The same SYN unicast to us is answered.
    assert_eq!(rig.send_raw(&build(&seg(None, SYN), CLIENT_MAC, SERVER_MAC)).len(), 1);
}

#[test]
fn a_full_pool_of_next_hops_refuses_the_connection_that_needs_one_more_with_rst() {
    // A TCB names its peer's MAC and VLAN by a two-byte handle (`tcp::next_hops`): 65 536 next hops in use at
    // once, each a distinct MAC, fill the pool. A connection from one more MAC is refused like one beyond
    // `max_conns` (RST, counted); one from a MAC already in use is not; and once a connection closes, its
    // hop's place goes to the new MAC.
    let mut rig = Rig::server();
    let peer_ip = |i: u32| std::net::IpAddr::from([10, 77, 1 + (i / 60_000) as u8, 2]);
    let mac = |i: u32| [0x02, 0x10, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
    let mut first = None;
    for i in 0..65_536u32 {
        rig.ends.peer = std::net::SocketAddr::new(peer_ip(i), 1024 + (i % 60_000) as u16);
        rig.ends.peer_mac = mac(i);
        let p = PeerConn::open_to_server(&mut rig, SynOpts::FULL);
        if i == 0 {
            first = Some((rig.ends, p));
        }
    }
    assert_eq!(rig.ep.live_connections(), 65_536);
    assert_eq!(rig.ep.stats().conns_refused_full, 0);
    let newcomer = |rig: &mut Rig, m: [u8; 6], port: u16| {
        rig.ends.peer = std::net::SocketAddr::new(peer_ip(0x30000), port);
        rig.ends.peer_mac = m;
        let (a, sa) = syn(rig, port, 77);
        ack(rig, port, &a, &sa.expect("SYNs are answered whatever the pool holds"))
    };
    let out = newcomer(&mut rig, mac(0x3_0000), 50_000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, RST, "{out:?}");
    assert_eq!((rig.ep.stats().conns_refused_full, rig.ep.live_connections()), (1, 65_536));
    // A MAC that has a hop already needs no new one.
    assert!(newcomer(&mut rig, mac(5), 50_001).is_empty());
    assert_eq!(rig.ep.live_connections(), 65_537);
    // The first connection leaves (its peer resets it): its hop, used by nobody now, gives its place.
    let (ends, p) = first.unwrap();
    rig.ends = ends;
    let rst = rig.seg(RST, p.seq, 0);
    assert!(rig.send(&rst).is_empty());
    assert!(newcomer(&mut rig, mac(0x3_0000), 50_002).is_empty());
    assert_eq!((rig.ep.stats().conns_refused_full, rig.ep.live_connections()), (1, 65_537));
}
