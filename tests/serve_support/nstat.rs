//! The kernel's SNMP/netstat counters of one namespace (`nstat -azs`: absolute values, zeros included, history
//! untouched), compared before and after a run of kernel clients.

use std::collections::BTreeMap;

/// Counters that must not move in the client namespace while it talks to a correct server on a lossless veth
/// pair, with the reason each must stay 0. These are the client kernel's own verdict on the server.
pub const MUST_STAY_ZERO: [(&str, &str); 17] = [
    ("TcpAttemptFails", "a connect failed (RST or timeout in SYN-SENT/SYN-RECV)"),
    ("TcpEstabResets", "an established connection was reset"),
    ("TcpOutRsts", "the client kernel answered something with RST: a segment it could not place"),
    ("TcpInErrs", "a segment from the server was bad (checksum, length)"),
    ("TcpInCsumErrors", "a segment from the server had a wrong checksum"),
    ("TcpExtTCPAbortOnData", "the client aborted a connection that received data after close"),
    ("TcpExtTCPAbortOnClose", "the client closed with unread data (the server sent more than the exchange)"),
    ("TcpExtTCPAbortOnMemory", "the client ran out of memory for orphans"),
    ("TcpExtTCPAbortOnTimeout", "a connection timed out (the server stopped answering)"),
    ("TcpExtTCPAbortOnLinger", "a FIN-WAIT-2 linger expired (the server never sent its FIN)"),
    ("TcpExtTCPAbortFailed", "an abort could not even send its RST"),
    ("TcpExtPAWSEstab", "the server's timestamps went backwards (RFC 7323 PAWS)"),
    ("TcpExtPAWSActive", "the server's SYN-ACK carried an old timestamp"),
    ("TcpExtTCPChallengeACK", "the server sent a segment the client took for a blind attack (RFC 5961)"),
    ("TcpExtTCPSYNChallenge", "the server sent a SYN on an established connection"),
    // On a lossless veth pair a retransmission means the server dropped a segment or sat on it for longer than
    // the client's shortest timer (a tail-loss probe fires after 10 ms): a server bug or a server that cannot
    // keep up, both of which the suite must see.
    ("TcpRetransSegs", "the client retransmitted: the server lost or ignored a segment"),
    ("TcpExtTCPSynRetrans", "a SYN went unanswered for 1 s"),
];

/// `nstat -azs` in namespace `ns`.
pub fn snapshot(ns: &str) -> BTreeMap<String, u64> {
    let (ok, out, err) = super::run_in(ns, "nstat", &["-azs"]);
    assert!(ok, "nstat in {ns}: {err}");
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// after - before for every counter.
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0)))).collect()
}

/// Every counter of [`MUST_STAY_ZERO`] that moved, with its reason.
pub fn violations(d: &BTreeMap<String, u64>) -> Vec<String> {
    MUST_STAY_ZERO
        .iter()
        .filter_map(|(k, why)| match d.get(*k) {
            Some(&v) if v > 0 => Some(format!("{k} += {v} ({why})")),
            _ => None,
        })
        .collect()
}

