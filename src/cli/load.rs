//! `xdptcp load`: the load generator's command line. Parses and checks the flags, runs `load::run`, prints the
//! table and, as the very last line of stdout, the JSON summary; writes `--json` and `--hgrm` files.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use xdptcp::io::AttachMode;
use xdptcp::load::app::CloseBy;
use xdptcp::load::flood::FloodKind;
use xdptcp::load::report::write_hgrms;
use xdptcp::load::schedule::{Bound, Pace};
use xdptcp::load::tuples::{parse_ports, SrcRange};
use xdptcp::load::{run as run_load, LoadOptions, RequestKind};
use xdptcp::wire::MacAddr;

#[derive(ClapArgs, Debug)]
#[command(group(clap::ArgGroup::new("pace").args(["rate", "concurrency"])))]
#[command(group(clap::ArgGroup::new("bound").args(["duration", "connections"])))]
#[command(group(clap::ArgGroup::new("req").args(["request", "http"])))]
pub struct Args {
    /// Interface to send from (the generator's end of the link).
    #[arg(long)]
    iface: String,
    /// The server, IP:PORT (IPv6 as [ADDR]:PORT).
    #[arg(long, value_parser = parse_target)]
    target: SocketAddr,
    /// Source addresses: one address or a CIDR (they need not be configured anywhere; the server answers by MAC).
    /// Default: the interface's own address.
    #[arg(long, value_parser = parse_src)]
    src: Option<SrcRange>,
    /// Source ports, LO-HI.
    #[arg(long, default_value = "1024-65535", value_parser = parse_port_range)]
    src_ports: std::ops::RangeInclusive<u16>,
    /// Open loop: connections per second, started on schedule whatever the earlier ones do.
    #[arg(long, value_parser = parse_positive)]
    rate: Option<f64>,
    /// Closed loop: connections kept in flight.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    concurrency: Option<u64>,
    /// Seconds of measured load (default 10), after the warm-up.
    #[arg(long, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    duration: Option<f64>,
    /// Measured connections to start in all (instead of --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    connections: Option<u64>,
    /// Seconds of load before measuring (run, not recorded). Default: none.
    #[arg(long, value_parser = crate::cli::secs_arg::parse_secs)]
    warmup: Option<f64>,
    /// Send this many bytes on each connection and expect them echoed back (`serve --app echo`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    request: Option<u64>,
    /// Send one HTTP GET on each connection and read one 200 response.
    #[arg(long)]
    http: bool,
    /// Path of the HTTP GET.
    #[arg(long, default_value = "/", requires = "http")]
    http_path: String,
    /// Who closes first: the client (after the response, or right after the handshake) keeps TIME-WAIT; with
    /// `server` the client waits for the server's FIN. Default: client.
    #[arg(long, value_enum)]
    close: Option<Close>,
    /// Send the handshake's ACK alone before the request or FIN, as kernel clients do: one frame more per
    /// connection, and on a lossy path a lost first segment then costs a retransmission, where otherwise a SYN-cookie
    /// listener resets the segments after it. Default: the request or FIN carries the ACK.
    #[arg(long)]
    separate_ack: bool,
    /// TIME-WAIT duration (2MSL) of the generator's connections, in seconds. Default: 60.
    #[arg(long = "time-wait", value_parser = crate::cli::secs_arg::parse_secs)]
    time_wait: Option<f64>,
    /// Seconds a connection may take from its intended start to its end before it is aborted as a timeout. A
    /// connection the generator reaches with less than half of it left is not sent (`generator_behind`). Default: 5.
    #[arg(long, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    timeout: Option<f64>,
    /// Write the summary as JSON to this file.
    #[arg(long, value_parser = super::path_arg::parse_output_path)]
    json: Option<PathBuf>,
    /// Write connect latency as an HdrHistogram percentile distribution (ms) to this file, and the other
    /// histograms beside it (STEM-response.hgrm, STEM-lifetime.hgrm, STEM-start_lag.hgrm).
    #[arg(long, value_parser = super::path_arg::parse_output_path)]
    hgrm: Option<PathBuf>,
    /// MAC of the next hop (default: the kernel's neighbour table, probed if needed).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: Option<MacAddr>,
    /// Also take the target's replies that carry one 802.1Q tag of these VLAN IDs (1-4094; repeatable or
    /// comma-separated). The generator sends untagged frames; by default tagged replies (but for VID 0, a priority
    /// tag) go to the kernel.
    #[arg(long = "vlan", value_name = "ID", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=4094))]
    vlans: Vec<u16>,
    /// Send a stateless flood from spoofed sources: alone (sources: --src), or beside a --rate/--concurrency load
    /// (sources: --flood-src).
    #[arg(long, value_enum)]
    flood: Option<Flood>,
    /// Spoofed sources of a flood that runs beside a load (must not overlap --src).
    #[arg(long, value_parser = parse_src, requires = "flood")]
    flood_src: Option<SrcRange>,
    /// Flood frames per second at most (default: as fast as the ring takes them).
    #[arg(long, value_parser = parse_positive, requires = "flood")]
    flood_pps: Option<f64>,
    /// Queues to use, one pinned worker each (tuples are partitioned between them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// The first queue to use (with --queues N: queues Q to Q+N-1). A flood on its own queue can run beside a
    /// measured load in another process.
    #[arg(long = "queue", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..64))]
    first_queue: u32,
    /// A flood alone: attach the steering program and count the target's replies to the spoofed sources
    /// (otherwise it only transmits and leaves the interface's XDP hook free).
    #[arg(long, requires = "flood")]
    count_replies: bool,
    /// CPUs to pin the workers to, in queue order, comma-separated (default: from the last CPU down).
    #[arg(long, value_delimiter = ',', value_parser = super::cpu_arg::parse_cpu)]
    cpus: Vec<usize>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    mode: Mode,
    /// Sleep in poll(2) when idle instead of spinning (saves a core at low rates; adds start lag).
    #[arg(long)]
    poll: bool,
    /// Print only the JSON line (no table, no progress).
    #[arg(long)]
    quiet: bool,
    /// Entries per AF_XDP ring (power of two).
    #[arg(long, default_value_t = 4096)]
    ring: u32,
    /// Frames per receive batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    batch: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Close {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Flood {
    Syn,
    Ack,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Native,
    Skb,
}

