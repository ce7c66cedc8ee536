//! The machine's own latency floor: one thread per CPU spins on the monotonic clock and records every gap in
//! which it did not run. On a VM the hypervisor takes vCPUs away for milliseconds at a time (measured here: a few
//! times a second, up to ~14 ms, with nothing else running); every connection in flight during such a gap waits
//! it out, whatever the server. The bench prints this beside the latencies so that a tail is read against it.

use serde::Serialize;
use std::time::{Duration, Instant};

/// Gaps seen by one spinning thread.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuStalls {
    pub cpu: usize,
    /// Gaps longer than 100 µs, and longer than 1 ms.
    pub over_100us: u64,
    pub over_1ms: u64,
    pub max_us: f64,
    /// Share of the probe's time spent in gaps longer than 100 µs.
    pub stalled_fraction: f64,
}

/// The gaps of every probed CPU over one probe.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Gaps {
    pub secs: f64,
    pub cpus: Vec<CpuStalls>,
}

impl Gaps {
    /// Gaps over 1 ms per CPU per second.
    pub fn over_1ms_per_s(&self) -> f64 {
        let n: u64 = self.cpus.iter().map(|c| c.over_1ms).sum();
        n as f64 / self.cpus.len().max(1) as f64 / self.secs.max(1e-9)
    }

    /// One line per CPU for the console and the report.
    pub fn describe(&self) -> Vec<String> {
        self.cpus
            .iter()
            .map(|c| {
                format!(
                    "CPU {}: {} gaps > 100 µs and {} > 1 ms in {:.0} s (longest {:.1} ms), {:.2}% of the time away",
                    c.cpu,
                    c.over_100us,
                    c.over_1ms,
                    self.secs,
                    c.max_us / 1000.0,
                    100.0 * c.stalled_fraction
                )
            })
            .collect()
    }
}

/// Spins on each of `cpus` for `secs` seconds, all at once.
pub fn probe(cpus: &[usize], secs: f64) -> Gaps {
    let handles: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                spin(cpu, Duration::from_secs_f64(secs))
            })
        })
        .collect();
    Gaps { secs, cpus: handles.into_iter().filter_map(|h| h.join().ok()).collect() }
}

fn spin(cpu: usize, dur: Duration) -> CpuStalls {
    let start = Instant::now();
    let mut last = start;
    let mut s = CpuStalls { cpu, ..Default::default() };
    let mut stalled = Duration::ZERO;
    loop {
        let now = Instant::now();
        let gap = now - last;
        last = now;
        if gap > Duration::from_micros(100) {
            s.over_100us += 1;
            stalled += gap;
            if gap > Duration::from_millis(1) {
                s.over_1ms += 1;
            }
            s.max_us = s.max_us.max(gap.as_secs_f64() * 1e6);
        }
        if now - start >= dur {
            break;
        }
    }
    s.stalled_fraction = stalled.as_secs_f64() / dur.as_secs_f64();
    s
}
