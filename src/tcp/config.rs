//! Everything an endpoint is told instead of finding out for itself: addresses, bounds, timings and secrets.
//!
//! Secrets arrive here (from the OS RNG in the runtime, from a seed in tests) so the core stays deterministic.

use crate::wire::MacAddr;
use std::time::Duration;

/// Configuration of one endpoint (one worker).
#[derive(Clone, Debug)]
pub struct Config {
    /// Source MAC of every frame we emit.
    pub local_mac: MacAddr,
    /// When non-empty, segments to other destination addresses are dropped (and counted).
    pub local_addrs: Vec<std::net::IpAddr>,
    /// Live connections at most (per endpoint, both families together); beyond it new ones are refused with RST.
    pub max_conns: usize,
    /// TIME-WAIT entries at most, in each address family's table (unlike `max_conns`, not shared); beyond it a
    /// closing connection skips TIME-WAIT (counted, like Linux).
    pub max_time_wait: usize,
    /// 2MSL. RFC 9293 suggests MSL = 2 min; Linux and this stack default to 60 s for the whole TIME-WAIT.
    pub time_wait: Duration,
    /// The MSS we announce (and the largest segment we send).
    pub mss: u16,
    /// Our receive window in bytes (constant: we never shrink it). Announced scaled by `window_scale`.
    pub rcv_wnd: u32,
    /// The window scale shift we offer.
    pub window_scale: u8,
    /// Bytes an app may queue per connection.
    pub send_buffer: u32,
    /// Bytes all send queues of the endpoint may hold together (static responses cost nothing). Peers that stop
    /// reading cannot take more: the app's send capacity (and the echo app's receive window) shrinks to what is
    /// left, and at 7/8 of it connections stuck behind a zero window are reset at their next probe (RFC 6429).
    pub send_memory: usize,
    /// Offer and accept RFC 7323 timestamps.
    pub timestamps: bool,
    /// Offer and accept SACK-permitted. Our ACKs then carry SACK blocks for the out-of-order data we hold
    /// (RFC 2018), and a fast recovery of ours reads the peer's (RFC 6675, see [`crate::tcp::scoreboard`]).
    pub sack: bool,
    /// RFC 8985 §7 tail loss probes on connections with SACK: when the last segments of a flight are lost, no
    /// duplicate ACKs come to start a fast retransmit; after about two round trips (the PTO) one segment goes
    /// again (or a new one), so that its ACK shows the loss, instead of waiting for the RTO and its collapse of
    /// cwnd. On by default, as in Linux.
    pub tail_loss_probes: bool,
    /// Send the ACK that completes an active open as a segment of its own, before any data or FIN the
    /// application queues when the connection opens, as kernel clients do. Off (the default), that data or FIN
    /// carries the ACK: one frame fewer per connection, but a listener that keeps no state before the handshake's
    /// ACK (SYN cookies, ours or Linux's) can check only a segment that starts at our ISN + 1, so if that one is
    /// lost the segments after it are answered with RST. On, a lost ACK or first segment costs a retransmission.
    pub handshake_ack_alone: bool,
    /// Bytes the endpoint may spend holding out-of-order segments (one ring of the receive window per connection
    /// that holds any, see [`crate::tcp::reassembly`]). Beyond it, or at 0, they are dropped and the peer
    /// retransmits them.
    pub reassembly_memory: usize,
    /// RFC 6298: the RTO before any RTT sample (1 s).
    pub initial_rto: Duration,
    /// Lower bound of the RTO. RFC 6298 says 1 s; like Linux we default to 200 ms, which suits data centres.
    pub min_rto: Duration,
    /// Upper bound of the RTO (RFC 6298: at least 60 s).
    pub max_rto: Duration,
    /// SYN (active open) retransmissions before giving up. RFC 9293 §3.8.3 wants a SYN retransmitted for at
    /// least 3 minutes (R2): the default 7, with the 1 s initial RTO doubling to the 60 s cap, gives up at 183 s
    /// (Linux's 6 gives up at 127 s).
    pub syn_retries: u8,
    /// Data/FIN retransmissions (and unanswered zero-window probes) before giving up with RST.
    pub data_retries: u8,
    /// How long a connection in FIN-WAIT-2 (the app has closed, the peer not yet) may stay silent: every segment
    /// of the peer restarts it, so a peer still sending keeps the half-closed connection open, and one that never
    /// closes does not hold it forever (as Linux's tcp_fin_timeout does for sockets the app has let go of).
    pub fin_wait2_timeout: Duration,
    /// RFC 5961 challenge ACKs: at most this many per connection per second.
    pub challenge_acks_per_conn: u8,
    /// RFC 5961 §7: an endpoint-wide cap on challenge ACKs of live connections, about this many per second (each
    /// second's budget drawn in secret from half to one and a half times it). None by default, as Linux since
    /// 6.0: any budget shared between connections is an off-path side channel (CVE-2016-5696), since an
    /// attacker's own connections can watch what a guess at a victim's window cost it, and a secret budget only
    /// adds noise that averaging removes. `challenge_acks_per_conn` bounds each connection on its own.
    pub challenge_acks_per_sec: Option<u32>,
    /// ACKs answered from TIME-WAIT entries per second for the whole endpoint (they keep no per-entry budget),
    /// drawn in secret like the above.
    pub time_wait_acks_per_sec: u32,
    /// RSTs for segments that match nothing (including failed cookies), per second for the whole endpoint.
    pub rst_per_sec: u32,
    /// Fall back to a smaller MSS when the same data times out twice (RFC 4821 black-hole detection, like Linux's
    /// `tcp_mtu_probing=1`; see `timers.rs`): the defence against a path MTU below our segments when no ICMP
    /// "too big" message reaches us (see `path_mtu.rs`).
    pub black_hole_detection: bool,
    /// Entries of the memory of cookie ACKs that opened a connection (rounded down to a power of two, 4 bytes
    /// each; 0: off). See [`crate::tcp::replay`] for how long a record lasts at a given connection rate.
    pub cookie_replay_entries: usize,
    /// Secret for the table hashes (SipHash keys): no peer can aim tuples at one bucket.
    pub hash_secret: [u8; 16],
    /// Secret for RFC 6528 ISNs of active opens.
    pub isn_secret: [u8; 16],
    /// Wall-clock nanoseconds since the UNIX epoch at `Instant::ZERO`: cookie clock slots are wall-clock based so
    /// that cookies survive restarts and can be shared by hosts behind ECMP.
    pub wall_clock_offset: u64,
    /// Added to our millisecond clock to make TSvals (RFC 7323 §5.4 suggests a random offset).
    pub ts_offset: u32,
    /// Timer wheel tick.
    pub timer_tick: Duration,
    /// Slots of each timer wheel (a power of two; the first level covers `timer_tick * timer_slots`).
    pub timer_slots: usize,
    /// A connection with nothing in flight and nothing received for this long is reset: it bounds what a
    /// vanished peer, a slowloris, or a connection re-created from a late duplicate handshake ACK can hold.
    /// `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Keep ICMP "too big" messages that quote no connection of this endpoint for [`crate::tcp::Endpoint::
    /// forwarded_icmp`], so that the runtime can pass them to the other workers: a NIC's RSS hashes ICMP by its
    /// addresses, not by the quoted connection, so the message may land on any queue. Off for a lone endpoint.
    pub forward_unmatched_icmp: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            local_mac: MacAddr([0x02, 0, 0, 0, 0, 1]),
            local_addrs: Vec::new(),
            max_conns: 1 << 20,
            max_time_wait: 1 << 22,
            time_wait: Duration::from_secs(60),
            mss: 1460,
            rcv_wnd: 65535,
            window_scale: 7,
            send_buffer: 64 * 1024,
            send_memory: 256 << 20,
            timestamps: true,
            sack: true,
            tail_loss_probes: true,
            handshake_ack_alone: false,
            reassembly_memory: 32 << 20,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            syn_retries: 7,
            data_retries: 15,
            fin_wait2_timeout: Duration::from_secs(60),
            challenge_acks_per_conn: 5,
            challenge_acks_per_sec: None,
            time_wait_acks_per_sec: 1000,
            rst_per_sec: 50_000,
            black_hole_detection: true,
            cookie_replay_entries: 1 << 20,
            hash_secret: [0x5a; 16],
            isn_secret: [0xa5; 16],
            wall_clock_offset: 0,
            ts_offset: 0,
            timer_tick: Duration::from_millis(1),
            timer_slots: 4096,
            idle_timeout: Some(Duration::from_secs(120)),
            forward_unmatched_icmp: false,
        }
    }
}

