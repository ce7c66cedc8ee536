//! Bad values on the command line of every subcommand: each is refused by the parser, before anything is
//! attached or built, with one error line that names the flag and a failing exit, never a panic. Needs no
//! privileges (nothing gets far enough to ask for them), so it runs everywhere.
#![cfg(feature = "af-xdp")]

use std::process::Command;

/// Runs `xdptcp ARGS` and checks the refusal.
fn refused(args: &[&str], needle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdptcp")).args(args).output().expect("run xdptcp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "xdptcp {args:?} must fail:\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "a usage error exits with 2: {args:?}\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "no panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line for {args:?}:\n{stderr}");
    assert!(errors[0].contains(needle), "the error names {needle:?}: {}", errors[0]);
    assert!(out.stdout.is_empty(), "nothing on stdout: {args:?}");
}

#[test]
fn seconds_that_a_duration_cannot_hold_are_refused_by_every_subcommand() {
    // NaN, infinity and overflow make `Duration::from_secs_f64` panic: each must stop at the parser.
    for v in ["nan", "inf", "1e30", "-1"] {
        // `--flag=value`, so that "-1" is a value and not taken for a flag.
        let f = |flag: &str| format!("{flag}={v}");
        let (duration, warmup, step, timeout) = (f("--duration"), f("--warmup"), f("--step"), f("--timeout"));
        let (time_wait, run_for) = (f("--time-wait"), f("--run-for"));
        let load = ["load", "--iface", "lo", "--target", "10.0.0.1:80", "--rate", "10"];
        refused(&["respond", "--iface", "lo", "--port", "80", &duration], "--duration");
        refused(&["reflect", "--iface", "lo", &duration], "--duration");
        refused(&["ceiling", &duration], "--duration");
        refused(&["ceiling", &warmup], "--warmup");
        refused(&["bench", &step], "--step");
        refused(&[&load[..], &[timeout.as_str()]].concat(), "--timeout");
        refused(&[&load[..], &[duration.as_str()]].concat(), "--duration");
        refused(&["serve", "--iface", "lo", "--ports", "80", &time_wait], "--time-wait");
        refused(&["linux-server", "--listen", "127.0.0.1:0", &run_for], "--run-for");
    }
    refused(&["ceiling", "--duration", "0"], "--duration");
    refused(&["bench", "--step", "0"], "--step");
}

#[test]
fn result_files_that_cannot_be_written_are_refused_before_anything_runs() {
    // Found by an audit: `load --json` on a missing directory ran its whole load, then failed and lost the
    // results; `serve --stats-json` there served on, complaining every second, and exited 0.
    let load = ["load", "--iface", "lo", "--target", "10.0.0.1:80", "--rate", "10"];
    let dir = std::env::temp_dir();
    let dir = dir.to_str().expect("utf-8 temp dir");
    for (flag, path, needle) in [
        ("--json", "/nonexistent-xdptcp-dir/r.json", "no directory"),
        ("--hgrm", "/nonexistent-xdptcp-dir/r.hgrm", "no directory"),
        ("--json", dir, "is a directory"),
    ] {
        refused(&[&load[..], &[flag, path]].concat(), needle);
    }
    refused(
        &["serve", "--iface", "lo", "--ports", "80", "--stats-json", "/nonexistent-xdptcp-dir/s.json"],
        "--stats-json",
    );
}

#[test]
fn source_ranges_with_unanswerable_addresses_inside_and_malformed_port_ranges_are_refused() {
    let load = ["load", "--iface", "lo", "--target", "10.0.0.1:80", "--rate", "10"];
    for (src, needle) in [("0.0.0.0/0", "0.0.0.0/8"), ("128.0.0.0/1", "224.0.0.0/4"), ("10.0.0.0/33", "--src")] {
        refused(&[&load[..], &["--src", src]].concat(), needle);
    }
    for ports in ["1-65536", "a-b", "5-"] {
        refused(&[&load[..], &["--src-ports", ports]].concat(), &format!("{ports:?} is not a source port range"));
    }
}

