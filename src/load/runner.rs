//! `xdptcp load` below the command line: check the options, resolve the next hop, load the steering program
//! with the target as its only "ours", open one AF_XDP socket per queue, run one pinned worker per queue (each a
//! [`Driver`] with its own endpoint and its share of the schedule and of the tuples), show progress, and merge
//! the workers' results into one [`Summary`].
//!
//! The control thread owns the program (its bpf_link detaches when the process dies) and never touches a
//! packet; workers share nothing but a few relaxed counters for the progress line, the stop flag, and the
//! channels that carry a segment that came in on one worker's queue to the worker owning its tuple ([`Handoff`]).

use super::app::{CloseBy, Counts, LoadApp, Plan, Request};
use super::driver::Driver;
use super::flood::{FloodKind, FloodSpec, Flooder};
use super::handoff::Handoff;
use super::histograms::Histograms;
use super::neigh::{self, NeighError};
use super::report::{FloodSummary, GeneratorStats, Summary};
use super::schedule::{Bound, Pace, Schedule};
use super::tuples::{SrcError, SrcRange, TupleAllocator};
use crate::io::{
    netdev, signal, AttachMode, IoError, NoXskAction, PacketIo, SteerOptions, SteerProgram, XskConfig, XskSocket,
    XskStats,
};
use crate::runtime::clock::Clock;
use crate::runtime::keys::random_secret;
use crate::runtime::pin::pin_current_thread;
use crate::tcp::stats::Drop;
use crate::tcp::{Config, Endpoint, Stats};
use crate::time::Instant;
use crate::wire::MacAddr;
use std::io::Write as _;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What each connection sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    None,
    /// This many bytes, echoed back.
    Bytes(usize),
    /// `GET path HTTP/1.1`.
    Http {
        path: String,
    },
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub iface: String,
    pub target: SocketAddr,
    /// Source addresses; `None`: the interface's own address.
    pub src: Option<SrcRange>,
    pub src_ports: RangeInclusive<u16>,
    /// `None`: a pure flood (requires `flood`).
    pub pace: Option<Pace>,
    pub bound: Bound,
    pub warmup: Duration,
    pub request: RequestKind,
    pub close: CloseBy,
    /// The handshake's ACK goes alone, before the request or FIN (`Config::handshake_ack_alone`).
    pub separate_ack: bool,
    pub time_wait: Duration,
    pub timeout: Duration,
    pub dst_mac: Option<MacAddr>,
    /// 802.1Q VLAN IDs (1..=4094) whose tagged segments from the target are steered to the generator as well as
    /// untagged ones (the generator itself sends untagged frames).
    pub vlans: Vec<u16>,
    pub flood: Option<FloodKind>,
    /// Sources of a flood that runs beside a load (a pure flood uses `src`).
    pub flood_src: Option<SrcRange>,
    pub flood_pps: Option<f64>,
    pub queues: u32,
    /// The first queue used (workers take `first_queue .. first_queue + queues`).
    pub first_queue: u32,
    /// A pure flood attaches the steering program and counts the target's replies (otherwise it only sends,
    /// and the interface stays free for a measured load in another process on another queue).
    pub count_replies: bool,
    pub cpus: Vec<usize>,
    pub mode: AttachMode,
    /// Sleep in poll(2) when idle instead of spinning.
    pub poll: bool,
    /// Print a live progress line (when stdout is a terminal).
    pub progress: bool,
    pub ring_size: u32,
    pub tx_frames: u32,
    pub batch: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            iface: String::new(),
            target: SocketAddr::from(([127, 0, 0, 1], 0)),
            src: None,
            src_ports: super::tuples::DEFAULT_PORTS,
            pace: Some(Pace::Rate(1000.0)),
            bound: Bound::Duration(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            request: RequestKind::None,
            close: CloseBy::Client,
            separate_ack: false,
            time_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            dst_mac: None,
            vlans: Vec::new(),
            flood: None,
            flood_src: None,
            flood_pps: None,
            queues: 1,
            first_queue: 0,
            count_replies: false,
            cpus: Vec::new(),
            mode: AttachMode::Native,
            poll: false,
            progress: false,
            ring_size: 4096,
            tx_frames: 8192,
            batch: 64,
        }
    }
}

/// Live connections one worker's table holds (`Config::max_conns`): a closed loop's share of `--concurrency`
/// must fit, or every start past it fails as `connect_error` and frees its place for the next.
pub const MAX_CONNS_PER_WORKER: usize = 1 << 22;

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Neigh(#[from] NeighError),
    #[error(transparent)]
    Src(#[from] SrcError),
    #[error("{0}")]
    Invalid(String),
    #[error("worker {0} failed: {1}")]
    Worker(usize, String),
}

/// A finished run: the summary and the merged histograms (for `.hgrm` files).
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    pub hist: Histograms,
}

