//! The transmission control block: what one live connection remembers, and its RFC 6298 RTT estimator.
//!
//! A TCB is kept small on purpose (the issue bounds an established IPv4 connection at 128 bytes with its table
//! entry, index and timer): sequence state, windows (the peer's and our RFC 5681 congestion window), RTT, a
//! handle to the peer's MAC and VLAN (shared by every connection with the same next hop), one to its send queue
//! and a word for the app. Anything rarely needed lives elsewhere (out-of-order data, a SACK scoreboard: two-byte
//! handles into pools) or is derived.

use crate::tcp::config::Config;
use crate::tcp::next_hops::Hop;
use crate::tcp::sendbuf;
use crate::tcp::seq::SeqNum;
use crate::time::duration_nanos;
use std::time::Duration;

/// The states of RFC 9293 §3.3.2. LISTEN is stateless here (SYN cookies) and TIME-WAIT lives in its own table,
/// so a TCB in the connection table is always in one of SYN-SENT ..= LAST-ACK.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// RFC 9293 "synchronized" states: a SYN has been exchanged both ways.
    #[inline]
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }

    /// We have sent our FIN (it occupies the sequence number just before SND.NXT).
    #[inline]
    pub fn fin_sent(self) -> bool {
        matches!(self, State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait)
    }

    /// The peer's FIN has been received: no more data can arrive.
    #[inline]
    pub fn peer_fin_received(self) -> bool {
        matches!(self, State::CloseWait | State::Closing | State::LastAck | State::TimeWait)
    }

    /// Data from the peer is still accepted (RFC 9293 §3.10.7.4, seventh check).
    #[inline]
    pub fn accepts_data(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

/// RFC 6298 §5.7: the RTO after a handshake whose SYN had to be retransmitted (no RTT sample), in µs.
pub const FALLBACK_RTO_US: u32 = 3_000_000;

/// Bits of [`Tcb::flags`].
pub mod flags {
    /// RFC 7323 timestamps are in use on this connection.
    pub const TS: u8 = 1 << 0;
    /// SACK-permitted was exchanged: our ACKs carry SACK blocks for what we hold out of order.
    pub const SACK: u8 = 1 << 1;
    /// The app has closed: send FIN once the queue is drained.
    pub const FIN_QUEUED: u8 = 1 << 2;
    /// A segment is being timed for an RTT sample (Karn: never a retransmitted one).
    pub const RTT_TIMING: u8 = 1 << 3;
    /// The peer's SYN carried Window Scale: a SYN-ACK of ours (simultaneous open) may carry it too (RFC 7323 §2.2).
    pub const PEER_WSCALE: u8 = 1 << 4;
    /// The app asked for an abort: send RST and forget the connection.
    pub const ABORT: u8 = 1 << 5;
    /// Something arrived that must be acknowledged.
    pub const ACK_NOW: u8 = 1 << 6;
    /// A retransmission is repairing a loss until `Tcb::recover` is acknowledged: partial ACKs retransmit the next
    /// segment at once, or with a scoreboard (`Tcb::tx_board`) every ACK sends what RFC 6675 says is lost, and new
    /// data as RFC 6937 allows.
    pub const RECOVERY: u8 = 1 << 7;
}

/// Where a connection stands with its RFC 8985 §7 tail loss probe (see `lifecycle::rearm`, `timers` and `input`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum TailProbe {
    /// No probe is scheduled or out: the timer, if armed, is the RTO or another wait.
    Idle,
    /// The timer is the probe timeout (PTO).
    Armed,
    /// The probe is spent (it sent new data, or nothing when no buffer was free): the timer is the RTO until an
    /// ACK of new data.
    Spent,
    /// The probe sent the last segment again (TLPRxtOut); it ends at `Tcb::recover` (TLPHighRxt). The timer is the
    /// RTO, and the ACKs that follow tell whether the probe repaired a loss (§7.4).
    Resent,
}

