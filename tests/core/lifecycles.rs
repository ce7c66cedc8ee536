//! Whole lifecycles between two endpoints of ours in virtual time, for every lifecycle shape the apps produce:
//! `close` (the server closes at once), `echo`, `http` keep-alive with two requests, and a server that speaks
//! first and closes. Each shape must complete with its stream intact, both sides closed normally and nothing left
//! after 2MSL — with no fault, and with the loss, the duplication or the delay (reordering) of every single
//! segment in turn. Also: both close orders with data both ways, half-close both ways, back-pressure, aborts, send
//! buffer limits, the peer's window, IPv6.

use crate::support;

use std::time::Duration;
use support::frames::{Seg, CLIENT_IP6, SERVER_IP6, SERVER_PORT};
use support::net::{Dir, Fate, Net};
use support::recorder::{Event, Recorder, Script};
use xdptcp::app::{App, CloseApp, CloseReason, EchoApp, HttpApp};
use xdptcp::sink::VecSink;
use xdptcp::tcp::State;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A lifecycle shape: how to build the pair, and what the client must receive.
struct Shape<S: App> {
    name: &'static str,
    make: fn() -> Net<Recorder, S>,
    expect: Vec<u8>,
}

fn close_shape() -> Shape<CloseApp> {
    Shape {
        name: "close",
        make: || {
            let client = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
            Net::new(client, CloseApp)
        },
        expect: Vec::new(),
    }
}

fn echo_shape() -> Shape<EchoApp> {
    Shape {
        name: "echo",
        make: || {
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
            let client = Recorder::new(Script { on_open_send: data, close_on_open: true, ..Script::default() });
            Net::new(client, EchoApp)
        },
        expect: (0..3000u32).map(|i| (i * 7 % 251) as u8).collect(),
    }
}

fn http_shape() -> Shape<HttpApp> {
    let one = HttpApp::default().response_len();
    Shape {
        name: "http keep-alive, 2 requests",
        make: || {
            let reply_len = HttpApp::default().response_len();
            let client =
                Recorder::new(Script { exchanges: vec![GET.to_vec(), GET.to_vec()], reply_len, ..Script::default() });
            Net::new(client, HttpApp::default())
        },
        expect: vec![0; 2 * one], // checked by length and content below
    }
}

fn server_first_shape() -> Shape<Recorder> {
    Shape {
        name: "server speaks first and closes",
        make: || {
            let server = Recorder::new(Script {
                on_open_send: b"220 hello, and goodbye".to_vec(),
                close_on_open: true,
                ..Script::default()
            });
            let client = Recorder::new(Script { close_on_peer_close: true, ..Script::default() });
            Net::new(client, server)
        },
        expect: b"220 hello, and goodbye".to_vec(),
    }
}

/// How a faulty lifecycle must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Stream intact, both sides closed normally, nothing left after 2MSL.
    Complete,
    /// The stateless listener never saw the handshake's ACK and the client, waiting for the server to speak, sends
    /// nothing more: it stays ESTABLISHED (until its app gives up); the server holds nothing.
    ClientWaitsForever,
    /// The client's first segment after the SYN-ACK was lost or overtaken, and the segments behind it carry a
    /// sequence number that no cookie validates: each gets <SEQ=SEG.ACK><CTL=RST>, which resets the client.
    ClientReset,
}

/// The documented exceptions of the stateless listener (the design's choice, as Linux under SYN cookies): only
/// the client's first segment after the SYN-ACK (the third on the wire) can complete the handshake.
fn expected(shape: &str, k: usize, fate: Fate) -> Outcome {
    match (shape, k, fate) {
        ("close" | "server speaks first and closes", 2, Fate::Drop) => Outcome::ClientWaitsForever,
        ("echo", 2, Fate::Drop | Fate::Delay(_)) => Outcome::ClientReset,
        _ => Outcome::Complete,
    }
}

