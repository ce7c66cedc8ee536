//! The stack's share of the limit: `xdptcp serve` beside the stateless responder (`xdptcp respond`, a SYN-ACK for
//! a SYN and a FIN-ACK for a FIN, no TCP state), on the same AF_XDP path, core and rings, under the same generator.
//!
//! Two comparisons: the same rate sweep as the servers get (its knees, minutes apart from xdptcp's), and a head to
//! head at one overload rate, the two taking turns within seconds, which this VM's slow phases of tens of seconds
//! cannot tilt the way they can tilt two sweeps.

use super::figures::{fraction, half_p99, knee, knee_p90, percent, ratio, shown};
use super::procs::Proc;
use super::sweep::{self, LoadSpec, Sweep};
use super::{spawn_server, PORT, RING};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use xdptcp::io::topology::VethPair;

/// The stateless responder on the server side of the pair, pinned to `cpu`, with the servers' ring depth.
pub fn start(exe: &Path, topo: &VethPair, cpu: usize, raw: &Path, tag: &str) -> Result<Proc> {
    let (port, cpu, ring) = (PORT.to_string(), cpu.to_string(), RING.to_string());
    let args = ["respond", "--iface", &topo.if_a, "--port", &port, "--core", &cpu, "--ring", &ring];
    spawn_server(exe, topo, &args, raw, tag, "ready")
}

/// Connections completed per second by each side in alternating runs at one offered rate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeadToHead {
    pub offered_cps: f64,
    pub responder_cps: Vec<f64>,
    pub xdptcp_cps: Vec<f64>,
}

impl HeadToHead {
    /// xdptcp's completions over the responder's, summed over the rounds (none if the responder completed none).
    pub fn ratio(&self) -> Option<f64> {
        ratio(Some(self.xdptcp_cps.iter().sum()), Some(self.responder_cps.iter().sum()))
    }
}

/// `rounds` turns of the responder, then `serve` (started by `start_serve`), each under `spec` at `rate`.
pub fn head_to_head(
    spec: &LoadSpec,
    rate: f64,
    rounds: u32,
    mut start_responder: impl FnMut(&str) -> Result<Proc>,
    mut start_serve: impl FnMut(&str) -> Result<Proc>,
    raw: &Path,
) -> Result<HeadToHead> {
    let mut h = HeadToHead { offered_cps: rate, ..HeadToHead::default() };
    for round in 0..rounds {
        for responder in [true, false] {
            let tag = format!("h2h-{}-{round}", if responder { "responder" } else { "xdptcp" });
            let mut srv = if responder { start_responder(&tag)? } else { start_serve(&tag)? };
            let r = sweep::run_load(spec, rate, raw, &tag);
            srv.stop(Duration::from_secs(10));
            let r = r?;
            sweep::log_run(&tag, rate, &r);
            // `achieved_cps` counts completed connections only (failures are not in it).
            let done = r.achieved_cps;
            if responder {
                h.responder_cps.push(done);
            } else {
                h.xdptcp_cps.push(done);
            }
        }
    }
    Ok(h)
}

/// The most connections completed per second in any run of a sweep: what the server and generator together
/// manage when overloaded, whatever the latency.
pub fn peak_rate(s: &Sweep) -> f64 {
    s.runs.iter().map(|(_, r)| r.achieved_cps).fold(0.0, f64::max)
}

/// The report's line on the responder sweep `r` beside xdptcp's `ours`. The p99 bar is the issue's, but on this
/// VM a scheduling gap decides it as often as the server does; the p90 bar and the peak say more about cost.
pub fn sweep_line(ours: &Sweep, r: &Sweep, frames_c2s: f64, ceiling_mpps: f64) -> String {
    let peak = |s: &Sweep| Some(peak_rate(s)).filter(|p| *p > 0.0);
    format!(
        "stateless responder {} conn/s at the p99 bar, {} at the p90 bar, {} at its peak ({} of the ceiling), p99 \
         connect at its 50% {}; xdptcp ÷ responder: {} at the p99 bar, {} at the p90 bar, {} at the peak ({:.0} ÷ \
         {:.0})",
        shown(knee(r), 0, ""),
        shown(knee_p90(r), 0, ""),
        shown(peak(r), 0, ""),
        percent(fraction(peak(r), frames_c2s, ceiling_mpps)),
        shown(half_p99(r), 1, " µs"),
        shown(ratio(knee(ours), knee(r)), 2, ""),
        shown(ratio(knee_p90(ours), knee_p90(r)), 2, ""),
        shown(ratio(peak(ours), peak(r)), 2, ""),
        peak_rate(ours),
        peak_rate(r)
    )
}

/// The report's line on a head to head.
pub fn head_to_head_line(h: &HeadToHead) -> String {
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    format!(
        "taking turns at {:.0}/s offered: responder {} conn/s, xdptcp {}; xdptcp ÷ responder {}",
        h.offered_cps,
        list(&h.responder_cps),
        list(&h.xdptcp_cps),
        shown(h.ratio(), 2, "")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(offered: f64, achieved: f64, completed: u64, failed: u64) -> (f64, sweep::LoadResult) {
        let r =
            sweep::LoadResult { offered_cps: offered, achieved_cps: achieved, completed, failed, ..Default::default() };
        (offered, r)
    }

    #[test]
    fn the_peak_is_the_most_completed_per_second_of_any_run_and_the_sweep_line_names_all_three_ratios() {
        // Run full-2026-12-06-ix at 202 500/s offered: xdptcp 157 588/s, the responder 176 575/s.
        let ours = Sweep {
            runs: vec![run(135_000.0, 135_000.0, 1, 0), run(202_500.0, 157_588.0, 1, 0)],
            ..Default::default()
        };
        let resp = Sweep {
            runs: vec![run(202_500.0, 176_575.0, 1, 0), run(300_000.0, 170_000.0, 1, 1)],
            ..Default::default()
        };
        assert_eq!(peak_rate(&ours), 157_588.0);
        // `achieved_cps` is what completed per second already: failures are not taken off it a second time.
        assert_eq!(peak_rate(&resp), 176_575.0);
        let failing = Sweep { runs: vec![run(300_000.0, 200_000.0, 1, 1)], ..Default::default() };
        assert_eq!(peak_rate(&failing), 200_000.0, "half failed, and 200 000 completed per second all the same");
        assert_eq!(peak_rate(&Sweep::default()), 0.0);
        let line = sweep_line(&ours, &resp, 3.0, 0.6);
        assert!(line.contains("0.89 at the peak (157588 ÷ 176575)"), "{line}");
        assert!(line.contains("88.3% of the"), "176 575 × 3 of 0.6 Mpps: {line}");
        assert!(line.contains("— at the p99 bar"), "no bar met: no ratio, neither 0 nor a division by zero: {line}");
        assert!(line.contains("p99 connect at its 50% —"), "no half-load run: no latency, not 0 µs: {line}");
    }

    #[test]
    fn a_head_to_head_compares_sums_and_says_every_round() {
        let h = HeadToHead {
            offered_cps: 200_000.0,
            responder_cps: vec![170_000.0, 150_000.0],
            xdptcp_cps: vec![160_000.0, 160_000.0],
        };
        assert_eq!(h.ratio(), Some(1.0));
        let line = head_to_head_line(&h);
        assert!(line.contains("at 200000/s offered: responder 170000, 150000 conn/s, xdptcp 160000, 160000"), "{line}");
        assert!(line.ends_with("1.00"), "{line}");
        assert_eq!(HeadToHead::default().ratio(), None);
    }
}
