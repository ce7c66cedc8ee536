//! The Linux reference beside `xdptcp serve` in the server namespace: tests/scapy/ref_server.py (kernel
//! listeners shaped like the built-in apps), with the server namespace made the careful Linux a cookie-only stack
//! should match (SYN cookies always, RFC 1337), and the spoofed probe addresses given neighbour entries.

use crate::common::VethPair;
use crate::serve_support::scapy::Reference;
use crate::serve_support::{scapy, sysctl};

/// Where the Linux echo reference listens (IPv4 and IPv6).
pub const LINUX_ECHO: u16 = 9080;

/// Prepares `topo`'s server namespace and starts `ref_server.py ARGS` there; returns once it listens.
pub fn start(topo: &VethPair, args: &[&str]) -> Reference {
    sysctl(&topo.ns_a, "net.ipv4.tcp_syncookies", "2");
    sysctl(&topo.ns_a, "net.ipv4.tcp_rfc1337", "1");
    scapy::prepare_spoofing(topo);
    Reference::start_in(&topo.ns_a, args)
}

/// An echo listener on [`LINUX_ECHO`].
pub fn echo(topo: &VethPair) -> Reference {
    start(topo, &["--echo", &LINUX_ECHO.to_string()])
}
