//! Shared fixtures of the integration tests: the root check that skips loudly (or fails under CI=true), veth
//! topologies in their own namespaces, running code inside a namespace, and frame builders.
//!
//! Every test that builds a topology passes its own fixed prefix, so tests running in parallel never share a
//! name, and a leftover of a crashed run is deleted on the way in.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;
pub use xdptcp::io::topology::VethPair;

/// Capability bits of /proc/self/status's CapEff that the root-only tests need.
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

fn effective_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// True when this process may load BPF programs, attach XDP and open AF_XDP sockets.
pub fn privileged() -> bool {
    let caps = effective_caps();
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    has(CAP_NET_ADMIN) && has(CAP_NET_RAW) && (has(CAP_BPF) || has(CAP_SYS_ADMIN))
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Call first in every test that needs root. Returns false (after saying so loudly) when the test must be
/// skipped; under CI=true a missing privilege fails the test instead.
pub fn require_root(test: &str) -> bool {
    if privileged() {
        return true;
    }
    let msg = format!(
        "SKIPPED {test}: needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) for BPF and AF_XDP; \
         run as root, or set CI=true to turn this skip into a failure"
    );
    if ci() {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    // Captured test output is invisible for passing tests: leave a trace scripts/test.sh prints in its summary.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdptcp-skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{test}");
    }
    false
}

/// A fresh veth pair for one test (see [`VethPair`]); panics with the reason if it cannot be built.
pub fn topology(prefix: &str, queues: u32) -> VethPair {
    VethPair::create(prefix, queues).unwrap_or_else(|e| panic!("building topology {prefix}: {e}"))
}

/// Runs `f` on a thread inside network namespace `ns` and returns its result (panics propagate).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            xdptcp::io::netdev::enter_netns(ns).unwrap_or_else(|e| panic!("entering {ns}: {e}"));
            f()
        });
        handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Like [`in_netns`], but `None` when the namespace cannot be entered (it may not exist yet).
pub fn try_in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        let handle = s.spawn(|| xdptcp::io::netdev::enter_netns(ns).ok().map(|()| f()));
        handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Deletes the namespaces `{prefix}-a` and `{prefix}-b` on drop, for topologies that something
/// else (a child process) builds.
pub struct NamespaceGuard(pub &'static str);

impl NamespaceGuard {
    fn delete(&self) {
        for side in ["a", "b"] {
            let _ = std::process::Command::new("ip").args(["netns", "del", &format!("{}-{side}", self.0)]).output();
        }
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Like [`in_netns`], on a detached thread.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        xdptcp::io::netdev::enter_netns(&ns).unwrap_or_else(|e| panic!("entering {ns}: {e}"));
        f()
    })
}

pub const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const MAC_SERVER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// An Ethernet frame carrying a TCP SYN from `src` to `dst` (IPv4 or IPv6), with an MSS option.
pub fn tcp_syn(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    tcp_segment(src, dst, None)
}

/// Same as [`tcp_syn`], inside one 802.1Q tag when `vlan` is set.
pub fn tcp_segment(src: SocketAddr, dst: SocketAddr, vlan: Option<u16>) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(MAC_CLIENT, MAC_SERVER);
    let mut out = Vec::new();
    let opts = [etherparse::TcpOptionElement::MaximumSegmentSize(1460)];
    macro_rules! finish {
        ($ip:expr) => {{
            let b = $ip.tcp(src.port(), dst.port(), 1000, 65535).syn().options(&opts).expect("options fit");
            b.write(&mut out, &[]).expect("frame builds");
        }};
    }
    match (src.ip(), dst.ip(), vlan) {
        (IpAddr::V4(s), IpAddr::V4(d), None) => finish!(eth.ipv4(s.octets(), d.octets(), 64)),
        (IpAddr::V4(s), IpAddr::V4(d), Some(v)) => {
            let vid = etherparse::VlanId::try_new(v).expect("vlan id");
            finish!(eth.single_vlan(vid).ipv4(s.octets(), d.octets(), 64))
        }
        (IpAddr::V6(s), IpAddr::V6(d), None) => finish!(eth.ipv6(s.octets(), d.octets(), 64)),
        (IpAddr::V6(s), IpAddr::V6(d), Some(v)) => {
            let vid = etherparse::VlanId::try_new(v).expect("vlan id");
            finish!(eth.single_vlan(vid).ipv6(s.octets(), d.octets(), 64))
        }
        _ => panic!("mixed address families"),
    }
    out
}

/// An Ethernet + IPv4 + UDP frame.
pub fn udp_v4(src: SocketAddr, dst: SocketAddr, src_mac: [u8; 6], dst_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else { panic!("IPv4 only") };
    let b = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(s.octets(), d.octets(), 64).udp(src.port(), dst.port());
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// Sets a 16-bit big-endian field.
pub fn put16(frame: &mut [u8], at: usize, v: u16) {
    frame[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Forwards every line of `pipes` (a child's stdout, stderr) to one channel, a thread per pipe: a child never
/// blocks on a full pipe while the channel is read or dropped.
pub fn lines_of(pipes: Vec<Box<dyn std::io::Read + Send>>) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Waits for a line containing `mark` (each line gets up to `timeout`); otherwise the lines seen before.
pub fn wait_for_line(
    rx: &std::sync::mpsc::Receiver<String>,
    mark: &str,
    timeout: std::time::Duration,
) -> Result<(), Vec<String>> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(timeout) {
            Ok(line) if line.contains(mark) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => return Err(seen),
        }
    }
}
