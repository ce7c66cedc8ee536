//! Test and bench topologies: two network namespaces joined by a veth pair, with addresses and offloads off.
//!
//! Built with `ip` and `ethtool` (iproute2), like scripts/netns.sh, so that a Rust test and a shell user get the
//! same thing. Names derive from a prefix, and leftovers of an earlier run with the same prefix are deleted on the
//! way in; the namespaces (and with them the veth pair) are deleted on drop. Never touches the caller's own
//! namespace: both ends are created directly inside the new namespaces. Not for the data path.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use super::error::IoError;

/// A veth pair between namespaces `{prefix}-a` (interface `{prefix}0`) and `{prefix}-b` (interface `{prefix}1`).
#[derive(Debug)]
pub struct VethPair {
    pub ns_a: String,
    pub ns_b: String,
    pub if_a: String,
    pub if_b: String,
    pub mac_a: [u8; 6],
    pub mac_b: [u8; 6],
    pub ip4_a: Ipv4Addr,
    pub ip4_b: Ipv4Addr,
    pub ip6_a: Ipv6Addr,
    pub ip6_b: Ipv6Addr,
    pub queues: u32,
    keep: bool,
}

/// Addresses used by every topology: a private /24 and a ULA /64, alone in their namespaces.
pub const IP4_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const IP4_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const IP6_A: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
pub const IP6_B: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
pub const MAC_A: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x01];
pub const MAC_B: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x02];

impl VethPair {
    /// Deletes leftovers named after `prefix`, then builds the pair with `queues` queues per end.
    /// `prefix`: 1 to 12 characters of `[a-z0-9]`.
    pub fn create(prefix: &str, queues: u32) -> Result<Self, IoError> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 12
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(IoError::Invalid(format!("topology prefix {prefix:?}: use 1 to 12 of [a-z0-9]")));
        }
        if queues == 0 || queues > 64 {
            return Err(IoError::Invalid(format!("{queues} queues: use 1 to 64")));
        }
        let pair = VethPair {
            ns_a: format!("{prefix}-a"),
            ns_b: format!("{prefix}-b"),
            if_a: format!("{prefix}0"),
            if_b: format!("{prefix}1"),
            mac_a: MAC_A,
            mac_b: MAC_B,
            ip4_a: IP4_A,
            ip4_b: IP4_B,
            ip6_a: IP6_A,
            ip6_b: IP6_B,
            queues,
            keep: false,
        };
        pair.remove();
        // From here on, a failure drops `pair`, which deletes whatever was made.
        pair.build()?;
        Ok(pair)
    }

    fn build(&self) -> Result<(), IoError> {
        let q = self.queues.to_string();
        ip(&["netns", "add", &self.ns_a])?;
        ip(&["netns", "add", &self.ns_b])?;
        let (mac_a, mac_b) = (mac_text(&self.mac_a), mac_text(&self.mac_b));
        #[rustfmt::skip]
        ip(&["-n", &self.ns_a, "link", "add", &self.if_a, "address", &mac_a,
             "numtxqueues", &q, "numrxqueues", &q, "type", "veth",
             "peer", "name", &self.if_b, "netns", &self.ns_b, "address", &mac_b,
             "numtxqueues", &q, "numrxqueues", &q])?;
        for (ns, dev, ip4, ip6) in
            [(&self.ns_a, &self.if_a, self.ip4_a, self.ip6_a), (&self.ns_b, &self.if_b, self.ip4_b, self.ip6_b)]
        {
            ip(&["-n", ns, "addr", "add", &format!("{ip4}/24"), "dev", dev])?;
            ip(&["-n", ns, "addr", "add", &format!("{ip6}/64"), "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // Checksum offload must be off: AF_XDP sees the partial checksums a kernel peer would leave.
            run("ip", &["netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"])?;
            // The rest is best effort: fewer surprises (no GRO-merged segments), but not needed for correctness.
            let _ = run(
                "ip",
                &["netns", "exec", ns, "ethtool", "-K", dev, "rx", "off", "gro", "off", "tso", "off", "gso", "off"],
            );
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    fn remove(&self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }

    /// Leaves the topology in place when dropped (for debugging).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Runs `program args...` inside namespace `ns` and returns its standard output.
    pub fn exec(ns: &str, program: &str, args: &[&str]) -> Result<String, IoError> {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        if !self.keep {
            self.remove();
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

fn ip(args: &[&str]) -> Result<String, IoError> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<String, IoError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            IoError::Invalid(format!("{program} is not installed: run scripts/install-deps.sh"))
        } else {
            IoError::os("running a topology command", e)
        }
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let cmd = format!("{program} {}", args.join(" "));
        if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
            return Err(IoError::NotPermitted { op: "building a veth topology" });
        }
        return Err(IoError::Invalid(format!("`{cmd}` failed: {}", stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_prefixes_are_refused_before_any_command_runs() {
        for p in ["", "UPPER", "has-dash", "waytoolongprefix", "sp ace"] {
            assert!(matches!(VethPair::create(p, 1), Err(IoError::Invalid(_))), "{p:?}");
        }
        assert!(matches!(VethPair::create("ok", 0), Err(IoError::Invalid(_))));
    }

    #[test]
    fn mac_text_is_colon_hex() {
        assert_eq!(mac_text(&MAC_A), "02:77:00:00:00:01");
    }
}
