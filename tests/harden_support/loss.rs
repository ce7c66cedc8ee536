//! Random loss on a kernel peer's egress: `netem loss P%` where the kernel has sch_netem, else the tc program of
//! random_loss.bpf.c (built here with clang, attached with tc in the test's namespace), which drops frames the
//! same way netem does: silently, as if the wire lost them.

use std::path::PathBuf;
use std::process::Command;

use crate::serve_support::run_in;

/// Which mechanism drops the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Netem,
    TcBpf,
}

/// Makes `iface` in namespace `ns` lose `percent` % of the frames it sends.
pub fn attach(ns: &str, iface: &str, percent: f64) -> LossKind {
    let pct = format!("{percent}%");
    let (ok, _, err) = run_in(ns, "tc", &["qdisc", "add", "dev", iface, "root", "netem", "loss", &pct]);
    if ok {
        return LossKind::Netem;
    }
    // CONFIG_NET_SCH_NETEM is not set on every kernel (it is not on the one these tests were written on).
    assert!(err.contains("unknown"), "tc netem on {iface}: {err}");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/harden_support/random_loss.bpf.c");
    let obj = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("random_loss_{ns}.o"));
    let ppm = format!("-DLOSS_PPM={}", (percent * 10_000.0).round() as u64);
    let out = Command::new("clang")
        .args(["-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", &ppm, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("clang runs");
    assert!(out.status.success(), "building random_loss.bpf.c: {}", String::from_utf8_lossy(&out.stderr));
    let (ok, _, err) = run_in(ns, "tc", &["qdisc", "add", "dev", iface, "clsact"]);
    assert!(ok, "tc clsact on {iface}: {err}");
    let obj = obj.to_str().expect("utf-8 path");
    let (ok, _, err) =
        run_in(ns, "tc", &["filter", "add", "dev", iface, "egress", "bpf", "da", "obj", obj, "sec", "tc"]);
    assert!(ok, "tc bpf random_loss on {iface}: {err}");
    LossKind::TcBpf
}
