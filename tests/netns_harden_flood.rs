//! Floods against `xdptcp serve`, from spoofed sources of the test's own subnet, bounded in count and time.
//!
//! - A SYN flood (hping3 from one spoofed address with counting source ports, and `xdptcp load --flood syn` at the
//!   ring's rate from a spoofed /26) while a Linux client connects in a loop: the legitimate client keeps
//!   succeeding (≥ 99.9 %), the server's live table and memory stay flat (cookies keep no state), and no SYN earns
//!   more than one SYN-ACK (no amplification, no SYN-ACK retransmission), counted per tuple in a capture on the
//!   attacker's side.
//! - An ACK flood of random acknowledgment numbers (blind cookie guesses across tuples, ≥ 10^7 in CI, more with
//!   `XDPTCP_HARDEN_ACK_GUESSES`): nothing is accepted beyond what the cookie's 2^-29 bound allows, no guess earns
//!   a SYN-ACK, and the RSTs that answer the guesses never exceed the endpoint's RST limiter (50 000/s, burst
//!   5 000), seen both in the server's counters and in a capture.
//!
//! The attacker's namespace never answers the replies it receives: they go to addresses no interface there owns,
//! so its kernel drops them as not its own (the capture sees them first).
// The AF_XDP layer, the runtime and the binary: the default `af-xdp` feature.
#![cfg(feature = "af-xdp")]

mod common;
mod harden_support;
mod serve_support;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harden_support::capture::{Capture, Seg};
use harden_support::n;
use harden_support::sampler::Sampler;
use harden_support::traffic::{hping3_syns, xdptcp_load, ClientLoops};
use serve_support::clients::{self, Exchange};
use serve_support::{Server, PORT};

/// Spoofed sources of `xdptcp load` floods: 10.77.0.129-190, owned by nobody.
const FLOOD_SRC: &str = "10.77.0.128/26";
/// Kernel client loops connecting side by side during the SYN flood.
const LOOPS: usize = 4;
/// Memory growth (bytes) the legitimate connections alone may cause during a flood.
const MEMORY_SLACK: u64 = 16 * 1024;
/// The spoofed source of hping3.
const HPING_SRC: &str = "10.77.0.100";

fn in_flood_range(a: IpAddr) -> bool {
    matches!(a, IpAddr::V4(v) if v.octets()[..3] == [10, 77, 0] && (128..192).contains(&v.octets()[3]))
}

fn wall_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn serve(topo: &common::VethPair, extra: &[&str]) -> Server {
    let port = PORT.to_string();
    let mut args = vec!["--ports", &port, "--app", "echo", "--time-wait", "2", "--cpus", serve_support::SERVER_CPU];
    args.extend_from_slice(extra);
    Server::start(&topo.ns_a, &topo.if_a, &args)
}

