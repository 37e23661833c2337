#!/usr/bin/env bash
# Backup and restore with the shipped binaries, on the secure path (issue
# 15, item 4): a 3-node cluster with CURVE keys is loaded by kvctl bench
# while kvctl snapshot save takes a snapshot (an admin key only); kvctl
# snapshot status reads it; kvpaxosd restore seeds a NEW 3-node cluster
# (other ports, new data dirs, another cluster token) that then holds
# exactly the source's keys, values and revisions at the snapshot's
# revision. Refused, changing nothing: a save with a non-admin key, a
# restore into a non-empty data dir, a corrupt or truncated file, a restore
# that would reuse the old cluster's id. A restored node put in the place
# of an old one (same names, addresses and keys, new token) cannot talk to
# the old cluster.
#   bash backup_restore.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
KEYS="$WORK/keys"

make_cluster_keys "$KEYS" n1 n2 n3
"$KVCTL" keygen ops --dir "$KEYS" >/dev/null || fail "keygen ops"
"$KVCTL" keygen app --dir "$KEYS" >/dev/null || fail "keygen app"
mkdir -p "$KEYS/admins" "$KEYS/clients"
cp "$KEYS/ops.key" "$KEYS/admins/"
cp "$KEYS/app.key" "$KEYS/clients/"
KEYFLAGS=(--peer-keys "$KEYS/peer" --client-key "$KEYS/port/cluster.key_secret"
  --client-keys "$KEYS/clients" --admin-keys "$KEYS/admins")
ADMIN=(--server-key "$KEYS/port/cluster.key" --key "$KEYS/ops.key_secret")
APP=(--server-key "$KEYS/port/cluster.key" --key "$KEYS/app.key_secret")

# Old cluster: peers BASE+1..3, clients BASE+101..103; new: BASE+4..6, BASE+104..106.
BASE=$(pick_base 6)
peer() { echo "127.0.0.1:$((BASE + $1))"; }
client() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
OLD="n1=$(peer 1),n2=$(peer 2),n3=$(peer 3)"
NEW="n1=$(peer 4),n2=$(peer 5),n3=$(peer 6)"
OLD_EP="$(client 1),$(client 2),$(client 3)"
NEW_EP="$(client 4),$(client 5),$(client 6)"
declare -A PID

# start SLOT NAME CLUSTER DATA_DIR [flags]: a node on the ports of SLOT.
start() {
  local slot=$1 name=$2 cluster=$3 dir=$4; shift 4
  "$KVPAXOSD" --name "$name" --cluster "$cluster" --client-addr "$(client "$slot")" \
    --data-dir "$dir" "${KEYFLAGS[@]}" --log-level warn "$@" >>"$WORK/s$slot.log" 2>&1 &
  PID[$slot]=$!
  PIDS+=($!)
}
wait_serving() {  # wait_serving ENDPOINTS: every one answers its status
  for _ in $(seq 300); do
    "$KVCTL" "${ADMIN[@]}" --endpoints "$1" --timeout 1s status 2>/dev/null | grep -q ' yes ' &&
      [ "$("$KVCTL" "${ADMIN[@]}" --endpoints "$1" --timeout 1s status 2>/dev/null | grep -c ' yes ')" \
        -eq "$(tr ',' '\n' <<<"$1" | wc -l)" ] && return 0
    sleep 0.1
  done
  fail "$1 did not all answer in 30 s"
}
KO() { "$KVCTL" "${ADMIN[@]}" --endpoints "$OLD_EP" --timeout 10s "$@"; }
KN() { "$KVCTL" "${ADMIN[@]}" --endpoints "$NEW_EP" --timeout 10s "$@"; }

for i in 1 2 3; do
  start "$i" "n$i" "$OLD" "$WORK/old/n$i" --initial-cluster-state new --cluster-token old-token
done
wait_serving "$OLD_EP"
pass "old cluster (keys, data dirs) serves"

# A fixed key set, some keys written twice and one deleted, before the save.
for i in $(seq 0 29); do KO put "fixed-$i" "value-$i" >/dev/null || fail "put fixed-$i"; done
for i in 3 7; do KO put "fixed-$i" "again-$i" >/dev/null || fail "overwrite fixed-$i"; done
KO del fixed-9 >/dev/null || fail "del fixed-9"
# Three values of ~900 KiB: the snapshot is several 1 MiB chunks.
for i in 1 2 3; do
  head -c 700000 /dev/urandom | base64 -w0 | KO put "big-$i" - >/dev/null || fail "put big-$i"
done
KO -w json get fixed- --prefix >"$WORK/fixed_before.json" || fail "read the fixed keys"

# The load: only bench-* keys, for as long as the save takes.
"$KVCTL" "${APP[@]}" --endpoints "$OLD_EP" bench --clients 8 --duration 60s --keys 300 \
  --value-size 24 >"$WORK/bench.out" 2>"$WORK/bench.err" &
BENCH=$!
PIDS+=($BENCH)
sleep 2

