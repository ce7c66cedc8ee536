#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (FUZZ_SECONDS each, default 15) from its committed seed corpus, as CI's
# smoke check that no parser or endpoint panics on what libFuzzer finds quickly. Long runs are done by hand:
#   cd fuzz && cargo +nightly fuzz run <target> -- -max_total_time=600
# A crash fails the script and leaves the reproducer under fuzz/artifacts/<target>/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
seconds=${FUZZ_SECONDS:-15}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz or the nightly toolchain is missing (scripts/install-deps.sh installs them)" >&2
    exit 1
fi
failed=0
for target in $(cargo +nightly fuzz list); do
    corpus=corpus/$target
    mkdir -p "$corpus"
    seeds=()
    [[ -d corpus/seed_$target ]] && seeds=("corpus/seed_$target")
    echo "fuzz-smoke: $target for ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "$corpus" "${seeds[@]}" -- -max_total_time="$seconds" -print_final_stats=1 \
        >"/tmp/fuzz-$target.log" 2>&1; then
        echo "fuzz-smoke: $target FAILED; tail of its log:" >&2
        tail -40 "/tmp/fuzz-$target.log" >&2
        failed=1
    else
        grep -E "stat::number_of_executed_units|Done " "/tmp/fuzz-$target.log" | tail -2 | sed 's/^/  /'
    fi
done
exit "$failed"
