//! The Linux reference beside `xdptcp serve` in the server namespace: tests/scapy/ref_server.py (kernel
//! listeners shaped like the built-in apps), with the server namespace made the careful Linux a cookie-only stack
//! should match (SYN cookies always, RFC 1337), and the spoofed probe addresses given neighbour entries.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::VethPair;
use crate::serve_support::{scapy, sysctl};

/// Where the Linux echo reference listens (IPv4 and IPv6).
pub const LINUX_ECHO: u16 = 9080;

/// The reference listeners, killed on drop.
pub struct Reference(Child);

impl Reference {
    /// Prepares `topo`'s server namespace and starts `ref_server.py ARGS` there; returns once it listens.
    pub fn start(topo: &VethPair, args: &[&str]) -> Reference {
        sysctl(&topo.ns_a, "net.ipv4.tcp_syncookies", "2");
        sysctl(&topo.ns_a, "net.ipv4.tcp_rfc1337", "1");
        scapy::prepare_spoofing(topo);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &topo.ns_a, scapy::python(), "-u", "-B"])
            .arg(scapy::dir().join("ref_server.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ref_server.py starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ref_server.py output");
        assert_eq!(line.trim(), "ready", "ref_server.py did not start");
        Reference(child)
    }

    /// An echo listener on [`LINUX_ECHO`].
    pub fn echo(topo: &VethPair) -> Reference {
        Reference::start(topo, &["--echo", &LINUX_ECHO.to_string()])
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