/// Runs one lifecycle of `shape` with `fate` applied to the `k`-th segment (both directions counted together);
/// returns the number of segments on the wire, or an error describing what went wrong.
fn run<S: App>(shape: &Shape<S>, fault: Option<(usize, Fate)>, want: Outcome) -> Result<usize, String> {
    let mut net = (shape.make)();
    let mut n = 0usize;
    net.set_filter(move |_, _, _| {
        n += 1;
        match fault {
            Some((k, f)) if k == n - 1 => f,
            _ => Fate::Deliver,
        }
    });
    let id = net.connect();
    net.drive_for(Duration::from_secs(60));
    let why = |what: &str, net: &Net<Recorder, S>| format!("{} / {fault:?}: {what}\n{}", shape.name, net.trace());
    match want {
        Outcome::ClientWaitsForever => {
            let ok = net.client.state(id) == Some(State::Established)
                && net.server.live_connections() == 0
                && net.log.iter().all(|(_, _, s)| s.flags & support::frames::RST == 0);
            return if ok { Ok(net.log.len()) } else { Err(why("expected the client to wait in ESTABLISHED", &net)) };
        }
        Outcome::ClientReset => {
            net.drive_for(Duration::from_secs(300));
            let ok = net.client.app().closed(id) == Some(CloseReason::Reset)
                && net.client.live_connections() + net.server.live_connections() == 0;
            return if ok { Ok(net.log.len()) } else { Err(why("expected the client to be reset", &net)) };
        }
        Outcome::Complete => {}
    }
    let got = net.client.app().received(id);
    let want_ok = if shape.name.starts_with("http") {
        let one = HttpApp::default().response_len();
        got.len() == 2 * one && got.starts_with(b"HTTP/1.1 200 OK\r\n") && got[one..].starts_with(b"HTTP/1.1 200 OK")
    } else {
        got == shape.expect
    };
    if !want_ok {
        return Err(why(&format!("client received {} bytes, not the expected stream", got.len()), &net));
    }
    if net.client.app().closed(id) != Some(CloseReason::Normal) {
        return Err(why(&format!("client closed as {:?}", net.client.app().closed(id)), &net));
    }
    let st = net.server.stats();
    if st.conns_closed != 1 || st.conns_reset + st.conns_aborted + st.conns_timed_out != 0 {
        return Err(why(&format!("server: {st:?}"), &net));
    }
    let segments = net.log.len();
    net.drive_for(Duration::from_secs(300));
    let left = net.client.live_connections()
        + net.server.live_connections()
        + net.client.time_wait_len()
        + net.server.time_wait_len();
    if left != 0 {
        return Err(why("state left after 2MSL", &net));
    }
    Ok(segments)
}

fn every_fault<S: App>(shape: Shape<S>) {
    let baseline = run(&shape, None, Outcome::Complete).unwrap_or_else(|e| panic!("{e}"));
    assert!(baseline >= 5, "{}: {baseline} segments", shape.name);
    let mut failures = Vec::new();
    for k in 0..baseline {
        for fate in [Fate::Drop, Fate::Duplicate(Duration::from_millis(3)), Fate::Delay(Duration::from_millis(3))] {
            if let Err(e) = run(&shape, Some((k, fate)), expected(shape.name, k, fate)) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} faulty lifecycles failed:\n{}",
        failures.len(),
        3 * baseline,
        failures.join("\n\n")
    );
}

#[test]
fn rfc9293_close_app_lifecycle_survives_loss_duplication_and_reordering_of_every_segment() {
    every_fault(close_shape());
}

#[test]
fn rfc9293_echo_lifecycle_survives_loss_duplication_and_reordering_of_every_segment() {
    every_fault(echo_shape());
}

#[test]
fn rfc9293_http_keep_alive_lifecycle_survives_loss_duplication_and_reordering_of_every_segment() {
    every_fault(http_shape());
}

#[test]
fn rfc9293_server_first_close_lifecycle_survives_loss_duplication_and_reordering_of_every_segment() {
    every_fault(server_first_shape());
}

/// Data both ways, then one side closes first; the other closes when it sees the FIN.
fn close_order(client_first: bool) {
    let big = |seed: u32, n: u32| -> Vec<u8> { (0..n).map(|i| ((i ^ seed) % 253) as u8).collect() };
    let c_data = big(1, 5000);
    let s_data = big(2, 7000);
    let client =
        Recorder::new(Script { on_open_send: c_data.clone(), close_on_peer_close: !client_first, ..Script::default() });
    let server =
        Recorder::new(Script { on_open_send: s_data.clone(), close_on_peer_close: client_first, ..Script::default() });
    let mut net = Net::new(client, server);
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    assert_eq!(net.client.app().received(id), s_data);
    assert_eq!(net.server.app().received(sid), c_data);
    let mut sink = VecSink::new();
    if client_first {
        net.client.close(net.now, id, &mut sink);
        net.inject(Dir::ClientToServer, sink.take());
    } else {
        net.server.close(net.now, sid, &mut sink);
        net.inject(Dir::ServerToClient, sink.take());
    }
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal), "{}", net.trace());
    let (first, second) = if client_first { (&net.client, &net.server) } else { (&net.server, &net.client) };
    assert_eq!(first.time_wait_len(), 1, "the side that closed first holds TIME-WAIT");
    assert_eq!(second.time_wait_len(), 0);
}

#[test]
fn rfc9293_3_6_client_closes_first_after_data_both_ways() {
    close_order(true);
}

