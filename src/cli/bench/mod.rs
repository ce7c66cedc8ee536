//! `xdptcp bench` (also `scripts/bench.sh`): one run that puts this stack, the Linux kernel on the same veth pair
//! and cores, and the raw ring ceiling side by side.
//!
//! 1. the ring ceiling (`xdptcp ceiling`);
//! 2. `xdptcp serve` under `xdptcp load`, per scenario: a rate sweep for the highest rate with ≥ 99.9 % success
//!    and p99 connect latency under 1 ms, then latency at half that rate; for connect + close, beside the
//!    stateless responder (`xdptcp respond`: no TCP state, same path and core; its own sweep in the full run, and
//!    the two taking turns at one overload rate), which tells how much of the limit is the stack's and how much
//!    the generator's and the packet path's;
//! 3. the Linux kernel as the server (`xdptcp linux-server`, an epoll server with SO_REUSEPORT) under the same
//!    generator, sweep and cores — its receive processing steered to the server core with RPS, so both servers
//!    spend the same core;
//! 4. both servers under a spoofed SYN flood at the ring's rate while legitimate connections are measured.
//!
//! Ratios are taken inside this one run. Results go to `bench/results/<name>.{json,md}` with SVG plots; the last
//! line printed is one JSON object.

mod cpu_takers;
mod figures;
mod plots;
mod procs;
mod resilience;
mod responder;
mod stalls;
mod sweep;
mod xdp_cookies;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use figures::{fraction, half_p99, knee, knee_p90, percent, ratio, shown};
use procs::{netns_exec, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sweep::{LoadSpec, Sweep};
use xdptcp::io::topology::VethPair;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The short run (under two minutes): shorter steps, one refinement, knees from one run, shorter flood.
    #[arg(long)]
    quick: bool,
    /// Name of the result files (default: quick-<unix time> or full-<unix time>): letters, digits, '.', '_', '-'.
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,
    /// Directory for the result files.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// CPU of the server (xdptcp serve, or the Linux server and its receive processing).
    #[arg(long, default_value_t = 1, value_parser = crate::cli::cpu_arg::parse_cpu)]
    server_cpu: usize,
    /// CPU of the load generator.
    #[arg(long, default_value_t = 0, value_parser = crate::cli::cpu_arg::parse_cpu)]
    client_cpu: usize,
    /// Seconds per load run (default 1.5 quick, 4 full).
    #[arg(long, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    step: Option<f64>,
    /// Leave the topology in place afterwards.
    #[arg(long)]
    keep_topology: bool,
}

const PREFIX: &str = "xbn";
const PORT: u16 = 8080;
/// The generator's source addresses: never configured anywhere; the server routes them back via the generator.
const SRC_CIDR: &str = "10.78.0.0/16";
const FLOOD_CIDR: &str = "10.79.0.0/16";
/// Entries per AF_XDP ring, for the generator and for xdptcp's server alike.
const RING: u32 = 16384;

struct Scenario {
    name: &'static str,
    /// App of both servers.
    app: &'static str,
    http: bool,
    /// Frames per connection in the busier direction (client → server), for the fraction of the ceiling.
    frames_c2s: f64,
}

const SCENARIOS: [Scenario; 2] = [
    // SYN, ACK+FIN, ACK from the client; SYN-ACK, FIN+ACK from the server.
    Scenario { name: "connect-close", app: "echo", http: false, frames_c2s: 3.0 },
    // SYN, ACK+request, ACK+FIN (with the response's ACK), ACK from the client.
    Scenario { name: "http", app: "http", http: true, frames_c2s: 4.0 },
];

/// A run's name becomes file names in two directories (`target/bench-runs/NAME/`, `OUT/NAME.json`): one plain
/// file name, never a path that leads elsewhere or a hidden or empty one.
fn parse_name(s: &str) -> Result<String, String> {
    let plain = s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if s.is_empty() || s.len() > 100 || !plain || s.starts_with(['.', '-']) {
        return Err(format!("{s:?}: use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'"));
    }
    Ok(s.to_string())
}

