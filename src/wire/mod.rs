//! Wire formats: Ethernet (+ one 802.1Q tag), IPv4, IPv6 and TCP, and the ICMP "too big" messages about TCP.
//!
//! Each layer has a zero-copy view (`*Packet<T: AsRef<[u8]>>`, lengths checked once by `new_checked`) and a
//! normalised `*Repr` that is all the state machine ever sees. Parsing never reads past the frame and rejects
//! with a named [`ParseError`]; emitting fills in every checksum (no offload is assumed).
//!
//! This module holds no state and no `unsafe`, and never touches the OS.

pub mod checksum;
mod error;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
// Only the socket-side modules' tests read frames back through etherparse.
#[cfg(all(test, feature = "af-xdp"))]
pub(crate) mod reparse;
pub mod tcp;

pub use error::{EmitError, ParseError};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use frame::{parse_frame, FrameRepr, IpRepr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr, Timestamps};
