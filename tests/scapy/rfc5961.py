"""RFC 5961 (blind RST, SYN and data injection), RFC 9293 §3.10.7.4 and RFC 7323 on an established connection of
`xdptcp serve --app echo`, compared with a Linux echo listener in the same namespace.

Every case opens its own connection (so no rate limit carries over), checks it echoes, sends the segment under
test, records every reply (barrier-delimited, see xtlib), then proves the stream is intact: the next in-order
data is echoed exactly, so injected bytes were never delivered. Cases end with an exact RST.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

from xtlib import classify, setup, tcp_of, Flow

env, report = setup(__doc__)
counts = {"conns_opened": 0, "conns_reset": 0, "challenge_acks": 0}


def established(port, family=4, timestamps=False):
    f = Flow(env, port, family, timestamps=timestamps)
    f.open()
    if f.echo(b"first\n") != b"first\n":
        raise RuntimeError("the connection does not echo")
    # Linux acknowledges the data at once (quick-ack) before its app echoes it: forget that ACK.
    f.barrier()
    if port == env.xdp:
        counts["conns_opened"] += 1
    return f


def close(f, port):
    f.reset()
    if port == env.xdp:
        counts["conns_reset"] += 1


def challenge(port, n=1):
    if port == env.xdp:
        counts["challenge_acks"] += n


def ack_shape(f, segs):
    """The replies, and whether each ACK is <SEQ=SND.NXT><ACK=RCV.NXT> (our view: rcv_nxt, snd_nxt)."""
    return {"replies": classify(segs),
            "acks_exact": all(tcp_of(p).seq == f.rcv_nxt and tcp_of(p).ack == f.snd_nxt for p in segs)}


def intact(f):
    return f.echo(b"good\n").decode(errors="replace")


GOOD = "good\n"


def exact_rst(family):
    def run(port):
        f = established(port, family)
        segs = f.replies("R", ack=0)
        if port == env.xdp:
            counts["conns_reset"] += 1
        # Gone: a SYN on the tuple is a new connection (SYN-ACK), where a live one would get a challenge ACK.
        # (Not data: Linux's additive cookie would take data whose seq and ack both moved by the echoed bytes as
        # a valid cookie ACK and open a connection again.)
        sa = Flow(env, port, family)
        sa.sport = f.sport
        after = sa.syn()
        return {"replies": classify(segs), "after": classify([after] if after else [])}
    return run


report.compare("rfc5961_3_2_exact_rst_closes", exact_rst(4), {"replies": [], "after": ["SA"]})
report.compare("rfc5961_3_2_exact_rst_closes_v6", exact_rst(6), {"replies": [], "after": ["SA"]})


def rst_at(offset, family=4, expect_challenge=False):
    def run(port):
        f = established(port, family)
        segs = f.replies("R", seq=f.snd_nxt + offset, ack=0)
        if expect_challenge:
            challenge(port)
        shape = ack_shape(f, segs)
        shape["stream"] = intact(f)
        close(f, port)
        return shape
    return run


report.compare("rfc5961_3_2_rst_in_window_gets_challenge_ack", rst_at(100, expect_challenge=True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})
report.compare("rfc5961_3_2_rst_in_window_gets_challenge_ack_v6", rst_at(1, 6, expect_challenge=True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})
report.compare("rfc5961_3_2_rst_beyond_window_is_ignored", rst_at(1 << 30), {"replies": [], "acks_exact": True,
                                                                             "stream": GOOD})
report.compare("rfc5961_3_2_rst_just_below_window_is_ignored", rst_at(-1), {"replies": [], "acks_exact": True,
                                                                            "stream": GOOD})


def syn_at(offset, expect_challenge):
    def run(port):
        f = established(port)
        segs = f.replies("S", seq=f.snd_nxt + offset, ack=0, options=[("MSS", 1460)])
        if expect_challenge:
            challenge(port)
        shape = ack_shape(f, segs)
        shape["stream"] = intact(f)
        close(f, port)
        return shape
    return run


report.compare("rfc5961_4_2_syn_in_window_gets_challenge_ack", syn_at(10, True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})
# RFC 5961 4.2: "regardless of the sequence number" - outside the window too it is a challenge ACK (same bytes as
# the first check's ACK; xdptcp counts it as a challenge ACK).
report.compare("rfc5961_4_2_syn_outside_window_gets_a_challenge_ack", syn_at(1 << 30, True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})


def bad_ack(delta, expect_challenge):
    """Data whose ACK field is delta away from the server's SND.NXT: never delivered."""
    def run(port):
        f = established(port)
        segs = f.replies("PA", ack=f.rcv_nxt + delta, payload=b"EVIL\n")
        if expect_challenge:
            challenge(port)
        shape = ack_shape(f, segs)
        shape["stream"] = intact(f)  # same sequence number as the injection: only "good" may come back
        close(f, port)
        return shape
    return run


report.compare("rfc9293_3_10_7_4_ack_beyond_snd_nxt_is_acked_and_dropped", bad_ack(1000, True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})
report.compare("rfc5961_5_2_ack_too_old_gets_challenge_ack", bad_ack(-(1 << 20), True),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})


def data_at(offset):
    def run(port):
        f = established(port)
        segs = f.replies("PA", seq=f.snd_nxt + offset, payload=b"ahead\n")
        shape = ack_shape(f, segs)
        shape["stream"] = intact(f)
        # Where the server took the held bytes after ours, its RCV.NXT is past them: the RST must be sent there.
        f.snd_nxt += max(0, len(shape["stream"].encode()) - len(GOOD))
        close(f, port)
        return shape
    return run


report.compare("rfc9293_3_10_7_4_data_outside_window_gets_dup_ack", data_at(1 << 20),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})
# Both hold the segment ahead of the gap and deliver it once the gap is filled (RFC 9293 §3.10.7.4).
report.compare("rfc9293_3_10_7_4_data_after_a_gap_gets_dup_ack_and_is_held", data_at(len(GOOD)),
               {"replies": ["A"], "acks_exact": True, "stream": GOOD + "ahead\n"})


def no_timestamp_after_negotiation(port):
    f = established(port, timestamps=True)
    if port == env.xdp:
        replies = classify(f.replies("PA", options=[], payload=b"EVIL\n"))
    else:
        # Linux takes it and echoes it from user space, at no fixed point relative to a barrier.
        f.send("PA", options=[], payload=b"EVIL\n")
        replies = "not compared"
    # "good" goes at the same sequence number: whatever the server took first is what it echoes.
    shape = {"replies": replies, "stream": intact(f)}
    close(f, port)
    return shape


report.compare("rfc7323_3_2_segment_without_timestamp_is_dropped", no_timestamp_after_negotiation,
               {"replies": [], "stream": GOOD},
               linux_expected={"replies": "not compared", "stream": "EVIL\n"},
               why="stricter on purpose: RFC 7323 3.2 says a non-RST segment without timestamps after they were "
                   "negotiated SHOULD be dropped; Linux accepts it")


def paws(port):
    f = established(port, timestamps=True)
    old = (f.tsval - 100_000) & 0xFFFFFFFF
    segs = f.replies("PA", options=[("NOP", None), ("NOP", None), ("Timestamp", (old, f.ts_recent))],
                     payload=b"EVIL\n")
    shape = ack_shape(f, segs)
    shape["stream"] = intact(f)
    close(f, port)
    return shape


report.compare("rfc7323_5_paws_old_timestamp_is_dropped_and_acked", paws,
               {"replies": ["A"], "acks_exact": True, "stream": GOOD})

report.extra["xdp_expect"] = counts
report.finish()
