//! The `# HELP` text of every figure on the Prometheus page, by its name without the `xdptcp_` prefix (the names
//! [`super::report::Snapshot::fields`] gives). It owns only words: the names and values stay where they are made,
//! and a figure added there without a line here is caught by the report's tests, not shipped without one.

/// What the figure `name` counts, or None for a name this does not know.
pub fn help(name: &str) -> Option<String> {
    if let Some(reason) = name.strip_prefix("malformed_") {
        return Some(format!("Malformed frames dropped, reason: {}.", reason.replace('_', " ")));
    }
    if let Some(reason) = name.strip_prefix("dropped_") {
        return Some(format!(
            "Well-formed segments dropped without a state change, reason: {}.",
            reason.replace('_', " ")
        ));
    }
    let text = match name {
        "frames_in" => "Frames the TCP endpoints received.",
        "frames_out" => "Frames the TCP endpoints sent.",
        "syns_received" => "SYN segments received by the workers.",
        "cookies_sent" => "SYN-ACKs with a SYN cookie sent by the workers.",
        "cookies_accepted" => "ACKs whose SYN cookie validated and opened a connection.",
        "cookies_rejected" => "ACKs whose SYN cookie did not validate.",
        "conns_opened" => "Connections established, passive and active.",
        "conns_active_opened" => "Connections established that this side opened.",
        "conns_closed" => "Connections that ended normally (FIN both ways).",
        "conns_reset" => "Connections reset by the peer.",
        "conns_refused_by_peer" => "Connections the peer refused (RST to our SYN).",
        "conns_aborted" => "Connections aborted here (app abort, drain, shutdown).",
        "conns_timed_out" => "Connections ended by a timeout.",
        "idle_timeouts" => "Of the timed out connections, those reset by the idle timeout.",
        "persist_aborts" => {
            "Of the timed out connections, those reset behind a zero window while send memory ran short."
        }
        "conns_refused_full" => "Connections refused here because the table was full (answered with RST).",
        "rsts_sent" => "RST segments sent.",
        "rsts_rate_limited" => "RST segments not sent because of the rate limit.",
        "challenge_acks" => "Challenge ACKs sent (RFC 5961).",
        "challenge_acks_rate_limited" => "Challenge ACKs not sent because of the rate limit.",
        "retransmits" => "Segments retransmitted.",
        "sack_recoveries" => "Fast recoveries that kept a scoreboard of the peer's SACK blocks (RFC 6675).",
        "sack_retransmits" => "Retransmissions a SACK scoreboard chose.",
        "retransmissions_lost" => "Retransmissions sent again because the scoreboard found them lost too.",
        "out_of_order_held" => "Segments beyond RCV.NXT held until the hole before them filled.",
        "out_of_order_delivered_bytes" => "Held out-of-order bytes handed to the app once their hole filled.",
        "mss_black_hole_fallbacks" => "Times a connection fell back to a smaller MSS (RFC 4821 black-hole detection).",
        "icmp_too_big" => "ICMP too-big messages received by the workers.",
        "path_mtu_lowered" => "ICMP too-big messages that lowered a connection's MSS.",
        "icmp_forwarded" => "ICMP too-big messages that quoted no connection here, kept for the other workers.",
        "icmp_forwarded_in" => "ICMP too-big messages another worker forwarded here.",
        "cwnd_restarts" => "Times an idle connection cut its congestion window back to the initial window.",
        "tail_loss_probes" => "Tail loss probes sent (RFC 8985).",
        "tail_loss_repairs" => "Tail loss probes that repaired a loss.",
        "zero_window_probes" => "Zero window probes sent.",
        "time_wait_entered" => "Connections that entered TIME-WAIT.",
        "time_wait_overflow" => "TIME-WAIT entries not kept because their table was full.",
        "time_wait_reopened" => "TIME-WAIT entries reopened by a new SYN.",
        "time_wait_expired" => "TIME-WAIT entries that expired.",
        "live_conns" => "Live connections, all workers.",
        "time_wait" => "TIME-WAIT entries, all workers.",
        "xsk_rx_frames" => "Frames taken off the AF_XDP receive rings.",
        "xsk_fill_kicks" => "poll(2) calls made because a fill ring asked for a wakeup.",
        "xsk_tx_committed" => "Frames the workers committed for transmission.",
        "xsk_tx_submitted" => "Frames placed on the AF_XDP transmit rings.",
        "xsk_tx_completed" => "Frames the kernel gave back on the completion rings.",
        "xsk_tx_kicks" => "sendto(2) calls made because a transmit ring asked for a wakeup.",
        "xsk_tx_no_frame" => "Times a worker found no free transmit frame.",
        "xsk_rx_dropped" => "Frames the kernel dropped on the AF_XDP sockets (XDP_STATISTICS rx_dropped).",
        "xsk_rx_invalid_descs" => "Invalid receive descriptors (XDP_STATISTICS).",
        "xsk_tx_invalid_descs" => "Invalid transmit descriptors (XDP_STATISTICS).",
        "xsk_rx_ring_full" => "Frames dropped because a receive ring was full (XDP_STATISTICS).",
        "xsk_rx_fill_ring_empty" => "Times a fill ring was empty when a frame arrived (XDP_STATISTICS).",
        "xsk_tx_ring_empty" => "Times a transmit ring was empty when the kernel looked (XDP_STATISTICS).",
        "xdp_redirected" => "Frames the XDP program handed to an AF_XDP socket.",
        "xdp_passed" => "Frames the XDP program gave to the kernel.",
        "xdp_dropped" => "Frames the XDP program dropped.",
        "xdp_truncated" => "Frames passed or dropped by the XDP program, reason: truncated header.",
        "xdp_fragment" => "Frames passed or dropped by the XDP program, reason: IP fragment.",
        "xdp_bad_header" => "Frames passed or dropped by the XDP program, reason: impossible header fields.",
        "xdp_not_ip" => "Frames passed or dropped by the XDP program, reason: neither IPv4 nor IPv6.",
        "xdp_not_tcp" => "Frames passed or dropped by the XDP program, reason: IP but not TCP.",
        "xdp_not_ours" => "Frames passed or dropped by the XDP program, reason: TCP not to a listened port.",
        "xdp_not_local" => "Frames passed or dropped by the XDP program, reason: to an address not allowed.",
        "xdp_no_xsk" => "Frames passed or dropped by the XDP program, reason: no AF_XDP socket on the queue.",
        "xdp_vlan_not_allowed" => "Frames passed or dropped by the XDP program, reason: VLAN ID not allowed.",
        "xdp_answered" => "SYNs the XDP program answered itself with a cookie SYN-ACK.",
        "xdp_syn_held" => "SYNs the XDP program left to the workers because their tuple was present.",
        "xdp_icmp_too_big" => "ICMP too-big messages quoting a segment of ours, seen by the XDP program.",
        "xdp_syn_answer_fallbacks" => "Times --xdp-cookies fell back to answering SYNs in the workers.",
        "injected_loss_rx" => "Received frames dropped on purpose (--inject-loss).",
        "injected_loss_tx" => "Sent frames dropped on purpose (--inject-loss).",
        "worker_stalls_over_1ms" => "Times a worker loop came round 1 ms or more late (sleeps in poll(2) left out).",
        "worker_longest_stall_us" => "Longest time a worker loop came round late, in microseconds.",
        "memory_bytes" => "Memory the TCP endpoints hold, in bytes.",
        "memory_reassembly_bytes" => "Of which the rings of out-of-order data, in bytes.",
        "workers" => "Worker threads.",
        "uptime_seconds" => "Seconds since the server started.",
        "worker_live_conns" => "Live connections, by worker.",
        _ => return None,
    };
    Some(text.to_string())
}
