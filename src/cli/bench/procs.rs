//! Child processes of the bench: each runs inside a namespace, is pinned to a CPU, and dies with its guard.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child; SIGTERM then SIGKILL on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Proc {
    /// Starts `args` (argv[0] = program) inside namespace `ns`, stdout and stderr to `log`.
    pub fn spawn(name: &str, ns: &str, args: &[String], log: &Path) -> Result<Proc> {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc { name: name.to_string(), child: Some(child), log: log.to_owned() })
    }

    /// The child's process id (0 once stopped). `ip netns exec` execs the program, so this is the program's.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Waits until the log contains `needle` (the child is ready), or fails after `timeout` or if it exits.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(needle) {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("{} exited ({status}) before it was ready:\n{}", self.name, tail(&text, 2000));
                }
            }
            if t0.elapsed() > timeout {
                bail!("{} not ready after {:?}:\n{}", self.name, timeout, tail(&text, 2000));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits up to `grace` before SIGKILL. Returns the log.
    pub fn stop(&mut self, grace: Duration) -> String {
        if let Some(mut c) = self.child.take() {
            // SAFETY-free: signalling by pid through the kill(1) command keeps this module free of unsafe.
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let t0 = Instant::now();
            while t0.elapsed() < grace {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the child to finish by itself (up to `timeout`), returning its exit success and log.
    pub fn finish(&mut self, timeout: Duration) -> Result<(bool, String)> {
        let t0 = Instant::now();
        let Some(c) = self.child.as_mut() else { bail!("{} already stopped", self.name) };
        loop {
            if let Some(status) = c.try_wait()? {
                self.child = None;
                let mut text = String::new();
                std::fs::File::open(&self.log)?.read_to_string(&mut text)?;
                return Ok((status.success(), text));
            }
            if t0.elapsed() > timeout {
                let log = self.stop(Duration::from_secs(1));
                bail!("{} did not finish within {:?}:\n{}", self.name, timeout, tail(&log, 2000));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs a command inside namespace `ns` and returns its stdout; fails with its stderr.
pub fn netns_exec(ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(["netns", "exec", ns]).args(args).output()?;
    if !out.status.success() {
        bail!("`{}` in {ns} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