#[test]
fn rfc9293_3_6_server_closes_first_after_data_both_ways() {
    close_order(false);
}

#[test]
fn rfc9293_3_6_simultaneous_close_with_data_in_flight_both_ways() {
    let client = Recorder::new(Script { on_open_send: vec![1; 4000], close_on_open: true, ..Script::default() });
    let server = Recorder::new(Script { on_open_send: vec![2; 4000], close_on_open: true, ..Script::default() });
    let mut net = Net::new(client, server);
    net.latency = Duration::from_millis(5);
    let id = net.connect();
    net.drive_for(Duration::from_secs(5));
    let sid = net.server.app().opened()[0];
    assert_eq!(net.client.app().received(id), vec![2; 4000]);
    assert_eq!(net.server.app().received(sid), vec![1; 4000]);
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal), "{}", net.trace());
    assert_eq!(net.client.time_wait_len() + net.server.time_wait_len(), 2, "both closed actively\n{}", net.trace());
}

#[test]
fn rfc9293_3_6_half_close_the_server_closes_and_the_client_keeps_sending() {
    let server = Recorder::new(Script { close_on_open: true, ..Script::default() });
    let mut net = Net::new(Recorder::default(), server);
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    assert_eq!(net.client.state(id), Some(State::CloseWait));
    assert_eq!(net.server.state(sid), Some(State::FinWait2));
    let mut sink = VecSink::new();
    for chunk in [b"after".as_slice(), b" your", b" FIN"] {
        assert_eq!(net.client.send(net.now, id, chunk, &mut sink), chunk.len());
        net.inject(Dir::ClientToServer, sink.take());
        net.drive();
    }
    assert_eq!(net.server.app().received(sid), b"after your FIN");
    net.client.close(net.now, id, &mut sink);
    net.inject(Dir::ClientToServer, sink.take());
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal));
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal));
    assert_eq!(net.server.time_wait_len(), 1);
}

#[test]
fn back_pressure_an_app_that_takes_nothing_then_everything_loses_no_byte() {
    // The server's app refuses data for 20 s (nothing is acknowledged; the client retransmits with backoff),
    // then takes everything: the stream arrives whole and in order.
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 241) as u8).collect();
    let client = Recorder::new(Script { on_open_send: data.clone(), close_on_open: true, ..Script::default() });
    let server = Recorder::new(Script { take_at_most: Some(0), close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    let id = net.connect();
    net.drive_for(Duration::from_secs(20));
    let sid = net.server.app().opened()[0];
    assert!(net.server.app().received(sid).is_empty());
    assert_eq!(net.client.state(id), Some(State::FinWait1), "the client waits, retransmitting");
    net.server.app_mut().script.take_at_most = None;
    net.drive_for(Duration::from_secs(130));
    assert_eq!(net.server.app().received(sid), data, "{}", net.trace());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal));
    // An app taking a few bytes at a time works too.
    let client = Recorder::new(Script { on_open_send: data.clone(), close_on_open: true, ..Script::default() });
    let server = Recorder::new(Script { take_at_most: Some(7), close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    net.connect();
    net.drive_for(Duration::from_secs(600));
    let sid = net.server.app().opened()[0];
    assert_eq!(net.server.app().received(sid), data);
}

#[test]
fn rfc9293_3_10_4_abort_sends_rst_and_the_peer_sees_reset() {
    let server = Recorder::new(Script { abort_on_open: true, ..Script::default() });
    let client = Recorder::new(Script { on_open_send: b"hi".to_vec(), ..Script::default() });
    let mut net = Net::new(client, server);
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Aborted));
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Reset), "{}", net.trace());
    assert_eq!(net.client.live_connections() + net.server.live_connections(), 0);
    assert_eq!(net.server.stats().conns_aborted, 1);
}

#[test]
fn rfc5961_3_2_abort_with_data_in_flight_resets_the_peer_through_a_challenge_ack() {
    // The client sends three segments and aborts at once; the second segment is lost, so its RST (at its SND.NXT)
    // lands inside the server's window but past RCV.NXT: the server answers with a challenge ACK, the client
    // (which has forgotten the connection) answers that with <SEQ=SEG.ACK><CTL=RST>, exactly at RCV.NXT.
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    net.set_filter(|dir, i, _| if dir == Dir::ClientToServer && i == 3 { Fate::Drop } else { Fate::Deliver });
    let mut sink = VecSink::new();
    assert_eq!(net.client.send(net.now, id, &[9; 3000], &mut sink), 3000);
    net.client.abort(net.now, id, &mut sink);
    net.inject(Dir::ClientToServer, sink.take());
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Aborted));
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Reset), "{}", net.trace());
    assert_eq!(net.server.stats().challenge_acks, 1, "{}", net.trace());
    assert_eq!(net.server.app().received(sid).len(), 1448, "only the first segment got through");
}