impl Config {
    /// This config with the fields RFC 7323 bounds brought within them: a window scale of at most 14 (§2.3) and
    /// a receive window of at most 2^30 bytes, the most a scale of 14 can announce. An endpoint takes its config
    /// through this, so that a config built in code cannot make a shift overflow or a window wrap.
    pub fn normalised(mut self) -> Self {
        self.window_scale = self.window_scale.min(14);
        self.rcv_wnd = self.rcv_wnd.min(1 << 30);
        self
    }

    /// The window field of a non-SYN segment when we scale by `rcv_wscale` (a constant: we never shrink it).
    #[inline]
    pub fn window_field(&self, rcv_wscale: u8) -> u16 {
        (self.rcv_wnd >> rcv_wscale).min(0xffff) as u16
    }

    /// The window we promise, in bytes, as the peer sees it after scaling.
    #[inline]
    pub fn rcv_wnd_scaled(&self, rcv_wscale: u8) -> u32 {
        u32::from(self.window_field(rcv_wscale)) << rcv_wscale
    }

    /// The MSS option of our SYNs and SYN-ACKs for one address family (IPv6 headers are 20 bytes longer).
    #[inline]
    pub fn announced_mss(&self, v6: bool) -> u16 {
        if v6 {
            crate::tcp::output::our_mss::<crate::tcp::flow::V6Flow>(self.mss)
        } else {
            crate::tcp::output::our_mss::<crate::tcp::flow::V4Flow>(self.mss)
        }
    }

    /// The window field of a SYN or SYN-ACK (never scaled, RFC 7323 §2.2), rounded down to what the scaled
    /// window fields that follow can say, so that the first of them never appears to shrink the window.
    #[inline]
    pub fn syn_window(&self) -> u16 {
        let granule = 1u32 << self.window_scale.min(14);
        (self.rcv_wnd.min(0xffff) & !(granule - 1)).max(granule.min(0xffff)) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7323_2_3_a_window_scale_above_14_and_a_window_above_2_30_are_brought_within_bounds() {
        // Found by an audit: only the command line bounded these; a config built in code could set a scale of
        // 32 (a shift overflow) or a window of 2^31 and more (the reassembly ring's length wrapped to 0).
        let c = Config { window_scale: 40, rcv_wnd: u32::MAX, ..Config::default() }.normalised();
        assert_eq!((c.window_scale, c.rcv_wnd), (14, 1 << 30));
        assert_eq!(c.rcv_wnd_scaled(14), 0xffff << 14);
        let d = Config::default();
        let n = d.clone().normalised();
        assert_eq!((n.window_scale, n.rcv_wnd), (d.window_scale, d.rcv_wnd), "defaults are within bounds");
    }
}
