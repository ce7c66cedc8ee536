//! `xdptcp serve` below the command line: set the interface up, start one pinned worker per queue, run the
//! control plane (key rotation, stats, metrics, signals), drain and leave.
//!
//! The control thread owns the BPF program (its bpf_link detaches when the process dies, however it dies), the
//! key manager and the snapshot of counters. Workers own everything on the packet path.

use crate::app::http1::{request_window, send_buffer_for, Responses};
use crate::app::{App, CloseApp, EchoApp, HttpApp};
use crate::io::presence::PresenceLayout;
use crate::io::{netdev, signal, AttachMode, IoError, SteerOptions, SteerProgram, SynAnswer, XskConfig, XskSocket};
use crate::runtime::answer_watch::{AnswerWatch, Verdict};
use crate::runtime::clock::Clock;
use crate::runtime::fault::Loss;
use crate::runtime::keys::{random_secret, slot_now, KeyError, KeyManager};
use crate::runtime::metrics;
use crate::runtime::pin::pin_current_thread;
use crate::runtime::report::{write_atomically, Snapshot};
use crate::runtime::worker::{self, Command, IcmpPeers, Report, WorkerOptions};
use crate::tcp::presence::Presence;
use crate::tcp::{Config, Endpoint};
use crate::wire::MacAddr;
use crossbeam::channel::{bounded, Sender};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

/// Which app every connection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    Close,
    Echo,
    Http,
}

/// How many queues to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queues {
    All,
    Count(u32),
}

/// Everything `serve` needs to know.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub iface: String,
    pub ports: Vec<u16>,
    pub addrs: Vec<IpAddr>,
    /// 802.1Q VLAN IDs (1..=4094) served as well as untagged frames; replies carry the tag the peer used. Frames
    /// tagged with any other VID go to the kernel (VID 0, a priority tag, counts as untagged).
    pub vlans: Vec<u16>,
    pub queues: Queues,
    pub app: AppKind,
    pub http_body: Vec<u8>,
    pub time_wait: Duration,
    pub max_conns: usize,
    /// TIME-WAIT entries per worker at most.
    pub max_time_wait: usize,
    pub mode: AttachMode,
    pub busy_poll: bool,
    /// Keep polling this long after the last frame before sleeping (see `WorkerOptions::spin`).
    pub spin: Duration,
    /// Entries per AF_XDP ring of each queue, and receive frames in its UMEM (see `XskConfig::ring_size`).
    pub ring_size: u32,
    pub stats_json: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub cookie_key_file: Option<PathBuf>,
    /// CPUs to pin workers to, in queue order (default: queue q on CPU q modulo the CPU count).
    pub cpus: Vec<usize>,
    /// How long live connections may take to finish after SIGINT/SIGTERM.
    pub drain_timeout: Duration,
    /// Seconds between summary lines on stderr (0: never).
    pub summary_every: Duration,
    /// Stop by itself after this long (tests and demos); `None`: until a signal.
    pub run_for: Option<Duration>,
    /// Fault injection for loss tests: lose this percentage of frames in each direction on the AF_XDP side.
    pub inject_loss: Option<f64>,
    /// Tests only: shift the wall clock that cookie slots and key rotation follow, in nanoseconds.
    pub cookie_clock_skew_ns: i64,
    /// Reset connections idle (nothing in flight, nothing received) for this long; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// RFC 5961 §7: an endpoint-wide cap of about this many challenge ACKs per second for each worker (each
    /// second's budget secret); `None`, the default, leaves only the per-connection limit (no side channel).
    pub challenge_acks_per_sec: Option<u32>,
    /// Upper bound of the retransmission timeout (RFC 6298 (2.5): at least 60 s by default; lower in tests).
    pub max_rto: Duration,
    /// Bytes all send queues of one worker may hold together.
    pub send_memory: usize,
    /// Answer SYNs in the XDP program (cookie SYN-ACKs sent with XDP_TX) instead of in the workers.
    pub xdp_cookies: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            iface: String::new(),
            ports: Vec::new(),
            addrs: Vec::new(),
            vlans: Vec::new(),
            queues: Queues::All,
            app: AppKind::Http,
            http_body: b"Hello from xdptcp\n".to_vec(),
            time_wait: Duration::from_secs(60),
            max_conns: 1 << 20,
            max_time_wait: Config::default().max_time_wait,
            mode: AttachMode::Native,
            busy_poll: false,
            spin: Duration::from_micros(50),
            ring_size: XskConfig::default().ring_size,
            stats_json: None,
            metrics: None,
            cookie_key_file: None,
            cpus: Vec::new(),
            drain_timeout: Duration::from_secs(5),
            summary_every: Duration::from_secs(5),
            run_for: None,
            inject_loss: None,
            cookie_clock_skew_ns: 0,
            idle_timeout: Config::default().idle_timeout,
            challenge_acks_per_sec: Config::default().challenge_acks_per_sec,
            max_rto: Config::default().max_rto,
            send_memory: Config::default().send_memory,
            xdp_cookies: false,
        }
    }
}

