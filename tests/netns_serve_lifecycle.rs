//! Starting, stopping and crashing `xdptcp serve`, and its operator-facing outputs.
//!
//! SIGTERM stops new connections and drains live ones, which finish normally, then the process exits 0 with its
//! final stats. `kill -9` mid-load leaves no XDP program, the kernel answers the port at once (RST, or a kernel
//! listener takes it over), and a restart binds at once and serves. With `--cookie-key-file`, a handshake whose
//! SYN-ACK was minted before a restart completes after it (and not with other keys). Bad input earns a clear
//! one-line error and a non-zero exit. `--metrics` serves the Prometheus text format; `--stats-json` is rewritten
//! atomically and is always valid JSON.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod serve_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serve_support::clients::{self, Exchange};
use serve_support::server::run_to_exit;
use serve_support::{run_in, scapy, Server, PORT};

fn port_args(app: &str) -> Vec<String> {
    ["--ports", &PORT.to_string(), "--app", app, "--time-wait", "2"].iter().map(|s| s.to_string()).collect()
}

fn start(topo: &common::VethPair, app: &str, extra: &[&str]) -> Server {
    let mut args = port_args(app);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&topo.ns_a, &topo.if_a, &args)
}

fn dst(topo: &common::VethPair) -> SocketAddr {
    SocketAddr::new(topo.ip4_a.into(), PORT)
}

/// Whether `ip -d link` in the server namespace shows an XDP program on the interface.
fn xdp_shown(topo: &common::VethPair) -> bool {
    let (ok, out, err) = run_in(&topo.ns_a, "ip", &["-d", "link", "show", "dev", &topo.if_a]);
    assert!(ok, "ip -d link: {err}");
    out.contains("prog/xdp")
}

fn assert_no_xdp_soon(topo: &common::VethPair, what: &str) {
    let gone = serve_support::wait_for(Duration::from_secs(5), || (!xdp_shown(topo)).then_some(()));
    assert!(gone.is_some(), "{what}: an XDP program is still attached");
}

#[test]
fn sigterm_drains_live_connections_then_exits_0_with_final_stats() {
    if !common::require_root("sigterm_drains_live_connections_then_exits_0_with_final_stats") {
        return;
    }
    let topo = serve_support::topology("xtdrain");
    let mut server = start(&topo, "echo", &["--drain-timeout", "10"]);
    let dst = dst(&topo);
    const LIVE: usize = 50;
    // Fifty connections, each half-way through its conversation.
    let mut conns: Vec<TcpStream> = common::in_netns(&topo.ns_b, || {
        (0..LIVE)
            .map(|i| {
                let mut s = TcpStream::connect_timeout(&dst, Duration::from_secs(5)).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg = format!("part one of {i}\n");
                s.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0; msg.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, msg.as_bytes());
                s
            })
            .collect()
    });
    server.wait_stats("50 live connections", Duration::from_secs(5), |s| s["live_conns"] == LIVE as u64);

    server.signal("TERM");
    serve_support::wait_for(Duration::from_secs(5), || server.stderr_text().contains("draining").then_some(()))
        .expect("the server announces its drain");
    // Draining: a new connection is refused at once (RST), the live ones are served to the end.
    std::thread::sleep(Duration::from_millis(100));
    let refused = common::in_netns(&topo.ns_b, || TcpStream::connect_timeout(&dst, Duration::from_secs(3)).err());
    assert_eq!(refused.map(|e| e.kind()), Some(ErrorKind::ConnectionRefused), "a new connection while draining");
    for (i, s) in conns.iter_mut().enumerate() {
        let msg = format!("part two of {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap_or_else(|e| panic!("connection {i} during the drain: {e}"));
        assert_eq!(back, msg.as_bytes(), "connection {i} during the drain");
    }
    let status = server.wait_exit(Duration::from_secs(10));
    let err = server.stderr_text();
    assert!(status.success(), "exit status {status:?} after SIGTERM:\n{err}");
    assert!(err.contains("xdptcp: stopped cleanly"), "{err}");
    let last = err.lines().rev().nth(1).unwrap_or("");
    assert!(last.contains("live=0") && last.contains(&format!("opened={LIVE}")), "final stats line: {last}");
    let s = server.stats().expect("final stats JSON");
    assert_eq!(s["live_conns"], 0, "{s}");
    assert_eq!(s["conns_closed"], LIVE as u64, "every live connection finished normally: {s}");
    assert_eq!(s["conns_aborted"], 0, "{s}");
    assert_no_xdp_soon(&topo, "after SIGTERM");
    serve_support::assert_no_stuck_sockets(&topo.ns_b, "after the drain");
}

