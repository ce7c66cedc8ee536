//! `xdptcp serve`: the TCP front end on AF_XDP.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use xdptcp::io::AttachMode;
use xdptcp::load::neigh::{link_up, NeighError};
use xdptcp::runtime::serve::{serve, AppKind, Queues, ServeOptions};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Interface to take the ports over on.
    #[arg(long)]
    iface: String,
    /// Local TCP ports to serve, comma-separated (1-65535).
    #[arg(long, value_delimiter = ',', required = true, value_parser = clap::value_parser!(u16).range(1..))]
    ports: Vec<u16>,
    /// Serve only segments to these local addresses (repeatable); default: every address of this host (its network
    /// namespace) at start.
    #[arg(long = "addr")]
    addrs: Vec<IpAddr>,
    /// Also serve frames with one 802.1Q tag of these VLAN IDs (1-4094; repeatable or comma-separated), replying
    /// on the same VLAN. Default: untagged frames only (and priority tags, VID 0); other tags go to the kernel.
    #[arg(long = "vlan", value_name = "ID", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=4094))]
    vlans: Vec<u16>,
    /// Queues to serve: `all` or a count (one pinned worker each).
    #[arg(long, default_value = "all", value_parser = parse_queues)]
    queues: Queues,
    /// What every connection runs.
    #[arg(long, value_enum, default_value_t = App::Http)]
    app: App,
    /// Body of the `http` app's response.
    #[arg(long, default_value = "Hello from xdptcp\n")]
    http_body: String,
    /// TIME-WAIT duration (2MSL) in seconds.
    #[arg(long = "time-wait", default_value_t = 60.0, value_parser = crate::cli::secs_arg::parse_secs)]
    time_wait: f64,
    /// Live connections per worker at most; beyond it new ones are refused with RST.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 26)))]
    max_conns: u64,
    /// TIME-WAIT entries per worker and address family at most (as Linux's tcp_max_tw_buckets; IPv4 and IPv6
    /// have a table each); beyond it a connection that closes first releases its tuple at once, counted as
    /// time_wait_overflow. About 42 bytes each for IPv4, 66 for IPv6.
    #[arg(long, default_value_t = 1 << 22, value_parser = clap::value_parser!(u64).range(1..=(1 << 26)))]
    max_time_wait: u64,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    mode: Mode,
    /// Spin on the rings instead of sleeping in poll(2) when idle.
    #[arg(long)]
    busy_poll: bool,
    /// Microseconds to keep polling the rings after the last frame before sleeping (0: sleep at once).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    spin_us: u64,
    /// Entries per AF_XDP ring of each queue, and receive frames in its UMEM (a power of two from 64 to 65536).
    /// How long a worker may be kept off its CPU before frames are dropped: at 300 k frames/s, 2048 last 7 ms.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=65536))]
    ring: u32,
    /// Rewrite this file with all counters as JSON every second and at exit.
    #[arg(long, value_parser = super::path_arg::parse_output_path)]
    stats_json: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Load cookie keys from (and save them to) this file, mode 0600.
    #[arg(long)]
    cookie_key_file: Option<PathBuf>,
    /// CPUs to pin the workers to, in queue order, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = super::cpu_arg::parse_cpu)]
    cpus: Vec<usize>,
    /// Seconds live connections may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5.0, value_parser = crate::cli::secs_arg::parse_secs)]
    drain_timeout: f64,
    /// Seconds between summary lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0, value_parser = crate::cli::secs_arg::parse_secs)]
    summary_every: f64,
    /// Stop by itself after this many seconds (as if signalled).
    #[arg(long, value_parser = crate::cli::secs_arg::parse_secs)]
    run_for: Option<f64>,
    /// Fault injection (tests): lose this percentage of frames in each direction on the AF_XDP side.
    #[arg(long, value_parser = parse_percent)]
    inject_loss: Option<f64>,
    /// Reset connections idle (nothing in flight, nothing received) for this many seconds; 0: never.
    #[arg(long, default_value_t = 120.0, value_parser = crate::cli::secs_arg::parse_secs)]
    idle_timeout: f64,
    /// An endpoint-wide cap on RFC 5961 §7 challenge ACKs per second for each worker, on average (each second's
    /// budget drawn in secret from half to one and a half times this). Off by default, as in Linux since 6.0: a
    /// budget shared between connections lets an off-path attacker's own connections see what a guess at a
    /// victim's window cost it (CVE-2016-5696), and a secret size only adds noise. 5 per connection always apply.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    challenge_acks: Option<u32>,
    /// Upper bound of the retransmission timeout in seconds (RFC 6298 asks for at least 60; like Linux's
    /// tcp_rto_max_ms, lower it only where a test must see every retransmission within a short wait).
    #[arg(long, default_value_t = 60.0, value_parser = parse_rto)]
    max_rto: f64,
    /// MiB all send queues of one worker may hold together; peers that stop reading get no more, and under
    /// pressure connections stuck behind a zero window are reset (RFC 6429).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=(1 << 20)))]
    send_memory: u64,
    /// Answer SYNs in the XDP program: it mints the same cookie the worker would and sends the SYN-ACK back with
    /// XDP_TX, so a handshake's first half never waits for a worker (SYNs to tuples a worker holds, and any SYN
    /// the program is not sure about, still go to the worker).
    #[arg(long)]
    xdp_cookies: bool,
    /// Tests only: shift the wall clock of cookie slots by this many seconds (to reach a key rotation soon).
    #[arg(long, hide = true, default_value_t = 0.0, allow_negative_numbers = true)]
    cookie_clock_skew: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum App {
    Close,
    Echo,
    Http,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Native,
    Skb,
}