#[test]
fn send_buffer_bounds_what_an_app_may_queue_and_the_peer_window_bounds_what_flies() {
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    let total: Vec<u8> = (0..1_000_000u32).map(|i| (i % 239) as u8).collect();
    let mut sent = 0;
    let mut sink = VecSink::new();
    let cap = net.client.config().send_buffer as usize;
    let first = net.client.send(net.now, id, &total, &mut sink);
    assert_eq!(first, cap, "the send queue takes its capacity and no more");
    sent += first;
    net.inject(Dir::ClientToServer, sink.take());
    assert_eq!(net.client.send(net.now, id, &total[sent..], &mut sink), 0, "full");
    while sent < total.len() {
        net.drive_for(Duration::from_millis(1));
        sent += net.client.send(net.now, id, &total[sent..], &mut sink);
        net.inject(Dir::ClientToServer, sink.take());
    }
    net.drive();
    assert!(net.server.app().received(sid) == total, "the megabyte arrived intact");
    // No data segment ever went beyond the right edge of the window the server had announced.
    let mut edge: Option<u32> = None;
    for (_, dir, s) in &net.log {
        match dir {
            Dir::ServerToClient if s.has(support::frames::ACK) => {
                let e = s.ack.wrapping_add(u32::from(s.window) << 7);
                edge = Some(edge.map_or(e, |old| if (e.wrapping_sub(old) as i32) > 0 { e } else { old }));
            }
            Dir::ClientToServer if !s.payload.is_empty() => {
                let end = s.seq.wrapping_add(s.payload.len() as u32);
                let edge = edge.expect("the server announced a window first");
                assert!((end.wrapping_sub(edge) as i32) <= 0, "data past the window: {s:?}");
            }
            _ => {}
        }
    }
}

#[test]
fn ipv6_echo_lifecycle_with_time_wait_in_the_v6_table() {
    let client = Recorder::new(Script { on_open_send: b"over v6".to_vec(), close_on_open: true, ..Script::default() });
    let mut net = Net::new(client, EchoApp);
    let id = net.connect_addrs((CLIENT_IP6, 40_000).into(), (SERVER_IP6, SERVER_PORT).into());
    net.drive();
    assert_eq!(net.client.app().received(id), b"over v6", "{}", net.trace());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal));
    assert!(net.log.iter().all(|(_, _, s)| s.src.is_some_and(|a| a.is_ipv6())), "every frame is IPv6");
    let syn: &Seg = &net.segs(Dir::ClientToServer)[0];
    assert_eq!(syn.mss, Some(1440), "the IPv6 MSS is 20 bytes below IPv4's");
    assert!(net.client.in_time_wait((CLIENT_IP6, 40_000).into(), (SERVER_IP6, SERVER_PORT).into()));
    net.drive_for(Duration::from_secs(61));
    assert_eq!(net.client.time_wait_len(), 0);
    assert!(net.client.app().events.iter().any(|e| matches!(e, Event::PeerClose(_))));
}

#[test]
fn close_in_syn_sent_finishes_the_handshake_then_sends_fin() {
    // RFC 9293 §3.10.4 would delete a SYN-SENT TCB on CLOSE; the core's choice is to let the handshake finish and
    // close normally (the peer sees an ordinary short connection, and the load generator can close at once).
    let mut net =
        Net::new(Recorder::default(), Recorder::new(Script { close_on_peer_close: true, ..Script::default() }));
    let id = net.connect();
    let mut sink = VecSink::new();
    net.client.close(net.now, id, &mut sink);
    assert!(sink.take().is_empty(), "nothing to send before the SYN-ACK");
    assert_eq!(net.client.state(id), Some(State::SynSent));
    net.drive();
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal), "{}", net.trace());
    let c = net.segs(Dir::ClientToServer);
    assert_eq!(c[1].flags, support::frames::ACK | support::frames::FIN, "the FIN rides on the handshake's ACK");
    // Abort in SYN-SENT sends nothing (the peer knows nothing yet) and forgets the connection.
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let id = net.connect();
    net.client.abort(net.now, id, &mut sink);
    assert!(sink.take().is_empty());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Aborted));
    net.drive();
    // The SYN already on the wire gets its SYN-ACK, answered by <SEQ=SEG.ACK><CTL=RST>.
    let c = net.segs(Dir::ClientToServer);
    assert_eq!(c.last().map(|s| s.flags), Some(support::frames::RST), "{}", net.trace());
    assert_eq!(net.server.live_connections(), 0);
}
