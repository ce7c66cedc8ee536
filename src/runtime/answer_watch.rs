//! Watches that the SYN-ACKs the XDP program sends (`serve --xdp-cookies`) come back as handshake ACKs, and
//! says when they do not, so that the server can fall back to answering in its workers.
//!
//! XDP_TX can fail silently: a veth whose peer has neither an XDP program nor GRO enabled drops every frame
//! sent with XDP_TX (counted only in the driver's statistics), so each client's SYN gets an answer nobody
//! receives and the client never connects. From the server's side that looks like SYN-ACKs answered and no
//! cookie ever returned. A window in which the program answered at least [`AnswerWatch::MIN_ANSWERS`] SYNs and
//! not one cookie came back to any worker is taken as that failure. A SYN flood from spoofed sources with no
//! legitimate client at all looks the same; falling back is then merely slower, never wrong.

use std::time::Duration;

/// The two counters compared, sampled over windows of [`AnswerWatch::WINDOW`].
#[derive(Debug, Default)]
pub struct AnswerWatch {
    start: Option<(Duration, u64, u64)>,
}

impl AnswerWatch {
    /// The length of one window: long enough for a client's first SYN retransmission (1 s).
    pub const WINDOW: Duration = Duration::from_secs(3);
    /// SYNs answered in XDP within one window before its silence means anything: a lone client's first SYN and
    /// its retransmission a second later.
    pub const MIN_ANSWERS: u64 = 2;

    /// Feeds the SYNs answered in XDP and the cookies the workers saw come back (accepted or not) so far, at
    /// `now` (time since start). True when the last window shows answers and no cookie at all.
    pub fn silent(&mut self, now: Duration, answered: u64, cookies_back: u64) -> bool {
        let Some((t0, a0, c0)) = self.start else {
            self.start = Some((now, answered, cookies_back));
            return false;
        };
        if now.saturating_sub(t0) < Self::WINDOW {
            return false;
        }
        self.start = Some((now, answered, cookies_back));
        answered.saturating_sub(a0) >= Self::MIN_ANSWERS && cookies_back == c0
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
        assert!(!w.silent(s(0), 0, 0));
        assert!(!w.silent(s(1), 3, 0), "a window has not passed");
        assert!(w.silent(s(3), 2, 0));
    }

    #[test]
    fn any_cookie_back_or_too_few_answers_is_no_alarm() {
        let mut w = AnswerWatch::default();
        w.silent(s(0), 0, 0);
        assert!(!w.silent(s(3), 100, 1), "one cookie came back");
        assert!(!w.silent(s(6), 101, 1), "one answer is too few to judge");
        assert!(!w.silent(s(9), 101, 1), "an idle server");
        assert!(w.silent(s(12), 110, 1));
    }
}
