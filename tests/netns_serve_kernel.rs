//! `xdptcp serve` against Linux kernel clients: for every app and close order, 10 000 sequential connections and
//! 10 000 with 200 in flight (half over IPv4, half over IPv6), from std `TcpStream`s in the peer namespace.
//!
//! Proves, per exchange: zero failures and zero resets seen by the clients; the client kernel's own counters
//! clean (see `serve_support::nstat::MUST_STAY_ZERO` for which and why); no client socket stuck half-way; the
//! server counted exactly the connections made, each closed normally, with TIME-WAIT on the side that closed
//! first; and after 2MSL (`--time-wait 2`) the server holds no state at all.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod serve_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serve_support::clients::{self, Exchange};
use serve_support::{nstat, Server, PORT};

const CONNS: u64 = 10_000;
const IN_FLIGHT: u64 = 200;

fn lifecycles(test: &str, prefix: &str, ex: Exchange) {
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology(prefix);
    let server = Server::start_realtime(
        &topo.ns_a,
        &topo.if_a,
        &["--ports", &PORT.to_string(), "--app", ex.app(), "--time-wait", "2", "--cpus", serve_support::SERVER_CPU],
    );
    let v4 = SocketAddr::new(topo.ip4_a.into(), PORT);
    let v6 = SocketAddr::new(topo.ip6_a.into(), PORT);
    let load = serve_support::load_lock();
    let before = nstat::snapshot(&topo.ns_b);
    let drops_before = serve_support::veth_drops(&topo);

    let t = Instant::now();
    let seq = clients::sequential(&topo.ns_b, v4, ex, CONNS);
    let seq_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let conc = clients::concurrent(&topo.ns_b, &[v4, v6], ex, CONNS, IN_FLIGHT);
    let conc_secs = t.elapsed().as_secs_f64();
    let d = nstat::delta(&before, &nstat::snapshot(&topo.ns_b));
    let link_drops = serve_support::veth_drops(&topo) - drops_before;
    let done = Instant::now();
    drop(load);
    // A figure for the report, not an assertion (speed is measured by benches).
    eprintln!(
        "{test}: {ex:?}: sequential {:.0} conn/s, {IN_FLIGHT} in flight {:.0} conn/s (copy-mode veth, test build); \
         veth drops and errors: {}",
        CONNS as f64 / seq_secs,
        CONNS as f64 / conc_secs,
        serve_support::veth_losses(&topo)
    );

    for (what, t) in [("sequential", &seq), ("concurrent", &conc)] {
        assert_eq!(
            (t.ok, t.failed, t.resets),
            (CONNS, 0, 0),
            "{ex:?} {what}: clients saw failures: {:?}\nserver:\n{}",
            t.examples,
            server.stderr_text()
        );
    }
    let mut bad = nstat::violations(&d);
    let moved: Vec<String> = d.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
    if !bad.is_empty() {
        // The stats file is rewritten every second: wait for one written after the clients finished.
        let until = Instant::now() + Duration::from_secs(5);
        let stats = loop {
            match server.stats_since(done) {
                Some(s) => break s,
                None if Instant::now() < until => std::thread::sleep(Duration::from_millis(100)),
                None => break server.stats().unwrap_or_default(),
            }
        };
        if let Some(why) = nstat::retransmissions_explained_as_spurious_probes(&d, &stats) {
            eprintln!("{test}: NOTE: the client sent spurious tail-loss probes, the server answered everything: {why}");
            bad.clear();
        } else if let Some(why) = nstat::retransmissions_explained_by_link_drops(&d, &stats, link_drops) {
            eprintln!("{test}: NOTE: the link lost frames, the server lost none: {why}");
            bad.clear();
        }
    }
    assert!(
        bad.is_empty(),
        "{ex:?}: client kernel counters moved:\n  {}\nall counters that moved: {}\nveth drops and errors: {}\n\
         server: {}",
        bad.join("\n  "),
        moved.join(" "),
        serve_support::veth_losses(&topo),
        server.stats().map(|s| s.to_string()).unwrap_or_default()
    );
    assert_eq!(d["TcpActiveOpens"], 2 * CONNS, "every client connect() was one active open");
    serve_support::assert_no_stuck_sockets(&topo.ns_b, &format!("{ex:?}"));
    let client_tw = serve_support::socket_states(&topo.ns_b).get("TIME-WAIT").copied().unwrap_or(0);
    if ex.server_closes_first() {
        assert_eq!(client_tw, 0, "{ex:?}: the server closes first, so the client must hold no TIME-WAIT");
    } else {
        assert!(client_tw > 0, "{ex:?}: the client closes first, so it holds the TIME-WAITs");
    }

    // After 2MSL (2 s here) plus a stats period the server must have forgotten every connection.
    let s = server.wait_no_state(Duration::from_secs(15));
    let n = 2 * CONNS;
    let c = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no counter {k} in {s}"));
    assert_eq!(c("cookies_accepted"), n, "{s}");
    assert_eq!(c("conns_opened"), n, "{s}");
    assert_eq!(c("conns_closed"), n, "every connection ended with FIN both ways: {s}");
    for k in ["conns_reset", "conns_aborted", "conns_timed_out", "conns_refused_full", "cookies_rejected", "rsts_sent"]
    {
        assert_eq!(c(k), 0, "{k}: {s}");
    }
    let tw = c("time_wait_entered");
    assert_eq!(tw, if ex.server_closes_first() { n } else { 0 }, "TIME-WAIT belongs to whoever closed first: {s}");
    assert_eq!(c("time_wait_expired") + c("time_wait_reopened"), tw, "{s}");
    let malformed: Vec<_> =
        s.as_object().unwrap().iter().filter(|(k, v)| k.starts_with("malformed_") && v.as_u64() != Some(0)).collect();
    assert!(malformed.is_empty(), "kernel clients never send malformed frames: {malformed:?}");
    eprintln!("{test}: server after 2MSL: {s}");
}

