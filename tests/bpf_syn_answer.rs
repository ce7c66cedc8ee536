//! The steering program's own SYN answers, held to the worker's byte for byte.
//!
//! The program runs under BPF_PROG_TEST_RUN (queue 0, no socket: loaded with `NoXskAction::Drop`, so a SYN it
//! leaves to the worker shows as Drop). A reference `Endpoint` with the same configuration and keys answers the
//! same frame: whenever the program says XDP_TX, its output must be exactly the endpoint's reply at some instant
//! between just before and just after the run (the reply only changes at millisecond boundaries, through the
//! timestamp clock, so those instants are all tried). The frames cover Linux's usual SYNs, every option mix and
//! configuration, and a property test of random SYN-like frames, malformed ones included.
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::IpAddr;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use xdptcp::app::CloseApp;
use xdptcp::io::{monotonic_ns, NoXskAction, SteerCounters, SteerOptions, SteerProgram, SynAnswer, XdpAction};
use xdptcp::sink::VecSink;
use xdptcp::tcp::cookie::{KeyRing, PERIOD};
use xdptcp::tcp::presence::presence_hash;
use xdptcp::tcp::{Config, Endpoint};
use xdptcp::time::Instant;
use xdptcp::wire::MacAddr;

const PORT: u16 = 8080;
const SEED: u64 = 0x5eed_0fc0_0c1e;
const PRESENCE_SEED: u64 = 0x0123_4567_89ab_cdef;
const PRESENCE_LOG2: u8 = 10;
const MAC_SERVER: [u8; 6] = common::MAC_SERVER;
const MAC_CLIENT: [u8; 6] = common::MAC_CLIENT;

/// The worker's settings that shape a SYN-ACK.
#[derive(Clone, Copy, Debug)]
struct Knobs {
    mss: u16,
    window_scale: u8,
    timestamps: bool,
    sack: bool,
    rcv_wnd: u32,
    ts_offset: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { mss: 1460, window_scale: 7, timestamps: true, sack: true, rcv_wnd: 65535, ts_offset: 0x8765_4321 }
    }
}

/// A loaded program and the matching endpoint configuration.
struct Rig {
    prog: SteerProgram,
    cfg: Config,
    keys: KeyRing,
    answer: SynAnswer,
}

/// A wall-clock offset that puts CLOCK_MONOTONIC in the middle of a cookie slot, far from its edges.
fn mid_slot_offset() -> u64 {
    let period = PERIOD.as_nanos() as u64;
    let now = monotonic_ns();
    (1_000_000 * period + period / 2).wrapping_sub(now % period)
}

fn config(k: Knobs) -> Config {
    Config {
        local_mac: MacAddr(MAC_SERVER),
        cookie_replay_entries: 1 << 12,
        mss: k.mss,
        window_scale: k.window_scale,
        timestamps: k.timestamps,
        sack: k.sack,
        rcv_wnd: k.rcv_wnd,
        ts_offset: k.ts_offset,
        wall_clock_offset: mid_slot_offset(),
        ..Config::default()
    }
}

/// What the runtime would write for `cfg` (instant = CLOCK_MONOTONIC here, so the difference is 0).
fn syn_answer_for(cfg: &Config) -> SynAnswer {
    // The test's endpoints run on CLOCK_MONOTONIC itself: their Instant is the program's bpf_ktime_get_ns().
    SynAnswer::for_worker(cfg, 0, PRESENCE_SEED, PRESENCE_LOG2)
}

fn slot_now(cfg: &Config) -> u64 {
    xdptcp::tcp::cookie::slot_at(monotonic_ns().wrapping_add(cfg.wall_clock_offset))
}

fn load() -> SteerProgram {
    let p = SteerProgram::load(SteerOptions {
        no_xsk_action: NoXskAction::Drop,
        presence_log2: PRESENCE_LOG2,
        presence_queues: 1,
        ..Default::default()
    })
    .expect("the program loads");
    p.add_listen_port(PORT).unwrap();
    p
}

fn rig(k: Knobs) -> Rig {
    let prog = load();
    let mut r = Rig { prog, cfg: config(k), keys: KeyRing::new(), answer: SynAnswer::default() };
    r.reconfigure(k);
    r
}

