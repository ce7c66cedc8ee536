//! Counters of one endpoint. Plain integers: the endpoint is owned by one thread, which publishes copies.

use crate::wire::ParseError;

/// Why a well-formed segment was dropped without any state change. (Malformed frames count by [`ParseError`].)
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Drop {
    /// Destination address is not one of ours.
    NotLocal,
    /// Not unicast to us: an Ethernet destination other than our MAC (a group address, or another host's), or an
    /// IP destination TCP never uses (multicast, broadcast, unspecified, loopback), or from that very address
    /// (LAND). RFC 9293 MUST-57 for SYNs; like Linux, nothing of such a frame is answered.
    NotUnicast,
    /// Not acceptable in the receive window (RFC 9293 §3.10.7.4, first check).
    OutOfWindow,
    /// RST outside the window, or in LISTEN (RFC 5961 §3.2, RFC 9293).
    RstIgnored,
    /// RST in TIME-WAIT (RFC 1337).
    RstInTimeWait,
    /// Timestamp older than TS.Recent (RFC 7323 §5 PAWS).
    Paws,
    /// Segment without ACK on a synchronized connection, or an unacceptable ACK.
    BadAck,
    /// Data or a FIN beyond RCV.NXT that could not be held (the reassembly pool was full, or it would open more
    /// holes than a connection may hold): the peer retransmits it.
    OutOfOrder,
    /// A segment to a listening port that is neither SYN nor ACK.
    ListenerJunk,
    /// No buffer was free to send a reply.
    NoTxBuffer,
    /// A cookie ACK that did not validate.
    BadCookie,
    /// A cookie ACK that validated but has opened a connection before (see [`crate::tcp::replay`]).
    CookieReplayed,
    /// A SYN we could not answer (no cookie key for the current slot).
    NoCookieKey,
    /// Segment for a port nobody listens on and no connection (answered with RST when allowed).
    NoConnection,
    /// An ICMP "too big" message that quotes no live connection of ours, a sequence number outside SND.UNA to
    /// SND.NXT (RFC 5927 §4.1), or no MTU.
    IcmpUnmatched,
}

impl Drop {
    pub const ALL: [Drop; 15] = [
        Drop::NotLocal,
        Drop::NotUnicast,
        Drop::OutOfWindow,
        Drop::RstIgnored,
        Drop::RstInTimeWait,
        Drop::Paws,
        Drop::BadAck,
        Drop::OutOfOrder,
        Drop::ListenerJunk,
        Drop::NoTxBuffer,
        Drop::BadCookie,
        Drop::CookieReplayed,
        Drop::NoCookieKey,
        Drop::NoConnection,
        Drop::IcmpUnmatched,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drop::NotLocal => "not_local",
            Drop::NotUnicast => "not_unicast",
            Drop::OutOfWindow => "out_of_window",
            Drop::RstIgnored => "rst_ignored",
            Drop::RstInTimeWait => "rst_in_time_wait",
            Drop::Paws => "paws",
            Drop::BadAck => "bad_ack",
            Drop::OutOfOrder => "out_of_order",
            Drop::ListenerJunk => "listener_junk",
            Drop::NoTxBuffer => "no_tx_buffer",
            Drop::BadCookie => "bad_cookie",
            Drop::CookieReplayed => "cookie_replayed",
            Drop::NoCookieKey => "no_cookie_key",
            Drop::NoConnection => "no_connection",
            Drop::IcmpUnmatched => "icmp_unmatched",
        }
    }
}

