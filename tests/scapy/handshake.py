"""The SYN-ACK and the cookie handshake of `xdptcp serve --app echo`, compared with a Linux echo listener that
answers every SYN with a SYN cookie (net.ipv4.tcp_syncookies=2 in the server namespace: the careful Linux a
cookie-only stack should match).

SYN-ACK: MSS always; window scale and SACK-permitted only when the SYN carried timestamps (a cookie can only
remember them inside the timestamp it sends back, RFC 7323 + RFC 4987 §3.6); the timestamp echoes the SYN's.
Cookies: a right cookie opens the connection and data on that ACK is delivered; a wrong cookie, a SYN-ACK, an
RST (with or without ACK) open nothing, and a reset answers exactly where Linux sends one.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

import ipaddress

from xtlib import classify, opts, setup, tcp_of, Flow

env, report = setup(__doc__)
ECHO_LINE = b"hello over a cookie\n"
counts = {"conns_opened": 0, "cookies_rejected": 0}


def synack_shape(sa, syn_tsval=None):
    """What matters in a SYN-ACK, comparably: flags, option kinds, MSS value, whether TS echoes the SYN."""
    if sa is None:
        return "no SYN-ACK"
    o = opts(sa)
    shape = {"flags": str(tcp_of(sa).flags), "options": sorted(o), "mss": o.get("MSS")}
    if "Timestamp" in o:
        shape["ts_echoed"] = o["Timestamp"][1] == syn_tsval
    return shape


FULL = "full"


def syn_options(kind, tsval):
    return {
        FULL: [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (tsval, 0)), ("NOP", None), ("WScale", 7)],
        "no-ts": [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")],
        "mss-only": [("MSS", 1460)],
        "none": [],
    }[kind]


def synack_case(kind, family):
    def run(port):
        f = Flow(env, port, family)
        sa = f.syn(options=syn_options(kind, 777_000 + family))
        return synack_shape(sa, 777_000 + family)
    return run


mss4, mss6 = 1460, 1440
all_opts = ["MSS", "SAckOK", "Timestamp", "WScale"]
report.compare("synack_v4_full_options_echo_timestamp", synack_case(FULL, 4),
               {"flags": "SA", "options": all_opts, "mss": mss4, "ts_echoed": True})
report.compare("synack_v6_full_options_echo_timestamp", synack_case(FULL, 6),
               {"flags": "SA", "options": all_opts, "mss": mss6, "ts_echoed": True})
report.compare("synack_without_timestamps_has_mss_only", synack_case("no-ts", 4),
               {"flags": "SA", "options": ["MSS"], "mss": mss4},
               why="a cookie cannot remember window scale or SACK without the timestamp: Linux with cookies drops "
                   "them too")
report.compare("synack_mss_only_syn", synack_case("mss-only", 4), {"flags": "SA", "options": ["MSS"], "mss": mss4})
report.compare("synack_optionless_syn_still_gets_mss", synack_case("none", 6),
               {"flags": "SA", "options": ["MSS"], "mss": mss6})


def synack_ack_number(port):
    f = Flow(env, port)
    sa = f.syn()
    return {"ack_is_isn_plus_1": tcp_of(sa).ack == (f.iss + 1) & 0xFFFFFFFF}


report.compare("rfc9293_synack_acknowledges_isn_plus_one", synack_ack_number, {"ack_is_isn_plus_1": True})


def syn_twice_same_cookie(port):
    # Stateless: the same SYN again (a retransmission) earns the same ISN, so either SYN-ACK completes it.
    f = Flow(env, port)
    a = tcp_of(f.syn()).seq
    b = tcp_of(f.syn()).seq
    f.reset()
    return {"same_isn": a == b}


report.compare("retransmitted_syn_gets_the_same_cookie", syn_twice_same_cookie, {"same_isn": True})


def syn_with_data(port):
    # Data on a SYN is not taken by a cookie listener (no state to keep it in): the SYN-ACK acknowledges the SYN
    # only, and the client sends the data again after the handshake.
    f = Flow(env, port)
    f.send("S", seq=f.iss, ack=0, options=[("MSS", 1460)], payload=b"early data\n")
    sa = f.expect(lambda p: tcp_of(p).flags == "SA")
    return {"synack_acks_syn_only": sa is not None and tcp_of(sa).ack == (f.iss + 1) & 0xFFFFFFFF}


report.compare("data_on_a_syn_is_not_acknowledged", syn_with_data, {"synack_acks_syn_only": True})


def reply_to_source_mac():
    # xdptcp answers the MAC the segment came from (it sits behind a router and keeps no neighbour table).
    other = "02:77:00:00:00:99"
    f = Flow(env, env.xdp, client_mac=other)
    sa = f.syn(src_mac=other)
    ok = sa is not None and sa.dst == other
    report.case("synack_goes_to_the_source_mac", ok, f"SYN-ACK to {sa.dst if sa else None}, SYN from {other}")


reply_to_source_mac()


# --- cookie acceptance ----------------------------------------------------------------------------------------
def cookie_ack_opens(port, data_on_ack, timestamps=False, family=4):
    f = Flow(env, port, family, timestamps=timestamps)
    if data_on_ack:
        f.open(ECHO_LINE)
        back = f.read(len(ECHO_LINE))
    else:
        f.open()
        back = f.echo(ECHO_LINE)
    f.reset()
    if port == env.xdp:
        counts["conns_opened"] += 1
    return {"echo": back.decode(errors="replace")}


ok_echo = {"echo": ECHO_LINE.decode()}
report.compare("cookie_ack_opens_then_data_is_echoed", lambda p: cookie_ack_opens(p, False), ok_echo)
report.compare("cookie_ack_carrying_data_delivers_it", lambda p: cookie_ack_opens(p, True), ok_echo)
report.compare("cookie_ack_with_timestamps_delivers_data", lambda p: cookie_ack_opens(p, True, True), ok_echo)
report.compare("cookie_ack_v6_delivers_data", lambda p: cookie_ack_opens(p, True, False, 6), ok_echo)


# --- cookie refusal -------------------------------------------------------------------------------------------
def rst_shape(segs, want_seq):
    """['R' or 'RA' ...] plus whether each RST's sequence number is the one RFC 9293 prescribes."""
    return {"replies": classify(segs), "rst_seq_ok": all(tcp_of(p).seq == want_seq for p in segs if "R" in str(
        tcp_of(p).flags))}


