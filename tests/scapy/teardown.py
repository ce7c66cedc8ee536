"""Both teardown orders and TIME-WAIT of `xdptcp serve --app http`, compared with a Linux HTTP listener in the
same namespace (with net.ipv4.tcp_rfc1337=1, so that Linux too ignores RST in TIME-WAIT).

Server closes first (`Connection: close`): response then FIN; our FIN is acknowledged; the server holds
TIME-WAIT, where a retransmitted FIN is acknowledged again, an RST is ignored (RFC 1337) and a SYN with a higher
sequence number opens a new connection. Client closes first (keep-alive, then our FIN): the server answers with
its own FIN and keeps nothing. Simultaneous close: both FINs cross; the server ends in TIME-WAIT too. And after
2MSL (`--time-wait 2`) xdptcp's TIME-WAIT is gone (Linux keeps its fixed 60 s, so that one is xdptcp's alone).

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

import time

from xtlib import classify, setup, tcp_of, Flow

env, report = setup(__doc__, lambda ap: ap.add_argument("--time-wait", type=float, default=2.0))
counts = {"conns_opened": 0, "conns_closed": 0, "conns_reset": 0, "time_wait_entered": 0, "time_wait_reopened": 0}
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: xdptcp\r\nConnection: close\r\n\r\n"
GET_KEEP = b"GET / HTTP/1.1\r\nHost: xdptcp\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\n"
BODY = b"Hello from xdptcp\n"


def add(port, **kw):
    if port == env.xdp:
        for k, v in kw.items():
            counts[k] += v


def exact_acks(f, segs):
    return all(str(tcp_of(p).flags) == "A" and tcp_of(p).seq == f.rcv_nxt and tcp_of(p).ack == f.snd_nxt
               for p in segs)


def server_closes_first(port):
    f = Flow(env, port)
    f.open()
    add(port, conns_opened=1)
    f.data(GET_CLOSE)
    data, fin = f.read_to_fin()
    f.barrier()  # Linux's quick-ack of the request, sent before its app answers
    obs = {"response_then_fin": fin and data.startswith(OK) and data.endswith(BODY)}
    # Our FIN: acknowledged, and the server enters TIME-WAIT.
    segs = f.replies("FA")
    f.snd_nxt = (f.snd_nxt + 1) & 0xFFFFFFFF
    obs["our_fin"] = classify(segs)
    obs["our_fin_acked_exactly"] = exact_acks(f, segs)
    add(port, conns_closed=1, time_wait_entered=1)
    # TIME-WAIT: the peer's FIN again (our last ACK was "lost") is acknowledged again.
    segs = f.replies("FA", seq=f.snd_nxt - 1)
    obs["fin_again_in_time_wait"] = classify(segs)
    obs["fin_again_acked_exactly"] = exact_acks(f, segs)
    # RFC 1337: an RST does not end TIME-WAIT early...
    obs["rst_in_time_wait"] = classify(f.replies("R", ack=0))
    # ...as the next retransmitted FIN shows: still acknowledged.
    obs["fin_after_rst"] = classify(f.replies("FA", seq=f.snd_nxt - 1))
    # A new SYN with a higher sequence number may reopen the tuple (RFC 9293 3.10.7.4, RFC 6191).
    g = Flow(env, port)
    g.sport = f.sport
    g.iss = (f.snd_nxt + 100_000) & 0xFFFFFFFF
    g.snd_nxt = (g.iss + 1) & 0xFFFFFFFF
    sa = g.syn()
    obs["syn_in_time_wait"] = classify([sa] if sa else [])
    if sa:
        g.send("A")
        add(port, conns_opened=1, time_wait_reopened=1)
        g.data(GET_KEEP)
        obs["reopened_serves"] = g.read(len(OK)).startswith(OK)
        g.reset()
        add(port, conns_reset=1)
    return obs


report.compare("server_closes_first_time_wait_rfc1337_and_reopen", server_closes_first, {
    "response_then_fin": True, "our_fin": ["A"], "our_fin_acked_exactly": True,
    "fin_again_in_time_wait": ["A"], "fin_again_acked_exactly": True, "rst_in_time_wait": [],
    "fin_after_rst": ["A"], "syn_in_time_wait": ["SA"], "reopened_serves": True})


def client_closes_first(port):
    f = Flow(env, port)
    f.open()
    add(port, conns_opened=1)
    f.data(GET_KEEP)
    resp = f.read(len(OK))
    f.barrier()  # Linux's quick-ack of the request, sent before its app answers
    obs = {"keep_alive_response": resp.startswith(OK) and resp.endswith(BODY)}
    # Our FIN: the http app closes too, so the server's FIN follows (with the ACK of ours, or after it).
    f.send("FA")
    f.snd_nxt = (f.snd_nxt + 1) & 0xFFFFFFFF
    fin = f.expect(lambda p: "F" in str(tcp_of(p).flags))
    obs["server_fin_acks_ours"] = fin is not None and tcp_of(fin).ack == f.snd_nxt
    if fin is not None:
        f.rcv_nxt = (tcp_of(fin).seq + 1) & 0xFFFFFFFF
        segs = f.replies("A")
        obs["last_ack"] = classify(segs)
        add(port, conns_closed=1)
    # The server closed second, so it holds nothing: the FIN again now meets only the listener.
    obs["fin_after_close"] = classify(f.replies("FA", seq=f.snd_nxt - 1))
    return obs


report.compare("client_closes_first_server_keeps_nothing", client_closes_first, {
    "keep_alive_response": True, "server_fin_acks_ours": True, "last_ack": [], "fin_after_close": ["R"]})


def request_with_fin(port):
    """The request and our FIN in one segment: the response still comes, then the server's FIN."""
    f = Flow(env, port)
    f.open()
    add(port, conns_opened=1)
    f.send("FPA", payload=GET_KEEP)
    f.snd_nxt = (f.snd_nxt + len(GET_KEEP) + 1) & 0xFFFFFFFF
    data, fin = f.read_to_fin()
    add(port, conns_closed=1)
    return {"response_then_fin": fin and data.startswith(OK) and data.endswith(BODY)}


