//! The machine's own latency floor: a thread spins on the monotonic clock of a CPU and records every gap in which
//! it did not run; every connection in flight during such a gap waits it out, whatever the server. The bench
//! prints this beside the latencies so that a tail is read against it.
//!
//! Each CPU is probed twice: alone (the other CPUs idle) and with every bench CPU spinning at once, as they do
//! when the generator and a polling server both run. On the 2-vCPU VMs this project is benched on, the two differ
//! by orders of magnitude (2026-12-05: 0–2 gaps over 100 µs in 10 s alone, some 70 together, a dozen of them over
//! 1 ms): the machine's own tasks (its agents, kernel threads) need a little CPU, and with one CPU idle they run
//! there; with none idle they preempt a spinner for a slice. The count of those preemptions (the spinner's
//! involuntary context switches) is recorded beside the gaps, to tell them from time the hypervisor took.

use super::cpu_takers::{self, CpuTaker};
use serde::Serialize;
use std::time::{Duration, Instant};
use xdptcp::runtime::pin::pin_current_thread;

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
    /// Times the scheduler put another task on the CPU in the spinner's place (involuntary context switches;
    /// `None` where /proc does not say).
    pub preempted: Option<u64>,
}

/// The gaps of every probed CPU over one probe.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Gaps {
    /// Seconds each CPU was probed.
    pub secs: f64,
    pub cpus: Vec<CpuStalls>,
    /// The threads outside the bench that ran longest meanwhile (on any CPU; empty where /proc does not say).
    pub others: Vec<CpuTaker>,
}

/// Both probes of the bench CPUs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MachineGaps {
    /// One CPU spinning at a time, the others idle.
    pub alone: Gaps,
    /// Every bench CPU spinning at once (the serialised `machine_gaps` of earlier runs was this one).
    pub together: Gaps,
}

impl MachineGaps {
    /// Probes each of `cpus` alone for `secs`, then all of them together for `secs`.
    pub fn probe(cpus: &[usize], secs: f64) -> MachineGaps {
        let alone = cpus.iter().flat_map(|&c| spin_all(&[c], secs)).collect();
        MachineGaps { alone: Gaps { secs, cpus: alone, others: Vec::new() }, together: probe(cpus, secs) }
    }

    /// Lines for the console and the report: each CPU alone, then together.
    pub fn describe(&self) -> Vec<String> {
        let alone = self.alone.describe().into_iter().map(|l| format!("alone, {l}"));
        let together = self.together.describe().into_iter().map(|l| format!("together, {l}"));
        let others = format!("together, other threads ran: {}", cpu_takers::describe(&self.together.others));
        alone.chain(together).chain(std::iter::once(others)).collect()
    }
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
                    "CPU {}: {} gaps > 100 µs and {} > 1 ms in {:.1} s (longest {:.1} ms), {:.2}% of the time away, {}",
                    c.cpu,
                    c.over_100us,
                    c.over_1ms,
                    self.secs,
                    c.max_us / 1000.0,
                    100.0 * c.stalled_fraction,
                    c.preempted
                        .map_or("preemptions unknown".to_string(), |n| format!("preempted by other tasks {n} times"))
                )
            })
            .collect()
    }
}

/// Spins on each of `cpus` for `secs` seconds, all at once, and names the other threads that ran meanwhile.
fn probe(cpus: &[usize], secs: f64) -> Gaps {
    let before = cpu_takers::snapshot();
    let cpus = spin_all(cpus, secs);
    Gaps { secs, cpus, others: cpu_takers::top(&before, &cpu_takers::snapshot(), 4) }
}

/// One pinned spinner per CPU of `cpus`, all at once.
fn spin_all(cpus: &[usize], secs: f64) -> Vec<CpuStalls> {
    let handles: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            std::thread::spawn(move || {
                pin_current_thread(cpu, "the gap probe");
                spin(cpu, Duration::from_secs_f64(secs))
            })
        })
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

fn spin(cpu: usize, dur: Duration) -> CpuStalls {
    let switches_before = involuntary_switches();
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
    s.preempted = involuntary_switches().zip(switches_before).map(|(after, before)| after.saturating_sub(before));
    s
}

/// This thread's involuntary context switches so far, from /proc/thread-self/status.
fn involuntary_switches() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    parse_involuntary_switches(&status)
}

fn parse_involuntary_switches(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn involuntary_switches_are_read_from_the_status_text() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t20\nnonvoluntary_ctxt_switches:\t78\n";
        assert_eq!(parse_involuntary_switches(status), Some(78));
        assert_eq!(parse_involuntary_switches("Name:\tx\n"), None);
        assert_eq!(parse_involuntary_switches("nonvoluntary_ctxt_switches:\tmany\n"), None);
    }

    #[test]
    fn this_thread_can_read_its_own_switches() {
        assert!(involuntary_switches().is_some(), "/proc/thread-self/status has the count on Linux");
    }
}