#[test]
fn kernel_clients_close_app_server_closes_first() {
    lifecycles("kernel_clients_close_app_server_closes_first", "xtkclose", Exchange::Close);
}

#[test]
fn kernel_clients_echo_app_client_closes_first() {
    lifecycles("kernel_clients_echo_app_client_closes_first", "xtkecho", Exchange::Echo);
}

#[test]
fn kernel_clients_http_keep_alive_client_closes_first() {
    lifecycles("kernel_clients_http_keep_alive_client_closes_first", "xtkhttpka", Exchange::HttpKeepAlive);
}

#[test]
fn kernel_clients_http_connection_close_server_closes_first() {
    lifecycles("kernel_clients_http_connection_close_server_closes_first", "xtkhttpcl", Exchange::HttpClose);
}

#[test]
fn kernel_clients_http_1_0_server_closes_first() {
    lifecycles("kernel_clients_http_1_0_server_closes_first", "xtkhttp10", Exchange::Http10);
}

/// Two queues, two workers: the kernel client's flows hash over both queues, each worker serves its own, and
/// the totals still add up.
#[test]
fn kernel_clients_over_two_queues_are_served_by_two_workers() {
    let test = "kernel_clients_over_two_queues_are_served_by_two_workers";
    if !common::require_root(test) {
        return;
    }
    let topo = common::topology("xtk2q", 2);
    serve_support::prepare_client_namespace(&topo.ns_b);
    let server = Server::start_realtime(
        &topo.ns_a,
        &topo.if_a,
        // Deeper rings than the default, as the bench gives its server: each queue's socket and UMEM sized apart.
        &["--ports", &PORT.to_string(), "--app", "echo", "--time-wait", "2", "--queues", "all", "--ring", "8192"],
    );
    assert!(server.stderr_text().contains("with 2 worker(s)"), "{}", server.stderr_text());
    let v4 = SocketAddr::new(topo.ip4_a.into(), PORT);
    let v6 = SocketAddr::new(topo.ip6_a.into(), PORT);
    let load = serve_support::load_lock();
    let t = clients::concurrent(&topo.ns_b, &[v4, v6], Exchange::Echo, 4000, 100);
    drop(load);
    assert_eq!((t.ok, t.failed), (4000, 0), "{:?}\n{}", t.examples, server.stderr_text());
    server.wait_no_state(Duration::from_secs(15));
    let text = std::fs::read(&server.stats_path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let per: Vec<u64> = v["workers"].as_array().unwrap().iter().map(|w| w["conns_opened"].as_u64().unwrap()).collect();
    eprintln!("{test}: connections per worker {per:?}");
    assert_eq!(per.len(), 2, "{v}");
    assert_eq!(per.iter().sum::<u64>(), 4000, "{v}");
    assert!(per.iter().all(|&n| n > 0), "both workers served connections: {per:?}");
    assert_eq!(v["total"]["conns_closed"], 4000, "{v}");
}

/// A kernel client in `ns` writes `data` to the echo server at `dst` while reading the echo back, closes its
/// side, and the whole echo must come back as sent (within `timeout` of silence).
fn echo_intact(ns: &str, dst: SocketAddr, data: &[u8], timeout: Duration) {
    let back = common::in_netns(ns, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(dst).expect("connect");
        s.set_read_timeout(Some(timeout)).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            r.read_to_end(&mut back).map(|_| back)
        });
        s.write_all(data).expect("write");
        s.shutdown(std::net::Shutdown::Write).unwrap();
        reader.join().unwrap().expect("read the echo")
    });
    assert!(back == data, "the echo differs from what was sent ({} of {} bytes back)", back.len(), data.len());
}

