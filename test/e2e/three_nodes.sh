#!/usr/bin/env bash
# Three real kvpaxosd processes driven by kvctl: the happy path, flag errors,
# a partition (minority never answers, majority serves, convergence after
# heal), SIGTERM within a second, and fail-over past a SIGKILLed node.
#   bash three_nodes.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

start_cluster 3 --fault-injection
ALL="${EP[1]},${EP[2]},${EP[3]}"
K() { "$KVCTL" --timeout 10s "$@"; }

expect_eq "put via n1" OK "$(K --endpoints "${EP[1]}" put k a)"
expect_eq "append via n2" OK "$(K --endpoints "${EP[2]}" append k bc)"
for i in 1 2 3; do expect_eq "get k via n$i" abc "$(K --endpoints "${EP[$i]}" get k)"; done
expect_eq "get of a missing key is empty" "" "$(K --endpoints "${EP[3]}" get nothing)"
printf 'line1\nline2' | K --endpoints "${EP[1]}" put multi - >/dev/null || fail "put from stdin"
expect_eq "value from stdin kept its newline" "$(printf 'line1\nline2')" "$(K --endpoints "${EP[2]}" get multi)"

rows=$(K --endpoints "$ALL" status | grep -c ' yes ')
expect_eq "status answers on all three" 3 "$rows"
K --endpoints "$ALL" -w json status | grep -q '"name":"n2"' || fail "status -w json names n2"
pass "status -w json"

# Bad flags: one line on stderr, exit 2.
"$KVPAXOSD" --name n9 --cluster "$CLUSTER" --client-addr 127.0.0.1:1 >/dev/null 2>"$WORK/err"
expect_eq "unknown --name exits 2" 2 $?
expect_eq "unknown --name says one line" 1 "$(wc -l <"$WORK/err")"
"$KVPAXOSD" --name a --cluster a=127.0.0.1:1,b=127.0.0.1:1 --client-addr 127.0.0.1:2 >/dev/null 2>&1
expect_eq "duplicate address exits 2" 2 $?
"$KVPAXOSD" --name a --cluster a=127.0.0.1:1,a=127.0.0.1:3 --client-addr 127.0.0.1:2 >/dev/null 2>&1
expect_eq "duplicate name exits 2" 2 $?
"$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr 127.0.0.1:1 --pipeline 0 \
  >/dev/null 2>"$WORK/err"
expect_eq "--pipeline 0 exits 2" 2 $?
grep -q "pipeline is 0; allowed 1 to 256" "$WORK/err" || fail "--pipeline 0 names the range: $(cat "$WORK/err")"
"$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr "${EP[1]}" >/dev/null 2>"$WORK/err"
expect_eq "port in use exits 2" 2 $?
grep -q "cannot listen" "$WORK/err" || fail "port in use names the problem: $(cat "$WORK/err")"
mkdir -p "$WORK/other"
printf 'name=n2\ncluster=%s\n' "$CLUSTER" >"$WORK/other/kvpaxos-node"
"$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr 127.0.0.1:1 --data-dir "$WORK/other" \
  >/dev/null 2>"$WORK/err"
expect_eq "another node's data dir exits 2" 2 $?
grep -q "belongs to another node" "$WORK/err" || fail "data dir refusal names the problem: $(cat "$WORK/err")"
"$KVCTL" --endpoints "${EP[1]}" fault drop 1.5 >/dev/null 2>&1
expect_eq "fault drop 1.5 is a usage error" 2 $?
"$KVCTL" --endpoints "${EP[1]}" frobnicate >/dev/null 2>&1
expect_eq "unknown kvctl command is a usage error" 2 $?

# Partition: n3 alone, n1+n2 the majority.
K --endpoints "${EP[3]}" fault reach n3 >/dev/null || fail "fault reach on n3"
K --endpoints "${EP[1]}" fault reach n1,n2 >/dev/null || fail "fault reach on n1"
K --endpoints "${EP[2]}" fault reach n1,n2 >/dev/null || fail "fault reach on n2"
out=$("$KVCTL" --endpoints "${EP[3]}" --timeout 2s get k 2>&1)
expect_eq "minority get exits 1" 1 $?
echo "$out" | grep -q "unknown" || fail "minority get says the outcome is unknown: $out"
"$KVCTL" --endpoints "${EP[3]}" --timeout 2s put x minority >/dev/null 2>&1
expect_eq "minority put exits 1" 1 $?
expect_eq "majority put" OK "$(K --endpoints "${EP[1]}" put x majority)"
expect_eq "majority get" majority "$(K --endpoints "${EP[2]}" get x)"
for i in 1 2 3; do K --endpoints "${EP[$i]}" fault reach all >/dev/null || fail "heal n$i"; done
# The minority's put may still be decided after the heal (its outcome was
# unknown), so what matters is that every replica agrees.
expect_eq "after heal n3 serves" OK "$(K --endpoints "${EP[3]}" put y healed)"
v1=$(K --endpoints "${EP[1]}" get x); v3=$(K --endpoints "${EP[3]}" get x)
expect_eq "replicas agree on x after heal" "$v1" "$v3"
for _ in $(seq 100); do
  a=$(K --endpoints "$ALL" -w json status | grep -o '"applied_below":[0-9]*' | sort -u | wc -l)
  [ "$a" -eq 1 ] && break
  sleep 0.1
done
expect_eq "all replicas applied the same prefix" 1 "$a"

# SIGKILL n1: the others serve, and a client listing n1 first fails over.
kill -KILL "${PIDS[1]}"
expect_eq "fail-over past a dead n1" abc "$(K --endpoints "${EP[1]},${EP[2]}" get k)"
expect_eq "two of three still write" OK "$(K --endpoints "${EP[2]}" append k d)"
expect_eq "two of three still read" abcd "$(K --endpoints "${EP[3]}" get k)"

# SIGTERM stops a node within a second.
start=$(date +%s%N)
kill -TERM "${PIDS[2]}"
wait "${PIDS[2]}" 2>/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 1000 ] || fail "SIGTERM took $ms ms"
pass "SIGTERM stopped n2 in $ms ms"
echo "three_nodes: every check passed"
