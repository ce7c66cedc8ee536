"""RST, SYN and data injected into live Linux client connections to `xdptcp serve --app echo`, compared with a
Linux echo listener in the server namespace.

Each case opens a real kernel connection from the peer namespace, exchanges one line, reads the live sequence
numbers off the server's segments, forges one segment on the connection's tuple (RST or data at the exact
sequence number, off by one, at the window's edges, far away; ACKs beyond SND.NXT or too old), collects the
server's replies (barrier-delimited), then checks the stream byte for byte: the next line must come back exactly,
or the connection must be gone where only an exact RST may close it.

Rate limits: a burst of in-window RSTs on one connection earns at most a few challenge ACKs (xdptcp: 5 per
connection per second; Linux: one per half second); with --global, a burst over many connections at once earns
no more than the endpoint's budget (1000/s, burst 100) and every stream stays intact.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

import time

from harden_lib import KernelConn, barrier, big_receive_buffer, watchdog
from xtlib import classify, setup, tcp_of


def extra(ap):
    ap.add_argument("--global-conns", type=int, default=0,
                    help="also run the endpoint-wide challenge ACK burst over this many connections (xdptcp only)")
    ap.add_argument("--global-limit", type=int, default=1000,
                    help="the server's --challenge-acks (its mean budget per second)")


env, report = setup(__doc__, extra)
watchdog(150)
big_receive_buffer(env)
counts = {"conns_reset": 0, "live_conns": 0}
FIRST, GOOD, EVIL = b"first\n", b"good\n", b"EVIL\n"


def live(port):
    c = KernelConn(env, port)
    if c.echo(FIRST, settle=0) != FIRST.decode():
        raise RuntimeError("the connection does not echo")
    if c.snd_nxt is None or c.rcv_nxt is None or c.wnd is None or c.ts_recent is None:
        raise RuntimeError(f"sequence numbers not learnt: {c.snd_nxt} {c.rcv_nxt} {c.wnd}")
    return c


def replies_to(c, frame):
    env.wire.send(frame)
    segs = barrier(env, c.port, c.mine)
    return segs


def shape(c, segs):
    """The replies, and whether each is an ACK <SEQ=SND.NXT><ACK=RCV.NXT> of the server's current state."""
    return {"replies": classify(segs),
            "acks_exact": all(tcp_of(p).seq == c.rcv_nxt and tcp_of(p).ack == c.snd_nxt for p in segs)}


def outcome(echoed):
    """What the client got back for GOOD: the text, 'reset', or 'stalled' when nothing came back in time."""
    return "stalled" if echoed.startswith("error: TimeoutError") else echoed


def forged(flags, seq_off=0, ack_off=0, payload=b"", closes=False, ts=None, ts_ahead=0):
    """A segment at SND.NXT/RCV.NXT of the server plus offsets; seq_off may be 'wnd' or 'wnd-1' (window edges)."""
    def run(port):
        c = live(port)
        off = {"wnd": c.wnd, "wnd-1": c.wnd - 1}.get(seq_off, seq_off)
        time.sleep(0.05)  # the client's delayed ACK of the first echo, if any, is on the wire before the forgery
        frame = c.frame(flags, c.snd_nxt + off, c.rcv_nxt + ack_off, payload, timestamps=ts, ts_ahead=ts_ahead)
        segs = replies_to(c, frame)
        out = shape(c, segs)
        if port == env.linux and ts is False:
            out.update(replies="any", acks_exact="any")
        out["stream"] = outcome(c.echo(GOOD))
        if closes and port == env.xdp:
            counts["conns_reset"] += 1
        if out["stream"] == "stalled" and port == env.xdp:
            counts["live_conns"] += 1  # Neither end can close a stalled connection by FIN; it lingers.
        c.close()
        return out
    return run


ACK = {"replies": ["A"], "acks_exact": True, "stream": GOOD.decode()}
NOTHING = {"replies": [], "acks_exact": True, "stream": GOOD.decode()}
CLOSED = {"replies": [], "acks_exact": True, "stream": "reset"}
REOPENED = {"replies": [], "acks_exact": True, "stream": GOOD.decode()}
WHY_REOPENED = ("the connection is gone on both, but Linux's additive SYN cookie (tcp_syncookies=2) takes the "
                "client's next segment, whose seq and ack both moved on by the first line, for a valid cookie ACK "
                "and opens the connection again; xdptcp's cookie MACs the exact pair and resets it")

