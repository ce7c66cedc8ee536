//! `xdptcp ceiling`: the raw AF_XDP ring ceiling of this machine. Builds a fresh veth pair between two
//! namespaces, runs a reflector on one end and a generator on the other (one pinned core each, native XDP, busy
//! polling), measures after a warm-up, prints a table and, as the very last line, one JSON object.
//!
//! It measures rings and copies, not TCP: every later packet rate is reported as a fraction of this one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args as ClapArgs;
use xdptcp::io::topology::VethPair;
use xdptcp::io::{signal, SteerCounters, XskStats};

use super::frame::{swap_macs, tcp_frame, FlowSpec, MAX_FRAME, MIN_FRAME};
use super::roles::{self, CommonArgs, Live};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1.0, value_parser = crate::cli::secs_arg::parse_secs)]
    pub warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    pub duration: f64,
    /// Frame length in bytes, Ethernet header included (no FCS).
    #[arg(long, default_value_t = 64)]
    pub frame_bytes: usize,
    /// Frames per ring operation.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Entries per ring.
    #[arg(long, default_value_t = 2048)]
    pub ring: u32,
    /// Frames the generator keeps in flight; 0 = no limit.
    #[arg(long, default_value_t = 1024)]
    pub window: u64,
    /// Attach both programs in skb (generic) mode.
    #[arg(long)]
    pub skb_mode: bool,
    /// Topology name prefix: namespaces PREFIX-a and PREFIX-b, interfaces PREFIX0 and PREFIX1.
    #[arg(long, default_value = "xtc")]
    pub prefix: String,
    /// Leave the namespaces in place afterwards.
    #[arg(long)]
    pub keep_topology: bool,
}

const PORT: u16 = 7777;

type RoleResult = Result<(XskStats, SteerCounters, bool)>;

