//! `xdptcp serve` as a child process inside a namespace, with a guard that kills it (SIGKILL) when the test ends
//! however it ends, its stderr kept for failure messages, and its `--stats-json` read back.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wait_for;

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_xdptcp")
}

/// A running `xdptcp serve`. Dropping it kills the process.
pub struct Server {
    child: Child,
    pub ns: String,
    pub stats_path: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    exited: Option<ExitStatus>,
    /// When the process was spawned (no later than the server's own start, from which it counts its uptime).
    spawned: Instant,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Server {
    /// Starts `xdptcp serve --iface IFACE --stats-json FILE --summary-every 1 ARGS...` in namespace `ns` and waits
    /// until it says it is serving (the program is attached and the workers run). Panics with its stderr if it
    /// exits first or takes longer than 20 s.
    pub fn start(ns: &str, iface: &str, args: &[&str]) -> Server {
        Server::start_with(&[], ns, iface, args)
    }

    /// Like [`Server::start`], at a real-time priority (SCHED_FIFO 10), for the tests that load it with kernel
    /// clients and count the clients' retransmissions.
    ///
    /// Linux clients send a tail-loss probe when an ACK is 2·SRTT + 2 ticks late (8 ms at HZ=250). A CI host or
    /// a shared development machine runs other jobs, and a normal thread there can wait longer than that for a
    /// core, so probes would fire at segments that were never lost and the count would measure the host, not
    /// the server. At real-time priority the worker runs as soon as a frame wakes it, as a user-space stack in
    /// production would (pinned and prioritised); any retransmission left is the server's doing. The worker
    /// sleeps in poll(2) when idle and the kernel caps real-time use at 95% of a core, so nothing else starves
    /// for long.
    ///
    /// Where real-time scheduling is not allowed (a container without CAP_SYS_NICE, a cgroup without a real-time
    /// budget), the server runs at normal priority and says so on the test's stderr.
    pub fn start_realtime(ns: &str, iface: &str, args: &[&str]) -> Server {
        static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let allowed = *ALLOWED.get_or_init(|| {
            let ok = Command::new("chrt").args(["-f", "10", "true"]).status().is_ok_and(|s| s.success());
            if !ok {
                // The kernel-client tests count the clients' retransmissions, which a server kept off its CPU
                // by the host's other jobs would cause: in CI that must not pass unnoticed.
                assert!(
                    !crate::common::ci(),
                    "chrt -f 10 is not allowed here, and CI=true: cannot run at real-time priority"
                );
                eprintln!("NOTE: chrt -f 10 is not allowed here: the server runs at normal priority");
            }
            ok
        });
        let pre: &[&str] = if allowed { &["chrt", "-f", "10"] } else { &[] };
        Server::start_with(pre, ns, iface, args)
    }

    fn start_with(pre: &[&str], ns: &str, iface: &str, args: &[&str]) -> Server {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let stats_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}-{n}-stats.json"));
        let _ = std::fs::remove_file(&stats_path);
        let stats = stats_path.to_str().expect("utf-8 path").to_string();
        let mut all = vec!["serve", "--iface", iface, "--stats-json", &stats, "--summary-every", "1"];
        all.extend_from_slice(args);
        let mut server = Server::spawn_with(pre, ns, &all, stats_path);
        server.wait_ready();
        server
    }

    /// Runs `xdptcp ARGS...` in namespace `ns` without waiting for anything.
    pub fn spawn(ns: &str, args: &[&str], stats_path: PathBuf) -> Server {
        Server::spawn_with(&[], ns, args, stats_path)
    }

