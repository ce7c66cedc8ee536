//! Pinning the calling thread to one CPU, with the same warning everywhere when the kernel refuses.
//!
//! Every CPU flag is checked against the process's affinity mask when the command line is read
//! (`cli::cpu_arg`), so a refusal here means the mask changed since (a `taskset` or cgroup change while the
//! program starts). The thread then runs unpinned: it still works, but may share a core it was meant to have
//! alone, which is worth a line on stderr rather than an error.

/// Pins the calling thread to `cpu`. Returns false, after saying so on stderr, if the kernel refused; `who`
/// names the thread in that line ("worker 0", "the load worker", ...).
pub fn pin_current_thread(cpu: usize, who: &str) -> bool {
    let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    if !pinned {
        eprintln!("xdptcp: could not pin {who} to CPU {cpu} (the affinity mask may have changed); it runs unpinned");
    }
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_to_an_allowed_cpu_and_refuses_one_the_machine_does_not_have() {
        std::thread::spawn(|| {
            let ids = core_affinity::get_core_ids().expect("sched_getaffinity works on every Linux");
            let first = ids.first().expect("a process may run on at least one CPU").id;
            assert!(pin_current_thread(first, "the test thread"));
            // Below libc's CPU_SETSIZE (1024), which `CPU_SET` indexes without a check, and beyond this machine.
            assert!(!pin_current_thread(1023, "the test thread"));
        })
        .join()
        .expect("the pinning thread panicked");
    }
}
