//! The latency histograms of a load run, in microseconds with 3 significant digits, and their two renderings:
//! a percentile summary and the classic HdrHistogram percentile-distribution text (`.hgrm`).
//!
//! Histograms are fixed in size from the start (1 µs to one hour), so recording never allocates; a value beyond
//! an hour is recorded as an hour. Nothing here reads a clock.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::{self, Write};

/// The largest value recorded as itself: one hour in microseconds.
pub const MAX_US: u64 = 3_600_000_000;
/// Significant digits of every histogram.
pub const SIGFIG: u8 = 3;

/// A latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to one hour with 3 digits are valid bounds, so this cannot fail; the fallback only satisfies types.
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).unwrap_or_else(|_| Histogram::new(SIGFIG).expect("3 digits"))
}

/// Every histogram of one run (or one worker).
#[derive(Clone, Debug)]
pub struct Histograms {
    /// SYN intended (open loop) or sent (closed loop) → handshake complete.
    pub connect: Histogram<u64>,
    /// Request sent → full response received.
    pub response: Histogram<u64>,
    /// SYN intended or sent → connection closed.
    pub lifetime: Histogram<u64>,
    /// Intended start → SYN actually sent: how far behind its schedule the generator ran.
    pub start_lag: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Self::new()
    }
}

impl Histograms {
    pub fn new() -> Self {
        Histograms {
            connect: new_histogram(),
            response: new_histogram(),
            lifetime: new_histogram(),
            start_lag: new_histogram(),
        }
    }