fn parse_src(s: &str) -> Result<SrcRange, String> {
    SrcRange::parse(s).map_err(|e| e.to_string())
}

fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    parse_ports(s).map_err(|e| e.to_string())
}

/// One unicast server: TCP has no other kind, and a SYN to a group, loopback or unspecified address would only
/// time out (with `--dst-mac` nothing else looks at the target before the run).
fn parse_target(s: &str) -> Result<SocketAddr, String> {
    let t: SocketAddr = s.parse().map_err(|_| format!("{s:?} is not IP:PORT (IPv6 as [ADDR]:PORT)"))?;
    let ip = t.ip();
    let broadcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || broadcast {
        return Err(format!("{ip} is not a unicast address of another host (unspecified, loopback or a group)"));
    }
    if t.port() == 0 {
        return Err("port 0: use a port from 1 to 65535".to_string());
    }
    Ok(t)
}

/// The next hop's MAC: one station, so never a group address (broadcast or multicast) or all zeros, to which a
/// server would send nothing back.
fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mac = s.parse::<MacAddr>().map_err(|e| format!("{s:?}: {e}"))?;
    if mac.is_multicast() || mac.0 == [0; 6] {
        return Err(format!(
            "{s}: the next hop's MAC must be a unicast address (not all zeros, broadcast or multicast)"
        ));
    }
    Ok(mac)
}

/// A rate per second, from one every thousand seconds (below that a schedule's start times overflow into
/// centuries) to a billion.
fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (1e-3..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a rate from 0.001 to 1e9 per second")),
    }
}

impl Args {
    fn options(&self) -> LoadOptions {
        let pace = match (self.rate, self.concurrency) {
            (Some(r), _) => Some(Pace::Rate(r)),
            (None, Some(c)) => Some(Pace::Concurrency(c)),
            // Without either, a flood runs alone; a load needs one of them (checked by `validate`).
            (None, None) => None,
        };
        let bound = match (self.duration, self.connections) {
            (_, Some(n)) => Bound::Count(n),
            (Some(d), None) => Bound::Duration(Duration::from_secs_f64(d)),
            (None, None) => Bound::Duration(Duration::from_secs(if pace.is_none() { 5 } else { 10 })),
        };
        let request = match (self.request, self.http) {
            (Some(n), _) => RequestKind::Bytes(n as usize),
            (None, true) => RequestKind::Http { path: self.http_path.clone() },
            (None, false) => RequestKind::None,
        };
        LoadOptions {
            iface: self.iface.clone(),
            target: self.target,
            src: self.src,
            src_ports: self.src_ports.clone(),
            pace,
            bound,
            warmup: Duration::from_secs_f64(self.warmup.unwrap_or(0.0)),
            request,
            close: match self.close {
                None | Some(Close::Client) => CloseBy::Client,
                Some(Close::Server) => CloseBy::Server,
            },
            separate_ack: self.separate_ack,
            time_wait: Duration::from_secs_f64(self.time_wait.unwrap_or(60.0)),
            timeout: Duration::from_secs_f64(self.timeout.unwrap_or(5.0)),
            dst_mac: self.dst_mac,
            vlans: self.vlans.clone(),
            flood: self.flood.map(|f| match f {
                Flood::Syn => FloodKind::Syn,
                Flood::Ack => FloodKind::Ack,
            }),
            flood_src: self.flood_src,
            flood_pps: self.flood_pps,
            queues: self.queues,
            first_queue: self.first_queue,
            count_replies: self.count_replies,
            cpus: self.cpus.clone(),
            mode: match self.mode {
                Mode::Native => AttachMode::Native,
                Mode::Skb => AttachMode::Skb,
            },
            poll: self.poll,
            progress: !self.quiet && std::io::stdout().is_terminal(),
            ring_size: self.ring,
            tx_frames: self.ring.saturating_mul(2),
            batch: self.batch as usize,
        }
    }
}

