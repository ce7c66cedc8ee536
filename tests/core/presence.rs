//! The tuples an endpoint publishes for a steering program that answers SYNs itself (`tcp::presence`): a tuple
//! is held from the moment its connection exists until it has left both the connection table and TIME-WAIT,
//! so that its SYNs reach the worker (RFC 5961 §4 for a live one, RFC 6191 for one in TIME-WAIT) and nothing
//! else's do. Whole client/server scenarios in virtual time.

use crate::support;

use std::sync::Arc;
use std::time::Duration;
use support::frames::{CLIENT_IP, CLIENT_MAC, CLIENT_PORT, SERVER_IP, SERVER_MAC, SERVER_PORT};
use support::net::{config, Dir, Net};
use support::recorder::{Recorder, Script};
use xdptcp::sink::VecSink;
use xdptcp::tcp::flow::V4Flow;
use xdptcp::tcp::presence::{OwnedCells, Presence};
use xdptcp::tcp::Config;

/// The server's view of the pair's one tuple.
fn tuple() -> V4Flow {
    V4Flow { local: SERVER_IP.octets(), remote: CLIENT_IP.octets(), local_port: SERVER_PORT, remote_port: CLIENT_PORT }
}

fn pair(server: Script, client: Script, scfg: Config) -> (Net<Recorder, Recorder>, Presence) {
    let mut net = Net::with_configs(config(CLIENT_MAC), Recorder::new(client), scfg, Recorder::new(server));
    let p = Presence::new(Arc::new(OwnedCells::new(12)), 0xfeed);
    net.server.set_presence(p.clone());
    (net, p)
}

#[test]
fn rfc5961_4_a_live_connection_is_held_until_it_closes_without_time_wait() {
    // The client closes first: TIME-WAIT is the client's, the server's tuple is free once the close completes.
    let server = Script { close_on_peer_close: true, ..Script::default() };
    let (mut net, p) = pair(server, Script::default(), config(SERVER_MAC));
    assert!(!p.may_hold(&tuple()));
    let id = net.connect();
    net.drive();
    assert!(p.may_hold(&tuple()), "held while ESTABLISHED: {}", net.trace());
    let mut sink = VecSink::new();
    net.client.close(net.now, id, &mut sink);
    net.inject(Dir::ClientToServer, sink.take());
    net.drive_for(Duration::from_secs(1));
    assert_eq!(net.server.stats().live_conns, 0, "{}", net.trace());
    assert!(!p.may_hold(&tuple()), "released when the connection is gone and no TIME-WAIT is kept");
}

#[test]
fn rfc6191_a_tuple_in_the_servers_time_wait_is_held_for_exactly_2msl() {
    let scfg = Config { time_wait: Duration::from_secs(5), ..config(SERVER_MAC) };
    let server = Script { close_on_open: true, ..Script::default() };
    let client = Script { close_on_peer_close: true, ..Script::default() };
    let (mut net, p) = pair(server, client, scfg);
    net.connect();
    net.drive();
    assert_eq!(net.server.time_wait_len(), 1, "{}", net.trace());
    assert!(p.may_hold(&tuple()), "held in TIME-WAIT");
    net.drive_for(Duration::from_millis(4900));
    assert!(p.may_hold(&tuple()), "still held just before 2MSL");
    net.drive_for(Duration::from_millis(200));
    assert_eq!(net.server.time_wait_len(), 0);
    assert!(!p.may_hold(&tuple()), "released when TIME-WAIT ends");
}

#[test]
fn rfc9293_3_10_7_a_reset_connection_is_released() {
    let (mut net, p) = pair(Script::default(), Script::default(), config(SERVER_MAC));
    let id = net.connect();
    net.drive();
    assert!(p.may_hold(&tuple()));
    let mut sink = VecSink::new();
    net.client.abort(net.now, id, &mut sink);
    net.inject(Dir::ClientToServer, sink.take());
    net.drive();
    assert_eq!(net.server.stats().live_conns, 0, "{}", net.trace());
    assert!(!p.may_hold(&tuple()), "released by the RST");
}
