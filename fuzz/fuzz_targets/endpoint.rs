//! Arbitrary frame sequences and timer advances fed to a server endpoint and a client endpoint of ours.
//!
//! The input is a little program: each step picks an action — open a connection, deliver / drop / duplicate /
//! reorder / corrupt a frame on the wire between the two, jump the clock, inject raw bytes, inject a segment built
//! around a live connection's real numbers (its last SEQ/ACK on the wire, plus a fuzzed offset), send an ICMP
//! "too big" about a segment seen on the wire (fuzzed MTU and sequence offset), or let an app send, close or
//! abort. After every step: no panic, both tables stay within their bounds, and every frame either
//! endpoint emitted parses, has checksums that an independent computation (below, not the wire module's) agrees
//! with, carries only legal flags, and no RST ever answers an RST.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use xdptcp::app::{App, Conn, ConnId};
use xdptcp::sink::VecSink;
use xdptcp::tcp::cookie::{slot_at, KeyRing};
use xdptcp::tcp::{Config, Endpoint};
use xdptcp::time::Instant;
use xdptcp::wire::{
    parse_frame, EtherType, EthernetRepr, FrameRepr, IpRepr, Ipv4Repr, Ipv6Repr, MacAddr, TcpFlags, TcpOptions,
    TcpRepr, Timestamps,
};

const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x51]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 1);
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 2);
const PORT: u16 = 80;
const MAX_CONNS: usize = 16;
const MAX_TIME_WAIT: usize = 16;
const MAX_STEPS: usize = 400;

/// Reads the program; past its end every read is zero.
struct Prog<'a> {
    data: &'a [u8],
    at: usize,
}

impl Prog<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.data.len());
        let end = (self.at + n).min(self.data.len());
        self.at += n;
        &self.data[start..end]
    }
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// An app whose behaviour the program chooses: greet, close at once, echo, take half, close after the peer.
struct FuzzApp {
    mode: u8,
    ids: Vec<ConnId>,
}

impl App for FuzzApp {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.ids.push(conn.id());
        if self.mode & 1 != 0 {
            conn.send(b"hello from the fuzzer");
        }
        if self.mode & 2 != 0 {
            conn.close();
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        if self.mode & 4 != 0 {
            conn.send(data)
        } else if self.mode & 8 != 0 {
            data.len() / 2
        } else {
            data.len()
        }
    }
    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        if self.mode & 16 != 0 {
            conn.close();
        }
    }
    fn on_closed(&mut self, id: ConnId, _user: u32, _reason: xdptcp::app::CloseReason) {
        self.ids.retain(|i| *i != id);
    }
}

/// A chain of segments without data, each answering the one before: its length and when it began.
#[derive(Clone, Copy)]
struct Chain {
    len: u32,
    since: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// A segment seen on the wire, by the side that sent it: what the fuzzer aims new segments at.
#[derive(Clone, Copy)]
struct Seen {
    from: Side,
    v6: bool,
    client_port: u16,
    seq: u32,
    ack: u32,
    len: u32,
    tsval: Option<u32>,
}

struct World {
    now: Instant,
    server: Endpoint<FuzzApp>,
    client: Endpoint<FuzzApp>,
    /// Frames in flight, with their chain: how many segments without data led to this one, each answering the
    /// one before, and since when (a chain that outgrows the rate limits is an ACK storm).
    wire: VecDeque<(Side, Vec<u8>, Chain)>,
    seen: Vec<Seen>,
}

impl World {
    fn new(mode_s: u8, mode_c: u8) -> Self {
        let now = Instant::from_secs(1_000);
        let cfg =
            // Small timer wheels: the fuzzer builds four per input, and 4096 slots each would dominate its speed.
            |mac| Config {
                local_mac: mac,
                max_conns: MAX_CONNS,
                max_time_wait: MAX_TIME_WAIT,
                timer_slots: 64,
                ..Config::default()
            };
        let mut server = Endpoint::new(cfg(SERVER_MAC), FuzzApp { mode: mode_s, ids: Vec::new() }, now);
        server.listen(PORT);
        // Bit 32 of the client's mode: its handshake's ACK goes alone, before what `on_open` sends.
        let ccfg = Config { handshake_ack_alone: mode_c & 32 != 0, ..cfg(CLIENT_MAC) };
        let client = Endpoint::new(ccfg, FuzzApp { mode: mode_c, ids: Vec::new() }, now);
        let mut w = World { now, server, client, wire: VecDeque::new(), seen: Vec::new() };
        w.rotate_keys();
        w
    }

