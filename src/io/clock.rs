//! CLOCK_MONOTONIC as a number: the clock `bpf_ktime_get_ns()` reads, so that the runtime and the steering
//! program can agree on "now" to the nanosecond.

/// Nanoseconds of CLOCK_MONOTONIC (the clock of `std::time::Instant` and of `bpf_ktime_get_ns`).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call; CLOCK_MONOTONIC always exists on
    // Linux, so the call cannot fail (if it somehow did, `ts` stays zero and the result is 0, never UB).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_moves_forward_with_std_instant() {
        let a = super::monotonic_ns();
        let s = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::monotonic_ns();
        assert!(b >= a + s.elapsed().as_nanos() as u64 - 1_000_000);
    }
}
