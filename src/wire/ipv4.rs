//! IPv4 (options allowed and skipped; fragments refused).

use std::net::Ipv4Addr;

/// A parsed IPv4 header. Options, if any, are skipped; a reply never carries them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Upper-layer protocol (6 for TCP).
    pub protocol: u8,
    pub ttl: u8,
    /// DSCP and ECN, the second byte of the header.
    pub tos: u8,
    /// Length of the payload (total length minus header length).
    pub payload_len: u16,
}

// TODO(wire): Ipv4Packet<T> view, Ipv4Repr::{parse, emit}.
