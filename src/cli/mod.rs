//! The command line of `xdptcp`: one subcommand per job, each in its own file.
//!
//! Subcommands report errors through `anyhow` and exit non-zero; they never panic on bad input or a bad
//! environment. Later issues add `serve`, `load` and `bench` here: a module, a variant of [`Command`] and an arm in
//! [`main`].

mod bench;
mod ceiling;
mod cpu_arg;
mod frame;
mod linux_server;
mod load;
mod path_arg;
mod respond;
mod roles;
mod secs_arg;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// xdptcp: a kernel-bypass TCP stack for Linux on AF_XDP.
#[derive(Parser, Debug)]
#[command(name = "xdptcp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure the raw AF_XDP ring ceiling: a reflector and a generator on a fresh veth pair, one core each.
    Ceiling(ceiling::Args),
    /// Measure xdptcp, the Linux kernel and the ring ceiling side by side on a veth pair (see scripts/bench.sh).
    Bench(bench::Args),
    /// Serve TCP ports of an interface on AF_XDP: stateless SYN cookies, one pinned worker per queue.
    Serve(serve::Args),
    /// Generate connection storms (open or closed loop) or floods over AF_XDP and measure them.
    Load(load::Args),
    /// Run the Linux kernel-TCP reference server (epoll, SO_REUSEPORT, one pinned thread per worker).
    LinuxServer(linux_server::Args),
    /// (internal) Run a raw AF_XDP reflector: swap MACs and send every steered frame back.
    #[command(hide = true)]
    Reflect(roles::ReflectArgs),
    /// (internal) Run a raw AF_XDP frame generator against a reflector.
    #[command(hide = true)]
    Generate(roles::GenerateArgs),
    /// Answer SYNs and FINs with no TCP state (a server that costs nothing), to measure a load generator's own
    /// ceiling for connect + close storms.
    Respond(respond::RespondArgs),
}

/// Parses the command line, runs the subcommand, and turns its error into a message and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Ceiling(args) => ceiling::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Load(args) => load::run(&args),
        Command::LinuxServer(args) => linux_server::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Reflect(args) => roles::reflect_main(&args),
        Command::Generate(args) => roles::generate_main(&args),
        Command::Respond(args) => respond::respond_main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdptcp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Parses one subcommand's arguments alone (`argv[0]` names it, as the program name would), for its tests.
#[cfg(test)]
fn parse_args<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    let cmd = A::augment_args(clap::Command::new("xdptcp"));
    A::from_arg_matches(&cmd.try_get_matches_from(argv)?)
}