#[test]
fn sigterm_drain_timeout_resets_stragglers_and_still_exits_0() {
    if !common::require_root("sigterm_drain_timeout_resets_stragglers_and_still_exits_0") {
        return;
    }
    let topo = serve_support::topology("xtstrag");
    let mut server = start(&topo, "echo", &["--drain-timeout", "1"]);
    let dst = dst(&topo);
    // A client that never finishes its conversation.
    let mut s = common::in_netns(&topo.ns_b, || TcpStream::connect_timeout(&dst, Duration::from_secs(5)).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    server.wait_stats("one live connection", Duration::from_secs(5), |s| s["live_conns"] == 1);
    let t = Instant::now();
    server.signal("TERM");
    // After the drain timeout the server resets it (rather than leave it to time out), then leaves.
    let mut buf = [0u8; 16];
    let r = s.read(&mut buf);
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionReset), "the straggler is reset");
    assert!(t.elapsed() >= Duration::from_millis(900), "reset before the drain timeout: {:?}", t.elapsed());
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", server.stderr_text());
    let s = server.stats().expect("final stats");
    assert_eq!((s["conns_aborted"].as_u64(), s["live_conns"].as_u64()), (Some(1), Some(0)), "{s}");
}

#[test]
fn kill_9_mid_load_frees_the_port_to_the_kernel_and_a_restart_serves_at_once() {
    if !common::require_root("kill_9_mid_load_frees_the_port_to_the_kernel_and_a_restart_serves_at_once") {
        return;
    }
    let topo = serve_support::topology("xtkill");
    let mut server = start(&topo, "close", &[]);
    let dst = dst(&topo);
    // Load: a client loop that keeps connecting until told to stop (its failures after the kill are expected).
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, done) = (stop.clone(), done.clone());
        common::spawn_in_netns(&topo.ns_b, move || {
            while !stop.load(Ordering::Relaxed) {
                if clients::exchange(dst, Exchange::Close, 0).is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    serve_support::wait_for(Duration::from_secs(10), || (done.load(Ordering::Relaxed) >= 1000).then_some(()))
        .expect("the load gets going");
    assert!(xdp_shown(&topo), "serving: the program is attached");
    server.kill9();
    let killed = Instant::now();
    assert_no_xdp_soon(&topo, "after kill -9");
    // The kernel owns the port again: nothing listens there, so a connect is refused at once.
    let refused = common::in_netns(&topo.ns_b, || TcpStream::connect_timeout(&dst, Duration::from_secs(3)).err());
    assert_eq!(refused.map(|e| e.kind()), Some(ErrorKind::ConnectionRefused), "connect right after kill -9");
    eprintln!("port back with the kernel {:?} after kill -9", killed.elapsed());
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    // A kernel listener can take the port over.
    {
        let listener = common::in_netns(&topo.ns_a, || TcpListener::bind(("0.0.0.0", PORT)).expect("bind the port"));
        let c = common::in_netns(&topo.ns_b, || TcpStream::connect_timeout(&dst, Duration::from_secs(3)));
        assert!(c.is_ok(), "a kernel listener takes the port: {c:?}");
        listener.accept().expect("accept");
    }
    // A restart binds at once (no leftover program, socket or map to wait for) and serves.
    let restarted = Instant::now();
    let server = start(&topo, "close", &[]);
    eprintln!("restart serving after {:?}", restarted.elapsed());
    let t = clients::sequential(&topo.ns_b, dst, Exchange::Close, 200);
    assert_eq!((t.ok, t.failed), (200, 0), "after the restart: {:?}\n{}", t.examples, server.stderr_text());
}

/// A handshake split across a restart, with the key file kept (`same_keys`) or replaced.
fn handshake_across_restart(prefix: &str, same_keys: bool) {
    let topo = serve_support::topology(prefix);
    scapy::prepare_spoofing(&topo);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let keys = dir.join(format!("{prefix}-keys"));
    let other = dir.join(format!("{prefix}-other-keys"));
    for f in [&keys, &other] {
        let _ = std::fs::remove_file(f);
    }
    let mut server = start(&topo, "echo", &["--cookie-key-file", keys.to_str().unwrap()]);
    let syn = scapy::run_against(&topo, "cookie_restart.py", PORT, &["--phase", "syn"]);
    syn.assert_all_passed("cookie_restart.py --phase syn");
    let r = &syn.report;
    let (sport, iss, cookie) = (r["sport"].to_string(), r["iss"].to_string(), r["cookie"].to_string());

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success(), "{}", server.stderr_text());
    drop(server);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&keys).expect("key file").permissions());
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let file = if same_keys { &keys } else { &other };
    let server = start(&topo, "echo", &["--cookie-key-file", file.to_str().unwrap()]);
    let mut args = vec!["--phase", "ack", "--sport", &sport, "--iss", &iss, "--cookie", &cookie];
    if !same_keys {
        args.push("--expect-refused");
    }
    let ack = scapy::run_against(&topo, "cookie_restart.py", PORT, &args);
    ack.assert_all_passed("cookie_restart.py --phase ack");
    let want = if same_keys { "cookies_accepted" } else { "cookies_rejected" };
    server.wait_stats(want, Duration::from_secs(5), |s| s[want] == 1);
}

