//! The bench's figures as its report gives them. A rate, ratio or latency that a run did not produce (no rate met
//! the bar, no half-load run, nothing to divide by) is absent: `null` in the JSON and "—" in the tables, never 0,
//! which would read as a server with no capacity, as an infinitely better one, or as perfect latency.

use super::sweep::Sweep;

/// The highest rate that met the bar (≥ 99.9 % success, p99 connect under 1 ms), as achieved.
pub fn knee(s: &Sweep) -> Option<f64> {
    s.best.as_ref().map(|(_, r)| r.achieved_cps)
}

/// The highest rate that met the looser p90 bar, as achieved.
pub fn knee_p90(s: &Sweep) -> Option<f64> {
    s.best_p90.as_ref().map(|(_, r)| r.achieved_cps)
}

/// p99 connect latency (µs) at half the sweep's knee.
pub fn half_p99(s: &Sweep) -> Option<f64> {
    s.half.as_ref().map(|(_, r)| r.connect_us.p99)
}

/// `a ÷ b` when both are known and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The share of a ceiling of `ceiling_mpps` that `cps` connections of `frames_c2s` client frames each use.
pub fn fraction(cps: Option<f64>, frames_c2s: f64, ceiling_mpps: f64) -> Option<f64> {
    ratio(cps.map(|c| c * frames_c2s), Some(ceiling_mpps * 1e6))
}

/// A figure for a table, with `decimals` decimals and `unit` after it, or "—".
pub fn shown(v: Option<f64>, decimals: usize, unit: &str) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.decimals$}{unit}"))
}

/// A fraction as a percentage for a table, or "—".
pub fn percent(v: Option<f64>) -> String {
    shown(v.map(|f| 100.0 * f), 1, "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_run_did_not_produce_is_absent_not_zero() {
        let none = Sweep::default();
        assert_eq!((knee(&none), knee_p90(&none), half_p99(&none)), (None, None, None));
        assert_eq!(ratio(Some(3.0), None), None);
        assert_eq!(ratio(None, Some(3.0)), None);
        assert_eq!(ratio(Some(3.0), Some(0.0)), None, "nothing to divide by");
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(fraction(Some(100_000.0), 3.0, 0.6), Some(0.5));
        assert_eq!(fraction(Some(100_000.0), 3.0, 0.0), None, "no ceiling");
        assert_eq!(fraction(None, 3.0, 0.6), None);
        assert_eq!((shown(None, 1, " µs"), shown(Some(2.25), 1, "×")), ("—".to_string(), "2.2×".to_string()));
        assert_eq!((percent(Some(0.224)), percent(None)), ("22.4%".to_string(), "—".to_string()));
    }
}
