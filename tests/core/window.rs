//! The receive window as flow control between an app and its peer, and the idle timeout: the window tells the
//! peer what the app can take (RFC 9293 §3.8.6), is never shrunk (§3.8.6.2.2), reopens with an update, and a
//! connection nobody uses is eventually reset.

use crate::support;

use std::time::Duration;
use support::frames::RST;
use support::net::{Dir, Net};
use support::recorder::{Recorder, Script};
use xdptcp::app::CloseReason;
use xdptcp::tcp::State;

/// An echo server whose client stops reading (a bounded reader whose buffer is full): the client's window
/// closes, the server's send queue fills, its window closes, the client stops sending; when the client reads
/// again both windows reopen and every byte comes back, without a single byte being sent beyond a window or
/// dropped as out of order.
#[test]
fn rfc9293_3_8_6_echo_back_pressure_closes_the_window_and_it_reopens() {
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 253) as u8).collect();
    let client = Recorder::new(Script { budget: Some(100_000), ..Script::default() });
    let server = Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    let id = net.connect();
    net.drive();
    // Queue the data from outside a callback, in pieces the send queue takes.
    let mut sent = 0;
    for _ in 0..200 {
        let mut cs = xdptcp::sink::VecSink::new();
        sent += net.client.send(net.now, id, &data[sent..], &mut cs);
        net.inject(Dir::ClientToServer, cs.take());
        net.drive_for(Duration::from_millis(300));
        if sent == data.len() {
            break;
        }
        if sent > 250_000 {
            break; // 100 000 read by the client, 64 KiB queued at the server, 64 KiB in its window: blocked.
        }
    }
    let sid = net.server.app().opened()[0];
    let s_stats = net.server.stats();
    assert_eq!(s_stats.dropped[xdptcp::tcp::stats::Drop::OutOfOrder as usize], 0, "nothing was sent past a window");
    assert!(sent < data.len(), "the client could not push everything while nobody read: {sent}");
    // Up to its budget, less what a window field scaled by 2^7 cannot say.
    let read = net.client.app().received(id).len();
    assert!((100_000 - 127..=100_000).contains(&read), "the client read its budget: {read}");
    // The server's last ACKs announced a zero window.
    let last = net.segs(Dir::ServerToClient).into_iter().rev().find(|s| s.payload.is_empty() && s.flags & RST == 0);
    assert_eq!(
        last.map(|s| s.window),
        Some(0),
        "{}",
        net.trace().lines().rev().take(10).collect::<Vec<_>>().join("\n")
    );
    // Now the client reads: everything flows.
    net.client.app_mut().script.budget = None;
    for _ in 0..400 {
        let mut cs = xdptcp::sink::VecSink::new();
        if sent < data.len() {
            sent += net.client.send(net.now, id, &data[sent..], &mut cs);
        } else {
            net.client.close(net.now, id, &mut cs);
        }
        net.inject(Dir::ClientToServer, cs.take());
        net.drive_for(Duration::from_millis(500));
        if net.client.app().closed(id).is_some() {
            break;
        }
    }
    let back = net.client.app().received(id);
    assert!(back == data, "echo intact: {} of {} bytes back", back.len(), data.len());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Normal));
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::Normal));
    let out_of_order =
        |e: &xdptcp::tcp::Endpoint<Recorder>| e.stats().dropped[xdptcp::tcp::stats::Drop::OutOfOrder as usize];
    assert_eq!((out_of_order(&net.client), out_of_order(&net.server)), (0, 0));
}

/// Every ACK the server sends keeps the right edge of its window (SEG.ACK + SEG.WND) where it was or moves it
/// right, while an echo app's room goes up and down — up to the granularity of window scaling: a scaled field is
/// rounded down, which may retract the edge by less than 2^scale bytes (RFC 7323 §2.4).
#[test]
fn rfc9293_3_8_6_2_2_the_window_is_never_shrunk() {
    let data: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
    let client = Recorder::new(Script { on_open_send: data, close_on_open: true, ..Script::default() });
    let server = Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() });
    let mut net = Net::new(client, server);
    net.connect();
    net.drive_for(Duration::from_secs(30));
    let mut right: Option<u32> = None;
    let mut scale = 0u32;
    for s in net.segs(Dir::ServerToClient) {
        if s.flags & support::frames::SYN != 0 {
            scale = u32::from(s.wscale.unwrap_or(0));
            continue;
        }
        if s.flags & RST != 0 {
            continue;
        }
        let edge = s.ack.wrapping_add(u32::from(s.window) << scale);
        if let Some(r) = right {
            let moved = edge.wrapping_sub(r) as i32;
            assert!(moved > -(1 << scale), "the right edge moved left by {} (scale {scale}): {r} -> {edge}", -moved);
        }
        right = Some(edge);
    }
    assert!(right.is_some());
}