/// When the client's only complaint is retransmissions, explains them if every one was a tail-loss probe (no
/// retransmission timeout, no fast retransmit) and they were spurious by the server's own count: every segment
/// the client sent (originals and probes) reached the server's socket, the server dropped nothing but the late
/// duplicates themselves (every drop has a counter), refused none as malformed and retransmitted nothing itself. The replies were then late on their way
/// back through the kernel (the client's stack runs in the softirq of whichever CPU delivers them), not lost or
/// ignored by the server. `None` when anything does not add up.
pub fn retransmissions_explained_as_spurious_probes(
    d: &BTreeMap<String, u64>,
    server: &serde_json::Value,
) -> Option<String> {
    let c = |k: &str| d.get(k).copied().unwrap_or(0);
    let s = |k: &str| server[k].as_u64().unwrap_or(u64::MAX);
    let only_retransmissions = violations(d).iter().all(|v| v.starts_with("TcpRetransSegs "));
    let all_probes = c("TcpRetransSegs") == c("TcpExtTCPLossProbes") && c("TcpExtTCPTimeouts") == 0;
    let none = |prefix: &str| {
        server
            .as_object()
            .is_some_and(|o| o.iter().filter(|(k, _)| k.starts_with(prefix)).all(|(_, v)| v.as_u64() == Some(0)))
    };
    // A probe that arrives after the original is a duplicate below RCV.NXT: answered with an ACK and counted as
    // out of window. Those, and only as many as there were probes, are allowed.
    let dups = server.get("dropped_out_of_window").and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
    let other_drops = server.as_object().is_some_and(|o| {
        o.iter()
            .filter(|(k, _)| k.starts_with("dropped_") && *k != "dropped_out_of_window")
            .all(|(_, v)| v.as_u64() == Some(0))
    });
    let server_clean = s("retransmits") == 0
        && dups <= c("TcpRetransSegs")
        && other_drops
        && none("malformed_")
        && s("xsk_rx_dropped") == 0
        && s("xsk_rx_ring_full") == 0;
    // TcpOutSegs leaves retransmissions out.
    let all_arrived = s("xsk_rx_frames") == c("TcpOutSegs") + c("TcpRetransSegs");
    (only_retransmissions && all_probes && server_clean && all_arrived).then(|| {
        format!(
            "{} tail-loss probes and nothing else; all {} client segments reached the server, which dropped, refused \
             and retransmitted nothing (its worker's longest stall: {} µs)",
            c("TcpExtTCPLossProbes"),
            s("xsk_rx_frames"),
            s("worker_longest_stall_us"),
        )
    })
}

/// When the client's only complaint is retransmissions, explains them by frames the veth pair itself dropped
/// (`link_drops`, counted by the interfaces while the clients ran) when the server is otherwise clean: it
/// dropped, refused and lost nothing of its own, and retransmitted no more segments than the link lost. Each
/// lost frame costs the client at most two retransmissions (a tail-loss probe, then a timeout; a lost SYN-ACK
/// one SYN a second), so more than twice the drops is not the link's doing. `None` when anything does not add
/// up, or the link lost nothing.
pub fn retransmissions_explained_by_link_drops(
    d: &BTreeMap<String, u64>,
    server: &serde_json::Value,
    link_drops: u64,
) -> Option<String> {
    let c = |k: &str| d.get(k).copied().unwrap_or(0);
    let s = |k: &str| server[k].as_u64().unwrap_or(u64::MAX);
    let only_retransmissions =
        violations(d).iter().all(|v| v.starts_with("TcpRetransSegs ") || v.starts_with("TcpExtTCPSynRetrans "));
    let bounded = link_drops > 0 && c("TcpRetransSegs") <= 2 * link_drops;
    // Late duplicates of retransmitted segments arrive out of window; nothing else may be dropped.
    let other_drops_zero = server.as_object().is_some_and(|o| {
        o.iter()
            .filter(|(k, _)| {
                (k.starts_with("dropped_") && *k != "dropped_out_of_window") || k.starts_with("malformed_")
            })
            .all(|(_, v)| v.as_u64() == Some(0))
    });
    let server_clean = s("retransmits") <= link_drops
        && s("dropped_out_of_window") <= c("TcpRetransSegs")
        && other_drops_zero
        && s("xsk_rx_dropped") == 0
        && s("xsk_rx_ring_full") == 0;
    (only_retransmissions && bounded && server_clean).then(|| {
        format!(
            "the veth pair dropped {link_drops} frames; the client retransmitted {} segments ({} of them SYNs) and the \
             server {}, and the server dropped and refused nothing of its own",
            c("TcpRetransSegs"),
            c("TcpExtTCPSynRetrans"),
            s("retransmits"),
        )
    })
}
