//! The control plane's view of all workers: the latest report of each, summed, and rendered as a one-line
//! summary, a JSON document and the Prometheus text format.

use crate::io::{SteerCounters, XskStats};
use crate::runtime::metric_help::help;
use crate::runtime::worker::Report;
use crate::tcp::{Memory, Stats};
use std::fmt::Write as _;

/// The latest report of every worker.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub workers: Vec<Report>,
    /// Counters of the XDP program (all CPUs summed), when available.
    pub steer: Option<SteerCounters>,
    /// Seconds since the server started.
    pub uptime: f64,
    /// Times `--xdp-cookies` fell back to answering SYNs in the workers (see `runtime::answer_watch`).
    pub xdp_fallbacks: u64,
}

impl Snapshot {
    pub fn new(workers: usize) -> Self {
        Snapshot {
            workers: (0..workers).map(|w| Report { worker: w, ..Report::default() }).collect(),
            ..Default::default()
        }
    }

    pub fn update(&mut self, r: Report) {
        if let Some(slot) = self.workers.get_mut(r.worker) {
            *slot = r;
        }
    }

    /// Sum of all workers' counters (gauges summed too).
    pub fn total(&self) -> Stats {
        let mut t = Stats::default();
        for w in &self.workers {
            t.accumulate(&w.stats);
        }
        t
    }

    pub fn io_total(&self) -> XskStats {
        let mut t = XskStats::default();
        for io in self.workers.iter().filter_map(|w| w.io.as_ref()) {
            t.rx_frames += io.rx_frames;
            t.fill_kicks += io.fill_kicks;
            t.tx.committed += io.tx.committed;
            t.tx.submitted += io.tx.submitted;
            t.tx.completed += io.tx.completed;
            t.tx.kicks += io.tx.kicks;
            t.tx.no_frame += io.tx.no_frame;
            t.kernel.rx_dropped += io.kernel.rx_dropped;
            t.kernel.rx_invalid_descs += io.kernel.rx_invalid_descs;
            t.kernel.tx_invalid_descs += io.kernel.tx_invalid_descs;
            t.kernel.rx_ring_full += io.kernel.rx_ring_full;
            t.kernel.rx_fill_ring_empty_descs += io.kernel.rx_fill_ring_empty_descs;
            t.kernel.tx_ring_empty_descs += io.kernel.tx_ring_empty_descs;
        }
        t
    }

    pub fn memory(&self) -> Memory {
        let mut m = Memory::default();
        for w in &self.workers {
            m += w.memory;
        }
        m
    }

    /// Every figure as (name, value, is_gauge), the one list the JSON and Prometheus renderings share.
    pub fn fields(&self) -> Vec<(String, f64, bool)> {
        let t = self.total();
        let mut v: Vec<(String, f64, bool)> = t
            .fields()
            .into_iter()
            .map(|(k, n)| {
                let gauge = k == "live_conns" || k == "time_wait";
                (k, n as f64, gauge)
            })
            .collect();
        let io = self.io_total();
        for (k, n) in [
            ("xsk_rx_frames", io.rx_frames),
            ("xsk_fill_kicks", io.fill_kicks),
            ("xsk_tx_committed", io.tx.committed),
            ("xsk_tx_submitted", io.tx.submitted),
            ("xsk_tx_completed", io.tx.completed),
            ("xsk_tx_kicks", io.tx.kicks),
            ("xsk_tx_no_frame", io.tx.no_frame),
            ("xsk_rx_dropped", io.kernel.rx_dropped),
            ("xsk_rx_invalid_descs", io.kernel.rx_invalid_descs),
            ("xsk_tx_invalid_descs", io.kernel.tx_invalid_descs),
            ("xsk_rx_ring_full", io.kernel.rx_ring_full),
            ("xsk_rx_fill_ring_empty", io.kernel.rx_fill_ring_empty_descs),
            ("xsk_tx_ring_empty", io.kernel.tx_ring_empty_descs),
        ] {
            v.push((k.to_string(), n as f64, false));
        }
        if let Some(s) = &self.steer {
            for (k, n) in s.named() {
                v.push((format!("xdp_{k}"), n as f64, false));
            }
        }
        v.push(("xdp_syn_answer_fallbacks".into(), self.xdp_fallbacks as f64, false));
        let lost = self.workers.iter().fold((0, 0), |a, w| (a.0 + w.injected_loss.0, a.1 + w.injected_loss.1));
        v.push(("injected_loss_rx".into(), lost.0 as f64, false));
        v.push(("injected_loss_tx".into(), lost.1 as f64, false));
        let stalls: u64 = self.workers.iter().map(|w| w.stalls.over_1ms).sum();
        let longest = self.workers.iter().map(|w| w.stalls.longest).max().unwrap_or_default();
        v.push(("worker_stalls_over_1ms".into(), stalls as f64, false));
        v.push(("worker_longest_stall_us".into(), longest.as_micros() as f64, true));
        let m = self.memory();
        v.push(("memory_bytes".into(), m.total() as f64, true));
        // Of which the rings of out-of-order data: they grow with the connections that lose segments (kept for
        // reuse, bounded by the reassembly memory), not with traffic that holds no state.
        v.push(("memory_reassembly_bytes".into(), m.reassembly as f64, true));
        v.push(("workers".into(), self.workers.len() as f64, true));
        v.push(("uptime_seconds".into(), self.uptime, true));
        v
    }

