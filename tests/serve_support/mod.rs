//! Shared helpers of the `xdptcp serve` integration tests (tests/netns_serve*.rs): the server as a child process
//! in namespace A with a guard that kills it, its stats JSON, kernel clients in namespace B, the client
//! namespace's kernel counters, and the scapy runner.
//!
//! Everything here talks only to namespaces a test created; nothing touches the host's own interfaces. Needs the
//! `common` module of the test crate (root check, veth fixture, `in_netns`).
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod clients;
pub mod nstat;
pub mod scapy;
pub mod server;

pub use server::Server;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::VethPair;

/// The port every test serves with xdptcp.
pub const PORT: u16 = 8080;

/// The CPU the server's worker is pinned to (`--cpus`); client threads run on [`clients::client_cpu`].
pub const SERVER_CPU: &str = "0";

/// Held by a test while it puts load on the machine (thousands of connections, wrk, ab), so that two such
/// phases of one test binary never share the cores. Each test still has its own namespaces and may run in
/// parallel with the others; only the load phases take turns. Two loads at once on a 2-core machine would
/// measure the machine: a server worker waiting several ms for a core makes clients fire tail-loss probes at
/// segments that were never lost. Poisoning is ignored (a failed test must not fail the next).
pub fn load_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh topology for one test, with the client namespace prepared for many short connections.
pub fn topology(prefix: &str) -> VethPair {
    let topo = crate::common::topology(prefix, 1);
    prepare_client_namespace(&topo.ns_b);
    topo
}

/// Sysctls of the client namespace only (each test has its own; the host is never touched).
///
/// A test opens 20 000 connections from one namespace to one server port, and when the client closes first every
/// one of them sits in the client's own TIME-WAIT for Linux's fixed 60 s. The default ephemeral range
/// (32768-60999, 28 232 ports) would hold them with little margin, and a connect() that finds no free port fails
/// with EADDRNOTAVAIL, which is the client's limit, not the server's. So the range is widened to 1024-65535, and
/// tcp_tw_reuse=1 lets connect() take a TIME-WAIT port whose timestamps prove it safe (RFC 6191 style) should the
/// range still run out. Neither changes how a single connection behaves on the wire.
pub fn prepare_client_namespace(ns: &str) {
    for (key, value) in [("net.ipv4.ip_local_port_range", "1024 65535"), ("net.ipv4.tcp_tw_reuse", "1")] {
        sysctl(ns, key, value);
    }
}

/// Sets a sysctl inside namespace `ns` (panics with the reason when it cannot).
pub fn sysctl(ns: &str, key: &str, value: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-q", "-w", &format!("{key}={value}")])
        .output()
        .expect("sysctl runs");
    assert!(out.status.success(), "sysctl {key}={value} in {ns}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `program args...` in namespace `ns`; returns (success, stdout, stderr).
pub fn run_in(ns: &str, program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} in {ns}: {e} (scripts/install-deps.sh installs it)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TCP sockets of namespace `ns` by state, as `ss -tan` names them (ESTAB, TIME-WAIT, SYN-SENT...).
pub fn socket_states(ns: &str) -> std::collections::BTreeMap<String, usize> {
    let (ok, out, err) = run_in(ns, "ss", &["-tanH"]);
    assert!(ok, "ss -tan in {ns}: {err}");
    let mut states = std::collections::BTreeMap::new();
    for line in out.lines() {
        if let Some(state) = line.split_whitespace().next() {
            *states.entry(state.to_string()).or_insert(0) += 1;
        }
    }
    states
}

/// The frames both ends of the veth pair dropped, as the interfaces count them (rx and tx dropped): a frame the
/// link itself lost, because the receiving side's ring or backlog was full, not one the server dropped.
pub fn veth_drops(topo: &crate::common::VethPair) -> u64 {
    let mut total = 0;
    for (ns, dev) in [(&topo.ns_a, &topo.if_a), (&topo.ns_b, &topo.if_b)] {
        for counter in ["rx_dropped", "tx_dropped"] {
            let path = format!("/sys/class/net/{dev}/statistics/{counter}");
            let (ok, text, err) = run_in(ns, "cat", &[&path]);
            assert!(ok, "reading {path} in {ns}: {err}");
            total += text.trim().parse::<u64>().unwrap_or_else(|e| panic!("{path} in {ns}: {text:?}: {e}"));
        }
    }
    total
}

/// Every drop and error counter of both ends of the veth pair that is not zero (`ethtool -S`, and the
/// interface's own rx/tx dropped and errors), or "none". A segment lost between a kernel client and the server's
/// XDP program shows up here: veth drops a frame when its peer's receive ring is full (on Linux 6.16+ it pushes
/// back instead only when a qdisc is attached, and veth has none by default).
pub fn veth_losses(topo: &crate::common::VethPair) -> String {
    let mut found = Vec::new();
    for (ns, dev) in [(&topo.ns_a, &topo.if_a), (&topo.ns_b, &topo.if_b)] {
        let (_, ethtool, _) = run_in(ns, "ethtool", &["-S", dev]);
        let (_, link, _) = run_in(
            ns,
            "cat",
            &[
                &format!("/sys/class/net/{dev}/statistics/rx_dropped"),
                &format!("/sys/class/net/{dev}/statistics/tx_dropped"),
                &format!("/sys/class/net/{dev}/statistics/rx_errors"),
                &format!("/sys/class/net/{dev}/statistics/tx_errors"),
            ],
        );
        let names = ["rx_dropped", "tx_dropped", "rx_errors", "tx_errors"];
        let link = names.iter().zip(link.lines()).map(|(k, v)| format!("{k}: {v}"));
        for line in ethtool.lines().map(str::to_string).chain(link) {
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim(), v.trim());
            if (k.contains("drop") || k.contains("err")) && v != "0" {
                found.push(format!("{dev} {k}={v}"));
            }
        }
    }
    if found.is_empty() {
        "none".to_string()
    } else {
        found.join(" ")
    }
}

/// States that mean a connection is stuck half-way (after all clients have finished): everything but TIME-WAIT,
/// which the closing side holds on purpose, and LISTEN.
pub const STUCK_STATES: [&str; 8] =
    ["SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "CLOSING"];

/// Asserts that namespace `ns` holds no TCP socket in a stuck state (polling a little: a LAST-ACK may be waiting
/// for the final ACK that is already on the wire).
pub fn assert_no_stuck_sockets(ns: &str, what: &str) {
    let stuck = |s: &std::collections::BTreeMap<String, usize>| {
        s.iter().filter(|(k, _)| STUCK_STATES.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>()
    };
    let found = wait_for(Duration::from_secs(3), || {
        let s = socket_states(ns);
        stuck(&s).is_empty().then_some(())
    });
    if found.is_none() {
        let s = socket_states(ns);
        panic!("{what}: stuck sockets in {ns}: {:?} (all: {s:?})", stuck(&s));
    }
}
