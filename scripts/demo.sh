#!/usr/bin/env bash
# The main demo on a fresh machine, as root: installs what is missing, builds xdptcp, and runs the ring-ceiling
# bench on its own veth pair (namespaces xtc-a / xtc-b, created and deleted by the bench).
# Until the TCP core lands this is the whole demo; later it becomes the serve + load demo.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
echo "demo: building xdptcp (release) and measuring the raw AF_XDP ceiling of this machine (about 5 s)"
exec bash scripts/bench.sh ceiling "$@"