impl Rig {
    /// New settings on the same program (its maps are rewritten, as a runtime restart would).
    fn reconfigure(&mut self, k: Knobs) {
        self.cfg = config(k);
        let slot = slot_now(&self.cfg);
        self.keys = KeyRing::from_seed(SEED, slot - 1..=slot + 1);
        self.prog.set_cookie_keys(&self.keys).unwrap();
        self.answer = syn_answer_for(&self.cfg);
        self.prog.set_syn_answer(0, &self.answer).unwrap();
    }

    /// The endpoint's reply to `frame` at `now` (None: it sent nothing).
    fn reference(&self, now: u64, frame: &[u8]) -> Option<Vec<u8>> {
        let t = Instant::from_nanos(now);
        let mut ep = Endpoint::new(self.cfg.clone(), CloseApp, t);
        ep.set_cookie_keys(self.keys.clone());
        ep.listen(PORT);
        let mut sink = VecSink::new();
        ep.handle_frame(t, frame, &mut sink);
        sink.take().into_iter().next()
    }

    /// Runs `frame`; for a TX verdict, checks the output against the endpoint at every instant it could mean.
    fn run(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), String> {
        let t0 = monotonic_ns();
        let (action, out) = self.prog.test_run_frame(frame).expect("test run");
        let t1 = monotonic_ns();
        if action != XdpAction::Tx {
            return Ok((action, out));
        }
        let mut instants = vec![t0];
        let mut ms = t0 / 1_000_000 + 1;
        while ms * 1_000_000 <= t1 {
            instants.push(ms * 1_000_000);
            ms += 1;
        }
        instants.push(t1);
        let mut seen = Vec::new();
        for t in instants {
            let reply = self.reference(t, frame);
            if reply.as_deref() == Some(&out[..]) {
                check_checksums(&out)?;
                return Ok((action, out));
            }
            seen.push(reply);
        }
        Err(format!(
            "XDP_TX, but not the worker's reply\n frame {}\n xdp   {}\n core  {}",
            hex(frame),
            hex(&out),
            seen.iter().map(|r| r.as_deref().map_or("(nothing)".into(), hex)).collect::<Vec<_>>().join("\n       ")
        ))
    }

    fn counters(&self) -> SteerCounters {
        self.prog.counters().unwrap()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An independent re-parse of the answer: etherparse's own checksums.
fn check_checksums(out: &[u8]) -> Result<(), String> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(out).map_err(|e| format!("etherparse: {e:?}"))?;
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else { return Err("no TCP".into()) };
    let want = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            if h.to_header().calc_header_checksum() != h.header_checksum() {
                return Err("bad IPv4 header checksum".into());
            }
            tcp.calc_checksum_ipv4(h.source(), h.destination()).map_err(|e| format!("{e:?}"))?
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            tcp.calc_checksum_ipv6(h.source(), h.destination()).map_err(|e| format!("{e:?}"))?
        }
        _ => return Err("not IP".into()),
    };
    if want != tcp.checksum() {
        return Err(format!("bad TCP checksum {:#06x}, want {want:#06x}", tcp.checksum()));
    }
    Ok(())
}

// ---- frames ----------------------------------------------------------------------------------------------------

/// A SYN-like frame, every field under the test's control.
#[derive(Clone, Debug)]
struct Syn {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    window: u16,
    /// Raw option bytes, padded with zeros (EOL) to a multiple of 4.
    options: Vec<u8>,
    payload: Vec<u8>,
    /// Bytes after the IP packet (Ethernet padding).
    padding: usize,
    ttl: u8,
    tos: u8,
    ipv4_frag: u16,
    break_ip_checksum: bool,
    break_tcp_checksum: bool,
}

impl Syn {
    fn new(src: &str, dst: &str) -> Self {
        Syn {
            src_mac: MAC_CLIENT,
            dst_mac: MAC_SERVER,
            vlan: None,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: 40000,
            dport: PORT,
            seq: 0x1234_5678,
            flags: 0x02,
            window: 64240,
            options: linux_options(1460, 0x0102_0304),
            payload: Vec::new(),
            padding: 0,
            ttl: 64,
            tos: 0,
            ipv4_frag: 0x4000,
            break_ip_checksum: false,
            break_tcp_checksum: false,
        }
    }

    fn v4() -> Self {
        Self::new("10.77.0.2", "10.77.0.1")
    }

    fn v6() -> Self {
        Self::new("fd77::2", "fd77::1")
    }