    /// Cookie keys as the runtime keeps them: the previous, current and next slot.
    fn rotate_keys(&mut self) {
        let slot = slot_at(self.now.as_nanos() + self.server.config().wall_clock_offset);
        if self.server.cookie_keys().get(slot + 1).is_none() {
            self.server.set_cookie_keys(KeyRing::from_seed(3, slot.saturating_sub(1)..=slot + 1));
        }
    }

    /// Checks and queues what `from` emitted; `answering_rst` when it was answering an RST; `parent` is the
    /// chain of the segment without data it answered, if it answered one.
    fn emitted(&mut self, from: Side, mut sink: VecSink, answering_rst: bool, parent: Option<Chain>) {
        for f in sink.take() {
            let seen = check_frame(&f, from);
            assert!(!(answering_rst && seen.1), "an RST was answered with an RST");
            let bare = seen.2;
            let chain = match parent {
                Some(c) if bare => Chain { len: c.len + 1, since: c.since },
                _ => Chain { len: 0, since: self.now },
            };
            // Desynchronised peers (a duplicate of a handshake's ACK can re-create a connection the server closed:
            // cookies are stateless; an on-path attacker can inject exact data) may trade ACKs, each finding the
            // other's unacceptable (RFC 9293's ACK war). The per-connection challenge-ACK limit (per second) must
            // hold that to both sides' allowance in each second the chain lasts: more is a storm the limits
            // failed to stop.
            let per_second = 2 * u32::from(Config::default().challenge_acks_per_conn) + 4;
            let seconds = u32::try_from(self.now.saturating_since(chain.since).as_secs()).unwrap_or(u32::MAX);
            let allowance = per_second.saturating_mul(seconds.saturating_add(2));
            assert!(chain.len <= allowance, "an endless exchange of segments without data (an ACK storm)");
            if let Some(s) = seen.0 {
                if self.seen.len() > 64 {
                    self.seen.remove(0);
                }
                self.seen.push(s);
            }
            if self.wire.len() < 256 {
                self.wire.push_back((from, f, chain));
            }
        }
    }