    /// One line for stderr.
    pub fn summary_line(&self, rate_conns: f64) -> String {
        let t = self.total();
        let dropped: u64 = t.malformed.iter().sum::<u64>() + t.dropped.iter().sum::<u64>();
        format!(
            "xdptcp: {:.0}s live={} tw={} opened={} ({:.0}/s) closed={} reset={} refused={} syn={} cookies sent={} (in XDP {}) ok={} bad={} rst={} challenge={} rexmit={} drops={} in={} out={}",
            self.uptime,
            t.live_conns,
            t.time_wait,
            t.conns_opened,
            rate_conns,
            t.conns_closed,
            t.conns_reset,
            t.conns_refused_full,
            t.syns_received,
            t.cookies_sent,
            self.steer.map_or(0, |s| s.answered),
            t.cookies_accepted,
            t.cookies_rejected,
            t.rsts_sent,
            t.challenge_acks,
            t.retransmits,
            dropped,
            t.frames_in,
            t.frames_out
        )
    }

    /// A JSON object: totals, then per-worker counters.
    pub fn to_json(&self) -> serde_json::Value {
        let mut total = serde_json::Map::new();
        for (k, v, _) in self.fields() {
            total.insert(k, json_number(v));
        }
        let workers: Vec<serde_json::Value> = self
            .workers
            .iter()
            .map(|w| {
                let mut m = serde_json::Map::new();
                m.insert("worker".into(), w.worker.into());
                for (k, v) in w.stats.fields() {
                    m.insert(k, v.into());
                }
                serde_json::Value::Object(m)
            })
            .collect();
        serde_json::json!({ "total": total, "workers": workers })
    }

    /// The Prometheus text exposition format (version 0.0.4): every metric with its `# HELP` and `# TYPE`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for (k, v, gauge) in self.fields() {
            let name = describe(&mut out, &k, if gauge { "gauge" } else { "counter" });
            let _ = writeln!(out, "{name} {v}");
        }
        let name = describe(&mut out, "worker_live_conns", "gauge");
        for w in &self.workers {
            let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.worker, w.stats.live_conns);
        }
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of the figure `k`; returns its metric name.
fn describe(out: &mut String, k: &str, kind: &str) -> String {
    let name = format!("xdptcp_{k}");
    // A figure without words still gets its HELP line (the tests see that none is without).
    let text = help(k).unwrap_or_else(|| k.replace('_', " "));
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    name
}

fn json_number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::from(v)
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomically(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_workers_and_render() {
        let mut s = Snapshot::new(2);
        let mut a = Report { worker: 0, ..Report::default() };
        a.stats.conns_opened = 3;
        a.stats.live_conns = 1;
        let mut b = Report { worker: 1, ..Report::default() };
        b.stats.conns_opened = 4;
        s.update(a);
        s.update(b);
        s.update(Report { worker: 7, ..Report::default() }); // out of range: ignored
        assert_eq!(s.total().conns_opened, 7);
        let j = s.to_json();
        assert_eq!(j["total"]["conns_opened"], 7);
        assert_eq!(j["workers"][1]["conns_opened"], 4);
        let p = s.to_prometheus();
        assert!(p.contains("# TYPE xdptcp_conns_opened counter\nxdptcp_conns_opened 7\n"));
        assert!(p.contains("# TYPE xdptcp_live_conns gauge\n"));
        assert!(s.summary_line(0.0).contains("live=1"));
    }

    #[test]
    fn every_prometheus_sample_has_help_and_type_lines_before_it() {
        let mut s = Snapshot::new(2);
        s.steer = Some(SteerCounters::default());
        let page = s.to_prometheus();
        let (mut helped, mut typed) = (Vec::<&str>::new(), Vec::<&str>::new());
        let mut samples = 0;
        for line in page.lines() {
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some("#"), Some("HELP"), Some(name)) => {
                    assert!(!helped.contains(&name), "a second HELP for {name}");
                    assert!(words.next().is_some(), "an empty HELP for {name}");
                    helped.push(name);
                }
                (Some("#"), Some("TYPE"), Some(name)) => {
                    assert!(!typed.contains(&name), "a second TYPE for {name}");
                    assert!(matches!(words.next(), Some("counter" | "gauge")), "{line}");
                    typed.push(name);
                }
                (Some(sample), Some(_value), None) => {
                    let name = sample.split('{').next().unwrap();
                    assert!(helped.contains(&name) && typed.contains(&name), "{name}: no HELP or TYPE before it");
                    samples += 1;
                }
                _ => panic!("not a line of the text format: {line:?}"),
            }
        }
        assert_eq!(samples, s.fields().len() + 2, "every figure and both workers' live connections");
    }

    #[test]
    fn every_figure_has_words_of_its_own() {
        let mut s = Snapshot::new(1);
        s.steer = Some(SteerCounters::default());
        for (k, _, _) in s.fields().into_iter().chain([("worker_live_conns".to_string(), 0.0, true)]) {
            assert!(help(&k).is_some(), "no HELP text for {k} in runtime::metric_help");
        }
    }
}