def probe_no_connection(f, port):
    """Data on the tuple after a refusal: with no connection it is an ACK to a listener again -> RST."""
    segs = f.replies("PA", payload=b"are you there?\n")
    if port == env.xdp:
        counts["cookies_rejected"] += 1
    return classify(segs)


def wrong_cookie(port):
    f = Flow(env, port)
    sa = f.syn()
    bad_ack = (tcp_of(sa).seq + 2) & 0xFFFFFFFF
    segs = f.replies("A", ack=bad_ack)
    if port == env.xdp:
        counts["cookies_rejected"] += 1
    f.rcv_nxt = bad_ack
    shape = rst_shape(segs, bad_ack)
    shape["after"] = probe_no_connection(f, port)
    return shape


report.compare("wrong_cookie_is_reset_and_opens_nothing", wrong_cookie,
               {"replies": ["R"], "rst_seq_ok": True, "after": ["R"]})


def shifted_pair(port):
    # seq and ack moved forward by the same amount: Linux's additive cookie cannot tell; ours MACs the exact pair.
    d = 1000
    f = Flow(env, port)
    sa = f.syn()
    ack = (tcp_of(sa).seq + 1 + d) & 0xFFFFFFFF
    segs = f.replies("A", seq=f.snd_nxt + d, ack=ack)
    f.snd_nxt = (f.snd_nxt + d) & 0xFFFFFFFF
    f.rcv_nxt = ack
    # Data on the shifted tuple: a connection echoes it, no connection means a listener's RST.
    after = f.replies("PA", payload=b"shifted\n")
    if port == env.xdp:
        counts["cookies_rejected"] += 2
    f.reset()
    return {"replies": classify(segs), "data_answer": "RST" if any("R" in str(tcp_of(p).flags) for p in after)
            else "no RST"}


report.compare("cookie_with_seq_and_ack_shifted_alike_is_refused", shifted_pair,
               {"replies": ["R"], "data_answer": "RST"},
               linux_expected={"replies": [], "data_answer": "no RST"},
               why="stricter on purpose: Linux's additive cookie accepts any ACK whose seq and ack moved by the same "
                   "amount; xdptcp's cookie MACs the exact (client ISN, server ISN) pair")


def syn_ack_to_listener(port):
    f = Flow(env, port)
    sa = f.syn()
    ack = (tcp_of(sa).seq + 1) & 0xFFFFFFFF
    segs = f.replies("SA", seq=f.iss, ack=ack)
    # Probe with a wrong ack: the right cookie would (rightly) open a connection now.
    f.rcv_nxt = (ack + 7) & 0xFFFFFFFF
    return {**rst_shape(segs, ack), "after": probe_no_connection(f, port)}


report.compare("ack_with_syn_is_reset_and_opens_nothing", syn_ack_to_listener,
               {"replies": ["R"], "rst_seq_ok": True, "after": ["R"]})


def rst_ack_with_right_cookie(port):
    f = Flow(env, port)
    sa = f.syn()
    ack = (tcp_of(sa).seq + 1) & 0xFFFFFFFF
    segs = f.replies("RA", ack=ack)
    f.rcv_nxt = ack
    # The cookie was right: the probe's ACK validates and opens the connection now. So probe with a wrong ack.
    f.rcv_nxt = (ack + 7) & 0xFFFFFFFF
    return {"replies": classify(segs), "after": probe_no_connection(f, port)}


report.compare("rst_ack_carrying_a_right_cookie_is_ignored", rst_ack_with_right_cookie, {"replies": [], "after": ["R"]})


def bare_rst(port):
    f = Flow(env, port)
    f.syn()
    return {"replies": classify(f.replies("R", ack=0))}


report.compare("rst_to_a_listener_is_ignored", bare_rst, {"replies": []})


def fin_alone(port):
    f = Flow(env, port)
    return {"replies": classify(f.replies("F", ack=0))}


report.compare("fin_without_ack_to_a_listener_is_dropped", fin_alone, {"replies": []})


def ack_without_syn(port):
    f = Flow(env, port)
    f.rcv_nxt = 123456789
    segs = f.replies("A")
    if port == env.xdp:
        counts["cookies_rejected"] += 1
    return rst_shape(segs, 123456789)


report.compare("ack_out_of_nowhere_is_reset_with_seq_seg_ack", ack_without_syn, {"replies": ["R"], "rst_seq_ok": True})



def foreign_destination(family):
    """A SYN to our MAC but to an address of the subnet this host does not have: the kernel (not forwarding)
    drops it, and xdptcp, serving the host's own addresses, leaves it to the kernel."""
    def run(port):
        f = Flow(env, port, family)
        f.server_ip = str(ipaddress.ip_address(f.server_ip) + 200)
        return classify(f.replies("S", seq=f.iss, ack=0, options=[("MSS", 1460)]))
    return run


report.compare("syn_to_an_address_this_host_does_not_have_is_not_answered_v4", foreign_destination(4), [])
report.compare("syn_to_an_address_this_host_does_not_have_is_not_answered_v6", foreign_destination(6), [])

report.extra["xdp_expect"] = counts
report.finish()
