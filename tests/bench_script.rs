//! `scripts/bench.sh` checks its own arguments before it installs or builds anything, and still hands every
//! option of `xdptcp bench` and `xdptcp ceiling` through. The script runs as a copy beside stand-ins for
//! `install-deps.sh` and `cargo` that only note that they ran, so nothing is installed or built; needs no
//! privileges.
#![cfg(feature = "af-xdp")]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// A copy of the script in `DIR/scripts/`, with `install-deps.sh` beside it and `cargo` first on the `PATH`, each
/// appending a line to `DIR/ran` and failing (3 and 4), so a run that got past the checks stops there.
struct Sandbox {
    dir: PathBuf,
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// What the stand-ins saw: `install` and `cargo ARGS` lines.
    ran: String,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!("xdptcp-bench-sh-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["scripts", "bin", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("sandbox directory");
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench.sh");
        std::fs::copy(script, dir.join("scripts/bench.sh")).expect("copy bench.sh");
        let ran = dir.join("ran");
        let stub = |path: PathBuf, line: &str, code: u8| {
            let text = format!("#!/bin/bash\necho \"{line}\" >> '{}'\nexit {code}\n", ran.display());
            std::fs::write(&path, text).expect("write a stand-in");
            Command::new("chmod").arg("+x").arg(&path).status().expect("chmod");
        };
        stub(dir.join("scripts/install-deps.sh"), "install", 3);
        stub(dir.join("bin/cargo"), "cargo $*", 4);
        Sandbox { dir }
    }