/// RFC 8985 §7.2 WCDelAckT: how long a receiver may delay the ACK of a lone segment.
pub const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// One live connection.
#[derive(Clone, Debug)]
pub struct Tcb {
    pub snd_una: SeqNum,
    pub snd_nxt: SeqNum,
    /// The segment sequence number of the last window update (RFC 9293 §3.10.7.4). Its SND.WL2 is not kept: it
    /// would always equal SND.UNA (see `input`).
    pub snd_wl1: SeqNum,
    pub rcv_nxt: SeqNum,
    /// The right edge of the receive window we have advertised. It never moves left (RFC 9293 §3.8.6.2.2:
    /// a window may close as data arrives but is never shrunk).
    pub rcv_adv: SeqNum,
    /// The peer's window, scaled.
    pub snd_wnd: u32,
    /// The largest window the peer ever offered (RFC 5961 §5.2 MAX.SND.WND).
    pub max_snd_wnd: u32,
    /// RFC 5681 congestion window and slow start threshold, in bytes. `cwnd` is 0 until the connection is
    /// synchronized ([`Tcb::start_congestion_control`] sets the initial window once the MSS is known).
    pub cwnd: u32,
    pub ssthresh: u32,
    /// RFC 7323 TS.Recent.
    pub ts_recent: u32,
    /// RFC 6298 smoothed RTT and variance, in microseconds; `srtt_us == 0` before the first sample.
    pub srtt_us: u32,
    pub rttvar_us: u32,
    /// The segment being timed ends at this sequence number; it was sent at `rtt_start_us`. While nothing is in
    /// flight, `rtt_start_us` holds instead when the last ACK emptied the flight: RFC 5681 §4.1's idle clock
    /// (see [`Tcb::restart_after_idle`]), kept here rather than in a field of its own.
    pub rtt_seq: SeqNum,
    pub rtt_start_us: u32,
    /// RFC 6582 `recover` (RFC 6675 RecoveryPoint): SND.NXT when the current recovery began, by three duplicate
    /// ACKs or a timeout. The recovery lasts until it is acknowledged; only ACKs below it are partial. Between
    /// recoveries it is SND.UNA, or where the last recovery's retransmissions beyond its end stop.
    pub recover: SeqNum,
    /// The send queue (see [`sendbuf`]).
    pub tx: u32,
    /// Out-of-order data held (see [`crate::tcp::reassembly`]).
    pub rx_held: crate::tcp::reassembly::Handle,
    /// What the peer has SACKed while a loss is repaired (see [`crate::tcp::scoreboard`]).
    pub tx_board: crate::tcp::scoreboard::Handle,
    /// The app's word.
    pub user: u32,
    /// Challenge-ACK accounting: the second in which `challenge_count` were sent.
    pub challenge_epoch: u16,
    /// Largest segment we send.
    pub mss: u16,
    /// The peer's MAC and VLAN (see [`crate::tcp::next_hops`]).
    pub hop: Hop,
    pub state: State,
    pub flags: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// Consecutive timeouts without progress: what gives up on the peer (an ACK of new data resets it).
    pub retries: u8,
    /// The RTO backoff exponent (RFC 6298 §5.5): timeouts since the last RTT sample. Karn's algorithm keeps it
    /// when retransmitted data is acknowledged, since that ACK gives no sample; only a sample (or the §5.7
    /// re-initialisation after the handshake) brings the RTO back down.
    pub backoff: u8,
    pub challenge_count: u8,
    pub tlp: TailProbe,
    /// Duplicate ACKs in a row (RFC 5681 fast retransmit). While the peer's window is zero it counts window probes
    /// left unanswered instead: those alone bound how long we probe (RFC 9293 §3.8.6.1).
    pub dup_acks: u8,
}

impl Tcb {
    /// A TCB in `state`, sending to `hop`, with sequence state set up by the caller.
    pub fn new(state: State, hop: Hop) -> Tcb {
        Tcb {
            snd_una: SeqNum(0),
            snd_nxt: SeqNum(0),
            snd_wl1: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            snd_wnd: 0,
            max_snd_wnd: 0,
            cwnd: 0,
            ssthresh: u32::MAX,
            ts_recent: 0,
            srtt_us: 0,
            rttvar_us: 0,
            rtt_seq: SeqNum(0),
            rtt_start_us: 0,
            recover: SeqNum(0),
            tx: sendbuf::NONE,
            rx_held: crate::tcp::reassembly::NONE,
            tx_board: crate::tcp::scoreboard::NONE,
            user: 0,
            challenge_epoch: 0,
            mss: 536,
            hop,
            state,
            flags: 0,
            snd_wscale: 0,
            rcv_wscale: 0,
            retries: 0,
            backoff: 0,
            challenge_count: 0,
            dup_acks: 0,
            tlp: TailProbe::Idle,
        }
    }

    #[inline]
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    #[inline]
    pub fn set(&mut self, f: u8) {
        self.flags |= f;
    }
    #[inline]
    pub fn clear(&mut self, f: u8) {
        self.flags &= !f;
    }

