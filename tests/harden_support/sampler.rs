//! Samples a running server's stats JSON in the background, so that a test can say what a gauge did during an
//! attack (its maximum), not only what it was at the end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Reads the `total` object of `path` every 100 ms until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<Value>>>,
}

impl Sampler {
    pub fn start(path: PathBuf) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut out: Vec<Value> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let total = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| v.get("total").cloned());
                if let Some(t) = total {
                    // The file is rewritten once a second: keep each snapshot once.
                    if out.last().is_none_or(|l| l["uptime_seconds"] != t["uptime_seconds"]) {
                        out.push(t);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out
        });
        Sampler { stop, handle: Some(handle) }
    }

    /// Stops sampling and returns every distinct snapshot, oldest first.
    pub fn stop(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        Samples(self.handle.take().expect("running").join().expect("sampler"))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Snapshots of the stats, oldest first.
#[derive(Debug)]
pub struct Samples(pub Vec<Value>);

impl Samples {
    /// The largest value `key` took.
    pub fn max(&self, key: &str) -> u64 {
        self.0.iter().filter_map(|s| s[key].as_u64()).max().unwrap_or(0)
    }

    /// (seconds between them, increase of counter `key`) for consecutive snapshots. A snapshot's counters come
    /// from the workers' latest reports (sent every 100 ms), so they may be that much older than its uptime.
    pub fn increases(&self, key: &str) -> Vec<(f64, u64)> {
        self.0
            .windows(2)
            .filter_map(|w| {
                let dt = w[1]["uptime_seconds"].as_f64()? - w[0]["uptime_seconds"].as_f64()?;
                Some((dt, w[1][key].as_u64()?.checked_sub(w[0][key].as_u64()?)?))
            })
            .collect()
    }

    /// The largest increase of counter `key` per second between consecutive snapshots.
    pub fn max_rate(&self, key: &str) -> f64 {
        self.0
            .windows(2)
            .filter_map(|w| {
                let dt = w[1]["uptime_seconds"].as_f64()? - w[0]["uptime_seconds"].as_f64()?;
                let dv = w[1][key].as_u64()?.checked_sub(w[0][key].as_u64()?)?;
                (dt > 0.5).then(|| dv as f64 / dt)
            })
            .fold(0.0, f64::max)
    }
}
