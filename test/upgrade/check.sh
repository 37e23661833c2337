#!/usr/bin/env bash
# By hand (ctest does not run it: it needs a build of an earlier release):
# data dirs written by OLD_BUILD's kvpaxosd start unchanged under
# NEW_BUILD's, keep their data and marker, and still start under the old
# binary afterwards.
#   bash test/upgrade/check.sh OLD_BUILD_DIR NEW_BUILD_DIR
# e.g. git worktree add /tmp/old v-previous && cmake ... -B /tmp/old/build;
# ports 27701-27703 and 27801-27803 on 127.0.0.1.
set -u
OLD=$1/kvpaxosd; OLDCTL=$1/kvctl
NEW=$2/kvpaxosd; NEWCTL=$2/kvctl
W=$(mktemp -d)
trap 'for i in 1 2 3; do kill -9 $(cat $W/pid$i 2>/dev/null) 2>/dev/null; done; rm -rf $W' EXIT
C="n1=127.0.0.1:27701,n2=127.0.0.1:27702,n3=127.0.0.1:27703"
E="127.0.0.1:27801,127.0.0.1:27802,127.0.0.1:27803"
failed=0
expect() { if [ "$2" == "$3" ]; then echo "PASS: $1"; else echo "FAIL: $1: expected '$2', got '$3'"; failed=1; fi; }
start() { for i in 1 2 3; do $1 --name n$i --cluster $C --client-addr 127.0.0.1:2780$i --data-dir $W/d$i $2 >> $W/n$i.log 2>&1 & echo $! > $W/pid$i; done; }
stopall() { for i in 1 2 3; do kill $(cat $W/pid$i); done; sleep 1.5; }
start $OLD --first-start; sleep 2
for k in 1 2 3 4 5; do $OLDCTL --endpoints $E --timeout 10s put key$k old$k > /dev/null || echo "old put failed"; done
$OLDCTL --endpoints $E --timeout 10s append key1 +more > /dev/null
stopall
before=$(cat $W/d1/kvpaxos-node)
start $NEW ""; sleep 2
expect "the old release's append, read by the new" "old1+more" "$($NEWCTL --endpoints $E --timeout 10s get key1)"
for k in 2 3 4 5; do expect "key$k under the new release" "old$k" "$($NEWCTL --endpoints $E --timeout 10s get key$k)"; done
expect "a put under the new release" OK "$($NEWCTL --endpoints $E --timeout 10s put key6 new6)"
expect "the first start's three voters, ids 0-2" 3 "$($NEWCTL --endpoints $E --timeout 10s member list | grep -c '^[012] .* voter ')"
expect "the marker is left as the old release wrote it" "$before" "$(cat $W/d1/kvpaxos-node)"
stopall
start $OLD ""; sleep 2
expect "back on the old binary, the new release's put" new6 "$($OLDCTL --endpoints $E --timeout 10s get key6)"
stopall
exit $failed