    fn deliver(&mut self, from: Side, frame: &[u8], chain: Chain) {
        // One parse for both questions: the harness's own parsing is a fair share of each execution.
        let (rst, bare) = parse_frame(frame).map(|f| (f.tcp.flags.rst(), f.tcp.payload.is_empty())).unwrap_or_default();
        if trace() {
            match parse_frame(frame) {
                Ok(f) => eprintln!(
                    "{:>14?} {} {:#04x} {}:{} seq={} ack={} win={} len={} ts={:?}",
                    self.now,
                    if from == Side::Client { "C>S" } else { "S>C" },
                    f.tcp.flags.0,
                    f.tcp.src_port,
                    f.tcp.dst_port,
                    f.tcp.seq,
                    f.tcp.ack,
                    f.tcp.window,
                    f.tcp.payload.len(),
                    f.tcp.options.timestamps.map(|t| (t.tsval, t.tsecr)),
                ),
                Err(e) => {
                    eprintln!("{:>14?} {} malformed {e:?}", self.now, if from == Side::Client { "C>S" } else { "S>C" })
                }
            }
        }
        let mut sink = VecSink::new();
        match from {
            Side::Client => self.server.handle_frame(self.now, frame, &mut sink),
            Side::Server => self.client.handle_frame(self.now, frame, &mut sink),
        }
        let to = if from == Side::Client { Side::Server } else { Side::Client };
        self.emitted(to, sink, rst, bare.then_some(chain));
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..10_000 {
            let next = [self.server.poll_timeout(), self.client.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.timers();
                    if t < self.now {
                        self.now += Duration::from_millis(1);
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(target);
        self.timers();
    }

    fn timers(&mut self) {
        self.rotate_keys();
        let mut sink = VecSink::new();
        self.server.handle_timeout(self.now, &mut sink);
        self.emitted(Side::Server, sink, false, None);
        let mut sink = VecSink::new();
        self.client.handle_timeout(self.now, &mut sink);
        self.emitted(Side::Client, sink, false, None);
    }

    fn check_bounds(&self) {
        for ep in [&self.server, &self.client] {
            assert!(ep.live_connections() <= MAX_CONNS, "connection table past its bound");
            assert!(ep.time_wait_len() <= MAX_TIME_WAIT, "TIME-WAIT past its bound");
        }
    }
}

/// Whether `XDPTCP_FUZZ_TRACE` asks for every delivered segment on stderr (read once, not per segment).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("XDPTCP_FUZZ_TRACE").is_some())
}

/// Parses an emitted frame with the wire module, re-checks both checksums independently, checks the flags;
/// returns what it says about the connection, whether it is an RST, and whether it carries no data.
fn check_frame(f: &[u8], from: Side) -> (Option<Seen>, bool, bool) {
    let parsed = parse_frame(f).unwrap_or_else(|e| panic!("emitted frame does not parse: {e:?}"));
    assert!(independent_checksums_ok(f), "checksums wrong in an emitted frame");
    let flags = parsed.tcp.flags;
    assert!(!(flags.syn() && (flags.fin() || flags.rst())), "illegal flags {:#x}", flags.0);
    assert!(!(flags.rst() && !parsed.tcp.payload.is_empty()), "RST with data");
    assert!(flags.ack() || flags.rst() || flags.0 == TcpFlags::SYN.0, "a segment without ACK: {:#x}", flags.0);
    let expected_mac = if from == Side::Server { SERVER_MAC } else { CLIENT_MAC };
    assert_eq!(parsed.eth.src, expected_mac, "our source MAC");
    let seg_len = parsed.tcp.payload.len() as u32 + u32::from(flags.syn()) + u32::from(flags.fin());
    let client_port = if from == Side::Server { parsed.tcp.dst_port } else { parsed.tcp.src_port };
    let seen = (!flags.rst()).then_some(Seen {
        from,
        v6: matches!(parsed.ip, IpRepr::V6(_)),
        client_port,
        seq: parsed.tcp.seq,
        ack: parsed.tcp.ack,
        len: seg_len,
        tsval: parsed.tcp.options.timestamps.map(|t| t.tsval),
    });
    (seen, flags.rst(), parsed.tcp.payload.is_empty())
}

/// Ones' complement sum of 16-bit big-endian words.
fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Verifies the IPv4 header checksum and the TCP checksum from the raw bytes, without the wire module.
fn independent_checksums_ok(f: &[u8]) -> bool {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    if ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    }
    let ip = &f[off + 2..];
    match ethertype {
        0x0800 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if fold(sum16(0, &ip[..ihl])) != 0xffff {
                return false;
            }
            let tcp = &ip[ihl..total];
            let mut acc = sum16(0, &ip[12..20]);
            acc += 6 + tcp.len() as u32;
            fold(sum16(acc, tcp)) == 0xffff
        }
        0x86dd => {
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let tcp = &ip[40..40 + plen];
            let mut acc = sum16(0, &ip[8..40]);
            acc += 6 + tcp.len() as u32;
            fold(sum16(acc, tcp)) == 0xffff
        }
        _ => false,
    }
}

/// A segment from `from` on the tuple of client port `port`, emitted by the wire module into a frame.
#[allow(clippy::too_many_arguments)]
/// An ICMP "too big" reporting `mtu`, from a router to `sender`, quoting a segment `sender` sent on the
/// connection of `port` with sequence number `seq` (IPv4: its header and 8 bytes; IPv6 likewise).
fn too_big(sender: Side, v6: bool, port: u16, seq: u32, mtu: u32) -> Vec<u8> {
    use xdptcp::wire::checksum;
    let sent = segment(sender, v6, port, seq, 0, 0x10, TcpOptions::default(), &[]);
    let ip_len = if v6 { 40 } else { 20 };
    let quote = &sent[14..14 + ip_len + 8];
    let (dst_mac, src_mac) = if sender == Side::Client { (CLIENT_MAC, SERVER_MAC) } else { (SERVER_MAC, CLIENT_MAC) };
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac.0);
    f.extend_from_slice(&src_mac.0);
    f.extend_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
    let mut icmp = if v6 {
        let mut m = vec![2, 0, 0, 0];
        m.extend_from_slice(&mtu.to_be_bytes());
        m
    } else {
        let mut m = vec![3, 4, 0, 0, 0, 0];
        m.extend_from_slice(&(mtu as u16).to_be_bytes());
        m
    };
    icmp.extend_from_slice(quote);
    if v6 {
        let dst = if sender == Side::Client { CLIENT_V6 } else { SERVER_V6 };
        let router = Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 0xfe);
        let pseudo = checksum::ipv6_pseudo_header(router, dst, 58, icmp.len() as u32);
        let c = checksum::finish(checksum::add(pseudo, checksum::sum(&icmp)));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[58, 64]);
        f.extend_from_slice(&router.octets());
        f.extend_from_slice(&dst.octets());
    } else {
        let dst = if sender == Side::Client { CLIENT_V4 } else { SERVER_V4 };
        let c = checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + icmp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0, 10, 9, 0, 254]);
        ip.extend_from_slice(&dst.octets());
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
    }
    f.extend_from_slice(&icmp);
    f
}

