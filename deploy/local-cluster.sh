#!/usr/bin/env bash
# A local 3-node kvpaxos cluster on 127.0.0.1, and kvctl at work on it.
#
#   bash deploy/local-cluster.sh [start]   install deps, build, start, demo
#   bash deploy/local-cluster.sh stop      stop the nodes
#   bash deploy/local-cluster.sh status    kvctl status of every node
#   bash deploy/local-cluster.sh wipe      stop the nodes and delete their data
#
# Env: KVPAXOS_DIR (default ${TMPDIR:-/tmp}/kvpaxos-local) holds pid files,
# one log and one durable data dir per node (kept across stop/start); KVPAXOS_BASE_PORT (default 7100): peers on BASE+1..3,
# clients on BASE+101..103.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KVPAXOS_DIR:-${TMPDIR:-/tmp}/kvpaxos-local}"
base="${KVPAXOS_BASE_PORT:-7100}"
build="$root/build"
names=(n1 n2 n3)
cluster="n1=127.0.0.1:$((base + 1)),n2=127.0.0.1:$((base + 2)),n3=127.0.0.1:$((base + 3))"
endpoints="127.0.0.1:$((base + 101)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 103))"

running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

stop() {
  local pids=()
  for n in "${names[@]}"; do
    if running "$n"; then pids+=("$(cat "$dir/$n.pid")"); fi
  done
  if [ ${#pids[@]} -eq 0 ]; then
    echo "no local kvpaxos nodes are running (pid files in $dir)"
    return 0
  fi
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  rm -f "$dir"/*.pid
  echo "stopped ${#pids[@]} node(s)"
}

run() { echo "\$ kvctl $*"; "$build/kvctl" "$@"; }

start() {
  for n in "${names[@]}"; do
    if running "$n"; then
      echo "node $n is already running (pid $(cat "$dir/$n.pid")); stop it first: bash deploy/local-cluster.sh stop" >&2
      exit 1
    fi
  done
  bash "$root/deploy/build.sh" "$build"
  # Data dirs are durable: a restarted node recovers its promises and state.
  mkdir -p "$dir"
  for i in 1 2 3; do
    n="n$i"
    first=()
    [ -e "$dir/$n/kvpaxos-node" ] || first=(--first-start)  # a new cluster
    "$build/kvpaxosd" --name "$n" --cluster "$cluster" --client-addr "127.0.0.1:$((base + 100 + i))" \
      --data-dir "$dir/$n" --fault-injection "${first[@]}" >"$dir/$n.log" 2>&1 &
    echo $! >"$dir/$n.pid"
  done
  for _ in $(seq 100); do
    if "$build/kvctl" --endpoints "$endpoints" --timeout 1s status >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  if ! "$build/kvctl" --endpoints "$endpoints" --timeout 2s status >/dev/null 2>&1; then
    echo "the cluster did not come up; node logs:" >&2
    tail -n 5 "$dir"/*.log >&2
    stop
    exit 1
  fi
  echo "3 nodes running; logs and data in $dir"
  echo
  run --endpoints "127.0.0.1:$((base + 101))" put k a
  run --endpoints "127.0.0.1:$((base + 102))" append k bc
  run --endpoints "127.0.0.1:$((base + 103))" get k
  run --endpoints "$endpoints" status
  echo
  echo "try:  $build/kvctl --endpoints $endpoints get k"
  echo "stop: bash deploy/local-cluster.sh stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) "$build/kvctl" --endpoints "$endpoints" status ;;
  wipe) stop; rm -rf "$dir"; echo "deleted $dir" ;;
  *) echo "usage: bash deploy/local-cluster.sh [start|stop|status|wipe]" >&2; exit 2 ;;
esac