impl Args {
    /// The first flag given that shapes or measures a connection, when there will be none: a flood alone
    /// (`--flood` without `--rate` or `--concurrency`) only sends spoofed frames, so `--request`, `--http`,
    /// `--close`, `--separate-ack`, `--time-wait`, `--timeout`, `--warmup` and `--hgrm` would be taken and do
    /// nothing. Beside a load they apply to its connections as usual.
    fn ignored_by_a_flood_alone(&self) -> Option<&'static str> {
        if self.flood.is_none() || self.rate.is_some() || self.concurrency.is_some() {
            return None;
        }
        [
            ("--request", self.request.is_some()),
            ("--http", self.http),
            ("--close", self.close.is_some()),
            ("--separate-ack", self.separate_ack),
            ("--time-wait", self.time_wait.is_some()),
            ("--timeout", self.timeout.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--hgrm", self.hgrm.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// Exits with a usage error like the parser's own (exit status 2, the usage after it): for checks that need
/// more than one flag, made before anything is touched.
fn usage_error(kind: clap::error::ErrorKind, msg: String) -> ! {
    use clap::CommandFactory;
    let mut cli = super::Cli::command();
    cli.build();
    let load = cli.find_subcommand_mut("load").expect("the load subcommand");
    load.error(kind, msg).exit()
}

pub fn run(a: &Args) -> Result<()> {
    if let Some(flag) = a.ignored_by_a_flood_alone() {
        let msg = format!(
            "{flag}: a flood alone (--flood without --rate or --concurrency) opens no connections, so it would be \
             ignored; add --rate or --concurrency to run a load beside the flood"
        );
        usage_error(clap::error::ErrorKind::ArgumentConflict, msg);
    }
    let opts = a.options();
    if let Err(e) = opts.check_sizes() {
        usage_error(clap::error::ErrorKind::ValueValidation, e.to_string());
    }
    let mut outcome = run_load(&opts).with_context(|| format!("load on {} against {}", a.iface, a.target))?;
    // The paths were tried before the run; should one still fail now, the results go to stdout all the same
    // and the error comes after them.
    let mut written = Ok(());
    if let Some(base) = &a.hgrm {
        match write_hgrms(&outcome.hist, base).with_context(|| format!("writing {}", base.display())) {
            Ok(files) => outcome.summary.hgrm = files,
            Err(e) => written = Err(e),
        }
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&outcome.summary).context("encoding the summary")?;
        let result = std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()));
        written = written.and(result);
    }
    if !a.quiet {
        print!("{}", outcome.summary.table());
    }
    println!("{}", outcome.summary.json_line());
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let base = ["load", "--iface", "eth0", "--target", "10.0.0.1:80", "--src", "10.80.0.0/24"];
        crate::cli::parse_args(&[&base[..], extra].concat()).unwrap_or_else(|e| panic!("{extra:?}: {e}"))
    }

    #[test]
    fn connection_flags_are_refused_with_a_flood_alone_and_taken_beside_a_load() {
        // Found by an audit: `--flood syn --http` ran the flood and silently dropped the request.
        for (flags, flag) in [
            (&["--request", "100"][..], "--request"),
            (&["--http"], "--http"),
            (&["--http", "--http-path", "/x"], "--http"),
            (&["--close", "server"], "--close"),
            (&["--close", "client"], "--close"),
            // Found later: these were taken as silently as the three above.
            (&["--time-wait", "2"], "--time-wait"),
            (&["--timeout", "3"], "--timeout"),
            (&["--warmup", "1"], "--warmup"),
            (&["--hgrm", "/tmp/x.hgrm"], "--hgrm"),
            (&["--separate-ack"], "--separate-ack"),
        ] {
            for kind in ["syn", "ack"] {
                let a = parse(&[&["--flood", kind][..], flags].concat());
                assert_eq!(a.ignored_by_a_flood_alone(), Some(flag), "{kind} {flags:?}");
                for pace in [["--rate", "10"], ["--concurrency", "4"]] {
                    let a = parse(&[&["--flood", kind, "--flood-src", "10.81.0.0/24"][..], &pace, flags].concat());
                    assert_eq!(a.ignored_by_a_flood_alone(), None, "beside a load: {kind} {pace:?} {flags:?}");
                }
            }
            assert_eq!(parse(&[&["--rate", "10"][..], flags].concat()).ignored_by_a_flood_alone(), None);
        }
        assert_eq!(parse(&["--flood", "syn"]).ignored_by_a_flood_alone(), None, "a flood alone, nothing ignored");
        let defaults = parse(&["--rate", "1"]).options();
        assert!(matches!(defaults.close, CloseBy::Client), "client closes by default");
        assert_eq!(
            (defaults.time_wait, defaults.timeout, defaults.warmup),
            (Duration::from_secs(60), Duration::from_secs(5), Duration::ZERO),
            "the documented defaults: the real 2MSL, 5 s, no warm-up"
        );
    }
}