"$KVCTL" "${APP[@]}" --endpoints "$(client 2)" --timeout 10s snapshot save "$WORK/denied.db" \
  >/dev/null 2>"$WORK/err"
expect_eq "snapshot save with a non-admin key exits 1" 1 $?
grep -q "admin key" "$WORK/err" || fail "the refusal says an admin key is needed: $(cat "$WORK/err")"
[ ! -e "$WORK/denied.db" ] || fail "a refused save wrote a file"
pass "a refused save wrote no file"
"$KVCTL" "${ADMIN[@]}" --endpoints "$OLD_EP" snapshot save "$WORK/x.db" >/dev/null 2>"$WORK/err"
expect_eq "snapshot save with three endpoints is a usage error" 2 $?

out=$("$KVCTL" "${ADMIN[@]}" --endpoints "$(client 2)" --timeout 10s snapshot save "$WORK/snap.db") ||
  fail "snapshot save under load: $out"
grep -q "^Snapshot saved at $WORK/snap.db: instance [0-9]*, revision [0-9]*" <<<"$out" ||
  fail "save prints what it saved: $out"
pass "snapshot save during the load: $out"
sleep 1
kill -0 "$BENCH" 2>/dev/null || fail "the load stopped early: $(cat "$WORK/bench.out" "$WORK/bench.err")"
kill -TERM "$BENCH"
wait "$BENCH" 2>/dev/null
pass "load stopped"
"$KVCTL" "${ADMIN[@]}" --endpoints "$(client 1)" --timeout 10s snapshot save "$WORK/snap.db" \
  >/dev/null 2>"$WORK/err"
expect_eq "snapshot save never writes over a file" 1 $?

status=$("$KVCTL" -w json snapshot status "$WORK/snap.db") || fail "snapshot status: $status"
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$status" "$1"; }
SNAP_REV=$(field revision)
SNAP_KEYS=$(field keys)
expect_eq "status: checksum ok" True "$(field checksum_ok)"
FIXED_REV=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["revision"])' "$WORK/fixed_before.json")
[ "$SNAP_REV" -gt "$FIXED_REV" ] || fail "the snapshot's revision $SNAP_REV holds none of the load"
[ "$SNAP_KEYS" -gt 32 ] || fail "the snapshot holds $SNAP_KEYS keys, fewer than the fixed ones"
[ "$(field size)" -gt $((2 << 20)) ] || fail "the snapshot of $(field size) bytes fits in fewer than 3 chunks"
"$KVCTL" snapshot status "$WORK/snap.db" | grep -q "^checksum: ok" || fail "text status says checksum ok"
pass "snapshot status: revision $SNAP_REV, $SNAP_KEYS keys, $(field size) bytes"

# Damaged files: refused by status and restore, nothing written.
cp "$WORK/snap.db" "$WORK/corrupt.db"
size=$(stat -c %s "$WORK/snap.db")
printf '\xff' | dd of="$WORK/corrupt.db" bs=1 seek=$((size / 2)) conv=notrunc status=none
head -c $((size - 100)) "$WORK/snap.db" >"$WORK/truncated.db"
for bad in corrupt truncated; do
  "$KVCTL" snapshot status "$WORK/$bad.db" >/dev/null 2>"$WORK/err"
  expect_eq "status of a $bad file exits 1" 1 $?
  grep -Eq "damaged|truncated" "$WORK/err" || fail "status names the damage: $(cat "$WORK/err")"
  "$KVPAXOSD" restore "$WORK/$bad.db" --data-dir "$WORK/bad-$bad" --name n1 --cluster "$NEW" \
    --cluster-token new-token >/dev/null 2>"$WORK/err"
  expect_eq "restore of a $bad file exits 1" 1 $?
  grep -Eq "damaged|truncated" "$WORK/err" || fail "restore names the damage: $(cat "$WORK/err")"
  [ ! -e "$WORK/bad-$bad" ] || fail "restore of a $bad file created its data dir"
done
pass "damaged files change nothing"

# A non-empty data dir (here a running node's) is never written.
before=$(find "$WORK/old/n1" -type f -exec md5sum {} + | sort)
"$KVPAXOSD" restore "$WORK/snap.db" --data-dir "$WORK/old/n1" --name n1 --cluster "$NEW" \
  --cluster-token new-token >/dev/null 2>"$WORK/err"
expect_eq "restore into a non-empty data dir exits 2" 2 $?
grep -q "is not empty" "$WORK/err" || fail "the refusal says why: $(cat "$WORK/err")"
expect_eq "the non-empty data dir is unchanged" "$before" "$(find "$WORK/old/n1" -type f -exec md5sum {} + | sort)"
"$KVPAXOSD" restore "$WORK/snap.db" --data-dir "$WORK/same-id" --name n1 --cluster "$OLD" \
  --cluster-token old-token >/dev/null 2>"$WORK/err"