#[test]
fn syn_flood_spoofed_keeps_legitimate_success_above_99_9_percent_state_flat_and_one_syn_ack_per_syn() {
    let test = "syn_flood_spoofed_keeps_legitimate_success_above_99_9_percent_state_flat_and_one_syn_ack_per_syn";
    if !common::require_root(test) {
        return;
    }
    let topo = serve_support::topology("xhsyn");
    let server = serve(&topo, &[]);
    let dst = SocketAddr::new(topo.ip4_a.into(), PORT);
    let _load = serve_support::load_lock();

    // Warm up as the measured client will run (LOOPS connections at a time), so that the table and the send
    // buffers have their working size before the baseline is taken.
    let warm = clients::concurrent(&topo.ns_b, &[dst], Exchange::Echo, 300, LOOPS as u64);
    assert_eq!((warm.ok, warm.failed), (300, 0), "warm-up: {:?}", warm.examples);
    let base = server
        .wait_stats("the warm-up closed", Duration::from_secs(5), |s| s["conns_closed"] == 300 && s["live_conns"] == 0);

    // Every SYN and SYN-ACK that is not the legitimate client's, both directions, on the attacker's side.
    let filter = format!("tcp[13] & 2 != 0 and not host {}", topo.ip4_b);
    let cap = Capture::start(&topo.ns_b, &topo.if_b, None, &filter);
    let sampler = Sampler::start(server.stats_path.clone());
    // The legitimate clients are the only kernel TCP in the attacker's namespace (hping3 sends raw frames, the
    // flood bypasses the kernel): its counters are theirs.
    let nstat_before = serve_support::nstat::snapshot(&topo.ns_b);
    let legit = ClientLoops::start(&topo.ns_b, dst, Exchange::Echo, LOOPS);
    std::thread::sleep(Duration::from_millis(100));

    const HPING_COUNT: u32 = 40_000;
    let ns_b = topo.ns_b.clone();
    let hping = std::thread::spawn(move || hping3_syns(&ns_b, HPING_SRC, dst, 20_000, HPING_COUNT, 25));
    const FLOOD_COUNT: u64 = 1_000_000;
    let count = FLOOD_COUNT.to_string();
    #[rustfmt::skip]
    let flood = xdptcp_load(&topo.ns_b, Duration::from_secs(60), &[
        "--iface", &topo.if_b, "--target", &dst.to_string(), "--src", FLOOD_SRC, "--flood", "syn",
        "--connections", &count,
    ]);
    let flood_end = wall_now();
    let hping_out = hping.join().expect("hping3");
    // The legitimate client is measured while the floods run, from just before to their end.
    let legit = legit.stop();
    // A retransmitted SYN-ACK would come a second (Linux: 1 s, then 2 s) after the first: wait past that.
    std::thread::sleep(Duration::from_millis(2500));
    let samples = sampler.stop();
    let cap = cap.stop();
    let after = server.wait_stats("the flood counted", Duration::from_secs(5), |s| s["live_conns"] == 0);
    let client = serve_support::nstat::delta(&nstat_before, &serve_support::nstat::snapshot(&topo.ns_b));
    let client_retrans = client.get("TcpRetransSegs").copied().unwrap_or(0);
    let server_retrans = n(&after, "retransmits") - n(&base, "retransmits");
    let delta = |key: &str| n(&after, key) - n(&base, key);

    // --- figures ------------------------------------------------------------------------------------------
    let f = &flood["flood"];
    let flood_sent = f["sent"].as_u64().expect("flood sent");
    let hping_syns: Vec<&Seg> = cap.segs.iter().filter(|s| s.syn_only() && s.src.to_string() == HPING_SRC).collect();
    let hping_synacks: Vec<&Seg> = cap.segs.iter().filter(|s| s.syn_ack() && s.dst.to_string() == HPING_SRC).collect();
    let flood_synacks: Vec<&Seg> = cap.segs.iter().filter(|s| s.syn_ack() && in_flood_range(s.dst)).collect();
    let hping_span = match (hping_syns.first(), hping_syns.last()) {
        (Some(a), Some(b)) if b.ts > a.ts => b.ts - a.ts,
        _ => 0.0,
    };
    eprintln!(
        "{test}:\n  legitimate kernel clients (echo, {LOOPS} loops): {} ok, {} failed ({:.4} %) in {:.1} s, {} took > 0.9 s \
         (a SYN retransmitted), slowest {:?}, failures {:?}\n  bytes out per byte in (SYN-ACKs / SYNs, hping3 \
         tuples): {:.3}\n  xdptcp load --flood syn: {flood_sent} SYNs at {:.0} pps; \
         SYN-ACKs seen {} ({:.1} % answered)\n  hping3: {} SYNs seen at {:.0} pps, SYN-ACKs seen {}\n  \
         capture: {} frames, {} dropped by the kernel\n  server: live_conns max {} (baseline {}), memory_bytes \
         max {} (baseline {}, after {}), syns_received {}, cookies_sent {}, xsk_rx_dropped {}, rx ring \
         overflow share {:.1} %\n  legitimate losses: retransmitted by the clients {client_retrans} \
         ({} SYNs), by the server {server_retrans}; segments failing the cookie check {} (a client's FIN or data \
         whose handshake ACK and first data were lost: the ISN is no longer SEG.SEQ - 1), RSTs sent {}, conns \
         opened {}",
        legit.tally.ok,
        legit.tally.failed,
        100.0 * legit.success_ratio(),
        legit.elapsed.as_secs_f64(),
        legit.slow,
        legit.slowest,
        legit.tally.examples,
        hping_synacks.iter().map(|s| u64::from(s.wire_len)).sum::<u64>() as f64
            / hping_syns.iter().map(|s| u64::from(s.wire_len)).sum::<u64>().max(1) as f64,
        f["pps"].as_f64().unwrap_or(0.0),
        flood_synacks.len(),
        100.0 * flood_synacks.len() as f64 / flood_sent.max(1) as f64,
        hping_syns.len(),
        hping_syns.len() as f64 / hping_span.max(1e-9),
        hping_synacks.len(),
        cap.captured,
        cap.dropped_by_kernel,
        samples.max("live_conns"),
        n(&base, "live_conns"),
        samples.max("memory_bytes"),
        n(&base, "memory_bytes"),
        n(&after, "memory_bytes"),
        n(&after, "syns_received") - n(&base, "syns_received"),
        n(&after, "cookies_sent") - n(&base, "cookies_sent"),
        n(&after, "xsk_rx_dropped"),
        100.0 * n(&after, "xsk_rx_dropped") as f64 / n(&after, "xdp_redirected").max(1) as f64,
        client.get("TcpExtTCPSynRetrans").copied().unwrap_or(0),
        delta("cookies_rejected"),
        delta("rsts_sent"),
        delta("conns_opened"),
    );

    // --- the legitimate client ----------------------------------------------------------------------------
    assert!(legit.tally.ok >= 1000, "too few legitimate connections to measure a ratio: {legit:?}");
    assert!(
        legit.success_ratio() >= 0.999,
        "legitimate success under the flood {:.4} % < 99.9 %: {:?}\nserver:\n{}",
        100.0 * legit.success_ratio(),
        legit.tally.examples,
        server.stderr_text()
    );

    // --- no state, no growth ------------------------------------------------------------------------------
    assert!(samples.0.len() >= 3, "the stats were sampled during the flood: {samples:?}");
    // Each loop holds one connection, two while a close overlaps its next connect. A connection outlives that
    // only while one side waits to retransmit a segment the full RX ring dropped (the server's FIN in LAST-ACK,
    // the client's data), so every extra one is paid for by a retransmission. A million SYNs holding state would
    // show as hundreds of thousands.
    let may_hold = 2 * LOOPS as u64 + client_retrans + server_retrans;
    assert!(
        samples.max("live_conns") <= may_hold,
        "a SYN flood must not fill the table (cookies keep no state): live_conns max {} > {may_hold}",
        samples.max("live_conns")
    );
    // Flat: a million SYNs leave nothing behind. The legitimate clients may hold a few more connections at once
    // than in the warm-up (a close overlaps the next connect when the worker is busy), so a few hundred bytes of
    // table and buffer growth are theirs; state per SYN would be megabytes. A legitimate connection whose segment
    // the full ring dropped may also hold what followed it, in a reassembly ring (64 KiB, kept for reuse): that
    // growth is the legitimate clients' and is allowed for, ring by ring, only where segments were held.
    let rings = samples.max("memory_reassembly_bytes").saturating_sub(n(&base, "memory_reassembly_bytes"));
    assert!(rings == 0 || delta("out_of_order_held") > 0, "rings grew with nothing held: {rings} bytes");
    assert!(rings <= 2 * LOOPS as u64 * 66 * 1024, "more rings than the legitimate connections could use: {rings}");
    assert!(
        samples.max("memory_bytes") <= n(&base, "memory_bytes") + MEMORY_SLACK + rings,
        "memory grew under the SYN flood: max {} > baseline {} + {MEMORY_SLACK} + {rings} of reassembly rings",
        samples.max("memory_bytes"),
        n(&base, "memory_bytes")
    );
    // Only legitimate connections: every completed exchange opened one, a failed one may or may not have.
    let opened = delta("conns_opened");
    assert!(
        (legit.tally.ok..=legit.tally.ok + legit.tally.failed).contains(&opened),
        "conns opened {opened}: not the legitimate clients' {} completed + up to {} failed",
        legit.tally.ok,
        legit.tally.failed
    );
    // Every reset a client saw is one the server sent and counted.
    assert!(
        legit.tally.resets <= delta("rsts_sent"),
        "clients saw {} resets the server did not send",
        legit.tally.resets
    );

    // --- one SYN-ACK per SYN at most ----------------------------------------------------------------------
    assert!(hping_out.contains(&format!("{HPING_COUNT} packets transmitted")), "hping3: {hping_out}");
    assert_eq!(cap.dropped_by_kernel, 0, "the capture lost frames: per-tuple counts would be wrong");
    assert_eq!(hping_syns.len(), HPING_COUNT as usize, "every hping3 SYN in the capture");
    let mut per_port: HashMap<u16, (u32, u32)> = HashMap::new();
    for s in &hping_syns {
        per_port.entry(s.sport).or_default().0 += 1;
    }
    for s in &hping_synacks {
        per_port.entry(s.dport).or_default().1 += 1;
    }
    let amplified: Vec<_> = per_port.iter().filter(|(_, (syn, sa))| sa > syn).take(5).collect();
    assert!(amplified.is_empty(), "tuples with more SYN-ACKs than SYNs (port, (SYNs, SYN-ACKs)): {amplified:?}");
    assert!(!hping_synacks.is_empty(), "hping3's SYNs were answered");
    assert!(flood_synacks.len() as u64 <= flood_sent, "more SYN-ACKs than flood SYNs");
    assert!(!flood_synacks.is_empty(), "the flood's SYNs were answered");
    // No retransmission: nothing arrives later than the floods' end plus a moment, where a SYN-ACK timer
    // (Linux: 1 s) would fire.
    let last_syn = hping_syns.last().map_or(0.0, |s| s.ts).max(flood_end);
    let late: Vec<&&Seg> = hping_synacks.iter().chain(flood_synacks.iter()).filter(|s| s.ts > last_syn + 0.5).collect();
    assert!(late.is_empty(), "SYN-ACKs after the floods ended (retransmissions?): {:?}", &late[..late.len().min(5)]);
    let synacks_sent = n(&after, "cookies_sent") - n(&base, "cookies_sent");
    let syns = n(&after, "syns_received") - n(&base, "syns_received");
    assert!(synacks_sent <= syns, "the server sent more SYN-ACKs ({synacks_sent}) than it took SYNs ({syns})");
}