# --- RST (RFC 5961 §3.2, RFC 9293 §3.10.7.4) --------------------------------------------------------------------
report.compare("exact_rst_closes_a_kernel_clients_connection", forged("R", closes=True), CLOSED,
               linux_expected=REOPENED, why=WHY_REOPENED)
report.compare("exact_rst_ack_closes_a_kernel_clients_connection", forged("RA", closes=True), CLOSED,
               linux_expected=REOPENED, why=WHY_REOPENED)
report.compare("rst_off_by_one_above_gets_a_challenge_ack_and_the_stream_survives", forged("R", 1), ACK)
report.compare("rst_off_by_one_below_is_ignored_and_the_stream_survives", forged("R", -1), NOTHING)
report.compare("rst_at_the_last_byte_of_the_window_gets_a_challenge_ack", forged("R", "wnd-1"), ACK)
report.compare("rst_just_beyond_the_window_is_ignored", forged("R", "wnd"), NOTHING, linux_expected=ACK,
               why="RFC 9293 §3.10.7.4 accepts RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND; Linux's tcp_sequence() also "
                   "accepts SEG.SEQ = RCV.NXT+RCV.WND (it only rejects seq after the edge) and challenges the RST")
report.compare("rst_far_out_of_window_is_ignored", forged("R", 1 << 31), NOTHING)
report.compare("rst_ack_off_by_one_gets_a_challenge_ack", forged("RA", 1), ACK)

# --- SYN (RFC 5961 §4.2) -----------------------------------------------------------------------------------------
report.compare("syn_at_the_exact_sequence_number_gets_a_challenge_ack", forged("S"), ACK)

# --- data (RFC 9293 §3.10.7.4, RFC 5961 §5.2) --------------------------------------------------------------------
report.compare("data_acking_beyond_snd_nxt_is_acked_and_dropped", forged("PA", 0, 1000, EVIL), ACK)
report.compare("data_acking_one_beyond_snd_nxt_is_acked_and_dropped", forged("PA", 0, 1, EVIL), ACK)
report.compare("data_with_a_too_old_ack_gets_a_challenge_ack_and_is_dropped", forged("PA", 0, -(1 << 20), EVIL), ACK)
report.compare("data_out_of_window_is_acked_and_dropped", forged("PA", 1 << 20, 0, EVIL), ACK)
report.compare("old_data_below_rcv_nxt_is_acked_and_dropped", forged("PA", -len(EVIL), 0, EVIL), ACK)
# An injection with an exact ACK one byte ahead: both servers hold it as out-of-order data and, once the client's
# own bytes fill the gap, take its last byte too, which the client never sent. The echo then acknowledges one byte
# beyond the client's SND.NXT, the client drops every such segment, and the stream stalls. RFC 5961 §5 leaves
# data with an acceptable ACK to the sequence check; only one who knows both numbers gets this far.
report.compare("data_off_by_one_ahead_is_held_and_stalls_the_stream_as_in_linux", forged("PA", 1, 0, EVIL),
               {"replies": ["A"], "acks_exact": True, "stream": "stalled"})
report.compare("data_with_a_bad_ack_and_a_future_timestamp_leaves_ts_recent_alone",
               forged("PA", 0, 1000, EVIL, ts_ahead=1 << 30), ACK,
               why="RFC 7323 §4.3 would record TS.Recent before the ACK check; a forged segment with a bad ACK must "
                   "not move it, or every later segment of the client fails PAWS (Linux updates it only after the "
                   "ACK is accepted)")
report.compare("data_without_timestamps_after_negotiation_is_dropped", forged("PA", 0, 0, EVIL, ts=False),
               NOTHING, linux_expected={"stream": EVIL.decode(), "replies": "any", "acks_exact": "any"},
               why="stricter on purpose: RFC 7323 §3.2 says a non-RST segment without timestamps after they were "
                   "negotiated SHOULD be dropped; Linux accepts it (this one would be an exact injection)")
# The control case: an on-path attacker who knows both numbers exactly can inject data into any TCP (only
# cryptography protects a stream from that). It proves the byte comparison above would see an injection.
report.compare("exact_data_with_exact_ack_is_accepted_as_tcp_must_control_case",
               lambda port: {"stream": forged("PA", 0, 0, EVIL)(port)["stream"]}, {"stream": EVIL.decode()},
               why="control: shows that the stream comparison catches injected bytes")


