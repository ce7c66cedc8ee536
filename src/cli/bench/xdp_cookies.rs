//! `serve --xdp-cookies` beside the default `serve`, in each scenario: the same server answering SYNs in its XDP
//! program (cookie SYN-ACKs sent with XDP_TX) instead of in its worker.
//!
//! On veth that moves the SYN-ACK off the server's core onto the sender's, the generator's, whose core is the
//! bench's bottleneck: latency at moderate load falls (the SYN never waits for the worker's CPU), and the top
//! rate may fall too. Both are measured: in every run, a load at the default's half-load rate (equal load,
//! equal generator work, so the two p99s compare directly) and one at Linux's half-load rate (the load at which
//! Linux's own p99 is read, so that comparison is at equal load too); in the full run, also the sweep.

use super::figures::{knee, knee_p90, shown};
use super::procs::Proc;
use super::sweep::{self, LoadResult, LoadSpec, Sweep};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What was measured with `--xdp-cookies`.
#[derive(Debug, Serialize)]
pub struct XdpCookies {
    /// The sweep (full run only).
    pub sweep: Option<Sweep>,
    /// One load at the default server's half-load rate.
    pub at_default_half: Option<(f64, LoadResult)>,
    /// One load at the Linux server's half-load rate.
    pub at_linux_half: Option<(f64, LoadResult)>,
}

/// Runs the measurements against a server `start` brings up (and this stops).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    spec: &LoadSpec,
    default: &Sweep,
    linux: &Sweep,
    full: bool,
    depth: sweep::Depth,
    raw: &Path,
    tag: &str,
    start: impl Fn(&str) -> Result<Proc>,
) -> Result<XdpCookies> {
    let mut srv = start(tag)?;
    // The sweep first (full run), so that the equal-load run meets a server as warm as the default's half-load
    // run did (which came after its own sweep).
    let s = if full { Some(sweep::sweep(spec, 40_000.0, 3_000_000.0, depth, raw, tag)?) } else { None };
    let at_default_half = match &default.half {
        Some((rate, _)) => {
            if !full {
                // No sweep came first: one unrecorded run, or the measured one meets a server fresh from its start
                // (a quick run once read p99 953 µs there against 75 at the next scenario's equal-load run).
                let short = LoadSpec { duration: 1.0, ..spec.clone() };
                sweep::run_load(&short, *rate, raw, &format!("{tag}-warm-up"))?;
            }
            let r = sweep::run_load(spec, *rate, raw, &format!("{tag}-default-half"))?;
            sweep::log_run(&format!("{tag} @default 50%"), *rate, &r);
            Some((*rate, r))
        }
        None => None,
    };
    let at_linux_half = match &linux.half {
        Some((rate, _)) => {
            let r = sweep::run_load(spec, *rate, raw, &format!("{tag}-linux-half"))?;
            sweep::log_run(&format!("{tag} @Linux 50%"), *rate, &r);
            Some((*rate, r))
        }
        None => None,
    };
    srv.stop(Duration::from_secs(10));
    Ok(XdpCookies { sweep: s, at_default_half, at_linux_half })
}

/// One line for the console and the report.
pub fn line(default: &Sweep, linux: &Sweep, x: &XdpCookies) -> String {
    let p99 = |r: &LoadResult| format!("p50 {:.0} / p99 {:.0} µs", r.connect_us.p50, r.connect_us.p99);
    let mut out = String::from("with `--xdp-cookies` (SYNs answered in the XDP program):");
    if let (Some((rate, r)), Some((_, d))) = (&x.at_default_half, &default.half) {
        out.push_str(&format!(" at the default's half-load rate ({rate:.0}/s) connect {} against {}", p99(r), p99(d)));
    }
    if let (Some((rate, r)), Some((_, l))) = (&x.at_linux_half, &linux.half) {
        out.push_str(&format!("; at Linux's half-load rate ({rate:.0}/s) {} against Linux's {}", p99(r), p99(l)));
    }
    if let Some(s) = &x.sweep {
        let (best, p90) = (shown(knee(s), 0, "/s"), shown(knee_p90(s), 0, "/s"));
        out.push_str(&format!("; its own sweep: {best} at the p99 bar, {p90} at the p90 bar"));
        if let Some((rate, r)) = &s.half {
            out.push_str(&format!(", connect {} at its half rate ({rate:.0}/s)", p99(r)));
        }
    }
    out.push('.');
    out
}