impl LoadOptions {
    /// Checks what can be checked without touching the system.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::Invalid(m));
        if self.iface.is_empty() {
            return bad("--iface is required".into());
        }
        if self.target.port() == 0 || self.target.ip().is_unspecified() {
            return bad(format!("--target {} needs an address and a port from 1 to 65535", self.target));
        }
        match self.pace {
            Some(Pace::Rate(r)) if !(r.is_finite() && r > 0.0 && r <= 100e6) => {
                return bad(format!("--rate {r}: use a rate from above 0 to 100000000 connections per second"))
            }
            Some(Pace::Concurrency(0)) => return bad("--concurrency must be at least 1".into()),
            None if self.flood.is_none() => return bad("give --rate, --concurrency or --flood".into()),
            _ => {}
        }
        if let Bound::Count(0) = self.bound {
            return bad("--connections must be at least 1".into());
        }
        if let Bound::Duration(d) = self.bound {
            if d.is_zero() {
                return bad("--duration must be positive".into());
            }
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be positive".into());
        }
        // Checked: as a library, `first_queue` may be anything a u32 holds.
        if self.queues == 0 || self.first_queue.checked_add(self.queues).is_none_or(|end| end > 64) {
            return bad(format!("--queue {} --queues {}: queues 0 to 63 only", self.first_queue, self.queues));
        }
        let (lo, hi) = (*self.src_ports.start(), *self.src_ports.end());
        if lo == 0 || lo > hi {
            return Err(SrcError::BadPorts(lo, hi).into());
        }
        if self.count_replies && (self.flood.is_none() || self.pace.is_some()) {
            return bad("--count-replies is for a flood alone (beside a load, replies are always counted)".into());
        }
        if let RequestKind::Bytes(n) = self.request {
            if n == 0 || n > 1 << 20 {
                return bad(format!("--request {n}: use 1 to 1048576 bytes"));
            }
        }
        if let RequestKind::Http { path } = &self.request {
            if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return bad(format!("--http-path {path:?} must start with / and hold no spaces or control bytes"));
            }
        }
        let family_ok = |r: &SrcRange| r.is_ipv4() == self.target.is_ipv4();
        if let Some(src) = &self.src {
            if !family_ok(src) {
                return bad(format!("--src {src} and --target {} are of different address families", self.target));
            }
        }
        // A segment from the server's own address is one no server answers (a kernel drops it as a martian).
        for (flag, range) in [("--src", &self.src), ("--flood-src", &self.flood_src)] {
            if let Some(r) = range.as_ref().filter(|r| r.contains(self.target.ip())) {
                return bad(format!("{flag} {r} includes the target's own address {}", self.target.ip()));
            }
        }
        if let Some(kind) = self.flood {
            let fsrc = if self.pace.is_some() { self.flood_src.as_ref() } else { self.src.as_ref() };
            let flag = if self.pace.is_some() { "--flood-src" } else { "--src" };
            let Some(fsrc) = fsrc else {
                return bad(format!("a {} flood needs {flag}: the spoofed sources, explicitly", kind.name()));
            };
            if !fsrc.is_private() {
                return bad(format!(
                    "{flag} {fsrc}: floods only spoof private (10/8, 172.16/12, 192.168/16), shared (100.64/10), \
                     benchmark (198.18/15) or unique-local (fc00::/7) addresses"
                ));
            }
            if !family_ok(fsrc) {
                return bad(format!("{flag} {fsrc} and --target {} are of different families", self.target));
            }
            if self.pace.is_some() && self.src.is_some_and(|s| s.overlaps(fsrc)) {
                return bad("--flood-src must not overlap --src: replies are told apart by address".into());
            }
            if let Some(p) = self.flood_pps {
                if !(p.is_finite() && p > 0.0) {
                    return bad(format!("--flood-pps {p} must be positive"));
                }
            }
        } else if self.flood_src.is_some() || self.flood_pps.is_some() {
            return bad("--flood-src and --flood-pps need --flood syn|ack".into());
        }
        if self.close == CloseBy::Server && matches!(self.request, RequestKind::Bytes(_)) {
            return bad(
                "--close server with --request: an echo server closes only after the client; use --close client".into(),
            );
        }
        self.check_sizes()
    }

    /// Checks the sizes a load's worker must fit in (the command line reports these as usage errors, before
    /// anything is touched).
    pub fn check_sizes(&self) -> Result<(), LoadError> {
        // A load keeps three receive batches of send frames back for replies (`Driver::turn`) and starts up to
        // a batch of connections per turn: with less than four batches in the pool it is starved of starts or
        // of reply frames. A flood alone keeps nothing back.
        let batch = self.batch.max(1);
        if self.pace.is_some() && batch.saturating_mul(4) > self.tx_frames as usize {
            return Err(LoadError::Invalid(format!(
                "--batch {batch} is too large for the {} send frames of --ring {}: a load keeps three batches of \
                 them for replies and needs a fourth for new connections; use --batch {} or less, or a larger --ring",
                self.tx_frames,
                self.ring_size,
                (self.tx_frames / 4).max(1)
            )));
        }
        if let Some(Pace::Concurrency(c)) = self.pace {
            let queues = u64::from(self.queues.max(1));
            let limit = MAX_CONNS_PER_WORKER as u64 * queues;
            if c > limit {
                return Err(LoadError::Invalid(format!(
                    "--concurrency {c} is more than the {limit} connections {queues} worker(s) can hold \
                     ({MAX_CONNS_PER_WORKER} per queue): use --queues {} or keep fewer in flight",
                    c.div_ceil(MAX_CONNS_PER_WORKER as u64)
                )));
            }
        }
        Ok(())
    }

    fn plan(&self) -> Plan {
        let request = match &self.request {
            RequestKind::None => Request::None,
            RequestKind::Bytes(n) => Request::Echo(leak((0..*n).map(|i| b'a' + (i % 26) as u8).collect())),
            RequestKind::Http { path } => {
                let conn = if self.close == CloseBy::Server { "close" } else { "keep-alive" };
                let host = match self.target {
                    SocketAddr::V4(t) => t.to_string(),
                    SocketAddr::V6(t) => format!("[{}]:{}", t.ip(), t.port()),
                };
                let r = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {conn}\r\n\r\n");
                Request::Http(leak(r.into_bytes()))
            }
        };
        Plan { request, close: self.close, timeout: self.timeout }
    }
}

/// Requests live as long as the run; built once, sent without copying (`send_static`).
fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

/// Live counters of one worker, for the progress line.
#[derive(Debug, Default)]
struct Progress {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    flood_sent: AtomicU64,
}

/// Where workers wait, once set up, for the common start instant (so that pre-sizing tables, which may take a
/// while, never shows up as start lag).
#[derive(Debug)]
struct StartGate {
    barrier: std::sync::Barrier,
    t0_nanos: AtomicU64,
}

impl StartGate {
    /// Workers: wait for everyone, then for the start instant.
    fn wait(&self) -> Instant {
        self.barrier.wait();
        self.barrier.wait();
        Instant::from_nanos(self.t0_nanos.load(Ordering::SeqCst))
    }

    /// The control thread: once every worker is ready, fix the start instant a moment ahead and release them.
    fn release(&self, clock: &Clock) -> Instant {
        self.barrier.wait();
        let t0 = clock.now() + Duration::from_millis(5);
        self.t0_nanos.store(t0.as_nanos(), Ordering::SeqCst);
        self.barrier.wait();
        t0
    }
}

/// What a worker hands back.
#[derive(Debug)]
struct WorkerOutcome {
    counts: Counts,
    hist: Histograms,
    stats: Stats,
    xsk: XskStats,
    last_measured_start: Option<Instant>,
    last_completion: Option<Instant>,
    flood: Option<(u64, Option<super::flood::Replies>, Duration)>,
    foreign: u64,
    tuple_waits: u64,
    /// Segments handed to the worker that owns their tuple, and those dropped for a full inbox.
    handoff: (u64, u64),
    /// Share of the run the worker spent in turns that did work (1.0: saturated).
    busy: f64,
    /// Stopped early by a signal.
    interrupted: bool,
}