pub fn run(args: &Args) -> Result<()> {
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    if !(MIN_FRAME..=MAX_FRAME).contains(&args.frame_bytes) {
        bail!("--frame-bytes must be in {MIN_FRAME}..={MAX_FRAME}");
    }
    signal::install_stop_handler()?;
    let mut topo = VethPair::create(&args.prefix, 1).context("building the veth pair")?;
    if args.keep_topology {
        topo.keep();
    }
    let cores: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    let (core_r, core_g) = match cores.as_slice() {
        [a, b, ..] => (Some(*a), Some(*b)),
        _ => {
            tracing::warn!("fewer than two cores: running unpinned, the figure is not a ceiling");
            (None, None)
        }
    };
    let common = |netns: &str, iface: &str, core| CommonArgs {
        iface: iface.to_string(),
        netns: Some(netns.to_string()),
        queue: 0,
        port: PORT,
        skb_mode: args.skb_mode,
        core,
        batch: args.batch,
        ring: args.ring,
        poll: false,
        duration: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (live_r, live_g) = (Arc::new(Live::default()), Arc::new(Live::default()));

    let reflector = {
        let (args_r, live, stop) = (common(&topo.ns_a, &topo.if_a, core_r), Arc::clone(&live_r), Arc::clone(&stop));
        thread::Builder::new().name("reflector".into()).spawn(move || -> RoleResult {
            let mut ep = roles::setup(&args_r)?;
            live.tid.store(roles::current_tid(), Ordering::SeqCst);
            live.ready.store(true, Ordering::SeqCst);
            let stats = roles::reflect_loop(&mut ep, &args_r, &live, &stop, swap_macs)?;
            Ok((stats, ep.program.counters()?, ep.xsk.is_zero_copy()))
        })?
    };
    let result = wait_ready(&live_r, &reflector, &stop).and_then(|()| {
        let flow = FlowSpec {
            src_mac: topo.mac_b,
            dst_mac: topo.mac_a,
            src_ip: topo.ip4_b,
            dst_ip: topo.ip4_a,
            src_port: PORT + 1,
            dst_port: PORT,
        };
        let frame = tcp_frame(&flow, args.frame_bytes);
        // The generator stops first, so that the reflector's program is still there for its last frames (without
        // it, ns-a's kernel would answer them with RSTs).
        let stop_gen = Arc::new(AtomicBool::new(false));
        let (args_g, live, stop2, window) =
            (common(&topo.ns_b, &topo.if_b, core_g), Arc::clone(&live_g), Arc::clone(&stop_gen), args.window);
        let generator = thread::Builder::new().name("generator".into()).spawn(move || -> RoleResult {
            let mut ep = roles::setup(&args_g)?;
            live.tid.store(roles::current_tid(), Ordering::SeqCst);
            live.ready.store(true, Ordering::SeqCst);
            let stats = roles::generate_loop(&mut ep, &args_g, &frame, window, &live, &stop2)?;
            Ok((stats, ep.program.counters()?, ep.xsk.is_zero_copy()))
        })?;
        let measured = wait_ready(&live_g, &generator, &stop_gen).and_then(|()| measure(args, &live_r, &live_g));
        stop_gen.store(true, Ordering::SeqCst);
        let gen_result = join(generator, "generator");
        Ok((measured, gen_result))
    });
    stop.store(true, Ordering::SeqCst);
    let refl_result = join(reflector, "reflector");
    // A role that died says why in its own result; the side that waited for it only knows that it did.
    let (measured, gen_result) = match result {
        Ok(r) => r,
        Err(e) => return Err(refl_result.err().unwrap_or(e)),
    };
    let sample = match measured {
        Ok(s) => s,
        Err(e) => return Err(gen_result.err().or_else(|| refl_result.err()).unwrap_or(e)),
    };
    let (gen_stats, gen_counters, gen_zc) = gen_result?;
    let (refl_stats, refl_counters, refl_zc) = refl_result?;
    let report = Report {
        args,
        sample,
        cores: (core_r, core_g),
        zero_copy: gen_zc || refl_zc,
        gen: (gen_stats, gen_counters),
        refl: (refl_stats, refl_counters),
    };
    report.print();
    Ok(())
}

/// Waits until a role is set up, or fails with its own error if it died trying.
fn wait_ready(live: &Live, handle: &JoinHandle<RoleResult>, stop: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !live.ready.load(Ordering::SeqCst) {
        if handle.is_finished() {
            stop.store(true, Ordering::SeqCst);
            return Err(anyhow!("{} failed to start", handle.thread().name().unwrap_or("role")));
        }
        if signal::stop_requested() {
            bail!("interrupted");
        }
        if Instant::now() > deadline {
            bail!("{} did not start within 20 s", handle.thread().name().unwrap_or("role"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn join(handle: JoinHandle<RoleResult>, name: &str) -> RoleResult {
    handle.join().map_err(|_| anyhow!("the {name} thread panicked"))?.with_context(|| name.to_string())
}

/// Counters of both roles at one instant.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    at: Instant,
    gen_tx: u64,
    gen_rx: u64,
    refl_rx: u64,
    refl_tx: u64,
    refl_cpu: Option<f64>,
    gen_cpu: Option<f64>,
}

fn snapshot(live_r: &Live, live_g: &Live) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        gen_tx: live_g.tx.load(Ordering::Relaxed),
        gen_rx: live_g.rx.load(Ordering::Relaxed),
        refl_rx: live_r.rx.load(Ordering::Relaxed),
        refl_tx: live_r.tx.load(Ordering::Relaxed),
        refl_cpu: roles::thread_cpu_secs(live_r.tid.load(Ordering::SeqCst)),
        gen_cpu: roles::thread_cpu_secs(live_g.tid.load(Ordering::SeqCst)),
    }
}

/// The measured window.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    gen_tx: u64,
    gen_rx: u64,
    refl_rx: u64,
    refl_tx: u64,
    /// Share of one core each role thread got during the window (0..=1), when /proc tells.
    refl_cpu: Option<f64>,
    gen_cpu: Option<f64>,
}

fn sleep_or_interrupt(secs: f64) -> Result<()> {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        if signal::stop_requested() {
            bail!("interrupted");
        }
        thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
    }
    Ok(())
}

fn measure(args: &Args, live_r: &Live, live_g: &Live) -> Result<Sample> {
    sleep_or_interrupt(args.warmup)?;
    let a = snapshot(live_r, live_g);
    sleep_or_interrupt(args.duration)?;
    let b = snapshot(live_r, live_g);
    let secs = b.at.duration_since(a.at).as_secs_f64();
    Ok(Sample {
        secs,
        gen_tx: b.gen_tx - a.gen_tx,
        gen_rx: b.gen_rx - a.gen_rx,
        refl_rx: b.refl_rx - a.refl_rx,
        refl_tx: b.refl_tx - a.refl_tx,
        refl_cpu: b.refl_cpu.zip(a.refl_cpu).map(|(y, x)| (y - x) / secs),
        gen_cpu: b.gen_cpu.zip(a.gen_cpu).map(|(y, x)| (y - x) / secs),
    })
}

struct Report<'a> {
    args: &'a Args,
    sample: Sample,
    cores: (Option<usize>, Option<usize>),
    zero_copy: bool,
    gen: (XskStats, SteerCounters),
    refl: (XskStats, SteerCounters),
}

