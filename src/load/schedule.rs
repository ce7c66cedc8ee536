//! When each connection of one worker is due: open loop (a fixed rate, connection k intended at t0 + k/rate
//! whatever happened to the earlier ones) or closed loop (a fixed number in flight), bounded by a duration or a
//! count, with an optional warm-up whose connections are run but not measured.
//!
//! It owns only the arithmetic of intended start times. It never reads a clock (every call takes `now`) and never
//! sleeps: the runner asks, at every turn, for the connections due by then. Latency is measured from the
//! intended time it hands out, so a late start is charged to the connection (no coordinated omission).

use crate::time::Instant;
use std::time::Duration;

/// How connections are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Open loop: this many connections per second in all, started on schedule.
    Rate(f64),
    /// Closed loop: this many connections in flight in all; a new one starts when one ends.
    Concurrency(u64),
}

/// When the measured part of a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Start connections for this long after the warm-up.
    Duration(Duration),
    /// Start this many measured connections in all.
    Count(u64),
}

/// The schedule of worker `worker` of `workers`: open-loop connection numbers `worker, worker + workers, ...`,
/// or its share of the concurrency and of the count in closed loop.
#[derive(Clone, Debug)]
pub struct Schedule {
    pace: Pace,
    bound: Bound,
    t0: Instant,
    measure_from: Instant,
    worker: u64,
    workers: u64,
    /// Open loop: the next global connection number this worker starts.
    next_k: u64,
    /// Open loop: global connection numbers below this are started (warm-up plus count), if bounded by count.
    k_end: Option<u64>,
    /// Closed loop: this worker's concurrency and remaining measured starts.
    concurrency: u64,
    measured_left: Option<u64>,
    /// Connections this worker has started, and how many of them are measured.
    pub started: u64,
    pub started_measured: u64,
    stopped: bool,
}

/// One connection to start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// When it should have started: the origin of its latencies.
    pub intended: Instant,
    /// Started after the warm-up: its latencies and outcome count.
    pub measured: bool,
}

impl Schedule {
    /// A schedule whose first connection is intended at `t0` and whose measurements begin `warmup` later.
    pub fn new(pace: Pace, bound: Bound, t0: Instant, warmup: Duration, worker: u32, workers: u32) -> Self {
        let workers = u64::from(workers.max(1));
        let worker = u64::from(worker) % workers;
        let measure_from = t0 + warmup;
        let share = |total: u64| total / workers + u64::from(worker < total % workers);
        let (k_end, concurrency, measured_left) = match (pace, bound) {
            (Pace::Rate(rate), Bound::Count(n)) => {
                // Connections intended before the end of the warm-up are the warm-up's: find the first one that
                // is not, with the same arithmetic as `intended` so that rounding cannot disagree.
                let at = |k: u64| t0 + Duration::from_nanos((k as f64 * 1e9 / rate) as u64);
                let mut warm = (warmup.as_secs_f64() * rate) as u64;
                while at(warm) < measure_from {
                    warm += 1;
                }
                while warm > 0 && at(warm - 1) >= measure_from {
                    warm -= 1;
                }
                (Some(warm.saturating_add(n)), 0, None)
            }
            (Pace::Rate(_), Bound::Duration(_)) => (None, 0, None),
            (Pace::Concurrency(c), Bound::Count(n)) => {
                // A worker with no share of the concurrency (fewer in flight than workers) starts nothing, so
                // the count is split among the workers that have one: a share of it here would never be done.
                let active = workers.min(c).max(1);
                let left = if worker < active { n / active + u64::from(worker < n % active) } else { 0 };
                (None, share(c), Some(left))
            }
            (Pace::Concurrency(c), Bound::Duration(_)) => (None, share(c), None),
        };
        Schedule {
            pace,
            bound,
            t0,
            measure_from,
            worker,
            workers,
            next_k: worker,
            k_end,
            concurrency,
            measured_left,
            started: 0,
            started_measured: 0,
            stopped: false,
        }
    }

    /// When measurements begin.
    pub fn measure_from(&self) -> Instant {
        self.measure_from
    }

    /// Open loop: when global connection `k` is intended to start.
    #[inline]
    pub fn intended(&self, k: u64) -> Instant {
        match self.pace {
            Pace::Rate(rate) => self.t0 + Duration::from_nanos((k as f64 * 1e9 / rate) as u64),
            Pace::Concurrency(_) => self.t0,
        }
    }

