#!/usr/bin/env bash
# Online membership change with real kvpaxosd processes, driven by kvctl as
# an operator would (issue 14's acceptance), every node with a data dir:
#   1. three nodes start with --initial-cluster-state new; under a 16-client
#      load the cluster grows to five (member add, start the printed line,
#      promote) and shrinks back to three: one voter is killed first and
#      removed while down, the other removed while it runs and exits 4; the
#      load sees no error. The down one, started again, learns it was
#      removed and exits 4; a removed node's data dir is refused after.
#   2. a voter of the first start is replaced by a node with a new name and
#      address (member replace), atomically.
#   3. the leader is removed under a one-client load: the longest op takes
#      about a second at most. A learner that never starts changes nothing
#      and cannot be promoted.
#   4. five voters, two of them lose their data dirs for good: the three
#      that remain replace both with new members.
# At the end every live replica holds the same revision and values.
#   bash membership_change.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3

BASE=$(pick_base 12)
peer() { echo "127.0.0.1:$((BASE + $1))"; }
client() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
declare -A PID

# The client endpoints kvctl is given: every member there is (kvctl fails
# over past the ones that are down).
ENDPOINTS=""
add_endpoint() { ENDPOINTS+="${ENDPOINTS:+,}$(client "$1")"; }
drop_endpoint() { ENDPOINTS=$(tr ',' '\n' <<<"$ENDPOINTS" | grep -vx "$(client "$1")" | paste -sd,); }
K() { "$KVCTL" --endpoints "$ENDPOINTS" --timeout 10s "$@"; }

# start I FLAGS...: node nI on its ports and data dir.
start() {
  local i=$1; shift
  "$KVPAXOSD" --name "n$i" --client-addr "$(client "$i")" --data-dir "$WORK/d$i" "$@" \
    >>"$WORK/n$i.log" 2>&1 &
  PID[$i]=$!
  PIDS+=($!)
}

wait_serving() {  # wait_serving I: nI answers its status
  for _ in $(seq 300); do
    "$KVCTL" --endpoints "$(client "$1")" --timeout 1s status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "n$1 did not answer its status in 30 s"
}

# add I: member add nI, then start it with the line kvctl printed (DIR
# replaced by its data dir), as the README says.
add() {
  local i=$1 out line args
  out=$(K member add "n$i" --peer-addr "$(peer "$i")" --client-addr "$(client "$i")") ||
    fail "member add n$i: $out"
  line=$(grep -A1 '^start it with:' <<<"$out" | tail -n 1)
  read -ra args <<<"$line"
  [ "${args[0]}" == kvpaxosd ] || fail "member add n$i printed no kvpaxosd line: $out"
  for k in "${!args[@]}"; do [ "${args[$k]}" == DIR ] && args[$k]="$WORK/d$i"; done
  "$KVPAXOSD" "${args[@]:1}" >>"$WORK/n$i.log" 2>&1 &
  PID[$i]=$!
  PIDS+=($!)
  add_endpoint "$i"
}

