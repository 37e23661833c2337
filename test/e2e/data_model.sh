#!/usr/bin/env bash
# The data model through kvctl, as etcdctl v3 shows it, against three real
# kvpaxosd processes: del's count, ranges (--prefix, --to, --from-key,
# --limit, --keys-only, --count-only) in byte order, txn (create-if-absent,
# update-if-unchanged with a mod revision read from get -w json, a lock key),
# JSON that parses and revisions that increase, and the usage errors.
#   bash data_model.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

start_cluster 3
ALL="${EP[1]},${EP[2]},${EP[3]}"
K() { "$KVCTL" --endpoints "$ALL" --timeout 10s "$@"; }
PY=/usr/bin/python3

# json_valid WHAT: stdin parses as one JSON document (give it a file or a
# here-string: at the end of a pipeline, its fail would end only a subshell).
json_valid() {
  "$PY" -c 'import json,sys; json.load(sys.stdin)' || fail "$1: not JSON"
  pass "$1 is JSON"
}
# field PATH: one field of the JSON on stdin, PATH like kvs.0.mod_revision
# (booleans as true/false).
field() {
  "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for p in sys.argv[1].split("."):
    d = d[int(p)] if isinstance(d, list) else d[p]
print(json.dumps(d) if isinstance(d, (bool, list, dict)) else d)' "$1"
}

# put / get / del
expect_eq "put via n1" OK "$("$KVCTL" --endpoints "${EP[1]}" --timeout 10s put a 1)"
expect_eq "get via n3" 1 "$("$KVCTL" --endpoints "${EP[3]}" --timeout 10s get a)"
expect_eq "del of a present key prints 1" 1 "$(K del a)"
expect_eq "del again prints 0" 0 "$(K del a)"
expect_eq "get after del is an empty line" "" "$(K get a)"
expect_eq "get after del prints one line" 1 "$(K get a | wc -l)"

# Ranges: byte order puts "B" before "a"; "p" and "q" are outside prefix p/.
for kv in p/c=3 p/a=1 q=out p/B=B p/b=2 p=self; do
  K put "${kv%%=*}" "${kv#*=}" >/dev/null || fail "put $kv"
done
expect_eq "get --prefix lists key and value lines in byte order" \
  "$(printf 'p/B\nB\np/a\n1\np/b\n2\np/c\n3')" "$(K get p/ --prefix)"
expect_eq "get --keys-only" "$(printf 'p/B\np/a\np/b\np/c')" "$(K get p/ --prefix --keys-only)"
expect_eq "get --count-only" 4 "$(K get p/ --prefix --count-only)"
expect_eq "get --to is [KEY, END)" "$(printf 'p/a\np/b')" "$(K get p/a --to p/c --keys-only)"
expect_eq "get --from-key" "$(printf 'p/c\nq')" "$(K get p/c --from-key --keys-only)"
expect_eq "get --limit 2 prints two keys" "$(printf 'p/B\nB\np/a\n1')" "$(K get p/ --prefix --limit 2)"
limited=$(K -w json get p/ --prefix --limit 2)
json_valid "get --limit -w json" <<<"$limited"
expect_eq "--limit: more" true "$(echo "$limited" | field more)"
expect_eq "--limit: count is every key in range" 4 "$(echo "$limited" | field count)"
expect_eq "--limit: two kvs" 2 "$(echo "$limited" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["kvs"]))')"
expect_eq "--limit 4: no more" false "$(K -w json get p/ --prefix --limit 4 | field more)"
expect_eq "get --rev-header starts with the revision" 1 \
  "$(K get p/a --rev-header | head -n 1 | grep -cE '^revision: [0-9]+$')"

# JSON, and revisions that increase with every change.
r1=$(K -w json put r x | tee "$WORK/put.json" | field revision)
json_valid "put -w json" <"$WORK/put.json"
r2=$(K -w json append r y | tee "$WORK/append.json" | field revision)
json_valid "append -w json" <"$WORK/append.json"
K -w json get r >"$WORK/get.json"
json_valid "get -w json" <"$WORK/get.json"
expect_eq "get -w json keeps key" r "$(field key <"$WORK/get.json")"
expect_eq "get -w json keeps value" xy "$(field value <"$WORK/get.json")"
expect_eq "get -w json: version 2" 2 "$(field kvs.0.version <"$WORK/get.json")"
expect_eq "get -w json: created at the put" "$r1" "$(field kvs.0.create_revision <"$WORK/get.json")"
expect_eq "get -w json: modified at the append" "$r2" "$(field kvs.0.mod_revision <"$WORK/get.json")"
K -w json del r >"$WORK/del.json"
json_valid "del -w json" <"$WORK/del.json"
expect_eq "del -w json: deleted" 1 "$(field deleted <"$WORK/del.json")"
r3=$(field revision <"$WORK/del.json")
printf '\nput r z\n' | K -w json txn >"$WORK/txn.json"
json_valid "txn -w json" <"$WORK/txn.json"
r4=$(field revision <"$WORK/txn.json")
[ "$r1" -lt "$r2" ] && [ "$r2" -lt "$r3" ] && [ "$r3" -lt "$r4" ] ||
  fail "revisions increase: put $r1, append $r2, del $r3, txn $r4"
pass "revisions increase: put $r1, append $r2, del $r3, txn $r4"
json_valid "get --prefix -w json" <<<"$(K -w json get p/ --prefix)"
json_valid "txn with get and del -w json" \
  <<<"$(printf 'value("p/a") = "1"\n\nget p/ --prefix\ndel q\n' | K -w json txn)"