/// Cells (log2, one byte each) of each queue's presence table when SYNs are answered in XDP: at least two per
/// tuple a worker may hold (its live connections and TIME-WAIT entries at their bounds), so that a worker full
/// to its bounds still leaves about 60 % of the cells empty (a SYN hashing to a nonzero cell goes to the worker,
/// correct but slower). A server that closes first at 100 k connections/s fills its TIME-WAIT to the default
/// bound of 4 million tuples within 60 s: a fixed 2^20 cells would then be nearly all nonzero. Clamped to
/// 2^16..=2^24 cells (64 KiB to 16 MiB per queue; the defaults give 16 MiB).
fn presence_log2(max_conns: usize, max_time_wait: usize) -> u8 {
    let tuples = max_conns.saturating_add(max_time_wait).max(1);
    let log2 = tuples.checked_next_power_of_two().map_or(usize::BITS, usize::trailing_zeros) + 1;
    log2.clamp(16, u32::from(PresenceLayout::MAX_LOG2)) as u8
}

/// Entries of the XDP program's `local_addrs` map.
const MAX_LOCAL_ADDRS: usize = 256;

/// Why `serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Os { what: String, source: std::io::Error },
    #[error("worker {0} failed: {1}")]
    Worker(usize, String),
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits for worker `i` (already finished, or told to exit) and says how it ended.
fn join_worker(i: usize, h: std::thread::JoinHandle<Result<(), String>>) -> Result<(), ServeError> {
    match h.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Worker(i, e)),
        Err(_) => Err(ServeError::Worker(i, "panicked".into())),
    }
}

/// The queues `--queues` asks for on an interface with `available` of them. More than the program can steer is
/// refused up front with what to do (it used to fail on the first socket past the maps' 64 slots, after building
/// every UMEM before it): serving only some of a NIC's queues would leave the others' connections to the kernel.
fn queue_count(asked: Queues, available: u32, iface: &str) -> Result<u32, ServeError> {
    let max = SteerProgram::MAX_QUEUES;
    match asked {
        Queues::Count(0) => Err(ServeError::Invalid("--queues must be at least 1".into())),
        // Said in the terms of the flag (a count), not of the last queue index it would need.
        Queues::Count(n) if n > available => Err(ServeError::Invalid(format!(
            "--queues {n}: {iface} has only {available} queue(s); use --queues all or a count up to {available}"
        ))),
        Queues::Count(n) if n > max => {
            Err(ServeError::Invalid(format!("--queues {n}: at most {max} queues can be served (the program's maps)")))
        }
        Queues::All if available > max => Err(ServeError::Invalid(format!(
            "--queues all: {iface} has {available} queues and at most {max} can be served; lower them first \
             (ethtool -L {iface} combined {max})"
        ))),
        Queues::Count(n) => Ok(n),
        Queues::All => Ok(available),
    }
}

