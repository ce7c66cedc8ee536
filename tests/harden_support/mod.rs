//! Helpers of the adversarial, loss and fault tests (tests/netns_harden*.rs): packet captures read back from
//! pcap, bounded attack traffic (hping3, `xdptcp load` floods) beside a legitimate kernel client, and a sampler
//! of the server's stats during an attack. Builds on `serve_support` (the server process, kernel clients,
//! scapy) and `common` (root check, veth fixture).
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod capture;
pub mod loss;
pub mod reference;
pub mod sampler;
pub mod traffic;

/// One counter of a stats snapshot (0 when absent).
pub fn n(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}
