"""The send window of `xdptcp serve --app echo` against a peer that never shrinks its window, compared with a
Linux echo listener: whatever the order in which the peer's segments arrive, the server must never send beyond
the right edge the peer advertised (RFC 9293 §3.8.6.2.1: the usable window is what the receiver offered).

The peer keeps its right edge fixed while acknowledging data (the window field shrinks as the ACK moves
forward), once with all its segments in order and once after a segment beyond RCV.NXT (as a Linux tail-loss
probe or a reordered segment would send).

Prints the JSON report.
"""

from xtlib import setup, tcp_of, Flow

env, report = setup(__doc__)


def right_edge_kept(port, ahead):
    f = Flow(env, port)
    f.open()
    f.barrier()
    a0 = f.rcv_nxt  # the server's SND.NXT: nothing of it acknowledged yet
    edge = a0 + 3000  # the right edge we offer, and keep, for the whole case
    # 1. A segment ahead of RCV.NXT (in the server's window): the server holds it (the gap before it is never
    #    filled), and it carries an ACK and our window.
    if ahead:
        f.replies("PA", seq=f.snd_nxt + 50_000, window=edge - a0, payload=b"ahead" * 2)
    else:
        f.replies("A", window=edge - a0)
    # 2. 2000 bytes in order; the echo comes back within our window.
    first = b"a" * 1000 + b"b" * 1000
    for i in range(0, 2000, 1000):
        f.send("PA", window=edge - f.rcv_nxt, payload=first[i:i + 1000])
        f.snd_nxt += 1000
    got = f.read_raw(2000, edge=edge)
    # 3. With them acknowledged (same right edge, window 1000 now), ask for 2000 more.
    second = b"c" * 1000 + b"d" * 1000
    for i in range(0, 2000, 1000):
        f.send("PA", window=edge - f.rcv_nxt, payload=second[i:i + 1000])
        f.snd_nxt += 1000
    segs = f.barrier()
    beyond = [(tcp_of(p).seq - a0, tcp_of(p).seq + len(bytes(tcp_of(p).payload)) - a0) for p in segs
              if len(bytes(tcp_of(p).payload)) and tcp_of(p).seq + len(bytes(tcp_of(p).payload)) > edge]
    f.reset()
    return {"first_echo_within_window": got.endswith(b"b" * 100) and len(got) == 2000,
            "segments_beyond_our_right_edge": beyond}


within = {"first_echo_within_window": True, "segments_beyond_our_right_edge": []}
report.compare("rfc9293_3_8_6_2_1_right_edge_kept_in_order", lambda p: right_edge_kept(p, False), within)
report.compare("rfc9293_3_8_6_2_1_right_edge_kept_after_a_segment_ahead", lambda p: right_edge_kept(p, True), within)
report.finish()