/// The CPU worker `q` is pinned to: its `--cpus` entry, or for a queue past the list, the allowed CPUs the list
/// did not name, in turn (all of them in turn if it named every one). Taking `allowed[q]` regardless had put both
/// workers of `--queues 2 --cpus 1` on CPU 1 and left CPU 0 idle.
fn worker_cpu(q: usize, cpus: &[usize], allowed: &[usize]) -> Option<usize> {
    if let Some(&c) = cpus.get(q) {
        return Some(c);
    }
    let rest: Vec<usize> = allowed.iter().copied().filter(|c| !cpus.contains(c)).collect();
    let pool = if rest.is_empty() { allowed } else { &rest[..] };
    pool.get((q - cpus.len()) % pool.len().max(1)).copied()
}

/// Runs the server until a signal (or `run_for`), drains, and returns the final counters.
pub fn serve(opts: &ServeOptions) -> Result<Snapshot, ServeError> {
    if opts.ports.is_empty() || opts.ports.contains(&0) {
        return Err(ServeError::Invalid("ports must be in 1..=65535".into()));
    }
    let ifmac = netdev::mac_address(&opts.iface)?;
    let available = netdev::queue_count(&opts.iface)?.unwrap_or(1);
    let queues = queue_count(opts.queues, available, &opts.iface)?;
    let xsk_cfg = XskConfig { ring_size: opts.ring_size, ..XskConfig::default() };
    xsk_cfg.validate()?;
    // Sockets are bound before the program is attached, so a busy interface would otherwise be reported as a
    // busy queue (the other program's AF_XDP socket holds it) instead of what it is: check for a program first.
    if let Some(a) = netdev::xdp_attachment(&opts.iface)? {
        return Err(IoError::AlreadyAttached { ifname: opts.iface.clone(), prog_id: a.prog_id, mode: a.mode }.into());
    }
    // Without --addr, the host's own addresses at start (all interfaces of this namespace: Linux's weak host
    // model): like the kernel, we answer no segment to an address this host does not have, even when it reaches
    // our MAC. An interface without any address answers for every destination.
    let addrs: Vec<IpAddr> = if opts.addrs.is_empty() {
        netdev::host_addresses()?.into_iter().filter(|a| !a.is_loopback()).collect()
    } else {
        opts.addrs.clone()
    };
    if addrs.len() > MAX_LOCAL_ADDRS {
        return Err(IoError::Invalid(format!(
            "{} local addresses: at most {MAX_LOCAL_ADDRS} can be served; name the ones to serve with --addr",
            addrs.len()
        ))
        .into());
    }
    let stop = signal::install_stop_handler()?;
    let cells_log2 = presence_log2(opts.max_conns, opts.max_time_wait);
    let mut prog = SteerProgram::load(SteerOptions {
        restrict_local: !addrs.is_empty(),
        presence_log2: if opts.xdp_cookies { cells_log2 } else { 0 },
        presence_queues: if opts.xdp_cookies { queues } else { 0 },
        ..Default::default()
    })?;
    for p in &opts.ports {
        prog.add_listen_port(*p)?;
    }
    for a in &addrs {
        prog.restrict_local_addr(*a)?;
    }
    for v in &opts.vlans {
        prog.allow_vlan(*v)?;
    }
    // Sockets first, then attach: from the first redirected frame on, a socket is there to take it.
    let mut sockets = Vec::new();
    for q in 0..queues {
        // A server restarted at once may find its predecessor's socket not yet released: wait a moment for it.
        let s = XskSocket::open_waiting(&opts.iface, q, &xsk_cfg, Duration::from_secs(2))?;
        prog.insert_xsk(q, s.fd())?;
        sockets.push(s);
    }
    // The metrics port is bound before the program is attached: a port in use is refused while nothing has been
    // steered yet (after, the kernel's first connections would have been cut by the exit).
    let page: metrics::Page = Arc::new(parking_lot::Mutex::new(String::new()));
    let metrics_stop = Arc::new(AtomicBool::new(false));
    // Stops the endpoint's thread however `serve` returns, an error on the way included.
    let _stop_metrics = StopOnDrop(metrics_stop.clone());
    let metrics_at = match opts.metrics {
        Some(addr) => Some(
            metrics::serve(addr, page.clone(), metrics_stop.clone())
                .map_err(|e| ServeError::Os { what: format!("metrics listener on {addr}"), source: e })?,
        ),
        None => None,
    };
    prog.attach(&opts.iface, opts.mode)?;

    let clock = Clock::with_wall_skew(opts.cookie_clock_skew_ns);
    let mut keys = KeyManager::new(slot_now(clock.wall_nanos(clock.now())), opts.cookie_key_file.as_deref())?;
    if opts.xdp_cookies {
        prog.set_cookie_keys(keys.ring())?;
    }
    let mut syn_answers = Vec::new();
    // The CPUs this process may run on (its affinity mask): workers without a --cpus entry take them in turn.
    let allowed: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    let (report_tx, report_rx) = bounded::<Report>(1024);
    let mut commands: Vec<Sender<Command>> = Vec::new();
    let mut handles = Vec::new();
    let workers = sockets.len();
    let mut peers = IcmpPeers::mesh(workers).into_iter();
    // Built once for every worker (they live as long as the process).
    let responses = Responses::new(&opts.http_body);
    for (q, io) in sockets.into_iter().enumerate() {
        let cfg = Config {
            local_mac: MacAddr(ifmac),
            local_addrs: addrs.clone(),
            max_conns: opts.max_conns,
            max_time_wait: opts.max_time_wait,
            time_wait: opts.time_wait,
            hash_secret: random_secret()?,
            isn_secret: random_secret()?,
            ts_offset: u32::from_le_bytes(random_secret()?[..4].try_into().unwrap_or_default()),
            wall_clock_offset: clock.wall_clock_offset(),
            idle_timeout: opts.idle_timeout,
            challenge_acks_per_sec: opts.challenge_acks_per_sec,
            max_rto: opts.max_rto,
            send_memory: opts.send_memory,
            // A response waits until it fits in the send queue at once: a body beyond the default 64 KiB would
            // leave every GET unanswered (found by an audit).
            send_buffer: send_buffer_for(opts.http_body.len(), Config::default().send_buffer),
            forward_unmatched_icmp: workers > 1,
            ..Config::default()
        };
        // The http app's window is what its send queue can answer (`http1::request_window`), from the handshake
        // on: the SYN-ACK's window (in the XDP program's too) is this one.
        let cfg = match opts.app {
            AppKind::Http => {
                let window = request_window(&responses, cfg.send_buffer as usize, cfg.send_buffer as usize);
                let rcv_wnd = cfg.rcv_wnd.min(u32::try_from(window).unwrap_or(u32::MAX));
                Config { rcv_wnd, ..cfg }
            }
            AppKind::Close | AppKind::Echo => cfg,
        };
        let icmp = peers.next().unwrap_or_default();
        let presence = if opts.xdp_cookies {
            let p = Presence::new(
                prog.presence_cells(q as u32)?,
                u64::from_le_bytes(random_secret()?[..8].try_into().unwrap_or_default()),
            );
            syn_answers
                .push((q as u32, SynAnswer::for_worker(&cfg, clock.instant_minus_ktime(), p.seed(), cells_log2)));
            Some(p)
        } else {
            None
        };
        let (ctx, crx) = bounded::<Command>(16);
        commands.push(ctx);
        let cpu = worker_cpu(q, &opts.cpus, &allowed);
        let wopts = WorkerOptions {
            id: q,
            busy_poll: opts.busy_poll,
            spin: opts.spin,
            loss: opts.inject_loss.map(|p| Loss::both(p, 0x9e37_79b9_7f4a_7c15 ^ q as u64)),
            ..WorkerOptions::default()
        };
        let ports = opts.ports.clone();
        let ring = keys.ring().clone();
        let rtx = report_tx.clone();
        let app = opts.app;
        let h = std::thread::Builder::new()
            .name(format!("xdptcp-w{q}"))
            .spawn(move || -> Result<(), String> {
                if let Some(id) = cpu {
                    pin_current_thread(id, &format!("worker {q}"));
                }
                let start = clock.now();
                let w = WorkerSetup { start, ring, ports, presence, clock, wopts, crx, rtx, icmp };
                match app {
                    AppKind::Close => run_one(io, cfg, CloseApp, w),
                    AppKind::Echo => run_one(io, cfg, EchoApp, w),
                    AppKind::Http => {
                        let send_buffer = cfg.send_buffer;
                        run_one(io, cfg, HttpApp::with(responses, send_buffer), w)
                    }
                }
            })
            .map_err(|e| ServeError::Os { what: "spawning a worker".into(), source: e })?;
        handles.push(h);
    }
    drop(report_tx);
    // The workers publish their tuples from their first connection on; the program may answer SYNs from now.
    for (q, a) in &syn_answers {
        prog.set_syn_answer(*q, a)?;
    }

    if let Some(bound) = metrics_at {
        eprintln!("xdptcp: metrics on http://{bound}/metrics");
    }
    eprintln!(
        "xdptcp: serving {} ports {:?}{} with {} worker(s), app {:?}, {} XDP, for {}",
        opts.iface,
        opts.ports,
        if opts.vlans.is_empty() { String::new() } else { format!(" untagged and on VLAN(s) {:?}", opts.vlans) },
        queues,
        opts.app,
        if opts.mode == AttachMode::Skb { "skb" } else { "native" },
        if addrs.is_empty() {
            "any destination address".to_string()
        } else {
            addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        }
    );

    let started = StdInstant::now();
    let mut snap = Snapshot::new(queues as usize);
    let mut last_summary = StdInstant::now();
    let mut last_json = StdInstant::now();
    let mut opened_at_summary = 0u64;
    let mut draining: Option<StdInstant> = None;
    let mut exiting = false;
    let mut exited = vec![false; queues as usize];
    let mut answer_watch = AnswerWatch::default();
    // A failure of the control loop itself (a map update, a worker that died) stops the server the orderly way
    // (drain, then exit) and is returned at the end; the connections of the other workers are not cut.
    let mut fault: Option<ServeError> = None;
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    let mut dead = vec![false; queues as usize];
    loop {
        // Reports arrive about every 100 ms per worker.
        let first = report_rx.recv_timeout(Duration::from_millis(100)).ok();
        for r in first.into_iter().chain(report_rx.try_iter()) {
            // A worker joined after it ended on an error may still have a report in the channel: stale, and it
            // would bring back the live connections the drain must no longer wait for.
            if dead.get(r.worker).copied().unwrap_or(false) {
                continue;
            }
            if r.exited {
                if let Some(e) = exited.get_mut(r.worker) {
                    *e = true;
                }
            }
            snap.update(r);
        }
        snap.uptime = started.elapsed().as_secs_f64();
        snap.steer = prog.counters().ok();
        if exited.iter().all(|e| *e) || handles.iter().flatten().all(|h| h.is_finished()) {
            break;
        }
        // A worker that ended before it was told to (an I/O error) is joined at once, so that its error is
        // said now and the others drain, rather than when the process ends.
        for (i, slot) in handles.iter_mut().enumerate() {
            if !exiting && slot.as_ref().is_some_and(|h| h.is_finished()) {
                let outcome = slot.take().map(|h| join_worker(i, h));
                let e = outcome.and_then(Result::err).unwrap_or_else(|| ServeError::Worker(i, "stopped".into()));
                exited[i] = true;
                dead[i] = true;
                // It reports no more: its last count of live connections must not hold up the drain.
                if let Some(w) = snap.workers.get_mut(i) {
                    w.stats.live_conns = 0;
                }
                fault.get_or_insert(e);
            }
        }
        // Key rotation: the ring always holds the previous, current and next slot.
        match keys.ensure(slot_now(clock.wall_nanos(clock.now()))) {
            Ok(false) => {}
            Ok(true) => {
                for c in &commands {
                    let _ = c.send(Command::Keys(keys.ring().clone()));
                }
                if opts.xdp_cookies {
                    // The next slot's key is published a period ahead, so the workers have it before the program
                    // mints with it, however late this write lands.
                    if let Err(e) = prog.set_cookie_keys(keys.ring()) {
                        fault.get_or_insert(e.into());
                    }
                }
                // The keys are in use already; a file that cannot be written only costs the handshakes that a
                // restart would cut (as if there were no file), so serving goes on.
                if let Err(e) = keys.save() {
                    eprintln!("xdptcp: warning: {e}; serving on with the keys in memory");
                }
            }
            Err(e) => {
                fault.get_or_insert(e.into());
            }
        }
        if !syn_answers.is_empty() && draining.is_none() {
            let (t, answered) = (snap.total(), snap.steer.map_or(0, |s| s.answered));
            match answer_watch.observe(started.elapsed(), answered, t.cookies_accepted + t.cookies_rejected) {
                Verdict::Keep => {}
                Verdict::FallBack { retry_in } => {
                    eprintln!(
                        "xdptcp: the SYN-ACKs sent from XDP got no answer for {:?} (XDP_TX on a veth pair needs an XDP \
                         program on the peer; or only spoofed SYNs came): answering SYNs in the workers, trying XDP \
                         again in {retry_in:?}",
                        AnswerWatch::WINDOW
                    );
                    for (q, _) in &syn_answers {
                        if let Err(e) = prog.disable_syn_answer(*q) {
                            fault.get_or_insert(e.into());
                        }
                    }
                    snap.xdp_fallbacks += 1;
                }
                Verdict::Resume => {
                    eprintln!("xdptcp: answering SYNs in XDP again");
                    for (q, a) in &syn_answers {
                        if let Err(e) = prog.set_syn_answer(*q, a) {
                            fault.get_or_insert(e.into());
                        }
                    }
                }
            }
        }
        let stop_now = stop.load(Ordering::Relaxed) || opts.run_for.is_some_and(|d| started.elapsed() >= d);
        if (stop_now || fault.is_some()) && draining.is_none() {
            if let Some(e) = &fault {
                eprintln!("xdptcp: stopping after an error: {e}");
            }
            eprintln!("xdptcp: stopping: no new connections, draining live ones for up to {:?}", opts.drain_timeout);
            // First the program stops answering SYNs, then the workers stop listening.
            for (q, _) in &syn_answers {
                if let Err(e) = prog.disable_syn_answer(*q) {
                    eprintln!("xdptcp: cannot stop answering SYNs in XDP on queue {q}: {e}");
                }
            }
            for c in &commands {
                let _ = c.send(Command::Drain);
            }
            draining = Some(StdInstant::now());
        }
        if let Some(t0) = draining {
            // Wait for reports taken after the drain began before judging "no live connections".
            let settled = t0.elapsed() > Duration::from_millis(300);
            if !exiting && ((settled && snap.total().live_conns == 0) || t0.elapsed() >= opts.drain_timeout) {
                for c in &commands {
                    let _ = c.send(Command::Exit);
                }
                exiting = true;
            }
        }
        if !opts.summary_every.is_zero() && last_summary.elapsed() >= opts.summary_every {
            let t = snap.total();
            let rate = (t.conns_opened - opened_at_summary) as f64 / last_summary.elapsed().as_secs_f64();
            opened_at_summary = t.conns_opened;
            eprintln!("{}", snap.summary_line(rate));
            last_summary = StdInstant::now();
        }
        if last_json.elapsed() >= Duration::from_secs(1) {
            publish(opts, &snap, &page);
            last_json = StdInstant::now();
        }
    }
    let mut failure = fault;
    for (i, h) in handles.into_iter().enumerate() {
        if let Some(Err(e)) = h.map(|h| join_worker(i, h)) {
            failure.get_or_insert(e);
        }
    }
    for r in report_rx.try_iter() {
        snap.update(r);
    }
    snap.uptime = started.elapsed().as_secs_f64();
    snap.steer = prog.counters().ok();
    prog.detach();
    publish(opts, &snap, &page);
    metrics_stop.store(true, Ordering::Relaxed);
    match failure {
        Some(e) => Err(e),
        None => Ok(snap),
    }
}