voters() { K -w json member list | "$PY" -c 'import json,sys
print(" ".join(sorted(m["name"] for m in json.load(sys.stdin)["members"] if m["role"] == "voter")))'; }

# The name of the member the nodes take for the leader (StatusReply.leader).
leader() {
  local members
  members=$(K -w json member list) || fail "member list: $members"
  K -w json status 2>/dev/null | MEMBERS="$members" "$PY" -c 'import json,os,sys
names = {m["id"]: m["name"] for m in json.loads(os.environ["MEMBERS"])["members"]}
seen = [s["leader"] for s in json.load(sys.stdin) if s["reachable"]]
print(names.get(max(set(seen), key=seen.count), "?"))'
}

bench_clean() {  # bench_clean FILE WHAT: the bench saw no error and did work
  "$PY" -c 'import json,sys
r = json.load(open(sys.argv[1]))
assert r["ok"] > 0 and r["unknown"] == 0 and r["rejected"] == 0, r
print(r["ok"], "ops,", r["unknown"], "unknown,", r["rejected"], "rejected, max", r["latency"]["max_ms"], "ms")' "$1" ||
    fail "$2: $(cat "$1")"
}

removed_and_refused() {  # removed_and_refused I: nI exited 4 and its data dir is refused
  wait_exit "$1"
  expect_eq "n$1 exits with the removed status" 4 "$CODE"
  [ -f "$WORK/d$1/kvpaxos-removed" ] || fail "n$1 left no tombstone in its data dir"
  expect_eq "n$1 logged why" 1 "$(grep -c 'removed from the cluster at epoch .*; exiting' "$WORK/n$1.log")"
  local out code
  out=$("$KVPAXOSD" --name "n$1" --cluster "n$1=$(peer "$1")" --client-addr "$(client "$1")" \
    --data-dir "$WORK/d$1" 2>&1)
  code=$?
  expect_eq "a start on n$1's data dir is refused" 2 "$code"
  expect_eq "the refusal names the removal" 1 "$(grep -c 'belongs to a removed member' <<<"$out")"
}

# ---- 1. grow 3 -> 5 and shrink 5 -> 3 under a 16-client load
CLUSTER="n1=$(peer 1),n2=$(peer 2),n3=$(peer 3)"
for i in 1 2 3; do start "$i" --cluster "$CLUSTER" --initial-cluster-state new; add_endpoint "$i"; done
for i in 1 2 3; do wait_serving "$i"; done
expect_eq "a put on the new cluster" OK "$(K put k v0)"
expect_eq "the first start's voters" "n1 n2 n3" "$(voters)"

LOAD="$(client 1),$(client 2),$(client 3),$(client 4),$(client 5)"
"$KVCTL" --endpoints "$LOAD" --timeout 10s -w json bench --clients 16 --duration 40s \
  --mix put=50,get=50 --keys 200 >"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!
sleep 2
add 4
promote_when_ready promote n4 >/dev/null
add 5
promote_when_ready promote n5 >/dev/null
expect_eq "five voters under load" "n1 n2 n3 n4 n5" "$(voters)"
sleep 2
kill -KILL "${PID[5]}"; wait "${PID[5]}" 2>/dev/null
out=$(K member remove n5) || fail "removing n5, which is down: $out"
expect_eq "a voter that is down is removed" 1 "$(grep -c '^removed n5 (id 4)' <<<"$out")"
drop_endpoint 5
out=$(K member remove n4) || fail "member remove n4: $out"
drop_endpoint 4
removed_and_refused 4
expect_eq "three voters again" "n1 n2 n3" "$(voters)"
wait "$LOAD_PID" || fail "the load's kvctl bench failed: $(cat "$WORK/load.err")"
pass "16 clients while growing to 5 and shrinking to 3: $(bench_clean "$WORK/load.json" "the load")"

# n5 was removed while down: started again, the others tell it, and it stops.
start 5 --cluster "$CLUSTER"
removed_and_refused 5

# ---- 2. replace a voter of the first start by a node of a new name and address
add 6
out=$(promote_when_ready replace n1 n6) || exit 1
expect_eq "replace says who took whose place" 1 "$(grep -c '^n6 replaced n1 (id 0)' <<<"$out")"
drop_endpoint 1
removed_and_refused 1
expect_eq "n6 votes in n1's place" "n2 n3 n6" "$(voters)"
expect_eq "the value written before, read at n6" v0 "$("$KVCTL" --endpoints "$(client 6)" --timeout 10s get k)"

# ---- 3. a learner that never starts; the leader removed
out=$(K member add n7 --peer-addr "$(peer 7)" --client-addr "$(client 7)") || fail "member add n7: $out"
expect_eq "a put with a learner that never started" OK "$(K put k v1)"
out=$(K member promote n7 2>&1)
expect_eq "promoting it is refused" 1 "$(grep -c 'n7 does not answer' <<<"$out")"
out=$(K member remove n7) || fail "removing the learner that never started: $out"

add 8
promote_when_ready promote n8 >/dev/null
expect_eq "four voters" "n2 n3 n6 n8" "$(voters)"
LEADER=$(leader)
[ -n "$LEADER" ] && [ "$LEADER" != "?" ] || fail "no node names a leader"
L=${LEADER#n}
"$KVCTL" --endpoints "$ENDPOINTS" --timeout 10s -w json bench --clients 1 --duration 8s \
  --mix put=100 --keys 10 >"$WORK/lead.json" 2>"$WORK/lead.err" &
LEAD_PID=$!
sleep 3
out=$(K member remove "$LEADER") || fail "removing the leader $LEADER: $out"
drop_endpoint "$L"
removed_and_refused "$L"
wait "$LEAD_PID" || fail "kvctl bench across the leader's removal: $(cat "$WORK/lead.err")"
summary=$(bench_clean "$WORK/lead.json" "one client across the leader's removal")
max_ms=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["latency"]["max_ms"]))' "$WORK/lead.json")
# About a second: the lead moves at once, but the window's no-ops and a
# retry at another node come first. Generous for a loaded 2-core CI.
[ "$max_ms" -le 2500 ] || fail "an op took $max_ms ms across the removal of the leader $LEADER"
pass "the leader $LEADER removed under load: $summary"

# ---- 4. five voters, two lose their data dirs; the three that remain replace them
add 9
promote_when_ready promote n9 >/dev/null
add 10
promote_when_ready promote n10 >/dev/null
[ "$(voters | wc -w)" -eq 5 ] || fail "expected five voters, got $(voters)"
DEAD=$(voters | tr ' ' '\n' | grep -v "^n$L\$" | head -n 2 | tr '\n' ' ')
for name in $DEAD; do
  i=${name#n}
  kill -KILL "${PID[$i]}"; wait "${PID[$i]}" 2>/dev/null
  rm -rf "$WORK/d$i"
  drop_endpoint "$i"
done
expect_eq "three of five serve" OK "$(K put k v2)"
n=11
for name in $DEAD; do
  add "$n"
  out=$(promote_when_ready replace "$name" "n$n") || exit 1
  n=$((n + 1))
done
expect_eq "the lost two replaced by n11 and n12" 1 "$(voters | grep -c 'n11 n12')"
[ "$(voters | wc -w)" -eq 5 ] || fail "expected five voters, got $(voters)"

# ---- the end: every live replica the same
expect_eq "a last put" OK "$(K put k last)"
for _ in $(seq 100); do
  states=$(for ep in $(tr ',' ' ' <<<"$ENDPOINTS"); do
    "$KVCTL" --endpoints "$ep" --timeout 5s -w json status | "$PY" -c 'import json,sys
s = json.load(sys.stdin)[0]; print(s["revision"], s["keys"])'
    "$KVCTL" --endpoints "$ep" --timeout 5s get k
  done | sort -u | wc -l)
  [ "$states" -eq 2 ] && break
  sleep 0.2
done
expect_eq "every live replica has the same revision, key count and value" 2 "$states"
echo "membership_change: every check passed"