fn mpps(frames: u64, secs: f64) -> f64 {
    (frames as f64 / secs / 1e6 * 1000.0).round() / 1000.0
}

fn core_text(c: Option<usize>) -> String {
    c.map_or_else(|| "unpinned".to_string(), |c| format!("cpu {c}"))
}

impl Report<'_> {
    fn print(&self) {
        let (a, s) = (self.args, self.sample);
        let mode = if a.skb_mode { "skb XDP" } else { "native XDP" };
        let copy = if self.zero_copy { "zero-copy" } else { "copy mode" };
        println!("xdptcp ceiling: raw AF_XDP reflector + generator on a fresh veth pair ({mode}, AF_XDP {copy})");
        println!("  frame {} B, batch {}, rings {}, window {}", a.frame_bytes, a.batch, a.ring, a.window);
        println!(
            "  reflector {} on {}, generator {} on {}",
            a.prefix.clone() + "0",
            core_text(self.cores.0),
            a.prefix.clone() + "1",
            core_text(self.cores.1)
        );
        println!("  measured {:.2} s after {:.2} s of warm-up", s.secs, a.warmup);
        let share = |c: Option<f64>| c.map_or_else(|| "?".to_string(), |c| format!("{:.0}%", c * 100.0));
        println!("  CPU time the threads got: reflector {}, generator {}", share(s.refl_cpu), share(s.gen_cpu));
        if s.refl_cpu.into_iter().chain(s.gen_cpu).any(|c| c < 0.9) {
            println!(
                "  WARNING: a bench thread got less than 90% of its core (other load on this machine): \
                 the figure below is under the ceiling"
            );
        }
        println!();
        println!("  {:<30} {:>12} {:>9}", "", "frames", "Mpps");
        for (name, n) in [
            ("generator sent", s.gen_tx),
            ("reflector received", s.refl_rx),
            ("reflector sent back", s.refl_tx),
            ("generator received back", s.gen_rx),
        ] {
            println!("  {:<30} {:>12} {:>9.3}", name, n, mpps(n, s.secs));
        }
        println!();
        println!("  whole run, kernel socket statistics and program counters:");
        for (name, (x, c)) in [("reflector", self.refl), ("generator", self.gen)] {
            let k = x.kernel;
            println!(
                "  {name:<10} rx_ring_full {} rx_dropped {} fill_empty {} tx_invalid {} | redirected {} passed {} \
                 | tx kicks {} fill kicks {}",
                k.rx_ring_full,
                k.rx_dropped,
                k.rx_fill_ring_empty_descs,
                k.tx_invalid_descs,
                c.redirected,
                c.passed,
                x.tx.kicks,
                x.fill_kicks
            );
        }
        for (name, (_, c)) in [("reflector", self.refl), ("generator", self.gen)] {
            let reasons: Vec<String> =
                c.named().iter().skip(3).filter(|(_, v)| *v > 0).map(|(n, v)| format!("{n} {v}")).collect();
            if !reasons.is_empty() {
                println!("  {name:<10} passed because: {}", reasons.join(", "));
            }
        }
        let json = serde_json::json!({
            "bench": "ceiling",
            "frame_bytes": a.frame_bytes,
            "mpps": mpps(s.gen_rx, s.secs),
            "tx_mpps": mpps(s.gen_tx, s.secs),
            "rx_mpps": mpps(s.refl_rx, s.secs),
        });
        println!("{json}");
    }
}
