#!/usr/bin/env bash
# A local 3-node kvpaxos cluster on 127.0.0.1, and kvctl at work on it.
#
#   bash deploy/local-cluster.sh [start]   install deps, build, start, demo
#   bash deploy/local-cluster.sh stop      stop the nodes
#   bash deploy/local-cluster.sh status    kvctl status of every node
#   bash deploy/local-cluster.sh wipe      stop the nodes and delete their data
#
# Secure like a real deployment: the first start makes CURVE keys (node keys,
# the client port's key, and an "admin" client key that is the one allowed
# client), every link is encrypted and authenticated, and kvctl.env holds the
# lines that point kvctl at the cluster with the admin key.
#
# Env: KVPAXOS_DIR (default ${TMPDIR:-/tmp}/kvpaxos-local) holds pid files,
# keys, kvctl.env, one log and one durable data dir per node (kept across
# stop/start); KVPAXOS_BASE_PORT (default 7100): peers on BASE+1..3, clients
# on BASE+101..103; KVPAXOS_BUILD_DIR (default build/ in the repo) is where it
# builds kvpaxosd and kvctl, the only two targets it needs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KVPAXOS_DIR:-${TMPDIR:-/tmp}/kvpaxos-local}"
base="${KVPAXOS_BASE_PORT:-7100}"
build="${KVPAXOS_BUILD_DIR:-$root/build}"
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

keys="$dir/keys"
env_file="$dir/kvctl.env"

# Keys are made once and kept: the nodes' data dirs and the admin key go
# together. kvctl keygen never overwrites a key.
make_keys() {
  [ -f "$keys/admin.key_secret" ] && return 0
  mkdir -p "$keys"
  chmod 700 "$keys"
  for n in "${names[@]}"; do "$build/kvctl" keygen "$n" --dir "$keys/peer" >/dev/null; done
  "$build/kvctl" keygen cluster --dir "$keys/client-port" >/dev/null
  "$build/kvctl" keygen admin --dir "$keys" >/dev/null
  mkdir -p "$keys/clients"
  cp "$keys/admin.key" "$keys/clients/admin.key"
  echo "made CURVE keys in $keys (node keys, the client port's key, an admin client key)"
}

# The admin key may also save snapshots (kvctl snapshot save): --admin-keys.
# Made here too for key dirs from before --admin-keys.
admin_keys() {
  [ -f "$keys/admins/admin.key" ] && return 0
  mkdir -p "$keys/admins"
  cp "$keys/admin.key" "$keys/admins/admin.key"
}

write_env() {
  cat >"$env_file" <<EOF
export KVCTL_ENDPOINTS=$endpoints
export KVCTL_SERVER_KEY=$keys/client-port/cluster.key
export KVCTL_KEY=$keys/admin.key_secret
EOF
}

kvctl_keyed() {
  KVCTL_SERVER_KEY="$keys/client-port/cluster.key" KVCTL_KEY="$keys/admin.key_secret" \
    "$build/kvctl" "$@"
}

run() { echo "\$ kvctl $*"; kvctl_keyed "$@"; }

start() {
  for n in "${names[@]}"; do
    if running "$n"; then
      echo "node $n is already running (pid $(cat "$dir/$n.pid")); stop it first: bash deploy/local-cluster.sh stop" >&2
      exit 1
    fi
  done
  bash "$root/deploy/build.sh" --target kvpaxosd --target kvctl "$build"
  # Data dirs are durable: a restarted node recovers its promises and state.
  mkdir -p "$dir"
  make_keys
  admin_keys
  write_env
  for i in 1 2 3; do
    n="n$i"
    first=()
    [ -e "$dir/$n/kvpaxos-node" ] || first=(--initial-cluster-state new)  # a new cluster
    "$build/kvpaxosd" --name "$n" --cluster "$cluster" --client-addr "127.0.0.1:$((base + 100 + i))" \
      --data-dir "$dir/$n" --fault-injection "${first[@]}" \
      --peer-keys "$keys/peer" --client-key "$keys/client-port/cluster.key_secret" \
      --client-keys "$keys/clients" --admin-keys "$keys/admins" >"$dir/$n.log" 2>&1 &
    echo $! >"$dir/$n.pid"
  done
  for _ in $(seq 100); do
    if kvctl_keyed --endpoints "$endpoints" --timeout 1s status >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  if ! kvctl_keyed --endpoints "$endpoints" --timeout 2s status >/dev/null 2>&1; then
    echo "the cluster did not come up; node logs:" >&2
    tail -n 5 "$dir"/*.log >&2
    stop
    exit 1
  fi
  echo "3 nodes running, every link CURVE-encrypted and authenticated; logs and data in $dir"
  echo
  echo "# kvctl with the admin key (what $env_file sets):"
  run --endpoints "127.0.0.1:$((base + 101))" put k a
  run --endpoints "127.0.0.1:$((base + 102))" append k bc
  run --endpoints "127.0.0.1:$((base + 103))" get k
  run --endpoints "$endpoints" status
  echo
  echo "# without a key the cluster refuses:"
  echo "\$ kvctl --endpoints 127.0.0.1:$((base + 101)) get k"
  env -u KVCTL_SERVER_KEY -u KVCTL_KEY "$build/kvctl" --endpoints "127.0.0.1:$((base + 101))" \
    --timeout 2s get k 2>&1 || true
  echo
  echo "try:  source $env_file && $build/kvctl get k"
  echo "stop: bash deploy/local-cluster.sh stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) kvctl_keyed --endpoints "$endpoints" status ;;
  wipe) stop; rm -rf "$dir"; echo "deleted $dir" ;;
  *) echo "usage: bash deploy/local-cluster.sh [start|stop|status|wipe]" >&2; exit 2 ;;
esac
