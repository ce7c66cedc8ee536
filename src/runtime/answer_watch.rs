//! Watches that the SYN-ACKs the XDP program sends (`serve --xdp-cookies`) come back as handshake ACKs, and
//! says when to fall back to answering in the workers, and when to try the program again.
//!
//! XDP_TX can fail silently: a veth whose peer has neither an XDP program nor GRO enabled drops every frame
//! sent with XDP_TX (counted only in the driver's statistics), so each client's SYN gets an answer nobody
//! receives and the client never connects. From the server's side that looks like SYN-ACKs answered and no
//! cookie ever returned. A window in which the program answered at least [`AnswerWatch::MIN_ANSWERS`] SYNs and
//! not one cookie came back to any worker is taken as that failure.
//!
//! A SYN flood from spoofed sources, or a port scan, with no legitimate client at all looks the same, so the
//! fallback is not for good: the program is tried again after [`AnswerWatch::RETRY_FIRST`], and after twice as
//! long each time the silence comes back (up to [`AnswerWatch::RETRY_MAX`]). Falling back is merely slower,
//! never wrong, and a client on a path where XDP_TX does fail loses one SYN retransmission per retry.

use std::time::Duration;

/// What the server should do after a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changes.
    Keep,
    /// Stop answering SYNs in XDP; the watch says `Resume` after `retry_in`.
    FallBack { retry_in: Duration },
    /// Answer SYNs in XDP again, and watch anew.
    Resume,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// The program answers; the current window began at `t0` with these counters.
    Watching { t0: Duration, answered: u64, cookies: u64 },
    /// The workers answer until `until`.
    FallenBack { until: Duration },
}

/// The two counters compared, sampled over windows of [`AnswerWatch::WINDOW`], and the retry schedule.
#[derive(Debug)]
pub struct AnswerWatch {
    state: Option<State>,
    /// The wait before the next retry, should the program's answers go unanswered again.
    backoff: Duration,
}

impl Default for AnswerWatch {
    fn default() -> Self {
        AnswerWatch { state: None, backoff: Self::RETRY_FIRST }
    }
}

impl AnswerWatch {
    /// The length of one window: long enough for a client's first SYN retransmission (1 s).
    pub const WINDOW: Duration = Duration::from_secs(3);
    /// SYNs answered in XDP within one window before its silence means anything: a lone client's first SYN and
    /// its retransmission a second later.
    pub const MIN_ANSWERS: u64 = 2;
    /// How long the workers answer after the first fallback before the program is tried again.
    pub const RETRY_FIRST: Duration = Duration::from_secs(30);
    /// The longest wait between retries.
    pub const RETRY_MAX: Duration = Duration::from_secs(30 * 60);

    /// Feeds the SYNs answered in XDP and the cookies the workers saw come back (accepted or not) so far, at
    /// `now` (time since start).
    pub fn observe(&mut self, now: Duration, answered: u64, cookies: u64) -> Verdict {
        let Some(state) = self.state else {
            self.state = Some(State::Watching { t0: now, answered, cookies });
            return Verdict::Keep;
        };
        match state {
            State::FallenBack { until } if now >= until => {
                self.state = Some(State::Watching { t0: now, answered, cookies });
                Verdict::Resume
            }
            State::FallenBack { .. } => Verdict::Keep,
            State::Watching { t0, .. } if now.saturating_sub(t0) < Self::WINDOW => Verdict::Keep,
            State::Watching { answered: a0, cookies: c0, .. } => {
                let judged = answered.saturating_sub(a0) >= Self::MIN_ANSWERS;
                if judged && cookies == c0 {
                    let retry_in = self.backoff;
                    self.backoff = (self.backoff * 2).min(Self::RETRY_MAX);
                    self.state = Some(State::FallenBack { until: now + retry_in });
                    return Verdict::FallBack { retry_in };
                }
                if judged {
                    // Answers and cookies back: the program's SYN-ACKs arrive, whatever came before.
                    self.backoff = Self::RETRY_FIRST;
                }
                self.state = Some(State::Watching { t0: now, answered, cookies });
                Verdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn answers_that_never_come_back_are_flagged_after_one_window() {
        let mut w = AnswerWatch::default();
        assert_eq!(w.observe(s(0), 0, 0), Verdict::Keep);
        assert_eq!(w.observe(s(1), 3, 0), Verdict::Keep, "a window has not passed");
        assert_eq!(w.observe(s(3), 3, 0), Verdict::FallBack { retry_in: AnswerWatch::RETRY_FIRST });
    }

    #[test]
    fn any_cookie_back_or_too_few_answers_is_no_alarm() {
        let mut w = AnswerWatch::default();
        w.observe(s(0), 0, 0);
        assert_eq!(w.observe(s(3), 100, 1), Verdict::Keep, "one cookie came back");
        assert_eq!(w.observe(s(6), 101, 1), Verdict::Keep, "one answer is too few to judge");
        assert_eq!(w.observe(s(9), 101, 1), Verdict::Keep, "an idle server");
        assert!(matches!(w.observe(s(12), 110, 1), Verdict::FallBack { .. }));
    }

    #[test]
    fn a_fallback_is_retried_later_and_later_while_the_silence_returns() {
        // A scan or a spoofed flood at an idle server looks like lost answers: the program is not given up for
        // good, but retried, each time after twice the wait, up to the cap.
        let mut w = AnswerWatch::default();
        let (mut now, mut answered) = (s(0), 0);
        w.observe(now, answered, 0);
        let mut waits = Vec::new();
        for _ in 0..10 {
            now += AnswerWatch::WINDOW;
            answered += 5;
            let Verdict::FallBack { retry_in } = w.observe(now, answered, 0) else { panic!("no fallback at {now:?}") };
            waits.push(retry_in.as_secs());
            assert_eq!(w.observe(now + retry_in - s(1), answered, 0), Verdict::Keep, "too early to retry");
            now += retry_in;
            assert_eq!(w.observe(now, answered, 0), Verdict::Resume);
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800, 1800]);
    }

    #[test]
    fn answers_that_come_back_after_a_retry_reset_the_wait() {
        let mut w = AnswerWatch::default();
        w.observe(s(0), 0, 0);
        assert_eq!(w.observe(s(3), 5, 0), Verdict::FallBack { retry_in: s(30) });
        assert_eq!(w.observe(s(33), 5, 0), Verdict::Resume);
        assert_eq!(w.observe(s(36), 10, 0), Verdict::FallBack { retry_in: s(60) });
        assert_eq!(w.observe(s(96), 10, 7), Verdict::Resume, "cookies the workers minted meanwhile prove nothing");
        assert_eq!(w.observe(s(99), 20, 12), Verdict::Keep, "the program's answers come back now");
        assert_eq!(w.observe(s(102), 30, 12), Verdict::FallBack { retry_in: s(30) }, "the wait starts over");
    }
}