    fn run(&self, args: &[&str]) -> Ran {
        let _ = std::fs::remove_file(self.dir.join("ran"));
        let out = Command::new("bash")
            .arg(self.dir.join("scripts/bench.sh"))
            .args(args)
            // An empty home: the script puts $HOME/.cargo/bin first on the PATH when it has one.
            .env("HOME", self.dir.join("home"))
            .env("PATH", format!("{}:/usr/bin:/bin", self.dir.join("bin").display()))
            .output()
            .expect("run bench.sh");
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ran: std::fs::read_to_string(self.dir.join("ran")).unwrap_or_default(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The long options of `xdptcp SUB --help` but `--help`, each with whether it takes a value.
fn options_of(sub: &str) -> BTreeSet<(String, bool)> {
    let out = Command::new(env!("CARGO_BIN_EXE_xdptcp")).args([sub, "--help"]).output().expect("run xdptcp");
    assert!(out.status.success(), "xdptcp {sub} --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    help.lines()
        .filter_map(|l| {
            let mut words = l.trim_start().trim_start_matches("-h, ").split_whitespace();
            let flag = words.next().filter(|w| w.starts_with("--") && *w != "--help")?;
            Some((flag.to_string(), words.next().is_some_and(|w| w.starts_with('<'))))
        })
        .collect()
}

/// The options the script says bench `args[0]` takes, from its refusal of an unknown one.
fn listed_by_script(sandbox: &Sandbox, args: &[&str]) -> BTreeSet<(String, bool)> {
    let r = sandbox.run(&[args, &["--not-an-option"]].concat());
    let list = r.stderr.lines().find_map(|l| l.split_once("it takes:")).map(|(_, l)| l.to_string());
    let list = list.unwrap_or_else(|| panic!("no list of options in:\n{}", r.stderr));
    let words: Vec<&str> = list.split_whitespace().collect();
    let mut set = BTreeSet::new();
    for (i, w) in words.iter().enumerate().filter(|(_, w)| w.starts_with("--")) {
        set.insert((w.to_string(), words.get(i + 1) == Some(&"VALUE")));
    }
    set
}

#[test]
fn unknown_options_are_refused_before_anything_is_installed_or_built() {
    // Found by an audit: `bench.sh --bogus` ran install-deps and a release build, and only then did
    // `xdptcp bench` refuse the flag.
    let sb = Sandbox::new("unknown");
    for args in [
        &["--bogus"][..],
        &["--quick", "--bogus"],
        &["quick", "--name", "x", "--bogus"],
        &["all", "stray"],
        &["--quick=1"],
        &["ceiling", "--bogus"],
        &["ceiling", "--duration", "2", "--frame_bytes"],
        &["core", "--bogus"],
        &["core", "--quick", "--name=x"],
    ] {
        let r = sb.run(args);
        assert_eq!(r.code, Some(2), "{args:?} exits 2:\n{}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or_default();
        let bad = args.last().expect("an argument").split('=').next().expect("a name");
        assert!(first.contains("unknown option") && first.contains(bad), "{args:?} names {bad}:\n{}", r.stderr);
        assert!(r.stderr.contains("Usage: scripts/bench.sh"), "{args:?} shows the usage:\n{}", r.stderr);
        assert!(r.ran.is_empty(), "{args:?} installed or built before refusing:\n{}", r.ran);
        assert!(r.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    let r = sb.run(&["--name"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.starts_with("bench.sh: --name needs a value") && r.ran.is_empty(), "{}", r.stderr);
    let r = sb.run(&["nosuchbench"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("unknown bench 'nosuchbench'") && r.ran.is_empty(), "{}", r.stderr);
}

#[test]
fn help_exits_zero_with_the_usage_and_runs_nothing() {
    let sb = Sandbox::new("help");
    for args in [&["-h"][..], &["--help"], &["core", "--help"]] {
        let r = sb.run(args);
        assert_eq!(r.code, Some(0), "{args:?}:\n{}", r.stderr);
        assert!(r.stdout.contains("Usage: scripts/bench.sh") && r.stderr.is_empty(), "{args:?}:\n{}", r.stdout);
        assert!(r.ran.is_empty(), "{args:?} ran {}", r.ran);
    }
    // The subcommands' own help is theirs to print, after the build.
    let r = sb.run(&["ceiling", "--help"]);
    assert_eq!((r.code, r.ran.as_str()), (Some(4), "cargo build --locked --release --quiet\n"));
}

#[test]
fn every_option_of_the_benches_gets_through_and_the_script_lists_exactly_those() {
    let sb = Sandbox::new("through");
    let bench = options_of("bench");
    let ceiling = options_of("ceiling");
    assert!(bench.contains(&("--name".into(), true)) && ceiling.contains(&("--skb-mode".into(), false)));
    // Both ways: an option added to `xdptcp bench` must be added to the script, and one removed, removed.
    assert_eq!(listed_by_script(&sb, &[]), bench, "the full bench's options");
    assert_eq!(listed_by_script(&sb, &["quick"]), bench, "the quick bench's options");
    assert_eq!(listed_by_script(&sb, &["ceiling"]), ceiling, "the ceiling bench's options");
    assert_eq!(listed_by_script(&sb, &["core"]), BTreeSet::from([("--quick".to_string(), false)]));
    let through = |args: &[&str], expect_code: i32, expect_ran: &str| {
        let r = sb.run(args);
        assert_eq!(r.code, Some(expect_code), "{args:?} got past the checks:\n{}", r.stderr);
        assert!(r.ran.starts_with(expect_ran), "{args:?} ran {:?}", r.ran);
    };
    for (name, opts, code, ran) in
        [("all", &bench, 3, "install"), ("quick", &bench, 3, "install"), ("ceiling", &ceiling, 4, "cargo build")]
    {
        for (flag, value) in opts.iter() {
            if name == "quick" && flag == "--quick" {
                continue;
            }
            let (spaced, joined) = (vec![name, flag, "1"], format!("{flag}=1"));
            through(if *value { &spaced } else { &spaced[..2] }, code, ran);
            if *value {
                through(&[name, &joined], code, ran);
                if name == "all" {
                    // The full bench's options may also come first, without its name.
                    through(&[flag, "1"], code, ran);
                }
            }
        }
    }
    through(&[], 3, "install");
    through(&["--quick"], 3, "install");
    through(&["core"], 4, "cargo bench --locked --quiet --bench core --");
    through(&["core", "--quick"], 4, "cargo bench --locked --quiet --bench core -- --quick");
}