fn parse_queues(s: &str) -> Result<Queues, String> {
    if s == "all" {
        return Ok(Queues::All);
    }
    match s.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!("`{s}` is not `all` or a queue count of at least 1")),
        Ok(n) => Ok(Queues::Count(n)),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a percentage in 0..=100")),
    }
}

/// At least the minimum RTO (200 ms), at most an hour.
fn parse_rto(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.2..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0.2 to 3600")),
    }
}

pub fn run(a: &Args) -> Result<()> {
    let opts = ServeOptions {
        iface: a.iface.clone(),
        ports: a.ports.clone(),
        addrs: a.addrs.clone(),
        vlans: a.vlans.clone(),
        queues: a.queues,
        app: match a.app {
            App::Close => AppKind::Close,
            App::Echo => AppKind::Echo,
            App::Http => AppKind::Http,
        },
        http_body: a.http_body.as_bytes().to_vec(),
        time_wait: Duration::from_secs_f64(a.time_wait),
        max_conns: a.max_conns as usize,
        max_time_wait: a.max_time_wait as usize,
        mode: match a.mode {
            Mode::Native => AttachMode::Native,
            Mode::Skb => AttachMode::Skb,
        },
        busy_poll: a.busy_poll,
        spin: Duration::from_micros(a.spin_us),
        ring_size: a.ring,
        stats_json: a.stats_json.clone(),
        metrics: a.metrics,
        cookie_key_file: a.cookie_key_file.clone(),
        cpus: a.cpus.clone(),
        drain_timeout: Duration::from_secs_f64(a.drain_timeout),
        summary_every: Duration::from_secs_f64(a.summary_every),
        run_for: a.run_for.map(Duration::from_secs_f64),
        inject_loss: a.inject_loss,
        idle_timeout: (a.idle_timeout > 0.0).then(|| Duration::from_secs_f64(a.idle_timeout)),
        challenge_acks_per_sec: a.challenge_acks,
        max_rto: Duration::from_secs_f64(a.max_rto),
        send_memory: (a.send_memory as usize) << 20,
        xdp_cookies: a.xdp_cookies,
        cookie_clock_skew_ns: if a.cookie_clock_skew.is_finite() {
            (a.cookie_clock_skew.clamp(-1e9, 1e9) * 1e9) as i64
        } else {
            0
        },
    };
    // A server may well start before its link comes up, so this only warns (`load` refuses: its run would time out).
    if let Err(e @ (NeighError::Down { .. } | NeighError::NoCarrier { .. })) = link_up(&a.iface) {
        eprintln!("xdptcp serve: warning: {e}; serving anyway, connections arrive once it is up");
    }
    let snap = serve(&opts).with_context(|| format!("serve on {}", a.iface))?;
    eprintln!("{}", snap.summary_line(0.0));
    eprintln!("xdptcp: stopped cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["serve", "--iface", "eth0", "--ports", "80"];
        crate::cli::parse_args(&[&base[..], extra].concat())
    }

    #[test]
    fn vlan_ids_are_repeatable_or_comma_separated_and_none_by_default() {
        assert!(parse(&[]).unwrap().vlans.is_empty());
        assert_eq!(parse(&["--vlan", "5,6", "--vlan", "4094"]).unwrap().vlans, [5, 6, 4094]);
    }

    #[test]
    fn ring_sizes_outside_64_to_65536_are_refused_by_the_parser() {
        assert_eq!(parse(&[]).unwrap().ring, 2048);
        assert_eq!(parse(&["--ring", "16384"]).unwrap().ring, 16384);
        for bad in ["0", "32", "131072", "x"] {
            let err = parse(&["--ring", bad]).err().unwrap_or_else(|| panic!("--ring {bad} accepted"));
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}: {err}");
        }
    }

    #[test]
    fn vlan_ids_outside_1_to_4094_are_refused() {
        for bad in ["0", "4095", "65536", "x"] {
            let err = parse(&["--vlan", bad]).err().unwrap_or_else(|| panic!("--vlan {bad} accepted"));
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}: {err}");
        }
    }
}
