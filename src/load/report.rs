//! The results of a load run as people and scripts read them: a table, one JSON object (also the last line of
//! stdout), and `.hgrm` percentile-distribution files.
//!
//! It owns the field names of the JSON (scripts depend on them: `offered_cps`, `achieved_cps`, `completed`,
//! `failed`, `failures`, and `connect_us` / `response_us` / `lifetime_us` with `p50` `p90` `p99` `p999` `p9999`
//! `max` `mean` `count`). It only formats; it never measures.

use super::app::{Counts, Failure};
use super::flood::Replies;
use super::histograms::{write_hgrm, Histograms, Percentiles};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Counters of the generator itself: is it the bottleneck, did the rings drop anything?
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct GeneratorStats {
    /// Share of the run the busiest worker spent in turns that did work: near 1.0 the generator itself is the
    /// bottleneck and its figures say little about the server.
    pub busy: f64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub retransmits: u64,
    pub rsts_sent: u64,
    /// Frames the core could not send for want of a free TX frame.
    pub no_tx_buffer: u64,
    /// Segments from the target that matched no connection of ours.
    pub unmatched_segments: u64,
    /// Frames from the target to addresses outside `--src` (another process's flood, say), dropped unread.
    pub foreign_frames: u64,
    /// Closed loop: starts that found every source tuple live or in TIME-WAIT and waited for one to free
    /// (instead of failing as `tuple_exhausted`, as an open loop's do).
    pub tuple_waits: u64,
    /// Segments that arrived on one worker's queue for a tuple of another's (the peer answered on another
    /// queue) and were handed to their owner.
    pub handed_off: u64,
    /// Of those, dropped instead: the owner's inbox was full.
    pub handoff_dropped: u64,
    /// TIME-WAIT entries at the end of the run.
    pub time_wait: u64,
    pub time_wait_overflow: u64,
    /// Frames the kernel dropped on our receive side: `rx_ring_full` + `rx_dropped`.
    pub rx_ring_drops: u64,
    /// Of those, dropped because the RX ring was full (the generator fell behind).
    pub rx_ring_full: u64,
    /// The others (the kernel's `rx_dropped`): mostly no frame on the fill ring to receive into (copy mode),
    /// or a frame too large for a UMEM frame.
    pub rx_dropped: u64,
    /// Times the kernel found the fill ring empty: a separate count of occasions, not of frames, so not part
    /// of `rx_ring_drops` (in zero-copy mode the driver's drops for it are counted by the NIC, not here).
    pub rx_fill_empty: u64,
    pub tx_kicks: u64,
}

/// A flood's results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FloodSummary {
    pub kind: &'static str,
    /// Frames the flood committed to the send ring, alone or beside a load (the ring's completions cannot tell
    /// the flood's frames from the load's).
    pub sent: u64,
    /// `sent` over `duration_s`.
    pub pps: f64,
    /// The flood's span, from its first frame to its last (the longest of the workers').
    pub duration_s: f64,
    /// What the target sent back to the spoofed sources; `null` when not counted (a flood alone without
    /// `--count-replies` only transmits).
    pub replies: Option<Replies>,
}

/// Everything a run reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// `open`, `closed` or `flood`.
    pub mode: &'static str,
    pub target: String,
    pub src: String,
    /// Open loop: the rate asked for. `null` in closed loop.
    pub offered_cps: Option<f64>,
    /// Closed loop: connections kept in flight.
    pub concurrency: Option<u64>,
    /// Completed connections per second of the measured window.
    pub achieved_cps: f64,
    /// The measured window, from the end of the warm-up: to the last measured start in open loop (at least the
    /// planned span); to the last completion in closed loop (at least `--duration`, unless interrupted).
    pub duration_s: f64,
    /// Stopped early by SIGINT/SIGTERM: the figures cover the part that ran.
    pub interrupted: bool,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// completed / (completed + failed); 0 when nothing ended.
    pub success_ratio: f64,
    pub failures: BTreeMap<&'static str, u64>,
    pub connect_us: Percentiles,
    pub response_us: Percentiles,
    pub lifetime_us: Percentiles,
    /// How late connections started against their schedule.
    pub start_lag_us: Percentiles,
    pub generator: GeneratorStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodSummary>,
    /// The flood's rate (frames per second), also inside `flood`, here for scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_pps: Option<f64>,
    /// `.hgrm` files written, by histogram.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hgrm: BTreeMap<&'static str, String>,
}

