"""Helpers of the harden_*.py scripts on top of xtlib: a real Linux client connection (a kernel socket of the peer
namespace) whose live sequence numbers are read from the server's segments as they arrive, segments forged on
that connection's tuple, and reply collection delimited by a barrier SYN (see xtlib).

The forged segments carry the kernel client's own address and port: the server's answers (challenge ACKs, dup
ACKs) reach the kernel client, which takes them for the harmless duplicates they are. Traffic stays between the
test's two namespaces.
"""

import socket
import struct
import threading
import time

from scapy.all import IP, TCP, Ether, Raw

from xtlib import WAIT, Flow, tcp_of

M32 = 0xFFFFFFFF


def after(a, b):
    """a comes after b in sequence space (RFC 9293 modular comparison)."""
    return 0 < ((a - b) & M32) < (1 << 31)


ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Outgoing:
    """The latest TCP state each kernel client socket of this namespace put on the wire, keyed by its local port:
    (sequence number after the segment, TSval). Parsed by hand (scapy is too slow for a busy client)."""

    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        self.sock.bind((iface, 0))
        self.latest = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._rx, daemon=True).start()

    def _rx(self):
        while True:
            data, addr = self.sock.recvfrom(65535)
            if addr[2] != PACKET_OUTGOING or len(data) < 54 or data[12:14] != b"\x08\x00" or data[23] != 6:
                continue
            ihl = (data[14] & 0x0F) * 4
            tot = struct.unpack_from("!H", data, 16)[0]
            t = 14 + ihl
            sport, seq, off_flags = struct.unpack_from("!H", data, t)[0], struct.unpack_from("!I", data, t + 4)[0], data[t + 12]
            doff = (off_flags >> 4) * 4
            flags = data[t + 13]
            end = (seq + tot - ihl - doff + (flags & 0x01) + ((flags >> 1) & 0x01)) & M32
            tsval = None
            i = t + 20
            while i < t + doff:
                kind = data[i]
                if kind == 0:
                    break
                if kind == 1:
                    i += 1
                    continue
                if i + 1 >= len(data) or data[i + 1] < 2:
                    break
                if kind == 8 and data[i + 1] == 10:
                    tsval = struct.unpack_from("!I", data, i + 2)[0]
                i += data[i + 1]
            with self.lock:
                old = self.latest.get(sport)
                if old is None or not after(old[0], end):
                    self.latest[sport] = (end, tsval if tsval is not None else (old[1] if old else None))
                elif tsval is not None and (old[1] is None or after(tsval, old[1])):
                    self.latest[sport] = (old[0], tsval)

    def get(self, port):
        with self.lock:
            return self.latest.get(port, (None, None))


_outgoing = None


def outgoing(env):
    global _outgoing
    if _outgoing is None:
        _outgoing = Outgoing(env.args.iface)
    return _outgoing


