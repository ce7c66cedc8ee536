//! IPv6 without extension headers.

use std::net::Ipv6Addr;

/// A parsed IPv6 header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    /// Traffic class.
    pub tclass: u8,
    /// Low 20 bits significant.
    pub flow_label: u32,
    pub payload_len: u16,
}

// TODO(wire): Ipv6Packet<T> view, Ipv6Repr::{parse, emit}.
