#!/usr/bin/env bash
# Membership through kvctl against three real kvpaxosd processes without
# data dirs, the commands' output and refusals (membership_change.sh runs
# members through their whole life, with data dirs): member list shows the bootstrap voters at epoch 0; member add prints the
# learner's id, epoch, the instance it is in force from and a kvpaxosd line;
# a learner that never starts does not affect the cluster (writes go on) and
# cannot be promoted (kvctl refuses with the reason, exit 1); a duplicate
# name is refused by the cluster; remove takes it out; the epoch moves by
# one per change; -w json parses. member list shows who answers, promote
# --wait waits and then refuses, status shows ids and roles; with a voter
# down, removing a live one is refused and removing the dead one is done.
#   bash membership.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

start_cluster 3
ALL="${EP[1]},${EP[2]},${EP[3]}"
K() { "$KVCTL" --endpoints "$ALL" --timeout 10s "$@"; }
PY=/usr/bin/python3

list=$(K member list) || fail "member list: $list"
expect_eq "member list starts at epoch 0" "epoch 0 (alpha 64)" "$(head -n 1 <<<"$list")"
expect_eq "member list shows three voters" 3 "$(grep -c ' voter ' <<<"$list")"

added=$(K member add n4 --peer-addr 127.0.0.1:$((BASE + 4)) --client-addr 127.0.0.1:$((BASE + 104))) ||
  fail "member add: $added"
expect_eq "member add names the learner, its id and epoch 1" 1 \
  "$(grep -c '^added learner n4 (id 3): epoch 1, in force from instance [0-9]*$' <<<"$added")"
expect_eq "member add prints the kvpaxosd line to start it" 1 \
  "$(grep -c -- '--name n4 .*--initial-cluster-state existing' <<<"$added")"

# The learner never starts: the cluster serves as before.
expect_eq "a put with a learner that never started" OK "$(K put k v1)"
expect_eq "and a get" v1 "$(K get k)"

out=$(K member promote n4 2>&1)
code=$?
expect_eq "promoting a learner that does not answer exits 1" 1 "$code"
expect_eq "the refusal says why" 1 "$(grep -c 'n4 does not answer at 127.0.0.1' <<<"$out")"
expect_eq "member list shows the learner unreachable, the voters reachable" "no 3" \
  "$(K member list | awk '$2 == "n4" { n4 = $4 } $3 == "voter" && $4 == "yes" { v++ } END { print n4, v }')"
out=$(K member promote n4 --wait 1s 2>&1)
code=$?
expect_eq "promote --wait 1s with a learner that never starts exits 1" 1 "$code"
expect_eq "it said it was waiting, then that it waited" 2 \
  "$(grep -c -e 'n4 does not answer at .*, waiting$' -e '(waited 1s)' <<<"$out")"
expect_eq "status shows each node's id and role" 3 "$(K status | grep -c ' [0-2] *voter *yes ')"
expect_eq "the learner is still a learner" 1 "$(K member list | grep -c 'n4 *learner')"

out=$(K member add n4 --peer-addr 127.0.0.1:$((BASE + 5)) 2>&1)
code=$?
expect_eq "a second member named n4 exits 1" 1 "$code"
expect_eq "the cluster says the name is taken" 1 "$(grep -c 'the name n4 is taken by member id 3' <<<"$out")"

json=$(K -w json member list) || fail "member list -w json: $json"
"$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["epoch"] == 1, d; assert len(d["members"]) == 4, d' <<<"$json" ||
  fail "member list -w json: $json"
pass "member list -w json parses: epoch 1, four members"

removed=$(K member remove n4) || fail "member remove: $removed"
expect_eq "member remove moves the epoch to 2" 1 "$(grep -c 'epoch 2' <<<"$removed")"
expect_eq "three members again" 3 "$(K member list | grep -c ' voter ')"
expect_eq "no learner left" 0 "$(K member list | grep -c ' learner ')"
expect_eq "writes after the changes" OK "$(K put k v2)"
expect_eq "read back on n3" v2 "$("$KVCTL" --endpoints "${EP[3]}" --timeout 10s get k)"

# n3 goes down: removing a live voter would leave n2 alone of two, so kvctl
# refuses it and names n3; removing n3 itself leaves a live majority.
kill -KILL "${PIDS[3]}"
out=$(K member remove n1 2>&1)
code=$?
expect_eq "removing a live voter while another is down exits 1" 1 "$code"
expect_eq "the refusal names the voter that does not answer" 1 "$(grep -c 'not answering: n3' <<<"$out")"
removed=$(K member remove n3) || fail "member remove of the node that is down: $removed"
expect_eq "removing the node that is down is done" 1 "$(grep -c '^removed n3 (id 2)' <<<"$removed")"
expect_eq "writes after removing the dead node" OK "$(K put k v3)"

echo "membership: every check passed"