# txn: create if absent, then it exists.
create_txn() {
  printf 'version("new") = "0"\n\nput new %s\n\nget new\n' "$1" | K txn
}
expect_eq "create-if-absent succeeds" "$(printf 'SUCCESS\n\nOK')" "$(create_txn first)"
expect_eq "create-if-absent then fails and reads" "$(printf 'FAILURE\n\nnew\nfirst')" "$(create_txn second)"
expect_eq "the second create changed nothing" first "$(K get new)"

# txn: update if unchanged since the mod revision we read.
K put cfg v1 >/dev/null || fail "put cfg"
rev=$(K -w json get cfg | field kvs.0.mod_revision)
update_txn() { printf 'mod("cfg") = "%s"\n\nput cfg %s\n\nget cfg\n' "$rev" "$1" | K txn; }
expect_eq "update-if-unchanged succeeds" "$(printf 'SUCCESS\n\nOK')" "$(update_txn v2)"
expect_eq "a second update with the old revision fails" \
  "$(printf 'FAILURE\n\ncfg\nv2')" "$(update_txn v3)"
rev=$(K -w json get cfg | field kvs.0.mod_revision)
K put cfg other-writer >/dev/null || fail "put cfg by another writer"
expect_eq "an update after another writer fails" "$(printf 'FAILURE\n\ncfg\nother-writer')" "$(update_txn v4)"

# A lock key: take it if nobody holds it; release it only if we hold it.
acquire() { printf 'create("lock") = "0"\n\nput lock %s\n\nget lock\n' "$1" | K txn; }
release() { printf 'value("lock") = "%s"\n\ndel lock\n\nget lock\n' "$1" | K txn; }
expect_eq "alice takes the lock" "$(printf 'SUCCESS\n\nOK')" "$(acquire alice)"
expect_eq "bob cannot take it and sees alice" "$(printf 'FAILURE\n\nlock\nalice')" "$(acquire bob)"
expect_eq "bob cannot release alice's lock" "$(printf 'FAILURE\n\nlock\nalice')" "$(release bob)"
expect_eq "alice releases it" "$(printf 'SUCCESS\n\n1')" "$(release alice)"
expect_eq "then bob takes it" "$(printf 'SUCCESS\n\nOK')" "$(acquire bob)"

# Quoting, append and every compare operator in a txn.
txn_out=$(K txn <<'EOF'
value("p/a") != "2"
value("p/a") < "2"
value("p/b") > "1"
version("p/a") = "1"

put "k with space" "v w"
append "k with space" '!'
get "k with space"
EOF
)
expect_eq "quoted words, append and each operator" "$(printf 'SUCCESS\n\nOK\n\nOK\n\nk with space\nv w!')" "$txn_out"
expect_eq "the quoted key reads back" "v w!" "$(K get "k with space")"

expect_eq "del --prefix prints how many" 4 "$(K del p/ --prefix)"
expect_eq "nothing left under the prefix" 0 "$(K get p/ --prefix --count-only)"

# Usage errors exit 2; a txn that does not parse sends nothing.
before=$(K -w json get q | field revision)
printf 'version("q") = "0"\n\nput q changed\nfrob q\n' | K txn >/dev/null 2>"$WORK/err"
expect_eq "a txn that does not parse exits 2" 2 $?
grep -q 'line 4: expected an op' "$WORK/err" || fail "the txn error names line 4: $(cat "$WORK/err")"
pass "the txn error names the line"
expect_eq "nothing was sent" "$before" "$(K -w json get q | field revision)"
K get a --prefix --from-key >/dev/null 2>&1
expect_eq "--prefix with --from-key exits 2" 2 $?
K get b --to a >/dev/null 2>"$WORK/err"
expect_eq "--to below the key exits 2" 2 $?
K get a --keys-only --count-only >/dev/null 2>&1
expect_eq "--keys-only with --count-only exits 2" 2 $?

# No answer: the outcome of a txn is unknown, exit 1.
dead=$((BASE + 99))
if port_free "$dead"; then
  printf '\nput a 1\n' | "$KVCTL" --endpoints "127.0.0.1:$dead" --timeout 1s txn >/dev/null 2>"$WORK/err"
  expect_eq "a txn with no answer exits 1" 1 $?
  grep -q unknown "$WORK/err" || fail "it says the outcome is unknown: $(cat "$WORK/err")"
fi
# Watch: the changes under a prefix as they happen, then from a past revision.
start=$(K -w json get w/ --prefix | field revision)
K watch w/ --prefix --count 3 >"$WORK/watch.txt" 2>"$WORK/watch.err" &
watcher=$!
sleep 0.5
K put w/1 one >/dev/null && K put other x >/dev/null && K put w/2 two >/dev/null &&
  K del w/1 >/dev/null || fail "writes under the watch"
for _ in $(seq 1 100); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
wait "$watcher"
expect_eq "watch --count 3 ends by itself" 0 $?
expect_eq "watch prints each change under the prefix, in order" \
  "$(printf 'PUT\nw/1\none\nPUT\nw/2\ntwo\nDELETE\nw/1')" "$(cat "$WORK/watch.txt")"
K -w json watch w/ --prefix --rev $((start + 1)) --count 3 >"$WORK/watch.json" ||
  fail "watch from a past revision: $(cat "$WORK/watch.err")"
/usr/bin/python3 - "$WORK/watch.json" "$start" <<'PY' || fail "watch -w json from --rev replays the same changes"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
start = int(sys.argv[2])
assert [e["type"] for e in events] == ["PUT", "PUT", "DELETE"], events
assert [e["key"] for e in events] == ["w/1", "w/2", "w/1"], events
revs = [e["mod_revision"] for e in events]
assert revs == sorted(revs) and revs[0] == start + 1 and len(set(revs)) == 3, revs
PY
pass "watch -w json --rev replays the past changes with their revisions"

echo "data_model: every check passed"