/// Runs the load (or flood) and returns its results.
pub fn run(opts: &LoadOptions) -> Result<Outcome, LoadError> {
    opts.validate()?;
    let src_mac = MacAddr(netdev::mac_address(&opts.iface)?);
    neigh::link_up(&opts.iface)?;
    let last_queue = opts.first_queue + opts.queues - 1;
    if let Some(count) = netdev::queue_count(&opts.iface)? {
        if last_queue >= count {
            return Err(
                IoError::QueueOutOfRange { ifname: opts.iface.clone(), queue: last_queue, count: Some(count) }.into()
            );
        }
    }
    let src = match opts.src {
        Some(s) => s,
        None => SrcRange::single(neigh::interface_addr(&opts.iface, opts.target.is_ipv4())?)?,
    };
    check_concurrency(opts, &src)?;
    let stop_signal = signal::install_stop_handler()?;
    // Segments from the target are the generator's; with no socket on their queue they are dropped, never
    // handed to this namespace's kernel (which would reset connections it never opened). A pure flood only
    // transmits, and leaves the interface free for a measured load in another process, unless it is to count
    // the replies.
    let mut prog = if opts.pace.is_some() || opts.count_replies {
        let p = SteerProgram::load(SteerOptions { no_xsk_action: NoXskAction::Drop, ..SteerOptions::default() })?;
        p.add_target(opts.target)?;
        for v in &opts.vlans {
            p.allow_vlan(*v)?;
        }
        Some(p)
    } else {
        None
    };
    let dst_mac = match opts.dst_mac {
        Some(m) => m,
        None => neigh::next_hop_mac(opts.target, &opts.iface, Duration::from_secs(1))?,
    };
    let xcfg =
        XskConfig { ring_size: opts.ring_size, tx_frames: opts.tx_frames, batch: opts.batch, ..XskConfig::default() };
    let mut sockets = Vec::new();
    for q in opts.first_queue..=last_queue {
        let s = open_socket(&opts.iface, q, &xcfg)?;
        if let Some(p) = &prog {
            p.insert_xsk(q, s.fd())?;
        }
        sockets.push(s);
    }
    if let Some(p) = prog.as_mut() {
        p.attach(&opts.iface, opts.mode)?;
    }
    let plan = opts.plan();
    warn_about_tuples(opts, &src);

    let clock = Clock::new();
    let gate =
        Arc::new(StartGate { barrier: std::sync::Barrier::new(opts.queues as usize + 1), t0_nanos: AtomicU64::new(0) });
    let ncpus: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut progress = Vec::new();
    let mut handles = Vec::new();
    let workers = opts.queues;
    let mut handoffs = Handoff::mesh(workers).into_iter();
    for (q, io) in sockets.into_iter().enumerate() {
        let w = q as u32;
        // Default pinning counts down from the last CPU, away from `serve`'s default (which counts up from 0).
        let cpu = opts
            .cpus
            .get(q)
            .copied()
            .or_else(|| ncpus.len().checked_sub(1 + q % ncpus.len().max(1)).and_then(|i| ncpus.get(i).copied()));
        let p = Arc::new(Progress::default());
        progress.push(Arc::clone(&p));
        let stop = Arc::clone(&stop);
        let mut tuples = TupleAllocator::partition(src, opts.src_ports.clone(), w, workers)?;
        tuples.start_at(random_u64()?);
        let space = tuples.space();
        let cfg = Config {
            local_mac: src_mac,
            max_conns: MAX_CONNS_PER_WORKER,
            max_time_wait: space.min(1 << 25) as usize,
            time_wait: opts.time_wait,
            handshake_ack_alone: opts.separate_ack,
            send_buffer: (64 * 1024u32).max(request_len(&plan) as u32),
            hash_secret: random_secret().map_err(|e| LoadError::Invalid(e.to_string()))?,
            isn_secret: random_secret().map_err(|e| LoadError::Invalid(e.to_string()))?,
            // TSvals on the wall clock (in ms): they grow from one run to the next, so a server that holds a tuple of
            // an earlier run in TIME-WAIT accepts the new SYN (RFC 6191) instead of answering it with an old ACK.
            ts_offset: (clock.wall_clock_offset() / 1_000_000) as u32,
            wall_clock_offset: clock.wall_clock_offset(),
            ..Config::default()
        };
        let flood = match opts.flood {
            Some(kind) => {
                let fsrc = if opts.pace.is_some() { opts.flood_src.unwrap_or(src) } else { src };
                let spec = FloodSpec {
                    kind,
                    src: fsrc,
                    src_ports: opts.src_ports.clone(),
                    target: opts.target,
                    src_mac,
                    dst_mac,
                    pps: opts.flood_pps.map(|p| p / f64::from(workers)),
                };
                Some(Flooder::new(spec, random_u64()?))
            }
            None => None,
        };
        let reserve = reserve_sizes(opts, space, workers);
        let job = Job {
            io,
            cfg,
            plan,
            pace: opts.pace,
            bound: opts.bound,
            warmup: opts.warmup,
            gate: Arc::clone(&gate),
            reserve,
            worker: w,
            workers,
            tuples,
            target: opts.target,
            dst_mac,
            flood,
            handoff: handoffs.next().flatten(),
            batch: opts.batch,
            poll: opts.poll,
            count_replies: opts.count_replies,
            cpu,
            clock,
        };
        let h = std::thread::Builder::new()
            .name(format!("xdptcp-load{q}"))
            .spawn(move || job.run(&p, &stop))
            .map_err(|e| LoadError::Invalid(format!("spawning a worker: {e}")))?;
        handles.push(h);
    }
    let t0 = gate.release(&clock);

    let show = opts.progress;
    let mut last = (std::time::Instant::now(), 0u64);
    let started_at = std::time::Instant::now();
    let mut signalled = false;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if !signalled && stop_signal.load(Ordering::Relaxed) {
            signalled = true;
            stop.store(true, Ordering::Relaxed);
        }
        if show && last.0.elapsed() >= Duration::from_secs(1) {
            let sum =
                |f: fn(&Progress) -> &AtomicU64| progress.iter().map(|p| f(p).load(Ordering::Relaxed)).sum::<u64>();
            let done = sum(|p| &p.completed);
            let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
            let flood = sum(|p| &p.flood_sent);
            let mut line = format!(
                "\r[{:6.1} s] {:>9.0} conn/s  {} done  {} failed  {} in flight",
                started_at.elapsed().as_secs_f64(),
                rate,
                done,
                sum(|p| &p.failed),
                sum(|p| &p.in_flight)
            );
            if flood > 0 {
                line.push_str(&format!("  {flood} flood frames"));
            }
            let mut out = std::io::stdout();
            let _ = write!(out, "{line}\x1b[K");
            let _ = out.flush();
            last = (std::time::Instant::now(), done);
        }
    }
    if show {
        let _ = write!(std::io::stdout(), "\r\x1b[K");
    }
    let mut outcomes = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => return Err(LoadError::Worker(i, e)),
            Err(_) => return Err(LoadError::Worker(i, "panicked".into())),
        }
    }
    if let Some(p) = prog.as_mut() {
        p.detach();
    }
    Ok(summarise(opts, &src, t0, outcomes))
}

/// Opens the socket of queue `q`, waiting up to two seconds for a previous run's socket to be released.
fn open_socket(iface: &str, q: u32, cfg: &XskConfig) -> Result<XskSocket, IoError> {
    XskSocket::open_waiting(iface, q, cfg, Duration::from_secs(2))
}

