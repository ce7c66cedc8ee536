#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, for trying xdptcp by hand and for benches:
#
#   namespace xt-a: interface xt0, 02:77:00:00:00:01, 10.77.0.1/24, fd77::1/64   (the xdptcp side)
#   namespace xt-b: interface xt1, 02:77:00:00:00:02, 10.77.0.2/24, fd77::2/64   (the peer side)
#
# Usage: scripts/netns.sh up [--queues N] [--prefix P] | down [--prefix P] | status [--prefix P]
#
# `up` deletes leftovers first, so it is idempotent. Offloads are turned off on both ends: a kernel peer would
# otherwise send partial checksums that AF_XDP sees as wrong. Same layout as the Rust fixture
# xdptcp::io::topology::VethPair (prefix "xt"). Traffic stays inside these two namespaces.
set -euo pipefail

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
queues=1
prefix=xt
while (($#)); do
    case $1 in
    --queues) queues=${2:?--queues needs a number}; shift 2 ;;
    --prefix) prefix=${2:?--prefix needs a name}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "netns.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ $queues =~ ^[0-9]+$ && $queues -ge 1 && $queues -le 64 ]] || { echo "netns.sh: --queues must be 1..64" >&2; exit 2; }
[[ $prefix =~ ^[a-z0-9]{1,12}$ ]] || { echo "netns.sh: --prefix must be 1-12 of [a-z0-9]" >&2; exit 2; }

ns_a=$prefix-a ns_b=$prefix-b if_a=${prefix}0 if_b=${prefix}1

down() {
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
}

side() { # ns dev ipv4 ipv6
    local ns=$1 dev=$2 ip4=$3 ip6=$4
    ip -n "$ns" addr add "$ip4/24" dev "$dev"
    ip -n "$ns" addr add "$ip6/64" dev "$dev" nodad
    ip -n "$ns" link set lo up
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null
    ip netns exec "$ns" ethtool -K "$dev" rx off gro off tso off gso off >/dev/null 2>&1 || true
    ip -n "$ns" link set "$dev" up
}

up() {
    [[ $(id -u) -eq 0 ]] || { echo "netns.sh: run as root" >&2; exit 1; }
    down
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    ip -n "$ns_a" link add "$if_a" address 02:77:00:00:00:01 numtxqueues "$queues" numrxqueues "$queues" type veth \
        peer name "$if_b" netns "$ns_b" address 02:77:00:00:00:02 numtxqueues "$queues" numrxqueues "$queues"
    side "$ns_a" "$if_a" 10.77.0.1 fd77::1
    side "$ns_b" "$if_b" 10.77.0.2 fd77::2
    echo "netns.sh: $ns_a/$if_a (10.77.0.1, fd77::1) <-> $ns_b/$if_b (10.77.0.2, fd77::2), $queues queue(s)"
}

status() {
    for ns in "$ns_a" "$ns_b"; do
        if ip netns list | grep -qw "$ns"; then
            ip -n "$ns" -br addr
            ip -n "$ns" -d link show | grep -o 'prog/xdp id [0-9]*' || true
        else
            echo "netns.sh: $ns does not exist"
        fi
    done
}

case $cmd in
up) up ;;
down) down; echo "netns.sh: removed $ns_a and $ns_b" ;;
status) status ;;
*) usage ;;
esac
