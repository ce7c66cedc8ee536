"""Shared helpers of the scapy scripts that probe `xdptcp serve` from the peer namespace.

What it owns: one raw AF_PACKET socket on the peer's interface (frames are built with scapy and sent as bytes;
every frame that arrives is parsed and queued), spoofed client flows, and the report every script prints.

The peer sends from addresses it does not own (given static neighbour entries on the server side by the Rust
test), so its own kernel drops the replies as "not for me" instead of answering them with RST, and the
replies are still seen here. Traffic stays between the test's two namespaces.

"Nothing came back" is decided without guessing a timeout: after the segment under test, a barrier SYN is sent
from another port, and its SYN-ACK can only come back after any reply to the segment under test, because the
server handles one queue in order (xdptcp's worker, Linux's softirq). Whatever arrived for the flow before the
barrier's SYN-ACK is the complete reply.
"""

import argparse
import json
import os
import random
import socket
import sys
import threading
import time

from scapy.all import IP, TCP, Ether, IPv6, Raw, conf  # noqa: E402

conf.verb = 0

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
WAIT = 3.0  # seconds to wait for a reply that must come


def common_args(description):
    """The arguments every script takes (the Rust runner passes them all)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--iface", required=True, help="the peer's interface")
    ap.add_argument("--client-mac", required=True)
    ap.add_argument("--server-mac", required=True)
    ap.add_argument("--server4", required=True)
    ap.add_argument("--server6", required=True)
    ap.add_argument("--spoof4", required=True, help="an IPv4 address of the subnet nobody owns")
    ap.add_argument("--spoof6", required=True, help="an IPv6 address of the subnet nobody owns")
    ap.add_argument("--xdp-port", type=int, required=True, help="the port xdptcp serves")
    ap.add_argument("--linux-port", type=int, required=True, help="the port of the Linux reference listener")
    return ap


class Wire:
    """A raw socket on the peer's interface: sends frames, queues every TCP/ICMP frame that arrives."""

    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.frames = []
        self.cv = threading.Condition()
        threading.Thread(target=self._rx, daemon=True).start()

    def _rx(self):
        while True:
            data, addr = self.sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            try:
                p = Ether(data)
            except Exception:  # noqa: BLE001 - a frame scapy cannot parse is not ours
                continue
            with self.cv:
                self.frames.append(p)
                self.cv.notify_all()

    def send(self, frame):
        self.sock.send(bytes(frame))

    def take(self, pred, timeout=WAIT):
        """Removes and returns the first queued frame matching pred, waiting up to timeout; None if none."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i, p in enumerate(self.frames):
                    if pred(p):
                        return self.frames.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def take_all(self, pred):
        """Removes and returns every queued frame matching pred, in arrival order."""
        with self.cv:
            got = [p for p in self.frames if pred(p)]
            self.frames = [p for p in self.frames if not pred(p)]
            return got

    def drain_before(self, pred, barrier):
        """Waits for the first frame matching barrier; returns (frames matching pred that arrived before it, the
        barrier frame or None). Frames of pred arriving after the barrier stay queued."""
        deadline = time.monotonic() + WAIT
        with self.cv:
            while True:
                for i, p in enumerate(self.frames):
                    if barrier(p):
                        before = [q for q in self.frames[:i] if pred(q)]
                        rest = [q for q in self.frames[:i] if not pred(q)] + self.frames[i + 1:]
                        b = self.frames[i]
                        self.frames = rest
                        return before, b
                left = deadline - time.monotonic()
                if left <= 0:
                    return self.take_all_locked(pred), None
                self.cv.wait(left)

    def take_all_locked(self, pred):
        got = [p for p in self.frames if pred(p)]
        self.frames = [p for p in self.frames if not pred(p)]
        return got


_ports = iter(random.Random(os.getpid() ^ int(time.time())).sample(range(20000, 60000), 20000))


def fresh_port():
    return next(_ports)


def tcp_of(p):
    return p[TCP] if TCP in p else None


def opts(p):
    """The TCP options of p as a dict kind -> value (NOPs and EOL dropped)."""
    return {k: v for k, v in tcp_of(p).options if k not in ("NOP", "EOL")}


def flag_text(p):
    return str(tcp_of(p).flags)


class Flow:
    """One spoofed client connection to (server address, port); tracks sequence numbers like a tiny TCP."""

    def __init__(self, env, port, family=4, client_mac=None, timestamps=False):
        self.env = env
        self.wire = env.wire
        self.family = family
        self.sport = fresh_port()
        self.dport = port
        self.client_ip = env.spoof4 if family == 4 else env.spoof6
        self.server_ip = env.server4 if family == 4 else env.server6
        self.client_mac = client_mac or env.client_mac
        self.iss = random.randrange(1 << 32)
        self.snd_nxt = (self.iss + 1) & 0xFFFFFFFF  # our next sequence number after the SYN
        self.rcv_nxt = None  # the server's next sequence number, once known
        self.irs = None
        self.timestamps = timestamps
        self.tsval = random.randrange(1 << 31)
        self.ts_recent = 0
        self.synack = None

    # --- building and matching -------------------------------------------------------------------------------
    def frame(self, flags, seq=None, ack=None, options=None, payload=b"", window=65535, src_mac=None):
        ip = IP(src=self.client_ip, dst=self.server_ip) if self.family == 4 else IPv6(src=self.client_ip,
                                                                                      dst=self.server_ip)
        if options is None:
            options = []
            if self.timestamps:
                self.tsval += 1
                options = [("NOP", None), ("NOP", None), ("Timestamp", (self.tsval, self.ts_recent))]
        t = TCP(sport=self.sport, dport=self.dport, flags=flags, window=window, options=options,
                seq=self.snd_nxt if seq is None else seq & 0xFFFFFFFF,
                ack=(self.rcv_nxt or 0) if ack is None else ack & 0xFFFFFFFF)
        f = Ether(src=src_mac or self.client_mac, dst=self.env.server_mac) / ip / t
        if payload:
            f = f / Raw(payload)
        return f

    def mine(self, p):
        """A TCP segment from the server to this flow."""
        t = tcp_of(p)
        if t is None or t.sport != self.dport or t.dport != self.sport:
            return False
        ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
        return ip is not None and ip.src == self.server_ip and ip.dst == self.client_ip

    def send(self, flags, **kw):
        self.wire.send(self.frame(flags, **kw))

    def send_frame(self, f):
        self.wire.send(f)

    def replies(self, flags, **kw):
        """Sends one segment and returns every segment the server sent this flow in answer (barrier-delimited)."""
        self.send(flags, **kw)
        return self.barrier()

    def barrier(self):
        """Every reply to this flow up to now: a SYN from another port of the same family, whose SYN-ACK can only
        come back after them."""
        b = Flow(self.env, self.dport, self.family)
        b.send("S", options=[("MSS", 1460)])
        before, got = self.wire.drain_before(self.mine, b.mine)
        if got is None:
            raise RuntimeError(f"barrier SYN to port {self.dport} got no SYN-ACK within {WAIT}s")
        # Leave the barrier's port clean on a stateful (Linux) listener too.
        time.sleep(0.02)
        before += self.wire.take_all(self.mine)
        self.wire.take_all(b.mine)
        return before

    def expect(self, pred=lambda p: True, timeout=WAIT):
        return self.wire.take(lambda p: self.mine(p) and pred(p), timeout)

    # --- the usual moves -------------------------------------------------------------------------------------
    def syn(self, options=None, src_mac=None):
        """Sends our SYN and returns the server's SYN-ACK (or None)."""
        if options is None:
            options = [("MSS", 1460)]
            if self.timestamps:
                options = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (self.tsval, 0)), ("NOP", None),
                           ("WScale", 7)]
        self.send("S", seq=self.iss, ack=0, options=options, src_mac=src_mac)
        sa = self.expect(lambda p: tcp_of(p).flags == "SA")
        if sa is not None:
            self.synack = sa
            self.irs = tcp_of(sa).seq
            self.rcv_nxt = (self.irs + 1) & 0xFFFFFFFF
            ts = opts(sa).get("Timestamp")
            if ts:
                self.ts_recent = ts[0]
        return sa

    def open(self, data=b""):
        """Three-way handshake (data optionally on the ACK). Returns the SYN-ACK; raises if none came."""
        sa = self.syn()
        if sa is None:
            raise RuntimeError(f"no SYN-ACK from port {self.dport}")
        self.send("PA" if data else "A", payload=data)
        self.snd_nxt = (self.snd_nxt + len(data)) & 0xFFFFFFFF
        return sa

    def data(self, payload):
        """Sends in-order data (PSH+ACK) and advances snd_nxt."""
        self.send("PA", payload=payload)
        self.snd_nxt = (self.snd_nxt + len(payload)) & 0xFFFFFFFF

    def read(self, n, timeout=WAIT):
        """Collects n bytes of in-order data from the server (ACKing them); returns the bytes (fewer on timeout)."""
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < n:
            p = self.expect(lambda q: len(bytes(tcp_of(q).payload)) > 0, max(0.0, deadline - time.monotonic()))
            if p is None:
                break
            t = tcp_of(p)
            if t.seq != self.rcv_nxt:
                continue  # a duplicate; we already have it
            got += bytes(t.payload)
            self.rcv_nxt = (self.rcv_nxt + len(bytes(t.payload))) & 0xFFFFFFFF
            self.note_ts(p)
            if "F" in str(t.flags):
                self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
            self.send("A")
        return got

    def read_raw(self, n, timeout=WAIT, edge=None):
        """Collects n bytes of in-order data from the server; acknowledges each segment only when edge is given,
        then with the window that keeps the right edge at edge."""
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < n:
            p = self.expect(lambda q: len(bytes(tcp_of(q).payload)) > 0, max(0.0, deadline - time.monotonic()))
            if p is None:
                break
            t = tcp_of(p)
            if t.seq != self.rcv_nxt:
                continue
            got += bytes(t.payload)
            self.rcv_nxt = (self.rcv_nxt + len(bytes(t.payload))) & 0xFFFFFFFF
            if edge is not None:
                self.send("A", window=(edge - self.rcv_nxt) & 0xFFFF)
        return got

    def read_to_fin(self, ack_fin=True, timeout=WAIT):
        """Collects in-order data up to the server's FIN (ACKing as it goes; the FIN too unless ack_fin is
        False). Returns (data, fin_seen)."""
        got = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            p = self.expect(lambda q: len(bytes(tcp_of(q).payload)) > 0 or "F" in str(tcp_of(q).flags),
                            max(0.0, left))
            if p is None:
                return got, False
            t = tcp_of(p)
            if t.seq != self.rcv_nxt:
                continue
            payload = bytes(t.payload)
            got += payload
            self.rcv_nxt = (self.rcv_nxt + len(payload)) & 0xFFFFFFFF
            self.note_ts(p)
            fin = "F" in str(t.flags)
            if fin and ack_fin:
                self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
            if not fin or ack_fin:
                self.send("A")
            if fin:
                return got, True

    def note_ts(self, p):
        ts = opts(p).get("Timestamp")
        if ts:
            self.ts_recent = ts[0]

    def echo(self, payload):
        """Sends payload and returns what the echo server sends back."""
        self.data(payload)
        return self.read(len(payload))

    def reset(self):
        """An exact RST: closes the connection on both kinds of server (cleanup)."""
        self.send("R", ack=0)