/// A connection with nothing in flight and nothing heard for the idle timeout is reset; activity keeps it.
#[test]
fn idle_connection_is_reset_after_the_idle_timeout_and_activity_keeps_it() {
    let mut net = Net::new(Recorder::default(), Recorder::default());
    let id = net.connect();
    net.drive();
    let sid = net.server.app().opened()[0];
    let idle = net.server.config().idle_timeout.expect("on by default");
    // Traffic every half timeout keeps the connection for three timeouts.
    for _ in 0..6 {
        net.drive_for(idle / 2);
        let mut cs = xdptcp::sink::VecSink::new();
        assert_eq!(net.client.send(net.now, id, b"ping", &mut cs), 4);
        net.inject(Dir::ClientToServer, cs.take());
        net.drive();
    }
    assert_eq!(net.server.state(sid), Some(State::Established));
    // Then silence: after the idle timeout both sides are gone (the server's RST resets the client).
    net.drive_for(idle + Duration::from_secs(1));
    assert_eq!(net.server.app().closed(sid), Some(CloseReason::TimedOut));
    assert_eq!(net.server.stats().idle_timeouts, 1);
    assert!(net.client.app().closed(id).is_some(), "{}", net.trace());
    assert_eq!(net.server.live_connections(), 0);
}

/// Peers that stop reading cannot take the server's memory: all send queues together hold at most
/// `Config::send_memory` bytes, the echo app's window shrinks to what is left, and once 7/8 of it is in use a
/// connection stuck behind a zero window is reset at its next probe (RFC 6429 allows aborting persist-state
/// connections under resource pressure; without pressure MUST-66 keeps them, see timers.rs).
#[test]
fn rfc6429_send_memory_is_bounded_and_zero_window_connections_are_shed_under_pressure() {
    use support::frames::{CLIENT_MAC, SERVER_MAC};
    use support::net::config;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // The client offers 1000 bytes of window, reads them, then keeps its window shut (an attacker that answers
    // probes forever).
    let ccfg = || xdptcp::tcp::Config { rcv_wnd: 1000, window_scale: 0, ..config(CLIENT_MAC) };
    let client = Recorder::new(Script { budget: Some(1000), ..Script::default() });
    let server = Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() });
    let scfg = xdptcp::tcp::Config { send_memory: 70_000, ..config(SERVER_MAC) };
    let mut net = Net::with_configs(ccfg(), client, scfg, server);
    let id = net.connect();
    net.drive();
    let mut sent = 0;
    for _ in 0..100 {
        let mut cs = xdptcp::sink::VecSink::new();
        sent += net.client.send(net.now, id, &data[sent..], &mut cs);
        net.inject(Dir::ClientToServer, cs.take());
        net.drive_for(Duration::from_millis(200));
        if net.server.stats().persist_aborts > 0 {
            break;
        }
    }
    let st = net.server.stats();
    assert_eq!(st.persist_aborts, 1, "the stuck connection was shed: {}", net.trace());
    assert_eq!(net.client.app().closed(id), Some(CloseReason::Reset));
    assert_eq!(net.server.live_connections(), 0);
    // It never held more than the budget (one queue of 64 KiB at most, here capped by the 70 000 bytes).
    let echoed_unread = sent - net.client.app().received(id).len();
    assert!(echoed_unread <= 70_000 + 65_535, "{echoed_unread}");
    // Without pressure the same connection stays, however long: the default budget is far above one queue.
    let client = Recorder::new(Script { budget: Some(1000), ..Script::default() });
    let server = Recorder::new(Script { echo: true, close_on_peer_close: true, ..Script::default() });
    let mut net = Net::with_configs(ccfg(), client, config(SERVER_MAC), server);
    let id = net.connect();
    net.drive();
    let mut cs = xdptcp::sink::VecSink::new();
    net.client.send(net.now, id, &data[..200_000], &mut cs);
    net.inject(Dir::ClientToServer, cs.take());
    for _ in 0..20 {
        net.drive_for(Duration::from_secs(60));
    }
    assert_eq!(net.server.stats().persist_aborts, 0);
    assert_eq!(net.server.live_connections(), 1, "MUST-66: a peer that answers probes keeps its connection");
}

/// Bytes held out of order that the app refused once the hole filled (it had no room then) are offered again on
/// the peer's next segment, a bare ACK, once the app has room: the peer was told by SACK that they are held and
/// will not send them before its RTO.
#[test]
fn rfc9293_3_10_7_4_held_bytes_the_app_refused_are_offered_again_on_the_next_ack() {
    use support::frames::{ACK, PSH, SERVER_MAC};
    use support::net::config;
    use support::peer::{PeerConn, SynOpts};
    use support::rig::Rig;
    let app = Recorder::new(Script { budget: Some(700), ..Script::default() });
    let mut rig = Rig::server_with(config(SERVER_MAC), app);
    let mut p = PeerConn::open_to_server(&mut rig, SynOpts::FULL);
    let id = rig.ep.app().opened()[0];
    let start = p.seq;
    let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut later = p.seg(&rig, ACK | PSH);
    later.seq = start.wrapping_add(500);
    later.payload = data[500..].to_vec();
    p.send_seg(&mut rig, &later);
    let out = p.send(&mut rig, &data[..500]);
    assert_eq!(out.last().map(|s| s.ack), Some(start.wrapping_add(700)), "the app took 700 bytes");
    p.seq = start.wrapping_add(1000);
    // The app can read on; the peer's next segment is a bare ACK from the end of what it sent.
    rig.ep.app_mut().script.budget = Some(1000);
    let out = p.ack_now(&mut rig);
    let got = rig.ep.app().received(id);
    assert_eq!(got.len(), 1000, "the rest of the held bytes");
    assert!(got == data, "in order");
    assert_eq!(out.last().map(|s| s.ack), Some(start.wrapping_add(1000)), "and an ACK for them: {out:?}");
}