/// Everything an endpoint counts. Gauges (live connections, TIME-WAIT entries) are filled in by
/// [`crate::tcp::Endpoint::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames_in: u64,
    pub frames_out: u64,
    /// Malformed frames by [`ParseError::index`].
    pub malformed: [u64; ParseError::ALL.len()],
    /// Well-formed segments dropped, by `Drop as usize`.
    pub dropped: [u64; Drop::ALL.len()],
    pub syns_received: u64,
    pub cookies_sent: u64,
    pub cookies_accepted: u64,
    pub cookies_rejected: u64,
    /// Connections established, passive and active.
    pub conns_opened: u64,
    pub conns_active_opened: u64,
    /// Connections that ended normally (FIN both ways).
    pub conns_closed: u64,
    /// Reset by the peer.
    pub conns_reset: u64,
    /// Refused by the peer (RST to our SYN).
    pub conns_refused_by_peer: u64,
    /// Aborted here (app abort, drain, shutdown).
    pub conns_aborted: u64,
    pub conns_timed_out: u64,
    /// Of which reset by the idle timeout.
    pub idle_timeouts: u64,
    /// Of which reset behind a zero window while send memory ran short (RFC 6429).
    pub persist_aborts: u64,
    /// Refused here because the table was full (answered with RST).
    pub conns_refused_full: u64,
    pub rsts_sent: u64,
    pub rsts_rate_limited: u64,
    pub challenge_acks: u64,
    pub challenge_acks_rate_limited: u64,
    pub retransmits: u64,
    /// Fast recoveries that kept a scoreboard of the peer's SACK blocks (RFC 6675).
    pub sack_recoveries: u64,
    /// Of the retransmissions, those a scoreboard chose (lost segments beyond the first).
    pub sack_retransmits: u64,
    /// Of those, retransmissions sent again because the scoreboard found them lost too (data sent after them
    /// SACKed while their hole stayed open), where the retransmission timer would have had to fire.
    pub retransmissions_lost: u64,
    /// Segments beyond RCV.NXT whose new bytes (or FIN) were held until the hole before them filled.
    pub out_of_order_held: u64,
    /// Held bytes handed to the app once the hole before them filled.
    pub out_of_order_delivered_bytes: u64,
    /// Times a connection whose full-sized segments kept timing out fell back to a smaller MSS (RFC 4821
    /// black-hole detection: for paths whose routers send no ICMP, or whose ICMP is filtered).
    pub mss_black_hole_fallbacks: u64,
    /// ICMP "too big" messages received (ICMPv4 fragmentation needed, ICMPv6 packet too big).
    pub icmp_too_big: u64,
    /// Of which lowered a connection's MSS (RFC 1191, RFC 8201).
    pub path_mtu_lowered: u64,
    /// Of which quoted no connection here and were kept for the other workers (`Config::forward_unmatched_icmp`).
    pub icmp_forwarded: u64,
    /// Messages another worker forwarded here (counted in `icmp_too_big` there, not here).
    pub icmp_forwarded_in: u64,
    /// Times a connection idle for longer than its RTO cut its congestion window back to the initial window
    /// before sending again (RFC 5681 §4.1).
    pub cwnd_restarts: u64,
    /// RFC 8985 tail loss probes sent (new data, or the last segment again) when a probe timeout fired.
    pub tail_loss_probes: u64,
    /// Tail loss probes that repaired a loss (acknowledged beyond them with no D-SACK): cwnd was halved.
    pub tail_loss_repairs: u64,
    pub zero_window_probes: u64,
    pub time_wait_entered: u64,
    pub time_wait_overflow: u64,
    pub time_wait_reopened: u64,
    pub time_wait_expired: u64,
    /// Gauge: live connections.
    pub live_conns: u64,
    /// Gauge: TIME-WAIT entries.
    pub time_wait: u64,
}

impl Stats {
    #[inline]
    pub fn drop(&mut self, why: Drop) {
        self.dropped[why as usize] += 1;
    }

    #[inline]
    pub fn malformed(&mut self, why: ParseError) {
        self.malformed[why.index()] += 1;
    }