    fn with_options(mut self, options: Vec<u8>) -> Self {
        self.options = options;
        self
    }

    fn build(&self) -> Vec<u8> {
        let mut opts = self.options.clone();
        opts.truncate(40);
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&self.sport.to_be_bytes());
        tcp.extend_from_slice(&self.dport.to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&0u32.to_be_bytes());
        tcp.push(((20 + opts.len()) / 4) as u8 * 16);
        tcp.push(self.flags);
        tcp.extend_from_slice(&self.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&opts);
        tcp.extend_from_slice(&self.payload);
        let (src, dst) = (addr_bytes(self.src), addr_bytes(self.dst));
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        let mut sum_in = pseudo;
        sum_in.extend_from_slice(&tcp);
        let mut c = checksum(&sum_in);
        if self.break_tcp_checksum {
            c ^= 0x0100;
        }
        tcp[16..18].copy_from_slice(&c.to_be_bytes());

        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(tci) = self.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&tci.to_be_bytes());
        }
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                f.extend_from_slice(&[0x08, 0x00]);
                let mut ip = vec![0x45, self.tos];
                ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0x12, 0x34]);
                ip.extend_from_slice(&self.ipv4_frag.to_be_bytes());
                ip.extend_from_slice(&[self.ttl, 6, 0, 0]);
                ip.extend_from_slice(&src);
                ip.extend_from_slice(&dst);
                let mut c = checksum(&ip);
                if self.break_ip_checksum {
                    c ^= 0x0001;
                }
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => {
                f.extend_from_slice(&[0x86, 0xdd]);
                f.extend_from_slice(&[0x60 | (self.tos >> 4), self.tos << 4, 0x12, 0x34]);
                f.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
                f.extend_from_slice(&[6, self.ttl]);
                f.extend_from_slice(&src);
                f.extend_from_slice(&dst);
            }
            _ => panic!("mixed families"),
        }
        f.extend_from_slice(&tcp);
        f.extend(std::iter::repeat_n(0u8, self.padding));
        f
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// RFC 1071 checksum field value of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn mss_opt(mss: u16) -> Vec<u8> {
    let [a, b] = mss.to_be_bytes();
    vec![2, 4, a, b]
}

fn ts_opt(tsval: u32) -> Vec<u8> {
    let mut o = vec![8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&0u32.to_be_bytes());
    o
}