#[test]
fn cookie_key_file_handshake_minted_before_a_restart_completes_after_it() {
    if !common::require_root("cookie_key_file_handshake_minted_before_a_restart_completes_after_it") {
        return;
    }
    handshake_across_restart("xtkeys", true);
}

/// A key file that can no longer be written when the keys rotate (brought 3 s away with
/// `--cookie-clock-skew`; a directory with a file in it stands where the key file was, which even root cannot
/// rename over) is reported as a warning, and the server keeps serving with the keys in memory: the file
/// only matters to a restart, and cutting every connection over it would be the worse failure.
#[test]
fn a_key_file_that_cannot_be_written_at_rotation_is_reported_and_serving_goes_on() {
    if !common::require_root("a_key_file_that_cannot_be_written_at_rotation_is_reported_and_serving_goes_on") {
        return;
    }
    let topo = serve_support::topology("xtkeyw");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let keys = dir.join("xtkeyw-keys");
    let _ = std::fs::remove_file(&keys);
    let _ = std::fs::remove_dir_all(&keys);
    let period = xdptcp::tcp::cookie::PERIOD.as_secs_f64();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let skew = format!("{:.3}", (period - 3.0) - now % period);
    let mut server =
        start(&topo, "close", &["--cookie-key-file", keys.to_str().unwrap(), "--cookie-clock-skew", &skew]);
    std::fs::remove_file(&keys).expect("the server wrote its key file");
    std::fs::create_dir(&keys).expect("a directory where the key file was");
    std::fs::write(keys.join("in-the-way"), b"x").unwrap();
    let said = serve_support::wait_for(Duration::from_secs(8), || {
        server.stderr_text().contains("serving on with the keys in memory").then_some(())
    });
    let _ = std::fs::remove_dir_all(&keys);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".xtkeyw-keys.") && n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the failed save left its temporary copy behind: {leftovers:?}");
    assert!(said.is_some(), "no warning at the rotation:\n{}", server.stderr_text());
    let t = clients::sequential(&topo.ns_b, dst(&topo), Exchange::Close, 50);
    assert_eq!(t.ok, 50, "still serving after the rotation: {:?}\n{}", t.examples, server.stderr_text());
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success(), "a warning is no failure: {}", server.stderr_text());
}

#[test]
fn cookie_minted_under_other_keys_is_refused_after_a_restart() {
    if !common::require_root("cookie_minted_under_other_keys_is_refused_after_a_restart") {
        return;
    }
    handshake_across_restart("xtkeys2", false);
}

/// Runs `xdptcp serve ARGS` in `ns` (behind `pre`) and asserts a non-zero exit with one clear error line that
/// mentions `needle`.
fn assert_refused(ns: &str, pre: &[&str], args: &[&str], needle: &str) {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let (status, stderr) = run_to_exit(Some(ns), pre, &all, Duration::from_secs(20));
    assert!(!status.success(), "xdptcp {args:?} must fail:\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "no panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line for {args:?}:\n{stderr}");
    assert!(errors[0].contains(needle), "the error names {needle:?}: {}", errors[0]);
    // Anything else is clap's short hint, never a dump.
    assert!(stderr.lines().filter(|l| !l.trim().is_empty()).count() <= 2, "{stderr}");
    eprintln!("{args:?} -> {}", errors[0]);
}

#[test]
fn bad_input_gets_one_clear_error_line_and_a_failing_exit() {
    if !common::require_root("bad_input_gets_one_clear_error_line_and_a_failing_exit") {
        return;
    }
    let topo = serve_support::topology("xtbad");
    let (ns, ifc) = (topo.ns_a.as_str(), topo.if_a.as_str());
    assert_refused(ns, &[], &["--iface", "xtnosuch0", "--ports", "8080"], "xtnosuch0");
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "0"], "'0' for '--ports <PORTS>': 0 is not in 1..=65535");
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "70000"], "70000 is not in 1..=65535");
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "8080,x"], "'x' for '--ports <PORTS>'");
    assert_refused(
        ns,
        &[],
        &["--iface", ifc, "--ports", "8080", "--queues", "5"],
        "--queues 5: xtbad0 has only 1 queue",
    );
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "8080", "--ring", "1000"], "ring size 1000");
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "8080", "--ring", "32"], "'32' for '--ring <RING>'");
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "8080", "--max-time-wait", "0"], "--max-time-wait");
    // A metrics port already taken is refused before anything is attached to the interface.
    common::in_netns(ns, || {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = taken.local_addr().unwrap().to_string();
        assert_refused(ns, &[], &["--iface", ifc, "--ports", "8080", "--metrics", &at], "metrics listener on");
    });
    assert!(!xdp_shown(&topo), "a refused server left its program on the interface");
    // Without privileges: an unprivileged user with no capabilities at all.
    let nobody =
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"];
    assert_refused(ns, &nobody, &["--iface", ifc, "--ports", "8080"], "root");
    // The interface is taken by a running server: the second one says so and leaves the first alone.
    let first = start(&topo, "close", &[]);
    assert_refused(ns, &[], &["--iface", ifc, "--ports", "8081"], "already has an XDP program");
    let t = clients::sequential(&topo.ns_b, dst(&topo), Exchange::Close, 20);
    assert_eq!(t.ok, 20, "the first server still serves: {:?}\n{}", t.examples, first.stderr_text());
}

