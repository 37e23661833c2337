#!/usr/bin/env bash
# kvpaxosd --listen-metrics-addr on three real nodes: every node's /metrics
# passes promtool check metrics, the client reply counter grows with puts,
# the front door's request counters and latency histograms move by op and
# code for puts, gets and an undecodable frame,
# exactly one node is leader, bad requests get 4xx, and /readyz turns 503 on
# a node cut off with kvctl fault reach, and 200 again after the heal.
#   bash metrics.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

command -v promtool >/dev/null ||
  fail "promtool is missing: install Debian's prometheus (deploy/install-deps.sh does)"
command -v curl >/dev/null || fail "curl is missing: deploy/install-deps.sh installs it"

METRICS=1
start_cluster 3 --fault-injection
K() { "$KVCTL" --timeout 10s "$@"; }
scrape() { curl -sS --max-time 5 "http://${MX[$1]}/metrics"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://${MX[$1]}$2"; }
# value NODE SAMPLE: the value of one sample line (name with labels), or empty.
value() { scrape "$1" | awk -v s="$2" '$1 == s {print $2}'; }
# wait_status NODE PATH CODE: polls up to 30 s.
wait_status() {
  for _ in $(seq 300); do
    [ "$(status_of "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  fail "n$1 $2 did not answer $3 within 30 s (last: $(status_of "$1" "$2"), $(curl -s "http://${MX[$1]}$2"))"
}

expect_eq "put via n1" OK "$(K --endpoints "${EP[1]}" put k a)"
for i in 1 2 3; do wait_status "$i" /readyz 200; done
pass "readyz 200 on all three"

for i in 1 2 3; do
  scrape "$i" >"$WORK/m$i.txt" || fail "scrape n$i"
  out=$(promtool check metrics <"$WORK/m$i.txt" 2>&1)
  [ $? -eq 0 ] && [ -z "$out" ] || fail "promtool check metrics on n$i: $out"
  grep -q '^kvpaxos_disk_fsync_duration_seconds_count ' "$WORK/m$i.txt" || fail "n$i has no fsync histogram"
  grep -q '^process_resident_memory_bytes [1-9]' "$WORK/m$i.txt" || fail "n$i has no RSS"
done
pass "promtool check metrics: no complaints on any node"

ok='kvpaxos_client_replies_total{code="ok"}'
before=$(value 1 "$ok")
for j in $(seq 5); do K --endpoints "${EP[1]}" put "k$j" v >/dev/null || fail "put k$j"; done
# The applier publishes its counts every 100 ms.
for _ in $(seq 30); do
  after=$(value 1 "$ok")
  [ -n "$after" ] && [ -n "$before" ] && [ "$after" -ge $((before + 5)) ] && break
  sleep 0.1
done
[ -n "$before" ] && [ "$after" -ge $((before + 5)) ] || fail "ok replies on n1 went from '$before' to '$after' after 5 puts"
pass "ok replies on n1: $before -> $after after 5 puts"

# The front door's request metrics: puts, gets, a status and one undecodable
# frame, counted by op and code on the node that answered them, and timed
# (all but the status, whose reply names no request).
req() { echo "kvpaxos_client_requests_total{op=\"$1\",code=\"$2\"}"; }
count_of() { echo "kvpaxos_client_request_duration_seconds_count{op=\"$1\"}"; }
scrape 1 >"$WORK/before.txt" || fail "scrape n1"
at() { awk -v s="$2" '$1 == s {print $2}' "$1"; }
for j in $(seq 3); do K --endpoints "${EP[1]}" put "lat$j" v >/dev/null || fail "put lat$j"; done
for j in $(seq 4); do K --endpoints "${EP[1]}" get "lat$j" >/dev/null || fail "get lat$j"; done
K --endpoints "${EP[1]}" status >/dev/null || fail "status of n1"
/usr/bin/python3 - "${EP[1]}" >"$WORK/bad.txt" <<'PY' || fail "sending an undecodable frame: $(cat "$WORK/bad.txt")"
import sys, msgpack, zmq
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 5000)
s.connect("tcp://" + sys.argv[1])
s.send(b"\x93\x01")  # an array of three holding one value
print(msgpack.unpackb(s.recv())[2][0])  # ErrorReply's code
PY
expect_eq "an undecodable frame's reply code (bad_request)" 1 "$(cat "$WORK/bad.txt")"
scrape 1 >"$WORK/after.txt" || fail "scrape n1"
moved() {  # moved NAME MIN: the sample NAME grew by at least MIN on n1
  local b a
  b=$(at "$WORK/before.txt" "$1"); a=$(at "$WORK/after.txt" "$1")
  [ -n "$b" ] && [ -n "$a" ] && [ "${a%.*}" -ge $((${b%.*} + $2)) ] ||
    fail "$1 on n1 went from '$b' to '$a'; expected at least $2 more"
  pass "$1: $b -> $a"
}
moved "$(req put ok)" 3
moved "$(req get ok)" 4
moved "$(req invalid bad_request)" 1
moved "$(count_of put)" 3
moved "$(count_of get)" 4
moved "$(count_of invalid)" 1
moved "$(req status ok)" 1
expect_eq "status replies name no request: not timed" "$(at "$WORK/before.txt" "$(count_of status)")" \
  "$(at "$WORK/after.txt" "$(count_of status)")"
expect_eq "gets refused as bad_request" "$(at "$WORK/before.txt" "$(req get bad_request)")" \
  "$(at "$WORK/after.txt" "$(req get bad_request)")"
inf=$(at "$WORK/after.txt" 'kvpaxos_client_request_duration_seconds_bucket{op="put",le="+Inf"}')
expect_eq "the put histogram's +Inf bucket is its count" "$(at "$WORK/after.txt" "$(count_of put)")" "$inf"
out=$(promtool check metrics <"$WORK/after.txt" 2>&1)
[ $? -eq 0 ] && [ -z "$out" ] || fail "promtool check metrics after the requests: $out"
pass "client request metrics by op and code"

# The applier publishes every 100 ms: give the leader gauge a moment to agree.
for _ in $(seq 50); do
  leaders=0
  for i in 1 2 3; do [ "$(value "$i" kvpaxos_server_is_leader)" = 1 ] && leaders=$((leaders + 1)); done
  [ "$leaders" -eq 1 ] && break
  sleep 0.1
done
expect_eq "nodes with kvpaxos_server_is_leader 1" 1 "$leaders"

expect_eq "POST /metrics" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://${MX[1]}/metrics")"
expect_eq "GET /nope" 404 "$(status_of 1 /nope)"
expect_eq "GET /livez" 200 "$(status_of 1 /livez)"
expect_eq "/health" '{"health":"true","reason":""}' "$(curl -s "http://${MX[1]}/health")"
# A client that sends half a request and stalls does not hold up a scrape.
exec 3<>"/dev/tcp/127.0.0.1/${MX[1]##*:}"
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&3
expect_eq "a scrape beside a stalled client" 200 "$(status_of 1 /metrics)"
big=$(head -c 20000 /dev/zero | tr '\0' a)
expect_eq "an oversized request" 431 "$(curl -s -o /dev/null -w '%{http_code}' -H "X: $big" "http://${MX[1]}/metrics")"
exec 3>&-

# n3 cut off: not ready (no quorum), still live; n1 and n2 stay ready.
K --endpoints "${EP[3]}" fault reach n3 >/dev/null || fail "fault reach on n3"
K --endpoints "${EP[1]}" fault reach n1,n2 >/dev/null || fail "fault reach on n1"
K --endpoints "${EP[2]}" fault reach n1,n2 >/dev/null || fail "fault reach on n2"
wait_status 3 /readyz 503
curl -s "http://${MX[3]}/readyz" | grep -q "no quorum" || fail "n3 /readyz names the quorum: $(curl -s "http://${MX[3]}/readyz")"
curl -s "http://${MX[3]}/health" | grep -q '"health":"false"' || fail "n3 /health is false"
expect_eq "n3 has_quorum" 0 "$(value 3 kvpaxos_server_has_quorum)"
expect_eq "n3 /livez while cut off" 200 "$(status_of 3 /livez)"
expect_eq "n1 /readyz while n3 is cut off" 200 "$(status_of 1 /readyz)"
pass "readyz 503 on the cut-off node"

for i in 1 2 3; do K --endpoints "${EP[$i]}" fault reach all >/dev/null || fail "heal n$i"; done
wait_status 3 /readyz 200
expect_eq "n3 has_quorum after heal" 1 "$(value 3 kvpaxos_server_has_quorum)"
pass "readyz 200 again after heal"

# The flag's errors: one line, exit 2.
"$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr 127.0.0.1:1 \
  --listen-metrics-addr nonsense >/dev/null 2>"$WORK/err"
expect_eq "a bad --listen-metrics-addr exits 2" 2 $?
grep -q -- "--listen-metrics-addr" "$WORK/err" || fail "the error names the flag: $(cat "$WORK/err")"
pass "metrics e2e"