    /// Adds another worker's histograms into these.
    pub fn merge(&mut self, other: &Histograms) {
        for (a, b) in [
            (&mut self.connect, &other.connect),
            (&mut self.response, &other.response),
            (&mut self.lifetime, &other.lifetime),
            (&mut self.start_lag, &other.start_lag),
        ] {
            // Same bounds on both sides: adding cannot fail; saturate anyway rather than lose the worker.
            if a.add(b).is_err() {
                for v in b.iter_recorded() {
                    a.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
    }

    /// The histograms by name, in report order.
    pub fn named(&self) -> [(&'static str, &Histogram<u64>); 4] {
        [
            ("connect", &self.connect),
            ("response", &self.response),
            ("lifetime", &self.lifetime),
            ("start_lag", &self.start_lag),
        ]
    }
}

/// Records a duration in microseconds, rounded to the nearest (saturating at [`MAX_US`]): truncating would
/// take up to 1 µs off every value, a fifth of a 5 µs median.
#[inline]
pub fn record_us(h: &mut Histogram<u64>, d: std::time::Duration) {
    h.saturating_record(((d.as_nanos() + 500) / 1000).min(u128::from(MAX_US)) as u64);
}

/// The percentiles every report shows, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
    pub count: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        // Each percentile is the highest value equivalent to the recorded one (what HdrHistogram reports).
        let q = |p: f64| h.value_at_quantile(p);
        Percentiles {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
            count: h.len(),
        }
    }
}

/// Writes the HdrHistogram percentile distribution of `h` (recorded in µs), values in milliseconds, in the
/// layout of HdrHistogram's `outputPercentileDistribution` with 5 ticks per half distance: what HdrHistogram's
/// plotting tools and wrk2 users read.
pub fn write_hgrm<W: Write>(h: &Histogram<u64>, out: &mut W) -> io::Result<()> {
    const SCALE: f64 = 1000.0; // µs recorded, ms written
    writeln!(out, "{:>12} {:>14} {:>10} {:>14}", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    writeln!(out)?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                writeln!(out, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q))?;
            } else {
                writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() { (0.0, 0.0, 0.0) } else { (h.mean(), h.stdev(), h.max() as f64) };
    writeln!(out, "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", mean / SCALE, stdev / SCALE)?;
    writeln!(out, "#[Max     = {:12.3}, Total count    = {:12}]", max / SCALE, h.len())?;
    writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_buckets(h.sigfig()))?;
    Ok(())
}

/// HdrHistogram's sub-bucket count for `sigfig` digits: the power of two at or above 2 × 10^sigfig.
fn sub_buckets(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn filled(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_1_to_10000_us() {
        let p = Percentiles::of(&filled(1..=10_000));
        assert_eq!(p.count, 10_000);
        assert!(p.p50.abs_diff(5_000) <= 5, "{p:?}");
        assert!(p.p90.abs_diff(9_000) <= 9, "{p:?}");
        assert!(p.p99.abs_diff(9_900) <= 10, "{p:?}");
        assert!(p.p999.abs_diff(9_990) <= 10, "{p:?}");
        assert!(p.p9999.abs_diff(9_999) <= 10, "{p:?}");
        assert!(p.max.abs_diff(10_000) <= 10 && p.max >= 10_000, "{p:?}");
        assert!((p.mean - 5000.5).abs() < 5.0, "{p:?}");
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.p9999 && p.p9999 <= p.max);
    }

    #[test]
    fn empty_histograms_give_zeros_not_panics() {
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
        let mut out = Vec::new();
        write_hgrm(&new_histogram(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Total count    =            0]"), "{text}");
    }

    #[test]
    fn recording_saturates_at_an_hour_and_merging_adds_counts() {
        let mut a = Histograms::new();
        record_us(&mut a.connect, Duration::from_secs(7200));
        record_us(&mut a.connect, Duration::from_nanos(1499));
        assert_eq!(a.connect.len(), 2);
        assert!(a.connect.max() >= MAX_US && a.connect.max() <= MAX_US + MAX_US / 1000);
        assert_eq!(a.connect.min(), 1, "rounded to the nearest microsecond");
        let mut up = Histograms::new();
        record_us(&mut up.connect, Duration::from_nanos(4500));
        assert_eq!(up.connect.min(), 5, "4.5 µs is 5, not the 4 truncation would make it");
        let mut b = Histograms::new();
        record_us(&mut b.connect, Duration::from_micros(10));
        record_us(&mut b.lifetime, Duration::from_micros(10));
        a.merge(&b);
        assert_eq!((a.connect.len(), a.lifetime.len(), a.response.len()), (3, 1, 0));
    }

    /// The layout of HdrHistogram's percentile distribution: a header, a blank line, rows of value (ms),
    /// percentile, running count and 1/(1-percentile) (omitted on the 100% row), and three `#[...]` footer lines.
    #[test]
    fn hgrm_text_has_the_classic_layout_and_consistent_rows() {
        let mut out = Vec::new();
        write_hgrm(&filled((1..=1000).map(|v| v * 10)), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<&str>> =
            lines[2..].iter().take_while(|l| !l.starts_with('#')).map(|l| l.split_whitespace().collect()).collect();
        assert!(rows.len() > 20, "{text}");
        let mut last = (0.0f64, 0.0f64, 0u64);
        for (i, r) in rows.iter().enumerate() {
            let value: f64 = r[0].parse().unwrap();
            let pct: f64 = r[1].parse().unwrap();
            let count: u64 = r[2].parse().unwrap();
            assert!(value >= last.0 && pct >= last.1 && count >= last.2, "row {i} goes backwards: {r:?}");
            assert_eq!(r[1].split('.').nth(1).unwrap().len(), 12, "12 decimals of percentile");
            if i + 1 < rows.len() {
                let inv: f64 = r[3].parse().unwrap();
                assert!((inv - 1.0 / (1.0 - pct)).abs() / inv < 0.01, "{r:?}");
            } else {
                assert_eq!(r.len(), 3, "the 100% row has no 1/(1-p) column");
                assert_eq!(pct, 1.0);
                assert_eq!(count, 1000);
                assert!((value - 10.0).abs() < 0.02, "max 10 000 µs is 10 ms: {value}");
            }
            last = (value, pct, count);
        }
        assert_eq!(rows[0][0], "0.010", "the first row is the minimum, in ms");
        let footer: Vec<&&str> = lines.iter().filter(|l| l.starts_with("#[")).collect();
        assert_eq!(footer.len(), 3);
        assert!(footer[0].starts_with("#[Mean    =        5.00"), "{}", footer[0]);
        assert!(footer[1].contains("Total count    =         1000]"), "{}", footer[1]);
        assert!(footer[2].contains("SubBuckets     =         2048]"), "{}", footer[2]);
    }
}