#[test]
fn targets_and_next_hop_macs_that_no_server_answers_from_are_refused() {
    // Found by an audit: with --dst-mac (which skips the route and neighbour checks) a load to a group address,
    // or to a group or all-zero MAC, ran to the end with every connection timed out, and exited 0.
    for target in ["224.0.0.1:80", "255.255.255.255:80", "[ff02::1]:80", "127.0.0.1:80", "[::1]:80", "0.0.0.0:80"] {
        refused(&["load", "--iface", "lo", "--target", target, "--rate", "10"], "not a unicast address");
    }
    refused(&["load", "--iface", "lo", "--target", "10.0.0.1:0", "--rate", "10"], "port 0");
    let load = ["load", "--iface", "lo", "--target", "10.0.0.1:80", "--rate", "10", "--dst-mac"];
    for mac in ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", "00:00:00:00:00:00"] {
        refused(&[&load[..], &[mac]].concat(), "unicast");
    }
}

#[test]
fn port_zero_is_refused_by_the_raw_roles() {
    // Found by an audit: `respond --port 0` attached and ran, steering a port no segment can have.
    refused(&["respond", "--iface", "lo", "--port", "0"], "--port");
    refused(&["reflect", "--iface", "lo", "--port", "0"], "--port");
}

#[test]
fn bench_names_that_are_not_one_plain_file_name_are_refused() {
    // Found by an audit: `bench --name` went into two paths unchecked (`../x` wrote outside the results
    // directory; an empty name wrote `bench/results/.json`).
    for name in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
        // `--step=0` as well, refused after it: should the name ever get through, no bench starts.
        refused(&["bench", &format!("--name={name}"), "--step=0"], "--name");
    }
}

#[test]
fn bench_on_one_cpu_for_both_sides_is_refused_before_it_builds_anything() {
    // Found by an audit: `--server-cpu 0 --client-cpu 0` was taken, and every figure would have been the
    // generator and the server taking turns on one core. Checked before the namespaces, so no privileges needed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdptcp"))
        .args(["bench", "--quick", "--server-cpu", "0", "--client-cpu", "0", "--out", "/proc/xdptcp-no"])
        .output()
        .expect("run xdptcp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("two different CPUs") && !stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn rates_a_schedule_cannot_hold_are_refused() {
    // Found by an audit: `--rate 1e-300` was taken, and its second start time saturated about 584 years out.
    let load = ["load", "--iface", "lo", "--target", "10.0.0.1:80"];
    for v in ["1e-300", "0.0009", "0", "2e9"] {
        refused(&[&load[..], &["--rate", v]].concat(), "0.001 to 1e9");
    }
}

#[test]
fn connection_flags_that_a_flood_alone_would_ignore_are_refused() {
    // Found by an audit: `load --flood syn --http` (or --request, --close, --time-wait, --timeout, --warmup,
    // --hgrm) ran the flood and silently dropped the flag. An interface that does not exist: should the refusal
    // ever be lost, nothing floods anything.
    let flood = ["load", "--iface", "xdptcp-none0", "--target", "10.0.0.1:80", "--src", "10.80.0.0/24", "--flood"];
    for kind in ["syn", "ack"] {
        for (extra, flag) in [
            (&["--http"][..], "--http"),
            (&["--request", "64"], "--request"),
            (&["--close", "server"], "--close"),
            (&["--time-wait", "2"], "--time-wait"),
            (&["--timeout", "3"], "--timeout"),
            (&["--warmup", "1"], "--warmup"),
            (&["--hgrm", "/tmp/flood.hgrm"], "--hgrm"),
        ] {
            refused(&[&flood[..], &[kind], extra].concat(), flag);
        }
    }
}

#[test]
fn a_load_batch_that_leaves_no_send_frames_for_new_connections_is_refused() {
    // Found by a review: `--ring 64` with the default batch of 64 kept all 128 send frames back for replies,
    // started nothing and never ended. An interface that does not exist: should the refusal be lost, nothing runs.
    let load = ["load", "--iface", "xdptcp-none0", "--target", "10.0.0.1:80", "--src", "10.80.0.1", "--rate", "10"];
    refused(&[&load[..], &["--ring", "64"]].concat(), "--batch 64 is too large");
    refused(&[&load[..], &["--ring", "128", "--batch", "65"]].concat(), "--batch 64 or less");
}

#[test]
fn a_concurrency_past_what_the_workers_connection_tables_hold_is_refused() {
    // Found by a review: `--concurrency 5000000` on one queue ran, and every start past 4 194 304 failed at once.
    let load = ["load", "--iface", "xdptcp-none0", "--target", "10.0.0.1:80", "--src", "10.80.0.0/16"];
    refused(&[&load[..], &["--concurrency", "5000000"]].concat(), "--queues 2");
}
