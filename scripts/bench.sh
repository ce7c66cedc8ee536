#!/usr/bin/env bash
# Runs one named benchmark on this machine and prints its table, then (last line) its JSON result.
#
# Usage: scripts/bench.sh [NAME] [ARGS...]    (as root; ARGS go to the bench)
#   (none)    the full side-by-side bench: ceiling, xdptcp vs Linux sweeps, floods (xdptcp bench --help for
#             its options, which may also come first: scripts/bench.sh --name NAME)
#   --quick   the same, short (under two minutes)
#   ceiling   raw AF_XDP ring ceiling: reflector + generator on a fresh veth pair (xdptcp ceiling --help)
#   core      the sans-IO core in memory on one core: lifecycles/s, bytes per connection, cookie cost [--quick]
#
# To add a bench: write a function bench_<name> below and list it above; the dispatcher finds it by name.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

usage() {
    if [[ ${1:-2} == 0 ]]; then
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    else
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    fi
    exit "${1:-2}"
}

# The options each bench takes, "--opt=" for one that takes a value (as `--opt V` or `--opt=V`). Checked before
# anything is installed or built: a mistyped option used to be found only after install-deps and a release
# build. tests/bench_script.rs holds these lists to `xdptcp bench --help` and `xdptcp ceiling --help`.
options_of() {
    case $1 in
        all | quick) echo --quick --keep-topology --name= --out= --server-cpu= --client-cpu= --step= ;;
        ceiling) echo --skb-mode --keep-topology --warmup= --duration= --frame-bytes= --batch= --ring= --window= --prefix= ;;
        core) echo --quick ;;
    esac
}

# Refuses (exit 2, with the usage) any argument that bench $1 does not take. Values are left to the bench.
check_args() {
    local name=$1 known arg
    shift
    known=" $(options_of "$name") "
    while (($#)); do
        arg=$1
        shift
        case $arg in
            -h | --help)
                # The core bench has no help of its own (it would ignore the flag and run in full).
                [[ $name != core ]] || usage 0
                continue
                ;;
            --*=*)
                [[ $known != *" ${arg%%=*}= "* ]] || continue
                ;;
            --*)
                [[ $known == *" $arg "* ]] && continue
                if [[ $known == *" $arg= "* ]]; then
                    if (($# == 0)); then
                        echo "bench.sh: $arg needs a value" >&2
                        usage
                    fi
                    shift
                    continue
                fi
                ;;
        esac
        known=${known//= / VALUE }
        echo "bench.sh: unknown option '$arg' for the ${name/all/full} bench; it takes:${known% }" >&2
        usage
    done
}

build_release() {
    cargo build --locked --release --quiet
}

# Runs "$@" with this session's CPU share raised for the few seconds of a bench, then restores it. The kernel
# schedules sessions as groups (autogroup), so a plain `nice` cannot keep other sessions' load off the bench's
# pinned cores; raising the session's group nice does. Without root, it runs at normal priority and the bench's
# own report says how much CPU its threads got.
prioritised() {
    local ag=/proc/self/autogroup old=""
    if [[ -w $ag ]] && old=$(awk '{print $NF}' "$ag") && echo -20 >"$ag" 2>/dev/null; then
        trap "echo '$old' > '$ag' 2>/dev/null || true" EXIT
    fi
    # Only the probe's error is hidden: the bench's own stderr (its per-run lines) must stay visible, and a
    # failing bench must not be run a second time.
    if nice -n -20 true 2>/dev/null; then
        nice -n -20 "$@"
    else
        "$@"
    fi
}

bench_ceiling() {
    build_release
    prioritised target/release/xdptcp ceiling "$@"
}

bench_core() {
    prioritised cargo bench --locked --quiet --bench core -- "$@"
}

bench_all() {
    bash "$root/scripts/install-deps.sh"
    build_release
    prioritised target/release/xdptcp bench "$@"
}

bench_quick() {
    bench_all --quick "$@"
}

name=${1:-all}
[[ $name != -h && $name != --help ]] || usage 0
if [[ $name == --* && $name != --quick ]]; then
    name=all # options of the full bench, e.g. --name NAME
else
    (($#)) && shift
    name=${name#--} # accept --quick as well as quick
fi
if ! declare -F "bench_${name}" >/dev/null; then
    echo "bench.sh: unknown bench '$name'" >&2
    usage
fi
check_args "$name" "$@"
"bench_${name}" "$@"
