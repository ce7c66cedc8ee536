//! Runs the scapy scripts of tests/scapy/ inside a namespace and reads their JSON verdicts.
//!
//! Every script prints one JSON object as its last line of stdout: `{"ok": bool, "cases": [{"name", "ok",
//! "detail", ...}], ...}` and exits 0 only when every case passed. Nothing is installed at test time: the
//! interpreter must already import scapy (scripts/install-deps.sh installs python3-scapy).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::VethPair;

/// Unowned addresses of the test subnet that the probes send from.
pub const SPOOF4: &str = "10.77.0.200";
pub const SPOOF6: &str = "fd77::200";

/// Gives the spoofed addresses static neighbour entries (the peer's MAC) in the server namespace, so that a
/// kernel listener there can answer them; the peer's own kernel never claims them.
pub fn prepare_spoofing(topo: &VethPair) {
    let mac_b = xdptcp::io::topology::mac_text(&topo.mac_b);
    for addr in [SPOOF4, SPOOF6] {
        let (ok, _, err) = super::run_in(
            &topo.ns_a,
            "ip",
            &["neigh", "replace", addr, "lladdr", &mac_b, "dev", &topo.if_a, "nud", "permanent"],
        );
        assert!(ok, "static neighbour {addr}: {err}");
    }
}

/// Runs `script` from the peer namespace of `topo` with the common arguments (xdptcp on
/// [`super::PORT`], the Linux reference on `linux_port`) plus `extra`; its stderr goes to the test's output.
pub fn run_against(topo: &VethPair, script: &str, linux_port: u16, extra: &[&str]) -> Outcome {
    let mac = xdptcp::io::topology::mac_text;
    let (client_mac, server_mac) = (mac(&topo.mac_b), mac(&topo.mac_a));
    let (s4, s6) = (topo.ip4_a.to_string(), topo.ip6_a.to_string());
    let (xp, lp) = (super::PORT.to_string(), linux_port.to_string());
    #[rustfmt::skip]
    let mut args = vec![
        "--iface", &topo.if_b, "--client-mac", &client_mac, "--server-mac", &server_mac,
        "--server4", &s4, "--server6", &s6, "--spoof4", SPOOF4, "--spoof6", SPOOF6,
        "--xdp-port", &xp, "--linux-port", &lp,
    ];
    args.extend_from_slice(extra);
    let out = run(&topo.ns_b, script, &args);
    eprintln!("{script}:\n{}", out.stderr);
    out
}

/// The directory of the Python scripts.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("scapy")
}

/// A Python 3 that imports scapy: `$XDPTCP_PYTHON`, else Debian's /usr/bin/python3 (where python3-scapy
/// installs), else the first `python3` on PATH. Panics with the fix when none does.
pub fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("XDPTCP_PYTHON").into_iter().collect();
        candidates.extend(["/usr/bin/python3".to_string(), "python3".to_string()]);
        for c in &candidates {
            let ok = Command::new(c).args(["-c", "import scapy.all"]).output().is_ok_and(|o| o.status.success());
            if ok {
                return c.clone();
            }
        }
        panic!("no Python 3 with scapy among {candidates:?}: run scripts/install-deps.sh (python3-scapy)");
    })
}

/// What a script reported.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub report: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Names and details of the failed cases.
    pub fn failures(&self) -> Vec<String> {
        self.report["cases"]
            .as_array()
            .map(|cases| {
                cases.iter().filter(|c| c["ok"] != true).map(|c| format!("{}: {}", c["name"], c["detail"])).collect()
            })
            .unwrap_or_default()
    }

    /// Panics with every failed case (and the script's stderr) unless all passed.
    pub fn assert_all_passed(&self, what: &str) {
        let fails = self.failures();
        assert!(
            self.success && fails.is_empty() && self.report["ok"] == true,
            "{what}: scapy cases failed (exit ok: {}):\n  {}\nall cases (stderr):\n{}",
            self.success,
            fails.join("\n  "),
            self.stderr
        );
    }

    /// The case named `name`.
    pub fn case(&self, name: &str) -> Value {
        self.report["cases"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no case {name} in {}", self.report))
    }
}

/// Runs `tests/scapy/<script> args...` in namespace `ns` (unbuffered) and parses its last stdout line.
pub fn run(ns: &str, script: &str, args: &[&str]) -> Outcome {
    let path = dir().join(script);
    // -B: no __pycache__ in the source tree.
    let out = Command::new("ip")
        .args(["netns", "exec", ns, python(), "-u", "-B"])
        .arg(&path)
        .args(args)
        .output()
        .expect("ip netns exec python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
    Outcome { success: out.status.success(), report, stdout, stderr }
}

/// Linux reference listeners (tests/scapy/ref_server.py ARGS) in a namespace, killed on drop.
pub struct Reference(std::process::Child);

impl Reference {
    /// Starts `ref_server.py ARGS` in `ns`; returns once it listens.
    pub fn start_in(ns: &str, args: &[&str]) -> Reference {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, python(), "-u", "-B"])
            .arg(dir().join("ref_server.py"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("ref_server.py starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ref_server.py output");
        assert_eq!(line.trim(), "ready", "ref_server.py did not start");
        Reference(child)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
