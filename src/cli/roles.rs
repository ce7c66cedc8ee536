//! The two raw AF_XDP roles of the ceiling bench: the reflector (swap MACs, send the same frame back) and the
//! generator (send a synthetic frame as fast as the window allows, count what comes back). Each role loads and
//! attaches its own steering program and owns one socket; both run as threads of `xdptcp ceiling` or alone as the
//! hidden `reflect` / `generate` subcommands.
//!
//! Nothing here allocates per frame or makes a system call that a ring did not ask for (unless `--poll`).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use xdptcp::io::{netdev, signal, AttachMode, PacketIo, SteerOptions, SteerProgram, XskConfig, XskSocket, XskStats};
use xdptcp::runtime::pin::pin_current_thread;
use xdptcp::sink::FrameSink;

use super::frame::{swap_macs, tcp_frame, FlowSpec, MAX_FRAME, MIN_FRAME};

/// Where and how a role binds.
#[derive(ClapArgs, Debug, Clone)]
pub struct CommonArgs {
    /// Interface to attach to.
    #[arg(long)]
    pub iface: String,
    /// Network namespace (from `ip netns add`) to enter first.
    #[arg(long)]
    pub netns: Option<String>,
    /// Receive queue to bind.
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// TCP port steered to the socket (1-65535).
    #[arg(long, default_value_t = 7777, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Attach in skb (generic) mode instead of native.
    #[arg(long)]
    pub skb_mode: bool,
    /// CPU to pin the role to.
    #[arg(long, value_parser = super::cpu_arg::parse_cpu)]
    pub core: Option<usize>,
    /// Frames per ring operation.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Entries per ring (power of two).
    #[arg(long, default_value_t = 2048)]
    pub ring: u32,
    /// Sleep in poll(2) when idle instead of busy polling.
    #[arg(long)]
    pub poll: bool,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    pub duration: Option<f64>,
}

#[derive(ClapArgs, Debug)]
pub struct ReflectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(ClapArgs, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Destination MAC (the reflector's interface).
    #[arg(long, value_parser = parse_mac)]
    pub dst_mac: [u8; 6],
    /// Source IPv4 address of the synthetic flow.
    #[arg(long, default_value = "10.77.0.2")]
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address of the synthetic flow.
    #[arg(long, default_value = "10.77.0.1")]
    pub dst_ip: Ipv4Addr,
    /// Frame length in bytes, Ethernet header included.
    #[arg(long, default_value_t = 64)]
    pub frame_bytes: usize,
    /// Frames allowed in flight (sent, not yet back); 0 = no limit.
    #[arg(long, default_value_t = 1024)]
    pub window: u64,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?} is not a MAC address"))?;
    }
    Ok(mac)
}

/// Live counters a role publishes for the thread that measures.
#[derive(Default, Debug)]
pub struct Live {
    pub ready: AtomicBool,
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// The role thread's kernel thread id, for reading its CPU time from /proc.
    pub tid: AtomicU64,
}

/// The calling thread's kernel thread id (from /proc/thread-self), 0 if unknown.
pub fn current_tid() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// CPU time (user + system) consumed so far by thread `tid` of this process, in seconds; `None` if unknown.
pub fn thread_cpu_secs(tid: u64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    const USER_HZ: f64 = 100.0; // the unit of /proc times on every Linux architecture
    Some((utime + stime) / USER_HZ)
}

impl Live {
    fn publish(&self, rx: u64, tx: u64) {
        self.rx.store(rx, Ordering::Relaxed);
        self.tx.store(tx, Ordering::Relaxed);
    }
}

/// A role's resources. Dropping it detaches the program and closes the socket.
pub struct Endpoint {
    pub program: SteerProgram,
    pub xsk: XskSocket,
}

/// Enters the namespace, pins the thread, loads and attaches the program, opens the socket and registers it.
pub fn setup(args: &CommonArgs) -> Result<Endpoint> {
    if let Some(ns) = &args.netns {
        netdev::enter_netns(ns).with_context(|| format!("entering network namespace {ns}"))?;
    }
    if let Some(core) = args.core {
        pin_current_thread(core, &format!("the thread on {}", args.iface));
    }
    let mode = if args.skb_mode { AttachMode::Skb } else { AttachMode::Native };
    let mut program = SteerProgram::load(SteerOptions::default())?;
    program.attach(&args.iface, mode).with_context(|| format!("attaching to {}", args.iface))?;
    program.add_listen_port(args.port)?;
    let config = XskConfig { ring_size: args.ring, tx_frames: args.ring, batch: args.batch, ..XskConfig::default() };
    let xsk = XskSocket::open(&args.iface, args.queue, &config)
        .with_context(|| format!("opening an AF_XDP socket on {} queue {}", args.iface, args.queue))?;
    program.insert_xsk(args.queue, xsk.fd())?;
    Ok(Endpoint { program, xsk })
}

fn should_stop(stop: &AtomicBool, deadline: Option<Instant>) -> bool {
    stop.load(Ordering::Relaxed) || signal::stop_requested() || deadline.is_some_and(|d| Instant::now() >= d)
}