# --- challenge ACK budget of one connection ---------------------------------------------------------------------
def burst_on_one(port):
    c = live(port)
    frames = [bytes(c.frame("R", c.snd_nxt + k, 0)) for k in range(1, 21)]
    t = time.monotonic()
    for f in frames:
        env.wire.sock.send(f)
    took = time.monotonic() - t
    segs = barrier(env, port, c.mine)
    n = len(segs)
    stream = c.echo(GOOD)
    c.close()
    # xdptcp: 5 per connection per second (10 when the burst straddles a second boundary); Linux: one per
    # 0.5 s (tcp_invalid_ratelimit), so 1, or 2 across a boundary.
    limit = 10 if port == env.xdp else 2
    return {"challenge_acks_at_most_the_budget": 1 <= n <= limit, "stream": stream, "detail": f"{n} ACKs for 20 RSTs "
            f"sent in {took * 1000:.1f} ms"}


def compare_burst():
    got = {}
    for who, port in (("xdptcp", env.xdp), ("linux", env.linux)):
        got[who] = burst_on_one(port)
    ok = all(g["challenge_acks_at_most_the_budget"] and g["stream"] == GOOD.decode() for g in got.values())
    report.case("rfc5961_7_challenge_acks_are_limited_per_connection", ok,
                f"xdptcp: {got['xdptcp']['detail']}, stream {got['xdptcp']['stream']!r}; linux: "
                f"{got['linux']['detail']}, stream {got['linux']['stream']!r}")


compare_burst()


# --- the endpoint's budget, over many connections at once (xdptcp only) ------------------------------------------
def global_burst(n_conns):
    conns = [KernelConn(env, env.xdp) for _ in range(n_conns)]
    for c in conns:
        c.s.sendall(FIRST)
    for c in conns:
        if c.read_exactly(len(FIRST), settle=0) != FIRST:
            raise RuntimeError("a connection did not echo")
    by_port = {c.cport: c for c in conns}
    deadline = time.monotonic() + 10
    while not all(c.data_seen for c in conns):
        if time.monotonic() > deadline:
            raise RuntimeError("the echoes of the first lines never showed on the wire")
        time.sleep(0.05)
        for p in env.wire.take_all(lambda p: tcp_of(p) is not None and tcp_of(p).dport in by_port
                                   and tcp_of(p).sport == env.xdp):
            by_port[tcp_of(p).dport].learn([p])
    time.sleep(0.1)
    for p in env.wire.take_all(lambda p: tcp_of(p) is not None and tcp_of(p).dport in by_port
                               and tcp_of(p).sport == env.xdp):
        by_port[tcp_of(p).dport].learn([p])
    frames = [bytes(c.frame("R", c.snd_nxt + k, 0)) for c in conns for k in range(1, 6)]
    mine = lambda p: tcp_of(p) is not None and tcp_of(p).sport == env.xdp and tcp_of(p).dport in by_port  # noqa: E731
    t = time.monotonic()
    for f in frames:
        env.wire.sock.send(f)
    took = time.monotonic() - t
    segs = barrier(env, env.xdp, mine)
    n = len(segs)
    broken = []
    for c in conns:
        c.s.sendall(GOOD)
    for c in conns:
        try:
            back = c.read_exactly(len(GOOD), settle=0)
        except OSError as e:
            back = repr(e).encode()
        if back != GOOD:
            broken.append(back)
    time.sleep(0.2)
    for c in conns:
        c.s.setblocking(False)
        try:
            extra = c.s.recv(4096)
            broken.append(b"extra bytes: " + extra)
        except BlockingIOError:
            pass
        c.close()
    broken = len(broken)
    # A budget per wall-clock second of at most 1.5 x the limit: the burst touches at most floor(took) + 2
    # seconds; the per-connection limit alone would allow 5 * n_conns.
    budget = int(1.5 * env.args.global_limit) * (int(took) + 2)
    ok = 0 < n <= budget and broken == 0 and n < 5 * n_conns
    report.case("rfc5961_7_challenge_acks_are_limited_for_the_whole_endpoint", ok,
                f"{len(frames)} in-window RSTs over {n_conns} connections in {took * 1000:.0f} ms earned {n} "
                f"challenge ACKs (budget {budget}); streams broken: {broken}",
                sent=len(frames), challenge_acks=n, seconds=took)
    report.extra["global_rsts"] = len(frames)
    report.extra["global_challenge_acks"] = n


if env.args.global_conns:
    global_burst(env.args.global_conns)

report.extra["xdp_expect"] = counts
report.finish()
