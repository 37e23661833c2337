#!/usr/bin/env bash
# Node memory under many large Puts: starts a local 3-node cluster on its own
# ports, runs memory_soak (10,000 Puts of 100 KB to 4 keys by default), prints
# progress and the nodes' RSS, and stops the cluster.
#   bash deploy/memory-soak.sh [memory_soak flags, e.g. --ops 2000]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/deploy/build.sh" "$root/build"
export KVPAXOS_DIR="${TMPDIR:-/tmp}/kvpaxos-soak"
export KVPAXOS_BASE_PORT="${KVPAXOS_BASE_PORT:-7500}"
base=$KVPAXOS_BASE_PORT
bash "$root/deploy/local-cluster.sh" start >/dev/null
trap 'bash "$root/deploy/local-cluster.sh" stop >/dev/null' EXIT
pids="$(cat "$KVPAXOS_DIR"/n1.pid),$(cat "$KVPAXOS_DIR"/n2.pid),$(cat "$KVPAXOS_DIR"/n3.pid)"
"$root/build/memory_soak" \
  --endpoints "127.0.0.1:$((base + 101)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 103))" \
  --pids "$pids" "$@"