    /// The next connection to start at `now`, if one is due; `in_flight` is this worker's live count (closed
    /// loop only). Each call that returns `Some` counts one start: call it until it says `None`.
    #[inline]
    pub fn next_due(&mut self, now: Instant, in_flight: u64) -> Option<Due> {
        if self.stopped {
            return None;
        }
        let due = match self.pace {
            Pace::Rate(_) => {
                if self.k_end.is_some_and(|end| self.next_k >= end) {
                    self.stopped = true;
                    return None;
                }
                let intended = self.intended(self.next_k);
                if let Bound::Duration(d) = self.bound {
                    if intended >= self.measure_from + d {
                        self.stopped = true;
                        return None;
                    }
                }
                if intended > now {
                    return None;
                }
                self.next_k += self.workers;
                Due { intended, measured: intended >= self.measure_from }
            }
            Pace::Concurrency(_) => {
                if let Bound::Duration(d) = self.bound {
                    if now >= self.measure_from + d {
                        self.stopped = true;
                        return None;
                    }
                }
                if self.measured_left == Some(0) {
                    self.stopped = true;
                    return None;
                }
                if in_flight >= self.concurrency {
                    return None;
                }
                let measured = now >= self.measure_from;
                if measured {
                    if let Some(left) = self.measured_left.as_mut() {
                        *left -= 1;
                    }
                }
                Due { intended: now, measured }
            }
        };
        self.started += 1;
        self.started_measured += u64::from(due.measured);
        Some(due)
    }

    /// Closed loop: takes back a start that [`next_due`](Self::next_due) just handed out and that could not be
    /// made (no free source tuple); it is handed out again by a later call, as if it had never been asked for.
    pub fn give_back(&mut self, due: Due) {
        debug_assert!(self.is_closed_loop(), "an open loop's starts have their time: they are never given back");
        self.started -= 1;
        if due.measured {
            self.started_measured -= 1;
            if let Some(left) = self.measured_left.as_mut() {
                *left += 1;
            }
        }
    }

    /// A fixed number in flight (`--concurrency`), not a rate.
    pub fn is_closed_loop(&self) -> bool {
        matches!(self.pace, Pace::Concurrency(_))
    }

    /// No connection will ever be due again (the bound is reached, or [`Schedule::stop`] was called).
    pub fn finished(&self) -> bool {
        self.stopped
    }

    /// Stops starting connections (a signal, or a fatal error).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Open loop: when the next connection is due (`None` in closed loop or when finished).
    pub fn next_time(&self) -> Option<Instant> {
        match self.pace {
            Pace::Rate(_) if !self.stopped => Some(self.intended(self.next_k)),
            _ => None,
        }
    }

    /// The rate this worker offers (its share), or `None` in closed loop.
    pub fn offered_rate(&self) -> Option<f64> {
        match self.pace {
            Pace::Rate(r) => Some(r / self.workers as f64),
            Pace::Concurrency(_) => None,
        }
    }