fn segment(
    from: Side,
    v6: bool,
    port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    opts: TcpOptions,
    payload: &[u8],
) -> Vec<u8> {
    let (src_mac, dst_mac) = if from == Side::Client { (CLIENT_MAC, SERVER_MAC) } else { (SERVER_MAC, CLIENT_MAC) };
    let (sport, dport) = if from == Side::Client { (port, PORT) } else { (PORT, port) };
    let ip = match (v6, from) {
        (false, Side::Client) => IpRepr::V4(v4(CLIENT_V4, SERVER_V4)),
        (false, Side::Server) => IpRepr::V4(v4(SERVER_V4, CLIENT_V4)),
        (true, Side::Client) => IpRepr::V6(v6r(CLIENT_V6, SERVER_V6)),
        (true, Side::Server) => IpRepr::V6(v6r(SERVER_V6, CLIENT_V6)),
    };
    let ethertype = if v6 { EtherType::IPV6 } else { EtherType::IPV4 };
    let frame = FrameRepr {
        eth: EthernetRepr { dst: dst_mac, src: src_mac, vlan: None, ethertype },
        ip,
        tcp: TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 8192,
            urgent: 0,
            options: opts,
            payload,
        },
    };
    let mut buf = vec![0u8; frame.frame_len()];
    match frame.emit(&mut buf) {
        Ok(n) => buf.truncate(n),
        Err(_) => buf.clear(),
    }
    buf
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Repr {
    Ipv4Repr { src, dst, protocol: 6, ttl: 64, tos: 0, payload_len: 0 }
}