    /// Like [`Server::spawn`], behind `pre` (a command that execs the rest, e.g. `chrt -f 10`).
    pub fn spawn_with(pre: &[&str], ns: &str, args: &[&str], stats_path: PathBuf) -> Server {
        // `chrt` and `ip netns exec` exec the next program in place (no fork), so the child's pid is xdptcp's own
        // and signals reach it directly.
        let spawned = Instant::now();
        let (program, pre) = match pre.split_first() {
            Some((p, rest)) => (*p, rest),
            None => ("ip", &[][..]),
        };
        let mut child = Command::new(program)
            .args(pre)
            .args(if program == "ip" { &["netns", "exec"][..] } else { &["ip", "netns", "exec"][..] })
            .args([ns, binary()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xdptcp starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Server { child, ns: ns.to_string(), stats_path, stderr, exited: None, spawned }
    }

    fn wait_ready(&mut self) {
        let ready = wait_for(Duration::from_secs(20), || {
            if self.stderr_text().contains("xdptcp: serving") {
                return Some(true);
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    Some(false)
                }
                _ => None,
            }
        });
        if ready != Some(true) {
            // Let the reader thread take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            panic!("xdptcp serve did not start (exit {:?}):\n{}", self.exited, self.stderr_text());
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The `total` object of the stats JSON, if the file exists and parses.
    pub fn stats(&self) -> Option<Value> {
        let text = std::fs::read(&self.stats_path).ok()?;
        let v: Value = serde_json::from_slice(&text).ok()?;
        v.get("total").cloned()
    }

    /// One counter of the latest stats (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.stats().and_then(|t| t.get(name).and_then(Value::as_u64)).unwrap_or(0)
    }

    /// The stats, if they were taken after `t` (and after every worker's report of before `t` was superseded).
    pub fn stats_since(&self, t: Instant) -> Option<Value> {
        // The server counts its uptime from a moment after `spawned`, so a snapshot with uptime U was taken at
        // or after spawned + U. Workers report every 100 ms: allow for one more report.
        let need = t.saturating_duration_since(self.spawned).as_secs_f64() + 0.25;
        self.stats().filter(|s| s["uptime_seconds"].as_f64().is_some_and(|u| u >= need))
    }

    /// Waits until stats taken after this call satisfy `pred` (the file is rewritten every second); panics after
    /// `timeout` with the last stats and the server's stderr.
    pub fn wait_stats(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let since = Instant::now();
        match wait_for(timeout, || self.stats_since(since).filter(|s| pred(s))) {
            Some(s) => s,
            None => panic!(
                "server stats never showed {what} within {timeout:?}; last stats: {}\nstderr:\n{}",
                self.stats().map(|s| s.to_string()).unwrap_or_default(),
                self.stderr_text()
            ),
        }
    }

    /// Waits until the server holds no connection and no TIME-WAIT entry: after 2MSL (`--time-wait`), the
    /// server must have forgotten everything.
    pub fn wait_no_state(&self, timeout: Duration) -> Value {
        self.wait_stats("live_conns 0 and time_wait 0", timeout, |s| s["live_conns"] == 0 && s["time_wait"] == 0)
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the server.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -{signal} {}", self.pid());
    }

    /// Waits for the server to exit; panics (after killing it) if it takes longer than `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let status = wait_for(timeout, || self.child.try_wait().ok().flatten());
        match status {
            Some(s) => {
                self.exited = Some(s);
                // Give the reader thread the last lines (the final stats).
                std::thread::sleep(Duration::from_millis(100));
                s
            }
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("xdptcp did not exit within {timeout:?}:\n{}", self.stderr_text());
            }
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.stats_path);
    }
}

/// Runs `xdptcp ARGS...` in namespace `ns` (or outside any, when `ns` is None) to completion with a timeout,
/// returning (exit status, stderr). For the bad-input tests.
pub fn run_to_exit(ns: Option<&str>, pre: &[&str], args: &[&str], timeout: Duration) -> (ExitStatus, String) {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]);
            c.args(pre);
            c
        }
        None if !pre.is_empty() => {
            let mut c = Command::new(pre[0]);
            c.args(&pre[1..]);
            c
        }
        None => Command::new(binary()),
    };
    if ns.is_some() || !pre.is_empty() {
        cmd.arg(binary());
    }
    let mut child =
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(pipe), &mut s);
        let _ = tx.send(s);
    });
    let status = wait_for(timeout, || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("xdptcp {args:?} did not exit within {timeout:?}");
    };
    (status, rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default())
}
