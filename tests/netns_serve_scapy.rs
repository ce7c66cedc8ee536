//! Packet-level behaviour of `xdptcp serve`, probed with scapy from the peer namespace and compared case by case
//! with a plain Linux listener on another port of the same server namespace (tests/scapy/ref_server.py).
//!
//! The probes spoof client addresses nobody owns (`serve_support::scapy::SPOOF4`, `SPOOF6`); the server namespace has static
//! neighbour entries for them (so the Linux reference can answer), and the peer's kernel drops the replies as not
//! its own instead of resetting them. The server namespace answers SYNs with cookies only
//! (`tcp_syncookies=2`) and ignores RST in TIME-WAIT (`tcp_rfc1337=1`): the careful Linux a cookie-only stack
//! with RFC 1337 should match. Each script prints its cases as JSON; one #[test] per group asserts on them and
//! on the server's counters.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod serve_support;

use std::time::Duration;

use serve_support::scapy::{self, Reference};
use serve_support::{Server, PORT};

/// Where the Linux reference listens, by app.
const LINUX_ECHO: u16 = 9080;
const LINUX_HTTP: u16 = 9082;

/// One scapy group's world: topology, xdptcp on PORT with `app`, the Linux reference, spoofing prepared.
struct Bench {
    topo: common::VethPair,
    server: Server,
    _reference: Reference,
    linux_port: u16,
}

impl Bench {
    fn new(prefix: &str, app: &str, extra: &[&str]) -> Bench {
        let topo = serve_support::topology(prefix);
        let ns = &topo.ns_a;
        serve_support::sysctl(ns, "net.ipv4.tcp_syncookies", "2");
        serve_support::sysctl(ns, "net.ipv4.tcp_rfc1337", "1");
        scapy::prepare_spoofing(&topo);
        let port = PORT.to_string();
        let mut args = vec!["--ports", &port, "--app", app, "--time-wait", "2"];
        args.extend_from_slice(extra);
        let server = Server::start(ns, &topo.if_a, &args);
        let (flag, linux_port) = if app == "http" { ("--http", LINUX_HTTP) } else { ("--echo", LINUX_ECHO) };
        let reference = Reference::start_in(ns, &[flag, &linux_port.to_string()]);
        Bench { topo, server, _reference: reference, linux_port }
    }

    fn run(&self, script: &str, extra: &[&str]) -> scapy::Outcome {
        scapy::run_against(&self.topo, script, self.linux_port, extra)
    }

    /// Asserts that every counter the script says it caused shows in the server's stats.
    fn assert_expected_counters(&self, out: &scapy::Outcome) {
        // Every script run here says which counters it moved: a report without them is a broken script.
        let expect = out.report["xdp_expect"].as_object().expect("the script's report names its xdp_expect counters");
        let s = self
            .server
            .wait_stats("the script's counters", Duration::from_secs(5), |s| expect.iter().all(|(k, v)| s[k] == *v));
        eprintln!("server stats: {s}");
    }
}

#[test]
fn scapy_synack_and_cookies() {
    if !common::require_root("scapy_synack_and_cookies") {
        return;
    }
    let b = Bench::new("xtsyn4", "echo", &[]);
    let out = b.run("handshake.py", &[]);
    out.assert_all_passed("handshake.py");
    b.assert_expected_counters(&out);
}

#[test]
fn scapy_rfc5961_on_established_connections() {
    if !common::require_root("scapy_rfc5961_on_established_connections") {
        return;
    }
    let b = Bench::new("xt5961", "echo", &[]);
    let out = b.run("rfc5961.py", &[]);
    out.assert_all_passed("rfc5961.py");
    b.assert_expected_counters(&out);
}

#[test]
fn scapy_malformed_segments_and_ports_not_served() {
    if !common::require_root("scapy_malformed_segments_and_ports_not_served") {
        return;
    }
    let b = Bench::new("xtmalf", "echo", &[]);
    let out = b.run("malformed.py", &[]);
    out.assert_all_passed("malformed.py");
    b.assert_expected_counters(&out);

    // ICMP and ARP / neighbour discovery are the kernel's: with the neighbour caches flushed on both sides, ping
    // must resolve the server's address and be answered, over IPv4 and IPv6.
    let before = b.server.stats().expect("stats");
    for ns in [&b.topo.ns_a, &b.topo.ns_b] {
        let (ok, _, err) = serve_support::run_in(ns, "ip", &["neigh", "flush", "all"]);
        assert!(ok, "ip neigh flush in {ns}: {err}");
    }
    for addr in ["10.77.0.1", "fd77::1"] {
        let (ok, out, err) = serve_support::run_in(&b.topo.ns_b, "ping", &["-c", "2", "-W", "2", "-i", "0.2", addr]);
        assert!(ok, "ping {addr} while xdptcp serves: {out}{err}");
    }
    let after = b.server.wait_stats("ARP and ICMP passed by the XDP program", Duration::from_secs(5), |s| {
        s["xdp_not_ip"].as_u64() > before["xdp_not_ip"].as_u64()
            && s["xdp_not_tcp"].as_u64() > before["xdp_not_tcp"].as_u64()
    });
    assert_eq!(after["xdp_redirected"], before["xdp_redirected"], "no ARP or ICMP reached the workers");
}

#[test]
fn scapy_teardown_orders_and_time_wait() {
    if !common::require_root("scapy_teardown_orders_and_time_wait") {
        return;
    }
    let b = Bench::new("xttear", "http", &[]);
    let out = b.run("teardown.py", &["--time-wait", "2"]);
    out.assert_all_passed("teardown.py");
    b.assert_expected_counters(&out);
    // After 2MSL the server holds nothing.
    b.server.wait_no_state(Duration::from_secs(10));
}

#[test]
fn scapy_send_window_right_edge_in_order() {
    if !common::require_root("scapy_send_window_right_edge_in_order") {
        return;
    }
    let b = Bench::new("xtwin", "echo", &[]);
    let out = b.run("window.py", &[]);
    let case = out.case("rfc9293_3_8_6_2_1_right_edge_kept_in_order");
    assert!(case["ok"] == true, "{case}\n{}", out.stderr);
}

#[test]
fn scapy_send_window_right_edge_after_a_segment_ahead() {
    if !common::require_root("scapy_send_window_right_edge_after_a_segment_ahead") {
        return;
    }
    let b = Bench::new("xtwin2", "echo", &[]);
    let out = b.run("window.py", &[]);
    out.assert_all_passed("window.py");
}

#[test]
fn scapy_path_mtu_too_big_resends_smaller() {
    if !common::require_root("scapy_path_mtu_too_big_resends_smaller") {
        return;
    }
    let b = Bench::new("xtpmtu", "echo", &[]);
    let out = b.run("pmtu.py", &[]);
    out.assert_all_passed("pmtu.py");
    b.assert_expected_counters(&out);
}
