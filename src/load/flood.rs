//! Stateless floods for resilience tests: SYNs, or ACKs with random sequence and acknowledgment numbers (blind
//! cookie guesses), from spoofed sources drawn only from the given range, to one target.
//!
//! It owns the crafting of flood frames (through `wire`'s emit, so every checksum is right), their pacing, and
//! the counting of what the target sends back to the spoofed sources. It never keeps per-flow state and never
//! picks a source outside its range. Its randomness is a small PRNG seeded by the caller: good enough to spread
//! tuples and guesses, not meant to be unpredictable.

use super::tuples::SrcRange;
use crate::sink::FrameSink;
use crate::time::Instant;
use crate::wire::{
    EtherType, EthernetRepr, FrameRepr, IpRepr, Ipv4Repr, Ipv6Repr, MacAddr, TcpFlags, TcpOptions, TcpRepr, Timestamps,
};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

/// Which segments a flood sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodKind {
    /// SYNs with the options a Linux client sends (MSS, SACK-permitted, timestamps, window scale).
    Syn,
    /// Bare ACKs (with timestamps) whose sequence and acknowledgment numbers are random: cookie guesses.
    Ack,
}

impl FloodKind {
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Syn => "syn",
            FloodKind::Ack => "ack",
        }
    }
}

/// What a flood sends, from where, to where.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    pub kind: FloodKind,
    pub src: SrcRange,
    pub src_ports: RangeInclusive<u16>,
    pub target: SocketAddr,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// Frames per second at most; `None`: as fast as the ring takes them.
    pub pps: Option<f64>,
}

/// Segments the target sent back to spoofed sources, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replies {
    pub syn_ack: u64,
    pub rst: u64,
    pub other: u64,
}

/// A running flood.
#[derive(Debug)]
pub struct Flooder {
    spec: FloodSpec,
    rng: u64,
    /// When the first and the latest frames were written.
    pub first: Option<Instant>,
    pub last: Instant,
    /// Frames handed to the sink (committed).
    pub sent: u64,
    pub replies: Replies,
}

impl Flooder {
    /// A flood with PRNG seed `seed`.
    pub fn new(spec: FloodSpec, seed: u64) -> Self {
        Flooder { spec, rng: seed | 1, first: None, last: Instant::ZERO, sent: 0, replies: Replies::default() }
    }

    /// From the first frame to the latest.
    pub fn duration(&self) -> std::time::Duration {
        self.first.map_or(std::time::Duration::ZERO, |f| self.last - f)
    }

    pub fn spec(&self) -> &FloodSpec {
        &self.spec
    }

