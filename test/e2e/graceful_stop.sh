#!/usr/bin/env bash
# SIGTERM is a graceful stop: the node steps down (the lead and its clients
# move to the other members at once), exits 0 after a moment, and a rolling
# restart of every node under load costs the clients no error. The stall it
# saves is measured by bench/failover (SIGNAL=TERM against the default KILL),
# not here.
#   bash graceful_stop.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

# Data dirs, so each node can come back: the rolling restart needs them.
launch() {  # launch I: node I with its data dir, a first start if it has none
  local i=$1 first=()
  [ -e "$WORK/d$i/kvpaxos-node" ] || first=(--initial-cluster-state new)
  "$KVPAXOSD" --name "n$i" --cluster "$CLUSTER" --client-addr "${EP[$i]}" --data-dir "$WORK/d$i" \
    "${first[@]}" >>"$WORK/n$i.log" 2>&1 &
  PIDS[$i]=$!
}
BASE=$(pick_base 3)
CLUSTER="n1=127.0.0.1:$((BASE + 1)),n2=127.0.0.1:$((BASE + 2)),n3=127.0.0.1:$((BASE + 3))"
for i in 1 2 3; do EP[$i]="127.0.0.1:$((BASE + 100 + i))"; done
ALL="${EP[1]},${EP[2]},${EP[3]}"
for i in 1 2 3; do launch "$i"; done
for _ in $(seq 300); do
  "$KVCTL" --endpoints "${EP[1]}" --timeout 1s put start 1 >/dev/null 2>&1 && break
  sleep 0.1
done
expect_eq "the cluster serves (n1 wrote first, so it leads)" 1 "$("$KVCTL" --endpoints "$ALL" get start)"

# A rolling restart under load: each node in turn gets SIGTERM, exits 0,
# and starts again from its data dir before the next one goes.
"$KVCTL" --endpoints "$ALL" -w json bench --clients 8 --duration 12s >"$WORK/bench.json" 2>"$WORK/bench.err" &
bench=$!
sleep 1.5
for i in 1 2 3; do
  kill -TERM "${PIDS[$i]}"
  wait "${PIDS[$i]}"
  expect_eq "n$i exits 0 on SIGTERM" 0 $?
  grep -q "stepping down" "$WORK/n$i.log" || fail "n$i does not say it steps down"
  launch "$i"
  for _ in $(seq 300); do
    "$KVCTL" --endpoints "${EP[$i]}" --timeout 1s get start >/dev/null 2>&1 && break
    sleep 0.1
  done
  sleep 1.5
done
wait "$bench"
expect_eq "the bench ran to its end" 0 $?
field() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[k]
print(d)' "$WORK/bench.json" "$@"; }
ok=$(field ok) unknown=$(field unknown) rejected=$(field rejected)
echo "rolling restart under 8 clients: $ok ops, slowest $(field latency max_ms) ms (not asserted)"
[ "$ok" -gt 100 ] || fail "the bench got only $ok ops done"
expect_eq "no op of the rolling restart ended unknown" 0 "$unknown"
expect_eq "and none was refused" 0 "$rejected"

# The replicas agree once the load is over.
for _ in $(seq 100); do
  applied=$("$KVCTL" --endpoints "$ALL" status 2>/dev/null | awk 'NR>1 {print $6}' | sort -u)
  [ "$(wc -l <<<"$applied")" -eq 1 ] && break
  sleep 0.1
done
expect_eq "every node applied the same log" 1 "$(wc -l <<<"$applied")"
echo "graceful_stop: all passed"
