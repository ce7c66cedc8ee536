#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (FUZZ_SECONDS each, default 20) from its committed seed corpus, as CI's
# smoke check that no parser or endpoint panics on what libFuzzer finds quickly. The targets are built once, then
# run as many side by side as there are CPUs (two on these machines: 6 targets × 20 s in about a minute). Long
# runs are done by hand:
#   cd fuzz && cargo +nightly fuzz run <target> -- -max_total_time=600
# A crash fails the script and leaves the reproducer under fuzz/artifacts/<target>/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
seconds=${FUZZ_SECONDS:-20}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz or the nightly toolchain is missing (scripts/install-deps.sh installs them)" >&2
    exit 1
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
cargo +nightly fuzz build

# run_one TARGET: fuzzes TARGET for $seconds; its log goes to $logs/TARGET.log, its verdict to the exit status.
run_one() {
    local target=$1 corpus=corpus/$1 seeds=()
    mkdir -p "$corpus"
    [[ -d corpus/seed_$target ]] && seeds=("corpus/seed_$target")
    cargo +nightly fuzz run "$target" "$corpus" "${seeds[@]}" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"$logs/$target.log" 2>&1
}

targets=($(cargo +nightly fuzz list))
jobs=$(nproc)
declare -A pid_of
failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    for target in "${batch[@]}"; do
        echo "fuzz-smoke: $target for ${seconds}s"
        run_one "$target" &
        pid_of[$target]=$!
    done
    for target in "${batch[@]}"; do
        if wait "${pid_of[$target]}"; then
            echo "fuzz-smoke: $target ok"
            grep -E "stat::number_of_executed_units|Done " "$logs/$target.log" | tail -2 | sed 's/^/  /'
        else
            echo "fuzz-smoke: $target FAILED; tail of its log:" >&2
            tail -40 "$logs/$target.log" >&2
            failed=1
        fi
    done
done
exit "$failed"
