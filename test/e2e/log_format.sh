#!/usr/bin/env bash
# --log-format json: three nodes serve a put and stop on SIGTERM, and every
# line each wrote is one JSON object with time, level, node (its own name),
# actor and msg first, the line's fields after; --log-format from
# KVPAXOS_LOG_FORMAT and the TOML file works the same; a bad value is a usage
# error (exit 2) naming the flag.
#   bash log_format.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

# check_json_lines FILE NODE: every line of FILE is a JSON log line of NODE;
# prints the actors seen and the fields of each, one "actor msg key..." a line.
check_json_lines() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, re, sys
path, node = sys.argv[1], sys.argv[2]
lines = open(path, "rb").read().decode("utf-8").splitlines()
if not lines:
    sys.exit("%s is empty" % path)
for n, line in enumerate(lines, 1):
    try:
        obj = json.loads(line)
    except ValueError as e:
        sys.exit("%s:%d is not JSON (%s): %r" % (path, n, e, line))
    keys = list(obj)
    if keys[:5] != ["time", "level", "node", "actor", "msg"]:
        sys.exit("%s:%d starts with %s" % (path, n, keys[:5]))
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]):
        sys.exit("%s:%d time is not RFC 3339 UTC with milliseconds: %r" % (path, n, obj["time"]))
    if obj["level"] not in ("error", "warn", "info", "debug"):
        sys.exit("%s:%d level %r" % (path, n, obj["level"]))
    if obj["node"] != node:
        sys.exit("%s:%d node %r, expected %r" % (path, n, obj["node"], node))
    if not obj["actor"] or not isinstance(obj["msg"], str) or not obj["msg"]:
        sys.exit("%s:%d has no actor or msg: %r" % (path, n, line))
    print(obj["actor"], obj["msg"].split(";")[0].replace(" ", "_"), *keys[5:])
EOF
}

start_cluster 3 --log-format json
ALL="${EP[1]},${EP[2]},${EP[3]}"
expect_eq "put" OK "$("$KVCTL" --endpoints "$ALL" --timeout 10s put k v)"
expect_eq "get" v "$("$KVCTL" --endpoints "${EP[2]}" --timeout 10s get k)"
for i in 1 2 3; do
  kill -TERM "${PIDS[$i]}"
  wait "${PIDS[$i]}"
  expect_eq "n$i exits 0 on SIGTERM" 0 $?
done
for i in 1 2 3; do
  seen=$(check_json_lines "$WORK/n$i.log" "n$i") || fail "n$i: $seen"
  pass "every line of n$i is a JSON log line of n$i ($(wc -l <"$WORK/n$i.log") lines)"
  grep -q '^peer_link connecting_to_a_member peer peer_id endpoint$' <<<"$seen" ||
    fail "n$i: no peer_link line with its peer fields: $seen"
  grep -q '^main stopping_on_a_signal:.* signal$' <<<"$seen" ||
    fail "n$i: no main line for the signal: $seen"
  grep -q '"signal":"SIGTERM"' "$WORK/n$i.log" || fail "n$i: the signal is not named"
  pass "n$i names its actors and fields"
done

# A bad value: exit 2, and the message names the flag and the choices.
"$KVPAXOSD" --name n1 --cluster "n1=127.0.0.1:1" --client-addr 127.0.0.1:2 --log-format yaml \
  >/dev/null 2>"$WORK/err"
expect_eq "--log-format yaml exits 2" 2 $?
grep -q -- "--log-format" "$WORK/err" && grep -q "json" "$WORK/err" ||
  fail "the error names the flag and its values: $(cat "$WORK/err")"
KVPAXOS_LOG_FORMAT=xml "$KVPAXOSD" --name n1 --cluster "n1=127.0.0.1:1" --client-addr 127.0.0.1:2 \
  >/dev/null 2>"$WORK/err"
expect_eq "KVPAXOS_LOG_FORMAT=xml exits 2" 2 $?

# From the environment, and from --dump-config's TOML file.
expect_eq "--dump-config shows the format" 'log-format="json"' \
  "$(KVPAXOS_LOG_FORMAT=json "$KVPAXOSD" --dump-config | grep '^log-format=')"
expect_eq "--dump-config shows the default" 'log-format="text"' \
  "$("$KVPAXOSD" --dump-config | grep '^log-format=')"
BASE=$(pick_base 2)
solo() {  # solo N: a one-node cluster on BASE+N, logging to solo-N.log
  "$@" >"$WORK/solo-$N.log" 2>&1 &
  PIDS[9]=$!
  for _ in $(seq 100); do
    grep -q "serving clients" "$WORK/solo-$N.log" && break
    sleep 0.1
  done
  kill -TERM "${PIDS[9]}"
  wait "${PIDS[9]}"
}
N=1
solo env KVPAXOS_LOG_FORMAT=json KVPAXOS_NAME=s1 KVPAXOS_CLUSTER="s1=127.0.0.1:$((BASE + 1))" \
  KVPAXOS_CLIENT_ADDR="127.0.0.1:$((BASE + 101))" "$KVPAXOSD"
seen=$(check_json_lines "$WORK/solo-1.log" s1) || fail "KVPAXOS_LOG_FORMAT=json: $seen"
grep -q '^main serving_clients_on' <<<"$seen" || fail "s1 did not serve: $seen"
pass "KVPAXOS_LOG_FORMAT=json makes every line JSON"
printf 'name="s2"\ncluster="s2=127.0.0.1:%d"\nclient-addr="127.0.0.1:%d"\nlog-format="json"\n' \
  $((BASE + 2)) $((BASE + 102)) >"$WORK/s2.toml"
N=2
solo "$KVPAXOSD" --config-file "$WORK/s2.toml"
seen=$(check_json_lines "$WORK/solo-2.log" s2) || fail "log-format in the TOML file: $seen"
pass "log-format=\"json\" in --config-file makes every line JSON"

# The default stays text: the time, the level, the node and actor, the sentence.
N=3
solo "$KVPAXOSD" --name s3 --cluster "s3=127.0.0.1:$((BASE + 1))" --client-addr "127.0.0.1:$((BASE + 101))"
grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} INFO  s3 main: serving clients on ' "$WORK/solo-3.log" ||
  fail "text lines read as before: $(cat "$WORK/solo-3.log")"
pass "the default format is text"