impl Summary {
    /// Fills the outcome and latency fields from merged counts and histograms.
    pub fn set_results(&mut self, counts: &Counts, hist: &Histograms, window_s: f64) {
        self.started = counts.started;
        self.completed = counts.completed;
        self.failed = counts.failed_total();
        let ended = self.completed + self.failed;
        self.success_ratio = if ended == 0 { 0.0 } else { self.completed as f64 / ended as f64 };
        self.failures = Failure::ALL.iter().map(|f| (f.name(), counts.failed(*f))).collect();
        self.duration_s = window_s;
        self.achieved_cps = if window_s > 0.0 { self.completed as f64 / window_s } else { 0.0 };
        self.connect_us = Percentiles::of(&hist.connect);
        self.response_us = Percentiles::of(&hist.response);
        self.lifetime_us = Percentiles::of(&hist.lifetime);
        self.start_lag_us = Percentiles::of(&hist.start_lag);
    }

    /// The JSON object on one line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A warning when the generator could not keep its own schedule (open loop): a start lag of a millisecond
    /// at the 99th percentile, or starts it gave up on. Its figures then say more about its core than about the
    /// target, which a reader of the table should not have to work out from the start-lag row.
    fn behind_warning(&self) -> Option<String> {
        const LAG_US: u64 = 1000;
        const IDLE_BELOW: f64 = 0.5;
        let skipped = self.failures.get(Failure::GeneratorBehind.name()).copied().unwrap_or(0);
        let lag = self.start_lag_us.p99;
        if self.offered_cps.is_none() || (skipped == 0 && lag < LAG_US) {
            return None;
        }
        let never = if skipped > 0 {
            format!(", {skipped} never sent: less than half their timeout left")
        } else {
            String::new()
        };
        // A generator that was mostly idle did not run out of core: its thread was kept off its CPU (the
        // machine's scheduling), and that is what the latencies carry, not the generator's limit.
        let why = if skipped > 0 || self.generator.busy >= IDLE_BELOW {
            "these figures show its limit more than the target's"
        } else {
            "it was mostly idle, so its thread was kept off its CPU: the latencies include those waits"
        };
        Some(format!(
            "warning: the generator fell behind its schedule (start lag p99 {lag} µs, {:.0}% busy{never}); {why}",
            self.generator.busy * 100.0
        ))
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        if self.mode == "flood" {
            if let Some(f) = &self.flood {
                let _ = writeln!(
                    t,
                    "{} flood to {} from {}: {} frames in {:.2} s = {} frames/s",
                    f.kind,
                    self.target,
                    self.src,
                    f.sent,
                    f.duration_s,
                    per_second(f.pps)
                );
                match f.replies {
                    Some(r) => {
                        let _ = writeln!(
                            t,
                            "replies to spoofed sources: {} SYN-ACK, {} RST, {} other",
                            r.syn_ack, r.rst, r.other
                        );
                        // The one core that sends the flood also receives the replies; what its ring had no
                        // room for was never counted, and the counts alone would read as a server that ignored it.
                        let lost = self.generator.rx_ring_drops;
                        if lost > 0 {
                            let _ = writeln!(
                                t,
                                "warning: the generator's own receive ring dropped {lost} frames while it flooded: \
                                 the replies above are a lower bound"
                            );
                        }
                    }
                    None => {
                        let _ = writeln!(t, "replies not counted (transmit only; --count-replies counts them)");
                    }
                }
            }
            return t;
        }
        let offered = match (self.offered_cps, self.concurrency) {
            (Some(r), _) => format!("open loop, {} conn/s offered", per_second(r)),
            (None, Some(c)) => format!("closed loop, {c} in flight"),
            _ => String::from("?"),
        };
        let pct = |x: f64| x * 100.0;
        let _ = writeln!(t, "target {} from {}: {offered}", self.target, self.src);
        if self.interrupted {
            let _ = writeln!(t, "interrupted: the figures cover the part that ran");
        }
        let _ = writeln!(
            t,
            "achieved {} conn/s over {:.2} s: {} started, {} completed, {} failed ({:.3}% success)",
            per_second(self.achieved_cps),
            self.duration_s,
            self.started,
            self.completed,
            self.failed,
            pct(self.success_ratio)
        );
        let reasons: Vec<String> =
            self.failures.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        if !reasons.is_empty() {
            let _ = writeln!(t, "failures: {}", reasons.join(", "));
        }
        if let Some(w) = self.behind_warning() {
            let _ = writeln!(t, "{w}");
        }
        let _ = writeln!(
            t,
            "\n{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "latency µs", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean", "count"
        );
        for (name, p) in [
            ("connect", &self.connect_us),
            ("response", &self.response_us),
            ("lifetime", &self.lifetime_us),
            ("start lag", &self.start_lag_us),
        ] {
            if p.count == 0 && name == "response" {
                continue;
            }
            let _ = writeln!(
                t,
                "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>10}",
                name, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max, p.mean, p.count
            );
        }
        let g = &self.generator;
        let _ = writeln!(
            t,
            "\ngenerator: {:.0}% busy, {} frames in, {} out, {} retransmits, {} RSTs sent, {} unmatched, {} no TX frame, {} RX \
             drops ({} RX ring full, {} no frame or other; fill ring found empty {} times), {} in TIME-WAIT",
            g.busy * 100.0,
            g.frames_in,
            g.frames_out,
            g.retransmits,
            g.rsts_sent,
            g.unmatched_segments,
            g.no_tx_buffer,
            g.rx_ring_drops,
            g.rx_ring_full,
            g.rx_dropped,
            g.rx_fill_empty,
            g.time_wait
        );
        if g.tuple_waits > 0 {
            let _ = writeln!(
                t,
                "{} starts waited for a free source tuple (all live or in TIME-WAIT): widen --src or --src-ports, \
                 or shorten --time-wait",
                g.tuple_waits
            );
        }
        if g.handed_off + g.handoff_dropped > 0 {
            let _ = writeln!(
                t,
                "{} segments came in on another worker's queue and were handed to the worker that owns their \
                 tuple ({} dropped: its inbox was full)",
                g.handed_off + g.handoff_dropped,
                g.handoff_dropped
            );
        }
        if let Some(f) = &self.flood {
            let r = f.replies.unwrap_or_default();
            let _ = writeln!(
                t,
                "flood ({}): {} frames, {} frames/s; replies {} SYN-ACK, {} RST, {} other",
                f.kind,
                f.sent,
                per_second(f.pps),
                r.syn_ack,
                r.rst,
                r.other
            );
        }
        for (name, path) in &self.hgrm {
            let _ = writeln!(t, "{name} percentile distribution: {path}");
        }
        t
    }
}