    /// Largest payload per segment: the MSS less the options every segment carries (RFC 6691).
    #[inline]
    pub fn send_mss(&self) -> u32 {
        let options = if self.has(flags::TS) { 12 } else { 0 };
        u32::from(self.mss).saturating_sub(options).max(1)
    }

    /// The receive window the peer was last told of, from RCV.NXT to the advertised right edge.
    #[inline]
    pub fn rcv_window(&self) -> u32 {
        if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        }
    }

    /// The window field of our next non-SYN segment.
    #[inline]
    pub fn window_field(&self) -> u16 {
        (self.rcv_window() >> self.rcv_wscale).min(0xffff) as u16
    }

    /// Bytes in flight: sent and not yet acknowledged (SYN and FIN count as one each).
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.snd_nxt - self.snd_una
    }

    /// RFC 6928 §2: the initial window, IW = min(10·SMSS, max(2·SMSS, 14600)).
    #[inline]
    pub fn initial_window(&self) -> u32 {
        let smss = self.send_mss();
        (10 * smss).min((2 * smss).max(14_600))
    }

    /// The connection is synchronized and its MSS known: open the congestion window. ssthresh starts "arbitrarily
    /// high" (RFC 5681 §3.1). `syn_lost`: our SYN had to be retransmitted, and then the initial window "MUST be
    /// one segment" (RFC 5681 §3.1, RFC 6928 §2). A stateless listener cannot know whether its SYN-ACK was lost.
    pub fn start_congestion_control(&mut self, syn_lost: bool) {
        self.cwnd = if syn_lost { self.send_mss() } else { self.initial_window() };
        self.ssthresh = u32::MAX;
        self.recover = self.snd_una;
    }

    /// Outside a recovery: the last recovery resent data beyond its end that is still unacknowledged, up to
    /// `recover` (see `input::end_recovery`).
    #[inline]
    pub fn resent_beyond_una(&self) -> bool {
        self.recover > self.snd_una && self.recover <= self.snd_nxt
    }

    /// RFC 8985 §7.2: whether a tail loss probe may be scheduled (due [`Tcb::pto_ns`] from now): probes are on,
    /// SACK is in use (the ACK a probe draws must say what arrived), no recovery runs, no probe is out, no earlier
    /// retransmission beyond SND.UNA is pending, no duplicate ACK has come (the peer holds data past a hole, so
    /// the probe's target would be wrong: what it needs is the fast retransmit those ACKs lead to, or the RTO),
    /// an RTT has been measured and the peer's window is open.
    pub fn probe_allowed(&self, cfg: &Config) -> bool {
        cfg.tail_loss_probes
            && self.has(flags::SACK)
            && !self.has(flags::RECOVERY)
            && matches!(self.tlp, TailProbe::Idle | TailProbe::Armed)
            && !self.resent_beyond_una()
            && self.dup_acks == 0
            && self.srtt_us > 0
            && self.snd_wnd > 0
            && self.in_flight() > 0
    }

    /// RFC 8985 §7.2 PTO = 2·SRTT, plus the worst-case delayed ACK when a single segment is in flight (its ACK
    /// may be held back) and otherwise 2 ms, as Linux adds; never later than the RTO, which it replaces (the
    /// probe comes first, without a timeout's collapse of cwnd). In nanoseconds, like [`Tcb::rto_ns`].
    pub fn pto_ns(&self, cfg: &Config) -> u64 {
        // A FIN takes one more sequence number than its segment's data.
        let extra =
            if self.in_flight() <= self.send_mss() + 1 { WORST_CASE_DELAYED_ACK } else { Duration::from_millis(2) };
        (2_000 * u64::from(self.srtt_us) + duration_nanos(extra)).min(self.rto_ns(cfg))
    }

    /// RFC 8985 §7.4.2: a tail loss probe repaired a loss, which calls for the congestion response a fast
    /// recovery would have made (RFC 5681 §3.2 with the window of the moment): ssthresh = max(cwnd / 2, 2·SMSS),
    /// and cwnd no larger.
    pub fn reduce_after_probe_repair(&mut self) {
        self.ssthresh = (self.cwnd / 2).max(2 * self.send_mss());
        self.cwnd = self.cwnd.min(self.ssthresh);
    }

    /// How far past SND.UNA we may send: the smaller of the peer's window and the congestion window. The
    /// congestion window always lets one full segment out, so a connection with nothing in flight is never held
    /// back by it (only the peer's window can close, and that is the persist timer's business).
    #[inline]
    pub fn send_window(&self) -> u32 {
        self.snd_wnd.min(self.cwnd.max(self.send_mss()))
    }

    /// RFC 5681 §3.1: `acked` bytes of new data were acknowledged. Slow start while cwnd < ssthresh, by at most
    /// one SMSS per ACK (equation 2; the standard, not RFC 3465's L = 2·SMSS); congestion avoidance above it, by
    /// SMSS·SMSS/cwnd per ACK (equation 3), at least one byte. Never wraps.
    pub fn on_new_ack(&mut self, acked: u32) {
        let smss = self.send_mss();
        let grow = if self.cwnd < self.ssthresh {
            acked.min(smss)
        } else {
            ((u64::from(smss) * u64::from(smss)) / u64::from(self.cwnd.max(1))).max(1) as u32
        };
        self.cwnd = self.cwnd.saturating_add(grow);
    }

    /// RFC 5681 §4.1: a connection that "has not sent data in an interval exceeding the retransmission timeout"
    /// SHOULD start again from no more than the restart window, RW = min(IW, cwnd): the window it grew
    /// describes a path that may have changed since. Called with nothing in flight, before sending new data.
    /// The idle time is measured from when the flight emptied, which is no earlier than the last send, so this
    /// restarts only connections the RFC says to (a few it would restart too, idle just over an RTO since their
    /// last send but not since their last ACK, keep their window). Idle spells are measured on a 32-bit
    /// microsecond clock: one of more than 71 minutes may read as short. Returns whether cwnd was cut.
    pub fn restart_after_idle(&mut self, now_us: u32, cfg: &Config) -> bool {
        let rw = self.initial_window();
        if self.cwnd <= rw {
            return false;
        }
        let idle = u64::from(now_us.wrapping_sub(self.rtt_start_us));
        if idle <= self.rto_ns(cfg) / 1_000 {
            return false;
        }
        self.cwnd = rw;
        true
    }

    /// RFC 5681 §3.1 equation 4: on a loss, ssthresh = max(FlightSize / 2, 2·SMSS).
    pub fn halve_ssthresh(&mut self) {
        self.ssthresh = (self.in_flight() / 2).max(2 * self.send_mss());
    }

    /// Our SYN has been acknowledged: take the handshake's RTT sample, or, when the SYN (or SYN-ACK) had to be
    /// retransmitted so that Karn's rule leaves no sample, fall back to a 3 s RTO until the first sample
    /// (RFC 6298 §5.7: "the RTO MUST be re-initialized to 3 seconds when data transmission begins").
    pub fn handshake_rtt(&mut self, now_us: u32) {
        if self.has(flags::RTT_TIMING) {
            self.clear(flags::RTT_TIMING);
            self.rtt_sample(now_us.wrapping_sub(self.rtt_start_us));
        } else {
            if self.srtt_us == 0 {
                // With SRTT still zero, `rto` reads 4·RTTVAR as the fallback; the first real sample replaces both.
                self.rttvar_us = FALLBACK_RTO_US / 4;
            }
            // §5.7: the RTO is re-initialised (not kept backed off) once data transmission begins.
            self.backoff = 0;
        }
    }

    /// The retransmission timer expired: one more timeout toward giving up, and the RTO doubles (§5.5).
    #[inline]
    pub fn note_timeout(&mut self) {
        self.retries = self.retries.saturating_add(1);
        self.backoff = self.backoff.saturating_add(1);
    }

    /// RFC 6298 §2.2/2.3: fold in one RTT measurement.
    pub fn rtt_sample(&mut self, r_us: u32) {
        let r = r_us.max(1);
        // A measurement ends the backoff: the RTO is computed afresh (§5, after 5.7: it may "collapse").
        self.backoff = 0;
        if self.srtt_us == 0 {
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            let delta = self.srtt_us.abs_diff(r);
            self.rttvar_us = ((3 * u64::from(self.rttvar_us) + u64::from(delta)) / 4) as u32;
            self.srtt_us = ((7 * u64::from(self.srtt_us) + u64::from(r)) / 8) as u32;
        }
    }

    /// The current RTO (RFC 6298 §2, §5.5 backoff), clamped to the configured bounds.
    pub fn rto(&self, cfg: &Config) -> Duration {
        Duration::from_nanos(self.rto_ns(cfg))
    }

    /// [`Tcb::rto`] in nanoseconds. Every timer re-arm computes it (or the probe timeout, which is capped by
    /// it), so the arithmetic stays in integers: done in `Duration`s, which normalise seconds and nanoseconds at
    /// each step, the two took over twice the instructions (1.6 % of the core bench's lifecycles, callgrind).
    pub fn rto_ns(&self, cfg: &Config) -> u64 {
        let k_rttvar = 4_000 * u64::from(self.rttvar_us);
        let base = if self.srtt_us == 0 {
            // Before any sample: the initial RTO, or the §5.7 fallback noted in RTTVAR by `handshake_rtt`.
            duration_nanos(cfg.initial_rto).max(k_rttvar)
        } else {
            1_000 * u64::from(self.srtt_us) + k_rttvar.max(duration_nanos(cfg.timer_tick))
        };
        let max = duration_nanos(cfg.max_rto);
        let base = base.clamp(duration_nanos(cfg.min_rto), max);
        base.saturating_mul(1 << self.backoff.min(16)).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcb_stays_compact() {
        // The per-connection budget (128 B with key, index and timer) leaves 88 B for the TCB.
        assert!(core::mem::size_of::<Tcb>() <= 88, "Tcb is {} bytes", core::mem::size_of::<Tcb>());
    }

    #[test]
    fn rfc6298_2_2_first_sample_sets_srtt_and_half_rttvar() {
        let mut t = Tcb::new(State::Established, 0);
        t.rtt_sample(100_000);
        assert_eq!((t.srtt_us, t.rttvar_us), (100_000, 50_000));
        let cfg = Config { min_rto: Duration::from_millis(1), ..Config::default() };
        assert_eq!(t.rto(&cfg), Duration::from_micros(300_000));
    }

    #[test]
    fn rfc6298_2_3_later_samples_are_smoothed() {
        let mut t = Tcb::new(State::Established, 0);
        t.rtt_sample(100_000);
        t.rtt_sample(200_000);
        // RTTVAR = 3/4 * 50 ms + 1/4 * |100 - 200| ms = 62.5 ms; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms.
        assert_eq!(t.rttvar_us, 62_500);
        assert_eq!(t.srtt_us, 112_500);
    }

    #[test]
    fn rfc6298_2_1_initial_rto_is_one_second_and_backs_off() {
        let mut t = Tcb::new(State::SynSent, 0);
        let cfg = Config::default();
        assert_eq!(t.rto(&cfg), Duration::from_secs(1));
        t.backoff = 3;
        assert_eq!(t.rto(&cfg), Duration::from_secs(8));
        t.backoff = 10;
        assert_eq!(t.rto(&cfg), cfg.max_rto);
    }

    #[test]
    fn rfc6298_5_7_rto_falls_back_to_three_seconds_after_a_retransmitted_syn() {
        let cfg = Config::default();
        let mut t = Tcb::new(State::SynSent, 0);
        // The SYN was retransmitted (RTT timing cleared by Karn's rule): no sample, a 3 s RTO.
        t.handshake_rtt(1_000);
        assert_eq!(t.rto(&cfg), Duration::from_secs(3));
        // The first real sample replaces the fallback.
        t.rtt_sample(100_000);
        assert_eq!(t.rto(&cfg), Duration::from_micros(300_000));
        // A timed SYN gives a sample at once.
        let mut t = Tcb::new(State::SynSent, 0);
        t.set(flags::RTT_TIMING);
        t.rtt_start_us = 1_000;
        t.handshake_rtt(51_000);
        assert_eq!((t.srtt_us, t.rttvar_us), (50_000, 25_000));
    }

    #[test]
    fn rfc6298_2_4_rto_respects_the_lower_bound() {
        let mut t = Tcb::new(State::Established, 0);
        t.rtt_sample(20);
        assert_eq!(t.rto(&Config::default()), Duration::from_millis(200));
    }

    #[test]
    fn rfc6298_2_and_5_5_the_integer_rto_is_the_duration_formula() {
        // `rto_ns` does in nanoseconds what RFC 6298 says in seconds; this reference does it in `Duration`s.
        fn reference(t: &Tcb, cfg: &Config) -> Duration {
            let base = if t.srtt_us == 0 {
                cfg.initial_rto.max(Duration::from_micros(4 * u64::from(t.rttvar_us)))
            } else {
                Duration::from_micros(u64::from(t.srtt_us))
                    + Duration::from_micros(4 * u64::from(t.rttvar_us)).max(cfg.timer_tick)
            };
            let base = base.clamp(cfg.min_rto, cfg.max_rto);
            base.saturating_mul(1u32 << t.backoff.min(16)).min(cfg.max_rto)
        }
        let odd = Config {
            initial_rto: Duration::new(1, 7),
            min_rto: Duration::from_nanos(1_500),
            max_rto: Duration::new(90, 123_456_789),
            timer_tick: Duration::from_nanos(999_999),
            ..Config::default()
        };
        let mut t = Tcb::new(State::Established, 0);
        for cfg in [Config::default(), odd] {
            for srtt in [0, 1, 999, 20_000, 1_000_000, u32::MAX] {
                for rttvar in [0, 1, 250_001, 3_000_000, u32::MAX] {
                    for backoff in [0, 1, 5, 16, 17, u8::MAX] {
                        (t.srtt_us, t.rttvar_us, t.backoff) = (srtt, rttvar, backoff);
                        assert_eq!(t.rto(&cfg), reference(&t, &cfg), "srtt {srtt} rttvar {rttvar} backoff {backoff}");
                    }
                }
            }
        }
    }

    fn established(mss: u16) -> Tcb {
        let mut t = Tcb::new(State::Established, 0);
        t.mss = mss;
        t
    }

    #[test]
    fn rfc6928_2_initial_window_is_min_of_ten_segments_and_max_of_two_and_14600() {
        // 10·SMSS up to an SMSS of 1460, then 14600 bytes, then 2·SMSS for jumbo segments.
        for (mss, iw) in [(536, 5_360), (1460, 14_600), (1500, 14_600), (4000, 14_600), (8960, 17_920)] {
            let mut t = established(mss);
            t.start_congestion_control(false);
            assert_eq!((t.cwnd, t.ssthresh), (iw, u32::MAX), "mss {mss}");
        }
        // Timestamps take 12 bytes of every segment: SMSS 1448, IW 14 480 (what Linux sends).
        let mut t = established(1460);
        t.set(flags::TS);
        t.start_congestion_control(false);
        assert_eq!(t.cwnd, 14_480);
    }

    #[test]
    fn rfc5681_3_1_initial_window_is_one_segment_after_a_lost_syn() {
        let mut t = established(1460);
        t.start_congestion_control(true);
        assert_eq!(t.cwnd, 1460);
    }

    #[test]
    fn rfc5681_3_1_slow_start_grows_by_at_most_one_smss_per_ack() {
        let mut t = established(1460);
        t.start_congestion_control(false);
        t.on_new_ack(1460);
        assert_eq!(t.cwnd, 14_600 + 1460);
        t.on_new_ack(3 * 1460); // a stretch ACK still counts one SMSS (equation 2)
        assert_eq!(t.cwnd, 14_600 + 2 * 1460);
        t.on_new_ack(100);
        assert_eq!(t.cwnd, 14_600 + 2 * 1460 + 100);
    }

    #[test]
    fn rfc5681_3_1_congestion_avoidance_grows_by_smss_squared_over_cwnd() {
        let mut t = established(1460);
        t.cwnd = 14_600;
        t.ssthresh = 14_600;
        t.on_new_ack(1460);
        assert_eq!(t.cwnd, 14_600 + 146);
        // Never less than a byte, never wraps.
        t.cwnd = u32::MAX - 1;
        t.on_new_ack(1460);
        assert_eq!(t.cwnd, u32::MAX);
        t.on_new_ack(1460);
        assert_eq!(t.cwnd, u32::MAX);
    }

    #[test]
    fn rfc5681_3_1_eq4_ssthresh_is_half_the_flight_and_at_least_two_segments() {
        let mut t = established(1460);
        t.snd_una = SeqNum(1000);
        t.snd_nxt = SeqNum(1000) + 20_000;
        t.halve_ssthresh();
        assert_eq!(t.ssthresh, 10_000);
        t.snd_nxt = SeqNum(1000) + 2000;
        t.halve_ssthresh();
        assert_eq!(t.ssthresh, 2 * 1460);
    }

    #[test]
    fn rfc5681_3_1_send_window_is_the_smaller_window_and_at_least_one_segment_of_cwnd() {
        let mut t = established(1460);
        t.snd_wnd = 65_535;
        t.cwnd = 14_600;
        assert_eq!(t.send_window(), 14_600);
        t.snd_wnd = 8192;
        assert_eq!(t.send_window(), 8192);
        t.snd_wnd = 65_535;
        t.cwnd = 100;
        assert_eq!(t.send_window(), 1460);
        t.snd_wnd = 0;
        assert_eq!(t.send_window(), 0);
    }
}
