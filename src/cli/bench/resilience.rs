//! Step 4 of the bench: each server under attack, measured from both sides.
//!
//! A spoofed SYN flood on queue 1 at the ring's rate while legitimate connections run on queue 0, then a flood of
//! ACKs with random acknowledgment numbers (blind cookie guesses) on its own. What the attacker sent comes from
//! the generator; what the server sent back, accepted and held comes from the server's own counters: xdptcp's
//! stats JSON, and for the Linux server (syncookies on) its namespace's `/proc/net/{netstat,snmp,sockstat}`.
//! Memory is the server process's resident set plus, for Linux, the kernel's TCP buffer pages.

use super::procs::{self, netns_exec, Proc};
use super::sweep::{self, LoadResult, LoadSpec};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The server under attack.
pub struct Target<'a> {
    pub ours: bool,
    pub proc: &'a Proc,
    /// Namespace of the server (for the Linux counters).
    pub ns: &'a str,
    /// xdptcp's stats JSON (rewritten every second).
    pub stats_json: &'a Path,
}

/// Counters of one server at one moment, under common names.
#[derive(Clone, Debug, Default)]
struct Counters {
    /// SYN-ACKs sent (xdptcp: cookies; Linux: cookie SYN-ACKs plus SYN-ACKs of its SYN queue).
    syn_acks: f64,
    /// Connections the server accepted on a cookie (or at all, for Linux: passive opens).
    accepted: f64,
    /// Cookies (ACKs) refused.
    refused: f64,
    rsts: f64,
    segments_out: f64,
    rss_bytes: f64,
    /// Kernel TCP buffer memory (Linux only).
    kernel_tcp_bytes: f64,
    /// Connections held (live, and half-open for Linux).
    held: f64,
}

impl<'a> Target<'a> {
    fn counters(&self) -> Counters {
        let rss_bytes = rss(self.proc.pid()).unwrap_or(0.0);
        if self.ours {
            let s = std::fs::read_to_string(self.stats_json)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .map(|v| v["total"].clone())
                .unwrap_or(Value::Null);
            let n = |k: &str| s[k].as_f64().unwrap_or(0.0);
            Counters {
                // Cookie SYN-ACKs from the workers and, with --xdp-cookies, from the XDP program.
                syn_acks: n("cookies_sent") + n("xdp_answered"),
                accepted: n("cookies_accepted"),
                refused: n("cookies_rejected"),
                rsts: n("rsts_sent"),
                segments_out: n("frames_out"),
                rss_bytes,
                kernel_tcp_bytes: 0.0,
                held: n("live_conns"),
            }
        } else {
            let k = kernel_counters(self.ns);
            let n = |key: &str| k.get(key).copied().unwrap_or(0.0);
            Counters {
                // Linux counts cookie SYN-ACKs apart; ordinary ones only as segments out.
                syn_acks: n("TcpExt.SyncookiesSent"),
                accepted: n("TcpExt.SyncookiesRecv"),
                refused: n("TcpExt.SyncookiesFailed"),
                rsts: n("Tcp.OutRsts"),
                segments_out: n("Tcp.OutSegs"),
                rss_bytes,
                kernel_tcp_bytes: n("sockstat.TCP.mem") * 4096.0,
                held: n("sockstat.TCP.inuse"),
            }
        }
    }

    /// The counters once the server's view has caught up (xdptcp writes its stats every second).
    fn settled(&self) -> Counters {
        std::thread::sleep(Duration::from_millis(if self.ours { 1300 } else { 300 }));
        self.counters()
    }
}

/// Resident set of a process, in bytes.
fn rss(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(kb * 1024.0)
}

/// `/proc/net/netstat` and `/proc/net/snmp` (pairs of header and value lines) and `/proc/net/sockstat` of a
/// namespace, as `Group.Name` → value.
fn kernel_counters(ns: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for file in ["/proc/net/netstat", "/proc/net/snmp"] {
        let text = netns_exec(ns, &["cat", file]).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [head, vals] = pair else { continue };
            let (Some((group, names)), Some((_, values))) = (head.split_once(':'), vals.split_once(':')) else {
                continue;
            };
            for (k, v) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(v) = v.parse::<f64>() {
                    m.insert(format!("{group}.{k}"), v);
                }
            }
        }
    }
    // "TCP: inuse 5 orphan 0 tw 0 alloc 6 mem 1"
    let text = netns_exec(ns, &["cat", "/proc/net/sockstat"]).unwrap_or_default();
    for line in text.lines() {
        if let Some((group, rest)) = line.split_once(':') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for kv in words.chunks(2) {
                if let [k, v] = kv {
                    if let Ok(v) = v.parse::<f64>() {
                        m.insert(format!("sockstat.{group}.{k}"), v);
                    }
                }
            }
        }
    }
    m
}

/// A flood alone from `FLOOD_CIDR` on queue 1, pinned beside the legitimate generator; returns its JSON report.
fn start_flood(legit: &LoadSpec, kind: &str, src: &str, secs: f64, raw: &Path, tag: &str) -> Result<Proc> {
    let args: Vec<String> = [
        legit.exe.display().to_string().as_str(),
        "load",
        "--iface",
        &legit.iface,
        "--target",
        &legit.target,
        "--src",
        src,
        "--flood",
        kind,
        "--queue",
        "1",
        "--duration",
        &format!("{secs}"),
        "--cpus",
        &legit.cpu.to_string(),
        "--json",
        &raw.join(format!("{tag}.json")).display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::spawn(tag, &legit.ns, &args, &raw.join(format!("{tag}.log")))
}

fn finish_flood(mut p: Proc, secs: f64, raw: &Path, tag: &str) -> Value {
    let log = match p.finish(Duration::from_secs_f64(secs + 30.0)) {
        Ok((_, log)) => log,
        Err(e) => format!("{e:#}"),
    };
    std::fs::read_to_string(raw.join(format!("{tag}.json")))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({ "log": procs::tail(&log, 500) }))
}