/// A rate for the table: whole numbers from 10 a second up, two significant digits below (0.25, 3.5, 0.0010),
/// so that a slow run does not read as "achieved 0 conn/s". The JSON keeps the full `f64`.
fn per_second(x: f64) -> String {
    if x.is_nan() || x <= 0.0 || x >= 9.95 {
        return format!("{x:.0}");
    }
    // Digits after the point that leave two significant ones: 1 for 1..10, 2 for 0.1..1, and so on.
    let decimals = (1 - x.log10().floor() as i64).clamp(1, 9) as usize;
    format!("{x:.decimals$}")
}

/// The `.hgrm` paths for `base`: `base` itself for connect latency, then `STEM-response.hgrm`,
/// `STEM-lifetime.hgrm` and `STEM-start_lag.hgrm` beside it (STEM: `base` without a `.hgrm` extension).
pub fn hgrm_paths(base: &Path) -> [(&'static str, PathBuf); 4] {
    let stem = if base.extension().is_some_and(|e| e == "hgrm") { base.with_extension("") } else { base.to_path_buf() };
    let sibling = |name: &str| {
        let mut s = stem.clone().into_os_string();
        s.push(format!("-{name}.hgrm"));
        PathBuf::from(s)
    };
    [
        ("connect", base.to_path_buf()),
        ("response", sibling("response")),
        ("lifetime", sibling("lifetime")),
        ("start_lag", sibling("start_lag")),
    ]
}

/// Writes every histogram as `.hgrm` text (see [`hgrm_paths`]); returns what was written, by name.
pub fn write_hgrms(hist: &Histograms, base: &Path) -> std::io::Result<BTreeMap<&'static str, String>> {
    let mut written = BTreeMap::new();
    for ((name, h), (_, path)) in hist.named().into_iter().zip(hgrm_paths(base)) {
        let mut text = Vec::new();
        write_hgrm(h, &mut text)?;
        std::fs::write(&path, text)?;
        written.insert(name, path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::histograms::record_us;
    use std::time::Duration;

    fn sample() -> Summary {
        let mut counts = Counts { started: 1000, opened: 999, completed: 997, ..Counts::default() };
        counts.failed[Failure::Timeout as usize] = 2;
        counts.failed[Failure::Reset as usize] = 1;
        let mut h = Histograms::new();
        for v in 1..=997 {
            record_us(&mut h.connect, Duration::from_micros(v));
            record_us(&mut h.lifetime, Duration::from_micros(2 * v));
        }
        let mut s = Summary {
            mode: "open",
            target: "10.77.0.1:8080".into(),
            src: "10.77.1.0/24".into(),
            offered_cps: Some(200.0),
            ..Summary::default()
        };
        s.set_results(&counts, &h, 5.0);
        s
    }

    #[test]
    fn json_has_the_fields_scripts_read() {
        let s = sample();
        let v: serde_json::Value = serde_json::from_str(&s.json_line()).unwrap();
        assert_eq!(v["offered_cps"], 200.0);
        assert!((v["achieved_cps"].as_f64().unwrap() - 199.4).abs() < 1e-9);
        assert_eq!(v["completed"], 997);
        assert_eq!(v["failed"], 3);
        assert_eq!(v["failures"]["timeout"], 2);
        assert_eq!(v["failures"]["reset"], 1);
        assert_eq!(v["failures"]["tuple_exhausted"], 0);
        for h in ["connect_us", "response_us", "lifetime_us"] {
            for f in ["p50", "p90", "p99", "p999", "p9999", "max", "mean", "count"] {
                assert!(v[h][f].is_number(), "{h}.{f} missing: {v}");
            }
        }
        assert_eq!(v["connect_us"]["count"], 997);
        assert!(v["connect_us"]["p50"].as_u64().unwrap().abs_diff(499) <= 1);
        assert_eq!(v["response_us"]["count"], 0);
        assert!(v.get("flood").is_none() && v.get("hgrm").is_none());
        assert!(!s.json_line().contains('\n'), "one line");
        let closed = Summary { offered_cps: None, concurrency: Some(8), ..s };
        let v: serde_json::Value = serde_json::from_str(&closed.json_line()).unwrap();
        assert!(v["offered_cps"].is_null() && v["concurrency"] == 8);
    }

    #[test]
    fn flood_replies_the_generator_could_not_receive_make_the_counts_a_lower_bound() {
        // Found by an audit: a 1 s SYN flood alone with --count-replies printed "10208 SYN-ACK" for 266 240 SYNs
        // while its own receive ring had dropped 246 800 frames, which the flood table did not show.
        let mut s = Summary {
            mode: "flood",
            target: "10.77.0.1:8080".into(),
            src: "10.1.0.0/24".into(),
            flood: Some(FloodSummary {
                kind: "syn",
                sent: 266_240,
                pps: 261_183.0,
                duration_s: 1.02,
                replies: Some(Replies { syn_ack: 10_208, ..Replies::default() }),
            }),
            ..Summary::default()
        };
        assert!(!s.table().contains("lower bound"), "{}", s.table());
        s.generator.rx_ring_drops = 246_800;
        let t = s.table();
        assert!(t.contains("dropped 246800 frames") && t.contains("lower bound"), "{t}");
        s.flood.as_mut().unwrap().replies = None;
        assert!(!s.table().contains("lower bound"), "nothing counted, nothing to qualify");
    }

    #[test]
    fn the_table_shows_rates_failures_and_every_percentile() {
        let t = sample().table();
        assert!(t.contains("open loop, 200 conn/s offered"), "{t}");
        assert!(t.contains("achieved 199 conn/s"), "{t}");
        assert!(t.contains("99.700% success"), "{t}");
        assert!(t.contains("failures: reset 1, timeout 2"), "{t}");
        for col in ["p50", "p90", "p99", "p99.9", "p99.99", "max"] {
            assert!(t.contains(col), "{col} missing: {t}");
        }
        assert!(t.lines().any(|l| l.starts_with("connect ")), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("response ")), "no request, no response row: {t}");
        assert!(!t.contains("warning"), "a generator on schedule draws no warning: {t}");
    }

    #[test]
    fn closed_loop_starts_that_waited_for_a_tuple_are_shown_in_the_table_and_the_json() {
        let mut s = sample();
        assert!(!s.table().contains("waited for a free source tuple"), "none waited, no line");
        s.generator.tuple_waits = 7;
        assert!(s.table().contains("7 starts waited for a free source tuple"), "{}", s.table());
        let v: serde_json::Value = serde_json::from_str(&s.json_line()).unwrap();
        assert_eq!(v["generator"]["tuple_waits"], 7);
    }

    #[test]
    fn segments_handed_between_workers_are_shown_with_those_dropped() {
        let mut s = sample();
        assert!(!s.table().contains("another worker's queue"), "none handed off, no line");
        s.generator.handed_off = 40;
        s.generator.handoff_dropped = 2;
        assert!(s.table().contains("42 segments came in on another worker's queue"), "{}", s.table());
        assert!(s.table().contains("(2 dropped"), "{}", s.table());
    }

    #[test]
    fn the_rx_drops_line_adds_up_and_keeps_fill_ring_occasions_apart() {
        // Found by a review: "N RX ring drops (X ring full, Y fill ring empty)" had N = ring full + the kernel's
        // rx_dropped, while Y was another counter (occasions, not frames): X + Y did not make N.
        let mut s = sample();
        s.generator.rx_ring_drops = 30;
        s.generator.rx_ring_full = 10;
        s.generator.rx_dropped = 20;
        s.generator.rx_fill_empty = 7;
        let t = s.table();
        assert!(
            t.contains("30 RX drops (10 RX ring full, 20 no frame or other; fill ring found empty 7 times)"),
            "{t}"
        );
    }

    #[test]
    fn slow_rates_keep_two_significant_digits_in_the_table() {
        // Found by an audit: `--rate 0.3` printed "open loop, 0 conn/s offered" and "achieved 0 conn/s".
        let counts = Counts { started: 3, opened: 3, completed: 3, ..Counts::default() };
        let mut s = Summary { mode: "open", offered_cps: Some(0.3), ..Summary::default() };
        s.set_results(&counts, &Histograms::new(), 10.0);
        let t = s.table();
        assert!(t.contains("open loop, 0.30 conn/s offered") && t.contains("achieved 0.30 conn/s"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&s.json_line()).unwrap();
        assert_eq!((v["offered_cps"].as_f64(), v["achieved_cps"].as_f64()), (Some(0.3), Some(0.3)), "JSON: f64");
        for (x, shown) in [
            (0.0, "0"),
            (0.001, "0.0010"),
            (0.04, "0.040"),
            (0.25, "0.25"),
            (1.0, "1.0"),
            (3.5, "3.5"),
            (9.94, "9.9"),
            (9.96, "10"),
            (199.4, "199"),
        ] {
            assert_eq!(per_second(x), shown, "{x}");
        }
        let mut flood = Summary {
            mode: "flood",
            flood: Some(FloodSummary { kind: "syn", sent: 1, pps: 0.5, duration_s: 2.0, replies: None }),
            ..Summary::default()
        };
        assert!(flood.table().contains("= 0.50 frames/s"), "{}", flood.table());
        flood.mode = "open";
        assert!(flood.table().contains("flood (syn): 1 frames, 0.50 frames/s"), "{}", flood.table());
    }

    #[test]
    fn a_generator_behind_its_schedule_is_named_in_the_table() {
        let mut counts = Counts { started: 1000, opened: 600, completed: 600, ..Counts::default() };
        counts.failed[Failure::GeneratorBehind as usize] = 400;
        let mut h = Histograms::new();
        for v in 0..1000 {
            record_us(&mut h.start_lag, Duration::from_millis(v));
        }
        let mut s = Summary { mode: "open", offered_cps: Some(200.0), ..Summary::default() };
        s.generator.busy = 1.0;
        s.set_results(&counts, &h, 5.0);
        let t = s.table();
        assert!(t.contains("failures: generator_behind 400"), "{t}");
        let w =
            t.lines().find(|l| l.starts_with("warning: the generator fell behind")).unwrap_or_else(|| panic!("{t}"));
        assert!(w.contains("100% busy") && w.contains("400 never sent"), "{w}");
        // A lag alone is enough, and it is read at the 99th percentile.
        let mut lagging = Histograms::new();
        for v in 0..1000 {
            record_us(&mut lagging.start_lag, Duration::from_micros(if v < 985 { 3 } else { 5000 }));
        }
        s.set_results(&Counts { started: 1000, completed: 1000, ..Counts::default() }, &lagging, 5.0);
        assert!(
            s.table().contains("warning: the generator fell behind its schedule (start lag p99 50"),
            "{}",
            s.table()
        );
        // Found by an audit: at 100 to 1 000 conn/s, 0 to 9 % busy, a late wake-up (the machine's) was blamed on
        // the generator's limit.
        s.generator.busy = 0.05;
        let t = s.table();
        let w =
            t.lines().find(|l| l.starts_with("warning: the generator fell behind")).unwrap_or_else(|| panic!("{t}"));
        assert!(w.contains("5% busy") && w.contains("mostly idle") && !w.contains("its limit"), "{w}");
        let mut on_time = Histograms::new();
        record_us(&mut on_time.start_lag, Duration::from_micros(3));
        s.set_results(&Counts { started: 1, completed: 1, ..Counts::default() }, &on_time, 5.0);
        assert!(!s.table().contains("warning"), "{}", s.table());
    }

    #[test]
    fn hgrm_files_are_the_given_path_and_named_siblings() {
        let p = hgrm_paths(Path::new("/tmp/run.hgrm"));
        assert_eq!(p[0].1, PathBuf::from("/tmp/run.hgrm"));
        assert_eq!(p[1].1, PathBuf::from("/tmp/run-response.hgrm"));
        assert_eq!(p[3].1, PathBuf::from("/tmp/run-start_lag.hgrm"));
        let q = hgrm_paths(Path::new("out/lat"));
        assert_eq!(q[0].1, PathBuf::from("out/lat"));
        assert_eq!(q[2].1, PathBuf::from("out/lat-lifetime.hgrm"));
        let dir = std::env::temp_dir().join(format!("xdptcp-hgrm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = Histograms::new();
        record_us(&mut h.connect, Duration::from_micros(42));
        let written = write_hgrms(&h, &dir.join("x.hgrm")).unwrap();
        assert_eq!(written.len(), 4);
        let text = std::fs::read_to_string(dir.join("x.hgrm")).unwrap();
        assert!(text.starts_with("       Value     Percentile"), "{text}");
        assert!(text.contains("Total count    =            1]"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