/// What a worker thread takes besides its socket, configuration and app.
struct WorkerSetup {
    start: crate::time::Instant,
    ring: crate::tcp::cookie::KeyRing,
    ports: Vec<u16>,
    presence: Option<Presence>,
    clock: Clock,
    wopts: WorkerOptions,
    crx: crossbeam::channel::Receiver<Command>,
    rtx: Sender<Report>,
    icmp: IcmpPeers,
}

fn run_one<A: App>(io: XskSocket, cfg: Config, app: A, w: WorkerSetup) -> Result<(), String> {
    let mut ep = Endpoint::new(cfg, app, w.start);
    ep.set_cookie_keys(w.ring);
    if let Some(p) = w.presence {
        ep.set_presence(p);
    }
    for p in &w.ports {
        ep.listen(*p);
    }
    worker::run(io, ep, w.clock, w.wopts, w.crx, w.rtx, w.icmp).map(|_| ()).map_err(|e| e.to_string())
}

fn publish(opts: &ServeOptions, snap: &Snapshot, page: &metrics::Page) {
    if let Some(path) = &opts.stats_json {
        let text = serde_json::to_vec_pretty(&snap.to_json()).unwrap_or_default();
        if let Err(e) = write_atomically(path, &text) {
            eprintln!("xdptcp: cannot write {}: {e}", path.display());
        }
    }
    if opts.metrics.is_some() {
        *page.lock() = snap.to_prometheus();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_past_the_cpus_list_take_the_cpus_it_did_not_name() {
        assert_eq!(worker_cpu(0, &[1], &[0, 1]), Some(1));
        assert_eq!(worker_cpu(1, &[1], &[0, 1]), Some(0), "not CPU 1 again");
        assert_eq!(worker_cpu(2, &[1], &[0, 1, 2]), Some(2));
        assert_eq!(worker_cpu(3, &[1], &[0, 1, 2]), Some(0), "in turn");
        assert_eq!(worker_cpu(2, &[0, 1], &[0, 1]), Some(0), "every CPU named: all of them in turn");
        assert_eq!(worker_cpu(1, &[], &[0, 1]), Some(1));
        assert_eq!(worker_cpu(0, &[], &[]), None, "no affinity known: not pinned");
    }

    #[test]
    fn queue_counts_past_the_programs_64_slots_are_refused_with_what_to_do() {
        assert_eq!(queue_count(Queues::All, 4, "eth0").unwrap(), 4);
        assert_eq!(queue_count(Queues::All, 64, "eth0").unwrap(), 64);
        assert_eq!(queue_count(Queues::Count(2), 128, "eth0").unwrap(), 2);
        let err = |q, n| queue_count(q, n, "eth0").unwrap_err().to_string();
        assert!(err(Queues::All, 96).contains("ethtool -L eth0 combined 64"), "{}", err(Queues::All, 96));
        assert!(err(Queues::Count(65), 128).contains("at most 64"), "{}", err(Queues::Count(65), 128));
        assert!(err(Queues::Count(5), 4).contains("has only 4"));
        assert!(err(Queues::Count(0), 4).contains("at least 1"));
    }

    #[test]
    fn presence_cells_are_at_least_two_per_tuple_a_worker_may_hold_within_the_programs_limits() {
        let d = Config::default();
        assert_eq!(presence_log2(d.max_conns, d.max_time_wait), 24, "defaults: 2^20 + 2^22 tuples, capped at 2^24");
        assert_eq!(presence_log2(1 << 10, 1 << 12), 16, "small bounds still get 64 KiB");
        for (conns, tw) in [(100_000, 200_000), (1 << 19, 1 << 19), (3_000_000, 0)] {
            let cells = 1usize << presence_log2(conns, tw);
            assert!(cells >= 2 * (conns + tw), "{conns} + {tw} tuples: {cells} cells");
            assert!(cells < 8 * (conns + tw), "{conns} + {tw} tuples: {cells} cells, more than needed");
        }
        assert_eq!(presence_log2(usize::MAX, usize::MAX), PresenceLayout::MAX_LOG2);
        assert_eq!(presence_log2(0, 0), 16);
    }
}
