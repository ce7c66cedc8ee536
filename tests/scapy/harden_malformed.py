"""Malformed and unusual frames to `xdptcp serve --app echo` and to a Linux echo listener in the same namespace:
every truncation of a valid SYN (IPv4 and IPv6; with the IP length kept, and with it cut to match), every
impossible TCP data offset, options whose length is 0, 1 or 255, wrong IP and TCP checksums on every kind of
segment, IPv4 fragments, IPv6 extension headers, VLAN-tagged and double-tagged frames, and SYN+FIN, SYN+RST,
null, Xmas and all-flags segments to a listener and to an established connection.

Every frame comes from a spoofed address of the test subnet; every reply to that address is collected
(barrier-delimited, see xtlib, plus a short wait for the kernel) and compared with what RFC 9293 allows and what
the Linux listener does. Frames the XDP program hands to the kernel (truncated, bad headers, fragments, IPv6
extension headers, stacked tags) then get the kernel's treatment, which on xdptcp's port means no listener: a
reassembled SYN is answered with the kernel's RST there. The cases say so.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards
("exact": must equal; "at_least": other traffic, e.g. neighbour discovery, may add to them).
"""

import time

from scapy.all import (IP, TCP, Dot1AD, Dot1Q, Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, PadN, Raw, fragment)

from harden_lib import TagSniffer, barrier, watchdog
from xtlib import setup, tcp_of, Flow

env, report = setup(__doc__)
watchdog(150)
exact = {"xdp_truncated": 0, "xdp_bad_header": 0, "xdp_fragment": 0, "malformed_bad_tcp_checksum": 0,
         "malformed_bad_ip_checksum": 0, "malformed_source_route": 0, "malformed_bad_ip_options": 0, "malformed_bad_flags": 0, "dropped_listener_junk": 0, "dropped_bad_ack": 0,
         "xdp_vlan_not_allowed": 0}
at_least = {"xdp_not_tcp": 0, "xdp_not_ip": 0}
SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None), ("WScale", 7)]


def count(key, n=1, port=None):
    """Counts n frames under key; worker counters (malformed_*, dropped_*) only for xdptcp's port, XDP counters
    for every frame on the interface."""
    if port is not None and port != env.xdp and not key.startswith("xdp_"):
        return
    (exact if key in exact else at_least)[key] += n


def to_spoof(p):
    ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
    return ip is not None and ip.dst in (env.spoof4, env.spoof6)


def collect(port, family=4):
    """Every frame sent to the spoofed addresses since the last call, except the barrier's own SYN-ACK. The
    kernel answers frames the XDP program passed (reassembled fragments, extension headers) on its own path: it
    gets a moment too."""
    return barrier(env, port, to_spoof, family=family, settle=0.15)


def describe(frames):
    out = []
    for p in frames:
        t = tcp_of(p)
        out.append(str(t.flags) if t is not None else p.lastlayer().name)
    return out


def syn(family=4, port=None, options=None, flags="S", sport=None):
    f = Flow(env, port, family)
    if sport:
        f.sport = sport
    return f.frame(flags, seq=f.iss, ack=0, options=SYN_OPTS if options is None else options)


def send_all(frames):
    for fr in frames:
        env.wire.sock.send(fr if isinstance(fr, bytes) else bytes(fr))


# --- truncations --------------------------------------------------------------------------------------------------
def truncations(family, consistent=False):
    def run(port):
        whole = bytes(syn(family, port))
        l3 = 14
        frames = []
        lo = l3 + 20 if consistent else l3  # with the IP length cut to match, the IP header itself stays whole
        for n in range(lo, len(whole)):
            fr = bytearray(whole[:n])
            if consistent:
                # Cut the IP length to the frame and fix the IPv4 header checksum: only the TCP header is short.
                p = Ether(bytes(fr))
                p[IP].len = n - l3
                del p[IP].chksum
                fr = bytes(p)[:n]
                ihl_end = l3 + 20
                tcp_len = n - ihl_end
                count("xdp_truncated" if tcp_len < 20 or tcp_len >= 40 else "xdp_bad_header")
            else:
                count("xdp_truncated")
            frames.append(bytes(fr))
        send_all(frames)
        return {"frames": len(frames), "replies": describe(collect(port, family))}
    return run


whole4 = len(bytes(syn(4, env.xdp)))
whole6 = len(bytes(syn(6, env.xdp)))
report.compare("every_truncation_of_a_v4_syn_is_dropped_unanswered", truncations(4),
               {"frames": whole4 - 14, "replies": []})
report.compare("every_truncation_of_a_v6_syn_is_dropped_unanswered", truncations(6),
               {"frames": whole6 - 14, "replies": []})