pub fn run(a: &Args) -> Result<()> {
    if a.server_cpu == a.client_cpu {
        // Every figure would then be two processes taking turns on one core.
        bail!("--server-cpu and --client-cpu are both {}: the bench needs two different CPUs", a.server_cpu);
    }
    let started = Instant::now();
    let exe = std::env::current_exe().context("finding the xdptcp executable")?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = a.name.clone().unwrap_or_else(|| format!("{}-{stamp}", if a.quick { "quick" } else { "full" }));
    let raw = PathBuf::from("target/bench-runs").join(&name);
    std::fs::create_dir_all(&raw).with_context(|| format!("creating {}", raw.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let step = a.step.unwrap_or(if a.quick { 1.5 } else { 4.0 });
    let depth = if a.quick { sweep::Depth::QUICK } else { sweep::Depth::FULL };
    println!("xdptcp bench ({}) — {}", if a.quick { "quick" } else { "full" }, machine());

    // 0. The machine's own latency floor.
    let gaps_secs = if a.quick { 2.0 } else { 5.0 };
    println!("\n[0/4] the machine's scheduling gaps (a thread spinning on each CPU, alone, then together)");
    let gaps = stalls::MachineGaps::probe(&[a.client_cpu, a.server_cpu], gaps_secs);
    for line in gaps.describe() {
        println!("  {line}");
    }

    // 1. The ceiling, on its own pair. This machine's packet path has slow phases, some 30 % slower, that last
    // tens of seconds and come and go (2026-12-06: ceilings of 0.53–0.56 Mpps six times in a row, then
    // 0.74–0.79 eight times; a loop of arithmetic ran at the same speed in both). Every such phase only lowers a
    // ceiling, so it is sampled often and the highest counts: now (twice in the full run), after each sweep in
    // the full run, and after the sweeps. A slow phase cannot then flatter the fractions unless every sample
    // falls in one, and the report says so when a fraction comes out above 100 %.
    println!("\n[1/4] ring ceiling");
    let mut ceilings = Vec::new();
    for i in 0..if a.quick { 1 } else { 2 } {
        let c = ceiling(&exe, &raw, a.quick, &format!("before-{i}"))?;
        println!("  ceiling: {c:.3} Mpps of 64-byte frames reflected");
        ceilings.push(c);
    }

    // The pair every other step shares.
    let mut topo = VethPair::create(PREFIX, 2).context("building the bench topology")?;
    if a.keep_topology {
        topo.keep();
    }
    prepare(&topo, a.server_cpu)?;
    let target = format!("{}:{PORT}", topo.ip4_a);
    let spec = |http: bool| LoadSpec {
        exe: exe.clone(),
        ns: topo.ns_b.clone(),
        iface: topo.if_b.clone(),
        target: target.clone(),
        src: SRC_CIDR.into(),
        cpu: a.client_cpu,
        duration: step,
        http,
        time_wait: 60.0,
        // Deep rings: at 100k connections/s and more a 4096-entry RX ring overflows during the VM's stalls.
        extra: vec!["--ring".into(), RING.to_string()],
        server_ns: topo.ns_a.clone(),
    };

    let mut results = Vec::new();
    for (i, sc) in SCENARIOS.iter().enumerate() {
        println!("\n[{}/4] scenario {}: xdptcp serve --app {} vs Linux, same generator", 2 + i.min(1), sc.name, sc.app);
        // Linux first, so that xdptcp can then also be measured at Linux's half-load rate: at equal rates the
        // generator is equally busy, and its own catching up after the VM's gaps weighs the same on both.
        let linux = {
            let mut srv = start_linux(&exe, &topo, sc.app, a.server_cpu, &raw, &format!("linux-{}", sc.name))?;
            let s = sweep::sweep(&spec(sc.http), 10_000.0, 3_000_000.0, depth, &raw, &format!("linux-{}", sc.name))?;
            srv.stop(Duration::from_secs(10));
            s
        };
        if !a.quick {
            ceilings.push(ceiling_between(&exe, &raw, &format!("after-linux-{}", sc.name))?);
        }
        let (ours, same_rate) = {
            let mut srv = start_xdptcp(&exe, &topo, sc.app, a.server_cpu, 1, &raw, &format!("serve-{}", sc.name), &[])?;
            let s = sweep::sweep(&spec(sc.http), 40_000.0, 3_000_000.0, depth, &raw, &format!("xdptcp-{}", sc.name))?;
            let same = match &linux.half {
                Some((rate, _)) => {
                    let r = sweep::run_load(&spec(sc.http), *rate, &raw, &format!("xdptcp-{}-linux-half", sc.name))?;
                    sweep::log_run(&format!("xdptcp-{} @Linux 50%", sc.name), *rate, &r);
                    Some((*rate, r))
                }
                None => None,
            };
            srv.stop(Duration::from_secs(10));
            (s, same)
        };
        // The stack's share of the limit (connect + close): in the full run the same sweep against a server with no
        // TCP stack on the same AF_XDP path and core; in both runs the two taking turns at one overload rate.
        let (responder, head_to_head) = if sc.http {
            (None, None)
        } else {
            let r = if a.quick {
                None
            } else {
                println!("  the same sweep against the stateless responder (no TCP state, same AF_XDP path and core)");
                let tag = format!("responder-{}", sc.name);
                let mut srv = responder::start(&exe, &topo, a.server_cpu, &raw, &tag)?;
                let r = sweep::sweep(&spec(false), 40_000.0, 3_000_000.0, depth, &raw, &tag);
                srv.stop(Duration::from_secs(10));
                Some(r?)
            };
            // Well past both p90 knees, so that each run measures what the pair of cores manages (at 1.25 times,
            // runs -xi and -xii saw some turns achieve the whole offered rate: not saturated).
            let knee = p90_rate(&ours).max(r.as_ref().map_or(0.0, p90_rate));
            let rate = (1.5 * knee).max(60_000.0).round();
            println!("  the stateless responder and xdptcp taking turns at {rate:.0}/s offered");
            let h = responder::head_to_head(
                &spec(false),
                rate,
                if a.quick { 1 } else { 2 },
                |tag| responder::start(&exe, &topo, a.server_cpu, &raw, tag),
                |tag| start_xdptcp(&exe, &topo, sc.app, a.server_cpu, 1, &raw, tag, &[]),
                &raw,
            )?;
            (r, Some(h))
        };
        // The same server answering SYNs in its XDP program (the quick run: connect + close only, to stay short).
        let xdpc = if a.quick && sc.http {
            None
        } else {
            println!("  xdptcp serve --xdp-cookies (SYNs answered in the XDP program)");
            let tag = format!("xdpc-{}", sc.name);
            Some(xdp_cookies::measure(&spec(sc.http), &ours, &linux, !a.quick, depth, &raw, &tag, |t| {
                start_xdptcp(&exe, &topo, sc.app, a.server_cpu, 1, &raw, t, &["--xdp-cookies"])
            })?)
        };
        if !a.quick {
            ceilings.push(ceiling_between(&exe, &raw, &format!("after-xdptcp-{}", sc.name))?);
        }
        results.push(Measured { sc, ours: Sweep { same_rate, ..ours }, linux, responder, head_to_head, xdpc });
    }

    let after = ceiling(&exe, &raw, a.quick, "after")?;
    println!("\n  ring ceiling again, after the sweeps: {after:.3} Mpps");
    ceilings.push(after);

    println!(
        "\n[4/4] resilience: a spoofed SYN flood at the ring's rate beside legitimate connections, then an ACK flood"
    );
    let legit_rate = results
        .first()
        .map(|m| best_rate(&m.ours).min(best_rate(&m.linux)) * 0.5)
        .filter(|r| *r > 0.0)
        .unwrap_or(5_000.0);
    let legit = spec(false);
    let plan = resilience::Plan {
        legit: &legit,
        legit_rate,
        // The quick run's floods are short: it has to stay under two minutes on a machine whose sweeps vary by
        // tens of seconds from run to run.
        syn_secs: if a.quick { 2.0 } else { 8.0 },
        ack_secs: if a.quick { 2.0 } else { 10.0 },
        flood_src: FLOOD_CIDR,
        raw: &raw,
    };
    let floods = Floods {
        ours: resilience(&exe, &topo, FloodTarget::Xdptcp, a.server_cpu, &plan)?,
        linux: resilience(&exe, &topo, FloodTarget::Linux, a.server_cpu, &plan)?,
        // The full run only: the quick one must stay under two minutes.
        xdpc: if a.quick { None } else { Some(resilience(&exe, &topo, FloodTarget::XdpCookies, a.server_cpu, &plan)?) },
    };
    drop(topo);

    report(a, &name, &raw, &ceilings, &gaps, &results, legit_rate, &floods, started)
}

/// What to say when a scenario's client frames per second came out above the highest ceiling sample: a ceiling
/// is a ceiling, so every sample then fell in one of the machine's slow phases and the fractions are too high.
fn above_ceiling_note(scenarios: &[&str]) -> Option<String> {
    (!scenarios.is_empty()).then(|| {
        format!(
            "Fractions above 100 % ({}): every ceiling sample fell in one of this machine's slow phases, so the \
             fractions of this run overstate; read them against a run whose ceiling was sampled in a fast phase.",
            scenarios.join(", ")
        )
    })
}

/// One scenario's sweeps: xdptcp, Linux, and (connect + close in the full run) the stateless responder.
struct Measured<'a> {
    sc: &'a Scenario,
    ours: Sweep,
    linux: Sweep,
    responder: Option<Sweep>,
    head_to_head: Option<responder::HeadToHead>,
    /// `serve --xdp-cookies`.
    xdpc: Option<xdp_cookies::XdpCookies>,
}

/// The headline rate for the bench's own arithmetic (the flood's legitimate rate, the turns' rate): 0 when no rate
/// met the bar. The report uses [`figures::knee`], which says "none" instead.
fn best_rate(s: &Sweep) -> f64 {
    knee(s).unwrap_or(0.0)
}

/// The p90-bar rate for the bench's own arithmetic (0 when none); see [`best_rate`].
fn p90_rate(s: &Sweep) -> f64 {
    knee_p90(s).unwrap_or(0.0)
}

fn machine() -> String {
    let cpus = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {}, veth, AF_XDP copy mode", kernel.trim())
}

/// One more ceiling sample between sweeps (full run only), said on the console.
fn ceiling_between(exe: &Path, raw: &Path, tag: &str) -> Result<f64> {
    let c = ceiling(exe, raw, false, tag)?;
    println!("  ring ceiling sampled again: {c:.3} Mpps");
    Ok(c)
}

fn ceiling(exe: &Path, raw: &Path, quick: bool, tag: &str) -> Result<f64> {
    let dur = if quick { "2" } else { "4" };
    let out = std::process::Command::new(exe)
        .args(["ceiling", "--prefix", "xbc", "--duration", dur])
        .output()
        .context("running xdptcp ceiling")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(raw.join(format!("ceiling-{tag}.txt")), &text)?;
    if !out.status.success() {
        bail!("xdptcp ceiling failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).context("parsing the ceiling's JSON line")?;
    v["mpps"].as_f64().context("ceiling JSON has no mpps")
}

/// The `rps_cpus` mask with only `cpu` set: 32-bit hex groups, most significant first, comma-separated (the
/// kernel's bitmap format, which a plain `1 << cpu` would overflow from CPU 64 on).
fn rps_mask(cpu: usize) -> String {
    let groups = cpu / 32 + 1;
    (0..groups)
        .rev()
        .map(|g| format!("{:08x}", if g == cpu / 32 { 1u32 << (cpu % 32) } else { 0 }))
        .collect::<Vec<_>>()
        .join(",")
}

/// Routes the generator's source range back through it (for the Linux server), steers the server's receive
/// processing to the server CPU (RPS), and gives the kernel server room to queue.
fn prepare(topo: &VethPair, server_cpu: usize) -> Result<()> {
    let a = &topo.ns_a;
    for cidr in [SRC_CIDR, FLOOD_CIDR] {
        netns_exec(a, &["ip", "route", "replace", cidr, "via", &topo.ip4_b.to_string()])?;
    }
    let mask = rps_mask(server_cpu);
    for q in 0..topo.queues {
        let path = format!("/sys/class/net/{}/queues/rx-{q}/rps_cpus", topo.if_a);
        netns_exec(a, &["sh", "-c", &format!("echo {mask} > {path}")])?;
    }
    // The kernel server must answer on queue 0, where the generator listens: a reply hashed onto queue 1 would
    // reach the generator's kernel (no socket there) and be reset. XPS maps every CPU to TX queue 0.
    let all_cpus = format!("{:x}", (1u64 << core_affinity::get_core_ids().map_or(1, |c| c.len()).min(63)) - 1);
    for q in 0..topo.queues {
        let path = format!("/sys/class/net/{}/queues/tx-{q}/xps_cpus", topo.if_a);
        let m = if q == 0 { all_cpus.as_str() } else { "0" };
        netns_exec(a, &["sh", "-c", &format!("echo {m} > {path}")])?;
    }
    for (k, v) in
        [("net.core.somaxconn", "65535"), ("net.ipv4.tcp_max_syn_backlog", "65535"), ("net.ipv4.tcp_syncookies", "1")]
    {
        netns_exec(a, &["sysctl", "-qw", &format!("{k}={v}")])?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn start_xdptcp(
    exe: &Path,
    topo: &VethPair,
    app: &str,
    cpu: usize,
    queues: u32,
    raw: &Path,
    tag: &str,
    extra: &[&str],
) -> Result<Proc> {
    let cpus: Vec<String> = (0..queues).map(|_| cpu.to_string()).collect();
    let stats = raw.join(format!("{tag}-stats.json")).display().to_string();
    let (port, queues, cpus, ring) = (PORT.to_string(), queues.to_string(), cpus.join(","), RING.to_string());
    #[rustfmt::skip]
    let args = [
        "serve", "--iface", &topo.if_a, "--ports", &port, "--app", app, "--queues", &queues, "--cpus", &cpus,
        "--summary-every", "0", "--stats-json", &stats,
        // As deep as the generator's: a 2048-entry fill ring lasts about 7 ms at 300 k frames/s, and this VM
        // keeps a vCPU away for up to 9 ms (the fill ring ran dry, frames were dropped and SYNs retransmitted).
        "--ring", &ring,
    ];
    let args: Vec<&str> = args.iter().chain(extra).copied().collect();
    spawn_server(exe, topo, &args, raw, tag, "xdptcp: serving")
}

fn start_linux(exe: &Path, topo: &VethPair, app: &str, cpu: usize, raw: &Path, tag: &str) -> Result<Proc> {
    let (listen, cpu) = (format!("{}:{PORT}", topo.ip4_a), cpu.to_string());
    let args = ["linux-server", "--listen", &listen, "--threads", "1", "--cpus", &cpu, "--app", app];
    spawn_server(exe, topo, &args, raw, tag, "listening")
}

/// `exe ARGS` in the server's namespace, its output logged to `raw/tag.log`, once it has printed `ready`.
fn spawn_server(exe: &Path, topo: &VethPair, args: &[&str], raw: &Path, tag: &str, ready: &str) -> Result<Proc> {
    let argv: Vec<String> =
        std::iter::once(exe.display().to_string()).chain(args.iter().map(|s| s.to_string())).collect();
    let mut p = Proc::spawn(tag, &topo.ns_a, &argv, &raw.join(format!("{tag}.log")))?;
    p.wait_for(ready, Duration::from_secs(20))?;
    Ok(p)
}

/// Step 4 for one server: two queues for xdptcp (queue 1 takes the floods), legitimate load on queue 0.
/// The servers the resilience step floods.
#[derive(Clone, Copy)]
enum FloodTarget {
    Xdptcp,
    /// `serve --xdp-cookies`: the flood's SYNs are answered in the XDP program.
    XdpCookies,
    Linux,
}

/// What the resilience step measured, per server.
struct Floods {
    ours: Value,
    linux: Value,
    /// `serve --xdp-cookies` (full run only).
    xdpc: Option<Value>,
}

fn resilience(exe: &Path, topo: &VethPair, who: FloodTarget, cpu: usize, plan: &resilience::Plan<'_>) -> Result<Value> {
    // Our servers' extra arguments; Linux has none of ours.
    let (name, ours): (&str, Option<&[&str]>) = match who {
        FloodTarget::Xdptcp => ("xdptcp", Some(&[])),
        FloodTarget::XdpCookies => ("xdpc", Some(&["--xdp-cookies"])),
        FloodTarget::Linux => ("linux", None),
    };
    let tag = format!("flood-{name}");
    let mut srv = match ours {
        Some(extra) => start_xdptcp(exe, topo, "echo", cpu, 2, plan.raw, &tag, extra)?,
        None => start_linux(exe, topo, "echo", cpu, plan.raw, &tag)?,
    };
    let ours = ours.is_some();
    let stats = plan.raw.join(format!("{tag}-stats.json"));
    let target = resilience::Target { ours, proc: &srv, ns: &topo.ns_a, stats_json: &stats };
    let out = resilience::attack(&target, plan);
    srv.stop(Duration::from_secs(10));
    out
}

#[allow(clippy::too_many_arguments)]
fn report(
    a: &Args,
    name: &str,
    raw: &Path,
    ceilings: &[f64],
    gaps: &stalls::MachineGaps,
    results: &[Measured<'_>],
    legit_rate: f64,
    floods: &Floods,
    started: Instant,
) -> Result<()> {
    let (flood_ours, flood_linux) = (&floods.ours, &floods.linux);
    let mut md = String::new();
    md.push_str(&format!("# xdptcp bench `{name}`\n\n{}\n\n", machine()));
    let ceiling_mpps = ceilings.iter().copied().fold(0.0, f64::max);
    let samples = ceilings.iter().map(|c| format!("{c:.3}")).collect::<Vec<_>>().join(", ");
    md.push_str(&format!(
        "Ring ceiling: **{ceiling_mpps:.3} Mpps** (64-byte frames reflected, one core per side; the highest of \
         {samples} Mpps, measured {when}).\n\n",
        when = if a.quick { "before and after the sweeps" } else { "before, between and after the sweeps" }
    ));
    md.push_str(&format!(
        "Scheduling gaps of this machine (a thread spinning on each bench CPU, alone and then together, before \
         the runs):\n\n{}\n\n\
         With a CPU idle, the machine's other tasks run there; with both bench CPUs busy (the generator spins, and \
         so does xdptcp's worker for 50 µs after each frame) they take a slice of one of them. The Linux server's \
         CPU idles between its softirqs, so at moderate rates it sees the \"alone\" gaps and xdptcp the \
         \"together\" ones. \
         Every connection in flight during such a gap waits it out, whatever the server. The headline columns \
         use the issue's bar: the highest rate with ≥ 99.9 % success, the offered rate achieved and **p99** \
         connect latency under 1 ms. The \"p90 bar\" columns give the same with p90 under 1 ms (beside \
         xdptcp's: the ratio to Linux and the fraction of the ceiling there), which shows what the servers do \
         between the machine's gaps. Both knees are bisected equally finely. \
         Latency at 50 % is taken at half of each server's headline rate, where the one generator core is far \
         busier for xdptcp (and its catching up after a gap longer); the last column also runs xdptcp at Linux's \
         half rate, which compares the servers at equal load.\n\n",
        gaps.describe().iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
    ));
    md.push_str("| scenario | xdptcp conn/s | Linux conn/s | xdptcp ÷ Linux | fraction of ceiling | xdptcp at the p90 bar | Linux at the p90 bar | xdptcp p99 connect at 50% (µs) | Linux p99 connect at 50% (µs) | xdptcp p50 / p99 at Linux's 50% rate (µs) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    println!(
        "\n{:<15} {:>13} {:>13} {:>8} {:>9} {:>12} {:>12}",
        "scenario", "xdptcp c/s", "Linux c/s", "ratio", "ceiling", "p99 ours", "p99 Linux"
    );
    let mut scen = serde_json::Map::new();
    let mut above_ceiling = Vec::new();
    // The plots go below the table: an image line between rows would end a Markdown table.
    let mut plots_md = String::new();
    let mut responder_md = String::new();
    let mut xdpc_md = String::new();
    for Measured { sc, ours, linux, responder, head_to_head, xdpc } in results {
        let (o, l) = (knee(ours), knee(linux));
        let (vs_linux, of_ceiling) = (ratio(o, l), fraction(o, sc.frames_c2s, ceiling_mpps));
        println!(
            "{:<15} {:>13} {:>13} {:>8} {:>9} {:>12} {:>12}",
            sc.name,
            shown(o, 0, ""),
            shown(l, 0, ""),
            shown(vs_linux, 2, "x"),
            percent(of_ceiling),
            shown(half_p99(ours), 1, ""),
            shown(half_p99(linux), 1, "")
        );
        let (o90, l90) = (knee_p90(ours), knee_p90(linux));
        let (ratio90, frac90) = (ratio(o90, l90), fraction(o90, sc.frames_c2s, ceiling_mpps));
        let p90_ours = format!("{} ({}, {})", shown(o90, 0, ""), shown(ratio90, 2, "×"), percent(frac90));
        if [of_ceiling, frac90].into_iter().flatten().any(|f| f > 1.0) {
            above_ceiling.push(sc.name);
        }
        let same = ours.same_rate.as_ref().map_or("—".to_string(), |(rate, r)| {
            format!(
                "{:.0} / {:.0} (at {rate:.0}/s; Linux {} / {})",
                r.connect_us.p50,
                r.connect_us.p99,
                shown(linux.half.as_ref().map(|(_, l)| l.connect_us.p50), 0, ""),
                shown(half_p99(linux), 0, "")
            )
        });
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            sc.name,
            shown(o, 0, ""),
            shown(l, 0, ""),
            shown(vs_linux, 2, "×"),
            percent(of_ceiling),
            p90_ours,
            shown(l90, 0, ""),
            shown(half_p99(ours), 1, ""),
            shown(half_p99(linux), 1, ""),
            same
        ));
        scen.insert(
            sc.name.into(),
            json!({ "xdptcp": ours, "linux": linux, "xdptcp_cps": o, "linux_cps": l, "ratio_vs_linux": vs_linux,
                    "fraction_of_ceiling": of_ceiling, "xdptcp_cps_p90_under_1ms": o90,
                    "linux_cps_p90_under_1ms": l90, "ratio_vs_linux_p90_under_1ms": ratio90,
                    "fraction_of_ceiling_p90_under_1ms": frac90, "frames_c2s_per_conn": sc.frames_c2s,
                    "responder": responder, "head_to_head": head_to_head, "xdp_cookies": xdpc }),
        );
        if let Some(r) = responder {
            let line = responder::sweep_line(ours, r, sc.frames_c2s, ceiling_mpps);
            println!("  {line}");
            responder_md.push_str(&format!("\n{}: {line}\n", sc.name));
        }
        if let Some(h) = head_to_head {
            let line = responder::head_to_head_line(h);
            println!("  {line}");
            responder_md.push_str(&format!("\n{}, {line}\n", sc.name));
        }
        if let Some(x) = xdpc {
            let line = xdp_cookies::line(ours, linux, x);
            println!("  {line}");
            xdpc_md.push_str(&format!("\n{}, {line}\n", sc.name));
        }
        // Plots.
        let svg_lat = a.out.join(format!("{name}-{}-latency.svg", sc.name));
        let mut series = Vec::new();
        let mut curves = vec![("xdptcp", ours, "xdptcp"), ("Linux", linux, "linux")];
        if let Some(r) = responder {
            curves.push(("stateless responder", r, "responder"));
        }
        if let Some(s) = xdpc.as_ref().and_then(|x| x.sweep.as_ref()) {
            curves.push(("xdptcp --xdp-cookies", s, "xdpc"));
        }
        for (label, s, tag) in curves {
            if s.half.is_some() {
                let pts = plots::read_hgrm(&raw.join(format!("{tag}-{}-half.hgrm", sc.name))).unwrap_or_default();
                series.push((label, pts));
            }
        }
        plots::latency_curves(&svg_lat, &format!("{}: connect latency at 50% of max rate", sc.name), &series)?;
        let svg_rate = a.out.join(format!("{name}-{}-rate.svg", sc.name));
        let completed = |s: &Sweep| s.runs.iter().map(|(r, x)| (*r, x.achieved_cps)).collect::<Vec<_>>();
        let mut rates = vec![("xdptcp", completed(ours)), ("Linux", completed(linux))];
        if let Some(r) = responder {
            rates.push(("stateless responder", completed(r)));
        }
        if let Some(s) = xdpc.as_ref().and_then(|x| x.sweep.as_ref()) {
            rates.push(("xdptcp --xdp-cookies", completed(s)));
        }
        plots::rate_curves(&svg_rate, &format!("{}: completed vs offered", sc.name), &rates)?;
        plots_md.push_str(&format!(
            "\n![{0} latency]({1}) ![{0} rate]({2})\n",
            sc.name,
            file(&svg_lat),
            file(&svg_rate)
        ));
    }
    if let Some(note) = above_ceiling_note(&above_ceiling) {
        println!("\n{note}");
        md.push_str(&format!("\n**{note}**\n"));
    }
    if !responder_md.is_empty() {
        let (sweep_part, runs) =
            if a.quick { ("", "one run") } else { ("The responder gets the servers' sweep first. ", "two runs") };
        md.push_str(&format!(
            "\nThe stack's share of the limit: `xdptcp serve` beside the bench's stateless responder (`xdptcp \
             respond`: a SYN-ACK for a SYN and a FIN-ACK for a FIN, written over the received frame and sent back, \
             no TCP state) on the same AF_XDP path, core and rings. {sweep_part}The two then take turns at one rate \
             past the p90 knees, {runs} each, within seconds of each other, which this machine's slow phases \
             cannot tilt as they can tilt two sweeps minutes apart.\n{responder_md}"
        ));
    }
    if !xdpc_md.is_empty() {
        md.push_str(&format!(
            "\nSYNs answered in the XDP program (`serve --xdp-cookies`): on veth the SYN-ACK then leaves on the \
             generator's core, the bench's bottleneck, instead of the server's.\n{xdpc_md}"
        ));
    }
    md.push_str(&plots_md);
    let Measured { sc: sc0, ours: ours0, linux: linux0, responder: responder0, head_to_head: h2h0, xdpc: xdpc0 } =
        &results[0];
    let xdpc_sweep = xdpc0.as_ref().and_then(|x| x.sweep.as_ref());
    let (xdptcp_cps, linux_cps) = (knee(ours0), knee(linux0));
    let flood_legit = flood_ours["legit_success"].as_f64();
    md.push_str(&resilience_table(legit_rate, floods));
    md.push_str(&format!("\nTook {:.0} s. Raw runs: `{}`.\n", started.elapsed().as_secs_f64(), raw.display()));
    // Every figure a run did not produce is null (see `figures`). The p99s are each server's at its own half-load
    // rate; at equal load, see `*_at_linux_half_rate`.
    let (o90, l90) = (knee_p90(ours0), knee_p90(linux0));
    let peak = |s: &Sweep| Some(responder::peak_rate(s)).filter(|p| *p > 0.0);
    let last = json!({
        "bench": "xdptcp",
        "name": name,
        "quick": a.quick,
        "ceiling_mpps": ceiling_mpps,
        "ceiling_samples_mpps": ceilings,
        "xdptcp_cps": xdptcp_cps,
        "linux_cps": linux_cps,
        "ratio_vs_linux": ratio(xdptcp_cps, linux_cps),
        "fraction_of_ceiling": fraction(xdptcp_cps, sc0.frames_c2s, ceiling_mpps),
        "xdptcp_connect_p99_us": half_p99(ours0),
        "linux_connect_p99_us": half_p99(linux0),
        "xdptcp_connect_p99_us_at_linux_half_rate": ours0.same_rate.as_ref().map(|(_, r)| r.connect_us.p99),
        "xdptcp_cps_p90_under_1ms": o90,
        "linux_cps_p90_under_1ms": l90,
        "ratio_vs_linux_p90_under_1ms": ratio(o90, l90),
        "fraction_of_ceiling_p90_under_1ms": fraction(o90, sc0.frames_c2s, ceiling_mpps),
        "machine_gaps_over_1ms_per_s": gaps.together.over_1ms_per_s(),
        "machine_gaps_over_1ms_per_s_alone": gaps.alone.over_1ms_per_s(),
        "responder_cps": responder0.as_ref().and_then(knee),
        "responder_cps_p90_under_1ms": responder0.as_ref().and_then(knee_p90),
        "responder_connect_p99_us": responder0.as_ref().and_then(half_p99),
        "ratio_vs_responder": ratio(xdptcp_cps, responder0.as_ref().and_then(knee)),
        "ratio_vs_responder_p90_under_1ms": ratio(o90, responder0.as_ref().and_then(knee_p90)),
        "responder_peak_cps": responder0.as_ref().and_then(peak),
        "xdptcp_peak_cps": peak(ours0),
        "ratio_vs_responder_peak": ratio(peak(ours0), responder0.as_ref().and_then(peak)),
        "ratio_vs_responder_taking_turns": h2h0.as_ref().and_then(responder::HeadToHead::ratio),
        "xdp_cookies_connect_p99_us_at_xdptcp_half_rate":
            xdpc0.as_ref().and_then(|x| x.at_default_half.as_ref()).map(|(_, r)| r.connect_us.p99),
        "xdp_cookies_connect_p99_us_at_linux_half_rate":
            xdpc0.as_ref().and_then(|x| x.at_linux_half.as_ref()).map(|(_, r)| r.connect_us.p99),
        "xdp_cookies_cps": xdpc_sweep.and_then(knee),
        "xdp_cookies_cps_p90_under_1ms": xdpc_sweep.and_then(knee_p90),
        "xdp_cookies_connect_p99_us": xdpc_sweep.and_then(half_p99),
        "flood_legit_success": flood_legit,
        "linux_flood_legit_success": flood_linux["legit_success"],
        "xdp_cookies_flood_legit_success": floods.xdpc.as_ref().map(|f| f["legit_success"].clone()),
        "seconds": started.elapsed().as_secs_f64(),
    });
    let full = json!({ "summary": last, "machine": machine(), "machine_gaps": gaps, "scenarios": scen,
                       "flood": { "legit_rate": legit_rate, "xdptcp": flood_ours, "linux": flood_linux,
                                  "xdp_cookies": floods.xdpc } });
    std::fs::write(a.out.join(format!("{name}.json")), serde_json::to_vec_pretty(&full)?)?;
    std::fs::write(a.out.join(format!("{name}.md")), md)?;
    println!("\nresults: {}/{name}.{{json,md}} and SVG plots", a.out.display());
    println!("{last}");
    Ok(())
}

/// The resilience section of the report, xdptcp beside Linux with syncookies.
fn resilience_table(legit_rate: f64, floods: &Floods) -> String {
    let mib = |v: &Value| shown(v.as_f64().map(|b| b / 1048576.0), 1, "");
    let num = |v: &Value| shown(v.as_f64(), 0, "");
    type Row<'a> = (&'a str, &'a dyn Fn(&Value) -> String);
    let rows: [Row<'_>; 11] = [
        ("SYN flood achieved (frames/s)", &|r| num(&r["syn_flood"]["pps"])),
        ("legitimate success under the flood", &|r| shown(r["legit_success"].as_f64().map(|f| 100.0 * f), 3, "%")),
        ("legitimate connect p99 under the flood (µs)", &|r| shown(r["legit"]["connect_us"]["p99"].as_f64(), 1, "")),
        ("SYN-ACKs sent per second (Linux: cookie SYN-ACKs)", &|r| num(&r["syn_flood"]["server_syn_acks_per_s"])),
        ("segments out during the SYN flood", &|r| num(&r["syn_flood"]["server_segments_out"])),
        ("connections held at the flood's peak", &|r| num(&r["memory"]["held_during_syn_flood"])),
        ("server RSS before → during → after (MiB)", &|r| {
            let m = &r["memory"];
            format!("{} → {} → {}", mib(&m["rss_before"]), mib(&m["rss_during_syn_flood"]), mib(&m["rss_after"]))
        }),
        ("kernel TCP memory before → during → after (MiB)", &|r| {
            let m = &r["memory"];
            format!(
                "{} → {} → {}",
                mib(&m["kernel_tcp_before"]),
                mib(&m["kernel_tcp_during_syn_flood"]),
                mib(&m["kernel_tcp_after"])
            )
        }),
        ("ACK flood: blind cookie guesses", &|r| num(&r["ack_flood"]["guesses"])),
        ("false accepts (per guess)", &|r| {
            format!(
                "{} ({})",
                num(&r["ack_flood"]["false_accepts"]),
                r["ack_flood"]["false_accepts_per_guess"].as_f64().map_or("—".to_string(), |f| format!("{f:.2e}"))
            )
        }),
        ("RSTs per second answering guesses", &|r| num(&r["ack_flood"]["rsts_per_s"])),
    ];
    let mut md = format!(
        "\n## Resilience\n\nA spoofed SYN flood from 10.79.0.0/16 on queue 1 while legitimate connections run at \
         {legit_rate:.0}/s on queue 0, then a flood of ACKs with random acknowledgment numbers (blind cookie \
         guesses). Linux runs with `tcp_syncookies=1`; its counters come from its namespace's /proc/net.\n\n"
    );
    let mut columns = vec![("xdptcp", &floods.ours)];
    if let Some(x) = &floods.xdpc {
        columns.push(("xdptcp --xdp-cookies", x));
    }
    columns.push(("Linux", &floods.linux));
    md.push_str(&format!(
        "| | {} |\n|---|{}\n",
        columns.iter().map(|c| c.0).collect::<Vec<_>>().join(" | "),
        "---|".repeat(columns.len())
    ));
    for (name, f) in rows {
        let cells: Vec<String> = columns.iter().map(|(_, v)| f(v)).collect();
        md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    md
}

fn file(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fraction_above_the_ceiling_is_called_out_and_none_is_not() {
        assert_eq!(above_ceiling_note(&[]), None);
        let note = above_ceiling_note(&["http"]).expect("one scenario above the ceiling");
        assert!(note.contains("(http)") && note.contains("slow phases"), "{note}");
        // Run full-2026-12-06-vi: HTTP at 139 219/s, four client frames each, against a 0.531 Mpps ceiling.
        let frac = fraction(Some(139_219.0), 4.0, 0.531).unwrap();
        let ratio = ratio(Some(139_219.0), Some(18_984.0)).unwrap();
        assert!(frac > 1.0 && (ratio - 7.33).abs() < 0.01, "{frac} {ratio}");
    }

    #[test]
    fn the_rps_mask_names_one_cpu_in_the_kernels_bitmap_format() {
        assert_eq!(rps_mask(1), "00000002");
        assert_eq!(rps_mask(31), "80000000");
        assert_eq!(rps_mask(32), "00000001,00000000");
        assert_eq!(rps_mask(70), "00000040,00000000,00000000");
    }
}
