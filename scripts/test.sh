#!/usr/bin/env bash
# Every check of xdptcp, in order: dependencies, formatting, lints, build, and all tests (unit, BPF test_run,
# netns AF_XDP). Runs every step even after a failure, prints a summary, exits non-zero if anything failed.
# Run as root: the BPF and AF_XDP tests skip loudly without it, and fail under CI=true.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

names=() results=() times=()
step() { # name command...
    local name=$1
    shift
    echo
    echo "=== $name: $*"
    local start=$SECONDS status=0
    "$@" || status=$?
    names+=("$name") results+=("$status") times+=($((SECONDS - start)))
    return 0
}

if ! bash scripts/install-deps.sh; then
    echo "test.sh: installing dependencies failed; nothing else can run" >&2
    exit 1
fi

test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
skipped=target/tmp/xdptcp-skipped.txt
mkdir -p target/tmp
rm -f "$skipped"

run_tests() {
    # --no-fail-fast: every test binary runs, so one failure does not hide others.
    cargo test --locked --no-fail-fast 2>&1 | tee "$test_log"
}

step "format" cargo fmt --all -- --check
step "clippy" cargo clippy --locked --all-targets -- -D warnings
# The build compiles what the tests run, in the test profile (cargo build would use dev, and cargo test would then
# compile the crate and every test binary a second time, about two minutes), and the benches as well.
step "build" cargo test --locked --all-targets --no-run
step "tests" run_tests

# --- fuzz smoke -------------------------------------------------------------------------------------------------
# The fuzzing issue adds scripts/fuzz-smoke.sh (each cargo-fuzz target for a few seconds); it runs here once present.
if [[ -f scripts/fuzz-smoke.sh ]]; then
    step "fuzz smoke" bash scripts/fuzz-smoke.sh
fi
# -----------------------------------------------------------------------------------------------------------------

echo
echo "=== summary"
failed=0
for i in "${!names[@]}"; do
    if [[ ${results[$i]} -eq 0 ]]; then verdict=ok; else verdict="FAILED (exit ${results[$i]})"; failed=1; fi
    printf '  %-12s %-22s %4ss\n' "${names[$i]}" "$verdict" "${times[$i]}"
done
if [[ -s $skipped ]]; then
    echo "  skipped (not root; CI=true turns these into failures):"
    sed 's/^/    /' "$skipped"
fi
passed_n=$(grep -o '[0-9]* passed' "$test_log" | awk '{s+=$1} END {print s+0}')
failed_n=$(grep -o '[0-9]* failed' "$test_log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed_n passed, $failed_n failed"
exit "$failed"
