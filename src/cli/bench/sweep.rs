//! Rate sweeps: run `xdptcp load` at increasing offered rates against a server and find the highest rate that
//! still meets the bar (success and p99 connect latency), then measure latency at half of it.

use super::procs::{tail, Proc};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Percentiles of one histogram in the load generator's JSON, in microseconds.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
pub struct Percentiles {
    #[serde(default)]
    pub p50: f64,
    #[serde(default)]
    pub p90: f64,
    #[serde(default)]
    pub p99: f64,
    #[serde(default)]
    pub p999: f64,
    #[serde(default)]
    pub max: f64,
    #[serde(default)]
    pub count: u64,
}

/// What `xdptcp load --json` reports (the fields the bench uses).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
pub struct LoadResult {
    pub offered_cps: f64,
    pub achieved_cps: f64,
    pub completed: u64,
    pub failed: u64,
    pub connect_us: Percentiles,
    #[serde(default)]
    pub response_us: Percentiles,
    #[serde(default)]
    pub lifetime_us: Percentiles,
}

impl LoadResult {
    pub fn success(&self) -> f64 {
        let n = self.completed + self.failed;
        if n == 0 {
            0.0
        } else {
            self.completed as f64 / n as f64
        }
    }
}

/// How the load generator is invoked; `rate` and output paths are filled in per run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub exe: PathBuf,
    pub ns: String,
    pub iface: String,
    pub target: String,
    pub src: String,
    pub cpu: usize,
    pub duration: f64,
    pub http: bool,
    pub time_wait: f64,
    pub extra: Vec<String>,
}

/// The bar the sweep climbs with: at least 99.9 % success, p90 connect under 1 ms, and the offered rate actually
/// achieved (an open-loop generator that falls behind is not measuring the server). The brief's bar asks for p99
/// under 1 ms ([`passes_strict`]); on a VM whose vCPUs vanish for milliseconds a few times a second (see
/// `stalls.rs`: 1–2 % of connections are in flight during such a gap, whatever the server) no rate clears it, so
/// the sweep climbs on p90 and reports the strict bar beside it.
pub fn passes(r: &LoadResult) -> bool {
    r.success() >= 0.999 && r.connect_us.p90 < 1000.0 && r.achieved_cps >= 0.97 * r.offered_cps
}

/// The brief's bar: at least 99.9 % success and p99 connect under 1 ms, at the offered rate.
pub fn passes_strict(r: &LoadResult) -> bool {
    passes(r) && r.connect_us.p99 < 1000.0
}

/// One load run at `rate`.
pub fn run_load(spec: &LoadSpec, rate: f64, dir: &Path, tag: &str) -> Result<LoadResult> {
    let json = dir.join(format!("{tag}.json"));
    let hgrm = dir.join(format!("{tag}.hgrm"));
    let mut args = vec![
        spec.exe.display().to_string(),
        "load".into(),
        "--iface".into(),
        spec.iface.clone(),
        "--target".into(),
        spec.target.clone(),
        "--src".into(),
        spec.src.clone(),
        "--rate".into(),
        format!("{rate:.0}"),
        "--duration".into(),
        format!("{}", spec.duration),
        "--close".into(),
        "client".into(),
        "--time-wait".into(),
        format!("{}", spec.time_wait),
        "--cpus".into(),
        spec.cpu.to_string(),
        "--json".into(),
        json.display().to_string(),
        "--hgrm".into(),
        hgrm.display().to_string(),
        "--quiet".into(),
    ];
    if spec.http {
        args.push("--http".into());
    }
    args.extend(spec.extra.iter().cloned());
    let mut p = Proc::spawn(&format!("load {tag}"), &spec.ns, &args, &dir.join(format!("{tag}.log")))?;
    let (ok, log) = p.finish(Duration::from_secs_f64(spec.duration + 60.0))?;
    if !ok {
        bail!("load run {tag} failed:\n{}", tail(&log, 3000));
    }
    let text = std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))
}

/// The result of a sweep.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Sweep {
    /// Every run: (offered rate, result).
    pub runs: Vec<(f64, LoadResult)>,
    /// The highest rate that passed.
    pub best: Option<(f64, LoadResult)>,
    /// The run at half the best rate (latency at moderate load).
    pub half: Option<(f64, LoadResult)>,
    /// The highest rate among the runs that cleared the strict bar (p99 under 1 ms), if any did.
    pub best_strict: Option<f64>,
    /// A run at the other server's half-load rate (latency at equal load).
    pub same_rate: Option<(f64, LoadResult)>,
}

pub fn log_run(tag: &str, rate: f64, r: &LoadResult) {
    eprintln!(
        "  {tag:<20} offered {:>8.0}/s achieved {:>8.0}/s success {:>7.3}% connect p50 {:>6.1} p90 {:>7.1} p99 {:>8.1} us {}",
        rate,
        r.achieved_cps,
        100.0 * r.success(),
        r.connect_us.p50,
        r.connect_us.p90,
        r.connect_us.p99,
        if passes_strict(r) { "ok (p99 too)" } else if passes(r) { "ok" } else { "FAIL" }
    );
}

