//! Who took the CPU during a gap probe: the CPU time every other thread on the machine ran for while the probe
//! spun, read from /proc/<pid>/task/<tid>/schedstat before and after. On the VMs this project is benched on it
//! names the machine's own tasks behind the gaps (2026-12-06: `kdamond.0`, DAMON's proactive-reclaim thread, ran
//! for 1–2 ms at a time about twice a second; the sandbox's agent for many short slices), so that a tail in the
//! report can be read against them rather than guessed at.

use serde::Serialize;
use std::collections::HashMap;

/// One thread name (threads of the same name summed) and the CPU time it took.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CpuTaker {
    pub name: String,
    pub ms: f64,
    /// Times its threads were put on a CPU.
    pub slices: u64,
}

/// CPU time so far of every thread outside this process: tid → (name, ns on CPU, slices).
pub type Snapshot = HashMap<u64, (String, u64, u64)>;

/// Reads every thread's schedstat; threads that vanish mid-read are skipped.
pub fn snapshot() -> Snapshot {
    let own = std::process::id().to_string();
    let mut out = Snapshot::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let pid = p.file_name();
        let Some(pid) = pid.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && *s != own) else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else { continue };
            let dir = t.path();
            let (Ok(stat), Ok(comm)) =
                (std::fs::read_to_string(dir.join("schedstat")), std::fs::read_to_string(dir.join("comm")))
            else {
                continue;
            };
            if let Some((ns, slices)) = parse_schedstat(&stat) {
                out.insert(tid, (comm.trim().to_string(), ns, slices));
            }
        }
    }
    out
}

/// `run_ns wait_ns slices` → (run_ns, slices).
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace().map(str::parse::<u64>);
    let run = f.next()?.ok()?;
    let _wait = f.next()?.ok()?;
    let slices = f.next()?.ok()?;
    Some((run, slices))
}

/// The `top` names (as `after` has them) that ran longest between `before` and `after` (threads born in between
/// count from zero), longest first; names under 0.1 ms are left out.
pub fn top(before: &Snapshot, after: &Snapshot, top: usize) -> Vec<CpuTaker> {
    let mut by_name: HashMap<&str, (u64, u64)> = HashMap::new();
    for (tid, (name, ns, slices)) in after {
        // Matched by tid alone: a kworker's name follows its current work ("kworker/0:2-events"). A count that
        // went backwards is a tid reused by a new thread, which counts from zero.
        let (ns0, sl0) = before.get(tid).map_or((0, 0), |&(_, ns, sl)| (ns, sl));
        let (dns, dsl) = if *ns >= ns0 { (ns - ns0, slices.saturating_sub(sl0)) } else { (*ns, *slices) };
        let e = by_name.entry(name).or_default();
        e.0 += dns;
        e.1 += dsl;
    }
    let mut v: Vec<CpuTaker> = by_name
        .into_iter()
        .filter(|&(_, (ns, _))| ns >= 100_000)
        .map(|(name, (ns, slices))| CpuTaker { name: name.to_string(), ms: ns as f64 / 1e6, slices })
        .collect();
    v.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.name.cmp(&b.name)));
    v.truncate(top);
    v
}

/// "kdamond.0 9.7 ms in 9 slices, …", or a note that nothing else ran for 0.1 ms.
pub fn describe(takers: &[CpuTaker]) -> String {
    if takers.is_empty() {
        return "no other thread ran for 0.1 ms".to_string();
    }
    takers.iter().map(|t| format!("{} {:.1} ms in {} slices", t.name, t.ms, t.slices)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(u64, &str, u64, u64)]) -> Snapshot {
        entries.iter().map(|&(tid, n, ns, sl)| (tid, (n.to_string(), ns, sl))).collect()
    }

    #[test]
    fn schedstat_text_gives_run_time_and_slices() {
        assert_eq!(parse_schedstat("123456 789 42\n"), Some((123_456, 42)));
        assert_eq!(parse_schedstat("123456 789\n"), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn deltas_are_summed_by_name_ranked_and_small_ones_dropped() {
        let before = snap(&[
            (1, "kworker/0:1", 1_000_000, 10),
            (2, "kdamond.0", 5_000_000, 3),
            (3, "idle", 7, 1),
            (5, "old", 9_000_000, 5),
            (6, "kworker/1:0", 3_000_000, 40),
        ]);
        let after = snap(&[
            (1, "kworker/0:1", 1_300_000, 12),
            (2, "kdamond.0", 14_700_000, 12),
            (3, "idle", 50_007, 2),
            // Born during the probe: counts from zero.
            (4, "kworker/0:1", 250_000, 1),
            // A tid reused by a new thread (its count went backwards) counts from zero too.
            (5, "new", 200_000, 1),
            // Renamed by its current work: still the same thread, only its delta counts.
            (6, "kworker/1:0-events", 3_150_000, 41),
        ]);
        let t = top(&before, &after, 5);
        assert_eq!(
            t,
            vec![
                CpuTaker { name: "kdamond.0".into(), ms: 9.7, slices: 9 },
                CpuTaker { name: "kworker/0:1".into(), ms: 0.55, slices: 3 },
                CpuTaker { name: "new".into(), ms: 0.2, slices: 1 },
                CpuTaker { name: "kworker/1:0-events".into(), ms: 0.15, slices: 1 },
            ]
        );
        assert_eq!(top(&before, &after, 1).len(), 1);
        assert_eq!(describe(&t[..1]), "kdamond.0 9.7 ms in 9 slices");
        assert_eq!(describe(&[]), "no other thread ran for 0.1 ms");
    }

    #[test]
    fn this_machine_has_threads_to_read() {
        assert!(!snapshot().is_empty(), "/proc lists at least the kernel's threads");
    }
}
