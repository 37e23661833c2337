#!/usr/bin/env bash
# Configures and builds kvpaxos into a build directory.
#   deploy/build.sh [--target NAME]... [BUILD_DIR] [extra cmake args...]
# Without --target it builds everything (deploy/run-tests.sh); with it only
# those targets and what they need (deploy/local-cluster.sh: kvpaxosd, kvctl).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
targets=()
while [ "${1:-}" = "--target" ]; do
  [ -n "${2:-}" ] || { echo "build.sh: --target needs a target name (e.g. kvpaxosd)" >&2; exit 2; }
  targets+=(--target "$2")
  shift 2
done
build="${1:-$root/build}"
shift || true
bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