/// Finds the highest passing rate: halves from `start` until a rate passes (down to `min`), steps up by 1.5×
/// until one fails (or `max`), then bisects between the last pass and the first failure `refine` times, and as
/// many times again around the strict bar's knee; then measures latency at half the best rate.
pub fn sweep(spec: &LoadSpec, start: f64, max: f64, refine: u32, dir: &Path, tag: &str) -> Result<Sweep> {
    let mut s = search(start, max, refine, |rate| {
        let r = run_load(spec, rate, dir, &format!("{tag}-{rate:.0}"))?;
        log_run(tag, rate, &r);
        Ok(r)
    })?;
    if let Some((best, _)) = &s.best {
        let half = best / 2.0;
        let r = run_load(spec, half, dir, &format!("{tag}-half"))?;
        log_run(&format!("{tag} @50%"), half, &r);
        s.half = Some((half, r));
    }
    Ok(s)
}

/// The search of [`sweep`], with `run` measuring one offered rate.
fn search(start: f64, max: f64, refine: u32, mut run: impl FnMut(f64) -> Result<LoadResult>) -> Result<Sweep> {
    const MIN: f64 = 1_000.0;
    let mut s = Sweep::default();
    let mut probe = |rate: f64, s: &mut Sweep| -> Result<bool> {
        let r = run(rate)?;
        let ok = passes(&r);
        s.runs.push((rate, r));
        Ok(ok)
    };
    let strict_at = |s: &Sweep, rate: f64| s.runs.iter().any(|(r, x)| *r == rate && passes_strict(x));
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    let mut rate = start;
    // Down until something passes.
    while rate >= MIN {
        if probe(rate, &mut s)? {
            good = Some(rate);
            break;
        }
        bad = Some(rate);
        rate /= 2.0;
    }
    // Up until something fails.
    if let Some(g) = good {
        if bad.is_none() {
            let mut rate = g * 1.5;
            while rate <= max {
                if probe(rate, &mut s)? {
                    good = Some(rate);
                    rate *= 1.5;
                } else {
                    bad = Some(rate);
                    break;
                }
            }
        }
    }
    if let (Some(mut lo), Some(mut hi)) = (good, bad) {
        for _ in 0..refine {
            let mid = (lo + hi) / 2.0;
            if probe(mid, &mut s)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        good = Some(lo);
    }
    // The brief's bar has its own knee, usually below the one climbed above: bisect between the highest rate
    // that cleared it and the lowest rate above that which did not, as finely as the main knee.
    let strict_lo = s.runs.iter().filter(|(_, x)| passes_strict(x)).map(|(r, _)| *r).reduce(f64::max);
    if let Some(mut lo) = strict_lo {
        let above = s.runs.iter().map(|(r, _)| *r).filter(|r| *r > lo && !strict_at(&s, *r)).reduce(f64::min);
        if let Some(mut hi) = above {
            for _ in 0..refine {
                let mid = (lo + hi) / 2.0;
                probe(mid, &mut s)?;
                if strict_at(&s, mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
    }
    s.best = good.and_then(|g| s.runs.iter().find(|(r, _)| *r == g).cloned());
    s.best_strict = s.runs.iter().filter(|(_, r)| passes_strict(r)).map(|(_, r)| r.achieved_cps).reduce(f64::max);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose p90 stays under 1 ms up to 200 k/s and whose p99 does up to 150 k/s.
    fn model(rate: f64) -> LoadResult {
        let lat = |knee: f64| if rate <= knee { 100.0 } else { 5_000.0 };
        let n = (rate * 5.0) as u64;
        LoadResult {
            offered_cps: rate,
            achieved_cps: rate,
            completed: n,
            failed: 0,
            connect_us: Percentiles { p90: lat(200_000.0), p99: lat(150_000.0), ..Percentiles::default() },
            ..LoadResult::default()
        }
    }

    #[test]
    fn the_sweep_finds_both_knees_to_the_refinement_asked_for() {
        let s = search(40_000.0, 3_000_000.0, 3, |r| Ok(model(r))).unwrap();
        let best = s.best.as_ref().unwrap().0;
        // Steps 40, 60, 90, 135, 202.5 k: the main knee lies between 135 and 202.5 k, bisected three times.
        assert!((191_000.0..=200_000.0).contains(&best), "best {best}");
        let strict = s.best_strict.unwrap();
        assert!((141_000.0..=150_000.0).contains(&strict), "strict knee {strict}: 135 k without its own bisection");
        assert!(s.runs.iter().all(|(r, x)| passes_strict(x) == (*r <= 150_000.0)));
    }

    #[test]
    fn a_server_that_never_clears_the_strict_bar_has_no_strict_rate_and_costs_no_extra_runs() {
        let mut runs = 0;
        let s = search(40_000.0, 3_000_000.0, 3, |r| {
            runs += 1;
            let mut x = model(r);
            x.connect_us.p99 = 5_000.0;
            Ok(x)
        })
        .unwrap();
        assert_eq!(s.best_strict, None);
        assert_eq!(runs, 5 + 3, "five steps up and three bisections of the main knee");
    }
}
