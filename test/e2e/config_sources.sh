#!/usr/bin/env bash
# Flags from three sources: n1 from the command line, n2 from a TOML
# --config-file that n1's --dump-config wrote, n3 from KVPAXOS_* variables
# alone; kvctl from KVCTL_* variables. The three form one cluster that
# serves; bad files and bad values are usage errors (exit 2) naming what
# is wrong.
#   bash config_sources.sh KVPAXOSD KVCTL
set -uo pipefail
source "$(dirname "$0")/lib.bash"

BASE=$(pick_base 3)
CLUSTER="n1=127.0.0.1:$((BASE + 1)),n2=127.0.0.1:$((BASE + 2)),n3=127.0.0.1:$((BASE + 3))"
for i in 1 2 3; do EP[$i]="127.0.0.1:$((BASE + 100 + i))"; done
ALL="${EP[1]},${EP[2]},${EP[3]}"

# --dump-config with nothing else is a template: every flag, none required.
"$KVPAXOSD" --dump-config >"$WORK/template.toml" || fail "--dump-config alone exits 0"
grep -q '^# name=""' "$WORK/template.toml" || fail "template lists name: $(head "$WORK/template.toml")"
grep -q '^pipeline=2' "$WORK/template.toml" || fail "template shows the default pipeline"
pass "--dump-config alone prints a template"

# n2's file: what n1's flags would be, renamed, via --dump-config.
"$KVPAXOSD" --name n2 --cluster "$CLUSTER" --client-addr "${EP[2]}" --data-dir "$WORK/d2" \
  --initial-cluster-state new --pipeline 3 --log-level warn --dump-config >"$WORK/n2.toml" \
  || fail "--dump-config exits 0"
grep -q '^client-addr="'"${EP[2]}"'"' "$WORK/n2.toml" || fail "dump has client-addr: $(cat "$WORK/n2.toml")"
grep -q '^pipeline=3' "$WORK/n2.toml" || fail "dump has the given pipeline"
grep -q '^# join=false' "$WORK/n2.toml" || fail "dump leaves flags that are off commented out"
pass "--dump-config writes the flags in effect"

"$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr "${EP[1]}" --data-dir "$WORK/d1" \
  --initial-cluster-state new >"$WORK/n1.log" 2>&1 &
PIDS[1]=$!
"$KVPAXOSD" --config-file "$WORK/n2.toml" >"$WORK/n2.log" 2>&1 &
PIDS[2]=$!
env KVPAXOS_NAME=n3 KVPAXOS_CLUSTER="$CLUSTER" KVPAXOS_CLIENT_ADDR="${EP[3]}" \
  KVPAXOS_DATA_DIR="$WORK/d3" KVPAXOS_INITIAL_CLUSTER_STATE=new KVPAXOS_PIPELINE=4 \
  "$KVPAXOSD" >"$WORK/n3.log" 2>&1 &
PIDS[3]=$!

export KVCTL_ENDPOINTS="$ALL" KVCTL_TIMEOUT=10s
up=0
for _ in $(seq 200); do
  "$KVCTL" --timeout 1s status >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
[ "$up" -eq 1 ] || fail "the cluster of flags, file and environment did not come up"
pass "a node from flags, one from a file and one from the environment form a cluster"

expect_eq "put via KVCTL_ENDPOINTS" OK "$("$KVCTL" put colour blue)"
for i in 1 2 3; do
  expect_eq "get via n$i" blue "$(KVCTL_ENDPOINTS="${EP[$i]}" "$KVCTL" get colour)"
done
expect_eq "KVCTL_WRITE_OUT=json" '{"ok":true' "$(KVCTL_WRITE_OUT=json "$KVCTL" put a b | cut -c1-10)"
rows=$("$KVCTL" status | grep -c ' yes ')
expect_eq "status answers on all three" 3 "$rows"
expect_eq "the command line wins over the environment" blue \
  "$(KVCTL_ENDPOINTS=127.0.0.1:1 "$KVCTL" --endpoints "${EP[2]}" get colour)"

# Errors: a key that names no flag, a value that does not parse, a missing file.
printf 'name = "n9"\nclient-adress = "127.0.0.1:1"\n' >"$WORK/typo.toml"
"$KVPAXOSD" --config-file "$WORK/typo.toml" >/dev/null 2>"$WORK/err"
expect_eq "an unknown key exits 2" 2 $?
grep -q "typo.toml: unknown key 'client-adress'" "$WORK/err" || fail "unknown key named: $(cat "$WORK/err")"
KVPAXOS_PIPELINE=many "$KVPAXOSD" --name n1 --cluster "$CLUSTER" --client-addr 127.0.0.1:1 \
  >/dev/null 2>"$WORK/err"
expect_eq "a bad KVPAXOS_PIPELINE exits 2" 2 $?
grep -q "pipeline" "$WORK/err" || fail "bad env value names the flag: $(cat "$WORK/err")"
"$KVPAXOSD" --config-file "$WORK/nope.toml" >/dev/null 2>"$WORK/err"
expect_eq "a missing --config-file exits 2" 2 $?
grep -q "nope.toml" "$WORK/err" || fail "missing file named: $(cat "$WORK/err")"
KVCTL_TIMEOUT=soon "$KVCTL" get colour >/dev/null 2>"$WORK/err"
expect_eq "a bad KVCTL_TIMEOUT exits 2" 2 $?

# The file survives a restart of its node: n2 comes back from it and serves.
kill -TERM "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null
"$KVPAXOSD" --config-file "$WORK/n2.toml" >"$WORK/n2b.log" 2>&1 &
PIDS[2]=$!
got=""
for _ in $(seq 100); do
  got=$(KVCTL_ENDPOINTS="${EP[2]}" "$KVCTL" --timeout 1s get colour 2>/dev/null) && break
  sleep 0.1
done
expect_eq "n2 restarted from its config file serves" blue "$got"
echo "all config-source checks passed"