expect_eq "restore with the old cluster's id exits 2" 2 $?
grep -q "cluster-token" "$WORK/err" || fail "the refusal names the token: $(cat "$WORK/err")"

# The source's state at the snapshot's revision, replayed from its watch
# history (every change since revision 1, one event per revision).
OLD_REV=$(KO -w json get fixed-0 | $PY -c 'import json,sys; print(json.load(sys.stdin)["revision"])')
KO -w json watch "" --from-key --rev 1 --count "$OLD_REV" >"$WORK/history.jsonl" ||
  fail "read the old cluster's history"
expect_eq "history holds every revision" "$OLD_REV" "$(wc -l <"$WORK/history.jsonl")"
[ "$OLD_REV" -gt "$SNAP_REV" ] || fail "the load wrote nothing after the snapshot (revision $OLD_REV)"
pass "the snapshot (revision $SNAP_REV) was taken while the load wrote ($FIXED_REV before, $OLD_REV after)"

for i in 1 2 3; do
  "$KVPAXOSD" restore "$WORK/snap.db" --data-dir "$WORK/new/n$i" --name "n$i" --cluster "$NEW" \
    --cluster-token new-token >"$WORK/restore$i.out" 2>&1 || fail "restore n$i: $(cat "$WORK/restore$i.out")"
done
grep -q "restored $WORK/new/n1 for n1" "$WORK/restore1.out" || fail "restore says what it did: $(cat "$WORK/restore1.out")"
pass "restored three data dirs"
for i in 1 2 3; do start $((i + 3)) "n$i" "$NEW" "$WORK/new/n$i" --cluster-token new-token; done
wait_serving "$NEW_EP"
pass "the restored cluster serves"

KN -w json get "" --from-key >"$WORK/restored.json" || fail "read the restored cluster"
$PY - "$WORK/history.jsonl" "$WORK/restored.json" "$SNAP_REV" <<'PYEOF' || fail "restored state differs"
import json, sys
history, restored, rev = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
state = {}
for line in open(history):
    e = json.loads(line)
    if e["mod_revision"] > rev:
        continue
    if e["type"] == "DELETE":
        state.pop(e["key"], None)
    else:
        state[e["key"]] = (e["value"], e["create_revision"], e["mod_revision"], e["version"])
got = {kv["key"]: (kv["value"], kv["create_revision"], kv["mod_revision"], kv["version"])
       for kv in restored["kvs"]}
assert restored["revision"] == rev, f"restored cluster at revision {restored['revision']}, snapshot {rev}"
assert not restored["more"], "one read holds every key"
missing = sorted(set(state) - set(got)); extra = sorted(set(got) - set(state))
wrong = sorted(k for k in state if k in got and state[k] != got[k])
assert not (missing or extra or wrong), f"missing {missing[:5]} extra {extra[:5]} wrong {wrong[:5]}"
print(f"PASS: all {len(got)} keys equal the source at revision {rev} (values, create/mod revisions, versions)")
PYEOF
expect_eq "the fixed keys are as written before the save" \
  "$(sed 's/^{"revision":[0-9]*,//' "$WORK/fixed_before.json")" \
  "$(KN -w json get fixed- --prefix | sed 's/^{"revision":[0-9]*,//')"
expect_eq "the restored cluster's members are the new list" "$(peer 4) $(peer 5) $(peer 6)" \
  "$(KN -w json member list | $PY -c 'import json,sys; print(" ".join(m["peer_addr"].replace("tcp://","") for m in json.load(sys.stdin)["members"]))')"
expect_eq "the restored cluster writes" OK "$(KN put after-restore yes)"
expect_eq "and its revision goes on from the snapshot's" $((SNAP_REV + 1)) \
  "$(KN -w json get after-restore | $PY -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')"
expect_eq "the old cluster does not see it" "" "$(KO get after-restore)"

# A restored node in the place of old n3 (its name, address and keys, the
# new token): the old cluster's nodes drop its frames, it drops theirs.
kill -TERM "${PID[3]}"; wait "${PID[3]}" 2>/dev/null
"$KVPAXOSD" restore "$WORK/snap.db" --data-dir "$WORK/impostor" --name n3 --cluster "$OLD" \
  --cluster-token new-token >/dev/null 2>&1 || fail "restore the impostor"
start 3 n3 "$OLD" "$WORK/impostor" --cluster-token new-token
sleep 1
expect_eq "the old majority still writes" OK "$(KO put during-impostor old)"
"$KVCTL" "${ADMIN[@]}" --endpoints "$(client 3)" --timeout 3s get during-impostor >/dev/null 2>"$WORK/err"
expect_eq "the restored node cannot reach a majority through the old cluster" 1 $?
grep -q "unknown" "$WORK/err" || fail "its read times out (outcome unknown): $(cat "$WORK/err")"
kill -0 "${PID[3]}" 2>/dev/null || fail "the restored node exited"
pass "a node of another cluster id cannot talk to the old cluster"
echo "backup_restore: every check passed"