/// Bulk data through `--app echo`: 1 MiB each way on one connection, the client writing and reading at once.
/// The stream must come back intact (it does), and on a lossless link without the server ever dropping a byte it
/// was invited to send, the client must never retransmit.
#[test]
fn kernel_client_bulk_echo_is_never_retransmitted() {
    let test = "kernel_client_bulk_echo_is_never_retransmitted";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xtkbulk");
    let server = Server::start_realtime(
        &topo.ns_a,
        &topo.if_a,
        &["--ports", &PORT.to_string(), "--app", "echo", "--cpus", serve_support::SERVER_CPU],
    );
    let dst = SocketAddr::new(topo.ip4_a.into(), PORT);
    let _load = serve_support::load_lock();
    let before = nstat::snapshot(&topo.ns_b);
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    echo_intact(&topo.ns_b, dst, &data, Duration::from_secs(20));
    let d = nstat::delta(&before, &nstat::snapshot(&topo.ns_b));
    let s = server.wait_stats("the connection closed", Duration::from_secs(5), |s| s["conns_closed"] == 1);
    assert_eq!(
        (d["TcpRetransSegs"], d["TcpExtTCPTimeouts"], s["dropped_out_of_order"].as_u64().unwrap()),
        (0, 0, 0),
        "client retransmissions, client RTOs, segments the server dropped as out of order"
    );
}

/// A kernel client uploading through a server that loses 3 % of its frames each way (`--inject-loss 3`): the
/// server holds what arrives after each hole and SACKs it (RFC 2018), and the client's kernel, which reads those
/// blocks, must find every one valid and repair its losses by SACK-based recovery; the echo comes back whole.
#[test]
fn kernel_client_over_a_lossy_path_is_repaired_by_the_servers_sack_blocks() {
    let test = "kernel_client_over_a_lossy_path_is_repaired_by_the_servers_sack_blocks";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xtksack");
    let server = Server::start(
        &topo.ns_a,
        &topo.if_a,
        &["--ports", &PORT.to_string(), "--app", "echo", "--inject-loss", "3", "--cpus", serve_support::SERVER_CPU],
    );
    let dst = SocketAddr::new(topo.ip4_a.into(), PORT);
    let _load = serve_support::load_lock();
    let before = nstat::snapshot(&topo.ns_b);
    let data: Vec<u8> = (0..1u32 << 19).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    echo_intact(&topo.ns_b, dst, &data, Duration::from_secs(60));
    let d = nstat::delta(&before, &nstat::snapshot(&topo.ns_b));
    let s = server.wait_stats("the connection closed", Duration::from_secs(10), |s| s["conns_closed"] == 1);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    let c = |k: &str| d.get(k).copied().unwrap_or(0);
    eprintln!(
        "{test}: server held {} out-of-order segments, delivered {} held bytes, dropped {} out of order; client: \
         {} retransmitted segments, {} SACK recoveries, {} SACK blocks discarded, {} RTOs",
        n("out_of_order_held"),
        n("out_of_order_delivered_bytes"),
        n("dropped_out_of_order"),
        c("TcpRetransSegs"),
        c("TcpExtTCPSackRecovery"),
        c("TcpExtTCPSACKDiscard"),
        c("TcpExtTCPTimeouts"),
    );
    assert!(n("injected_loss_rx") > 0, "the server lost frames on purpose: {s}");
    assert!(n("out_of_order_held") > 0 && n("out_of_order_delivered_bytes") > 0, "the pool was used: {s}");
    assert_eq!(n("dropped_out_of_order"), 0, "nothing beyond RCV.NXT was dropped: {s}");
    assert!(c("TcpExtTCPSackRecovery") > 0, "the client repaired losses by SACK: {d:?}");
    assert_eq!((c("TcpExtTCPSACKDiscard"), c("TcpExtTCPSACKReneging")), (0, 0), "every block was valid: {d:?}");
}

/// `serve --xdp-cookies` for a kernel client whose veth has no XDP program: the SYN-ACKs the program sends with
/// XDP_TX are dropped by the peer, so the server must notice that no cookie comes back, fall back to answering
/// SYNs in its worker (saying when it will try XDP again), and the client must then connect on a SYN
/// retransmission.
#[test]
fn xdp_cookies_fall_back_to_the_worker_when_the_xdp_answers_are_lost() {
    let test = "xdp_cookies_fall_back_to_the_worker_when_the_xdp_answers_are_lost";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xtkfb");
    let server =
        Server::start(&topo.ns_a, &topo.if_a, &["--ports", &PORT.to_string(), "--app", "close", "--xdp-cookies"]);
    let dst = SocketAddr::new(topo.ip4_a.into(), PORT);
    let t = Instant::now();
    let r = common::in_netns(&topo.ns_b, || {
        clients::exchange_with_timeout(dst, Exchange::Close, 0, Duration::from_secs(20))
    });
    let took = t.elapsed();
    assert!(r.is_ok(), "the client never connected: {r:?}\nserver:\n{}", server.stderr_text());
    let s = server.wait_stats("the connection closed", Duration::from_secs(5), |s| s["conns_closed"] == 1);
    assert_eq!(s["xdp_syn_answer_fallbacks"], 1, "{s}");
    assert!(s["xdp_answered"].as_u64().unwrap() >= 2, "the program answered first: {s}");
    assert_eq!(s["syns_received"], 1, "then the worker answered the next SYN: {s}");
    let said = server.stderr_text();
    assert!(said.contains("answering SYNs in the workers, trying XDP again in 30s"), "{said}");
    assert!(took >= Duration::from_secs(1), "connected on a retransmitted SYN, not the first ({took:?})");
}