    /// wyrand: one multiply per 64 random bits.
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.rng) * u128::from(self.rng ^ 0xe703_7ed1_a0b4_28db);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// How many frames the rate allows at `now` (`room` when unlimited).
    #[inline]
    fn allowed(&mut self, now: Instant, room: usize) -> usize {
        let Some(pps) = self.spec.pps else { return room };
        let t0 = *self.first.get_or_insert(now);
        let due = ((now - t0).as_secs_f64() * pps) as u64 + 1;
        (due.saturating_sub(self.sent) as usize).min(room)
    }

    /// Writes up to `room` flood frames into `sink` (fewer when paced or when the sink runs dry); returns how many.
    #[inline]
    pub fn fill<S: FrameSink>(&mut self, now: Instant, sink: &mut S, room: usize) -> usize {
        let n = self.allowed(now, room);
        let mut done = 0;
        while done < n {
            let Some(buf) = sink.buffer() else { break };
            // Split the borrow: the frame is built from `self` into a buffer the sink owns.
            let len = self.write_frame(buf);
            sink.commit(len);
            if len == 0 {
                break;
            }
            done += 1;
        }
        self.sent += done as u64;
        if done > 0 {
            self.first.get_or_insert(now);
            self.last = now;
        }
        done
    }

    /// Crafts one frame into `buf`; returns its length (0 if `buf` is too small).
    pub fn write_frame(&mut self, buf: &mut [u8]) -> usize {
        let r = self.next_u64();
        let r2 = self.next_u64();
        let src_ip = self.spec.src.addr(r % self.spec.src.len());
        let (lo, hi) = (*self.spec.src_ports.start(), *self.spec.src_ports.end());
        let src_port = lo + ((r >> 32) % (u64::from(hi - lo) + 1)) as u16;
        let (seq, ack, tsval) = (r2 as u32, (r2 >> 32) as u32, (r >> 16) as u32);
        let (flags, options) = match self.spec.kind {
            FloodKind::Syn => (
                TcpFlags::SYN,
                TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps: Some(Timestamps { tsval, tsecr: 0 }),
                    ..TcpOptions::default()
                },
            ),
            FloodKind::Ack => (
                TcpFlags::ACK,
                TcpOptions { timestamps: Some(Timestamps { tsval, tsecr: seq ^ ack }), ..TcpOptions::default() },
            ),
        };
        let ip = match (src_ip, self.spec.target.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                IpRepr::V4(Ipv4Repr { src: s, dst: d, protocol: 6, ttl: 64, tos: 0, payload_len: 0 })
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => IpRepr::V6(Ipv6Repr {
                src: s,
                dst: d,
                next_header: 6,
                hop_limit: 64,
                tclass: 0,
                flow_label: 0,
                payload_len: 0,
            }),
            _ => return 0, // families checked when the flood was set up
        };
        let frame = FrameRepr {
            eth: EthernetRepr {
                dst: self.spec.dst_mac,
                src: self.spec.src_mac,
                vlan: None,
                ethertype: EtherType::IPV4,
            },
            ip,
            tcp: TcpRepr {
                src_port,
                dst_port: self.spec.target.port(),
                seq,
                ack: if flags.ack() { ack } else { 0 },
                flags,
                window: 64240,
                urgent: 0,
                options,
                payload: &[],
            },
        };
        frame.emit(buf).unwrap_or(0)
    }

    /// Whether a received frame is addressed to one of the flood's spoofed sources (then it is counted here and
    /// must not reach the endpoint, which would answer it with RST).
    #[inline]
    pub fn take_reply(&mut self, frame: &[u8]) -> bool {
        self.take_reply_to(tcp_dst(frame))
    }

    /// [`take_reply`](Self::take_reply) for a frame already read by [`tcp_dst`].
    #[inline]
    pub fn take_reply_to(&mut self, dst: Option<(SocketAddr, TcpFlags)>) -> bool {
        let Some((dst, flags)) = dst else { return false };
        if !self.spec.src.contains(dst.ip()) {
            return false;
        }
        if flags.syn() && flags.ack() {
            self.replies.syn_ack += 1;
        } else if flags.rst() {
            self.replies.rst += 1;
        } else {
            self.replies.other += 1;
        }
        true
    }
}