def classify(segments):
    """A short, comparable description of a list of reply segments: e.g. [] or ['RA'] or ['A']."""
    return [flag_text(p) for p in segments]


class Env:
    def __init__(self, args):
        self.args = args
        self.wire = Wire(args.iface)
        self.client_mac = args.client_mac
        self.server_mac = args.server_mac
        self.server4 = args.server4
        self.server6 = args.server6
        self.spoof4 = args.spoof4
        self.spoof6 = args.spoof6
        self.xdp = args.xdp_port
        self.linux = args.linux_port


class Report:
    """Collects cases and prints the JSON verdict as the last line of stdout."""

    def __init__(self):
        self.cases = []
        self.extra = {}

    def case(self, name, ok, detail="", **fields):
        c = {"name": name, "ok": bool(ok), "detail": detail}
        c.update(fields)
        self.cases.append(c)
        mark = "ok  " if ok else "FAIL"
        print(f"{mark} {name}: {detail}", file=sys.stderr)
        return ok

    def compare(self, name, run, expected, linux_expected=None, why=""):
        """Runs run(port) against xdptcp and the Linux listener; both must match their expectation.

        linux_expected defaults to expected (Linux is the reference); where xdptcp is stricter on purpose the
        case says so in why.
        """
        env = ENV
        if linux_expected is None:
            linux_expected = expected
        got = {}
        for who, port in (("xdptcp", env.xdp), ("linux", env.linux)):
            try:
                got[who] = run(port)
            except Exception as e:  # noqa: BLE001 - a case that raises is a failed case, reported
                got[who] = f"error: {e!r}"
        ok = got["xdptcp"] == expected and got["linux"] == linux_expected
        detail = f"xdptcp={got['xdptcp']} linux={got['linux']} expected xdptcp={expected} linux={linux_expected}"
        if why:
            detail += f" ({why})"
        return self.case(name, ok, detail, xdptcp=got["xdptcp"], linux=got["linux"], expected=expected,
                         linux_expected=linux_expected, why=why)

    def finish(self):
        ok = all(c["ok"] for c in self.cases)
        out = {"ok": ok, "cases": self.cases}
        out.update(self.extra)
        print(json.dumps(out))
        sys.exit(0 if ok else 1)


ENV = None


def setup(description, extra=None):
    """Parses the common arguments (plus those extra(parser) adds) and opens the wire."""
    global ENV
    ap = common_args(description)
    if extra:
        extra(ap)
    args = ap.parse_args()
    ENV = Env(args)
    return ENV, Report()
