//! Real tools as peers of `xdptcp serve --app http`: curl (IPv4 and IPv6, GET and HEAD), ApacheBench (HTTP/1.0
//! with the server closing first, and keep-alive) and wrk (HTTP/1.1 keep-alive for 5 s). Each must report zero
//! errors, and afterwards the client namespace must hold no socket stuck half-way (`ss -tan`), and the server no
//! state after 2MSL.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod serve_support;

use std::time::Duration;

use serve_support::clients::client_cpu;
use serve_support::{run_in, Server, PORT};

fn http_server(topo: &common::VethPair) -> Server {
    Server::start_realtime(
        &topo.ns_a,
        &topo.if_a,
        &["--ports", &PORT.to_string(), "--app", "http", "--time-wait", "2", "--cpus", serve_support::SERVER_CPU],
    )
}

fn url4() -> String {
    format!("http://10.77.0.1:{PORT}/")
}

fn url6() -> String {
    format!("http://[fd77::1]:{PORT}/")
}

/// Runs a load tool in the client namespace on the client CPU (away from the server's worker).
fn tool(ns: &str, args: &[&str]) -> (bool, String, String) {
    let cpu = client_cpu().map(|c| c.to_string());
    match &cpu {
        Some(c) => {
            let mut all = vec!["-c", c.as_str()];
            all.extend_from_slice(args);
            run_in(ns, "taskset", &all)
        }
        None => run_in(ns, args[0], &args[1..]),
    }
}

/// The number after `label` on the line that starts with it (ab's "Failed requests:   0").
fn field(out: &str, label: &str) -> Option<u64> {
    out.lines().find_map(|l| l.trim_start().strip_prefix(label)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn after_load(topo: &common::VethPair, server: &Server, what: &str) {
    serve_support::assert_no_stuck_sockets(&topo.ns_b, what);
    server.wait_no_state(Duration::from_secs(15));
}

#[test]
fn curl_fetches_over_ipv4_and_ipv6() {
    if !common::require_root("curl_fetches_over_ipv4_and_ipv6") {
        return;
    }
    let topo = serve_support::topology("xtcurl");
    let server = http_server(&topo);
    for url in [url4(), url6()] {
        let (ok, body, err) = run_in(&topo.ns_b, "curl", &["-sS", "--fail", "-m", "5", &url]);
        assert!(ok, "curl {url}: {err}\nserver:\n{}", server.stderr_text());
        assert_eq!(body, "Hello from xdptcp\n", "curl {url}");
        // Headers: a 200 with the length of the body, kept alive (HTTP/1.1 default).
        let (ok, head, err) =
            run_in(&topo.ns_b, "curl", &["-sS", "--fail", "-m", "5", "-o", "/dev/null", "-D", "-", &url]);
        assert!(ok, "curl -D {url}: {err}");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 18\r\n"), "{head}");
        // HEAD: headers only, and curl must not wait for a body.
        let (ok, head, err) = run_in(&topo.ns_b, "curl", &["-sS", "--fail", "-m", "5", "-I", &url]);
        assert!(ok && head.starts_with("HTTP/1.1 200 OK\r\n"), "curl -I {url}: {err} {head}");
        // HTTP/1.0: the server closes after the response.
        let (ok, body, err) = run_in(&topo.ns_b, "curl", &["-sS", "--fail", "-m", "5", "--http1.0", &url]);
        assert!(ok && body == "Hello from xdptcp\n", "curl --http1.0 {url}: {err} {body:?}");
    }
    after_load(&topo, &server, "curl");
    let s = server.stats().unwrap();
    assert_eq!(s["conns_opened"], 8, "{s}");
    assert_eq!(s["conns_closed"], 8, "{s}");
}

#[test]
fn ab_http_1_0_and_keep_alive_zero_failures() {
    if !common::require_root("ab_http_1_0_and_keep_alive_zero_failures") {
        return;
    }
    let topo = serve_support::topology("xtab");
    let server = http_server(&topo);
    let _load = serve_support::load_lock();
    // ab speaks HTTP/1.0: without -k the server closes first after every response; with -k the connections are
    // kept alive (Connection: keep-alive) and ab closes them at the end. The IPv6 run covers the other family.
    for (what, args) in [
        ("ab -n 20000 -c 50 (HTTP/1.0, server closes)", vec!["ab", "-n", "20000", "-c", "50", "-r"]),
        ("ab -k -n 20000 -c 50 (keep-alive)", vec!["ab", "-k", "-n", "20000", "-c", "50", "-r"]),
    ] {
        for url in [url4(), url6()] {
            let mut all = args.clone();
            all.push(&url);
            let (ok, out, err) = tool(&topo.ns_b, &all);
            assert!(ok, "{what} {url} failed: {err}\n{out}\nserver:\n{}", server.stderr_text());
            assert_eq!(field(&out, "Complete requests:"), Some(20000), "{what} {url}:\n{out}");
            assert_eq!(field(&out, "Failed requests:"), Some(0), "{what} {url}:\n{out}");
            // ab prints "Write errors" and "Non-2xx responses" only when there were some.
            assert_eq!(field(&out, "Write errors:").unwrap_or(0), 0, "{what} {url}:\n{out}");
            assert!(!out.contains("Non-2xx responses"), "{what} {url}:\n{out}");
            if args.contains(&"-k") {
                // Every request after the first on a connection was served on a kept-alive connection.
                assert_eq!(field(&out, "Keep-Alive requests:"), Some(20000), "{what} {url}:\n{out}");
            }
            let rate = out.lines().find(|l| l.starts_with("Requests per second")).unwrap_or("").to_string();
            eprintln!("{what} {url}: {rate} (copy-mode veth)");
            after_load(&topo, &server, what);
        }
    }
}

#[test]
fn wrk_5s_keep_alive_zero_errors() {
    if !common::require_root("wrk_5s_keep_alive_zero_errors") {
        return;
    }
    let topo = serve_support::topology("xtwrk");
    let server = http_server(&topo);
    let _load = serve_support::load_lock();
    let (ok, out, err) = tool(&topo.ns_b, &["wrk", "-t", "1", "-c", "100", "-d", "5s", &url4()]);
    assert!(ok, "wrk failed: {err}\n{out}\nserver:\n{}", server.stderr_text());
    // wrk prints these lines only when something went wrong.
    assert!(!out.contains("Socket errors"), "wrk saw socket errors:\n{out}");
    assert!(!out.contains("Non-2xx or 3xx responses"), "wrk saw bad responses:\n{out}");
    let requests: u64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{out}"));
    assert!(requests > 0, "{out}");
    let rate = out.lines().find(|l| l.starts_with("Requests/sec")).unwrap_or("").to_string();
    eprintln!("wrk -t1 -c100 -d5s: {requests} requests, {rate} (copy-mode veth)");
    after_load(&topo, &server, "wrk");
    let s = server.stats().unwrap();
    // wrk keeps its 100 connections alive for the whole run (plus one it opens first to check the address).
    assert!(s["conns_opened"].as_u64().unwrap() <= 101, "{s}");
    for k in ["cookies_rejected", "retransmits", "dropped_out_of_order"] {
        assert_eq!(s[k], 0, "{k}: {s}");
    }
}
