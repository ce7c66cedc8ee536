#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking xdptcp need, and checks the Rust
# toolchain. Idempotent: runs `apt-get update` only when a package is missing, installs only what is missing.
# Run as root on a fresh machine (Debian 12 or similar). Safe to run again at any time.
set -euo pipefail

# Building: clang/llvm compile bpf/steer.bpf.c; libxdp-sys builds libxdp from source (needs m4, libpcap-dev for
# its configure, libelf, zlib, pkg-config, make, a C compiler); linux-libc-dev has the kernel UAPI headers.
BUILD=(clang llvm libelf-dev zlib1g-dev pkg-config m4 libpcap-dev make gcc libc6-dev linux-libc-dev)
# Tests: namespaces and veth pairs (iproute2), offloads (ethtool), captures when debugging (tcpdump).
TEST=(iproute2 ethtool tcpdump procps)
# Real peers and attackers for the integration and adversarial suites of later issues.
PEERS=(curl wrk apache2-utils hping3 python3-scapy nmap socat netsniff-ng iputils-ping)
# Nice to have: profiling the benches. Not fatal if the archive lacks it.
OPTIONAL=(linux-perf)

log() { printf 'install-deps: %s\n' "$*"; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for p in "${BUILD[@]}" "${TEST[@]}" "${PEERS[@]}"; do
    is_installed "$p" || missing+=("$p")
done
missing_optional=()
for p in "${OPTIONAL[@]}"; do
    is_installed "$p" || missing_optional+=("$p")
done

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

if ((${#missing[@]} + ${#missing_optional[@]} > 0)); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing packages: ${missing[*]} ${missing_optional[*]}"
        log "run this script as root to install them"
        ((${#missing[@]} == 0)) || exit 1
    else
        log "installing: ${missing[*]} ${missing_optional[*]}"
        apt-get update -qq
        if ((${#missing[@]} > 0)); then
            apt_install "${missing[@]}"
        fi
        for p in "${missing_optional[@]}"; do
            apt_install "$p" || log "optional package $p not installed (continuing)"
        done
    fi
else
    log "all Debian packages present"
fi

# The Rust toolchain named in rust-toolchain.toml, with clippy and rustfmt.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if ! command -v cargo >/dev/null 2>&1; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
    log "rustup and cargo are required (https://rustup.rs); the toolchain is pinned in rust-toolchain.toml"
    exit 1
fi
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^${channel}"; then
    log "installing Rust toolchain $channel"
    rustup toolchain install "$channel" --profile minimal --component clippy,rustfmt
fi
for component in clippy rustfmt; do
    if ! rustup component list --toolchain "$channel" --installed 2>/dev/null | grep -q "^${component}"; then
        log "adding $component to $channel"
        rustup component add --toolchain "$channel" "$component"
    fi
done
log "Rust $(cargo --version | cut -d' ' -f2) with $(cargo clippy --version | cut -d' ' -f1-2) and $(cargo fmt --version | cut -d' ' -f1-2)"

# Fuzzing: the nightly toolchain (already on machines of this kind) and cargo-fuzz from crates.io.
if rustup toolchain list | grep -q '^nightly'; then
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
    log "$(cargo +nightly fuzz --version 2>/dev/null || echo 'cargo-fuzz missing')"
else
    log "no nightly toolchain: the fuzz smoke step will fail (rustup toolchain install nightly)"
fi