/// The smallest k with P(X > k) < 1e-6 for X ~ Poisson(lambda): how many false accepts `lambda` expected ones
/// may turn into without the test ever failing by chance.
fn poisson_bound(lambda: f64) -> u64 {
    let mut k = 0u64;
    let mut term = (-lambda).exp();
    let mut cdf = term;
    while 1.0 - cdf >= 1e-6 {
        k += 1;
        term *= lambda / k as f64;
        cdf += term;
    }
    k
}

/// The most timestamps of `ts` (sorted) inside any window of one second.
fn max_per_second(ts: &[f64]) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..ts.len() {
        while ts[hi] - ts[lo] >= 1.0 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[test]
fn ack_flood_of_random_guesses_opens_nothing_and_rsts_stay_within_the_limiter() {
    let test = "ack_flood_of_random_guesses_opens_nothing_and_rsts_stay_within_the_limiter";
    if !common::require_root(test) {
        return;
    }
    // The endpoint's RST limiter (tcp::Config defaults: rst_per_sec 50 000, burst a tenth of it).
    const RST_PER_SEC: u64 = 50_000;
    const RST_BURST: u64 = 5_000;
    let target: u64 =
        std::env::var("XDPTCP_HARDEN_ACK_GUESSES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    const BURST: u64 = 3_000_000;

    let topo = serve_support::topology("xhack");
    let server = serve(&topo, &[]);
    let _load = serve_support::load_lock();
    let sampler = Sampler::start(server.stats_path.clone());
    let (mut sent, mut bursts, mut flood_secs) = (0u64, 0u32, 0.0f64);
    let (mut rsts_seen, mut synacks_seen, mut other_seen, mut worst_second, mut cap_drops) = (0, 0, 0, 0, 0);
    // A guess the cookie accepted (rarely: see the bound below) opens a connection; the flood's later guesses
    // on the same tuple (about two per tuple over 10^7 guesses) then meet it and earn challenge ACKs.
    let (mut other_tuples, mut other_not_pure_ack) = (HashSet::new(), 0usize);
    let mut stats = server.wait_stats("a first snapshot", Duration::from_secs(5), |_| true);
    let examined = |s: &serde_json::Value| n(s, "cookies_rejected") + n(s, "cookies_accepted");
    while examined(&stats) < target {
        assert!(bursts < 3 + (target / BURST) as u32 * 2, "the server examines too few guesses: {stats}");
        let cap = Capture::start(&topo.ns_b, &topo.if_b, Some("in"), "tcp");
        // The last burst only tops up (a few per cent of the frames overflow the server's ring).
        let count = BURST.min((target - examined(&stats)) * 106 / 100 + 10_000).to_string();
        #[rustfmt::skip]
        let v = xdptcp_load(&topo.ns_b, Duration::from_secs(120), &[
            "--iface", &topo.if_b, "--target", &format!("{}:{PORT}", topo.ip4_a), "--src", FLOOD_SRC,
            "--flood", "ack", "--connections", &count,
        ]);
        std::thread::sleep(Duration::from_millis(300));
        let c = cap.stop();
        sent += v["flood"]["sent"].as_u64().expect("sent");
        flood_secs += v["flood"]["duration_s"].as_f64().unwrap_or(0.0);
        bursts += 1;
        let rst_ts: Vec<f64> = c.segs.iter().filter(|s| s.rst()).map(|s| s.ts).collect();
        rsts_seen += rst_ts.len();
        worst_second = worst_second.max(max_per_second(&rst_ts));
        synacks_seen += c.segs.iter().filter(|s| s.syn_ack()).count();
        for s in c.segs.iter().filter(|s| !s.rst() && !s.syn_ack()) {
            other_seen += 1;
            other_tuples.insert((s.dst, s.dport));
            other_not_pure_ack += usize::from(s.flags & 0x17 != 0x10 || s.payload_len != 0);
        }
        cap_drops += c.dropped_by_kernel;
        // Wait until the server's counters include every frame of the burst that reached it: the generator
        // has exited, the XDP program's counters are read fresh at each snapshot, and the worker's must cover
        // every frame it redirected (handled, or lost at the socket's ring). A few frames may never arrive: the
        // veth drops what its peer's queue cannot take.
        stats = server.wait_stats("the burst counted", Duration::from_secs(10), |s| {
            n(s, "xsk_rx_frames") + n(s, "xsk_rx_dropped") >= n(s, "xdp_redirected")
                && n(s, "frames_in") >= n(s, "xsk_rx_frames")
        });
    }
    let samples = sampler.stop();
    let guesses = examined(&stats);
    let accepted = n(&stats, "cookies_accepted");
    let lambda = guesses as f64 / f64::from(1u32 << 29);
    let allowed = poisson_bound(lambda);
    let rsts = n(&stats, "rsts_sent");
    let uptime = stats["uptime_seconds"].as_f64().unwrap_or(0.0);
    eprintln!(
        "{test}:\n  {sent} random ACKs in {bursts} bursts over {flood_secs:.1} s ({:.0} guesses/s offered); the server \
         examined {guesses} (lost on the way: {} on the veth, {} at the server's RX ring)\n  false accepts: {accepted} \
         (expected by the 2^-29 bound: {lambda:.4}; test allows {allowed}), conns_opened {}\n  RSTs: sent {rsts}, \
         rate-limited {}; server-side max {:.0}/s; captured {rsts_seen} ({cap_drops} capture drops), at most \
         {worst_second} in any 1 s window (limit {RST_PER_SEC}/s + burst {RST_BURST}); SYN-ACKs seen \
         {synacks_seen}, other replies {other_seen} (on {} tuples)",
        sent as f64 / flood_secs.max(1e-9),
        sent.saturating_sub(n(&stats, "xdp_redirected")),
        n(&stats, "xsk_rx_dropped"),
        n(&stats, "conns_opened"),
        n(&stats, "rsts_rate_limited"),
        samples.max_rate("rsts_sent"),
        other_tuples.len(),
    );
    assert!(guesses >= target, "{guesses} guesses examined < {target}");
    assert!(accepted <= allowed, "{accepted} guesses accepted: more than the 2^-29 bound allows ({allowed})");
    assert_eq!(n(&stats, "conns_opened"), accepted, "a connection opened without a valid cookie");
    assert_eq!(synacks_seen, 0, "an ACK flood earned SYN-ACKs");
    assert!(
        other_tuples.len() as u64 <= accepted && other_not_pure_ack == 0,
        "replies other than RST to the guesses: {other_seen} on {} tuples ({other_not_pure_ack} not a bare ACK), \
         but only {accepted} guesses opened a connection to answer them",
        other_tuples.len()
    );
    assert_eq!(
        rsts + n(&stats, "rsts_rate_limited"),
        n(&stats, "cookies_rejected"),
        "every rejected guess is either answered with one RST or counted as rate-limited"
    );
    assert!(n(&stats, "rsts_rate_limited") > 0, "the flood outran the limiter, so some RSTs must be withheld");
    assert!(
        rsts as f64 <= RST_PER_SEC as f64 * uptime + RST_BURST as f64,
        "{rsts} RSTs in {uptime:.1} s: beyond the limiter"
    );
    // Capture times are taken on the receiving side, after the sender's batches (up to 64 frames a kick) and
    // the veth's NAPI batches: they compress a little, so a window may hold a batch more than was sent in it.
    assert!(
        worst_second as u64 <= (RST_PER_SEC + RST_BURST) * 101 / 100,
        "{worst_second} RSTs seen in one second > {RST_PER_SEC} + {RST_BURST} (+1 % for capture timing)"
    );
    // Server side, between stats snapshots: each end of an interval may lag its uptime by one worker report
    // (100 ms), so an interval of dt seconds may hold the RSTs of dt + 0.2 s.
    for (dt, sent) in samples.increases("rsts_sent") {
        let bound = RST_PER_SEC as f64 * (dt + 0.2) + RST_BURST as f64;
        assert!(sent as f64 <= bound, "{sent} RSTs counted in {dt:.2} s between snapshots > {bound:.0}");
    }
    assert!(rsts_seen as u64 <= rsts, "more RSTs on the wire than the server counted");
    // The wire checks above hold trivially for an empty capture: make sure it saw what was sent.
    assert!(rsts_seen > 0, "the capture saw no RST at all (of {rsts} sent)");
    assert!(samples.increases("rsts_sent").len() >= 2, "too few stats snapshots to bound the rate between them");
}
