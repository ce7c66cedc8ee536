//! The bench's stateless responder: a server with no TCP stack at all, on the same AF_XDP path as `xdptcp serve`.
//!
//! It answers a SYN with a SYN-ACK and a FIN with a FIN-ACK, rewriting the received frame in place and sending
//! it back, and drops everything else; it keeps no state, validates nothing beyond the parser's checks and never
//! retransmits. That is enough for the connect-and-close storm of the load generator (SYN; ACK+FIN; ACK), and it
//! tells what the generator and the packet path manage when the server costs nothing but a parse and an emit:
//! the bench puts `xdptcp serve` beside it to show how much of the limit is the stack's. It is not a server (no
//! cookies, no data, an ISN anyone can compute) and serves only that purpose.
//!
//! Runs as the `respond` subcommand, one socket on one queue, like the ceiling's reflector. Users can point
//! `xdptcp load` at it to learn what their generator manages on a pair before blaming a server.

use anyhow::Result;
use clap::Args as ClapArgs;
use xdptcp::wire::{
    parse_frame, EthernetRepr, FrameRepr, IpRepr, Ipv4Repr, Ipv6Repr, TcpFlags, TcpOptions, TcpRepr, Timestamps,
};

use super::roles::{reflecting_role, CommonArgs};

#[derive(ClapArgs, Debug)]
pub struct RespondArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The MSS the responder's SYN-ACK offers (Ethernet's).
const MSS: u16 = 1460;
/// The window shift it offers when the SYN offered one.
const WINDOW_SHIFT: u8 = 7;

/// Turns `frame` into the reply to the segment it holds and returns the reply's length, or `None` to drop it
/// (not TCP, malformed, or a segment that needs no answer: a pure ACK, data, RST).
///
/// The SYN-ACK's ISN is a fixed function of the SYN's sequence number, so the FIN-ACK can follow from the FIN's
/// acknowledgment number alone. Timestamps are echoed (TSval = the peer's TSval, which only grows), so a peer
/// that sent them keeps them, as against a real server.
pub fn answer(frame: &mut [u8]) -> Option<usize> {
    let reply = {
        let seg = parse_frame(frame).ok()?;
        let tcp = &seg.tcp;
        let (flags, seq, ack, options) = if tcp.flags.syn() && !tcp.flags.ack() {
            let options = TcpOptions {
                mss: Some(MSS),
                window_scale: tcp.options.window_scale.map(|_| WINDOW_SHIFT),
                sack_permitted: tcp.options.sack_permitted,
                timestamps: echo(tcp.options.timestamps),
                ..TcpOptions::default()
            };
            (TcpFlags::SYN | TcpFlags::ACK, isn(tcp.seq), tcp.seq.wrapping_add(1), options)
        } else if tcp.flags.fin() && tcp.flags.ack() && !tcp.flags.rst() {
            let options = TcpOptions { timestamps: echo(tcp.options.timestamps), ..TcpOptions::default() };
            let ack = tcp.seq.wrapping_add(tcp.payload.len() as u32).wrapping_add(1);
            (TcpFlags::FIN | TcpFlags::ACK, tcp.ack, ack, options)
        } else {
            return None;
        };
        let ip = match seg.ip {
            IpRepr::V4(ip) => IpRepr::V4(Ipv4Repr { src: ip.dst, dst: ip.src, ttl: 64, ..ip }),
            IpRepr::V6(ip) => IpRepr::V6(Ipv6Repr { src: ip.dst, dst: ip.src, hop_limit: 64, ..ip }),
        };
        FrameRepr {
            eth: EthernetRepr { dst: seg.eth.src, src: seg.eth.dst, ..seg.eth },
            ip,
            tcp: TcpRepr {
                src_port: tcp.dst_port,
                dst_port: tcp.src_port,
                seq,
                ack,
                flags,
                window: u16::MAX,
                urgent: 0,
                options,
                payload: &[],
            },
        }
    };
    reply.emit(frame).ok()
}

/// The responder's ISN for a SYN with sequence number `client_isn`: any fixed mixing will do.
fn isn(client_isn: u32) -> u32 {
    client_isn.wrapping_mul(0x9E37_79B1).rotate_left(7)
}

fn echo(ts: Option<Timestamps>) -> Option<Timestamps> {
    ts.map(|t| Timestamps { tsval: t.tsval, tsecr: t.tsval })
}