/// The destination address and port and the TCP flags of an untagged IPv4/IPv6 TCP frame, read at fixed offsets
/// without full validation: it only routes a frame (to the flood's counters, past the endpoint when it is for
/// someone else, or to the worker that owns its tuple); the endpoint validates everything else.
#[inline]
pub fn tcp_dst(frame: &[u8]) -> Option<(SocketAddr, TcpFlags)> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let ip = frame.get(14..)?;
    let (dst, tcp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if *ip.get(9)? != 6 || ihl < 20 {
                return None;
            }
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(dst), ip.get(ihl..)?)
        }
        0x86dd => {
            if *ip.get(6)? != 6 {
                return None;
            }
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(dst), ip.get(40..)?)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes(tcp.get(2..4)?.try_into().ok()?);
    Some((SocketAddr::new(dst, port), TcpFlags(*tcp.get(13)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::VecSink;
    use crate::wire::parse_frame;
    use std::collections::HashSet;

    fn spec(kind: FloodKind, src: &str, target: &str) -> FloodSpec {
        FloodSpec {
            kind,
            src: SrcRange::parse(src).unwrap(),
            src_ports: 1024..=65535,
            target: target.parse().unwrap(),
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            pps: None,
        }
    }

    #[test]
    fn tcp_dst_reads_the_destination_address_and_port_of_v4_and_v6_frames() {
        for (src, target) in [("10.77.9.0/24", "10.77.0.1:8080"), ("fd77::9:0/112", "[fd77::1]:443")] {
            let mut f = Flooder::new(spec(FloodKind::Ack, src, target), 3);
            let mut buf = [0u8; 256];
            let n = f.write_frame(&mut buf);
            let dst = |b: &[u8]| tcp_dst(b).map(|(a, _)| a);
            assert_eq!(dst(&buf[..n]), Some(target.parse().unwrap()));
            assert_eq!(dst(&buf[..n - 12]), dst(&buf[..n]), "the options are not read");
            assert_eq!(dst(&buf[..16]), None, "cut short");
        }
    }

    #[test]
    fn syn_flood_frames_parse_come_only_from_the_range_and_spread_over_it() {
        let mut f = Flooder::new(spec(FloodKind::Syn, "10.77.9.0/24", "10.77.0.1:8080"), 42);
        let mut sink = VecSink::new();
        assert_eq!(f.fill(Instant::ZERO, &mut sink, 2000), 2000);
        assert_eq!(f.sent, 2000);
        let range = f.spec().src;
        let mut sources = HashSet::new();
        for frame in sink.take() {
            let p = parse_frame(&frame).expect("valid checksums and lengths");
            let e = crate::wire::reparse::tcp(&frame);
            assert_eq!((e.src, e.syn, e.ack, e.ack_number), (p.ip.src_addr(), true, false, 0));
            assert!(p.tcp.flags.syn() && !p.tcp.flags.ack());
            assert_eq!(p.tcp.dst_port, 8080);
            assert_eq!(p.tcp.options.mss, Some(1460));
            assert!(p.tcp.options.timestamps.is_some() && p.tcp.options.sack_permitted);
            assert!(range.contains(p.ip.src_addr()), "{}", p.ip.src_addr());
            assert_eq!(p.ip.dst_addr(), "10.77.0.1".parse::<IpAddr>().unwrap());
            assert_eq!(p.eth.dst, MacAddr([2, 0, 0, 0, 0, 1]));
            sources.insert(p.ip.src_addr());
        }
        assert!(sources.len() > 240, "2000 frames should touch nearly all 254 sources, got {}", sources.len());
    }

    #[test]
    fn ack_flood_guesses_differ_and_ipv6_works() {
        let mut f = Flooder::new(spec(FloodKind::Ack, "fd77::9:0/112", "[fd77::1]:8080"), 7);
        let mut sink = VecSink::new();
        f.fill(Instant::ZERO, &mut sink, 500);
        let mut acks = HashSet::new();
        for frame in sink.take() {
            let p = parse_frame(&frame).unwrap();
            let e = crate::wire::reparse::tcp(&frame);
            assert_eq!((e.src, e.syn, e.ack, e.ack_number), (p.ip.src_addr(), false, true, p.tcp.ack));
            assert_eq!(p.tcp.flags, TcpFlags::ACK);
            assert!(f.spec().src.contains(p.ip.src_addr()));
            acks.insert(p.tcp.ack);
        }
        assert!(acks.len() > 495, "random acknowledgment numbers: {} distinct of 500", acks.len());
    }

    #[test]
    fn a_paced_flood_sends_no_more_than_its_rate() {
        let mut s = spec(FloodKind::Syn, "10.77.9.0/24", "10.77.0.1:8080");
        s.pps = Some(1000.0);
        let mut f = Flooder::new(s, 1);
        let mut sink = VecSink::new();
        let t0 = Instant::from_secs(5);
        assert_eq!(f.fill(t0, &mut sink, 100), 1);
        assert_eq!(f.fill(t0 + std::time::Duration::from_millis(10), &mut sink, 100), 10);
        assert_eq!(f.fill(t0 + std::time::Duration::from_millis(10), &mut sink, 100), 0);
        assert_eq!(f.fill(t0 + std::time::Duration::from_secs(1), &mut sink, 100), 100, "bounded by room");
    }

    #[test]
    fn replies_to_spoofed_sources_are_taken_and_counted_by_kind() {
        let mut f = Flooder::new(spec(FloodKind::Syn, "10.77.9.0/24", "10.77.0.1:8080"), 3);
        let mut sink = VecSink::new();
        f.fill(Instant::ZERO, &mut sink, 1);
        let syn = sink.take().pop().unwrap();
        let p = parse_frame(&syn).unwrap();
        // Build the server's answers to that SYN: a SYN-ACK and a RST, and one to an address outside the range.
        let reply = |flags: TcpFlags, dst: IpAddr| {
            let IpAddr::V4(d) = dst else { unreachable!() };
            let r = FrameRepr {
                eth: EthernetRepr { dst: p.eth.src, src: p.eth.dst, vlan: None, ethertype: EtherType::IPV4 },
                ip: IpRepr::V4(Ipv4Repr {
                    src: [10, 77, 0, 1].into(),
                    dst: d,
                    protocol: 6,
                    ttl: 64,
                    tos: 0,
                    payload_len: 0,
                }),
                tcp: TcpRepr { src_port: 8080, dst_port: p.tcp.src_port, seq: 1, ack: p.tcp.seq + 1, flags, ..p.tcp },
            };
            let mut buf = vec![0; r.frame_len()];
            r.emit(&mut buf).unwrap();
            buf
        };
        assert!(f.take_reply(&reply(TcpFlags::SYN.union(TcpFlags::ACK), p.ip.src_addr())));
        assert!(f.take_reply(&reply(TcpFlags::RST, p.ip.src_addr())));
        assert!(!f.take_reply(&reply(TcpFlags::ACK, "10.77.0.2".parse().unwrap())), "a legitimate client's");
        assert_eq!(f.replies, Replies { syn_ack: 1, rst: 1, other: 0 });
        assert!(!f.take_reply(&[0u8; 10]), "short frames are not replies");
    }
}
