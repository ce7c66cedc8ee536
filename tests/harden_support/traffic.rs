//! Traffic of the adversarial tests: a Linux client that connects in a loop until told to stop (the legitimate
//! user whose success is measured), hping3 with explicit spoofed sources, and `xdptcp load` floods, each bounded
//! in count and time.
//!
//! Every address used here belongs to the test's own subnet (10.77.0.0/24, fd77::/64) inside namespaces the test
//! created; spoofed sources are addresses no interface owns.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_support::clients::{self, Exchange, Tally};

/// What the client loop measured.
#[derive(Debug, Default)]
pub struct LoopResult {
    pub tally: Tally,
    /// Slowest successful connection (connect to close), which shows SYN retransmissions (1 s each).
    pub slowest: Duration,
    /// Connections that took more than 900 ms (a SYN or SYN-ACK was lost and the client retried).
    pub slow: u64,
    pub elapsed: Duration,
}

impl LoopResult {
    /// Adds another loop's figures (the slowest of both, the elapsed time of the longer).
    pub fn merge(&mut self, o: LoopResult) {
        self.tally.merge(o.tally);
        self.slowest = self.slowest.max(o.slowest);
        self.slow += o.slow;
        self.elapsed = self.elapsed.max(o.elapsed);
    }

    pub fn success_ratio(&self) -> f64 {
        let n = self.tally.ok + self.tally.failed;
        if n == 0 {
            0.0
        } else {
            self.tally.ok as f64 / n as f64
        }
    }
}

/// A kernel client in namespace `ns` running `ex` against `dst` again and again until [`ClientLoop::stop`].
pub struct ClientLoop {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<LoopResult>>,
}

impl ClientLoop {
    pub fn start(ns: &str, dst: SocketAddr, ex: Exchange) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = crate::common::spawn_in_netns(ns, move || {
            if let Some(cpu) = clients::client_cpu() {
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            }
            let mut r = LoopResult::default();
            let t0 = Instant::now();
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                match clients::exchange(dst, ex, n) {
                    Ok(()) => {
                        r.tally.ok += 1;
                        let took = t.elapsed();
                        r.slowest = r.slowest.max(took);
                        r.slow += u64::from(took > Duration::from_millis(900));
                    }
                    Err((e, reset)) => {
                        r.tally.failed += 1;
                        r.tally.resets += u64::from(reset);
                        if r.tally.examples.len() < 5 {
                            r.tally.examples.push(e);
                        }
                    }
                }
                n += 1;
            }
            r.elapsed = t0.elapsed();
            r
        });
        ClientLoop { stop, handle: Some(handle) }
    }

    /// Stops after the connection in progress and returns the figures.
    pub fn stop(mut self) -> LoopResult {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().expect("running").join().expect("client loop")
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Several [`ClientLoop`]s side by side: a connection stalled by a lost SYN (1 s) does not stall the others.
pub struct ClientLoops(Vec<ClientLoop>);

impl ClientLoops {
    pub fn start(ns: &str, dst: SocketAddr, ex: Exchange, loops: usize) -> ClientLoops {
        ClientLoops((0..loops).map(|_| ClientLoop::start(ns, dst, ex)).collect())
    }

    /// Stops them all and returns their figures together.
    pub fn stop(self) -> LoopResult {
        let mut r = LoopResult::default();
        for l in self.0 {
            r.merge(l.stop());
        }
        r
    }
}

/// Runs `program args...` in namespace `ns` under `timeout` (a hard bound: the tool is killed after it).
pub fn run_bounded(ns: &str, limit: Duration, program: &str, args: &[&str]) -> Output {
    let secs = format!("{:.0}", limit.as_secs_f64().ceil());
    Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "-s", "KILL", &secs, program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program} in {ns}: {e}"))
}

/// `hping3` sending `count` SYNs to `dst` from the spoofed address `spoof`, source ports counting up from
/// `base_port` (so `count` must stay below 65536 - base_port: no port is reused and none is 0), one every
/// `interval_us` µs. Returns hping3's stderr/stdout summary.
pub fn hping3_syns(ns: &str, spoof: &str, dst: SocketAddr, base_port: u16, count: u32, interval_us: u32) -> String {
    assert!(u32::from(base_port) + count < 65536, "hping3 source ports would wrap");
    let (port, c, s, i) = (dst.port().to_string(), count.to_string(), base_port.to_string(), format!("u{interval_us}"));
    let target = dst.ip().to_string();
    #[rustfmt::skip]
    let args = ["-q", "-n", "-S", "-p", &port, "-a", spoof, "-s", &s, "-i", &i, "-c", &c, &target];
    let bound = Duration::from_secs(10 + u64::from(count) * u64::from(interval_us.max(20)) / 1_000_000 * 3);
    let out = run_bounded(ns, bound, "hping3", &args);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `xdptcp load ARGS` in namespace `ns` with a hard time bound; returns its JSON summary (the last stdout line).
pub fn xdptcp_load(ns: &str, limit: Duration, args: &[&str]) -> Value {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    all.push("--quiet");
    let out = run_bounded(ns, limit, crate::serve_support::server::binary(), &all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xdptcp load {args:?} failed ({}): {stderr}\n{stdout}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("xdptcp load: last line is not JSON ({e}): {stdout}"))
}

/// `count` connections from `threads` threads in namespace `ns` (about `threads` in flight), each thread running
/// the exchanges of `plan` in turn, with `timeout` on every connect, read and write. Returns the tally and the
/// slowest connection.
pub fn concurrent(
    ns: &str,
    dst: SocketAddr,
    plan: &[Exchange],
    count: u64,
    threads: u64,
    timeout: Duration,
) -> (Tally, Duration) {
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let share = count / threads + u64::from(i < count % threads);
            let plan = plan.to_vec();
            crate::common::spawn_in_netns(ns, move || {
                if let Some(cpu) = clients::client_cpu() {
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                let mut t = Tally::default();
                let mut slowest = Duration::ZERO;
                for k in 0..share {
                    let ex = plan[((i + k) % plan.len() as u64) as usize];
                    let start = Instant::now();
                    match clients::exchange_with_timeout(dst, ex, i * 1_000_000 + k, timeout) {
                        Ok(()) => t.ok += 1,
                        Err((e, reset)) => {
                            t.failed += 1;
                            t.resets += u64::from(reset);
                            if t.examples.len() < 5 {
                                t.examples.push(format!("{ex:?}: {e}"));
                            }
                        }
                    }
                    slowest = slowest.max(start.elapsed());
                }
                (t, slowest)
            })
        })
        .collect();
    let mut total = Tally::default();
    let mut slowest = Duration::ZERO;
    for h in handles {
        let (t, s) = h.join().expect("client thread");
        total.merge(t);
        slowest = slowest.max(s);
    }
    (total, slowest)
}
