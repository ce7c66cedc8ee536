"""Path MTU of `xdptcp serve --app echo` against a Linux echo listener: an ICMP "too big" message about a segment
in flight makes the server send the flight again in segments that fit the reported MTU (RFC 1191 §6.3, RFC 8201
§5.2), over IPv4 and IPv6; one quoting a sequence number outside the flight changes nothing (RFC 5927 §4.1).

The message comes from the spoofed client's own address, as from a router on its side; it quotes the IP header and
first 8 bytes of the server's segment (IPv4) or as much as the 1280-byte minimum allows (IPv6), as routers do.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

from scapy.all import ICMP, IP, ICMPv6PacketTooBig, IPv6, Ether, raw

from xtlib import setup, tcp_of, Flow

env, report = setup(__doc__)
counts = {"icmp_too_big": 0, "path_mtu_lowered": 0, "dropped_icmp_unmatched": 0}


def payload_len(p):
    return len(bytes(tcp_of(p).payload))


def flight(f, n):
    """Sends n bytes for the echo in 1400-byte segments and collects the echo's segments, acknowledging none of
    them: what the server sends before it waits for an ACK (Linux's Nagle may hold a last small piece back)."""
    data = bytes(range(256)) * (n // 256) + b"z" * (n % 256)
    for i in range(0, n, 1400):
        f.data(data[i:i + 1400])
    segs = []
    while True:
        # A short silence ends the flight: well before the first retransmission timeout (200 ms at least on
        # both servers) could add a resent segment to what follows.
        p = f.expect(lambda q: payload_len(q) > 0, timeout=0.1 if segs else 3.0)
        if p is None:
            break
        segs.append(p)
    if len(segs) < 2:
        raise RuntimeError(f"the echo sent {len(segs)} segments")
    return segs


def too_big(f, seg, mtu):
    """A router's "too big" about the server's segment `seg`, sent to the server."""
    if f.family == 4:
        quote = raw(seg[IP])[:28]
        msg = IP(src=env.spoof4, dst=env.server4) / ICMP(type=3, code=4, nexthopmtu=mtu) / quote
    else:
        quote = raw(seg[IPv6])[:1280 - 48]
        msg = IPv6(src=env.spoof6, dst=env.server6) / ICMPv6PacketTooBig(mtu=mtu) / quote
    f.send_frame(Ether(src=env.client_mac, dst=env.server_mac) / msg)


def resent_smaller(family, mtu, fits):
    def run(port):
        f = Flow(env, port, family)
        f.open()
        f.barrier()
        segs = flight(f, 4200)
        una = tcp_of(segs[0]).seq
        too_big(f, segs[0], mtu)
        again = [p for p in f.barrier() if payload_len(p) > 0]
        f.reset()
        if port == env.xdp:
            counts["icmp_too_big"] += 1
            counts["path_mtu_lowered"] += 1
        return {
            "sent_larger_segments_before": max(payload_len(p) for p in segs) > fits,
            "resent_from_snd_una": bool(again) and tcp_of(again[0]).seq == una,
            "every_resent_segment_fits": bool(again) and max(payload_len(p) for p in again) <= fits,
        }
    return run


SMALLER = {"sent_larger_segments_before": True, "resent_from_snd_una": True, "every_resent_segment_fits": True}
# MTU 1000 less 40 bytes of headers (no timestamps on these flows); IPv6's floor is its 1280-byte minimum MTU.
report.compare("rfc1191_too_big_resends_the_flight_in_segments_that_fit", resent_smaller(4, 1000, 960), SMALLER)
report.compare("rfc8201_packet_too_big_resends_the_flight_in_segments_that_fit", resent_smaller(6, 1280, 1220),
               SMALLER)


def outside_the_flight(port):
    f = Flow(env, port)
    f.open()
    f.barrier()
    segs = flight(f, 4200)
    last = segs[-1]
    beyond = last.copy()
    tcp_of(beyond).seq = (tcp_of(last).seq + 100_000) & 0xFFFFFFFF
    too_big(f, beyond, 1000)
    replies = f.barrier()
    f.reset()
    if port == env.xdp:
        counts["icmp_too_big"] += 1
        counts["dropped_icmp_unmatched"] += 1
    # Only data counts: Linux acknowledges our segments on its own clock, and an ACK is no resend.
    return {"data_resent": sum(1 for p in replies if payload_len(p) > 0)}


report.compare("rfc5927_4_1_too_big_quoting_a_sequence_number_outside_the_flight_changes_nothing",
               outside_the_flight, {"data_resent": 0})

report.extra["xdp_expect"] = counts
report.finish()