report.compare("every_truncation_of_a_v4_syn_with_the_ip_length_cut_to_match_is_dropped_unanswered",
               truncations(4, consistent=True), {"frames": whole4 - 34, "replies": []})


# --- data offsets -----------------------------------------------------------------------------------------------
def bad_offsets(family):
    def run(port):
        frames = []
        for doff in [d for d in range(16) if d != 5]:
            p = syn(family, port, options=[])
            p = p.__class__(bytes(p))
            p[TCP].dataofs = doff
            del p[TCP].chksum  # a right checksum: only the offset is wrong
            frames.append(bytes(p))
            count("xdp_bad_header")
        send_all(frames)
        return {"frames": len(frames), "replies": describe(collect(port, family))}
    return run


report.compare("every_impossible_data_offset_is_dropped_unanswered_v4", bad_offsets(4), {"frames": 15, "replies": []})
report.compare("every_impossible_data_offset_is_dropped_unanswered_v6", bad_offsets(6), {"frames": 15, "replies": []})


# --- option lengths -----------------------------------------------------------------------------------------------
def odd_option(kind, length):
    """A SYN whose first option is `kind` with length byte `length`, then NOPs to 20 option bytes."""
    def run(port):
        f = Flow(env, port)
        raw = bytes([kind, length]) + bytes([1] * 18)  # a parser that stops early sees nothing else anyway
        # dataofs 10 with the option bytes as scapy's "payload": lengths and checksums then cover them.
        fr = (Ether(src=env.client_mac, dst=env.server_mac) / IP(src=env.spoof4, dst=env.server4)
              / TCP(sport=f.sport, dport=port, flags="S", seq=f.iss, dataofs=10, options=[]) / Raw(raw))
        env.wire.send(fr)
        return {"replies": describe(collect(port))}
    return run


for kind, name in ((2, "mss"), (8, "timestamps"), (99, "unknown_kind")):
    for length in (0, 1, 255):
        report.compare(f"syn_with_{name}_option_length_{length}_gets_one_syn_ack_at_most", odd_option(kind, length),
                       {"replies": ["SA"]}, linux_expected={"replies": []},
                       why="RFC 9293 §3.1 (MUST-7) only asks a TCP to be prepared for illegal option lengths: xdptcp "
                           "stops reading options there and answers the SYN (one SYN-ACK, options before the damage "
                           "kept); Linux 6.18 drops such a SYN without a reply")


def ip_options(raw, counter):
    """An IPv4 SYN carrying the IP options `raw` (a multiple of 4 bytes)."""
    def run(port):
        f = Flow(env, port)
        fr = (Ether(src=env.client_mac, dst=env.server_mac) / IP(src=env.spoof4, dst=env.server4, options=raw)
              / TCP(sport=f.sport, dport=port, flags="S", seq=f.iss, options=SYN_OPTS))
        env.wire.send(fr)
        if counter:
            count(counter, port=port)
        return {"replies": describe(collect(port))}
    return run


for kind, name in ((131, "loose"), (137, "strict")):
    report.compare(f"syn_with_a_{name}_source_route_is_dropped", ip_options(bytes([kind, 7, 4, 10, 9, 9, 9, 0]),
                   "malformed_source_route"), {"replies": []},
                   why="RFC 1122 §3.3.5 lets a host refuse source-routed datagrams; Linux drops them by default "
                       "(accept_source_route=0), and so does xdptcp: a route chosen by the sender helps spoofing")
report.compare("syn_with_an_ip_option_running_past_the_header_is_dropped",
               ip_options(bytes([7, 11, 4, 0, 0, 0, 0, 0]), "malformed_bad_ip_options"), {"replies": []},
               linux_expected={"replies": ["TCP in ICMP"]},
               why="both refuse an option whose length leaves the header; Linux also answers with an ICMP parameter "
                   "problem (RFC 1122 §3.2.2.5, a SHOULD), xdptcp, which sends TCP only, drops it silently")
report.compare("syn_with_a_record_route_option_is_answered", ip_options(bytes([7, 7, 4, 0, 0, 0, 0, 0]), None),
               {"replies": ["SA"]}, why="other IP options are skipped: the SYN-ACK carries none")