/// What the resilience step measures for one server.
pub struct Plan<'a> {
    pub legit: &'a LoadSpec,
    pub legit_rate: f64,
    pub syn_secs: f64,
    pub ack_secs: f64,
    pub flood_src: &'a str,
    pub raw: &'a Path,
}

/// Runs the SYN flood with legitimate load, then the ACK flood, against `t`.
pub fn attack(t: &Target<'_>, plan: &Plan<'_>) -> Result<Value> {
    let who = if t.ours { "xdptcp" } else { "linux" };
    let raw = plan.raw;
    let before = t.settled();

    // SYN flood with legitimate connections beside it.
    let tag = format!("flood-{who}-syn");
    let flood = start_flood(plan.legit, "syn", plan.flood_src, plan.syn_secs + 1.0, raw, &tag)?;
    std::thread::sleep(Duration::from_millis(500));
    let mut spec = plan.legit.clone();
    spec.duration = plan.syn_secs;
    let legit: LoadResult = sweep::run_load(&spec, plan.legit_rate, raw, &format!("flood-{who}-legit"))
        .with_context(|| format!("legitimate load beside the SYN flood on {who}"))?;
    let peak = t.counters();
    let syn_attack = finish_flood(flood, plan.syn_secs, raw, &tag);
    let after_syn = t.settled();

    // ACK flood: blind guesses at cookies.
    let tag = format!("flood-{who}-ack");
    let flood = start_flood(plan.legit, "ack", plan.flood_src, plan.ack_secs, raw, &tag)?;
    let ack_attack = finish_flood(flood, plan.ack_secs, raw, &tag);
    let after_ack = t.settled();

    let syn_sent = syn_attack["flood"]["sent"].as_f64().unwrap_or(0.0);
    let syn_secs = syn_attack["flood"]["duration_s"].as_f64().unwrap_or(0.0);
    let guesses = ack_attack["flood"]["sent"].as_f64().unwrap_or(0.0);
    let syn_acks = after_syn.syn_acks - before.syn_acks;
    // Legitimate handshakes also earn SYN-ACKs and (for xdptcp) cookie accepts: take them out.
    let legit_conns = (legit.completed + legit.failed) as f64;
    let false_accepts = after_ack.accepted - after_syn.accepted;
    let out = json!({
        "legit": legit,
        "legit_success": legit.success(),
        "syn_flood": {
            "sent": syn_sent,
            "pps": syn_attack["flood"]["pps"],
            "seconds": syn_secs,
            "server_syn_acks": syn_acks,
            "server_syn_acks_per_s": if syn_secs > 0.0 { syn_acks / syn_secs } else { 0.0 },
            "syn_acks_per_flood_syn": if syn_sent > 0.0 { (syn_acks - legit_conns).max(0.0) / syn_sent } else { 0.0 },
            "server_segments_out": after_syn.segments_out - before.segments_out,
        },
        "ack_flood": {
            "guesses": guesses,
            "pps": ack_attack["flood"]["pps"],
            "false_accepts": false_accepts,
            "false_accepts_per_guess": if guesses > 0.0 { false_accepts / guesses } else { 0.0 },
            "refused": after_ack.refused - after_syn.refused,
            "rsts": after_ack.rsts - after_syn.rsts,
            "rsts_per_s": (after_ack.rsts - after_syn.rsts) / plan.ack_secs,
        },
        "memory": {
            "rss_before": before.rss_bytes,
            "rss_during_syn_flood": peak.rss_bytes,
            "rss_after": after_ack.rss_bytes,
            "kernel_tcp_before": before.kernel_tcp_bytes,
            "kernel_tcp_during_syn_flood": peak.kernel_tcp_bytes,
            "kernel_tcp_after": after_ack.kernel_tcp_bytes,
            "held_before": before.held,
            "held_during_syn_flood": peak.held,
            "held_after": after_ack.held,
        },
        "attack": { "syn": syn_attack, "ack": ack_attack },
    });
    println!(
        "  {who:<7} legit {:.0}/s: success {:.3}%, connect p99 {:.1} us | SYN flood {:.0} pps → {:.0} SYN-ACKs/s | \
         ACK flood {:.0} guesses → {} accepted, {:.0} RST/s | RSS {:.1} → {:.1} MiB{}",
        plan.legit_rate,
        100.0 * legit.success(),
        legit.connect_us.p99,
        out["syn_flood"]["pps"].as_f64().unwrap_or(0.0),
        out["syn_flood"]["server_syn_acks_per_s"].as_f64().unwrap_or(0.0),
        guesses,
        false_accepts,
        out["ack_flood"]["rsts_per_s"].as_f64().unwrap_or(0.0),
        before.rss_bytes / 1048576.0,
        after_ack.rss_bytes / 1048576.0,
        if t.ours {
            String::new()
        } else {
            format!(
                ", kernel TCP {:.1} → {:.1} MiB (peak {:.1})",
                before.kernel_tcp_bytes / 1048576.0,
                after_ack.kernel_tcp_bytes / 1048576.0,
                peak.kernel_tcp_bytes / 1048576.0
            )
        }
    );
    Ok(out)
}
