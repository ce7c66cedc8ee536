//! Malformed and unusual frames (tests/scapy/harden_malformed.py) and nmap scans against `xdptcp serve`, each
//! compared with a Linux listener on another port of the same namespace.
//!
//! Proves: no malformed frame earns a reply that RFC 9293 forbids (none at all for bad checksums, impossible
//! offsets, truncations, SYN+FIN, null and Xmas segments); each is counted under its reason in the stats JSON
//! (`xdp_*` when the XDP program hands it to the kernel, `malformed_*` / `dropped_*` when the worker drops it);
//! frames the kernel gets (fragments, IPv6 extension headers) get the kernel's answer, and the test says which;
//! nmap's SYN/ACK/FIN/NULL/Xmas scans see the port exactly as they see the Linux listener; and the server still
//! serves kernel clients afterwards.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod harden_support;
mod serve_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use harden_support::n;
use harden_support::reference::{self, LINUX_ECHO};
use serve_support::clients::{self, Exchange};
use serve_support::{run_in, scapy, Server, PORT};

fn serve(topo: &common::VethPair) -> Server {
    // VLAN 5 is served (harden_malformed.py's tagged cases); any other VLAN must be left to the kernel.
    let args = ["--ports", &PORT.to_string(), "--app", "echo", "--time-wait", "2", "--vlan", "5"];
    Server::start(&topo.ns_a, &topo.if_a, &args)
}

/// A kernel client still gets its echo, over IPv4 and IPv6.
fn assert_still_serving(topo: &common::VethPair, server: &Server, what: &str) {
    for ip in [std::net::IpAddr::from(topo.ip4_a), topo.ip6_a.into()] {
        let t = clients::sequential(&topo.ns_b, SocketAddr::new(ip, PORT), Exchange::Echo, 20);
        assert_eq!(
            (t.ok, t.failed),
            (20, 0),
            "{what}: no longer serving {ip}: {:?}\n{}",
            t.examples,
            server.stderr_text()
        );
    }
}

#[test]
fn malformed_frames_earn_no_forbidden_reply_are_counted_by_reason_and_the_server_keeps_serving() {
    let test = "malformed_frames_earn_no_forbidden_reply_are_counted_by_reason_and_the_server_keeps_serving";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xhmal");
    let server = serve(&topo);
    let _reference = reference::echo(&topo);
    let out = scapy::run_against(&topo, "harden_malformed.py", LINUX_ECHO, &[]);
    out.assert_all_passed("harden_malformed.py");
    let exact = out.report["xdp_expect"]["exact"].as_object().expect("exact counters").clone();
    let at_least = out.report["xdp_expect"]["at_least"].as_object().expect("at_least counters").clone();
    let s = server.wait_stats("the malformed frames counted", Duration::from_secs(5), |s| {
        exact.iter().all(|(k, v)| s[k] == *v) && at_least.iter().all(|(k, v)| s[k].as_u64() >= v.as_u64())
    });
    let reasons: BTreeMap<&str, u64> = s
        .as_object()
        .expect("stats object")
        .iter()
        .filter(|(k, v)| {
            (k.starts_with("malformed_") || k.starts_with("dropped_") || k.starts_with("xdp_")) && v.as_u64() > Some(0)
        })
        .map(|(k, v)| (k.as_str(), v.as_u64().unwrap_or(0)))
        .collect();
    eprintln!(
        "{test}: {} cases passed; drop reasons counted by the server: {reasons:?}",
        out.report["cases"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(n(&s, "conns_opened"), n(&s, "conns_reset"), "only the established-flags cases opened connections: {s}");
    assert_still_serving(&topo, &server, "after the malformed frames");
}

/// Port states nmap reports, by port, from its grepable output ("Ports: 8080/open/tcp//...").
fn nmap_states(out: &str) -> BTreeMap<u16, String> {
    out.lines()
        .filter_map(|l| l.split_once("Ports: ").map(|(_, p)| p))
        .flat_map(|ports| ports.split(", "))
        .filter_map(|entry| {
            let mut f = entry.split('/');
            Some((f.next()?.trim().parse().ok()?, f.next()?.to_string()))
        })
        .collect()
}

#[test]
fn nmap_syn_ack_fin_null_and_xmas_scans_see_the_port_as_a_linux_listener_and_it_keeps_serving() {
    let test = "nmap_syn_ack_fin_null_and_xmas_scans_see_the_port_as_a_linux_listener_and_it_keeps_serving";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xhnmap");
    let server = serve(&topo);
    let _reference = reference::echo(&topo);
    const CLOSED: u16 = 9999;
    let ports = format!("{PORT},{LINUX_ECHO},{CLOSED}");
    let mut table = Vec::new();
    for (scan, family) in
        [("-sS", "4"), ("-sA", "4"), ("-sF", "4"), ("-sN", "4"), ("-sX", "4"), ("-sS", "6"), ("-sF", "6"), ("-sT", "4")]
    {
        let target = if family == "4" { topo.ip4_a.to_string() } else { topo.ip6_a.to_string() };
        let fam = format!("-{family}");
        #[rustfmt::skip]
        let args = [scan, &fam, "-n", "-Pn", "-p", &ports, "--max-retries", "1", "-T4", "--host-timeout", "30s",
                    "-oG", "-", &target];
        let (ok, stdout, stderr) = run_in(&topo.ns_b, "nmap", &args);
        assert!(ok, "nmap {args:?}: {stderr}\n{stdout}");
        let states = nmap_states(&stdout);
        let (x, l, c) = (states.get(&PORT), states.get(&LINUX_ECHO), states.get(&CLOSED));
        table.push(format!("nmap {scan} -{family}: xdptcp {x:?}, linux {l:?}, closed port {c:?}"));
        assert!(x.is_some() && x == l, "nmap {scan} -{family} tells xdptcp's port from a Linux listener:\n{stdout}");
        assert!(c.is_some() && c != x || scan == "-sA", "the closed port differs from a listening one:\n{stdout}");
    }
    eprintln!("{test}:\n  {}", table.join("\n  "));
    let s = server.wait_stats("no state after the scans", Duration::from_secs(10), |s| s["live_conns"] == 0);
    eprintln!("  server after the scans: conns_opened {} (the connect scan), cookies_rejected {}, rsts_sent {}, dropped_listener_junk {}", n(&s, "conns_opened"), n(&s, "cookies_rejected"), n(&s, "rsts_sent"), n(&s, "dropped_listener_junk"));
    assert_still_serving(&topo, &server, "after the scans");
}
