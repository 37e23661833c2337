# Shared by the e2e scripts: start real kvpaxosd processes on 127.0.0.1 and
# check what kvctl says. Sourced, not run.
KVPAXOSD="$1"
KVCTL="$2"
WORK="$(mktemp -d)"
PIDS=()
KVCTL_AUTH=()  # kvctl flags launch_cluster uses to probe (keys, for a keyed cluster)
METRICS=0      # 1: launch_cluster gives node i --listen-metrics-addr MX[i] (BASE+200+i)

cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for log in "$WORK"/*.log; do
    [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
  done
  exit 1
}
pass() { echo "PASS: $*"; }

# A port nobody uses in any state (listening or as the local end of a
# connection). Test ports stay below the kernel's ephemeral range (32768+),
# where outgoing connections of concurrently running tests take their ports.
port_free() { ! ss -tan 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }

# Picks a base port with BASE+1..BASE+N and BASE+101..BASE+100+N free.
pick_base() {
  local n=$1
  for _ in $(seq 50); do
    local base=$((20000 + (RANDOM % 120) * 100))
    local ok=1
    for i in $(seq "$n"); do
      port_free $((base + i)) && port_free $((base + 100 + i)) || ok=0
      [ "$METRICS" -eq 1 ] && ! port_free $((base + 200 + i)) && ok=0
    done
    [ "$ok" -eq 1 ] && { echo "$base"; return; }
  done
  fail "no free ports found"
}

# launch_cluster N [flags]: starts N nodes on a fresh base port; returns 1 if
# one of them exited during start-up (a port taken between pick and bind).
launch_cluster() {
  local n=$1; shift
  BASE=$(pick_base "$n")
  CLUSTER=""
  for i in $(seq "$n"); do CLUSTER+="${CLUSTER:+,}n$i=127.0.0.1:$((BASE + i))"; done
  EP=()
  MX=()
  for i in $(seq "$n"); do
    EP[$i]="127.0.0.1:$((BASE + 100 + i))"
    local extra=()
    if [ "$METRICS" -eq 1 ]; then
      MX[$i]="127.0.0.1:$((BASE + 200 + i))"
      extra=(--listen-metrics-addr "${MX[$i]}")
    fi
    "$KVPAXOSD" --name "n$i" --cluster "$CLUSTER" --client-addr "${EP[$i]}" "${extra[@]}" "$@" \
      >"$WORK/n$i.log" 2>&1 &
    PIDS[$i]=$!
  done
  local all
  all=$(IFS=,; echo "${EP[*]}")
  for _ in $(seq 200); do
    for i in $(seq "$n"); do
      kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "n$i exited at start-up: $(cat "$WORK/n$i.log")"; return 1; }
    done
    "$KVCTL" "${KVCTL_AUTH[@]}" --endpoints "$all" --timeout 1s status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "cluster of $n did not come up"
}

# start_cluster N [extra kvpaxosd flags]: sets BASE, CLUSTER, EP[1..N].
start_cluster() {
  for _ in 1 2 3 4 5; do
    launch_cluster "$@" && return 0
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    PIDS=()
  done
  fail "cluster of $1 did not start in 5 tries"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"
  pass "$1"
}

# make_cluster_keys DIR NAME...: CURVE keys for a keyed cluster, as an
# operator makes them with kvctl keygen: each node's pair in DIR/peer and
# the client port's pair (cluster) in DIR/port.
make_cluster_keys() {
  local dir=$1; shift
  for n in "$@"; do "$KVCTL" keygen "$n" --dir "$dir/peer" >/dev/null || fail "keygen $n"; done
  "$KVCTL" keygen cluster --dir "$dir/port" >/dev/null || fail "keygen cluster"
}

# For scripts that start nodes one by one: they keep nI's pid in PID[I] (an
# associative array) and define K, their kvctl with endpoints and keys.

# wait_exit I: waits (30 s at most) for nI to exit; sets CODE to its exit
# status (not a $(...) subshell: only this shell can wait for its children).
wait_exit() {
  CODE="still running"
  for _ in $(seq 300); do
    kill -0 "${PID[$1]}" 2>/dev/null || { wait "${PID[$1]}"; CODE=$?; return; }
    sleep 0.1
  done
}

# promote_when_ready VERB ARGS...: K member promote/replace, retried every
# half second (30 s at most) while kvctl refuses because the learner is not
# caught up yet; prints what kvctl said.
promote_when_ready() {
  local out
  for _ in $(seq 60); do
    out=$(K member "$@" 2>&1) && { echo "$out"; return 0; }
    grep -qE 'caught up|does not answer' <<<"$out" || fail "member $*: $out"
    sleep 0.5
  done
  fail "member $*: still refused after 30 s: $out"
}
