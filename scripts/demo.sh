#!/usr/bin/env bash
# The main demo, as root on a fresh machine: installs what is missing, builds xdptcp, makes its own veth pair
# (namespaces xtdemo-a / xtdemo-b), runs `xdptcp serve --app http` on port 8080 of one end, and shows real
# clients on the other end: curl over IPv4 and IPv6, then a short load with wrk and with `xdptcp load`, then
# the server's own counters. Everything it made is removed at the end, also on Ctrl-C.
#
# Usage: scripts/demo.sh [--seconds N]     load duration in seconds (default 5)
# The raw AF_XDP ring ceiling of this machine (the previous demo) is `scripts/bench.sh ceiling`.
set -euo pipefail

seconds=5
while (($#)); do
    case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 && $seconds -le 600 ]] || { echo "demo.sh: --seconds must be 1..600" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (XDP and AF_XDP need it)" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

prefix=xtdemo
ns_a=$prefix-a ns_b=$prefix-b if_a=${prefix}0
url4=http://10.77.0.1:8080/ url6=http://[fd77::1]:8080/ metrics=10.77.0.1:9100
work=$(mktemp -d /tmp/xdptcp-demo.XXXXXX)
server_pid=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Stops the server (SIGTERM: it drains and prints its final counters), removes the namespaces and the files.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    bash scripts/netns.sh down --prefix "$prefix" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted, cleaning up"; exit 130' INT TERM

say "installing what is missing"
bash scripts/install-deps.sh

say "building xdptcp (release)"
cargo build --locked --release
bin=$root/target/release/xdptcp

say "a veth pair between two namespaces"
bash scripts/netns.sh up --prefix "$prefix"

say "xdptcp serve --app http on $ns_a/$if_a port 8080 (AF_XDP copy mode: veth has no zero-copy)"
ip netns exec "$ns_a" "$bin" serve --iface "$if_a" --ports 8080 --app http \
    --stats-json "$work/stats.json" --metrics "$metrics" --summary-every 2 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 200); do
    grep -q "xdptcp: serving" "$work/server.log" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "xdptcp: serving" "$work/server.log"; then
    cat "$work/server.log" >&2
    echo "demo.sh: the server did not start" >&2
    exit 1
fi
cat "$work/server.log"

say "curl over IPv4, from $ns_b"
ip netns exec "$ns_b" curl -sS --fail -m 5 -i "$url4"
say "curl over IPv6"
ip netns exec "$ns_b" curl -sS --fail -m 5 "$url6"

say "wrk: 1 thread, 50 keep-alive connections, ${seconds} s"
ip netns exec "$ns_b" wrk -t 1 -c 50 -d "${seconds}s" --latency "$url4"

# The AF_XDP load generator (skipped by a build without it). It sends from addresses nobody owns
# (10.78.0.0/16, as `xdptcp bench` does); xdptcp answers the source MAC, so no route is needed.
if "$bin" load --help >/dev/null 2>&1; then
    say "xdptcp load: its own AF_XDP client, 10 000 HTTP connections/s for ${seconds} s"
    if ! ip netns exec "$ns_b" "$bin" load --iface "${prefix}1" --target 10.77.0.1:8080 --src 10.78.0.0/16 \
        --rate 10000 --duration "$seconds" --close client --http; then
        echo "demo.sh: xdptcp load did not run with these arguments (see '$bin load --help'); continuing"
    fi
fi

sleep 1.2 # the page is refreshed every second
say "the server's counters (Prometheus, from $ns_b: http://$metrics/metrics)"
ip netns exec "$ns_b" curl -sS -m 5 "http://$metrics/metrics" |
    grep -E '^xdptcp_(conns_opened|conns_closed|conns_reset|live_conns|time_wait|cookies_sent|cookies_accepted|cookies_rejected|retransmits|frames_in|frames_out|xdp_redirected|xdp_passed) ' || true

say "stopping (SIGTERM: no new connections, live ones drain, final counters)"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
tail -n 3 "$work/server.log"
python3 - "$work/stats.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["total"]
print("final stats JSON: " + ", ".join(f"{k}={t[k]}" for k in (
    "conns_opened", "conns_closed", "conns_reset", "live_conns", "cookies_accepted", "cookies_rejected",
    "retransmits", "frames_in", "frames_out")))
PY
echo "(every figure above is AF_XDP copy mode on a veth pair, not a NIC)"