/// Linux's SYN: MSS, SACK-permitted, timestamps, NOP, window scale 7.
fn linux_options(mss: u16, tsval: u32) -> Vec<u8> {
    let mut o = mss_opt(mss);
    o.extend_from_slice(&[4, 2]);
    o.extend_from_slice(&ts_opt(tsval));
    o.extend_from_slice(&[1, 3, 3, 7]);
    o
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Option mixes of the differential cases.
fn option_cases() -> Vec<(&'static str, Vec<u8>)> {
    let ts = ts_opt(0xdead_beef);
    vec![
        ("linux", linux_options(1460, 0xdead_beef)),
        ("none", vec![]),
        ("mss only", mss_opt(1460)),
        ("ts without ws", cat(&[&mss_opt(1400), &[1, 1], &ts])),
        ("ws without ts", cat(&[&mss_opt(1460), &[1, 3, 3, 9]])),
        ("sack without ts", cat(&[&mss_opt(1460), &[1, 1, 4, 2]])),
        ("ts only", cat(&[&[1, 1], &ts])),
        ("ws 15 clamped", cat(&[&[4, 2], &ts, &[1, 3, 3, 15]])),
        ("ws 255 clamped", cat(&[&ts, &[3, 3, 255, 1]])),
        ("unknown kind skipped", cat(&[&[30, 4, 0, 0], &mss_opt(1300), &ts])),
        ("twice: later wins", cat(&[&mss_opt(600), &mss_opt(1440), &ts, &ts_opt(7)])),
        ("eol ends", cat(&[&mss_opt(1460), &[0], &ts])),
        ("bad mss length ends", cat(&[&ts, &[2, 3, 5], &[1, 3, 3, 2]])),
        ("length past the end ends", cat(&[&mss_opt(1220), &[8, 40]])),
        ("sack blocks on a syn", cat(&[&mss_opt(1460), &[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]])),
        ("40 bytes of nop", vec![1; 40]),
    ]
}

fn knob_cases() -> Vec<(&'static str, Knobs)> {
    let d = Knobs::default();
    vec![
        ("default", d),
        ("timestamps off", Knobs { timestamps: false, ..d }),
        ("sack off", Knobs { sack: false, ..d }),
        ("window scale 0", Knobs { window_scale: 0, ..d }),
        ("window scale 14", Knobs { window_scale: 14, rcv_wnd: 4 << 20, ..d }),
        ("small mss, small window", Knobs { mss: 536, rcv_wnd: 5000, ts_offset: 0xffff_fff0, ..d }),
        ("jumbo mss", Knobs { mss: 8960, ..d }),
    ]
}

fn expect_answered(r: &Rig, frame: &[u8], what: &str) {
    let before = r.counters();
    match r.run(frame) {
        Ok((XdpAction::Tx, _)) => {}
        Ok((other, _)) => panic!("{what}: {other:?}, expected an answer"),
        Err(e) => panic!("{what}: {e}"),
    }
    let d = r.counters() - before;
    assert_eq!((d.answered, d.total(), d.syn_held), (1, 1, 0), "{what}: {d:?}");
}

/// Left to the worker: dropped here for want of a socket.
fn expect_to_socket(r: &Rig, frame: &[u8], what: &str) -> SteerCounters {
    let before = r.counters();
    let (action, _) = r.run(frame).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(action, XdpAction::Drop, "{what}: expected the ordinary path");
    let d = r.counters() - before;
    assert_eq!((d.answered, d.no_xsk, d.dropped, d.total()), (0, 1, 1, 1), "{what}: {d:?}");
    d
}

// ---- tests -----------------------------------------------------------------------------------------------------

#[test]
fn every_option_mix_and_setting_gets_the_workers_exact_syn_ack() {
    if !common::require_root("every_option_mix_and_setting_gets_the_workers_exact_syn_ack") {
        return;
    }
    let mut r = rig(Knobs::default());
    for (kname, k) in knob_cases() {
        r.reconfigure(k);
        for (oname, opts) in option_cases() {
            for (fam, base) in [("v4", Syn::v4()), ("v6", Syn::v6())] {
                let frame = base.with_options(opts.clone()).build();
                expect_answered(&r, &frame, &format!("{kname} / {oname} / {fam}"));
            }
        }
    }
}

#[test]
fn client_mss_across_the_table_edges() {
    if !common::require_root("client_mss_across_the_table_edges") {
        return;
    }
    let r = rig(Knobs::default());
    for mss in [0, 1, 47, 48, 49, 535, 536, 537, 1219, 1220, 1221, 1439, 1440, 1459, 1460, 1461, 9000, 65535] {
        for (fam, base) in [("v4", Syn::v4()), ("v6", Syn::v6())] {
            expect_answered(&r, &base.clone().with_options(mss_opt(mss)).build(), &format!("mss {mss} {fam}"));
            let frame = base.with_options(linux_options(mss, 99)).build();
            expect_answered(&r, &frame, &format!("linux mss {mss} {fam}"));
        }
    }
}

#[test]
fn padding_flags_and_header_fields_the_worker_ignores() {
    if !common::require_root("padding_flags_and_header_fields_the_worker_ignores") {
        return;
    }
    let r = rig(Knobs::default());
    for base in [Syn::v4(), Syn::v6()] {
        // A 54-byte IPv4 SYN without options arrives padded to 60.
        for padding in [0, 1, 6, 30] {
            let s = Syn { padding, options: vec![], ..base.clone() };
            expect_answered(&r, &s.build(), &format!("padding {padding}"));
        }
        for flags in [0x02 | 0x08, 0x02 | 0x20, 0x02 | 0x40 | 0x80] {
            let s = Syn { flags, ..base.clone() };
            expect_answered(&r, &s.build(), &format!("flags {flags:#x}"));
        }
        let s = Syn { ttl: 1, tos: 0xb8, ipv4_frag: 0, seq: u32::MAX, window: 0, ..base.clone() };
        expect_answered(&r, &s.build(), "other header fields");
    }
}

#[test]
fn what_the_program_is_unsure_of_goes_to_the_worker() {
    if !common::require_root("what_the_program_is_unsure_of_goes_to_the_worker") {
        return;
    }
    let r = rig(Knobs::default());
    for base in [Syn::v4(), Syn::v6()] {
        let cases: Vec<(&str, Syn)> = vec![
            ("payload", Syn { payload: vec![1, 2, 3], ..base.clone() }),
            ("bad tcp checksum", Syn { break_tcp_checksum: true, ..base.clone() }),
            ("ack", Syn { flags: 0x12, ..base.clone() }),
            ("fin", Syn { flags: 0x03, ..base.clone() }),
            ("rst", Syn { flags: 0x06, ..base.clone() }),
            ("other mac", Syn { dst_mac: [0x02, 0, 0, 0, 0, 9], ..base.clone() }),
            ("broadcast mac", Syn { dst_mac: [0xff; 6], ..base.clone() }),
            ("group source mac", Syn { src_mac: [0x03, 0, 0, 0, 0, 2], ..base.clone() }),
            ("vlan 0", Syn { vlan: Some(0), ..base.clone() }),
            ("zero source port", Syn { sport: 0, ..base.clone() }),
            ("same source", Syn { src: base.dst, ..base.clone() }),
        ];
        for (what, s) in cases {
            expect_to_socket(&r, &s.build(), what);
        }
    }
    let v4 = Syn::v4();
    for (what, s) in [
        ("bad ip checksum", Syn { break_ip_checksum: true, ..v4.clone() }),
        ("loopback source", Syn { src: "127.0.0.1".parse().unwrap(), ..v4.clone() }),
        ("multicast destination", Syn { dst: "224.0.0.1".parse().unwrap(), ..v4.clone() }),
        ("broadcast destination", Syn { dst: "255.255.255.255".parse().unwrap(), ..v4.clone() }),
        ("zero network source", Syn { src: "0.1.2.3".parse().unwrap(), ..v4.clone() }),
    ] {
        expect_to_socket(&r, &s.build(), what);
    }
    let v6 = Syn::v6();
    for (what, s) in [
        ("v4-mapped source", Syn { src: "::ffff:10.0.0.2".parse().unwrap(), ..v6.clone() }),
        ("loopback destination", Syn { dst: "::1".parse().unwrap(), ..v6.clone() }),
        ("unspecified source", Syn { src: "::".parse().unwrap(), ..v6.clone() }),
        ("multicast destination", Syn { dst: "ff02::1".parse().unwrap(), ..v6.clone() }),
    ] {
        expect_to_socket(&r, &s.build(), what);
    }
    // The worker answers these (`::2` is an ordinary address), so the program may too.
    expect_answered(&r, &Syn { src: "::2".parse().unwrap(), ..v6.clone() }.build(), "::2");
    // IPv4 with options: the worker would answer, but the program leaves every such frame to it.
    let mut opts = Syn::v4().build();
    opts.splice(34..34, [1, 1, 1, 1]);
    opts[14] = 0x46;
    let total = u16::from_be_bytes([opts[16], opts[17]]) + 4;
    common::put16(&mut opts, 16, total);
    opts[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&opts[14..38]);
    opts[24..26].copy_from_slice(&c.to_be_bytes());
    expect_to_socket(&r, &opts, "ipv4 options");
}

#[test]
fn no_key_for_the_slot_or_disabled_goes_to_the_worker() {
    if !common::require_root("no_key_for_the_slot_or_disabled_goes_to_the_worker") {
        return;
    }
    let r = rig(Knobs::default());
    let syn = Syn::v4().build();
    expect_answered(&r, &syn, "keyed");
    let slot = slot_now(&r.cfg);
    r.prog.set_cookie_keys(&KeyRing::from_seed(SEED, [slot - 1, slot + 1])).unwrap();
    expect_to_socket(&r, &syn, "no key for this slot");
    r.prog.set_cookie_keys(&KeyRing::new()).unwrap();
    expect_to_socket(&r, &syn, "no keys");
    r.prog.set_cookie_keys(&r.keys).unwrap();
    expect_answered(&r, &syn, "keys back");
    r.prog.disable_syn_answer(0).unwrap();
    expect_to_socket(&r, &syn, "disabled");
    r.prog.set_syn_answer(0, &r.answer).unwrap();
    expect_answered(&r, &syn, "enabled again");
    // Not a listened port: not ours at all, answered by nobody here.
    let other = Syn { dport: 8081, ..Syn::v4() }.build();
    assert_eq!(r.prog.test_run(&other).unwrap(), XdpAction::Pass);
    let c = r.counters();
    assert_eq!(c.passed + c.dropped, c.reasons());
    assert_eq!(c.answered, 3);
}

#[test]
fn a_queue_needs_presence_cells_of_the_programs_size() {
    if !common::require_root("a_queue_needs_presence_cells_of_the_programs_size") {
        return;
    }
    let r = rig(Knobs::default());
    assert!(r.prog.set_syn_answer(1, &r.answer).is_err(), "queue 1 has no cells");
    assert!(r.prog.set_syn_answer(0, &SynAnswer { presence_log2: 9, ..r.answer }).is_err());
    assert!(r.prog.presence_cells(1).is_err());
    assert_eq!(r.prog.presence_cells(0).unwrap().cells().len(), 1 << PRESENCE_LOG2);
    let plain = SteerProgram::load(SteerOptions { no_xsk_action: NoXskAction::Drop, ..Default::default() }).unwrap();
    assert!(plain.presence_cells(0).is_err());
    assert!(plain.set_syn_answer(0, &r.answer).is_err());
}

/// A tuple's cell as the worker computes it.
fn cell_of(s: &Syn) -> usize {
    let h = presence_hash(PRESENCE_SEED, &addr_bytes(s.src), &addr_bytes(s.dst), s.sport, s.dport);
    h as usize & ((1 << PRESENCE_LOG2) - 1)
}

#[test]
fn a_held_tuple_goes_to_the_worker_and_the_cell_is_the_workers() {
    if !common::require_root("a_held_tuple_goes_to_the_worker_and_the_cell_is_the_workers") {
        return;
    }
    use std::sync::atomic::Ordering;
    let r = rig(Knobs::default());
    let cells = r.prog.presence_cells(0).unwrap();
    let cells = cells.cells();
    let mut runner = TestRunner::new(PropConfig { cases: 300, ..PropConfig::default() });
    let tuple = (any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>(), 1..=u16::MAX);
    runner
        .run(&tuple, |(v6, a, b, sport)| {
            let s = if v6 {
                let mut src = a;
                src[0] = 0xfd;
                let mut dst = b;
                dst[0] = 0x20;
                Syn { src: IpAddr::from(src), dst: IpAddr::from(dst), sport, ..Syn::v6() }
            } else {
                let src = [10, a[1], a[2], a[3]];
                let dst = [192, 168, b[2], b[3]];
                Syn { src: IpAddr::from(src), dst: IpAddr::from(dst), sport, ..Syn::v4() }
            };
            let frame = s.build();
            let cell = cell_of(&s);
            // A neighbouring cell set: still answered (the program reads exactly the worker's cell).
            let other = cell ^ 1;
            cells[other].store(3, Ordering::Release);
            expect_answered(&r, &frame, "neighbour held");
            cells[other].store(0, Ordering::Release);
            cells[cell].store(1, Ordering::Release);
            let d = expect_to_socket(&r, &frame, "held");
            prop_assert_eq!(d.syn_held, 1);
            cells[cell].store(0, Ordering::Release);
            expect_answered(&r, &frame, "released");
            Ok(())
        })
        .unwrap();
}

/// One random SYN-like frame: mostly valid, any field may be off.
fn arb_syn() -> impl Strategy<Value = Syn> {
    let addr4 = prop_oneof![
        6 => Just("10.77.0.2"),
        1 => Just("10.77.0.1"),
        1 => Just("127.0.0.1"),
        1 => Just("224.0.0.5"),
        1 => Just("240.0.0.1"),
        1 => Just("0.0.0.9"),
        1 => Just("255.255.255.255"),
    ];
    let addr6 = prop_oneof![
        6 => Just("fd77::2"),
        1 => Just("fd77::1"),
        1 => Just("::1"),
        1 => Just("::"),
        1 => Just("ff02::1"),
        1 => Just("::ffff:10.0.0.1"),
        1 => Just("::2"),
    ];
    let opt = prop_oneof![
        4 => Just(vec![1u8]),
        2 => any::<u16>().prop_map(mss_opt),
        2 => Just(vec![4, 2]),
        2 => any::<u32>().prop_map(ts_opt),
        2 => (0u8..20).prop_map(|s| vec![3, 3, s]),
        1 => Just(vec![0]),
        1 => proptest::collection::vec(any::<u8>(), 1..6),
    ];
    let options = prop_oneof![
        3 => proptest::collection::vec(opt, 0..8).prop_map(|v| v.concat()),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
    ];
    let flags = prop_oneof![6 => Just(0x02u8), 1 => Just(0x12), 1 => any::<u8>(), 1 => (0u8..4).prop_map(|b| 0x02 | (0x08 << b))];
    let v4 = (addr4.clone(), addr4)
        .prop_map(|(s, d)| (s.to_string(), if d == "10.77.0.2" { "10.77.0.1".to_string() } else { d.to_string() }));
    let v6 = (addr6.clone(), addr6)
        .prop_map(|(s, d)| (s.to_string(), if d == "fd77::2" { "fd77::1".to_string() } else { d.to_string() }));
    let addrs = prop_oneof![v4, v6];
    let macs = prop_oneof![
        8 => Just((MAC_CLIENT, MAC_SERVER)),
        1 => Just((MAC_CLIENT, [0xff; 6])),
        1 => Just((MAC_CLIENT, [0x02, 0, 0, 0, 0, 7])),
        1 => Just(([0x01, 0, 0x5e, 0, 0, 1], MAC_SERVER)),
    ];
    let vlan = prop_oneof![8 => Just(None), 1 => Just(Some(0u16)), 1 => Just(Some(7))];
    let ports =
        prop_oneof![8 => (1u16.., Just(PORT)), 1 => (Just(0u16), Just(PORT)), 1 => (any::<u16>(), any::<u16>())];
    let payload = prop_oneof![6 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..8)];
    let frag = prop_oneof![6 => Just(0x4000u16), 2 => Just(0), 1 => Just(0x2000), 1 => Just(0x0001)];
    let broken = prop_oneof![8 => Just((false, false)), 1 => Just((true, false)), 1 => Just((false, true))];
    (
        (addrs, macs, vlan, ports),
        (any::<u32>(), flags, any::<u16>(), options, payload),
        (0usize..24, any::<u8>(), any::<u8>(), frag, broken),
    )
        .prop_map(
            |(
                ((src, dst), (src_mac, dst_mac), vlan, (sport, dport)),
                (seq, flags, window, options, payload),
                (padding, ttl, tos, ipv4_frag, (break_ip_checksum, break_tcp_checksum)),
            )| Syn {
                src_mac,
                dst_mac,
                vlan,
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport,
                dport,
                seq,
                flags,
                window,
                options,
                payload,
                padding,
                ttl,
                tos,
                ipv4_frag,
                break_ip_checksum,
                break_tcp_checksum,
            },
        )
}