# --- checksums ----------------------------------------------------------------------------------------------------
def bad_checksums(family):
    def run(port):
        frames = []
        for flags, payload in (("S", b""), ("A", b""), ("R", b""), ("F", b""), ("FA", b""), ("PA", b"data"),
                               ("SA", b""), ("RA", b"")):
            f = Flow(env, port, family)
            f.rcv_nxt = 777777
            p = f.frame(flags, seq=f.iss, ack=777777 if "A" in flags else 0, payload=payload,
                        options=SYN_OPTS if flags == "S" else [])
            p = p.__class__(bytes(p))
            p[TCP].chksum ^= 0x2222
            frames.append(bytes(p))
            count("malformed_bad_tcp_checksum", port=port)
        if family == 4:
            for flags in ("S", "A", "R"):
                f = Flow(env, port, family)
                p = f.frame(flags, seq=f.iss, ack=5 if "A" in flags else 0, options=[])
                p = p.__class__(bytes(p))
                p[IP].chksum ^= 0x2222
                frames.append(bytes(p))
                count("malformed_bad_ip_checksum", port=port)
        send_all(frames)
        return {"replies": describe(collect(port, family))}
    return run


report.compare("wrong_checksums_on_every_kind_of_segment_earn_no_reply_v4", bad_checksums(4), {"replies": []})
report.compare("wrong_checksums_on_every_kind_of_segment_earn_no_reply_v6", bad_checksums(6), {"replies": []})


# --- IPv4 fragments and IPv6 extension headers: the kernel's -------------------------------------------------------
def frag_syn(port):
    p = syn(4, port)
    frags = fragment(p[IP], fragsize=16)  # the TCP header spans fragments
    for fr in frags:
        env.wire.send(Ether(src=env.client_mac, dst=env.server_mac) / fr)
    count("xdp_fragment", len(frags))
    return {"fragments": len(frags), "replies": describe(collect(port))}


KERNEL_RST = ("the XDP program cannot see the port of a fragmented or extension-headed segment and hands it to the "
              "kernel, which reassembles it and, with no kernel listener on xdptcp's port, answers the SYN with its "
              "own RST (a careful Linux with a listener there would answer it)")
report.compare("fragmented_syn_is_the_kernels_and_gets_its_rst", frag_syn, {"fragments": 3, "replies": ["RA"]},
               linux_expected={"fragments": 3, "replies": ["SA"]}, why=KERNEL_RST)


def lone_fragments(port):
    p = syn(4, port)
    first = IP(bytes(p[IP]))
    first.flags = "MF"
    del first.chksum
    later = IP(bytes(p[IP]))
    later.frag = 3
    del later.chksum
    for fr in (first, later):
        env.wire.send(Ether(src=env.client_mac, dst=env.server_mac) / fr)
    count("xdp_fragment", 2)
    return {"replies": describe(collect(port))}


report.compare("lone_fragments_of_a_syn_earn_no_reply", lone_fragments, {"replies": []},
               why="incomplete: the kernel holds them until its reassembly timeout (30 s) and drops them")


def ext_header(kind):
    def run(port):
        f = Flow(env, port, 6)
        ip = IPv6(src=env.spoof6, dst=env.server6)
        tcp = TCP(sport=f.sport, dport=port, flags="S", seq=f.iss, options=SYN_OPTS)
        if kind == "hop_by_hop":
            ext = IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00\x00\x00\x00")])
            count("xdp_not_tcp")
        elif kind == "destination_options":
            ext = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")])
            count("xdp_not_tcp")
        else:
            ext = IPv6ExtHdrFragment(offset=0, m=0, id=4242)
            count("xdp_fragment")
        env.wire.send(Ether(src=env.client_mac, dst=env.server_mac) / ip / ext / tcp)
        return {"replies": describe(collect(port, 6))}
    return run


for kind in ("hop_by_hop", "destination_options", "atomic_fragment"):
    report.compare(f"v6_syn_behind_a_{kind}_header_is_the_kernels_and_gets_its_rst", ext_header(kind),
                   {"replies": ["RA"]}, linux_expected={"replies": ["SA"]}, why=KERNEL_RST)


# --- VLAN tags ----------------------------------------------------------------------------------------------------
ALLOWED_VLANS = {5}  # the server runs with --vlan 5 (tests/netns_harden_malformed.rs)


def tagged(vid, qinq=False):
    def run(port):
        f = Flow(env, port)
        p = f.frame("S", seq=f.iss, ack=0, options=SYN_OPTS)
        inner = p[IP]
        if qinq:
            fr = Ether(src=env.client_mac, dst=env.server_mac) / Dot1AD(vlan=100) / Dot1Q(vlan=vid) / inner
            count("xdp_not_ip")
        else:
            fr = Ether(src=env.client_mac, dst=env.server_mac) / Dot1Q(vlan=vid) / inner
            if vid != 0 and vid not in ALLOWED_VLANS:
                count("xdp_vlan_not_allowed")
        sniff = TagSniffer(env.args.iface)
        env.wire.send(fr)
        replies = describe(collect(port))
        # The same replies again, with the tag each one carried on the wire.
        tags = [vid for data, vid in sniff.frames(0.1) if f.mine(Ether(data))]
        sniff.close()
        return {"replies": [r + ("" if t is None else f"@vlan{t}") for r, t in zip(replies, tags)]
                if len(tags) == len(replies) else {"replies": replies, "tags": tags}}
    return run


