//! Connection identities: the 4-tuple, one compact key type per address family.
//!
//! The tables are generic over [`FlowKey`] so that an IPv4 connection pays for 12 bytes of key, not 36.

use crate::wire::{EtherType, IpRepr, Ipv4Repr, Ipv6Repr};
use core::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A 4-tuple seen from this host: `local` is our address and port, `remote` the peer's.
pub trait FlowKey: Copy + Eq + Hash + core::fmt::Debug + 'static {
    /// The address type of this family.
    type Addr: Copy + Eq + Into<IpAddr> + core::fmt::Debug;
    fn new(local: Self::Addr, local_port: u16, remote: Self::Addr, remote_port: u16) -> Self;
    fn local_addr(&self) -> Self::Addr;
    fn remote_addr(&self) -> Self::Addr;
    fn local_port(&self) -> u16;
    fn remote_port(&self) -> u16;

    /// True for the IPv6 family (it names the table a connection lives in).
    const V6: bool;
    /// The EtherType of this family.
    const ETHERTYPE: EtherType;
    /// Bytes of IP header we emit (no options).
    const IP_HEADER_LEN: u16;
    /// RFC 9293 §3.7.1: the MSS to assume when the peer's SYN announced none.
    const DEFAULT_MSS: u16;

    /// The IP header of a segment from us to the peer.
    fn reply_ip(&self) -> IpRepr;

    /// The tuple's cell hash in the table shared with the steering program (see [`crate::tcp::presence`]).
    fn presence_hash(&self, seed: u64) -> u64;

    fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_addr().into(), self.local_port())
    }
    fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_addr().into(), self.remote_port())
    }
}

/// Hop limit of everything we send.
pub const TTL: u8 = 64;

/// An IPv4 4-tuple, 12 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct V4Flow {
    pub local: [u8; 4],
    pub remote: [u8; 4],
    pub local_port: u16,
    pub remote_port: u16,
}

/// An IPv6 4-tuple, 36 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct V6Flow {
    pub local: [u8; 16],
    pub remote: [u8; 16],
    pub local_port: u16,
    pub remote_port: u16,
}

// Hashing writes the tuple's bytes in a fixed layout, without the length prefixes a derived `Hash` would add
// for arrays: cookie MACs and table hashes then cost fewer SipHash rounds, and the bytes that cookies cover do
// not depend on how the compiler's `Hash` derive behaves (hosts sharing a cookie key file must agree).
impl Hash for V4Flow {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.local);
        b[4..8].copy_from_slice(&self.remote);
        b[8..10].copy_from_slice(&self.local_port.to_be_bytes());
        b[10..].copy_from_slice(&self.remote_port.to_be_bytes());
        state.write(&b);
    }
}

impl Hash for V6Flow {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let mut b = [0u8; 36];
        b[..16].copy_from_slice(&self.local);
        b[16..32].copy_from_slice(&self.remote);
        b[32..34].copy_from_slice(&self.local_port.to_be_bytes());
        b[34..].copy_from_slice(&self.remote_port.to_be_bytes());
        state.write(&b);
    }
}

impl FlowKey for V4Flow {
    type Addr = Ipv4Addr;
    const V6: bool = false;
    const ETHERTYPE: EtherType = EtherType::IPV4;
    const IP_HEADER_LEN: u16 = 20;
    const DEFAULT_MSS: u16 = 536;

    #[inline]
    fn reply_ip(&self) -> IpRepr {
        IpRepr::V4(Ipv4Repr {
            src: Ipv4Addr::from(self.local),
            dst: Ipv4Addr::from(self.remote),
            protocol: 6,
            ttl: TTL,
            tos: 0,
            payload_len: 0,
        })
    }
    #[inline]
    fn presence_hash(&self, seed: u64) -> u64 {
        crate::tcp::presence::presence_hash(seed, &self.remote, &self.local, self.remote_port, self.local_port)
    }
    #[inline]
    fn new(local: Ipv4Addr, local_port: u16, remote: Ipv4Addr, remote_port: u16) -> Self {
        V4Flow { local: local.octets(), remote: remote.octets(), local_port, remote_port }
    }
    #[inline]
    fn local_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.local)
    }
    #[inline]
    fn remote_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.remote)
    }
    #[inline]
    fn local_port(&self) -> u16 {
        self.local_port
    }
    #[inline]
    fn remote_port(&self) -> u16 {
        self.remote_port
    }
}

impl FlowKey for V6Flow {
    type Addr = Ipv6Addr;
    const V6: bool = true;
    const ETHERTYPE: EtherType = EtherType::IPV6;
    const IP_HEADER_LEN: u16 = 40;
    const DEFAULT_MSS: u16 = 1220;

    #[inline]
    fn reply_ip(&self) -> IpRepr {
        IpRepr::V6(Ipv6Repr {
            src: Ipv6Addr::from(self.local),
            dst: Ipv6Addr::from(self.remote),
            next_header: 6,
            hop_limit: TTL,
            tclass: 0,
            flow_label: 0,
            payload_len: 0,
        })
    }
    #[inline]
    fn presence_hash(&self, seed: u64) -> u64 {
        crate::tcp::presence::presence_hash(seed, &self.remote, &self.local, self.remote_port, self.local_port)
    }
    #[inline]
    fn new(local: Ipv6Addr, local_port: u16, remote: Ipv6Addr, remote_port: u16) -> Self {
        V6Flow { local: local.octets(), remote: remote.octets(), local_port, remote_port }
    }
    #[inline]
    fn local_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.local)
    }
    #[inline]
    fn remote_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.remote)
    }
    #[inline]
    fn local_port(&self) -> u16 {
        self.local_port
    }
    #[inline]
    fn remote_port(&self) -> u16 {
        self.remote_port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_compact() {
        assert_eq!(core::mem::size_of::<V4Flow>(), 12);
        assert_eq!(core::mem::size_of::<V6Flow>(), 36);
    }
}