#[test]
fn random_syn_like_frames_are_answered_exactly_as_the_worker_would_or_left_to_it() {
    if !common::require_root("random_syn_like_frames_are_answered_exactly_as_the_worker_would_or_left_to_it") {
        return;
    }
    let mut r = rig(Knobs::default());
    r.prog.allow_vlan(7).unwrap();
    let answered = std::cell::Cell::new(0u64);
    let runs = std::cell::Cell::new(0u64);
    for k in [Knobs::default(), Knobs { timestamps: false, window_scale: 3, ..Knobs::default() }] {
        r.reconfigure(k);
        let mut runner = TestRunner::new(PropConfig { cases: 10_000, ..PropConfig::default() });
        runner
            .run(&arb_syn(), |s| {
                let frame = s.build();
                let (action, _) = r.run(&frame).map_err(TestCaseError::fail)?;
                runs.set(runs.get() + 1);
                match action {
                    XdpAction::Tx => answered.set(answered.get() + 1),
                    // Drop: ours, left to the worker (no socket here); Pass: not ours or not parseable.
                    XdpAction::Drop | XdpAction::Pass => {}
                    other => return Err(TestCaseError::fail(format!("verdict {other:?}"))),
                }
                Ok(())
            })
            .unwrap();
    }
    let (answered, runs) = (answered.get(), runs.get());
    let c = r.counters();
    assert_eq!(c.total(), runs);
    assert_eq!(c.passed + c.dropped, c.reasons());
    assert_eq!(c.answered, answered);
    // The generator is biased towards good SYNs: a fair share must have been answered, or the test tests nothing.
    assert!(answered > runs / 20, "only {answered} of {runs} answered");
}