report.compare("syn_tagged_with_vlan_5_is_answered_on_vlan_5", tagged(5), {"replies": ["SA@vlan5"]},
               linux_expected={"replies": []},
               why="VLAN 5 is served (--vlan 5): the XDP program and the parser take one 802.1Q tag and the reply "
                   "carries the same tag (a front end on a trunk port); the kernel has no VLAN 5 device here and "
                   "drops it")
report.compare("syn_tagged_with_a_vlan_not_served_is_dropped_unanswered", tagged(6), {"replies": []},
               why="VLAN 6 is not among --vlan: the XDP program passes the frame (xdp_vlan_not_allowed) and the "
                   "kernel, with no VLAN 6 device, drops it: no reply leaks into a VLAN the host is not on")
report.compare("syn_tagged_with_priority_vlan_0_is_answered_tagged_0", tagged(0), {"replies": ["SA@vlan0"]},
               linux_expected={"replies": ["SA"]},
               why="802.1p priority tag: Linux strips it and answers untagged; xdptcp answers with the tag it got")
report.compare("double_tagged_syn_is_dropped_unanswered", tagged(5, qinq=True), {"replies": []},
               why="stacked tags are not parsed: the XDP program passes them, and the kernel has no such device")


# --- flags to a listener ------------------------------------------------------------------------------------------
def listener_flags(flags, counter):
    def run(port):
        f = Flow(env, port)
        env.wire.send(f.frame(flags, seq=f.iss, ack=0, options=SYN_OPTS if "S" in flags else []))
        count(counter, port=port)
        return {"replies": describe(collect(port))}
    return run


for flags, counter, name in (("SF", "malformed_bad_flags", "syn_fin"), ("SR", "malformed_bad_flags", "syn_rst"),
                             ("SFPU", "malformed_bad_flags", "syn_fin_psh_urg"),
                             ("FSRPAUEC", "malformed_bad_flags", "all_flags"),
                             ("", "dropped_listener_junk", "null"), ("FPU", "dropped_listener_junk", "xmas"),
                             ("F", "dropped_listener_junk", "fin_alone"), ("U", "dropped_listener_junk", "urg_alone"),
                             ("P", "dropped_listener_junk", "psh_alone")):
    report.compare(f"{name}_to_a_listener_earns_no_reply", listener_flags(flags, counter), {"replies": []},
                   why="RFC 9293 §3.10.7.2: in LISTEN, a segment with neither SYN nor ACK nor RST is dropped; SYN with "
                       "FIN or RST is malformed")


# --- flags on an established connection -------------------------------------------------------------------------
def established_flags(flags, counter):
    def run(port):
        f = Flow(env, port)
        f.open()
        if f.echo(b"first\n") != b"first\n":
            raise RuntimeError("no echo")
        f.barrier()
        env.wire.send(f.frame(flags, options=[]))
        if counter:
            count(counter, port=port)
        replies = describe(collect(port))
        stream = f.echo(b"good\n").decode(errors="replace")
        f.reset()
        return {"replies": replies, "stream": stream}
    return run


report.compare("null_segment_on_a_connection_is_dropped_and_the_stream_survives",
               established_flags("", "dropped_bad_ack"),
               {"replies": [], "stream": "good\n"}, why="RFC 9293 §3.10.7.4: no ACK bit, drop the segment")
report.compare("xmas_segment_on_a_connection_is_dropped_and_the_stream_survives",
               established_flags("FPU", "dropped_bad_ack"),
               {"replies": [], "stream": "good\n"}, why="RFC 9293 §3.10.7.4: no ACK bit, drop the segment")
report.compare("syn_fin_on_a_connection_is_dropped_and_the_stream_survives",
               established_flags("SF", "malformed_bad_flags"), {"replies": [], "stream": "good\n"},
               linux_expected={"replies": ["A"], "stream": "good\n"},
               why="xdptcp refuses SYN+FIN as malformed before any state is looked up; Linux treats it as a SYN in "
                   "the window and sends a challenge ACK (RFC 5961 §4.2); both leave the connection alone")

report.extra["xdp_expect"] = {"exact": exact, "at_least": at_least}
report.finish()