/// Sends received frames back, each as `rewrite` leaves it (`None` drops it), until told to stop. Returns the
/// socket's final counters.
pub fn reflect_loop(
    ep: &mut Endpoint,
    args: &CommonArgs,
    live: &Live,
    stop: &AtomicBool,
    mut rewrite: impl FnMut(&mut [u8]) -> Option<usize>,
) -> Result<XskStats> {
    let deadline = args.duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut rx = 0u64;
    let mut spins = 0u32;
    loop {
        let n = ep.xsk.reflect(args.batch, &mut rewrite);
        ep.xsk.flush()?;
        if n > 0 {
            rx += n as u64;
            live.publish(rx, ep.xsk.sink().stats().completed);
        } else if args.poll {
            ep.xsk.wait(Some(Duration::from_millis(10)))?;
        }
        // The clock and the flags are read every 256 turns: cheap next to a ring operation, and a stop still
        // takes effect within microseconds.
        spins = spins.wrapping_add(1);
        if (n == 0 || spins % 256 == 0) && should_stop(stop, deadline) {
            break;
        }
    }
    live.publish(rx, ep.xsk.sink().stats().completed);
    Ok(ep.xsk.stats()?)
}

/// Sends `frame` with at most `window` frames in flight, counts what comes back, until told to stop.
pub fn generate_loop(
    ep: &mut Endpoint,
    args: &CommonArgs,
    frame: &[u8],
    window: u64,
    live: &Live,
    stop: &AtomicBool,
) -> Result<XskStats> {
    let deadline = args.duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let (mut sent, mut rx, mut written_off) = (0u64, 0u64, 0u64);
    let mut stalled_since: Option<Instant> = None;
    let mut spins = 0u32;
    loop {
        let got = ep.xsk.recv(args.batch, |_, _| {}) as u64;
        rx += got;
        // Frames written off after a stall may still come back: never below zero.
        let in_flight = sent.saturating_sub(rx + written_off);
        let budget =
            if window == 0 { args.batch as u64 } else { window.saturating_sub(in_flight).min(args.batch as u64) };
        let sink = ep.xsk.sink();
        for _ in 0..budget {
            let Some(buf) = sink.buffer() else { break };
            let Some(dst) = buf.get_mut(..frame.len()) else { break };
            dst.copy_from_slice(frame);
            sink.commit(frame.len());
            sent += 1;
        }
        ep.xsk.flush()?;
        live.publish(rx, ep.xsk.sink().stats().completed);
        // Frames lost on the way (a full ring) would close the window for good: after 20 ms with a full window
        // and nothing coming back, write them off and open it again. (A reflector that is merely descheduled for
        // a few milliseconds must not trigger this: it would inflate the frames in flight.)
        if got == 0 && budget == 0 {
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(20) {
                written_off += in_flight;
                stalled_since = None;
            }
        } else {
            stalled_since = None;
        }
        spins = spins.wrapping_add(1);
        if spins % 256 == 0 && should_stop(stop, deadline) {
            break;
        }
    }
    Ok(ep.xsk.stats()?)
}

static NEVER: AtomicBool = AtomicBool::new(false);

/// `xdptcp reflect`: prints `ready` once attached, reflects until SIGINT/SIGTERM or `--duration`.
pub fn reflect_main(args: &ReflectArgs) -> Result<()> {
    reflecting_role(&args.common, swap_macs, "reflected")
}

/// A role that sends frames back as `rewrite` leaves them: prints `ready` once attached, runs until SIGINT/SIGTERM
/// or `--duration`, then says how many frames it `verb` (reflected, answered) of those received.
pub fn reflecting_role(common: &CommonArgs, rewrite: impl FnMut(&mut [u8]) -> Option<usize>, verb: &str) -> Result<()> {
    signal::install_stop_handler()?;
    let mut ep = setup(common)?;
    println!("ready");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    let live = Live::default();
    let stats = reflect_loop(&mut ep, common, &live, &NEVER, rewrite)?;
    println!("{verb} {} of {} frames received", stats.tx.committed, stats.rx_frames);
    Ok(())
}

/// `xdptcp generate`: sends until SIGINT/SIGTERM or `--duration`, then prints what came back.
pub fn generate_main(args: &GenerateArgs) -> Result<()> {
    signal::install_stop_handler()?;
    if args.common.poll {
        bail!("--poll makes no sense for the generator: it never waits");
    }
    if !(MIN_FRAME..=MAX_FRAME).contains(&args.frame_bytes) {
        bail!("--frame-bytes must be in {MIN_FRAME}..={MAX_FRAME}");
    }
    let mut ep = setup(&args.common)?;
    let src_mac = netdev::mac_address(&args.common.iface)?;
    let flow = FlowSpec {
        src_mac,
        dst_mac: args.dst_mac,
        src_ip: args.src_ip,
        dst_ip: args.dst_ip,
        src_port: args.common.port.wrapping_add(1),
        dst_port: args.common.port,
    };
    let frame = tcp_frame(&flow, args.frame_bytes);
    let live = Live::default();
    let started = Instant::now();
    let stats = generate_loop(&mut ep, &args.common, &frame, args.window, &live, &NEVER)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {} frames, {} came back in {secs:.2} s ({:.3} Mpps back)",
        stats.tx.completed,
        stats.rx_frames,
        stats.rx_frames as f64 / secs / 1e6
    );
    Ok(())
}
