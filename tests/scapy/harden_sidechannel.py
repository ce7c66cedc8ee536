"""Off-path inference through the endpoint-wide challenge ACK budget (the CVE-2016-5696 class of attack), against
`xdptcp serve --app echo`.

An attacker with connections of its own can watch the endpoint-wide budget of challenge ACKs (RFC 5961 §7): it
drains the budget, lets a known number of tokens come back, sends spoofed RSTs for a victim's tuple with a
guessed sequence number, then counts the challenge ACKs its own connections can still earn. A guess inside the
victim's window costs the budget tokens (the victim's challenge ACKs) and the attacker sees fewer; a guess outside
costs nothing. The count tells in-window from out-of-window guesses, which narrows the victim's sequence number
down to an exact RST. Linux narrowed this channel in 2016 by randomising the global limit (which only adds noise
that averaging removes), and since 6.0 keeps no global limit by default (per-socket limits only), as xdptcp
does.

Each trial: drain (30 attacker connections x 5 in-window RSTs), wait 20 ms, send the victim 5 RSTs at a sequence
number inside (or outside) its window, then probe (10 fresh attacker connections x 5 in-window RSTs) and count
the probe's challenge ACKs. Trials alternate inside/outside; connections are reused after their one-second
per-connection budget has passed. The case passes when the two means are within 2 of each other (no channel).

Prints the JSON report with the counts.
"""

import statistics
import time

from harden_lib import KernelConn, barrier, big_receive_buffer, watchdog
from xtlib import setup, tcp_of


def extra(ap):
    ap.add_argument("--trials", type=int, default=12)


env, report = setup(__doc__, extra)
watchdog(240)
big_receive_buffer(env)
FIRST = b"first\n"
DRAIN, PROBE = 30, 10


def live(n):
    conns = [KernelConn(env, env.xdp) for _ in range(n)]
    for c in conns:
        c.s.sendall(FIRST)
    for c in conns:
        c.read_exactly(len(FIRST), settle=0)
    by_port = {c.cport: c for c in conns}
    deadline = time.monotonic() + 10
    while not all(c.data_seen for c in conns) and time.monotonic() < deadline:
        time.sleep(0.05)
        for p in env.wire.take_all(lambda p: tcp_of(p) is not None and tcp_of(p).dport in by_port):
            by_port[tcp_of(p).dport].learn([p])
    return conns


victim = live(1)[0]
drain = live(DRAIN)
probe = live(PROBE)
ours = {c.cport for c in drain + probe + [victim]}


def rsts(conns, k=5):
    return [bytes(c.frame("R", c.snd_nxt + 1 + i, 0)) for c in conns for i in range(k)]


def trial(inside):
    drain_frames = rsts(drain)
    victim_seq = victim.snd_nxt + (100 if inside else 1 << 30)
    victim_frames = [bytes(victim.frame("R", victim_seq + i, 0)) for i in range(5)]
    probe_frames = rsts(probe)
    probe_ports = {c.cport for c in probe}
    for f in drain_frames:
        env.wire.sock.send(f)
    time.sleep(0.02)
    for f in victim_frames + probe_frames:
        env.wire.sock.send(f)
    segs = barrier(env, env.xdp, lambda p: tcp_of(p) is not None and tcp_of(p).dport in ours)
    return sum(1 for p in segs if tcp_of(p).dport in probe_ports)


counts = {True: [], False: []}
for t in range(env.args.trials):
    inside = t % 2 == 0
    counts[inside].append(trial(inside))
    time.sleep(1.1)  # every connection's per-second budget back
for c in drain + probe + [victim]:
    c.close()
m_in, m_out = statistics.mean(counts[True]), statistics.mean(counts[False])
report.case("global_challenge_ack_budget_does_not_reveal_in_window_guesses", abs(m_in - m_out) < 2,
            f"probe challenge ACKs after an in-window victim RST: {counts[True]} (mean {m_in:.1f}); after an "
            f"out-of-window one: {counts[False]} (mean {m_out:.1f})")
report.extra["inside"] = counts[True]
report.extra["outside"] = counts[False]
report.finish()