    /// Which worker this is.
    pub fn worker(&self) -> u64 {
        self.worker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_secs(10);

    fn drain(s: &mut Schedule, now: Instant, in_flight: u64) -> Vec<Due> {
        std::iter::from_fn(|| s.next_due(now, in_flight)).collect()
    }

    #[test]
    fn open_loop_connection_k_is_intended_at_t0_plus_k_over_rate() {
        let mut s = Schedule::new(Pace::Rate(1000.0), Bound::Count(10), T0, Duration::ZERO, 0, 1);
        assert_eq!(s.intended(0), T0);
        assert_eq!(s.intended(3), T0 + Duration::from_millis(3));
        assert!(drain(&mut s, T0 - Duration::from_nanos(1), 0).is_empty());
        // 2.5 ms in: connections 0, 1 and 2 are due at once (a batch), each with its own intended time.
        let due = drain(&mut s, T0 + Duration::from_micros(2500), 0);
        let intended: Vec<_> = due.iter().map(|d| d.intended).collect();
        assert_eq!(intended, (0..3).map(|k| T0 + Duration::from_millis(k)).collect::<Vec<_>>());
        assert!(due.iter().all(|d| d.measured));
        assert_eq!(s.next_time(), Some(T0 + Duration::from_millis(3)));
    }

    #[test]
    fn open_loop_ignores_how_many_are_in_flight() {
        let mut s = Schedule::new(Pace::Rate(100.0), Bound::Count(5), T0, Duration::ZERO, 0, 1);
        assert_eq!(drain(&mut s, T0 + Duration::from_secs(1), 1_000_000).len(), 5, "late, but all five start");
        assert!(s.finished());
    }

    #[test]
    fn open_loop_by_duration_stops_at_the_end_of_the_measured_window() {
        let mut s =
            Schedule::new(Pace::Rate(1000.0), Bound::Duration(Duration::from_millis(100)), T0, Duration::ZERO, 0, 1);
        assert_eq!(drain(&mut s, T0 + Duration::from_secs(5), 0).len(), 100);
        assert!(s.finished() && s.next_time().is_none());
    }

    #[test]
    fn warm_up_connections_run_but_are_not_measured() {
        let warm = Duration::from_millis(20);
        let mut s = Schedule::new(Pace::Rate(1000.0), Bound::Count(30), T0, warm, 0, 1);
        let due = drain(&mut s, T0 + Duration::from_secs(1), 0);
        assert_eq!(due.len(), 50);
        assert_eq!(due.iter().filter(|d| d.measured).count(), 30);
        assert!(due.iter().all(|d| d.measured == (d.intended >= T0 + warm)));
        assert_eq!((s.started, s.started_measured), (50, 30));
    }

    #[test]
    fn workers_interleave_their_share_of_the_rate() {
        let mut a = Schedule::new(Pace::Rate(1000.0), Bound::Count(9), T0, Duration::ZERO, 0, 2);
        let mut b = Schedule::new(Pace::Rate(1000.0), Bound::Count(9), T0, Duration::ZERO, 1, 2);
        let later = T0 + Duration::from_secs(1);
        let ta: Vec<_> = drain(&mut a, later, 0).iter().map(|d| d.intended).collect();
        let tb: Vec<_> = drain(&mut b, later, 0).iter().map(|d| d.intended).collect();
        assert_eq!((ta.len(), tb.len()), (5, 4));
        assert_eq!(ta[1], T0 + Duration::from_millis(2));
        assert_eq!(tb[0], T0 + Duration::from_millis(1));
        assert_eq!(a.offered_rate(), Some(500.0));
    }

    #[test]
    fn closed_loop_keeps_the_concurrency_and_counts_measured_starts() {
        let mut s = Schedule::new(Pace::Concurrency(4), Bound::Count(6), T0, Duration::ZERO, 0, 1);
        let mut live = 0;
        while s.next_due(T0, live).is_some() {
            live += 1;
        }
        assert_eq!(live, 4);
        live -= 2;
        while s.next_due(T0, live).is_some() {
            live += 1;
        }
        assert_eq!(s.started, 6);
        assert!(s.next_due(T0, 0).is_none() && s.finished());
    }

    #[test]
    fn closed_loop_by_duration_and_split_between_workers() {
        let mut a =
            Schedule::new(Pace::Concurrency(3), Bound::Duration(Duration::from_secs(1)), T0, Duration::ZERO, 0, 2);
        let b = Schedule::new(Pace::Concurrency(3), Bound::Duration(Duration::from_secs(1)), T0, Duration::ZERO, 1, 2);
        assert_eq!((a.concurrency, b.concurrency), (2, 1));
        assert!(a.next_due(T0 + Duration::from_millis(999), 0).is_some());
        assert!(a.next_due(T0 + Duration::from_secs(1), 0).is_none() && a.finished());
        assert_eq!(a.offered_rate(), None);
    }

    #[test]
    fn closed_loop_with_fewer_in_flight_than_workers_gives_the_count_to_the_workers_that_run() {
        // 2 in flight over 4 workers, 11 connections: workers 0 and 1 take 6 and 5, workers 2 and 3 none, and
        // those finish at once instead of waiting for starts they can never make.
        let mut all = Vec::new();
        for w in 0..4 {
            let mut s = Schedule::new(Pace::Concurrency(2), Bound::Count(11), T0, Duration::ZERO, w, 4);
            let mut n = 0;
            while s.next_due(T0, 0).is_some() {
                n += 1;
            }
            assert!(s.finished(), "worker {w} is done after {n}");
            all.push((s.concurrency, n));
        }
        assert_eq!(all, [(1, 6), (1, 5), (0, 0), (0, 0)]);
    }

    #[test]
    fn a_closed_loop_start_given_back_is_handed_out_again_and_counted_once() {
        let mut s = Schedule::new(Pace::Concurrency(2), Bound::Count(3), T0, Duration::ZERO, 0, 1);
        let first = s.next_due(T0, 0).unwrap();
        s.give_back(first);
        assert_eq!((s.started, s.started_measured), (0, 0));
        assert_eq!(drain(&mut s, T0, 0).len(), 3, "the count is whole again: three starts, not two");
        assert!(s.finished());
    }

    #[test]
    fn fractional_rates_and_stop() {
        let mut s = Schedule::new(Pace::Rate(0.5), Bound::Count(3), T0, Duration::ZERO, 0, 1);
        assert_eq!(s.intended(1), T0 + Duration::from_secs(2));
        assert_eq!(drain(&mut s, T0 + Duration::from_secs(3), 0).len(), 2);
        s.stop();
        assert!(s.finished() && s.next_due(T0 + Duration::from_secs(100), 0).is_none());
    }
}
