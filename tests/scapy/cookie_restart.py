"""A handshake split across a restart of `xdptcp serve --app echo --cookie-key-file FILE`.

  --phase syn   sends a SYN from a spoofed address, prints the SYN-ACK as JSON (sport, iss, cookie)
  --phase ack   completes that handshake (ACK carrying data) and expects the data echoed; with
                --expect-refused, expects a reset instead (a server with other keys must not accept the cookie)

Between the two, the Rust test restarts the server with the same (or another) key file.
"""

from xtlib import classify, setup, tcp_of, Flow


def extra(ap):
    ap.add_argument("--phase", choices=["syn", "ack"], required=True)
    ap.add_argument("--sport", type=int)
    ap.add_argument("--iss", type=int)
    ap.add_argument("--cookie", type=int)
    ap.add_argument("--expect-refused", action="store_true")


env, report = setup(__doc__, extra)
a = env.args
f = Flow(env, env.xdp)
if a.phase == "syn":
    sa = f.syn()
    report.case("syn_answered_with_a_cookie", sa is not None, f"SYN-ACK {classify([sa]) if sa else None}")
    if sa is not None:
        report.extra.update({"sport": f.sport, "iss": f.iss, "cookie": tcp_of(sa).seq})
else:
    f.sport, f.iss = a.sport, a.iss
    f.snd_nxt = (a.iss + 1) & 0xFFFFFFFF
    f.rcv_nxt = (a.cookie + 1) & 0xFFFFFFFF
    line = b"minted before the restart\n"
    if a.expect_refused:
        segs = f.replies("PA", payload=line)
        report.case("cookie_of_other_keys_is_refused", classify(segs) == ["R"], f"replies {classify(segs)}")
    else:
        f.send("PA", payload=line)
        f.snd_nxt = (f.snd_nxt + len(line)) & 0xFFFFFFFF
        back = f.read(len(line))
        report.case("cookie_minted_before_restart_opens_after_it", back == line, f"echo {back!r}")
        f.reset()
report.finish()
