//! SVG plots of a bench run: latency percentile curves (from the .hgrm files) and achieved vs offered rate.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// Reads the (value, percentile) points of an HdrHistogram percentile-distribution (.hgrm) file, values in µs
/// (the files hold milliseconds, HdrHistogram's usual unit: see `load::histograms::write_hgrm`).
pub fn read_hgrm(path: &Path) -> Result<Vec<(f64, f64)>> {
    const US_PER_FILE_UNIT: f64 = 1000.0;
    let text = std::fs::read_to_string(path)?;
    let mut pts = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 3 {
            if let (Ok(v), Ok(p)) = (cols[0].parse::<f64>(), cols[1].parse::<f64>()) {
                if (0.0..1.0).contains(&p) {
                    pts.push((v * US_PER_FILE_UNIT, p));
                }
            }
        }
    }
    Ok(pts)
}

/// Latency vs percentile, x on the "number of nines" scale (−log10(1 − p)).
pub fn latency_curves(out: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let nines = |p: f64| -(1.0 - p).max(1e-6).log10();
    let ymax = series.iter().flat_map(|(_, s)| s.iter().map(|(v, _)| *v)).fold(1.0f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, (1f64..ymax).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6) // on the integers 0..=5, one label each
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "0%".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => "99.999%".into(),
        })
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|(v, p)| (nines(*p).min(5.0), v.max(1.0))),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Achieved vs offered connections per second, one line per server.
pub fn rate_curves(out: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let max = series.iter().flat_map(|(_, s)| s.iter().map(|(o, a)| o.max(*a))).fold(1.0f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max, 0f64..max)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("offered connections/s")
        .y_desc("completed connections/s")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (max, max)], BLACK.mix(0.3))).map_err(|e| anyhow!("{e}"))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut pts = pts.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| anyhow!("{e}"))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use xdptcp::load::histograms::{record_us, write_hgrm, Histograms};

    #[test]
    fn hgrm_points_come_back_in_microseconds() {
        // Connections at 1, 2, ..., 2000 µs: the curve must read about 1000 µs at p50 and 1800 at p90, as the
        // axis says (the file holds 1.000 and 1.800 ms).
        let mut h = Histograms::new();
        for us in 1..=2000 {
            record_us(&mut h.connect, Duration::from_micros(us));
        }
        let path = std::env::temp_dir().join(format!("xdptcp-plot-{}.hgrm", std::process::id()));
        let mut text = Vec::new();
        write_hgrm(&h.connect, &mut text).unwrap();
        std::fs::write(&path, text).unwrap();
        let pts = read_hgrm(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let at = |p: f64| pts.iter().find(|(_, q)| *q >= p).map(|(v, _)| *v).unwrap();
        assert!((at(0.5) - 1000.0).abs() < 10.0, "p50 {} µs", at(0.5));
        assert!((at(0.9) - 1800.0).abs() < 10.0, "p90 {} µs", at(0.9));
    }
}