/// One HTTP GET over a kernel socket from namespace `ns`; returns the whole response.
fn http_get(ns: &str, addr: SocketAddr, path: &str) -> String {
    let path = path.to_string();
    common::in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect to the metrics port");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
}

/// Checks the Prometheus text exposition format (0.0.4) line by line; returns the samples.
fn parse_prometheus(body: &str) -> std::collections::BTreeMap<String, f64> {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = std::collections::BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            assert!(["counter", "gauge"].contains(&kind), "bad TYPE line: {line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line: {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        assert!(!name.is_empty() && name.chars().all(valid), "bad metric name in {line:?}");
        if series.contains('{') {
            assert!(series.ends_with('}') && series.contains("=\""), "bad labels in {line:?}");
        } else {
            assert!(typed.contains(name), "sample before its TYPE line: {line:?}");
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

#[test]
fn metrics_serve_prometheus_text_and_stats_json_is_rewritten_valid_json() {
    if !common::require_root("metrics_serve_prometheus_text_and_stats_json_is_rewritten_valid_json") {
        return;
    }
    let topo = serve_support::topology("xtmetrics");
    // On the server's own address: the metrics port is not steered, so the kernel serves it beside xdptcp.
    let metrics: SocketAddr = "10.77.0.1:9100".parse().unwrap();
    let mut server = start(&topo, "http", &["--metrics", &metrics.to_string()]);
    let t = clients::sequential(&topo.ns_b, dst(&topo), Exchange::HttpKeepAlive, 25);
    assert_eq!(t.ok, 25, "{:?}", t.examples);
    server.wait_stats("25 connections", Duration::from_secs(5), |s| s["conns_opened"] == 25);

    // Prometheus: a 200 with the text format's content type, every sample typed, and the same counters.
    let page = serve_support::wait_for(Duration::from_secs(5), || {
        let r = http_get(&topo.ns_b, metrics, "/metrics");
        r.contains("xdptcp_conns_opened 25\n").then_some(r)
    })
    .expect("the metrics page shows the 25 connections");
    let (head, body) = page.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let samples = parse_prometheus(body);
    for (name, want) in [("xdptcp_conns_opened", 25.0), ("xdptcp_conns_closed", 25.0), ("xdptcp_workers", 1.0)] {
        assert_eq!(samples.get(name), Some(&want), "{name} in:\n{body}");
    }
    assert!(samples.contains_key("xdptcp_worker_live_conns{worker=\"0\"}"), "{body}");
    assert!(http_get(&topo.ns_b, metrics, "/nope").starts_with("HTTP/1.1 404"));

    // Stats JSON: read as fast as it can be, it always parses (it is replaced by rename, never written in
    // place), and it is rewritten every second (uptime moves on).
    let mut uptimes = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_millis(2500);
    let mut reads = 0;
    while Instant::now() < until {
        let text = std::fs::read(&server.stats_path).expect("stats file");
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("invalid JSON ({e})"));
        assert_eq!(v["total"]["conns_opened"], 25);
        assert!(v["workers"].as_array().is_some_and(|w| w.len() == 1), "{v}");
        uptimes.insert(v["total"]["uptime_seconds"].to_string());
        reads += 1;
    }
    assert!(uptimes.len() >= 2, "the stats file was not rewritten in 2.5 s ({reads} reads)");
    let before_exit = server.stats().unwrap()["uptime_seconds"].as_f64().unwrap();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let last = server.stats().expect("stats written at exit");
    assert!(last["uptime_seconds"].as_f64().unwrap() > before_exit, "final stats written at exit: {last}");
    assert_eq!(last["conns_closed"], 25, "{last}");
}