/// `xdptcp respond`: prints `ready` once attached, answers until SIGINT/SIGTERM or `--duration`.
pub fn respond_main(args: &RespondArgs) -> Result<()> {
    reflecting_role(&args.common, answer, "answered")
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    /// A client segment built by etherparse (not by the project's emitter).
    fn client(seq: u32, ack: Option<u32>, syn: bool, fin: bool, ts: Option<(u32, u32)>, payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
            .ipv4([10, 78, 0, 9], [10, 77, 0, 1], 64)
            .tcp(40000, 8080, seq, 64240);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut opts = Vec::new();
        if syn {
            opts.push(etherparse::TcpOptionElement::MaximumSegmentSize(1460));
            opts.push(etherparse::TcpOptionElement::WindowScale(7));
        }
        if let Some((v, e)) = ts {
            opts.push(etherparse::TcpOptionElement::Timestamp(v, e));
        }
        let b = b.options(&opts).expect("options fit");
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, payload).expect("writes");
        out
    }

    /// What etherparse reads in a reply.
    #[derive(Debug, PartialEq)]
    struct Seen {
        /// SYN, ACK, FIN, RST.
        flags: [bool; 4],
        seq: u32,
        ack: u32,
        timestamps: Option<(u32, u32)>,
        ports: (u16, u16),
        dst_mac: [u8; 6],
    }

    /// The reply, re-parsed by etherparse, its addresses and TCP checksum checked on the way.
    fn reparse(frame: &[u8]) -> Seen {
        let p = SlicedPacket::from_ethernet(frame).expect("the reply parses");
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else { panic!("not Ethernet II") };
        let Some(TransportSlice::Tcp(t)) = p.transport else { panic!("not TCP") };
        let timestamps = t.options_iterator().find_map(|o| match o {
            Ok(etherparse::TcpOptionElement::Timestamp(v, e)) => Some((v, e)),
            _ => None,
        });
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else { panic!("not IPv4") };
        let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
        assert_eq!((src.octets(), dst.octets()), ([10, 77, 0, 1], [10, 78, 0, 9]), "addresses swapped");
        let sum = t.to_header().calc_checksum_ipv4_raw(src.octets(), dst.octets(), t.payload()).expect("sums");
        assert_eq!(sum, t.checksum(), "TCP checksum");
        Seen {
            flags: [t.syn(), t.ack(), t.fin(), t.rst()],
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            timestamps,
            ports: (t.source_port(), t.destination_port()),
            dst_mac: eth.destination(),
        }
    }

    #[test]
    fn rfc9293_3_5_a_syn_is_answered_with_a_syn_ack_that_acknowledges_it() {
        let mut f = client(1000, None, true, false, Some((77, 0)), &[]);
        let len = answer(&mut f).expect("a SYN is answered");
        let seen = reparse(&f[..len]);
        assert_eq!(
            seen,
            Seen {
                flags: [true, true, false, false],
                seq: isn(1000),
                ack: 1001,
                timestamps: Some((77, 77)),
                ports: (8080, 40000),
                dst_mac: CLIENT_MAC,
            }
        );
    }

    #[test]
    fn rfc9293_3_6_a_fin_is_answered_with_a_fin_ack_after_its_data() {
        let mut f = client(1001, Some(isn(1000).wrapping_add(1)), false, true, None, b"hi");
        let len = answer(&mut f).expect("a FIN is answered");
        let seen = reparse(&f[..len]);
        assert_eq!(seen.flags, [false, true, true, false]);
        assert_eq!((seen.seq, seen.ack), (isn(1000).wrapping_add(1), 1001 + 2 + 1), "FIN after two bytes of data");
        assert_eq!(seen.timestamps, None, "no timestamps when the FIN had none");
    }

    #[test]
    fn a_pure_ack_an_rst_and_garbage_are_dropped() {
        let mut ack = client(1001, Some(5), false, false, None, &[]);
        assert_eq!(answer(&mut ack), None);
        let mut data = client(1001, Some(5), false, false, None, b"GET /");
        assert_eq!(answer(&mut data), None);
        for fin in [false, true] {
            let mut b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
                .ipv4([10, 78, 0, 9], [10, 77, 0, 1], 64)
                .tcp(40000, 8080, 1001, 0)
                .rst()
                .ack(5);
            if fin {
                b = b.fin();
            }
            let mut rst = Vec::new();
            b.write(&mut rst, &[]).expect("writes");
            assert_eq!(answer(&mut rst), None, "an RST (FIN too: {fin}) draws nothing");
        }
        for n in [0, 1, 13, 14, 33, 53] {
            let mut short = client(1, None, true, false, None, &[]);
            short.truncate(n);
            assert_eq!(answer(&mut short), None, "{n} bytes");
        }
        let mut bad_sum = client(1, None, true, false, None, &[]);
        let last = bad_sum.len() - 1;
        bad_sum[last] ^= 0xff;
        assert_eq!(answer(&mut bad_sum), None, "a bad checksum");
    }
}