fn v6r(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Repr {
    Ipv6Repr { src, dst, next_header: 6, hop_limit: 64, tclass: 0, flow_label: 0, payload_len: 0 }
}

/// Options of a forged segment whose acknowledgment number is `ack`: SACK blocks near it (both edges within
/// ±32 KiB) or anywhere in the sequence space, where wrap-around comparisons go wrong.
fn options(p: &mut Prog<'_>, last_tsval: Option<u32>, ack: u32) -> TcpOptions {
    let b = p.u8();
    let mut o = TcpOptions::default();
    if b & 1 != 0 {
        o.mss = Some(p.u16());
    }
    if b & 2 != 0 {
        o.window_scale = Some(p.u8() & 0x0f);
    }
    o.sack_permitted = b & 4 != 0;
    if b & 8 != 0 {
        let tsval = if b & 16 != 0 { p.u32() } else { 1_000 + p.u16() as u32 };
        o.timestamps = Some(Timestamps { tsval, tsecr: last_tsval.unwrap_or(0) });
    }
    if b & 32 != 0 {
        let n = p.u8() % 5;
        for i in 0..usize::from(n) {
            o.sack.blocks[i] = if p.u8() & 1 != 0 {
                let near = |p: &mut Prog<'_>| ack.wrapping_add(i32::from(p.u16() as i16) as u32);
                (near(p), near(p))
            } else {
                (p.u32(), p.u32())
            };
        }
        o.sack.len = n;
    }
    o
}

fuzz_target!(|data: &[u8]| {
    let mut p = Prog { data, at: 0 };
    let (ms, mc) = (p.u8(), p.u8());
    let mut w = World::new(ms, mc);
    for _ in 0..MAX_STEPS {
        if p.done() {
            break;
        }
        match p.u8() % 13 {
            0 => {
                // Open a connection from the client (IPv4 or IPv6), on one of a few ports.
                let v6 = p.u8() & 1 != 0;
                let port = 40_000 + u16::from(p.u8() % 8);
                let (l, r): (SocketAddr, SocketAddr) = if v6 {
                    ((CLIENT_V6, port).into(), (SERVER_V6, PORT).into())
                } else {
                    ((CLIENT_V4, port).into(), (SERVER_V4, PORT).into())
                };
                let mut sink = VecSink::new();
                let _ = w.client.connect(w.now, l, r, SERVER_MAC, 0, &mut sink);
                w.emitted(Side::Client, sink, false, None);
            }
            1 | 2 => {
                // Deliver the next frame on the wire.
                if let Some((from, f, g)) = w.wire.pop_front() {
                    w.deliver(from, &f, g);
                }
            }
            3 => {
                w.wire.pop_front();
            }
            4 => {
                if let Some((from, f, g)) = w.wire.front().cloned() {
                    w.deliver(from, &f, g);
                }
            }
            5 => {
                let n = w.wire.len();
                if n >= 2 {
                    let i = usize::from(p.u8()) % n;
                    let j = usize::from(p.u8()) % n;
                    w.wire.swap(i, j);
                }
            }
            6 => {
                let d = match p.u8() % 4 {
                    0 => Duration::from_micros(u64::from(p.u16())),
                    1 => Duration::from_millis(u64::from(p.u16())),
                    2 => Duration::from_secs(u64::from(p.u8())),
                    _ => Duration::from_secs(u64::from(p.u16() % 4000)),
                };
                w.advance(d);
            }
            7 => {
                // Raw bytes to either endpoint.
                let to_server = p.u8() & 1 != 0;
                let n = usize::from(p.u8());
                let raw = p.bytes(n).to_vec();
                let from = if to_server { Side::Client } else { Side::Server };
                w.deliver(from, &raw, Chain { len: 0, since: w.now });
            }
            8 | 9 => {
                // A segment aimed at a live connection's numbers, from either side's point of view.
                let pick = usize::from(p.u8());
                let Some(s) = (!w.seen.is_empty()).then(|| w.seen[pick % w.seen.len()]) else {
                    continue;
                };
                // Impersonate the other side of what was seen: continue its numbers.
                let from = if s.from == Side::Client { Side::Server } else { Side::Client };
                let dseq = i32::from(p.u16() as i16);
                let dack = i32::from(p.u16() as i16);
                let base_seq = s.ack;
                let base_ack = s.seq.wrapping_add(s.len);
                let flags = p.u8() & 0x3f;
                let len = usize::from(p.u8() % 200) * usize::from(p.u8() % 8);
                let payload = vec![0x61; len];
                let ack = base_ack.wrapping_add(dack as u32);
                let opts = options(&mut p, s.tsval, ack);
                let f = segment(
                    from,
                    s.v6,
                    s.client_port,
                    base_seq.wrapping_add(dseq as u32),
                    ack,
                    flags,
                    opts,
                    &payload,
                );
                if !f.is_empty() {
                    w.deliver(from, &f, Chain { len: 0, since: w.now });
                }
            }
            10 => {
                // Corrupt the frame at the head of the wire.
                let at = usize::from(p.u16());
                let b = p.u8();
                if let Some((_, f, _)) = w.wire.front_mut() {
                    if !f.is_empty() {
                        let i = at % f.len();
                        f[i] = b;
                    }
                }
            }
            11 => {
                // A router's "too big" about a segment one side sent, to that side.
                let pick = usize::from(p.u8());
                let Some(s) = (!w.seen.is_empty()).then(|| w.seen[pick % w.seen.len()]) else {
                    continue;
                };
                let seq = s.seq.wrapping_add(i32::from(p.u16() as i16) as u32);
                let mtu = u32::from(p.u16());
                let f = too_big(s.from, s.v6, s.client_port, seq, mtu);
                let to_sender = if s.from == Side::Client { Side::Server } else { Side::Client };
                w.deliver(to_sender, &f, Chain { len: 0, since: w.now });
            }
            _ => {
                // An app acts on one of its live connections.
                let server = p.u8() & 1 != 0;
                let what = p.u8();
                let n = usize::from(p.u16() % 3000);
                let ep = if server { &mut w.server } else { &mut w.client };
                let ids = ep.app().ids.clone();
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(what >> 2) % ids.len()];
                let mut sink = VecSink::new();
                match what & 3 {
                    0 | 1 => {
                        ep.send(w.now, id, &vec![0x62; n], &mut sink);
                    }
                    2 => ep.close(w.now, id, &mut sink),
                    _ => ep.abort(w.now, id, &mut sink),
                }
                w.emitted(if server { Side::Server } else { Side::Client }, sink, false, None);
            }
        }
        w.check_bounds();
    }
    // Let everything run out: whatever happened, both endpoints must settle within the retry limits. (Bounded:
    // two echo apps talking to each other never stop, and that is no fault of TCP's.)
    for _ in 0..8 {
        for _ in 0..400 {
            let Some((from, f, g)) = w.wire.pop_front() else { break };
            w.deliver(from, &f, g);
        }
        w.advance(Duration::from_secs(300));
    }
    w.check_bounds();
});