class KernelConn:
    """One Linux TCP connection from the peer namespace to (server4, port), with its state as the wire shows it:

    snd_nxt  the client's next sequence number as the server acknowledged it (the server's RCV.NXT)
    rcv_nxt  the server's next sequence number (its SND.NXT), from the segments it sent
    wnd      the server's receive window in bytes (window field scaled by the SYN-ACK's window scale)
    """

    def __init__(self, env, port):
        self.env = env
        self.port = port
        self.out = outgoing(env)
        self.s = socket.create_connection((env.server4, port), timeout=WAIT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_ip, self.cport = self.s.getsockname()[:2]
        self.snd_nxt = None
        self.rcv_nxt = None
        self.wscale = 0
        self.wnd = None
        # RFC 7323: the client's latest TSval the server echoed (TS.Recent on the server), and the server's TSval.
        self.ts_recent = None
        self.ts_peer = None
        # The server has sent data on this connection (so the numbers above are past the first exchange).
        self.data_seen = False

    def mine(self, p):
        """A segment from the server to this connection."""
        t = tcp_of(p)
        return (t is not None and IP in p and p[IP].src == self.env.server4 and p[IP].dst == self.client_ip
                and t.sport == self.port and t.dport == self.cport)

    def learn(self, segs=None):
        """Updates the connection's numbers from the server's segments (all queued ones when segs is None)."""
        if segs is None:
            segs = self.env.wire.take_all(self.mine)
        for p in segs:
            t = tcp_of(p)
            flags = str(t.flags)
            if "S" in flags:
                for k, v in t.options:
                    if k == "WScale":
                        self.wscale = v
            end = (t.seq + len(bytes(t.payload)) + ("S" in flags) + ("F" in flags)) & M32
            if self.rcv_nxt is None or after(end, self.rcv_nxt):
                self.rcv_nxt = end
            if "A" in flags and (self.snd_nxt is None or after(t.ack, self.snd_nxt)):
                self.snd_nxt = t.ack
            if "A" in flags and "S" not in flags:
                self.wnd = t.window << self.wscale
            self.data_seen |= len(bytes(t.payload)) > 0
            for k, v in t.options:
                if k == "Timestamp":
                    if self.ts_recent is None or after(v[1], self.ts_recent):
                        self.ts_recent = v[1]
                    self.ts_peer = v[0]

    def read_exactly(self, n, settle=0.2):
        """Reads n bytes (or up to EOF/error), then whatever else arrives within settle seconds: what the
        server really sent, so an injected byte too many shows."""
        got = b""
        self.s.settimeout(WAIT)
        while len(got) < n:
            chunk = self.s.recv(n - len(got))
            if not chunk:
                return got
            got += chunk
        if settle <= 0:
            return got
        self.s.settimeout(settle)
        try:
            while True:
                chunk = self.s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        return got

    def echo(self, data, settle=0.1):
        """Sends data and returns what comes back (the echo app echoes it), or 'reset' / 'error: ...'."""
        try:
            self.s.sendall(data)
            back = self.read_exactly(len(data), settle)
        except ConnectionResetError:
            return "reset"
        except OSError as e:
            return f"error: {e!r}"
        # Let the server's last segments arrive, then learn the numbers from them.
        time.sleep(0.02)
        self.learn()
        return back.decode(errors="replace")

    def frame(self, flags, seq, ack, payload=b"", window=502, timestamps=None, ts_ahead=0):
        """A segment on this connection's tuple. It carries the timestamps the server expects (the client's
        latest TSval, the server's latest TSval) unless it is a RST or timestamps is False: a non-RST segment
        without them is dropped by RFC 7323 §3.2 before any other check could be exercised."""
        if timestamps is None:
            timestamps = "R" not in flags
        options = []
        if timestamps and self.ts_recent is not None:
            # The client's latest TSval on the wire (its delayed ACK may have moved the server's TS.Recent past
            # the value the server last echoed), plus ts_ahead.
            tsval = self.ts_recent
            sent = self.out.get(self.cport)[1]
            if sent is not None and after(sent, tsval):
                tsval = sent
            options = [("NOP", None), ("NOP", None), ("Timestamp", ((tsval + ts_ahead) & M32, self.ts_peer))]
        t = TCP(sport=self.cport, dport=self.port, flags=flags, seq=seq & M32, ack=ack & M32, window=window,
                options=options)
        f = Ether(src=self.env.client_mac, dst=self.env.server_mac) / IP(src=self.client_ip, dst=self.env.server4) / t
        if payload:
            f = f / Raw(payload)
        return f

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def big_receive_buffer(env):
    """Bursts of replies (hundreds of connections at once) must not overflow the raw socket's queue while scapy
    parses them one by one."""
    env.wire.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)


def barrier(env, port, pred, family=4, settle=0.02):
    """Every server segment matching pred up to now (the barrier's own excepted): a SYN from a spoofed address,
    whose SYN-ACK comes only after the server has answered everything sent before it (one queue, handled in
    order); then `settle` seconds for what other paths (the kernel's) answer."""
    b = Flow(env, port, family)
    b.send("S", options=[("MSS", 1460)])
    theirs = lambda p: pred(p) and not b.mine(p)  # noqa: E731
    before, got = env.wire.drain_before(theirs, b.mine)
    if got is None:
        raise RuntimeError(f"barrier SYN to port {port} got no SYN-ACK within {WAIT}s")
    time.sleep(settle)
    before += env.wire.take_all(theirs)
    env.wire.take_all(b.mine)
    return before


SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10


class TagSniffer:
    """Incoming frames with the 802.1Q tag the kernel took off them: on receive, Linux moves a VLAN tag out of the
    frame into the packet's metadata before a raw socket sees it, and hands it back only as PACKET_AUXDATA."""

    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.05)

    def frames(self, seconds):
        """(frame bytes, VLAN id or None) of every incoming frame during the next `seconds`."""
        out = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data, anc, _, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(32))
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            vid = None
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                    status = struct.unpack_from("I", cdata, 0)[0]
                    tci = struct.unpack_from("H", cdata, 16)[0]
                    if status & TP_STATUS_VLAN_VALID:
                        vid = tci & 0x0FFF
            out.append((data, vid))
        return out

    def close(self):
        self.sock.close()


def only_spoofed(env):
    """Lets the scripts' raw socket receive only frames to the spoofed addresses: beside a busy kernel client (a
    load across a restart), every other frame would only be parsed and queued for nothing."""
    from scapy.arch.linux import attach_filter
    attach_filter(env.wire.sock, f"dst host {env.spoof4} or dst host {env.spoof6}", env.args.iface)
    env.wire.take_all(lambda p: True)


def watchdog(seconds):
    """Ends the script (non-zero exit) if it runs longer than `seconds`: a test must never hang on it."""
    import signal
    signal.alarm(seconds)