    /// Adds another endpoint's counters (the control thread sums the workers).
    pub fn accumulate(&mut self, o: &Stats) {
        self.frames_in += o.frames_in;
        self.frames_out += o.frames_out;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed.iter()) {
            *a += b;
        }
        for (a, b) in self.dropped.iter_mut().zip(o.dropped.iter()) {
            *a += b;
        }
        self.syns_received += o.syns_received;
        self.cookies_sent += o.cookies_sent;
        self.cookies_accepted += o.cookies_accepted;
        self.cookies_rejected += o.cookies_rejected;
        self.conns_opened += o.conns_opened;
        self.conns_active_opened += o.conns_active_opened;
        self.conns_closed += o.conns_closed;
        self.conns_reset += o.conns_reset;
        self.conns_refused_by_peer += o.conns_refused_by_peer;
        self.conns_aborted += o.conns_aborted;
        self.conns_timed_out += o.conns_timed_out;
        self.idle_timeouts += o.idle_timeouts;
        self.persist_aborts += o.persist_aborts;
        self.conns_refused_full += o.conns_refused_full;
        self.rsts_sent += o.rsts_sent;
        self.rsts_rate_limited += o.rsts_rate_limited;
        self.challenge_acks += o.challenge_acks;
        self.challenge_acks_rate_limited += o.challenge_acks_rate_limited;
        self.retransmits += o.retransmits;
        self.sack_recoveries += o.sack_recoveries;
        self.sack_retransmits += o.sack_retransmits;
        self.retransmissions_lost += o.retransmissions_lost;
        self.out_of_order_held += o.out_of_order_held;
        self.out_of_order_delivered_bytes += o.out_of_order_delivered_bytes;
        self.mss_black_hole_fallbacks += o.mss_black_hole_fallbacks;
        self.icmp_too_big += o.icmp_too_big;
        self.path_mtu_lowered += o.path_mtu_lowered;
        self.icmp_forwarded += o.icmp_forwarded;
        self.icmp_forwarded_in += o.icmp_forwarded_in;
        self.cwnd_restarts += o.cwnd_restarts;
        self.tail_loss_probes += o.tail_loss_probes;
        self.tail_loss_repairs += o.tail_loss_repairs;
        self.zero_window_probes += o.zero_window_probes;
        self.time_wait_entered += o.time_wait_entered;
        self.time_wait_overflow += o.time_wait_overflow;
        self.time_wait_reopened += o.time_wait_reopened;
        self.time_wait_expired += o.time_wait_expired;
        self.live_conns += o.live_conns;
        self.time_wait += o.time_wait;
    }

    /// Every counter as (name, value), for JSON and Prometheus output.
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = vec![
            ("frames_in".into(), self.frames_in),
            ("frames_out".into(), self.frames_out),
            ("syns_received".into(), self.syns_received),
            ("cookies_sent".into(), self.cookies_sent),
            ("cookies_accepted".into(), self.cookies_accepted),
            ("cookies_rejected".into(), self.cookies_rejected),
            ("conns_opened".into(), self.conns_opened),
            ("conns_active_opened".into(), self.conns_active_opened),
            ("conns_closed".into(), self.conns_closed),
            ("conns_reset".into(), self.conns_reset),
            ("conns_refused_by_peer".into(), self.conns_refused_by_peer),
            ("conns_aborted".into(), self.conns_aborted),
            ("conns_timed_out".into(), self.conns_timed_out),
            ("idle_timeouts".into(), self.idle_timeouts),
            ("persist_aborts".into(), self.persist_aborts),
            ("conns_refused_full".into(), self.conns_refused_full),
            ("rsts_sent".into(), self.rsts_sent),
            ("rsts_rate_limited".into(), self.rsts_rate_limited),
            ("challenge_acks".into(), self.challenge_acks),
            ("challenge_acks_rate_limited".into(), self.challenge_acks_rate_limited),
            ("retransmits".into(), self.retransmits),
            ("sack_recoveries".into(), self.sack_recoveries),
            ("sack_retransmits".into(), self.sack_retransmits),
            ("retransmissions_lost".into(), self.retransmissions_lost),
            ("out_of_order_held".into(), self.out_of_order_held),
            ("out_of_order_delivered_bytes".into(), self.out_of_order_delivered_bytes),
            ("mss_black_hole_fallbacks".into(), self.mss_black_hole_fallbacks),
            ("icmp_too_big".into(), self.icmp_too_big),
            ("path_mtu_lowered".into(), self.path_mtu_lowered),
            ("icmp_forwarded".into(), self.icmp_forwarded),
            ("icmp_forwarded_in".into(), self.icmp_forwarded_in),
            ("cwnd_restarts".into(), self.cwnd_restarts),
            ("tail_loss_probes".into(), self.tail_loss_probes),
            ("tail_loss_repairs".into(), self.tail_loss_repairs),
            ("zero_window_probes".into(), self.zero_window_probes),
            ("time_wait_entered".into(), self.time_wait_entered),
            ("time_wait_overflow".into(), self.time_wait_overflow),
            ("time_wait_reopened".into(), self.time_wait_reopened),
            ("time_wait_expired".into(), self.time_wait_expired),
            ("live_conns".into(), self.live_conns),
            ("time_wait".into(), self.time_wait),
        ];
        for e in ParseError::ALL {
            v.push((format!("malformed_{}", e.name()), self.malformed[e.index()]));
        }
        for d in Drop::ALL {
            v.push((format!("dropped_{}", d.name()), self.dropped[d as usize]));
        }
        v
    }
}
