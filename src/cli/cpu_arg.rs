//! `--cpus` and the other CPU flags: a CPU this process may not run on is refused on the command line, rather than
//! leaving a worker unpinned (and sharing a core it was meant to have alone) with at most a warning.

/// Parses one CPU number and checks it against the CPUs this process may run on (its affinity mask, which a
/// container or `taskset` may have narrowed). When the mask cannot be read, any number is taken.
pub fn parse_cpu(s: &str) -> Result<usize, String> {
    let cpu: usize = s.trim().parse().map_err(|_| format!("`{s}` is not a CPU number"))?;
    let allowed: Option<Vec<usize>> = core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect());
    check(cpu, allowed.as_deref())
}

fn check(cpu: usize, allowed: Option<&[usize]>) -> Result<usize, String> {
    match allowed {
        Some(ids) if !ids.contains(&cpu) => {
            Err(format!("CPU {cpu} is not one this process may run on (it may use {})", ranges(ids)))
        }
        _ => Ok(cpu),
    }
}

/// "0-3,6" for [0, 1, 2, 3, 6].
fn ranges(ids: &[usize]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        out.push(if ids[i] == start { start.to_string() } else { format!("{start}-{}", ids[i]) });
        i += 1;
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_outside_the_affinity_mask_are_refused_with_the_ones_allowed() {
        assert_eq!(check(1, Some(&[0, 1])), Ok(1));
        assert_eq!(check(7, None), Ok(7));
        let e = check(99, Some(&[0, 1, 2, 3, 6])).unwrap_err();
        assert_eq!(e, "CPU 99 is not one this process may run on (it may use 0-3,6)");
        assert_eq!(ranges(&[5, 1, 0, 2, 9, 10]), "0-2,5,9-10");
        assert_eq!(ranges(&[]), "none");
    }

    #[test]
    fn non_numbers_are_refused_and_an_allowed_cpu_is_taken() {
        assert!(parse_cpu("x").unwrap_err().contains("not a CPU number"));
        assert!(parse_cpu("-1").is_err());
        let first = core_affinity::get_core_ids().and_then(|ids| ids.first().map(|c| c.id)).unwrap_or(0);
        assert_eq!(parse_cpu(&first.to_string()), Ok(first));
        assert!(parse_cpu("100000").is_err() || core_affinity::get_core_ids().is_none());
    }
}