/// How many live connections and TIME-WAIT entries one worker's tables should hold from the start: what the
/// offered rate keeps in flight over 50 ms, and in TIME-WAIT over the run (client close), within the bounds.
fn reserve_sizes(opts: &LoadOptions, space: u64, workers: u32) -> (usize, usize) {
    let Some(Pace::Rate(total)) = opts.pace else { return (4096, 0) };
    let rate = total / f64::from(workers);
    let conns = (rate * 0.05).clamp(4096.0, 1e6) as usize;
    if opts.close != CloseBy::Client {
        return (conns, 0);
    }
    let run = match opts.bound {
        Bound::Duration(d) => d.as_secs_f64(),
        Bound::Count(n) => n as f64 / total,
    } + opts.warmup.as_secs_f64();
    let tw = (rate * run.min(opts.time_wait.as_secs_f64())).min(space as f64).min((1u64 << 25) as f64);
    (conns, tw as usize)
}

fn random_u64() -> Result<u64, LoadError> {
    let s = random_secret().map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

fn request_len(plan: &Plan) -> usize {
    match plan.request {
        Request::None => 0,
        Request::Echo(b) | Request::Http(b) => b.len(),
    }
}

/// Ports in `range` (0 for a reversed one, which `validate` refuses: this never underflows).
fn port_count(range: &RangeInclusive<u16>) -> u64 {
    (u64::from(*range.end()) + 1).saturating_sub(u64::from(*range.start()))
}

/// Refuses a closed loop that asks for more connections in flight than `src` × the source ports has tuples: the
/// rest could never open, and each refused start would make room for the next, a loop of instant failures (16
/// million `tuple_exhausted` in one second for `--concurrency 10000000` from one address).
fn check_concurrency(opts: &LoadOptions, src: &SrcRange) -> Result<(), LoadError> {
    let Some(Pace::Concurrency(c)) = opts.pace else { return Ok(()) };
    let ports = port_count(&opts.src_ports);
    let space = src.len().saturating_mul(ports);
    if c > space {
        return Err(LoadError::Invalid(format!(
            "--concurrency {c} is more than the {space} source tuples of --src {src} × {ports} ports: widen --src or \
             --src-ports, or keep fewer in flight"
        )));
    }
    Ok(())
}

/// Says on stderr when the tuple space cannot hold a run's TIME-WAIT (connections would then fail, or wait in
/// closed loop).
fn warn_about_tuples(opts: &LoadOptions, src: &SrcRange) {
    let ports = port_count(&opts.src_ports);
    let space = src.len().saturating_mul(ports);
    if let Some(note) = closed_loop_tuples_short(opts, space) {
        eprintln!("xdptcp load: warning: {note} (widen --src or --src-ports)");
    }
    if let Some(note) = reuse_in_server_time_wait(opts, space) {
        eprintln!("xdptcp load: warning: {note}");
    }
    if let Some(needed) = tuples_short(opts, space) {
        let rate = match opts.pace {
            Some(Pace::Rate(r)) => r,
            _ => 0.0,
        };
        eprintln!(
            "xdptcp load: warning: {rate:.0} conn/s with a {:.0} s TIME-WAIT holds up to {needed:.0} tuples, but --src \
             {src} × {ports} ports has {space}: expect tuple_exhausted failures (widen --src or shorten --time-wait)",
            opts.time_wait.as_secs_f64()
        );
    }
}

/// The tuples an open-loop run that closes first holds in TIME-WAIT at its fullest, when that is more than 90 % of
/// the `space` it has: the rate times the TIME-WAIT, or times the whole run (warm-up included) when that is
/// shorter (a two-second run never holds a minute's worth).
fn tuples_short(opts: &LoadOptions, space: u64) -> Option<f64> {
    let Some(Pace::Rate(rate)) = opts.pace else { return None };
    if opts.close != CloseBy::Client {
        return None;
    }
    let run = match opts.bound {
        Bound::Duration(d) => d.as_secs_f64(),
        Bound::Count(n) => n as f64 / rate,
    } + opts.warmup.as_secs_f64();
    let needed = rate * run.min(opts.time_wait.as_secs_f64());
    (needed > space as f64 * 0.9).then_some(needed)
}

/// Closed loop: why starts will wait for a free tuple (counted as `tuple_waits`), when they will: nearly every
/// tuple in flight at once, or, the client closing first, more connections than tuples, each ended one holding
/// its tuple in TIME-WAIT (a --duration run cannot be judged before it runs: its rate is unknown).
fn closed_loop_tuples_short(opts: &LoadOptions, space: u64) -> Option<String> {
    let Some(Pace::Concurrency(c)) = opts.pace else { return None };
    if c as f64 > space as f64 * 0.9 {
        return Some(format!(
            "--concurrency {c} keeps nearly all of the {space} source tuples in flight: starts will wait for one \
             to free"
        ));
    }
    match opts.bound {
        Bound::Count(n) if opts.close == CloseBy::Client && n as f64 > space as f64 * 0.9 => Some(format!(
            "{n} connections from {space} source tuples, each held {:.0} s in TIME-WAIT after it ends: past the \
             first {space}, starts wait for a tuple to come out of TIME-WAIT (at most {:.0} conn/s)",
            opts.time_wait.as_secs_f64(),
            space as f64 / opts.time_wait.as_secs_f64().max(1e-3)
        )),
        _ => None,
    }
}

/// The TIME-WAIT a server keeps (Linux's fixed 60 s, and `serve`'s default).
const SERVER_TIME_WAIT_S: f64 = 60.0;

/// With `--close server` the generator keeps no TIME-WAIT, so a source tuple comes back once the walk has been
/// round the space: in open loop after space / rate seconds, possibly while the server still holds the tuple in
/// its own TIME-WAIT. The connection then opens only if the server accepts its SYN by RFC 6191 (timestamps
/// newer than the old connection's); this says so when the run is long enough for it.
fn reuse_in_server_time_wait(opts: &LoadOptions, space: u64) -> Option<String> {
    if opts.close != CloseBy::Server {
        return None;
    }
    let tail = "while the server may still hold it in TIME-WAIT: such a SYN opens only if the server accepts it \
                by RFC 6191 timestamps (Linux and xdptcp serve do; a server that does not answers with an ACK \
                and the connection times out). Widen --src or --src-ports to avoid it";
    match (opts.pace?, opts.bound) {
        (Pace::Rate(rate), bound) => {
            let run = match bound {
                Bound::Duration(d) => d.as_secs_f64(),
                Bound::Count(n) => n as f64 / rate,
            } + opts.warmup.as_secs_f64();
            let back_after = space as f64 / rate;
            (rate * run > space as f64 && back_after < SERVER_TIME_WAIT_S).then(|| {
                format!("with --close server a source tuple comes back after {back_after:.1} s ({space} tuples at {rate:.0} conn/s), {tail}")
            })
        }
        (Pace::Concurrency(_), Bound::Count(n)) if n > space => {
            Some(format!("with --close server a source tuple comes back after {space} connections, {tail}"))
        }
        // A closed loop by duration: its rate, so when tuples come back, is not known before it runs.
        (Pace::Concurrency(_), _) => None,
    }
}

/// One worker's share of the run.
struct Job {
    io: XskSocket,
    cfg: Config,
    plan: Plan,
    pace: Option<Pace>,
    bound: Bound,
    warmup: Duration,
    gate: Arc<StartGate>,
    /// Live connections and TIME-WAIT entries to pre-size the tables for.
    reserve: (usize, usize),
    worker: u32,
    workers: u32,
    tuples: TupleAllocator,
    target: SocketAddr,
    dst_mac: MacAddr,
    flood: Option<Flooder>,
    handoff: Option<Handoff>,
    batch: usize,
    poll: bool,
    count_replies: bool,
    cpu: Option<usize>,
    clock: Clock,
}

impl Job {
    fn run(self, progress: &Progress, stop: &AtomicBool) -> Result<WorkerOutcome, String> {
        if let Some(cpu) = self.cpu {
            pin_current_thread(cpu, &format!("load worker {}", self.worker));
        }
        match self.pace {
            Some(pace) => self.run_load(pace, progress, stop),
            None => self.run_flood(progress, stop),
        }
    }

    fn run_load(mut self, pace: Pace, progress: &Progress, stop: &AtomicBool) -> Result<WorkerOutcome, String> {
        let clock = self.clock;
        let mut ep = Endpoint::new(self.cfg.clone(), LoadApp::new(self.plan, 1 << 16), clock.now());
        ep.reserve(self.target.is_ipv6(), self.reserve.0, self.reserve.1);
        let t0 = self.gate.wait();
        ep.app_mut().now = clock.now();
        let sched = Schedule::new(pace, self.bound, t0, self.warmup, self.worker, self.workers);
        let tuples = self.tuples.clone();
        let mut d = Driver::new(ep, sched, tuples, self.target, self.dst_mac, self.flood.take(), self.batch);
        d.handoff = self.handoff.take();
        let mut next_publish = clock.now();
        let mut stopping = false;
        // Busy time: turns that did something, from their start to the next turn's (measured from t0 on).
        let (mut busy, mut last_busy_start): (Duration, Option<Instant>) = (Duration::ZERO, None);
        loop {
            let now = clock.now();
            if let Some(t) = last_busy_start.take() {
                busy += now - t;
            }
            let turn = d.turn_clocked(now, &mut self.io, || clock.now()).map_err(|e| e.to_string())?;
            if !turn.idle() && now >= t0 {
                last_busy_start = Some(now);
            }
            if now >= next_publish {
                let app = d.ep.app();
                progress.started.store(app.counts.started, Ordering::Relaxed);
                progress.completed.store(app.counts.completed, Ordering::Relaxed);
                progress.failed.store(app.counts.failed_total(), Ordering::Relaxed);
                progress.in_flight.store(app.in_flight(), Ordering::Relaxed);
                progress.flood_sent.store(d.flood.as_ref().map_or(0, |f| f.sent), Ordering::Relaxed);
                next_publish = now + Duration::from_millis(10);
                if !stopping && stop.load(Ordering::Relaxed) {
                    stopping = true;
                    d.stop(now, Duration::from_secs(1));
                }
            }
            if d.done(now) {
                break;
            }
            if turn.idle() {
                idle_wait(&mut self.io, &d, now, self.poll).map_err(|e| e.to_string())?;
            }
        }
        let now = clock.now();
        let busy_share = busy.as_secs_f64() / (now - t0).as_secs_f64().max(1e-9);
        d.ep.app_mut().now = now;
        d.finish(now, &mut self.io).map_err(|e| e.to_string())?;
        drain_tx(&mut self.io);
        let flood = d.flood.as_ref().map(|f| flood_result(f, true));
        let app = d.ep.app();
        Ok(WorkerOutcome {
            counts: app.counts,
            hist: app.hist.clone(),
            stats: d.ep.stats(),
            xsk: self.io.stats().unwrap_or_default(),
            last_measured_start: d.last_measured_start,
            last_completion: app.last_completion,
            flood,
            foreign: d.foreign,
            tuple_waits: d.tuple_waits,
            handoff: d.handoff.as_ref().map_or((0, 0), |h| (h.handed_off, h.dropped)),
            busy: busy_share,
            interrupted: stopping,
        })
    }

    /// A pure flood: frames as fast as the ring takes them (or `pps`), replies counted, until the bound.
    fn run_flood(mut self, progress: &Progress, stop: &AtomicBool) -> Result<WorkerOutcome, String> {
        let clock = self.clock;
        let t0 = self.gate.wait();
        let mut flood = self.flood.take().ok_or("a flood worker without a flood")?;
        while clock.now() < t0 {
            std::hint::spin_loop();
        }
        let start = clock.now();
        let (deadline, limit) = match self.bound {
            Bound::Duration(d) => (Some(start + d), u64::MAX),
            Bound::Count(n) => {
                (None, n / u64::from(self.workers) + u64::from(u64::from(self.worker) < n % u64::from(self.workers)))
            }
        };
        let mut turns = 0u32;
        loop {
            let now = clock.now();
            self.io.recv(self.batch, |frame, _| {
                flood.take_reply(frame);
            });
            let room = self.io.sink().free_frames().min((limit - flood.sent) as usize);
            flood.fill(now, self.io.sink(), room);
            self.io.flush().map_err(|e| e.to_string())?;
            turns = turns.wrapping_add(1);
            if turns % 64 == 0 {
                progress.flood_sent.store(flood.sent, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) || flood.sent >= limit {
                    break;
                }
            }
        }
        drain_tx(&mut self.io);
        // Replies still on their way for a moment: count them too.
        let settle = clock.now() + Duration::from_millis(50);
        while clock.now() < settle {
            self.io.recv(self.batch, |frame, _| {
                flood.take_reply(frame);
            });
            let _ = self.io.flush();
        }
        let xsk = self.io.stats().unwrap_or_default();
        Ok(WorkerOutcome {
            counts: Counts::default(),
            hist: Histograms::new(),
            stats: Stats::default(),
            xsk,
            last_measured_start: None,
            last_completion: None,
            flood: Some(flood_result(&flood, self.count_replies)),
            foreign: 0,
            tuple_waits: 0,
            handoff: (0, 0),
            busy: 1.0,
            interrupted: stop.load(Ordering::Relaxed),
        })
    }
}

/// Sleeps in poll(2) when idle, for as long as [`idle_sleep`] says.
fn idle_wait<P: PacketIo>(io: &mut P, d: &Driver, now: Instant, poll: bool) -> Result<(), IoError> {
    match idle_sleep(now, d.next_due_time(), d.next_timer(), poll) {
        // A segment another worker hands over wakes nothing: with peers, look again every millisecond.
        Some(t) if d.handoff.is_some() => io.wait(Some(t.min(Duration::from_millis(1)))),
        Some(t) => io.wait(Some(t)),
        None => Ok(()),
    }
}

/// How long an idle worker sleeps at `now` (`None`: it spins). Open loop: until a millisecond before the next
/// start or the next timer, whichever comes first (poll(2) counts whole milliseconds; a sleep past a timer
/// would make a SYN retransmission or a timeout fire late), at most 50 ms, and only when that is 2 ms or more
/// away. Closed loop, or nothing far enough away: spin, or sleep 1 ms when asked to (`--poll`).
fn idle_sleep(now: Instant, next_due: Option<Instant>, next_timer: Option<Instant>, poll: bool) -> Option<Duration> {
    let ms = Duration::from_millis(1);
    let gap = next_due.map(|due| next_timer.map_or(due, |t| t.min(due)).saturating_since(now));
    match gap {
        Some(g) if g >= 2 * ms => Some((g - ms).min(Duration::from_millis(50))),
        _ if poll => Some(ms),
        _ => None,
    }
}

/// What a flood reports, with one meaning alone or beside a load: the frames it committed to the send ring, over
/// its own span from first frame to last. (The ring's completions would count only what the kernel has
/// finished with, but beside a load they mix the flood's frames with the load's.)
fn flood_result(f: &Flooder, count_replies: bool) -> (u64, Option<super::flood::Replies>, Duration) {
    (f.sent, count_replies.then_some(f.replies), f.duration())
}

/// Flushes until the kernel has taken every queued frame (or 100 ms pass): the last ACKs must leave.
fn drain_tx(io: &mut XskSocket) {
    let until = std::time::Instant::now() + Duration::from_millis(100);
    while std::time::Instant::now() < until {
        if io.flush().is_err() || io.sink().in_flight() == 0 {
            break;
        }
        std::thread::yield_now();
    }
}

/// Merges the workers' results.
fn summarise(opts: &LoadOptions, src: &SrcRange, t0: Instant, outcomes: Vec<WorkerOutcome>) -> Outcome {
    let mut counts = Counts::default();
    let mut hist = Histograms::new();
    let mut stats = Stats::default();
    let mut gen = GeneratorStats::default();
    let mut last_start: Option<Instant> = None;
    let mut last_completion: Option<Instant> = None;
    let mut flood: Option<FloodSummary> = None;
    for o in &outcomes {
        counts.merge(&o.counts);
        hist.merge(&o.hist);
        stats.accumulate(&o.stats);
        gen.rx_ring_drops += o.xsk.kernel.rx_ring_full + o.xsk.kernel.rx_dropped;
        gen.rx_ring_full += o.xsk.kernel.rx_ring_full;
        gen.rx_dropped += o.xsk.kernel.rx_dropped;
        gen.rx_fill_empty += o.xsk.kernel.rx_fill_ring_empty_descs;
        gen.tx_kicks += o.xsk.tx.kicks;
        last_start = last_start.max(o.last_measured_start);
        last_completion = last_completion.max(o.last_completion);
        if let (Some((sent, replies, elapsed)), Some(kind)) = (o.flood, opts.flood) {
            let f = flood.get_or_insert(FloodSummary { kind: kind.name(), ..FloodSummary::default() });
            f.sent += sent;
            f.duration_s = f.duration_s.max(elapsed.as_secs_f64());
            if let Some(r) = replies {
                let t = f.replies.get_or_insert_with(Default::default);
                t.syn_ack += r.syn_ack;
                t.rst += r.rst;
                t.other += r.other;
            }
        }
    }
    if let Some(f) = flood.as_mut() {
        f.pps = if f.duration_s > 0.0 { f.sent as f64 / f.duration_s } else { 0.0 };
    }
    gen.frames_in = stats.frames_in;
    gen.frames_out = stats.frames_out;
    gen.retransmits = stats.retransmits;
    gen.rsts_sent = stats.rsts_sent;
    gen.no_tx_buffer = stats.dropped[Drop::NoTxBuffer as usize];
    gen.unmatched_segments = stats.dropped[Drop::NoConnection as usize];
    gen.time_wait = stats.time_wait;
    gen.time_wait_overflow = stats.time_wait_overflow;
    gen.foreign_frames = outcomes.iter().map(|o| o.foreign).sum();
    gen.tuple_waits = outcomes.iter().map(|o| o.tuple_waits).sum();
    gen.handed_off = outcomes.iter().map(|o| o.handoff.0).sum();
    gen.handoff_dropped = outcomes.iter().map(|o| o.handoff.1).sum();
    gen.busy = outcomes.iter().map(|o| o.busy).fold(0.0, f64::max);
    let measure_from = t0 + opts.warmup;
    let interrupted = outcomes.iter().any(|o| o.interrupted);
    let window = match (opts.pace, opts.bound) {
        (Some(Pace::Rate(rate)), bound) => {
            let planned = match bound {
                Bound::Duration(d) => d.as_secs_f64(),
                Bound::Count(n) => n as f64 / rate,
            };
            // A generator that fell behind its schedule took longer: charge it the real span. A run stopped by a
            // signal only had the real span.
            let actual = last_start.map_or(0.0, |t| (t - measure_from).as_secs_f64() + 1.0 / rate);
            if interrupted {
                actual
            } else {
                planned.max(actual)
            }
        }
        (Some(Pace::Concurrency(_)), bound) => {
            // The span of what was counted: up to the last completion. Connections that fail at the end (a SYN
            // lost, found out a whole timeout later) add nothing to `completed` and so no time either. A run
            // bounded by --duration is charged at least that duration: a target that stopped answering half-way
            // did not serve its completions over half the time. A run stopped by a signal only had the real span.
            let to_last = last_completion.map_or(0.0, |t| (t - measure_from).as_secs_f64());
            match bound {
                Bound::Duration(d) if !interrupted => to_last.max(d.as_secs_f64()),
                _ => to_last,
            }
        }
        (None, _) => flood.map_or(0.0, |f| f.duration_s),
    };
    let mut summary = Summary {
        mode: match opts.pace {
            Some(Pace::Rate(_)) => "open",
            Some(Pace::Concurrency(_)) => "closed",
            None => "flood",
        },
        target: opts.target.to_string(),
        src: src.to_string(),
        offered_cps: match opts.pace {
            Some(Pace::Rate(r)) => Some(r),
            _ => None,
        },
        concurrency: match opts.pace {
            Some(Pace::Concurrency(c)) => Some(c),
            _ => None,
        },
        generator: gen,
        flood,
        sent_pps: flood.map(|f| f.pps),
        interrupted,
        ..Summary::default()
    };
    summary.set_results(&counts, &hist, window);
    Outcome { summary, hist }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(src: &str) -> LoadOptions {
        LoadOptions {
            iface: "xt1".into(),
            target: "10.77.0.1:80".parse().unwrap(),
            src: Some(SrcRange::parse(src).unwrap()),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn the_time_wait_warning_counts_only_what_the_run_can_fill() {
        // Found by an audit: 1 000/s for 2 s from one address warned of tuple exhaustion (60 000 tuples for a
        // 60 s TIME-WAIT against 64 512) although the run used 2 000.
        let space = 64_512;
        let run = |secs: u64, bound: Option<u64>| LoadOptions {
            pace: Some(Pace::Rate(1000.0)),
            bound: bound.map_or(Bound::Duration(Duration::from_secs(secs)), Bound::Count),
            ..LoadOptions::default()
        };
        assert_eq!(tuples_short(&run(2, None), space), None);
        assert_eq!(tuples_short(&run(0, Some(50_000)), space), None, "50 s at 1 000/s: 50 000 tuples fit");
        assert_eq!(tuples_short(&run(120, None), space), Some(60_000.0), "a minute of TIME-WAIT at 1 000/s");
        assert_eq!(tuples_short(&run(0, Some(200_000)), space), Some(60_000.0));
        let warm = LoadOptions { warmup: Duration::from_secs(58), ..run(2, None) };
        assert_eq!(tuples_short(&warm, space), Some(60_000.0), "the warm-up's connections hold tuples too");
        let server_closes = LoadOptions { close: CloseBy::Server, ..run(120, None) };
        assert_eq!(tuples_short(&server_closes, space), None);
    }

    #[test]
    fn a_closed_loop_that_will_wait_for_tuples_is_warned_about() {
        let closed =
            |c: u64, bound, close| LoadOptions { pace: Some(Pace::Concurrency(c)), bound, close, ..opts("10.77.1.1") };
        let ten_s = Bound::Duration(Duration::from_secs(10));
        let note = closed_loop_tuples_short(&closed(60_000, ten_s, CloseBy::Server), 64_512).unwrap();
        assert!(note.contains("--concurrency 60000") && note.contains("64512"), "{note}");
        assert_eq!(closed_loop_tuples_short(&closed(1000, ten_s, CloseBy::Client), 64_512), None);
        let note = closed_loop_tuples_short(&closed(1000, Bound::Count(100_000), CloseBy::Client), 64_512).unwrap();
        assert!(note.contains("TIME-WAIT") && note.contains("1075 conn/s"), "{note}");
        assert_eq!(closed_loop_tuples_short(&closed(1000, Bound::Count(100_000), CloseBy::Server), 64_512), None);
        assert_eq!(closed_loop_tuples_short(&closed(1000, Bound::Count(50_000), CloseBy::Client), 64_512), None);
        assert_eq!(closed_loop_tuples_short(&opts("10.77.1.1"), 10), None, "open loop: `tuples_short`'s business");
    }

    #[test]
    fn a_closed_loop_wider_than_the_tuple_space_is_refused() {
        // Found by an audit: `--concurrency 10000000` from one address ran, 16 million starts failing at once.
        let one = SrcRange::parse("10.77.1.1").unwrap();
        let closed =
            |c: u64| LoadOptions { pace: Some(Pace::Concurrency(c)), src_ports: 1024..=65535, ..opts("10.77.1.1") };
        assert!(check_concurrency(&closed(64_512), &one).is_ok());
        let e = check_concurrency(&closed(64_513), &one).unwrap_err().to_string();
        assert!(e.contains("--concurrency 64513") && e.contains("64512 source tuples"), "{e}");
        let wide = SrcRange::parse("10.77.0.0/16").unwrap();
        assert!(check_concurrency(&closed(10_000_000), &wide).is_ok(), "65 534 addresses × 64 512 ports");
        assert!(check_concurrency(&opts("10.77.1.1"), &one).is_ok(), "open loop: the TIME-WAIT warning's business");
    }

    /// What one worker hands back after `completed` connections (the last at `last`) and `timeouts` failures.
    fn worker(completed: u64, timeouts: u64, last: Option<Instant>) -> WorkerOutcome {
        let mut counts = Counts { started: completed + timeouts, completed, ..Counts::default() };
        counts.failed[super::super::app::Failure::Timeout as usize] = timeouts;
        WorkerOutcome {
            counts,
            hist: Histograms::new(),
            stats: Stats::default(),
            xsk: XskStats::default(),
            last_measured_start: None,
            last_completion: last,
            flood: None,
            foreign: 0,
            tuple_waits: 0,
            handoff: (0, 0),
            busy: 0.5,
            interrupted: false,
        }
    }

    #[test]
    fn a_closed_loops_rate_is_taken_up_to_its_last_completion_and_over_at_least_its_duration() {
        // Found by a review: the span ran to the last connection that ended, failures included, so one SYN lost
        // at the end (a timeout 5 s later) made a 1 s run read 6 s, and the rate a sixth of the truth.
        let t0 = Instant::from_secs(100);
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let closed = |bound| LoadOptions { pace: Some(Pace::Concurrency(64)), bound, ..opts("10.77.1.1") };
        let src = SrcRange::parse("10.77.1.1").unwrap();
        let rate = |o: &LoadOptions, w: Vec<WorkerOutcome>| {
            let s = summarise(o, &src, t0, w).summary;
            (s.duration_s, s.achieved_cps)
        };
        let by_count = closed(Bound::Count(6001));
        assert_eq!(rate(&by_count, vec![worker(6000, 1, at(1000))]), (1.0, 6000.0));
        let by_time = closed(Bound::Duration(Duration::from_secs(1)));
        assert_eq!(rate(&by_time, vec![worker(3000, 1, at(500)), worker(3000, 0, at(1250))]), (1.25, 4800.0));
        assert_eq!(
            rate(&by_time, vec![worker(3000, 1, at(500))]),
            (1.0, 3000.0),
            "a target that stopped answering half-way is charged the whole duration"
        );
        let warm = LoadOptions { warmup: Duration::from_secs(2), ..by_count.clone() };
        assert_eq!(rate(&warm, vec![worker(600, 0, at(2100))]).0, 0.1, "the span starts after the warm-up");
        assert_eq!(rate(&by_count, vec![worker(0, 5, None)]), (0.0, 0.0));
    }

    #[test]
    fn a_load_whose_send_pool_holds_fewer_than_four_batches_is_refused() {
        // Found by a review: `--ring 64` (128 send frames) with the default batch of 64 ran and never ended.
        let sized =
            |ring: u32, batch: usize| LoadOptions { ring_size: ring, tx_frames: ring * 2, batch, ..opts("10.77.1.1") };
        let e = sized(64, 64).validate().unwrap_err().to_string();
        assert!(e.contains("--batch 64") && e.contains("--ring 64") && e.contains("--batch 32 or less"), "{e}");
        assert!(sized(64, 32).validate().is_ok());
        assert!(sized(128, 64).validate().is_ok());
        let flood_alone = LoadOptions { pace: None, flood: Some(FloodKind::Syn), ..sized(64, 64) };
        assert!(flood_alone.validate().is_ok(), "a flood alone keeps no frames back for replies");
    }

    #[test]
    fn an_idle_open_loop_sleeps_no_further_than_its_next_timer() {
        // Found by a review: the sleep looked only at the next start, so at 1 conn/s a SYN retransmission or a
        // timeout fired up to 49 ms late.
        let now = Instant::from_secs(100);
        let at = |ms: u64| Some(now + Duration::from_millis(ms));
        let ms = Duration::from_millis;
        assert_eq!(idle_sleep(now, at(40), None, false), Some(ms(39)));
        assert_eq!(idle_sleep(now, at(40), at(5), false), Some(ms(4)), "the timer comes first");
        assert_eq!(idle_sleep(now, at(1000), at(900), false), Some(ms(50)));
        assert_eq!(idle_sleep(now, at(40), at(1), false), None, "a timer within 2 ms: spin");
        assert_eq!(idle_sleep(now, at(40), at(1), true), Some(ms(1)), "unless asked to sleep");
        assert_eq!(idle_sleep(now, None, at(30), false), None, "closed loop: spin");
    }

    #[test]
    fn queue_and_port_ranges_that_would_overflow_are_refused_not_panicked_on() {
        // Found by a review: `first_queue + queues` and `end - start` of the ports were computed unchecked, which
        // panics (debug) or wraps (release) for a library caller's values that the command line never makes.
        let e = LoadOptions { first_queue: u32::MAX, ..opts("10.77.1.1") }.validate().unwrap_err().to_string();
        assert!(e.contains("--queues"), "{e}");
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 5..=3;
        for ports in [reversed.clone(), 0..=10] {
            let o = LoadOptions { src_ports: ports.clone(), ..opts("10.77.1.1") };
            assert!(matches!(o.validate(), Err(LoadError::Src(SrcError::BadPorts(..)))), "{ports:?}");
        }
        assert_eq!((port_count(&reversed), port_count(&(1..=65535)), port_count(&(7..=7))), (0, 65535, 1));
    }

    #[test]
    fn a_flood_reports_its_committed_frames_over_its_own_span() {
        // Found by a review: a flood alone reported the ring's completions over its loop's span, a flood beside
        // a load its committed frames over first-to-last frame: two meanings under one `sent`.
        let (mut io, _peer) = crate::io::testing::pair(64);
        let spec = FloodSpec {
            kind: FloodKind::Syn,
            src: SrcRange::parse("10.80.0.0/24").unwrap(),
            src_ports: 1024..=65535,
            target: "10.77.0.1:80".parse().unwrap(),
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            pps: None,
        };
        let mut f = Flooder::new(spec, 7);
        let t = Instant::from_secs(10);
        f.fill(t, io.sink(), 10);
        f.fill(t + Duration::from_millis(500), io.sink(), 10);
        assert_eq!(flood_result(&f, false), (20, None, Duration::from_millis(500)), "nothing flushed, still sent");
        assert!(flood_result(&f, true).1.is_some());
    }

    #[test]
    fn reuse_of_tuples_the_server_may_hold_in_time_wait_is_warned_about_with_server_close() {
        // Found by a review: with --close server tuples came back after space / rate seconds, possibly inside the
        // server's 60 s TIME-WAIT, silently (and the README said a tuple in TIME-WAIT was never reused).
        let server = |rate: f64, secs: u64| LoadOptions {
            pace: Some(Pace::Rate(rate)),
            bound: Bound::Duration(Duration::from_secs(secs)),
            close: CloseBy::Server,
            ..opts("10.77.1.1")
        };
        let note = reuse_in_server_time_wait(&server(10_000.0, 10), 64_512).unwrap();
        assert!(note.contains("after 6.5 s") && note.contains("RFC 6191"), "{note}");
        assert_eq!(reuse_in_server_time_wait(&server(10_000.0, 6), 64_512), None, "60 000 never come round");
        assert_eq!(reuse_in_server_time_wait(&server(1000.0, 100), 64_512), None, "back after 64 s: the server let go");
        let client = LoadOptions { close: CloseBy::Client, ..server(10_000.0, 10) };
        assert_eq!(reuse_in_server_time_wait(&client, 64_512), None, "client close: the generator's own TIME-WAIT");
        let closed = LoadOptions { pace: Some(Pace::Concurrency(8)), bound: Bound::Count(100), ..server(1.0, 1) };
        assert!(reuse_in_server_time_wait(&closed, 50).unwrap().contains("after 50 connections"));
    }

    #[test]
    fn a_concurrency_past_what_the_workers_tables_hold_is_refused() {
        // Found by a review: past 2^22 per worker every further start failed as connect_error and was retried in
        // the same turn.
        let closed =
            |c: u64, queues: u32| LoadOptions { pace: Some(Pace::Concurrency(c)), queues, ..opts("10.78.0.0/16") };
        let limit = MAX_CONNS_PER_WORKER as u64;
        assert!(closed(limit, 1).validate().is_ok());
        let e = closed(limit + 1, 1).validate().unwrap_err().to_string();
        assert!(e.contains(&format!("--concurrency {}", limit + 1)) && e.contains("--queues 2"), "{e}");
        assert!(closed(2 * limit, 2).validate().is_ok(), "each of two workers holds its half");
        assert!(closed(2 * limit + 1, 2).validate().is_err());
    }

    #[test]
    fn sources_that_include_the_targets_own_address_are_refused() {
        // Found by an audit: `--src 10.77.0.0/24` against 10.77.0.1 was taken, and the connections from the
        // target's own address timed out.
        for src in ["10.77.0.1", "10.77.0.0/24", "10.0.0.0/8"] {
            let e = opts(src).validate().unwrap_err().to_string();
            assert!(e.contains("includes the target's own address 10.77.0.1"), "{src}: {e}");
        }
        assert!(opts("10.77.1.0/24").validate().is_ok());
        let flood = LoadOptions {
            flood: Some(FloodKind::Syn),
            flood_src: Some(SrcRange::parse("10.77.0.0/28").unwrap()),
            ..opts("10.77.1.0/24")
        };
        assert!(flood.validate().unwrap_err().to_string().contains("--flood-src"), "a flood beside a load too");
    }
}
