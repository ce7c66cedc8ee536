"""Many handshakes split in two: SYN-ACKs collected now, ACKs sent later (after a restart of `xdptcp serve
--app echo --cookie-key-file FILE`, or after a cookie key rotation).

  --phase syn --count N --state FILE   sends N SYNs from a spoofed address (one source port each) and writes every
                                       SYN-ACK's numbers to FILE
  --phase ack --state FILE             completes each handshake with an ACK carrying a line of data and expects
                                       that line echoed (the cookie opened the connection), then resets it

Prints the JSON report ("minted", "opened" and "failed" give the figures).
"""

import json

from harden_lib import only_spoofed, watchdog
from xtlib import setup, tcp_of, Flow


def extra(ap):
    ap.add_argument("--phase", choices=["syn", "ack"], required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--state", required=True)


env, report = setup(__doc__, extra)
watchdog(120)
only_spoofed(env)
a = env.args
if a.phase == "syn":
    minted = []
    retransmitted = 0
    for _ in range(a.count):
        f = Flow(env, env.xdp)
        # Like any client, send the SYN again when no SYN-ACK comes (beside a busy load a frame can be lost);
        # a cookie server answers the same SYN with the same SYN-ACK.
        for attempt in range(3):
            f.send("S", seq=f.iss, ack=0, options=[("MSS", 1460)])
            sa = f.expect(lambda p: tcp_of(p).flags == "SA", timeout=1.0)
            if sa is not None:
                minted.append({"sport": f.sport, "iss": f.iss, "cookie": tcp_of(sa).seq})
                break
            retransmitted += 1
    with open(a.state, "w") as out:
        json.dump(minted, out)
    report.case("every_syn_answered_with_a_cookie", len(minted) == a.count, f"{len(minted)} of {a.count} SYN-ACKs")
    report.extra["minted"] = len(minted)
    report.extra["syn_retransmissions"] = retransmitted
else:
    with open(a.state) as src:
        minted = json.load(src)
    failed = []
    for m in minted:
        f = Flow(env, env.xdp)
        f.sport, f.iss = m["sport"], m["iss"]
        f.snd_nxt = (m["iss"] + 1) & 0xFFFFFFFF
        f.rcv_nxt = (m["cookie"] + 1) & 0xFFFFFFFF
        line = f"minted earlier, port {f.sport}\n".encode()
        f.send("PA", payload=line)
        f.snd_nxt = (f.snd_nxt + len(line)) & 0xFFFFFFFF
        back = f.read(len(line))
        if back != line:
            failed.append((f.sport, back.decode(errors="replace")))
        f.reset()
    report.case("every_cookie_minted_earlier_opens_a_connection_now", not failed and minted,
                f"{len(minted) - len(failed)} of {len(minted)} opened; failures (port, echo): {failed[:5]}")
    report.extra["opened"] = len(minted) - len(failed)
    report.extra["failed"] = len(failed)
report.finish()