report.compare("request_carrying_fin_is_answered_then_closed", request_with_fin, {"response_then_fin": True})


def simultaneous_close(port):
    """The server's FIN arrives; ours crosses it (not acknowledging it): both sides go through CLOSING."""
    f = Flow(env, port)
    f.open()
    add(port, conns_opened=1)
    f.data(GET_CLOSE)
    data, fin = f.read_to_fin(ack_fin=False)
    f.barrier()  # Linux's quick-ack of the request, sent before its app answers
    obs = {"response_then_fin": fin and data.startswith(OK)}
    # Our FIN acknowledges the response but not the server's FIN.
    segs = f.replies("FA")
    f.snd_nxt = (f.snd_nxt + 1) & 0xFFFFFFFF
    obs["crossing_fin_acked"] = [tcp_of(p).ack == f.snd_nxt for p in segs]
    # Now acknowledge the server's FIN: it is in TIME-WAIT, where our FIN again is acknowledged again.
    f.rcv_nxt = (f.rcv_nxt + 1) & 0xFFFFFFFF
    f.send("A")
    add(port, conns_closed=1, time_wait_entered=1)
    obs["fin_again_in_time_wait"] = classify(f.replies("FA", seq=f.snd_nxt - 1))
    return obs


report.compare("simultaneous_close_ends_in_time_wait", simultaneous_close, {
    "response_then_fin": True, "crossing_fin_acked": [True], "fin_again_in_time_wait": ["A"]})


def time_wait_expires():
    f = Flow(env, env.xdp)
    f.open()
    add(env.xdp, conns_opened=1)
    f.data(GET_CLOSE)
    f.read_to_fin()
    f.replies("FA")
    f.snd_nxt = (f.snd_nxt + 1) & 0xFFFFFFFF
    add(env.xdp, conns_closed=1, time_wait_entered=1)
    inside = classify(f.replies("FA", seq=f.snd_nxt - 1))
    time.sleep(env.args.time_wait + 0.6)
    after = classify(f.replies("FA", seq=f.snd_nxt - 1))
    report.case("time_wait_lasts_2msl_then_is_gone", inside == ["A"] and after == ["R"],
                f"FIN in TIME-WAIT -> {inside}, after {env.args.time_wait} s -> {after} (xdptcp only: Linux's "
                f"TIME-WAIT is a fixed 60 s)")


time_wait_expires()

report.extra["xdp_expect"] = counts
report.finish()
