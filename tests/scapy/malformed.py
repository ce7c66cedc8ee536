"""Malformed segments to `xdptcp serve --app echo` and to a Linux echo listener in the same namespace: bad TCP and
IP checksums, data offsets below 5 or beyond the segment, SYN with FIN or RST, segments with no flags or all of
FIN/PSH/URG. None may earn a reply (RFC 9293 §3.10.7.1-2, and Linux agrees), none may disturb an established
connection, and each is counted: by the XDP program when it hands the frame to the kernel (bad headers), by the
worker otherwise (malformed_* in the stats JSON).

Also checks that a port xdptcp does not serve is still the kernel's: a SYN gets the kernel's RST+ACK, an ACK
its RST.

Prints the JSON report; "xdp_expect" gives counters the Rust side checks in the server's stats afterwards.
"""

from scapy.all import IP, TCP

from xtlib import classify, setup, tcp_of, Flow

env, report = setup(__doc__)
counts = {"malformed_bad_tcp_checksum": 0, "malformed_bad_ip_checksum": 0, "malformed_bad_flags": 0,
          "xdp_bad_header": 0}


def count(port, key, both_ports=False):
    """Counts a frame the server's counters must show: worker counters only see its own port, the XDP program
    sees every frame on the interface."""
    if port == env.xdp or both_ports:
        counts[key] += 1


def send_and_collect(f, frame):
    f.send_frame(frame)
    return f.barrier()


def bad_tcp_checksum(family):
    def run(port):
        f = Flow(env, port, family)
        fr = f.frame("S", seq=f.iss, ack=0, options=[("MSS", 1460)])
        fr = fr.__class__(bytes(fr))
        fr[TCP].chksum ^= 0x5A5A
        count(port, "malformed_bad_tcp_checksum")
        return classify(send_and_collect(f, fr))
    return run


report.compare("syn_with_bad_tcp_checksum_is_dropped", bad_tcp_checksum(4), [])
report.compare("syn_with_bad_tcp_checksum_is_dropped_v6", bad_tcp_checksum(6), [])


def bad_ip_checksum(port):
    f = Flow(env, port)
    fr = f.frame("S", seq=f.iss, ack=0, options=[("MSS", 1460)])
    fr = fr.__class__(bytes(fr))
    fr[IP].chksum ^= 0x5A5A
    count(port, "malformed_bad_ip_checksum")
    return classify(send_and_collect(f, fr))


report.compare("syn_with_bad_ip_checksum_is_dropped", bad_ip_checksum, [])


def data_offset(doff):
    def run(port):
        f = Flow(env, port)
        fr = f.frame("S", seq=f.iss, ack=0, options=[])
        fr = fr.__class__(bytes(fr))
        fr[TCP].dataofs = doff
        del fr[TCP].chksum  # a right checksum: only the offset is wrong
        # The XDP program checks the offset for every port and leaves such frames to the kernel, which drops them.
        count(port, "xdp_bad_header", both_ports=True)
        return classify(send_and_collect(f, fr))
    return run


report.compare("syn_with_data_offset_4_is_dropped", data_offset(4), [])
report.compare("syn_with_data_offset_beyond_the_segment_is_dropped", data_offset(15), [])


def flags_case(flags, counter=None):
    def run(port):
        f = Flow(env, port)
        fr = f.frame(flags, seq=f.iss, ack=0, options=[("MSS", 1460)])
        if counter:
            count(port, counter)
        return classify(send_and_collect(f, fr))
    return run


report.compare("syn_fin_is_dropped", flags_case("SF", "malformed_bad_flags"), [])
report.compare("syn_rst_is_dropped", flags_case("SR", "malformed_bad_flags"), [])
report.compare("segment_without_flags_to_a_listener_is_dropped", flags_case(""), [])
report.compare("xmas_fin_psh_urg_to_a_listener_is_dropped", flags_case("FPU"), [])


def bad_checksum_on_established(port):
    """Data with a wrong checksum on a live connection: not delivered, not answered, and the right data after
    it is echoed as if nothing happened."""
    f = Flow(env, port)
    f.open()
    f.barrier()
    fr = f.frame("PA", payload=b"EVIL\n")
    fr = fr.__class__(bytes(fr))
    fr[TCP].chksum ^= 0x5A5A
    count(port, "malformed_bad_tcp_checksum")
    replies = classify(send_and_collect(f, fr))
    stream = f.echo(b"good\n").decode(errors="replace")
    f.reset()
    return {"replies": replies, "stream": stream}


report.compare("data_with_bad_checksum_on_a_connection_is_dropped", bad_checksum_on_established,
               {"replies": [], "stream": "good\n"})


# --- ports xdptcp does not serve stay the kernel's --------------------------------------------------------------
CLOSED = 9999


def closed_port(family):
    f = Flow(env, CLOSED, family)
    f.send("S", seq=f.iss, ack=0, options=[("MSS", 1460)])
    r = f.expect()
    ok = r is not None and str(tcp_of(r).flags) == "RA" and tcp_of(r).ack == (f.iss + 1) & 0xFFFFFFFF
    report.case(f"kernel_resets_a_syn_to_a_port_not_served_v{family}", ok,
                f"reply {classify([r]) if r else None}, ack {tcp_of(r).ack if r else None}, iss {f.iss}")
    g = Flow(env, CLOSED, family)
    g.rcv_nxt = 424242
    g.send("A")
    r = g.expect()
    ok = r is not None and str(tcp_of(r).flags) == "R" and tcp_of(r).seq == 424242
    report.case(f"kernel_resets_an_ack_to_a_port_not_served_v{family}", ok,
                f"reply {classify([r]) if r else None}")


closed_port(4)
closed_port(6)

report.extra["xdp_expect"] = counts
report.finish()
