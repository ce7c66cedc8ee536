//! `xdptcp linux-server`: the Linux kernel-TCP reference server (epoll, SO_REUSEPORT, one pinned thread per
//! worker), with the same apps as `serve`. Prints `ready` on stdout once listening, its counters at exit, and as
//! the very last line of stdout one JSON object with them.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;
use xdptcp::io::signal;
use xdptcp::linux::{serve, ServerApp, ServerOptions};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Address and port to listen on (IPv6 as [ADDR]:PORT).
    #[arg(long)]
    listen: SocketAddr,
    /// Worker threads, each with its own SO_REUSEPORT listener (default: one per --cpus entry, else 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// CPUs to pin the threads to, comma-separated (thread i on the i-th, round robin).
    #[arg(long, value_delimiter = ',', value_parser = super::cpu_arg::parse_cpu)]
    cpus: Vec<usize>,
    /// What every connection runs.
    #[arg(long, value_enum, default_value_t = App::Http)]
    app: App,
    /// Body of the `http` app's response.
    #[arg(long, default_value = "Hello from xdptcp\n")]
    http_body: String,
    /// Listen backlog (capped by net.core.somaxconn).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(i32).range(1..))]
    backlog: i32,
    /// Stop by itself after this many seconds (as if signalled).
    #[arg(long, value_parser = crate::cli::secs_arg::parse_positive_secs)]
    run_for: Option<f64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum App {
    Close,
    Echo,
    Http,
}

pub fn run(a: &Args) -> Result<()> {
    let threads = a.threads.map_or(a.cpus.len().max(1), |t| t as usize);
    let opts = ServerOptions {
        listen: a.listen,
        threads,
        cpus: a.cpus.clone(),
        app: match a.app {
            App::Close => ServerApp::Close,
            App::Echo => ServerApp::Echo,
            App::Http => ServerApp::Http,
        },
        backlog: a.backlog,
        run_for: a.run_for.map(Duration::from_secs_f64),
        http_body: a.http_body.as_bytes().to_vec(),
    };
    let stop = signal::install_stop_handler()?;
    let started = std::time::Instant::now();
    let stats = serve(&opts, stop, || {
        eprintln!("xdptcp linux-server: listening on {} with {threads} thread(s), app {:?}", a.listen, a.app);
        println!("ready");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("linux-server on {}", a.listen))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "xdptcp linux-server: {:.1} s, accepted {} ({:.0}/s), closed {}, errors {}, accept errors {}, {} bytes in, {} \
         out, {} HTTP responses, {} open at exit",
        secs,
        stats.accepted,
        stats.accepted as f64 / secs.max(1e-9),
        stats.closed,
        stats.errors,
        stats.accept_errors,
        stats.bytes_in,
        stats.bytes_out,
        stats.http_responses,
        stats.open_at_exit
    );
    let mut json = serde_json::to_value(stats).context("encoding the counters")?;
    json["seconds"] = serde_json::json!(secs);
    println!("{json}");
    Ok(())
}
